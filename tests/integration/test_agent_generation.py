"""Generate through the real path: artifact_svc publishes a generation
assignment on JetStream's ASSIGN work queue, a real trainer agent takes it and
runs the tiny model in a worker process with the adapter downloaded from S3,
and answers on a core NATS inbox. PostgreSQL, NATS and SeaweedFS are real.

Artifacts here train on made-up GPU types, so that no other test's training
assignment reaches this module's agent, and one type no agent serves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from pathlib import Path

import grpc
from nats.errors import TimeoutError as NoMessage
import pytest
import pytest_asyncio
import torch
from brightrun.artifact.v1 import artifact_pb2, artifact_pb2_grpc
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2

from services.artifact_svc.server import start
from services.common import events
from services.common.grpc import as_user, channel
from services.common.status import error_details
from services.common.storage import ObjectStorage
from services.trainer_agent.agent import AgentSettings, TrainerAgent

pytestmark = pytest.mark.slow

SERVED = "GENTEST"  # the agent of this module serves this GPU type
UNSERVED = "NOAGENT"  # no agent serves this one
TIMEOUT_SECONDS = 4.0


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory) -> Path:
    """A LoRA adapter of the tiny model whose weights are not zero: it changes what the model writes."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(r=8, lora_alpha=64, target_modules="all-linear", init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(out)
    return out


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def service(settings):
    bounded = dataclasses.replace(settings, generate_timeout_seconds=TIMEOUT_SECONDS, generate_concurrency_per_user=2)
    runtime = await start(bounded, address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{runtime.port}") as ch:
        yield artifact_pb2_grpc.ArtifactServiceStub(ch)
    await runtime.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def agent(settings, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("agent")
    stop = asyncio.Event()
    trainer = TrainerAgent(settings, AgentSettings(agent_id="gen-test", gpu_type=SERVED, gpu_count=1,
                                                   work_dir=work_dir, heartbeat_seconds=1.0))
    task = asyncio.create_task(trainer.run(stop))
    yield work_dir
    stop.set()
    await asyncio.wait_for(task, 30)


async def _model(service, settings, nats, tiny_model, files: dict[str, Path], gpu_type: str, user: str | None = None,
                 base_model: str | None = None):
    """A stored artifact of ``user`` (a new one by default) with ``files`` uploaded; returns (user, artifact id)."""
    _, js = nats
    user = user or str(uuid.uuid4())
    job_id = str(uuid.uuid4())
    storage = ObjectStorage.from_settings(settings)
    manifest = artifact_pb2.AdapterManifest(bucket=settings.models_bucket, prefix=f"{user}/{job_id}/adapter/")
    for name, path in files.items():
        key = f"{user}/{job_id}/adapter/{name}"
        await asyncio.to_thread(storage.upload_file, path, settings.models_bucket, key)
        manifest.files.add(name=name, key=key, size_bytes=path.stat().st_size, sha256="x")
    job = job_pb2.Job(
        id=job_id, user_id=user, dataset_id=str(uuid.uuid4()), dataset_name="Generation",
        hyperparameters=job_pb2.Hyperparameters(rank=8, epochs=1, base_model=base_model or str(tiny_model)),
        gpu_config=job_pb2.GpuConfig(type=gpu_type, count=1),
    )
    completed = events_pb2.JobCompleted(job=job, manifest=manifest)
    event = events.new_event("job.completed", producer="test", user_id=user, subject_id=job_id, job_completed=completed)
    await events.publish(js, event.type, event.SerializeToString(), event.event_id)
    return user, await _artifact_of(service, job_id, user)


async def _artifact_of(stub, job_id: str, user: str) -> str:
    for _ in range(200):
        listed = await stub.ListArtifacts(artifact_pb2.ListArtifactsRequest(), metadata=as_user(user))
        for artifact in listed.artifacts:
            if artifact.job_id == job_id:
                return artifact.id
        await asyncio.sleep(0.1)
    raise AssertionError("the artifact was never built")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def trained(service, settings, nats, tiny_model, adapter):
    files = {p.name: p for p in adapter.iterdir()}
    return await _model(service, settings, nats, tiny_model, files, SERVED)


def _request(model_id: str, **fields) -> artifact_pb2.GenerateRequest:
    conversations = fields.pop("conversations", None)
    request = artifact_pb2.GenerateRequest(artifact_id=model_id, **fields)
    for messages in conversations or ():
        request.conversations.add().messages.extend(artifact_pb2.ChatMessage(**m) for m in messages)
    return request


async def _failure(call) -> tuple[grpc.StatusCode, dict]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), error_details(caught.value)


async def test_an_agent_answers_with_the_adapter_and_the_base_model_alone(service, agent, trained):
    user, model_id = trained
    request = _request(model_id, prompts=["hello world", "one two"], max_new_tokens=8, include_base=True)
    first = await service.Generate(request, metadata=as_user(user), timeout=120)
    assert first.model_id == model_id
    assert [r.prompt for r in first.results] == ["hello world", "one two"]
    assert all(r.completion and r.HasField("base_completion") for r in first.results)
    # The adapter's weights are not zero: with it the model writes something else.
    assert any(r.completion != r.base_completion for r in first.results)
    # Greedy: the same request gives the same text.
    again = await service.Generate(request, metadata=as_user(user), timeout=120)
    assert again.results == first.results
    # A conversation: its prompt is its last user message, and no base answer unless asked for.
    chat = _request(model_id, conversations=[[{"role": "system", "content": "be brief"},
                                              {"role": "user", "content": "hello world"}]], max_new_tokens=4)
    [result] = (await service.Generate(chat, metadata=as_user(user), timeout=120)).results
    assert result.prompt == "hello world" and not result.HasField("base_completion")
    # The agent leaves no scratch files behind.
    assert not any((agent / "generate").iterdir())


async def test_another_users_model_is_not_found(service, trained):
    _, model_id = trained
    code, _ = await _failure(service.Generate(_request(model_id, prompts=["hi"]), metadata=as_user(str(uuid.uuid4()))))
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 513}, "max_new_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"prompts": ["x" * 4001]}, "prompts[0]"),
        ({"prompts": ["ok", "  "]}, "prompts[1]"),
        ({"prompts": ["a"] * 9}, "prompts"),
        ({"prompts": []}, "prompts"),
        ({"conversations": [[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]]},
         "conversations[0]"),
        ({"conversations": [[{"role": "robot", "content": "a"}]]}, "conversations[0][0].role"),
    ],
)
async def test_bounds_are_invalid_arguments_naming_the_field(service, trained, fields, bad):
    user, model_id = trained
    request = _request(model_id, **({"prompts": ["hi"]} | fields))
    code, details = await _failure(service.Generate(request, metadata=as_user(user)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert bad in details["details"], details


async def test_prompts_and_conversations_together_are_refused(service, trained):
    user, model_id = trained
    request = _request(model_id, prompts=["hi"], conversations=[[{"role": "user", "content": "hi"}]])
    code, details = await _failure(service.Generate(request, metadata=as_user(user)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not both" in details["details"]["prompts"][0]


async def test_a_model_without_its_adapter_files_is_not_ready(service, settings, nats, tiny_model, tmp_path):
    (tmp_path / "notes.txt").write_text("no adapter here")
    user, model_id = await _model(service, settings, nats, tiny_model, {"notes.txt": tmp_path / "notes.txt"}, SERVED)
    code, details = await _failure(service.Generate(_request(model_id, prompts=["hi"]), metadata=as_user(user)))
    assert code == grpc.StatusCode.ABORTED and details["reason"] == "model_not_ready"


async def test_no_agent_is_a_clear_error_within_the_timeout_and_each_user_has_a_bounded_number_at_once(
    service, settings, nats, tiny_model, adapter
):
    user, model_id = await _model(service, settings, nats, tiny_model, {p.name: p for p in adapter.iterdir()}, UNSERVED)
    async def generate():
        return await service.Generate(_request(model_id, prompts=["hi"]), metadata=as_user(user))

    waiting = [asyncio.create_task(generate()) for _ in range(2)]
    await asyncio.sleep(0.5)
    started = asyncio.get_running_loop().time()
    code, details = await _failure(service.Generate(_request(model_id, prompts=["hi"]), metadata=as_user(user)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and details["reason"] == "too_many_generations"
    for task in waiting:
        code, details = await _failure(task)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and details["reason"] == "no_agent_available"
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < TIMEOUT_SECONDS + 2
    # Once they ended, the user may ask again.
    code, details = await _failure(service.Generate(_request(model_id, prompts=["hi"]), metadata=as_user(user)))
    assert details["reason"] == "no_agent_available"


async def test_a_model_the_agent_cannot_load_is_a_clear_failure(service, agent, settings, nats, tiny_model, adapter):
    files = {p.name: p for p in adapter.iterdir()}
    user, model_id = await _model(service, settings, nats, tiny_model, files, SERVED, base_model="/nowhere/gone-model")
    code, details = await _failure(service.Generate(_request(model_id, prompts=["hi"]), metadata=as_user(user),
                                                    timeout=120))
    assert code == grpc.StatusCode.ABORTED and details["reason"] == "generation_failed"


async def test_an_agent_drops_a_request_whose_caller_stopped_waiting(agent, nats, adapter):
    nc, js = nats
    inbox = nc.new_inbox()
    replies = await nc.subscribe(inbox)
    expired = artifact_pb2.GenerationAssignment(
        request_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), artifact_id=str(uuid.uuid4()), base_model="m",
        max_new_tokens=4, reply_subject=inbox,
    )
    expired.conversations.add().messages.add(role="user", content="hi")
    expired.expires_at.FromSeconds(int(time.time()) - 1)
    headers = {"Nats-Msg-Id": expired.request_id, events.ASSIGNMENT_KIND_HEADER: events.GENERATION_KIND}
    await js.publish(f"assign.{SERVED}.1", expired.SerializeToString(), headers=headers)
    subject = f"assign.{SERVED}.1"

    async def queued() -> int:
        return ((await js.stream_info("ASSIGN", subjects_filter=subject)).state.subjects or {}).get(subject, 0)

    for _ in range(100):  # taken off the work queue, unanswered
        if not await queued():
            break
        await asyncio.sleep(0.1)
    assert await queued() == 0
    with pytest.raises(NoMessage):
        await replies.next_msg(timeout=1.0)
    await replies.unsubscribe()
