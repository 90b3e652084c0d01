"""The `menura` command. Every option also reads a MENURA_<OPTION> environment variable."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from menura.clock import SystemClock, VirtualClock, parse_duration
from menura.settings import Settings

_DB_OPTION = click.option("--database-url", envvar="MENURA_DATABASE_URL", default=None,
                          help="SQLAlchemy URL; default: SQLite under ./menura-data/.")


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line options on top (kept in the environment
    too, so uvicorn's worker processes see the same values)."""
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"MENURA_{name.upper()}"] = str(value)
    return Settings()


def _db(settings: Settings) -> Any:
    from menura.store.db import Database
    from menura.store.migrate import upgrade

    db = Database(settings.resolved_database_url)
    upgrade(db)
    return db


def _now() -> Any:
    return SystemClock().now()


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


@click.group()
def main() -> None:
    """Menura: self-hostable marketing automation with a Klaviyo-compatible API."""


@main.command()
@_DB_OPTION
@click.option("--host", envvar="MENURA_HOST", default=None)
@click.option("--port", envvar="MENURA_PORT", type=int, default=None)
@click.option("--workers", envvar="MENURA_WORKERS", type=int, default=None, help="API processes.")
@click.option("--rate-limits", envvar="MENURA_RATE_LIMITS", default=None, help="off | klaviyo | scale:N")
@click.option("--clock", envvar="MENURA_CLOCK", type=click.Choice(["system", "virtual"]), default=None)
@click.option("--redis-url", envvar="MENURA_REDIS_URL", default=None)
@click.option("--no-worker", is_flag=True, default=False, help="Don't run background work in this process.")
def serve(database_url: str | None, host: str | None, port: int | None, workers: int | None,
          rate_limits: str | None, clock: str | None, redis_url: str | None, no_worker: bool) -> None:
    """Run the API server (embedded default: SQLite and an in-process worker)."""
    import uvicorn

    from menura.domain import keys

    settings = _settings(database_url=database_url, host=host, port=port, workers=workers,
                         rate_limits=rate_limits, clock=clock, redis_url=redis_url,
                         run_worker=False if no_worker else None)
    db = _db(settings)
    key, account_id = _default_key(settings, db)
    operator = keys.operator_token(db, settings.operator_token)
    db.dispose()
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"Menura {base}  (database: {settings.resolved_database_url})")
    click.echo(f"  account:          {account_id}  (public API key / company_id)")
    click.echo(f"  private API key:  {key}")
    click.echo(f"  operator token:   {operator}")
    click.echo(f'  try: curl -H "Authorization: Klaviyo-API-Key {key}" -H "revision: 2026-07-15" '
               f"{base}/api/accounts")
    sys.stdout.flush()
    if settings.workers > 1:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="menura-metrics-"))
        uvicorn.run("menura.app:factory", factory=True, host=settings.host, port=settings.port,
                    workers=settings.workers, log_level="warning")
    else:
        from menura.app import create_app

        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


def _default_key(settings: Settings, db: Any) -> tuple[str, str]:
    """The key `make serve` prints: kept in the data directory so restarts print the same key."""
    from menura.domain import accounts, keys
    from menura.store import accounts as store

    path = settings.data_dir / "default-api-key.json"
    if path.exists():
        saved = json.loads(path.read_text())
        with db.read() as conn:
            row = store.find_key_by_hash(conn, keys.hash_key(saved["private_api_key"]))
        if row is not None and row.revoked_at is None:
            return saved["private_api_key"], saved["account_id"]
    with db.read() as conn:
        existing = store.list_accounts(conn)
    if existing:
        account_id = existing[0].id
        _, key = keys.create_key(db, account_id, _now(), label="make serve")
    else:
        made = accounts.create_account(db, _now(), name="Default")
        account_id, key = made.account_id, made.private_api_key
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"account_id": account_id, "private_api_key": key}))
    path.chmod(0o600)
    return key, account_id


@main.command()
@_DB_OPTION
def worker(database_url: str | None) -> None:
    """Run a background worker process (production: several, on PostgreSQL)."""
    from menura import worker as runtime

    runtime.main(_settings(database_url=database_url))


@main.command()
@_DB_OPTION
def migrate(database_url: str | None) -> None:
    """Create or upgrade the database schema."""
    settings = _settings(database_url=database_url)
    _db(settings).dispose()
    click.echo(f"migrated {settings.resolved_database_url}")


@main.group()
def accounts() -> None:
    """Manage accounts."""


@accounts.command("create")
@_DB_OPTION
@click.option("--name", required=True)
@click.option("--timezone", default="UTC")
@click.option("--currency", default="USD")
@click.option("--json", "as_json", is_flag=True)
def accounts_create(database_url: str | None, name: str, timezone: str, currency: str, as_json: bool) -> None:
    """Create an account and its first full-access private key."""
    from menura.domain import accounts as rules

    made = rules.create_account(_db(_settings(database_url=database_url)), _now(), name=name,
                                timezone=timezone, currency=currency)
    _emit({"account_id": made.account_id, "private_api_key": made.private_api_key,
           "public_api_key": made.public_api_key}, as_json)


@accounts.command("list")
@_DB_OPTION
@click.option("--json", "as_json", is_flag=True)
def accounts_list(database_url: str | None, as_json: bool) -> None:
    """List accounts."""
    from menura.store import accounts as store

    with _db(_settings(database_url=database_url)).read() as conn:
        rows = [{"account_id": r.id, "name": r.name} for r in store.list_accounts(conn)]
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            click.echo(f"{row['account_id']}  {row['name']}")


@main.group()
def keys() -> None:
    """Manage private API keys."""


@keys.command("create")
@_DB_OPTION
@click.option("--account", "account_id", required=True)
@click.option("--scopes", default=None, help="e.g. profiles:read,lists:write; default full access")
@click.option("--label", default="")
@click.option("--json", "as_json", is_flag=True)
def keys_create(database_url: str | None, account_id: str, scopes: str | None, label: str,
                as_json: bool) -> None:
    """Create a private API key, optionally scoped."""
    from menura.domain import keys as rules

    try:
        scope_list = rules.parse_scopes(scopes)
        key_id, key = rules.create_key(_db(_settings(database_url=database_url)), account_id, _now(),
                                       scopes=scope_list, label=label)
    except (ValueError, LookupError) as exc:
        raise click.ClickException(str(exc)) from None
    _emit({"key_id": key_id, "private_api_key": key, "account_id": account_id,
           "scopes": scope_list if scope_list is not None else "full access"}, as_json)


@keys.command("revoke")
@_DB_OPTION
@click.argument("key_or_id")
def keys_revoke(database_url: str | None, key_or_id: str) -> None:
    """Revoke a private key, given the key itself or its id."""
    from menura.domain import keys as rules

    if not rules.revoke_key(_db(_settings(database_url=database_url)), key_or_id, _now()):
        raise click.ClickException("no such active key")
    click.echo("revoked")


@main.group()
def clock() -> None:
    """Read, set or advance the virtual clock (servers started with --clock virtual)."""


def _virtual(database_url: str | None) -> VirtualClock:
    return VirtualClock(_db(_settings(database_url=database_url)))


@clock.command("now")
@_DB_OPTION
def clock_now(database_url: str | None) -> None:
    click.echo(_virtual(database_url).now().isoformat())


@clock.command("set")
@_DB_OPTION
@click.argument("when")
def clock_set(database_url: str | None, when: str) -> None:
    from datetime import datetime

    click.echo(_virtual(database_url).set(datetime.fromisoformat(when)).isoformat())


@clock.command("advance")
@_DB_OPTION
@click.argument("duration")
def clock_advance(database_url: str | None, duration: str) -> None:
    """Advance by a duration such as 3d, 1h30m or 90s."""
    try:
        delta = parse_duration(duration)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(_virtual(database_url).advance(delta).isoformat())


@main.group()
def templates() -> None:
    """Import and export email templates (HTML files, hybrid templates with editable regions)."""


def _template_account(db: Any, account_id: str | None) -> str:
    from menura.store import accounts as store

    with db.read() as conn:
        if account_id is not None:
            if not store.account_exists(conn, account_id):
                raise click.ClickException(f"no account {account_id}")
            return account_id
        rows = store.list_accounts(conn)
    if len(rows) != 1:
        raise click.ClickException("several accounts exist: choose one with --account" if rows else "no account yet")
    return str(rows[0].id)


@templates.command("import")
@_DB_OPTION
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--hybrid", is_flag=True, help="A hybrid template (USER_DRAGGABLE) with editable regions.")
@click.option("--name", default=None, help="Template name; default: the file name without extension.")
@click.option("--account", "account_id", default=None, help="Account id; needed when there are several.")
@click.option("--json", "as_json", is_flag=True)
def templates_import(database_url: str | None, file: Path, hybrid: bool, name: str | None, account_id: str | None,
                     as_json: bool) -> None:
    """Create a template from an HTML file, stored byte for byte."""
    from menura.domain import templates as rules
    from menura.jsonapi.errors import ApiError
    from menura.templating import hybrid as markup

    try:
        html = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text") from None
    if hybrid and not markup.is_hybrid(html):
        raise click.ClickException(f'{file} has no editable region (data-klaviyo-region="true")')
    db = _db(_settings(database_url=database_url))
    account = _template_account(db, account_id)
    try:
        with db.write() as conn:
            row = rules.create_template(conn, account, _now(), name=name or file.stem,
                                        editor_type="USER_DRAGGABLE" if hybrid else "CODE", html=html)
    except ApiError as exc:
        raise click.ClickException(exc.detail) from None
    _emit({"template_id": row.id, "account_id": account, "name": row.name, "editor_type": row.editor_type,
           "regions": len(markup.regions(html))}, as_json)


@templates.command("export")
@_DB_OPTION
@click.argument("template_id")
@click.option("--account", "account_id", default=None, help="Account id; needed when there are several.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
def templates_export(database_url: str | None, template_id: str, account_id: str | None,
                     output: Path | None) -> None:
    """Write a template's HTML exactly as stored."""
    from menura.domain import templates as rules
    from menura.jsonapi.errors import ApiError

    db = _db(_settings(database_url=database_url))
    account = _template_account(db, account_id)
    try:
        with db.read() as conn:
            html = rules.get_template(conn, account, template_id).html
    except ApiError as exc:
        raise click.ClickException(exc.detail) from None
    data = html.encode("utf-8")
    if output is not None:
        output.write_bytes(data)
    else:
        click.echo(data, nl=False)


@main.command()
@_DB_OPTION
@click.option("--account", "account_id", default=None, help="Only this account's messages.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--show", "show_id", default=None, help="Print one message's source (MIME for email).")
@click.option("--json", "as_json", is_flag=True)
def outbox(database_url: str | None, account_id: str | None, limit: int, show_id: str | None, as_json: bool) -> None:
    """Browse captured messages (no SMTP relay / SMS provider configured) and sent ones."""
    from menura.delivery import outbox as box

    with _db(_settings(database_url=database_url)).read() as conn:
        if show_id is not None:
            raw = box.raw_message(conn, show_id)
            if raw is None:
                raise click.ClickException(f"no captured message with id {show_id}")
            click.echo(raw.decode("utf-8", "replace"))
            return
        items = box.entries(conn, account_id=account_id, limit=limit)
    if as_json:
        click.echo(json.dumps([{"id": e.id, "account_id": e.account_id, "channel": e.channel, "to": e.to,
                                "from": e.sender, "subject": e.subject, "status": e.status,
                                "created": e.created.isoformat()} for e in items]))
        return
    for e in items:
        click.echo(f"{e.created:%Y-%m-%d %H:%M:%S}  {e.id}  {e.channel:5}  {e.status:9}  {e.to}  {e.subject}")


@main.command()
@_DB_OPTION
@click.option("--listen", default="127.0.0.1:2525", show_default=True, help="HOST:PORT for inbound SMTP.")
def bounces(database_url: str | None, listen: str) -> None:
    """Receive bounces (DSN), complaint reports and mailto unsubscribes over SMTP: point the bounce
    domain's MX (MENURA_BOUNCE_DOMAIN, else the From domain) here."""
    import time

    from aiosmtpd.controller import Controller

    from menura.delivery.bounces import InboundSmtpHandler
    from menura.delivery.context import delivery_context

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise click.ClickException("--listen must be HOST:PORT")
    settings = _settings(database_url=database_url)
    db = _db(settings)
    controller = Controller(InboundSmtpHandler(db, delivery_context(db, settings=settings)), hostname=host,
                            port=int(port))
    controller.start()
    click.echo(f"receiving bounces on {host}:{port} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()


__all__ = ["Path", "main"]
