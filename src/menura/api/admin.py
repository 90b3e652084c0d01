"""Menura's own operator endpoints under /menura (operator token): accounts, state reset, clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from menura.api.operation import Category, Ctx, Reply
from menura.domain import accounts, admin
from menura.engine import event_ingest
from menura.jsonapi import errors

api = Category("Menura")


class NewAccountBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    timezone: str = "UTC"
    preferred_currency: str = "USD"
    locale: str = "en-US"
    default_sender_email: str = ""
    test_account: bool = False


class ClockBody(msgspec.Struct, forbid_unknown_fields=True):
    set: datetime | None = None
    advance: str | None = None


@api.post("/menura/accounts", "menura_create_account", auth="operator", success=201)
def create_account(ctx: Ctx) -> dict[str, Any]:
    """Create an account with a full-access private key."""
    body = ctx.body(NewAccountBody)
    made = accounts.create_account(ctx.db, ctx.now(), name=body.name, timezone=body.timezone,
                                   currency=body.preferred_currency, locale=body.locale,
                                   sender_email=body.default_sender_email, test_account=body.test_account)
    return {"account_id": made.account_id, "private_api_key": made.private_api_key,
            "public_api_key": made.public_api_key}


@api.post("/menura/accounts/{id}/reset", "menura_reset_account", auth="operator")
def reset_account(ctx: Ctx) -> Reply:
    """Delete all of an account's data, keeping the account and its keys."""
    # Events still in the intake log were accepted before the reset: expand them, to delete them too.
    event_ingest.drain_intake_log(ctx.db, ctx.services.clock)
    if not admin.reset_account(ctx.db, ctx.path_params["id"]):
        raise errors.not_found(f"An account with id '{ctx.path_params['id']}' does not exist.")
    ctx.services.work_signal.set()
    return Reply(204)


@api.get("/menura/clock", "menura_get_clock", auth="operator")
def get_clock(ctx: Ctx) -> dict[str, Any]:
    """Read the clock."""
    return {"now": ctx.now().isoformat(), "virtual": ctx.services.clock.virtual}


@api.post("/menura/clock", "menura_set_clock", auth="operator")
def set_clock(ctx: Ctx) -> dict[str, Any]:
    """Set (`{"set": "2026-01-01T00:00:00Z"}`) or advance (`{"advance": "3d"}`) the virtual clock."""
    body = ctx.body(ClockBody)
    try:
        now = admin.change_clock(ctx.services.clock, set_to=body.set, advance=body.advance)
    except admin.ClockNotVirtual as exc:
        raise errors.ApiError(409, "clock_not_virtual", "The clock is not virtual.", str(exc)) from None
    except ValueError as exc:
        raise errors.invalid(str(exc), pointer="/advance") from None
    ctx.services.work_signal.set()  # due work may now run
    return {"now": now.isoformat(), "virtual": True}
