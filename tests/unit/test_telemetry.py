"""GPU telemetry on metric points: the fields a reading gives, and what a
missing or failing reader leaves out. The NVML reader itself needs a GPU."""

from __future__ import annotations

import pytest
import torch

from services.trainer_agent.attempt import metric_point
from services.trainer_agent.telemetry import GpuReading, default_gpu_reader, gpu_fields


def test_a_reading_gives_utilization_in_percent_and_memory_in_gib():
    reading = GpuReading(utilization_percent=87, memory_used_bytes=40 * 1024**3 + 512 * 1024**2)
    assert gpu_fields(lambda: reading) == {"gpu_utilization": 87.0, "gpu_memory_gb": 40.5}


def test_what_the_source_cannot_tell_is_left_out():
    # torch's allocator knows its memory but not the utilisation.
    assert gpu_fields(lambda: GpuReading(None, 3 * 1024**3)) == {"gpu_memory_gb": 3.0}


def test_no_reader_no_reading_or_a_failing_reader_gives_no_fields():
    def broken() -> GpuReading:
        raise RuntimeError("NVML: GPU is lost")

    assert gpu_fields(None) == {}
    assert gpu_fields(lambda: None) == {}
    assert gpu_fields(broken) == {}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU case")
def test_without_cuda_there_is_no_reader():
    assert default_gpu_reader() is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_reader_sees_memory_torch_holds():
    held = torch.empty(256 * 1024**2, dtype=torch.uint8, device="cuda")
    fields = gpu_fields(default_gpu_reader())
    assert fields["gpu_memory_gb"] >= 0.25
    assert 0 <= fields.get("gpu_utilization", 0) <= 100
    del held


def test_every_field_of_a_workers_metrics_line_reaches_the_metric_point():
    line = {
        "type": "metrics",
        "epoch": 2,
        "step": 17,
        "total_steps": 40,
        "training_loss": 1.25,
        "learning_rate": 1e-4,
        "grad_norm": 0.5,
        "tokens_per_second": 900.0,
        "samples_per_second": 12.0,
        "gpu_utilization": 95.0,
        "gpu_memory_gb": 20.25,
    }
    point = metric_point("job-1", line)
    assert (point.job_id, point.epoch, point.step) == ("job-1", 2, 17)
    assert (point.training_loss, point.learning_rate, point.gradient_norm) == (1.25, 1e-4, 0.5)
    assert (point.throughput, point.samples_per_second) == (900.0, 12.0)
    assert (point.gpu_utilization, point.gpu_memory_gb) == (95.0, 20.25)
    assert point.HasField("timestamp")
    assert not point.HasField("validation_loss") and not point.HasField("perplexity")


def test_a_validation_line_sets_only_what_it_carries():
    line = {"type": "metrics", "epoch": 1, "step": 10, "validation_loss": 0.7, "perplexity": 2.0}
    point = metric_point("job-1", line)
    assert (point.validation_loss, point.perplexity) == (0.7, 2.0)
    assert not point.HasField("gradient_norm") and not point.HasField("gpu_memory_gb")
