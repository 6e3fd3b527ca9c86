"""A real local HTTP server whose answers a test scripts, for the client's unit tests (the ``server`` fixture)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        seen = Seen(self.command, url.path, {k: v[-1] for k, v in parse_qs(url.query).items()},
                    {k.lower(): v for k, v in self.headers.items()}, body)
        server: ScriptedServer = self.server.scripted
        server.requests.append(seen)
        answer = server.respond(seen, self)
        if answer is None:  # the script wrote (or broke off) the answer itself
            self.close_connection = True
            return
        payload = json.dumps(answer.body).encode() if answer.body is not None else b""
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class ScriptedServer:
    """``respond(seen, handler)`` returns an Answer, or None after writing to ``handler.wfile`` itself."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.respond: Callable[[Seen, BaseHTTPRequestHandler], Answer | None] = lambda seen, h: Answer(404, {})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._http.scripted = self
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def ok(data: object, **extra) -> Answer:
    return Answer(200, {"success": True, "data": data, **extra})


def write_events(handler: BaseHTTPRequestHandler, frames: list[str], *, complete: bool) -> None:
    """A 200 text/event-stream of ``frames`` in chunked encoding; without ``complete`` the connection is
    broken off before the terminating chunk, as when a proxy or the gateway dies mid-stream."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for frame in frames:
        data = frame.encode()
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        handler.wfile.flush()
    if complete:
        handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def metric_frame(step: int, loss: float = 1.0) -> str:
    return f"event: metric\nid: {step}\ndata: {json.dumps({'step': step, 'training_loss': loss})}\n\n"


def status_frame(status: str, step: int = 0, total: int = 3) -> str:
    job = {"id": "job-1", "status": status, "current_step": step, "total_steps": total}
    return f"event: status\ndata: {json.dumps(job)}\n\n"
