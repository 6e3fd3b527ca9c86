"""Every Prometheus metric BrightRun exports, and how a process serves them.

A metric belongs to the process, not to one object in it: they live in
prometheus_client's default registry (one per process, with the client's own
process and Python series), so code deep in the event plumbing counts without
every caller passing a registry down. Nothing else may live at module level.

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

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest, start_http_server

log = logging.getLogger(__name__)

# Request latencies: a fast read to a slow create; a Server-Sent Events stream lands in +Inf.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# The gateway (gateway.observe).
HTTP_REQUESTS = Counter(
    "brightrun_http_requests_total", "HTTP requests the gateway answered, by method, route template and status code",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "brightrun_http_request_duration_seconds", "Time from a request's arrival to its answer's end, by route template",
    ["method", "route", "status"], buckets=_LATENCY_BUCKETS,
)

# Every gRPC server (services.common.grpc's interceptor).
GRPC_REQUESTS = Counter(
    "brightrun_grpc_server_handled_total", "gRPC calls a service answered, by method and status code",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_DURATION = Histogram(
    "brightrun_grpc_server_handling_seconds", "Time a service took to answer a gRPC call, by method and status code",
    ["grpc_service", "grpc_method", "grpc_code"], buckets=_LATENCY_BUCKETS,
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

# job_svc.
JOBS = Gauge("brightrun_jobs", "Jobs by status, every user's together", ["status"])
QUEUE_WAIT = Histogram(
    "brightrun_job_queue_wait_seconds", "Time a job waited queued before a trainer agent took it",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)

# dataset_svc: rate(bytes_total) / rate(seconds_sum) is the validation throughput.
DATASET_VALIDATED_BYTES = Counter(
    "brightrun_dataset_validated_bytes_total", "Bytes of uploaded datasets read by validation"
)
DATASET_VALIDATION_DURATION = Histogram(
    "brightrun_dataset_validation_seconds", "Time one dataset's validation took (tokenizer load excluded)",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)

# Trainer agents (services.trainer_agent.telemetry_metrics): the training worker's metric points.
AGENT_STEPS = Counter("brightrun_agent_training_steps_total", "Optimizer steps the agent's workers reported", ["gpu_type"])


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
