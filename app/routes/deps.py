"""Request dependencies: the app's services, a module that must be up, the caller and its role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from app.errors import ApiError
from app.identity import Principal, role_at_least
from app.services import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def need_module(services: Services, name: str) -> None:
    if not services.host.loaded(name):
        error = services.host.states[name].error
        raise ApiError(
            503, "module_unavailable", f"module {name} is not loaded: {error}", headers={"Retry-After": "10"}
        )


def require(role: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates the bearer token and checks the caller's role."""

    async def dependency(request: Request) -> Principal:
        services = services_of(request)
        need_module(services, "identity")
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "missing_token",
                "send Authorization: Bearer <accessToken>",
                field="Authorization",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = await services.identity.authenticate(token.strip())
        if not role_at_least(principal.role, role):
            raise ApiError(403, "forbidden", f"role {principal.role} may not do this; needs {role}")
        return principal

    return dependency
