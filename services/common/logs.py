"""Logging of every BrightRun process: one setup, called first by each ``__main__``,
and the context (request id, trace id, job or dataset id) each line carries.

Two formats, chosen by ``BRIGHTRUN_LOG_FORMAT``:

- ``human`` (the default, what ``make up`` / ``make demo`` write to their log
  files): ``time LEVEL logger: message``, plus the request id when there is one.
- ``json``: one JSON object a line, for a log collector (the Kubernetes
  manifests' choice): ``timestamp`` (UTC, ISO 8601), ``level``, ``service``,
  ``logger``, ``message``, ``request_id``, ``trace_id`` (the W3C
  ``traceparent``'s trace id when the request carried one, else empty), and
  ``job_id`` / ``dataset_id`` / ``exception`` when there is one. Progress
  bars are turned off and warnings become lines, so that every line parses.

The ids come from context variables that the gateway's middleware and the
services' gRPC interceptor set for each request (:func:`request_context`), so
code below them logs as before. A job or dataset id comes from the call's
``extra=`` (``log.info(..., extra={"job_id": id})``) or from :func:`bind`, which
the gateway does for a route about one job or dataset and a service's runtime
for the event each consumer handles.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from typing import TextIO
from datetime import datetime, timezone

FORMATS = ("human", "json")
# Header and gRPC metadata key of the request id (metadata keys are lower case).
REQUEST_ID_HEADER = "x-request-id"
TRACEPARENT_HEADER = "traceparent"
# A client's X-Request-Id is kept when it is this short and of these characters; any other is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
# W3C Trace Context: version-traceid-parentid-flags, the trace id 32 lower-case hex digits, not all zero.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
# Ids a line carries besides the message, each a context variable of the same name.
_FIELDS = ("request_id", "trace_id", "job_id", "dataset_id")
_CONTEXT: dict[str, contextvars.ContextVar[str]] = {
    name: contextvars.ContextVar(f"brightrun_log_{name}", default="") for name in _FIELDS
}
# tqdm's and the Hugging Face libraries' switches for their progress bars.
_PROGRESS_BARS_OFF = ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")
_HUMAN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def current(name: str) -> str:
    """The context's ``request_id``, ``trace_id``, ``job_id`` or ``dataset_id`` ("" when unset)."""
    return _CONTEXT[name].get()


@contextlib.contextmanager
def bind(**ids: str) -> Iterator[None]:
    """Within the block, every line logged in this context carries ``ids`` (``job_id``, ``dataset_id``, ...)."""
    tokens = [(_CONTEXT[name], _CONTEXT[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def request_id_from(value: str | None) -> str:
    """``value`` when it is a usable request id (up to 128 characters of letters, digits and ``._:/+=-``),
    else a fresh one: a client's id is echoed, never trusted to be safe in a header or a log."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def trace_id_from(traceparent: str | None) -> str:
    """The trace id of a W3C ``traceparent`` value; "" when there is none or it is malformed."""
    found = _TRACEPARENT.fullmatch((traceparent or "").strip())
    if found is None or found.group(1) == "0" * 32:
        return ""
    return found.group(1)


def request_context(request_id: str | None, traceparent: str | None) -> contextlib.AbstractContextManager:
    """Bind a request's ids for its handling: ``request_id`` as :func:`request_id_from` keeps or makes
    it, the trace id from ``traceparent`` (a span inside binds its own, ``services.common.tracing``)."""
    return bind(request_id=request_id_from(request_id), trace_id=trace_id_from(traceparent))


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """gRPC metadata that carries this context's request id onward to another service (the trace goes
    with it as ``services.common.tracing.headers``)."""
    return ((REQUEST_ID_HEADER, request_id),) if (request_id := current("request_id")) else ()


class _ContextFilter(logging.Filter):
    """Stamps each record with the context's ids, unless the call's ``extra=`` gave one."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in _FIELDS:
            if not getattr(record, name, ""):
                setattr(record, name, _CONTEXT[name].get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module's docstring for its keys)."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
            "trace_id": getattr(record, "trace_id", ""),
        }
        for name in ("job_id", "dataset_id"):
            if value := getattr(record, name, ""):
                line[name] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["exception"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    """The readable line ``make up`` writes, with ``[request <id>]`` when the line has one."""

    def __init__(self) -> None:
        super().__init__(_HUMAN)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", "")
        if not request_id:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} [request {request_id}]{newline}{rest}"


def log_format(env: Mapping[str, str] | None = None) -> str:
    """``BRIGHTRUN_LOG_FORMAT`` (``human`` when unset); raises SystemExit naming the variable for another value."""
    env = os.environ if env is None else env
    chosen = (env.get("BRIGHTRUN_LOG_FORMAT") or "human").strip().lower()
    if chosen not in FORMATS:
        raise SystemExit(f"BRIGHTRUN_LOG_FORMAT={chosen!r} must be one of {', '.join(FORMATS)}")
    return chosen


def handler(service: str, chosen: str, stream: TextIO) -> logging.Handler:
    """A handler that writes ``chosen`` format lines (``human`` or ``json``) to ``stream``, context ids included."""
    out = logging.StreamHandler(stream)
    out.setFormatter(JsonFormatter(service) if chosen == "json" else HumanFormatter())
    out.addFilter(_ContextFilter())
    return out


def configure(service: str, *, level: int = logging.INFO, env: Mapping[str, str] | None = None) -> None:
    """Route every logger of this process (libraries' included) to stderr in the chosen format.

    Call once, first thing in a process's ``__main__``; ``service`` names the
    process in JSON lines (``gateway``, ``job_svc``, ``trainer_agent``, ...).
    """
    chosen = log_format(env)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(service, chosen, sys.stderr))
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warnings.warn becomes a line of the chosen format
    if chosen == "json":
        # Progress bars redraw one line with carriage returns: none in a JSON stream, here or in the
        # processes this one starts (a trainer agent's workers inherit its environment).
        for variable in _PROGRESS_BARS_OFF:
            os.environ.setdefault(variable, "1")
