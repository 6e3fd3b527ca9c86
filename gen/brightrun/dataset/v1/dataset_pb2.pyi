import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DatasetStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_STATUS_UNSPECIFIED: _ClassVar[DatasetStatus]
    DATASET_STATUS_UPLOADING: _ClassVar[DatasetStatus]
    DATASET_STATUS_VALIDATING: _ClassVar[DatasetStatus]
    DATASET_STATUS_READY: _ClassVar[DatasetStatus]
    DATASET_STATUS_ERROR: _ClassVar[DatasetStatus]
DATASET_STATUS_UNSPECIFIED: DatasetStatus
DATASET_STATUS_UPLOADING: DatasetStatus
DATASET_STATUS_VALIDATING: DatasetStatus
DATASET_STATUS_READY: DatasetStatus
DATASET_STATUS_ERROR: DatasetStatus

class ValidationError(_message.Message):
    __slots__ = ("line", "code", "error", "suggestion")
    LINE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_FIELD_NUMBER: _ClassVar[int]
    line: int
    code: str
    error: str
    suggestion: str
    def __init__(self, line: _Optional[int] = ..., code: _Optional[str] = ..., error: _Optional[str] = ..., suggestion: _Optional[str] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("id", "user_id", "name", "description", "format", "status", "storage_bucket", "storage_path", "file_name", "file_size", "total_training_pairs", "total_validation_pairs", "total_tokens", "avg_turns_per_conversation", "avg_tokens_per_turn", "training_ready", "validated_at", "validation_errors", "sample_data", "statistics", "base_model", "sha256", "created_at", "updated_at", "deleted_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BUCKET_FIELD_NUMBER: _ClassVar[int]
    STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRAINING_PAIRS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_VALIDATION_PAIRS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AVG_TURNS_PER_CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    AVG_TOKENS_PER_TURN_FIELD_NUMBER: _ClassVar[int]
    TRAINING_READY_FIELD_NUMBER: _ClassVar[int]
    VALIDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_ERRORS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_DATA_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    name: str
    description: str
    format: str
    status: DatasetStatus
    storage_bucket: str
    storage_path: str
    file_name: str
    file_size: int
    total_training_pairs: int
    total_validation_pairs: int
    total_tokens: int
    avg_turns_per_conversation: float
    avg_tokens_per_turn: float
    training_ready: bool
    validated_at: _timestamp_pb2.Timestamp
    validation_errors: _containers.RepeatedCompositeFieldContainer[ValidationError]
    sample_data: _struct_pb2.ListValue
    statistics: _struct_pb2.Struct
    base_model: str
    sha256: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    deleted_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., format: _Optional[str] = ..., status: _Optional[_Union[DatasetStatus, str]] = ..., storage_bucket: _Optional[str] = ..., storage_path: _Optional[str] = ..., file_name: _Optional[str] = ..., file_size: _Optional[int] = ..., total_training_pairs: _Optional[int] = ..., total_validation_pairs: _Optional[int] = ..., total_tokens: _Optional[int] = ..., avg_turns_per_conversation: _Optional[float] = ..., avg_tokens_per_turn: _Optional[float] = ..., training_ready: _Optional[bool] = ..., validated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., validation_errors: _Optional[_Iterable[_Union[ValidationError, _Mapping]]] = ..., sample_data: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., statistics: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., base_model: _Optional[str] = ..., sha256: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deleted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateDatasetRequest(_message.Message):
    __slots__ = ("name", "description", "format", "file_name", "file_size", "sha256", "base_model")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    format: str
    file_name: str
    file_size: int
    sha256: str
    base_model: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., format: _Optional[str] = ..., file_name: _Optional[str] = ..., file_size: _Optional[int] = ..., sha256: _Optional[str] = ..., base_model: _Optional[str] = ...) -> None: ...

class CreateDatasetResponse(_message.Message):
    __slots__ = ("dataset", "upload_url", "storage_path")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    upload_url: str
    storage_path: str
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ..., upload_url: _Optional[str] = ..., storage_path: _Optional[str] = ...) -> None: ...

class ConfirmUploadRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class ConfirmUploadResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class GetDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("status", "search", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: DatasetStatus
    search: str
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[DatasetStatus, str]] = ..., search: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token", "total_size")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    next_page_token: str
    total_size: int
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ...) -> None: ...

class RevalidateDatasetRequest(_message.Message):
    __slots__ = ("dataset_id", "base_model")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    base_model: str
    def __init__(self, dataset_id: _Optional[str] = ..., base_model: _Optional[str] = ...) -> None: ...

class RevalidateDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ...) -> None: ...

class GetDatasetReadUrlRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class GetDatasetReadUrlResponse(_message.Message):
    __slots__ = ("url", "storage_bucket", "storage_path")
    URL_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BUCKET_FIELD_NUMBER: _ClassVar[int]
    STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    url: str
    storage_bucket: str
    storage_path: str
    def __init__(self, url: _Optional[str] = ..., storage_bucket: _Optional[str] = ..., storage_path: _Optional[str] = ...) -> None: ...
