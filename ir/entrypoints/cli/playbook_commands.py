"""`ir validate`, `ir schema`, `ir playbooks`, `ir show`: the playbook language at the command line."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from ir.entrypoints.cli.options import json_option, lang_option, today

if TYPE_CHECKING:
    from ir.adapters.playbooks.library import PlaybookLibrary


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@json_option
def validate(paths: tuple[str, ...], as_json: bool) -> None:
    """Check playbooks (files or folders) and notification configurations (a folder with routing.yaml:
    routing, channels, templates rendered against their variables): one line per problem, exit 1 on any error."""
    from ir.adapters.notify.config import check_playbook_templates, is_config_folder, read_config
    from ir.adapters.playbooks.library import compile_file, playbook_files

    configs = [p for p in paths if is_config_folder(p)]
    books = tuple(p for p in paths if p not in configs)
    results = [compile_file(path, today=today()) for path in playbook_files(books)] if books else []
    if not results and not configs:
        raise click.exceptions.Exit(_no_files(paths))
    per_folder: dict[str, list[Any]] = {}
    for folder in configs:
        config, found = read_config(folder)
        if config is not None and results:  # the templates the playbooks checked alongside name must exist
            used: dict[str, list[str]] = {}
            for r in results:
                for note in r.playbook.notifications.values() if r.playbook else ():
                    used.setdefault(note.template, []).append(r.file)
            found += check_playbook_templates(config, used)
        per_folder[folder] = found
    notify_problems = [p for found in per_folder.values() for p in found]
    errors = sum(len(r.errors) for r in results) + sum(1 for p in notify_problems if p.severity == "error")
    if as_json:
        payload: list[dict[str, Any]] = [
            {
                "file": r.file,
                "id": r.playbook.id if r.playbook else None,
                "valid": r.ok,
                "problems": [p.as_dict() for p in r.problems],
            }
            for r in results
        ]
        payload += [
            {
                "file": folder,
                "id": None,
                "valid": not any(p.severity == "error" for p in found),
                "problems": [p.as_dict() for p in found],
            }
            for folder, found in per_folder.items()
        ]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        for r in results:
            for problem in r.problems:
                click.echo(str(problem))
        for notify_problem in notify_problems:
            click.echo(str(notify_problem))
        valid = sum(1 for r in results if r.ok)
        counted = f"{valid} of {len(results)} playbook(s) valid" if errors else f"{len(results)} playbook(s)"
        parts = ([counted] if results else []) + ([f"{len(configs)} notification configuration(s)"] if configs else [])
        if errors:
            click.echo(f"{'; '.join(parts)}, {errors} error(s)", err=True)
        else:
            click.echo(f"ok: {' and '.join(parts)} valid")
    if errors:
        raise click.exceptions.Exit(1)


def _no_files(paths: tuple[str, ...]) -> int:
    click.echo(f"no playbook files (*.yaml, *.yml) in {', '.join(paths)}", err=True)
    return 1


@click.command()
def schema() -> None:
    """Print the JSON Schema of the playbook language."""
    from ir.adapters.playbooks.schema import playbook_schema_text

    sys.stdout.write(playbook_schema_text())


@click.command()
@json_option
@lang_option
@click.option("--dir", "folder", type=click.Path(), help="playbook folder (default: IR_PLAYBOOKS_DIR or ./playbooks)")
def playbooks(as_json: bool, lang: str, folder: str | None) -> None:
    """List the playbook library."""
    from ir.entrypoints.cli.rendering import playbook_rows

    library = _library(folder)
    compiled = library.compiled()
    rows = playbook_rows(compiled, lang=lang, today=today())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(f"no playbooks in {library.folder}")
        return
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        status = "" if r["valid"] else ("  [invalid]" if lang == "en" else "  [无效]")
        review = f"  ({r['review_note']})" if r["review_note"] else ""
        click.echo(f"{r['id']:<{width}}  {r['category']:<8}  v{r['version']:<5}  {r['title']}{status}{review}")


@click.command()
@click.argument("playbook")
@click.option("--level", type=click.Choice(["I", "II", "III", "IV"]), help="the response level to show")
@click.option("--warning", type=click.Choice(["red", "orange", "yellow", "blue"]), help="a warning level to show")
@lang_option
@json_option
@click.option("--dir", "folder", type=click.Path(), help="playbook folder")
def show(playbook: str, level: str | None, warning: str | None, lang: str, as_json: bool, folder: str | None) -> None:
    """Print a playbook as a readable checklist for one level (or its overview)."""
    from ir.domain.levels import ResponseLevel, WarningLevel
    from ir.entrypoints.cli.rendering import render_plan

    pb = _library(folder).get(playbook)
    text = render_plan(
        pb,
        level=ResponseLevel(level) if level else None,
        warning=WarningLevel(warning) if warning else None,
        lang="en" if lang == "en" else "zh-CN",
        as_json=as_json,
    )
    click.echo(text)


@click.command(name="run-local", hidden=True)
def run_local() -> None:
    """What `make run` starts until the server exists: check the library and list it."""
    library = _library(None)
    compiled = library.compiled()
    bad = [c for c in compiled if not c.ok]
    click.echo(f"ir: {len(compiled) - len(bad)} playbook(s) ready in {library.folder}")
    for c in bad:
        for p in c.errors:
            click.echo(str(p), err=True)
    ctx = click.get_current_context()
    ctx.invoke(playbooks, as_json=False, lang="zh-CN", folder=None)
    click.echo(
        "\nir runs from this folder on the embedded SQLite database (var/ir.db). Try:\n"
        "  .venv/bin/ir show ddos --level II --lang en\n"
        '  .venv/bin/ir open ddos --title "DDoS on IDC-3" --fact affected_users=1,200,000 --mode drill\n'
        "  .venv/bin/ir classify 1 && .venv/bin/ir level 1 II && .venv/bin/ir status 1\n"
        "  .venv/bin/ir audit verify\n"
        "docs/ explains the rest. Starting the server (console and API)…"
    )


def _library(folder: str | None) -> PlaybookLibrary:
    from ir.adapters.playbooks.library import PlaybookLibrary
    from ir.config import default_playbooks_dir

    return PlaybookLibrary(folder or os.environ.get("IR_PLAYBOOKS_DIR") or default_playbooks_dir(), today=today())
