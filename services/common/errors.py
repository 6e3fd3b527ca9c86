"""Typed domain errors, shared by every service.

Domain code raises these; ``services.common.grpc`` maps them to gRPC status
codes in one place and the gateway maps the status codes to HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user can act on. ``details`` travels to the client."""

    reason = "error"  # every subclass names its own: the stable ``code`` of the HTTP error body

    def __init__(self, message: str, details: object = None):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidArgument(DomainError):
    """Bad input. ``details`` maps each field to a list of messages."""

    reason = "validation_failed"


class NotFound(DomainError):
    """Absent, deleted, or another user's: the three look the same to the caller."""

    reason = "not_found"


class FailedPrecondition(DomainError):
    """The resource is not in a state that allows the call (dataset not ready)."""

    reason = "failed_precondition"


class Conflict(DomainError):
    """The call conflicts with other resources (dataset used by a running job)."""

    reason = "conflict"


class BudgetExceeded(Conflict):
    """A job's estimate does not fit what remains of its user's monthly budget (409 at the gateway).

    ``details`` carries ``estimated_cost``, ``remaining`` and ``budget`` in dollars.
    """

    reason = "budget_exceeded"


class ResourceExhausted(DomainError):
    """A limit or budget is exceeded."""

    reason = "resource_exhausted"


class Unauthenticated(DomainError):
    """No caller identity."""

    reason = "unauthenticated"


class IdempotencyKeyReused(InvalidArgument):
    """A request id (the HTTP ``Idempotency-Key``) sent again with a different request."""

    reason = "idempotency_key_reused"


def field_errors(problems: dict[str, list[str]]) -> None:
    """Raise one InvalidArgument naming every bad field, or return when there is none."""
    problems = {field: msgs for field, msgs in problems.items() if msgs}
    if problems:
        names = ", ".join(sorted(problems))
        raise InvalidArgument(f"Validation error: check {names}", problems)

