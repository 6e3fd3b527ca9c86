"""Database rows to ``brightrun.artifact.v1`` messages."""

from __future__ import annotations

import json

from brightrun.artifact.v1 import artifact_pb2
from sqlalchemy.engine import Row


def artifact_message(row: Row) -> artifact_pb2.ModelArtifact:
    artifact = artifact_pb2.ModelArtifact(
        id=str(row.id),
        user_id=str(row.user_id),
        job_id=str(row.job_id),
        dataset_id=str(row.dataset_id),
        name=row.name,
        version=row.version,
        status=row.status,
        storage_bucket=row.storage_bucket,
    )
    if row.description is not None:
        artifact.description = row.description
    artifact.quality_metrics.update(_json(row.quality_metrics))
    artifact.training_summary.update(_json(row.training_summary))
    artifact.configuration.update(_json(row.configuration))
    artifact.artifacts.update(_json(row.artifacts))
    artifact.created_at.FromDatetime(row.created_at)
    artifact.updated_at.FromDatetime(row.updated_at)
    artifact.serving.extend(artifact_pb2.ServingCheck(**c) for c in _json(row.serving))
    if row.parent_model_id is not None:
        artifact.parent_model_id = str(row.parent_model_id)
    return artifact


def model_ref(row: Row) -> artifact_pb2.ModelRef:
    ref = artifact_pb2.ModelRef(id=str(row.id), name=row.name, job_id=str(row.job_id))
    ref.created_at.FromDatetime(row.created_at)
    return ref


def export_message(row: Row) -> artifact_pb2.ModelExport:
    export = artifact_pb2.ModelExport(
        id=str(row.id), artifact_id=str(row.artifact_id), user_id=str(row.user_id), kind=row.kind,
        status=row.status, error=row.error, storage_bucket=row.storage_bucket, prefix=row.prefix,
        files=[artifact_pb2.ArtifactFile(**f) for f in _json(row.files)],
    )
    export.created_at.FromDatetime(row.created_at)
    export.updated_at.FromDatetime(row.updated_at)
    if row.completed_at is not None:
        export.completed_at.FromDatetime(row.completed_at)
    return export


def _json(value) -> dict:
    # asyncpg hands JSONB back as text unless a codec is registered.
    return json.loads(value) if isinstance(value, str) else value
