"""Session fixtures: the real PostgreSQL, NATS JetStream and S3 store that
integration and end-to-end tests run against, started once per test session,
and the tiny base model built offline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import hang_report
import pytest
import pytest_asyncio
from asyncpg import introspection
from sqlalchemy import event

from services.common import events, identity, nats_access
from services.common.components import Nats, ObjectStore, Postgres
from services.common.config import Settings, read_settings
from services.common.db import Database
from services.common.tiny_model import build_tiny_model

S3_ACCESS_KEY = "brightrun-test"
S3_SECRET_KEY = "brightrun-test-secret"
INTERNAL_TOKEN_SECRET = "brightrun-test-internal-token-secret-0123456789"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The offline tiny Llama base model with its tokenizer and chat template."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


def pytest_configure(config):
    config.pluginmanager.register(hang_report.HangReporter(), "hang-report")


@pytest_asyncio.fixture(loop_scope="session", scope="session", autouse=True)
async def _hang_report_loop(request):
    """Lets a hang report list the tasks of the session's event loop (tests/hang_report.py)."""
    request.config.pluginmanager.get_plugin("hang-report").watch_loop(asyncio.get_running_loop())
    yield


@pytest.fixture(scope="session")
def infra(tmp_path_factory, request):
    """PostgreSQL, NATS and SeaweedFS, really started; stopped at the end of the session."""
    base = tmp_path_factory.mktemp("infra")
    pg = Postgres(base / "postgres", fast=True)
    nats = Nats(base / "nats")
    store = ObjectStore(
        base / "s3", access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY, buckets=("lora-datasets", "lora-models")
    )
    started = []
    try:
        for component in (pg, nats, store):
            component.start()
            started.append(component)
        request.config.pluginmanager.get_plugin("hang-report").watch_postgres(pg.psql())
        yield pg, nats, store
    finally:
        for component in reversed(started):
            component.stop()


@pytest.fixture(scope="session")
def settings(infra, tiny_model, tmp_path_factory) -> Settings:
    """Settings of a platform wired to the session's real components."""
    pg, nats, store = infra
    settings = read_settings(
        {
            "BRIGHTRUN_HOME": str(tmp_path_factory.mktemp("home")),
            "BRIGHTRUN_DATABASE_URL": pg.dsn,
            # Services started in-process and the tests' own connections share this URL, which logs in
            # as the identity that may do anything (tests/integration/test_nats_access.py holds each
            # identity to its own subjects; the embedded platform gives each process its own).
            "BRIGHTRUN_NATS_URL": nats.url_for(nats_access.ADMIN),
            "BRIGHTRUN_S3_ENDPOINT": store.endpoint_url,
            "BRIGHTRUN_S3_ACCESS_KEY": S3_ACCESS_KEY,
            "BRIGHTRUN_S3_SECRET_KEY": S3_SECRET_KEY,
            "BRIGHTRUN_DEFAULT_BASE_MODEL": str(tiny_model),
            "BRIGHTRUN_GRPC_PORT": "0",
            "BRIGHTRUN_INTERNAL_TOKEN_SECRET": INTERNAL_TOKEN_SECRET,
        }
    )
    # The tests call services as users (services.common.grpc.as_user), some on servers they wire themselves.
    identity.install(settings.internal_token_secret)
    return settings


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def nats(settings, request):
    """A NATS connection and its JetStream context, named after the test module."""
    nc, js = await events.connect(settings.nats_url, request.module.__name__)
    yield nc, js
    await nc.close()


def _introspection(sql: str) -> bool:
    """Whether asyncpg sent ``sql`` to learn a type (a composite row's, once per connection), not the caller."""
    return sql in (introspection.INTRO_LOOKUP_TYPES, introspection.INTRO_LOOKUP_TYPES_13) or "set_config('jit'" in sql


class CountingDatabase(Database):
    """A service's Database that records, in ``opened``, each ``read()``, ``statement()`` and
    ``transaction()`` it begins:
    a handler served with it shows how many transactions a call costs, and of which kind."""

    def __init__(self, url: str, schema: str):
        super().__init__(url, schema)
        self.opened: list[str] = []
        # Each SQL statement sent (on a statement() connection, fetch's too): a one-statement read shows one.
        self.sent: list[str] = []
        event.listen(self.engine.sync_engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: self.sent.append(statement))

    @asynccontextmanager
    async def read(self) -> AsyncIterator:
        self.opened.append("read")
        async with super().read() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator:
        self.opened.append("transaction")
        async with super().transaction() as conn:
            yield conn

    @asynccontextmanager
    async def statement(self) -> AsyncIterator:
        """Counts, beside SQLAlchemy's statements, those services.common.db.fetch sends on the driver itself."""
        self.opened.append("statement")
        async with super().statement() as conn:
            driver = (await conn.get_raw_connection()).driver_connection

            def sent(query) -> None:
                if not _introspection(query.query):
                    self.sent.append(query.query)

            driver.add_query_logger(sent)
            try:
                yield conn
            finally:
                driver.remove_query_logger(sent)


@pytest.fixture(scope="session")
def counting_database():
    """The CountingDatabase class (a fixture, so test modules need not import conftest)."""
    return CountingDatabase
