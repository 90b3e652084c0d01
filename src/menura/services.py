"""The long-lived objects one process shares between requests and background work."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from menura import ids
from menura.clock import Clock, make_clock
from menura.jsonapi.pagination import CursorCodec
from menura.ratelimit import RateLimiter, make_rate_limiter
from menura.settings import Settings
from menura.store import server_state
from menura.store.db import Database
from menura.store.migrate import upgrade


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    rate_limiter: RateLimiter
    cursors: CursorCodec
    secret: bytes
    # Set when this process enqueues work, so an in-process worker picks it up at once.
    work_signal: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self.db.dispose()


def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    db = Database(settings.resolved_database_url)
    if migrate:
        upgrade(db)
    secret = settings.secret_key
    if not secret:
        with db.write() as conn:
            secret = server_state.get_or_create(conn, "secret_key", lambda: ids.token(32))
    secret_bytes = secret.encode()
    return Services(
        settings=settings,
        db=db,
        clock=make_clock(settings.clock, db),
        rate_limiter=make_rate_limiter(settings.rate_limit_scale, settings.redis_url),
        cursors=CursorCodec(secret_bytes),
        secret=secret_bytes,
    )
