"""OpenTelemetry tracing: one owner for the tracer provider, the spans every
process starts and the W3C trace context (``traceparent``, ``tracestate``)
that carries a trace between them.

:func:`configure` (each process's ``__main__``, next to ``logs.configure``)
installs a tracer provider named after the service (or OTEL_SERVICE_NAME).
It exports spans over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; off by default it has no
exporter, so a span costs an id and a few objects, and its ids still travel
onward and into the logs.

:func:`span` starts a span, continuing the trace of the headers a request or
an RPC's metadata carried (OTel's propagator reads ``traceparent`` and
``tracestate``), or of the ``traceparent`` a NATS message carried, and binds
the span's trace id into the log context: every log line inside carries it.
:func:`headers` is the active span's context as the propagator writes it
(``traceparent``, ``tracestate`` when a vendor set one), which
``services.common.grpc.as_user`` sends on to the next service.
:func:`current_traceparent` is what an outbox row keeps for its relay to
publish as a NATS header (an outbox row keeps no ``tracestate``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Link, Span, SpanKind

from services.common import logs

# Either names where the spans go; the OTLP exporter reads the rest of its OTEL_EXPORTER_OTLP_* settings itself.
ENDPOINT_SETTINGS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
TRACEPARENT = logs.TRACEPARENT_HEADER

# Until configure() (or a test's use()): no provider, so a span only carries on the ids it continues.
_provider: trace.TracerProvider = trace.NoOpTracerProvider()
_tracer = _provider.get_tracer("brightrun")


def exporter(env: Mapping[str, str] | None = None) -> SpanExporter | None:
    """The OTLP/HTTP exporter when an endpoint is set, else None: tracing exports nothing by default."""
    env = os.environ if env is None else env
    if not any(env.get(name) for name in ENDPOINT_SETTINGS):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # loaded only when used

    return OTLPSpanExporter()


def resource(service: str, env: Mapping[str, str] | None = None) -> Resource:
    """What this process's spans say they come from: ``service.name`` is OTEL_SERVICE_NAME when set (the
    Kubernetes ``otel`` component sets each Deployment's name), else ``service``."""
    env = os.environ if env is None else env
    return Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service})


def configure(service: str, env: Mapping[str, str] | None = None) -> TracerProvider:
    """Install this process's tracer provider, naming its spans' ``service.name`` (:func:`resource`); returns it."""
    provider = TracerProvider(resource=resource(service, env))
    if (chosen := exporter(env)) is not None:
        # Batched off the request path; flushed when the process exits (the provider's atexit shutdown).
        provider.add_span_processor(BatchSpanProcessor(chosen))
    trace.set_tracer_provider(provider)  # for any OpenTelemetry-instrumented library too
    use(provider)
    return provider


def use(provider: trace.TracerProvider) -> trace.TracerProvider:
    """Start this process's spans with ``provider`` from now on; returns the one used before
    (a test observing spans puts it back)."""
    global _provider, _tracer
    previous, _provider, _tracer = _provider, provider, provider.get_tracer("brightrun")
    return previous


def parent_of(traceparent: str | None):
    """The OTel context a ``traceparent`` value names (an empty one when it is absent or malformed)."""
    return propagate.extract({TRACEPARENT: traceparent} if traceparent else {})


def headers() -> dict[str, str]:
    """The active span's trace context as OTel's propagator writes it for a call onward: ``traceparent``
    and, when the trace carries one, ``tracestate`` (empty outside any trace)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def current_traceparent() -> str | None:
    """The active span's W3C ``traceparent``; None outside any trace."""
    return headers().get(TRACEPARENT)


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    traceparent: str | None = None,
    carrier: Mapping[str, str] | None = None,
    attributes: Mapping[str, str | int] | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Span]:
    """A current span named ``name``: a child of the trace context in ``carrier`` (a request's headers or
    an RPC's metadata, read by OTel's propagator; a new trace when they carry none) when given, else of
    ``traceparent`` when given, else of the active span.

    Inside it the log context's ``trace_id`` is the span's own.
    """
    if carrier is not None:
        parent = propagate.extract(carrier)
    else:
        parent = parent_of(traceparent) if traceparent else None
    with _tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes, links=links) as current:
        context = current.get_span_context()
        if not context.is_valid:
            yield current
            return
        with logs.bind(trace_id=trace.format_trace_id(context.trace_id)):
            yield current


def link_to(traceparent: str | None) -> list[Link]:
    """A link to the span a ``traceparent`` names (none for an absent or malformed one): a batch's span
    links each message's trace it handles."""
    context = trace.get_current_span(parent_of(traceparent)).get_span_context()
    return [Link(context)] if context.is_valid else []
