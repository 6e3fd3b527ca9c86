"""``python -m gateway``: serve the HTTP API on BRIGHTRUN_HTTP_HOST:BRIGHTRUN_HTTP_PORT."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from services.common import logs, metrics, tracing
from services.common.config import read_settings

# Open event streams are cut after this long on SIGTERM so that shutdown stays bounded.
_GRACEFUL_SHUTDOWN_S = 10


def main() -> None:
    logs.configure("gateway")
    tracing.configure("gateway")
    settings = read_settings()
    if settings.metrics_port:  # else at /metrics on the API port
        metrics.serve(settings.metrics_port, settings.metrics_host)
    app = create_app(settings)
    # uvicorn handles SIGTERM/SIGINT: stop accepting, finish requests, run the lifespan's shutdown.
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        http="httptools",
        log_level="info",
        log_config=None,  # uvicorn's loggers go through services.common.logs like every other
    )


if __name__ == "__main__":
    main()
