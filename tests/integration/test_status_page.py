"""The public status page, its feeds and its CAP 1.2 alerts, on SQLite and PostgreSQL, served in-process.

Publishing through the API, the console's form and the command line; the page (no sign-in, zh-CN with an
English switch) showing only what was published; Atom feeds parsed and checked for what Atom requires;
every CAP alert validated with xmlschema against the official XSD (a drill's status Exercise, an update
referring to the first alert, the all-clear a Cancel); nothing else of an incident — its internal title,
facts, notes, steps, log, personal data — in the page, the feeds or the alerts; an unpublished incident
absent; every other route still refusing a caller who has not signed in.
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ir.adapters.db.tables import audit_records
from ir.adapters.notify.cap import XSD as VENDORED_XSD
from ir.domain import commands as c
from ir.entrypoints.web.status_page import PUBLIC_PATHS
from tests.builders import MINIMAL_PLAYBOOK
from tests.conftest import T0, decrypt_audit
from tests.integration.api_support import DATABASES, LOCAL, Api, problem, served
from tests.standards import CAP_XSD

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"

# routes that answer without a sign-in by design: the sign-in itself, the API's description, health, files
PUBLIC_BY_DESIGN = {
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/api/health",
    "/api/auth/login",
    "/api/auth/logout",
    "/login",
    "/logout",
    "/static",
    "/ack/{token}",  # a notification's acknowledgement link: its signed token is the credential
}

PERSONAL_PLAYBOOK = MINIMAL_PLAYBOOK.replace(
    "facts:\n",
    "facts:\n"
    "  - name: caller_number\n"
    "    type: string\n"
    "    personal: true\n"
    "    title: {zh-CN: 报障人电话, en: Caller number}\n",
    1,
)


@pytest.fixture(scope="module", params=DATABASES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from served(request, tmp_path_factory)


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(CAP_XSD))


def body(**extra: Any) -> dict[str, Any]:
    return {
        "title_zh": "部分地区宽带访问缓慢",
        "title_en": "Slow broadband in some areas",
        "message_zh": "我们正在处理，部分用户访问网站缓慢。",
        "message_en": "We are working on it; some users see slow websites.",
        **extra,
    }


def publish(api: Api, iid: int, user: str = "communications", **extra: Any) -> dict[str, Any]:
    answer = api.client.post(f"/api/incidents/{iid}/status-updates", json=body(**extra), headers=api.bearer(user))
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


def anonymous(api: Api) -> TestClient:
    """A client with no session and no token (the app is already started by the module's client)."""
    return TestClient(api.client.app, follow_redirects=False)


def cap_of(api: Api, identifier: str, schema: xmlschema.XMLSchema) -> ET.Element:
    answer = anonymous(api).get(f"/status/alerts/{identifier}.xml")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/cap+xml")
    schema.validate(answer.text)  # raises, naming the problem, if the alert is not valid CAP 1.2
    return ET.fromstring(answer.content)


def text(node: ET.Element, path: str) -> str:
    found = node.find(path)
    assert found is not None and found.text is not None, path
    return found.text


def atom(api: Api, path: str) -> ET.Element:
    answer = anonymous(api).get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(answer.content)
    assert feed.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert feed.find(f"{ATOM}{name}") is not None, name
    assert feed.find(f"{ATOM}author/{ATOM}name") is not None  # entries carry none of their own
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text(feed, f"{ATOM}updated"))
    for entry in feed.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated"):
            assert entry.find(f"{ATOM}{name}") is not None, name
        assert text(entry, f"{ATOM}id").startswith("urn:uuid:")
    return feed


def entries_of(feed: ET.Element, alert: str) -> list[ET.Element]:
    return [e for e in feed.findall(f"{ATOM}entry") if any(alert in (link.get("href") or "") for link in e)]


# -- publishing and reading -------------------------------------------------------------------------------


def test_published_updates_become_the_page_the_feeds_and_cap_alerts(api: Api, schema: xmlschema.XMLSchema) -> None:
    iid = api.open("ddos", level="II", title="内部：IDC-3 清洗设备 scrub-07 故障")
    eta = (T0 + timedelta(hours=6)).isoformat()
    first = publish(api, iid, eta=eta, area_zh="海南省海口市", area_en="Haikou, Hainan")
    assert first["seq"] == 1 and first["cap_msg_type"] == "Alert"

    alert = cap_of(api, first["cap_identifier"], schema)
    assert text(alert, f"{CAP}status") == "Actual"
    assert text(alert, f"{CAP}msgType") == "Alert"
    assert text(alert, f"{CAP}scope") == "Public"
    assert text(alert, f"{CAP}sender") == api.app.settings.status_sender
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", text(alert, f"{CAP}sent"))
    assert alert.find(f"{CAP}references") is None
    infos = alert.findall(f"{CAP}info")
    assert [text(i, f"{CAP}language") for i in infos] == ["zh-CN", "en"]
    zh, en = infos
    assert text(zh, f"{CAP}headline") == "部分地区宽带访问缓慢"
    assert text(en, f"{CAP}headline") == "Slow broadband in some areas"
    assert [x.text for x in en.findall(f"{CAP}category")] == ["Security", "Infra"]  # an attack
    # level II, no warning: an impact under way (docs/status-page.md)
    assert (text(en, f"{CAP}urgency"), text(en, f"{CAP}severity"), text(en, f"{CAP}certainty")) == (
        "Immediate",
        "Severe",
        "Observed",
    )
    assert text(zh, f"{CAP}area/{CAP}areaDesc") == "海南省海口市"
    assert text(en, f"{CAP}area/{CAP}areaDesc") == "Haikou, Hainan"
    assert text(en, f"{CAP}parameter/{CAP}value") == "2026-10-01T15:00:00+08:00"
    assert text(en, f"{CAP}instruction") == "Follow the status page and further notices."  # none was given

    # a red warning raises the severity; the update refers to the first alert
    api.do(c.IssueWarning(actor=LOCAL, incident_id=iid, level="red"))
    api.clock.advance(timedelta(minutes=30))
    second = publish(api, iid, user="commander", title_en="Slow broadband: traffic diverted")
    assert second["seq"] == 2 and second["cap_msg_type"] == "Update"
    update = cap_of(api, second["cap_identifier"], schema)
    assert text(update, f"{CAP}msgType") == "Update"
    assert (
        text(update, f"{CAP}references")
        == f"{api.app.settings.status_sender},{first['cap_identifier']},{text(alert, f'{CAP}sent')}"
    )
    assert text(update, f"{CAP}info/{CAP}severity") == "Extreme"
    assert text(update, f"{CAP}info/{CAP}area/{CAP}areaDesc") == "海南省海口市"  # the area carries over
    assert text(update, f"{CAP}incidents") == text(alert, f"{CAP}incidents") == first["public_ref"]

    # the page: the public title, the estimate, both updates, in zh-CN by default and in English
    page = anonymous(api).get("/status")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert "部分地区宽带访问缓慢" in page.text and "预计恢复时间" in page.text
    assert f'id="{first["public_ref"]}"' in page.text
    assert f"/status/alerts/{first['cap_identifier']}.xml" in page.text
    english = anonymous(api).get("/status?lang=en")
    assert '<html lang="en">' in english.text
    assert "Slow broadband: traffic diverted" in english.text and "Estimated restoration" in english.text
    assert "<script" not in page.text and "<form" not in page.text
    assert 'name="viewport"' in page.text  # phone-friendly, like the console
    assert "set-cookie" not in page.headers

    # the feeds
    feed = atom(api, "/status/feed.atom")
    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    [entry] = entries_of(feed, first["cap_identifier"])
    assert "部分地区宽带访问缓慢" in text(entry, f"{ATOM}title")
    assert "2026-10-01 15:00" in text(entry, f"{ATOM}summary")
    cap_feed = atom(api, "/status/feed.cap.xml?lang=en")
    [entry] = entries_of(cap_feed, second["cap_identifier"])
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "application/cap+xml"
    [inline] = list(content)
    schema.validate(ET.tostring(inline, encoding="unicode"))
    assert text(inline, f"{CAP}identifier") == second["cap_identifier"]

    # the all-clear: a Cancel of both, the incident shown as resolved without an estimate
    api.clock.advance(timedelta(hours=2))
    done = publish(api, iid, resolved=True, title_en="Broadband is back to normal")
    cancel = cap_of(api, done["cap_identifier"], schema)
    assert text(cancel, f"{CAP}msgType") == "Cancel"
    assert len(text(cancel, f"{CAP}references").split()) == 2
    assert text(cancel, f"{CAP}info/{CAP}responseType") == "AllClear"
    assert text(cancel, f"{CAP}info/{CAP}urgency") == "Past"
    assert cancel.find(f"{CAP}info/{CAP}instruction") is None
    english = anonymous(api).get("/status?lang=en").text
    card = english[english.index(f'id="{first["public_ref"]}"') :]
    card = card[: card.index("</article>")]
    assert "Resolved" in card and "Estimated restoration" not in card.split("<ol")[0]

    # the people who run the incident list what was published
    listed = api.client.get(f"/api/incidents/{iid}/status-updates", headers=api.bearer("observer"))
    assert listed.status_code == 200
    assert [u["cap_msg_type"] for u in listed.json()] == ["Alert", "Update", "Cancel"]


def test_a_drill_is_an_exercise_and_a_test_is_not_listed(api: Api, schema: xmlschema.XMLSchema) -> None:
    drill = int(
        api.do(c.OpenIncident(actor=LOCAL, playbook="typhoon-flood", title="台风演练", mode="drill")).incident_id
    )
    api.do(c.IssueWarning(actor=LOCAL, incident_id=drill, level="orange"))
    published = publish(api, drill, title_zh="【演练】台风影响通信", title_en="[Drill] Typhoon affects service")
    alert = cap_of(api, published["cap_identifier"], schema)
    assert text(alert, f"{CAP}status") == "Exercise"
    assert "exercise" in text(alert, f"{CAP}note")
    info = alert.find(f"{CAP}info")
    assert info is not None
    assert [x.text for x in info.findall(f"{CAP}category")] == ["Met", "Infra"]  # a typhoon
    # an orange warning, no level yet: an impact to come
    assert (text(info, f"{CAP}urgency"), text(info, f"{CAP}severity"), text(info, f"{CAP}certainty")) == (
        "Expected",
        "Severe",
        "Likely",
    )
    assert text(info, f"{CAP}responseType") == "Prepare"
    page = anonymous(api).get("/status").text
    card = page[page.index(f'id="{published["public_ref"]}"') :]
    assert "演练" in card[: card.index("</h3>")] and "并非真实事件" in card
    [entry] = entries_of(atom(api, "/status/feed.atom"), published["cap_identifier"])
    assert text(entry, f"{ATOM}title").startswith("[演练]")
    assert any(cat.get("term") == "exercise" for cat in entry.findall(f"{ATOM}category"))

    tried = int(api.do(c.OpenIncident(actor=LOCAL, playbook="ddos", title="t", mode="test")).incident_id)
    trial = publish(api, tried, title_zh="测试通告甲乙丙", title_en="Test notice xyz")
    assert text(cap_of(api, trial["cap_identifier"], schema), f"{CAP}status") == "Test"
    assert "测试通告甲乙丙" not in anonymous(api).get("/status").text
    assert not entries_of(atom(api, "/status/feed.cap.xml"), trial["cap_identifier"])


# -- nothing else leaks ------------------------------------------------------------------------------------


def test_nothing_else_of_an_incident_reaches_the_public(api: Api, tmp_path: Path) -> None:
    book = tmp_path / "personal.yaml"
    book.write_text(PERSONAL_PLAYBOOK, encoding="utf-8")
    secrets = {
        "title": "内部标题-机房A3空调失效-绝密",
        "caller": "13912345678",
        "cause": "root cause: operator Zhang Wei pulled cable 7",
        "note": "内部备注：联系张伟 13700001111",
        "step_note": "step note: rebooted core-sw-09",
        "log": "log: vendor ticket VX-99821",
        "sitrep": "sitrep-secret-K7",
        "contact": "联系人王芳 13600002222",
    }
    iid = int(
        api.do(
            c.OpenIncident(
                actor=LOCAL,
                playbook=str(book),
                title=secrets["title"],
                facts={"caller_number": secrets["caller"], "affected_users": 54321, "cause": secrets["cause"]},
                level="III",
            )
        ).incident_id
    )
    api.do(c.AddNote(actor=LOCAL, incident_id=iid, text=secrets["note"], about="张伟"))
    api.do(c.AddNote(actor=LOCAL, incident_id=iid, text=secrets["contact"]))
    api.do(c.StartStep(actor=LOCAL, incident_id=iid, step_id="confirm"))
    api.do(c.CompleteStep(actor=LOCAL, incident_id=iid, step_id="confirm", note=secrets["step_note"]))
    api.do(c.AddLogEntry(actor=LOCAL, incident_id=iid, category="decision", text=secrets["log"]))
    api.do(c.DraftSitrep(actor=LOCAL, incident_id=iid))
    with api.app.db.read() as repo:
        draft = repo.get(iid).emergency.sitreps[0].text
    api.do(
        c.EditSitrep(actor=LOCAL, incident_id=iid, number=1, text_zh=draft["zh-CN"] + secrets["sitrep"], text_en="x")
    )
    api.add_user("li.wei", ["communications"])
    published = publish(api, iid, user="li.wei", title_zh="公开标题甲", title_en="Public title A")

    internal = [
        *secrets.values(),
        "54321",  # a fact's value
        "li.wei",  # who published
        "最小预案",
        "Minimal plan",  # the playbook
        "确认故障",
        "Confirm the fault",  # a step
        f"/incidents/{iid}",
    ]
    client = anonymous(api)
    seen = {
        "page zh": client.get("/status").text,
        "page en": client.get("/status?lang=en").text,
        "atom": client.get("/status/feed.atom").text,
        "atom en": client.get("/status/feed.atom?lang=en").text,
        "cap feed": client.get("/status/feed.cap.xml").text,
        "cap alert": client.get(f"/status/alerts/{published['cap_identifier']}.xml").text,
    }
    assert "公开标题甲" in seen["page zh"] and "Public title A" in seen["cap alert"]
    for where, content in seen.items():
        for secret in internal:
            assert secret not in content, f"{secret!r} leaked into the {where}"
    # the internal number is not the public reference either
    assert f">{iid}<" not in seen["page zh"] and f"#{iid}" not in seen["page zh"]


def test_an_unpublished_incident_does_not_appear(api: Api) -> None:
    iid = api.open("ddos", level="I", title="未发布的事件-XQ17")
    api.do(c.IssueWarning(actor=LOCAL, incident_id=iid, level="red"))
    client = anonymous(api)
    for path in ("/status", "/status?lang=en", "/status/feed.atom", "/status/feed.cap.xml"):
        assert "XQ17" not in client.get(path).text
    listed = api.client.get(f"/api/incidents/{iid}/status-updates", headers=api.bearer("observer"))
    assert listed.json() == []


def test_concurrent_publishers_never_fork_the_notice(api: Api, schema: xmlschema.XMLSchema) -> None:
    """Eight publishers at once on one incident: updates 1 to 8, each referring to all the earlier ones."""
    from ir.domain.status_updates import PublishStatusUpdate
    from ir.entrypoints.status_service import status_page

    iid = api.open("ddos", level="III", title="crowded")
    service = status_page(api.app)
    actor = c.Actor(id="communications", roles=frozenset({"communications"}))

    def one(n: int) -> int:
        command = PublishStatusUpdate(actor=actor, incident_id=iid, **body(title_en=f"Update from desk {n}"))
        return service.publish(command).seq

    with ThreadPoolExecutor(max_workers=8) as pool:
        seqs = sorted(pool.map(one, range(8)))
    assert seqs == list(range(1, 9))
    updates = service.published(iid)
    for k, u in enumerate(updates):
        alert = ET.fromstring(u.cap_xml.encode())
        schema.validate(u.cap_xml)
        refs = alert.findtext(f"{CAP}references")
        assert (refs.split() if refs else []) == [
            f"{api.app.settings.status_sender},{e.cap_identifier},{e.cap_sent}" for e in updates[:k]
        ]


# -- refusals -------------------------------------------------------------------------------------------


def audit_count(api: Api) -> int:
    with api.app.db.connection() as conn:
        return len(conn.execute(audit_records.select()).all())


def test_bad_input_is_refused_and_publishes_nothing(api: Api) -> None:
    iid = api.open("ddos", level="IV", title="refusals")
    url = f"/api/incidents/{iid}/status-updates"
    headers = api.bearer("communications")
    cases = [
        (body(title_en=" "), 422, "title_en"),
        (body(eta=(T0 - timedelta(days=1)).isoformat()), 422, "eta"),
        (body(area_zh="海口"), 422, "area_en"),  # one language of two
        (body(eta=(T0 + timedelta(days=1)).isoformat(), resolved=True), 422, "eta"),
        (body(title_zh="x" * 201), 422, None),
        (body(message_en="bell \x07"), 422, "message_en"),
        (body(message_zh="\ud800 lone surrogate"), 422, "message_zh"),
        (body(title_en="\ufffe"), 422, "title_en"),
    ]
    for sent, status, field in cases:  # as JSON text (a lone surrogate travels escaped, as \ud800)
        raw = json.dumps(sent, ensure_ascii=True)
        answer = api.client.post(url, content=raw, headers=headers | {"Content-Type": "application/json"})
        problem(answer, status, field=field)
    problem(api.client.post("/api/incidents/999999/status-updates", json=body(), headers=headers), 404)
    for role in ("responder", "observer", "auditor"):
        problem(api.client.post(url, json=body(), headers=api.bearer(role)), 403)
    assert api.client.get(url, headers=headers).json() == []
    problem(anonymous(api).get("/status/alerts/ir-nothing-1.xml"), 404)


def test_each_publish_is_audited(api: Api) -> None:
    iid = api.open("ddos", level="IV", title="audited")
    before = audit_count(api)
    published = publish(api, iid)
    assert audit_count(api) == before + 1
    [record] = [
        r
        for r in decrypt_audit(api.app)
        if r["action"] == "status.publish" and r["payload"]["status_update"] == published["id"]
    ]
    assert record["actor"] == "communications" and record["subject"] == f"incident:{iid}"
    assert record["payload"]["cap_identifier"] == published["cap_identifier"]
    # the record fingerprints the alert exactly as the public is served it
    served_alert = anonymous(api).get(f"/status/alerts/{published['cap_identifier']}.xml").content
    with api.app.db.connection() as conn:
        row = conn.execute(
            audit_records.select().where(audit_records.c.ref == f"status_update:{published['id']}")
        ).one()
    assert bytes(row.digest) == hashlib.sha256(served_alert).digest()


# -- the public routes, and only they, need no sign-in -------------------------------------------------------


def routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) the application serves, through routers included in routers."""

    def walk(items: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
        for route in items:
            context = getattr(route, "include_context", None)
            if context is not None:
                yield from walk(context.included_router.routes, prefix + context.prefix)
            elif hasattr(route, "routes") and not hasattr(route, "methods"):
                yield "GET", prefix + route.path  # a mount
            else:
                for method in sorted(getattr(route, "methods", None) or {"GET"}):
                    if method != "HEAD":
                        yield method, prefix + route.path

    app: Any = api.client.app
    return sorted(set(walk(app.routes)))


def test_the_public_routes_need_no_sign_in_and_every_other_route_does(api: Api) -> None:
    iid = api.open("ddos", level="IV", title="public")
    published = publish(api, iid)
    client = anonymous(api)
    served = routes(api)
    assert {path for _m, path in served} >= PUBLIC_PATHS
    for path in PUBLIC_PATHS:
        real = path.replace("{identifier}", published["cap_identifier"])
        answer = client.get(real)
        assert answer.status_code == 200, f"{real}: {answer.status_code}"
        head = client.head(real)  # what uptime checks send
        assert head.status_code == 200 and not head.content, real
    for method, path in served:
        if path in PUBLIC_PATHS or path in PUBLIC_BY_DESIGN:
            continue
        real = re.sub(r"\{[^}]+\}", "1", path)
        answer = client.request(method, real)
        redirected = answer.status_code == 303 and answer.headers["location"].startswith("/login")
        assert answer.status_code == 401 or redirected, f"{method} {path} answered {answer.status_code} unsigned"


# -- the console's form and the command line ------------------------------------------------------------------


def test_the_board_form_publishes(api: Api) -> None:
    iid = api.open("ddos", level="III", title="form")
    browser = TestClient(api.client.app, follow_redirects=False)
    api.login(browser, "communications")
    board = browser.get(f"/incidents/{iid}")
    assert board.status_code == 200
    assert f'action="/incidents/{iid}/status-update"' in board.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', board.text)
    assert csrf is not None
    sent = {
        "csrf": csrf.group(1),
        "title_zh": "表单发布的标题",
        "title_en": "Published from the board",
        "message_zh": "正在处理。",
        "message_en": "Being handled.",
        "eta": "2026-10-01T20:30",
    }
    answer = browser.post(f"/incidents/{iid}/status-update", data=sent)
    assert answer.status_code == 303 and answer.headers["location"] == f"/incidents/{iid}#status"
    again = browser.get(f"/incidents/{iid}").text
    assert "第 1 条状态更新" in again
    assert 'value="Published from the board"' in again  # the next update starts from the public title
    assert "CAP Alert" in again
    [update] = api.client.get(f"/api/incidents/{iid}/status-updates", headers=api.bearer("observer")).json()
    assert update["title_en"] == "Published from the board"
    assert update["eta"].startswith("2026-10-01T12:30:00")  # 20:30 in Shanghai
    # a forged form changes nothing
    forged = browser.post(f"/incidents/{iid}/status-update", data=sent | {"csrf": "forged"})
    assert forged.status_code == 403
    # an observer sees no form
    viewer = TestClient(api.client.app, follow_redirects=False)
    api.login(viewer, "observer")
    assert "status-update" not in viewer.get(f"/incidents/{iid}").text


def test_the_command_line_publishes(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from ir.entrypoints.cli.main import cli

    iid = api.open("ddos", level="III", title="cli")
    settings = api.app.settings
    for name, value in (
        ("IR_DATABASE_URL", settings.database_url),
        ("IR_DATA_DIR", settings.data_dir),
        ("IR_PLAYBOOKS_DIR", settings.playbooks_dir),
    ):
        monkeypatch.setenv(name, value)
    args = ["status-page", "publish", str(iid), "--title", "命令行标题", "--title-en", "From the CLI"]
    args += ["--message", "处理中", "--message-en", "Being handled", "--eta", "2099-01-01T09:00", "--json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert '"cap_msg_type": "Alert"' in result.output
    listed = CliRunner().invoke(cli, ["status-page", "list", str(iid)], catch_exceptions=False)
    assert "命令行标题 / From the CLI" in listed.output
    from ir.entrypoints.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "status-page",
                "publish",
                str(iid),
                "--title",
                "x",
                "--title-en",
                " ",
                "--message",
                "m",
                "--message-en",
                "m",
            ]
        )
    assert exit_.value.code == 2  # bad input


# -- the vendored schema ----------------------------------------------------------------------------------------


def test_the_vendored_schema_is_the_official_one() -> None:
    assert VENDORED_XSD.read_bytes() == CAP_XSD.read_bytes()
