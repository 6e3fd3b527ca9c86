"""Checks on every request before a route sees it: the headers' size, the
body's size (declared and streamed) and control characters in the query string.

They answer 431, 413 and 400 with the spec's ``{error, details}`` body instead of
letting an oversized body reach a gRPC call (whose size limit answers with the
library's own message) or a NUL reach PostgreSQL (which cannot store one).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import HttpError, error_response, headers_too_large, too_large, validation_error
from services.common.text import has_control_characters


# Headers in all, as h11 bounded them: httptools, uvicorn's faster parser, sets no limit of its own.
MAX_HEADER_BYTES = 64 * 1024


class RequestGuard:
    """ASGI middleware; ``max_body_bytes`` bounds every request body."""

    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_headers(scope)
            self._check_declared_size(scope)
            self._check_query(scope)
        except HttpError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, self._bounded(receive), send)

    @staticmethod
    def _check_headers(scope: Scope) -> None:
        if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
            raise headers_too_large(MAX_HEADER_BYTES)

    def _check_declared_size(self, scope: Scope) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                raise too_large(self.max_body_bytes)

    @staticmethod
    def _check_query(scope: Scope) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        bad = {name for name, value in parse_qsl(query, keep_blank_values=True) if has_control_characters(name + value)}
        if bad:
            raise validation_error({name[:100]: ["Must not contain control characters such as NUL"] for name in bad})

    def _bounded(self, receive: Receive) -> Receive:
        # A chunked body declares no length: count it as it arrives. The error
        # surfaces in the route's ``await request.body()``, which the app's
        # exception handlers turn into the 413.
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise too_large(self.max_body_bytes)
            return message

        return receive_within_limit
