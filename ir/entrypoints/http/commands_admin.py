"""Administration over the API: one's own password; users and API tokens (administrators only); the
playbook library (list, one level as JSON, validating an uploaded file) (ir users … | playbooks | show |
validate)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from ir.app.signin import Principal
from ir.domain.errors import InvalidInput, NotPermitted
from ir.entrypoints.http.auth import Caller, Core, signin, source
from ir.entrypoints.http.commands import (
    NO_CONTROL,
    Changer,
    In,
    Lang,
    Limit,
    Offset,
    Page,
    content_etag,
    iso,
    page,
    read_upload,
    safe_filename,
)
from ir.entrypoints.http.routes import MeOut, lang_of, me_out

router = APIRouter(prefix="/api")

UserId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_CONTROL, description="a user's sign-in name")]


def require_admin(principal: Principal) -> None:
    if "admin" not in principal.actor.roles:
        raise NotPermitted(f"{principal.actor.id} may not manage users and tokens: administrators only")


# -- one's own password ----------------------------------------------------------------------------------


class PasswordIn(In):
    current_password: Annotated[str, Field(min_length=1, max_length=1024)]
    new_password: Annotated[str, Field(min_length=12, max_length=1024)] = Field(description="at least 12 characters")


@router.post("/auth/password", tags=["auth"])
def change_password(body: PasswordIn, principal: Caller, core: Core, request: Request) -> MeOut:
    """Change your password (required before any other change while you hold a one-time password)."""
    if body.new_password == body.current_password:
        raise InvalidInput("choose a new password, not the current one", field="new_password")
    gate = signin(request)
    user_id = principal.actor.id
    with core.db.uow() as uow:
        user, outcome = uow.users.verify(
            user_id, body.current_password, lock_after=gate.lock_after, lock_for=gate.lock_for
        )
        if user is None or outcome != "ok":
            uow.audit.record(
                action="user.password_refused",
                actor=user_id,
                subject=f"user:{user_id}",
                payload={"outcome": outcome, "source": source(request)},
                at=core.clock.now(),
            )
            uow.commit()  # the failure counts towards a lockout
            raise NotPermitted(
                "this account is locked for a while after repeated failures"
                if outcome == "locked"
                else "the current password is wrong"
            )
        uow.users.set_password(user_id, body.new_password, must_change=False, keep_session=principal.session_id)
        uow.audit.record(
            action="user.password",
            actor=user_id,
            subject=f"user:{user_id}",
            payload={"source": source(request), "was_one_time": principal.must_change_password},
            at=core.clock.now(),
        )
        uow.commit()
    return me_out(
        Principal(
            principal.actor,
            principal.display_name,
            principal.lang,
            principal.session_id,
            principal.csrf,
            principal.scopes,
            must_change_password=False,
        )
    )


# -- users ------------------------------------------------------------------------------------------------

SystemRole = Literal["admin", "commander", "responder", "communications", "observer", "auditor"]


class UserOut(BaseModel):
    id: str
    display_name: str
    roles: list[str]
    lang: str
    disabled: bool
    locked: bool
    must_change_password: bool


def _user_out(user: Any, now: Any) -> UserOut:
    return UserOut(
        id=user.id,
        display_name=user.display_name,
        roles=sorted(user.roles),
        lang=user.lang,
        disabled=user.disabled,
        locked=user.locked_until is not None and user.locked_until > now,
        must_change_password=user.must_change_password,
    )


@router.get("/users", tags=["users"])
def list_users(
    principal: Caller, core: Core, response: Response, limit: Limit = 100, offset: Offset = 0
) -> Page[UserOut]:
    """Every user (ir users list). Administrators only."""
    from ir.adapters.db.users import SqlUsers

    require_admin(principal)
    now = core.clock.now()
    with core.db.connection() as conn:
        rows = [_user_out(u, now) for u in SqlUsers(conn, now=now).all()]
    result = page(rows, limit, offset)
    response.headers["ETag"] = content_etag(result.model_dump())
    return result


class UserIn(In):
    id: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="the sign-in name: letters, digits, '.', '_', '-' or '@'"
    )
    display_name: Annotated[str, Field(max_length=200)] = ""
    roles: Annotated[list[SystemRole], Field(min_length=1, max_length=6)]
    lang: Literal["zh-CN", "en"] = "zh-CN"
    password: Annotated[str, Field(min_length=12, max_length=1024)]
    must_change_password: bool = Field(default=True, description="a one-time password, changed at first sign-in")


@router.post("/users", tags=["users"], status_code=201)
def add_user(body: UserIn, principal: Changer, core: Core) -> UserOut:
    """Add a user (ir users add). Administrators only."""
    require_admin(principal)
    roles: list[str] = list(dict.fromkeys(body.roles))
    with core.db.uow() as uow:
        user = uow.users.add(
            body.id,
            display_name=body.display_name,
            password=body.password,
            roles=roles,
            lang=body.lang,
            must_change_password=body.must_change_password,
        )
        uow.audit.record(
            action="user.add",
            actor=principal.actor.id,
            subject=f"user:{body.id}",
            payload={"roles": roles},
            at=core.clock.now(),
        )
        uow.commit()
    return _user_out(user, core.clock.now())


def _set_disabled(principal: Principal, core: Any, user_id: str, disabled: bool) -> UserOut:
    require_admin(principal)
    if disabled and user_id == principal.actor.id:
        raise InvalidInput("you cannot disable yourself: another administrator can", field="user")
    with core.db.uow() as uow:
        uow.users.set_disabled(user_id, disabled)
        uow.audit.record(
            action="user.disable" if disabled else "user.enable",
            actor=principal.actor.id,
            subject=f"user:{user_id}",
            payload={},
            at=core.clock.now(),
        )
        user = uow.users.get(user_id)
        uow.commit()
    return _user_out(user, core.clock.now())


@router.post("/users/{user_id}/disable", tags=["users"])
def disable_user(user_id: UserId, principal: Changer, core: Core) -> UserOut:
    """Disable a user: their sessions and tokens end at once (ir users disable). Administrators only."""
    return _set_disabled(principal, core, user_id, True)


@router.post("/users/{user_id}/enable", tags=["users"])
def enable_user(user_id: UserId, principal: Changer, core: Core) -> UserOut:
    """Enable a disabled user again (ir users disable --enable). Administrators only."""
    return _set_disabled(principal, core, user_id, False)


class OneTimePasswordOut(BaseModel):
    user: str
    password: str = Field(description="shown once; the user must change it at sign-in")


@router.post("/users/{user_id}/reset", tags=["users"])
def reset_password(user_id: UserId, principal: Changer, core: Core, response: Response) -> OneTimePasswordOut:
    """Give a user a one-time password (ir users reset). Administrators only."""
    import secrets

    require_admin(principal)
    password = secrets.token_urlsafe(15)
    with core.db.uow() as uow:
        uow.users.set_password(user_id, password, must_change=True)
        uow.audit.record(
            action="user.reset", actor=principal.actor.id, subject=f"user:{user_id}", payload={}, at=core.clock.now()
        )
        uow.commit()
    response.headers["Cache-Control"] = "no-store"
    return OneTimePasswordOut(user=user_id, password=password)


# -- API tokens ----------------------------------------------------------------------------------------------


class TokenIn(In):
    name: Annotated[str, Field(max_length=200)] = Field(default="", description="what the token is for")
    scopes: Annotated[list[Literal["read", "write"]], Field(min_length=1, max_length=2)] = Field(
        default=["read", "write"]
    )
    days: int = Field(default=90, ge=0, le=3650, description="valid for this many days (0: no expiry)")


class TokenIssuedOut(BaseModel):
    id: str
    user: str
    scopes: list[str]
    expires_at: str | None
    secret: str = Field(description="the token: shown once, stored hashed")


@router.post("/users/{user_id}/tokens", tags=["tokens"], status_code=201)
def issue_token(user_id: UserId, body: TokenIn, principal: Changer, core: Core, response: Response) -> TokenIssuedOut:
    """Issue an API token for a machine acting as this user (ir users token). Administrators only."""
    require_admin(principal)
    scopes: list[str] = sorted(set(body.scopes))
    ttl = timedelta(days=body.days) if body.days else None
    with core.db.uow() as uow:
        token_id, secret = uow.users.issue_token(user_id, name=body.name, scopes=scopes, ttl=ttl)
        uow.audit.record(
            action="token.issue",
            actor=principal.actor.id,
            subject=f"user:{user_id}",
            payload={"token": token_id, "scopes": scopes, "days": body.days},
            at=core.clock.now(),
        )
        uow.commit()
    response.headers["Cache-Control"] = "no-store"
    expires = core.clock.now() + ttl if ttl else None
    return TokenIssuedOut(id=token_id, user=user_id, scopes=scopes, expires_at=iso(expires), secret=secret)


class TokenOut(BaseModel):
    id: str
    user: str
    name: str
    scopes: list[str]
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None = Field(default=None, description="when it was last used (to the minute)")


@router.get("/tokens", tags=["tokens"])
def list_tokens(
    principal: Caller,
    core: Core,
    user: Annotated[str | None, Query(max_length=64, pattern=NO_CONTROL)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[TokenOut]:
    """API tokens (never their secrets), of one user or all. Administrators only."""
    from ir.adapters.db.users import SqlUsers

    require_admin(principal)
    with core.db.connection() as conn:
        rows = SqlUsers(conn, now=core.clock.now()).tokens(user)
    tokens = [
        TokenOut(
            id=r["id"],
            user=r["user_id"],
            name=r["name"],
            scopes=r["scopes"].split(","),
            created_at=iso(r["created_at"]),
            expires_at=iso(r["expires_at"]),
            revoked_at=iso(r["revoked_at"]),
            last_used_at=iso(r.get("last_used_at")),
        )
        for r in rows
    ]
    return page(tokens, limit, offset)


@router.delete("/tokens/{token_id}", tags=["tokens"], status_code=204)
def revoke_token(
    token_id: Annotated[str, Path(min_length=1, max_length=32, pattern=NO_CONTROL)], principal: Changer, core: Core
) -> Response:
    """Revoke an API token (ir users revoke). Administrators only."""
    require_admin(principal)
    with core.db.uow() as uow:
        uow.users.revoke_token(token_id)
        uow.audit.record(
            action="token.revoke",
            actor=principal.actor.id,
            subject="tokens",
            payload={"token": token_id},
            at=core.clock.now(),
        )
        uow.commit()
    return Response(status_code=204)


# -- the playbook library ------------------------------------------------------------------------------------


@router.get("/playbooks", tags=["playbooks"])
def list_playbooks(
    principal: Caller,
    core: Core,
    request: Request,
    response: Response,
    lang: Lang = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[dict[str, Any]]:
    """The playbook library, invalid files included (ir playbooks)."""
    from ir.app.permissions import authorize
    from ir.entrypoints.cli.rendering import playbook_rows

    authorize(principal.actor, "incident.read")
    library = core.library
    rows = playbook_rows(library.compiled(), lang=lang_of(request, principal), today=core.clock.now().date())
    for row in rows:  # no server paths in answers
        absolute = row["file"]
        relative = os.path.relpath(absolute, library.folder)
        if row["id"] == absolute:
            row["id"] = relative
        if not row["valid"]:
            row["title"] = str(row["title"]).replace(absolute, relative)
        row["file"] = relative
    result = page(rows, limit, offset)
    response.headers["ETag"] = content_etag(result.model_dump())
    return result


@router.get("/playbooks/{playbook_id}", tags=["playbooks"])
def show_playbook(
    playbook_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]{0,63}$")],
    principal: Caller,
    core: Core,
    request: Request,
    response: Response,
    level: Literal["I", "II", "III", "IV"] | None = None,
    warning: Literal["red", "orange", "yellow", "blue"] | None = None,
    lang: Lang = None,
) -> dict[str, Any]:
    """A playbook as a checklist for one level or warning, or its overview (ir show --json)."""
    from ir.app.permissions import authorize
    from ir.domain.levels import ResponseLevel, WarningLevel
    from ir.entrypoints.cli.rendering import render_plan

    authorize(principal.actor, "incident.read")
    playbook = core.library.get(playbook_id)
    plan: dict[str, Any] = json.loads(
        render_plan(
            playbook,
            level=ResponseLevel(level) if level else None,
            warning=WarningLevel(warning) if warning else None,
            lang=lang_of(request, principal),
            as_json=True,
        )
    )
    response.headers["ETag"] = f'"{playbook.content_hash}"'
    return plan


class ProblemOut(BaseModel):
    file: str
    line: int
    column: int
    severity: str
    message: str


class ValidationOut(BaseModel):
    file: str
    id: str | None
    valid: bool
    problems: list[ProblemOut]


@router.post("/playbooks/validate", tags=["playbooks"])
def validate_playbook(
    file: Annotated[UploadFile, File(description="a playbook file (YAML, at most 8 MiB)")],
    principal: Caller,
    core: Core,
) -> ValidationOut:
    """Check an uploaded playbook: every problem, with its line; hostile files are refused as problems
    (ir validate). Nothing is stored."""
    from ir.adapters.playbooks.compiler import compile_source
    from ir.adapters.playbooks.problems import Problem
    from ir.adapters.playbooks.yaml_source import MAX_BYTES
    from ir.app.permissions import authorize

    authorize(principal.actor, "incident.read")
    name = safe_filename(file.filename, "playbook.yaml")
    raw = read_upload(file, MAX_BYTES)
    if len(raw) > MAX_BYTES:
        message = f"file too large: more than {MAX_BYTES:,} bytes (a playbook may have at most {MAX_BYTES:,})"
        result_problems = [Problem(name, 1, 1, "error", message)]
        compiled_id: str | None = None
    else:
        compiled = compile_source(raw, name, today=core.clock.now().date())
        result_problems = list(compiled.problems)
        compiled_id = compiled.playbook.id if compiled.playbook else None
    problems = [ProblemOut(**{**p.as_dict(), "file": name}) for p in result_problems]
    return ValidationOut(
        file=name,
        id=compiled_id,
        valid=compiled_id is not None and not any(p.severity == "error" for p in problems),
        problems=problems,
    )
