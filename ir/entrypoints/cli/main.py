"""The `ir` command. Subcommands import what they need only when they run (cold start matters)."""

from __future__ import annotations

import sys
from typing import Any

import click

from ir.domain.errors import InvalidInput, IrError

_COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, attribute)
    "validate": ("ir.entrypoints.cli.playbook_commands", "validate"),
    "schema": ("ir.entrypoints.cli.playbook_commands", "schema"),
    "playbooks": ("ir.entrypoints.cli.playbook_commands", "playbooks"),
    "show": ("ir.entrypoints.cli.playbook_commands", "show"),
    "run-local": ("ir.entrypoints.cli.playbook_commands", "run_local"),
    "open": ("ir.entrypoints.cli.incident_commands", "open_"),
    "incidents": ("ir.entrypoints.cli.incident_commands", "incidents"),
    "status": ("ir.entrypoints.cli.incident_commands", "status"),
    "step": ("ir.entrypoints.cli.incident_commands", "step"),
    "approve": ("ir.entrypoints.cli.incident_commands", "approve"),
    "fact": ("ir.entrypoints.cli.incident_commands", "fact"),
    "clock": ("ir.entrypoints.cli.incident_commands", "clock"),
    "classify": ("ir.entrypoints.cli.incident_commands", "classify"),
    "level": ("ir.entrypoints.cli.incident_commands", "level"),
    "restore": ("ir.entrypoints.cli.incident_commands", "restore"),
    "close": ("ir.entrypoints.cli.incident_commands", "close"),
    "note": ("ir.entrypoints.cli.incident_commands", "note"),
    "notified": ("ir.entrypoints.cli.incident_commands", "notified"),
    "timeline": ("ir.entrypoints.cli.incident_commands", "timeline"),
    "deadlines": ("ir.entrypoints.cli.incident_commands", "deadlines"),
    "reveal": ("ir.entrypoints.cli.incident_commands", "reveal"),
    "db": ("ir.entrypoints.cli.admin_commands", "db"),
    "admin": ("ir.entrypoints.cli.admin_commands", "admin"),
    "worker": ("ir.entrypoints.cli.admin_commands", "worker"),
    "audit": ("ir.entrypoints.cli.audit_commands", "audit"),
    "serve": ("ir.entrypoints.cli.serve_commands", "serve"),
    "users": ("ir.entrypoints.cli.serve_commands", "users"),
    "obligations": ("ir.entrypoints.cli.report_commands", "obligations"),
    "reportable": ("ir.entrypoints.cli.report_commands", "reportable"),
    "report": ("ir.entrypoints.cli.report_commands", "report"),
    "warning": ("ir.entrypoints.cli.emergency_commands", "warning"),
    "end-response": ("ir.entrypoints.cli.emergency_commands", "end_response"),
    "cancel": ("ir.entrypoints.cli.emergency_commands", "cancel"),
    "reopen": ("ir.entrypoints.cli.emergency_commands", "reopen"),
    "assign": ("ir.entrypoints.cli.emergency_commands", "assign"),
    "handover": ("ir.entrypoints.cli.emergency_commands", "handover"),
    "log": ("ir.entrypoints.cli.emergency_commands", "log_"),
    "sitrep": ("ir.entrypoints.cli.emergency_commands", "sitrep"),
    "impact": ("ir.entrypoints.cli.emergency_commands", "impact"),
    "link": ("ir.entrypoints.cli.emergency_commands", "link"),
    "add-playbook": ("ir.entrypoints.cli.emergency_commands", "add_playbook"),
    "resources": ("ir.entrypoints.cli.emergency_commands", "resources"),
    "contacts": ("ir.entrypoints.cli.emergency_commands", "contacts"),
    "notify": ("ir.entrypoints.cli.notify_commands", "notify"),
    "notifications": ("ir.entrypoints.cli.notify_commands", "notifications"),
    "status-page": ("ir.entrypoints.cli.status_page_commands", "status_page"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        import importlib

        module = importlib.import_module(target[0])
        command = getattr(module, target[1])
        assert isinstance(command, click.Command)
        return command


# What acts on this machine's database or files only: refused with --server (see docs/server.md).
LOCAL_ONLY = {"db", "admin", "worker", "audit", "serve", "users", "contacts", "run-local"}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ir")
@click.option(
    "--server",
    envvar="IR_SERVER",
    metavar="URL",
    help="act on this ir server (IR_SERVER), as the API token's user; default: this machine's database",
)
@click.option(
    "--token-file",
    envvar="IR_TOKEN_FILE",
    type=click.Path(dir_okay=False),
    help="read the API token from this file (IR_TOKEN_FILE); better than --token, which others can see",
)
@click.option("--token", envvar="IR_TOKEN", metavar="TOKEN", help="the API token itself (IR_TOKEN)")
@click.pass_context
def cli(ctx: click.Context, server: str | None, token_file: str | None, token: str | None) -> None:
    """ir: incident response and emergency-plan runner / 应急预案执行与事件响应."""
    from ir.entrypoints.cli.backend import Target, read_token

    server = (server or "").strip() or None
    if server is None:
        explicit = [
            f"--{name.replace('_', '-')}"
            for name in ("token", "token_file")
            if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
        ]
        if explicit:
            raise InvalidInput(f"{' and '.join(explicit)}: only with --server URL (or IR_SERVER), the server to act on")
        ctx.obj = Target()
        return
    if ctx.invoked_subcommand in LOCAL_ONLY:
        raise InvalidInput(
            f"ir {ctx.invoked_subcommand} acts on this machine only and does not take --server "
            f"(unset IR_SERVER to run it here) / 此命令只能在本机执行"
        )
    ctx.obj = Target(server=server, token=read_token(token_file) if token_file else (token or "").strip() or None)


def main(argv: list[str] | None = None) -> Any:
    try:
        code = cli.main(args=argv, prog_name="ir", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
        return code
    except IrError as err:
        click.echo(f"ir: {err.message}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("ir: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("ir: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug of ours, not a mistake of the user's: one line, and the trace on request
        import os

        if os.environ.get("IR_DEBUG"):
            raise
        click.echo(f"ir: internal error: {type(exc).__name__}: {exc} (set IR_DEBUG=1 for details)", err=True)
        sys.exit(70)
