import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_INITIALIZING: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_COMPLETED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_INITIALIZING: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_COMPLETED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_CANCELLED: JobStatus

class Hyperparameters(_message.Message):
    __slots__ = ("base_model", "learning_rate", "batch_size", "epochs", "rank", "alpha", "dropout", "warmup_steps", "weight_decay", "max_seq_length", "seed", "packing", "gradient_checkpointing", "warmup_ratio", "lr_scheduler", "eval_steps", "early_stopping_patience", "quantization", "zero_stage", "fused_kernels")
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_FIELD_NUMBER: _ClassVar[int]
    WARMUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PACKING_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_CHECKPOINTING_FIELD_NUMBER: _ClassVar[int]
    WARMUP_RATIO_FIELD_NUMBER: _ClassVar[int]
    LR_SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    EVAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOPPING_PATIENCE_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    ZERO_STAGE_FIELD_NUMBER: _ClassVar[int]
    FUSED_KERNELS_FIELD_NUMBER: _ClassVar[int]
    base_model: str
    learning_rate: float
    batch_size: int
    epochs: int
    rank: int
    alpha: float
    dropout: float
    warmup_steps: int
    weight_decay: float
    max_seq_length: int
    seed: int
    packing: bool
    gradient_checkpointing: bool
    warmup_ratio: float
    lr_scheduler: str
    eval_steps: int
    early_stopping_patience: int
    quantization: str
    zero_stage: int
    fused_kernels: bool
    def __init__(self, base_model: _Optional[str] = ..., learning_rate: _Optional[float] = ..., batch_size: _Optional[int] = ..., epochs: _Optional[int] = ..., rank: _Optional[int] = ..., alpha: _Optional[float] = ..., dropout: _Optional[float] = ..., warmup_steps: _Optional[int] = ..., weight_decay: _Optional[float] = ..., max_seq_length: _Optional[int] = ..., seed: _Optional[int] = ..., packing: _Optional[bool] = ..., gradient_checkpointing: _Optional[bool] = ..., warmup_ratio: _Optional[float] = ..., lr_scheduler: _Optional[str] = ..., eval_steps: _Optional[int] = ..., early_stopping_patience: _Optional[int] = ..., quantization: _Optional[str] = ..., zero_stage: _Optional[int] = ..., fused_kernels: _Optional[bool] = ...) -> None: ...

class GpuConfig(_message.Message):
    __slots__ = ("type", "count", "gpu_memory_gb", "cost_per_gpu_hour")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
    COST_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    type: str
    count: int
    gpu_memory_gb: float
    cost_per_gpu_hour: float
    def __init__(self, type: _Optional[str] = ..., count: _Optional[int] = ..., gpu_memory_gb: _Optional[float] = ..., cost_per_gpu_hour: _Optional[float] = ...) -> None: ...

class Preset(_message.Message):
    __slots__ = ("id", "name", "description", "hyperparameters")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    hyperparameters: Hyperparameters
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ...) -> None: ...

class GpuType(_message.Message):
    __slots__ = ("type", "memory_gb", "price_per_gpu_hour", "throughput_tokens_per_second", "max_count")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_GPU_HOUR_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    type: str
    memory_gb: float
    price_per_gpu_hour: float
    throughput_tokens_per_second: float
    max_count: int
    def __init__(self, type: _Optional[str] = ..., memory_gb: _Optional[float] = ..., price_per_gpu_hour: _Optional[float] = ..., throughput_tokens_per_second: _Optional[float] = ..., max_count: _Optional[int] = ...) -> None: ...

class TrainingMetrics(_message.Message):
    __slots__ = ("training_loss", "validation_loss", "learning_rate", "grad_norm", "throughput", "samples_per_second", "gpu_utilization", "gpu_memory_gb", "perplexity")
    TRAINING_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    GPU_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    training_loss: float
    validation_loss: float
    learning_rate: float
    grad_norm: float
    throughput: float
    samples_per_second: float
    gpu_utilization: float
    gpu_memory_gb: float
    perplexity: float
    def __init__(self, training_loss: _Optional[float] = ..., validation_loss: _Optional[float] = ..., learning_rate: _Optional[float] = ..., grad_norm: _Optional[float] = ..., throughput: _Optional[float] = ..., samples_per_second: _Optional[float] = ..., gpu_utilization: _Optional[float] = ..., gpu_memory_gb: _Optional[float] = ..., perplexity: _Optional[float] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "user_id", "dataset_id", "preset_id", "hyperparameters", "gpu_config", "status", "current_stage", "progress", "current_epoch", "total_epochs", "current_step", "total_steps", "current_metrics", "queued_at", "started_at", "completed_at", "estimated_completion_at", "current_cost", "estimated_total_cost", "final_cost", "error_message", "retry_count", "artifact_id", "dataset_name", "created_at", "updated_at", "batch_layout")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PRESET_ID_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    GPU_CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_METRICS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETION_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_COST_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_TOTAL_COST_FIELD_NUMBER: _ClassVar[int]
    FINAL_COST_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    BATCH_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    dataset_id: str
    preset_id: str
    hyperparameters: Hyperparameters
    gpu_config: GpuConfig
    status: JobStatus
    current_stage: str
    progress: float
    current_epoch: int
    total_epochs: int
    current_step: int
    total_steps: int
    current_metrics: TrainingMetrics
    queued_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    estimated_completion_at: _timestamp_pb2.Timestamp
    current_cost: float
    estimated_total_cost: float
    final_cost: float
    error_message: str
    retry_count: int
    artifact_id: str
    dataset_name: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    batch_layout: BatchLayout
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., preset_id: _Optional[str] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ..., gpu_config: _Optional[_Union[GpuConfig, _Mapping]] = ..., status: _Optional[_Union[JobStatus, str]] = ..., current_stage: _Optional[str] = ..., progress: _Optional[float] = ..., current_epoch: _Optional[int] = ..., total_epochs: _Optional[int] = ..., current_step: _Optional[int] = ..., total_steps: _Optional[int] = ..., current_metrics: _Optional[_Union[TrainingMetrics, _Mapping]] = ..., queued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., estimated_completion_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_cost: _Optional[float] = ..., estimated_total_cost: _Optional[float] = ..., final_cost: _Optional[float] = ..., error_message: _Optional[str] = ..., retry_count: _Optional[int] = ..., artifact_id: _Optional[str] = ..., dataset_name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., batch_layout: _Optional[_Union[BatchLayout, _Mapping]] = ...) -> None: ...

class BatchLayout(_message.Message):
    __slots__ = ("micro_batch_size", "gradient_accumulation_steps", "world_size")
    MICRO_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_ACCUMULATION_STEPS_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    micro_batch_size: int
    gradient_accumulation_steps: int
    world_size: int
    def __init__(self, micro_batch_size: _Optional[int] = ..., gradient_accumulation_steps: _Optional[int] = ..., world_size: _Optional[int] = ...) -> None: ...

class MetricPoint(_message.Message):
    __slots__ = ("job_id", "timestamp", "epoch", "step", "training_loss", "validation_loss", "learning_rate", "gradient_norm", "throughput", "gpu_utilization", "samples_per_second", "perplexity", "gpu_memory_gb")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TRAINING_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_LOSS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_NORM_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    GPU_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    timestamp: _timestamp_pb2.Timestamp
    epoch: int
    step: int
    training_loss: float
    validation_loss: float
    learning_rate: float
    gradient_norm: float
    throughput: float
    gpu_utilization: float
    samples_per_second: float
    perplexity: float
    gpu_memory_gb: float
    def __init__(self, job_id: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., epoch: _Optional[int] = ..., step: _Optional[int] = ..., training_loss: _Optional[float] = ..., validation_loss: _Optional[float] = ..., learning_rate: _Optional[float] = ..., gradient_norm: _Optional[float] = ..., throughput: _Optional[float] = ..., gpu_utilization: _Optional[float] = ..., samples_per_second: _Optional[float] = ..., perplexity: _Optional[float] = ..., gpu_memory_gb: _Optional[float] = ...) -> None: ...

class CostBreakdown(_message.Message):
    __slots__ = ("compute", "storage")
    COMPUTE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    compute: float
    storage: float
    def __init__(self, compute: _Optional[float] = ..., storage: _Optional[float] = ...) -> None: ...

class TrainingDetails(_message.Message):
    __slots__ = ("total_steps", "steps_per_epoch", "estimated_throughput_tokens_per_sec", "dataset_name")
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_THROUGHPUT_TOKENS_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    total_steps: int
    steps_per_epoch: int
    estimated_throughput_tokens_per_sec: float
    dataset_name: str
    def __init__(self, total_steps: _Optional[int] = ..., steps_per_epoch: _Optional[int] = ..., estimated_throughput_tokens_per_sec: _Optional[float] = ..., dataset_name: _Optional[str] = ...) -> None: ...

class Estimate(_message.Message):
    __slots__ = ("estimated_cost", "cost_breakdown", "estimated_duration_hours", "hourly_rate", "training_details")
    ESTIMATED_COST_FIELD_NUMBER: _ClassVar[int]
    COST_BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DURATION_HOURS_FIELD_NUMBER: _ClassVar[int]
    HOURLY_RATE_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DETAILS_FIELD_NUMBER: _ClassVar[int]
    estimated_cost: float
    cost_breakdown: CostBreakdown
    estimated_duration_hours: float
    hourly_rate: float
    training_details: TrainingDetails
    def __init__(self, estimated_cost: _Optional[float] = ..., cost_breakdown: _Optional[_Union[CostBreakdown, _Mapping]] = ..., estimated_duration_hours: _Optional[float] = ..., hourly_rate: _Optional[float] = ..., training_details: _Optional[_Union[TrainingDetails, _Mapping]] = ...) -> None: ...

class TrainingAssignment(_message.Message):
    __slots__ = ("job_id", "user_id", "hyperparameters", "gpu_config", "dataset_id", "dataset_bucket", "dataset_path", "dataset_format", "output_bucket", "output_prefix", "total_steps")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    GPU_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_BUCKET_FIELD_NUMBER: _ClassVar[int]
    DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    DATASET_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BUCKET_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    user_id: str
    hyperparameters: Hyperparameters
    gpu_config: GpuConfig
    dataset_id: str
    dataset_bucket: str
    dataset_path: str
    dataset_format: str
    output_bucket: str
    output_prefix: str
    total_steps: int
    def __init__(self, job_id: _Optional[str] = ..., user_id: _Optional[str] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ..., gpu_config: _Optional[_Union[GpuConfig, _Mapping]] = ..., dataset_id: _Optional[str] = ..., dataset_bucket: _Optional[str] = ..., dataset_path: _Optional[str] = ..., dataset_format: _Optional[str] = ..., output_bucket: _Optional[str] = ..., output_prefix: _Optional[str] = ..., total_steps: _Optional[int] = ...) -> None: ...

class ListPresetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPresetsResponse(_message.Message):
    __slots__ = ("presets",)
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    presets: _containers.RepeatedCompositeFieldContainer[Preset]
    def __init__(self, presets: _Optional[_Iterable[_Union[Preset, _Mapping]]] = ...) -> None: ...

class ListGpuTypesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGpuTypesResponse(_message.Message):
    __slots__ = ("gpu_types",)
    GPU_TYPES_FIELD_NUMBER: _ClassVar[int]
    gpu_types: _containers.RepeatedCompositeFieldContainer[GpuType]
    def __init__(self, gpu_types: _Optional[_Iterable[_Union[GpuType, _Mapping]]] = ...) -> None: ...

class EstimateJobRequest(_message.Message):
    __slots__ = ("dataset_id", "gpu_config", "hyperparameters")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    GPU_CONFIG_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    gpu_config: GpuConfig
    hyperparameters: Hyperparameters
    def __init__(self, dataset_id: _Optional[str] = ..., gpu_config: _Optional[_Union[GpuConfig, _Mapping]] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ...) -> None: ...

class EstimateJobResponse(_message.Message):
    __slots__ = ("estimate",)
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    estimate: Estimate
    def __init__(self, estimate: _Optional[_Union[Estimate, _Mapping]] = ...) -> None: ...

class CreateJobRequest(_message.Message):
    __slots__ = ("dataset_id", "preset_id", "gpu_config", "hyperparameters", "estimated_cost", "request_id")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    PRESET_ID_FIELD_NUMBER: _ClassVar[int]
    GPU_CONFIG_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    preset_id: str
    gpu_config: GpuConfig
    hyperparameters: Hyperparameters
    estimated_cost: float
    request_id: str
    def __init__(self, dataset_id: _Optional[str] = ..., preset_id: _Optional[str] = ..., gpu_config: _Optional[_Union[GpuConfig, _Mapping]] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ..., estimated_cost: _Optional[float] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("status", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: JobStatus
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[JobStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token", "total_size")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    total_size: int
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ListMetricPointsRequest(_message.Message):
    __slots__ = ("job_id", "after_step", "page_size")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_STEP_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_step: int
    page_size: int
    def __init__(self, job_id: _Optional[str] = ..., after_step: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListMetricPointsResponse(_message.Message):
    __slots__ = ("metric_points",)
    METRIC_POINTS_FIELD_NUMBER: _ClassVar[int]
    metric_points: _containers.RepeatedCompositeFieldContainer[MetricPoint]
    def __init__(self, metric_points: _Optional[_Iterable[_Union[MetricPoint, _Mapping]]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_step")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_STEP_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_step: int
    def __init__(self, job_id: _Optional[str] = ..., after_step: _Optional[int] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("job", "metric_point")
    JOB_FIELD_NUMBER: _ClassVar[int]
    METRIC_POINT_FIELD_NUMBER: _ClassVar[int]
    job: Job
    metric_point: MetricPoint
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., metric_point: _Optional[_Union[MetricPoint, _Mapping]] = ...) -> None: ...
