"""query_metric_aggregates against the same aggregation written by hand in SQL, on random events,
on SQLite and PostgreSQL (and, for DST zones SQLite cannot express, against a plain Python count)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

import menura.store.schema  # noqa: F401  (registers every table on the metadata)
from menura.domain import accounts
from menura.domain import metrics as metric_rules
from menura.engine import aggregates
from menura.store import events as event_store
from tests.work_fixtures import BACKENDS, open_test_database

START = datetime(2024, 2, 20, tzinfo=UTC)  # the range crosses the US DST change of 2024-03-10
DAYS = 40
CAMPAIGNS = ["Spring", "Summer", "Winter sale", None]
URLS = ["https://a.example/x", "https://b.example/y", None]


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request, tmp_path_factory):
    with open_test_database(request.param, tmp_path_factory.mktemp("agg")) as test_db:
        db = test_db.db
        now = datetime(2024, 5, 1, tzinfo=UTC)
        account_id = accounts.create_account(db, now, name="agg").account_id
        rng = random.Random(4)
        with db.write() as conn:
            metric_id = metric_rules.ensure_metric(conn, account_id, "Placed Order", "api", now)
            other_metric = metric_rules.ensure_metric(conn, account_id, "Other", "api", now)
            rows = []
            for n in range(1500):
                props = {}
                campaign, url = rng.choice(CAMPAIGNS), rng.choice(URLS)
                if campaign is not None:
                    props["Campaign Name"] = campaign
                if url is not None:
                    props["URL"] = url
                rows.append({"id": f"E{n:025d}", "account_id": account_id,
                             "metric_id": metric_id if n % 10 else other_metric,
                             "profile_id": f"P{rng.randrange(25):03d}",
                             "occurred_at": START + timedelta(seconds=rng.randrange(DAYS * 86400)),
                             "properties": props, "value": round(rng.uniform(0, 100), 2) if n % 7 else None,
                             "value_currency": rng.choice(["USD", "EUR", None]), "unique_id": None,
                             "received_at": now})
            event_store.insert_events(conn, rows)
        yield test_db, account_id, metric_id, rows


def _query(metric_id, *, interval="day", tz="UTC", by=(), extra=(), start=START, end=None, measurements=None):
    end = end or START + timedelta(days=DAYS)
    filters = [f"greater-or-equal(datetime,{start.astimezone(UTC).isoformat().replace('+00:00', 'Z')})",
               f"less-than(datetime,{end.astimezone(UTC).isoformat().replace('+00:00', 'Z')})", *extra]
    return aggregates.build_query(metric_id=metric_id, measurements=measurements or ["count", "sum_value", "unique"],
                                  interval=interval, by=list(by), filters=filters, timezone=tz, sort=None,
                                  page_size=10_000)


def _as_table(result, measurements=("count", "sum_value", "unique")):
    """{(local bucket start 'YYYY-MM-DD HH:MM:SS', dims...): (count, sum, unique)} of non-zero cells."""
    table = {}
    for row in result.rows:
        for n, date in enumerate(result.dates):
            cells = tuple(round(row["measurements"][m][n], 4) for m in measurements)
            if any(cells):
                label = datetime.fromisoformat(date).strftime("%Y-%m-%d %H:%M:%S")
                table[(label, *row["dimensions"])] = cells
    return table


def _hand_sql(conn, backend, account_id, metric_id, interval, tz, dims, where_extra=""):
    """The aggregation written by hand, bucket labels as local wall-clock strings."""
    if backend == "postgresql":
        bucket = f"to_char(date_trunc('{interval}', occurred_at AT TIME ZONE '{tz}'), 'YYYY-MM-DD HH24:MI:SS')"
        dim_sql = [f"coalesce(properties->>'{d}', '')" for d in dims]
    else:
        offset = {"UTC": "+0 minutes", "Asia/Kolkata": "+330 minutes"}[tz]
        bucket = {"hour": f"strftime('%Y-%m-%d %H:00:00', occurred_at, '{offset}')",
                  "day": f"strftime('%Y-%m-%d 00:00:00', occurred_at, '{offset}')",
                  "week": f"strftime('%Y-%m-%d 00:00:00', occurred_at, '{offset}', 'weekday 0', '-6 days')",
                  "month": f"strftime('%Y-%m-01 00:00:00', occurred_at, '{offset}')"}[interval]
        dim_sql = [f"coalesce(json_extract(properties, '$.\"{d}\"'), '')" for d in dims]
    cols = ", ".join([bucket, *dim_sql])
    sql = (f"SELECT {cols}, count(*), coalesce(sum(value), 0), count(DISTINCT profile_id) FROM events "
           f"WHERE account_id = :a AND metric_id = :m AND occurred_at >= :s AND occurred_at < :e {where_extra} "
           f"GROUP BY {', '.join(str(i + 1) for i in range(1 + len(dims)))}")
    params = {"a": account_id, "m": metric_id, "s": START, "e": START + timedelta(days=DAYS)}
    if backend == "sqlite":
        params = {**params, "s": START.strftime("%Y-%m-%d %H:%M:%S"),
                  "e": (START + timedelta(days=DAYS)).strftime("%Y-%m-%d %H:%M:%S")}
    out = {}
    for row in conn.execute(text(sql), params):
        *key, count, total, unique = row
        out[tuple(key)] = (round(float(count), 4), round(float(total), 4), round(float(unique), 4))
    return out


@pytest.mark.parametrize("interval", ["hour", "day", "week", "month"])
@pytest.mark.parametrize("dims", [(), ("Campaign Name",), ("Campaign Name", "URL")])
def test_matches_hand_written_sql(seeded, interval, dims):
    test_db, account_id, metric_id, _rows = seeded
    zones = ["UTC", "Asia/Kolkata"] + (["America/New_York"] if test_db.backend == "postgresql" else [])
    for tz in zones:
        with test_db.db.read() as conn:
            result = aggregates.run(conn, account_id, _query(metric_id, interval=interval, tz=tz, by=dims))
            expected = _hand_sql(conn, test_db.backend, account_id, metric_id, interval, tz, dims)
        # Buckets cut by the range edges are partial in both; only compare whole buckets' labels.
        assert _as_table(result) == expected, (tz, interval, dims)


def _python_reference(rows, metric_id, tz, interval, dims, keep=lambda r: True):
    zone = ZoneInfo(tz)
    cells = defaultdict(lambda: [0, 0.0, set()])
    for r in rows:
        if r["metric_id"] != metric_id or not keep(r):
            continue
        local = r["occurred_at"].astimezone(zone)
        start = {"hour": local.replace(minute=0, second=0),
                 "day": local.replace(hour=0, minute=0, second=0),
                 "week": (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0),
                 "month": local.replace(day=1, hour=0, minute=0, second=0)}[interval]
        key = (start.strftime("%Y-%m-%d %H:%M:%S"), *(r["properties"].get(d) or "" for d in dims))
        cell = cells[key]
        cell[0] += 1
        cell[1] += r["value"] or 0
        cell[2].add(r["profile_id"])
    return {k: (float(c), round(t, 4), float(len(u))) for k, (c, t, u) in cells.items()}


@pytest.mark.parametrize("interval", ["hour", "day", "week", "month"])
def test_dst_zone_matches_python_reference(seeded, interval):
    test_db, account_id, metric_id, rows = seeded
    with test_db.db.read() as conn:
        result = aggregates.run(conn, account_id, _query(metric_id, interval=interval, tz="America/New_York",
                                                         by=("Campaign Name",)))
    table = {k: (c, round(s, 4), u) for k, (c, s, u) in _as_table(result).items()}
    assert table == _python_reference(rows, metric_id, "America/New_York", interval, ("Campaign Name",))
    if interval == "day":
        # 2024-03-10 has 23 hours in New York: its bucket is a local day, not 24 UTC hours.
        assert "2024-03-10T00:00:00-05:00" in result.dates and "2024-03-11T00:00:00-04:00" in result.dates


def test_dimension_filters_match(seeded):
    test_db, account_id, metric_id, rows = seeded
    extra = ["equals(Campaign Name,\"Spring\")", "not(starts-with(URL,\"https://b\"))"]
    with test_db.db.read() as conn:
        result = aggregates.run(conn, account_id, _query(metric_id, by=("URL",), extra=extra))

    def keep(r):
        url = r["properties"].get("URL")
        return r["properties"].get("Campaign Name") == "Spring" and not (url or "").startswith("https://b")

    # not(starts-with) on a missing URL is SQL NULL, which excludes the row: drop those too.
    expected = _python_reference([r for r in rows if r["properties"].get("URL") is not None], metric_id, "UTC",
                                 "day", ("URL",), keep)
    table = {k: (c, round(s, 4), u) for k, (c, s, u) in _as_table(result).items()}
    assert table == expected


def test_value_currency_dimension_and_sorting(seeded):
    test_db, account_id, metric_id, rows = seeded
    query = aggregates.build_query(metric_id=metric_id, measurements=["count"], interval="month",
                                   by=["$value_currency"],
                                   filters=["greater-or-equal(datetime,2024-02-20T00:00:00Z)",
                                            "less-than(datetime,2024-03-31T00:00:00Z)"],
                                   timezone="UTC", sort="-count", page_size=2)
    with test_db.db.read() as conn:
        result = aggregates.run(conn, account_id, query)
    totals = [sum(r["measurements"]["count"]) for r in result.rows]
    assert totals == sorted(totals, reverse=True) and len(result.rows) == 2 and result.has_more
    counts = defaultdict(int)
    for r in rows:
        if r["metric_id"] == metric_id:
            counts[r["value_currency"] or ""] += 1
    assert totals[0] == max(counts.values())


def test_no_events_gives_one_zero_row_without_by(seeded):
    test_db, account_id, _metric_id, _rows = seeded
    with test_db.db.write() as conn:
        empty = metric_rules.ensure_metric(conn, account_id, "Never", "api", datetime(2024, 5, 1, tzinfo=UTC))
    with test_db.db.read() as conn:
        result = aggregates.run(conn, account_id, _query(empty, interval="week"))
    assert result.rows == [{"dimensions": [], "measurements": {
        "count": [0.0] * len(result.dates), "sum_value": [0.0] * len(result.dates),
        "unique": [0.0] * len(result.dates)}}]
    assert result.dates[0] == "2024-02-19T00:00:00+00:00"  # the Monday of the week the range starts in


@pytest.mark.parametrize("filters,path", [
    (["equals(Campaign Name,\"x\")"], "filter"),
    (["greater-or-equal(datetime,2023-01-01T00:00:00)", "less-than(datetime,2024-06-01T00:00:00)"], "filter"),
    (["greater-or-equal(datetime,2024-01-02)", "less-than(datetime,2024-01-01)"], "filter"),
    (["greater-or-equal(datetime,2024-01-01)", "less-than(datetime,2024-01-02)", "equals(Nope,1)"], "filter"),
])
def test_bad_queries_name_the_attribute(filters, path):
    with pytest.raises(aggregates.AggregateError) as err:
        aggregates.build_query(metric_id="m", measurements=["count"], interval="day", by=None, filters=filters,
                               timezone="UTC", sort=None, page_size=None)
    assert err.value.path == path


def test_other_bad_attributes():
    ok = ["greater-or-equal(datetime,2024-01-01)", "less-than(datetime,2024-01-02)"]
    cases = [({"measurements": ["avg"]}, "measurements"), ({"interval": "year"}, "interval"),
             ({"timezone": "Mars/Base"}, "timezone"), ({"by": ["Nope"]}, "by"), ({"sort": "-count"}, None),
             ({"sort": "URL"}, "sort"), ({"page_size": 0}, "page_size")]
    for change, path in cases:
        kwargs = {"metric_id": "m", "measurements": ["count"], "interval": "day", "by": None, "filters": ok,
                  "timezone": "UTC", "sort": None, "page_size": None, **change}
        if path is None:
            aggregates.build_query(**kwargs)
            continue
        with pytest.raises(aggregates.AggregateError) as err:
            aggregates.build_query(**kwargs)
        assert err.value.path == path


def test_naive_filter_datetimes_are_read_in_the_query_timezone():
    query = aggregates.build_query(metric_id="m", measurements=["count"], interval="day", by=None,
                                   filters=["greater-or-equal(datetime,2024-07-01T00:00:00)",
                                            "less-than(datetime,2024-07-02T00:00:00)"],
                                   timezone="America/New_York", sort=None, page_size=None)
    assert query.start == datetime(2024, 7, 1, 4, tzinfo=UTC)
    assert query.end == datetime(2024, 7, 2, 4, tzinfo=UTC)
