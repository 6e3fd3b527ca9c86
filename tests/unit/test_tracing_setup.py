"""Tracing's setup: off by default (no exporter), OTLP when an endpoint is set;
a span continues a given traceparent and puts its ids into the log context."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider

from services.common import logs, tracing

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_no_endpoint_no_exporter():
    assert tracing.exporter({}) is None
    assert tracing.exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is None


def test_an_endpoint_exports_over_otlp_http():
    assert isinstance(tracing.exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}), OTLPSpanExporter)
    assert isinstance(tracing.exporter({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}),
                      OTLPSpanExporter)


def test_a_span_continues_the_given_trace_and_logs_carry_it():
    with tracing.span("handling", traceparent=PARENT):
        carried = tracing.current_traceparent()
        assert logs.current("trace_id") == "0af7651916cd43dd8448eb211c80319c"
        assert logs.current("traceparent") == carried
        assert dict(logs.outgoing_metadata())[logs.TRACEPARENT_HEADER] == carried
    assert logs.trace_id_from(carried) == "0af7651916cd43dd8448eb211c80319c"
    assert logs.current("trace_id") == ""


def test_with_a_provider_a_span_is_a_new_span_of_the_same_trace():
    previous = tracing.use(TracerProvider())
    try:
        with tracing.span("handling", traceparent=PARENT):
            carried = tracing.current_traceparent()
    finally:
        tracing.use(previous)
    assert logs.trace_id_from(carried) == "0af7651916cd43dd8448eb211c80319c" and carried != PARENT
