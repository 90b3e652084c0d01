"""Hybrid templates: custom HTML carrying Klaviyo's editable-region markup, as third-party email
builders export it:

    <td data-klaviyo-region="true" data-klaviyo-region-width-pixels="600">
      <div class="klaviyo-block klaviyo-text-block">...</div>
    </td>
    <div data-klaviyo-universal-block="BLOCK_ID">&nbsp;</div>

The HTML is stored and returned byte for byte; only rendering reads the markup, to fill
universal-content placeholders with the referenced block."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_REGION = re.compile(r"<(?P<tag>[a-zA-Z][a-zA-Z0-9]*)\b[^>]*\bdata-klaviyo-region\s*=\s*[\"']?true[\"']?[^>]*>",
                     re.IGNORECASE)
_WIDTH = re.compile(r"data-klaviyo-region-width-pixels\s*=\s*[\"']?(\d+)", re.IGNORECASE)
_BLOCK = re.compile(r"class\s*=\s*[\"'][^\"']*\bklaviyo-(text|image)-block\b", re.IGNORECASE)
_UNIVERSAL = re.compile(
    r"(<div\b[^>]*\bdata-klaviyo-universal-block\s*=\s*[\"'](?P<id>[^\"']+)[\"'][^>]*>)"
    r"(?P<body>.*?)(?=</div>|<div\b|</td>)",
    re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Region:
    tag: str
    width: int | None
    offset: int


def regions(html: str) -> list[Region]:
    found = []
    for match in _REGION.finditer(html):
        width = _WIDTH.search(match.group(0))
        found.append(Region(match.group("tag").lower(), int(width.group(1)) if width else None, match.start()))
    return found


def block_kinds(html: str) -> list[str]:
    """The editable blocks' kinds in document order ("text", "image")."""
    return [m.group(1).lower() for m in _BLOCK.finditer(html)]


def is_hybrid(html: str) -> bool:
    return bool(_REGION.search(html))


def universal_block_ids(html: str) -> list[str]:
    return [m.group("id") for m in _UNIVERSAL.finditer(html)]


def expand_universal_blocks(html: str, content_for: Callable[[str], str | None]) -> str:
    """Put each referenced universal block's HTML inside its placeholder div (for rendering only).
    A reference to a block that no longer exists keeps the placeholder's own content."""
    def fill(match: re.Match[str]) -> str:
        content = content_for(match.group("id"))
        return match.group(1) + (match.group("body") if content is None else content)

    return _UNIVERSAL.sub(fill, html)
