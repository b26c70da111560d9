"""Nodes and edges: reads are cached (ETag, 304), writes need the editor role and invalidate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from app.identity import Principal
from app.routes.deps import need_module, require, services_of
from app.schemas import ID_PATTERN, EdgeIn, NodeIn, NodePatch, NodeState

router = APIRouter(prefix="/api", tags=["graph"])
Viewer = Annotated[Principal, Depends(require("viewer"))]
Editor = Annotated[Principal, Depends(require("editor"))]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
IdFilter = Annotated[str | None, Query(max_length=200, pattern=ID_PATTERN)]


def _cache_key(request: Request) -> str:
    return f"{request.url.path}?{request.url.query}"


@router.get("/nodes")
async def list_nodes(
    request: Request,
    _: Viewer,
    limit: Limit = 50,
    offset: Offset = 0,
    typeId: IdFilter = None,
    state: NodeState | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    return await services.cache.respond(
        request,
        _cache_key(request),
        lambda: services.storage.graph.list_nodes(type_id=typeId, state=state, search=q, limit=limit, offset=offset),
    )


@router.get("/nodes/{node_id}")
async def get_node(request: Request, node_id: str, _: Viewer) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    return await services.cache.respond(request, _cache_key(request), lambda: services.storage.graph.get_node(node_id))


@router.post("/nodes", status_code=201)
async def create_node(request: Request, body: NodeIn, _: Editor) -> dict[str, Any]:
    services = services_of(request)
    need_module(services, "storage")
    node = await services.storage.graph.create_node(body.model_dump())
    await services.cache.invalidate()
    return node


@router.put("/nodes/{node_id}")
async def update_node(request: Request, node_id: str, body: NodePatch, _: Editor) -> dict[str, Any]:
    services = services_of(request)
    need_module(services, "storage")
    node = await services.storage.graph.update_node(node_id, body.model_dump(exclude_unset=True))
    await services.cache.invalidate()
    return node


@router.delete("/nodes/{node_id}", status_code=204)
async def delete_node(request: Request, node_id: str, _: Editor) -> Response:
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
    role: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    return await services.cache.respond(
        request,
        _cache_key(request),
        lambda: services.storage.graph.list_edges(from_id=fromId, to_id=toId, role=role, limit=limit, offset=offset),
    )


@router.post("/edges", status_code=201)
async def create_edge(request: Request, body: EdgeIn, _: Editor) -> dict[str, Any]:
    services = services_of(request)
    need_module(services, "storage")
    edge = await services.storage.graph.create_edge(body.model_dump())
    await services.cache.invalidate()
    return edge


@router.delete("/edges/{edge_id}", status_code=204)
async def delete_edge(request: Request, edge_id: Annotated[int, Path(ge=1)], _: Editor) -> Response:
    services = services_of(request)
    need_module(services, "storage")
    await services.storage.graph.delete_edge(edge_id)
    await services.cache.invalidate()
    return Response(status_code=204)
