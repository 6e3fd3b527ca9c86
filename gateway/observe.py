"""What the gateway tells its operator about each request: the request id, the
trace it belongs to, and Prometheus series by route template.

:class:`ObserveRequests` keeps a client's ``X-Request-Id`` (or makes one),
answers it in the response's ``X-Request-Id`` header, and handles the request
in a log context with that id and the trace of its server span (continuing
a client's ``traceparent`` and ``tracestate``, see ``services.common.tracing``), which
``services.common.grpc.as_user`` sends on to the services, and the job or
dataset id of a route about one (``/api/jobs/{id}...``). It counts and times
each request by method, route template (``/api/jobs/{id}``: never a raw path,
whose ids would make a series per job) and status code. ``GET /metrics``
(:func:`metrics_route`) serves them without authentication, for Prometheus.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common import logs, metrics, tracing

# The route label of a request no route matched.
UNMATCHED = "unmatched"
# Paths whose next segment is the id of a job or a dataset (``/api/jobs/{id}...``): the request's log lines carry it.
_PATH_IDS = {"/api/jobs": "job_id", "/api/datasets": "dataset_id"}
HTTP_REQUESTS = Counter(
    "brightrun_http_requests_total", "HTTP requests the gateway answered, by method, route template and status code",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "brightrun_http_request_duration_seconds", "Time from a request's arrival to its answer's end, by route template",
    ["method", "route", "status"], buckets=metrics.LATENCY_BUCKETS,
)


class ObserveRequests:
    """ASGI middleware around the whole app (``gateway.app`` puts it outside Starlette's server-error
    handling); ``routes`` are the app's, to name each request's route template."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]):
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        sent = headers.get(logs.REQUEST_ID_HEADER.encode())
        started, status = time.monotonic(), 500  # an exception that escapes becomes the server error's 500
        # OTel's propagator reads the client's trace context (traceparent, tracestate) from them.
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers.items()}
        with logs.request_context(sent.decode("latin-1") if sent else None, carrier.get(logs.TRACEPARENT_HEADER)), \
                logs.bind(**_subject_ids(scope["path"])), \
                tracing.span(scope["method"], kind=SpanKind.SERVER, carrier=carrier,
                             attributes={"http.request.method": scope["method"]}) as span:
            request_id = logs.current("request_id").encode()

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id)]}
                await send(message)

            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = self.route_of(scope)
                labels = (scope["method"], route, str(status))
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                HTTP_REQUESTS.labels(*labels).inc()
                HTTP_DURATION.labels(*labels).observe(time.monotonic() - started)

    def route_of(self, scope: Scope) -> str:
        """The path template of the route that served ``scope`` (one that matched the path but not the
        method answers 405 and is named too), :data:`UNMATCHED` for none. Starlette's router leaves the route
        it chose in the scope; a request answered before routing (a guard's refusal, a CORS preflight) is
        matched here."""
        chosen = scope.get("route")
        if chosen is not None:
            return getattr(chosen, "path", UNMATCHED)
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", UNMATCHED)
            if match == Match.PARTIAL and partial is None:
                partial = getattr(route, "path", UNMATCHED)
        return partial or UNMATCHED


def _subject_ids(path: str) -> dict[str, str]:
    """``job_id`` or ``dataset_id`` for a path about one job or dataset (``/api/jobs/{id}...``) whose id is
    a UUID, read from the path itself: the request's log lines carry it from its start, before routing."""
    parts = path.split("/", 4)
    field = _PATH_IDS.get("/".join(parts[:3])) if len(parts) > 3 else None
    try:
        return {field: str(uuid.UUID(parts[3]))} if field else {}
    except ValueError:
        return {}


async def _metrics(request: Request) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


def metrics_route() -> Route:
    """``GET /metrics``: this gateway's series for Prometheus. Unauthenticated, like ``/healthz``; keep it off
    the public ingress (or scrape ``BRIGHTRUN_METRICS_PORT`` instead)."""
    return Route("/metrics", _metrics, methods=["GET"])
