"""Database rows to DatasetService protos."""

from __future__ import annotations

from google.protobuf import struct_pb2

from brightrun.dataset.v1 import dataset_pb2

STATUS = {
    "uploading": dataset_pb2.DATASET_STATUS_UPLOADING,
    "validating": dataset_pb2.DATASET_STATUS_VALIDATING,
    "ready": dataset_pb2.DATASET_STATUS_READY,
    "error": dataset_pb2.DATASET_STATUS_ERROR,
}
STATUS_NAMES = {value: key for key, value in STATUS.items()}


def dataset_message(row) -> dataset_pb2.Dataset:
    message = dataset_pb2.Dataset(
        id=str(row.id),
        user_id=str(row.user_id),
        name=row.name,
        format=row.format,
        status=STATUS[row.status],
        storage_bucket=row.storage_bucket,
        storage_path=row.storage_path,
        file_name=row.file_name,
        file_size=row.file_size,
        training_ready=row.training_ready,
        base_model=row.base_model,
        sha256=row.sha256 or "",
        content_sha256=row.content_sha256 or "",
    )
    for field in ("description", "total_training_pairs", "total_validation_pairs", "total_tokens"):
        if getattr(row, field) is not None:
            setattr(message, field, getattr(row, field))
    for field in ("avg_turns_per_conversation", "avg_tokens_per_turn"):
        if getattr(row, field) is not None:
            setattr(message, field, round(float(getattr(row, field)), 2))
    for field in ("validated_at", "created_at", "updated_at", "deleted_at"):
        if getattr(row, field) is not None:
            getattr(message, field).FromDatetime(getattr(row, field))
    for error in row.validation_errors or []:
        message.validation_errors.add(
            line=error["line"], code=error.get("code", ""), error=error["error"], suggestion=error.get("suggestion", "")
        )
    if row.sample_data is not None:
        message.sample_data.CopyFrom(_list(row.sample_data))
    if row.statistics is not None:
        message.statistics.update(row.statistics)
    return message


def _list(values: list) -> struct_pb2.ListValue:
    result = struct_pb2.ListValue()
    result.extend(values)
    return result
