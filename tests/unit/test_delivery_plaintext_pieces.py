"""The text part converted in cached pieces equals the whole-document conversion, on real messages
and on generated HTML full of the awkward cases (links spanning blocks, nested and unclosed links,
stray '<', entities, Unicode whitespace, comments and dropped blocks, upper-case tags)."""

from __future__ import annotations

import random

import pytest

from menura.delivery import plaintext
from menura.delivery.plaintext import html_to_text, whole_document_text

FRAGMENTS = [
    "<p>", "</p>", "<P class='x'>", "<div>", "</div>", "<tr>", "<td style=\"a:b\">", "</td>", "</tr>", "<table>",
    "</table>", "<li>", "<ul>", "</ul>", "<h2>", "</h2>", "<br>", "<br/>", "<hr>", "<span>", "</span>", "<b>",
    "<a href=\"https://a.test/x?q=1&amp;r=2\">", "<A HREF='https://b.test/'>", "<a href=#top>", "</a>", "</A >",
    "<img src=i.png alt=\"Logo &amp; co\">", "<img alt='Hat'>", "<!-- c <p> -->", "<style>.p{}</style>",
    "<script>var a='<p>';</script>", "<title>T</title>", "Hello", "world", "Zoë", " ", "  ", "\n", "\t", "\xa0",
    "&nbsp;", "&amp;", "&euro;", "&#847;", "\u200c", "\u2028", "\x1c", "a < b", "x>y", "https://a.test/x",
    "<abbr>", "<th>", "<center>", "<ol>", "<h6>",
]


def test_generated_documents() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        html = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 40)))
        assert html_to_text(html) == whole_document_text(html), repr(html)
        assert html_to_text(html) == whole_document_text(html)  # again, from the cache


@pytest.mark.parametrize("html", [
    "", "   ", "<p> a </p><p> b </p>", "<td>x</td> <td>y</td>", "a<a href='https://x.test'>b<p>c</p></a>d",
    "<a href='https://x.test'>unclosed <p>para</p>", "<p>one <a href='https://x.test'>two</a> three</p>",
    "<p>a&nbsp;</p>&nbsp;<p>&nbsp;b</p>", "<div>\n\n\n</div><div>x</div>\n\n<p>\n</p>y",
])
def test_edges(html: str) -> None:
    assert html_to_text(html) == whole_document_text(html)


def test_pieces_are_reused_across_recipients() -> None:
    plaintext._cached_piece.cache_clear()
    static = "".join(f"<tr><td><p>Row {i} of the static copy</p></td></tr>" for i in range(50))
    for name in ("Ann", "Bob"):
        html = f"<table><tr><td><p>Hello {name}</p></td></tr>{static}</table>"
        assert html_to_text(html) == whole_document_text(html)
    info = plaintext._cached_piece.cache_info()
    assert info.hits > info.misses  # the second message converted only what changed
