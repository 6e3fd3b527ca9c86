"""``python -m gateway``: serve the HTTP API on BRIGHTRUN_HTTP_HOST:BRIGHTRUN_HTTP_PORT."""

from __future__ import annotations

import logging

import uvicorn

from gateway.app import create_app
from services.common.config import read_settings

# Open event streams are cut after this long on SIGTERM so that shutdown stays bounded.
_GRACEFUL_SHUTDOWN_S = 10


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = read_settings()
    app = create_app(settings)
    # uvicorn handles SIGTERM/SIGINT: stop accepting, finish requests, run the lifespan's shutdown.
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        http="httptools",
        log_level="info",
    )


if __name__ == "__main__":
    main()
