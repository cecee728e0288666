"""Regulators at the command line: obligations with countdowns, reportability, reports, filings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ir.entrypoints.cli.incident_commands import _actor, _app, _instant
from ir.entrypoints.cli.options import json_option, lang_option


class DefaultGroup(click.Group):
    """`ir report ID …` drafts a report; `ir report submit ID …` files one."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["draft", *args]
        return super().resolve_command(ctx, args)


@click.command()
@click.argument("incident_id", type=int)
@json_option
@lang_option
def obligations(incident_id: int, as_json: bool, lang: str) -> None:
    """Every regulator obligation of the incident, with its countdown."""
    from ir.entrypoints.cli.board import local_time, span

    app = _app()
    rows = app.reports.overview(_actor(), incident_id, "en" if lang == "en" else "zh-CN")
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no regulatory regime applies to incident {incident_id}")
    for r in rows:
        click.echo(
            f"{r['regime']}  {r['title']}  (reportable: {r['reportable']}"
            + (f" since {local_time(r['reportable_at'])})" if r["reportable_at"] else ")")
        )
        for o in r["obligations"]:
            if o["submitted_at"]:
                state = f"submitted {local_time(o['submitted_at'])} ({o['reference']})" + (
                    f", late {span(o['late_by_s'])}" if o["late_by_s"] else ""
                )
            elif o["due_at"]:
                left = o["left_s"] or 0
                state = f"due {local_time(o['due_at'])}, " + (
                    f"{span(left)} left" if left >= 0 else f"LATE {span(-left)}"
                )
            else:
                state = f"waits for {o['waiting_for']}"
            variant = f"  [{o['variant']}]" if o["variant"] else ""
            click.echo(f"  {o['id']:<14} {o['title']}: {state}{variant}")


@click.command()
@click.argument("incident_id", type=int)
@click.argument("regime")
@click.option("--at", "at", help="reportable since (ISO 8601; default now)")
@click.option("--not", "not_reportable", is_flag=True, help="judged not reportable")
@click.option("--reason", required=True)
def reportable(incident_id: int, regime: str, at: str | None, not_reportable: bool, reason: str) -> None:
    """Record a judgement of reportability under a regime."""
    app = _app()
    app.reports.judge(
        _actor(), incident_id, regime, reportable=not not_reportable, at=_instant(at, "--at"), reason=reason
    )
    click.echo(f"incident {incident_id}: {'not ' if not_reportable else ''}reportable under {regime}")


@click.group(cls=DefaultGroup)
def report() -> None:
    """Regulator reports: `ir report ID --regime R --stage S --format F` drafts; `ir report submit …` files."""


@report.command()
@click.argument("incident_id", type=int)
@click.option("--regime", required=True)
@click.option("--stage", required=True, help="initial | intermediate | final, or an obligation id")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf", "json"]), default="html", show_default=True)
@lang_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="write here (default: standard output; a PDF needs a file)"
)
def draft(incident_id: int, regime: str, stage: str, fmt: str, lang: str, output: str | None) -> None:
    """Fill the regime's form from the incident; missing required fields are listed, never invented."""
    app = _app()
    language: Any = "en" if lang == "en" else "zh-CN"
    rep = app.reports.draft(_actor(), incident_id, regime, stage, language)
    content, _media, suffix = app.reports.render(rep, fmt, language)
    if output is None and fmt == "pdf":
        output = f"incident-{incident_id}-{regime}-{rep.obligation}.{suffix}"
    if output:
        Path(output).write_bytes(content)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(content.decode())
    if rep.missing:
        click.echo(
            ("required fields missing: " if language == "en" else "缺失必填项：") + ", ".join(rep.missing), err=True
        )


@report.command()
@click.argument("incident_id", type=int)
@click.option("--regime", required=True)
@click.option("--stage", required=True)
@click.option("--reference", required=True, help="the regulator's reference for the filing")
@click.option(
    "--document",
    type=click.Path(exists=True, dir_okay=False),
    help="the exact document filed (default: the report rendered now as PDF)",
)
@click.option("--late-reason", help="why it is late (required by some regimes)")
@click.option("--partial", is_flag=True, help="a phased submission: more will follow")
@lang_option
def submit(
    incident_id: int,
    regime: str,
    stage: str,
    reference: str,
    document: str | None,
    late_reason: str | None,
    partial: bool,
    lang: str,
) -> None:
    """Record a filing with a regulator (who, when, the exact document, kept); it stops that clock."""
    app = _app()
    content = Path(document).read_bytes() if document else None
    obligation, digest = app.reports.submit(
        _actor(),
        incident_id,
        regime,
        stage,
        reference=reference,
        lang="en" if lang == "en" else "zh-CN",
        document=content,
        document_name=Path(document).name if document else None,
        late_reason=late_reason,
        partial=partial,
    )
    click.echo(f"incident {incident_id}: {regime} {obligation} submitted ({reference}); document {digest[:12]} kept")
