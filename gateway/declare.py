"""Each route's declaration: its method and path, body, query parameters and
answer. One declaration both checks a request (``Endpoint.route``,
``Body.parse``) and describes it in the OpenAPI document (``gateway.openapi``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.convert import json_to_message, parse_json_object
from gateway.errors import HttpError, validation_error
from gateway.http import MAX_LIMIT, MAX_PAGE, caller
from gateway.schema import nullable, obj, request_schema
from services.common.idempotency import MAX_REQUEST_ID_LENGTH

JSON = "application/json"


@dataclass(frozen=True)
class Body:
    """A JSON request body read into ``message`` (see ``gateway.convert.json_to_message`` for the arguments).

    ``optional``: an empty body is ``{}``.
    """

    message: type[Message]
    required: tuple[str, ...] = ()
    uuids: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)
    optional: bool = False

    def parse(self, raw: bytes) -> Message:
        """The body as a message; raises HttpError 400 naming each bad field."""
        data = parse_json_object(raw, optional=self.optional)
        return json_to_message(
            data, self.message, required=self.required, uuids=self.uuids, hidden=self.hidden, ranges=self.ranges
        )

    def schema(self) -> dict:
        return request_schema(
            self.message.DESCRIPTOR, required=self.required, uuids=self.uuids, hidden=self.hidden,
            ranges=self.ranges, descriptions=self.descriptions,
        )


@dataclass(frozen=True)
class Param:
    """A query parameter (``where="query"``) or request header (``where="header"``)."""

    name: str
    schema: dict
    description: str
    where: str = "query"


def page_params(default_limit: int) -> tuple[Param, ...]:
    """``page``, ``limit`` and ``cursor`` as ``gateway.http.Page.from_query`` reads them."""
    return (
        Param("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}, "Page number, from 1"),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default_limit},
              "Items per page"),
        Param("cursor", {"type": "string"}, "A previous answer's pagination.next_cursor: the page after it, "
              "read by keyset (page is then ignored); for deep pages and for walking a list while it grows"),
    )


IDEMPOTENCY_KEY = Param(
    "Idempotency-Key", {"type": "string", "maxLength": MAX_REQUEST_ID_LENGTH},
    "A retry with the same key and body answers with the first result; another body is a 422", where="header",
)
INTEGER = {"type": "integer"}
# Every list's ``pagination`` (``gateway.http.Page.pagination``).
PAGINATION = obj(page=INTEGER, limit=INTEGER, total=INTEGER, totalPages=INTEGER,
                 next_cursor=nullable({"type": "string"}))


@dataclass(frozen=True)
class Endpoint:
    """One route. ``data``: the JSON Schema of the answer's ``data`` (or of the whole body when ``media_type``
    is not JSON); ``warnings``: the answer carries ``warnings`` beside ``data``."""

    method: str
    path: str
    handler: Callable[[Request], Awaitable[Response]]
    summary: str
    data: dict
    body: Body | None = None
    params: tuple[Param, ...] = ()
    status: int = 200
    warnings: bool = False
    media_type: str = JSON
    description: str = ""

    def route(self) -> Route:
        async def checked(request: Request) -> Response:
            caller(request)  # 401 before anything about the request itself
            self.check(request)
            return await self.handler(request)

        return Route(self.path, checked, methods=[self.method], name=f"{self.method} {self.path}")

    def check(self, request: Request) -> None:
        """Raises HttpError 400 naming unknown query parameters, 415 for a body that is not JSON."""
        known = [p.name for p in self.params if p.where == "query"]
        unknown = sorted(set(request.query_params) - set(known))
        if unknown:
            takes = ", ".join(known) or "no query parameters"
            raise validation_error({name[:100]: [f"Unknown query parameter; this route takes {takes}"] for name in unknown})
        if self.body is not None and _has_body(request):
            media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type != JSON:
                raise HttpError(
                    415, "Unsupported media type",
                    f"Send the body as JSON with 'Content-Type: {JSON}', not {media_type or 'no Content-Type'!r}",
                )


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "transfer-encoding" in request.headers
