"""The channels: SMTP (one connection per batch), signed JSON webhooks, the IM robots (DingTalk, WeCom,
Feishu, Slack, Teams: each one small JSON POST) and an HTTP SMS gateway. Phone calls are made by people.

Every message carries its idempotency key: the e-mail's Message-ID, the `Idempotency-Key` header of every
HTTP post (and `id` in a webhook's body), so a message sent again after a crash is recognised by a
receiver that deduplicates. Errors say what failed in codes and kinds, never an address (no personal data
in the outbox's error column).

The IM robots are written by hand rather than through apprise: apprise's DingTalk, WeCom, Feishu and Teams
plugins post to the vendors' fixed hosts and cannot carry an Idempotency-Key, while these five formats are
each one JSON object, tested against a real local HTTP server (tests/integration/test_notify_channels.py).
"""

from __future__ import annotations

import base64
import contextlib
import email.policy
import email.utils
import hashlib
import hmac
import json
import smtplib
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formatdate
from typing import Any

import httpx

from ir.adapters.notify.config import Endpoint, SmsSettings, SmtpSettings
from ir.domain.clocks import Clock


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready to go: its key, where, and what it says (already in the recipient's language)."""

    key: str
    channel: str
    address: str  # an e-mail address or a phone number; "" for endpoints
    endpoint: str | None
    subject: str
    text: str
    html: str
    ack_url: str
    incident_id: int
    notification: str
    audience: str
    critical: bool
    lang: str


@dataclass(frozen=True, slots=True)
class Failure:
    error: str
    permanent: bool = False


Result = Failure | None


class NotConfigured(Exception):
    pass


class LoginFailed(Exception):
    pass


def message_id(key: str, domain: str) -> str:
    return f"<{key}@{domain}>"


def email_message(
    item: Outgoing, *, sender: str, domain: str, at: datetime | None = None, cte: str | None = None
) -> EmailMessage:
    """Text and HTML alternatives; the subject RFC 2047-encoded by the email package when not ASCII."""
    msg = EmailMessage()
    msg["Subject"] = item.subject
    msg["From"] = sender
    msg["To"] = item.address
    msg["Message-ID"] = message_id(item.key, domain)
    msg["Date"] = format_datetime(at) if at is not None else formatdate(localtime=False)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-IR-Incident"] = str(item.incident_id)
    msg["X-IR-Notification"] = item.notification
    msg["Content-Language"] = item.lang
    if item.critical:
        msg["Importance"] = "high"
    msg.set_content(item.text, cte=cte)
    msg.add_alternative(item.html, subtype="html", cte=cte)
    return msg


_TO, _ID = "ir-recipient@placeholder.invalid", "ir-message-id-placeholder"
_TEXT, _HTML = "IRTEXTPART", "IRHTMLPART"


class MailBuilder:
    """Messages as bytes. The email package lays out each distinct message once (headers, the RFC 2047
    subject, the text and HTML alternatives, base64 bodies); each recipient's copy then differs in To,
    Message-ID and its bodies (its own acknowledgement link), spliced into that layout: laying out a
    message with the email package costs milliseconds, and 10,000 recipients share one."""

    def __init__(self, *, sender: str, domain: str) -> None:
        self.sender = sender
        self.domain = domain
        self._layouts: dict[tuple[Any, ...], bytes] = {}

    def build(self, item: Outgoing) -> bytes:
        if not item.address.isascii() or "\r" in item.address or "\n" in item.address:
            return email_message(item, sender=self.sender, domain=self.domain).as_bytes(policy=email.policy.SMTP)
        shape = (item.subject, item.incident_id, item.notification, item.lang, item.critical)
        layout = self._layouts.get(shape)
        if layout is None:
            proto = replace(item, address=_TO, key=_ID, text=_TEXT, html=_HTML)
            msg = email_message(proto, sender=self.sender, domain=self.domain, cte="base64")
            layout = msg.as_bytes(policy=email.policy.SMTP)
            self._layouts = {shape: layout}  # one notice at a time: keep the last layout only
        return (
            layout.replace(_TO.encode(), item.address.encode(), 1)
            .replace(f"<{_ID}@".encode(), f"<{item.key}@".encode(), 1)
            .replace(_b64(_TEXT), _b64(item.text), 1)
            .replace(_b64(_HTML), _b64(item.html), 1)
        )


def _b64(text: str) -> bytes:
    """A body as the email package encodes it: UTF-8, a final newline, base64 in 76-column CRLF lines."""
    data = text if text.endswith("\n") else text + "\n"
    return base64.encodebytes(data.encode()).replace(b"\n", b"\r\n").rstrip(b"\r\n")


class SmtpBatch:
    """One SMTP connection for a batch of messages (STARTTLS or TLS, authentication as configured)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._broken: str | None = None
        self.builder = MailBuilder(sender=settings.sender, domain=settings.domain)
        self.envelope_from = email.utils.parseaddr(settings.sender)[1] or "ir@localhost"

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if not s.host:
            raise NotConfigured("no SMTP host is configured (IR_SMTP_HOST)")
        try:  # hostname verification and CERT_REQUIRED stay on: ca_file only changes whom to trust
            context = ssl.create_default_context(cafile=s.ca_file or None)
        except (ssl.SSLError, OSError) as exc:  # checked when loaded; moved or spoilt since
            raise NotConfigured(f"SMTP ca_file cannot be loaded ({type(exc).__name__}: {s.ca_file})") from None
        smtp: smtplib.SMTP
        if s.security == "tls":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            if s.security == "starttls":
                try:  # never carry on in clear: no STARTTLS, or a refused certificate, ends the connection
                    smtp.starttls(context=context)
                except BaseException:
                    with contextlib.suppress(smtplib.SMTPException, OSError):
                        smtp.close()
                    raise
        if s.username:
            try:
                smtp.login(s.username, s.password)
            except (smtplib.SMTPAuthenticationError, smtplib.SMTPServerDisconnected) as exc:
                # some servers answer 535, some hang up on a wrong password
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.close()
                raise LoginFailed(f"SMTP authentication failed ({type(exc).__name__})") from None
        return smtp

    def send(self, items: Sequence[Outgoing]) -> list[Result]:
        results: list[Result] = []
        for item in items:
            results.append(self._send_one(item))
        return results

    def _send_one(self, item: Outgoing) -> Result:
        if self._broken is not None:  # not configured, or the login refused: the rest of the batch waits too
            return Failure(self._broken)
        for attempt in (1, 2):  # a connection the server dropped mid-batch is opened again once
            try:
                if self._smtp is None:
                    self._smtp = self._connect()
                self._smtp.sendmail(self.envelope_from, [item.address], self.builder.build(item))
                return None
            except (NotConfigured, LoginFailed) as exc:
                self._smtp, self._broken = None, str(exc)
                return Failure(str(exc))
            except smtplib.SMTPRecipientsRefused as exc:
                codes = sorted({code for code, _ in exc.recipients.values()})
                return Failure(
                    f"SMTP recipient refused ({', '.join(map(str, codes))})", permanent=all(c >= 500 for c in codes)
                )
            except smtplib.SMTPAuthenticationError as exc:
                self.close()
                return Failure(f"SMTP authentication failed ({exc.smtp_code})")
            except smtplib.SMTPResponseException as exc:
                return Failure(f"SMTP {exc.smtp_code}", permanent=500 <= exc.smtp_code < 600)
            except smtplib.SMTPNotSupportedError:
                self.close()
                return Failure("SMTP server does not offer STARTTLS (not sent in clear)")
            except ssl.SSLCertVerificationError as exc:  # retried: the operator may fix ca_file or the server
                self.close()
                return Failure(f"SMTP server certificate not trusted ({exc.verify_message or exc.reason})")
            except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
                self.close()
                if attempt == 2:
                    return Failure(f"SMTP server unreachable ({type(exc).__name__})")
            except smtplib.SMTPException as exc:
                self.close()
                return Failure(f"SMTP error ({type(exc).__name__})")
        return Failure("SMTP server unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


# -- HTTP: webhooks, IM robots, the SMS gateway --------------------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(item: Outgoing) -> dict[str, Any]:
    return {
        "id": item.key,
        "incident": item.incident_id,
        "notification": item.notification,
        "audience": item.audience,
        "critical": item.critical,
        "lang": item.lang,
        "subject": item.subject,
        "text": item.text,
        "ack_url": item.ack_url,
    }


def _markdown(item: Outgoing) -> str:
    return f"### {item.subject}\n\n{item.text}"


def robot_body(kind: str, item: Outgoing) -> dict[str, Any]:
    """The JSON each IM robot's incoming webhook takes."""
    if kind == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": item.subject, "text": _markdown(item)}}
    if kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": _markdown(item)}}
    if kind == "feishu":
        return {"msg_type": "text", "content": {"text": f"{item.subject}\n\n{item.text}"}}
    if kind == "slack":
        return {"text": f"*{item.subject}*\n{item.text}"}
    if kind == "teams":
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "type": "AdaptiveCard",
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "text": item.subject, "weight": "Bolder", "wrap": True},
                            {"type": "TextBlock", "text": item.text, "wrap": True},
                        ],
                        "actions": [{"type": "Action.OpenUrl", "title": "确认 / Acknowledge", "url": item.ack_url}],
                    },
                }
            ],
        }
    raise ValueError(f"unknown robot {kind}")


def dingtalk_url(url: str, secret: str, now_ms: int) -> str:
    """DingTalk's signed robot URL: timestamp and sign = base64(HMAC-SHA256(secret, "ts\\nsecret"))."""
    if not secret:
        return url
    mac = hmac.new(secret.encode(), f"{now_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(mac).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={now_ms}&sign={sign}"


def feishu_sign(secret: str, ts: int) -> str:
    """Feishu's signature: base64(HMAC-SHA256(key="ts\\nsecret", message=""))."""
    return base64.b64encode(hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()


def _vendor_error(kind: str, response: httpx.Response) -> str | None:
    """The robots answer 200 with an error code in the body."""
    if kind not in ("dingtalk", "wecom", "feishu"):
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    code = data.get("errcode", data.get("code", data.get("StatusCode", 0)))
    return None if code in (0, None) else f"{kind} error {code}"


class HttpChannels:
    def __init__(
        self, *, endpoints: Mapping[str, Endpoint], sms: SmsSettings, clock: Clock, timeout: float = 10.0
    ) -> None:
        self.endpoints = endpoints
        self.clock = clock  # the robots' signatures carry the time of sending
        self.sms = sms
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def send(self, item: Outgoing) -> Result:
        try:
            if item.channel == "sms":
                return self._sms(item)
            endpoint = self.endpoints.get(item.endpoint or "")
            if endpoint is None or not endpoint.url:
                return Failure(f"endpoint '{item.endpoint}' is not configured (its URL is unset)")
            if endpoint.kind == "webhook":
                return self._webhook(endpoint, item)
            return self._robot(endpoint, item)
        except httpx.TimeoutException:
            return Failure("HTTP timeout")
        except httpx.HTTPError as exc:
            return Failure(f"HTTP {type(exc).__name__}")

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.client.post(
            url, content=body, headers={"Content-Type": "application/json; charset=utf-8", **headers}
        )

    @staticmethod
    def _status(response: httpx.Response) -> Result:
        if response.is_success:
            return None
        code = response.status_code
        return Failure(f"HTTP {code}", permanent=400 <= code < 500 and code not in (408, 409, 425, 429))

    def _webhook(self, endpoint: Endpoint, item: Outgoing) -> Result:
        body = json.dumps(webhook_body(item), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Idempotency-Key": item.key}
        if endpoint.secret:
            headers["X-IR-Signature"] = signature(endpoint.secret, body)
        return self._status(self._post(endpoint.url, body, headers))

    def _robot(self, endpoint: Endpoint, item: Outgoing) -> Result:
        payload = robot_body(endpoint.kind, item)
        url = endpoint.url
        if endpoint.kind == "dingtalk":
            url = dingtalk_url(url, endpoint.secret, int(self.clock.now().timestamp() * 1000))
        elif endpoint.kind == "feishu" and endpoint.secret:
            ts = int(self.clock.now().timestamp())
            payload = {"timestamp": str(ts), "sign": feishu_sign(endpoint.secret, ts), **payload}
        body = json.dumps(payload, ensure_ascii=False).encode()
        response = self._post(url, body, {"Idempotency-Key": item.key})
        failed = self._status(response)
        if failed is not None:
            return failed
        error = _vendor_error(endpoint.kind, response)
        return Failure(error) if error else None

    def _sms(self, item: Outgoing) -> Result:
        if not self.sms.url:
            return Failure("the SMS gateway is not configured (IR_SMS_URL)")
        text = f"{item.subject}\n{item.text}".strip()

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                return value.replace("{number}", item.address).replace("{text}", text).replace("{id}", item.key)
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            if isinstance(value, list):
                return [fill(v) for v in value]
            return value

        body = json.dumps(fill(dict(self.sms.body)), ensure_ascii=False).encode()
        return self._status(self._post(self.sms.url, body, {"Idempotency-Key": item.key, **self.sms.headers}))
