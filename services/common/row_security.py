"""Who a service's database session acts for: PostgreSQL row-level security, the second wall.

Every query of a service is scoped by the caller's user id in its own SQL; row-level security makes
PostgreSQL enforce the same scope, so a query that forgets its ``WHERE user_id`` (or is handed another
user's id) still sees, changes and adds only the acting user's rows. Each user-owned table carries
``ENABLE`` + ``FORCE ROW LEVEL SECURITY`` (FORCE: the service's role owns its tables and would otherwise
be exempt) and a policy, in the service's migrations, on the session's settings (read through the
:data:`FUNCTIONS` every service schema has): ``acting_for_platform() OR user_id = acting_user()``, or for
a table whose rows belong to another's (a job's metric points) that its parent row is visible.

- ``brightrun.user_id``: the user a gRPC call acts for, verified from its internal credential
  (``services.common.identity``) by the server interceptor (``services.common.grpc``); empty for nobody.
- ``brightrun.platform``: ``on`` for the platform's own work (consumers, the outbox relay, sweeps,
  webhook deliveries: every task :class:`services.common.runtime.ServiceRuntime` runs), which spans users.

The acting identity is :mod:`services.common.acting`'s context variable, so it follows each call's task
and nothing else; what never set one acts for nobody and sees no user's rows (fail closed). It lives
there, without SQLAlchemy, for what only sets it (the gRPC plumbing). :func:`install` puts it on every
connection a pool hands out, before its transaction begins. It is a session setting, written only when
the connection last acted for someone else: a connection that serves the same user again costs no round
trip, and one that changes hands costs one (``SELECT set_config(...)``) before its own statements. Since
the setting is written outside any transaction, a rollback cannot leave it different from what the pool
believes. A superuser or a role with BYPASSRLS skips every policy: each service connects as its own
role (:mod:`services.common.db_roles`), and :func:`bypasses` lets a service warn when it does not.
"""

from __future__ import annotations

from asyncpg.exceptions import InterfaceError, InternalClientError
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util.concurrency import await_

from services.common import acting
from services.common.outages import is_outage

USER_SETTING = "brightrun.user_id"
PLATFORM_SETTING = "brightrun.platform"

# Created in every service schema (services.common.db): the policies read the session through these.
FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION acting_user() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('{USER_SETTING}', true), '')::uuid $$;
CREATE OR REPLACE FUNCTION acting_for_platform() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT coalesce(current_setting('{PLATFORM_SETTING}', true), '') = 'on' $$;
"""

# Where a pooled connection's entry remembers whom its session last acted for.
_INFO_KEY = "brightrun_acting"
_SET = f"SELECT set_config('{USER_SETTING}', $1, false), set_config('{PLATFORM_SETTING}', $2, false)"


def install(engine: AsyncEngine) -> None:
    """Give every connection ``engine``'s pool hands out the acting identity of the context taking it."""
    event.listen(engine.sync_engine, "checkout", _on_checkout)


def _on_checkout(dbapi_connection, entry, proxy) -> None:
    # Runs in SQLAlchemy's greenlet, which carries the asyncio task's context (so the context variable),
    # before any BEGIN: the asyncpg adapter starts its transaction with the first statement.
    wanted = acting.current()
    if entry.info.get(_INFO_KEY) == wanted:
        return
    entry.info.pop(_INFO_KEY, None)  # unknown until the setting is written
    try:
        await_(entry.driver_connection.execute(_SET, wanted.user_id, "on" if wanted.platform else "off"))
    except Exception as error:
        # A connection PostgreSQL dropped (a restart, a terminated backend): asyncpg finds it closed, or still
        # reading the FATAL message the server sent it (InternalClientError); the pool replaces it and retries.
        if isinstance(error, (InterfaceError, InternalClientError)) or is_outage(error):
            raise DisconnectionError(str(error)) from error
        raise
    entry.info[_INFO_KEY] = wanted


async def bypasses(conn: AsyncConnection) -> bool:
    """Whether the connected role skips row-level security (a superuser, or BYPASSRLS)."""
    row = await conn.execute(text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"))
    return bool(row.scalar_one())
