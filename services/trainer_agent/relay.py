"""The agent's way out, through outages: events published to NATS in the
order they happened, and calls to the object store, each retried with backoff
while training goes on.

A NATS outage must not lose a metric point or reorder a job's facts (a
completion ahead of its last steps), and must not stop the worker: events
wait in order in memory and go out when NATS is back. Every event id is
deterministic, so a publish that reached the stream before its answer was
lost is dropped as a duplicate when sent again.

Events go out as asynchronous JetStream publishes, up to ``IN_FLIGHT`` of
them unanswered at once (a step's metrics do not wait a round trip each),
in order on one connection, and count as published in order, as their
answers come. When one fails, the ones after it are sent again from it,
after a backoff; those the stream had already stored are dropped as
duplicates, so order is kept unless the connection broke between a lost
publish and a later one it delivered.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from brightrun.events.v1 import events_pb2
from services.common import tracing
from services.common.cancelling import cancel_and_wait

log = logging.getLogger(__name__)
T = TypeVar("T")

# Backoff between tries while a dependency is away: from FIRST, doubling, at most MAX.
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
# Publishes sent and not yet answered, at most; and how long one answer is awaited.
IN_FLIGHT = 256
ANSWER_TIMEOUT_S = 5.0


def backoff(tries: int) -> float:
    """Seconds to wait after ``tries`` failed tries."""
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(tries - 1, 0))


class EventRelay:
    """Publishes events oldest first, up to ``in_flight`` at once, retrying from the oldest unanswered until NATS takes it.

    ``send`` never blocks or fails; ``wait_published`` lets a caller hold a
    step that must follow earlier events (a checkpoint upload, an ack).
    """

    def __init__(self, js, *, in_flight: int = IN_FLIGHT):
        self._js = js
        self._in_flight = in_flight
        # Each event with the headers it is published with: its id, and the trace it was sent in.
        self._queue: collections.deque[tuple[events_pb2.Event, dict[str, str]]] = collections.deque()
        self._sent = 0  # events handed to send()
        self._published = 0  # of those, published, in order
        self._queued = asyncio.Event()  # wakes the publishing task
        self._changed = asyncio.Condition()  # wakes those waiting for a mark
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="agent-event-relay")

    async def stop(self, timeout: float) -> bool:
        """Publish what waits for at most ``timeout`` seconds, then stop; True when nothing was left."""
        drained = await self.wait_published(self._sent, timeout)
        if self._task is not None:
            await cancel_and_wait(self._task)
        if not drained:
            log.error("%d events could not be published before the agent stopped", self._sent - self._published)
        return drained

    def send(self, event: events_pb2.Event) -> int:
        """Queue ``event``; returns its mark for :meth:`wait_published`. It is published with the
        ``traceparent`` of the span sending it (the assignment's), so its consumers continue that trace."""
        headers = {"Nats-Msg-Id": event.event_id}
        if traceparent := tracing.current_traceparent():
            headers[tracing.TRACEPARENT] = traceparent
        self._queue.append((event, headers))
        self._sent += 1
        self._queued.set()
        return self._sent

    @property
    def mark(self) -> int:
        """The mark of the newest event sent."""
        return self._sent

    @property
    def waiting(self) -> int:
        """Events queued and not yet published."""
        return self._sent - self._published

    async def wait_published(self, mark: int, timeout: float | None = None) -> bool:
        """Wait until every event up to ``mark`` is published; False when ``timeout`` passed first."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._published >= mark), timeout)
            except TimeoutError:
                return False
        return True

    async def _run(self) -> None:
        tries = 0
        while True:
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
                continue
            # The answers of the oldest events, in order; the queue keeps each event until its answer came.
            answers: collections.deque[asyncio.Future] = collections.deque()
            try:
                while self._queue:
                    while len(answers) < min(self._in_flight, len(self._queue)):
                        event, headers = self._queue[len(answers)]
                        answers.append(await self._js.publish_async(event.type, event.SerializeToString(),
                                                                    headers=headers))
                    await asyncio.wait_for(answers[0], ANSWER_TIMEOUT_S)
                    answers.popleft()
                    self._queue.popleft()
                    self._published += 1
                    if tries:
                        log.info("NATS is back after %d failed tries; publishing the %d waiting events",
                                 tries, self.waiting)
                        tries = 0
                    async with self._changed:
                        self._changed.notify_all()
            except Exception as exc:  # NATS away or reconnecting: the events wait, training goes on
                for answer in answers:
                    if answer.done() and not answer.cancelled():
                        answer.exception()  # retrieved: it is sent again
                    answer.cancel()
                tries += 1
                if tries == 1:
                    log.warning("publishing %s failed (%r); %d events wait, retrying",
                                self._queue[0][0].type, exc, self.waiting)
                await asyncio.sleep(backoff(tries))


class Permanent(Exception):
    """An error no retry cures (the object store refusing a grant): :func:`retry` raises it at once."""


async def retry(call: Callable[[], Awaitable[T]], what: str, *, deadline_s: float) -> T:
    """``await call()``, retrying with backoff for up to ``deadline_s`` seconds (a
    dependency restarting); raises the last error after that, a :class:`Permanent` one at once."""
    give_up = time.monotonic() + deadline_s
    tries = 0
    while True:
        try:
            return await call()
        except Permanent:
            raise
        except Exception as exc:
            tries += 1
            if time.monotonic() + backoff(tries) > give_up:
                raise
            if tries == 1:
                log.warning("%s failed (%s); retrying for up to %.0fs", what, exc, deadline_s)
            await asyncio.sleep(backoff(tries))


async def retry_io(call: Callable[[], T], what: str, *, deadline_s: float) -> T:
    """:func:`retry` for a blocking ``call`` (boto3), run in a thread."""
    return await retry(lambda: asyncio.to_thread(call), what, deadline_s=deadline_s)
