"""`ir status-page`: publish a status update for the public (the status page, its feeds, a CAP alert)."""

from __future__ import annotations

import json
from typing import Any

import click

from ir.entrypoints.cli.incident_commands import _actor, _app, _instant
from ir.entrypoints.cli.options import json_option


def _out(update: Any) -> dict[str, Any]:
    from ir.entrypoints.http.status_updates import update_out

    return update_out(update).model_dump(mode="json")


@click.group(name="status-page")
def status_page() -> None:
    """The public status page (公开状态页): what users are told, and nothing else of an incident."""


@status_page.command()
@click.argument("incident_id", type=int)
@click.option("--title", "--title-zh", "title_zh", required=True, help="the public title in Chinese (公开标题)")
@click.option("--title-en", required=True, help="the public title in English")
@click.option("--message", "--message-zh", "message_zh", required=True, help="what users are told, in Chinese")
@click.option("--message-en", required=True, help="what users are told, in English")
@click.option("--eta", help="the restoration estimate (预计恢复时间), ISO 8601; local time if no offset")
@click.option("--area", "--area-zh", "area_zh", help="the area affected, in Chinese (default: as last published)")
@click.option("--area-en", help="the area affected, in English")
@click.option("--instruction", "--instruction-zh", "instruction_zh", help="what users should do, in Chinese")
@click.option("--instruction-en", help="what users should do, in English")
@click.option("--resolved", is_flag=True, help="service is back: the all-clear (CAP msgType Cancel)")
@json_option
def publish(
    incident_id: int,
    title_zh: str,
    title_en: str,
    message_zh: str,
    message_en: str,
    eta: str | None,
    area_zh: str | None,
    area_en: str | None,
    instruction_zh: str | None,
    instruction_en: str | None,
    resolved: bool,
    as_json: bool,
) -> None:
    """Publish a status update of the incident: on /status, its Atom and CAP feeds, as a CAP 1.2 alert."""
    from ir.domain.status_updates import PublishStatusUpdate
    from ir.entrypoints.status_service import status_page as service

    command = PublishStatusUpdate(
        actor=_actor(),
        incident_id=incident_id,
        title_zh=title_zh,
        title_en=title_en,
        message_zh=message_zh,
        message_en=message_en,
        eta=_instant(eta, "--eta"),
        area_zh=area_zh,
        area_en=area_en,
        instruction_zh=instruction_zh,
        instruction_en=instruction_en,
        resolved=resolved,
    )
    update = service(_app()).publish(command)
    if as_json:
        click.echo(json.dumps(_out(update), ensure_ascii=False))
        return
    click.echo(
        f"incident {incident_id}: status update {update.seq} published / 已对外发布 "
        f"(CAP {update.cap_msg_type} {update.cap_identifier}, /status/alerts/{update.cap_identifier}.xml)"
    )


@status_page.command(name="list")
@click.argument("incident_id", type=int)
@json_option
def list_(incident_id: int, as_json: bool) -> None:
    """The incident's published status updates, oldest first."""
    from ir.entrypoints.status_service import status_page as service

    updates = service(_app()).updates(_actor(), incident_id)
    if as_json:
        click.echo(json.dumps([_out(u) for u in updates], ensure_ascii=False))
        return
    if not updates:
        click.echo(f"incident {incident_id}: nothing published / 尚未对外发布")
    for u in updates:
        state = "resolved" if u.resolved else (f"eta {u.eta.isoformat()}" if u.eta else "ongoing")
        click.echo(
            f"{u.seq:>3}  {u.published_at.isoformat()}  {u.cap_msg_type:<6} {state}  {u.title_zh} / {u.title_en}"
        )
