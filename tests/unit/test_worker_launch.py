"""Where torch is imported (only in the training worker) and how a CPU worker
is started: at a lower priority, with a bounded thread count, so that the
control plane beside it keeps its latency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.trainer_agent import __main__ as agent_main
from services.trainer_agent.launch import WORKER_MODULE, cpu_worker_limits, launch_command, worker_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["services.trainer_agent.__main__", "services.platform.launcher"])
def test_the_launcher_and_the_trainer_agent_import_neither_torch_nor_transformers(module):
    code = f"import sys, {module}; print(sorted({{'torch', 'transformers'}} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_agent_finds_the_cuda_devices_torch_finds_without_importing_it(monkeypatch):
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    # As if a driver were installed, so that the interpreter that imports torch is asked here too.
    monkeypatch.setattr(agent_main, "_NVIDIA_DRIVER", (ROOT,))
    assert agent_main._cuda_devices() == [torch.cuda.get_device_name(i) for i in range(count)]


def _probe(tmp_path: Path, env: dict[str, str]) -> dict:
    """Run the CPU worker's command with a stand-in worker that reports what it was given."""
    (tmp_path / "probe_worker.py").write_text(
        "import json, os, sys, torch\n"
        "print(json.dumps({'nice': os.nice(0), 'omp': os.environ['OMP_NUM_THREADS'],"
        " 'torch_threads': torch.get_num_threads(), 'argv': sys.argv[1:]}))\n"
    )
    command = worker_command("CPU", 1, ["--dataset", "d.jsonl"], os.getpid())
    command[command.index(WORKER_MODULE)] = "probe_worker"
    path = os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, **env, "PYTHONPATH": path})
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_a_cpu_worker_runs_niced_with_the_cores_less_one_as_its_threads(tmp_path):
    default = {"BRIGHTRUN_AGENT_WORKER_NICE": "", "BRIGHTRUN_AGENT_WORKER_THREADS": ""}
    seen = _probe(tmp_path, default)
    cores = len(os.sched_getaffinity(0))
    threads = max(1, cores - 1)
    assert seen == {"nice": min(19, os.nice(0) + 10), "omp": str(threads), "torch_threads": threads,
                    "argv": ["--dataset", "d.jsonl"]}

    seen = _probe(tmp_path, {"BRIGHTRUN_AGENT_WORKER_NICE": "3", "BRIGHTRUN_AGENT_WORKER_THREADS": "2"})
    # torch runs no more threads than there are cores, whatever it is told.
    assert (seen["nice"], seen["omp"], seen["torch_threads"]) == (min(19, os.nice(0) + 3), "2", min(2, cores))


def test_bad_worker_limits_are_refused_naming_each_variable():
    with pytest.raises(SystemExit) as refused:
        cpu_worker_limits({"BRIGHTRUN_AGENT_WORKER_NICE": "20", "BRIGHTRUN_AGENT_WORKER_THREADS": "two"})
    assert "BRIGHTRUN_AGENT_WORKER_NICE='20'" in str(refused.value)
    assert "BRIGHTRUN_AGENT_WORKER_THREADS='two'" in str(refused.value)
    assert cpu_worker_limits({"BRIGHTRUN_AGENT_WORKER_NICE": "0", "BRIGHTRUN_AGENT_WORKER_THREADS": "4"}).threads == 4


def test_only_a_cpu_worker_goes_through_the_niced_launch(monkeypatch):
    monkeypatch.delenv("BRIGHTRUN_HOME", raising=False)
    args = ["--dataset", "d.jsonl"]
    assert worker_command("CPU", 1, args, 42) == [
        sys.executable, "-m", "services.trainer_agent.launch", "--cpu", "-m", WORKER_MODULE, *args]
    assert worker_command("A100-80GB", 1, args, 42) == [sys.executable, "-m", WORKER_MODULE, *args]


def test_every_worker_names_the_agents_home_on_its_command_line(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("BRIGHTRUN_HOME", str(home))
    args = ["--dataset", "d.jsonl"]
    marked = [sys.executable, "-X", f"brightrun_home={home}", "-m"]
    for gpu_type, count in (("CPU", 1), ("A100-80GB", 1), ("H100", 8)):
        assert worker_command(gpu_type, count, args, 42)[:4] == marked, (gpu_type, count)
    # What `ps` reads: the running worker's own command line.
    (tmp_path / "cmdline_worker.py").write_text("print(open('/proc/self/cmdline', 'rb').read().decode())\n")
    command = worker_command("CPU", 1, args, os.getpid())
    command[command.index(WORKER_MODULE)] = "cmdline_worker"
    path = os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "PYTHONPATH": path})
    assert f"brightrun_home={home}" in done.stdout.split("\0")


def test_each_rank_of_a_multi_gpu_worker_names_the_agents_home(tmp_path, monkeypatch):
    """torchrun's ranks are its children: they carry the home only because torchrun runs the interpreter
    command it is given (``--no-python``), so `ps` finds every rank of a home's job."""
    home = tmp_path / "home"
    monkeypatch.setenv("BRIGHTRUN_HOME", str(home))
    (tmp_path / "cmdline_worker.py").write_text(
        "import os\nprint(os.environ['RANK'], open('/proc/self/cmdline', 'rb').read().decode().split('\\0'))\n")
    command = launch_command(2, [], agent_pid=os.getpid())
    command[command.index(WORKER_MODULE)] = "cmdline_worker"
    path = os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 0, done.stderr
    ranks = [line.split(" ", 1) for line in done.stdout.splitlines() if line[:1].isdigit()]
    assert sorted(rank for rank, _ in ranks) == ["0", "1"]
    assert all(f"'brightrun_home={home}'" in cmdline for _, cmdline in ranks), ranks
