"""The conformance data the tests check against: the official copies in ../shared/standards when the
clone sits beside them (as in CI), else the copies vendored under tests/data (byte-identical)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def standard(relative: str, vendored: str) -> Path:
    shared = ROOT.parent / "shared" / "standards" / relative
    return shared if shared.is_file() else ROOT / "tests" / "data" / vendored


RFC6962_KNOWN_ANSWERS = standard("rfc6962/known-answers.json", "rfc6962-known-answers.json")
# The official CAP 1.2 schema; the package validates against its vendored copy (byte-identical, checked in
# tests/integration/test_status_page.py), which serves as the fallback here.
CAP_XSD = (
    ROOT.parent / "shared" / "standards" / "cap-1.2" / "CAP-v1.2.xsd"
    if (ROOT.parent / "shared" / "standards" / "cap-1.2" / "CAP-v1.2.xsd").is_file()
    else ROOT / "ir" / "adapters" / "notify" / "CAP-v1.2.xsd"
)
