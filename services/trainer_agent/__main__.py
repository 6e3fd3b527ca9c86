"""``python -m services.trainer_agent``: run one trainer agent until SIGTERM.

Hardware is advertised from the environment: BRIGHTRUN_AGENT_GPU_TYPE (a
catalogue type such as H100; default CPU when no CUDA device is visible) and
BRIGHTRUN_AGENT_GPU_COUNT (default: the visible CUDA devices, or 1).

The stall watchdog kills an attempt whose worker reports no step for
BRIGHTRUN_AGENT_STALL_SECONDS (default 600), or nothing at all for
BRIGHTRUN_AGENT_STARTUP_SECONDS (default 1800) while it loads the base model;
both must exceed the time between two metric points.

While the object store is away, a dataset, checkpoint or adapter transfer is
retried for BRIGHTRUN_AGENT_IO_RETRY_SECONDS (default 300) before the attempt
is handed back; events wait in order while NATS is away, for as long as it takes.

A CPU agent's training workers run at nice +BRIGHTRUN_AGENT_WORKER_NICE (default
10) with BRIGHTRUN_AGENT_WORKER_THREADS compute threads (default: the cores
less one), see ``launch``.

With BRIGHTRUN_AGENT_HEALTH_PORT set, the agent answers the kubelet's probes
on that port (``/livez``, ``/healthz``), see ``health``.

Start-up problems (a bad setting, NATS unreachable, the health or metrics
port in use) end the agent with one line ``brightrun:
cannot start: ...`` and exit status 78, as every service's
(``services.common.process.start_process``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from services.common.process import start_process, startup_errors
from services.common.startup import StartupError, require_free_port
from services.common.gpu_catalogue import CATALOGUE, CPU
from services.common.startup import StartupError, exit_with
from services.trainer_agent.agent import AgentSettings, TrainerAgent
from services.trainer_agent.health import PORT_VARIABLE, AgentHealth, health_port
from services.trainer_agent.launch import cpu_worker_limits


# Where an NVIDIA driver shows itself (Linux; WSL).
_NVIDIA_DRIVER = (Path("/proc/driver/nvidia"), Path("/dev/dxg"))
# Asked of a short-lived interpreter: the agent itself never imports torch (its memory stays small).
_LIST_CUDA_DEVICES = (
    "import torch\n"
    "for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):\n"
    "    print(torch.cuda.get_device_name(i))\n"
)


def _cuda_devices() -> list[str]:
    """The names of the CUDA devices the training worker will see (CUDA_VISIBLE_DEVICES applies).

    Without an NVIDIA driver (no /proc/driver/nvidia, nor WSL's /dev/dxg)
    there are none, and no interpreter is started for the answer.
    """
    if not any(path.exists() for path in _NVIDIA_DRIVER):
        return []
    found = subprocess.run([sys.executable, "-c", _LIST_CUDA_DEVICES], capture_output=True, text=True, check=True)
    return found.stdout.splitlines()


def _hardware() -> tuple[str, int]:
    devices = _cuda_devices()
    cuda = len(devices)
    gpu_type = os.environ.get("BRIGHTRUN_AGENT_GPU_TYPE") or (CPU if cuda == 0 else "")
    if not gpu_type:
        raise StartupError(
            f"{cuda} CUDA device(s) found ({devices[0]}): set BRIGHTRUN_AGENT_GPU_TYPE "
            f"to their catalogue type ({', '.join(t for t in CATALOGUE.gpus if t != CPU)})"
        )
    return gpu_type, int(os.environ.get("BRIGHTRUN_AGENT_GPU_COUNT") or max(cuda, 1))


def _time_bounds() -> dict[str, float]:
    """The agent's time bounds (stall watchdog, object-store retries); raises StartupError naming every variable that is not a positive number."""
    bounds, problems = {}, []
    for name, variable, default in (
        ("stall_seconds", "BRIGHTRUN_AGENT_STALL_SECONDS", 600.0),
        ("startup_seconds", "BRIGHTRUN_AGENT_STARTUP_SECONDS", 1800.0),
        ("io_retry_seconds", "BRIGHTRUN_AGENT_IO_RETRY_SECONDS", 300.0),
    ):
        raw = os.environ.get(variable) or str(default)
        try:
            bounds[name] = float(raw)
        except ValueError:
            bounds[name] = 0.0
        if not bounds[name] > 0:
            problems.append(f"{variable}={raw!r}: must be a number of seconds above 0")
    if problems:
        raise StartupError("; ".join(problems))
    return bounds


def main() -> None:
    # NATS only: the agent rides out an object store that is away (BRIGHTRUN_AGENT_IO_RETRY_SECONDS).
    # No control-plane credential (config.SERVICE_SECRETS): the assignments carry object-store grants.
    settings = start_process("trainer_agent", lambda s: [("BRIGHTRUN_NATS_URL", s.nats_url)], agent=True)
    with startup_errors():
        gpu_type, gpu_count = _hardware()
        agent = AgentSettings(
            agent_id=os.environ.get("BRIGHTRUN_AGENT_ID") or f"{socket.gethostname()}-{os.getpid()}",
            gpu_type=gpu_type,
            gpu_count=gpu_count,
            work_dir=Path(os.environ.get("BRIGHTRUN_AGENT_WORK_DIR") or settings.home / "agent"),
            checkpoint_steps=int(os.environ.get("BRIGHTRUN_AGENT_CHECKPOINT_STEPS") or 50),
            ack_wait_seconds=float(os.environ.get("BRIGHTRUN_AGENT_ACK_WAIT_SECONDS") or 30),
            heartbeat_seconds=float(os.environ.get("BRIGHTRUN_AGENT_HEARTBEAT_SECONDS") or 5),
            smoke_samples=int(os.environ.get("BRIGHTRUN_AGENT_SMOKE_SAMPLES") or 3),
            smoke_max_new_tokens=int(os.environ.get("BRIGHTRUN_AGENT_SMOKE_TOKENS") or 32),
            **_time_bounds(),
        )
        port = health_port()
        if port is not None:
            require_free_port(port, PORT_VARIABLE, "0.0.0.0")
        worker = ""
        if gpu_type == CPU:  # a bad setting stops the agent now, not each job's worker later
            limits = cpu_worker_limits()
            worker = f" (training workers at nice +{limits.nice}, {limits.threads} thread(s))"

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger(__name__).info("agent %s takes %s x%d work%s", agent.agent_id, gpu_type, gpu_count, worker)
        trainer = TrainerAgent(settings, agent)
        health = AgentHealth(lambda: trainer.nats_connected)
        if port is not None:
            await health.start("0.0.0.0", port)
        try:
            await trainer.run(stop)
        finally:
            await health.stop()

    try:
        asyncio.run(run())
    except StartupError as error:  # NATS refused the agent's login: one line, not a traceback
        exit_with(error)


if __name__ == "__main__":
    main()
