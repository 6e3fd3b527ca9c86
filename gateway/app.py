"""The gateway's composition root: the Starlette app, its routes, and the
channels to the four services (opened on start-up, closed on shutdown)."""

from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from brightrun.artifact.v1.artifact_pb2_grpc import ArtifactServiceStub
from brightrun.billing.v1.billing_pb2_grpc import BillingServiceStub
from brightrun.dataset.v1.dataset_pb2_grpc import DatasetServiceStub
from brightrun.job.v1.job_pb2_grpc import JobServiceStub
from gateway.errors import EXCEPTION_HANDLERS
from gateway.guards import RequestGuard
from gateway.http import Stubs
from gateway import web_assets
from gateway.routes import billing, datasets, job_events, jobs, models
from services.common.config import Settings
from services.common.grpc import channel

# Lets in-flight calls finish when the gateway stops.
_CHANNEL_CLOSE_GRACE_S = 5.0


async def healthz(request: Request) -> JSONResponse:
    """Liveness, without authentication or service calls."""
    return JSONResponse({"status": "ok"})


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
    ``app.router.lifespan_context``) before sending requests.
    """
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
        channels = {name: channel(address) for name, address in addresses.items()}
        app.state.stubs = Stubs(**{name: stub_types[name](ch) for name, ch in channels.items()})
        try:
            yield
        finally:
            for ch in channels.values():
                await ch.close(grace=_CHANNEL_CLOSE_GRACE_S)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *datasets.ROUTES,
        *jobs.ROUTES,
        *job_events.ROUTES,
        *models.ROUTES,
        *billing.ROUTES,
        *web_assets.ROUTES,  # last: the dashboard at /, never shadowing an API route
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestGuard, max_body_bytes=settings.max_request_body_bytes)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
