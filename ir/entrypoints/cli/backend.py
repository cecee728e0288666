"""Where the command line's commands go: this machine's database, or a server.

Both sides of the seam take the command the command line builds (`CompleteStep(…)`) and answer with what
was recorded (`Done`), and answer the reads with the same views the API serves (the board, the timeline,
the deadlines), so every command prints the same thing either way. `backend()` chooses: the local
database (acting as `local:<os user>`), or the server named by `--server` / IR_SERVER, acting as the
token's user (`remote.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import click

from ir.domain.errors import InvalidInput

if TYPE_CHECKING:
    from ir.bootstrap import App
    from ir.domain.commands import Command
    from ir.domain.text import Lang


@dataclass(frozen=True, slots=True)
class Done:
    """What a command recorded: the incident, its new version, and the events ({"kind": …, …})."""

    incident_id: int
    version: int
    events: list[dict[str, Any]]


class Backend(Protocol):
    def handle(self, command: Command) -> Done: ...

    def incidents(self, *, open_only: bool) -> list[dict[str, Any]]: ...

    def board(self, incident_id: int, *, lang: Lang) -> dict[str, Any]: ...

    def timeline(self, incident_id: int) -> list[dict[str, Any]]: ...

    def deadlines(self, incident_id: int, *, lang: Lang) -> list[dict[str, Any]]: ...

    def classify(self, incident_id: int) -> dict[str, Any]: ...

    def reveal(self, incident_id: int, *, fact: str | None, note: int | None, reason: str | None) -> str: ...


@dataclass(frozen=True, slots=True)
class Target:
    """The server the command line acts on (`--server`), and the token it acts with; none: locally."""

    server: str | None = None
    token: str | None = None


def read_token(path: str) -> str:
    """The API token kept in a file (its first line; the file should be readable by you alone)."""
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"--token-file: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    found = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not found:
        raise InvalidInput(f"--token-file: {path} is empty")
    mode = Path(path).stat().st_mode
    if mode & 0o077:
        click.echo(
            f"ir: warning: {path} can be read by other users of this machine: chmod 600 {path} / 令牌文件权限过宽",
            err=True,
        )
    return found


def target() -> Target:
    ctx = click.get_current_context(silent=True)
    found = ctx.find_root().obj if ctx is not None else None
    return found if isinstance(found, Target) else Target()


def refuse_remote(what: str) -> None:
    """Refuse a command that acts on this machine's database while a server is named."""
    chosen = target()
    if chosen.server:
        raise InvalidInput(
            f"{what} acts on this machine's database, not on a server: run it without --server "
            f"(and without IR_SERVER) on the server's machine / 此命令只能在本机执行，不能配合 --server 使用"
        )


def backend() -> Backend:
    """The backend of this command: a server when one is named, else the local database."""
    chosen = target()
    if chosen.server:
        from ir.entrypoints.cli.remote import RemoteBackend

        remote = RemoteBackend(server=chosen.server, token=chosen.token)
        click.get_current_context().call_on_close(remote.close)
        return remote
    return LocalBackend(local_app())


def local_app() -> App:
    """The application on this machine's database; its audit records are sealed when the command ends."""
    from ir.bootstrap import build

    ctx = click.get_current_context()
    name = ctx.command_path.removeprefix("ir ").strip() or "this command"
    refuse_remote(f"ir {name}")
    app = build()
    ctx.call_on_close(app.close)
    return app


def _secs(value: timedelta | None) -> int | None:
    return int(value.total_seconds()) if value is not None else None


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


class LocalBackend:
    """The database of this machine, through the same handlers and views the server uses."""

    def __init__(self, app: App) -> None:
        self.app = app

    def handle(self, command: Command) -> Done:
        from ir.domain.events import event_to_dict

        outcome = self.app.handlers.handle(command)
        return Done(
            outcome.incident_id, outcome.version, [{"kind": e.kind, **event_to_dict(e)} for e in outcome.events]
        )

    def incidents(self, *, open_only: bool) -> list[dict[str, Any]]:
        from ir.adapters.db.queries import list_incidents

        with self.app.db.connection() as conn:
            rows = list_incidents(conn, open_only=open_only)
        return [{k: _iso(v) for k, v in r.items()} for r in rows]

    def board(self, incident_id: int, *, lang: Lang) -> dict[str, Any]:
        from ir.app.views import board
        from ir.bootstrap import calendar_for

        with self.app.db.read() as repo:
            inc = repo.get(incident_id)
        return board(inc, inc.now(self.app.clock.now()), lang=lang, calendar_for=calendar_for)

    def timeline(self, incident_id: int) -> list[dict[str, Any]]:
        from ir.app.views import timeline

        with self.app.db.read() as repo:
            repo.get(incident_id)
            return timeline(repo.events(incident_id))

    def deadlines(self, incident_id: int, *, lang: Lang) -> list[dict[str, Any]]:
        from ir.bootstrap import calendar_for
        from ir.domain.deadlines import due_list

        with self.app.db.read() as repo:
            inc = repo.get(incident_id)
        return [
            {
                "ref": i.deadline.ref,
                "kind": i.deadline.kind,
                "title": i.deadline.title.get(lang),
                "role": i.deadline.role,
                "due_at": _iso(i.deadline.due_at),
                "done_at": _iso(i.deadline.done_at),
                "state": i.state.value,
                "late_by_s": _secs(i.late_by),
                "left_s": _secs(i.left),
            }
            for i in due_list(inc, inc.now(self.app.clock.now()), calendar_for=calendar_for)
        ]

    def classify(self, incident_id: int) -> dict[str, Any]:
        from ir.domain.decisions import classify

        with self.app.db.read() as repo:
            inc = repo.get(incident_id)
        result = classify(inc)
        return {
            "suggested": result.suggested.value if result.suggested else None,
            "current": inc.level.value if inc.level else None,
            "missing_facts": sorted(result.missing),
            "levels": [
                {"level": v.level.value, "holds": v.holds, "missing": sorted(v.missing), "criteria": str(v.criteria)}
                for v in result.verdicts
            ],
        }

    def reveal(self, incident_id: int, *, fact: str | None, note: int | None, reason: str | None) -> str:
        from ir.entrypoints.cli.incident_commands import _actor

        value: str = self.app.personal.reveal(_actor(), incident_id, fact=fact, note=note, reason=reason)
        return value
