"""One error shape for every client mistake: {"error", "message", "field"?, "fields"?, "requestId"}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("codex.errors")


class ApiError(Exception):
    """A failure with its HTTP status, a stable code and a sentence for the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.headers = field, headers


def error_body(request: Request, code: str, message: str, **extra: Any) -> dict[str, Any]:
    body = {"error": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}
    body["requestId"] = getattr(request.state, "request_id", None)
    return body


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(request, exc.code, exc.message, field=exc.field),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": _field_name(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors()]
        first = fields[0] if fields else {"field": "body", "message": "invalid"}
        return JSONResponse(
            error_body(
                request,
                "validation_failed",
                f"{first['field']}: {first['message']}",
                field=first["field"],
                fields=fields,
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI's body parser gave up (a number of thousands of digits, nesting past the
            # parser's limit): the body is what the client got wrong, so say so like any other field.
            message = "body: could not be parsed as JSON (nested too deep or a number too long)"
            return JSONResponse(error_body(request, "validation_failed", message, field="body"), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(request, code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(request, "internal_error", "The server failed; the request id is in logs/server.log"),
            status_code=500,
        )
