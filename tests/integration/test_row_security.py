"""Row-level security, the second wall: each service's own role, on real PostgreSQL, sees and writes only
the acting user's rows of every user-owned table even when a query forgets its user filter; the
platform's own work sees them all; the roles are neither superusers nor BYPASSRLS.

Each service's role is provisioned (``services.common.db_roles``, as the launcher does) on a fresh schema
of its own here, migrated by the role itself, so the tests that connect as the superuser are untouched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from brightrun.billing.v1 import billing_pb2, billing_pb2_grpc
from services.billing_svc.server import start as start_billing
from services.common import acting, db_roles, row_security
from services.common.db import Database
from services.common.grpc import as_user, channel
from services.common.runtime import ServiceRuntime
from services.job_svc import store as job_store

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVICES = Path(__file__).parents[2] / "services"
USER_A, USER_B = str(uuid.uuid4()), str(uuid.uuid4())
# Every table a session reaches only as its user (or the platform), by service.
OWNED_TABLES = {
    "dataset_svc": {"datasets", "dataset_usage"},
    "job_svc": {"jobs", "metric_points", "dataset_facts", "job_cost_records"},
    "artifact_svc": {"model_artifacts", "model_exports"},
    "billing_svc": {"cost_records", "notifications", "job_charges", "budgets", "webhooks", "webhook_deliveries",
                    "webhook_attempts"},
}
# One row of a user's, per table: (table, its SQL with :user_id and :id).
ROWS = {
    "dataset_svc": [("datasets",
                     "INSERT INTO datasets (id, user_id, name, storage_bucket, storage_path, file_name, file_size, "
                     "base_model) VALUES (:id, :user_id, 'd', 'b', :tag, 'f.jsonl', 1, 'm')")],
    "job_svc": [("jobs",
                 "INSERT INTO jobs (id, user_id, dataset_id, preset_id, hyperparameters, gpu_config, total_epochs, "
                 "total_steps, estimated_total_cost) VALUES (:id, :user_id, :id, 'p', '{}', '{}', 1, 1, 0)"),
                ("metric_points",
                 "INSERT INTO metric_points (job_id, step, epoch, timestamp, training_loss, learning_rate) "
                 "SELECT id, 1, 1, now(), 1, 0.1 FROM jobs WHERE user_id = :user_id"),
                ("job_cost_records",
                 "INSERT INTO job_cost_records (id, job_id, user_id, recorded_at, record) "
                 "SELECT :id, id, :user_id, now(), '' FROM jobs WHERE user_id = :user_id"),
                ("dataset_facts",
                 "INSERT INTO dataset_facts (dataset_id, user_id, name, status, version) "
                 "VALUES (:id, :user_id, 'd', 'ready', now())")],
    "artifact_svc": [("model_artifacts",
                      "INSERT INTO model_artifacts (id, user_id, job_id, dataset_id, name, quality_metrics, "
                      "training_summary, configuration, artifacts, storage_bucket) "
                      "VALUES (:id, :user_id, :id, :id, 'a', '{}', '{}', '{}', '[]', 'b')")],
    "billing_svc": [("budgets", "INSERT INTO budgets (user_id, amount_cents) VALUES (:user_id, 100)"),
                    ("webhooks",
                     "INSERT INTO webhooks (id, user_id, url, event_types, secret) "
                     "VALUES (:id, :user_id, 'https://example.com', '{}', 's')")],
}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def databases(infra):
    """Each service's Database as its own role, on a fresh schema that role owns and migrated."""
    pg = infra[0]
    admin = await asyncpg.connect(pg.asyncpg_dsn)
    opened = {}
    try:
        for service, schema in db_roles.SERVICE_SCHEMAS.items():
            fresh = f"rls_{schema}_{uuid.uuid4().hex[:8]}"
            await admin.execute(db_roles.provision_sql(db_roles.role_of(service), fresh))
            opened[service] = Database(pg.service_dsn(service), fresh, pool_size=1)
            await opened[service].migrate(SERVICES / service / "migrations")
        with acting.as_platform():
            for service, rows in ROWS.items():
                async with opened[service].transaction() as conn:
                    for user in (USER_A, USER_B):
                        for _, sql in rows:
                            await conn.execute(text(sql), {"user_id": user, "id": str(uuid.uuid4()), "tag": uuid.uuid4().hex})
        yield opened
    finally:
        for database in opened.values():
            await database.close()
        await admin.close()


async def test_each_service_connects_as_its_own_role_without_superuser_or_bypassrls(databases):
    for service, database in databases.items():
        async with database.statement() as conn:
            row = (await conn.execute(text(
                "SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            ))).one()
            assert (row.name, row.rolsuper, row.rolbypassrls) == (db_roles.role_of(service), False, False)
            assert not await row_security.bypasses(conn)


async def test_a_role_cannot_reach_another_services_schema(databases):
    jobs_schema = databases["job_svc"].schema
    async with databases["billing_svc"].statement() as conn:
        with pytest.raises(ProgrammingError, match="permission denied"):
            await conn.execute(text(f"SELECT * FROM {jobs_schema}.jobs"))


async def test_every_user_owned_table_forces_a_policy(databases):
    for service, database in databases.items():
        async with database.statement() as conn:
            rows = (await conn.execute(text(
                "SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity AS forced, "
                "EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid) AS policy, "
                "EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id') AS owned "
                "FROM pg_class c WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind = 'r'"),
                {"schema": database.schema})).all()
        protected = {row.relname for row in rows if row.forced and row.policy}
        assert protected == OWNED_TABLES[service]
        # A new table with a user_id column and no policy fails here.
        assert {row.relname for row in rows if row.owned} <= protected


@pytest.mark.parametrize("service", list(ROWS))
async def test_a_query_without_its_user_filter_sees_only_the_acting_users_rows(databases, service):
    database = databases[service]
    for table, _ in ROWS[service]:
        owner = f"(SELECT user_id FROM jobs j WHERE j.id = {table}.job_id)" if table == "metric_points" else "user_id"
        forgetful = f"SELECT CAST({owner} AS TEXT) FROM {table}"  # no WHERE user_id = ...
        with acting.as_user(USER_A):
            async with database.statement() as conn:
                assert set((await conn.execute(text(forgetful))).scalars()) == {USER_A}, table
        with acting.as_user(USER_B):
            async with database.read() as conn:
                assert set((await conn.execute(text(forgetful))).scalars()) == {USER_B}, table
        async with database.statement() as conn:  # nobody: a context that never said whom it acts for
            assert (await conn.execute(text(forgetful))).all() == [], table
        with acting.as_platform():
            async with database.statement() as conn:
                assert set((await conn.execute(text(forgetful))).scalars()) == {USER_A, USER_B}, table


@pytest.mark.parametrize("service", list(ROWS))
async def test_writing_another_users_row_is_refused(databases, service):
    database = databases[service]
    table, sql = ROWS[service][0]
    with acting.as_user(USER_A):
        with pytest.raises(DBAPIError, match="row-level security"):
            async with database.transaction() as conn:
                await conn.execute(text(sql), {"user_id": USER_B, "id": str(uuid.uuid4()), "tag": uuid.uuid4().hex})
        async with database.transaction() as conn:
            changed = await conn.execute(text(f"UPDATE {table} SET user_id = user_id WHERE user_id = :b"), {"b": USER_B})
            assert changed.rowcount == 0
            with pytest.raises(DBAPIError, match="row-level security"):
                await conn.execute(text(f"UPDATE {table} SET user_id = :b WHERE user_id = :a"), {"a": USER_A, "b": USER_B})
    with acting.as_platform():
        async with database.statement() as conn:
            owners = (await conn.execute(text(f"SELECT CAST(user_id AS TEXT) FROM {table}"))).scalars().all()
    assert sorted(owners) == sorted([USER_A, USER_B])


async def test_a_store_function_handed_another_users_id_finds_nothing(databases):
    database = databases["job_svc"]
    with acting.as_platform():
        async with database.statement() as conn:
            theirs = (await conn.execute(text("SELECT CAST(id AS TEXT) FROM jobs WHERE user_id = :b"),
                                         {"b": USER_B})).scalar_one()
    with acting.as_user(USER_A):
        async with database.statement() as conn:
            assert await job_store.get_job(conn, theirs, USER_B) is None
            assert await job_store.get_job(conn, theirs) is None
            assert await job_store.metric_points(conn, theirs, 0, 100) == []
    with acting.as_user(USER_B):
        async with database.statement() as conn:
            assert (await job_store.get_job(conn, theirs, USER_B)).user_id == uuid.UUID(USER_B)


async def test_a_grpc_call_acts_for_the_user_its_credential_names(databases, settings):
    """billing_svc serving as its own role: the server interceptor sets the acting user from the verified
    internal credential, so a call reads its user's rows, and the sender of webhooks (platform work) runs."""
    database = databases["billing_svc"]
    as_role = dataclasses.replace(settings, database_url=str(database.engine.url))
    runtime = await start_billing(as_role, address="127.0.0.1:0", schema=database.schema)
    try:
        async with channel(f"127.0.0.1:{runtime.port}") as ch:
            stub = billing_pb2_grpc.BillingServiceStub(ch)
            for user, expected in ((USER_A, 1), (USER_B, 1), (str(uuid.uuid4()), 0)):
                reply = await stub.ListWebhooks(billing_pb2.ListWebhooksRequest(), metadata=as_user(user))
                assert (len(reply.webhooks), reply.total_size) == (expected, expected), user
    finally:
        await runtime.stop()


async def test_a_pooled_connection_postgresql_dropped_is_replaced_when_it_changes_hands(databases, infra):
    """Setting the acting user is the first thing a connection that changes hands sends: when PostgreSQL
    dropped it meanwhile (a restart, an idle timeout), the pool replaces it and the read goes through."""
    database = databases["dataset_svc"]  # a pool of one connection
    with acting.as_user(USER_A):
        async with database.statement() as conn:
            backend = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    admin = await asyncpg.connect(infra[0].asyncpg_dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", backend)  # waits until it is gone
    finally:
        await admin.close()
    with acting.as_user(USER_B):
        async with database.statement() as conn:
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != backend
            owners = (await conn.execute(text("SELECT CAST(user_id AS TEXT) FROM datasets"))).scalars().all()
    assert owners == [USER_B]


async def test_what_the_runtime_runs_of_its_own_acts_for_the_platform(databases, settings):
    """Consumers, periodic work and tasks (run_task) see every user's rows; the code that started them, like
    any context that never said whom it acts for, sees none."""
    database = databases["billing_svc"]
    as_role = dataclasses.replace(settings, database_url=str(database.engine.url))
    runtime = await ServiceRuntime.open("rls-test", as_role, schema=database.schema,
                                        migrations=SERVICES / "billing_svc" / "migrations")
    seen: asyncio.Queue[int] = asyncio.Queue()

    async def count() -> None:
        async with runtime.db.statement() as conn:
            await seen.put((await conn.execute(text("SELECT count(*) FROM budgets"))).scalar_one())

    async def once(stopping: asyncio.Event) -> None:
        await count()
        await stopping.wait()

    try:
        runtime.run_task("count-once", once)
        runtime.every("count", 60, count)
        assert [await asyncio.wait_for(seen.get(), 10) for _ in range(2)] == [2, 2]
        await count()
        assert seen.get_nowait() == 0
    finally:
        await runtime.stop()


async def test_provisioning_hands_a_schema_from_before_the_roles_to_the_services_role(infra):
    """A database from before the roles has the schema, its tables and functions owned by the superuser: the
    provisioning SQL (run at every embedded start, or by an operator) hands them to the service's role, and
    running it again changes nothing."""
    pg = infra[0]
    schema, role = f"rls_old_{uuid.uuid4().hex[:8]}", db_roles.role_of("job_svc")
    admin = await asyncpg.connect(pg.asyncpg_dsn)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.jobs (id BIGSERIAL PRIMARY KEY); "
                            f"CREATE FUNCTION {schema}.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        for _ in range(2):
            await admin.execute(db_roles.provision_sql(role, schema))
        owners = await admin.fetch(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1 "
            "UNION ALL SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = CAST($1 AS regnamespace) "
            "UNION ALL SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE pronamespace = CAST($1 AS regnamespace)",
            schema)
    finally:
        await admin.close()
    # The schema, the table, its sequence and primary key index, and the function.
    assert [owner for (owner,) in owners] == [role] * 5
