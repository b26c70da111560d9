"""Register, login, refresh, logout, me."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from app.identity import Principal
from app.routes.deps import client_address, need_module, require, services_of
from app.schemas import Credentials, LoginIn, RefreshIn

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/register", status_code=201)
async def register(request: Request, body: Credentials) -> dict[str, Any]:
    services = services_of(request)
    need_module(services, "identity")
    return await services.identity.register(body.username, body.password)


@router.post("/login")
async def login(request: Request, body: LoginIn) -> dict[str, Any]:
    services = services_of(request)
    need_module(services, "identity")
    return await services.identity.login(body.username, body.password, client_address(request))


@router.post("/refresh")
async def refresh(request: Request, body: RefreshIn) -> dict[str, Any]:
    services = services_of(request)
    need_module(services, "identity")
    return await services.identity.refresh(body.refreshToken)


@router.post("/logout", status_code=204)
async def logout(request: Request, principal: Annotated[Principal, Depends(require("viewer"))]) -> Response:
    await services_of(request).identity.logout(principal)
    return Response(status_code=204)


@router.get("/me")
async def me(principal: Annotated[Principal, Depends(require("viewer"))]) -> dict[str, Any]:
    return {
        "username": principal.username,
        "role": principal.role,
        "sessionId": principal.sid,
        "expiresAt": principal.expires_at.isoformat(),
    }
