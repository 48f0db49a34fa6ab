"""`livestage` command line: serve, migrate, accounts, emulator, 100ms checks.

Commands import what they use when they run: `livestage --help` and a mistyped command answer
without loading the database, password hashing or Alembic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from livestage.errors import LivestageError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from livestage.accounts.service import NewAdmin
    from livestage.config import Settings

app = typer.Typer(
    help="livestage: live-streaming backbone for creator platforms.", no_args_is_help=True
)
admin_app = typer.Typer(help="Admin accounts.", no_args_is_help=True)
influencer_app = typer.Typer(help="Influencer accounts.", no_args_is_help=True)
hms_app = typer.Typer(help="100ms credentials and tokens.", no_args_is_help=True)
webhooks_app = typer.Typer(help="100ms webhooks: secret, replay.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(influencer_app, name="influencer")
app.add_typer(hms_app, name="hms")
app.add_typer(webhooks_app, name="webhooks")

T = TypeVar("T")


def _run(work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    from livestage.config import Settings

    settings = Settings()
    try:
        return asyncio.run(work(settings))
    except LivestageError as error:
        typer.secho(f"error: {error.message}", fg="red", err=True)
        raise typer.Exit(1) from error


@asynccontextmanager
async def _transaction(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One transaction on a database of its own, as every command that writes needs."""
    from livestage.db import create_engine, create_sessionmaker, transaction

    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            yield session
    finally:
        await engine.dispose()


def _print_admin(new: NewAdmin, password: str | None) -> None:
    from livestage.accounts import totp

    typer.echo(f"admin email:    {new.user.email}")
    if password:
        typer.echo(f"admin password: {password}")
    typer.echo(f"secret key (TOTP) provisioning URI:\n  {new.provisioning_uri}")
    typer.echo("scan this with an authenticator app (Google Authenticator, 1Password, Aegis…):")
    typer.echo(totp.terminal_qr(new.provisioning_uri))


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply database migrations (the only way livestage makes its schema)."""
    from livestage import migrate as migrations
    from livestage.config import Settings

    settings = Settings()
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database migrated to {migrations.head_revision()}")


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option(prompt=True)],
    name: Annotated[str, typer.Option(prompt=True)] = "Admin",
    password: Annotated[
        str | None, typer.Option(help="Leave out to generate a strong one.")
    ] = None,
) -> None:
    """Create an admin; prints the TOTP provisioning URI and a terminal QR code."""
    from livestage.accounts.service import account as account_service
    from livestage.kit.crypto import SecretBox

    chosen = password or secrets.token_urlsafe(12)

    async def work(settings: Settings) -> NewAdmin:
        async with _transaction(settings) as session:
            box = SecretBox(settings.secret_keys)
            return await account_service.create_admin(
                session, box, email=email, password=chosen, name=name
            )

    new = _run(work)
    _print_admin(new, None if password else chosen)


@admin_app.command("totp")
def admin_totp(email: Annotated[str, typer.Option(prompt=True)]) -> None:
    """Print the admin's secret-key code for right now (valid about 30 s)."""
    from livestage.accounts.service import account as account_service
    from livestage.kit.crypto import SecretBox
    from livestage.kit.time import utc_now

    async def work(settings: Settings) -> str:
        async with _transaction(settings) as session:
            box = SecretBox(settings.secret_keys)
            return await account_service.current_totp_code(session, box, email=email, now=utc_now())

    typer.echo(_run(work))


@influencer_app.command("create")
def influencer_create(
    email: Annotated[str, typer.Option(prompt=True)],
    handle: Annotated[str, typer.Option(prompt=True)],
    name: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create an influencer account (streaming enabled)."""
    from livestage.audit.service import Actor
    from livestage.influencers.service import influencer as influencer_service
    from livestage.kit.time import utc_now

    async def work(settings: Settings) -> str | None:
        async with _transaction(settings) as session:
            created, generated = await influencer_service.create(
                session,
                Actor(None, "cli"),
                email=email,
                name=name,
                handle=handle,
                password=password,
                now=utc_now(),
            )
            typer.echo(f"influencer @{created.handle} created ({created.user.email})")
            return generated

    generated = _run(work)
    if generated:
        typer.echo(f"password: {generated}")


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt stored secrets with LIVESTAGE_SECRET_KEY (old keys in ..._FALLBACKS)."""
    from livestage.accounts.service import account as account_service
    from livestage.influencers.service import influencer as influencer_service
    from livestage.kit.crypto import SecretBox

    async def work(settings: Settings) -> tuple[int, int]:
        box = SecretBox(settings.secret_keys)
        async with _transaction(settings) as session:
            totps = await account_service.reencrypt_secrets(session, box)
            tokens = await influencer_service.reencrypt_tokens(session, box)
            return totps, tokens

    totps, tokens = _run(work)
    typer.echo(f"re-encrypted {totps} TOTP secrets and {tokens} auth tokens with the primary key")


@hms_app.command("setup")
def hms_setup(name: str = "livestage") -> None:
    """Create (or overwrite) the 100ms template livestage needs; prints its id."""
    from livestage.providers.hms.provider import HmsProvider

    async def work(settings: Settings) -> str:
        provider = HmsProvider.from_settings(settings)
        try:
            return await provider.ensure_template(
                name,
                broadcaster_role=settings.hms_broadcaster_role,
                viewer_role=settings.hms_viewer_role,
            )
        finally:
            await provider.aclose()

    template_id = _run(work)
    typer.echo(f"template {name!r} ready: set LIVESTAGE_HMS_TEMPLATE_ID={template_id}")


@app.command()
def reconcile() -> None:
    """Ask 100ms about every stream livestage thinks is live, and repair what webhooks missed."""
    from livestage.tracking.offline import reconcile_once

    report = _run(reconcile_once)
    typer.echo(
        f"checked {report.checked} streams: ended {len(report.ended)}, closed "
        f"{report.peers_closed} peers"
    )
    for error in report.errors:
        typer.secho(f"  could not check {error}", fg="yellow")


@webhooks_app.command("replay")
def webhooks_replay(
    since: Annotated[str, typer.Option(help="RFC 3339 start, e.g. 2026-11-21T10:00:00Z")],
    until: Annotated[str | None, typer.Option(help="RFC 3339 end (default: now)")] = None,
) -> None:
    """Pull events from 100ms's webhook history into the inbox (duplicates are skipped)."""
    from livestage.kit.time import parse_rfc3339, utc_now
    from livestage.tracking.offline import replay_history

    try:
        start = parse_rfc3339(since)
        end = parse_rfc3339(until) if until else utc_now()
    except ValueError as error:
        raise typer.BadParameter(f"not an RFC 3339 time: {error}") from error
    result = _run(lambda settings: replay_history(settings, since=start, until=end))
    typer.echo(
        f"read {result.read} events: {result.new} new, {result.duplicates} already stored; "
        f"applied {result.applied}"
    )


@webhooks_app.command("secret")
def webhooks_secret() -> None:
    """The header 100ms must send (set it on the dashboard's workspace webhook if you use one)."""
    from livestage.config import Settings
    from livestage.tracking.verification import WEBHOOK_SECRET_HEADER, webhook_secret

    typer.echo(f"{WEBHOOK_SECRET_HEADER}: {webhook_secret(Settings())}")


def access_logged(log_level: str) -> bool:
    """Whether uvicorn's access log is on: at INFO (its lines' level) and below."""
    level: int = logging.getLevelNamesMapping()[log_level.upper()]
    return level <= logging.INFO


@app.command()
def serve(
    host: str = "127.0.0.1", port: int = 8000, reload: bool = False, workers: int = 1
) -> None:
    """Serve the web app with uvicorn (several --workers need PostgreSQL and Redis)."""
    import uvicorn

    from livestage.analytics.metrics import MULTIPROCESS_DIR
    from livestage.config import Settings, split_list

    settings = Settings()
    if problem := settings.cluster_problem(processes=workers):
        typer.secho(f"cannot start: {problem}", fg="red", err=True)
        raise typer.Exit(2)
    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: anyone on this machine, or
    # behind no proxy at all, could pick the address the sign-in throttle counts.
    trusted = split_list(settings.trusted_proxies)
    with contextlib.ExitStack() as stack:
        if workers > 1 and not os.environ.get(MULTIPROCESS_DIR):
            # Each worker keeps its metrics in files here; /metrics adds them up.
            metrics = tempfile.TemporaryDirectory(prefix="livestage-metrics-")
            os.environ[MULTIPROCESS_DIR] = stack.enter_context(metrics)
        uvicorn.run(
            "livestage.app:create_served_app",
            factory=True,
            host=host,
            port=port,
            reload=reload,
            workers=workers,
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or None,
            timeout_graceful_shutdown=5,
            # LIVESTAGE_LOG_LEVEL governs uvicorn's loggers too. Above INFO the access log is
            # off, not merely filtered: uvicorn formats each line's arguments (client address,
            # quoted path) for every response before its logger drops them.
            log_level=settings.log_level.lower(),
            access_log=access_logged(settings.log_level),
        )


@app.command()
def up(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Quick start: migrate, create the demo admin and influencer, print their sign-in, serve."""
    from livestage import migrate as migrations
    from livestage.accounts import totp
    from livestage.config import Settings
    from livestage.demo import ensure_demo_accounts
    from livestage.providers.factory import describe_choice

    settings = Settings()
    migrations.upgrade(settings.database_url)
    demo = asyncio.run(ensure_demo_accounts(settings))
    typer.echo(demo.describe(base_url=f"http://{host}:{port}"))
    typer.echo(totp.terminal_qr(demo.admin_provisioning_uri))
    typer.echo(describe_choice(settings))
    serve(host=host, port=port)


@app.command()
def emulator(
    host: str = "127.0.0.1",
    port: int = 8700,
    access_key: Annotated[str | None, typer.Option(envvar="LIVESTAGE_HMS_ACCESS_KEY")] = None,
    app_secret: Annotated[str | None, typer.Option(envvar="LIVESTAGE_HMS_APP_SECRET")] = None,
    webhook_url: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Run the local 100ms emulator (REST subset, room-code exchange, webhooks, faults)."""
    from hms_emulator.server import run_emulator

    if not access_key or not app_secret:
        typer.secho(
            "set LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET (any values you like: "
            "livestage and the emulator must share them)",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    typer.echo(
        f"100ms emulator on http://{host}:{port}: set LIVESTAGE_HMS_API_URL=http://{host}:{port}/v2"
        f" and LIVESTAGE_HMS_AUTH_URL=http://{host}:{port}/auth/v2"
    )
    run_emulator(
        host=host, port=port, access_key=access_key, app_secret=app_secret, webhook_url=webhook_url
    )


@hms_app.command("check")
def hms_check() -> None:
    """Tell whether the configured 100ms credentials work (never prints a secret)."""
    from livestage.providers.hms.check import check_credentials

    report = _run(check_credentials)
    for line in report.lines:
        mark = typer.style("ok  ", fg="green") if line.ok else typer.style("FAIL", fg="red")
        typer.echo(f"{mark} {line.what}: {line.detail}")
    raise typer.Exit(0 if report.ok else 1)


@hms_app.command("mint-token")
def hms_mint_token(
    room_id: str,
    role: str = "broadcaster",
    user_id: str = "debug",
    ttl_minutes: Annotated[int, typer.Option(min=1, max=90 * 24 * 60)] = 60,
) -> None:
    """Mint a debug 100ms auth token for a room and role (printed once, to stdout)."""
    from livestage.config import Settings
    from livestage.kit.time import utc_now
    from livestage.providers.hms.tokens import mint_auth_token

    settings = Settings()
    if not settings.hms_configured:
        typer.secho("set LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET", fg="red", err=True)
        raise typer.Exit(2)
    typer.echo(
        mint_auth_token(
            access_key=settings.hms_access_key,
            app_secret=settings.hms_app_secret.get_secret_value(),
            room_id=room_id,
            role=role,
            user_id=user_id,
            ttl=timedelta(minutes=ttl_minutes),
            now=utc_now(),
        )
    )


if __name__ == "__main__":
    app()
