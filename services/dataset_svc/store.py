"""The dataset service's SQL. Every read and write is scoped by user id; a
deleted dataset is invisible, like one that never existed.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import Record, fetch, page_and_total
from services.common.paging import Keyset, Page
from services.dataset_svc.dataset import Dataset

_LIVE = "user_id = :user_id AND deleted_at IS NULL"


async def insert_dataset(conn: AsyncConnection, values: dict) -> Row:
    result = await conn.execute(
        text(
            "INSERT INTO datasets (id, user_id, name, description, format, storage_bucket, storage_path, file_name, "
            "file_size, sha256, base_model, request_id, request_fingerprint) VALUES (:id, :user_id, :name, "
            ":description, :format, :storage_bucket, :storage_path, :file_name, :file_size, :sha256, :base_model, "
            ":request_id, :request_fingerprint) ON CONFLICT (user_id, request_id) DO NOTHING RETURNING *"
        ),
        values,
    )
    return result.first()


async def dataset_by_request(conn: AsyncConnection, user_id: str, request_id: str) -> Row | None:
    """The dataset ``user_id`` created with ``request_id``, deleted or not (a key is used once)."""
    sql = "SELECT * FROM datasets WHERE user_id = :user_id AND request_id = :request_id"
    return (await conn.execute(text(sql), {"user_id": user_id, "request_id": request_id})).first()


_GET = f"SELECT * FROM datasets WHERE id = :id AND {_LIVE}"


async def get_dataset(conn: AsyncConnection, user_id: str, dataset_id: str) -> Record | None:
    """The live dataset, read on a ``Database.statement()`` connection (GetDataset: every estimate asks)."""
    rows = await fetch(conn, _GET, {"id": dataset_id, "user_id": user_id})
    return rows[0] if rows else None


# Newest first, served by the index datasets_user_created (migration 0006).
LIST_ORDER = Keyset((("created_at", "timestamptz"), ("id", "uuid")))


async def list_datasets(
    conn: AsyncConnection, user_id: str, status: str | None, search: str, page: Page
) -> tuple[list[Row], int]:
    where = _LIVE
    params: dict = {"user_id": user_id, **LIST_ORDER.params(page)}
    if status:
        where += " AND status = :status"
        params["status"] = status
    if search:
        where += " AND name ILIKE :search"
        params["search"] = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    page_sql = LIST_ORDER.after(page) + LIST_ORDER.window(page)
    return await page_and_total(conn, "datasets", where, page_sql, params, page.first)


async def load_dataset(conn: AsyncConnection, user_id: str, dataset_id: str) -> Dataset | None:
    """The live dataset as an aggregate, its row locked until the transaction ends."""
    row = (await conn.execute(text(_GET + " FOR UPDATE"), {"id": dataset_id, "user_id": user_id})).first()
    return None if row is None else Dataset.from_row(row)


# Every save moves updated_at forward, even when a transaction that began earlier (its now() older) saves after
# another: the events carry it, and job_svc's copy of a dataset (services/job_svc/dataset_facts.py) applies an
# event only when its updated_at is newer than the last one it applied.
_TOUCHED = "updated_at = GREATEST(now(), updated_at + interval '1 microsecond')"


async def save_dataset(conn: AsyncConnection, dataset: Dataset) -> Row:
    """Write the fields ``dataset`` changed since it was loaded; returns the row as it is now."""
    fields = dict(dataset.changes)
    assignments = "".join(f", {name} = :{name}" for name in fields)
    sql = f"UPDATE datasets SET {_TOUCHED}{assignments} WHERE id = :id RETURNING *"
    row = (await conn.execute(text(sql), {"id": dataset.id, **fields})).one()
    dataset.changes.clear()
    return row


async def record_validation(conn: AsyncConnection, dataset_id: str, outcome: dict) -> Row:
    """Store what a finished validation found (the dataset's status is the aggregate's to save): statistics or
    the bad lines, and the sha256 of the bytes it read."""
    result = await conn.execute(
        text(
            "UPDATE datasets SET format = :format, "
            "total_training_pairs = :pairs, total_validation_pairs = :validation_pairs, total_tokens = :tokens, "
            "avg_turns_per_conversation = :avg_turns, avg_tokens_per_turn = :avg_tokens, "
            "validation_errors = CAST(:errors AS JSONB), statistics = CAST(:statistics AS JSONB), "
            "sample_data = CAST(:samples AS JSONB), content_sha256 = :content_sha256, validated_at = now(), "
            f"{_TOUCHED} "
            "WHERE id = :id RETURNING *"
        ),
        {
            "id": dataset_id,
            "format": outcome["format"],
            "pairs": outcome.get("total_training_pairs"),
            "validation_pairs": outcome.get("total_validation_pairs"),
            "tokens": outcome.get("total_tokens"),
            "avg_turns": outcome.get("avg_turns_per_conversation"),
            "avg_tokens": outcome.get("avg_tokens_per_turn"),
            "errors": json.dumps(outcome["errors"]) if outcome["errors"] else None,
            "statistics": json.dumps(outcome["statistics"]),
            "samples": json.dumps(outcome["sample_data"]) if outcome["sample_data"] else None,
            "content_sha256": outcome.get("content_sha256"),
        },
    )
    return result.one()


async def record_usage(conn: AsyncConnection, job_id: str, dataset_id: str, active: bool) -> None:
    """Remember whether a job still uses its dataset; an ended job never becomes active again."""
    await conn.execute(
        text(
            "INSERT INTO dataset_usage (job_id, dataset_id, active) VALUES (:job, :dataset, :active) "
            "ON CONFLICT (job_id) DO UPDATE SET active = dataset_usage.active AND EXCLUDED.active"
        ),
        {"job": job_id, "dataset": dataset_id, "active": active},
    )


async def active_jobs(conn: AsyncConnection, dataset_id: str) -> list[str]:
    rows = await conn.execute(
        text("SELECT job_id FROM dataset_usage WHERE dataset_id = :id AND active ORDER BY job_id"), {"id": dataset_id}
    )
    return [str(job_id) for job_id in rows.scalars()]
