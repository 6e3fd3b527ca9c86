"""The gateway's composition root: the Starlette app, its routes, and the
channels to the four services (opened on start-up, closed on shutdown)."""

from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from brightrun.artifact.v1.artifact_pb2_grpc import ArtifactServiceStub
from brightrun.billing.v1.billing_pb2_grpc import BillingServiceStub
from brightrun.dataset.v1.dataset_pb2_grpc import DatasetServiceStub
from brightrun.job.v1.job_pb2_grpc import JobServiceStub
from gateway import openapi, web_assets
from gateway.auth import Authenticate, TokenVerifier
from gateway.errors import EXCEPTION_HANDLERS
from gateway.guards import RequestGuard
from gateway.http import Stubs
from gateway.observe import ObserveRequests, metrics_route
from gateway.routes import billing, datasets, job_events, jobs, models, webhooks
from services.common import identity
from services.common.config import Settings
from services.common.grpc import channel

# Every /api route, declared once: served, checked and documented from these.
ENDPOINTS = (
    *datasets.ENDPOINTS, *jobs.ENDPOINTS, *job_events.ENDPOINTS, *models.ENDPOINTS, *billing.ENDPOINTS,
    *webhooks.ENDPOINTS,
)
# Lets in-flight calls finish when the gateway stops.
_CHANNEL_CLOSE_GRACE_S = 5.0


async def healthz(request: Request) -> JSONResponse:
    """Liveness, without authentication or service calls."""
    return JSONResponse({"status": "ok"})


def _cors(origins: tuple[str, ...]) -> Middleware:
    """Browser access from ``origins``: the headers the API reads and the ones a client needs to see."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "X-Request-Id"],
        expose_headers=["Retry-After", "X-Request-Id"],
        max_age=600,
    )


class _Gateway(Starlette):
    """The app with :class:`ObserveRequests` outermost, around Starlette's server-error handling too, so
    that an unexpected error's log line and 500 answer carry the request id, and the 500 is counted."""

    def build_middleware_stack(self) -> ASGIApp:
        return ObserveRequests(super().build_middleware_stack(), routes=self.routes)


def create_app(
    settings: Settings,
    *,
    dataset_addr: str | None = None,
    job_addr: str | None = None,
    artifact_addr: str | None = None,
    billing_addr: str | None = None,
) -> Starlette:
    """The gateway app; each ``*_addr`` overrides the matching address in ``settings``.

    Channels are opened by the app's lifespan, so run it under a server (or
    ``app.router.lifespan_context``) before sending requests. Raises
    ConfigError when the settings give no way to verify bearer tokens.
    """
    verifier = TokenVerifier.from_settings(settings)
    identity.install(settings.internal_token_secret)  # the services' credential for each verified caller
    addresses = {
        "datasets": dataset_addr or settings.dataset_addr,
        "jobs": job_addr or settings.job_addr,
        "artifacts": artifact_addr or settings.artifact_addr,
        "billing": billing_addr or settings.billing_addr,
    }
    stub_types = {
        "datasets": DatasetServiceStub,
        "jobs": JobServiceStub,
        "artifacts": ArtifactServiceStub,
        "billing": BillingServiceStub,
    }

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # grpc.aio channels bind to the running loop, so they are made here rather than in create_app.
        channels = {name: channel(address, settings.grpc_tls) for name, address in addresses.items()}
        app.state.stubs = Stubs(**{name: stub_types[name](ch) for name, ch in channels.items()})
        try:
            yield
        finally:
            for ch in channels.values():
                await ch.close(grace=_CHANNEL_CLOSE_GRACE_S)

    # With its own metrics port, the gateway keeps /metrics off the API port, which an Ingress exposes.
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *([] if settings.metrics_port else [metrics_route()]),
        *openapi.routes(ENDPOINTS),
        *(endpoint.route() for endpoint in ENDPOINTS),
        *web_assets.ROUTES,  # last: the dashboard at /, never shadowing an API route
    ]
    middleware = [
        Middleware(RequestGuard, max_body_bytes=settings.max_request_body_bytes),
        Middleware(Authenticate, verifier=verifier),
    ]
    if settings.cors_origins:
        middleware.insert(0, _cors(settings.cors_origins))
    app = _Gateway(
        routes=routes,
        middleware=middleware,
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
