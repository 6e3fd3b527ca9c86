"""GPU utilisation and memory for each metric point, read through NVML.

NVML (the ``pynvml`` module of nvidia-ml-py) sees the whole device: its
utilisation over the last sample period and every byte allocated on it,
whoever allocated it. Without NVML, torch still knows the memory its own
caching allocator holds, but not the utilisation. Without CUDA there is
nothing to report, and a metric point carries no GPU field at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_GB = 1024**3


@dataclass(frozen=True)
class GpuReading:
    """One device at one moment; None where the source cannot tell."""

    utilization_percent: float | None
    memory_used_bytes: int | None


GpuReader = Callable[[], GpuReading | None]


def gpu_fields(reader: GpuReader | None) -> dict:
    """The metric point's GPU fields (``gpu_utilization`` in percent,
    ``gpu_memory_gb``) from one reading; {} without a reader or a reading.
    A reader that fails costs the point its GPU fields, never the training."""
    if reader is None:
        return {}
    try:
        reading = reader()
    except Exception:
        return {}
    if reading is None:
        return {}
    fields = {}
    if reading.utilization_percent is not None:
        fields["gpu_utilization"] = float(reading.utilization_percent)
    if reading.memory_used_bytes is not None:
        fields["gpu_memory_gb"] = round(reading.memory_used_bytes / _GB, 3)
    return fields


def default_gpu_reader() -> GpuReader | None:
    """A reader of the current CUDA device: NVML where ``pynvml`` imports and
    initialises, else torch's allocator; None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    device = torch.cuda.current_device()
    try:
        import pynvml

        pynvml.nvmlInit()
        # NVML numbers devices physically; CUDA_VISIBLE_DEVICES may have renumbered them.
        handle = pynvml.nvmlDeviceGetHandleByUUID(_uuid_of(torch.cuda.get_device_properties(device)))
    except Exception:  # not installed, no driver library to load, or a device NVML does not know
        return lambda: GpuReading(None, torch.cuda.memory_reserved(device))

    def read() -> GpuReading:
        utilization = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        return GpuReading(float(utilization), int(pynvml.nvmlDeviceGetMemoryInfo(handle).used))

    return read


def _uuid_of(properties) -> str:
    # torch gives the UUID without NVML's "GPU-" prefix.
    text = str(properties.uuid)
    return text if text.startswith("GPU-") else f"GPU-{text}"
