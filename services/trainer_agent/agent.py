"""The trainer agent: one per node. Pulls training assignments that fit its
hardware from JetStream, runs each in a worker process, relays the worker's
progress as ``trainer.*`` events, uploads the adapter, and acks the
assignment only when the work is done.

While a worker runs, the assignment stays un-acked and the agent sends
in-progress acks as its heartbeat: if the agent dies, JetStream redelivers the
assignment after ``ack_wait`` to another agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from brightrun.artifact.v1 import artifact_pb2
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.common import events
from services.common.config import Settings
from services.common.storage import ObjectStorage
from services.trainer_agent.checkpoint_store import download_latest_checkpoint, upload_checkpoint
from services.trainer_agent.distributed import launch_command

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
        self._current: tuple[str, asyncio.subprocess.Process] | None = None

    @property
    def subjects(self) -> list[str]:
        """Assignment subjects this agent can take: its GPU type, up to its GPU count."""
        return [f"assign.{self._agent.gpu_type}.{n}" for n in range(1, self._agent.gpu_count + 1)]

    async def run(self, stop: asyncio.Event) -> None:
        """Take assignments until ``stop`` is set; the current one is finished or handed back."""
        nc, js = await events.connect(self._settings.nats_url, f"agent-{self._agent.agent_id}")
        cancel_sub = await nc.subscribe("job.cancelled", cb=self._on_cancelled)
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

    async def _on_cancelled(self, msg) -> None:
        event = events_pb2.Event.FromString(msg.data)
        self._cancelled.add(event.subject_id)
        if self._current and self._current[0] == event.subject_id:
            with contextlib.suppress(ProcessLookupError):
                self._current[1].send_signal(signal.SIGTERM)

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
                    job_id=job_id, attempt=attempt, agent_id=self._agent.agent_id, total_steps=assignment.total_steps
                ),
            ),
        )
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            outcome = await self._train(js, assignment, attempt, workdir)
        finally:
            heartbeat.cancel()
        if outcome["type"] == "completed":
            manifest = await asyncio.to_thread(self._upload, assignment, workdir / "adapter")
            summary = outcome.get("summary", {})
            completed = events_pb2.TrainerAttemptCompleted(job_id=job_id, attempt=attempt, manifest=manifest)
            completed.summary.update(summary)
            await self._publish(
                js,
                self._event(
                    "trainer.attempt.completed",
                    assignment,
                    _event_id(job_id, attempt, "completed"),
                    trainer_attempt_completed=completed,
                ),
            )
            await msg.ack_sync()
            return
        cancelled = job_id in self._cancelled
        retryable = bool(outcome.get("retryable")) and not cancelled and attempt < self._agent.max_deliver
        await self._publish(
            js,
            self._event(
                "trainer.attempt.failed",
                assignment,
                _event_id(job_id, attempt, "failed"),
                trainer_attempt_failed=events_pb2.TrainerAttemptFailed(
                    job_id=job_id,
                    attempt=attempt,
                    reason=outcome.get("reason", "training failed"),
                    retryable=retryable,
                    cancelled=cancelled,
                ),
            ),
        )
        if retryable:
            await msg.nak(delay=2.0)
        else:
            await msg.term()

    async def _heartbeat(self, msg) -> None:
        while True:
            await asyncio.sleep(self._agent.heartbeat_seconds)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _train(self, js, assignment: job_pb2.TrainingAssignment, attempt: int, workdir: Path) -> dict:
        """Run the worker process; returns its last outcome line (completed or failed)."""
        dataset = workdir / "dataset.jsonl"
        try:
            await asyncio.to_thread(
                self._storage.download_file, assignment.dataset_bucket, assignment.dataset_path, dataset
            )
        except Exception as exc:  # The object store is away: another attempt may succeed.
            return {"type": "failed", "reason": f"could not download the dataset: {exc}", "retryable": True}
        spec = workdir / "assignment.json"
        spec.write_text(json_format.MessageToJson(assignment, preserving_proto_field_name=True))
        # Resume only from what an earlier attempt uploaded: its upload follows the
        # metrics of every step before it, so no step goes unreported. A checkpoint
        # a dead worker left on this disk may be ahead of what was reported.
        checkpoints = workdir / "checkpoints"
        try:
            await asyncio.to_thread(
                download_latest_checkpoint,
                self._storage,
                assignment.output_bucket,
                _checkpoint_prefix(assignment),
                checkpoints,
            )
        except Exception as exc:
            return {"type": "failed", "reason": f"could not fetch the last checkpoint: {exc}", "retryable": True}
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
        ]
        proc = await asyncio.create_subprocess_exec(
            *_worker_command(assignment, worker_args), stdout=asyncio.subprocess.PIPE
        )
        self._current = (assignment.job_id, proc)
        outcome: dict = {"type": "failed", "reason": "the training worker exited without a result", "retryable": True}
        try:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = json.loads(raw)
                if line["type"] == "metrics":
                    await self._publish_metrics(js, assignment, attempt, line)
                elif line["type"] == "checkpoint":
                    await self._save_checkpoint(js, assignment, attempt, Path(line["path"]), line["step"])
                else:
                    outcome = line
            code = await proc.wait()
        finally:
            self._current = None
        if code != 0 and outcome["type"] == "completed":
            outcome = {"type": "failed", "reason": f"the training worker exited with code {code}", "retryable": True}
        return outcome

    async def _publish_metrics(self, js, assignment, attempt: int, line: dict) -> None:
        point = job_pb2.MetricPoint(job_id=assignment.job_id)
        point.timestamp.GetCurrentTime()
        for field in (
            "epoch",
            "step",
            "training_loss",
            "learning_rate",
            "validation_loss",
            "perplexity",
            "samples_per_second",
        ):
            if line.get(field) is not None:
                setattr(point, field, line[field])
        if line.get("grad_norm") is not None:
            point.gradient_norm = line["grad_norm"]
        if line.get("tokens_per_second") is not None:
            point.throughput = line["tokens_per_second"]
        await self._publish(
            js,
            self._event(
                "trainer.metrics",
                assignment,
                _event_id(assignment.job_id, attempt, "metrics", point.step),
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
        return launch_command(assignment.gpu_config.count, worker_args)
    return [sys.executable, "-m", "services.trainer_agent.worker", *worker_args]


def _checkpoint_prefix(assignment: job_pb2.TrainingAssignment) -> str:
    return f"{assignment.output_prefix}checkpoints/"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
