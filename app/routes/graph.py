"""Nodes and edges: reads are cached (ETag, 304), writes need the editor role and invalidate."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from app.identity import Principal
from app.routes.deps import need_module, require, services_of
from app.schemas import ID_PATTERN, MAX_INT32, EdgeIn, NodeIn, NodePatch, NodeState, SafeStr

router = APIRouter(prefix="/api", tags=["graph"])
Viewer = Annotated[Principal, Depends(require("viewer"))]
Editor = Annotated[Principal, Depends(require("editor"))]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
IdFilter = Annotated[str | None, Query(max_length=200, pattern=ID_PATTERN)]
NodeId = Annotated[str, Path(min_length=1, max_length=200, pattern=ID_PATTERN)]
EdgeId = Annotated[int, Path(ge=1, le=MAX_INT32)]


def _json(body: bytes, status: int) -> Response:
    """A body rendered before its transaction committed (see GraphStore)."""
    return Response(body, status_code=status, media_type="application/json")


def node_cache_key(node_id: str) -> str:
    """A node read's cache key (app/middleware/hot_paths.py uses it too). Reads are keyed by their
    validated parameters, never the raw query: junk query strings cannot fill the cache with copies
    and evict the reads that matter."""
    return f"node:{node_id}"


def _list_key(kind: str, *params: object) -> str:
    return f"{kind}:" + json.dumps(params, separators=(",", ":"))


@router.get("/nodes")
async def list_nodes(
    request: Request,
    _: Viewer,
    limit: Limit = 50,
    offset: Offset = 0,
    typeId: IdFilter = None,
    state: NodeState | None = None,
    q: Annotated[SafeStr | None, Query(max_length=200)] = None,
) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    return await services.cache.respond(
        request,
        _list_key("nodes", limit, offset, typeId, state, q),
        lambda: services.storage.graph.list_nodes(type_id=typeId, state=state, search=q, limit=limit, offset=offset),
    )


@router.get("/nodes/{node_id}")
async def get_node(request: Request, node_id: NodeId, _: Viewer) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    return await services.cache.respond(
        request, node_cache_key(node_id), lambda: services.storage.graph.get_node(node_id)
    )


@router.post("/nodes", status_code=201)
async def create_node(request: Request, body: NodeIn, _: Editor) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    body_json = await services.storage.graph.create_node(body.model_dump())
    await services.cache.invalidate()
    return _json(body_json, 201)


@router.put("/nodes/{node_id}")
async def update_node(request: Request, node_id: NodeId, body: NodePatch, _: Editor) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    body_json = await services.storage.graph.update_node(node_id, body.model_dump(exclude_unset=True))
    await services.cache.invalidate()
    return _json(body_json, 200)


@router.delete("/nodes/{node_id}", status_code=204)
async def delete_node(request: Request, node_id: NodeId, _: Editor) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    await services.storage.graph.delete_node(node_id)
    await services.cache.invalidate()
    return Response(status_code=204)


@router.get("/edges")
async def list_edges(
    request: Request,
    _: Viewer,
    limit: Limit = 50,
    offset: Offset = 0,
    fromId: IdFilter = None,
    toId: IdFilter = None,
    role: Annotated[SafeStr | None, Query(max_length=100)] = None,
) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    return await services.cache.respond(
        request,
        _list_key("edges", limit, offset, fromId, toId, role),
        lambda: services.storage.graph.list_edges(from_id=fromId, to_id=toId, role=role, limit=limit, offset=offset),
    )


@router.post("/edges", status_code=201)
async def create_edge(request: Request, body: EdgeIn, _: Editor) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    body_json = await services.storage.graph.create_edge(body.model_dump())
    await services.cache.invalidate()
    return _json(body_json, 201)


@router.delete("/edges/{edge_id}", status_code=204)
async def delete_edge(request: Request, edge_id: EdgeId, _: Editor) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    await services.storage.graph.delete_edge(edge_id)
    await services.cache.invalidate()
    return Response(status_code=204)
