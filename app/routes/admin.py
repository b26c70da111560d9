"""Admin routes: users, roles, disabling and deleting accounts, unthrottling, sessions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from app.identity import Principal
from app.routes.deps import require, services_of
from app.schemas import RoleIn

router = APIRouter(prefix="/api/admin", tags=["admin"])
Admin = Annotated[Principal, Depends(require("admin"))]
Username = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


@router.get("/users")
async def users(request: Request, _: Admin) -> list[dict[str, Any]]:
    return await services_of(request).identity.list_users()


@router.put("/users/{username}/role")
async def set_role(request: Request, username: Username, body: RoleIn, _: Admin) -> dict[str, Any]:
    return await services_of(request).identity.set_role(username, body.role)


@router.post("/users/{username}/disable")
async def disable(request: Request, username: Username, _: Admin) -> dict[str, Any]:
    """Refuse the account's tokens and logins on every replica; its sessions end for good."""
    return await services_of(request).identity.set_disabled(username, True)


@router.post("/users/{username}/enable")
async def enable(request: Request, username: Username, _: Admin) -> dict[str, Any]:
    return await services_of(request).identity.set_disabled(username, False)


@router.delete("/users/{username}", status_code=204)
async def delete_user(request: Request, username: Username, _: Admin) -> Response:
    await services_of(request).identity.delete_user(username)
    return Response(status_code=204)


@router.post("/users/{username}/unlock", status_code=200)
async def unlock(request: Request, username: Username, _: Admin) -> dict[str, Any]:
    await services_of(request).identity.unlock(username)
    return {"username": username, "locked": False}


@router.get("/sessions")
async def sessions(request: Request, _: Admin) -> dict[str, Any]:
    services = services_of(request)
    active, revoked = await services.sessions.store.counts()
    return {"activeSessions": active, "revokedTokens": revoked, "redis": services.sessions.redis_report()}
