"""The tables, in SQLAlchemy Core. Migrations (ir/adapters/db/migrations) create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


playbook_versions = Table(
    "playbook_versions",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("playbook_id", String(64), nullable=False),
    Column("version", String(32), nullable=False),
    Column("source", Text, nullable=False),
    Column("stored_at", UTCDateTime, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("playbook_id", String(64), nullable=False),
    Column("playbook_hash", String(64), ForeignKey("playbook_versions.hash"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("level", String(3)),
    Column("status", String(12), nullable=False),  # triage | response | restored | closed
    Column("opened_at", UTCDateTime, nullable=False),
    Column("detected_at", UTCDateTime),
    Column("restored_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("simulated_start", UTCDateTime),  # a drill on simulated time: its clock is
    Column("real_start", UTCDateTime),  # simulated_start + (now - real_start) * speed
    Column("speed", Float, nullable=False, default=1.0),
    Index("ix_incidents_status", "status"),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("incident_id", "seq"),
)

incident_snapshots = Table(
    "incident_snapshots",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("state", Text, nullable=False),
)

# Query projection: every step and obligation of every incident, with its status and due instant.
work_items = Table(
    "work_items",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("ref", String(80), nullable=False),  # step:<id> | notification:<id> | rto | mtpd
    Column("kind", String(16), nullable=False),
    Column("role", String(64)),
    Column("status", String(16), nullable=False),
    Column("assignee", String(200)),
    Column("due_at", UTCDateTime),
    Column("done_at", UTCDateTime),
    PrimaryKeyConstraint("incident_id", "ref"),
    Index("ix_work_items_due", "due_at"),
    Index("ix_work_items_role", "role", "status"),
)

evidence_blobs = Table(
    "evidence_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(200), nullable=False),
    Column("content", LargeBinary),  # NULL when kept in the configured evidence folder
    Column("stored_at", UTCDateTime, nullable=False),
)

# Machine acts around incidents: kept apart so they never compete for an incident's version.
timer_marks = Table(
    "timer_marks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("ref", String(80), nullable=False),
    Column("mark", String(20), nullable=False),  # due_soon | overdue | breached | escalated
    Column("due_at", UTCDateTime, nullable=False),
    Column("marked_at", UTCDateTime, nullable=False),
    Column("target", String(64)),  # the role escalated to
    UniqueConstraint("incident_id", "ref", "mark", "due_at", name="uq_timer_marks_key"),
)

audit_keys = Table(
    "audit_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("kek_id", String(40), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired", Boolean, nullable=False, default=False),
)

audit_records = Table(
    "audit_records",
    metadata,
    Column("id", String(32), primary_key=True),  # the millisecond + 10 random bytes, bound into the ciphertext
    Column("log_id", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("subject_ref", String(64), nullable=False),
    Column("ref", String(80), nullable=False),  # what it records, e.g. incident:42#17 (an event), or ""
    Column("digest", LargeBinary, nullable=False),  # SHA-256 of the recorded row (an event), or 32 zero bytes
    Column("body", LargeBinary, nullable=False),  # nonce || AES-256-GCM ciphertext
    Column("seq", BigInteger),  # given by the sealer
    Column("prev_hash", LargeBinary),
    Column("entry_hash", LargeBinary),
    UniqueConstraint("log_id", "seq", name="uq_audit_records_seq"),
)

# The head of each audit chain: only the sealer writes it (SQLite: under BEGIN IMMEDIATE; PostgreSQL:
# SELECT ... FOR UPDATE on this row, held only while sealing one batch).
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("log_id", String(40), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("last_hash", LargeBinary, nullable=False),
    Column("frontier", LargeBinary, nullable=False),  # the compact range: root hashes of perfect subtrees
    Column("sealed_at", UTCDateTime, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("log_id", String(40), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),  # the signed checkpoint, as published
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),  # when it reached the configured place outside the database
    PrimaryKeyConstraint("log_id", "size"),
)

# Per-subject keys for personal data: destroying one erases that person everywhere (crypto-shredding).
subject_keys = Table(
    "subject_keys",
    metadata,
    Column("subject_ref", String(64), primary_key=True),
    Column("kek_id", String(40)),
    Column("wrapped", LargeBinary),  # NULL once shredded
    Column("created_at", UTCDateTime, nullable=False),
    Column("shredded_at", UTCDateTime),
)

# Registered inventory: generators, emergency vehicles, satellite phones, repair teams … one row a unit,
# committed to at most one incident's request at a time.
resource_units = Table(
    "resource_units",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("base", String(200), nullable=False),
    Column("capacity", Integer, nullable=False),  # 1 for a unit; more for pooled capacity (Gbit/s, people)
    Column("status", String(16), nullable=False),  # available | committed | out_of_service
    Column("incident_id", Integer, ForeignKey("incidents.id")),
    Column("request_id", String(16)),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_resource_units_kind", "kind", "status"),
)

# Contacts: personal data, each field sealed under the contact's own key; groups order them for escalation.
contacts = Table(
    "contacts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("subject_ref", String(64), nullable=False),
    Column("name", Text, nullable=False),  # sealed
    Column("phone", Text),  # sealed
    Column("email", Text),  # sealed
    Column("address", Text),  # sealed
    Column("lang", String(8), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

contact_groups = Table(
    "contact_groups",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("contact_id", String(64), ForeignKey("contacts.id"), nullable=False),
    Column("position", Integer, nullable=False),  # escalation order within the group
    PrimaryKeyConstraint("group_id", "contact_id"),
)

# People who sign in, machines' API tokens (stored hashed), and console sessions (revocable).
users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),  # the sign-in name
    Column("display_name", String(200), nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("roles", String(200), nullable=False),  # comma-separated system roles
    Column("lang", String(8), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("must_change_password", Boolean, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the secret
    Column("scopes", String(200), nullable=False),  # comma-separated: read, write
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

# Alert intake: machine acts around incidents, kept apart so repeats never compete for an incident's version.
# One row per alert fingerprint (namespaced by source): the occurrence it last acted on (startsAt), its
# status and the incident it went to; a repeat only moves last_seen and count.
alert_fingerprints = Table(
    "alert_fingerprints",
    metadata,
    Column("fingerprint", String(255), primary_key=True),  # <source>:<fingerprint>
    Column("source", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("group_key", String(64), nullable=False),
    Column("incident_id", Integer, ForeignKey("incidents.id")),
    Column("status", String(8), nullable=False),  # firing | resolved
    Column("starts_at", UTCDateTime),  # the occurrence acted on (Alertmanager's startsAt)
    Column("ends_at", UTCDateTime),
    Column("summary", String(500), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),  # times received
    Index("ix_alert_fingerprints_incident", "incident_id"),
)

# The incident each group of alerts (a rule and its group_by label values) attaches to while it is open.
alert_groups = Table(
    "alert_groups",
    metadata,
    Column("group_key", String(64), primary_key=True),  # SHA-256 of the rule id and the group's label values
    Column("rule", String(64), nullable=False),
    Column("labels", Text, nullable=False),  # the group_by labels, JSON
    Column("incident_id", Integer, ForeignKey("incidents.id")),  # NULL while claimed, before its incident opens
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Notifications (docs/notifications.md): machine acts around incidents, kept apart from the incident's
# events so deliveries never compete for its version. One notice per notification an incident made due
# (at a level or a warning: `cause`), holding what it says, rendered once, per language (no personal data);
# one message per recipient and channel, each with its idempotency key (the Message-ID, the webhook's
# Idempotency-Key), the recipient's address sealed under the contact's own key, its delivery and its
# acknowledgement. Critical messages not acknowledged in time escalate to the next contact (`step`).
outbox_notices = Table(
    "outbox_notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("notification", String(64), nullable=False),
    Column("cause", String(32), nullable=False),  # level:II | warning:red
    Column("audience", String(16), nullable=False),
    Column("critical", Boolean, nullable=False),
    Column("content", Text, nullable=False),  # JSON: {lang: {subject, text, html}}
    Column("actor", String(200), nullable=False),  # whose act made it due
    Column("created_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime),  # when its delivery was recorded on the incident (NotificationSent)
    UniqueConstraint("incident_id", "notification", "cause", name="uq_outbox_notices_cause"),
)

outbox_messages = Table(
    "outbox_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notice_id", Integer, ForeignKey("outbox_notices.id"), nullable=False),
    Column("incident_id", Integer, nullable=False),
    Column("key", String(64), nullable=False, unique=True),  # the idempotency key
    Column("channel", String(16), nullable=False),
    Column("contact_id", String(64)),  # a person (email, sms, phone) …
    Column("endpoint", String(64)),  # … or a configured webhook or IM robot
    Column("address", Text),  # sealed under the contact's key (a copy of the contact's sealed field)
    Column("lang", String(8), nullable=False),
    Column("via", String(80), nullable=False),  # role:<id> | group:<id> | audience:<id>
    Column("step", Integer, nullable=False),  # 1, then 2, 3 … as it escalates along the group's order
    Column("status", String(12), nullable=False),  # pending | sending | delivered | failed | person
    Column("attempts", Integer, nullable=False),
    Column("next_at", UTCDateTime, nullable=False),  # the next attempt, not before
    Column("claim", String(32)),  # the dispatcher pass holding it …
    Column("lease_until", UTCDateTime),  # … until then (a dead dispatcher's claim lapses)
    Column("error", String(300)),  # the last failure (no personal data: codes and kinds)
    Column("delivered_at", UTCDateTime),
    Column("acked_at", UTCDateTime),
    Column("acked_by", String(200)),
    Column("escalate_at", UTCDateTime),  # critical: unacknowledged by then, the next contact is told
    Column("escalated_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_outbox_messages_due", "status", "next_at"),
    Index("ix_outbox_messages_notice", "notice_id"),
    Index("ix_outbox_messages_incident", "incident_id"),
    Index("ix_outbox_messages_escalate", "escalate_at"),
)

# The public status page (docs/status-page.md): what the communications role published for the public,
# one row per update, apart from the incident's events so the public side reads nothing else of an
# incident. Each row keeps its CAP 1.2 alert exactly as published (cap_xml, validated when written).
status_updates = Table(
    "status_updates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("public_ref", String(32), nullable=False),  # the incident's public reference, not its number
    Column("seq", Integer, nullable=False),  # 1, 2, … within the incident
    Column("mode", String(8), nullable=False),  # real | drill | test, as the incident's when published
    Column("title_zh", String(200), nullable=False),
    Column("title_en", String(200), nullable=False),
    Column("message_zh", Text, nullable=False),
    Column("message_en", Text, nullable=False),
    Column("area_zh", String(200), nullable=False),
    Column("area_en", String(200), nullable=False),
    Column("instruction_zh", Text),
    Column("instruction_en", Text),
    Column("eta", UTCDateTime),  # the restoration estimate
    Column("warning", String(8)),  # the incident's warning level when published
    Column("level", String(3)),  # the incident's response level when published
    Column("resolved", Boolean, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("published_by", String(200), nullable=False),
    Column("cap_identifier", String(80), nullable=False, unique=True),
    Column("cap_msg_type", String(8), nullable=False),  # Alert | Update | Cancel
    Column("cap_sent", String(32), nullable=False),  # as written in the alert, with its offset
    Column("cap_xml", Text, nullable=False),
    UniqueConstraint("incident_id", "seq", name="uq_status_updates_seq"),
    Index("ix_status_updates_published", "mode", "published_at"),
)
