"""Notifications' speed: one notification fanned out to 10,000 recipients (contacts imported in one group)
through the outbox and the dispatcher to a local aiosmtpd server, beside a plain smtplib loop sending the
same number of the same messages over one connection to the same server in the same run (the ceiling).

Each round runs in a fresh subprocess (so its peak RSS is the fan-out's and the dispatch's own): it opens an
incident at level II, which writes 10,000 outbox rows in the command's transaction (timed: the fan-out),
then runs the dispatcher until every message is delivered and recorded (timed: mails/s, counted from the
command to the last delivery recorded, with every attempt audited). Target: >= 500 mails/s, peak RSS of
the round < 200 MB. SQLite (WAL, synchronous=FULL) in a temporary folder, or --database-url for
PostgreSQL. IR_BENCH_QUICK=1 uses 2,000 recipients.
"""

from __future__ import annotations

import argparse
import email.policy
import json
import os
import resource
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402

from ir.adapters.clock import SystemClock  # noqa: E402
from ir.adapters.db.contacts import import_csv  # noqa: E402
from ir.adapters.db.engine import make_engine  # noqa: E402
from ir.adapters.db.schema import upgrade  # noqa: E402
from ir.adapters.notify.channels import Outgoing, email_message  # noqa: E402
from ir.bootstrap import build  # noqa: E402
from ir.config import Settings  # noqa: E402
from ir.domain import commands as c  # noqa: E402

QUICK = os.environ.get("IR_BENCH_QUICK") == "1"
ACTOR = c.Actor(id="bench", roles=frozenset({"admin"}))


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.ids: set[str] = set()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = bytes(envelope.content)
        head = content[: content.find(b"\r\n\r\n")]
        mid = next((line for line in head.split(b"\r\n") if line.lower().startswith(b"message-id:")), b"")
        with self.lock:
            self.count += 1
            self.ids.add(mid.decode(errors="replace"))
        return "250 OK"


def _playbook(folder: Path) -> Path:
    from tests.builders import MINIMAL_PLAYBOOK

    books = folder / "playbooks"
    books.mkdir(exist_ok=True)
    text = MINIMAL_PLAYBOOK.replace("id: mini\n", "id: bench-notify\n").split("notifications:\n")[0]
    text += (
        "notifications:\n"
        "  - id: all-hands\n"
        "    title: {zh-CN: 全员通知, en: Everyone told}\n"
        "    audience: internal\n"
        "    groups: [everyone]\n"
        "    channels: [email]\n"
        "    template: incident-declared\n"
        "    due: declaration + 5m\n"
        "restoration:\n"
        "  degraded: {zh-CN: 部分恢复, en: Partly back}\n"
        "  full: {zh-CN: 全部恢复, en: All back}\n"
    )
    (books / "bench-notify.yaml").write_text(text, encoding="utf-8")
    return books


def _notifications(folder: Path, port: int) -> Path:
    target = folder / "notifications"
    target.mkdir(exist_ok=True)
    shutil.copytree(ROOT / "notifications" / "templates", target / "templates", dirs_exist_ok=True)
    (target / "routing.yaml").write_text(
        json.dumps(
            {"base_url": "https://ir.example.org", "org": "示例通信公司", "dispatch": {"batch": 500, "poll": 0.05}}
        ),
        encoding="utf-8",
    )
    (target / "channels.yaml").write_text(
        json.dumps({"smtp": {"host": "127.0.0.1", "port": port, "security": "none", "sender": "ir <ir@example.org>"}}),
        encoding="utf-8",
    )
    return target


def _settings(url: str, folder: Path, port: int) -> Settings:
    return Settings(
        database_url=url,
        data_dir=str(folder),
        playbooks_dir=str(_playbook(folder)),
        notifications_dir=str(_notifications(folder, port)),
    )


# -- one round, in its own process ------------------------------------------------------------------------


def round_child(url: str, folder: str, port: int) -> None:
    if os.environ.get("IR_BENCH_PROFILE"):
        import cProfile

        cProfile.runctx("_round(url, folder, port)", globals(), locals(), os.environ["IR_BENCH_PROFILE"])
        return
    _round(url, folder, port)


def _round(url: str, folder: str, port: int) -> None:
    app = build(_settings(url, Path(folder), port), clock=SystemClock())
    assert app.notify is not None
    dispatcher = app.notify.dispatcher()
    t0 = time.perf_counter()
    app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="bench-notify", title="骨干网中断", level="II"))
    fanout = time.perf_counter() - t0
    stop = threading.Event()
    total = dispatcher.run(stop=stop, once=True)
    elapsed = time.perf_counter() - t0
    app.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"fanout": fanout, "elapsed": elapsed, "delivered": total.delivered, "rss_mb": rss_mb}))


# -- the ceiling: a plain smtplib loop ---------------------------------------------------------------------


def plain_loop(port: int, n: int) -> float:
    """The transport's ceiling: smtplib.sendmail of a message laid out once by the email package (text and
    HTML, the Chinese subject encoded; only its Message-ID varied), n times over one connection; mails/s."""
    item = Outgoing(
        key="0" * 40,
        channel="email",
        address="p00000@example.org",
        endpoint=None,
        subject="启动重大应急响应：骨干网中断",
        text="示例通信公司已启动重大应急响应。\n" * 3,
        html="<p>示例通信公司已启动重大应急响应。</p>" * 3,
        ack_url="",
        incident_id=1,
        notification="all-hands",
        audience="internal",
        critical=False,
        lang="zh-CN",
    )
    msg = email_message(item, sender="ir <ir@example.org>", domain="example.org", cte="base64")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(n):
            smtp.sendmail("ir@example.org", [f"p{i:05}@example.org"], raw.replace(b"0" * 40, f"{i:040x}".encode(), 1))
    return n / (time.perf_counter() - t0)


def plain_child(port: int, n: int) -> None:
    print(json.dumps({"rate": plain_loop(port, n)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--recipients", type=int, default=2_000 if QUICK else 10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="PostgreSQL (an empty database); default: SQLite in a temporary folder")
    parser.add_argument("--child", nargs=3, metavar=("URL", "FOLDER", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--plain", nargs=2, metavar=("PORT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        round_child(args.child[0], args.child[1], int(args.child[2]))
        return
    if args.plain:
        plain_child(int(args.plain[0]), int(args.plain[1]))
        return
    counter = Counter()
    with tempfile.TemporaryDirectory(prefix="ir-bench-notify-") as tmp:
        folder = Path(tmp)
        port = _free_port()
        server = Controller(counter, hostname="127.0.0.1", port=port)
        server.start()
        try:
            url = args.database_url or f"sqlite:///{folder / 'ir.db'}"
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            app = build(_settings(url, folder, port), clock=SystemClock())
            n = args.recipients
            rows = "\n".join(f"p{i:05},人{i},,p{i:05}@example.org,,zh-CN,everyone" for i in range(n))
            t0 = time.perf_counter()
            with app.db.uow() as uow:
                import_csv(
                    uow.conn,
                    app.db.vault,
                    "id,name,phone,email,address,lang,groups\n" + rows + "\n",
                    at=app.clock.now(),
                )
                uow.commit()
            print(f"setup: {n:,} contacts imported in {time.perf_counter() - t0:.1f} s (not measured)")
            app.close()
            rates, fanouts, rss, ceilings = [], [], [], []
            for r in range(args.rounds):
                before = counter.count
                out = subprocess.run(
                    [sys.executable, __file__, "--child", url, str(folder), str(port)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                got = json.loads(out.strip().splitlines()[-1])
                assert got["delivered"] == n and counter.count - before == n, (got, counter.count - before)
                rates.append(n / got["elapsed"])
                fanouts.append(got["fanout"])
                rss.append(got["rss_mb"])
                plain = subprocess.run(
                    [sys.executable, __file__, "--plain", str(port), str(n)], capture_output=True, text=True, check=True
                ).stdout
                ceilings.append(json.loads(plain.strip().splitlines()[-1])["rate"])
                print(
                    f"round {r + 1}: outbox+dispatcher {rates[-1]:,.0f} mails/s (fan-out {got['fanout']:.2f} s), "
                    f"peak RSS {got['rss_mb']:.0f} MB; plain smtplib {ceilings[-1]:,.0f} mails/s"
                )
        finally:
            server.stop()
    rate, ceiling = statistics.median(rates), statistics.median(ceilings)
    db = "PostgreSQL" if args.database_url else "SQLite (WAL, synchronous=FULL)"
    print(
        f"\none notification to {n:,} recipients by e-mail, {db}, median of {args.rounds}:\n"
        f"  outbox + dispatcher: {rate:,.0f} mails/s (target >= 500/s), fan-out into the outbox "
        f"{statistics.median(fanouts):.2f} s, peak RSS {max(rss):.0f} MB (target < 200 MB)\n"
        f"  ceiling, a plain smtplib loop (its own process, one connection, the message laid out once) to the same "
        f"server: {ceiling:,.0f} mails/s; ratio {rate / ceiling:.2f}\n"
        "  (the machine is shared and noisy: the SMTP server runs in this process, on the same cores; the"
        " dispatcher's figure includes claiming, opening each sealed address, settling and auditing each attempt)"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
