"""How the agent starts a training worker, and the program that starts it.

The agent plans with what is here (the command line, how a job's batch splits
over the ranks) and never imports torch: only the worker does.

``python -m services.trainer_agent.launch [--agent-pid PID] TORCHRUN_ARGS...``:
torchrun (``torch.distributed.run``), ended with SIGTERM when the agent that
started it dies. torchrun passes the SIGTERM on to every rank, and each rank
dies with torchrun (see ``worker``), so no rank outlives an agent killed outright.

``python -m services.trainer_agent.launch --cpu -m MODULE ARGS...``: MODULE
(the worker) in this process, at a lower priority (``BRIGHTRUN_AGENT_WORKER_NICE``,
default 10) with a bounded number of compute threads
(``BRIGHTRUN_AGENT_WORKER_THREADS``, default the cores this process may use
less one, at least 1), so that a job training on the CPU leaves a core and the
scheduler's preference to the control plane beside it.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.gpu_catalogue import CPU
from services.common.lifeline import die_with_parent
from services.common.startup import python_command
from services.trainer_agent.training_config import ConfigError

WORKER_MODULE = "services.trainer_agent.worker"
DEFAULT_WORKER_NICE = 10
# What torch (OpenMP), MKL and OpenBLAS size their thread pools by.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker_command(
    gpu_type: str, gpu_count: int, worker_args: list[str], agent_pid: int, module: str = WORKER_MODULE
) -> list[str]:
    """The command that runs a job's training worker (or another single-process
    worker ``module``: a generation, an export's merge) on this node: one rank per
    GPU under torchrun for several GPUs, the worker alone for one, and on the CPU
    the worker at a lower priority with bounded threads. Marked with the agent's
    BRIGHTRUN_HOME like the agent itself (``startup.python_command``)."""
    if gpu_count > 1:
        return launch_command(gpu_count, worker_args, agent_pid=agent_pid)
    python = python_command(os.environ)
    if gpu_type == CPU:
        return [*python, "-m", "services.trainer_agent.launch", "--cpu", "-m", module, *worker_args]
    return [*python, "-m", module, *worker_args]


def launch_command(world_size: int, worker_args: list[str], agent_pid: int | None = None) -> list[str]:
    """The command that runs the training worker as ``world_size`` ranks on this node.

    torchrun runs under ``launch``, which ends it when the agent ``agent_pid``
    dies. ``--standalone`` picks a free rendezvous port, so that jobs on one
    node do not collide; ``--max-restarts=0`` lets a failed rank end the
    attempt, and the agent's retry resumes it from the last checkpoint.
    torchrun and each rank carry the home (``startup.python_command``): with
    ``--no-python`` torchrun runs the interpreter command given, not a bare
    ``python``.
    """
    lifeline = ["--agent-pid", str(agent_pid)] if agent_pid is not None else []
    python = python_command(os.environ)
    return [
        *python,
        "-m",
        "services.trainer_agent.launch",
        *lifeline,
        "--standalone",
        f"--nproc-per-node={world_size}",
        "--max-restarts=0",
        "--no-python",
        *python,
        "-m",
        WORKER_MODULE,
        "--distributed",
        *worker_args,
    ]


@dataclass(frozen=True)
class BatchLayout:
    """How one step's effective batch is split: micro_batch_size × accumulation_steps × world_size."""

    micro_batch_size: int
    accumulation_steps: int
    world_size: int


def batch_layout(batch_size: int, micro_batch_size: int | None, world_size: int) -> BatchLayout:
    """Split ``batch_size`` over ``world_size`` ranks; the micro-batch is the largest
    that divides a rank's share and is not above ``micro_batch_size`` (None: no limit).

    Raises ConfigError naming batch_size when it cannot be split evenly.
    """
    if batch_size % world_size:
        raise ConfigError(
            [f"batch_size: {batch_size} cannot be split evenly over {world_size} GPUs; make it a multiple of {world_size}"]
        )
    share = batch_size // world_size
    limit = min(micro_batch_size or share, share)
    micro = max(d for d in range(1, limit + 1) if share % d == 0)
    return BatchLayout(micro, share // micro, world_size)


@dataclass(frozen=True)
class CpuWorkerLimits:
    nice: int  # added to the worker's niceness
    threads: int  # compute threads


def cpu_worker_limits(environ: Mapping[str, str] = os.environ) -> CpuWorkerLimits:
    """A CPU worker's priority and thread count from the environment; raises
    SystemExit naming each variable that is not a whole number in range."""
    cores = len(os.sched_getaffinity(0))
    values, problems = {}, []
    for name, variable, default, low, high in (
        ("nice", "BRIGHTRUN_AGENT_WORKER_NICE", DEFAULT_WORKER_NICE, 0, 19),
        ("threads", "BRIGHTRUN_AGENT_WORKER_THREADS", max(1, cores - 1), 1, 1024),
    ):
        raw = environ.get(variable) or str(default)
        try:
            values[name] = int(raw)
        except ValueError:
            values[name] = low - 1
        if not low <= values[name] <= high:
            problems.append(f"{variable}={raw!r}: must be a whole number from {low} to {high}")
    if problems:
        raise SystemExit("; ".join(problems))
    return CpuWorkerLimits(**values)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--cpu"]:
        limits = cpu_worker_limits()
        os.nice(limits.nice)
        # Before the worker imports torch, which sizes its pools by these once.
        os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(limits.threads)))
        module, args = argv[2], argv[3:]  # argv[1] is -m
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    agent_pid = None
    if argv[:1] == ["--agent-pid"]:
        agent_pid, argv = int(argv[1]), argv[2:]
    die_with_parent(agent_pid, signal.SIGTERM)
    sys.argv = ["torch.distributed.run", *argv]
    runpy.run_module("torch.distributed.run", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
