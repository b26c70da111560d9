"""Concept extraction jobs: submit (202, or 429 when the queue is full) and job status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from app.identity import Principal
from app.routes.deps import need_module, require, services_of
from app.schemas import TOKEN_PATTERN, ExtractIn

router = APIRouter(prefix="/api/ai", tags=["ai"])


@router.post("/extract", status_code=202)
async def extract(
    request: Request, body: ExtractIn, _: Annotated[Principal, Depends(require("editor"))]
) -> JSONResponse:
    services = services_of(request)
    need_module(services, "ai_pipeline")
    text = body.text
    if body.nodeId is not None:
        node = await services.storage.graph.get_node(body.nodeId)  # 404 names the node
        text = text or f"{node['title']}\n{node['content']}"
    assert text is not None  # ExtractIn guarantees nodeId or text
    job = await services.ai.submit(text, body.nodeId)
    return JSONResponse(job, status_code=202, headers={"Location": f"/api/ai/jobs/{job['id']}"})


@router.get("/jobs/{job_id}")
async def job(
    request: Request,
    job_id: Annotated[str, Path(max_length=64, pattern=TOKEN_PATTERN)],
    _: Annotated[Principal, Depends(require("viewer"))],
) -> dict[str, Any]:
    services = services_of(request)
    need_module(services, "ai_pipeline")
    return await services.ai.job(job_id)
