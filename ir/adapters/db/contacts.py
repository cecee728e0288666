"""Contacts: names, phones, e-mail and addresses of people, kept only in the database, each field sealed
under the contact's own key (so erasing a person erases their contact too). Imported from CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from ir.adapters.audit.vault import Vault
from ir.adapters.db.tables import contact_groups, contacts
from ir.domain.errors import InvalidInput
from ir.domain.personal import MASK, Personal

COLUMNS = ("id", "name", "phone", "email", "address", "lang", "groups")
MAX_ROWS = 100_000


def subject_of(contact_id: str) -> str:
    return f"contact:{contact_id}"


def import_csv(conn: Connection, vault: Vault, text: str, *, at: datetime) -> tuple[int, int]:
    """Insert or replace contacts from CSV (header: id,name,phone,email,address,lang,groups; groups are
    separated by ';' and list the contact in escalation order). Returns (contacts, group memberships)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"id", "name"} - set(reader.fieldnames or [])
    if missing:
        raise InvalidInput(f"the CSV needs the columns id and name (missing: {', '.join(sorted(missing))})")
    unknown = set(reader.fieldnames or []) - set(COLUMNS)
    if unknown:
        raise InvalidInput(f"unknown CSV columns: {', '.join(sorted(unknown))} (known: {', '.join(COLUMNS)})")
    rows = list(reader)
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS:,} contacts per import")
    positions: dict[str, int] = {}
    memberships = 0
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        cid = (row.get("id") or "").strip()
        name = (row.get("name") or "").strip()
        if not cid or not name:
            raise InvalidInput(f"line {line}: id and name are required")
        if len(cid) > 64 or cid in seen:
            raise InvalidInput(f"line {line}: the id '{cid[:64]}' is too long or repeated")
        seen.add(cid)
        lang = (row.get("lang") or "zh-CN").strip()
        if lang not in ("zh-CN", "en"):
            raise InvalidInput(f"line {line}: lang is zh-CN or en")
        subject = subject_of(cid)

        def sealed(value: str | None, subject: str = subject) -> str | None:
            value = (value or "").strip()
            return json.dumps(vault.seal(conn, subject, value, at=at).to_json()) if value else None

        conn.execute(delete(contact_groups).where(contact_groups.c.contact_id == cid))
        conn.execute(delete(contacts).where(contacts.c.id == cid))
        conn.execute(
            insert(contacts).values(
                id=cid,
                subject_ref=vault.ref(subject),
                name=sealed(name),
                phone=sealed(row.get("phone")),
                email=sealed(row.get("email")),
                address=sealed(row.get("address")),
                lang=lang,
                updated_at=at,
            )
        )
        for group in [g.strip() for g in (row.get("groups") or "").split(";") if g.strip()]:
            positions[group] = positions.get(group, 0) + 1
            conn.execute(insert(contact_groups).values(group_id=group, contact_id=cid, position=positions[group]))
            memberships += 1
    return len(rows), memberships


def _personal(value: str | None) -> Personal | None:
    if not value:
        return None
    data = json.loads(value)
    return Personal(data["$pd"], data["c"])


def list_contacts(conn: Connection, vault: Vault | None = None, *, group: str | None = None) -> list[dict[str, Any]]:
    """Contacts, masked unless a vault is given (revealing is the caller's recorded act)."""
    if group:
        query = (
            select(contacts)
            .join(contact_groups, contact_groups.c.contact_id == contacts.c.id)
            .where(contact_groups.c.group_id == group)
            .order_by(contact_groups.c.position)  # the escalation order
        )
    else:
        query = select(contacts).order_by(contacts.c.id)
    groups: dict[str, list[str]] = {}
    for gid, cid in conn.execute(select(contact_groups.c.group_id, contact_groups.c.contact_id)):
        groups.setdefault(str(cid), []).append(str(gid))
    out = []
    for row in conn.execute(query).mappings():
        item: dict[str, Any] = {"id": row["id"], "lang": row["lang"], "groups": sorted(groups.get(row["id"], []))}
        for name in ("name", "phone", "email", "address"):
            value = _personal(row[name])
            if value is None:
                item[name] = None
            elif vault is None:
                item[name] = MASK
            else:
                item[name] = vault.open(conn, value)
        out.append(item)
    return out
