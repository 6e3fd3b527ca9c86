"""The trainer agent: one per node. Pulls training assignments that fit its
hardware from JetStream, runs each in a worker process, relays the worker's
progress as ``trainer.*`` events, uploads the adapter, and acks the
assignment only when the work is done.

While a worker runs, the assignment stays un-acked and the agent sends
in-progress acks as its heartbeat: if the agent dies, JetStream redelivers the
assignment after ``ack_wait`` to another agent.

An attempt ends in one of four ways. Completed: the adapter is uploaded and
the assignment acked. Cancelled: the worker is stopped (it checkpoints the
step under way), the checkpoint uploaded and the assignment terminated, never
to be redelivered. The agent shutting down: the same stop and upload, then a
nak, so that another agent resumes at once from that checkpoint. Failed,
stalled included: a worker that reports no step within ``stall_seconds`` is
killed; the assignment is nak'ed while retries are left, terminated otherwise
or when the error is the user's.

The agent holds no object-store keys: each assignment carries a grant
(``services.common.grants``) to read its dataset, parent adapter and
checkpoint and to write under its model prefix, used through
``granted.GrantedStore``.

Outages do not stop an agent: events wait in order in an :class:`EventRelay`
while NATS is away (the worker trains on), object-store calls are retried
with backoff, and an attempt that cannot finish is handed back, never
abandoned. An assignment that cannot be read (not a TrainingAssignment, or
one without a job) is parked on the dead-letter stream, so it stops no agent.

The same consumer hands out generation requests (header ``BrightRun-Kind:
generate``, see ``services.common.events.assignment_kind``): those are
answered by ``generating.GenerationRunner``, not trained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind

from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.common import events, tracing
from services.common.config import Settings
from services.common.paging import canonical_uuid
from services.common.startup import StartupError
from services.common.storage import adapter_prefix, checkpoint_key
from services.trainer_agent.attempt import Attempt, WorkerProcess, WorkerStalled, metric_point, stop_when_set
from services.trainer_agent.checkpoint_store import CheckpointUploader, download_latest_checkpoint
from services.trainer_agent.generating import GenerationRunner
from services.trainer_agent.export import ExportRunner
from services.trainer_agent.granted import GrantedStore
from services.trainer_agent.launch import batch_layout, worker_command
from services.trainer_agent.relay import EventRelay, backoff, retry, retry_io
from services.trainer_agent.training_config import ConfigError
from services.trainer_agent.training_metrics import TRAINING
from services.trainer_agent.uploads import fetch_adapter, io_failure, sha256_of, upload_directory

log = logging.getLogger(__name__)
PRODUCER = "trainer_agent"


@dataclass(frozen=True)
class AgentSettings:
    agent_id: str
    gpu_type: str
    gpu_count: int
    work_dir: Path
    ack_wait_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    max_deliver: int = 4
    # Steps between checkpoints uploaded to the object store; 0: none.
    checkpoint_steps: int = 50
    # A worker that reports no step for this long is stalled: it is killed and the attempt retried.
    stall_seconds: float = 600.0
    # The same bound before its first report, which includes loading the base model.
    startup_seconds: float = 1800.0
    # How long an object-store call (dataset, checkpoint, adapter) is retried before the attempt is handed back.
    io_retry_seconds: float = 300.0
    # Held-out validation conversations a finished training answers (stored on the model), and their tokens.
    smoke_samples: int = 3
    smoke_max_new_tokens: int = 32


def _event_id(*parts: object) -> str:
    # Deterministic ids: a replayed publish of the same fact carries the same
    # Nats-Msg-Id and JetStream drops it.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, ":".join(str(p) for p in parts)))


class UnreadableAssignment(Exception):
    """An assignment message that no agent could ever train: parked, not retried."""


class TrainerAgent:
    def __init__(self, settings: Settings, agent: AgentSettings):
        """``settings``: ``config.read_settings(agent=True)``'s; the agent reads only its NATS address."""
        self._settings = settings
        self._agent = agent
        self._cancelled: set[str] = set()
        self._current: Attempt | None = None
        self._relay: EventRelay | None = None
        self._nc = None
        # Generation requests (Generate) share the ASSIGN consumer; see ``generating``.
        self._generations = GenerationRunner(
            gpu_type=agent.gpu_type, work_dir=agent.work_dir,
            heartbeat_seconds=agent.heartbeat_seconds, io_retry_seconds=agent.io_retry_seconds,
        )

    @property
    def nats_connected(self) -> bool:
        """Whether the agent holds a live NATS connection now (its health endpoint's readiness)."""
        return self._nc is not None and self._nc.is_connected

    @property
    def subjects(self) -> list[str]:
        """Assignment subjects this agent can take: its GPU type, up to its GPU count."""
        return [f"assign.{self._agent.gpu_type}.{n}" for n in range(1, self._agent.gpu_count + 1)]

    @property
    def durable(self) -> str:
        """The ASSIGN consumer agents of this hardware share."""
        return f"agents-{self._agent.gpu_type}-{self._agent.gpu_count}"

    async def run(self, stop: asyncio.Event) -> None:
        """Take assignments until ``stop`` is set; the current one is finished or handed back.

        Waits for NATS at start and rides out its outages; no assignment,
        however malformed, ends this loop.
        """
        settings = self._settings
        # The services create the streams; the agent's identity may not (services.common.nats_access).
        connected = await self._until_done(stop, "connecting to NATS", lambda: events.connect(
            settings.nats_url, f"agent-{self._agent.agent_id}", settings.nats_user, settings.nats_password,
            create_streams=False))
        if connected is None:
            return
        nc, js = connected
        self._nc = nc
        self._relay = relay = EventRelay(js)
        relay.start()
        subscriptions = []
        # Exports (services.trainer_agent.export) are taken when no training assignment waits.
        exports = ExportRunner(self._agent, relay)
        try:
            subscriptions = await self._until_done(stop, "subscribing", lambda: self._subscriptions(js)) or []
            await self._until_done(stop, "subscribing to exports", lambda: exports.subscribe(js))
            while subscriptions and not stop.is_set():
                try:
                    msgs = await subscriptions[0].fetch(batch=1, timeout=1.0)
                except TimeoutError:  # nats-py raises its own subclass or plain asyncio.TimeoutError
                    await exports.take_one(js, stop)
                    continue
                except Exception as exc:  # NATS away: the assignments wait in their stream
                    log.warning("could not fetch assignments (%s); retrying", exc)
                    await _sleep_unless(stop, 1.0)
                    continue
                for msg in msgs:
                    await self._handle_safely(js, msg, stop)
        finally:
            await relay.stop(timeout=10.0)
            await exports.unsubscribe()
            for sub in subscriptions:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            await nc.close()

    async def _until_done(self, stop: asyncio.Event, what: str, call):
        """``await call()`` until it succeeds, with backoff; None once ``stop`` is set first.
        A StartupError (NATS refused the agent's login) is raised: no retry mends it."""
        tries = 0
        while not stop.is_set():
            try:
                return await call()
            except StartupError:
                raise
            except Exception as exc:
                tries += 1
                log.warning("%s failed (%s); retrying", what, exc)
                await _sleep_unless(stop, backoff(tries))
        return None

    async def _subscriptions(self, js) -> list:
        """The assignment subscription, after the cancellations learnt so far (see ``_follow_cancellations``)."""
        cancellations = await self._follow_cancellations(js)
        try:
            return [await self._subscribe(js), cancellations]
        except BaseException:
            await cancellations.unsubscribe()
            raise

    async def _subscribe(self, js):
        try:
            await js.consumer_info("ASSIGN", self.durable)
        except NotFoundError:
            await js.add_consumer(
                "ASSIGN",
                ConsumerConfig(
                    durable_name=self.durable,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self._agent.ack_wait_seconds,
                    max_deliver=self._agent.max_deliver,
                    filter_subjects=self.subjects,
                ),
            )
        return await js.pull_subscribe_bind(self.durable, stream="ASSIGN")

    async def _follow_cancellations(self, js):
        """Learn every job cancelled so far, then each as it is, before taking work.

        From the stream's start: a job cancelled while queued, before this agent
        started, must be terminated when its assignment comes, not trained.
        """
        try:
            last = (await js.get_last_msg("JOBS", "job.cancelled")).seq
        except NotFoundError:
            last = 0
        caught_up = asyncio.Event()

        async def on_cancelled(msg) -> None:
            try:
                self._on_cancelled(events_pb2.Event.FromString(msg.data))
            except DecodeError:
                # Another consumer of JOBS parks it; here it is only skipped, and
                # must not keep this agent from catching up and taking work.
                log.error("job.cancelled message %d is not an Event; skipped", msg.metadata.sequence.stream)
            if msg.metadata.sequence.stream >= last:
                caught_up.set()

        # The stream named: looking it up by subject is an API call the agent's identity may not make.
        sub = await js.subscribe(
            "job.cancelled", stream="JOBS", cb=on_cancelled, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        if last:
            await caught_up.wait()
        return sub

    def _on_cancelled(self, event: events_pb2.Event) -> None:
        self._cancelled.add(event.subject_id)
        if self._current and self._current.job_id == event.subject_id:
            self._current.stop()

    def _send(self, event: events_pb2.Event) -> int:
        """Publish ``event`` after those sent before it, whenever NATS takes it; returns its relay mark."""
        assert self._relay is not None, "events are sent only while the agent runs"
        return self._relay.send(event)

    def _event(self, type_: str, assignment: job_pb2.TrainingAssignment, event_id: str, **payload):
        event = events.new_event(
            type_, producer=PRODUCER, user_id=assignment.user_id, subject_id=assignment.job_id, **payload
        )
        event.event_id = event_id
        return event

    async def _handle_safely(self, js, msg, stop: asyncio.Event) -> None:
        """Handle one assignment; whatever goes wrong with it, the agent goes on with the next."""
        if events.assignment_kind(msg) == events.GENERATION_KIND:
            try:
                # In the trace of the Generate call that published it, as a training assignment's span is.
                with tracing.span(f"generation {msg.subject}", kind=SpanKind.CONSUMER,
                                  traceparent=events.traceparent_of(msg)):
                    await self._generations.handle(self._nc, js, msg, durable=self.durable)
            except Exception:
                log.exception("a generation assignment broke in the agent; the caller is told no agent answered")
            return
        try:
            assignment = read_assignment(msg.data)
        except UnreadableAssignment as exc:
            await events.dead_letter(js, msg, consumer=self.durable, reason=str(exc))
            return
        try:
            # The span continues the trace of the request that created the job (the ASSIGN message's header).
            with tracing.span(f"assignment {msg.subject}", kind=SpanKind.CONSUMER,
                              traceparent=events.traceparent_of(msg),
                              attributes={"brightrun.job_id": assignment.job_id,
                                          "brightrun.attempt": msg.metadata.num_delivered}):
                await self._handle(msg, assignment, stop)
        except Exception:
            # Redelivered while deliveries are left; after that job_svc fails the job.
            log.exception("job %s: the attempt broke in the agent; handing it back", assignment.job_id)
            await self._settle(msg, "nak", delay=5.0)

    async def _handle(self, msg, assignment: job_pb2.TrainingAssignment, stop: asyncio.Event) -> None:
        job_id = assignment.job_id
        attempt = msg.metadata.num_delivered
        if job_id in self._cancelled:
            await self._settle(msg, "term")
            return
        log.info("job %s: attempt %d on agent %s", job_id, attempt, self._agent.agent_id)
        workdir = self._agent.work_dir / job_id / f"attempt-{attempt}"
        workdir.mkdir(parents=True, exist_ok=True)
        self._send(
            self._event(
                "trainer.attempt.started",
                assignment,
                _event_id(job_id, attempt, "started"),
                trainer_attempt_started=events_pb2.TrainerAttemptStarted(
                    job_id=job_id,
                    attempt=attempt,
                    agent_id=self._agent.agent_id,
                    batch_layout=_batch_layout(assignment),
                ),
            )
        )
        self._current = current = Attempt(job_id)
        storage = GrantedStore(assignment.grant)
        uploads = CheckpointUploader(
            storage, checkpoint_key(assignment.output_prefix), self._relay,
            on_uploaded=lambda step, key: self._checkpoint_saved(assignment, attempt, step, key),
        )
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        shutdown = asyncio.create_task(stop_when_set(stop, current))
        try:
            outcome = await self._train(assignment, storage, attempt, workdir, current, uploads)
            if outcome["type"] == "completed":
                outcome = await self._complete(assignment, storage, attempt, workdir, outcome)
            if outcome["type"] == "completed":
                await uploads.abandon()
            elif not await uploads.finish(self._agent.io_retry_seconds):
                log.error("job %s: the last checkpoint could not be uploaded; the next attempt resumes from an "
                          "earlier one", job_id)
        finally:
            heartbeat.cancel()
            shutdown.cancel()
            await uploads.abandon()
            self._current = None
        if outcome["type"] == "completed":
            await self._relay.wait_published(outcome["mark"], self._agent.io_retry_seconds)
            await self._settle(msg, "ack")
            return
        cancelled = job_id in self._cancelled
        handed_back = stop.is_set() and not cancelled
        # A stop nobody here asked for ends the attempt like a crash: retried.
        retryable = not cancelled and outcome.get("retryable", True) and attempt < self._agent.max_deliver
        reason = _reason(outcome, handed_back)
        log.info("job %s: attempt %d ended: %s", job_id, attempt, reason)
        mark = self._send(
            self._event(
                "trainer.attempt.failed",
                assignment,
                _event_id(job_id, attempt, "failed"),
                trainer_attempt_failed=events_pb2.TrainerAttemptFailed(
                    job_id=job_id, attempt=attempt, reason=reason, retryable=retryable, cancelled=cancelled
                ),
            )
        )
        # Settled only once job_svc can know why: a redelivery must not overtake the failure.
        await self._relay.wait_published(mark, self._agent.io_retry_seconds)
        if retryable:
            # Handed back, the job goes to whichever agent asks next; a failure waits a little first.
            await self._settle(msg, "nak", delay=0 if handed_back else 2.0)
        else:
            await self._settle(msg, "term")

    async def _complete(self, assignment, storage: GrantedStore, attempt: int, workdir: Path, outcome: dict) -> dict:
        """Upload the adapter and report the completion; the outcome then carries the
        completion's relay mark, or is a failure: retryable when the store stayed away, not when it
        refused the assignment's grant."""
        try:
            manifest = await retry_io(
                lambda: upload_directory(storage, workdir / "adapter", assignment.output_bucket,
                                         adapter_prefix(assignment.output_prefix)),
                f"job {assignment.job_id}: uploading the adapter",
                deadline_s=self._agent.io_retry_seconds,
            )
        except Exception as exc:
            return io_failure("the adapter could not be uploaded", exc)
        completed = events_pb2.TrainerAttemptCompleted(job_id=assignment.job_id, attempt=attempt, manifest=manifest)
        completed.summary.update(outcome.get("summary", {}))
        mark = self._send(
            self._event(
                "trainer.attempt.completed",
                assignment,
                _event_id(assignment.job_id, attempt, "completed"),
                trainer_attempt_completed=completed,
            )
        )
        return {**outcome, "mark": mark}

    async def _settle(self, msg, how: str, delay: float = 0.0) -> None:
        """Ack, nak or term an assignment, retrying while NATS is away. Given up
        after ``io_retry_seconds``: JetStream then redelivers it after ``ack_wait``,
        and a redelivered settled job is skipped by job_svc's state machine."""
        act = {"ack": msg.ack_sync, "term": msg.term, "nak": lambda: msg.nak(delay=delay)}[how]
        try:
            await retry(act, f"{how} of an assignment", deadline_s=self._agent.io_retry_seconds)
        except Exception as exc:
            log.error("could not %s an assignment (%s); JetStream redelivers it", how, exc)

    async def _heartbeat(self, msg) -> None:
        while True:
            await asyncio.sleep(self._agent.heartbeat_seconds)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _train(
        self, assignment: job_pb2.TrainingAssignment, storage: GrantedStore, attempt: int, workdir: Path,
        current: Attempt, uploads: CheckpointUploader,
    ) -> dict:
        """Run the worker process; returns its last outcome line (completed, stopped or failed)."""
        dataset = workdir / "dataset.jsonl"
        try:
            await retry_io(
                lambda: storage.download_file(assignment.dataset_bucket, assignment.dataset_path, dataset),
                f"job {assignment.job_id}: downloading the dataset",
                deadline_s=self._agent.io_retry_seconds,
            )
        except Exception as exc:  # The object store stayed away (another attempt may succeed), or refused the grant.
            return io_failure("could not download the dataset", exc)
        # Train only on the bytes that were validated: the object may have been
        # replaced since, and every retry would read the same replacement.
        if (actual := await asyncio.to_thread(sha256_of, dataset)) != assignment.dataset_sha256:
            reason = (f"the dataset's sha256 is {actual}, not the validated {assignment.dataset_sha256 or '(none)'}: "
                      "its file changed after validation; revalidate the dataset and start a new job")
            return {"type": "failed", "reason": reason, "retryable": False}
        spec = workdir / "assignment.json"
        spec.write_text(json_format.MessageToJson(assignment, preserving_proto_field_name=True))
        # Resume only from what an earlier attempt uploaded: its upload follows the
        # metrics of every step before it, so no step goes unreported. A checkpoint
        # a dead worker left on this disk may be ahead of what was reported.
        checkpoints = workdir / "checkpoints"
        try:
            resumed = await retry_io(
                lambda: download_latest_checkpoint(
                    storage, assignment.output_bucket, checkpoint_key(assignment.output_prefix), checkpoints
                ),
                f"job {assignment.job_id}: fetching the last checkpoint",
                deadline_s=self._agent.io_retry_seconds,
            )
        except Exception as exc:
            return io_failure("could not fetch the last checkpoint", exc)
        if resumed is not None:
            log.info("job %s: attempt %d resumes from %s", assignment.job_id, attempt, resumed.name)
        parent_args = []
        if assignment.parent_adapter.files:  # continued training: the parent model's adapter
            parent = workdir / "parent-adapter"
            failed = await fetch_adapter(storage, assignment.parent_adapter, parent, "the parent adapter",
                                         owner=f"job {assignment.job_id}", deadline_s=self._agent.io_retry_seconds)
            if failed:
                return failed
            parent_args = ["--parent-adapter", str(parent)]
        if current.stopping:  # cancelled or shut down while the files came
            return {"type": "stopped", "step": None}
        worker_args = [
            "--assignment",
            str(spec),
            "--dataset",
            str(dataset),
            "--output",
            str(workdir / "adapter"),
            "--checkpoint-dir",
            str(checkpoints),
            "--checkpoint-steps",
            str(self._agent.checkpoint_steps),
            "--agent-pid",
            str(os.getpid()),
            "--smoke-samples",
            str(self._agent.smoke_samples),
            "--smoke-tokens",
            str(self._agent.smoke_max_new_tokens),
            *parent_args,
        ]
        proc = await asyncio.create_subprocess_exec(
            # One process, or one per GPU under torchrun, which passes on a SIGTERM
            # to every rank and fails as a whole when any rank fails.
            *worker_command(assignment.gpu_config.type, assignment.gpu_config.count, worker_args, os.getpid()),
            stdout=asyncio.subprocess.PIPE,
            # Its own process group: a stalled attempt is killed whole (torchrun
            # included; its ranks, in sessions of their own, die with it).
            start_new_session=True,
        )
        worker = WorkerProcess(proc, self._agent.stall_seconds, self._agent.startup_seconds)
        current.attach(worker)
        outcome: dict = {"type": "failed", "reason": "the training worker exited without a result", "retryable": True}
        try:
            async for line in worker.lines():
                if line["type"] == "metrics":
                    self._send_metrics(assignment, attempt, line)
                elif line["type"] == "plan":
                    self._send_plan(assignment, attempt, line)
                elif line["type"] == "checkpoint":
                    uploads.add(Path(line["path"]), line["step"])
                else:
                    outcome = line
        except WorkerStalled as exc:
            log.warning("job %s: attempt %d %s; killing it", assignment.job_id, attempt, exc)
            outcome = {"type": "failed", "reason": f"training {exc}", "retryable": True}
            worker.kill()
        except BaseException:
            worker.kill()
            raise
        finally:
            code = await proc.wait()
            worker.kill()  # whatever it left running in its group
        if code != 0 and outcome["type"] == "completed":
            outcome = {"type": "failed", "reason": f"the training worker exited with code {code}", "retryable": True}
        return outcome

    def _send_plan(self, assignment, attempt: int, line: dict) -> None:
        """The recipe's own plan, computed from the data it loaded: job_svc counts progress against it."""
        TRAINING.plan(assignment.job_id, line["resumed_from_step"])
        self._send(
            self._event(
                "trainer.attempt.planned",
                assignment,
                _event_id(assignment.job_id, attempt, "planned"),
                trainer_attempt_planned=events_pb2.TrainerAttemptPlanned(
                    job_id=assignment.job_id, attempt=attempt, total_steps=line["total_steps"],
                    resumed_from_step=line["resumed_from_step"],
                ),
            )
        )

    def _send_metrics(self, assignment, attempt: int, line: dict) -> None:
        point = metric_point(assignment.job_id, line)
        TRAINING.observe(point, self._agent.gpu_type)
        self._send(
            self._event(
                "trainer.metrics",
                assignment,
                # One event per (job, attempt, step) and kind of point: a replayed publish
                # is dropped by JetStream, and a resumed attempt's replay of a step by job_svc.
                _event_id(assignment.job_id, attempt, "metrics", point.step, point.HasField("validation_loss")),
                trainer_metrics=events_pb2.TrainerMetrics(
                    job_id=assignment.job_id, attempt=attempt, metric_point=point, total_steps=line["total_steps"]
                ),
            )
        )

    def _checkpoint_saved(self, assignment, attempt: int, step: int, key: str) -> None:
        self._send(
            self._event(
                "trainer.checkpoint.saved",
                assignment,
                _event_id(assignment.job_id, attempt, "checkpoint", step),
                trainer_checkpoint_saved=events_pb2.TrainerCheckpointSaved(
                    job_id=assignment.job_id, attempt=attempt, step=step, prefix=key
                ),
            )
        )


# What an assignment must name for any agent to train it.
_REQUIRED = ("job_id", "user_id", "dataset_bucket", "dataset_path", "output_bucket")


def read_assignment(data: bytes) -> job_pb2.TrainingAssignment:
    """The TrainingAssignment in a message; raises UnreadableAssignment naming what is wrong."""
    try:
        assignment = job_pb2.TrainingAssignment.FromString(data)
    except DecodeError as exc:
        raise UnreadableAssignment(f"not a TrainingAssignment: {exc}") from None
    missing = [name for name in _REQUIRED if not getattr(assignment, name)]
    if not assignment.hyperparameters.base_model:
        missing.append("hyperparameters.base_model")
    if missing:
        raise UnreadableAssignment(f"the assignment has no {', '.join(missing)}")
    # It names the attempt's directory: no path may hide in it.
    if canonical_uuid(assignment.job_id) != assignment.job_id:
        raise UnreadableAssignment(f"job_id {assignment.job_id!r} is not a UUID")
    return assignment


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _batch_layout(assignment: job_pb2.TrainingAssignment) -> job_pb2.BatchLayout | None:
    """How the worker splits the job's batch, recorded on the job: the
    worker's own rule, with no micro-batch limit, as it runs. None for a batch
    that cannot be split evenly (the worker refuses it)."""
    try:
        layout = batch_layout(assignment.hyperparameters.batch_size, None, max(assignment.gpu_config.count, 1))
    except ConfigError:
        return None
    return job_pb2.BatchLayout(
        micro_batch_size=layout.micro_batch_size,
        gradient_accumulation_steps=layout.accumulation_steps,
        world_size=layout.world_size,
    )


def _reason(outcome: dict, handed_back: bool) -> str:
    """Why an attempt ended without an adapter, in the job's words."""
    if outcome["type"] != "stopped":
        return outcome.get("reason", "training failed")
    step = outcome.get("step")
    at = f" after step {step}" if step else ""
    if handed_back:
        return f"the agent running it shut down{at}; another agent resumes from its last checkpoint"
    return f"training was stopped{at}"
