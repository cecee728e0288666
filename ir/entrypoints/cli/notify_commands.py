"""`ir notify dispatch [--loop]`, `ir notify ack` and `ir notifications ID`: the outbox at the command line."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import click

from ir.entrypoints.cli.options import json_option, lang_option

if TYPE_CHECKING:
    from ir.adapters.notify.service import NotifyService
    from ir.bootstrap import App

_STATUS = {
    "zh-CN": {"pending": "待发", "sending": "发送中", "delivered": "已送达", "failed": "失败", "person": "需人工"},
    "en": {
        "pending": "pending",
        "sending": "sending",
        "delivered": "delivered",
        "failed": "failed",
        "person": "by a person",
    },
}


def _service(app: App) -> NotifyService:
    from ir.domain.errors import InvalidInput

    if app.notify is None:
        where = app.settings.notifications_dir
        raise InvalidInput(f"no notification configuration at {where} (IR_NOTIFICATIONS_DIR; docs/notifications.md)")
    return app.notify


@click.group()
def notify() -> None:
    """Notifications: deliver the outbox, acknowledge a message."""


@notify.command(name="dispatch")
@click.option("--loop", is_flag=True, help="keep delivering until stopped (SIGTERM, Ctrl-C)")
@json_option
def dispatch(loop: bool, as_json: bool) -> None:
    """Deliver the messages due in the outbox (once, or --loop), with retries and back-off."""
    import signal

    from ir.entrypoints.cli.incident_commands import _app

    app = _app()
    dispatcher = _service(app).dispatcher()
    stop = threading.Event()
    if loop:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo("ir notify: dispatcher running (Ctrl-C stops it)", err=True)
    try:
        total = dispatcher.run(stop=stop, once=not loop)
    except KeyboardInterrupt:
        return
    summary = {k: getattr(total, k) for k in ("claimed", "delivered", "retrying", "failed", "escalated", "recorded")}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(", ".join(f"{k} {v}" for k, v in summary.items()))


@notify.command(name="ack")
@click.argument("incident_id", type=int)
@click.argument("message_id", type=int)
def ack(incident_id: int, message_id: int) -> None:
    """Acknowledge a message of an incident (as the local user)."""
    from ir.entrypoints.cli.incident_commands import _actor, _app

    app = _app()
    found, first = _service(app).acknowledge(_actor(), incident_id, message_id)
    state = "acknowledged" if first else f"already acknowledged at {found['acked_at']}"
    click.echo(f"message {message_id} of incident {incident_id}: {state}")


@notify.command(name="reply")
@click.argument("mail", type=click.File("rb"), default="-", required=False)
@click.option("--channel", help="sms, or an IM endpoint's name: a text reply (with --from, --text), not a mail")
@click.option("--from", "sender", help="the number (sms) or the person's name (IM) the text reply came from")
@click.option("--text", help="what the text reply says")
@json_option
def reply(mail: Any, channel: str | None, sender: str | None, text: str | None, as_json: bool) -> None:
    """A recipient's reply: a mail read whole from MAIL or standard input (for the mail server's pipe to
    a program), or a text (--channel sms --from NUMBER --text TEXT, for an SMS modem's receive hook). It
    acknowledges the message it answers. Exit 1 when it answers none (the reason is printed); an automatic
    answer (out of office, a bounce) is ignored with exit 0, so it is never bounced back."""
    from ir.adapters.notify.replies import MAX_MAIL, parse_mail, text_reply
    from ir.domain.errors import InvalidInput
    from ir.entrypoints.cli.incident_commands import _actor, _app

    app = _app()
    service = _service(app)
    if channel is not None:
        if sender is None or text is None:
            raise InvalidInput("a text reply needs --from and --text")
        service.reply_fields(channel)  # an unknown channel is refused by name
        answer = text_reply(channel, sender, text)
    else:
        if sender is not None or text is not None:
            raise InvalidInput("--from and --text go with --channel (a mail reply brings its own)")
        answer = parse_mail(mail.read(MAX_MAIL + 1), domain=service.config.smtp.domain)
    result = service.reply(_actor(), answer, source="cli")
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    elif result["acknowledged"]:
        state = "acknowledged" if result["acknowledged_now"] else f"already acknowledged at {result['acked_at']}"
        click.echo(f"message {result['message']} of incident {result['incident']}: {state}")
    else:
        click.echo(f"ir notify reply: not acknowledged: {result['reason']}", err=True)
    if not result["acknowledged"] and not answer.automatic:
        raise SystemExit(1)


@click.command()
@click.argument("incident_id", type=int)
@json_option
@lang_option
def notifications(incident_id: int, as_json: bool, lang: str) -> None:
    """The incident's notifications: each message's channel, recipient, delivery, failures and acknowledgement."""
    from ir.entrypoints.cli.incident_commands import _actor, _app

    app = _app()
    rows = _service(app).listing(_actor(), incident_id)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    en = lang == "en"
    if not rows:
        click.echo(f"incident {incident_id}: no notifications yet" if en else f"事件 {incident_id}：尚无通知")
        return
    for n in rows:
        _notice(n, lang)


def _notice(n: dict[str, Any], lang: str) -> None:
    en = lang == "en"
    names = _STATUS["en" if en else "zh-CN"]
    counts = ", ".join(f"{names.get(k, k)} {v}" for k, v in sorted(n["counts"].items()))
    recorded = (" — recorded as sent" if en else " — 已记为已发送") if n["recorded_at"] else ""
    critical = (" [critical]" if en else " [紧急]") if n["critical"] else ""
    click.echo(f"{n['notification']} ({n['cause']}){critical}: {n['subject']['en' if en else 'zh-CN']}")
    click.echo(f"  {counts}; {'acknowledged' if en else '已确认'} {n['acknowledged']}{recorded}")
    for m in n["messages"]:
        ack = f"  ack {m['acked_at']} by {m['acked_by']}" if m["acked_at"] else ""
        err = f"  ({m['error']})" if m["error"] and m["status"] != "delivered" else ""
        step = f" step {m['step']}" if m["step"] > 1 else ""
        click.echo(
            f"  #{m['id']:<6} {m['channel']:<9} {m['recipient'] or '-':<28} {names.get(m['status'], m['status'])}"
            f" x{m['attempts']}{step}{err}{ack}"
        )
