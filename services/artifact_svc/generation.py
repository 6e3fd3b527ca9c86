"""Generate: sampling from a trained model, run by a trainer agent, never here
(the control plane stays torch-free).

How a request travels. artifact_svc subscribes to a fresh core NATS inbox,
then publishes a GenerationAssignment on the ASSIGN work queue, subject
``assign.<gpu_type>.1`` of the GPU type the model trained on, with the header
``BrightRun-Kind: generate`` so that agents tell it from training work. The
agent that takes it answers on the inbox with GenerationReply messages:
``working`` when it takes it and at every heartbeat, then ``completed`` or
``failed``. Request/reply on core NATS keeps it simple: nothing is stored,
since a generation is an answer, not a resource.

No word for ``generate_timeout_seconds`` (no agent took it: none runs for
that GPU type, or all are busy training; or the one at it died) is a
``no_agent_available`` error. The assignment carries ``expires_at``, so an
agent that frees up after the caller gave up drops it unanswered.

Each user may have ``generate_concurrency_per_user`` requests waiting or
running at once, counted in this process (per artifact_svc replica).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import nats.errors
from brightrun.artifact.v1 import artifact_pb2

from services.common.grants import Granter
from services.common.sampling import Sampling, shown_prompt
from services.common import events, tracing
from services.common.nats_access import GENERATION_REPLIES
from services.common.errors import Conflict, ResourceExhausted

# The adapter files no generation can do without.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class ModelNotReady(Conflict):
    """The artifact has no adapter to generate with (yet)."""

    reason = "model_not_ready"


class TooManyGenerations(ResourceExhausted):
    """The user already has as many generation requests under way as allowed."""

    reason = "too_many_generations"


class NoAgentAvailable(ResourceExhausted):
    """No trainer agent took the request, or the one that did stopped answering (a 503 at the gateway)."""

    reason = "no_agent_available"


class GenerationFailed(Conflict):
    """The agent could not run the model (its base model cannot be loaded there, say)."""

    reason = "generation_failed"


class Generator:
    """Sends generation requests to trainer agents and waits for their answers."""

    def __init__(self, nc, js, *, timeout_seconds: float, per_user: int, grants: Granter):
        self._nc = nc
        self._js = js
        self._timeout = timeout_seconds
        self._per_user = per_user
        self._running: Counter[str] = Counter()
        self._grants = grants

    async def generate(self, artifact: artifact_pb2.ModelArtifact, sampling: Sampling) -> artifact_pb2.GenerateResponse:
        """The model's answers; raises ModelNotReady, TooManyGenerations, NoAgentAvailable or GenerationFailed."""
        assignment = _assignment(artifact, sampling)
        user = artifact.user_id
        if self._running[user] >= self._per_user:
            raise TooManyGenerations(
                f"You already have {self._running[user]} generation requests under way, the most allowed at once "
                f"(BRIGHTRUN_GENERATE_CONCURRENCY_PER_USER={self._per_user}); wait for one to finish and try again"
            )
        self._running[user] += 1
        try:
            response = await self._ask_an_agent(assignment, _subject(artifact))
        finally:
            self._running[user] -= 1
            if not self._running[user]:
                del self._running[user]
        response.model_id = artifact.id
        if len(response.results) != len(sampling.conversations):
            raise GenerationFailed(f"The agent answered {len(response.results)} of {len(sampling.conversations)} prompts")
        for result, messages in zip(response.results, sampling.conversations):
            result.prompt = shown_prompt(messages)
        return response

    async def _ask_an_agent(self, assignment: artifact_pb2.GenerationAssignment, subject: str):
        # Not this connection's inbox: the agent may publish answers here (generation.reply.*) and nowhere else.
        inbox = f"{GENERATION_REPLIES}.{assignment.request_id}"
        assignment.reply_subject = inbox
        assignment.expires_at.FromDatetime(datetime.now(timezone.utc) + timedelta(seconds=self._timeout))
        assignment.grant.CopyFrom(self._grants.generation(assignment))
        sub = await self._nc.subscribe(inbox)  # before publishing: no reply can come before it
        taken = False
        try:
            # The Generate call's trace context goes with it: the agent's span continues that trace.
            headers = {"Nats-Msg-Id": assignment.request_id, events.ASSIGNMENT_KIND_HEADER: events.GENERATION_KIND,
                       **tracing.headers()}
            await self._js.publish(subject, assignment.SerializeToString(), headers=headers)
            while True:
                try:
                    msg = await sub.next_msg(timeout=self._timeout)
                except nats.errors.TimeoutError:
                    raise NoAgentAvailable(_silence(taken, self._timeout)) from None
                reply = artifact_pb2.GenerationReply.FromString(msg.data)
                outcome = reply.WhichOneof("outcome")
                if reply.request_id != assignment.request_id:
                    continue
                if outcome == "working":
                    taken = True
                    continue
                if outcome == "failed":
                    raise GenerationFailed(f"The model could not generate: {reply.failed.reason}")
                return reply.completed
        finally:
            await sub.unsubscribe()


def _assignment(artifact: artifact_pb2.ModelArtifact, sampling: Sampling) -> artifact_pb2.GenerationAssignment:
    """What an agent needs to answer; raises ModelNotReady when the artifact has no adapter to load."""
    files = artifact.artifacts
    missing = [name for name in ADAPTER_FILES if name not in files]
    base_model = artifact.configuration["base_model"] if "base_model" in artifact.configuration else None
    if artifact.status != "stored" or missing or not base_model:
        if artifact.status != "stored":
            why = f"its status is {artifact.status!r}"
        else:
            why = f"its files {', '.join(missing)} are missing" if missing else "it names no base model"
        raise ModelNotReady(f"Model {artifact.id} is not ready to generate from: {why}", {"status": artifact.status})
    adapter = artifact_pb2.AdapterManifest(bucket=artifact.storage_bucket)
    for name in sorted(files):
        entry = files[name]
        adapter.files.add(name=name, key=entry["key"], size_bytes=int(entry["size_bytes"]), sha256=entry["sha256"])
    assignment = artifact_pb2.GenerationAssignment(
        request_id=str(uuid.uuid4()),
        user_id=artifact.user_id,
        artifact_id=artifact.id,
        base_model=base_model,
        adapter=adapter,
        max_new_tokens=sampling.max_new_tokens,
        temperature=sampling.temperature,
        include_base=sampling.include_base,
    )
    if sampling.seed is not None:
        assignment.seed = sampling.seed
    for messages in sampling.conversations:
        assignment.conversations.add().messages.extend(
            artifact_pb2.ChatMessage(role=m["role"], content=m["content"]) for m in messages
        )
    return assignment


def _subject(artifact: artifact_pb2.ModelArtifact) -> str:
    """The agents that may answer: those of the GPU type the model trained on (one GPU is enough)."""
    gpu = artifact.configuration["gpu_config"] if "gpu_config" in artifact.configuration else {}
    gpu_type = gpu["type"] if "type" in gpu else "CPU"
    return f"assign.{gpu_type}.1"


def _silence(taken: bool, timeout: float) -> str:
    if taken:
        return f"The trainer agent generating from this model stopped answering for {timeout:g} s; try again"
    return (
        f"No trainer agent is available to generate: none took the request within {timeout:g} s "
        "(they may all be training, or none runs for this model's GPU type); try again shortly"
    )

