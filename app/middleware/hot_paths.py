"""The two hottest requests answered before FastAPI's routing and dependency resolution.

`GET /health/live` (every probe of every load balancer) and `GET /api/nodes/{id}` with a cached body
(the most frequent read under production load) cost FastAPI's matching, dependency solving and
exception layers more than the answer itself (about half a replica's CPU per read, measured with
py-spy; benchmarks/RESULTS.md). The liveness answer is built by the route's own function. A node read
is answered here only when everything it needs is already in memory: the token was verified before,
the trusted auth view holds the account and allows it (IdentityModule.known_principal), the id passes
the route's own validation, and the body is cached; the answer is built by the route's own
CacheModule.answer. Anything else, including every refusal and every error, goes on to FastAPI, which
decides, counts and explains it as before; tests/integration/test_hot_paths.py checks both ways
answer alike.
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.identity import role_at_least
from app.responses import FastJSONResponse
from app.routes.graph import node_cache_key
from app.routes.health import live_body
from app.schemas import ID_PATTERN
from app.services import Services

PREFIX = "/api/nodes/"
NODE_ID = re.compile(ID_PATTERN)
MAX_ID_LENGTH = 200  # the route's NodeId: Path(min_length=1, max_length=200, pattern=ID_PATTERN)


class HotPaths:
    def __init__(self, app: ASGIApp, services: Services, live_route: APIRoute, node_route: APIRoute) -> None:
        self.app, self.services = app, services
        # The FastAPI routes these requests belong to: metrics and traces name them as usual.
        self.live_route, self.node_route = live_route, node_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            path = scope["path"]
            if path == "/health/live":
                scope["route"] = self.live_route
                await FastJSONResponse(live_body(self.services))(scope, receive, send)
                return
            if path.startswith(PREFIX) and await self._node_read(scope, receive, send):
                return
        await self.app(scope, receive, send)

    async def _node_read(self, scope: Scope, receive: Receive, send: Send) -> bool:
        path: str = scope["path"]
        node_id = path[len(PREFIX) :]
        if len(node_id) > MAX_ID_LENGTH or not NODE_ID.fullmatch(node_id):
            return False
        token, if_none_match = _bearer_and_etags(scope)
        services = self.services
        if token is None or not (services.host.loaded("identity") and services.host.loaded("storage")):
            return False
        principal = services.identity.known_principal(token)
        if principal is None or not role_at_least(principal.role, "viewer"):
            return False
        cached = services.cache.hit(node_cache_key(node_id))
        if cached is None:
            return False
        scope["route"] = self.node_route
        await services.cache.answer(cached, "HIT", if_none_match)(scope, receive, send)
        return True


def _bearer_and_etags(scope: Scope) -> tuple[str | None, str]:
    """The bearer token (None unless `Bearer <token>`) and If-None-Match, in one pass over the headers.
    Of each, the first field only, as the route's request.headers.get() reads it."""
    token, etags, seen, seen_etags = None, "", False, False
    for key, value in scope["headers"]:
        if key == b"authorization" and not seen:
            seen = True
            scheme, _, rest = value.decode("latin-1").partition(" ")
            token = rest.strip() if scheme.lower() == "bearer" and rest.strip() else None
        elif key == b"if-none-match" and not seen_etags:
            seen_etags = True
            etags = value.decode("latin-1")
    return token, etags
