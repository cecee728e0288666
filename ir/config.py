"""Settings from IR_* environment variables (and an optional ir.toml in the working folder)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO_PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"


def default_playbooks_dir() -> str:
    local = Path("playbooks")
    if local.is_dir():
        return str(local)
    return str(_REPO_PLAYBOOKS)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IR_", toml_file="ir.toml", extra="ignore")

    playbooks_dir: str = Field(default_factory=default_playbooks_dir)
    database_url: str = "sqlite:///var/ir.db"
    timezone: str = "Asia/Shanghai"
    lang: str = "zh-CN"
    data_dir: str = "var"


def load_settings() -> Settings:
    return Settings()


def env_lang() -> str:
    """The language for a quick command that has not loaded settings."""
    return os.environ.get("IR_LANG", "zh-CN")
