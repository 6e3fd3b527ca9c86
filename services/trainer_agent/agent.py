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
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from brightrun.artifact.v1 import artifact_pb2
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.common import events
from services.common.config import Settings
from services.common.storage import ObjectStorage
from services.trainer_agent.attempt import Attempt, WorkerProcess, WorkerStalled, metric_point, stop_when_set
from services.trainer_agent.checkpoint_store import download_latest_checkpoint, upload_checkpoint
from services.trainer_agent.distributed import batch_layout, launch_command
from services.trainer_agent.training_config import ConfigError

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


def _event_id(*parts: object) -> str:
    # Deterministic ids: a replayed publish of the same fact carries the same
    # Nats-Msg-Id and JetStream drops it.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, ":".join(str(p) for p in parts)))


class TrainerAgent:
    def __init__(self, settings: Settings, agent: AgentSettings):
        self._settings = settings
        self._agent = agent
        self._storage = ObjectStorage.from_settings(settings)
        self._cancelled: set[str] = set()
        self._current: Attempt | None = None

    @property
    def subjects(self) -> list[str]:
        """Assignment subjects this agent can take: its GPU type, up to its GPU count."""
        return [f"assign.{self._agent.gpu_type}.{n}" for n in range(1, self._agent.gpu_count + 1)]

    async def run(self, stop: asyncio.Event) -> None:
        """Take assignments until ``stop`` is set; the current one is finished or handed back."""
        nc, js = await events.connect(self._settings.nats_url, f"agent-{self._agent.agent_id}")
        cancel_sub = await self._follow_cancellations(js)
        durable = f"agents-{self._agent.gpu_type}-{self._agent.gpu_count}"
        sub = await self._subscribe(js, durable)
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(batch=1, timeout=1.0)
                except TimeoutError:  # nats-py raises its own subclass or plain asyncio.TimeoutError
                    continue
                for msg in msgs:
                    await self._handle(js, msg, stop)
        finally:
            await sub.unsubscribe()
            await cancel_sub.unsubscribe()
            await nc.close()

    async def _subscribe(self, js, durable: str):
        try:
            await js.consumer_info("ASSIGN", durable)
        except NotFoundError:
            await js.add_consumer(
                "ASSIGN",
                ConsumerConfig(
                    durable_name=durable,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self._agent.ack_wait_seconds,
                    max_deliver=self._agent.max_deliver,
                    filter_subjects=self.subjects,
                ),
            )
        return await js.pull_subscribe_bind(durable, stream="ASSIGN")

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
            await self._on_cancelled(msg)
            if msg.metadata.sequence.stream >= last:
                caught_up.set()

        sub = await js.subscribe(
            "job.cancelled", cb=on_cancelled, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        if last:
            await caught_up.wait()
        return sub

    async def _on_cancelled(self, msg) -> None:
        event = events_pb2.Event.FromString(msg.data)
        self._cancelled.add(event.subject_id)
        if self._current and self._current.job_id == event.subject_id:
            self._current.stop()

    async def _publish(self, js, event: events_pb2.Event) -> None:
        await events.publish(js, event.type, event.SerializeToString(), event.event_id)

    def _event(self, type_: str, assignment: job_pb2.TrainingAssignment, event_id: str, **payload):
        event = events.new_event(
            type_, producer=PRODUCER, user_id=assignment.user_id, subject_id=assignment.job_id, **payload
        )
        event.event_id = event_id
        return event

    async def _handle(self, js, msg, stop: asyncio.Event) -> None:
        assignment = job_pb2.TrainingAssignment.FromString(msg.data)
        job_id = assignment.job_id
        attempt = msg.metadata.num_delivered
        if job_id in self._cancelled:
            await msg.term()
            return
        log.info("job %s: attempt %d on agent %s", job_id, attempt, self._agent.agent_id)
        workdir = self._agent.work_dir / job_id / f"attempt-{attempt}"
        workdir.mkdir(parents=True, exist_ok=True)
        await self._publish(
            js,
            self._event(
                "trainer.attempt.started",
                assignment,
                _event_id(job_id, attempt, "started"),
                trainer_attempt_started=events_pb2.TrainerAttemptStarted(
                    job_id=job_id,
                    attempt=attempt,
                    agent_id=self._agent.agent_id,
                    total_steps=assignment.total_steps,
                    batch_layout=_batch_layout(assignment),
                ),
            ),
        )
        self._current = current = Attempt(job_id)
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        shutdown = asyncio.create_task(stop_when_set(stop, current))
        try:
            outcome = await self._train(js, assignment, attempt, workdir, current)
        finally:
            heartbeat.cancel()
            shutdown.cancel()
            self._current = None
        if outcome["type"] == "completed":
            await self._complete(js, msg, assignment, attempt, workdir, outcome)
            return
        cancelled = job_id in self._cancelled
        handed_back = stop.is_set() and not cancelled
        # A stop nobody here asked for ends the attempt like a crash: retried.
        retryable = not cancelled and outcome.get("retryable", True) and attempt < self._agent.max_deliver
        reason = _reason(outcome, handed_back)
        log.info("job %s: attempt %d ended: %s", job_id, attempt, reason)
        await self._publish(
            js,
            self._event(
                "trainer.attempt.failed",
                assignment,
                _event_id(job_id, attempt, "failed"),
                trainer_attempt_failed=events_pb2.TrainerAttemptFailed(
                    job_id=job_id, attempt=attempt, reason=reason, retryable=retryable, cancelled=cancelled
                ),
            ),
        )
        if retryable:
            # Handed back, the job goes to whichever agent asks next; a failure waits a little first.
            await msg.nak(delay=0 if handed_back else 2.0)
        else:
            await msg.term()

    async def _complete(self, js, msg, assignment, attempt: int, workdir: Path, outcome: dict) -> None:
        manifest = await asyncio.to_thread(self._upload, assignment, workdir / "adapter")
        completed = events_pb2.TrainerAttemptCompleted(job_id=assignment.job_id, attempt=attempt, manifest=manifest)
        completed.summary.update(outcome.get("summary", {}))
        await self._publish(
            js,
            self._event(
                "trainer.attempt.completed",
                assignment,
                _event_id(assignment.job_id, attempt, "completed"),
                trainer_attempt_completed=completed,
            ),
        )
        await msg.ack_sync()

    async def _heartbeat(self, msg) -> None:
        while True:
            await asyncio.sleep(self._agent.heartbeat_seconds)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _train(
        self, js, assignment: job_pb2.TrainingAssignment, attempt: int, workdir: Path, current: Attempt
    ) -> dict:
        """Run the worker process; returns its last outcome line (completed, stopped or failed)."""
        dataset = workdir / "dataset.jsonl"
        try:
            await asyncio.to_thread(
                self._storage.download_file, assignment.dataset_bucket, assignment.dataset_path, dataset
            )
        except Exception as exc:  # The object store is away: another attempt may succeed.
            return {"type": "failed", "reason": f"could not download the dataset: {exc}", "retryable": True}
        # Train only on the bytes that were validated: the object may have been
        # replaced since, and every retry would read the same replacement.
        if (actual := await asyncio.to_thread(_sha256, dataset)) != assignment.dataset_sha256:
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
            resumed = await asyncio.to_thread(
                download_latest_checkpoint,
                self._storage,
                assignment.output_bucket,
                _checkpoint_prefix(assignment),
                checkpoints,
            )
        except Exception as exc:
            return {"type": "failed", "reason": f"could not fetch the last checkpoint: {exc}", "retryable": True}
        if resumed is not None:
            log.info("job %s: attempt %d resumes from %s", assignment.job_id, attempt, resumed.name)
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
        ]
        proc = await asyncio.create_subprocess_exec(
            *_worker_command(assignment, worker_args),
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
                    await self._publish_metrics(js, assignment, attempt, line)
                elif line["type"] == "checkpoint":
                    await self._save_checkpoint(js, assignment, attempt, Path(line["path"]), line["step"])
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

    async def _publish_metrics(self, js, assignment, attempt: int, line: dict) -> None:
        point = metric_point(assignment.job_id, line)
        await self._publish(
            js,
            self._event(
                "trainer.metrics",
                assignment,
                # One event per (job, attempt, step) and kind of point: a replayed publish
                # is dropped by JetStream, and a resumed attempt's replay of a step by job_svc.
                _event_id(assignment.job_id, attempt, "metrics", point.step, point.HasField("validation_loss")),
                trainer_metrics=events_pb2.TrainerMetrics(
                    job_id=assignment.job_id, attempt=attempt, metric_point=point, total_steps=assignment.total_steps
                ),
            ),
        )

    async def _save_checkpoint(self, js, assignment, attempt: int, path: Path, step: int) -> None:
        """Upload a checkpoint (manifest last) and say so; a failed upload only costs resumability."""
        try:
            prefix = await asyncio.to_thread(
                upload_checkpoint, self._storage, path, assignment.output_bucket, _checkpoint_prefix(assignment)
            )
        except Exception:
            log.exception("job %s: checkpoint of step %d not uploaded", assignment.job_id, step)
            return
        await self._publish(
            js,
            self._event(
                "trainer.checkpoint.saved",
                assignment,
                _event_id(assignment.job_id, attempt, "checkpoint", step),
                trainer_checkpoint_saved=events_pb2.TrainerCheckpointSaved(
                    job_id=assignment.job_id, attempt=attempt, step=step, prefix=prefix
                ),
            ),
        )

    def _upload(self, assignment: job_pb2.TrainingAssignment, adapter: Path) -> artifact_pb2.AdapterManifest:
        prefix = f"{assignment.output_prefix}adapter/"
        manifest = artifact_pb2.AdapterManifest(bucket=assignment.output_bucket, prefix=prefix)
        for path in sorted(p for p in adapter.iterdir() if p.is_file()):
            key = prefix + path.name
            self._storage.upload_file(path, assignment.output_bucket, key)
            manifest.files.add(name=path.name, key=key, size_bytes=path.stat().st_size, sha256=_sha256(path))
        return manifest


def _worker_command(assignment: job_pb2.TrainingAssignment, worker_args: list[str]) -> list[str]:
    """One worker process, or one per GPU under torchrun: torchrun passes on a
    SIGTERM to every rank and fails as a whole when any rank fails."""
    if assignment.gpu_config.count > 1:
        return launch_command(assignment.gpu_config.count, worker_args, agent_pid=os.getpid())
    return [sys.executable, "-m", "services.trainer_agent.worker", *worker_args]


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


def _checkpoint_prefix(assignment: job_pb2.TrainingAssignment) -> str:
    return f"{assignment.output_prefix}checkpoints/"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
