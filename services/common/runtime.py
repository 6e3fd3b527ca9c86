"""The wiring every service shares: open its database (migrated), connect to
NATS, run the outbox relay and its consumers, serve gRPC with health, and shut
down in the order STYLE.md gives: health NOT_SERVING, stop gRPC with a grace
period, stop consumers, flush the outbox, close NATS and the database.

A consumer parks what it cannot handle and never stops on its own; if its
task ends anyway, health goes NOT_SERVING so that an orchestrator restarts
the process rather than leave it serving with events unread.

Everything the runtime runs of its own (consumers, the outbox relay, periodic
work, NATS subscriptions) acts in the database for the platform, across users;
a gRPC call acts for its caller (``services.common.acting``, enforced by ``services.common.row_security``).

Every service samples its outbox backlog and its consumers' lag for Prometheus
(``services.common.backlog``) and, when ``BRIGHTRUN_METRICS_PORT`` is set,
serves its metrics there.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import grpc
from nats.aio.msg import Msg

from services.common import acting, backlog, events, identity, logs, row_security
from services.common.cancelling import cancel_and_wait
from services.common.config import ConfigError, Settings
from services.common.db import Database
from services.common.grpc import create_server, set_serving
from services.common.process import settled, start_process
from services.common.startup import exit_with

log = logging.getLogger(__name__)


class ServiceRuntime:
    """One running service. Build with :meth:`open`, end with :meth:`stop`."""

    def __init__(self, name: str, settings: Settings, db: Database, nc, js):
        self.name = name
        self.settings = settings
        self.db = db
        self.nc = nc
        self.js = js
        self.port = 0
        self.stopping = asyncio.Event()
        self._relay = events.OutboxRelay(db, js)
        self._consumers: list[asyncio.Task] = []
        # (stream, durable) of each consumer, whose lag is sampled.
        self._subscriptions: list[tuple[str, str]] = []
        self._server: grpc.aio.Server | None = None
        self._health = None
        self._service_names: list[str] = []
        # False once a consumer ended before stop(): the process can no longer do its work.
        self.consuming = True
        self._health_updates: set[asyncio.Task] = set()

    @classmethod
    async def open(cls, name: str, settings: Settings, *, schema: str, migrations: Path) -> "ServiceRuntime":
        """Install the internal token secret, migrate the service's schema, connect to NATS, start the outbox relay."""
        identity.install(settings.internal_token_secret)
        db = Database(settings.database_url, schema)
        applied = await db.migrate(migrations)
        if applied:
            log.info("%s: applied migrations %s", name, ", ".join(applied))
        async with db.statement() as conn:
            if await row_security.bypasses(conn):
                log.warning("%s connects to PostgreSQL as a superuser or a role with BYPASSRLS: row-level "
                            "security does not apply; give it its own role (services.common.db_roles)", name)
        nc, js = await events.connect(settings.nats_url, name, settings.nats_user, settings.nats_password)
        runtime = cls(name, settings, db, nc, js)
        with acting.as_platform():  # the task takes this context with it
            runtime._relay.start()
        runtime.every("backlog-metrics", backlog.SAMPLE_SECONDS, runtime._sample_backlog)
        return runtime

    def consume(
        self, *, stream: str, durable: str, subjects: list[str], handler: events.Handler, ack_wait: float = 60.0
    ) -> None:
        """Run a durable consumer until the service stops, for the platform; ``ack_wait`` must outlast one
        handler call."""
        with acting.as_platform():  # the task takes this context with it
            task = asyncio.create_task(
                events.consume(
                    self.js,
                    stream=stream,
                    durable=durable,
                    subjects=subjects,
                    handler=_in_log_context(handler),
                    stop=self.stopping,
                    ack_wait=ack_wait,
                ),
                name=f"{self.name}-{durable}",
            )
        task.add_done_callback(self._consumer_ended)
        self._consumers.append(task)
        self._subscriptions.append((stream, durable))

    def consume_batches(
        self, *, stream: str, durable: str, subjects: list[str], handler: events.BatchHandler, batch: int,
        ack_wait: float = 60.0,
    ) -> None:
        """:meth:`consume` with :func:`events.consume_batches`: ``ack_wait`` must outlast one batch."""
        self.run_task(durable, lambda stopping: events.consume_batches(
            self.js, stream=stream, durable=durable, subjects=subjects, handler=handler, stop=stopping, batch=batch,
            ack_wait=ack_wait))
        self._subscriptions.append((stream, durable))

    async def _sample_backlog(self) -> None:
        await backlog.sample_outbox(self.db, self.name)
        await backlog.sample_consumers(self.js, self._subscriptions)

    def mirror_outbox(self, mirror: events.Mirror) -> None:
        """Give ``mirror`` each outbox row the relay publishes (see :class:`events.OutboxRelay`)."""
        self._relay.mirror = mirror

    def run_task(self, name: str, work: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """Run ``work(stopping)`` until the service stops, for the platform, watched like a consumer: its
        task ending before then turns health NOT_SERVING."""
        with acting.as_platform():
            task = asyncio.create_task(work(self.stopping), name=f"{self.name}-{name}")
        task.add_done_callback(self._consumer_ended)
        self._consumers.append(task)

    def every(self, name: str, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` every ``seconds`` until the service stops; a failed run (the database away,
        say) is logged and the next one comes on time."""

        async def loop(stopping: asyncio.Event) -> None:
            while not stopping.is_set():
                try:
                    await work()
                except Exception:
                    log.exception("%s: %s failed; retrying in %.1f s", self.name, name, seconds)
                try:
                    await asyncio.wait_for(stopping.wait(), seconds)
                except TimeoutError:
                    pass

        self.run_task(name, loop)

    async def subscribe(self, subject: str, callback: Callable[[Msg], Awaitable[None]]) -> None:
        """A plain NATS subscription whose ``callback`` acts for the platform."""
        with acting.as_platform():  # nats-py starts the subscription's task in this context
            await self.nc.subscribe(subject, cb=callback)

    async def serve(
        self, address: str, register: Iterable[Callable[[grpc.aio.Server], None]], service_names: Iterable[str]
    ) -> int:
        """Start the gRPC server on ``address`` (port 0: any free port); returns the port."""
        self._service_names = list(service_names)
        self._server, self.port, self._health = create_server(
            address, register, self._service_names, self.settings.grpc_tls)
        await self._server.start()
        await set_serving(self._health, self._service_names, self.consuming)
        return self.port

    def _consumer_ended(self, task: asyncio.Task) -> None:
        if self.stopping.is_set():
            return
        error = None if task.cancelled() else task.exception()
        log.error("%s stopped before the service did; health is now NOT_SERVING", task.get_name(), exc_info=error)
        self.consuming = False
        if self._health is not None:
            # A done-callback cannot await; keep the task referenced until it has run.
            update = asyncio.create_task(set_serving(self._health, self._service_names, False))
            self._health_updates.add(update)
            update.add_done_callback(self._health_updates.discard)

    async def stop(self, grace: float = 5.0) -> None:
        if self._health is not None:
            await set_serving(self._health, self._service_names, False)
        if self._server is not None:
            await self._server.stop(grace)
        self.stopping.set()
        # Each consumer ends within a fetch's wait once told; one that does not (a handler stuck on a call that
        # never answers) is cancelled, so a stop is bounded: its unacked messages are redelivered.
        if self._consumers:
            _, stuck = await asyncio.wait(self._consumers, timeout=2 * grace)
            for task in stuck:
                log.warning("%s: %s did not stop within %.0f s; cancelled", self.name, task.get_name(), 2 * grace)
            await cancel_and_wait(*self._consumers)
        await self._relay.stop()
        await self.nc.close()
        await self.db.close()


# Event type prefix -> the log field its subject id fills.
_SUBJECT_FIELDS = {"dataset.": "dataset_id", "job.": "job_id", "trainer.": "job_id"}


def _in_log_context(handler: events.Handler) -> events.Handler:
    """``handler`` with the event's job or dataset id in the context of every line it logs."""

    async def handle(event) -> None:
        field = next((f for prefix, f in _SUBJECT_FIELDS.items() if event.type.startswith(prefix)), None)
        with logs.bind(**({field: event.subject_id} if field else {})):
            await handler(event)

    return handle


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _endpoints(settings: Settings) -> list[tuple[str, str]]:
    """What a service needs before it starts: its database (only the services have one) and NATS."""
    if not settings.database_url:
        raise ConfigError("BRIGHTRUN_DATABASE_URL is not set: a service needs the URL of its own PostgreSQL "
                          "role (services.common.db_roles)")
    return [("BRIGHTRUN_DATABASE_URL", settings.database_url), ("BRIGHTRUN_NATS_URL", settings.nats_url)]


def run_main(service: str, start: Callable[[Settings], Awaitable[ServiceRuntime]]) -> None:
    """Entry point of a service's ``__main__``: ``process.start_process`` (the database and NATS are its
    endpoints), start, serve until SIGTERM/SIGINT.

    A bad setting, a metrics port in use or a database or NATS nobody answers
    ends the process before it starts with one line on stderr and
    ``startup.EXIT_STATUS``; so does a failing start, after its traceback
    (stderr is the service's log)."""
    settings = start_process(service, _endpoints)

    async def main() -> None:
        try:
            runtime = await start(settings)
        except Exception as error:  # noqa: BLE001 - a failed start is one line after its traceback
            exit_with(error)
        settled(runtime.name)
        log.info("%s serving gRPC on port %d", runtime.name, runtime.port)
        await _until_signalled()
        await runtime.stop()

    asyncio.run(main())
