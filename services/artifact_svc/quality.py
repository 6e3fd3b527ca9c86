"""The artifact record a completed job produces: its name, quality metrics,
training summary, configuration and file map (spec FR-5.1), built from the
``job.completed`` event alone. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from brightrun.artifact.v1 import artifact_pb2
from brightrun.job.v1 import job_pb2
from google.protobuf.json_format import MessageToDict

VERSION = "1.0.0"

# (grade, stars, highest final loss, highest relative validation gap). The
# spec's grading code is cut off after "Assess convergence quality"; these
# bands grade what it shows: a low final loss and a validation loss that
# stays close to the training loss (little overfitting).
_GRADES = (
    ("excellent", 5, 1.0, 0.10),
    ("good", 4, 1.5, 0.25),
    ("fair", 3, 2.5, 0.50),
)


@dataclass(frozen=True)
class ArtifactDraft:
    """Everything of a new model artifact except its id and timestamps."""

    user_id: str
    job_id: str
    dataset_id: str
    name: str
    version: str
    quality_metrics: dict
    training_summary: dict
    configuration: dict
    artifacts: dict
    storage_bucket: str


def build_artifact(
    job: job_pb2.Job, manifest: artifact_pb2.AdapterManifest, summary: Mapping, *, user_id: str
) -> ArtifactDraft:
    """The artifact of ``job``; ``summary`` is the trainer's final summary (missing keys become null)."""
    return ArtifactDraft(
        user_id=job.user_id or user_id,
        job_id=job.id,
        dataset_id=job.dataset_id,
        name=artifact_name(job),
        version=VERSION,
        quality_metrics=quality_metrics(summary),
        training_summary=training_summary(job, summary),
        configuration=configuration(job, summary),
        artifacts=file_map(manifest),
        storage_bucket=manifest.bucket,
    )


def artifact_name(job: job_pb2.Job) -> str:
    name = f"{job.dataset_name or 'Model'} LoRA r{job.hyperparameters.rank}"
    return name[:200]


def quality_metrics(summary: Mapping) -> dict:
    """Final and best losses, perplexity, and the convergence grade with its 1-5 stars."""
    final_training = _number(summary, "final_loss", "final_training_loss")
    final_validation = _number(summary, "final_validation_loss", "validation_loss")
    best_validation = _number(summary, "best_validation_loss")
    perplexity = _number(summary, "perplexity")
    if perplexity is None and final_validation is not None and final_validation < 50:
        perplexity = math.exp(final_validation)
    grade, stars = convergence_grade(final_training, final_validation)
    return {
        "final_training_loss": final_training,
        "final_validation_loss": final_validation,
        "best_validation_loss": best_validation,
        "perplexity": perplexity,
        "convergence_quality": grade,
        "overall_score": stars,
    }


def convergence_grade(final_training: float | None, final_validation: float | None) -> tuple[str, int]:
    """("excellent"|"good"|"fair"|"poor", stars); ("unknown", 3) without a training loss, as in the spec."""
    if final_training is None:
        return "unknown", 3
    gap = 0.0
    if final_validation is not None and final_training > 0:
        gap = max(0.0, (final_validation - final_training) / final_training)
    for grade, stars, max_loss, max_gap in _GRADES:
        if final_training <= max_loss and gap <= max_gap:
            return grade, stars
    return "poor", 2


def training_summary(job: job_pb2.Job, summary: Mapping) -> dict:
    started = _time(job, "started_at")
    completed = _time(job, "completed_at")
    duration = _number(summary, "duration_seconds")
    if duration is None and started and completed:
        duration = (completed - started).total_seconds()
    cost = job.final_cost if job.HasField("final_cost") else job.current_cost
    steps = _number(summary, "total_steps")
    epochs = _number(summary, "epochs")
    tokens = _number(summary, "trained_tokens")
    return {
        "total_steps": int(steps) if steps is not None else job.total_steps,
        "epochs": int(epochs) if epochs is not None else job.total_epochs,
        "trained_tokens": int(tokens) if tokens is not None else None,
        "duration_seconds": duration,
        "final_cost": round(cost, 2),
        # The spec's model pages read the cost under this name.
        "total_cost": round(cost, 2),
        "started_at": started.isoformat() if started else None,
        "completed_at": completed.isoformat() if completed else None,
    }


def configuration(job: job_pb2.Job, summary: Mapping) -> dict:
    hyperparameters = MessageToDict(
        job.hyperparameters, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    gpu_config = MessageToDict(
        job.gpu_config, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return {
        "preset_id": job.preset_id or None,
        "hyperparameters": hyperparameters,
        "gpu_config": gpu_config,
        "base_model": summary.get("base_model") or job.hyperparameters.base_model or None,
        "chat_template": summary.get("chat_template"),
    }


def file_map(manifest: artifact_pb2.AdapterManifest) -> dict:
    return {f.name: {"key": f.key, "size_bytes": f.size_bytes, "sha256": f.sha256} for f in manifest.files}


def _number(summary: Mapping, *names: str) -> float | None:
    for name in names:
        value = summary.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def _time(job: job_pb2.Job, field: str) -> datetime | None:
    if not job.HasField(field):
        return None
    return getattr(job, field).ToDatetime(tzinfo=timezone.utc)
