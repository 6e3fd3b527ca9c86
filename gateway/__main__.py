"""``python -m gateway``: serve the HTTP API on BRIGHTRUN_HTTP_HOST:BRIGHTRUN_HTTP_PORT.

Start-up problems (a bad setting, no way to verify tokens, the HTTP or
metrics port in use) end the
process with one line ``brightrun: cannot start: ...`` and exit status 78, as
every service's (``services.common.process.start_process``). The gateway waits
for no endpoint: its gRPC channels connect when a request needs them.
"""

from __future__ import annotations

import socket

import uvicorn

from gateway.app import create_app
from services.common.process import settled, start_process, startup_errors
from services.common.startup import StartupError

# Open event streams are cut after this long on SIGTERM so that shutdown stays bounded.
_GRACEFUL_SHUTDOWN_S = 10


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for uvicorn to serve on; StartupError naming BRIGHTRUN_HTTP_PORT when
    it is taken. Bound here, not by uvicorn, so that a taken port is the one line, not uvicorn's log and exit 1."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartupError(
            f"cannot listen on {host}:{port} (BRIGHTRUN_HTTP_HOST, BRIGHTRUN_HTTP_PORT): {error.strerror}; "
            "stop the process holding that port or set BRIGHTRUN_HTTP_PORT to a free port"
        ) from None
    return sock


def main() -> None:
    settings = start_process("gateway", lambda _: ())  # without a metrics port, /metrics is on the API port
    with startup_errors():
        app = create_app(settings)  # a ConfigError names the gateway's own settings (token verification)
        sock = listen(settings.http_host, settings.http_port)
    # uvicorn handles SIGTERM/SIGINT: stop accepting, finish requests, run the lifespan's shutdown.
    server = uvicorn.Server(uvicorn.Config(
        app,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        http="httptools",
        log_level="info",
        log_config=None,  # uvicorn's loggers go through services.common.logs like every other
    ))
    settled("gateway")
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
