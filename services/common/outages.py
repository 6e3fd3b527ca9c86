"""Which failures are an outage of something a service depends on (the
database, the network, another service) rather than a bug.

An outage is worth retrying and is answered UNAVAILABLE (the gateway's 503
with ``Retry-After``); anything else stays an internal error. Kept apart from
``services.common.grpc`` so that code which is not a gRPC handler can ask the
same question.
"""

from __future__ import annotations

from collections.abc import Iterator

import socket

import asyncpg
import botocore.exceptions
import grpc
import sqlalchemy.exc

# PostgreSQL down, restarting, shutting down or full: SQLSTATE classes 08, 57P01-57P03 and 53300.
_DATABASE_DOWN = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)
# The object store unreachable, or its connection dropped or too slow.
_OBJECT_STORE_DOWN = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
)
# A service this one called was itself unreachable or too slow.
_UPSTREAM_DOWN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it wraps) says a dependency is unreachable.

    SQLAlchemy wraps the driver's error (``raise ... from``), and a refused
    connection reaches the pool as a bare OSError, so the chain of causes is
    looked at; not ``__context__``, which would blame a bug raised while
    handling an outage on the outage.
    """
    return any(_is_outage_itself(link) for link in _chain(exc))


def _is_outage_itself(exc: BaseException) -> bool:
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in _UPSTREAM_DOWN
    # A bare OSError is asyncio's "Multiple exceptions" when every address of
    # a host refused; its subclasses other than these (FileNotFoundError...) are bugs.
    if type(exc) is OSError or isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    # sqlalchemy's TimeoutError: the pool had no free connection in time.
    return isinstance(exc, (sqlalchemy.exc.TimeoutError, *_DATABASE_DOWN, *_OBJECT_STORE_DOWN))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or getattr(link, "orig", None)
