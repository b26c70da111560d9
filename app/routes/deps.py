"""Request dependencies: the app's services, a module that must be up, the caller and its role."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from fastapi import Request

from app.errors import ApiError
from app.identity import Principal, role_at_least
from app.services import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip()) if text else None
    except ValueError:
        return None


def client_address(request: Request) -> str:
    """The client's address for login throttling.

    The peer's address, unless the peer is a trusted proxy (TRUSTED_PROXIES, by default loopback,
    where nginx runs): then X-Real-IP, which nginx sets to its own peer, else the right-most
    X-Forwarded-For entry that is not itself a trusted proxy. A client cannot choose its address by
    sending these headers itself, since they are only read from a trusted peer.
    """
    trusted = services_of(request).settings.trusted_proxy_networks
    peer = _ip(request.client.host if request.client else None)
    if peer is None:
        return "unknown"
    if not any(peer in network for network in trusted):
        return str(peer)
    real = _ip(request.headers.get("x-real-ip"))
    if real is not None:
        return str(real)
    for entry in reversed(request.headers.get("x-forwarded-for", "").split(",")):
        hop = _ip(entry)
        if hop is not None and not any(hop in network for network in trusted):
            return str(hop)
    return str(peer)


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
