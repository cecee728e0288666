"""Stopping `ir serve` in order (SIGTERM, as a service manager does): requests in flight get their whole
answer, live streams end, the process exits 0 within the grace period, and the database is left whole —
the audit chain verifies with every event audited, and the projections equal a rebuild from the events.

The request kept in flight is an evidence upload whose client sends half the file, waits for the server
to stop listening, then sends the rest (`Expect: 100-continue` tells the test when the application has
begun reading it); meanwhile several connections keep adding notes until the server is gone."""

from __future__ import annotations

import json
import secrets
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from ir.adapters.db.rebuild import rebuild
from ir.adapters.db.tables import incident_events, incidents, work_items
from ir.bootstrap import build
from ir.config import Settings
from ir.domain import commands as c
from tests.conftest import table_rows
from tests.e2e.served import Served, listening, serve

LOCAL = c.Actor(id="local:tester", roles=frozenset({"admin"}))
WRITERS = 4


def open_incidents(settings: Settings, count: int) -> list[int]:
    with build(settings) as app:
        return [
            app.handlers.handle(
                c.OpenIncident(actor=LOCAL, playbook="ddos", title=f"DDoS wave {n}", level="IV")
            ).incident_id
            for n in range(count)
        ]


def upload_request(served: Served, incident: int, content: bytes) -> tuple[bytes, bytes]:
    """The head and body of a multipart evidence upload asking `Expect: 100-continue`."""
    boundary = secrets.token_hex(16)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="capture.pcap"\r\n'
            "Content-Type: application/vnd.tcpdump.pcap\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /api/incidents/{incident}/steps/confirm/evidence HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{served.port}\r\n"
        f"Authorization: Bearer {served.tokens['cmd']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()
    return head, body


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One whole HTTP/1.1 answer (Content-Length framed): status, headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before the answer's head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the answer was cut short: {len(body)} of {length} bytes"
        body += chunk
    return status, headers, body


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_sigterm_finishes_requests_in_flight_and_leaves_the_database_whole(migrated: Settings, tmp_path: Path) -> None:
    first, *others = open_incidents(migrated, 1 + WRITERS)
    content = secrets.token_bytes(4 * 1024 * 1024)
    with serve(migrated, tmp_path) as served, listening(served) as stream:
        # the upload: the application is reading it (100 Continue) when the signal comes
        head, body = upload_request(served, first, content)
        upload = socket.create_connection(("127.0.0.1", served.port), timeout=60)
        upload.sendall(head)
        assert upload.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        upload.sendall(body[: len(body) // 2])

        # writers adding notes on their own connections until the server is gone
        answered: list[tuple[int, int, str]] = []  # (incident, status, body)
        refused: list[str] = []
        go = threading.Event()

        def write(incident: int) -> None:
            with httpx.Client(headers=served.headers("cmd"), timeout=60) as client:
                n = 0
                while True:
                    n += 1
                    try:
                        answer = client.post(f"{served.url}/api/incidents/{incident}/notes", json={"text": f"note {n}"})
                    except httpx.TransportError as exc:  # not accepted or never begun: the server is stopping
                        refused.append(type(exc).__name__)
                        return
                    answered.append((incident, answer.status_code, answer.text))
                    if n == 5:
                        go.set()

        writers = [threading.Thread(target=write, args=(i,)) for i in others]
        for w in writers:
            w.start()
        assert go.wait(60)
        served.proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        while accepting(served.port):  # the listening socket closes first
            assert time.monotonic() - stopped_at < 60, "ir serve still accepts connections after SIGTERM"
            time.sleep(0.05)

        upload.sendall(body[len(body) // 2 :])
        status, headers, answer = read_answer(upload)
        upload.close()
        assert status == 200, answer
        uploaded = json.loads(answer)
        assert uploaded["incident"] == first
        assert headers["etag"] == f'"{uploaded["version"]}"'

        code = served.proc.wait(timeout=60)
        assert code == 0, served.output()
        assert "Traceback" not in served.output()
        assert stream.ended.wait(30), "the live stream did not end"
        for w in writers:
            w.join(timeout=60)

    # every note either answered whole (201) or never begun; none failed on the server
    assert answered and all(s == 201 for _, s, _ in answered), {s for _, s, _ in answered}
    assert all(json.loads(text)["incident"] == i for i, _, text in answered)
    assert len(refused) == WRITERS

    app = build(migrated)
    try:
        with app.db.connection() as conn:
            notes: dict[int, int] = dict(
                conn.execute(
                    select(incident_events.c.incident_id, func.count())
                    .where(incident_events.c.kind == "note_added")
                    .group_by(incident_events.c.incident_id)
                ).all()
            )
        for incident in others:  # what was answered is stored, and nothing else
            assert notes.get(incident, 0) == sum(1 for i, _, _ in answered if i == incident)
        with app.db.read() as repo:
            board = repo.get(first)
        assert board.version == uploaded["version"]

        projected = (table_rows(app, incidents), table_rows(app, work_items))
        rebuild(app.db)
        assert (table_rows(app, incidents), table_rows(app, work_items)) == projected
    finally:
        app.close()

    verified = served.ir("audit", "verify", "--events")
    assert verified.code == 0, verified.out + verified.err
