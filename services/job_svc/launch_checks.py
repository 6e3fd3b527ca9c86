"""What job_svc checks before it queues a job: that its base model can be
loaded, that it fits in its GPUs' memory, and that some agent can take it.
Pure but for reading a local base model's config.json; the hub and NATS are
reached through callables and data the caller passes in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from datetime import datetime, timedelta
from pathlib import Path
from typing import NoReturn

from services.common.base_models import is_local_model
from services.common.errors import InvalidArgument
from services.common.gguf_import import GgufError, gguf_location, gguf_model_config
from services.job_svc.catalogue import GpuType
from services.job_svc.hyperparameters import JobConfig
from services.job_svc.known_models import KNOWN_CONFIGS
from services.job_svc.memory_fit import ModelShape, RunShape, UnknownArchitecture, estimate_memory, what_to_lower

BASE_MODEL = "hyperparameters.base_model"


@dataclass(frozen=True)
class HubModel:
    """What the Hugging Face hub says of a model id."""

    exists: bool
    gated: bool = False


# Looks a model id up on the hub; raises OSError when the hub cannot be reached.
HubLookup = Callable[[str], HubModel]


@dataclass(frozen=True)
class LaunchReport:
    """The memory one GPU needs (0: not estimated), what the GPU has, and what the caller should be told."""

    memory_per_gpu_gb: float
    gpu: GpuType
    fits: bool
    to_lower: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The base model's parameter count from its config.json; None when it is not known here.
    model_parameters: int | None = None


def check_launch(config: JobConfig, hub: HubLookup | None, has_hf_token: bool) -> LaunchReport:
    """The base model checked and the memory estimated; ``hub`` None: hub ids are not looked up.

    Raises InvalidArgument naming hyperparameters.base_model when it cannot be loaded.
    A configuration that does not fit is reported, not refused: see :func:`refuse_unless_fits`.
    """
    warnings: list[str] = []
    model_config = read_model_config(config.base_model)
    if model_config is None:
        if hub is not None:
            warnings += check_hub_model(config.base_model, hub, has_hf_token)
        model_config = KNOWN_CONFIGS.get(config.base_model.lower())
    report = _memory(config, model_config)
    return replace(report, warnings=warnings + report.warnings, model_parameters=_parameters(model_config))


def _parameters(model_config: dict | None) -> int | None:
    if model_config is None:
        return None
    try:
        return ModelShape.from_config(model_config).parameters()
    except UnknownArchitecture:
        return None


def read_model_config(base_model: str) -> dict | None:
    """The config.json of a local base model (an absolute path, as hyperparameters resolve it), or
    the same sizes from a GGUF file's metadata; None for a hub id.

    EstimateJob asks on every request: the file is read once per version
    (its modification time and size), so a request costs a few ``stat`` calls.
    The dict returned is shared by those calls: read it, never change it.

    Raises InvalidArgument naming hyperparameters.base_model when the directory
    does not exist or holds no readable config.json, or the GGUF file is not usable.
    """
    if not is_local_model(base_model):
        return None
    try:
        found = gguf_location(base_model)
    except GgufError as exc:
        _refuse(str(exc))
    source = found[0] / found[1] if found else Path(base_model) / "config.json"
    return _model_config(base_model, source, _version(source), found is not None)


def _version(path: Path) -> tuple[int, int] | None:
    """What changes when ``path`` is written: its modification time and size; None when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=64)
def _model_config(base_model: str, source: Path, version: tuple[int, int] | None, gguf: bool) -> dict:
    """:func:`read_model_config` of ``source`` at ``version`` (a refusal is not cached: it is raised again)."""
    if gguf:
        try:
            return gguf_model_config(source)
        except GgufError as exc:
            _refuse(str(exc))
    if not Path(base_model).is_dir():
        _refuse(f"{base_model!r} does not exist or is not a directory: give a model directory "
                "(config.json, weights, tokenizer) or a Hugging Face hub id")
    try:
        config = json.loads(source.read_text())
    except FileNotFoundError:
        _refuse(f"{base_model!r} has no config.json: it is not a transformers model directory")
    except (OSError, ValueError) as exc:
        _refuse(f"{base_model!r}: its config.json cannot be read ({exc})")
    if not isinstance(config, dict):
        _refuse(f"{base_model!r}: its config.json is not a JSON object")
    return config


def check_hub_model(model_id: str, hub: HubLookup, has_hf_token: bool) -> list[str]:
    """Warnings for a hub id the hub could not be asked about.

    Raises InvalidArgument naming hyperparameters.base_model for an id the hub
    does not have, and for a gated model when no HF_TOKEN is set to download it.
    """
    try:
        found = hub(model_id)
    except OSError as exc:
        return [f"The Hugging Face hub could not be reached ({exc}); base model {model_id!r} was not checked."]
    if not found.exists:
        _refuse(f"no model {model_id!r} on the Hugging Face hub (or it is private): check the id")
    if found.gated and not has_hf_token:
        _refuse(f"{model_id!r} is gated on the Hugging Face hub: accept its licence there and set HF_TOKEN "
                "for the platform, or choose an open model")
    return []


def refuse_unless_fits(report: LaunchReport) -> None:
    """Raises InvalidArgument giving the figure, the GPU's memory and what to lower, when the job does not fit."""
    if report.fits:
        return
    figure = (f"the job needs about {report.memory_per_gpu_gb:.1f} GB of memory per GPU; "
              f"a {report.gpu.type} has {report.gpu.memory_gb:g} GB")
    raise InvalidArgument(
        f"Configuration does not fit in GPU memory: {figure}",
        {"gpu_config": [figure], "hyperparameters": report.to_lower or ["choose a GPU type with more memory"]},
    )


def _memory(config: JobConfig, model_config: dict | None) -> LaunchReport:
    gpu = config.gpu
    if not gpu.memory_gb:  # CPU agents: no GPU memory to run out of
        return LaunchReport(0.0, gpu, True)
    if model_config is None:
        return LaunchReport(0.0, gpu, True, warnings=[
            f"GPU memory not checked: no config.json of {config.base_model!r} here (it is not downloaded before "
            "the job runs)."])
    try:
        model = ModelShape.from_config(model_config)
    except UnknownArchitecture as exc:
        return LaunchReport(0.0, gpu, True, warnings=[f"GPU memory not checked: {exc}."])
    run = RunShape(
        rank=config.rank,
        # The trainer's split: each GPU's share of the batch in one micro-batch.
        micro_batch_size=config.batch_size // config.gpu_count,
        seq_length=config.max_seq_length,
        # Unset: the trainer checkpoints on GPUs (services/trainer_agent/model.py).
        gradient_checkpointing=config.gradient_checkpointing is not False,
        quantization=config.quantization or "none",
        gpu_count=config.gpu_count,
        zero_stage=config.zero_stage or 2,
    )
    figure = round(estimate_memory(model, run).total_gib, 1)
    if figure <= gpu.memory_gb:
        return LaunchReport(figure, gpu, True)
    to_lower = what_to_lower(model, run, config.batch_size, gpu.memory_gb, gpu.max_count)
    return LaunchReport(figure, gpu, False, to_lower, [
        f"The job needs about {figure:.1f} GB per GPU and a {gpu.type} has {gpu.memory_gb:g} GB: it cannot "
        "be created as it is. " + "; or ".join(to_lower)])


@dataclass(frozen=True)
class AgentSighting:
    """An ASSIGN consumer that the agents of one kind of node share, as NATS last reported it."""

    # The assignment subjects it takes, `assign.<gpu_type>.<gpu_count>`.
    subjects: tuple[str, ...]
    waiting_pulls: int
    assignments_in_hand: int
    last_delivery: datetime | None


def no_agent_warning(sightings: Iterable[AgentSighting], gpu_type: str, gpu_count: int,
                     now: datetime, window: timedelta) -> str | None:
    """A warning when no agent that takes ``gpu_count`` x ``gpu_type`` work has been seen within ``window``.

    An agent is seen while it waits for work (a pull request pending), holds
    an assignment, or was handed one within the window. A consumer outlives
    its agents, so that it exists says nothing.
    """
    subject = f"assign.{gpu_type}.{gpu_count}"
    for seen in sightings:
        if subject not in seen.subjects:
            continue
        if seen.waiting_pulls or seen.assignments_in_hand:
            return None
        if seen.last_delivery is not None and now - seen.last_delivery <= window:
            return None
    minutes = window.total_seconds() / 60
    return (f"No trainer agent for {gpu_count} x {gpu_type} has been seen in the last {minutes:g} minutes: "
            "the job stays queued until one starts.")


def _refuse(problem: str) -> NoReturn:
    raise InvalidArgument(f"Validation error: check {BASE_MODEL}", {BASE_MODEL: [problem]})
