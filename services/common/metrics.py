"""The Prometheus metrics every BrightRun service shares, and how a process serves them.

A metric belongs to the process, not to one object in it: they live in
prometheus_client's default registry (one per process, with the client's own
process and Python series), so code deep in the event plumbing counts without
every caller passing a registry down. Nothing but metrics may live at module
level here. A metric of one component lives with it (``gateway.observe``,
``services.job_svc.gauges``, ``services.dataset_svc.consumers``,
``services.trainer_agent.training_metrics``), so that a process exports only
its own series; README's "Observability" lists them all.

Names follow Prometheus conventions (``brightrun_`` prefix, ``_total``
counters, ``_seconds`` and ``_bytes`` units) and every label takes a bounded
set of values: route templates, gRPC method names, status codes, consumer and
stream names, job statuses, GPU types. Never a user, job or dataset id: the
logs carry those.

Each process serves them on ``BRIGHTRUN_METRICS_PORT`` (:func:`serve`; unset
or 0: not served); the gateway also answers ``GET /metrics`` on its API port.
"""

from __future__ import annotations

import logging

from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, generate_latest, start_http_server,
)

log = logging.getLogger(__name__)
# No ``_created`` twin of every counter and histogram: Prometheus reads the counts alone.
disable_created_metrics()

# Request latencies: a fast read to a slow create; a Server-Sent Events stream lands in +Inf.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Every gRPC server (services.common.grpc's interceptor).
GRPC_REQUESTS = Counter(
    "brightrun_grpc_server_handled_total", "gRPC calls a service answered, by method and status code",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_DURATION = Histogram(
    "brightrun_grpc_server_handling_seconds", "Time a service took to answer a gRPC call, by method and status code",
    ["grpc_service", "grpc_method", "grpc_code"], buckets=LATENCY_BUCKETS,
)

# Every service's outbox and consumers (services.common.runtime samples them).
OUTBOX_UNPUBLISHED = Gauge(
    "brightrun_outbox_unpublished_messages", "Committed events the outbox relay has not published yet", ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "brightrun_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished outbox event; 0 when every event is published", ["service"],
)
CONSUMER_PENDING = Gauge(
    "brightrun_consumer_pending_messages", "Messages on a durable consumer's stream it has not been handed yet (lag)",
    ["stream", "consumer"],
)
CONSUMER_ACK_PENDING = Gauge(
    "brightrun_consumer_ack_pending_messages", "Messages handed to a durable consumer and not yet acknowledged",
    ["stream", "consumer"],
)
CONSUMER_REDELIVERIES = Counter(
    "brightrun_consumer_redeliveries_total", "Messages a consumer received again after an earlier delivery failed",
    ["consumer"],
)
PARKED_MESSAGES = Counter(
    "brightrun_messages_parked_total", "Messages a consumer gave up on and parked on the DEADLETTER stream",
    ["consumer"],
)


def serve(port: int, host: str = "0.0.0.0") -> int:
    """Serve this process's metrics at ``http://host:port/metrics`` from a thread of its own; returns the
    bound port (``port`` 0 picks a free one). The caller decides whether to serve at all."""
    server, _ = start_http_server(port, addr=host)
    bound = server.server_port
    log.info("serving Prometheus metrics on %s:%d/metrics", host, bound)
    return bound


def exposition() -> tuple[bytes, str]:
    """This process's metrics in Prometheus's text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
