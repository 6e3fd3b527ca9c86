"""The agent's side of Generate (see ``services.artifact_svc.generation`` for
the whole path): a GenerationAssignment taken from the ASSIGN work queue is
answered on its ``reply_subject`` (core NATS) with GenerationReply messages:
``working`` at once and every heartbeat, then ``completed`` or ``failed``.

The model runs in a worker process (``generation_worker``), like training, so
that the agent never imports torch; the adapter is downloaded into a scratch
directory removed afterwards. An agent takes one assignment at a time: while
it trains, generation requests wait for another agent (or time out, and the
caller is told no agent is available). An assignment whose caller has
stopped waiting (past ``expires_at``) is dropped unanswered, and none is
retried: the caller asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from brightrun.artifact.v1 import artifact_pb2
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from services.common import events
from services.common.paging import canonical_uuid
from services.trainer_agent.launch import worker_command
from services.trainer_agent.granted import GrantedStore
from services.trainer_agent.uploads import fetch_adapter

log = logging.getLogger(__name__)
WORKER_MODULE = "services.trainer_agent.generation_worker"


class GenerationRunner:
    """Answers generation assignments on an agent of ``gpu_type``."""

    def __init__(self, *, gpu_type: str, work_dir: Path, heartbeat_seconds: float,
                 io_retry_seconds: float):
        self._gpu_type = gpu_type
        self._work_dir = work_dir / "generate"
        self._heartbeat_seconds = heartbeat_seconds
        self._io_retry_seconds = io_retry_seconds

    async def handle(self, nc, js, msg, *, durable: str) -> None:
        """Answer the assignment in ``msg`` and settle it; an unreadable one is parked on the dead-letter stream."""
        try:
            assignment = read_generation_assignment(msg.data)
        except ValueError as exc:
            await events.dead_letter(js, msg, consumer=durable, reason=str(exc))
            return
        if assignment.expires_at.ToDatetime(tzinfo=timezone.utc) < datetime.now(timezone.utc):
            log.info("generation %s expired before it was taken; dropped", assignment.request_id)
            await msg.term()
            return
        log.info("generation %s for model %s", assignment.request_id, assignment.artifact_id)
        await _reply(nc, assignment, working=True)
        heartbeat = asyncio.create_task(self._heartbeat(nc, msg, assignment))
        try:
            outcome = await self._run(assignment)
        except Exception as exc:
            log.exception("generation %s failed in the agent", assignment.request_id)
            outcome = {"type": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        finally:
            heartbeat.cancel()
        if outcome["type"] == "completed":
            results = [artifact_pb2.GenerationResult(**result) for result in outcome["results"]]
            await _reply(nc, assignment, completed=artifact_pb2.GenerateResponse(results=results))
        else:
            await _reply(nc, assignment, failed=artifact_pb2.GenerationFailed(reason=outcome["reason"]))
        with contextlib.suppress(Exception):  # unsettled, it expires when redelivered
            await msg.ack_sync()

    async def _heartbeat(self, nc, msg, assignment) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            with contextlib.suppress(Exception):
                await msg.in_progress()
            await _reply(nc, assignment, working=True)

    async def _run(self, assignment: artifact_pb2.GenerationAssignment) -> dict:
        workdir = self._work_dir / assignment.request_id
        adapter = workdir / "adapter"
        adapter.mkdir(parents=True, exist_ok=True)
        try:
            failed = await fetch_adapter(GrantedStore(assignment.grant), assignment.adapter, adapter, "the adapter",
                                         owner=f"generation {assignment.request_id}", deadline_s=self._io_retry_seconds)
            if failed:
                return failed
            spec = workdir / "assignment.json"
            spec.write_text(json_format.MessageToJson(assignment, preserving_proto_field_name=True))
            output = workdir / "outcome.json"
            args = ["--assignment", str(spec), "--adapter", str(adapter), "--output", str(output),
                    "--agent-pid", str(os.getpid())]
            proc = await asyncio.create_subprocess_exec(
                *worker_command(self._gpu_type, 1, args, os.getpid(), module=WORKER_MODULE), start_new_session=True
            )
            try:
                code = await proc.wait()
            except BaseException:
                proc.kill()
                raise
            if not output.exists():
                return {"type": "failed", "reason": f"the generation worker exited with code {code} without a result"}
            return json.loads(output.read_text())
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)


def read_generation_assignment(data: bytes) -> artifact_pb2.GenerationAssignment:
    """The GenerationAssignment in a message; raises ValueError naming what is wrong."""
    try:
        assignment = artifact_pb2.GenerationAssignment.FromString(data)
    except DecodeError as exc:
        raise ValueError(f"not a GenerationAssignment: {exc}") from None
    missing = [name for name in ("request_id", "base_model", "reply_subject") if not getattr(assignment, name)]
    if missing:
        raise ValueError(f"the generation assignment has no {', '.join(missing)}")
    # It names the scratch directory: no path may hide in it.
    if canonical_uuid(assignment.request_id) != assignment.request_id:
        raise ValueError(f"request_id {assignment.request_id!r} is not a UUID")
    return assignment


async def _reply(nc, assignment: artifact_pb2.GenerationAssignment, **outcome) -> None:
    """Send one GenerationReply; a caller that is gone, or NATS away, loses only this reply."""
    reply = artifact_pb2.GenerationReply(request_id=assignment.request_id, **outcome)
    try:
        await nc.publish(assignment.reply_subject, reply.SerializeToString())
    except Exception as exc:
        log.warning("generation %s: could not reply (%s)", assignment.request_id, exc)
