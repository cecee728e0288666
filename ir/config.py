"""Settings from IR_* environment variables (and an optional ir.toml in the working folder)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

_REPO_PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


def default_playbooks_dir() -> str:
    local = Path("playbooks")
    if local.is_dir():
        return str(local)
    return str(_REPO_PLAYBOOKS)


def _near(relative: str) -> str:
    """A folder of the working directory if present, else the one shipped beside the package."""
    local = Path(relative)
    return str(local if local.exists() else _REPO_PLAYBOOKS.parent / relative)


def _default_catalogue_factory() -> str:
    local = Path("catalogue") / "services.yaml"
    return str(local if local.is_file() else _REPO_PLAYBOOKS.parent / "catalogue" / "services.yaml")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IR_", toml_file="ir.toml", extra="ignore")

    playbooks_dir: str = Field(default_factory=default_playbooks_dir)
    database_url: str = "sqlite:///var/ir.db"
    timezone: str = "Asia/Shanghai"
    lang: str = "zh-CN"
    data_dir: str = "var"
    evidence_dir: str | None = None  # keep evidence files here instead of in the database
    audit_kek: str | None = None  # base64 key-encryption key; otherwise a key file in data_dir/keys
    audit_log_id: str = "ir-audit"
    audit_checkpoint_dir: str | None = None  # default: <data_dir>/checkpoints
    audit_checkpoint_url: str | None = None  # or POST each checkpoint here
    audit_checkpoint_every: int = 1000  # records
    audit_checkpoint_seconds: float = 60.0
    action_allow_hosts: list[str] = Field(default_factory=list)  # hosts automated actions may call
    due_soon_minutes: int = 15
    regimes_dir: str = Field(default_factory=lambda: _near("notifications/regimes"))
    notifications_dir: str = Field(default_factory=lambda: _near("notifications"))  # docs/notifications.md
    host: str = "127.0.0.1"
    port: int = 8000
    session_ttl: timedelta = timedelta(hours=12)
    # an API token checked against the database is trusted from memory this long (a change of users or
    # tokens made through this process ends that at once; one made by another process within it); 0: never
    token_recheck_seconds: float = Field(default=2.0, ge=0, le=60)
    secure_cookies: bool = False  # set when served over HTTPS
    org_name: str | None = None  # the reporting entity, as reports name it
    org_contact: str | None = None  # a function's contact (an emergency office), never a person's number
    org_dpo: str | None = None
    org_lei: str | None = None
    catalogue_file: str = Field(default_factory=_default_catalogue_factory)
    alert_rules: str = Field(default_factory=lambda: _near("alerts/rules.yaml"))  # alerts -> playbooks (docs/alerts.md)
    # the public status page and its CAP alerts (docs/status-page.md)
    status_sender: str = "ir@localhost"  # CAP <sender>: the organisation's identifier, e.g. status@example.com
    status_url: str | None = None  # the page's public address (CAP <web>, the feeds' links); else as requested
    status_area_zh: str = "服务区域"  # the area an update names when its author names none
    status_area_en: str = "Service area"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment wins over ir.toml, which wins over the defaults
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def signer_file(self) -> str:
        return os.path.join(self.data_dir, "keys", "audit-signer.key")

    @property
    def checkpoint_dir(self) -> str:
        return self.audit_checkpoint_dir or os.path.join(self.data_dir, "checkpoints")

    def session_secret(self) -> bytes:
        """The key that signs console session cookies: a 0600 key file, made on first use."""
        import secrets

        path = os.path.join(self.keys_dir, "session.key")
        if not os.path.exists(path):
            os.makedirs(self.keys_dir, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
        with open(path) as fh:
            return fh.read().strip().encode()

    @property
    def keys_dir(self) -> str:
        return os.path.join(self.data_dir, "keys")


def load_settings() -> Settings:
    return Settings()


def env_lang() -> str:
    """The language for a quick command that has not loaded settings."""
    return os.environ.get("IR_LANG", "zh-CN")
