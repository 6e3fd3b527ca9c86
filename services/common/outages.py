"""Which failures are an outage of something a service depends on (the
database, the network, another service) rather than a bug.

An outage is worth retrying and is answered UNAVAILABLE (the gateway's 503
with ``Retry-After``); anything else stays an internal error. Kept apart from
``services.common.grpc`` so that code which is not a gRPC handler can ask the
same question.

The database and object-store drivers' errors are looked up among the modules
this process has already imported, never imported here: an error of a driver
the process never loaded cannot occur, and the gateway and the embedded
launcher, which import this through ``services.common.grpc``, stay free of
SQLAlchemy, asyncpg and botocore (memory a long-lived process keeps).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import grpc

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
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in _UPSTREAM_DOWN
    # A bare OSError is asyncio's "Multiple exceptions" when every address of
    # a host refused; its subclasses other than these (FileNotFoundError...) are bugs.
    if type(exc) is OSError or isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    if "sqlalchemy" in sys.modules:
        import sqlalchemy.exc  # loaded already: costs nothing

        # Its TimeoutError: the pool had no free connection in time.
        if isinstance(exc, sqlalchemy.exc.TimeoutError) or \
                (isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated):
            return True
    return isinstance(exc, _driver_outages())


def _driver_outages() -> tuple[type[BaseException], ...]:
    """The outage errors of the database and object-store drivers this process has imported."""
    found: list[type[BaseException]] = []
    if "asyncpg" in sys.modules:
        import asyncpg  # loaded already

        # PostgreSQL down, restarting, shutting down or full: SQLSTATE classes 08, 57P01-57P03 and 53300.
        found += [asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.CannotConnectNowError,
                  asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CrashShutdownError,
                  asyncpg.exceptions.TooManyConnectionsError]
    if "botocore" in sys.modules:
        import botocore.exceptions  # loaded already

        # The object store unreachable, or its connection dropped or too slow.
        found += [botocore.exceptions.ConnectionError, botocore.exceptions.ConnectionClosedError,
                  botocore.exceptions.ReadTimeoutError]
    return tuple(found)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or getattr(link, "orig", None)
