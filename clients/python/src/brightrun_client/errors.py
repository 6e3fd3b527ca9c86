"""The one exception the client raises for an answer that is not a success."""

from __future__ import annotations

from typing import Any


class BrightRunError(Exception):
    """An error answer of the API, or an error frame of an event stream.

    ``status`` is the HTTP status (None for an error sent inside an event
    stream), ``error`` the body's message, ``details`` what it says about each
    bad field (a dict, a string or None), ``code`` the body's machine-readable
    code when it has one, and ``retry_after`` the seconds a 429/503 asked to wait.
    """

    def __init__(
        self,
        status: int | None,
        error: str,
        details: Any = None,
        code: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(f"{status} {error}" if status is not None else error)
        self.status = status
        self.error = error
        self.details = details
        self.code = code
        self.retry_after = retry_after

    @classmethod
    def from_body(cls, status: int | None, body: Any, retry_after: float | None = None) -> "BrightRunError":
        """Read ``{error, details, code}`` tolerantly: a body that is not such an object becomes the message."""
        if isinstance(body, dict):
            error = body.get("error")
            message = error if isinstance(error, str) else str(error or "") or f"HTTP {status}"
            code = body.get("code")
            return cls(status, message, body.get("details"), code if isinstance(code, str) else None, retry_after)
        return cls(status, str(body)[:500] if body else f"HTTP {status}", None, None, retry_after)

    def __str__(self) -> str:
        text = super().__str__()
        if self.code:
            text += f" [{self.code}]"
        if self.details:
            text += f": {self.details}"
        return text
