"""The console in a real browser (Debian's Chromium driven by Playwright) against a real `ir serve` on a
SQLite file: signing in, completing a step, a second browser seeing it live without a reload, and the
console on a phone's screen (375×812): no horizontal scroll, the main buttons within reach.

Browser downloads do not work here, so the test drives /usr/bin/chromium. Without it the test is skipped,
except under CI (CI set), where it fails: a CI run that silently skipped the browser would be a lie.
Screenshots are left in /tmp (ir-console-*.png) for a person to look at.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.cli import ROOT, ir

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a long pass phrase 2026"
SHOTS = Path("/tmp")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: the browser tests must run in CI", pytrace=False)
    pytest.skip(reason)


@dataclass
class Server:
    url: str
    env: dict[str, str]
    folder: Path
    incident: int

    def ir(self, *args: str) -> str:
        run = ir(*args, cwd=self.folder, env=self.env)
        assert run.code == 0, run.out + run.err
        return run.out

    def open_incident(self, title: str) -> int:
        """A new DDoS incident at level IV, opened at the command line."""
        opened = self.ir("open", "ddos", "--title", title, "--level", "IV")
        found = re.search(r"incident (\d+) opened", opened)
        assert found, opened
        return int(found.group(1))

    def api(self, user: str) -> httpx.Client:
        """Someone else at the API, signed in (changes made here are announced to the consoles)."""
        client = httpx.Client(base_url=self.url, timeout=10)
        signed = client.post("/api/auth/login", json={"user": user, "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        client.headers["X-CSRF-Token"] = signed.json()["csrf"]
        return client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`ir serve` on a fresh SQLite file, two commanders, and a DDoS incident at level IV."""
    folder = tmp_path_factory.mktemp("console")
    env = {
        "IR_DATABASE_URL": f"sqlite:///{folder / 'ir.db'}",
        "IR_DATA_DIR": str(folder),
        "IR_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
    }
    setup = Server(url="", env=env, folder=folder, incident=0)
    setup.ir("db", "upgrade")
    for user, name in (("chief", "Chen Chief"), ("deputy", "Wang Deputy")):
        setup.ir("users", "add", user, "--name", name, "--role", "commander", "--password", PASSWORD)
    incident = setup.open_incident("DDoS on the IDC <script>alert(1)</script>")
    port = _free_port()
    log = (folder / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ir", "serve", "--port", str(port)],
        cwd=folder,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ir serve did not start: {(folder / 'serve.log').read_text()}")
            time.sleep(0.1)
        yield Server(url=url, env=env, folder=folder, incident=incident)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    served = (folder / "serve.log").read_text()
    assert "Traceback" not in served, served


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:  # the browser's own downloads are never used: Debian's Chromium
        found = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield found
        finally:
            found.close()


def sign_in(context: BrowserContext, server: Server, user: str, *, then: str = "/") -> Page:
    """Sign in through the form, as a person does, and land on `then`."""
    page = context.new_page()
    page.goto(f"{server.url}{then}")
    assert "/login" in page.url  # not signed in yet: sent to the sign-in form, and back afterwards
    page.get_by_label(re.compile("User name|用户名")).fill(user)
    page.get_by_label(re.compile("^(Password|密码)$")).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("^(Sign in|登录)$")).click()
    page.wait_for_url(f"{server.url}{then}")
    return page


def live_connected(page: Page) -> None:
    """live.js has its EventSource open."""
    page.locator("[data-live][data-connected='1']").wait_for(state="attached", timeout=5000)


def step_card(page: Page, step: str) -> Any:
    return page.locator(f"article#step-{step}")


def test_a_step_done_in_one_browser_shows_in_another_live(browser: Browser, server: Server) -> None:
    chief_ctx = browser.new_context(locale="zh-CN")
    deputy_ctx = browser.new_context(locale="en-GB")
    try:
        board = f"/incidents/{server.incident}"
        chief = sign_in(chief_ctx, server, "chief", then=board)
        deputy = sign_in(deputy_ctx, server, "deputy", then=f"{board}?lang=en")
        assert "<script>" in chief.locator("h1").inner_text()  # the title is text, not markup
        assert chief.evaluate("window.__pwned === undefined")
        live_connected(deputy)
        deputy.evaluate("window.__noReload = 'still here'")

        # the chief starts the step; the deputy's board follows
        step_card(chief, "confirm").get_by_role("button", name="开始").click()
        chief.wait_for_url(re.compile(r"#steps$"))
        deputy.wait_for_selector("article#step-confirm.st-in_progress", timeout=2000)

        # then completes it: the deputy sees it done within a second, without a reload
        step_card(chief, "confirm").get_by_role("button", name="完成").click()
        chief.wait_for_url(re.compile(r"#steps$"))
        assert "完成：已记录" in chief.locator(".flash-ok").inner_text()
        started = time.monotonic()
        deputy.wait_for_selector("article#step-confirm.st-done", state="attached", timeout=1000)
        assert time.monotonic() - started < 1.0
        assert deputy.evaluate("window.__noReload") == "still here"
        assert "Updated to version" in deputy.locator("#live-status").inner_text()
        # the steps that waited on it are ready now, on both boards
        assert deputy.locator("article#step-scrubbing.st-ready").count() == 1
        assert chief.locator("article#step-scrubbing.st-ready").count() == 1
    finally:
        chief_ctx.close()
        deputy_ctx.close()


def test_a_form_being_typed_in_is_not_swapped_away(browser: Browser, server: Server) -> None:
    """A live update waits while someone types; their text survives; the update follows."""
    from playwright.sync_api import expect

    incident = server.open_incident("A second DDoS")
    ctx = browser.new_context()
    try:
        page = sign_in(ctx, server, "deputy", then=f"/incidents/{incident}?lang=en")
        live_connected(page)
        log = page.get_by_label("Text", exact=True)
        log.fill("Upstream agreed to filter at their edge")
        version = page.locator(".board").get_attribute("data-version")
        chief = server.api("chief")
        started = chief.post(f"/api/incidents/{incident}/steps/confirm/start")
        chief.close()
        assert started.status_code == 200, started.text
        expect(page.locator("#live-status")).to_contain_text("finish typing", timeout=2000)
        assert page.locator(".board").get_attribute("data-version") == version
        assert log.input_value() == "Upstream agreed to filter at their edge"
        page.get_by_role("button", name="Add to the log").click()
        page.wait_for_url(re.compile(r"#log$"))
        assert "Upstream agreed to filter at their edge" in page.locator("ol.log").inner_text()
        assert page.locator("article#step-confirm.st-in_progress").count() == 1  # the change arrived too
    finally:
        ctx.close()


def test_the_console_on_a_phone(browser: Browser, server: Server) -> None:
    ctx = browser.new_context(
        viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:
        page = sign_in(ctx, server, "chief")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=str(SHOTS / "ir-console-phone-dashboard.png"), full_page=True)
        page.get_by_role("link", name=re.compile(r"DDoS on the IDC")).click()
        page.wait_for_url(re.compile(rf"/incidents/{server.incident}$"))
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=str(SHOTS / "ir-console-phone.png"), full_page=False)
        page.screenshot(path=str(SHOTS / "ir-console-phone-full.png"), full_page=True)
        # the main buttons: on screen once scrolled to, within the width, big enough for a thumb
        ready = page.locator("article.step.st-ready").first
        for name in ("开始", "完成"):
            button = ready.get_by_role("button", name=name, exact=True)
            button.scroll_into_view_if_needed()
            assert button.is_visible()
            box = button.bounding_box()
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
            assert box["height"] >= 44 and box["width"] >= 44, box
        # a reason form opens and stays within the screen
        skip = ready.locator("summary", has_text="跳过")
        skip.click()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        # and the board works in English too, still without a horizontal scroll
        page.goto(f"{server.url}/incidents/{server.incident}?lang=en")
        assert page.locator("h2", has_text="Steps").count() == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        ctx.close()


def test_the_board_on_a_desktop(browser: Browser, server: Server) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = sign_in(ctx, server, "chief", then=f"/incidents/{server.incident}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.screenshot(path=str(SHOTS / "ir-console-desktop.png"), full_page=False)
        # keyboard: the skip link is the first stop and focus is visible
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        # an incident opened from the dashboard's form lands on its board
        page.goto(f"{server.url}/?lang=en")
        page.get_by_label("Playbook").select_option("dns-failure")
        page.get_by_label("Title").fill("Resolver farm not answering")
        page.get_by_label("Response level").select_option("II")
        page.get_by_role("button", name="Open", exact=True).click()
        page.wait_for_url(re.compile(r"/incidents/\d+$"))
        assert page.locator("h1").inner_text().endswith("Resolver farm not answering")
        assert "Open the incident: recorded" in page.locator(".flash-ok").inner_text()
        assert page.locator(".badge.lvl-II").count() == 1
    finally:
        ctx.close()
