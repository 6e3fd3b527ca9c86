"""The embedded default: the whole platform on one machine.

Starts PostgreSQL, NATS JetStream and the S3 store (unless their endpoints are
configured in the environment, as on Kubernetes), builds the tiny base model,
then runs every service, one local trainer agent and the gateway as child
processes, each one exactly as it runs in production (``python -m ...``).
``stop()`` ends every child and component and leaves no process behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.components import Nats, ObjectStore, Postgres, free_port
from services.common.tiny_model import build_tiny_model

log = logging.getLogger(__name__)

SERVICES = ("dataset_svc", "job_svc", "artifact_svc", "billing_svc")
_ADDR_VARS = {
    "dataset_svc": "BRIGHTRUN_DATASET_ADDR",
    "job_svc": "BRIGHTRUN_JOB_ADDR",
    "artifact_svc": "BRIGHTRUN_ARTIFACT_ADDR",
    "billing_svc": "BRIGHTRUN_BILLING_ADDR",
}
DEV_S3_ACCESS_KEY = "brightrun"
DEV_S3_SECRET_KEY = "brightrun-secret"


class Platform:
    """Everything BrightRun needs, started under ``home`` (``$BRIGHTRUN_HOME``)."""

    def __init__(self, home: Path, env: Mapping[str, str] | None = None, *, http_port: int | None = None):
        self.home = home.resolve()
        self._base_env = dict(os.environ if env is None else env)
        self._http_port = http_port
        self._components: list = []
        self._children: list[tuple[str, subprocess.Popen]] = []
        self.env: dict[str, str] = {}

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['BRIGHTRUN_HTTP_PORT']}"

    def start(self, *, timeout: float = 120.0) -> None:
        """Start components, services, agent and gateway; raises RuntimeError naming what failed."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = dict(self._base_env)
        env["BRIGHTRUN_HOME"] = str(self.home)
        env.setdefault("BRIGHTRUN_S3_ACCESS_KEY", DEV_S3_ACCESS_KEY)
        env.setdefault("BRIGHTRUN_S3_SECRET_KEY", DEV_S3_SECRET_KEY)
        try:
            self._start_components(env)
            model = Path(env.setdefault("BRIGHTRUN_DEFAULT_BASE_MODEL", str(self.home / "models" / "tiny-llama")))
            if not model.exists() and model.is_absolute():
                build_tiny_model(model)
            for name in SERVICES:
                env.setdefault(_ADDR_VARS[name], f"127.0.0.1:{free_port()}")
            port = self._http_port if self._http_port is not None else int(env.get("BRIGHTRUN_HTTP_PORT", "8080"))
            env["BRIGHTRUN_HTTP_PORT"] = str(port or free_port())
            env["PYTHONUNBUFFERED"] = "1"
            self.env = env
            for name in SERVICES:
                self._spawn(name, f"services.{name}")
            for name in SERVICES:
                _wait_serving(env[_ADDR_VARS[name]], name, self._children, timeout)
            self.spawn_agent()
            self._spawn("gateway", "gateway")
            _wait_http(self.gateway_url + "/healthz", self._children, timeout)
        except BaseException:
            self.stop()
            raise

    def processes(self) -> dict[str, int]:
        """Name to pid of every process the platform started and still holds."""
        pids = {type(c).__name__.lower(): c.pid for c in self._components if c.pid}
        pids.update({name: proc.pid for name, proc in self._children})
        return pids

    def component(self, name: str):
        """The started component named ``postgres``, ``nats`` or ``objectstore``
        (to stop and start it again in fault tests); raises KeyError when it was
        configured from the environment instead."""
        for component in self._components:
            if type(component).__name__.lower() == name:
                return component
        raise KeyError(f"{name} was not started by this platform")

    def training_workers(self, job_id: str) -> list[int]:
        """Pids of the training worker processes of a job, whichever agent started them."""
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                command = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile, or not a process
                continue
            # Each attempt's files lie under a directory named by the job.
            if b"services.trainer_agent.worker" in command and any(job_id.encode() in arg for arg in command):
                pids.append(int(proc.name))
        return pids

    def _start_components(self, env: dict[str, str]) -> None:
        if "BRIGHTRUN_DATABASE_URL" not in env:
            pg = Postgres(self.home / "postgres")
            pg.start()
            self._components.append(pg)
            env["BRIGHTRUN_DATABASE_URL"] = pg.dsn
        if "BRIGHTRUN_NATS_URL" not in env:
            nats = Nats(self.home / "nats")
            nats.start()
            self._components.append(nats)
            env["BRIGHTRUN_NATS_URL"] = nats.url
        if "BRIGHTRUN_S3_ENDPOINT" not in env:
            store = ObjectStore(
                self.home / "s3",
                access_key=env["BRIGHTRUN_S3_ACCESS_KEY"],
                secret_key=env["BRIGHTRUN_S3_SECRET_KEY"],
                buckets=(env.get("BRIGHTRUN_DATASETS_BUCKET", "lora-datasets"), env.get("BRIGHTRUN_MODELS_BUCKET", "lora-models")),
            )
            store.start()
            self._components.append(store)
            env["BRIGHTRUN_S3_ENDPOINT"] = store.endpoint_url

    def spawn_agent(self) -> None:
        """Start one more local trainer agent (the platform starts one)."""
        agents = sum(1 for name, _ in self._children if name.startswith("trainer_agent"))
        self._spawn("trainer_agent" if agents == 0 else f"trainer_agent-{agents + 1}", "services.trainer_agent")

    def _spawn(self, name: str, module: str) -> None:
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", module], env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._children.append((name, proc))

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every child (newest first), SIGKILL what outlives ``grace``, then stop components."""
        for _, proc in reversed(self._children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, proc in reversed(self._children):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", name, grace)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._children.clear()
        for component in reversed(self._components):
            component.stop()
        self._components.clear()

    def __enter__(self) -> "Platform":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _check_alive(children: list[tuple[str, subprocess.Popen]]) -> None:
    for name, proc in children:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}; see its log under $BRIGHTRUN_HOME/logs/")


def _wait_serving(address: str, name: str, children, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            _check_alive(children)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{name} was not serving on {address} within {timeout:.0f}s")


def _wait_http(url: str, children, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(children)
        try:
            with urllib.request.urlopen(url, timeout=1.0) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the gateway did not answer {url} within {timeout:.0f}s")
