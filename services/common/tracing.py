"""OpenTelemetry tracing: one owner for the tracer provider, the spans every
process starts and the W3C trace context (``traceparent``, ``tracestate``)
that carries a trace between them.

:func:`configure` (each process's ``__main__``, next to ``logs.configure``)
installs a tracer provider named after the service (or OTEL_SERVICE_NAME).
It exports spans over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; off by default it has no
exporter, so a span is only its ids (made here, without the SDK's span
bookkeeping, which cost a tenth of the gateway's CPU per request with nothing
to read it), and they still travel onward and into the logs.

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

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags

from services.common import logs

# Either names where the spans go; the OTLP exporter reads the rest of its OTEL_EXPORTER_OTLP_* settings itself.
ENDPOINT_SETTINGS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
TRACEPARENT = logs.TRACEPARENT_HEADER

# Until configure() (or a test's use()): no provider, so a span only carries on the ids it continues.
_provider: trace.TracerProvider = trace.NoOpTracerProvider()
_tracer = _provider.get_tracer("brightrun")
# Whether spans are only ids (configure() without an exporter), and what makes them.
_ids_only = False
_IDS = RandomIdGenerator()


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
    env = os.environ if env is None else env
    provider = TracerProvider(resource=resource(service, env))
    if (chosen := exporter(env)) is not None:
        # Batched off the request path; flushed when the process exits (the provider's atexit shutdown).
        provider.add_span_processor(BatchSpanProcessor(chosen))
    trace.set_tracer_provider(provider)  # for any OpenTelemetry-instrumented library too
    # Spans nothing reads are only ids, unless a sampler of the operator's choice is to set their flags.
    use(provider, ids_only=chosen is None and not env.get("OTEL_TRACES_SAMPLER"))
    return provider


def use(provider: trace.TracerProvider, *, ids_only: bool = False) -> trace.TracerProvider:
    """Start this process's spans with ``provider`` from now on; returns the one used before
    (a test observing spans puts it back). With ``ids_only`` (an SDK provider whose spans go nowhere)
    a span is only its ids: a new span id in the parent's trace, with the parent's flags and state, or a
    new sampled trace, as the SDK's default sampler would make them."""
    global _provider, _tracer, _ids_only
    previous, _provider, _tracer = _provider, provider, provider.get_tracer("brightrun")
    _ids_only = ids_only and isinstance(provider, TracerProvider)
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
    if _ids_only:
        current = NonRecordingSpan(_child_of(parent))
        token = otel_context.attach(trace.set_span_in_context(current, parent))
        try:
            with logs.bind(trace_id=trace.format_trace_id(current.get_span_context().trace_id)):
                yield current
        finally:
            otel_context.detach(token)
        return
    with _tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes, links=links) as current:
        context = current.get_span_context()
        if not context.is_valid:
            yield current
            return
        with logs.bind(trace_id=trace.format_trace_id(context.trace_id)):
            yield current


def _child_of(parent) -> SpanContext:
    """The ids of a new span under ``parent`` (an OTel context; None: the active one)."""
    above = trace.get_current_span(parent).get_span_context()
    if above.is_valid:
        return SpanContext(above.trace_id, _IDS.generate_span_id(), is_remote=False, trace_flags=above.trace_flags,
                           trace_state=above.trace_state)
    return SpanContext(_IDS.generate_trace_id(), _IDS.generate_span_id(), is_remote=False,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID))


def link_to(traceparent: str | None) -> list[Link]:
    """A link to the span a ``traceparent`` names (none for an absent or malformed one): a batch's span
    links each message's trace it handles."""
    context = trace.get_current_span(parent_of(traceparent)).get_span_context()
    return [Link(context)] if context.is_valid else []
