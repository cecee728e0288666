"""Running a real emergency at the command line: warnings, people, resources, the log, sitreps, shape."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ir.domain import commands as c
from ir.domain.errors import NotFound
from ir.entrypoints.cli.backend import backend
from ir.entrypoints.cli.incident_commands import _actor, _app, _instant, _run
from ir.entrypoints.cli.options import json_option


@click.command()
@click.argument("incident_id", type=int)
@click.argument("level", type=click.Choice(["red", "orange", "yellow", "blue", "lift"]))
@click.option("--reason", help="why (required to raise, lower or lift a warning)")
@click.option("--impact", help="the expected impact (a typhoon's landfall), ISO 8601")
@json_option
def warning(incident_id: int, level: str, reason: str | None, impact: str | None, as_json: bool) -> None:
    """Issue, raise or lower a warning (预警), or lift it."""
    if level == "lift":
        _run(
            c.LiftWarning(actor=_actor(), incident_id=incident_id, reason=reason),
            as_json,
            "incident {id}: warning lifted",
        )
        return
    _run(
        c.IssueWarning(
            actor=_actor(),
            incident_id=incident_id,
            level=level,
            reason=reason,
            expected_impact=_instant(impact, "--impact"),
        ),
        as_json,
        f"incident {{id}}: {level} warning",
    )


@click.command(name="end-response")
@click.argument("incident_id", type=int)
@click.option("--reason")
@json_option
def end_response(incident_id: int, reason: str | None, as_json: bool) -> None:
    """End the emergency response (响应结束), before closing the incident."""
    _run(
        c.EndResponse(actor=_actor(), incident_id=incident_id, reason=reason), as_json, "incident {id}: response ended"
    )


@click.command()
@click.argument("incident_id", type=int)
@click.option("--reason", required=True, help="why it is a false alarm")
@json_option
def cancel(incident_id: int, reason: str, as_json: bool) -> None:
    """Cancel an incident: a false alarm."""
    _run(c.CancelIncident(actor=_actor(), incident_id=incident_id, reason=reason), as_json, "incident {id} cancelled")


@click.command()
@click.argument("incident_id", type=int)
@click.option("--reason", required=True)
@json_option
def reopen(incident_id: int, reason: str, as_json: bool) -> None:
    """Reopen a closed or cancelled incident."""
    _run(c.ReopenIncident(actor=_actor(), incident_id=incident_id, reason=reason), as_json, "incident {id} reopened")


@click.command()
@click.argument("incident_id", type=int)
@click.argument("role")
@click.argument("user")
@click.option("--from", "start", help="shift start (ISO 8601)")
@click.option("--until", "end", help="shift end (ISO 8601)")
@click.option("--remove", is_flag=True, help="end this assignment")
@click.option("--reason")
@json_option
def assign(
    incident_id: int,
    role: str,
    user: str,
    start: str | None,
    end: str | None,
    remove: bool,
    reason: str | None,
    as_json: bool,
) -> None:
    """Bind a user to one of the playbook's roles in this incident (several per role, with shifts)."""
    if remove:
        _run(
            c.UnassignRole(actor=_actor(), incident_id=incident_id, role=role, user=user, reason=reason),
            as_json,
            f"incident {{id}}: {user} no longer '{role}'",
        )
        return
    _run(
        c.AssignRole(
            actor=_actor(),
            incident_id=incident_id,
            role=role,
            user=user,
            shift_start=_instant(start, "--from"),
            shift_end=_instant(end, "--until"),
        ),
        as_json,
        f"incident {{id}}: {user} is '{role}'",
    )


@click.command()
@click.argument("incident_id", type=int)
@click.argument("user")
@click.option("--note", help="what the incoming commander must know")
@json_option
def handover(incident_id: int, user: str, note: str | None, as_json: bool) -> None:
    """Hand over command; the situation at that moment is recorded with it."""
    _run(
        c.HandOver(actor=_actor(), incident_id=incident_id, to=user, note=note),
        as_json,
        f"incident {{id}}: command handed over to {user}",
    )


@click.command(name="log")
@click.argument("incident_id", type=int)
@click.argument("category", type=click.Choice(["decision", "observation", "message"]), required=False)
@click.argument("text", required=False)
@click.option("--source", help="where it came from (a message's sender, a channel)")
@click.option("--about", help="the person it is about: sealed as personal data")
@json_option
def log_(
    incident_id: int, category: str | None, text: str | None, source: str | None, about: str | None, as_json: bool
) -> None:
    """The incident log: add a decision, an observation or a message received; or list the log."""
    if category is None:
        entries = backend().board(incident_id, lang="zh-CN")["log"]
        if as_json:
            click.echo(json.dumps(entries, ensure_ascii=False))
        for e in [] if as_json else entries:
            click.echo(f"{e['at'][:16]}  {e['category']:<11} {e['actor']:<18} {e['text']}")
        return
    if text is None:
        raise click.UsageError("give the text of the entry")
    _run(
        c.AddLogEntry(
            actor=_actor(), incident_id=incident_id, category=category, text=text, source=source, about=about
        ),
        as_json,
        f"incident {{id}}: {category} logged",
    )


@click.command()
@click.argument("incident_id", type=int)
@click.argument("act", type=click.Choice(["draft", "show", "edit", "release"]))
@click.argument("number", type=int, required=False)
@click.option("--zh", "zh_file", type=click.Path(exists=True, dir_okay=False), help="edited zh-CN text (a file)")
@click.option("--en", "en_file", type=click.Path(exists=True, dir_okay=False), help="edited en text (a file)")
@click.option("--lang", type=click.Choice(["zh-CN", "en"]), default="zh-CN")
@json_option
def sitrep(
    incident_id: int, act: str, number: int | None, zh_file: str | None, en_file: str | None, lang: str, as_json: bool
) -> None:
    """Situation reports (态势报告): draft one from the incident's state, edit it, release it."""
    if act == "draft":
        _run(
            c.DraftSitrep(actor=_actor(), incident_id=incident_id),
            as_json,
            "incident {id}: situation report drafted (ir sitrep {id} show)",
        )
        return
    app = _app()
    with app.db.read() as repo:
        inc = repo.get(incident_id)
    reports = inc.emergency.sitreps
    if not reports:
        raise NotFound(f"incident {incident_id} has no situation report yet: ir sitrep {incident_id} draft")
    n = len(reports) if number is None else number
    if not 1 <= n <= len(reports):
        raise NotFound(f"incident {incident_id} has no situation report {n} (it has 1 to {len(reports)})")
    if act == "show":
        report = reports[n - 1]
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "number": n,
                        "text": report.text,
                        "facts": report.facts,
                        "released_at": report.released_at.isoformat() if report.released_at else None,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            click.echo(report.text[lang])
        return
    if act == "edit":
        current = reports[n - 1].text
        zh = Path(zh_file).read_text(encoding="utf-8") if zh_file else current["zh-CN"]
        en = Path(en_file).read_text(encoding="utf-8") if en_file else current["en"]
        _run(
            c.EditSitrep(actor=_actor(), incident_id=incident_id, number=n, text_zh=zh, text_en=en),
            as_json,
            f"incident {{id}}: situation report {n} edited",
        )
        return
    _run(
        c.ReleaseSitrep(actor=_actor(), incident_id=incident_id, number=n),
        as_json,
        f"incident {{id}}: situation report {n} released",
    )


@click.command()
@click.argument("incident_id", type=int)
@click.option("--service", "services", multiple=True, help="an affected service from the catalogue (repeatable)")
@click.option("--area", "areas", multiple=True, help="an affected area (repeatable)")
@json_option
def impact(incident_id: int, services: tuple[str, ...], areas: tuple[str, ...], as_json: bool) -> None:
    """Record the affected services (from the service catalogue) and areas."""
    _run(
        c.SetImpact(actor=_actor(), incident_id=incident_id, services=list(services), areas=list(areas)),
        as_json,
        "incident {id}: impact recorded",
    )


@click.command()
@click.argument("incident_id", type=int)
@click.argument("child", type=int)
@click.option("--remove", is_flag=True)
@json_option
def link(incident_id: int, child: int, remove: bool, as_json: bool) -> None:
    """Link a child incident (a typhoon's power-failure and fibre-cut incidents)."""
    if remove:
        _run(
            c.UnlinkIncidents(actor=_actor(), incident_id=incident_id, child=child),
            as_json,
            f"incident {{id}}: #{child} unlinked",
        )
        return
    _run(
        c.LinkIncidents(actor=_actor(), incident_id=incident_id, child=child),
        as_json,
        f"incident {{id}}: #{child} is its child",
    )


@click.command(name="add-playbook")
@click.argument("incident_id", type=int)
@click.argument("playbook")
@click.option("--reason", required=True, help="why (an outage found to be an attack)")
@json_option
def add_playbook(incident_id: int, playbook: str, reason: str, as_json: bool) -> None:
    """Join a second playbook to a running incident: its steps join, nothing done is lost."""
    _run(
        c.AddPlaybook(actor=_actor(), incident_id=incident_id, playbook=playbook, reason=reason),
        as_json,
        f"incident {{id}}: playbook {playbook} joined (its steps are named {playbook}.<step>)",
    )


# -- resources ---------------------------------------------------------------------------------------


@click.group()
def resources() -> None:
    """The resource inventory and an incident's requests: request, allocate, dispatch, arrive, return."""


@resources.command(name="register")
@click.argument("unit_id")
@click.option("--kind", required=True, help="the resource kind, as playbooks name it (generator, …)")
@click.option("--name", required=True)
@click.option("--base", required=True, help="where it is kept")
@click.option("--capacity", type=int, default=1, show_default=True)
def register(unit_id: str, kind: str, name: str, base: str, capacity: int) -> None:
    """Register a unit in the inventory."""
    app = _app()
    with app.db.uow() as uow:
        uow.inventory.register(unit_id=unit_id, kind=kind, name=name, base=base, capacity=capacity)
        uow.audit.record(
            action="resource.register",
            actor=_actor().id,
            subject="inventory",
            payload={"unit": unit_id, "kind": kind, "base": base, "capacity": capacity},
            at=app.clock.now(),
        )
        uow.commit()
    click.echo(f"unit {unit_id} registered ({kind}, {base})")


@resources.command(name="list")
@click.option("--kind")
@json_option
def list_units(kind: str | None, as_json: bool) -> None:
    """The inventory: units, where they are kept, and what they are committed to."""
    app = _app()
    with app.db.uow() as uow:
        units = uow.inventory.units(kind)
    if as_json:
        click.echo(json.dumps(units, default=str, ensure_ascii=False))
        return
    for u in units:
        where = f"incident {u['incident_id']} {u['request_id']}" if u["status"] == "committed" else u["status"]
        click.echo(f"{u['id']:<14} {u['kind']:<18} ×{u['capacity']:<5} {u['base']:<24} {where}")


@resources.command()
@click.argument("incident_id", type=int)
@click.argument("kind")
@click.option("--quantity", type=int, help="default: what the step requests")
@click.option("--to", "destination", required=True, help="the destination")
@click.option("--by", "needed_by", help="needed by (ISO 8601)")
@click.option("--step", "step_id", help="the step that requests it")
@json_option
def request(
    incident_id: int,
    kind: str,
    quantity: int | None,
    destination: str,
    needed_by: str | None,
    step_id: str | None,
    as_json: bool,
) -> None:
    """Request resources for an incident."""
    out = _run(
        c.RequestResource(
            actor=_actor(),
            incident_id=incident_id,
            resource=kind,
            quantity=quantity,
            destination=destination,
            needed_by=_instant(needed_by, "--by"),
            step_id=step_id,
        ),
        as_json,
    )
    if not as_json:
        req = out.events[0].get("request", "?")
        click.echo(
            f"incident {incident_id}: request {req} ({kind} → {destination}); allocate with "
            f"ir resources allocate {incident_id} {req}"
        )


@resources.command()
@click.argument("incident_id", type=int)
@click.argument("request_id")
@click.argument("units", nargs=-1)
@json_option
def allocate(incident_id: int, request_id: str, units: tuple[str, ...], as_json: bool) -> None:
    """Allocate inventory units to a request (the ones named, or available ones of the kind)."""
    out = _run(
        c.AllocateResource(actor=_actor(), incident_id=incident_id, request=request_id, units=list(units)), as_json
    )
    if not as_json:
        chosen = out.events[0].get("units", {})
        click.echo(f"incident {incident_id}: {request_id} ← {', '.join(chosen)}")


def _mover(stage: str) -> click.Command:
    @click.command(name={"dispatched": "dispatch", "arrived": "arrive", "returned": "return"}[stage])
    @click.argument("incident_id", type=int)
    @click.argument("request_id")
    @click.argument("units", nargs=-1)
    @json_option
    def run(incident_id: int, request_id: str, units: tuple[str, ...], as_json: bool) -> None:
        _run(
            c.MoveResource(actor=_actor(), incident_id=incident_id, request=request_id, stage=stage, units=list(units)),
            as_json,
            f"incident {{id}}: {request_id} {stage}",
        )

    run.help = f"Mark units of a request {stage} (default: every unit still out)."
    return run


for _stage in ("dispatched", "arrived", "returned"):
    resources.add_command(_mover(_stage))


@resources.command(name="cancel")
@click.argument("incident_id", type=int)
@click.argument("request_id")
@click.option("--reason", required=True)
@json_option
def cancel_request(incident_id: int, request_id: str, reason: str, as_json: bool) -> None:
    """Cancel a request whose units are all back."""
    _run(
        c.CancelResourceRequest(actor=_actor(), incident_id=incident_id, request=request_id, reason=reason),
        as_json,
        f"incident {{id}}: request {request_id} cancelled",
    )


# -- contacts ------------------------------------------------------------------------------------------


@click.group()
def contacts() -> None:
    """Contacts (people, numbers, addresses): kept in the database only, sealed per person."""


@contacts.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_(path: str) -> None:
    """Import contacts from CSV: id,name,phone,email,address,lang,groups (groups separated by ';')."""
    from ir.adapters.db.contacts import import_csv

    app = _app()
    text = Path(path).read_text(encoding="utf-8-sig")
    with app.db.uow() as uow:
        count, memberships = import_csv(uow.conn, app.db.vault, text, at=app.clock.now())
        uow.audit.record(
            action="contacts.import",
            actor=_actor().id,
            subject="contacts",
            payload={"contacts": count, "memberships": memberships},
            at=app.clock.now(),
        )
        uow.commit()
    click.echo(f"imported {count} contact(s), {memberships} group membership(s)")


@contacts.command(name="list")
@click.option("--group")
@json_option
def list_contacts(group: str | None, as_json: bool) -> None:
    """Contacts, masked."""
    from ir.adapters.db.contacts import list_contacts as run

    app = _app()
    with app.db.connection() as conn:
        rows = run(conn, group=group)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        click.echo(f"{r['id']:<16} {r['name']:<6} {r['phone'] or '-':<6} {', '.join(r['groups'])}")
