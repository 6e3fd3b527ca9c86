"""The embedded default: the whole platform on one machine.

Starts PostgreSQL, NATS JetStream and the S3 store (unless their endpoints are
configured in the environment, as on Kubernetes), makes the default base model
when it is missing (in a child process: the launcher never imports torch),
then runs every service, one local trainer agent and the gateway as child
processes, each one exactly as it runs in production (``python -m ...``).
A supervisor thread restarts any of them, components included, that dies
without being stopped. ``stop()`` ends every child and component and leaves no
process behind; so does the launcher being killed outright, since every child
gets a parent-death signal. Each child serves its Prometheus metrics on a port
of its own on 127.0.0.1 (:attr:`Platform.metrics_urls`).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.auth import SUPABASE_AUDIENCE, mint_token
from services.common import nats_access
from services.common.components import Nats, ObjectStore, Postgres, free_port
from services.common.config import DEV_JWT_SECRET, SERVICE_SECRETS, GrpcTls, read_settings
from services.common.grpc import client_credentials, tls_options
from services.common.gguf_import import EMBEDDED_MODEL_NAME
from services.common.startup import HomeLock, StartupError, require_free_port, require_reachable
from services.platform.supervisor import Child, Supervised, Supervisor

SERVICES = ("dataset_svc", "job_svc", "artifact_svc", "billing_svc")
_ADDR_VARS = {
    "dataset_svc": "BRIGHTRUN_DATASET_ADDR",
    "job_svc": "BRIGHTRUN_JOB_ADDR",
    "artifact_svc": "BRIGHTRUN_ARTIFACT_ADDR",
    "billing_svc": "BRIGHTRUN_BILLING_ADDR",
}
DEV_S3_ACCESS_KEY = "brightrun"
DEV_S3_SECRET_KEY = "brightrun-secret"
# Each component gets this long to stop before its process group is killed,
# so that a whole stop stays within the children's grace + 15 s.
COMPONENT_STOP_SECONDS = 5.0
# How the launcher makes a missing default base model, by its directory's name:
# SmolLM2 (`make demo`, `make up`) fetched once and converted from GGUF, any
# other name the tiny random Llama (the tests' default: offline and fast).
_MODEL_MAKERS = {EMBEDDED_MODEL_NAME: ["services.common.gguf_import", "prepare"]}
_TINY_MODEL_MAKER = ["services.common.tiny_model"]
# The components' endpoints that, when set, point at servers started elsewhere.
_EXTERNAL = ("BRIGHTRUN_DATABASE_URL", "BRIGHTRUN_NATS_URL", "BRIGHTRUN_S3_ENDPOINT")


class Platform:
    """Everything BrightRun needs, started under ``home`` (``$BRIGHTRUN_HOME``).

    Start it from a thread that lives until ``stop()`` (the main thread): the
    children it starts die with that thread.
    """

    def __init__(self, home: Path, env: Mapping[str, str] | None = None, *, http_port: int | None = None):
        self.home = home.resolve()
        self._base_env = dict(os.environ if env is None else env)
        self._http_port = http_port
        self._components: list = []
        self._children: list[Child] = []
        self._supervisor = Supervisor(self._supervised)
        # One stop at a time; a second finds nothing left to stop.
        self._stop_lock = threading.Lock()
        self._home_lock = HomeLock(self.home)
        self.env: dict[str, str] = {}
        # Child name -> the port it serves /metrics on.
        self.metrics_ports: dict[str, int] = {}

    @property
    def metrics_urls(self) -> dict[str, str]:
        """Child name -> the URL of its Prometheus metrics."""
        return {name: f"http://127.0.0.1:{port}/metrics" for name, port in self.metrics_ports.items()}

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['BRIGHTRUN_HTTP_PORT']}"

    def token(self, user_id: str, ttl_seconds: int = 3600) -> str:
        """A bearer token for ``user_id`` that this platform's gateway accepts (its secret and audience)."""
        audience = self.env.get("BRIGHTRUN_JWT_AUDIENCE", SUPABASE_AUDIENCE)
        return mint_token(user_id, self.env["BRIGHTRUN_JWT_SECRET"], ttl_seconds, audience=audience)

    def start(self, *, timeout: float = 120.0) -> None:
        """Start components, services, agent and gateway, leaving nothing running when that fails.

        Raises StartupError for what the operator can fix (another launcher on
        this home, a port in use, PostgreSQL missing, an endpoint nobody
        answers, a child that died starting), checked before anything starts
        where it can be; ComponentError or RuntimeError for the rest.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        env = dict(self._base_env)
        env["BRIGHTRUN_HOME"] = str(self.home)
        env.setdefault("BRIGHTRUN_S3_ACCESS_KEY", DEV_S3_ACCESS_KEY)
        env.setdefault("BRIGHTRUN_S3_SECRET_KEY", DEV_S3_SECRET_KEY)
        # The embedded default signs its own development tokens; a deployment's gateway has no default.
        env.setdefault("BRIGHTRUN_JWT_SECRET", DEV_JWT_SECRET)
        # The services' internal credentials: a fresh key per stack, which only its children hold.
        env.setdefault("BRIGHTRUN_INTERNAL_TOKEN_SECRET", secrets.token_urlsafe(48))
        # Local receivers (a script on this machine) have no certificate.
        env.setdefault("BRIGHTRUN_WEBHOOKS_ALLOW_HTTP", "on")
        try:
            self._home_lock.acquire()
            port = self._http_port if self._http_port is not None else int(env.get("BRIGHTRUN_HTTP_PORT", "8080"))
            self._check_before_start(env, port)
            self._start_components(env)
            model = Path(env.setdefault("BRIGHTRUN_DEFAULT_BASE_MODEL", str(self.home / "models" / "tiny-llama")))
            if not model.exists() and model.is_absolute():
                build_model(model, env)
            for name in SERVICES:
                env.setdefault(_ADDR_VARS[name], f"127.0.0.1:{free_port()}")
            env["BRIGHTRUN_HTTP_PORT"] = str(port or free_port())
            env["PYTHONUNBUFFERED"] = "1"
            self.env = env
            tls = read_settings(env).grpc_tls  # the services' own reading: a bad setting stops here, named
            for name in SERVICES:
                self._spawn(name, f"services.{name}")
            for name in SERVICES:
                _wait_serving(env[_ADDR_VARS[name]], name, self._children, timeout, tls)
            self.spawn_agent()
            self._spawn("gateway", "gateway")
            _wait_http(self.gateway_url + "/healthz", self._children, timeout)
            self._supervisor.start()
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _check_before_start(env: Mapping[str, str], http_port: int) -> None:
        """What would fail later, and less clearly, checked before anything starts."""
        require_free_port(http_port, "BRIGHTRUN_HTTP_PORT", env.get("BRIGHTRUN_HTTP_HOST", "127.0.0.1"))
        for setting in _ADDR_VARS.values():
            if setting in env:
                host, _, port = env[setting].rpartition(":")
                require_free_port(int(port), setting, host or "127.0.0.1")
        require_reachable((setting, env[setting]) for setting in _EXTERNAL if setting in env)

    def processes(self) -> dict[str, int]:
        """Name to pid of every process the platform started and still holds."""
        pids = {name: component.pid for name, component in self._started().items() if component.pid}
        pids.update({child.name: child.pid for child in self._children})
        return pids

    def component(self, name: str):
        """The started component named ``postgres``, ``nats`` or ``objectstore``
        (to stop and start it again in fault tests); raises KeyError when it was
        configured from the environment instead."""
        started = self._started()
        if name not in started:
            raise KeyError(f"{name} was not started by this platform")
        return started[name]

    def _started(self) -> dict[str, Postgres | Nats | ObjectStore]:
        """The components this platform started, by name (``postgres``, ``nats``, ``objectstore``)."""
        return {type(component).__name__.lower(): component for component in self._components}

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
            pg = Postgres(self.home / "postgres", stop_timeout=COMPONENT_STOP_SECONDS,
                          bindir=env.get("BRIGHTRUN_POSTGRES_BINDIR"))
            pg.start()
            self._components.append(pg)
            env["BRIGHTRUN_DATABASE_URL"] = pg.dsn
        if "BRIGHTRUN_NATS_URL" not in env:
            nats = Nats(self.home / "nats", stop_timeout=COMPONENT_STOP_SECONDS)
            nats.start()
            self._components.append(nats)
            env["BRIGHTRUN_NATS_URL"] = nats.url
        if "BRIGHTRUN_S3_ENDPOINT" not in env:
            # No bucket: dataset_svc and artifact_svc make theirs at their start.
            store = ObjectStore(
                self.home / "s3",
                access_key=env["BRIGHTRUN_S3_ACCESS_KEY"],
                secret_key=env["BRIGHTRUN_S3_SECRET_KEY"],
                stop_timeout=COMPONENT_STOP_SECONDS,
            )
            store.start()
            self._components.append(store)
            env["BRIGHTRUN_S3_ENDPOINT"] = store.endpoint_url

    def spawn_agent(self) -> None:
        """Start one more local trainer agent (the platform starts one)."""
        agents = sum(1 for child in self._children if child.name.startswith("trainer_agent"))
        self._spawn("trainer_agent" if agents == 0 else f"trainer_agent-{agents + 1}", "services.trainer_agent")

    def nats_login(self, user: str = nats_access.ADMIN) -> tuple[str, str]:
        """The user and password to connect to this platform's NATS as ``user`` (tests and
        operators: ``admin``); raises KeyError when NATS came from the environment."""
        return user, self.component("nats").passwords[user]

    def _child_env(self, name: str, module: str) -> dict[str, str]:
        """The environment of child ``name`` (the one place it is made): the platform's, with what is the
        child's own: its metrics port, and where this platform started the component, a service's
        PostgreSQL role (under row-level security, ``services.common.db_roles``) and the NATS identity it
        logs in as (an agent as ``trainer_agent``). With a component from the environment, children use
        its settings as given. An agent gets no credential of the control plane's."""
        port = self.metrics_ports.setdefault(name, free_port())
        env = {**self.env, "BRIGHTRUN_METRICS_PORT": str(port), "BRIGHTRUN_METRICS_HOST": "127.0.0.1"}
        started = self._started()
        if "postgres" in started and name in SERVICES:
            env["BRIGHTRUN_DATABASE_URL"] = started["postgres"].service_dsn(name)
        nats_user = "trainer_agent" if module == "services.trainer_agent" else name
        if "nats" in started and nats_user in nats_access.IDENTITIES:
            env.update(started["nats"].login(nats_user))
        if module == "services.trainer_agent":
            env = {key: value for key, value in env.items() if key not in SERVICE_SECRETS}
        return env

    def _spawn(self, name: str, module: str) -> None:
        child = Child(name, module, self._child_env(name, module), self.home / "logs" / f"{name}.log")
        child.start()
        self._children.append(child)

    def _supervised(self) -> list[Supervised]:
        return [*self._components, *self._children]

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every child (newest first), SIGKILL the process group of any
        that outlives ``grace``, then stop the components: done within about
        ``grace`` + 3 x COMPONENT_STOP_SECONDS. Idempotent, and safe from any
        thread; never raises for a process that is already gone."""
        with self._stop_lock:
            self._supervisor.pause()
            for child in reversed(self._children):
                child.terminate()
            deadline = time.monotonic() + grace
            for child in reversed(self._children):
                child.finish(deadline)
            self._children.clear()
            for component in reversed(self._components):
                component.stop()
            self._components.clear()
            # Last: what the supervisor restarted dies with its thread.
            self._supervisor.close()
            self._home_lock.release()

    def __enter__(self) -> "Platform":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def build_model(path: Path, env: Mapping[str, str]) -> None:
    """Make the base model ``path`` names (see _MODEL_MAKERS) in a child process:
    torch and transformers stay out of the launcher, which supervises for hours after.
    Raises RuntimeError with the child's output when it fails."""
    maker = _MODEL_MAKERS.get(path.name, _TINY_MODEL_MAKER)
    built = subprocess.run([sys.executable, "-m", *maker, str(path)], env=env, capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"making the base model {path} failed:\n{built.stdout}{built.stderr[-3000:]}")


def _check_alive(children: list[Child]) -> None:
    for child in children:
        if child.exit_status is not None:
            raise StartupError(f"{child.name} exited with code {child.exit_status} while starting; its log: {child.log}")


def _wait_serving(address: str, name: str, children, timeout: float, tls: GrpcTls | None) -> None:
    """Until the service at ``address`` reports SERVING, asked the way its clients ask (over TLS when set)."""
    deadline = time.monotonic() + timeout
    if tls is None:
        opened = grpc.insecure_channel(address)
    else:
        opened = grpc.secure_channel(address, client_credentials(tls), options=tls_options(tls))
    with opened as channel:
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
    raise StartupError(f"{name} was not serving on {address} within {timeout:.0f}s; its log: {_log_of(name, children)}")


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
    raise StartupError(f"the gateway did not answer {url} within {timeout:.0f}s; its log: {_log_of('gateway', children)}")


def _log_of(name: str, children: list[Child]) -> Path | str:
    return next((child.log for child in children if child.name == name), "(not started)")
