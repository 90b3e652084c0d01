"""Real `python -m menura.worker` processes for durability tests: start them against one database, read
their logs, kill them (SIGKILL is what production does to them), and wait for what they should bring about."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, describe: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s\n{describe()}")
        time.sleep(0.05)


class WorkerProcesses:
    """Worker processes on one database, each logging to its own file under `log_dir`."""

    def __init__(self, url: str, log_dir: Path, settings: Mapping[str, str], *, log_tail: int | None = None) -> None:
        self.url = url
        self.log_dir = log_dir
        self.settings = settings  # MENURA_* variables besides the database URL
        self.log_tail = log_tail  # characters of each log that `logs()` shows; None: all
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log_path = self.log_dir / f"worker-{len(self.started)}.log"
        env = {
            **os.environ,
            "MENURA_DATABASE_URL": self.url,
            **self.settings,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "menura.worker"], cwd=ROOT, env=env, stdout=log_file, stderr=log_file
            )
        self.started.append((process, log_path))
        return process

    def wait_started(self, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        log_path = next(path for proc, path in self.started if proc is process)
        wait_for(lambda: "started" in log_path.read_text(errors="replace"), timeout, self.logs)

    def logs(self) -> str:
        tail = -self.log_tail if self.log_tail else 0
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[tail:]}" for _, path in self.started)

    def kill_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
