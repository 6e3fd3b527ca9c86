"""What the sync and the async client share, free of I/O: the retry policy,
reading answers, and the job event stream's frames and position.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any

import httpx

from brightrun_client.errors import BrightRunError
from brightrun_client.models import Job, MetricPoint

# Statuses the platform answers while it is overloaded (429) or a service or its database is away (503).
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a request answered 429 or 503, or that could not connect.

    The wait before retry ``n`` (0-based) is the answer's ``Retry-After`` when
    it has one, else ``backoff * 2**n`` with up to 10 % jitter; either way at
    most ``max_delay`` seconds. After ``max_retries`` retries the last answer's
    error is raised.
    """

    max_retries: int = 5
    backoff: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        base = self.backoff * 2**attempt
        return min(base + random.uniform(0, base / 10), self.max_delay)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def should_retry(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def error_of(response: httpx.Response) -> BrightRunError:
    """The error an answer that is not a success stands for (its body read)."""
    return BrightRunError.from_body(response.status_code, _json_or_text(response), retry_after_seconds(response))


def read_body(response: httpx.Response) -> dict:
    """A success body (``{success, data, ...}``); raises BrightRunError for any other answer."""
    if not response.is_success:
        raise error_of(response)
    body = _json_or_text(response)
    if not isinstance(body, dict):
        raise BrightRunError(response.status_code, "The answer is not a JSON object", str(body)[:500])
    return body


@dataclass
class SseFrame:
    event: str
    data: str
    id: str | None


class SseDecoder:
    """Server-Sent Events frames from a stream's lines (the WHATWG rules the gateway's stream needs)."""

    def __init__(self) -> None:
        self._event, self._data, self._id = "", [], None

    def feed(self, line: str) -> SseFrame | None:
        """One line, without its line ending; returns the frame a blank line completes."""
        if not line:
            frame = None
            if self._data:
                frame = SseFrame(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data, self._id = "", [], None
            return frame
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None


JobEvent = Job | MetricPoint


class JobEventCursor:
    """Where a job's event stream is: the last metric step seen, whether the job has ended, and the error
    frame the last connection ended with.

    Decides what a reconnect asks for (``Last-Event-ID``) and drops a metric
    point the stream already delivered.
    """

    def __init__(self, after_step: int = 0) -> None:
        self.last_step = after_step
        self.finished = False
        self.error: BrightRunError | None = None

    def headers(self) -> dict[str, str]:
        return {"Last-Event-ID": str(self.last_step)} if self.last_step else {}

    def accept(self, frame: SseFrame) -> JobEvent | None:
        """The frame as a Job or MetricPoint; None for one to skip.

        An ``error`` frame (the gateway's watch failed; it closes the stream
        next) is kept in ``error``: the client reconnects, and a reconnect to a
        job that is gone is then answered with the HTTP error itself.
        """
        data = json.loads(frame.data)
        if frame.event == "error":
            self.error = BrightRunError.from_body(None, data)
            return None
        if frame.event == "metric":
            point = MetricPoint.from_dict(data)
            if point.step <= self.last_step:
                return None
            self.last_step = point.step
            return point
        if frame.event == "status":
            job = Job.from_dict(data)
            self.finished = job.finished
            return job
        return None
