"""The application's routes sit on its own router (ir.entrypoints.http.routes.mount), not in included branches
that FastAPI would match twice per request; a module router with a lifespan of its own is refused, since
mounting would drop it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from ir.config import Settings
from ir.entrypoints.http.app import create_app
from ir.entrypoints.http.routes import mount


def test_every_route_is_on_the_applications_own_router() -> None:
    api = create_app(Settings(database_url="sqlite:///:memory:"))
    kinds = {type(r).__name__ for r in api.router.routes}
    assert kinds <= {"APIRoute", "Mount", "Route"}, kinds
    paths = [r.path for r in api.router.routes if isinstance(r, APIRoute)]
    # the step acts, the most frequent requests, are tried first
    assert paths[0].startswith("/api/incidents/{incident_id}/"), paths[:3]
    assert any(p.endswith("/steps/{step_id}/complete") for p in paths)
    assert "/api/alerts/alertmanager" in paths or any(p.startswith("/api/alerts") for p in paths)


def test_a_router_with_its_own_lifespan_is_refused() -> None:
    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        yield

    api = FastAPI()
    with pytest.raises(ValueError, match="lifespan"):
        mount(api, APIRouter(lifespan=lifespan))
    plain = APIRouter(prefix="/x", tags=["t"])

    @plain.get("/y")
    def y() -> dict[str, str]:
        return {}

    mount(api, plain)
    route = api.router.routes[-1]
    assert isinstance(route, APIRoute) and route.path == "/x/y" and route.tags == ["t"]
