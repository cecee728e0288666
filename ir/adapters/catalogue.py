"""The service catalogue (catalogue/services.yaml): the services an incident can affect."""

from __future__ import annotations

import os

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ir.adapters.playbooks.document import Ident, TextDoc
from ir.domain.errors import InvalidInput
from ir.domain.text import Text


class ServiceDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Ident
    name: TextDoc
    users: int = Field(ge=0, description="the users the service has, for availability in user-minutes")


class CatalogueDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    services: list[ServiceDoc]


class ServiceCatalogue:
    def __init__(self, path: str) -> None:
        self.path = path
        self._services: dict[str, tuple[Text, int]] | None = None

    def _load(self) -> dict[str, tuple[Text, int]]:
        if self._services is None:
            if not os.path.exists(self.path):
                self._services = {}
                return self._services
            try:
                with open(self.path, encoding="utf-8") as fh:
                    doc = CatalogueDoc.model_validate(yaml.safe_load(fh))
            except (yaml.YAMLError, ValidationError) as exc:
                raise InvalidInput(f"the service catalogue {self.path} is not valid: {exc}") from None
            self._services = {s.id: (Text(s.name.zh_cn, s.name.en), s.users) for s in doc.services}
        return self._services

    def ids(self) -> set[str]:
        return set(self._load())

    def name(self, service_id: str) -> Text:
        found = self._load().get(service_id)
        return found[0] if found else Text.same(service_id)

    def users(self, service_id: str) -> int:
        found = self._load().get(service_id)
        return found[1] if found else 0
