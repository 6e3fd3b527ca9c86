"""Every list query is an index range scan in its order: each store function's own SQL (captured as it is
sent, with its parameters) runs under EXPLAIN on real PostgreSQL, first page and cursor page, and its plan
must read the expected index with no Sort. Sequential and bitmap scans are switched off for the EXPLAIN, so
on these small tables the planner shows what it does on a large one: the index that both filters and
orders, or, without such an index, another one followed by a Sort (which fails the test)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import event

from services.artifact_svc import store as artifact_store
from services.billing_svc import store as billing_store
from services.billing_svc import webhook_store
from services.common.db import Database
from services.common.paging import Page
from services.dataset_svc import store as dataset_store
from services.job_svc import store as job_store

SERVICES = Path(__file__).resolve().parents[2] / "services"
USER, JOB = str(uuid.uuid4()), str(uuid.uuid4())
AFTER = (datetime(2026, 5, 1, tzinfo=timezone.utc).isoformat(), str(uuid.uuid4()))
FIRST, NEXT = Page(20), Page(20, after=AFTER)


def _case(name, schema, index, call):
    return pytest.param(schema, index, call, id=name)


CASES = [
    _case("datasets", "dataset", "datasets_user_created_id",
          lambda c, p: dataset_store.list_datasets(c, USER, None, "", p)),
    _case("datasets by status", "dataset", "datasets_user_created_id",
          lambda c, p: dataset_store.list_datasets(c, USER, "ready", "", p)),
    _case("jobs", "job", "jobs_user_created_id", lambda c, p: job_store.list_jobs(c, USER, None, p)),
    _case("jobs by status", "job", "jobs_user_status_created_id",
          lambda c, p: job_store.list_jobs(c, USER, "running", p)),
    _case("models", "artifact", "model_artifacts_user_created_id",
          lambda c, p: artifact_store.list_artifacts(c, USER, "created", p)),
    _case("cost records", "billing", "cost_records_user_recorded_id",
          lambda c, p: billing_store.list_cost_records(c, USER, None, p)),
    _case("a job's cost records", "billing", "cost_records_user_job_recorded",
          lambda c, p: billing_store.list_cost_records(c, USER, JOB, p)),
    _case("notifications", "billing", "notifications_user_created_id",
          lambda c, p: billing_store.list_notifications(c, USER, False, p)),
    _case("unread notifications", "billing", "notifications_user_unread_id",
          lambda c, p: billing_store.list_notifications(c, USER, True, p)),
    _case("webhooks", "billing", "webhooks_user_created_id", lambda c, p: webhook_store.list_webhooks(c, USER, p)),
    _case("deliveries", "billing", "webhook_deliveries_webhook_created_id",
          lambda c, p: webhook_store.list_deliveries(c, JOB, p)),
    _case("metric points forward", "job", "metric_points_pkey",
          lambda c, p: job_store.metric_points(c, JOB, 0 if p.after is None else 40, p.limit)),
    _case("metric points latest", "job", "metric_points_pkey",
          lambda c, p: job_store.latest_metric_points(c, JOB, 0, None if p.after is None else 40, p.limit)),
]
_MIGRATIONS = {"dataset": "dataset_svc", "job": "job_svc", "artifact": "artifact_svc", "billing": "billing_svc"}


@pytest.fixture(scope="module")
def schemas() -> dict[str, str]:
    """A fresh schema per service, migrated on first use (each module run gets its own)."""
    return {name: f"explain_{name}_{uuid.uuid4().hex[:8]}" for name in _MIGRATIONS}


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize("page", [FIRST, NEXT], ids=["first page", "cursor page"])
@pytest.mark.parametrize(("service", "index", "call"), CASES)
async def test_each_list_query_is_a_range_scan_of_its_index(settings, schemas, service, index, call, page):
    db = Database(settings.database_url, schemas[service], pool_size=1)
    await db.migrate(SERVICES / _MIGRATIONS[service] / "migrations")
    sent: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT *") or " ORDER BY " in statement:
            sent.append((statement, tuple(parameters)))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.transaction() as conn:
            await call(conn, page)
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
            assert len(sent) == 1, sent
            statement, parameters = sent[0]
            plan = (await raw.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *parameters))
    finally:
        await db.close()
    # SQLAlchemy's asyncpg connections decode json themselves.
    nodes = list(_nodes((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]))
    kinds = [node["Node Type"] for node in nodes]
    assert any(node.get("Index Name") == index for node in nodes), (index, statement, kinds)
    assert not {"Sort", "Incremental Sort"} & set(kinds), (statement, kinds)
    if page.after is not None and "step" not in statement:
        # The cursor bounds the index scan itself, not a filter over rows already read.
        scans = [node.get("Index Cond", "") for node in nodes if node.get("Index Name") == index]
        assert any(") <" in cond for cond in scans), scans
