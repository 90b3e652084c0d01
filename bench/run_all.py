"""`make bench`: every workload script in bench/ (p<N>_*.py) at a small size, one table at the end.

Each script exposes `main(argv) -> rows`; the sizes here are small so the whole run stays short.
Pass `--database-url` to run against PostgreSQL instead of a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from bench.common import print_table

# Small sizes per workload; a script not listed runs with its own `--size` default.
SMALL_SIZES = {"p1_bulk_ingest": "20000", "p2_single_ingest": "3", "profile_import": "10000"}
# Extra arguments for a small run.
SMALL_ARGS = {"p2_single_ingest": ["--rounds", "1"]}
# Workloads outside the guide's P<N> table, named by what they measure.
EXTRA_WORKLOADS = ["profile_import"]


def workloads() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)])
                  if m.name[:1] == "p" and m.name[1:2].isdigit()) + EXTRA_WORKLOADS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--only", nargs="*", help="workload module names to run")
    args = parser.parse_args()
    rows = []
    failed = []
    for name in workloads():
        if args.only and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        argv = []
        if name in SMALL_SIZES:
            argv += ["--size", SMALL_SIZES[name], *SMALL_ARGS.get(name, [])]
        if args.database_url:
            argv += ["--database-url", args.database_url]
        try:
            rows += importlib.import_module(f"bench.{name}").main(argv) or []
        except Exception as exc:  # one broken workload must not hide the others' figures
            print(f"{name} failed: {exc!r}", file=sys.stderr)
            failed.append(name)
    print("\n== summary")
    print_table(rows)
    if failed:
        sys.exit(f"failed workloads: {', '.join(failed)}")


if __name__ == "__main__":
    main()
