"""The text/plain part of an email, from its HTML, with regular expressions instead of an HTML parser:
at campaign speed `html.parser` costs more than everything else in building a message together.
Same rules as `menura.templating.text` (a unit test holds them together): block elements make line
breaks, list items "- ", links keep their address "text (url)", images their alt text; <head>,
<style>, <script> and comments are dropped."""

from __future__ import annotations

import html as htmllib
import re

_DROP = re.compile(r"<!--.*?-->|<(head|style|script|title|template)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_ANCHOR = re.compile(r"<a\b([^>]*)>(.*?)</a\s*>", re.IGNORECASE | re.DOTALL)
_HREF = re.compile(r"\bhref\s*=\s*(?:([\"'])(.*?)\1|([^\s>\"']+))", re.IGNORECASE | re.DOTALL)
_IMG = re.compile(r"<img\b[^>]*?\balt\s*=\s*([\"'])(.*?)\1[^>]*>", re.IGNORECASE | re.DOTALL)
_BLOCK_NAMES = "div|tr|ul|ol|blockquote|section|article|header|footer|center|pre|dl|dt|dd"
_CLOSE_BLOCK = re.compile(rf"</(?:p|h[1-6]|table|hr|{_BLOCK_NAMES})\s*>", re.IGNORECASE)
_OPEN_PARAGRAPH = re.compile(r"<(?:p|h[1-6]|table)\b[^>]*>", re.IGNORECASE)
_OPEN_RULE = re.compile(r"<hr\b[^>]*>", re.IGNORECASE)
_OPEN_LINE = re.compile(rf"<(?:br|{_BLOCK_NAMES})\b[^>]*>", re.IGNORECASE)
_OPEN_ITEM = re.compile(r"<li\b[^>]*>", re.IGNORECASE)
_OPEN_CELL = re.compile(r"<t[dh]\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"\n{3,}")
_INVISIBLE = re.compile("[\u034f\u200b\u200c\u200d\u2060\ufeff]")


def _tags_to_text(text: str) -> str:
    # One C-level pass per kind of tag: far cheaper than a Python callback per tag.
    text = _CLOSE_BLOCK.sub("\n", text)
    text = _OPEN_PARAGRAPH.sub("\n\n", text)
    text = _OPEN_RULE.sub("\n" + "-" * 20 + "\n", text)
    text = _OPEN_LINE.sub("\n", text)
    text = _OPEN_ITEM.sub("\n- ", text)
    text = _OPEN_CELL.sub(" ", text)
    return _TAG.sub("", text)


def _image(match: re.Match[str]) -> str:
    return match.group(2)


def _link(match: re.Match[str]) -> str:
    href = _HREF.search(match.group(1))
    inner = _IMG.sub(_image, match.group(2))
    label = " ".join(htmllib.unescape(_tags_to_text(inner)).split())
    url = htmllib.unescape(href.group(2) if href.group(1) else href.group(3)) if href else ""
    if not url or url.startswith(("#", "mailto:")) or url == label:
        return htmllib.escape(label)
    # Both go in decoded; escaped so the one entity-decoding pass at the end leaves them as they are.
    return f"{htmllib.escape(label)} ({htmllib.escape(url)})" if label else htmllib.escape(url)


def html_to_text(html: str) -> str:
    # Line breaks in the source are only whitespace in HTML: tags alone make lines.
    text = " ".join(_DROP.sub("", html).split())
    text = _ANCHOR.sub(_link, text)
    text = _IMG.sub(_image, text)
    text = _tags_to_text(text)
    text = _INVISIBLE.sub("", htmllib.unescape(text))
    # str.split() collapses every kind of whitespace (nbsp included) far faster than a regex here.
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()
