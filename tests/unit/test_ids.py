"""Identifier formats."""

from __future__ import annotations

import time

from ulid import ULID

from menura import ids


def test_ulids_are_valid_unique_and_carry_the_current_time():
    made = [*ids.ulids(2000), ids.ulid()]
    assert len(set(made)) == len(made)
    for value in made[:50] + made[-5:]:
        assert len(value) == 26 and str(ULID.from_str(value)) == value
    millis = ULID.from_str(made[-1]).milliseconds
    assert abs(millis - time.time() * 1000) < 5000
