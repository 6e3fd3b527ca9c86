"""Training on several processes: the batch split, the DeepSpeed configuration,
and, launched by torchrun with 2 gloo ranks on CPU, that ZeRO-2 and ZeRO-3
train the same adapter as one process and that a dead rank fails the attempt."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from services.trainer_agent.checkpoint import checkpoint_path, read_checkpoint
from services.trainer_agent.distributed import deepspeed_config
from services.trainer_agent.launch import batch_layout, launch_command, worker_command
from services.trainer_agent.recipe import ConfigError, LoRATrainingRecipe, TrainingConfig

RANK_SCRIPT = Path(__file__).with_name("distributed_rank.py")
WORDS = "the model data train learn loss token adapter rank hello world".split()


def _conversations(path: Path, count: int) -> Path:
    rng = random.Random(7)
    with path.open("w") as out:
        for _ in range(count):
            text = " ".join(rng.sample(WORDS, 2))
            messages = [{"role": "user", "content": text}, {"role": "assistant", "content": text.upper()}]
            out.write(json.dumps({"messages": messages, "split": "train"}) + "\n")
    return path


@pytest.mark.parametrize(
    ("batch", "micro", "world", "expected"),
    [
        (8, None, 2, (4, 1)),
        (8, 1, 2, (1, 4)),
        (8, 3, 2, (2, 2)),  # 3 does not divide a rank's 4: the largest micro-batch that does
        (12, 5, 4, (3, 1)),
        (7, None, 1, (7, 1)),
    ],
)
def test_the_effective_batch_is_micro_batch_times_accumulation_times_ranks(batch, micro, world, expected):
    layout = batch_layout(batch, micro, world)

    assert (layout.micro_batch_size, layout.accumulation_steps) == expected
    assert layout.micro_batch_size * layout.accumulation_steps * layout.world_size == batch


def test_a_batch_that_does_not_split_over_the_gpus_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="batch_size: 6 cannot be split evenly over 4 GPUs; make it a multiple of 4"):
        batch_layout(6, None, 4)


def test_the_deepspeed_config_carries_stage_batch_clipping_and_precision():
    config = deepspeed_config(batch_layout(16, 2, 4), zero_stage=3, max_grad_norm=0.5, bf16=True)

    assert config["train_batch_size"] == 16
    assert (config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"]) == (2, 2)
    assert config["zero_optimization"] == {"stage": 3}
    assert config["gradient_clipping"] == 0.5
    assert config["bf16"] == {"enabled": True}


@pytest.mark.parametrize("stage", [0, 1, 4, 2.0, True, "2"])
def test_zero_stage_is_2_or_3(stage):
    with pytest.raises(ConfigError, match="zero_stage: must be 2 or 3"):
        TrainingConfig(base_model="m", zero_stage=stage)
    assert TrainingConfig(base_model="m").zero_stage == 2
    assert TrainingConfig(base_model="m", zero_stage=3).zero_stage == 3


def test_the_launch_runs_one_worker_rank_per_gpu_and_fails_with_any_rank(monkeypatch):
    monkeypatch.delenv("BRIGHTRUN_HOME", raising=False)
    command = launch_command(4, ["--dataset", "d.jsonl"], agent_pid=42)

    assert command[:5] == [sys.executable, "-m", "services.trainer_agent.launch", "--agent-pid", "42"]
    assert {"--standalone", "--nproc-per-node=4", "--max-restarts=0"} <= set(command)
    worker = command[command.index("--no-python") :]
    assert worker == ["--no-python", sys.executable, "-m", "services.trainer_agent.worker", "--distributed",
                      "--dataset", "d.jsonl"]


# 10 examples in batches of 4: each epoch's last batch (2) leaves rank 1 of 2
# with no example, the case where a rank must still join every collective.
SETTINGS = {"batch_size": 4, "micro_batch_size": 1, "epochs": 2, "dropout": 0.0, "learning_rate": 1e-3}
SETTINGS |= {"weight_decay": 0.01}


@pytest.fixture(scope="module")
def conversations(tmp_path_factory) -> Path:
    return _conversations(tmp_path_factory.mktemp("data") / "train.jsonl", 10)


def _train_on_two_ranks(
    model: Path, data: Path, out: Path, stage: int, resume_from: Path | None = None, **overrides
) -> Path:
    """Run distributed_rank.py on 2 ranks, a checkpoint every 2 of the 6 steps; returns ``out``."""
    settings = {**SETTINGS, "zero_stage": stage, "checkpoint_steps": 2, **overrides}
    config = json.dumps({"base_model": str(model), **settings})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(RANK_SCRIPT)]
    resume = [str(resume_from)] if resume_from else []
    out.mkdir(exist_ok=True)
    subprocess.run([*command, config, str(data), str(out), *resume], check=True, timeout=300)
    return out


def _weights(out: Path, rank: int = 0) -> dict[str, torch.Tensor]:
    return load_file(out / f"rank-{rank}.safetensors")


@pytest.fixture(scope="module", params=[2, 3], ids=["zero2", "zero3"])
def two_ranks(request, tiny_model, conversations, tmp_path_factory) -> tuple[int, Path]:
    """A ZeRO stage and what a 2-rank run with it left behind."""
    stage = request.param
    return stage, _train_on_two_ranks(tiny_model, conversations, tmp_path_factory.mktemp(f"zero{stage}"), stage)


def _train_in_one_process(model: Path, data: Path, resume_from: Path | None = None) -> dict[str, torch.Tensor]:
    recipe = LoRATrainingRecipe(TrainingConfig(base_model=str(model), **SETTINGS), data, resume_from=resume_from)
    recipe.setup()
    recipe.train()
    return {name: p.detach() for name, p in recipe.model.named_parameters() if p.requires_grad}


def _assert_same_adapter(distributed: dict, alone: dict) -> None:
    # Not bitwise: the ranks add gradients up in another order than one process
    # does, and float32 addition is not associative (relative differences near
    # 1e-7). Adam divides each gradient by its running size, which magnifies
    # that where a gradient is near zero, yet an Adam step moves a weight by at
    # most about lr (1e-3): atol 1e-5 is 1% of one step (seen: 1.4e-6 after 3).
    assert distributed.keys() == alone.keys()
    for name in alone:
        torch.testing.assert_close(distributed[name], alone[name], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_two_ranks_train_the_adapter_one_process_trains(two_ranks, tiny_model, conversations):
    _, out = two_ranks

    assert all(torch.equal(_weights(out, 0)[name], weight) for name, weight in _weights(out, 1).items())
    _assert_same_adapter(_weights(out), _train_in_one_process(tiny_model, conversations))


@pytest.mark.slow
def test_a_run_resumed_on_two_ranks_continues_exactly(two_ranks, tiny_model, conversations, tmp_path):
    stage, out = two_ranks

    resumed = _train_on_two_ranks(tiny_model, conversations, tmp_path, stage, out / "checkpoints" / "step-00000002")

    # The same ranks, partitions and summation order as the uninterrupted run: bitwise.
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == ["step-00000004", "step-00000006"]
    for name, weight in _weights(out).items():
        assert torch.equal(_weights(resumed)[name], weight), name


@pytest.mark.slow
def test_with_dropout_each_rank_resumes_with_its_own_generators(tiny_model, conversations, tmp_path):
    # distributed_rank.py sets the ranks' generators apart, as their batches' shapes do on a GPU.
    full = _train_on_two_ranks(tiny_model, conversations, tmp_path / "full", 2, dropout=0.1)
    checkpoint = full / "checkpoints" / "step-00000002"

    resumed = _train_on_two_ranks(tiny_model, conversations, tmp_path / "resumed", 2, checkpoint, dropout=0.1)

    for name, weight in _weights(full).items():
        assert torch.equal(_weights(resumed)[name], weight), name


@pytest.mark.slow
def test_a_checkpoint_of_two_ranks_resumes_in_one_process(two_ranks, tiny_model, conversations):
    _, out = two_ranks

    resumed = _train_in_one_process(tiny_model, conversations, resume_from=out / "checkpoints" / "step-00000002")

    _assert_same_adapter(_weights(out), resumed)


@pytest.mark.slow
def test_the_adapter_saved_by_two_ranks_loads(two_ranks, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, out = two_ranks

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), out / "adapter")

    trained = _weights(out)
    loaded = {name: p for name, p in model.named_parameters() if "lora_" in name}
    assert loaded.keys() == trained.keys()
    assert all(torch.equal(loaded[name], trained[name]) for name in trained)
    probe = json.loads((out / "adapter" / "evaluation_probe.json").read_text())
    logits = model(input_ids=torch.tensor([probe["input_ids"]])).logits[0, -1, :16]
    torch.testing.assert_close(logits, torch.tensor(probe["last_logits_head"]))


def _start_worker(tmp_path: Path, model: Path, data: Path, *extra: str, **hyperparameters) -> subprocess.Popen:
    assignment = tmp_path / "assignment.json"
    hyperparameters = {"base_model": str(model), "batch_size": 2, **hyperparameters}
    assignment.write_text(json.dumps({"job_id": "job-1", "hyperparameters": hyperparameters}))
    args = ["--assignment", str(assignment), "--dataset", str(data), "--output", str(tmp_path / "adapter"), *extra]
    return subprocess.Popen(launch_command(2, args), stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_the_worker_on_two_ranks_reports_each_step_once_and_saves_the_adapter(tiny_model, tmp_path):
    data = _conversations(tmp_path / "train.jsonl", 8)

    worker = _start_worker(tmp_path, tiny_model, data, epochs=2)
    lines = [json.loads(line) for line in worker.stdout]

    assert worker.wait(timeout=120) == 0
    assert [line["step"] for line in lines if line["type"] == "metrics"] == list(range(1, 9))
    assert lines[-1]["type"] == "completed"
    assert lines[-1]["summary"]["steps_completed"] == 8
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def _pid_of_rank(launcher: int, rank: int) -> int:
    """The pid of the launcher's child whose environment says RANK=<rank>."""
    for proc in Path("/proc").iterdir():
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environment = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environment:
            return int(proc.name)
    raise AssertionError(f"no rank {rank} under launcher {launcher.pid}")


def _await_first_step(worker: subprocess.Popen) -> None:
    """Reads the worker's plan (its first line, from rank 0 only) and then its first step."""
    assert json.loads(worker.stdout.readline())["type"] == "plan"
    assert json.loads(worker.stdout.readline())["type"] == "metrics"


@pytest.mark.slow
def test_a_killed_rank_ends_the_attempt_with_a_retryable_failure(tiny_model, tmp_path):
    data = _conversations(tmp_path / "train.jsonl", 40)
    worker = _start_worker(tmp_path, tiny_model, data, epochs=100)
    _await_first_step(worker)

    os.kill(_pid_of_rank(worker.pid, 1), signal.SIGKILL)
    lines = [json.loads(line) for line in worker.stdout]

    # gloo sees the closed connection at once; far below the 10-minute process-group timeout.
    assert worker.wait(timeout=60) != 0
    outcome = lines[-1]
    assert outcome["type"] == "failed" and outcome["retryable"] is True, outcome


def test_the_agent_starts_one_worker_for_one_gpu_and_one_rank_per_gpu_for_more(monkeypatch):
    monkeypatch.delenv("BRIGHTRUN_HOME", raising=False)
    args = ["--dataset", "d.jsonl"]
    assert worker_command("H100", 1, args, 42) == [sys.executable, "-m", "services.trainer_agent.worker", *args]
    assert worker_command("H100", 8, args, 42) == launch_command(8, args, agent_pid=42)


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_every_rank_at_the_same_step(tiny_model, tmp_path):
    data = _conversations(tmp_path / "train.jsonl", 40)
    checkpoints = ["--checkpoint-dir", str(tmp_path / "ckpt"), "--checkpoint-steps", "1000"]
    worker = _start_worker(tmp_path, tiny_model, data, *checkpoints, epochs=100)
    _await_first_step(worker)

    # What the agent does to cancel: torchrun passes the signal on to every rank.
    worker.send_signal(signal.SIGTERM)
    lines = [json.loads(line) for line in worker.stdout]

    worker.wait(timeout=60)  # torchrun itself exits 1 on a signal, whatever its ranks did
    # Every rank took part in the stop's checkpoint (a gather) at the same step, rank 0 wrote it.
    step = lines[-1]["step"]
    assert lines[-2:] == [
        {"type": "checkpoint", "path": str(checkpoint_path(tmp_path / "ckpt", step)), "step": step},
        {"type": "stopped", "step": step},
    ]
    assert read_checkpoint(checkpoint_path(tmp_path / "ckpt", step))[1]["global_step"] == step


def test_the_agent_records_the_batch_layout_the_worker_runs():
    from brightrun.job.v1 import job_pb2
    from services.trainer_agent.agent import _batch_layout

    def layout(batch_size: int, gpus: int):
        return _batch_layout(
            job_pb2.TrainingAssignment(
                hyperparameters=job_pb2.Hyperparameters(batch_size=batch_size),
                gpu_config=job_pb2.GpuConfig(type="H100", count=gpus),
            )
        )

    assert layout(16, 8) == job_pb2.BatchLayout(micro_batch_size=2, gradient_accumulation_steps=1, world_size=8)
    assert layout(8, 1) == job_pb2.BatchLayout(micro_batch_size=8, gradient_accumulation_steps=1, world_size=1)
    assert layout(6, 4) is None


@pytest.mark.slow
def test_no_rank_outlives_an_agent_killed_outright(tiny_model, tmp_path):
    data = _conversations(tmp_path / "train.jsonl", 40)
    assignment = tmp_path / "assignment.json"
    hyperparameters = {"base_model": str(tiny_model), "batch_size": 2, "epochs": 1000}
    assignment.write_text(json.dumps({"job_id": "job-1", "hyperparameters": hyperparameters}))
    args = ["--assignment", str(assignment), "--dataset", str(data), "--output", str(tmp_path / "adapter")]
    lines = tmp_path / "lines.jsonl"
    # A stand-in agent: starts the launch in a process group of its own, as the
    # agent does, and says its pid. The lines go to a file, not a pipe, so that
    # no write to a closed pipe ends the ranks after the agent dies: only the lifeline can.
    agent_code = (
        "import os, subprocess\n"
        "from services.trainer_agent.launch import launch_command\n"
        f"command = launch_command(2, {args!r}, agent_pid=os.getpid())\n"
        f"out = open({str(lines)!r}, 'w')\n"
        "proc = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, start_new_session=True)\n"
        "print(proc.pid, flush=True)\n"
        "proc.wait()\n"
    )
    agent = subprocess.Popen([sys.executable, "-c", agent_code], stdout=subprocess.PIPE, text=True)
    launcher = int(agent.stdout.readline())
    ranks = []
    try:
        deadline = time.monotonic() + 120
        while '"metrics"' not in (lines.read_text() if lines.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.2)
        ranks = [_pid_of_rank(launcher, rank) for rank in (0, 1)]

        agent.kill()
        agent.wait()

        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in [launcher, *ranks]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in [launcher, *ranks])
    finally:
        for pid in [launcher, *ranks]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
