"""Acknowledging by reply: what a recipient's answer says, read from an e-mail (RFC 5322) or from a text
an SMS gateway or an IM bridge forwards, and how it is matched to the message it answers.

- An e-mail answers the message its In-Reply-To or References header names (our Message-ID is
  `<idempotency key@domain>`), and only when it comes from the address that message went to; otherwise a
  signed acknowledgement link quoted in it names the message (the same authority as following the link).
- A text names the message by its reply code (the message's number, `{{ reply_code }}` in the templates)
  and comes from the number (SMS) or the robot's group (IM) the message went to; a text without a code
  answers the latest message sent there in the last day that is not yet acknowledged.
- An automatic answer — an out-of-office reply, a bounce, a read receipt (RFC 3834 Auto-Submitted,
  Precedence, a multipart/report) — acknowledges nothing.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import urllib.parse
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Any

from ir.domain.errors import InvalidInput

MAX_MAIL = 2 * 1024 * 1024  # a reply larger than this is refused (attachments are of no use here)
MAX_TEXT = 2000
MAX_FORWARDED = 16_000  # what a gateway or a bridge posts for one reply
_ID = re.compile(r"<([^<>\s@]{1,64})@([^<>\s]{1,255})>")
_CODE = re.compile(r"(?<![0-9])[0-9]{1,12}(?![0-9])")
_LINK = re.compile(r"/ack/([0-9]{1,12}\.[A-Za-z0-9_-]{8,40})")


@dataclass(frozen=True, slots=True)
class Reply:
    channel: str  # "email", "sms", or the name of a configured IM robot or webhook endpoint
    sender: str  # an e-mail address, a phone number, or a person's name in a chat
    text: str  # what the reply says (subject and body for an e-mail), for codes and quoted links
    keys: tuple[str, ...] = ()  # e-mail: the idempotency keys of the Message-IDs it answers
    automatic: str = ""  # why this is a machine's answer rather than a person's; "" for a person's

    def codes(self) -> list[int]:
        """The numbers in the text, in order: each may be a reply code."""
        seen: list[int] = []
        for m in _CODE.finditer(self.text):
            n = int(m.group())
            if 0 < n < 2**31 and n not in seen:
                seen.append(n)
        return seen

    def links(self) -> list[str]:
        """Acknowledgement-link tokens quoted in the text."""
        return list(dict.fromkeys(_LINK.findall(self.text)))


def reply_code(message_id: int) -> str:
    return str(message_id)


def parse_mail(raw: bytes, *, domain: str) -> Reply:
    """A reply by e-mail as the mail server hands it over. `domain`: our Message-IDs' right-hand side.
    Headers are read as they came (the compat32 policy never fails on a malformed one)."""
    if len(raw) > MAX_MAIL:
        raise InvalidInput(f"the mail is larger than {MAX_MAIL:,} bytes; a reply needs no attachments")
    if not raw.strip():
        raise InvalidInput("the mail is empty")
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    senders = [a for _, a in getaddresses([_header(msg, "From")]) if "@" in a]
    if not senders:
        raise InvalidInput("the mail has no From address")
    answered = " ".join(_header(msg, h) for h in ("In-Reply-To", "References"))
    keys = tuple(dict.fromkeys(k for k, d in _ID.findall(answered) if d.lower() == domain.lower()))
    return Reply(
        channel="email",
        sender=senders[0].lower(),
        text=f"{_header(msg, 'Subject')}\n{_body(msg)}"[: MAX_MAIL // 4],
        keys=keys,
        automatic=automatic(msg),
    )


def _header(msg: Message, name: str) -> str:
    return " ".join(str(v) for v in msg.get_all(name, []))


def automatic(msg: Message) -> str:
    """Why a mail is a machine's answer (RFC 3834 and common practice), or "" when a person wrote it."""
    submitted = _header(msg, "Auto-Submitted").strip().lower()
    if submitted and submitted != "no":
        return f"an automatic answer (Auto-Submitted: {submitted[:40]})"
    precedence = _header(msg, "Precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"an automatic answer (Precedence: {precedence})"
    for header in ("X-Autoreply", "X-Autorespond"):
        if header in msg:
            return f"an automatic answer ({header})"
    if msg.get_content_type() == "multipart/report":
        return "a delivery or read report"
    return ""


def _body(msg: Message) -> str:
    """The first text part (plain, else HTML), decoded; what cannot be decoded is replaced."""
    for wanted in ("text/plain", "text/html"):
        for part in msg.walk():
            if part.get_content_type() == wanted and not part.is_multipart():
                data = part.get_payload(decode=True)
                if not isinstance(data, bytes):
                    continue
                charset = part.get_content_charset() or "utf-8"
                try:
                    return data.decode(charset, errors="replace")
                except LookupError:  # a charset Python does not know
                    return data.decode("utf-8", errors="replace")
    return ""


def forwarded(channel: str, raw: bytes, content_type: str, *, sender_field: str, text_field: str) -> Reply:
    """A reply as an SMS gateway or an IM bridge posts it: JSON (a dotted path reaches into nested objects,
    as DingTalk's `text.content`) or an HTML form, with the sender and the text under the configured names."""
    if len(raw) > MAX_FORWARDED:
        raise InvalidInput(f"the request is larger than {MAX_FORWARDED:,} bytes")
    data: Any
    if content_type.split(";", maxsplit=1)[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            data = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8"), strict_parsing=False).items()}
        except UnicodeDecodeError:
            raise InvalidInput("the form is not UTF-8") from None
    else:
        try:
            data = json.loads(raw)
        except ValueError:
            raise InvalidInput("the body is neither JSON nor a form (application/x-www-form-urlencoded)") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")

    def pick(path: str) -> str:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            raise InvalidInput(f"the reply has no field '{path}' (the channel's replies setting names it)")
        if not isinstance(value, str | int):
            raise InvalidInput(f"the field '{path}' must be text")
        return str(value)

    return text_reply(channel, pick(sender_field), pick(text_field))


def text_reply(channel: str, sender: str, text: str) -> Reply:
    """A text forwarded by an SMS gateway (sender: the number) or an IM bridge (sender: the person's name)."""
    sender, text = sender.strip(), text.strip()
    if not sender:
        raise InvalidInput("the reply names no sender ('from')")
    if len(sender) > 200:
        raise InvalidInput("the sender ('from') is longer than 200 characters")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"the reply's text is longer than {MAX_TEXT} characters")
    return Reply(channel=channel, sender=sender, text=text)


def same_number(a: str, b: str) -> bool:
    """Two ways of writing one phone number: digits only, an international prefix (00, +) and a country
    code allowed on one side (+86 138 0013 8000 is 13800138000)."""
    x, y = (re.sub(r"[^0-9]", "", s).removeprefix("00") for s in (a, b))
    if not x or not y:
        return False
    short, long = sorted((x, y), key=len)
    return short == long or (len(short) >= 7 and long.endswith(short) and len(long) - len(short) <= 3)


def same_address(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()
