"""The trainer agent's training series from its worker's metric points: steps
counted from the attempt's plan, the newest point's rates while current, and
no GPU series at all without CUDA."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY, CollectorRegistry

from brightrun.job.v1 import job_pb2
from services.trainer_agent import training_metrics
from services.trainer_agent.training_metrics import TrainingGauges


def _scrape(gauges: TrainingGauges) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(gauges)
    return {s.name: s.value for family in registry.collect() for s in family.samples}


def _steps(gpu_type: str) -> float:
    return REGISTRY.get_sample_value("brightrun_agent_training_steps_total", {"gpu_type": gpu_type}) or 0.0


def test_a_cpu_attempt_exports_rates_and_steps_but_no_gpu_series(monkeypatch):
    clock = iter([100.0, 110.0, 120.0, 120.5])
    monkeypatch.setattr(training_metrics.time, "monotonic", lambda: next(clock))
    gauges, job = TrainingGauges(), str(uuid.uuid4())
    before = _steps("CPU-test")
    gauges.plan(job, resumed_from_step=10)
    gauges.observe(job_pb2.MetricPoint(job_id=job, step=15, throughput=800.0), "CPU-test")
    gauges.observe(job_pb2.MetricPoint(job_id=job, step=20, throughput=900.0), "CPU-test")
    assert _steps("CPU-test") - before == 10  # from the resumed step 10, not from 0
    exported = _scrape(gauges)
    assert exported == {"brightrun_agent_steps_per_second": 0.5, "brightrun_agent_tokens_per_second": 900.0}


def test_gpu_readings_are_exported_in_base_units_and_a_stale_point_disappears(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(training_metrics.time, "monotonic", lambda: now[0])
    gauges, job = TrainingGauges(), str(uuid.uuid4())
    gauges.plan(job, 0)
    now[0] = 4.0
    gauges.observe(job_pb2.MetricPoint(job_id=job, step=8, throughput=1.0, gpu_memory_gb=2.0, gpu_utilization=75.0), "H100")
    exported = _scrape(gauges)
    assert exported["brightrun_agent_gpu_memory_bytes"] == 2 * 1024**3
    assert exported["brightrun_agent_gpu_utilization_ratio"] == 0.75
    assert exported["brightrun_agent_steps_per_second"] == 2.0
    now[0] = 4.0 + training_metrics.CURRENT_SECONDS + 1
    assert _scrape(gauges) == {}
