import datetime

from brightrun.artifact.v1 import artifact_pb2 as _artifact_pb2
from brightrun.billing.v1 import billing_pb2 as _billing_pb2
from brightrun.dataset.v1 import dataset_pb2 as _dataset_pb2
from brightrun.job.v1 import job_pb2 as _job_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_id", "type", "occurred_at", "producer", "user_id", "subject_id", "dataset_uploaded", "dataset_validated", "dataset_validation_failed", "dataset_deleted", "job_queued", "job_started", "job_progressed", "job_completed", "job_failed", "job_cancelled", "trainer_attempt_started", "trainer_metrics", "trainer_checkpoint_saved", "trainer_attempt_completed", "trainer_attempt_failed", "agent_heartbeat", "artifact_created", "cost_recorded")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_UPLOADED_FIELD_NUMBER: _ClassVar[int]
    DATASET_VALIDATED_FIELD_NUMBER: _ClassVar[int]
    DATASET_VALIDATION_FAILED_FIELD_NUMBER: _ClassVar[int]
    DATASET_DELETED_FIELD_NUMBER: _ClassVar[int]
    JOB_QUEUED_FIELD_NUMBER: _ClassVar[int]
    JOB_STARTED_FIELD_NUMBER: _ClassVar[int]
    JOB_PROGRESSED_FIELD_NUMBER: _ClassVar[int]
    JOB_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    JOB_FAILED_FIELD_NUMBER: _ClassVar[int]
    JOB_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    TRAINER_ATTEMPT_STARTED_FIELD_NUMBER: _ClassVar[int]
    TRAINER_METRICS_FIELD_NUMBER: _ClassVar[int]
    TRAINER_CHECKPOINT_SAVED_FIELD_NUMBER: _ClassVar[int]
    TRAINER_ATTEMPT_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TRAINER_ATTEMPT_FAILED_FIELD_NUMBER: _ClassVar[int]
    AGENT_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_CREATED_FIELD_NUMBER: _ClassVar[int]
    COST_RECORDED_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: str
    occurred_at: _timestamp_pb2.Timestamp
    producer: str
    user_id: str
    subject_id: str
    dataset_uploaded: DatasetUploaded
    dataset_validated: DatasetValidated
    dataset_validation_failed: DatasetValidationFailed
    dataset_deleted: DatasetDeleted
    job_queued: JobQueued
    job_started: JobStarted
    job_progressed: JobProgressed
    job_completed: JobCompleted
    job_failed: JobFailed
    job_cancelled: JobCancelled
    trainer_attempt_started: TrainerAttemptStarted
    trainer_metrics: TrainerMetrics
    trainer_checkpoint_saved: TrainerCheckpointSaved
    trainer_attempt_completed: TrainerAttemptCompleted
    trainer_attempt_failed: TrainerAttemptFailed
    agent_heartbeat: AgentHeartbeat
    artifact_created: ArtifactCreated
    cost_recorded: CostRecorded
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., producer: _Optional[str] = ..., user_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., dataset_uploaded: _Optional[_Union[DatasetUploaded, _Mapping]] = ..., dataset_validated: _Optional[_Union[DatasetValidated, _Mapping]] = ..., dataset_validation_failed: _Optional[_Union[DatasetValidationFailed, _Mapping]] = ..., dataset_deleted: _Optional[_Union[DatasetDeleted, _Mapping]] = ..., job_queued: _Optional[_Union[JobQueued, _Mapping]] = ..., job_started: _Optional[_Union[JobStarted, _Mapping]] = ..., job_progressed: _Optional[_Union[JobProgressed, _Mapping]] = ..., job_completed: _Optional[_Union[JobCompleted, _Mapping]] = ..., job_failed: _Optional[_Union[JobFailed, _Mapping]] = ..., job_cancelled: _Optional[_Union[JobCancelled, _Mapping]] = ..., trainer_attempt_started: _Optional[_Union[TrainerAttemptStarted, _Mapping]] = ..., trainer_metrics: _Optional[_Union[TrainerMetrics, _Mapping]] = ..., trainer_checkpoint_saved: _Optional[_Union[TrainerCheckpointSaved, _Mapping]] = ..., trainer_attempt_completed: _Optional[_Union[TrainerAttemptCompleted, _Mapping]] = ..., trainer_attempt_failed: _Optional[_Union[TrainerAttemptFailed, _Mapping]] = ..., agent_heartbeat: _Optional[_Union[AgentHeartbeat, _Mapping]] = ..., artifact_created: _Optional[_Union[ArtifactCreated, _Mapping]] = ..., cost_recorded: _Optional[_Union[CostRecorded, _Mapping]] = ...) -> None: ...

class DatasetUploaded(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class DatasetValidated(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class DatasetValidationFailed(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class DatasetDeleted(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: _dataset_pb2.Dataset
    def __init__(self, dataset: _Optional[_Union[_dataset_pb2.Dataset, _Mapping]] = ...) -> None: ...

class JobQueued(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class JobProgressed(_message.Message):
    __slots__ = ("job", "metric_point")
    JOB_FIELD_NUMBER: _ClassVar[int]
    METRIC_POINT_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    metric_point: _job_pb2.MetricPoint
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ..., metric_point: _Optional[_Union[_job_pb2.MetricPoint, _Mapping]] = ...) -> None: ...

class JobCompleted(_message.Message):
    __slots__ = ("job", "manifest", "summary")
    JOB_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    manifest: _artifact_pb2.AdapterManifest
    summary: _struct_pb2.Struct
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ..., manifest: _Optional[_Union[_artifact_pb2.AdapterManifest, _Mapping]] = ..., summary: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class JobFailed(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class JobCancelled(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class TrainerAttemptStarted(_message.Message):
    __slots__ = ("job_id", "attempt", "agent_id", "total_steps", "resumed_from_step", "batch_layout")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FROM_STEP_FIELD_NUMBER: _ClassVar[int]
    BATCH_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    agent_id: str
    total_steps: int
    resumed_from_step: int
    batch_layout: _job_pb2.BatchLayout
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., agent_id: _Optional[str] = ..., total_steps: _Optional[int] = ..., resumed_from_step: _Optional[int] = ..., batch_layout: _Optional[_Union[_job_pb2.BatchLayout, _Mapping]] = ...) -> None: ...

class TrainerMetrics(_message.Message):
    __slots__ = ("job_id", "attempt", "metric_point", "total_steps")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    METRIC_POINT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    metric_point: _job_pb2.MetricPoint
    total_steps: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., metric_point: _Optional[_Union[_job_pb2.MetricPoint, _Mapping]] = ..., total_steps: _Optional[int] = ...) -> None: ...

class TrainerCheckpointSaved(_message.Message):
    __slots__ = ("job_id", "attempt", "step", "prefix")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    step: int
    prefix: str
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., step: _Optional[int] = ..., prefix: _Optional[str] = ...) -> None: ...

class TrainerAttemptCompleted(_message.Message):
    __slots__ = ("job_id", "attempt", "manifest", "summary")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    manifest: _artifact_pb2.AdapterManifest
    summary: _struct_pb2.Struct
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., manifest: _Optional[_Union[_artifact_pb2.AdapterManifest, _Mapping]] = ..., summary: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TrainerAttemptFailed(_message.Message):
    __slots__ = ("job_id", "attempt", "reason", "retryable", "cancelled")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    reason: str
    retryable: bool
    cancelled: bool
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ..., retryable: _Optional[bool] = ..., cancelled: _Optional[bool] = ...) -> None: ...

class AgentHeartbeat(_message.Message):
    __slots__ = ("agent_id", "gpu_type", "gpu_count")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GPU_TYPE_FIELD_NUMBER: _ClassVar[int]
    GPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    gpu_type: str
    gpu_count: int
    def __init__(self, agent_id: _Optional[str] = ..., gpu_type: _Optional[str] = ..., gpu_count: _Optional[int] = ...) -> None: ...

class ArtifactCreated(_message.Message):
    __slots__ = ("artifact",)
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    artifact: _artifact_pb2.ModelArtifact
    def __init__(self, artifact: _Optional[_Union[_artifact_pb2.ModelArtifact, _Mapping]] = ...) -> None: ...

class CostRecorded(_message.Message):
    __slots__ = ("cost_record",)
    COST_RECORD_FIELD_NUMBER: _ClassVar[int]
    cost_record: _billing_pb2.CostRecord
    def __init__(self, cost_record: _Optional[_Union[_billing_pb2.CostRecord, _Mapping]] = ...) -> None: ...
