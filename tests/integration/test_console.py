"""The console without a browser, as a browser without JavaScript uses it: plain HTML forms posted to the
console's routes, each answered by a redirect back to the page with a one-line message. On SQLite and
PostgreSQL, on simulated time.

Signing in through the form (its pre-session CSRF token in a signed double-submit cookie), a forced
password change, the CSRF token refused when missing on every form, every form changing the incident,
the domain's refusals as a line on the page, the page in both languages, titles holding `<script>` shown as
text, and the fragments live.js swaps in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from ir.adapters.clock import SimulatedClock
from ir.bootstrap import App
from ir.domain.deadlines import DeadlineState
from ir.domain.events import EVENT_TYPES
from ir.domain.incident import Incident, Mode, StepStatus
from ir.entrypoints.http.app import create_app
from ir.entrypoints.web.board_model import LOG_CATEGORIES, STAGES
from ir.entrypoints.web.forms import INCIDENT_ACTS, STEP_ACTS
from ir.entrypoints.web.i18n import MESSAGES
from ir.entrypoints.web.rendering import TEMPLATES
from tests.conftest import T0

PASSWORD = "a long pass phrase 2026"
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def add_user(app: App, user: str, roles: list[str], *, must_change: bool = False, lang: str = "zh-CN") -> None:
    with app.db.uow() as uow:
        uow.users.add(
            user,
            display_name=user.title(),
            password=PASSWORD,
            roles=roles,
            lang=lang,
            must_change_password=must_change,
        )
        uow.commit()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def flashes(html: str) -> list[tuple[str, str]]:
    """The one-line messages on a page: (ok|error, text)."""
    return [
        (kind, unescape(text)) for kind, text in re.findall(r'<p class="flash flash-(ok|error)"[^>]*>([^<]*)</p>', html)
    ]


def visible_text(html: str) -> str:
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]+>", " ", html)
    return unescape(re.sub(r"\s+", " ", html))


class Console:
    """One person at the console: a cookie jar and the last page they saw."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.page = ""

    def get(self, path: str, **kwargs: Any) -> Response:
        response: Response = self.client.get(path, **kwargs)
        self.page = response.text
        return response

    def sign_in(self, user: str, password: str = PASSWORD, *, then: str = "/") -> Response:
        form = self.get(then)
        assert urlsplit(str(form.url)).path == "/login"
        response: Response = self.client.post(
            "/login",
            data={"user": user, "password": password, "csrf": csrf_of(form.text), "next": then},
        )
        self.page = response.text
        return response

    @property
    def csrf(self) -> str:
        return csrf_of(self.page)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Response:
        """Send a form as the page carries it (with its CSRF token) and land where the redirect goes."""
        response: Response = self.client.post(path, data={"csrf": self.csrf, **(data or {})}, **kwargs)
        self.page = response.text
        assert "Traceback" not in response.text
        return response

    def ok(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Response:
        response = self.post(path, data, **kwargs)
        messages = flashes(response.text)
        assert response.status_code == 200, response.text[:500]
        assert messages and all(kind == "ok" for kind, _ in messages), messages
        return response

    def refused(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> str:
        response = self.post(path, data, **kwargs)
        messages = flashes(response.text)
        assert response.status_code == 200, response.text[:500]
        assert len(messages) == 1 and messages[0][0] == "error", messages
        return messages[0][1]


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    add_user(app, "chief", ["commander"])
    add_user(app, "deputy", ["commander"])
    add_user(app, "watcher", ["observer"])
    with TestClient(create_app(app=app, background=False)) as found:
        yield found


@pytest.fixture
def chief(client: TestClient) -> Console:
    console = Console(client)
    assert console.sign_in("chief").status_code == 200
    return console


def incident(app: App, incident_id: int) -> Incident:
    with app.db.read() as repo:
        return repo.get(incident_id)


def open_ddos(console: Console, title: str = "DDoS on the IDC", level: str = "III") -> int:
    console.get("/")
    response = console.ok("/incidents", {"playbook": "ddos", "title": title, "mode": "real", "level": level})
    found = re.search(r"/incidents/(\d+)$", str(response.url))
    assert found, response.url
    return int(found.group(1))


# -- signing in -----------------------------------------------------------------------------------------


def test_sign_in_through_the_form_and_back_to_the_page_asked_for(client: TestClient) -> None:
    console = Console(client)
    asked = console.get("/incidents/7")
    assert urlsplit(str(asked.url)).path == "/login"
    assert parse_qs(urlsplit(str(asked.url)).query) == {"next": ["/incidents/7"]}
    assert asked.history[0].status_code == 303  # not signed in: sent to the sign-in form
    assert "ir_login_csrf" in client.cookies  # the signed double-submit cookie
    assert 'autocomplete="current-password"' in asked.text
    signed = console.sign_in("chief", then="/")
    assert signed.status_code == 200 and urlsplit(str(signed.url)).path == "/"
    assert "ir_session" in client.cookies
    assert signed.history[0].headers["set-cookie"].lower().count("httponly") >= 1
    assert "进行中的事件" in signed.text


def test_a_wrong_password_is_one_line_on_the_sign_in_page(client: TestClient) -> None:
    console = Console(client)
    response = console.sign_in("chief", "not the password")
    assert response.status_code == 401
    assert "登录失败：wrong user name or password" in visible_text(response.text)
    assert "ir_session" not in client.cookies
    assert "Traceback" not in response.text


def test_the_sign_in_form_is_refused_without_its_token(client: TestClient) -> None:
    form = client.get("/login")
    token = csrf_of(form.text)
    no_token = client.post("/login", data={"user": "chief", "password": PASSWORD})
    assert no_token.status_code == 403
    assert "CSRF" in visible_text(no_token.text)
    assert "ir_session" not in client.cookies
    # a token that is not the cookie's (a forged form): refused
    forged = client.post("/login", data={"user": "chief", "password": PASSWORD, "csrf": token[::-1]})
    assert forged.status_code == 403 and "ir_session" not in client.cookies
    # the token without its cookie (another browser's): refused
    client.cookies.delete("ir_login_csrf")
    stolen = client.post("/login", data={"user": "chief", "password": PASSWORD, "csrf": token})
    assert stolen.status_code == 403 and "ir_session" not in client.cookies


def test_sign_in_goes_back_only_to_this_site(client: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/x", "/\\evil.example"):
        form = client.get("/login")
        response = client.post(
            "/login",
            data={"user": "chief", "password": PASSWORD, "csrf": csrf_of(form.text), "next": target},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert not response.headers["location"].startswith(("//", "http", "/\\")), response.headers["location"]
        client.cookies.delete("ir_session")


def test_a_one_time_password_must_be_changed_first(app: App, client: TestClient) -> None:
    add_user(app, "newbie", ["responder"], must_change=True)
    console = Console(client)
    response = console.sign_in("newbie")
    assert urlsplit(str(response.url)).path == "/password"
    assert "一次性密码" in response.text
    # nothing else until it is changed
    assert urlsplit(str(console.get("/").url)).path == "/password"
    assert "must differ" not in response.text
    mismatch = console.post("/password", {"new": "another long phrase", "confirm": "a different phrase"})
    assert flashes(mismatch.text) == [("error", "两次输入的新密码不一致")]
    short = console.post("/password", {"new": "short", "confirm": "short"})
    assert flashes(short.text)[0][0] == "error" and "12" in flashes(short.text)[0][1]
    done = console.post("/password", {"new": "another long phrase", "confirm": "another long phrase"})
    assert urlsplit(str(done.url)).path == "/"
    assert flashes(done.text) == [("ok", "密码已修改。")]
    # signed in afresh with the new password, and no longer asked to change it
    other = Console(TestClient(client.app))
    assert urlsplit(str(other.sign_in("newbie", "another long phrase").url)).path == "/"
    with app.db.uow() as uow:
        user = uow.users.get("newbie")
    assert user is not None and not user.must_change_password


def test_a_voluntary_password_change_asks_for_the_current_one(chief: Console) -> None:
    page = chief.get("/password")
    assert 'name="current"' in page.text
    wrong = chief.post("/password", {"current": "nope", "new": "another long phrase", "confirm": "another long phrase"})
    assert flashes(wrong.text) == [("error", "当前密码不正确")]
    chief.post("/password", {"current": PASSWORD, "new": "another long phrase", "confirm": "another long phrase"})
    assert flashes(chief.page) == [("ok", "密码已修改。")]


def test_sign_out_ends_the_session(chief: Console, client: TestClient) -> None:
    chief.get("/")
    response = chief.post("/logout")
    assert urlsplit(str(response.url)).path == "/login"
    assert flashes(response.text) == [("ok", "您已退出登录。")]
    assert urlsplit(str(client.get("/").url)).path == "/login"


def test_not_signed_in_goes_to_the_sign_in_page(client: TestClient) -> None:
    for path in ("/", "/incidents/1", "/incidents/1/board", "/incidents/1/timeline", "/dashboard/list"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login"), path
    posted = client.post("/incidents/1/log", data={"csrf": "x", "text": "t"}, follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"].startswith("/login")


# -- CSRF -----------------------------------------------------------------------------------------------

FORMS = [
    "/incidents/{id}/steps/confirm/start",
    "/incidents/{id}/steps/confirm/complete",
    "/incidents/{id}/steps/confirm/skip",
    "/incidents/{id}/steps/confirm/check",
    "/incidents/{id}/steps/confirm/evidence",
    "/incidents/{id}/facts",
    "/incidents/{id}/level",
    "/incidents/{id}/warning",
    "/incidents/{id}/clock",
    "/incidents/{id}/assign",
    "/incidents/{id}/handover",
    "/incidents/{id}/log",
    "/incidents/{id}/sitrep-draft",
    "/incidents/{id}/link",
    "/incidents/{id}/notified",
    "/incidents/{id}/resource-request",
    "/incidents/{id}/restore",
    "/incidents/{id}/close",
    "/incidents",
    "/password",
    "/logout",
]


def test_every_form_is_refused_without_the_sessions_csrf_token(app: App, chief: Console, client: TestClient) -> None:
    iid = open_ddos(chief)
    version = incident(app, iid).version
    data = {
        "level": "II",
        "reason": "r",
        "text": "t",
        "category": "decision",
        "role": "soc",
        "user": "deputy",
        "to": "deputy",
        "item": "1",
        "fact:peak_gbps": "300",
        "was:peak_gbps": "",
        "playbook": "ddos",
        "title": "forged",
        "new": "another long phrase",
        "confirm": "another long phrase",
    }
    for form in FORMS:
        path = form.format(id=iid)
        for token in (None, "forged-token"):
            sent = data | ({"csrf": token} if token else {})
            response = client.post(path, data=sent)
            assert response.status_code == 403, path
            assert "CSRF" in visible_text(response.text), path
            assert "Traceback" not in response.text
        # multipart too (the evidence form's encoding)
        response = client.post(path, data=data, files={"file": ("x.txt", b"x", "text/plain")})
        assert response.status_code == 403, path
    assert incident(app, iid).version == version
    assert len(chief.get("/").text) > 0 and "ir_session" in client.cookies  # still signed in


# -- every form changes the incident ----------------------------------------------------------------------


def test_every_form_posts_and_changes_the_incident(app: App, clock: SimulatedClock, chief: Console) -> None:
    with app.db.uow() as uow:
        uow.inventory.register(
            unit_id="scrub-1", kind="scrubbing_capacity", name="Scrubbing A", base="BJ", capacity=100
        )
        uow.commit()
    iid = open_ddos(chief, level="III")
    board = f"/incidents/{iid}"
    assert incident(app, iid).level is not None

    def changed(before: int) -> int:
        now = incident(app, iid).version
        assert now > before, "the form did not change the incident"
        return now

    v = incident(app, iid).version
    chief.get(board)

    # steps: start, check and uncheck, done; evidence, fail, retry, done; skip; approve
    chief.ok(f"{board}/steps/confirm/start")
    v = changed(v)
    checked = chief.ok(f"{board}/steps/confirm/check", {"item": "2"})
    v = changed(v)
    assert str(checked.url).endswith("#step-confirm")  # back to the step's card, the message in it
    card = checked.text.split('id="step-confirm"', 1)[1].split("</article>", 1)[0]
    assert "勾选：已记录" in card
    assert incident(app, iid).steps["confirm"].checked == {1}
    assert 'aria-pressed="true"' in chief.page
    chief.ok(f"{board}/steps/confirm/uncheck", {"item": "2"})
    v = changed(v)
    assert incident(app, iid).steps["confirm"].checked == set()
    chief.ok(f"{board}/steps/confirm/complete", {"note": "confirmed: SYN flood"})
    v = changed(v)
    assert incident(app, iid).step_status("confirm").value == "done"
    chief.ok(f"{board}/steps/scrubbing/start")
    v = changed(v)
    chief.ok(
        f"{board}/steps/scrubbing/evidence",
        files={"file": ("before-after.png", b"\x89PNG fake traffic graph", "image/png")},
    )
    v = changed(v)
    assert [e.filename for e in incident(app, iid).steps["scrubbing"].evidence] == ["before-after.png"]
    assert "before-after.png" in chief.page
    chief.ok(f"{board}/steps/scrubbing/fail", {"reason": "scrubbing centre saturated"})
    v = changed(v)
    assert incident(app, iid).step_status("scrubbing").value == "failed"
    chief.ok(f"{board}/steps/scrubbing/retry")
    v = changed(v)
    chief.ok(f"{board}/steps/scrubbing/complete")
    v = changed(v)
    chief.ok(f"{board}/steps/customer-notice/skip", {"reason": "no customer affected"})
    v = changed(v)
    assert incident(app, iid).steps["customer-notice"].reason == "no customer affected"
    chief.ok(f"{board}/steps/lift-mitigation/approve")
    v = changed(v)
    assert [a.role for a in incident(app, iid).steps["lift-mitigation"].approvals] == ["commander"]

    # facts: only what was changed in the form is sent
    chief.ok(
        f"{board}/facts",
        {
            "fact:peak_gbps": "320",
            "was:peak_gbps": "",
            "fact:affected_users": "",
            "was:affected_users": "",
            "fact:cii_involved": "true",
            "was:cii_involved": "",
            "reason": "NetFlow",
        },
    )
    v = changed(v)
    facts = incident(app, iid).facts
    assert facts["peak_gbps"] == 320 and facts["cii_involved"] is True and "affected_users" not in facts
    assert 'name="was:peak_gbps" value="320"' in chief.page

    # level and warning changes, with a reason
    chief.ok(f"{board}/level", {"level": "II", "reason": "two provinces affected"})
    v = changed(v)
    assert str(incident(app, iid).level) == "II"
    assert "lvl-II" in chief.page
    chief.ok(f"{board}/warning", {"level": "orange", "reason": "traffic still rising"})
    v = changed(v)
    assert str(incident(app, iid).emergency.warning) == "orange"
    assert "warn-orange" in chief.page
    chief.ok(f"{board}/warning", {"level": "lift", "reason": "traffic back to normal"})
    v = changed(v)
    assert incident(app, iid).emergency.warning is None

    # a clock recorded at an instant typed in the local zone (Asia/Shanghai)
    clock.advance(timedelta(minutes=20))
    chief.ok(f"{board}/clock", {"clock": "awareness", "at": "2026-10-01T09:05", "reason": ""})
    v = changed(v)
    awareness = incident(app, iid).clock(__import__("ir.domain.clocks", fromlist=["ClockName"]).ClockName.AWARENESS)
    assert awareness == T0 + timedelta(minutes=5)

    # people: assign, unassign, hand over
    chief.ok(f"{board}/assign", {"role": "soc", "user": "deputy"})
    v = changed(v)
    assert "deputy" in incident(app, iid).emergency.on_duty("soc", clock.now())
    chief.ok(f"{board}/unassign", {"role": "soc", "user": "deputy"})
    v = changed(v)
    assert incident(app, iid).emergency.on_duty("soc", clock.now()) == []
    chief.ok(f"{board}/handover", {"to": "deputy", "note": "scrubbing holds; watch the upstream"})
    v = changed(v)
    assert incident(app, iid).emergency.commander == "deputy"

    # the log
    chief.ok(f"{board}/log", {"category": "decision", "text": "Keep RTBH on 203.0.113.7", "source": "bridge"})
    v = changed(v)
    assert incident(app, iid).emergency.log[-1].text == "Keep RTBH on 203.0.113.7"
    assert "Keep RTBH on 203.0.113.7" in chief.page

    # situation reports: draft, edit (both languages, line ends as browsers send them), release
    chief.ok(f"{board}/sitrep-draft")
    v = changed(v)
    report = incident(app, iid).emergency.sitreps[0]
    chief.ok(
        f"{board}/sitrep-edit",
        {
            "number": "1",
            "version": str(v),
            "text_zh": report.text["zh-CN"].replace("\n", "\r\n") + "\r\n指挥部：继续清洗。",
            "text_en": report.text["en"] + "\r\nCommand: scrubbing continues.",
        },
    )
    v = changed(v)
    edited = incident(app, iid).emergency.sitreps[0].text
    assert edited["zh-CN"].endswith("\n指挥部：继续清洗。") and "\r" not in edited["zh-CN"]
    chief.ok(f"{board}/sitrep-release", {"number": "1"})
    v = changed(v)
    assert incident(app, iid).emergency.sitreps[0].released_at is not None

    # linked incidents
    child = open_ddos(chief, title="Fibre cut at the IDC")
    chief.get(board)
    chief.ok(f"{board}/link", {"child": str(child)})
    v = changed(v)
    assert incident(app, iid).emergency.children == [child]
    assert f'href="/incidents/{child}"' in chief.page
    chief.ok(f"{board}/unlink", {"child": str(child)})
    v = changed(v)
    assert incident(app, iid).emergency.children == []

    # a notification made by phone
    chief.ok(f"{board}/notified", {"notification": "internal-callout", "reference": "call log 17"})
    v = changed(v)
    assert incident(app, iid).notifications_sent.get("internal-callout")

    # resources: request, allocate, dispatch
    chief.ok(f"{board}/resource-request", {"resource": "scrubbing_capacity", "quantity": "150", "destination": "IDC-A"})
    v = changed(v)
    request = next(iter(incident(app, iid).emergency.requests.values()))
    assert request.shortfall == 150
    chief.ok(f"{board}/resource-allocate", {"request": request.id})
    v = changed(v)
    assert incident(app, iid).emergency.requests[request.id].shortfall == 50
    assert "has-shortfall" in chief.page
    chief.ok(f"{board}/resource-move", {"request": request.id, "stage": "dispatched"})
    v = changed(v)
    ids = re.findall(r'\bid="([^"]+)"', chief.page)  # a board with something in every section
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for control in re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', chief.page):
        assert f'for="{control}"' in chief.page, control
    assert incident(app, iid).emergency.requests[request.id].units["scrub-1"].stage == "dispatched"

    # restore, end the response, close
    chief.ok(f"{board}/restore", {"restoration": "degraded", "reason": ""})
    v = changed(v)
    chief.ok(f"{board}/end-response", {"reason": "attack over"})
    v = changed(v)
    chief.ok(f"{board}/close", {"reason": "closed after the review call"})
    v = changed(v)
    assert incident(app, iid).closed
    assert "已关闭" in chief.page


def test_a_stale_situation_report_edit_is_a_conflict_not_a_lost_update(app: App, chief: Console) -> None:
    iid = open_ddos(chief)
    board = f"/incidents/{iid}"
    chief.get(board)
    chief.ok(f"{board}/sitrep-draft")
    seen = incident(app, iid).version
    chief.ok(f"{board}/log", {"category": "observation", "text": "someone else acted meanwhile"})
    line = chief.refused(
        f"{board}/sitrep-edit", {"number": "1", "version": str(seen), "text_zh": "改", "text_en": "edit"}
    )
    assert line.startswith("事件已被他人更改：")


# -- errors -----------------------------------------------------------------------------------------------


def test_the_domains_refusals_are_one_line_on_the_page(app: App, chief: Console, client: TestClient) -> None:
    iid = open_ddos(chief)
    board = f"/incidents/{iid}"
    chief.get(board)
    v = incident(app, iid).version
    line = chief.refused(f"{board}/steps/confirm/skip", {"reason": ""})
    assert line == "输入有误：skipping step 'confirm' needs a reason (--note)"
    # shown in the step's own card, which the redirect scrolls to
    card = chief.page.split('id="step-confirm"', 1)[1].split("</article>", 1)[0]
    assert "needs a reason" in card
    assert chief.page.count("needs a reason") == 1
    line = chief.refused(f"{board}/steps/scrubbing/complete")
    assert line.startswith("无法执行：") and "confirm" in line
    line = chief.refused(f"{board}/facts", {"fact:peak_gbps": "lots", "was:peak_gbps": ""})
    assert line == "输入有误：fact 'peak_gbps' is a number; got 'lots'"
    line = chief.refused(f"{board}/facts", {"fact:peak_gbps": "", "was:peak_gbps": ""})
    assert line == "没有修改任何事实"
    line = chief.refused(f"{board}/clock", {"clock": "awareness", "at": "yesterday"})
    assert "2026-10-01T09:00" in line
    line = chief.refused(f"{board}/steps/confirm/evidence", files={"file": ("", b"", "application/octet-stream")})
    assert line == "请选择要上传的文件"
    line = chief.refused(f"{board}/steps/no-such-step/start")
    assert line.startswith("未找到：no step 'no-such-step'")
    assert incident(app, iid).version == v
    # in English, the console's own words in English
    english = chief.get(f"{board}?lang=en")
    assert english.status_code == 200
    line = chief.refused(f"{board}/level", {"level": "II", "reason": ""})
    assert line.startswith("Invalid input: ") or line.startswith("Cannot do that now: ")
    # an observer may look but not act: a line, not a traceback
    watcher = Console(TestClient(client.app))
    watcher.sign_in("watcher", then=board)
    assert "btn-primary" not in watcher.page.split('id="steps"', 1)[1]  # no buttons offered
    line = watcher.refused(f"{board}/steps/confirm/start")
    assert line.startswith("无权执行：watcher may not step start")


def test_an_unknown_incident_is_a_page_saying_so(chief: Console) -> None:
    response = chief.get("/incidents/999")
    assert response.status_code == 404
    assert "未找到：no incident 999" in visible_text(response.text)
    assert "Traceback" not in response.text


def test_a_playbook_is_chosen_from_the_library_never_a_path(chief: Console) -> None:
    chief.get("/")
    line = chief.refused("/incidents", {"playbook": "/etc/passwd", "title": "x"})
    assert line == "预案库中没有预案 “/etc/passwd”"


# -- what the pages show ----------------------------------------------------------------------------------


def test_the_dashboard_shows_levels_warnings_countdowns_and_overdue_counts(
    app: App, clock: SimulatedClock, chief: Console
) -> None:
    ids = {level: open_ddos(chief, title=f"DDoS {level}", level=level) for level in ("I", "II", "III", "IV")}
    chief.get(f"/incidents/{ids['IV']}")
    chief.ok(f"/incidents/{ids['IV']}/warning", {"level": "yellow"})
    page = chief.get("/").text
    for level in ("I", "II", "III", "IV"):
        card = page.split(f'href="/incidents/{ids[level]}"', 1)[1].split("</li>\n", 1)[0]
        assert f"badge lvl lvl-{level}" in card
    assert "warn-yellow" in page and "黄色预警" in page
    assert "RTO" in page and "剩余 2小时" in page  # level I: RTO 2h
    assert "lvl-edge-I" in page
    # twenty minutes on, the steps due 15 minutes after detection are overdue everywhere
    clock.advance(timedelta(minutes=20))
    page = chief.get("/").text
    assert re.search(r'class="count-overdue">超时 [1-9]\d* 项<', page)
    assert "剩余 1小时40分" in page
    fragment = chief.get("/dashboard/list").text
    assert "<html" not in fragment and f"/incidents/{ids['I']}" in fragment


def test_deadlines_turn_amber_then_red_with_countdowns(app: App, clock: SimulatedClock, chief: Console) -> None:
    iid = open_ddos(chief, level="IV")
    page = chief.get(f"/incidents/{iid}").text
    card = page.split('id="step-confirm"', 1)[0].rsplit("<article", 1)[1]
    assert "dl-due_soon" in card  # due 15 minutes after detection: due soon at once
    confirm = page.split('id="step-confirm"', 1)[1].split("</article>", 1)[0]
    assert 'data-left="900"' in confirm and "剩余 15分" in confirm
    scrubbing = page.split('id="step-scrubbing"', 1)[0].rsplit("<article", 1)[1]
    assert "dl-upcoming" in scrubbing
    clock.advance(timedelta(minutes=16))
    page = chief.get(f"/incidents/{iid}").text
    card = page.split('id="step-confirm"', 1)[0].rsplit("<article", 1)[1]
    assert "dl-overdue" in card
    confirm = page.split('id="step-confirm"', 1)[1].split("</article>", 1)[0]
    assert "超时 1分" in confirm and 'data-left="-60"' in confirm
    assert "已超时" in page  # the deadline list says it in words, not only in colour


def test_the_page_in_both_languages(app: App, chief: Console, client: TestClient) -> None:
    iid = open_ddos(chief, title="Carrier-grade DDoS", level="III")
    zh = chief.get(f"/incidents/{iid}").text
    assert '<html lang="zh-CN">' in zh
    for words in ("步骤", "时限", "指挥决策", "事件日志", "态势报告", "确认攻击并研判", "III 级响应 · 较大"):
        assert words in zh, words
    en = chief.get(f"/incidents/{iid}?lang=en")
    assert '<html lang="en">' in en.text
    assert client.cookies.get("ir_lang") == "en"  # remembered
    for words in ("Steps", "Deadlines", "Command", "Incident log", "Confirm the attack and assess it", "Level III"):
        assert words in en.text, words
    # every visible string in English: nothing Chinese but the switch back to Chinese
    text = visible_text(en.text.replace(">中文<", "><"))
    assert not CJK.findall(text), CJK.findall(text)[:20]
    # the cookie keeps it, on every page
    assert '<html lang="en">' in chief.get("/").text
    assert not CJK.findall(visible_text(chief.get("/").text.replace(">中文<", "><")))
    assert not CJK.findall(visible_text(chief.get(f"/incidents/{iid}/timeline").text.replace(">中文<", "><")))
    assert '<html lang="zh-CN">' in chief.get("/?lang=zh-CN").text
    assert '<html lang="zh-CN">' in chief.get("/").text


def test_every_string_is_in_the_dictionary_in_both_languages() -> None:
    for key, (zh, en) in MESSAGES.items():
        if key != "unit.sep":  # Chinese writes 1小时5分 with no space, English 1h 5m
            assert zh.strip() and en.strip(), key
        assert sorted(re.findall(r"{(\w+)}", zh)) == sorted(re.findall(r"{(\w+)}", en)), key
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""t\('([a-z_.-]+)'""", template.read_text()))
    missing = sorted(k for k in used if not k.endswith(".") and k not in MESSAGES)
    assert not missing, missing
    # the keys built from data: every value the data can hold has its string
    built = {
        "act.": [*STEP_ACTS, *INCIDENT_ACTS, "open"],
        "st.": [s.value for s in StepStatus],
        "dl.": [s.value for s in DeadlineState],
        "dl.kind.": ["step", "notification", "regime", "sitrep"],
        "ev.": list(EVENT_TYPES),
        "mode.": [m.value for m in Mode],
        "log.cat.": list(LOG_CATEGORIES),
        "res.stage.": ["allocated", *STAGES],
        "rec.": ["rto", "mtpd", "rpo"],
    }
    missing = sorted(
        prefix + value for prefix, values in built.items() for value in values if prefix + value not in MESSAGES
    )
    assert not missing, missing


def test_no_javascript_is_needed(app: App, chief: Console) -> None:
    """Everything is a plain form or link; the one script is an external file that only adds live updates."""
    iid = open_ddos(chief)
    for path in ("/", f"/incidents/{iid}", f"/incidents/{iid}/timeline", "/password"):
        page = chief.get(path).text
        assert not re.search(r"\son[a-z]+\s*=", page), path  # no inline event handlers
        assert "javascript:" not in page
        scripts = re.findall(r"<script\b[^>]*>", page)
        assert all('type="application/json"' in s or re.search(r'src="/static/live\.js\?v=\w+"', s) for s in scripts)
        forms = re.findall(r"<form\b[^>]*>.*?</form>", page, flags=re.S)
        for form in forms:
            assert 'method="post"' in form and 'action="/' in form, form[:200]
            assert re.search(r'name="csrf" value="[^"]+"', form), form[:200]
            assert re.search(r"<button[^>]*>", form), form[:200]
        assert '<div role="button"' not in page
    board = chief.get(f"/incidents/{iid}").text
    assert len(re.findall(r"<form\b", board)) > 20
    assert 'aria-live="polite"' in board and 'role="status"' in board
    assert '<a class="skip" href="#main">' in board
    # every form control has a label
    ids = re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")(?![^>]*hidden>)[^>]*\bid="([^"]+)"', board)
    for control in ids:
        assert f'for="{control}"' in board, control


def test_titles_and_texts_holding_markup_are_shown_as_text(app: App, chief: Console) -> None:
    title = '<script>alert("pwned")</script> & <b>bold</b>'
    iid = open_ddos(chief, title=title)
    board = f"/incidents/{iid}"
    chief.get(board)
    chief.ok(f"{board}/log", {"category": "message", "text": "<img src=x onerror=alert(1)>", "source": "<i>sms</i>"})
    for path in (board, "/", f"{board}/board", f"{board}/timeline", "/dashboard/list"):
        response = chief.get(path)
        page = response.text
        assert "<script>alert" not in page and "<b>bold</b>" not in page, path
        assert "<img src=x" not in page and "<i>sms</i>" not in page, path
    shown = chief.get(board)
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in shown.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown.text
    assert "script-src 'self'" in shown.headers["content-security-policy"]
    assert shown.headers["cache-control"] == "no-store"


def test_the_board_of_every_playbook_in_the_library_renders(app: App, chief: Console) -> None:
    """Every shipped playbook's board, in both languages: their facts (enumerations, durations, personal
    data), roles, resources and warnings all have their forms."""
    chief.get("/")
    for playbook in app.library.playbooks():
        level = "IV" if any(str(lv) == "IV" for lv in playbook.levels) else ""
        response = chief.ok("/incidents", {"playbook": playbook.id, "title": f"Drill of {playbook.id}", "level": level})
        assert re.search(r"/incidents/\d+$", str(response.url)), playbook.id
        board = urlsplit(str(response.url)).path
        for lang in ("en", "zh-CN"):
            page = chief.get(f"{board}?lang={lang}")
            assert page.status_code == 200, (playbook.id, lang)
            assert f'id="step-{next(iter(playbook.steps))}"' in page.text, playbook.id
            for fact in playbook.facts:
                assert f'name="fact:{fact}"' in page.text, (playbook.id, fact)
    assert len(chief.get("/").text) > 0


def test_the_board_fragment_is_the_board_alone(app: App, chief: Console) -> None:
    iid = open_ddos(chief)
    page = chief.get(f"/incidents/{iid}").text
    assert f'data-stream="/api/stream?incident={iid}"' in page
    assert f'data-fragment="/incidents/{iid}/board"' in page
    fragment = chief.get(f"/incidents/{iid}/board").text
    assert "<html" not in fragment and "<body" not in fragment
    assert f'class="board" data-version="{incident(app, iid).version}"' in fragment
    assert 'id="step-confirm"' in fragment and 'name="csrf"' in fragment
    # it does not eat the message meant for the page
    chief.ok(f"/incidents/{iid}/log", {"category": "decision", "text": "x"})


def test_the_timeline_lists_every_event(app: App, chief: Console) -> None:
    iid = open_ddos(chief)
    chief.get(f"/incidents/{iid}")
    chief.ok(f"/incidents/{iid}/steps/confirm/start")
    page = chief.get(f"/incidents/{iid}/timeline").text
    assert "启动事件" in page and "开始步骤" in page
    assert page.count('class="tl-entry"') == incident(app, iid).version
