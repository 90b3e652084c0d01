"""The text/plain part of an email, from its HTML, with regular expressions instead of an HTML parser:
at campaign speed `html.parser` costs more than everything else in building a message together.
Same rules as `menura.templating.text` (a unit test holds them together): block elements make line
breaks, list items "- ", links keep their address "text (url)", images their alt text; <head>,
<style>, <script> and comments are dropped."""

from __future__ import annotations

import functools
import html as htmllib
import itertools
import re

# (Each pattern starts with its literal '<', outside any alternation: the regex engine then skips ahead.)
_DROP = re.compile(r"<(?:!--.*?-->|(head|style|script|title|template)\b[^>]*>.*?</\1\s*>)", re.IGNORECASE | re.DOTALL)
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
_SPACES = re.compile(r"\s+")
# Where a document is cut into pieces converted (and cached) on their own: around each whole link (as
# `_ANCHOR` matches it), and before the opening tags of blocks.
_PIECE_CUT = re.compile(r"<(?:(a\b[^>]*>.*?</a\s*>)|(?:tr|td|th|table|p|div|li|ul|ol|h[1-6])\b)",
                        re.IGNORECASE | re.DOTALL)
# A '<' before the previous one's tag closed: a match could then cross a cut; such documents go whole.
_STRAY_LT = re.compile(r"<[^>]*<")


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
    """The text part. Messages of one campaign share most of their HTML (personalization and tracked
    links change a few places), so the document is cut into pieces that convert independently and
    each piece's conversion is cached: only the pieces a recipient changes are converted again."""
    document = _DROP.sub("", html)
    if _STRAY_LT.search(document):
        return whole_document_text(html)
    text = "".join(_cached_piece(piece) for piece in _pieces(document))
    # Where pieces meet, a line may have kept a space at an end or two in a row. (str.replace loops:
    # a regex tries a match at every character of the text, these run in C.)
    text = _collapse(text, "  ", " ").replace(" \n", "\n").replace("\n ", "\n")
    return _collapse(text, "\n\n\n", "\n\n").strip()


def _collapse(text: str, run: str, into: str) -> str:
    """Every run of the repeated character longer than `into` made `into` (run = into + 1 character)."""
    while run in text:
        text = text.replace(run, into)
    return text


def whole_document_text(html: str) -> str:
    """The same conversion in one piece: the reference the pieces add up to (a unit test holds them)."""
    # Line breaks in the source are only whitespace in HTML: tags alone make lines.
    text = _convert(" ".join(_DROP.sub("", html).split()))
    # str.split() collapses every kind of whitespace (nbsp included) far faster than a regex here.
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _pieces(document: str) -> list[str]:
    """Cut before block tags and around links: with every tag whole (no stray '<') and every link in
    one piece, no pattern of the conversion matches across a cut."""
    cuts = [0]
    for match in _PIECE_CUT.finditer(document):
        cuts.append(match.start())
        if match.group(1) is not None:
            cuts.append(match.end())
    cuts.append(len(document))
    return [document[start:end] for start, end in itertools.pairwise(cuts) if end > start]


@functools.lru_cache(maxsize=8192)
def _cached_piece(piece: str) -> str:
    text = _convert(_SPACES.sub(" ", piece))
    # Each line as `whole_document_text` leaves it, except that a first or last line (which continues
    # a neighbour's) keeps one space where it began or ended with whitespace.
    lines = text.split("\n")
    out = [" ".join(line.split()) for line in lines]
    if lines[0][:1].isspace():
        out[0] = " " + out[0]
    if lines[-1][-1:].isspace() and not out[-1].endswith(" "):
        out[-1] += " "
    return "\n".join(out)


def _convert(text: str) -> str:
    text = _ANCHOR.sub(_link, text)
    text = _IMG.sub(_image, text)
    text = _tags_to_text(text)
    return _INVISIBLE.sub("", htmllib.unescape(text))
