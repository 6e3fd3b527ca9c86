"""The artifact service's SQL. Every read and write is scoped by user id; a
deleted artifact is invisible, like one that never existed.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import page_and_total
from services.common.paging import Keyset, Page
from services.artifact_svc.quality import ArtifactDraft

# Newest first, paged by keyset on the index model_artifacts_user_created_id (migration 0002).
CREATED_ORDER = Keyset((("created_at", "timestamptz"), ("id", "uuid")))
# Most stars first (the grade penalises overfitting, which a low training
# loss alone would reward), then the lowest validation and training losses.
# Computed from JSON with NULLs last in mixed directions, which no keyset
# expresses: paged by offset, over a user's artifacts (one per job).
_QUALITY_ORDER = (
    "(quality_metrics->>'overall_score')::int DESC NULLS LAST, "
    "(quality_metrics->>'final_validation_loss')::float8 ASC NULLS LAST, "
    "(quality_metrics->>'final_training_loss')::float8 ASC NULLS LAST, created_at DESC, id DESC"
)


async def insert_artifact(conn: AsyncConnection, draft: ArtifactDraft) -> Row | None:
    """Insert the job's artifact; None when the job already has one."""
    result = await conn.execute(
        text(
            "INSERT INTO model_artifacts (user_id, job_id, dataset_id, name, version, status, quality_metrics, "
            "training_summary, configuration, artifacts, storage_bucket) VALUES (:user_id, :job_id, :dataset_id, "
            ":name, :version, 'stored', CAST(:quality AS JSONB), CAST(:summary AS JSONB), CAST(:config AS JSONB), "
            "CAST(:files AS JSONB), :bucket) ON CONFLICT (job_id) DO NOTHING RETURNING *"
        ),
        {
            "user_id": draft.user_id,
            "job_id": draft.job_id,
            "dataset_id": draft.dataset_id,
            "name": draft.name,
            "version": draft.version,
            "quality": json.dumps(draft.quality_metrics),
            "summary": json.dumps(draft.training_summary),
            "config": json.dumps(draft.configuration),
            "files": json.dumps(draft.artifacts),
            "bucket": draft.storage_bucket,
        },
    )
    return result.first()


async def get_artifact(conn: AsyncConnection, user_id: str, artifact_id: str) -> Row | None:
    result = await conn.execute(
        text("SELECT * FROM model_artifacts WHERE id = :id AND user_id = :user_id AND deleted_at IS NULL"),
        {"id": artifact_id, "user_id": user_id},
    )
    return result.first()


async def list_artifacts(conn: AsyncConnection, user_id: str, order_by: str, page: Page) -> tuple[list[Row], int]:
    """One page of the user's artifacts, with one row more when another page follows, and the total count."""
    where = "user_id = :user_id AND deleted_at IS NULL"
    if order_by == "created":
        page_sql = CREATED_ORDER.after(page) + CREATED_ORDER.window(page)
    else:
        page_sql = f" ORDER BY {_QUALITY_ORDER} LIMIT :limit OFFSET :offset"
    params = {"user_id": user_id, **CREATED_ORDER.params(page)}
    return await page_and_total(conn, "model_artifacts", where, page_sql, params, page.first)


async def delete_artifact(conn: AsyncConnection, user_id: str, artifact_id: str) -> Row | None:
    """Mark the artifact deleted; None when the user has no such live artifact."""
    result = await conn.execute(
        text(
            "UPDATE model_artifacts SET status = 'deleted', deleted_at = now(), updated_at = now() "
            "WHERE id = :id AND user_id = :user_id AND deleted_at IS NULL RETURNING *"
        ),
        {"id": artifact_id, "user_id": user_id},
    )
    return result.first()
