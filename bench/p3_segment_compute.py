"""P3: segment full compute. N profiles, 10·N events; the guide's segment "placed order at least
twice in the last 90 days AND email consent subscribed AND country = US", compiled by the engine,
against the same condition written by hand as one SQL query on the same database, same run.

    python -m bench.p3_segment_compute --size 20000 [--database-url postgresql+psycopg://...]

Both queries must return the same profiles (checked). Figures are the best of 5 alternating runs;
the full compute (query + writing the membership of a new segment) is reported too, best of 5.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, text
from ulid import ULID

from bench.common import database_label, make_account, migrate, print_table, scratch_database

BATCH = 20_000


SECONDARY_INDEXES = {"ix_events_account_time": "events (account_id, occurred_at, id)",
                     "ix_events_metric_time": "events (metric_id, occurred_at, id)"}


def _populate(db: Any, account_id: str, size: int, now: Any) -> tuple[str, int]:
    """Profiles with ascending ids, each followed by its events (about ten each), loaded in key order
    with the secondary event indexes built afterwards: the fast way to load, the same end state."""
    rng = random.Random(3)
    pg = db.dialect == "postgresql"
    metric_ids = [f"M{i}{uuid.uuid4().hex[:6]}" for i in range(3)]
    raw = db.engine.raw_connection()
    cur = raw.cursor()
    p = "%s" if pg else "?"

    def stamp(when: Any) -> str:
        return when.isoformat() if pg else when.strftime("%Y-%m-%d %H:%M:%S.%f")

    created = stamp(now)
    for i, name in enumerate(("Placed Order", "Viewed Product", "Opened Email")):
        cur.execute(f"INSERT INTO metrics (id, account_id, name, service, integration_name, integration_category,"
                    f" created, updated) VALUES ({','.join([p] * 8)})",
                    (metric_ids[i], account_id, name, "api", "API", "API", created, created))
    for name in SECONDARY_INDEXES:
        cur.execute(f"DROP INDEX {name}")
    prefix = str(ULID())[:10]
    profiles, events, total = [], [], 0
    for index in range(size):
        pid = f"{prefix}{index:016d}"
        country = rng.choice(["US", "US", "CA", "GB"])
        profiles.append((pid, account_id, f"p{index}@bench.io", f'{{"country": "{country}"}}', "{}", created, created,
                         rng.choice(["SUBSCRIBED", "SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED"]),
                         "HARD_BOUNCE" if rng.random() < 0.03 else None))
        for _ in range(rng.randint(0, 20)):
            when = now - timedelta(seconds=rng.randint(0, 365 * 86400))
            metric = metric_ids[0] if rng.random() < 0.15 else metric_ids[1 + (total & 1)]
            events.append((f"E{prefix}{total:015d}", account_id, metric, pid, stamp(when), "{}", 10.0, str(total),
                           created))
            total += 1
        if len(events) >= BATCH:
            _flush(cur, p, profiles, events)
            raw.commit()
            profiles, events = [], []
    _flush(cur, p, profiles, events)
    for name, target in SECONDARY_INDEXES.items():
        cur.execute(f"CREATE INDEX {name} ON {target}")
    cur.execute("ANALYZE")
    raw.commit()
    if not pg:
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    return metric_ids[0], total


def _flush(cur: Any, p: str, profiles: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> None:
    if profiles:
        cur.executemany(f"INSERT INTO profiles (id, account_id, email, location, properties, created, updated,"
                        f" email_consent, email_suppression_reason, sms_consent, sms_transactional_consent)"
                        f" VALUES ({','.join([p] * 9)}, 'NEVER_SUBSCRIBED', 'NEVER_SUBSCRIBED')", profiles)
    if events:
        cur.executemany(f"INSERT INTO events (id, account_id, metric_id, profile_id, occurred_at, properties, value,"
                        f" unique_id, received_at) VALUES ({','.join([p] * 9)})", events)


def _definition(metric_id: str) -> dict[str, Any]:
    return {"condition_groups": [
        {"conditions": [{"type": "profile-metric", "metric_id": metric_id, "measurement": "count",
                         "measurement_filter": {"type": "numeric", "operator": "greater-than-or-equal", "value": 2},
                         "timeframe_filter": {"type": "date", "operator": "in-the-last", "quantity": 90,
                                              "unit": "day"}}]},
        {"conditions": [{"type": "profile-marketing-consent", "consent": {
            "channel": "email", "can_receive_marketing": True, "consent_status": {"subscription": "subscribed"}}}]},
        {"conditions": [{"type": "profile-property", "property": "location['country']",
                         "filter": {"type": "string", "operator": "equals", "value": "US"}}]},
    ]}


def _hand_written(dialect: str) -> str:
    country = "p.location ->> 'country'" if dialect == "postgresql" else "json_extract(p.location, '$.country')"
    return f"""
        SELECT p.id FROM profiles p
        WHERE p.account_id = :account AND p.email IS NOT NULL AND p.email_suppression_reason IS NULL
          AND p.email_consent = 'SUBSCRIBED' AND {country} = 'US'
          AND p.id IN (SELECT e.profile_id FROM events e
                       WHERE e.account_id = :account AND e.metric_id = :metric
                         AND e.occurred_at >= :lo AND e.occurred_at <= :hi
                       GROUP BY e.profile_id HAVING count(*) >= 2)"""


def _best_interleaved(first: Any, second: Any, rounds: int = 5) -> tuple[float, Any, float, Any]:
    """Best time of each, run alternately so a noisy neighbour slows both alike."""
    best = [float("inf"), float("inf")]
    results: list[Any] = [None, None]
    for _ in range(rounds):
        for index, run in enumerate((first, second)):
            started = time.perf_counter()
            results[index] = run()
            best[index] = min(best[index], time.perf_counter() - started)
    return best[0], results[0], best[1], results[1]


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=20_000, help="profiles (events: ten times as many)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)

    from menura.clock import SystemClock
    from menura.domain import segment_conditions as sc
    from menura.engine.segments import live
    from menura.engine.segments.compiler import Compiler
    from menura.store import segments as store
    from menura.store.db import Database
    from menura.store.types import UtcDateTime

    with scratch_database(args.database_url) as url:
        migrate(url)
        account_id, _ = make_account(url)
        db = Database(url)
        now = SystemClock().now()
        started = time.perf_counter()
        metric_id, event_count = _populate(db, account_id, args.size, now)
        print(f"loaded {args.size:,} profiles, {event_count:,} events in {time.perf_counter() - started:.0f} s",
              flush=True)
        raw_definition = _definition(metric_id)
        definition = sc.parse_definition(raw_definition)
        condition = Compiler(db.dialect, account_id, now, {}).definition(definition)

        def engine() -> set[str]:
            with db.read() as conn:
                return store.matching_profile_ids(conn, account_id, condition)

        hand = text(_hand_written(db.dialect)).bindparams(bindparam("lo", type_=UtcDateTime()),
                                                          bindparam("hi", type_=UtcDateTime()))
        params = {"account": account_id, "metric": metric_id}
        params.update(lo=now - timedelta(days=90), hi=now)

        def by_hand() -> set[str]:
            with db.read() as conn:
                return set(conn.execute(hand, params).scalars())

        by_hand()  # warm both caches alike
        engine()
        hand_seconds, hand_ids, engine_seconds, engine_ids = _best_interleaved(by_hand, engine)
        assert engine_ids == hand_ids, f"the engine found {len(engine_ids)} profiles, the hand query {len(hand_ids)}"

        full_seconds = float("inf")
        for attempt in range(5):  # each a new segment computed from nothing, alternating with the hand query
            segment_id = f"BENCH{attempt}"
            with db.write() as conn:
                store.insert_segment(conn, {"id": segment_id, "account_id": account_id, "name": "P3",
                                            "definition": raw_definition,
                                            "dependencies": sc.dependencies(definition).to_json(), "is_active": True,
                                            "is_starred": False, "is_processing": True, "version": 1,
                                            "created": now, "updated": now})
            started = time.perf_counter()
            by_hand()
            hand_seconds = min(hand_seconds, time.perf_counter() - started)
            started = time.perf_counter()
            engine()
            engine_seconds = min(engine_seconds, time.perf_counter() - started)
            started = time.perf_counter()
            with db.write() as conn:
                live.recompute(conn, store.get_segment(conn, account_id, segment_id), now)
            full_seconds = min(full_seconds, time.perf_counter() - started)
        db.dispose()
    label = database_label(url)
    size = f"{args.size:,} profiles / {event_count:,} events, {len(hand_ids):,} members"
    return [
        (f"P3 segment query, compiled ({label})", size, f"{engine_seconds * 1000:.0f} ms",
         f"{hand_seconds * 1000:.0f} ms hand-written SQL", f"{engine_seconds / hand_seconds:.2f}"),
        (f"P3 full compute incl. materializing ({label})", size, f"{full_seconds * 1000:.0f} ms",
         f"{hand_seconds * 1000:.0f} ms hand-written SQL", f"{full_seconds / hand_seconds:.2f}"),
    ]


if __name__ == "__main__":
    print_table(main())
