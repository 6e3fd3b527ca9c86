"""The training worker process as the agent drives it: stopped by SIGTERM it
checkpoints the step it finished and says so; it dies with its agent; a
user's error is told apart from one a retry may get past; and the agent's
stall watchdog kills a silent worker with everything it started."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from services.trainer_agent.__main__ import _time_bounds
from services.common.startup import StartupError
from services.trainer_agent.attempt import WorkerProcess, WorkerStalled, metric_point
from services.trainer_agent.checkpoint import CheckpointError, checkpoint_path, read_checkpoint
from services.trainer_agent.recipe import ConfigError
from services.trainer_agent.worker import failure

ROOT = Path(__file__).resolve().parents[2]


def test_a_users_error_is_not_retried_and_anything_else_is():
    for user_error in (
        ConfigError(["rank: must be a whole number of at least 1"]),
        OSError("/models/missing is not a local folder and is not a valid model identifier"),
        CheckpointError("step-00000004 was written with other values of rank"),
    ):
        assert failure(user_error, setting_up=True)["retryable"] is False, user_error
    assert failure(RuntimeError("NCCL error: unhandled system error"), setting_up=False)["retryable"] is True
    # Once training runs, a failing file is the machine's: another agent may have room.
    assert failure(OSError(28, "No space left on device"), setting_up=False)["retryable"] is True


def test_a_model_that_does_not_fit_is_a_users_error_with_what_to_change():
    line = failure(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), setting_up=False)
    assert line["retryable"] is False
    assert "does not fit in GPU memory" in line["reason"] and "batch_size" in line["reason"]


@pytest.fixture
def dataset(tmp_path) -> Path:
    path = tmp_path / "echo.jsonl"
    with path.open("w") as out:
        for i in range(30):
            text = f"say {i} and {i * 7}"
            turns = [{"role": "user", "content": text}, {"role": "assistant", "content": text}]
            out.write(json.dumps({"messages": turns}) + "\n")
    return path


def _worker(tiny_model: Path, dataset: Path, tmp_path: Path, *extra: str) -> list[str]:
    assignment = tmp_path / "assignment.json"
    hyperparameters = {"base_model": str(tiny_model), "batch_size": 1, "epochs": 3, "rank": 4, "seed": 3}
    # An assignment from before plans were the recipe's carried the estimate's steps: the worker ignores them
    # and reports the steps its recipe plans from the data.
    assignment.write_text(json.dumps({"hyperparameters": hyperparameters, "total_steps": 999}))
    command = [sys.executable, "-m", "services.trainer_agent.worker", "--assignment", str(assignment)]
    return command + ["--dataset", str(dataset), "--output", str(tmp_path / "adapter"), *extra]


@pytest.mark.slow
def test_sigterm_finishes_the_step_checkpoints_it_and_a_new_worker_continues_after_it(tiny_model, dataset, tmp_path):
    # Checkpoints every 1000 steps: only the stop writes one.
    checkpoints = ["--checkpoint-dir", str(tmp_path / "ckpt"), "--checkpoint-steps", "1000"]
    command = _worker(tiny_model, dataset, tmp_path, *checkpoints)
    stopped = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    for raw in stopped.stdout:
        lines.append(json.loads(raw))
        if lines[-1].get("step") == 3 and lines[-1]["type"] == "metrics":
            stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(timeout=60) == 0
    last_step = max(line["step"] for line in lines if line["type"] == "metrics")
    assert lines[-2:] == [
        {"type": "checkpoint", "path": str(checkpoint_path(tmp_path / "ckpt", last_step)), "step": last_step},
        {"type": "stopped", "step": last_step},
    ]
    # The step under way when the signal came is finished, and nothing after it is begun.
    assert 3 <= last_step <= 4
    _, state = read_checkpoint(checkpoint_path(tmp_path / "ckpt", last_step))
    assert state["global_step"] == last_step

    # First, before any step: the recipe's plan, which job_svc counts progress against.
    plan = lines[0]
    assert plan["type"] == "plan" and plan["resumed_from_step"] == 0
    # Every field the worker reports has a place on the metric point the agent publishes.
    for line in lines[1:-2]:
        point = metric_point("job", line)
        assert {field.name for field, _ in point.ListFields()} >= {"epoch", "step", "training_loss", "learning_rate",
                                                           "gradient_norm", "throughput", "samples_per_second"}

    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    steps = [json.loads(raw)["step"] for raw in resumed.stdout.splitlines() if '"metrics"' in raw]
    assert steps[0] == last_step + 1
    # The resumed worker plans the same run, after the checkpoint's step; the plan is the run it then completes.
    assert json.loads(resumed.stdout.splitlines()[0]) == {**plan, "resumed_from_step": last_step}
    assert steps[-1] == plan["total_steps"] != 999
    assert json.loads(resumed.stdout.splitlines()[-1])["type"] == "completed"


def test_a_worker_started_by_another_process_than_its_agent_exits_at_once(tiny_model, dataset, tmp_path):
    # Its agent already gone (the worker's parent is someone else): nothing to report to.
    command = _worker(tiny_model, dataset, tmp_path, "--agent-pid", "1")
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 1 and finished.stdout == ""


@pytest.mark.slow
def test_a_worker_dies_with_its_agent(tiny_model, dataset, tmp_path):
    worker = _worker(tiny_model, dataset, tmp_path, "--checkpoint-dir", str(tmp_path / "ckpt"))
    # A stand-in agent: starts the worker (in a process group of its own, as the agent
    # does), says its pid, and waits for a metrics line before it is killed.
    agent_code = (
        "import os, subprocess, sys\n"
        f"command = {worker!r} + ['--agent-pid', str(os.getpid())]\n"
        "proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)\n"
        "print(proc.pid, flush=True)\n"
        "proc.stdout.readline()\n"
        "print('stepping', flush=True)\n"
        "proc.wait()\n"
    )
    agent = subprocess.Popen([sys.executable, "-c", agent_code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    worker_pid = int(agent.stdout.readline())
    assert agent.stdout.readline().strip() == "stepping"
    agent.kill()
    agent.wait()
    deadline = time.monotonic() + 30
    while _alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker_pid)


# Reports one step, starts a child that would outlive it, says the child's pid, then hangs.
HANGS_AFTER_ONE_STEP = """
import json, subprocess, sys, time
print(json.dumps({"type": "metrics", "step": 1}), flush=True)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(json.dumps({"type": "child", "pid": child.pid}), flush=True)
time.sleep(600)
"""


async def _watch(code: str, stall: float, startup: float) -> tuple[list[dict], Exception | None, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    worker, lines, error = WorkerProcess(proc, stall, startup), [], None
    try:
        async for line in worker.lines():
            lines.append(line)
    except WorkerStalled as exc:
        error = exc
    worker.kill()
    return lines, error, await proc.wait()


def test_a_worker_silent_past_the_stall_bound_is_stalled_and_killed_with_its_children():
    lines, error, code = asyncio.run(_watch(HANGS_AFTER_ONE_STEP, stall=1.5, startup=60))
    assert [line["type"] for line in lines] == ["metrics", "child"]
    assert str(error) == "stalled: no step completed in 1.5s"
    assert code < 0  # killed
    deadline = time.monotonic() + 10
    while _alive(lines[1]["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(lines[1]["pid"])


def test_before_its_first_step_a_worker_has_the_startup_bound():
    lines, error, _ = asyncio.run(_watch("import time; time.sleep(600)", stall=60, startup=1.0))
    assert lines == [] and str(error) == "stalled: no step completed in 1s"


def test_a_worker_that_finishes_in_time_is_not_stalled():
    code = f"print({json.dumps(json.dumps({'type': 'completed'}))})"
    lines, error, exit_code = asyncio.run(_watch(code, stall=60, startup=60))
    assert lines == [{"type": "completed"}] and error is None and exit_code == 0


def test_time_bounds_come_from_the_environment_and_bad_ones_are_named(monkeypatch):
    monkeypatch.delenv("BRIGHTRUN_AGENT_STALL_SECONDS", raising=False)
    monkeypatch.setenv("BRIGHTRUN_AGENT_STARTUP_SECONDS", "120")
    monkeypatch.delenv("BRIGHTRUN_AGENT_IO_RETRY_SECONDS", raising=False)
    assert _time_bounds() == {"stall_seconds": 600.0, "startup_seconds": 120.0, "io_retry_seconds": 300.0}
    monkeypatch.setenv("BRIGHTRUN_AGENT_STALL_SECONDS", "soon")
    monkeypatch.setenv("BRIGHTRUN_AGENT_STARTUP_SECONDS", "-5")
    monkeypatch.setenv("BRIGHTRUN_AGENT_IO_RETRY_SECONDS", "x")
    with pytest.raises(StartupError) as info:
        _time_bounds()
    assert "BRIGHTRUN_AGENT_STALL_SECONDS='soon'" in str(info.value)
    assert "BRIGHTRUN_AGENT_STARTUP_SECONDS='-5'" in str(info.value)
    assert "BRIGHTRUN_AGENT_IO_RETRY_SECONDS='x'" in str(info.value)


def _alive(pid: int) -> bool:
    # A zombie has died: only its reaping (by init, here) is left.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
