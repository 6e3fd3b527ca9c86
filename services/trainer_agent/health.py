"""A trainer agent's HTTP health endpoint, for the kubelet's probes.

Served from the agent's own event loop (asyncio streams, no web framework)
on BRIGHTRUN_AGENT_HEALTH_PORT; unset, there is none (the embedded default
runs agents side by side). Two answers, JSON bodies, 200 or 503:

- ``GET /livez``: answered by the event loop that runs the agent, so the
  answer itself is the heartbeat: a loop that is blocked (a synchronous call
  that hangs) answers nothing within the probe's ``timeoutSeconds`` and the
  kubelet restarts the pod. A ticking task beside it would prove no more,
  since it runs on the same loop. A NATS outage is no reason to restart: the
  agent rides it out while its worker trains on.
- ``GET /healthz`` (readiness): 200 while the agent holds a live NATS
  connection, 503 otherwise, so an agent cut off from its assignments shows
  as not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Mapping

PORT_VARIABLE = "BRIGHTRUN_AGENT_HEALTH_PORT"
# A probe sends a request line and a few headers; anything slower or bigger is dropped.
_READ_SECONDS = 5.0
_MAX_LINE = 8192


def health_port(env: Mapping[str, str] | None = None) -> int | None:
    """BRIGHTRUN_AGENT_HEALTH_PORT as a port, None when unset; SystemExit naming it when it is not a port."""
    raw = (os.environ if env is None else env).get(PORT_VARIABLE, "")
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"{PORT_VARIABLE}={raw!r}: must be a port number (1-65535), or unset for no health endpoint")
    return int(raw)


class AgentHealth:
    """The HTTP server; ``connected`` tells whether the agent's NATS connection is live."""

    def __init__(self, connected: Callable[[], bool]):
        self._connected = connected
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Serve on ``host:port`` (0: any free port); returns the port."""
        self._server = await asyncio.start_server(self._answer, host, port, limit=_MAX_LINE)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_request(reader), _READ_SECONDS)
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        method, path = request
        if method != "GET":
            status, body = 405, {"error": f"{method} is not allowed; probes use GET"}
        elif path == "/livez":
            status, body = 200, {"alive": True}
        elif path == "/healthz":
            connected = bool(self._connected())
            status, body = (200 if connected else 503), {"nats_connected": connected}
        else:
            status, body = 404, {"error": f"no {path}; the agent answers /livez and /healthz"}
        payload = json.dumps(body).encode()
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and path of one HTTP/1.x request, its headers read and ignored."""
    parts = (await reader.readuntil(b"\r\n")).decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("not an HTTP request line")
    while (await reader.readuntil(b"\r\n")) != b"\r\n":
        pass
    return parts[0], parts[1].split("?", 1)[0]
