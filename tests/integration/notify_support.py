"""What the notification tests share: a real SMTP server (aiosmtpd), a real HTTP server (http.server in a
thread) that checks webhook signatures, a playbook whose notifications use every channel, a notifications/
folder pointing at the two servers, and contacts imported as an operator would."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from ir.adapters.clock import SimulatedClock
from ir.adapters.db.contacts import import_csv
from ir.adapters.db.tables import outbox_messages
from ir.adapters.notify.dispatcher import Pass
from ir.adapters.notify.service import NotifyService
from ir.bootstrap import App
from ir.domain import commands as c
from tests.builders import MINIMAL_PLAYBOOK
from tests.conftest import ACTOR, table_rows

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "test-webhook-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mail:
    envelope_to: list[str]
    message: EmailMessage
    raw: bytes
    tls: bool = False  # the DATA came over TLS (STARTTLS or implicit)


@dataclass
class MailHandler:
    mails: list[Mail] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            time.sleep(self.delay)
        raw = bytes(envelope.original_content or envelope.content)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.mails.append(Mail(list(envelope.rcpt_tos), msg, raw, tls=over_tls(server)))
        return "250 OK"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m.message["Message-ID"]) for m in self.mails]


def over_tls(server: Any) -> bool:
    """Whether aiosmtpd's session is on TLS now (after STARTTLS, or implicit TLS from the first byte)."""
    transport = getattr(server, "transport", None)
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class SmtpServer:
    """aiosmtpd on a fixed local port, which can be stopped and started again (the server down, then back).
    `tls`: "starttls" (STARTTLS required before MAIL or AUTH) or "tls" (implicit TLS), with `certificate`
    (the server's certificate chain and key files)."""

    def __init__(
        self,
        port: int | None = None,
        *,
        delay: float = 0.0,
        login: tuple[str, str] | None = None,
        tls: str | None = None,
        certificate: tuple[Path, Path] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.handler = MailHandler(delay=delay)
        self.login = login
        self.tls = tls
        self.certificate = certificate
        self.logins: list[tuple[bytes, bool]] = []  # each AUTH seen: the login and whether it came over TLS
        self._controller: Controller | None = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.logins.append((bytes(data.login), over_tls(server)))
        ok = self.login is not None and (data.login, data.password) == (self.login[0].encode(), self.login[1].encode())
        return AuthResult(success=ok)

    def start(self) -> SmtpServer:
        extra: dict[str, Any] = {}
        if self.login is not None:  # AUTH over plain TCP: the test's own loopback server only
            extra = {"authenticator": self._authenticate, "auth_require_tls": False, "auth_required": True}
        if self.tls is not None:
            assert self.certificate is not None
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, self.certificate))
            if self.tls == "starttls":  # aiosmtpd refuses AUTH before STARTTLS (auth_require_tls)
                extra.update(tls_context=context, require_starttls=True, auth_require_tls=True)
            else:  # implicit TLS: aiosmtpd sees no STARTTLS, so its own AUTH-needs-TLS check is off; logins records it
                extra["ssl_context"] = context
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **extra)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def mails(self) -> list[Mail]:
        return self.handler.mails


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpServer:
    """A real HTTP server in a thread recording every POST; `/fail/…` answers 500, `/dingtalk-bad` an error code."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                owner.posts.append(Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if self.path.startswith("/fail") else 200
                answer = b'{"errcode":0,"errmsg":"ok","code":0}'
                if self.path.startswith("/dingtalk-bad"):
                    answer = b'{"errcode":310000,"errmsg":"sign not match"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> HttpServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Post]:
        return [p for p in self.posts if p.path.split("?")[0] == path]


def signature_ok(post: Post, secret: str = WEBHOOK_SECRET) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), post.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(post.headers.get("x-ir-signature", ""), expected)


NOTIFY_PLAYBOOK = (
    MINIMAL_PLAYBOOK.replace("id: mini\n", "id: notify-test\n").split("notifications:\n")[0]
    + """\
notifications:
  - id: callout
    title: {zh-CN: 启动应急响应, en: Response declared}
    audience: internal
    roles: [commander, noc]
    groups: [ops]
    channels: [email, sms, phone, dingtalk, wecom, feishu, slack, teams, webhook, cap]
    template: incident-declared
    due: declaration + 5m
    critical: true
  - id: tell-regulator
    title: {zh-CN: 向管理局报告, en: Report to the administration}
    audience: regulator
    groups: [cab]
    channels: [email]
    template: regulator-initial
    levels: [I, II]
    due: detection + 30m
restoration:
  degraded: {zh-CN: 部分恢复, en: Partly back}
  full: {zh-CN: 全部恢复, en: All back}
"""
)

MAIL_PLAYBOOK = (
    MINIMAL_PLAYBOOK.replace("id: mini\n", "id: mail-test\n").split("notifications:\n")[0]
    + """\
notifications:
  - id: all-hands
    title: {zh-CN: 全员通知, en: Everyone told}
    audience: internal
    groups: [everyone]
    channels: [email]
    template: incident-declared
    due: declaration + 5m
restoration:
  degraded: {zh-CN: 部分恢复, en: Partly back}
  full: {zh-CN: 全部恢复, en: All back}
"""
)


CONTACTS = """id,name,phone,email,address,lang,groups
li.lei,李雷,13800000001,li.lei@example.org,,zh-CN,duty-commanders;ops
zhao.liu,赵六,13800000006,zhao.liu@example.org,,zh-CN,duty-commanders
han.meimei,韩梅梅,13800000002,han.meimei@example.org,,en,ops
wang.wu,王五,13800000003,wang.wu@example.org,,zh-CN,noc-duty
cab1,管理局值班,13800000004,cab1@example.org,,zh-CN,cab
cab2,管理局副值班,13800000005,cab2@example.org,,zh-CN,cab
"""
TITLE = "骨干网中断"


@dataclass
class Rig:
    """An application with notifications pointing at a real SMTP server and a real HTTP server, and the
    contacts above (the `rig` fixture, tests/integration/conftest.py)."""

    app: App
    notify: NotifyService
    smtp: SmtpServer
    http: HttpServer
    clock: SimulatedClock

    def dispatch(self) -> Pass:
        return self.notify.dispatcher().run(stop=threading.Event(), once=True)

    def open(self, level: str = "II", mode: str = "real") -> int:
        outcome = self.app.handlers.handle(
            c.OpenIncident(actor=ACTOR, playbook="notify-test", title=TITLE, level=level, mode=mode)
        )
        return int(outcome.incident_id)

    def messages(self) -> list[dict[str, Any]]:
        return table_rows(self.app, outbox_messages)


def playbook_folder(tmp: Path) -> Path:
    folder = tmp / "playbooks"
    folder.mkdir(exist_ok=True)
    (folder / "notify-test.yaml").write_text(NOTIFY_PLAYBOOK, encoding="utf-8")
    (folder / "mail-test.yaml").write_text(MAIL_PLAYBOOK, encoding="utf-8")
    return folder


def notify_folder(
    tmp: Path,
    *,
    smtp_port: int,
    http: HttpServer | None,
    dispatch: dict[str, Any] | None = None,
    channels_extra: dict[str, Any] | None = None,
) -> Path:
    """notifications/ for the tests: the shipped templates, routing and channels pointing at local servers
    (`channels_extra`: settings added to the SMS gateway's and to each named endpoint's)."""
    folder = tmp / "notifications"
    folder.mkdir(exist_ok=True)
    shutil.copytree(ROOT / "notifications" / "templates", folder / "templates", dirs_exist_ok=True)
    settings = {
        "batch": 50,
        "max_attempts": 50,
        "backoff": 0.01,
        "backoff_max": 0.05,
        "lease": 1,
        "poll": 0.05,
        "escalate_after": 600,
        **(dispatch or {}),
    }
    routing = {
        "base_url": "https://ir.example.org",
        "org": "示例通信公司",
        "roles": {"commander": "duty-commanders", "noc": "noc-duty"},
        "groups": {"cab": {"reach": "first"}},
        "audiences": {
            "internal": {k: [f"ops-{k}"] for k in ("dingtalk", "wecom", "feishu", "slack", "teams", "webhook")}
        }
        if http is not None
        else {},
        "dispatch": settings,
    }
    endpoints: dict[str, Any] = {}
    if http is not None:
        endpoints = {
            "ops-webhook": {"kind": "webhook", "url": "${TEST_HOOK_URL}", "secret": "${TEST_HOOK_SECRET}"},
            **{
                f"ops-{k}": {"kind": k, "url": "${TEST_URL_" + k.upper() + "}"}
                for k in ("dingtalk", "wecom", "feishu", "slack", "teams")
            },
        }
    extra = channels_extra or {}
    sms: dict[str, Any] = {"url": "${TEST_SMS_URL}", "body": {"phone": "{number}", "content": "{text}", "ref": "{id}"}}
    sms.update(extra.get("sms", {}))
    for name, spec in extra.get("endpoints", {}).items():
        endpoints.setdefault(name, {}).update(spec)
    channels = {
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none", "sender": "应急平台 <ir@example.org>"},
        "sms": sms,
        "endpoints": endpoints,
    }
    (folder / "routing.yaml").write_text(json.dumps(routing, ensure_ascii=False), encoding="utf-8")
    (folder / "channels.yaml").write_text(json.dumps(channels, ensure_ascii=False), encoding="utf-8")
    return folder


def http_env(http: HttpServer) -> dict[str, str]:
    env = {
        "TEST_HOOK_URL": http.url("/hook"),
        "TEST_HOOK_SECRET": WEBHOOK_SECRET,
        "TEST_SMS_URL": http.url("/sms"),
    }
    for k in ("dingtalk", "wecom", "feishu", "slack", "teams"):
        env[f"TEST_URL_{k.upper()}"] = http.url(f"/{k}")
    return env


def make_certificates(
    folder: Path, *, names: tuple[str, ...] = ("localhost",), ip: bool = True
) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate it signs for 127.0.0.1 (IP SAN, unless not `ip`) and `names`:
    (the CA's PEM, the server's certificate chain, the server's key), written in `folder`."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ir test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    if ip:
        alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, chain_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, chain_file, key_file


def import_contacts(app: App, csv_text: str) -> None:
    with app.db.uow() as uow:
        import_csv(uow.conn, app.db.vault, csv_text, at=app.clock.now())
        uow.commit()


def wait_for(check: Callable[[], bool], *, timeout: float = 60.0, what: str = "the condition") -> None:
    """Poll until `check()` holds (a liveness bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
