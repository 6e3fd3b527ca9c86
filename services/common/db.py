"""PostgreSQL access for one service: its own schema, versioned migrations,
transactions, and the outbox and processed-event tables every service has.

Each service connects with ``search_path`` set to its own schema, so its SQL
names bare tables and can never reach another service's by accident, and as its
own role (``services.common.db_roles``), under row-level security: every
connection the pool hands out acts for the identity of the context taking it
(``services.common.row_security``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path

import asyncpg
from asyncpg.exceptions import DataError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.common import row_security

# Seconds after which a pooled connection is replaced when it is next checked out.
POOL_RECYCLE_SECONDS = 1800
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Applied to every service schema before its own migrations.
_BASE_TABLES = row_security.FUNCTIONS + """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version TEXT PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS outbox (
  id BIGSERIAL PRIMARY KEY,
  event_id UUID NOT NULL UNIQUE,
  subject TEXT NOT NULL,
  payload BYTEA NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  published_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
-- The W3C traceparent of the trace that wrote the row, published as a NATS header (services.common.tracing).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS traceparent TEXT;
CREATE TABLE IF NOT EXISTS processed_events (
  consumer TEXT NOT NULL,
  event_id UUID NOT NULL,
  processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
"""


class Database:
    """One service's connection pool, bound to its schema."""

    def __init__(self, url: str, schema: str, *, pool_size: int = 5):
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"schema {schema!r} must be a lower-case SQL identifier")
        self.schema = schema
        # No ping before each use: it would cost a round trip and a transaction
        # per checkout. A pooled connection PostgreSQL dropped (a restart) fails
        # its statement as a disconnect instead: the pool discards every
        # connection of before it, the call is answered UNAVAILABLE (see
        # services.common.outages) and retried by the caller's channel on a
        # fresh one. Recycling bounds how old a connection gets, so one a
        # firewall or proxy silently dropped is not kept forever.
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            pool_recycle=POOL_RECYCLE_SECONDS,
            connect_args={"server_settings": {"search_path": schema}},
        )
        row_security.install(self.engine)
        # Set after every commit so the outbox relay publishes without waiting.
        self.committed = asyncio.Event()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction: committed on exit, rolled back on error."""
        async with self.engine.begin() as conn:
            yield conn
        self.committed.set()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one READ ONLY transaction, for reads: PostgreSQL
        refuses any write in it, and it leaves the outbox relay asleep (nothing
        it commits can be an event)."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(postgresql_readonly=True)
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection without a transaction, for a read that is ONE statement: PostgreSQL runs a lone
        statement in a snapshot of its own, so it is as consistent as in ``read()`` and costs one round trip,
        not three (BEGIN, it, COMMIT). Two statements on it see two snapshots: use ``read()`` for those."""
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def migrate(self, migrations_dir: Path) -> list[str]:
        """Create the schema and apply ``NNNN_name.sql`` files not yet applied, in order.

        Serialised across processes by an advisory lock, so replicas starting
        together apply each migration once. Returns the versions applied now.
        """
        applied: list[str] = []
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": self.schema})
            # A service's own role may not create schemas (services.common.db_roles makes its schema for it),
            # and PostgreSQL checks that right even for a schema that exists.
            if not (await conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": self.schema})).first():
                await conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            await _execute_script(conn, _BASE_TABLES)
            done = set((await conn.execute(text("SELECT version FROM schema_migrations"))).scalars())
            for path in sorted(migrations_dir.glob("*.sql")):
                version = path.stem
                if version in done:
                    continue
                await _execute_script(conn, path.read_text())
                await conn.execute(text("INSERT INTO schema_migrations (version) VALUES (:v)"), {"v": version})
                applied.append(version)
        return applied

    async def close(self) -> None:
        await self.engine.dispose()


async def _execute_script(conn: AsyncConnection, sql: str) -> None:
    # A migration holds several statements; asyncpg runs those only through
    # its simple-query path, not through a prepared statement.
    raw = await conn.get_raw_connection()
    await raw.driver_connection.execute(sql)


async def claim_event(conn: AsyncConnection, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` handles ``event_id`` in this transaction.

    Returns False when it was handled before: the caller skips the work, and
    since the claim commits with the state change, a crash between the two
    leaves neither.
    """
    row = await conn.execute(
        text(
            "INSERT INTO processed_events (consumer, event_id) VALUES (:c, :e) "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        ),
        {"c": consumer, "e": event_id},
    )
    return row.first() is not None


# A bind parameter of SQLAlchemy's text(): ``:name``, not a ``::type`` cast (its own pattern).
_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])")


class Record(asyncpg.Record):
    """A row of :func:`fetch`: its columns read as attributes too, as a SQLAlchemy row's do."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


async def fetch(conn: AsyncConnection, sql: str, params: Mapping[str, object]) -> list[Record]:
    """The rows of ``conn.execute(text(sql), params)`` (the same values): for the hot one-statement reads on a
    :meth:`Database.statement` connection, fetched by asyncpg itself on the connection beneath ``conn``, since
    SQLAlchemy's execution and result objects cost more CPU than such a statement (about 0.2 ms a call).
    On any other connection (in a transaction, which SQLAlchemy begins on the driver only with its own first
    statement) it is that ``conn.execute``.

    When asyncpg raises, the statement runs once more through SQLAlchemy, so that the caller sees SQLAlchemy's
    error as before (a value refused, a dropped connection that invalidates the pool: services.common.outages);
    a lone read outside a transaction is harmless to repeat.
    """
    if conn.sync_connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        return list(await conn.execute(text(sql), params))
    positional, names = _positional(sql)
    driver = (await conn.get_raw_connection()).driver_connection
    try:
        return await driver.fetch(positional, *(params[name] for name in names), record_class=Record)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return list(await conn.execute(text(sql), params))


@lru_cache(maxsize=256)
def _positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``:name`` parameters numbered as asyncpg takes them (``$1``...), and their names."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _BIND.sub(number, sql), tuple(names)


async def page_and_total(conn: AsyncConnection, table: str, where: str, page_sql: str, params: dict,
                         first_page: bool):
    """A list page (``SELECT * FROM table WHERE where`` + ``page_sql``, its order and limit) and how many
    rows match ``where`` in all, as ONE statement: the count is a subquery PostgreSQL runs once beside the
    page. An empty first page means no rows at all; only an empty later page (past the list's end) asks for
    the count again on its own. Returns (rows, total)."""
    count = f"SELECT count(*) FROM {table} WHERE {where}"
    rows = await fetch(conn, f"SELECT *, ({count}) AS total_size FROM {table} WHERE {where}{page_sql}", params)
    if rows or first_page:
        return rows, rows[0].total_size if rows else 0
    return rows, (await conn.execute(text(count), params)).scalar_one()


async def claim_events(conn: AsyncConnection, consumer: str, event_ids: list[str]) -> set[str]:
    """:func:`claim_event` for many ids in one statement; returns those not handled before.

    Ids must be canonical UUID strings (``str(uuid.UUID(...))``), as the
    returned ones are.
    """
    rows = await conn.execute(
        text(
            "INSERT INTO processed_events (consumer, event_id) SELECT :c, unnest(CAST(:ids AS UUID[])) "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        ),
        {"c": consumer, "ids": list(event_ids)},
    )
    return {str(row.event_id) for row in rows}


def refused_value(exc: BaseException) -> bool:
    """Whether ``exc`` is a value the statement carried being refused (SQLSTATE
    class 22, "data exception": not a UUID, out of range): the same values
    would be refused on every retry. asyncpg raises the same class when it
    refuses to encode a parameter before sending it."""
    return isinstance(exc, DBAPIError) and isinstance(getattr(exc.orig, "__cause__", None), DataError)
