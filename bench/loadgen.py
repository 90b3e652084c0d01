"""A lean HTTP/1.1 load generator: N keep-alive connections, each sending one request at a time,
for a fixed duration; prints requests/s, latency percentiles and status counts as JSON.

Run as `python -m bench.loadgen URL PATH DURATION CONCURRENCY HEADERS_JSON BODY_TEMPLATE [POOL]`. The
body template's `{n}` is replaced by a per-request counter, so every request carries different data,
and `{p}` by the counter modulo POOL (e.g. which of POOL customers sends it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from urllib.parse import urlsplit


async def _connection(host: str, port: int, make: object, stop_at: float, warm_until: float,
                      latencies: list[float], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            request = make()  # type: ignore[operator]
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if now >= warm_until:
                latencies.append(time.perf_counter() - now)
                statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def run(url: str, path: str, duration: float, concurrency: int, headers: dict[str, str],
              template: str, pool: int = 1, warmup: float = 2.0) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counter = itertools.count()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    def make() -> bytes:
        n = next(counter)
        body = template.replace("{n}", str(n)).replace("{p}", str(n % pool)).encode()
        return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}Content-Length: {len(body)}\r\n\r\n").encode() + body

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    warm_until = start + warmup
    stop_at = warm_until + duration
    await asyncio.gather(*(_connection(host, port, make, stop_at, warm_until, latencies, statuses)
                           for _ in range(concurrency)))
    latencies.sort()
    count = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(count - 1, int(p * count))] * 1000 if count else 0.0

    return {"requests": count, "rps": count / duration, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "statuses": statuses}


def main() -> None:
    url, path, duration, concurrency, headers, template = sys.argv[1:7]
    pool = int(sys.argv[7]) if len(sys.argv) > 7 else 1
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    result = asyncio.run(run(url, path, float(duration), int(concurrency), json.loads(headers), template, pool))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
