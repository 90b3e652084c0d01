"""Quoted-printable encoded a line at a time (cached per line) equals encoding the text at once."""

from __future__ import annotations

import binascii
import random

from menura.delivery.message import quoted_printable

PIECES = ["a", "b", " ", "\t", "=", ".", "é", "€", "\n", "\r\n", "\r", "From ", "x" * 75, "y" * 76, "z" * 150,
          "<a href=\"https://shop.example/p?x=1&y=2\">", " \n", "\t\n", "=\n"]


def _at_once(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


def test_line_by_line_equals_whole_text() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))
        assert quoted_printable(text) == _at_once(text), repr(text)
        assert quoted_printable(text) == _at_once(text)  # again, from the cache


def test_soft_breaks_and_line_ends_are_crlf() -> None:
    encoded = quoted_printable("w" * 200 + " \nend\t")
    assert b"\n" not in encoded.replace(b"\r\n", b"")
    assert encoded.endswith(b"end=09")
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
