"""The notifications/ configuration: routing.yaml (audiences, roles, groups, routes, dispatch), channels.yaml
(SMTP, webhooks, IM robots, the SMS gateway) and templates/<name>.yaml (Jinja2, zh-CN and en).

Secrets are never in these files: a password, a webhook secret or a robot's URL (its token is in it) is
written `${IR_…}` and read from the environment when the configuration is loaded. `check(folder)` lists
every problem (the same check `ir validate` runs); `load(folder)` refuses a configuration with errors.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ir.adapters.notify.templates import LANGS, TemplateSet, load_templates
from ir.adapters.playbooks.yaml_source import YamlRefused, load_file
from ir.domain.durations import parse_duration
from ir.domain.errors import InvalidInput
from ir.domain.levels import ResponseLevel, WarningLevel
from ir.domain.playbook import Audience, Channel

ROBOTS = ("dingtalk", "wecom", "feishu", "slack", "teams")
ENDPOINT_CHANNELS = frozenset({"webhook", *ROBOTS})
PERSON_CHANNELS = frozenset({"email", "sms", "phone"})
DEFAULT_SENDER = "ir <ir@localhost>"
_REF = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}: {self.severity}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "severity": self.severity, "message": self.message}


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str = ""
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str = ""
    password: str = ""
    sender: str = DEFAULT_SENDER
    timeout: float = 10.0
    ca_file: str = ""  # a PEM bundle trusted instead of the system's CAs (an internal CA); "" = the system's

    @property
    def domain(self) -> str:
        address = self.sender.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] or "ir.localhost"


@dataclass(frozen=True, slots=True)
class ReplyFields:
    """Where the sender and the text are in a reply forwarded by an SMS gateway or an IM bridge: the names
    of its JSON (a dotted path for nested objects: `text.content`) or form fields."""

    sender: str = "from"
    text: str = "text"


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    kind: str  # webhook | dingtalk | wecom | feishu | slack | teams
    url: str
    secret: str = ""  # webhook: the HMAC key; dingtalk: the robot's signing secret
    replies: ReplyFields = ReplyFields()
    lang: str = "zh-CN"  # the language of what is posted there


@dataclass(frozen=True, slots=True)
class SmsSettings:
    url: str = ""
    body: Mapping[str, Any] = field(default_factory=lambda: {"to": "{number}", "text": "{text}"})
    headers: Mapping[str, str] = field(default_factory=dict)
    replies: ReplyFields = ReplyFields()


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    batch: int = 200  # messages claimed per pass (one SMTP connection per pass)
    max_attempts: int = 8
    backoff: float = 5.0  # seconds before the first retry, doubling each time …
    backoff_max: float = 600.0  # … up to this
    lease: float = 120.0  # a claim lapses after this (a dispatcher that died mid-batch)
    escalate_after: float = 900.0  # a critical message unacknowledged this long goes to the next contact
    poll: float = 2.0  # seconds between passes when idle
    timeout: float = 10.0  # HTTP requests


@dataclass(frozen=True, slots=True)
class Route:
    levels: frozenset[str] = frozenset()
    warnings: frozenset[str] = frozenset()
    playbooks: frozenset[str] = frozenset()
    notifications: frozenset[str] = frozenset()
    audiences: frozenset[str] = frozenset()
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()

    def matches(
        self, *, level: str | None, warning: str | None, playbook: str, notification: str, audience: str
    ) -> bool:
        return (
            (not self.levels or level in self.levels)
            and (not self.warnings or warning in self.warnings)
            and (not self.playbooks or playbook in self.playbooks)
            and (not self.notifications or notification in self.notifications)
            and (not self.audiences or audience in self.audiences)
        )


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    folder: str
    smtp: SmtpSettings
    sms: SmsSettings
    endpoints: Mapping[str, Endpoint]
    dispatch: DispatchSettings
    role_groups: Mapping[str, str]  # playbook role -> the contact group giving its escalation order
    first_only: frozenset[str]  # groups told one contact at a time, in escalation order
    audience_endpoints: Mapping[str, Mapping[str, tuple[str, ...]]]  # audience -> channel -> endpoint names
    routes: tuple[Route, ...]
    templates: TemplateSet
    base_url: str = "http://127.0.0.1:8000"
    org: str = ""


def _read(path: Path, problems: list[Problem]) -> dict[str, Any]:
    if not path.is_file():
        problems.append(Problem(str(path), "missing"))
        return {}
    try:
        data = load_file(str(path))
    except YamlRefused as refused:
        where = refused.problem
        problems.append(Problem(str(path), f"{where.line}:{where.column}: {where.message}"))
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(str(path), "must be a mapping"))
        return {}
    return data


def _env(value: Any, where: str, problems: list[Problem], *, secret: bool = False, env: Mapping[str, str]) -> str:
    """A setting with ${NAME} / ${NAME:-default} read from the environment; secrets must be references."""
    if value is None:
        return ""
    if not isinstance(value, str | int | float):
        problems.append(Problem(where, "must be a string"))
        return ""
    text = str(value)
    if secret and text and not _REF.fullmatch(text.strip()):
        problems.append(
            Problem(where, "a secret is never written in a committed file: write ${IR_…} and set it in the environment")
        )
        return ""
    return _REF.sub(lambda m: env.get(m.group(1), m.group(2) or ""), text)


def _strings(value: Any, where: str, problems: list[Problem]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    problems.append(Problem(where, "must be a list of names"))
    return ()


def _seconds(value: Any, default: float, where: str, problems: list[Problem]) -> float:
    if value is None:
        return default
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        d = parse_duration(str(value))
    except (ValueError, InvalidInput) as exc:
        problems.append(Problem(where, f"not a duration ({exc})"))
        return default
    if d.is_working:
        problems.append(Problem(where, "working days make no sense here: use s, m, h or d"))
        return default
    return float(d.seconds)


def _unknown(data: Mapping[str, Any], known: set[str], where: str, problems: list[Problem]) -> None:
    for key in data:
        if key not in known:
            problems.append(Problem(where, f"unknown setting '{key}' (known: {', '.join(sorted(known))})"))


def _channels(
    data: dict[str, Any], file: str, problems: list[Problem], env: Mapping[str, str]
) -> tuple[SmtpSettings, SmsSettings, dict[str, Endpoint]]:
    _unknown(data, {"smtp", "sms", "endpoints"}, file, problems)
    raw = data.get("smtp") or {}
    smtp = SmtpSettings()
    if isinstance(raw, dict):
        _unknown(
            raw,
            {"host", "port", "security", "username", "password", "sender", "timeout", "ca_file"},
            f"{file}: smtp",
            problems,
        )
        security = _env(raw.get("security", "starttls"), f"{file}: smtp.security", problems, env=env) or "starttls"
        if security not in ("starttls", "tls", "none"):
            problems.append(Problem(f"{file}: smtp.security", "is starttls, tls or none"))
        port_text = _env(raw.get("port", 587), f"{file}: smtp.port", problems, env=env) or "587"
        try:
            port = int(port_text)
        except ValueError:
            problems.append(Problem(f"{file}: smtp.port", "must be a number"))
            port = 587
        smtp = SmtpSettings(
            host=_env(raw.get("host"), f"{file}: smtp.host", problems, env=env),
            port=port,
            security=security,
            username=_env(raw.get("username"), f"{file}: smtp.username", problems, env=env),
            password=_env(raw.get("password"), f"{file}: smtp.password", problems, secret=True, env=env),
            sender=_env(raw.get("sender"), f"{file}: smtp.sender", problems, env=env) or DEFAULT_SENDER,
            timeout=_seconds(raw.get("timeout"), 10.0, f"{file}: smtp.timeout", problems),
            ca_file=_ca_file(raw.get("ca_file"), security, Path(file).parent, f"{file}: smtp.ca_file", problems, env),
        )
    raw = data.get("sms") or {}
    sms = SmsSettings()
    if isinstance(raw, dict):
        _unknown(raw, {"url", "body", "headers", "replies"}, f"{file}: sms", problems)
        body = raw.get("body", sms.body)
        if not isinstance(body, dict):
            problems.append(
                Problem(f"{file}: sms.body", "must be a mapping (the JSON posted; {number} and {text} are filled in)")
            )
            body = sms.body
        headers = raw.get("headers") or {}
        if not isinstance(headers, dict):
            problems.append(Problem(f"{file}: sms.headers", "must be a mapping"))
            headers = {}
        sms = SmsSettings(
            url=_env(raw.get("url"), f"{file}: sms.url", problems, secret=True, env=env),
            body=body,
            headers={
                str(k): _env(v, f"{file}: sms.headers.{k}", problems, secret=True, env=env) for k, v in headers.items()
            },
            replies=_reply_fields(raw.get("replies"), f"{file}: sms.replies", problems),
        )
    endpoints: dict[str, Endpoint] = {}
    raw = data.get("endpoints") or {}
    if not isinstance(raw, dict):
        problems.append(Problem(f"{file}: endpoints", "must be a mapping of names to endpoints"))
        raw = {}
    for name, spec in raw.items():
        where = f"{file}: endpoints.{name}"
        if not isinstance(spec, dict):
            problems.append(Problem(where, "must be a mapping (kind, url, secret)"))
            continue
        _unknown(spec, {"kind", "url", "secret", "replies", "lang"}, where, problems)
        kind = str(spec.get("kind", "webhook"))
        if str(name) in PERSON_CHANNELS | {"mail", "cap"}:
            problems.append(Problem(where, f"'{name}' names a channel: an endpoint needs another name"))
            continue
        if kind not in ENDPOINT_CHANNELS:
            problems.append(Problem(where, f"kind is one of {', '.join(sorted(ENDPOINT_CHANNELS))}; got '{kind}'"))
            continue
        endpoints[str(name)] = Endpoint(
            name=str(name),
            kind=kind,
            url=_env(spec.get("url"), f"{where}.url", problems, secret=True, env=env),
            secret=_env(spec.get("secret"), f"{where}.secret", problems, secret=True, env=env),
            replies=_reply_fields(spec.get("replies"), f"{where}.replies", problems),
            lang=_lang(spec.get("lang"), f"{where}.lang", problems),
        )
    return smtp, sms, endpoints


def _lang(value: Any, where: str, problems: list[Problem]) -> str:
    if value is None:
        return "zh-CN"
    if value not in LANGS:
        problems.append(Problem(where, f"is one of {', '.join(LANGS)}; got '{value}'"))
        return "zh-CN"
    return str(value)


def _reply_fields(value: Any, where: str, problems: list[Problem]) -> ReplyFields:
    if value is None:
        return ReplyFields()
    if not isinstance(value, dict):
        problems.append(Problem(where, "must be a mapping: {from: <field>, text: <field>}"))
        return ReplyFields()
    _unknown(value, {"from", "text"}, where, problems)
    names = {k: value.get(k, d) for k, d in (("from", "from"), ("text", "text"))}
    for k, v in names.items():
        if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", v):
            problems.append(Problem(f"{where}.{k}", "must be a field name, or a dotted path (text.content)"))
            return ReplyFields()
    return ReplyFields(sender=names["from"], text=names["text"])


def _ca_file(
    value: Any, security: str, folder: Path, where: str, problems: list[Problem], env: Mapping[str, str]
) -> str:
    """The CA bundle's path (relative to the notifications folder unless absolute), checked as TLS will load it."""
    text = _env(value, where, problems, env=env).strip()
    if not text:
        return ""
    path = Path(text).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        problems.append(Problem(where, f"no such file: {path} (a PEM bundle of the CA certificates to trust)"))
        return ""
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        problems.append(Problem(where, f"{path} does not load as PEM CA certificates ({exc})"))
        return ""
    if security == "none":
        problems.append(Problem(where, "unused with security: none (mail is sent in clear)", "warning"))
    return str(path)


def _routing(
    data: dict[str, Any], file: str, problems: list[Problem], endpoints: Mapping[str, Endpoint], env: Mapping[str, str]
) -> tuple[
    DispatchSettings, dict[str, str], frozenset[str], dict[str, dict[str, tuple[str, ...]]], tuple[Route, ...], str, str
]:
    _unknown(data, {"roles", "groups", "audiences", "routes", "dispatch", "base_url", "org"}, file, problems)
    roles: dict[str, str] = {}
    raw = data.get("roles") or {}
    if isinstance(raw, dict):
        for role, spec in raw.items():
            group = spec.get("group") if isinstance(spec, dict) else spec
            if not isinstance(group, str):
                problems.append(Problem(f"{file}: roles.{role}", "names the contact group of the role (group: <id>)"))
                continue
            roles[str(role)] = group
    first: set[str] = set()
    raw = data.get("groups") or {}
    if isinstance(raw, dict):
        for group, spec in raw.items():
            reach = spec.get("reach", "all") if isinstance(spec, dict) else spec
            if reach not in ("all", "first"):
                problems.append(
                    Problem(f"{file}: groups.{group}", "reach is all (everyone at once) or first (one at a time)")
                )
            elif reach == "first":
                first.add(str(group))
    audiences: dict[str, dict[str, tuple[str, ...]]] = {}
    raw = data.get("audiences") or {}
    if isinstance(raw, dict):
        for audience, spec in raw.items():
            where = f"{file}: audiences.{audience}"
            if audience not in {a.value for a in Audience}:
                problems.append(Problem(where, f"unknown audience (audiences: {', '.join(a.value for a in Audience)})"))
                continue
            if not isinstance(spec, dict):
                problems.append(Problem(where, "maps channels to endpoint names"))
                continue
            per: dict[str, tuple[str, ...]] = {}
            for channel, names in spec.items():
                if channel not in ENDPOINT_CHANNELS:
                    problems.append(
                        Problem(
                            where,
                            f"'{channel}' is not a channel with endpoints ({', '.join(sorted(ENDPOINT_CHANNELS))})",
                        )
                    )
                    continue
                per[channel] = _strings(names, f"{where}.{channel}", problems)
                for name in per[channel]:
                    _check_endpoint(name, channel, endpoints, f"{where}.{channel}", problems)
            audiences[str(audience)] = per
    routes: list[Route] = []
    raw = data.get("routes") or []
    if not isinstance(raw, list):
        problems.append(Problem(f"{file}: routes", "must be a list"))
        raw = []
    for i, spec in enumerate(raw, start=1):
        where = f"{file}: routes[{i}]"
        if not isinstance(spec, dict):
            problems.append(Problem(where, "must be a mapping (match, roles, groups, channels, endpoints)"))
            continue
        _unknown(spec, {"match", "roles", "groups", "channels", "endpoints"}, where, problems)
        match = spec.get("match") or {}
        if not isinstance(match, dict):
            problems.append(Problem(f"{where}.match", "must be a mapping"))
            match = {}
        _unknown(match, {"levels", "warnings", "playbooks", "notifications", "audiences"}, f"{where}.match", problems)
        levels = _strings(match.get("levels"), f"{where}.match.levels", problems)
        warnings = _strings(match.get("warnings"), f"{where}.match.warnings", problems)
        for lv in levels:
            if lv not in {x.value for x in ResponseLevel}:
                problems.append(Problem(f"{where}.match.levels", f"'{lv}' is not a level (I, II, III, IV)"))
        for w in warnings:
            if w not in {x.value for x in WarningLevel}:
                problems.append(
                    Problem(f"{where}.match.warnings", f"'{w}' is not a warning (red, orange, yellow, blue)")
                )
        channels = _strings(spec.get("channels"), f"{where}.channels", problems)
        for ch in channels:
            if ch not in {c.value for c in Channel}:
                problems.append(Problem(f"{where}.channels", f"unknown channel '{ch}'"))
        names = _strings(spec.get("endpoints"), f"{where}.endpoints", problems)
        for name in names:
            _check_endpoint(name, None, endpoints, f"{where}.endpoints", problems)
        routes.append(
            Route(
                levels=frozenset(levels),
                warnings=frozenset(warnings),
                playbooks=frozenset(_strings(match.get("playbooks"), f"{where}.match.playbooks", problems)),
                notifications=frozenset(_strings(match.get("notifications"), f"{where}.match.notifications", problems)),
                audiences=frozenset(_strings(match.get("audiences"), f"{where}.match.audiences", problems)),
                roles=_strings(spec.get("roles"), f"{where}.roles", problems),
                groups=_strings(spec.get("groups"), f"{where}.groups", problems),
                channels=channels,
                endpoints=names,
            )
        )
    raw = data.get("dispatch") or {}
    dispatch = DispatchSettings()
    if isinstance(raw, dict):
        known = {f for f in DispatchSettings.__dataclass_fields__}
        _unknown(raw, known, f"{file}: dispatch", problems)
        values: dict[str, Any] = {}
        for key in known & set(raw):
            if key in ("batch", "max_attempts"):
                try:
                    values[key] = max(1, int(raw[key]))
                except (TypeError, ValueError):
                    problems.append(Problem(f"{file}: dispatch.{key}", "must be a whole number"))
            else:
                values[key] = _seconds(raw[key], getattr(dispatch, key), f"{file}: dispatch.{key}", problems)
        dispatch = DispatchSettings(**values)
    base_url = _env(data.get("base_url"), f"{file}: base_url", problems, env=env) or "http://127.0.0.1:8000"
    org = _env(data.get("org"), f"{file}: org", problems, env=env)
    return dispatch, roles, frozenset(first), audiences, tuple(routes), base_url.rstrip("/"), org


def _check_endpoint(
    name: str, channel: str | None, endpoints: Mapping[str, Endpoint], where: str, problems: list[Problem]
) -> None:
    found = endpoints.get(name)
    if found is None:
        problems.append(Problem(where, f"no endpoint '{name}' in channels.yaml"))
    elif channel is not None and found.kind != channel:
        problems.append(Problem(where, f"endpoint '{name}' is a {found.kind}, not a {channel}"))


def read_config(folder: str, *, env: Mapping[str, str] | None = None) -> tuple[NotifyConfig | None, list[Problem]]:
    """The configuration in `folder` and every problem found in it (templates rendered against the
    documented variables: an unknown variable is an error here, never when a message is sent)."""
    env = os.environ if env is None else env
    problems: list[Problem] = []
    root = Path(folder)
    channels_file, routing_file = root / "channels.yaml", root / "routing.yaml"
    smtp, sms, endpoints = _channels(_read(channels_file, problems), str(channels_file), problems, env)
    dispatch, roles, first, audiences, routes, base_url, org = _routing(
        _read(routing_file, problems), str(routing_file), problems, endpoints, env
    )
    templates, template_problems = load_templates(root / "templates")
    problems.extend(Problem(file, message) for file, message in template_problems)
    config = NotifyConfig(
        folder=folder,
        smtp=smtp,
        sms=sms,
        endpoints=endpoints,
        dispatch=dispatch,
        role_groups=roles,
        first_only=first,
        audience_endpoints=audiences,
        routes=routes,
        templates=templates,
        base_url=base_url,
        org=org,
    )
    return config, problems


def load_config(folder: str, *, env: Mapping[str, str] | None = None) -> NotifyConfig:
    config, problems = read_config(folder, env=env)
    errors = [p for p in problems if p.severity == "error"]
    if errors or config is None:
        raise InvalidInput(
            f"the notification configuration in {folder} has {len(errors)} error(s): {errors[0]} (ir validate {folder})"
        )
    return config


def is_config_folder(path: str) -> bool:
    root = Path(path)
    return root.is_dir() and ((root / "routing.yaml").is_file() or (root / "channels.yaml").is_file())


def check_playbook_templates(config: NotifyConfig, used: Mapping[str, list[str]]) -> list[Problem]:
    """Every template a playbook names must exist (`used`: template -> the playbook files naming it)."""
    out = []
    for name, files in sorted(used.items()):
        if name not in config.templates.names:
            out.append(Problem(files[0], f"template '{name}' is not in {config.folder}/templates"))
    return out
