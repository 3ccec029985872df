"""Typed API errors and their one mapping to OpenAI's error shape and HTTP status.

Handlers raise these; ``install_error_handlers`` turns them (and FastAPI's request
validation errors) into ``{"error": {"message", "type", "param", "code"}}`` bodies, so
clients see the same shapes as from OpenAI: 400 naming the offending field, 404 for an
unknown model, 429 (queue full) and 503 (model not loaded) with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelfleet.serving.protocol import ErrorBody, ErrorResponse


class ApiError(Exception):
    """An error answered to the client."""

    status = 500
    type = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        """The JSON answer."""
        body = ErrorResponse(
            error=ErrorBody(message=self.message, type=self.type, param=self.param, code=self.code)
        )
        return JSONResponse(body.model_dump(), status_code=self.status, headers=self.headers)


class InvalidRequest(ApiError):
    """400: the request is malformed or asks for something unsupported; ``param`` names
    the field."""

    status = 400
    type = "invalid_request_error"


class ModelNotFound(ApiError):
    """404: ``model`` names no model this server serves."""

    status = 404
    type = "invalid_request_error"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model}` does not exist.", param="model", code="model_not_found"
        )


class Overloaded(ApiError):
    """429: the admission queue is full; retry after ``Retry-After`` seconds."""

    status = 429
    type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, code="queue_full", headers={"Retry-After": str(retry_after)})


class NotReady(ApiError):
    """503: the model is not loaded (yet, or it failed to load)."""

    status = 503
    type = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, code="model_not_ready", headers={"Retry-After": str(retry_after)})


def param_of(location: Sequence[Any]) -> str | None:
    """``("body", "messages", 0, "role")`` -> ``"messages[0].role"``."""
    parts = [p for p in location if p != "body"]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not str(part).startswith(("function-", "union[", "literal[")) and "[" not in str(part):
            text += f".{part}" if text else str(part)
    return text or None


def install_error_handlers(app: FastAPI) -> None:
    """Answer ``ApiError``, validation errors and unknown routes in OpenAI's error shape."""

    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        param = param_of(first.get("loc", ()))
        message = str(first.get("msg", "invalid request"))
        if first.get("type") == "json_invalid":
            param, message = None, "the body is not valid JSON"
        return InvalidRequest(f"{param}: {message}" if param else message, param=param).response()

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error = ApiError(str(exc.detail), code=str(exc.status_code))
        error.status = exc.status_code
        error.type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error.response()

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
