"""Tracing's setup: off by default (no exporter), OTLP when an endpoint is set;
a span continues a given traceparent and puts its ids into the log context."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider

from services.common import logs, tracing

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
STATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


def test_no_endpoint_no_exporter():
    assert tracing.exporter({}) is None
    assert tracing.exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is None


def test_an_endpoint_exports_over_otlp_http():
    assert isinstance(tracing.exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}), OTLPSpanExporter)
    assert isinstance(tracing.exporter({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}),
                      OTLPSpanExporter)


def test_spans_are_named_after_the_service_unless_otel_service_name_says_otherwise():
    assert tracing.resource("job_svc", {}).attributes["service.name"] == "job_svc"
    assert tracing.resource("job_svc", {"OTEL_SERVICE_NAME": "job-svc"}).attributes["service.name"] == "job-svc"


def test_a_span_continues_the_given_trace_and_logs_carry_it():
    with tracing.span("handling", traceparent=PARENT):
        carried = tracing.current_traceparent()
        assert logs.current("trace_id") == "0af7651916cd43dd8448eb211c80319c"
        assert tracing.headers() == {logs.TRACEPARENT_HEADER: carried}
    assert logs.trace_id_from(carried) == "0af7651916cd43dd8448eb211c80319c"
    assert logs.current("trace_id") == ""


@pytest.mark.parametrize("provider", [None, TracerProvider()], ids=["no provider", "a provider"])
def test_a_span_from_a_callers_headers_keeps_their_tracestate_for_calls_onward(provider):
    previous = tracing.use(provider) if provider else None
    try:
        with tracing.span("handling", carrier={"traceparent": PARENT, "tracestate": STATE, "other": "x"}):
            onward = tracing.headers()
    finally:
        if provider:
            tracing.use(previous)
    assert onward["tracestate"] == STATE
    assert logs.trace_id_from(onward["traceparent"]) == "0af7651916cd43dd8448eb211c80319c"
    # Headers without a trace context start a new trace rather than continue the caller's active one.
    with tracing.span("outer", traceparent=PARENT), tracing.span("request", carrier={"other": "x"}):
        assert tracing.headers() == {}


def test_with_a_provider_a_span_is_a_new_span_of_the_same_trace():
    previous = tracing.use(TracerProvider())
    try:
        with tracing.span("handling", traceparent=PARENT):
            carried = tracing.current_traceparent()
    finally:
        tracing.use(previous)
    assert logs.trace_id_from(carried) == "0af7651916cd43dd8448eb211c80319c" and carried != PARENT


def test_without_an_exporter_a_span_is_only_ids_made_as_the_sdk_would():
    previous = tracing.use(TracerProvider(), ids_only=True)
    try:
        with tracing.span("handling", carrier={"traceparent": PARENT, "tracestate": STATE}) as span:
            assert not span.is_recording()
            onward = tracing.headers()
            assert logs.current("trace_id") == "0af7651916cd43dd8448eb211c80319c"
            with tracing.span("inner") as inner:
                assert inner.get_span_context().trace_id == span.get_span_context().trace_id
                assert inner.get_span_context().span_id != span.get_span_context().span_id
        unsampled = PARENT[:-2] + "00"
        with tracing.span("handling", traceparent=unsampled):
            kept_unsampled = tracing.current_traceparent()
        with tracing.span("new trace", carrier={}):
            started = tracing.current_traceparent()
        assert tracing.headers() == {} and logs.current("trace_id") == ""  # nothing left active
    finally:
        tracing.use(previous)
    # The caller's trace, state and sampled flag, with a span id of its own.
    assert onward["tracestate"] == STATE
    assert onward["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert onward["traceparent"].endswith("-01") and onward["traceparent"] != PARENT
    assert kept_unsampled.endswith("-00") and kept_unsampled != unsampled
    assert logs.trace_id_from(started) not in ("", "0af7651916cd43dd8448eb211c80319c")
    sdk_root = TracerProvider().get_tracer("test").start_span("root").get_span_context()
    assert int(started[-2:], 16) == sdk_root.trace_flags  # sampled, its trace id random


@pytest.mark.parametrize(("env", "ids_only"), [({}, True), ({"OTEL_TRACES_SAMPLER": "always_off"}, False)],
                         ids=["no exporter", "an operator's sampler"])
def test_spans_are_only_ids_when_nothing_exports_them_and_no_sampler_is_chosen(env, ids_only, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the SDK reads its sampler from the environment itself
    previous = tracing.use(TracerProvider())
    try:
        tracing.configure("job_svc", env)
        with tracing.span("handling") as span:
            carried = tracing.current_traceparent()
    finally:
        tracing.use(previous)
    assert not span.is_recording()  # nothing to export either way
    # Without a sampler of the operator's the span is only ids, sampled as the SDK's default would; with
    # one, the SDK's sampler still decides the flags: always_off makes an unsampled trace.
    assert int(carried[-2:], 16) & 1 == (1 if ids_only else 0)
