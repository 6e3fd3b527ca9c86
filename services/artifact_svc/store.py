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
            "training_summary, configuration, artifacts, storage_bucket, serving, parent_model_id) VALUES (:user_id, "
            ":job_id, :dataset_id, :name, :version, 'stored', CAST(:quality AS JSONB), CAST(:summary AS JSONB), "
            "CAST(:config AS JSONB), CAST(:files AS JSONB), :bucket, CAST(:serving AS JSONB), :parent) "
            "ON CONFLICT (job_id) DO NOTHING RETURNING *"
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
            "serving": json.dumps(draft.serving),
            "parent": draft.parent_model_id,
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


async def lineage(conn: AsyncConnection, user_id: str, artifact_id: str) -> list[Row]:
    """The artifact's ancestors through parent_model_id, oldest first; deleted ones included (they are history)."""
    rows = await conn.execute(
        text(
            "WITH RECURSIVE chain(id, parent_model_id, depth) AS ("
            " SELECT id, parent_model_id, 0 FROM model_artifacts WHERE id = :id AND user_id = :user_id"
            " UNION ALL SELECT a.id, a.parent_model_id, chain.depth + 1 FROM model_artifacts a"
            " JOIN chain ON a.id = chain.parent_model_id WHERE a.user_id = :user_id AND chain.depth < 1000)"
            " SELECT a.id, a.name, a.job_id, a.created_at FROM chain JOIN model_artifacts a ON a.id = chain.id"
            " WHERE chain.depth > 0 ORDER BY chain.depth DESC"
        ),
        {"id": artifact_id, "user_id": user_id},
    )
    return list(rows)


async def live_export(conn: AsyncConnection, artifact_id: str, kind: str) -> Row | None:
    """The artifact's queued, running or completed export of ``kind``."""
    result = await conn.execute(
        text("SELECT * FROM model_exports WHERE artifact_id = :artifact_id AND kind = :kind AND status <> 'failed'"),
        {"artifact_id": artifact_id, "kind": kind},
    )
    return result.first()


async def insert_export(
    conn: AsyncConnection, export_id: str, artifact_id: str, user_id: str, kind: str, bucket: str, prefix: str
) -> Row | None:
    """A queued export; None when the artifact has a live one of ``kind`` already (a concurrent request won)."""
    result = await conn.execute(
        text(
            "INSERT INTO model_exports (id, artifact_id, user_id, kind, storage_bucket, prefix) "
            "VALUES (:id, :artifact_id, :user_id, :kind, :bucket, :prefix) "
            "ON CONFLICT (artifact_id, kind) WHERE status <> 'failed' DO NOTHING RETURNING *"
        ),
        {"id": export_id, "artifact_id": artifact_id, "user_id": user_id, "kind": kind, "bucket": bucket,
         "prefix": prefix},
    )
    return result.first()


async def get_export(conn: AsyncConnection, user_id: str, artifact_id: str, export_id: str) -> Row | None:
    result = await conn.execute(
        text(
            "SELECT e.* FROM model_exports e JOIN model_artifacts a ON a.id = e.artifact_id "
            "WHERE e.id = :id AND e.artifact_id = :artifact_id AND e.user_id = :user_id AND a.deleted_at IS NULL"
        ),
        {"id": export_id, "artifact_id": artifact_id, "user_id": user_id},
    )
    return result.first()


async def list_exports(conn: AsyncConnection, user_id: str, artifact_id: str) -> list[Row]:
    rows = await conn.execute(
        text(
            "SELECT * FROM model_exports WHERE artifact_id = :artifact_id AND user_id = :user_id "
            "ORDER BY created_at DESC, id"
        ),
        {"artifact_id": artifact_id, "user_id": user_id},
    )
    return list(rows)


async def update_export(conn: AsyncConnection, export_id: str, *, from_statuses: tuple[str, ...], **fields) -> Row | None:
    """Move an export on from one of ``from_statuses``; None when it is elsewhere (a late or repeated report)."""
    sets = ", ".join(f"{name} = CAST(:{name} AS JSONB)" if name == "files" else f"{name} = :{name}" for name in fields)
    values = {name: json.dumps(v) if name == "files" else v for name, v in fields.items()}
    result = await conn.execute(
        text(
            f"UPDATE model_exports SET {sets}, updated_at = now() WHERE id = :id AND status = ANY(:statuses) "
            "RETURNING *"
        ),
        {**values, "id": export_id, "statuses": list(from_statuses)},
    )
    return result.first()
