"""`ir serve` and `ir users …`."""

from __future__ import annotations

import json
from datetime import timedelta

import click


@click.command()
@click.option("--host", help="default: IR_HOST or 127.0.0.1")
@click.option("--port", type=int, help="default: IR_PORT or 8000")
def serve(host: str | None, port: int | None) -> None:
    """Serve the API (/api, OpenAPI at /docs), the console and, on the embedded default, the timers."""
    from ir.adapters.db.engine import make_engine
    from ir.adapters.db.schema import require_migrated
    from ir.config import Settings
    from ir.entrypoints.http.app import create_app
    from ir.entrypoints.http.serving import serve as serve_until_stopped

    settings = Settings()
    require_migrated(make_engine(settings.database_url))
    host = host or settings.host
    port = port or settings.port
    click.echo(f"ir: serving on http://{host}:{port}/  (console; API under /api, OpenAPI at /docs)", err=True)
    click.echo(
        "ir: sign in as 'admin' (its one-time password is printed below on the first start; "
        "`ir users reset admin` gives a new one). Ctrl-C stops the server.",
        err=True,
    )
    if not serve_until_stopped(create_app(settings), host=host, port=port, grace=20):
        raise click.ClickException(f"the server could not start on {host}:{port} / 无法在 {host}:{port} 启动服务")
    click.echo("ir: stopped / 已停止", err=True)


@click.group()
def users() -> None:
    """People who sign in: add, list, disable, reset; API tokens."""


@users.command(name="add")
@click.argument("user_id")
@click.option("--name", "display_name", default="")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="admin, commander, responder, communications, observer, auditor (repeatable)",
)
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), default="zh-CN")
@click.password_option(help="at least 12 characters (asked for when not given)")
def add(user_id: str, display_name: str, roles: tuple[str, ...], lang: str, password: str) -> None:
    """Add a user."""
    from ir.entrypoints.cli.incident_commands import _actor, _app

    app = _app()
    with app.db.uow() as uow:
        uow.users.add(user_id, display_name=display_name, password=password, roles=list(roles), lang=lang)
        uow.audit.record(
            action="user.add",
            actor=_actor().id,
            subject=f"user:{user_id}",
            payload={"roles": list(roles)},
            at=app.clock.now(),
        )
        uow.commit()
    click.echo(f"user {user_id} added ({', '.join(roles)})")


@users.command(name="list")
@click.option("--json", "as_json", is_flag=True)
def list_users(as_json: bool) -> None:
    """List users."""
    from ir.entrypoints.cli.incident_commands import _app

    app = _app()
    with app.db.uow() as uow:
        rows = uow.users.all()
    if as_json:
        click.echo(
            json.dumps(
                [{"id": u.id, "name": u.display_name, "roles": sorted(u.roles), "disabled": u.disabled} for u in rows],
                ensure_ascii=False,
            )
        )
        return
    for u in rows:
        state = "disabled" if u.disabled else ("locked" if u.locked_until else "active")
        click.echo(f"{u.id:<20} {','.join(sorted(u.roles)):<30} {state:<9} {u.display_name}")


@users.command(name="disable")
@click.argument("user_id")
@click.option("--enable", is_flag=True, help="enable again")
def disable(user_id: str, enable: bool) -> None:
    """Disable a user (their sessions and tokens end), or enable them again."""
    from ir.entrypoints.cli.incident_commands import _actor, _app

    app = _app()
    with app.db.uow() as uow:
        uow.users.set_disabled(user_id, not enable)
        uow.audit.record(
            action="user.enable" if enable else "user.disable",
            actor=_actor().id,
            subject=f"user:{user_id}",
            payload={},
            at=app.clock.now(),
        )
        uow.commit()
    click.echo(f"user {user_id} {'enabled' if enable else 'disabled'}")


@users.command(name="reset")
@click.argument("user_id")
def reset(user_id: str) -> None:
    """Give a user a one-time password (they must change it)."""
    import secrets

    from ir.entrypoints.cli.incident_commands import _actor, _app

    app = _app()
    password = secrets.token_urlsafe(15)
    with app.db.uow() as uow:
        uow.users.set_password(user_id, password, must_change=True)
        uow.audit.record(
            action="user.reset", actor=_actor().id, subject=f"user:{user_id}", payload={}, at=app.clock.now()
        )
        uow.commit()
    click.echo(f"one-time password for {user_id}: {password}")


@users.command(name="token")
@click.argument("user_id")
@click.option("--name", default="", help="what the token is for")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(["read", "write"]), default=("read", "write"))
@click.option("--days", type=int, default=90, show_default=True, help="valid for this many days (0: no expiry)")
def token(user_id: str, name: str, scopes: tuple[str, ...], days: int) -> None:
    """Issue an API token for a machine acting as this user (shown once; stored hashed)."""
    from ir.entrypoints.cli.incident_commands import _actor, _app

    app = _app()
    with app.db.uow() as uow:
        token_id, secret = uow.users.issue_token(
            user_id, name=name, scopes=list(scopes), ttl=timedelta(days=days) if days else None
        )
        uow.audit.record(
            action="token.issue",
            actor=_actor().id,
            subject=f"user:{user_id}",
            payload={"token": token_id, "scopes": list(scopes), "days": days},
            at=app.clock.now(),
        )
        uow.commit()
    click.echo(secret)
    click.echo(f"token {token_id} for {user_id}: keep it now, it is not shown again", err=True)


@users.command(name="revoke")
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke an API token."""
    from ir.entrypoints.cli.incident_commands import _actor, _app

    app = _app()
    with app.db.uow() as uow:
        uow.users.revoke_token(token_id)
        uow.audit.record(
            action="token.revoke", actor=_actor().id, subject="tokens", payload={"token": token_id}, at=app.clock.now()
        )
        uow.commit()
    click.echo(f"token {token_id} revoked")
