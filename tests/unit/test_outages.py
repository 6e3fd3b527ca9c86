"""Which exceptions are an outage (UNAVAILABLE, the gateway's 503) and which stay bugs."""

import asyncpg
import botocore.exceptions
import grpc
import pytest
import sqlalchemy.exc

from services.common.outages import is_outage


def _rpc_error(code):
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")


def _wrapped(cause: Exception, cls=sqlalchemy.exc.OperationalError, invalidated=False) -> Exception:
    # What SQLAlchemy raises: its DBAPIError, ``orig`` the driver's, chained by ``raise ... from``.
    error = cls("SELECT 1", {}, cause, connection_invalidated=invalidated)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "exc",
    [
        OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432)"),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        _wrapped(asyncpg.exceptions.CannotConnectNowError("the database system is starting up")),
        _wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")),
        _wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")),
        _wrapped(Exception("connection is closed"), sqlalchemy.exc.InterfaceError, invalidated=True),
        sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3:8333"),
        _rpc_error(grpc.StatusCode.UNAVAILABLE),
        _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_an_unreachable_dependency_is_an_outage(exc):
    assert is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        KeyError("field"),
        FileNotFoundError(2, "No such file"),
        PermissionError(13, "Permission denied"),
        _wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key"), sqlalchemy.exc.IntegrityError),
        _wrapped(asyncpg.exceptions.UndefinedTableError("relation jobs does not exist"), sqlalchemy.exc.ProgrammingError),
        _rpc_error(grpc.StatusCode.NOT_FOUND),
        _rpc_error(grpc.StatusCode.INTERNAL),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_bug_or_a_refusal_is_not_an_outage(exc):
    assert not is_outage(exc)


def test_a_bug_raised_while_handling_an_outage_stays_a_bug():
    try:
        try:
            raise ConnectionRefusedError()
        except ConnectionRefusedError:
            raise KeyError("typo")  # noqa: B904 - the implicit __context__ is the point
    except KeyError as bug:
        assert not is_outage(bug)
