"""P5, the sending half: messages per second through Menura's send path against raw SMTP, to an
aiosmtpd sink on loopback (a separate process), over the same number of connections.

- limit: raw SMTP — pre-rendered ~20 KB messages handed to aiosmtplib over N connections, nothing else.
- ours: per recipient, render the personalized template (Menura's template language, the recipient's
  signed links), then `delivery.send_emails` in batches: CSS inlining, tracked links, text part, MIME,
  DKIM signature (RSA-2048), the pooled relay over N connections, and recording every message and its
  "Received Email" event in the database. Recipients are streamed in batches, never loaded at once.

    python -m bench.p5_smtp [--size 100000] [--connections 16] [--threads 2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import insert

from bench.common import free_port, print_table, scratch_database
from bench.template_render import build_template, contexts

BATCH = 200


def start_sink(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd's discarding handler in its own process, so the sink does not share our GIL."""
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c",
                             "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import socket

    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the SMTP sink did not start")


def raw_rate(port: int, messages: list[bytes], connections: int) -> float:
    import aiosmtplib

    async def worker(share: list[bytes]) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for data in share:
            await client.sendmail("bounces@shop.example", ["someone@example.org"], data)
        await client.quit()

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(worker(messages[i::connections]) for i in range(connections)))
        return len(messages) / (time.perf_counter() - started)

    return asyncio.run(run())


def make_profiles(db: object, account_id: str, count: int) -> list[tuple[str, str]]:
    from ulid import ULID

    from menura.store.profile_tables import profiles

    now = datetime.now(UTC)
    people = [(str(ULID()), f"user{i}-{uuid.uuid4().hex[:6]}@example.org") for i in range(count)]
    rows = [{"id": pid, "account_id": account_id, "email": email, "first_name": f"user{i}", "properties": {},
             "created": now, "updated": now, "email_consent": "SUBSCRIBED"} for i, (pid, email) in enumerate(people)]
    with db.write() as conn:  # type: ignore[attr-defined]
        for i in range(0, len(rows), 1000):
            conn.execute(insert(profiles), rows[i:i + 1000])
    return people


def sender_process(spec: dict, shard: int, ready: Any, go: Any, results: Any) -> None:
    """One sending process (a `menura worker` in production): streams the recipients by id cursor,
    takes every `shards`-th batch, renders and sends them with `threads` threads."""
    from sqlalchemy import select

    from menura import delivery
    from menura.delivery.context import delivery_context
    from menura.delivery.smtp import close_transports
    from menura.settings import Settings
    from menura.store.db import Database
    from menura.store.profile_tables import profiles
    from menura.templating import RenderEnv, compile_template

    db = Database(spec["url"])
    ctx = delivery_context(db, settings=Settings(**spec["settings"]))
    template = compile_template(build_template(spec["template_size"]))
    people = contexts(50)
    now = datetime.now(UTC)
    account_id = spec["account_id"]
    lock = threading.Lock()
    cursor = {"after": "", "batch": 0, "sent": 0}

    def next_batch() -> list[Any]:
        with lock:
            while True:
                query = (select(profiles.c.id, profiles.c.email).where(profiles.c.account_id == account_id,
                                                                         profiles.c.id > cursor["after"])
                         .order_by(profiles.c.id).limit(BATCH))
                with db.read() as conn:
                    rows = list(conn.execute(query))
                if not rows:
                    return []
                cursor["after"] = rows[-1].id
                cursor["batch"] += 1
                if (cursor["batch"] - 1) % spec["shards"] == shard:
                    return rows

    def jobs(rows: list[Any]) -> list[delivery.EmailJob]:
        out = []
        for i, row in enumerate(rows):
            key = f"campaign:P5:{row.id}"
            env = RenderEnv(now=now, links=ctx.links(account_id, delivery.tracking.delivery_id(account_id, key))
                            .template_links())
            html = template.render({**people[i % len(people)], "email": row.email}, env)
            message = delivery.OutgoingEmail(subject="Spring is here", from_email="news@shop.example",
                                             from_label="Shop", html=html, preview_text="New arrivals")
            out.append(delivery.EmailJob(account_id, row.id, row.email, message, key, {"$message": "P5"}))
        return out

    def run() -> None:
        while rows := next_batch():
            sent = sum(r.status == "sent" for r in delivery.send_emails(db, jobs(rows), context=ctx))
            with lock:
                cursor["sent"] += sent

    ready.wait()
    go.wait()
    threads = [threading.Thread(target=run) for _ in range(spec["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_transports()
    db.dispose()
    results.put((cursor["sent"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2000, help="recipients (P5 proper: 100000)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=1, help="sending processes (menura workers)")
    parser.add_argument("--threads", type=int, default=2, help="sender threads per process")
    parser.add_argument("--template-size", type=int, default=20_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)

    from menura import delivery
    from menura.delivery.context import delivery_context
    from menura.delivery.message import BuildEnv, build_email
    from menura.domain import accounts
    from menura.settings import Settings
    from menura.store.db import Database
    from menura.store.migrate import upgrade
    from menura.templating import RenderEnv, compile_template

    port = free_port()
    sink = start_sink(port)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = Path(tempfile.mkdtemp(prefix="menura-p5-")) / "dkim.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    try:
        with scratch_database(args.database_url) as url:
            db = Database(url)
            upgrade(db)
            now = datetime.now(UTC)
            account_id = accounts.create_account(db, now, name="P5 shop").account_id
            make_profiles(db, account_id, args.size)
            pool = max(1, args.connections // args.processes)
            settings = {"database_url": url, "secret_key": "p5-secret", "public_url": "https://t.shop.example",
                        "smtp_url": f"smtp://127.0.0.1:{port}?pool={pool}&starttls=false", "dkim_selector": "p5",
                        "dkim_domain": "shop.example", "dkim_private_key_path": str(key_file)}
            ctx = delivery_context(db, settings=Settings(**settings))

            # The limit: pre-rendered messages exactly like ours (same builder, signed), sent raw.
            template = compile_template(build_template(args.template_size))
            html = template.render(contexts(1)[0], RenderEnv(now=now, links=ctx.links(account_id, "x")
                                                            .template_links()))
            sample = delivery.OutgoingEmail(subject="Spring is here", from_email="news@shop.example",
                                            from_label="Shop", html=html, preview_text="New arrivals")
            built = build_email(sample, to="someone@example.org",
                                env=BuildEnv(links=ctx.links(account_id, "sample"), now=now, dkim=ctx.dkim))
            message_kb = len(built.raw) // 1024
            limit = raw_rate(port, [built.raw] * args.size, args.connections)
            db.dispose()

            spec = {"url": url, "settings": settings, "account_id": account_id, "shards": args.processes,
                    "threads": args.threads, "template_size": args.template_size}
            mp = multiprocessing.get_context("spawn")
            ready, go, results = mp.Barrier(args.processes + 1), mp.Event(), mp.Queue()
            procs = [mp.Process(target=sender_process, args=(spec, shard, ready, go, results))
                     for shard in range(args.processes)]
            for proc in procs:
                proc.start()
            ready.wait()  # every process has imported and set up: start the clock
            started = time.perf_counter()
            go.set()
            outcomes = [results.get() for _ in procs]
            ours = args.size / (time.perf_counter() - started)
            for proc in procs:
                proc.join()
            sent = sum(n for n, _ in outcomes)
            peak_mb = max(rss for _, rss in outcomes)
            assert sent == args.size, f"only {sent} of {args.size} sent"
    finally:
        sink.terminate()
        sink.wait(10)
    rows = [("P5 campaign send: render + build + DKIM + SMTP + record, "
             f"{args.connections} conns, {args.processes} proc x {args.threads} threads",
             f"{args.size} recipients, ~{message_kb} KB",
             f"{ours:,.0f} msgs/s (peak RSS/process {peak_mb:,.0f} MB)",
             f"{limit:,.0f} msgs/s raw SMTP, pre-rendered", f"{ours / limit:.2f}")]
    print(f"machine: {os.cpu_count()} cores, {datetime.now(UTC).date().isoformat()}")
    print_table(rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
