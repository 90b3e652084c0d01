"""P5, end to end: a real campaign send job. A list of N profiles, a personalized ~20 KB template, a
campaign sent with `send_campaign`, and `menura worker` processes running the durable send job
(audience streamed by profile-id cursor, recipient ledger, render once per recipient, delivery's
MIME + DKIM + pooled SMTP, outcome events) to an aiosmtpd sink on loopback (its own process).

- ours: recipients / (job finished - job started - pauses), from the send job's own timestamps.
- limit: raw SMTP, pre-rendered messages of the same size (same builder, DKIM-signed) handed to
  aiosmtplib over the same number of connections, to the same sink; sampled once before the send
  and every 45 s during it, with the workers paused (`RawSampler`), since the machine's speed drifts.
- peak RSS of the worker process, at each of `--rss-sizes`: streaming keeps it flat as N grows.

    python -m bench.p5_campaign_send [--size 2000] [--rss-sizes 2000,10000] [--connections 4]
                                     [--workers 2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import insert

from bench.common import free_port, print_table, scratch_database
from bench.p5_smtp import raw_rate, start_sink
from bench.template_render import build_template

ROOT = Path(__file__).resolve().parents[1]


def _dkim_key(directory: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "dkim.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _seed(url: str, size: int, template_size: int, batch: int, shards: int) -> tuple[str, str]:
    """(account id, campaign id) of a campaign ready to send to `size` subscribed profiles."""
    from ulid import ULID

    from menura.domain import accounts
    from menura.domain import campaign_jobs as jobs
    from menura.domain import campaigns as rules
    from menura.domain import lists as list_rules
    from menura.domain import templates as template_rules
    from menura.store import lists as list_store
    from menura.store.db import Database
    from menura.store.migrate import upgrade
    from menura.store.profile_tables import profiles

    db = Database(url)
    upgrade(db)
    now = datetime.now(UTC)
    account_id = accounts.create_account(db, now, name="P5 shop").account_id
    names = ["ann", "bob", "chloé", "dmitri", "eve", "farah", "gus", "hana"]
    ids: list[str] = []
    with db.write() as conn:
        for start in range(0, size, 5000):
            rows = []
            for i in range(start, min(size, start + 5000)):
                pid = str(ULID())
                ids.append(pid)
                rows.append({"id": pid, "account_id": account_id, "email": f"u{i}-{uuid.uuid4().hex[:6]}@example.org",
                             "first_name": names[i % len(names)], "created": now, "updated": now,
                             "properties": {"Loyalty Tier": ["gold", "silver"][i % 2], "Points": i % 500},
                             "email_consent": "SUBSCRIBED"})
            conn.execute(insert(profiles), rows)
    audience = list_rules.create_list(db, account_id, now, name="Everyone", opt_in_process="single_opt_in")
    with db.write() as conn:
        for start in range(0, len(ids), 5000):
            list_store.add_members(conn, account_id, audience.id, ids[start:start + 5000], now, report=False)
    del ids
    content = {"subject": "Spring is here, {{ first_name|title }}", "from_email": "news@shop.example",
               "from_label": "Shop", "preview_text": "New arrivals"}
    spec = rules.CampaignInput("P5", [audience.id], [], [rules.MessageInput("email", "Main", content)], None,
                               {"use_smart_sending": False})
    campaign_id = rules.create_campaign(db, account_id, now, spec, rules.TrackingDefaults())
    with db.write() as conn:
        template = template_rules.create_template(conn, account_id, now, name="P5", editor_type="CODE",
                                                  html=build_template(template_size))
    with db.read() as conn:
        message_id = rules.messages_of(conn, account_id, [campaign_id])[campaign_id][0].id
    rules.assign_template(db, account_id, message_id, template.id, now)
    jobs.send_campaign(db, account_id, campaign_id, datetime.now(UTC), batch_size=batch, shards=shards)
    db.dispose()
    return account_id, campaign_id


def _job(url: str, account_id: str, campaign_id: str) -> Any:
    from menura.store import campaigns as store
    from menura.store.db import Database

    db = Database(url)
    try:
        with db.read() as conn:
            return store.get_send_job(conn, account_id, campaign_id)
    finally:
        db.dispose()


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_send(url: str, size: int, args: argparse.Namespace, port: int, key: Path, log_dir: Path,
             stop_after: int = 0, sampler: RawSampler | None = None) -> dict[str, Any]:
    """Seed and send; with `stop_after`, stop once that many are sent (RSS samples of huge audiences).
    With `sampler`, the workers are paused now and then while it measures the raw rate; the pauses
    do not count in the send's time."""
    account_id, campaign_id = _seed(url, size, args.template_size, args.batch, args.workers)
    pool = max(1, args.connections // args.workers)
    env = {**os.environ, "MENURA_DATABASE_URL": url, "MENURA_CLOCK": "system", "MENURA_SECRET_KEY": "p5-secret",
           "MENURA_PUBLIC_URL": "https://t.shop.example", "MENURA_WORKER_POLL_SECONDS": "0.05",
           "MENURA_SMTP_URL": f"smtp://127.0.0.1:{port}?pool={pool}&starttls=false",
           "MENURA_DKIM_SELECTOR": "p5", "MENURA_DKIM_DOMAIN": "shop.example",
           "MENURA_DKIM_PRIVATE_KEY_PATH": str(key),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    procs = []
    for n in range(args.workers):
        log = (log_dir / f"worker-{size}-{n}.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "menura.worker"], env=env, stdout=log, stderr=log))
    peak = 0.0
    pauses: list[tuple[datetime, float]] = []  # (when a pause began, its seconds)
    next_sample = time.monotonic() + (sampler.every if sampler else 0)
    try:
        while True:
            peak = max(peak, *(_peak_rss_mb(p.pid) for p in procs))
            job = _job(url, account_id, campaign_id)
            if job.status in ("complete", "cancelled") or (stop_after and job.sent >= stop_after):
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a worker died; see {log_dir}")
            if sampler is not None and time.monotonic() >= next_sample:
                pauses.append((datetime.now(UTC), sampler.sample_while_paused(procs)))
                next_sample = time.monotonic() + sampler.every
            time.sleep(0.5)
    finally:
        for p in procs:
            peak = max(peak, _peak_rss_mb(p.pid))
            p.terminate()
            p.wait(30)
    finished = job.finished_at or datetime.now(UTC)
    # Only the part of a pause before the job finished was taken out of its time.
    paused = sum(min(length, max(0.0, (finished - began).total_seconds())) for began, length in pauses)
    seconds = (finished - job.started_at).total_seconds() - paused
    return {"sent": job.sent, "rate": job.sent / seconds, "seconds": seconds, "peak_mb": peak}


@dataclass
class RawSampler:
    """The limit, sampled through the send: this machine's speed drifts by up to 2x within minutes,
    so one raw measurement before (or after) a long send compares it with another machine. Every
    `every` seconds the worker processes are stopped (SIGSTOP), `count` pre-built messages are sent
    raw over the same number of connections, and the workers continue (SIGCONT)."""

    port: int
    message: bytes
    connections: int
    every: float = 45.0
    count: int = 2000
    sent: int = 0
    seconds: float = 0.0

    def sample(self) -> None:
        started = time.perf_counter()
        raw_rate(self.port, [self.message] * self.count, self.connections)
        self.seconds += time.perf_counter() - started
        self.sent += self.count

    def sample_while_paused(self, procs: list[subprocess.Popen[bytes]]) -> float:
        started = time.perf_counter()
        for p in procs:
            os.kill(p.pid, signal.SIGSTOP)
        try:
            self.sample()
        finally:
            for p in procs:
                os.kill(p.pid, signal.SIGCONT)
        return time.perf_counter() - started

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


def _sample_message(template_size: int, key: Path) -> bytes:
    """One recipient's signed message, built as delivery builds it: what the raw sender sends."""
    from menura import delivery
    from menura.delivery.context import delivery_context
    from menura.delivery.message import BuildEnv, build_email
    from menura.settings import Settings
    from menura.store.db import Database
    from menura.templating import RenderEnv, compile_template

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'limit.db'}")
        settings = Settings(secret_key="p5-secret", public_url="https://t.shop.example", dkim_selector="p5",
                            dkim_domain="shop.example", dkim_private_key_path=str(key))
        ctx = delivery_context(db, settings=settings)
        now = datetime.now(UTC)
        html = compile_template(build_template(template_size)).render(
            {"first_name": "ann", "person": {"Loyalty Tier": "gold", "Points": 7}},
            RenderEnv(now=now, links=ctx.links("P5", "x").template_links()))
        sample = delivery.OutgoingEmail(subject="Spring is here, Ann", from_email="news@shop.example",
                                        from_label="Shop", html=html, preview_text="New arrivals")
        built = build_email(sample, to="someone@example.org",
                            env=BuildEnv(links=ctx.links("P5", "sample"), now=now, dkim=ctx.dkim))
        db.dispose()
    return built.raw


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2000, help="recipients (P5 proper: 100000)")
    parser.add_argument("--rss-sizes", default="", help="comma-separated sizes whose peak RSS is compared "
                                                        "(P5 proper: 100000,1000000); default: --size and 5x")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (and send shards)")
    parser.add_argument("--batch", type=int, default=250, help="recipients per send batch")
    parser.add_argument("--rss-sample", type=int, default=0,
                        help="for RSS sizes above --size, stop after this many sends (0: send them all)")
    parser.add_argument("--template-size", type=int, default=20_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.rss_sizes.split(",") if s] or [args.size, args.size * 5]
    port = free_port()
    sink = start_sink(port)
    work_dir = Path(tempfile.mkdtemp(prefix="menura-p5c-"))
    key = _dkim_key(work_dir)
    runs: dict[int, dict[str, Any]] = {}
    try:
        sampler = RawSampler(port, _sample_message(args.template_size, key), args.connections)
        sampler.sample()  # one sample before the send too
        for size in dict.fromkeys([args.size, *sizes]):
            with scratch_database(args.database_url) as url:
                stop = args.rss_sample if size > args.size else 0
                runs[size] = run_send(url, size, args, port, key, work_dir, stop,
                                      sampler if size == args.size else None)
                assert runs[size]["sent"] >= (stop or size), f"only {runs[size]['sent']} of {size} sent"
    finally:
        sink.terminate()
        sink.wait(10)
    main_run = runs[args.size]
    database = "PostgreSQL" if (args.database_url or "").startswith("postgres") else "SQLite"
    rss = ", ".join(f"{runs[s]['peak_mb']:,.0f} MB at {s:,}"
                    + (f" (first {runs[s]['sent']:,} sent)" if runs[s]["sent"] < s else "") for s in sizes)
    rows = [(f"P5 campaign send job ({database}): ledger + render + MIME + DKIM + SMTP + events, "
             f"{args.connections} conns, {args.workers} worker(s)",
             f"{args.size:,} recipients, ~{len(sampler.message) // 1024} KB",
             f"{main_run['rate']:,.0f} msgs/s; worker peak RSS {rss}",
             f"{sampler.rate:,.0f} msgs/s raw SMTP, pre-rendered ({sampler.sent:,} messages sampled before and "
             f"during the send)", f"{main_run['rate'] / sampler.rate:.2f}")]
    print(f"machine: {os.cpu_count()} cores, {datetime.now(UTC).date().isoformat()}")
    print_table(rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
