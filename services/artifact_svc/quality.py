"""The artifact record a completed job produces: its name, quality metrics,
training summary, configuration and file map (spec FR-5.1), built from the
``job.completed`` event alone. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from brightrun.artifact.v1 import artifact_pb2
from brightrun.job.v1 import job_pb2
from google.protobuf.json_format import MessageToDict

from services.artifact_svc.serving import serving_checks
from services.common import run_summary

VERSION = "1.0.0"

# (grade, stars, highest final training loss, highest relative train/validation
# gap). The spec's grading code is cut off after "Assess convergence quality";
# these bands grade what it shows: a low final loss and a validation loss that
# stays close to the training loss (little overfitting). Below them all: poor.
_GRADES = (
    ("excellent", 5, 1.0, 0.10),
    ("good", 4, 1.5, 0.25),
    ("fair", 3, 2.5, 0.50),
)
_BELOW_THE_BANDS = ("poor", 2)
# The best grade a run can have that diverged (its loss ended above where it began),
# that overfitted (trained on past its best validation loss), or that was still
# improving when it ended (more training would have helped).
_DIVERGED_AT_BEST = ("poor", 1)
_OVERFITTED_AT_BEST = ("fair", 3)
_STILL_IMPROVING_AT_BEST = ("good", 4)
# How far above the run's best the final validation loss may end before the
# run counts as overfitted.
_RISE_PAST_BEST = 0.10
# A curve whose last quarter still fell by more than this share of the whole
# run's fall was still improving.
_STILL_FALLING = 0.25
# Fewer points than this make no curve to judge.
_FEWEST_CURVE_POINTS = 4


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
    serving: list = field(default_factory=list)
    parent_model_id: str | None = None


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
        serving=serving_checks(summary.get(run_summary.ADAPTER)),
        parent_model_id=job.parent_model_id if job.HasField("parent_model_id") else None,
    )


def artifact_name(job: job_pb2.Job) -> str:
    name = f"{job.dataset_name or 'Model'} LoRA r{job.hyperparameters.rank}"
    return name[:200]


def quality_metrics(summary: Mapping) -> dict:
    """The quality metrics of the model the trainer's ``summary`` describes:
    final and best losses, perplexity, the train/validation gap, whether it
    overfitted, convergence judged from its training loss curve, and the grade
    with its 1-5 stars. A value the summary lacks is null."""
    final_training = _number(summary, run_summary.FINAL_TRAINING_LOSS)
    final_validation = _number(summary, run_summary.FINAL_VALIDATION_LOSS)
    best_validation = _number(summary, run_summary.BEST_VALIDATION_LOSS)
    best_step = _number(summary, run_summary.BEST_VALIDATION_STEP)
    gap = None if final_training is None or final_validation is None else final_validation - final_training
    overfitted = None
    if final_validation is not None and best_validation is not None:
        overfitted = final_validation > best_validation * (1 + _RISE_PAST_BEST)
    convergence = curve_convergence(_curve(summary))
    grade, stars = convergence_grade(
        final_training, final_validation, overfitted=bool(overfitted), convergence=convergence
    )
    return {
        "final_training_loss": final_training,
        "final_validation_loss": final_validation,
        "best_validation_loss": best_validation,
        "best_validation_step": int(best_step) if best_step is not None else None,
        "perplexity": _number(summary, run_summary.PERPLEXITY),
        "train_validation_gap": gap,
        "overfitted": overfitted,
        "convergence": convergence,
        "convergence_quality": grade,
        "overall_score": stars,
        "smoke_samples": smoke_samples(summary),
    }


# What a smoke sample may carry, and how much of each text is kept (the record stays small).
_SMOKE_FIELDS = ("prompt", "expected", "completion", "base_completion")
_MOST_SMOKE_SAMPLES = 8
_MOST_SMOKE_CHARACTERS = 2000


def smoke_samples(summary: Mapping) -> list[dict]:
    """The held-out conversations the trainer had the model answer at the end of training
    (run_summary.SMOKE_SAMPLES), each ``{prompt, expected, completion, base_completion}`` as text;
    anything else in the list is left out. Empty when the trainer wrote none."""
    samples = summary.get(run_summary.SMOKE_SAMPLES)
    if not isinstance(samples, list):
        return []
    kept = []
    for sample in samples[:_MOST_SMOKE_SAMPLES]:
        if isinstance(sample, Mapping) and all(isinstance(sample.get(name), str) for name in _SMOKE_FIELDS):
            kept.append({name: sample[name][:_MOST_SMOKE_CHARACTERS] for name in _SMOKE_FIELDS})
    return kept


def curve_convergence(curve: list[tuple[float, float]]) -> str:
    """How the training loss ``curve`` of (step, loss) ended: "diverged" (its
    last quarter's mean loss at or above its first's), "still_improving" (its
    last quarter still falling by more than _STILL_FALLING of the whole fall),
    "converged", or "unknown" with fewer than _FEWEST_CURVE_POINTS points."""
    if len(curve) < _FEWEST_CURVE_POINTS:
        return "unknown"
    losses = [loss for _, loss in curve]
    quarter = len(losses) // 4
    first, before_last, last = _mean(losses[:quarter]), _mean(losses[-2 * quarter : -quarter]), _mean(losses[-quarter:])
    if last >= first:
        return "diverged"
    if before_last - last > _STILL_FALLING * (first - last):
        return "still_improving"
    return "converged"


def convergence_grade(
    final_training: float | None,
    final_validation: float | None,
    *,
    overfitted: bool = False,
    convergence: str = "unknown",
) -> tuple[str, int]:
    """("excellent"|"good"|"fair"|"poor", stars); ("unknown", 3) without a training loss, as in the spec.

    The final losses place the model in a band of _GRADES; a run that
    diverged, overfitted or was still improving gets at most that case's grade.
    """
    if final_training is None:
        return "unknown", 3
    gap = 0.0
    if final_validation is not None and final_training > 0:
        gap = max(0.0, (final_validation - final_training) / final_training)
    band = next(
        ((grade, stars) for grade, stars, loss, most_gap in _GRADES if final_training <= loss and gap <= most_gap),
        _BELOW_THE_BANDS,
    )
    caps = [
        _DIVERGED_AT_BEST if convergence == "diverged" else None,
        _OVERFITTED_AT_BEST if overfitted else None,
        _STILL_IMPROVING_AT_BEST if convergence == "still_improving" else None,
    ]
    return min([band, *(cap for cap in caps if cap)], key=lambda grade: grade[1])


def training_summary(job: job_pb2.Job, summary: Mapping) -> dict:
    started = _time(job, "started_at")
    completed = _time(job, "completed_at")
    duration = _number(summary, run_summary.DURATION_SECONDS)
    if duration is None and started and completed:
        duration = (completed - started).total_seconds()
    cost = job.final_cost if job.HasField("final_cost") else job.current_cost
    # The steps the model trained: a run stopped early trains fewer than planned.
    steps = _number(summary, run_summary.STEPS_COMPLETED)
    epochs = _number(summary, run_summary.EPOCHS)
    tokens = _number(summary, run_summary.TRAINED_TOKENS)
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
        "base_model": job.hyperparameters.base_model or None,
        "chat_template": summary.get(run_summary.CHAT_TEMPLATE),
        # rank, target_modules, modules_to_save, architecture and dtype as saved; null from older trainers.
        "adapter": summary.get(run_summary.ADAPTER),
    }


def file_map(manifest: artifact_pb2.AdapterManifest) -> dict:
    return {f.name: {"key": f.key, "size_bytes": f.size_bytes, "sha256": f.sha256} for f in manifest.files}


def _number(summary: Mapping, name: str) -> float | None:
    return _finite(summary.get(name))


def _finite(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _curve(summary: Mapping) -> list[tuple[float, float]]:
    """The summary's training loss curve, without points that are not two finite numbers."""
    curve = summary.get(run_summary.TRAINING_LOSS_CURVE)
    pairs = [p for p in curve if isinstance(p, list) and len(p) == 2] if isinstance(curve, list) else []
    return [(step, loss) for step, loss in pairs if _finite(step) is not None and _finite(loss) is not None]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _time(job: job_pb2.Job, field: str) -> datetime | None:
    if not job.HasField(field):
        return None
    return getattr(job, field).ToDatetime(tzinfo=timezone.utc)
