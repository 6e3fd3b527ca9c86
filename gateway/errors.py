"""Errors as ``{success: false, error, details, code}`` bodies: the spec's
``{error, details}`` plus ``code``, a stable machine-readable name
(``validation_failed``, ``not_found``, ``conflict``, ``budget_exceeded``,
``unavailable``, ...). gRPC status codes and their rich status (ErrorInfo
reason, BadRequest violations) are mapped to HTTP in one place, beside the
gateway's own 400/401/404/413/415 answers.

A service outage is a 503 with ``Retry-After``; a 500 is only ever a bug, and
says only the id under which it was logged.
"""

from __future__ import annotations

import logging
import uuid

import grpc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from services.common.base_models import shown_to_callers
from services.common.status import error_details

log = logging.getLogger(__name__)

# FAILED_PRECONDITION is 400, not 409: the spec answers "dataset not ready" with 400.
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}
_UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Errors whose reason (ErrorInfo) decides a more precise status than their code.
# no_agent_available travels as RESOURCE_EXHAUSTED, not UNAVAILABLE, which the channel would retry.
_REASON_STATUS = {"idempotency_key_reused": 422, "no_agent_available": 503}
# The code of an error that names none (the gateway's own, or a status without ErrorInfo).
CODES = {
    400: "validation_failed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
    422: "idempotency_key_reused",
    429: "resource_exhausted",
    500: "internal",
    503: "unavailable",
}
# Seconds a client should wait before retrying a 503: about how long a service
# takes to reconnect to a restarted database.
RETRY_AFTER_S = 5


class HttpError(Exception):
    """An answer other than success; raise it anywhere below a route (``EXCEPTION_HANDLERS`` renders it).

    ``code`` defaults to the status's entry in ``CODES``.
    """

    def __init__(
        self, status: int, error: str, details: object = None, headers: dict[str, str] | None = None,
        code: str | None = None,
    ):
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error
        self.details = details
        self.headers = headers or {}
        self.code = code or CODES.get(status, "error")

    def body(self) -> dict:
        return {"success": False, "error": self.error, "details": self.details, "code": self.code}


def internal_error(error_id: str) -> HttpError:
    """The 500 of a bug: its cause is in the log under ``error_id``, never in the answer."""
    return HttpError(
        500, "Internal server error", f"The request failed unexpectedly; it has been logged as error {error_id}."
    )


def validation_error(problems: dict[str, list[str]]) -> HttpError:
    """The spec's 400 for bad input: ``details`` maps each field to its messages."""
    return HttpError(400, "Validation error", problems)


def unavailable(details: str) -> HttpError:
    """The 503 of an outage, with ``Retry-After`` so that clients back off instead of giving up."""
    return HttpError(503, "Service unavailable", details, headers={"Retry-After": str(RETRY_AFTER_S)})


def headers_too_large(limit: int) -> HttpError:
    """The 431 for request headers over ``limit`` bytes in all."""
    return HttpError(431, "Request headers too large", f"The request's headers must be at most {limit} bytes in all.")


def too_large(limit: int) -> HttpError:
    """The 413 for a request body over ``limit`` bytes."""
    return HttpError(
        413,
        "Request body too large",
        f"The body must be at most {limit} bytes. Datasets are not sent through the API: "
        "upload the file to the uploadUrl that POST /api/datasets returns.",
    )


def from_rpc_error(exc: grpc.aio.AioRpcError) -> HttpError:
    """The HTTP answer for a failed gRPC call; unknown codes become a generic 500 (and are logged)."""
    code = exc.code()
    status = _HTTP_STATUS.get(code)
    rich = error_details(exc)
    if status is None:
        # The service logged its own id; a status without one (grpc's UNKNOWN) gets the gateway's.
        error_id = rich.get("metadata", {}).get("error_id") or uuid.uuid4().hex
        log.error("service call failed with %s, error %s: %s", code, error_id, exc.details())
        return internal_error(error_id)
    if code in _UNAVAILABLE:
        log.warning("service unavailable: %s %s", code, exc.details())
        return unavailable("A backend service or its database did not answer; retry shortly.")
    reason = rich.get("reason")
    status = _REASON_STATUS.get(reason, status)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return HttpError(status, exc.details() or code.name, rich.get("details"), headers, code=reason)


def error_response(exc: HttpError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: HttpError) -> JSONResponse:
    return error_response(exc)


async def _rpc_error(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
    error = from_rpc_error(exc)
    # A service's message may quote a resolved base model: the caller sees its name, not the server's path.
    model_dirs = request.app.state.settings.model_dirs
    error.error, error.details = shown_to_callers([error.error, error.details], model_dirs)
    return error_response(error)


async def _starlette_error(request: Request, exc: HTTPException) -> JSONResponse:
    # Unknown paths, malformed ids (the routes only match UUIDs) and wrong methods.
    error = "Not found" if exc.status_code == 404 else exc.detail
    return error_response(HttpError(exc.status_code, error, f"{request.method} {request.url.path}", exc.headers))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex
    log.error("unexpected error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
    return error_response(internal_error(error_id))


EXCEPTION_HANDLERS = {
    HttpError: _http_error,
    grpc.aio.AioRpcError: _rpc_error,
    HTTPException: _starlette_error,
    Exception: _unexpected,
}
