"""What tests that drive the worker runtime directly share: a clock moved by hand, and a scratch database on
each backend. A test module binds a fixture under the name its tests ask for: `db = scratch_db`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from menura.store.db import Database
from tests import work_fixtures as wf


class ControlledClock:
    """Time stands still until a test sets `current`."""

    virtual = False

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current


@pytest.fixture(params=wf.BACKENDS)
def scratch_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[wf.ScratchDatabase]:
    with wf.open_test_database(request.param, tmp_path) as scratch:
        yield scratch


@pytest.fixture(params=wf.BACKENDS)
def scratch_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """Just the `Database` of a scratch database, for modules whose tests need nothing else."""
    with wf.open_test_database(request.param, tmp_path) as scratch:
        yield scratch.db
