"""Database rows to ``brightrun.job.v1`` messages."""

from __future__ import annotations

from brightrun.job.v1 import job_pb2

STATUS = {
    "queued": job_pb2.JOB_STATUS_QUEUED,
    "initializing": job_pb2.JOB_STATUS_INITIALIZING,
    "running": job_pb2.JOB_STATUS_RUNNING,
    "completed": job_pb2.JOB_STATUS_COMPLETED,
    "failed": job_pb2.JOB_STATUS_FAILED,
    "cancelled": job_pb2.JOB_STATUS_CANCELLED,
}
STATUS_NAMES = {value: key for key, value in STATUS.items()}
# The MetricPoint fields that may be unset, each a nullable column of metric_points.
METRIC_FIELDS = (
    "validation_loss",
    "gradient_norm",
    "throughput",
    "gpu_utilization",
    "gpu_memory_gb",
    "samples_per_second",
    "perplexity",
)


def job_message(row) -> job_pb2.Job:
    hp = row.hyperparameters
    gpu = row.gpu_config
    job = job_pb2.Job(
        id=str(row.id),
        user_id=str(row.user_id),
        dataset_id=str(row.dataset_id),
        dataset_name=row.dataset_name,
        preset_id=row.preset_id,
        hyperparameters=job_pb2.Hyperparameters(**hp),
        gpu_config=job_pb2.GpuConfig(**gpu),
        status=STATUS[row.status],
        current_stage=row.current_stage,
        progress=row.progress,
        current_epoch=row.current_epoch,
        total_epochs=row.total_epochs,
        current_step=row.current_step,
        total_steps=row.total_steps,
        current_cost=row.current_cost,
        estimated_total_cost=row.estimated_total_cost,
        retry_count=row.retry_count,
    )
    if row.current_metrics:
        job.current_metrics.CopyFrom(job_pb2.TrainingMetrics(**row.current_metrics))
    if row.batch_layout:
        job.batch_layout.CopyFrom(job_pb2.BatchLayout(**row.batch_layout))
    for field in ("queued_at", "attempt_started_at", "started_at", "completed_at", "estimated_completion_at",
                  "created_at", "updated_at"):
        if getattr(row, field) is not None:
            getattr(job, field).FromDatetime(getattr(row, field))
    if row.final_cost is not None:
        job.final_cost = row.final_cost
    if row.queue_wait_seconds is not None:
        job.queue_wait_seconds = row.queue_wait_seconds
    if row.error_message is not None:
        job.error_message = row.error_message
    if row.artifact_id is not None:
        job.artifact_id = str(row.artifact_id)
    if row.parent_model_id is not None:
        job.parent_model_id = str(row.parent_model_id)
    return job


def metric_point_message(row) -> job_pb2.MetricPoint:
    point = job_pb2.MetricPoint(
        job_id=str(row.job_id),
        epoch=row.epoch,
        step=row.step,
        training_loss=row.training_loss,
        learning_rate=row.learning_rate,
    )
    point.timestamp.FromDatetime(row.timestamp)
    for field in METRIC_FIELDS:
        if getattr(row, field) is not None:
            setattr(point, field, getattr(row, field))
    return point


def current_metrics(point: job_pb2.MetricPoint) -> dict:
    """The job's ``current_metrics`` from its latest metric point."""
    metrics = {"training_loss": point.training_loss, "learning_rate": point.learning_rate}
    for source, target in (
        ("validation_loss", "validation_loss"),
        ("gradient_norm", "grad_norm"),
        ("throughput", "throughput"),
        ("samples_per_second", "samples_per_second"),
        ("gpu_utilization", "gpu_utilization"),
        ("gpu_memory_gb", "gpu_memory_gb"),
        ("perplexity", "perplexity"),
    ):
        if point.HasField(source):
            metrics[target] = getattr(point, source)
    return metrics
