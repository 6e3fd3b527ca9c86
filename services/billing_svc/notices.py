"""The notification each platform event gives its user: type, title,
message, priority, link and metadata, in the spec's words (FR-2.2, FR-3.2,
FR-5.1). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from brightrun.dataset.v1 import dataset_pb2
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2


@dataclass(frozen=True)
class NotificationDraft:
    user_id: str
    type: str
    title: str
    message: str
    priority: str
    action_url: str | None
    metadata: dict = field(default_factory=dict)
    # What the notification is about, unique among notifications: the same
    # happening told again (an event re-published under a new id) is dropped.
    # None for a notice with no such identity.
    key: str | None = None


def notification_for(event: events_pb2.Event) -> NotificationDraft | None:
    """The notification ``event`` warrants, or None for an event users are not told about."""
    build = _BUILDERS.get(event.WhichOneof("payload") or "")
    return build(event) if build else None


def _dataset_ready(event: events_pb2.Event) -> NotificationDraft:
    dataset = event.dataset_validated.dataset
    return NotificationDraft(
        user_id=dataset.user_id or event.user_id,
        type="dataset_ready",
        title="Dataset Ready",
        message=f'Your dataset "{dataset.name}" is ready for training',
        priority="medium",
        action_url=f"/datasets/{dataset.id}",
        metadata={"dataset_id": dataset.id},
        key=_validation_key(dataset, "dataset_ready"),
    )


def _dataset_error(event: events_pb2.Event) -> NotificationDraft:
    dataset = event.dataset_validation_failed.dataset
    errors = list(dataset.validation_errors)
    message = f'Your dataset "{dataset.name}" failed validation'
    if errors:
        first = errors[0]
        where = f"line {first.line}: " if first.line else ""
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        message += f": {where}{first.error}{more}"
    return NotificationDraft(
        user_id=dataset.user_id or event.user_id,
        type="dataset_error",
        title="Dataset Validation Failed",
        message=message,
        priority="high",
        action_url=f"/datasets/{dataset.id}",
        metadata={"dataset_id": dataset.id, "error_count": len(errors)},
        key=_validation_key(dataset, "dataset_error"),
    )


def _job_queued(event: events_pb2.Event) -> NotificationDraft:
    job = event.job_queued.job
    return _job_notice(
        event,
        job,
        "job_queued",
        "Training Job Queued",
        f'Your training job for "{_dataset(job)}" has been queued and will start shortly',
        "low",
    )


def _job_started(event: events_pb2.Event) -> NotificationDraft:
    job = event.job_started.job
    return _job_notice(
        event,
        job,
        "job_started",
        "Training Started",
        f"Your training job has started on {job.gpu_config.count}x {job.gpu_config.type}",
        "medium",
    )


def _job_waiting(event: events_pb2.Event) -> NotificationDraft:
    waiting = event.job_waiting_for_agent
    job, gpus = waiting.job, f"{waiting.job.gpu_config.count}x {waiting.job.gpu_config.type}"
    message = (
        f'Your training job for "{_dataset(job)}" has been queued for {waiting.waited_seconds // 60} minutes: '
        f"no trainer agent has taken it. It waits for an agent with {gpus}."
    )
    draft = _job_notice(event, job, "job_waiting", "No Trainer Agent Yet", message, "medium")
    return replace(draft, metadata={**draft.metadata, "gpu_type": job.gpu_config.type,
                                    "gpu_count": job.gpu_config.count})


def _job_completed(event: events_pb2.Event) -> NotificationDraft:
    job = event.job_completed.job
    cost = job.final_cost if job.HasField("final_cost") else job.current_cost
    message = (
        f'Your training job for "{_dataset(job)}" completed after {job.total_steps} steps. Total cost: ${cost:.2f}'
    )
    return _job_notice(event, job, "job_completed", "Training Complete", message, "medium")


def _job_failed(event: events_pb2.Event) -> NotificationDraft:
    job = event.job_failed.job
    reason = job.error_message if job.HasField("error_message") else "an unknown error"
    message = f"Your training job failed: {reason}"
    if job.current_cost > 0:
        message += f". You were charged ${job.current_cost:.2f} for the time it ran"
    return _job_notice(event, job, "job_failed", "Training Failed", message, "high")


def _job_cancelled(event: events_pb2.Event) -> NotificationDraft:
    job = event.job_cancelled.job
    message = f'Your training job for "{_dataset(job)}" was cancelled. Cost so far: ${job.current_cost:.2f}'
    return _job_notice(event, job, "job_cancelled", "Training Cancelled", message, "medium")


def _model_ready(event: events_pb2.Event) -> NotificationDraft:
    artifact = event.artifact_created.artifact
    score = artifact.quality_metrics.fields.get("overall_score")
    stars = f" Quality score: {int(score.number_value)}/5 stars" if score and score.HasField("number_value") else ""
    return NotificationDraft(
        user_id=artifact.user_id or event.user_id,
        type="model_ready",
        title="Model Ready for Download",
        message=f"Your trained model is ready.{stars}",
        priority="high",
        action_url=f"/models/{artifact.id}",
        metadata={"artifact_id": artifact.id, "job_id": artifact.job_id},
        key=f"job:{artifact.job_id}:model_ready" if artifact.job_id else f"artifact:{artifact.id}:model_ready",
    )


def _job_notice(
    event: events_pb2.Event, job: job_pb2.Job, type_: str, title: str, message: str, priority: str
) -> NotificationDraft:
    return NotificationDraft(
        user_id=job.user_id or event.user_id,
        type=type_,
        title=title,
        message=message,
        priority=priority,
        action_url=f"/training/jobs/{job.id}",
        metadata={"job_id": job.id, "dataset_id": job.dataset_id},
        key=f"job:{job.id}:{type_}" if job.id else None,
    )


def _validation_key(dataset: dataset_pb2.Dataset, type_: str) -> str | None:
    # A dataset is validated again on request; each validation has its own time.
    if not dataset.HasField("validated_at"):
        return None
    return f"dataset:{dataset.id}:{type_}:{dataset.validated_at.ToJsonString()}"


def _dataset(job: job_pb2.Job) -> str:
    return job.dataset_name or "your dataset"


_BUILDERS = {
    "dataset_validated": _dataset_ready,
    "dataset_validation_failed": _dataset_error,
    "job_queued": _job_queued,
    "job_started": _job_started,
    "job_waiting_for_agent": _job_waiting,
    "job_completed": _job_completed,
    "job_failed": _job_failed,
    "job_cancelled": _job_cancelled,
    "artifact_created": _model_ready,
}
