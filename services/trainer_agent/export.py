"""The agent's export work: takes ExportAssignments from the ASSIGN work
queue (``assign.export.<gpu_type>``, see services.common.export_queue),
downloads the adapter, merges it in a worker process
(services.trainer_agent.merge; the agent never imports torch), uploads the
files under the export's prefix and reports ``trainer.export.*``.

The assignment stays un-acked while the merge runs (in-progress acks are the
heartbeat): an agent that dies mid-export has its assignment redelivered to
another agent after ``ack_wait``. A failure the user can fix (a model that
cannot be read) is terminated; any other is handed back while deliveries are
left. The agent takes an export only when no training assignment is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

from google.protobuf.message import DecodeError
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind

from brightrun.artifact.v1 import artifact_pb2
from brightrun.events.v1 import events_pb2
from services.common import events, tracing
from services.common.export_queue import export_durable, export_subject
from services.trainer_agent.launch import worker_command
from services.trainer_agent.relay import EventRelay, retry, retry_io
from services.trainer_agent.granted import GrantedStore
from services.trainer_agent.uploads import fetch_adapter, io_failure, upload_directory

log = logging.getLogger(__name__)
PRODUCER = "trainer_agent"
MERGE_MODULE = "services.trainer_agent.merge"


class ExportRunner:
    """One agent's export consumer; ``agent`` is its AgentSettings."""

    def __init__(self, agent, relay: EventRelay):
        self._agent = agent
        self._relay = relay
        self._sub = None

    async def subscribe(self, js) -> None:
        durable = export_durable(self._agent.gpu_type)
        try:
            await js.consumer_info("ASSIGN", durable)
        except NotFoundError:
            await js.add_consumer("ASSIGN", ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=self._agent.ack_wait_seconds,
                max_deliver=self._agent.max_deliver, filter_subjects=[export_subject(self._agent.gpu_type)],
            ))
        self._sub = await js.pull_subscribe_bind(durable, stream="ASSIGN")

    async def unsubscribe(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def take_one(self, js, stop: asyncio.Event, timeout: float = 0.25) -> None:
        """Run the export that waits, if one does.

        It pulls only when the export consumer has work (new, or handed out and
        perhaps due again), and then briefly: the rest of the time the agent's
        pull stays waiting on its training consumer, which is how job_svc sees
        that an agent is alive (services/job_svc/agents.py)."""
        try:
            info = await js.consumer_info("ASSIGN", export_durable(self._agent.gpu_type))
            if not (info.num_pending or info.num_ack_pending):
                return
            msgs = await self._sub.fetch(batch=1, timeout=timeout)
        except TimeoutError:
            return
        except Exception as exc:  # NATS away: the exports wait in their stream
            log.warning("could not fetch exports (%s)", exc)
            return
        for msg in msgs:
            try:
                assignment = artifact_pb2.ExportAssignment.FromString(msg.data)
            except DecodeError as exc:
                assignment = None
                reason = f"not an ExportAssignment: {exc}"
            if assignment is None or not assignment.export_id or not assignment.base_model:
                reason = reason if assignment is None else "the export assignment has no export_id or base_model"
                await events.dead_letter(js, msg, consumer=export_durable(self._agent.gpu_type), reason=reason)
                continue
            try:
                # In the trace of the request that queued it (the outbox relay's traceparent header).
                with tracing.span(f"export {msg.subject}", kind=SpanKind.CONSUMER,
                                  traceparent=events.traceparent_of(msg),
                                  attributes={"brightrun.export_id": assignment.export_id,
                                              "brightrun.attempt": msg.metadata.num_delivered}):
                    await self._run(msg, assignment, stop)
            except Exception:
                log.exception("export %s broke in the agent; handing it back", assignment.export_id)
                await self._settle(msg, "nak", delay=5.0)

    async def _run(self, msg, assignment: artifact_pb2.ExportAssignment, stop: asyncio.Event) -> None:
        attempt = msg.metadata.num_delivered
        export_id = assignment.export_id
        log.info("export %s: attempt %d on agent %s", export_id, attempt, self._agent.agent_id)
        self._send(assignment, "trainer.export.started", attempt, trainer_export_started=events_pb2.TrainerExportStarted(
            export_id=export_id, attempt=attempt, agent_id=self._agent.agent_id))
        workdir = self._agent.work_dir / "exports" / export_id / f"attempt-{attempt}"
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            outcome = await self._merge_and_upload(assignment, workdir, stop)
        finally:
            heartbeat.cancel()
            shutil.rmtree(workdir, ignore_errors=True)
        if outcome["type"] == "stopped":  # the agent shuts down: another agent takes it now
            await self._settle(msg, "nak")
            return
        if outcome["type"] == "completed":
            mark = self._send(assignment, "trainer.export.completed", attempt,
                              trainer_export_completed=events_pb2.TrainerExportCompleted(
                                  export_id=export_id, manifest=outcome["manifest"]))
            await self._relay.wait_published(mark, self._agent.io_retry_seconds)
            await self._settle(msg, "ack")
            return
        retryable = outcome.get("retryable", True) and attempt < self._agent.max_deliver
        log.info("export %s: attempt %d failed: %s", export_id, attempt, outcome["reason"])
        mark = self._send(assignment, "trainer.export.failed", attempt, trainer_export_failed=events_pb2.TrainerExportFailed(
            export_id=export_id, reason=outcome["reason"], retryable=retryable))
        await self._relay.wait_published(mark, self._agent.io_retry_seconds)
        await self._settle(msg, "nak" if retryable else "term", delay=2.0)

    async def _merge_and_upload(self, assignment, workdir: Path, stop: asyncio.Event) -> dict:
        adapter, merged = workdir / "adapter", workdir / "merged"
        storage = GrantedStore(assignment.grant)
        failed = await fetch_adapter(storage, assignment.adapter, adapter, "the adapter",
                                     owner=f"export {assignment.export_id}", deadline_s=self._agent.io_retry_seconds)
        if failed:
            return failed
        args = ["--base-model", assignment.base_model, "--adapter", str(adapter), "--output", str(merged),
                "--quantization", assignment.quantization, "--agent-pid", str(os.getpid())]
        proc = await asyncio.create_subprocess_exec(
            *worker_command(self._agent.gpu_type, 1, args, os.getpid(), module=MERGE_MODULE),
            stdout=asyncio.subprocess.PIPE, start_new_session=True,
        )
        stopping = asyncio.create_task(stop.wait())
        finished = asyncio.create_task(proc.communicate())
        try:
            done, _ = await asyncio.wait({stopping, finished}, timeout=self._agent.startup_seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if finished not in done:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 9)
            await finished
            if stop.is_set():
                return {"type": "stopped"}
            return {"type": "failed", "reason": f"the merge took over {self._agent.startup_seconds:g}s",
                    "retryable": True}
        stdout, _ = finished.result()
        lines = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
        outcome = lines[-1] if lines else {"type": "failed", "reason": "the merge exited without a result",
                                           "retryable": True}
        if outcome["type"] != "completed":
            return outcome
        try:
            manifest = await retry_io(
                lambda: upload_directory(storage, merged, assignment.output_bucket, assignment.output_prefix),
                f"export {assignment.export_id}: uploading the merged model", deadline_s=self._agent.io_retry_seconds)
        except Exception as exc:
            return io_failure("could not upload the merged model", exc)
        return {"type": "completed", "manifest": manifest}

    def _send(self, assignment, type_: str, attempt: int, **payload) -> int:
        event = events.new_event(type_, producer=PRODUCER, user_id=assignment.user_id,
                                 subject_id=assignment.export_id, **payload)
        # Deterministic: a replayed publish of the same report is dropped by JetStream.
        event.event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{assignment.export_id}:{attempt}:{type_}"))
        return self._relay.send(event)

    async def _heartbeat(self, msg) -> None:
        while True:
            await asyncio.sleep(self._agent.heartbeat_seconds)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _settle(self, msg, how: str, delay: float = 0.0) -> None:
        act = {"ack": msg.ack_sync, "term": msg.term, "nak": lambda: msg.nak(delay=delay)}[how]
        try:
            await retry(act, f"{how} of an export assignment", deadline_s=self._agent.io_retry_seconds)
        except Exception as exc:
            log.error("could not %s an export assignment (%s); JetStream redelivers it", how, exc)
