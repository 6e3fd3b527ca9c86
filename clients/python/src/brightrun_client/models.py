"""Typed views of the API's JSON objects.

Fields are read tolerantly: a field the server does not send is the field's
default, and a field this version does not know is kept in ``raw`` (the whole
object as the server sent it, which ``to_dict`` returns). Timestamps stay the
ISO 8601 strings the API sends.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T", bound="ApiObject")

TERMINAL_JOB_STATUSES = frozenset({"completed", "failed", "cancelled"})
SETTLED_DATASET_STATUSES = frozenset({"ready", "error"})


@dataclass
class ApiObject:
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        nested = cls.nested_types()
        values = {}
        for f in dataclasses.fields(cls):
            if f.name == "raw" or f.name not in data:
                continue
            value = data[f.name]
            model = nested.get(f.name)
            if model is not None and isinstance(value, list):
                value = [model.from_dict(item) for item in value if isinstance(item, dict)]
            elif model is not None and isinstance(value, dict):
                value = model.from_dict(value)
            values[f.name] = value
        return cls(**values, raw=dict(data))

    @classmethod
    def nested_types(cls) -> dict[str, type["ApiObject"]]:
        """Fields holding objects (or lists of them) parsed into a model of their own."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The object as the server sent it."""
        return self.raw


@dataclass
class ValidationIssue(ApiObject):
    """One problem the validator found: ``line`` is 1-based, 0 for the whole file."""

    line: int = 0
    code: str = ""
    error: str = ""
    suggestion: str = ""


@dataclass
class Dataset(ApiObject):
    id: str = ""
    name: str = ""
    status: str | None = None
    format: str = ""
    description: str | None = None
    file_name: str = ""
    file_size: int = 0
    base_model: str = ""
    training_ready: bool = False
    total_training_pairs: int | None = None
    total_validation_pairs: int | None = None
    total_tokens: int | None = None
    avg_turns_per_conversation: float | None = None
    avg_tokens_per_turn: float | None = None
    validation_errors: list[ValidationIssue] = field(default_factory=list)
    statistics: dict[str, Any] | None = None
    validated_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def nested_types(cls):
        return {"validation_errors": ValidationIssue}

    @property
    def settled(self) -> bool:
        """Validation has finished: the dataset is ``ready`` or in ``error``."""
        return self.status in SETTLED_DATASET_STATUSES


@dataclass
class MetricPoint(ApiObject):
    job_id: str = ""
    step: int = 0
    epoch: int = 0
    training_loss: float | None = None
    validation_loss: float | None = None
    learning_rate: float | None = None
    gradient_norm: float | None = None
    throughput: float | None = None
    samples_per_second: float | None = None
    perplexity: float | None = None
    gpu_utilization: float | None = None
    gpu_memory_gb: float | None = None
    timestamp: str | None = None


@dataclass
class Job(ApiObject):
    id: str = ""
    parent_model_id: str | None = None
    dataset_id: str = ""
    dataset_name: str = ""
    preset_id: str = ""
    status: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    gpu_config: dict[str, Any] = field(default_factory=dict)
    progress: float = 0.0
    current_step: int = 0
    total_steps: int = 0
    current_epoch: int = 0
    total_epochs: int = 0
    current_metrics: dict[str, Any] | None = None
    current_cost: float = 0.0
    estimated_total_cost: float = 0.0
    final_cost: float | None = None
    error_message: str | None = None
    retry_count: int = 0
    artifact_id: str | None = None
    estimated_completion_at: str | None = None
    queued_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    created_at: str | None = None

    @property
    def finished(self) -> bool:
        """The job has ended: completed, failed or cancelled."""
        return self.status in TERMINAL_JOB_STATUSES


@dataclass
class CostRecord(ApiObject):
    id: str = ""
    job_id: str | None = None
    cost_type: str = ""
    amount: float = 0.0
    details: dict[str, Any] | None = None
    billing_period: str = ""
    recorded_at: str | None = None


@dataclass
class JobDetail(ApiObject):
    """``GET /api/jobs/{id}``: the job with its latest metric points and its cost records; when older points
    exist, ``older_metrics_before_step`` is the ``before_step`` of ``list_metrics`` that reads them back."""

    job: Job = field(default_factory=Job)
    metrics: list[MetricPoint] = field(default_factory=list)
    older_metrics_before_step: int | None = None
    cost_records: list[CostRecord] = field(default_factory=list)

    @classmethod
    def nested_types(cls):
        return {"job": Job, "metrics": MetricPoint, "cost_records": CostRecord}


@dataclass
class Estimate(ApiObject):
    estimated_cost: float = 0.0
    cost_breakdown: dict[str, float] = field(default_factory=dict)
    estimated_duration_hours: float = 0.0
    estimated_duration_seconds: float | None = None
    hourly_rate: float = 0.0
    training_details: dict[str, Any] = field(default_factory=dict)
    memory_per_gpu_gb: float | None = None
    fits_gpu_memory: bool | None = None
    warnings: list[str] = field(default_factory=list)
    basis: str | None = None


@dataclass
class Preset(ApiObject):
    id: str = ""
    name: str = ""
    description: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class Model(ApiObject):
    """A trained adapter (the API's ``/api/models``)."""

    id: str = ""
    job_id: str = ""
    dataset_id: str = ""
    name: str = ""
    version: str = ""
    description: str | None = None
    status: str = ""
    quality_metrics: dict[str, Any] | None = None
    training_summary: dict[str, Any] | None = None
    configuration: dict[str, Any] | None = None
    artifacts: dict[str, Any] | None = None
    created_at: str | None = None
    # Whether vLLM and LoRAX can serve it: each ``{server, status, check, reason}``.
    serving: list[dict[str, Any]] = field(default_factory=list)
    # The model it continued training from, and its ancestors oldest first (get_model only).
    parent_model_id: str | None = None
    lineage: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DownloadUrl(ApiObject):
    file: str = ""
    url: str = ""
    size_bytes: int = 0


@dataclass
class ModelExport(ApiObject):
    """An export of a model (``kind`` "merged"): ``status`` queued, running, completed or failed;
    ``download_urls`` once completed (get_export only)."""

    id: str = ""
    artifact_id: str = ""
    kind: str = ""
    status: str = ""
    error: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    download_urls: list[DownloadUrl] = field(default_factory=list)
    expires_at: str | None = None
    created_at: str | None = None
    completed_at: str | None = None

    @classmethod
    def nested_types(cls):
        return {"download_urls": DownloadUrl}

    @property
    def settled(self) -> bool:
        return self.status in ("completed", "failed")


@dataclass
class CostSummary(ApiObject):
    """``GET /api/costs``: the period's total, by cost type and by day."""

    total: float = 0.0
    period: str = ""
    by_type: dict[str, float] = field(default_factory=dict)
    by_day: list[dict[str, Any]] = field(default_factory=list)
    record_count: int = 0


@dataclass
class Notification(ApiObject):
    id: str = ""
    type: str = ""
    title: str = ""
    message: str = ""
    priority: str = ""
    read: bool = False
    action_url: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: str | None = None


@dataclass
class Notifications(ApiObject):
    """``GET /api/notifications``: newest first, with the count of unread ones."""

    notifications: list[Notification] = field(default_factory=list)
    unread_count: int = 0

    @classmethod
    def nested_types(cls):
        return {"notifications": Notification}


@dataclass
class Budget(ApiObject):
    """``GET/PUT /api/budget``: the calendar month's budget in dollars; ``amount`` and ``remaining`` are None
    without one. ``committed`` is the not yet charged part of queued and running jobs' estimates."""

    amount: float | None = None
    month: str = ""
    spent: float = 0.0
    committed: float = 0.0
    remaining: float | None = None


@dataclass
class Webhook(ApiObject):
    """An HTTP endpoint that receives the user's events, signed as Standard Webhooks."""

    id: str = ""
    url: str = ""
    event_types: list[str] = field(default_factory=list)
    description: str = ""
    enabled: bool = True
    created_at: str | None = None
    updated_at: str | None = None
