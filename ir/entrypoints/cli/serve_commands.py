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
    import multiprocessing

    from ir.adapters.db.engine import make_engine
    from ir.adapters.db.schema import require_migrated
    from ir.config import Settings
    from ir.entrypoints.http.app import create_app
    from ir.entrypoints.http.serving import serve as serve_until_stopped
    from ir.entrypoints.http.writer_process import WriterProcess

    settings = Settings()
    engine = make_engine(settings.database_url)
    require_migrated(engine)
    engine.dispose()  # no connection is carried into the writer process
    # on SQLite, the changes are carried out in a process of their own, forked now, before any thread starts
    forks = "fork" in multiprocessing.get_all_start_methods()  # not on Windows: there a thread does it
    writer = WriterProcess(settings) if engine.dialect.name == "sqlite" and forks else None
    host = host or settings.host
    port = port or settings.port
    click.echo(f"ir: serving on http://{host}:{port}/  (console; API under /api, OpenAPI at /docs)", err=True)
    click.echo(
        "ir: sign in as 'admin' (its one-time password is printed below on the first start; "
        "`ir users reset admin` gives a new one). Ctrl-C stops the server.",
        err=True,
    )
    try:
        started = serve_until_stopped(create_app(settings, writer=writer), host=host, port=port, grace=20)
    finally:
        if writer is not None:
            writer.close()  # stopped with the application already, unless it never started
    if not started:
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


class _TokenGroup(click.Group):
    """`ir users token create|list|revoke`; `ir users token USER …` (the older form) is `create`."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["create", *args]
        return super().resolve_command(ctx, args)


@users.group(name="token", cls=_TokenGroup)
def token() -> None:
    """API tokens, for machines and for the command line against a server (--server, --token-file)."""


def _scopes(scopes: str | None, scope: tuple[str, ...]) -> list[str]:
    from ir.domain.errors import InvalidInput

    chosen = [s.strip() for s in scopes.split(",")] if scopes else list(scope) or ["read", "write"]
    chosen = list(dict.fromkeys(s for s in chosen if s))
    bad = [s for s in chosen if s not in ("read", "write")]
    if bad or not chosen:
        raise InvalidInput(f"--scopes is read, write or read,write; got '{scopes}'", field="scopes")
    return chosen


def _ttl(expires: str | None, days: int | None) -> timedelta | None:
    from ir.domain.durations import DurationError, parse_duration
    from ir.domain.errors import InvalidInput

    if expires is None:
        return timedelta(days=90 if days is None else days) if days != 0 else None
    if expires.strip().lower() in ("never", "0"):
        return None
    try:
        found = parse_duration(expires)
        ttl = found.as_timedelta()
    except (DurationError, ValueError) as exc:
        raise InvalidInput(f"--expires: {exc} (e.g. 30d, 12h, or never)", field="expires") from None
    if not ttl:
        raise InvalidInput("--expires: a token must live a while (e.g. 30d), or never expire (never)")
    return ttl


@token.command(name="create")
@click.argument("user_id")
@click.option("--name", default="", help="what the token is for")
@click.option("--scopes", help="read, write or read,write (default: read,write)")
@click.option("--scope", "scope", multiple=True, type=click.Choice(["read", "write"]), hidden=True)
@click.option("--expires", help="valid for this long: 30d, 12h, … or never (default: 90d)")
@click.option("--days", type=int, hidden=True, help="valid for this many days (0: no expiry)")
@click.option("--json", "as_json", is_flag=True)
def token_create(
    user_id: str,
    name: str,
    scopes: str | None,
    scope: tuple[str, ...],
    expires: str | None,
    days: int | None,
    as_json: bool,
) -> None:
    """Issue an API token for a user (printed once, stored hashed). Administrators, on the server's machine."""
    from ir.entrypoints.cli.incident_commands import _actor, _app

    chosen = _scopes(scopes, scope)
    ttl = _ttl(expires, days)
    app = _app()
    with app.db.uow() as uow:
        token_id, secret = uow.users.issue_token(user_id, name=name, scopes=chosen, ttl=ttl)
        uow.audit.record(
            action="token.issue",
            actor=_actor().id,
            subject=f"user:{user_id}",
            payload={"token": token_id, "scopes": chosen, "days": ttl.days if ttl else 0},
            at=app.clock.now(),
        )
        uow.commit()
    expires_at = app.clock.now() + ttl if ttl else None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "id": token_id,
                    "user": user_id,
                    "scopes": chosen,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                    "secret": secret,
                }
            )
        )
        return
    click.echo(secret)
    until = f"until {expires_at.isoformat(timespec='minutes')}" if expires_at else "no expiry"
    click.echo(
        f"token {token_id} for {user_id} ({','.join(chosen)}, {until}): keep it now, it is not shown again"
        f" / 令牌只显示这一次，请妥善保存",
        err=True,
    )


@token.command(name="list")
@click.argument("user_id", required=False)
@click.option("--json", "as_json", is_flag=True)
def token_list(user_id: str | None, as_json: bool) -> None:
    """API tokens (never their secrets), of one user or all: scopes, expiry, last use, revocation."""
    from ir.entrypoints.cli.board import local_time
    from ir.entrypoints.cli.incident_commands import _app

    app = _app()
    with app.db.uow() as uow:
        rows = uow.users.tokens(user_id)
    if as_json:
        click.echo(json.dumps(rows, default=lambda v: v.isoformat(), ensure_ascii=False))
        return
    if not rows:
        click.echo("no tokens / 没有令牌")
        return
    now = app.clock.now()
    for r in rows:
        if r["revoked_at"] is not None:
            state = "revoked"
        elif r["expires_at"] is not None and r["expires_at"] <= now:
            state = "expired"
        else:
            state = "active"
        click.echo(
            f"{r['id']:<16} {r['user_id']:<16} {r['scopes']:<10} {state:<8} "
            f"expires {local_time(r['expires_at']):<16}  last used {local_time(r['last_used_at']):<16}  {r['name']}"
        )


@token.command(name="revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke an API token: it stops working at once."""
    _revoke(token_id)


def _revoke(token_id: str) -> None:
    from ir.entrypoints.cli.incident_commands import _actor, _app

    app = _app()
    with app.db.uow() as uow:
        uow.users.revoke_token(token_id)
        uow.audit.record(
            action="token.revoke", actor=_actor().id, subject="tokens", payload={"token": token_id}, at=app.clock.now()
        )
        uow.commit()
    click.echo(f"token {token_id} revoked")


@users.command(name="revoke")
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke an API token (also: ir users token revoke ID)."""
    _revoke(token_id)
