"""One training attempt's worker process, as the agent sees it.

The worker speaks one JSON object a line on stdout (see ``worker``). The
agent reads those lines under a stall watchdog: a worker that reports no step
for too long is hung (a wedged GPU, a collective that never returns) and is
killed with its whole process group, whatever it started. Stopping asks for
a checkpoint first (SIGTERM); a worker with nothing to save yet is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator

from brightrun.job.v1 import job_pb2

# The worker's metrics line names -> MetricPoint fields, where they differ.
_POINT_FIELDS = {"grad_norm": "gradient_norm", "tokens_per_second": "throughput"}
_POINT_NAMES = (
    "epoch",
    "step",
    "training_loss",
    "learning_rate",
    "validation_loss",
    "perplexity",
    "samples_per_second",
    "gpu_utilization",
    "gpu_memory_gb",
)


def metric_point(job_id: str, line: dict) -> job_pb2.MetricPoint:
    """The MetricPoint of a worker's ``metrics`` line, stamped now; what the line lacks stays unset."""
    point = job_pb2.MetricPoint(job_id=job_id)
    point.timestamp.GetCurrentTime()
    for name in (*_POINT_NAMES, *_POINT_FIELDS):
        if line.get(name) is not None:
            setattr(point, _POINT_FIELDS.get(name, name), line[name])
    return point


class WorkerStalled(Exception):
    """The worker reported no step within its bound."""


class WorkerProcess:
    """A running worker process, read line by line under a stall watchdog."""

    def __init__(self, proc: asyncio.subprocess.Process, stall_seconds: float, startup_seconds: float):
        self._proc = proc
        self._stall_seconds = stall_seconds
        self._startup_seconds = startup_seconds
        self.reported_progress = False

    async def lines(self) -> AsyncIterator[dict]:
        """The worker's lines until it closes its output.

        Raises WorkerStalled when no metrics or checkpoint line comes within
        ``stall_seconds`` of the last (``startup_seconds`` before the first).
        """
        assert self._proc.stdout is not None
        bound = self._startup_seconds
        while True:
            try:
                raw = await asyncio.wait_for(self._proc.stdout.readline(), bound)
            except TimeoutError:
                raise WorkerStalled(f"stalled: no step completed in {bound:g}s") from None
            if not raw:
                return
            line = json.loads(raw)
            yield line
            # Counted from when the agent is ready for more: its own uploads are not the worker's stall.
            if line["type"] in ("metrics", "checkpoint"):
                self.reported_progress, bound = True, self._stall_seconds

    def stop(self) -> None:
        """Ask the worker to checkpoint the step under way and end. One that has
        reported nothing yet (loading the model) has nothing to save: it is killed."""
        if not self.reported_progress:
            self.kill()
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the worker's whole process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)


class Attempt:
    """The attempt under way on this agent: its job, its worker once started, and whether it must stop."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.stopping = False
        self._worker: WorkerProcess | None = None

    def attach(self, worker: WorkerProcess) -> None:
        self._worker = worker
        if self.stopping:  # asked before the worker existed
            worker.stop()

    def stop(self) -> None:
        self.stopping = True
        if self._worker is not None:
            self._worker.stop()


async def stop_when_set(stop: asyncio.Event, attempt: Attempt) -> None:
    """Stop ``attempt`` once ``stop`` is set (the agent shutting down)."""
    await stop.wait()
    attempt.stop()
