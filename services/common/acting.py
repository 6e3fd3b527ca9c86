"""Whom the current task acts for: one user, the platform, or nobody.

The gRPC server interceptor (``services.common.grpc``) sets it from each call's verified internal
credential, and the service runtime (``services.common.runtime``) sets the platform for its own work;
``services.common.row_security`` reads it to scope every database session. It lives apart from that
module so that what only sets it (the gRPC plumbing the gateway and the launcher import too) loads no
SQLAlchemy: the launcher supervises for hours and keeps what it imports in memory.

The identity is a context variable, so it follows each call's task and nothing else; what never set one
acts for nobody (fail closed).
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Acting:
    """An identity a session acts for: one user, the platform, or nobody (neither)."""

    user_id: str = ""
    platform: bool = False


NOBODY = Acting()
PLATFORM = Acting(platform=True)
_ACTING: contextvars.ContextVar[Acting] = contextvars.ContextVar("brightrun_acting", default=NOBODY)


def current() -> Acting:
    """The identity this context acts for (NOBODY unless something set one)."""
    return _ACTING.get()


@contextmanager
def act_as(identity: Acting) -> Iterator[None]:
    """Act as ``identity`` in this context (and the tasks it starts) until the block ends."""
    token = _ACTING.set(identity)
    try:
        yield
    finally:
        _ACTING.reset(token)


def for_user(user_id: str | None) -> Acting:
    """The identity of a verified user; NOBODY for None or an id that is not a UUID (no row can be its)."""
    if not user_id:
        return NOBODY
    try:
        return Acting(user_id=str(uuid.UUID(user_id)))
    except ValueError:
        return NOBODY


def as_user(user_id: str | None):
    """``act_as(for_user(user_id))``."""
    return act_as(for_user(user_id))


def as_platform():
    """``act_as(PLATFORM)``: the platform's own work, across users."""
    return act_as(PLATFORM)
