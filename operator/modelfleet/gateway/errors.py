"""Typed gateway errors, each mapped to one HTTP status and an OpenAI-shaped error body.

OpenAI clients read ``{"error": {"message", "type", "param", "code"}}`` and raise the
matching exception (AuthenticationError for 401, RateLimitError for 429, ...), so every
refusal the gateway makes itself uses that shape; an endpoint's own errors are passed through
unchanged. Messages never contain an API key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web


class GatewayError(Exception):
    """A refusal with an HTTP status, an OpenAI error type and code, and extra headers."""

    status = 500
    type = "server_error"
    code: str | None = None
    reason = "error"
    """Metrics label of the refusal."""

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        """The error as an HTTP response."""
        body = {
            "error": {"message": self.message, "type": self.type, "param": None, "code": self.code}
        }
        return web.Response(
            status=self.status,
            body=json.dumps(body).encode(),
            content_type="application/json",
            headers=self.headers,
        )

    def sse_event(self) -> bytes:
        """The error as a server-sent event, for a stream that already started."""
        body = {"error": {"message": self.message, "type": self.type, "code": self.code}}
        return b"data: " + json.dumps(body).encode() + b"\n\n"


class Unauthenticated(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"
    reason = "unauthenticated"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    reason = "rate_limited"


class TooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"
    reason = "too_large"


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"
    reason = "bad_request"


class ModelNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"
    reason = "unknown_model"


class NoRoute(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "no_matching_route"
    reason = "no_rule"


class Unavailable(GatewayError):
    """No ready endpoint within the hold time (or the hold queue is full)."""

    status = 503
    type = "server_error"
    code = "no_ready_endpoint"
    reason = "unavailable"


class UpstreamFailed(GatewayError):
    """Every attempt failed before the first byte (connection errors)."""

    status = 502
    type = "server_error"
    code = "upstream_unavailable"
    reason = "upstream"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "server_error"
    code = "upstream_timeout"
    reason = "timeout"


class StreamBroken(GatewayError):
    """The endpoint failed after the answer started; sent as an SSE error event."""

    status = 502
    type = "server_error"
    code = "upstream_stream_broken"
    reason = "stream"
