"""Run a snippet with the official SDK 25.x (revision 2026-10-15), installed apart in .sdk25 by
`make test`, in a subprocess so it never mixes with SDK 24 in this interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SDK25 = Path(__file__).resolve().parents[1] / ".sdk25"

_PRELUDE = """
import json, sys
from klaviyo_api import KlaviyoAPI
klaviyo = KlaviyoAPI(sys.argv[1], test_host=sys.argv[2], max_retries=0)
def out(value):
    print(json.dumps(value.to_dict() if hasattr(value, "to_dict") else value, default=str))
"""


def run_sdk25(key: str, url: str, code: str) -> Any:
    """Runs `code` (which calls `out(...)` once) and returns what it printed, decoded."""
    if not (SDK25 / "klaviyo_api").exists():
        pytest.skip("SDK 25 not installed in .sdk25 (make test installs it)")
    env = {**os.environ, "PYTHONPATH": str(SDK25)}
    result = subprocess.run([sys.executable, "-c", _PRELUDE + textwrap.dedent(code), key, url],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
