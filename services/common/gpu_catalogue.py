"""The GPU catalogue: each GPU type's memory, price per GPU-hour and planning
throughput, and the storage price of a trained model. Configuration, not code.

billing_svc owns the prices and serves them (BillingService.GetPrices); job_svc
reads the same file through this one loader rather than calling billing at
estimate time: it validates a job's GPU on every estimate and create (in
hyperparameters.py, which takes the catalogue as a module constant), and an
estimate must not fail while billing_svc is away. Both services therefore
read one file, ``BRIGHTRUN_GPU_CATALOGUE`` (default: the shipped
gpu_catalogue.json beside this module), once per process when this module is
first imported; a bad file stops the process at start-up with an error
naming the file and the entry.

Memory is in GiB (as nvidia-smi counts it), prices in US dollars.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

ENV = "BRIGHTRUN_GPU_CATALOGUE"
DEFAULT_PATH = Path(__file__).with_name("gpu_catalogue.json")
# The type local agents without a GPU advertise; job validation falls back to it.
CPU = "CPU"


class CatalogueError(Exception):
    """The catalogue file is unreadable or an entry of it is invalid; the message names both."""


@dataclass(frozen=True)
class GpuType:
    type: str
    memory_gb: float  # GiB; 0 for CPU agents
    price_per_gpu_hour: float  # US dollars
    # Planning figure for estimates, tokens per second per GPU.
    throughput_tokens_per_second: float
    max_count: int


@dataclass(frozen=True)
class Catalogue:
    gpus: dict[str, GpuType]
    # US dollars charged once per trained model (the spec's flat storage cost, FR-3.1).
    storage_price_per_model: float


def _number(entry: dict, name: str, where: str, *, positive: bool = False) -> float:
    value = entry.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
        value <= 0 if positive else value < 0
    ):
        raise CatalogueError(f"{where}: {name} must be a number {'above' if positive else 'of at least'} 0, "
                             f"got {value!r}")
    return float(value)


def _gpu(entry: object, where: str) -> GpuType:
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: must be an object, got {entry!r}")
    name = entry.get("type")
    if not isinstance(name, str) or not name.strip():
        raise CatalogueError(f"{where}: type must be a non-empty string, got {name!r}")
    where = f"{where} ({name})"
    count = entry.get("max_count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise CatalogueError(f"{where}: max_count must be a whole number of at least 1, got {count!r}")
    return GpuType(
        type=name,
        memory_gb=_number(entry, "memory_gb", where),
        price_per_gpu_hour=_number(entry, "price_per_gpu_hour", where),
        throughput_tokens_per_second=_number(entry, "throughput_tokens_per_second", where, positive=True),
        max_count=count,
    )


def load(path: Path) -> Catalogue:
    """The catalogue in the JSON file at ``path``; raises CatalogueError naming the file and the bad entry."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"GPU catalogue {path}: cannot be read as JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CatalogueError(f"GPU catalogue {path}: must be a JSON object with gpus and storage_price_per_model")
    entries = document.get("gpus")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"GPU catalogue {path}: gpus must be a non-empty list, got {entries!r}")
    gpus: dict[str, GpuType] = {}
    for index, entry in enumerate(entries):
        gpu = _gpu(entry, f"GPU catalogue {path}: gpus[{index}]")
        if gpu.type in gpus:
            raise CatalogueError(f"GPU catalogue {path}: gpus[{index}] ({gpu.type}): type is listed twice")
        gpus[gpu.type] = gpu
    if CPU not in gpus:
        raise CatalogueError(f"GPU catalogue {path}: gpus must list type {CPU!r} (local agents without a GPU)")
    storage = _number(document, "storage_price_per_model", f"GPU catalogue {path}")
    return Catalogue(gpus=gpus, storage_price_per_model=storage)


# The process's catalogue. Read at import, the one exception to "settings come
# from read_settings": job_svc's validation imports it as a constant.
CATALOGUE = load(Path(os.environ.get(ENV) or DEFAULT_PATH))
