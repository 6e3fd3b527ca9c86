"""The shared Database against real PostgreSQL: read-only transactions, and a
pool that pings nothing yet survives PostgreSQL restarting under it."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from brightrun.dataset.v1 import dataset_pb2, dataset_pb2_grpc
from services.common.components import Postgres
from services.common.db import Database, fetch, refused_value
from services.common.grpc import as_user, channel, create_server
from services.common.outages import is_outage
from services.dataset_svc.handlers import DatasetHandlers
from services.dataset_svc.server import MIGRATIONS


@pytest.fixture
async def db(settings, tmp_path):
    database = Database(settings.database_url, f"t_{uuid.uuid4().hex[:12]}", pool_size=1)
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_things.sql").write_text("CREATE TABLE things (id UUID PRIMARY KEY);")
    await database.migrate(migrations)
    database.committed.clear()
    yield database
    await database.close()


async def test_a_read_is_one_read_only_transaction_that_leaves_the_outbox_relay_asleep(db):
    async with db.read() as conn:
        assert (await conn.execute(text("SHOW transaction_read_only"))).scalar() == "on"
        assert (await conn.execute(text("SELECT count(*) FROM things"))).scalar() == 0
    assert not db.committed.is_set()
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with db.read() as conn:
            await conn.execute(text("INSERT INTO things (id) VALUES (gen_random_uuid())"))
    # The same pooled connection (pool_size=1) writes again in a transaction: read-only did not stick to it.
    async with db.transaction() as conn:
        assert (await conn.execute(text("SHOW transaction_read_only"))).scalar() == "off"
        await conn.execute(text("INSERT INTO things (id) VALUES (gen_random_uuid())"))
    assert db.committed.is_set()


async def _now_twice(conn) -> tuple:
    first = (await conn.execute(text("SELECT now()"))).scalar()
    await asyncio.sleep(0.01)
    return first, (await conn.execute(text("SELECT now()"))).scalar()


async def test_a_statement_runs_outside_any_transaction_and_autocommit_does_not_stick_to_the_connection(db):
    async with db.statement() as conn:
        first, second = await _now_twice(conn)
        assert second > first  # each statement its own transaction: no BEGIN was sent
        assert (await conn.execute(text("SELECT count(*) FROM things"))).scalar() == 0
    assert not db.committed.is_set()
    # The same pooled connection (pool_size=1) is transactional again: a failed transaction leaves nothing.
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            first, second = await _now_twice(conn)
            assert second == first
            await conn.execute(text("INSERT INTO things (id) VALUES (gen_random_uuid())"))
            raise RuntimeError("rolled back")
    async with db.statement() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM things"))).scalar() == 0


async def test_fetch_answers_what_sqlalchemy_answers_and_raises_its_errors(db):
    """The hot reads' driver path: the same values as conn.execute(text(...)), columns as attributes, a
    parameter named twice and a ``::`` cast read right; a refused value is SQLAlchemy's error, as callers
    (refused_value, services.common.outages) expect."""
    sql = ("SELECT id, CAST(:tag AS text) AS tag, :tag || '!' AS shout, '1'::int AS one, "
           "TIMESTAMPTZ '2026-01-02 03:04:05+00' AS at, CAST(:doc AS jsonb) AS doc FROM things WHERE id = :id")
    async with db.transaction() as conn:
        thing = (await conn.execute(text("INSERT INTO things (id) VALUES (gen_random_uuid()) RETURNING id"))).scalar()
    params = {"id": str(thing), "tag": "a:b", "doc": '{"n": [1, 2]}'}
    async with db.statement() as conn:
        expected = (await conn.execute(text(sql), params)).one()
        rows = await fetch(conn, sql, params)
        assert len(rows) == 1 and tuple(rows[0]) == tuple(expected)
        assert (rows[0].id, rows[0].tag, rows[0].shout, rows[0].one, rows[0].doc) == (
            thing, "a:b", "a:b!", 1, {"n": [1, 2]})
        with pytest.raises(AttributeError):
            rows[0].missing
        assert await fetch(conn, sql, {**params, "id": str(uuid.uuid4())}) == []
        with pytest.raises(DBAPIError) as refused:
            await fetch(conn, sql, {**params, "id": "not-a-uuid"})
        assert refused_value(refused.value)
        assert len(await fetch(conn, sql, params)) == 1  # the connection is still good
    async with db.read() as conn:  # in a transaction: SQLAlchemy's own execution, the same rows
        assert [tuple(row) for row in await fetch(conn, sql, params)] == [tuple(expected)]


@pytest.mark.slow
async def test_after_postgres_restarts_one_call_meets_an_outage_and_the_next_ones_a_fresh_pool(tmp_path):
    """No ping on checkout: the first statement on a connection from before the
    restart fails as an outage (UNAVAILABLE, which the gRPC channel retries),
    and every other pooled connection from before is dropped with it."""
    pg = Postgres(tmp_path / "pg", fast=True)
    with pg:
        db = Database(pg.dsn, "things", pool_size=3)
        try:

            async def read(delay: float) -> int:
                async with db.read() as conn:
                    await asyncio.sleep(delay)  # held at once: three connections in the pool
                    return (await conn.execute(text("SELECT 1"))).scalar()

            assert await asyncio.gather(*(read(0.2) for _ in range(3))) == [1, 1, 1]
            pg.stop()
            pg.start()
            with pytest.raises(Exception) as failed:
                await read(0)
            assert is_outage(failed.value), failed.value
            assert [await read(0) for _ in range(3)] == [1, 1, 1]
        finally:
            await db.close()


@pytest.mark.slow
async def test_after_postgres_restarts_a_callers_first_call_is_answered_through_the_channels_retry(tmp_path):
    """The outage a dropped connection causes is UNAVAILABLE, which the channel
    of services.common.grpc retries: the caller sees the answer, not the outage."""
    pg = Postgres(tmp_path / "pg", fast=True)
    with pg:
        db = Database(pg.dsn, "dataset")
        await db.migrate(MIGRATIONS)
        server, port, _ = create_server(
            "127.0.0.1:0",
            [lambda s: dataset_pb2_grpc.add_DatasetServiceServicer_to_server(DatasetHandlers(db, None, None), s)],
            [],
        )
        await server.start()
        client = channel(f"127.0.0.1:{port}")
        stub = dataset_pb2_grpc.DatasetServiceStub(client)

        async def get() -> grpc.StatusCode:
            request = dataset_pb2.GetDatasetRequest(dataset_id=str(uuid.uuid4()))
            with pytest.raises(grpc.aio.AioRpcError) as answered:
                await stub.GetDataset(request, metadata=as_user(str(uuid.uuid4())), timeout=10)
            return answered.value.code()

        try:
            assert await get() == grpc.StatusCode.NOT_FOUND  # read from the database: a connection is pooled
            pg.stop()
            pg.start()
            assert await get() == grpc.StatusCode.NOT_FOUND
        finally:
            await client.close()
            await server.stop(None)
            await db.close()
