"""The JSON Schema of the playbook language, generated from the document models."""

from __future__ import annotations

import json
from typing import Any

from ir.adapters.playbooks.document import PlaybookDoc

SCHEMA_ID = "urn:ir:schema:playbook:1"


def playbook_schema() -> dict[str, Any]:
    schema = PlaybookDoc.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def playbook_schema_text() -> str:
    return json.dumps(playbook_schema(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"
