"""The trainer agent's Prometheus series, from the metric points its worker reports.

``brightrun_agent_training_steps_total`` counts steps (``rate()`` of it is
steps per second over any window). The gauges show the newest point while
it is current, :data:`CURRENT_SECONDS` after it: steps and tokens per second,
and, only when the worker runs on CUDA, GPU memory and utilisation. An idle
agent, and a CPU agent's GPU series, export nothing rather than a stale value
or a zero that would read as an idle GPU.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from brightrun.job.v1 import job_pb2

# A point older than this no longer describes what the agent is doing.
CURRENT_SECONDS = 300.0
_GIB = 1 << 30
AGENT_STEPS = Counter("brightrun_agent_training_steps_total", "Optimizer steps the agent's workers reported", ["gpu_type"])


@dataclass(frozen=True)
class _Reading:
    at: float  # time.monotonic() when the point came
    job_id: str
    step: int
    values: dict[str, float]


class TrainingGauges(Collector):
    """Keeps the newest metric point of this agent's workers and exports it on scrape."""

    _GAUGES = {
        "steps_per_second": ("brightrun_agent_steps_per_second", "Optimizer steps per second between the last two points"),
        "tokens_per_second": ("brightrun_agent_tokens_per_second", "Tokens the worker read per second (every unpadded token)"),
        "gpu_memory_bytes": ("brightrun_agent_gpu_memory_bytes", "GPU memory in use on the worker's device; absent without CUDA"),
        "gpu_utilization": ("brightrun_agent_gpu_utilization_ratio", "Fraction of the last sample period the GPU was busy; absent without CUDA"),
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()  # scrapes come from the metrics server's thread
        self._last: _Reading | None = None
        self._gpu_type = ""

    def plan(self, job_id: str, resumed_from_step: int) -> None:
        """An attempt of ``job_id`` is about to train from ``resumed_from_step``: its first point counts from there."""
        with self._lock:
            self._last = _Reading(time.monotonic(), job_id, resumed_from_step, {})

    def observe(self, point: job_pb2.MetricPoint, gpu_type: str) -> None:
        """Take one point a worker reported for the job it trains on ``gpu_type``; the steps since the
        previous point (or the attempt's plan) of the same job are counted."""
        now = time.monotonic()
        values: dict[str, float] = {}
        if point.HasField("throughput"):
            values["tokens_per_second"] = point.throughput
        if point.HasField("gpu_memory_gb"):
            values["gpu_memory_bytes"] = point.gpu_memory_gb * _GIB
        if point.HasField("gpu_utilization"):
            values["gpu_utilization"] = point.gpu_utilization / 100.0
        with self._lock:
            last = self._last
            if last is not None and last.job_id == point.job_id and point.step > last.step:
                AGENT_STEPS.labels(gpu_type).inc(point.step - last.step)
                if now > last.at:
                    values["steps_per_second"] = (point.step - last.step) / (now - last.at)
            if last is not None and point.step == last.step and last.job_id == point.job_id:
                return  # the same step again (a validation point): keep the pace measured at its first report
            self._last = _Reading(now, point.job_id, point.step, values)
            self._gpu_type = gpu_type

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            last, gpu_type = self._last, self._gpu_type
        current = last is not None and time.monotonic() - last.at <= CURRENT_SECONDS
        for key, (name, documentation) in self._GAUGES.items():
            family = GaugeMetricFamily(name, documentation, labels=["gpu_type"])
            if current and key in last.values:
                family.add_metric([gpu_type], last.values[key])
            yield family


TRAINING = TrainingGauges()
REGISTRY.register(TRAINING)
