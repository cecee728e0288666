"""The incident commander's command line: open, status, steps, facts, clocks, levels, restore, close."""

from __future__ import annotations

import getpass
import json
import mimetypes
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ir.domain.errors import InvalidInput
from ir.entrypoints.cli.backend import Done, backend, local_app
from ir.entrypoints.cli.options import json_option, lang_option

if TYPE_CHECKING:
    from ir.bootstrap import App
    from ir.domain.commands import Actor, Command
    from ir.domain.text import Lang


def _app() -> App:
    """The application on this machine's database (refused with --server); its audit records are sealed
    when the command ends."""
    return local_app()


def _lang(lang: str) -> Lang:
    return "en" if lang == "en" else "zh-CN"


def _actor() -> Actor:
    from ir.domain.commands import Actor

    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    return Actor(id=f"local:{user}", roles=frozenset({"admin"}))


def _instant(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{what}: not an ISO 8601 instant, e.g. 2026-10-01T09:00+08:00") from None
    if value.tzinfo is None:
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo(os.environ.get("IR_TIMEZONE", "Asia/Shanghai")))
    return value


def _run(command: Command, as_json: bool, message: str | None = None) -> Done:
    """Hand the command to the backend (this machine's database, or the server) and say what it did."""
    outcome = backend().handle(command)
    if as_json:
        click.echo(
            json.dumps(
                {"incident": outcome.incident_id, "version": outcome.version, "events": outcome.events},
                ensure_ascii=False,
                default=str,
            )
        )
    elif message:
        click.echo(message.format(id=outcome.incident_id, version=outcome.version))
    return outcome


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _facts(pairs: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidInput(f"a fact is written name=value; got '{pair}'")
        name, _, value = pair.partition("=")
        out[name.strip()] = value
    return out


@click.command(name="open")
@click.argument("playbook")
@click.option("--title", required=True, help="what is happening, in a line")
@click.option("--fact", "facts", multiple=True, metavar="NAME=VALUE", help="a fact (repeatable)")
@click.option("--level", type=click.Choice(["I", "II", "III", "IV"]), help="declare this level at once")
@click.option("--mode", type=click.Choice(["real", "drill", "test"]), default="real", show_default=True)
@click.option("--detected", help="when it was detected, if before now (ISO 8601)")
@click.option("--simulate", help="run on simulated time from this instant (drills and tests)")
@click.option("--speed", type=float, default=1.0, help="simulated time runs this many times faster")
@click.option("--warning", type=click.Choice(["red", "orange", "yellow", "blue"]), help="open in a warning phase")
@click.option("--impact", help="the expected impact, with a warning (a typhoon's landfall), ISO 8601")
@click.option("--commander", help="who commands it (default: you)")
@json_option
def open_(
    playbook: str,
    title: str,
    facts: tuple[str, ...],
    level: str | None,
    mode: str,
    detected: str | None,
    simulate: str | None,
    speed: float,
    warning: str | None,
    impact: str | None,
    commander: str | None,
    as_json: bool,
) -> None:
    """Open an incident from a playbook (an id from the library, or a path)."""
    from ir.domain.commands import OpenIncident

    outcome = _run(
        OpenIncident(
            actor=_actor(),
            playbook=playbook,
            title=title,
            mode=mode,
            facts=_facts(facts),
            level=level,
            detected_at=_instant(detected, "--detected"),
            simulate_from=_instant(simulate, "--simulate"),
            speed=speed,
            warning=warning,
            expected_impact=_instant(impact, "--impact"),
            commander=commander,
        ),
        as_json,
    )
    if not as_json:
        lv = f" at level {level}" if level else " in triage (no level yet: ir classify / ir level)"
        if warning and not level:
            lv = f" under a {warning} warning"
        click.echo(f"incident {outcome.incident_id} opened{lv}: ir status {outcome.incident_id}")


@click.command()
@click.option("--open", "open_only", is_flag=True, help="only incidents not closed")
@json_option
def incidents(open_only: bool, as_json: bool) -> None:
    """List incidents."""
    rows = backend().incidents(open_only=open_only)
    if as_json:
        click.echo(json.dumps(rows, default=_iso, ensure_ascii=False))
        return
    if not rows:
        click.echo("no incidents")
        return
    from ir.entrypoints.cli.board import local_time

    for r in rows:
        level = r["level"] or "-"
        click.echo(
            f"{r['id']:>5}  {level:<3} {r['status']:<9} {r['mode']:<5} {local_time(r['opened_at'])}  "
            f"{r['playbook_id']:<20} {r['title']}  ({r['open_steps']} open)"
        )


@click.command()
@click.argument("incident_id", type=int)
@json_option
@lang_option
def status(incident_id: int, as_json: bool, lang: str) -> None:
    """The incident's board: level, RTO left, steps by state, deadlines with countdowns."""
    from ir.entrypoints.cli.board import render_board

    view = backend().board(incident_id, lang=_lang(lang))
    if as_json:
        click.echo(json.dumps(view, ensure_ascii=False))
    else:
        click.echo(render_board(view, lang=lang, color=sys.stdout.isatty()))


@click.command()
@click.argument("incident_id", type=int)
@click.argument("step_id")
@click.argument("act", type=click.Choice(["start", "done", "skip", "fail", "retry", "confirm", "check", "uncheck"]))
@click.option("--note", help="a note; the reason for skip and fail")
@click.option(
    "--evidence",
    "evidence",
    type=click.Path(exists=True, dir_okay=False),
    multiple=True,
    help="attach a file as evidence (before completing)",
)
@click.option("--assignee", help="who takes the step (default: you)")
@click.option("--item", type=int, help="the checklist item number, for check/uncheck")
@click.option("--if-version", type=int, help="refuse if the incident is no longer at this version")
@json_option
def step(
    incident_id: int,
    step_id: str,
    act: str,
    note: str | None,
    evidence: tuple[str, ...],
    assignee: str | None,
    item: int | None,
    if_version: int | None,
    as_json: bool,
) -> None:
    """Act on a step: start, done, skip, fail, retry, confirm (its automated action), check/uncheck an item."""
    from ir.domain import commands as c

    actor = _actor()
    where = backend()
    outcomes: list[Done] = []
    for path in evidence:
        data = Path(path).read_bytes()
        media = mimetypes.guess_type(path)[0] or "application/octet-stream"
        outcomes.append(
            where.handle(
                c.AttachEvidence(
                    actor=actor,
                    incident_id=incident_id,
                    step_id=step_id,
                    filename=os.path.basename(path),
                    content=data,
                    media_type=media,
                )
            )
        )
    base: dict[str, Any] = {
        "actor": actor,
        "incident_id": incident_id,
        "step_id": step_id,
        "note": note,
        "expected_version": if_version,
    }
    command: Command
    if act == "start":
        command = c.StartStep(**base, assignee=assignee)
    elif act == "done":
        command = c.CompleteStep(**base)
    elif act == "skip":
        command = c.SkipStep(**base)
    elif act == "fail":
        command = c.FailStep(**base)
    elif act == "retry":
        command = c.RetryStep(**base)
    elif act == "confirm":
        command = c.ConfirmAction(**base)
    else:
        if item is None:
            raise InvalidInput("say which checklist item: --item N")
        command = c.CheckItem(**base, item=item, checked=act == "check")
    outcome = where.handle(command)
    outcomes.append(outcome)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "incident": incident_id,
                    "version": outcome.version,
                    "events": [e["kind"] for o in outcomes for e in o.events],
                }
            )
        )
    else:
        verb = {
            "start": "started",
            "done": "done",
            "skip": "skipped",
            "fail": "failed",
            "retry": "retried",
            "confirm": "action confirmed",
            "check": f"item {item} checked",
            "uncheck": f"item {item} unchecked",
        }
        click.echo(f"incident {incident_id}: step '{step_id}' {verb[act]} (version {outcome.version})")


@click.command()
@click.argument("incident_id", type=int)
@click.argument("step_id")
@click.option("--as", "role", help="the playbook role you approve as")
@click.option("--note")
@json_option
def approve(incident_id: int, step_id: str, role: str | None, note: str | None, as_json: bool) -> None:
    """Approve a step that requires approval."""
    from ir.domain.commands import ApproveStep

    _run(
        ApproveStep(actor=_actor(), incident_id=incident_id, step_id=step_id, role=role, note=note),
        as_json,
        f"incident {{id}}: step '{step_id}' approved",
    )


@click.command()
@click.argument("incident_id", type=int)
@click.argument("pairs", nargs=-1, required=True, metavar="NAME=VALUE...")
@click.option("--reason")
@json_option
def fact(incident_id: int, pairs: tuple[str, ...], reason: str | None, as_json: bool) -> None:
    """Set facts (an empty value clears one)."""
    from ir.domain.commands import SetFacts

    _run(
        SetFacts(actor=_actor(), incident_id=incident_id, facts=_facts(pairs), reason=reason),
        as_json,
        "incident {id}: facts set (version {version})",
    )


@click.command()
@click.argument("incident_id", type=int)
@click.argument("name")
@click.argument("instant", required=False)
@click.option("--reason", help="why (required to correct a clock)")
@json_option
def clock(incident_id: int, name: str, instant: str | None, reason: str | None, as_json: bool) -> None:
    """Record a clock (detection, awareness, …) at an instant, now by default."""
    from ir.domain.commands import RecordClock

    _run(
        RecordClock(
            actor=_actor(),
            incident_id=incident_id,
            clock=name,
            instant=_instant(instant, "instant"),
            reason=reason,
        ),
        as_json,
        f"incident {{id}}: {name} recorded",
    )


@click.command()
@click.argument("incident_id", type=int)
@json_option
def classify(incident_id: int, as_json: bool) -> None:
    """Evaluate the level criteria on the current facts and suggest a level."""
    result = backend().classify(incident_id)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    for v in result["levels"]:
        mark = {True: "yes", False: "no", None: "unknown"}[v["holds"]]
        missing = f"  (missing: {', '.join(v['missing'])})" if v["missing"] else ""
        click.echo(f"  {v['level']:<3} {mark:<7} {v['criteria']}{missing}")
    suggested, current = result["suggested"], result["current"]
    if suggested:
        now = f" (current: {current})" if current else ""
        click.echo(f"suggested level: {suggested}{now}; declare it with: ir level {incident_id} {suggested}")
    else:
        click.echo("no level's criteria hold on the current facts")
    if result["missing_facts"]:
        click.echo(f"facts that would decide a more severe level: {', '.join(result['missing_facts'])}")


@click.command()
@click.argument("incident_id", type=int)
@click.argument("level", type=click.Choice(["I", "II", "III", "IV"]))
@click.option("--reason", help="required for a change of level")
@json_option
def level(incident_id: int, level: str, reason: str | None, as_json: bool) -> None:
    """Declare or change the response level."""
    from ir.domain.commands import DeclareLevel

    _run(
        DeclareLevel(actor=_actor(), incident_id=incident_id, level=level, reason=reason),
        as_json,
        f"incident {{id}}: level {level} declared",
    )


@click.command()
@click.argument("incident_id", type=int)
@click.option("--degraded", is_flag=True, help="service is back, degraded (default: fully)")
@click.option("--at", "at", help="when, if before now (ISO 8601)")
@click.option("--reason")
@json_option
def restore(incident_id: int, degraded: bool, at: str | None, reason: str | None, as_json: bool) -> None:
    """Record that service is restored (fully, or --degraded)."""
    from ir.domain.commands import Restore

    _run(
        Restore(actor=_actor(), incident_id=incident_id, degraded=degraded, at=_instant(at, "--at"), reason=reason),
        as_json,
        f"incident {{id}}: service restored{' (degraded)' if degraded else ''}",
    )


@click.command()
@click.argument("incident_id", type=int)
@click.option("--reason", help="required when steps are still open or restoration is not recorded")
@json_option
def close(incident_id: int, reason: str | None, as_json: bool) -> None:
    """Close the incident."""
    from ir.domain.commands import CloseIncident

    _run(CloseIncident(actor=_actor(), incident_id=incident_id, reason=reason), as_json, "incident {id} closed")


@click.command()
@click.argument("incident_id", type=int)
@click.argument("text")
@click.option("--step", "step_id", help="the step it is about")
@click.option("--about", help="the person it is about (a customer id, a phone number): sealed as personal data")
@json_option
def note(incident_id: int, text: str, step_id: str | None, about: str | None, as_json: bool) -> None:
    """Add a note to the incident or one of its steps."""
    from ir.domain.commands import AddNote

    _run(
        AddNote(actor=_actor(), incident_id=incident_id, text=text, step_id=step_id, about=about),
        as_json,
        "incident {id}: note added" + (" (personal data, masked)" if about else ""),
    )


@click.command()
@click.argument("incident_id", type=int)
@click.option("--fact", help="the personal fact to reveal")
@click.option("--note", "note_number", type=int, help="the note to reveal (its number in the timeline's notes)")
@click.option("--reason", help="why you need to see it (recorded)")
def reveal(incident_id: int, fact: str | None, note_number: int | None, reason: str | None) -> None:
    """Reveal masked personal data: a recorded act, for those allowed."""
    click.echo(backend().reveal(incident_id, fact=fact, note=note_number, reason=reason))


@click.command()
@click.argument("incident_id", type=int)
@click.argument("notification_id")
@click.option("--reference", help="a reference for what was sent (a ticket, a call log)")
@json_option
def notified(incident_id: int, notification_id: str, reference: str | None, as_json: bool) -> None:
    """Record that a notification or report was made (a phone call, a filed report)."""
    from ir.domain.commands import MarkNotificationSent

    _run(
        MarkNotificationSent(
            actor=_actor(), incident_id=incident_id, notification_id=notification_id, reference=reference
        ),
        as_json,
        f"incident {{id}}: '{notification_id}' recorded as sent",
    )


@click.command()
@click.argument("incident_id", type=int)
@json_option
def timeline(incident_id: int, as_json: bool) -> None:
    """Every event of the incident, in order."""
    from ir.entrypoints.cli.board import local_time

    entries = backend().timeline(incident_id)
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False, default=str))
        return
    for e in entries:
        data = " ".join(f"{k}={v}" for k, v in e["data"].items() if v not in (None, {}, [], False))
        click.echo(f"{e['seq']:>5}  {local_time(e['at'])}  {e['actor']:<20} {e['kind']:<24} {data}")


@click.command()
@click.argument("incident_id", type=int)
@click.option("--all", "show_all", is_flag=True, help="also the deadlines met or not yet running")
@json_option
@lang_option
def deadlines(incident_id: int, show_all: bool, as_json: bool, lang: str) -> None:
    """Every deadline of the incident now (steps, notifications, regulators), soonest first, with countdowns."""
    from ir.entrypoints.cli.board import render_deadlines

    rows = backend().deadlines(incident_id, lang=_lang(lang))
    if not show_all:
        rows = [r for r in rows if r["state"] not in ("met", "waiting")]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    click.echo(render_deadlines(rows, lang=lang, color=sys.stdout.isatty()))
