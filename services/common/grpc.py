"""gRPC plumbing shared by the services: server factory with health checking,
the domain-error-to-status mapping, the caller's user id, and client channels.
Both ends take the process's :class:`GrpcTls` (None: plaintext, the embedded default).

Errors travel as gRPC's rich error model (``services.common.status``): a status
code, a human message, an ErrorInfo reason the gateway answers as ``code`` and
the details it puts into ``{error, details}``. An outage of a dependency (see
``services.common.outages``) travels as UNAVAILABLE, a bug as INTERNAL with the
id under which it was logged and nothing of its cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable

import grpc
# A failed write of a server stream whose caller is gone; grpc.aio exports no name for it (grpcio is pinned).
from grpc._cython.cygrpc import ExecuteBatchError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.common import acting, identity, logs, tracing
from services.common.config import GrpcTls
from services.common.errors import (
    Conflict,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
)
from services.common.metrics import GRPC_DURATION, GRPC_REQUESTS
from services.common.outages import is_outage
from services.common.status import rich_status

log = logging.getLogger(__name__)
# One line per call answered (not health checks): method, status code, milliseconds, in the call's log context.
access_log = logging.getLogger("services.common.grpc.access")
# Probes call these every few seconds; counted, not logged.
_UNLOGGED_SERVICES = frozenset({health_pb2.DESCRIPTOR.services_by_name["Health"].full_name})

_STATUS = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Conflict: grpc.StatusCode.ABORTED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}

# Retries UNAVAILABLE (a service restarting) on every method, from the client side.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def user_id(context: grpc.aio.ServicerContext) -> str:
    """The user the call acts for, from its verified internal credential (``services.common.identity``);
    raises Unauthenticated when it carries none, or one that is forged, expired or for another audience.
    A bare ``x-user-id`` is nobody's word."""
    for key, value in context.invocation_metadata() or ():
        if key == identity.METADATA_KEY:
            return identity.tokens().verify(value)
    raise Unauthenticated(f"the call carries no internal credential ({identity.METADATA_KEY} metadata)")


def _acting_for(credential: str | None) -> acting.Acting:
    """Whom a call's database session acts for (``services.common.acting``): the user its internal
    credential names, or nobody when it carries none that verifies."""
    if credential is None:
        return acting.NOBODY
    try:
        return acting.for_user(identity.tokens().verify(credential))
    except Unauthenticated:
        return acting.NOBODY


def as_user(uid: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that acts on behalf of ``uid`` (an internal credential, reused for a minute), with the request id and
    trace context (``traceparent``, ``tracestate``) of the request being handled."""
    return ((identity.METADATA_KEY, identity.tokens().for_user(uid)), *logs.outgoing_metadata(),
            *tracing.headers().items())


async def _abort(context: grpc.aio.ServicerContext, exc: DomainError) -> None:
    code = grpc.StatusCode.INTERNAL
    for cls, mapped in _STATUS.items():
        if isinstance(exc, cls):
            code = mapped
    status = rich_status(code, exc.message, exc.reason, exc.details)
    await context.abort(status.code, status.details, status.trailing_metadata)


# What a caller reads when a handler met an outage or a bug; the cause goes to this service's log only.
UNAVAILABLE_MESSAGE = "A dependency of this service (database or another service) is unreachable; retry shortly"
INTERNAL_MESSAGE = "The service failed unexpectedly; it has been logged as error {error_id}"


async def _abort_unexpected(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # a handler's own abort, already answered
    if is_outage(exc):
        log.warning("answering UNAVAILABLE: %s: %s", type(exc).__name__, exc)
        status = rich_status(grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE, "unavailable")
    else:
        # grpc's own answer would be UNKNOWN with the exception's text, SQL and parameters included.
        error_id = uuid.uuid4().hex
        log.error("answering INTERNAL, error %s", error_id, exc_info=exc)
        message = INTERNAL_MESSAGE.format(error_id=error_id)
        status = rich_status(grpc.StatusCode.INTERNAL, message, "internal", metadata={"error_id": error_id})
    await context.abort(status.code, status.details, status.trailing_metadata)


# When the call this task is handling must be answered (time.monotonic()); None without a deadline.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("brightrun_call_deadline", default=None)


def downstream_timeout(cap: float) -> float:
    """Seconds a call to another service may take from here: at most ``cap``,
    and never past the deadline of the call being handled, so that a caller
    who stopped waiting does not leave work running on its behalf below."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return cap
    return max(0.0, min(cap, deadline - time.monotonic()))


def rpc(method: Callable) -> Callable:
    """Wrap a unary handler: a DomainError becomes its status code, an outage
    UNAVAILABLE, any other exception INTERNAL with a message that hides it.
    The call's deadline bounds the handler's own calls (:func:`downstream_timeout`)."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        remaining = context.time_remaining()
        token = _DEADLINE.set(None if remaining is None else time.monotonic() + remaining)
        try:
            return await method(self, request, context)
        except DomainError as exc:
            await _abort(context, exc)
        except Exception as exc:
            await _abort_unexpected(context, exc)
        finally:
            _DEADLINE.reset(token)

    return wrapper


def stream_rpc(method: Callable) -> Callable:
    """Like :func:`rpc`, for a server-streaming handler (an async generator)."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            async for item in method(self, request, context):
                yield item
        except DomainError as exc:
            await _abort(context, exc)
        except Exception as exc:
            await _abort_unexpected(context, exc)

    return wrapper


class ObservingInterceptor(grpc.aio.ServerInterceptor):
    """Counts, times and logs every call by method and status code, and handles it in a log context that
    carries the caller's ``x-request-id`` (an id is made up when the caller sent none), inside a server
    span (``services.common.tracing``) that continues the caller's trace (``traceparent``, ``tracestate``)."""

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None or handler.request_streaming:  # reflection's stream: nothing of ours to count
            return handler
        service, _, method = details.method.lstrip("/").rpartition("/")
        metadata = dict(details.invocation_metadata or ())
        observe = functools.partial(_observed, service, method, metadata)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                observe(handler.unary_unary), handler.request_deserializer, handler.response_serializer)
        return grpc.unary_stream_rpc_method_handler(
            observe(handler.unary_stream), handler.request_deserializer, handler.response_serializer)


def _observed(service: str, method: str, metadata: dict, behavior: Callable) -> Callable:
    """``behavior`` (a coroutine, or an async generator for a server stream) counted, timed and logged
    in the call's context. The code is the one the handler aborted with, OK when it returned."""

    def record(context: grpc.aio.ServicerContext, started: float, failed: BaseException | None) -> None:
        code = context.code()
        if code is None:
            if failed is None:
                code = grpc.StatusCode.OK
            elif isinstance(failed, (asyncio.CancelledError, GeneratorExit)):  # the caller went away
                code = grpc.StatusCode.CANCELLED
            else:
                code = grpc.StatusCode.UNKNOWN
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        seconds = time.monotonic() - started
        trace.get_current_span().set_attribute("rpc.grpc.status_code", name)
        GRPC_REQUESTS.labels(service, method, name).inc()
        GRPC_DURATION.labels(service, method, name).observe(seconds)
        if service not in _UNLOGGED_SERVICES:
            access_log.info("%s/%s %s %.1f ms", service, method, name, seconds * 1000)

    @contextlib.contextmanager
    def context_of():
        """The call's log context and its server span, continuing the caller's trace context (a probe's
        health check starts none: it would be a trace every few seconds), acting in the database for the
        user its credential names (nobody without a valid one: :func:`user_id` then refuses the call)."""
        with logs.request_context(metadata.get(logs.REQUEST_ID_HEADER), metadata.get(logs.TRACEPARENT_HEADER)), \
                acting.act_as(_acting_for(metadata.get(identity.METADATA_KEY))):
            if service in _UNLOGGED_SERVICES:
                yield
                return
            with tracing.span(f"{service}/{method}", kind=SpanKind.SERVER, carrier=metadata,
                              attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}):
                yield

    if inspect.isasyncgenfunction(behavior):
        # A coroutine that writes each item, not a generator that yields it: a caller who goes away while
        # an item waits for their window ends this task where it waits, so the call's context (log fields,
        # acting user, span) ends in the task it began in and the handler's cleanup runs now. A generator
        # left at its yield was closed later by the loop, in a task of its own, where ending that context
        # failed: two errors logged for every watcher that left during a burst.
        async def streamed(request, context):
            started, failed = time.monotonic(), None
            with context_of():
                try:
                    async with contextlib.aclosing(behavior(request, context)) as items:
                        async for item in items:
                            try:
                                await context.write(item)
                            except ExecuteBatchError:  # the stream is gone: the caller left (or ran out of time)
                                raise asyncio.CancelledError() from None
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    record(context, started, failed)
        return streamed

    async def answered(request, context):
        started, failed = time.monotonic(), None
        with context_of():
            try:
                return await behavior(request, context)
            except BaseException as exc:
                failed = exc
                raise
            finally:
                record(context, started, failed)
    return answered


class _WithHealthPort:
    """A TLS server and a plaintext one serving only its grpc.health.v1 (the same servicer), started and
    stopped together: the kubelet's gRPC probes speak no TLS, and health status is all they can read."""

    def __init__(self, server: grpc.aio.Server, health_only: grpc.aio.Server):
        self._servers = (server, health_only)

    async def start(self) -> None:
        for server in self._servers:
            await server.start()

    async def stop(self, grace: float | None) -> None:
        await asyncio.gather(*(server.stop(grace) for server in self._servers))


def create_server(
    address: str,
    register: Iterable[Callable[[grpc.aio.Server], None]],
    service_names: Iterable[str],
    tls: GrpcTls | None = None,
) -> tuple[grpc.aio.Server | _WithHealthPort, int, health.aio.HealthServicer]:
    """A grpc.aio server with the servicers, grpc.health.v1 and server reflection;
    returns (server, bound port, health).

    Reflection lets any gRPC client (grpcurl, Postman, grpcui) list the
    services and read their contracts, doc comments aside, without the protos.
    Bind port 0 in tests. Every service name starts SERVING. With ``tls``
    carrying a certificate the port speaks TLS only (health and reflection too),
    and ``tls.health_port`` adds a plaintext port answering health checks alone.
    """
    server = grpc.aio.server(interceptors=[ObservingInterceptor()])
    for add in register:
        add(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    secure = tls is not None and tls.cert is not None
    port = server.add_secure_port(address, _server_credentials(tls)) if secure else server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind gRPC server to {address}")
    if secure and tls.health_port:
        health_only = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_only)
        health_address = f"{address.rpartition(':')[0]}:{tls.health_port}"
        if health_only.add_insecure_port(health_address) == 0:
            raise RuntimeError(f"could not bind the plaintext health port {health_address}")
        return _WithHealthPort(server, health_only), port, health_servicer
    return server, port, health_servicer


async def set_serving(health_servicer, service_names: Iterable[str], serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ["", *service_names]:
        await health_servicer.set(name, status)


def _server_credentials(tls: GrpcTls) -> grpc.ServerCredentials:
    """The server's certificate, as its files hold it when each connection is made (:class:`_CertificateFiles`);
    with require_client_cert, callers must present one the CA signed."""
    files = _CertificateFiles(tls)
    return grpc.dynamic_ssl_server_credentials(files.initial(), files, tls.require_client_cert)


class _CertificateFiles:
    """A TLS server's certificate, key and (for client certificates) CA, read from their files again
    before each new connection's handshake (gRPC calls the instance, see
    ``grpc.dynamic_ssl_server_credentials``): a certificate cert-manager renews by rewriting its
    Secret's files is served from the next connection on, without a restart. Connections already
    open keep the certificate they were made with."""

    def __init__(self, tls: GrpcTls):
        self._tls = tls
        self._pem: tuple[bytes, bytes, bytes | None] | None = None

    def _read(self) -> tuple[bytes, bytes, bytes | None]:
        tls = self._tls
        return tls.key.read_bytes(), tls.cert.read_bytes(), tls.ca.read_bytes() if tls.require_client_cert else None

    def initial(self) -> grpc.ServerCertificateConfiguration:
        """The configuration the server starts with; a file that cannot be read raises (start-up fails)."""
        self._pem = self._read()
        return self._configuration(self._pem)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        """The files' configuration when they changed since the last one given, else None (gRPC keeps it)."""
        try:
            pem = self._read()
        except OSError as error:  # mid-renewal, say: the current certificate serves on
            log.warning("cannot read the gRPC server's certificate files (%s); serving the one loaded before", error)
            return None
        if pem == self._pem:
            return None
        self._pem = pem
        log.info("the gRPC server's certificate files %s changed: new connections get the new certificate",
                 self._tls.cert)
        return self._configuration(pem)

    @staticmethod
    def _configuration(pem: tuple[bytes, bytes, bytes | None]) -> grpc.ServerCertificateConfiguration:
        key, cert, ca = pem
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


def channel(address: str, tls: GrpcTls | None = None) -> grpc.aio.Channel:
    """A client channel that retries UNAVAILABLE; over TLS verifying the server against ``tls.ca``
    (presenting ``tls.client_cert`` when set) when ``tls`` is given, else plaintext."""
    options = [("grpc.service_config", _SERVICE_CONFIG), ("grpc.enable_retries", 1)]
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, client_credentials(tls), options=options + tls_options(tls))


def client_credentials(tls: GrpcTls) -> grpc.ChannelCredentials:
    """What a client presents and trusts under ``tls`` (for aio and blocking channels alike)."""
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes(),
        private_key=tls.client_key.read_bytes() if tls.client_key else None,
        certificate_chain=tls.client_cert.read_bytes() if tls.client_cert else None,
    )


def tls_options(tls: GrpcTls) -> list[tuple[str, str]]:
    """Channel options ``tls`` asks for: the name checked in the server's certificate, when overridden."""
    return [("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else []
