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
    return artifact


def _json(value) -> dict:
    # asyncpg hands JSONB back as text unless a codec is registered.
    return json.loads(value) if isinstance(value, str) else value
