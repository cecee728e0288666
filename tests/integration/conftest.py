"""Fixtures the integration tests share: `rig`, an application whose notifications go to a real SMTP
server and a real HTTP server (tests/integration/notify_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ir.adapters.clock import SimulatedClock
from tests.conftest import AppFactory
from tests.integration.notify_support import (
    CONTACTS,
    HttpServer,
    Rig,
    SmtpServer,
    http_env,
    import_contacts,
    notify_folder,
    playbook_folder,
)


@pytest.fixture
def notify_channels() -> dict[str, Any]:
    """Settings added to the rig's channels.yaml (a test module overrides this fixture to add some)."""
    return {}


@pytest.fixture
def rig(
    make_app: AppFactory,
    tmp_path: Path,
    clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
    notify_channels: dict[str, Any],
) -> Iterator[Rig]:
    smtp = SmtpServer().start()
    http = HttpServer().start()
    for k, v in http_env(http).items():
        monkeypatch.setenv(k, v)
    folder = notify_folder(tmp_path, smtp_port=smtp.port, http=http, channels_extra=notify_channels)
    app = make_app(playbooks_dir=str(playbook_folder(tmp_path)), notifications_dir=str(folder))
    assert app.notify is not None
    import_contacts(app, CONTACTS)
    try:
        yield Rig(app, app.notify, smtp, http, clock)
    finally:
        app.notify.close()
        smtp.stop()
        http.stop()
