"""The command line against a server: a real `ir serve` in a subprocess on a free port (on a migrated SQLite
file, and on PostgreSQL), users and tokens made with the real `ir users …`, and the real `ir` driven with
--server and a token, as its user. Every refusal keeps its exit code and the server's words; a server that
is down is one line and exit 69; a token's last use is recorded.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ir.bootstrap import build
from ir.config import Settings
from tests.conftest import PLAYBOOKS, decrypt_audit
from tests.e2e.cli import ROOT, Run, ir
from tests.integration.api_support import DATABASES, database

PASSWORD = "a long pass phrase for tests 2026"
START_TIMEOUT = 60  # seconds: generous, the machine is shared
# What a command against a server must not touch: a local database (there is none where this points).
NO_LOCAL_DATABASE = {"IR_DATABASE_URL": "sqlite:////nonexistent/ir-remote-test/ir.db"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    local: dict[str, str]  # the environment of the server's machine (its database, its keys)
    folder: Path
    tokens: dict[str, str]  # name -> token secret
    proc: subprocess.Popen[bytes]

    def here(self, *args: str) -> Run:
        """`ir` on the server's machine, on its database (acting as local:<os user>)."""
        return ir(*args, env=self.local)

    def token_file(self, name: str) -> str:
        path = self.folder / f"{name}.token"
        if not path.exists():
            path.write_text(self.tokens[name] + "\n", encoding="utf-8")
            path.chmod(0o600)
        return str(path)

    def remote(self, who: str, *args: str, env: dict[str, str] | None = None) -> Run:
        """`ir --server URL --token-file F …` as the token's user, from a machine with no database."""
        return ir(
            "--server", self.url, "--token-file", self.token_file(who), *args, env={**NO_LOCAL_DATABASE, **(env or {})}
        )


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"ir serve did not start: {log.read_text(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture(scope="module", params=DATABASES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp(f"remote-{request.param}")
    with database(str(request.param), folder) as url:
        local = {
            "IR_DATABASE_URL": url,
            "IR_DATA_DIR": str(folder),
            "IR_PLAYBOOKS_DIR": str(PLAYBOOKS),
            "IR_LANG": "en",
        }
        port = free_port()
        log = folder / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ir", "serve", "--port", str(port)],
                cwd=ROOT,
                env={**os.environ, **local},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            found = Server(f"http://127.0.0.1:{port}", local, folder, {}, proc)
            _wait_until_up(found.url, proc, log)
            yield found
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def people(server: Server) -> Server:
    """A commander and a responder, each with a token made at the command line, and a read-only token."""
    for user, role in (("cora", "commander"), ("rita", "responder")):
        added = server.here("users", "add", user, "--role", role, "--password", PASSWORD)
        assert added.code == 0, added.err
    for name, user, scopes in (
        ("cora", "cora", "read,write"),
        ("rita", "rita", "read,write"),
        ("reader", "rita", "read"),
    ):
        made = server.here(
            "users", "token", "create", user, "--name", f"cli {name}", "--scopes", scopes, "--expires", "30d"
        )
        assert made.code == 0, made.err
        secret = made.out.strip()
        assert secret.startswith("ir_") and "\n" not in secret  # the token alone on stdout, once
        assert "not shown again" in made.err
        server.tokens[name] = secret
    return server


def _open(people: Server, title: str = "DDoS on IDC-3") -> int:
    opened = people.remote("cora", "open", "ddos", "--title", title, "--level", "III", "--json")
    assert opened.code == 0, opened.err
    incident = int(json.loads(opened.out)["incident"])
    return incident


def test_an_administrator_issues_tokens_shown_once_and_listed_without_secrets(people: Server) -> None:
    listed = people.here("users", "token", "list", "rita", "--json")
    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)
    assert sorted(r["scopes"] for r in rows) == ["read", "read,write"]
    assert all(r["expires_at"] for r in rows)
    assert people.tokens["rita"] not in listed.out and people.tokens["reader"] not in listed.out
    text = people.here("users", "token", "list")
    assert "cli reader" in text.out and "active" in text.out and people.tokens["cora"] not in text.out


def test_open_list_status_and_steps_through_the_server_as_the_tokens_user(people: Server) -> None:
    incident = _open(people)

    # the list and the timeline print exactly what the command line prints on the server's machine
    for args in (("incidents",), ("timeline", str(incident)), ("timeline", str(incident), "--json")):
        remote, local = people.remote("rita", *args), people.here(*args)
        assert remote.code == 0 and local.code == 0, (remote.err, local.err)
        assert remote.out == local.out
    remote, local = people.remote("rita", "incidents", "--json"), people.here("incidents", "--json")
    moving = {"due_marks", "overdue_marks"}  # the server's timers mark deadlines as they pass, between the reads
    assert [{k: v for k, v in r.items() if k not in moving} for r in json.loads(remote.out)] == [
        {k: v for k, v in r.items() if k not in moving} for r in json.loads(local.out)
    ]
    board = people.remote("rita", "status", str(incident), "--lang", "en")
    assert board.code == 0, board.err
    assert f"#{incident} DDoS on IDC-3" in board.out and "Level III" in board.out and "confirm" in board.out
    as_json = json.loads(people.remote("rita", "status", str(incident), "--json").out)
    assert as_json["id"] == incident and as_json["level"] == "III"

    # the commander puts the responder on duty; the responder works the step, as herself
    assigned = people.remote("cora", "assign", str(incident), "soc", "rita")
    assert assigned.code == 0, assigned.err
    started = people.remote("rita", "step", str(incident), "confirm", "start")
    assert started.code == 0, started.err
    assert f"incident {incident}: step 'confirm' started" in started.out
    done = people.remote("rita", "step", str(incident), "confirm", "done", "--note", "SYN flood, 40 Gbps", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["events"] == ["step_completed"]
    noted = people.remote("rita", "note", str(incident), "upstream asked for help")
    assert noted.code == 0, noted.err
    facts = people.remote("rita", "fact", str(incident), "peak_gbps=40")
    assert facts.code == 0, facts.err

    entries = json.loads(people.remote("rita", "timeline", str(incident), "--json").out)
    by_kind = {e["kind"]: e["actor"] for e in entries}
    assert by_kind["incident_opened"] == "cora"
    assert by_kind["step_started"] == by_kind["step_completed"] == by_kind["note_added"] == "rita"
    with build(_settings(people)) as app:
        audited = [r for r in decrypt_audit(app) if r["subject"] == f"incident:{incident}"]
    assert any(r["actor"] == "rita" for r in audited), audited
    assert not any(r["actor"].startswith("local:") for r in audited)  # no act of the command line's own

    deadlines = people.remote("rita", "deadlines", str(incident), "--json", "--all")
    assert deadlines.code == 0, deadlines.err
    refs = {d["ref"]: d for d in json.loads(deadlines.out)}
    assert refs["step:confirm"]["state"] in ("met", "missed")
    assert people.remote("rita", "deadlines", str(incident)).code == 0


def _settings(server: Server) -> Settings:
    return Settings(
        database_url=server.local["IR_DATABASE_URL"],
        data_dir=server.local["IR_DATA_DIR"],
        playbooks_dir=server.local["IR_PLAYBOOKS_DIR"],
    )


def test_evidence_classification_the_log_personal_data_and_the_end_through_the_server(people: Server) -> None:
    incident = _open(people, "the rest of it")
    assert people.remote("cora", "assign", str(incident), "soc", "rita").code == 0
    facts = people.remote("rita", "fact", str(incident), "provinces_affected=1", "cities_affected=3")
    assert facts.code == 0, facts.err
    remote, local = people.remote("rita", "classify", str(incident)), people.here("classify", str(incident))
    assert remote.code == 0 and remote.out == local.out, (remote.err, local.out)

    graph = people.folder / "graph.png"
    graph.write_bytes(b"\x89PNG\r\n\x1a\n a traffic graph")
    for step, act in (("confirm", "start"), ("confirm", "done"), ("scrubbing", "start")):
        assert people.remote("rita", "step", str(incident), step, act).code == 0
    done = people.remote("rita", "step", str(incident), "scrubbing", "done", "--evidence", str(graph), "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["events"] == ["evidence_attached", "step_completed"]
    board = json.loads(people.remote("rita", "status", str(incident), "--json").out)
    assert next(s for s in board["steps"] if s["id"] == "scrubbing")["status"] == "done"

    logged = people.remote("rita", "log", str(incident), "observation", "traffic down to 2 Gbps")
    assert logged.code == 0, logged.err
    remote, local = people.remote("rita", "log", str(incident)), people.here("log", str(incident))
    assert remote.code == 0 and remote.out == local.out and "traffic down to 2 Gbps" in remote.out

    sealed = people.remote("rita", "note", str(incident), "customer 张三 called", "--about", "tel:13800138000")
    assert sealed.code == 0, sealed.err
    assert "张三" not in people.remote("rita", "timeline", str(incident), "--json").out  # masked
    notes = [e for e in json.loads(people.here("timeline", str(incident), "--json").out) if e["kind"] == "note_added"]
    refused = people.remote("rita", "reveal", str(incident), "--note", str(len(notes)), "--reason", "call back")
    assert refused.code == 5, refused.err  # a responder may not reveal personal data
    revealed = people.remote("cora", "reveal", str(incident), "--note", str(len(notes)), "--reason", "call back")
    assert revealed.code == 0 and "张三" in revealed.out, revealed.err

    closed = people.remote("cora", "close", str(incident), "--reason", "drill over")
    assert closed.code == 0 and f"incident {incident} closed" in closed.out, closed.err
    assert json.loads(people.remote("rita", "status", str(incident), "--json").out)["closed"]


def test_a_commander_works_an_incident_through_the_server(people: Server) -> None:
    incident = str(_open(people, "the commander's acts"))
    graph = people.folder / "graph-2.png"
    graph.write_bytes(b"\x89PNG\r\n\x1a\n another traffic graph")
    acts: list[tuple[str, ...]] = [
        ("clock", incident, "awareness"),
        ("step", incident, "confirm", "start"),
        ("step", incident, "confirm", "done"),
        ("step", incident, "upstream-help", "skip", "--note", "the upstream is unreachable"),
        ("step", incident, "scrubbing", "start"),
        ("step", incident, "scrubbing", "fail", "--note", "the scrubbing centre is full"),
        ("step", incident, "scrubbing", "retry"),  # in progress again
        ("step", incident, "scrubbing", "done", "--evidence", str(graph)),
        ("approve", incident, "lift-mitigation", "--as", "commander"),
        ("level", incident, "II", "--reason", "a second province"),
        ("restore", incident, "--degraded"),
    ]
    for args in acts:
        done = people.remote("cora", *args)
        assert done.code == 0, (args, done.err)
    assert done.out.strip() == f"incident {incident}: service restored (degraded)"
    kinds = [e["kind"] for e in json.loads(people.remote("cora", "timeline", incident, "--json").out)]
    for kind in ("clock_recorded", "step_skipped", "step_failed", "step_retried", "step_approved"):
        assert kind in kinds, (kind, kinds)
    board = json.loads(people.remote("cora", "status", incident, "--json").out)
    assert board["level"] == "II"
    assert {s["id"]: s["status"] for s in board["steps"]}["upstream-help"] == "skipped"


def test_refusals_keep_their_exit_codes_and_the_servers_words(people: Server) -> None:
    incident = _open(people, "refusals")

    read_only = people.remote("reader", "note", str(incident), "a note")
    assert (read_only.code, read_only.err.strip()) == (5, "ir: this API token may only read")
    assert people.remote("reader", "status", str(incident)).code == 0  # reading is what it may do

    not_a_commander = people.remote("rita", "level", str(incident), "II", "--reason", "worse")
    assert not_a_commander.code == 5, not_a_commander.err
    assert "level.declare" in not_a_commander.err or "may not" in not_a_commander.err

    missing = people.remote("rita", "status", "999999")
    assert missing.code == 3 and missing.err.startswith("ir: ") and "999999" in missing.err

    people.remote("cora", "step", str(incident), "confirm", "start")
    twice = people.remote("cora", "step", str(incident), "confirm", "start")
    assert twice.code == 4 and twice.err.startswith("ir: "), twice.err
    stale = people.remote("cora", "note", str(incident), "late", "--step", "confirm")
    assert stale.code == 0
    version = json.loads(people.remote("cora", "status", str(incident), "--json").out)["version"]
    conflict = people.remote("cora", "step", str(incident), "confirm", "done", "--if-version", str(version - 1))
    assert conflict.code == 4 and "version" in conflict.err, conflict.err

    bad_clock = people.remote("cora", "clock", str(incident), "no-such-clock")
    assert bad_clock.code == 2 and bad_clock.err.startswith("ir: "), bad_clock.err
    a_file = people.remote("cora", "open", "./playbooks/attack/ddos.yaml", "--title", "from a file")
    assert a_file.code == 2 and "by playbook id" in a_file.err

    bad_token = ir("--server", people.url, "--token", "ir_0000_not-a-token", "status", str(incident))
    assert bad_token.code == 6 and "token" in bad_token.err, bad_token.err
    no_token = ir("--server", people.url, "status", str(incident), env=NO_LOCAL_DATABASE)
    assert no_token.code == 6 and "--token-file" in no_token.err


def test_the_environment_names_the_server_and_the_token(people: Server) -> None:
    incident = _open(people, "from the environment")
    env = {**NO_LOCAL_DATABASE, "IR_SERVER": people.url, "IR_TOKEN_FILE": people.token_file("rita")}
    found = ir("status", str(incident), "--json", env=env)
    assert found.code == 0 and json.loads(found.out)["id"] == incident, found.err
    env = {**NO_LOCAL_DATABASE, "IR_SERVER": people.url, "IR_TOKEN": people.tokens["rita"]}
    assert ir("incidents", "--open", env=env).code == 0

    shared = people.folder / "shared.token"
    shared.write_text(people.tokens["rita"], encoding="utf-8")
    shared.chmod(0o644)
    warned = ir("--server", people.url, "--token-file", str(shared), "incidents", env=NO_LOCAL_DATABASE)
    assert warned.code == 0 and "can be read by other users" in warned.err  # a warning, not a refusal


def test_local_only_commands_refuse_a_server(people: Server) -> None:
    for args in (("db", "upgrade"), ("audit", "verify"), ("users", "list"), ("serve",)):
        refused = people.remote("cora", *args)
        assert refused.code == 2, (args, refused.err)
        assert "does not take --server" in refused.err and refused.err.count("\n") == 1
    # a command the server's API does not offer to the command line yet is refused, not run locally
    refused = people.remote("cora", "resources", "list")
    assert refused.code == 2 and "server" in refused.err, refused.err


def test_a_server_that_is_down_is_one_line_and_exit_69(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("ir_0_x\n", encoding="utf-8")
    token.chmod(0o600)
    down = ir(
        "--server", f"http://127.0.0.1:{free_port()}", "--token-file", str(token), "incidents", env=NO_LOCAL_DATABASE
    )
    assert down.code == 69
    assert down.err.startswith("ir: cannot reach the server http://127.0.0.1:") and down.err.count("\n") == 1
    bad = ir("--server", "ftp://example.org", "--token-file", str(token), "incidents", env=NO_LOCAL_DATABASE)
    assert bad.code == 2 and "--server takes" in bad.err


@contextmanager
def listening(tls: Path | None = None) -> Iterator[int]:
    """A socket that accepts connections and never answers (with `tls`, a certificate and key file, it
    first shakes hands with a certificate nobody trusts); its port."""
    context = None
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls)
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            if context is not None:
                try:
                    conn = context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        sock.close()


def self_signed(folder: Path) -> Path:
    """A certificate for 127.0.0.1 that no one has signed, with its key, in one PEM file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    path = folder / "server.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def test_an_untrusted_certificate_and_a_silent_server_are_one_line_and_exit_69(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("ir_0_x\n", encoding="utf-8")
    token.chmod(0o600)
    with listening(self_signed(tmp_path)) as port:
        tls = ir(
            "--server", f"https://127.0.0.1:{port}", "--token-file", str(token), "incidents", env=NO_LOCAL_DATABASE
        )
    assert tls.code == 69, tls.err
    assert "TLS" in tls.err and "certificate" in tls.err and tls.err.count("\n") == 1
    with listening() as port:
        silent = ir(
            "--server",
            f"http://127.0.0.1:{port}",
            "--token-file",
            str(token),
            "incidents",
            env={**NO_LOCAL_DATABASE, "IR_SERVER_TIMEOUT": "1"},
        )
    assert silent.code == 69, silent.err
    assert "did not answer within 1 s" in silent.err and silent.err.count("\n") == 1


class _Moved(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(301)
        self.send_header("Location", "https://ir.example.org/api/incidents")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_server_that_redirects_is_named_not_followed(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("ir_0_x\n", encoding="utf-8")
    token.chmod(0o600)
    moved = http.server.HTTPServer(("127.0.0.1", 0), _Moved)
    thread = threading.Thread(target=moved.serve_forever, daemon=True)
    thread.start()
    try:
        where = f"http://127.0.0.1:{moved.server_address[1]}"
        found = ir("--server", where, "--token-file", str(token), "incidents", env=NO_LOCAL_DATABASE)
    finally:
        moved.shutdown()
        moved.server_close()
    assert found.code == 69 and "https://ir.example.org/api/incidents" in found.err, found.err


def test_a_tokens_last_use_is_recorded(people: Server) -> None:
    assert people.remote("reader", "incidents").code == 0
    listed = json.loads(people.here("users", "token", "list", "rita", "--json").out)
    reader = next(r for r in listed if r["scopes"] == "read")
    assert reader["last_used_at"] is not None
