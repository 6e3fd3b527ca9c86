"""The job service's SQL. Every user-facing read is scoped by user id."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from brightrun.billing.v1 import billing_pb2
from brightrun.job.v1 import job_pb2
from services.common.db import Record, fetch, page_and_total
from services.common.paging import Keyset, Page
from services.job_svc.job import Job
from services.job_svc.messages import METRIC_FIELDS, metric_point_message
from services.job_svc.speed import MeasuredSpeed


async def insert_job(conn: AsyncConnection, values: dict) -> Row | None:
    """Insert a queued job; None when the user already made one with this request id."""
    result = await conn.execute(
        text(
            "INSERT INTO jobs (id, user_id, dataset_id, dataset_name, preset_id, hyperparameters, gpu_config, "
            "total_epochs, total_steps, estimated_total_cost, request_id, request_fingerprint, speed_key, "
            "planned_tokens, parent_model_id) "
            "VALUES (:id, :user_id, :dataset_id, :dataset_name, :preset_id, CAST(:hyperparameters AS JSONB), "
            "CAST(:gpu_config AS JSONB), :total_epochs, :total_steps, :estimated_total_cost, :request_id, "
            ":request_fingerprint, :speed_key, :planned_tokens, :parent_model_id) "
            "ON CONFLICT (user_id, request_id) DO NOTHING RETURNING *"
        ),
        {**values, "hyperparameters": json.dumps(values["hyperparameters"]), "gpu_config": json.dumps(values["gpu_config"])},
    )
    return result.first()


async def job_by_request(conn: AsyncConnection, user_id: str, request_id: str) -> Row | None:
    sql = "SELECT * FROM jobs WHERE user_id = :user_id AND request_id = :request_id"
    return (await conn.execute(text(sql), {"user_id": user_id, "request_id": request_id})).first()


async def get_job(conn: AsyncConnection, job_id: str, user_id: str | None = None, *, lock: bool = False) -> Row | None:
    """The job; scoped to ``user_id`` when given (consumers act for the platform and pass None)."""
    sql = "SELECT * FROM jobs WHERE id = :id" + (" AND user_id = :user_id" if user_id else "")
    sql += " FOR UPDATE" if lock else ""
    return (await conn.execute(text(sql), {"id": job_id, "user_id": user_id})).first()


async def load_job(conn: AsyncConnection, job_id: str, user_id: str | None = None) -> Job | None:
    """The job as an aggregate, its row locked until the transaction ends; scoped like get_job."""
    row = await get_job(conn, job_id, user_id, lock=True)
    return None if row is None else Job.from_row(row)


async def load_jobs(conn: AsyncConnection, job_ids: set[str]) -> dict[str, Job]:
    """The jobs of ``job_ids`` that exist, as aggregates by id, their rows locked until the transaction ends.

    Locked in id order, so two transactions locking some of the same jobs never wait on each other in a circle.
    """
    sql = "SELECT * FROM jobs WHERE id = ANY(CAST(:ids AS UUID[])) ORDER BY id FOR UPDATE"
    return {str(row.id): Job.from_row(row) for row in await conn.execute(text(sql), {"ids": list(job_ids)})}


async def running_jobs_quiet_for(conn: AsyncConnection, seconds: float, limit: int = 100) -> list[Job]:
    """Running jobs unchanged for ``seconds``, locked; rows another transaction holds are skipped."""
    sql = ("SELECT * FROM jobs WHERE status = 'running' AND updated_at < clock_timestamp() - make_interval(secs => :s) "
           "ORDER BY updated_at LIMIT :limit FOR UPDATE SKIP LOCKED")
    return [Job.from_row(row) for row in await conn.execute(text(sql), {"s": seconds, "limit": limit})]


async def jobs_queued_for(conn: AsyncConnection, seconds: float, limit: int = 100) -> list[Job]:
    """Queued jobs waiting for ``seconds`` whose owner was not told yet, locked; held rows are skipped."""
    sql = ("SELECT * FROM jobs WHERE status = 'queued' AND waiting_alerted_at IS NULL "
           "AND waiting_since < clock_timestamp() - make_interval(secs => :s) "
           "ORDER BY waiting_since LIMIT :limit FOR UPDATE SKIP LOCKED")
    return [Job.from_row(row) for row in await conn.execute(text(sql), {"s": seconds, "limit": limit})]


async def save_job(conn: AsyncConnection, job: Job) -> Row:
    """Write the fields ``job`` changed since it was loaded; returns the row as it is now."""
    if not job.changes:
        return await get_job(conn, job.id)
    row = await update_job(conn, job.id, **job.changes)
    job.changes.clear()
    return row


# Newest first, served by the index jobs_user_created (migration 0010).
LIST_ORDER = Keyset((("created_at", "timestamptz"), ("id", "uuid")))


async def save_jobs(conn: AsyncConnection, jobs: list[Job]) -> dict[str, Row]:
    """:func:`save_job` for many jobs in one statement; returns the rows as they are now, by job id.

    Every column any of them changed is written for each of them, from its
    aggregate: one that did not change it holds the value its row has (the
    rows are locked since they were loaded).
    """
    changed = [job for job in jobs if job.changes]
    rows = {}
    if changed:
        columns = sorted({name for job in changed for name in job.changes})
        values = json.dumps([{"id": job.id, **{name: getattr(job, name) for name in columns}} for job in changed],
                            default=_json_value)
        # jsonb_populate_recordset reads each column as the jobs table types it.
        sql = (f"UPDATE jobs SET {', '.join(f'{name} = v.{name}' for name in columns)}, "
               "updated_at = clock_timestamp() FROM jsonb_populate_recordset(NULL::jobs, CAST(:values AS JSONB)) AS v "
               "WHERE jobs.id = v.id RETURNING jobs.*")
        rows = {str(row.id): row for row in await conn.execute(text(sql), {"values": values})}
        for job in changed:
            job.changes.clear()
    for job in jobs:
        if job.id not in rows:
            rows[job.id] = await get_job(conn, job.id)
    return rows


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


async def list_jobs(conn: AsyncConnection, user_id: str, status: str | None, page: Page):
    where = "user_id = :user_id" + (" AND status = :status" if status else "")
    params = {"user_id": user_id, "status": status, **LIST_ORDER.params(page)}
    page_sql = LIST_ORDER.after(page) + LIST_ORDER.window(page)
    return await page_and_total(conn, "jobs", where, page_sql, params, page.first)


# Columns update_job writes as JSONB.
_JSON_COLUMNS = frozenset({"current_metrics", "batch_layout"})


async def update_job(conn: AsyncConnection, job_id: str, **fields) -> Row:
    assignments = ", ".join(
        f"{name} = CAST(:{name} AS JSONB)" if name in _JSON_COLUMNS else f"{name} = :{name}" for name in fields
    )
    values = {name: json.dumps(v) if name in _JSON_COLUMNS else v for name, v in fields.items()}
    # clock_timestamp, not now(): two updates in one transaction get distinct, ordered times,
    # which WatchJob relies on to tell a stale event from a new state.
    sql = f"UPDATE jobs SET {assignments}, updated_at = clock_timestamp() WHERE id = :id RETURNING *"
    return (await conn.execute(text(sql), {"id": job_id, **values})).one()


# Column -> its array type, for the one multi-row insert of insert_metric_points; the timestamp goes as
# whole microseconds since the epoch (exact, and no datetime to build a point).
_POINT_COLUMNS = {
    "job_id": "UUID", "step": "BIGINT", "epoch": "INTEGER", "timestamp": "BIGINT",
    "training_loss": "DOUBLE PRECISION", "learning_rate": "DOUBLE PRECISION",
    **{name: "DOUBLE PRECISION" for name in METRIC_FIELDS},
}
_VALIDATION = ("validation_loss", "perplexity")
_GIVEN = {name: "to_timestamp(0) + timestamp * interval '1 microsecond'" if name == "timestamp" else name
          for name in _POINT_COLUMNS}
_INSERT_POINTS = (
    f"INSERT INTO metric_points ({', '.join(_POINT_COLUMNS)}) SELECT {', '.join(_GIVEN.values())} "
    f"FROM unnest({', '.join(f'CAST(:{name} AS {kind}[])' for name, kind in _POINT_COLUMNS.items())}) "
    f"AS given({', '.join(_POINT_COLUMNS)}) "
    "ON CONFLICT (job_id, step) DO UPDATE SET "
    "validation_loss = EXCLUDED.validation_loss, perplexity = EXCLUDED.perplexity "
    "WHERE metric_points.validation_loss IS NULL AND EXCLUDED.validation_loss IS NOT NULL "
    # xmax is 0 on a row this statement inserted, the updating transaction's id on one it updated.
    "RETURNING job_id::text, step, xmax = 0 AS inserted"
)


def _with_validation(point: job_pb2.MetricPoint, source: job_pb2.MetricPoint) -> job_pb2.MetricPoint:
    """A copy of ``point`` with the validation result of ``source``."""
    joined = job_pb2.MetricPoint()
    joined.CopyFrom(point)
    for name in _VALIDATION:
        if source.HasField(name):
            setattr(joined, name, getattr(source, name))
        else:
            joined.ClearField(name)
    return joined


async def insert_metric_points(
    conn: AsyncConnection, points: list[job_pb2.MetricPoint]
) -> dict[tuple[str, int], job_pb2.MetricPoint]:
    """Store many points in one statement: each new (job, step) is inserted, and
    a validation result joins the point its step already has (validation runs
    after the step it follows). Returns the points that changed, as stored
    now, by (job id, step); a (job, step) missing from it brought nothing new (a replay).

    Points of one (job, step) in ``points`` are one row: the first, with the
    first validation result among them. ``points`` must carry canonical job ids;
    their timestamps are stored (and returned) to the microsecond.
    """
    merged: dict[tuple[str, int], job_pb2.MetricPoint] = {}
    for point in points:
        key = (point.job_id, point.step)
        if (kept := merged.get(key)) is None:
            merged[key] = point
        elif not kept.HasField("validation_loss") and point.HasField("validation_loss"):
            merged[key] = _with_validation(kept, point)
    if not merged:
        return {}
    kept = list(merged.values())
    for point in kept:
        point.timestamp.nanos -= point.timestamp.nanos % 1000
    values = {
        "job_id": [p.job_id for p in kept], "step": [p.step for p in kept], "epoch": [p.epoch for p in kept],
        "timestamp": [p.timestamp.seconds * 1_000_000 + p.timestamp.nanos // 1000 for p in kept],
        "training_loss": [p.training_loss for p in kept], "learning_rate": [p.learning_rate for p in kept],
        **{name: [getattr(p, name) if p.HasField(name) else None for p in kept] for name in METRIC_FIELDS},
    }
    rows = (await conn.execute(text(_INSERT_POINTS), values)).all()
    stored = {(row.job_id, row.step): merged[(row.job_id, row.step)] for row in rows if row.inserted}
    if joined := [(row.job_id, row.step) for row in rows if not row.inserted]:
        # A validation result joined a stored point (once per evaluated step): that point, as it is now.
        sql = ("SELECT * FROM metric_points WHERE (job_id, step) IN "
               "(SELECT * FROM unnest(CAST(:jobs AS UUID[]), CAST(:steps AS BIGINT[])))")
        for row in await conn.execute(text(sql), {"jobs": [j for j, _ in joined], "steps": [s for _, s in joined]}):
            stored[(str(row.job_id), row.step)] = metric_point_message(row)
    return stored


async def metric_points(conn: AsyncConnection, job_id: str, after_step: int, limit: int) -> list[Row]:
    rows = await conn.execute(
        text("SELECT * FROM metric_points WHERE job_id = :job_id AND step > :after ORDER BY step LIMIT :limit"),
        {"job_id": job_id, "after": after_step, "limit": limit},
    )
    return list(rows)


async def job_detail(
    conn: AsyncConnection, job_id: str, user_id: str, limit: int
) -> tuple[Record | None, list, bool, list[billing_pb2.CostRecord]]:
    """The user's job (None when it is not theirs), its latest ``limit`` points in step order, whether older
    ones exist, and its cost records newest first: ONE statement (one snapshot, one round trip), the points
    and the records arrays beside the job's row, read by a backward scan of each table's index."""
    sql = ("SELECT j.*, "
           "ARRAY(SELECT p FROM metric_points p WHERE p.job_id = j.id ORDER BY p.step DESC LIMIT :limit) "
           "AS latest_points, "
           "ARRAY(SELECT c.record FROM job_cost_records c WHERE c.job_id = j.id "
           "ORDER BY c.recorded_at DESC, c.id DESC) AS cost_records "
           "FROM jobs j WHERE j.id = :id AND j.user_id = :user_id")
    rows = await fetch(conn, sql, {"id": job_id, "user_id": user_id, "limit": limit + 1})
    if not rows:
        return None, [], False, []
    row = rows[0]
    points = [SimpleNamespace(**dict(point.items())) for point in row.latest_points[limit::-1]]
    records = [billing_pb2.CostRecord.FromString(record) for record in row.cost_records]
    return row, points[-limit:], len(row.latest_points) > limit, records


_INSERT_COST_RECORDS = (
    "INSERT INTO job_cost_records (id, job_id, user_id, recorded_at, record) "
    "SELECT given.* FROM unnest(CAST(:ids AS UUID[]), CAST(:jobs AS UUID[]), CAST(:users AS UUID[]), "
    "CAST(:at AS TIMESTAMPTZ[]), CAST(:records AS BYTEA[])) AS given (id, job_id, user_id, recorded_at, record) "
    # A record of a job this service does not hold as its user's is not kept.
    "JOIN jobs j ON j.id = given.job_id AND j.user_id = given.user_id "
    "ON CONFLICT (id) DO NOTHING"
)


async def insert_cost_records(conn: AsyncConnection, records: list[billing_pb2.CostRecord]) -> None:
    """Keep ``records`` (canonical ids, each of a job) in one statement; one already kept is left as it is."""
    await conn.execute(text(_INSERT_COST_RECORDS), {
        "ids": [r.id for r in records], "jobs": [r.job_id for r in records], "users": [r.user_id for r in records],
        "at": [r.recorded_at.ToDatetime(tzinfo=timezone.utc) for r in records],
        "records": [r.SerializeToString() for r in records],
    })


async def latest_metric_points(
    conn: AsyncConnection, job_id: str, after_step: int, before_step: int | None, limit: int
) -> tuple[list[Row], bool]:
    """The job's latest ``limit`` points with ``after_step < step < before_step`` (no upper bound for None),
    in step order, and whether older ones in that range exist: a backward range scan of the primary key."""
    below = " AND step < :before" if before_step is not None else ""
    rows = list(await conn.execute(
        text(f"SELECT * FROM metric_points WHERE job_id = :job_id AND step > :after{below} "
             "ORDER BY step DESC LIMIT :limit"),
        {"job_id": job_id, "after": after_step, "before": before_step, "limit": limit + 1},
    ))
    return rows[:limit][::-1], len(rows) > limit


async def last_metric_point(conn: AsyncConnection, job_id: str) -> Row | None:
    """The job's point of its highest step."""
    rows = await conn.execute(
        text("SELECT * FROM metric_points WHERE job_id = :job_id ORDER BY step DESC LIMIT 1"), {"job_id": job_id}
    )
    return rows.first()


async def measured_speed(conn: AsyncConnection, speed_key: str) -> MeasuredSpeed | None:
    """The speed kept for runs of ``speed_key``; None when none completed yet. Every estimate reads it."""
    rows = await fetch(conn, "SELECT tokens_per_second, overhead_seconds FROM measured_speeds WHERE speed_key = :key",
                       {"key": speed_key})
    return MeasuredSpeed(rows[0].tokens_per_second, rows[0].overhead_seconds) if rows else None


async def save_measured_speed(conn: AsyncConnection, speed_key: str, speed: MeasuredSpeed) -> None:
    await conn.execute(
        text(
            "INSERT INTO measured_speeds (speed_key, tokens_per_second, overhead_seconds, runs) "
            "VALUES (:key, :tps, :overhead, 1) ON CONFLICT (speed_key) DO UPDATE SET "
            "tokens_per_second = EXCLUDED.tokens_per_second, overhead_seconds = EXCLUDED.overhead_seconds, "
            "runs = measured_speeds.runs + 1, updated_at = now()"
        ),
        {"key": speed_key, "tps": speed.tokens_per_second, "overhead": speed.overhead_seconds},
    )


async def save_dataset_facts(conn: AsyncConnection, facts: dict) -> None:
    """Write one dataset's facts (services.job_svc.dataset_facts) unless the row already holds a version as
    new or newer: a redelivered or late event changes nothing."""
    await conn.execute(
        text(
            "INSERT INTO dataset_facts (dataset_id, user_id, name, status, total_tokens, conversations, "
            "validation_conversations, deleted_at, version) VALUES (:dataset_id, :user_id, :name, :status, "
            ":total_tokens, :conversations, :validation_conversations, :deleted_at, :version) "
            "ON CONFLICT (dataset_id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status, "
            "total_tokens = EXCLUDED.total_tokens, conversations = EXCLUDED.conversations, "
            "validation_conversations = EXCLUDED.validation_conversations, deleted_at = EXCLUDED.deleted_at, "
            "version = EXCLUDED.version WHERE dataset_facts.version < EXCLUDED.version"
        ),
        facts,
    )


async def estimate_inputs(conn: AsyncConnection, user_id: str, dataset_id: str,
                          speed_key: str) -> tuple[Record | None, MeasuredSpeed | None]:
    """What EstimateJob reads, in one statement: the caller's dataset facts (None: not here) and the speed
    measured for ``speed_key`` (None: no run of its kind completed)."""
    [row] = await fetch(
        conn,
        "SELECT f.dataset_id, f.name, f.status, f.total_tokens, f.conversations, f.validation_conversations, "
        "f.deleted_at, m.tokens_per_second, m.overhead_seconds FROM (SELECT) AS one "
        "LEFT JOIN dataset_facts f ON f.dataset_id = :dataset_id AND f.user_id = :user_id "
        "LEFT JOIN measured_speeds m ON m.speed_key = :key",
        {"dataset_id": dataset_id, "user_id": user_id, "key": speed_key},
    )
    measured = None if row.tokens_per_second is None else MeasuredSpeed(row.tokens_per_second, row.overhead_seconds)
    return (None if row.dataset_id is None else row), measured
