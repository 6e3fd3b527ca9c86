"""Why a process could not start, as one line an operator can act on.

Every start-up problem the operator can fix (a port another process holds,
PostgreSQL missing, a second launcher on the same home, an endpoint nobody
answers, a bad setting) is a :class:`StartupError` whose message names the
setting, port, package or home and says how to fix it. ``make up`` and each
service's ``python -m`` print that one line on stderr and exit with
:data:`EXIT_STATUS`; anything else is a bug, whose traceback goes to a log
while the terminal still gets one line pointing at it.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import sys
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

# The exit status of a process that did not start (sysexits' EX_CONFIG).
EXIT_STATUS = 78
# How long an external endpoint may take to accept a connection (it may be
# starting beside us, as on Kubernetes) before start-up gives up on it.
REACH_SECONDS = 10.0
_DEFAULT_PORTS = {"postgresql": 5432, "nats": 4222, "tls": 4222, "http": 80, "https": 443}


class StartupError(Exception):
    """A start-up problem the operator can fix; the message is the whole explanation, on one line."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host``:``port`` now; connections in TIME_WAIT do not count, a listener does."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def require_free_port(port: int, setting: str, host: str = "127.0.0.1") -> None:
    """Raise StartupError unless ``port`` (chosen by ``setting``) is free on ``host``."""
    if port and not port_free(port, host):
        raise StartupError(
            f"port {port} on {host} ({setting}) is already in use by another process: "
            f"stop that process or set {setting} to a free port"
        )


def require_reachable(endpoints: Iterable[tuple[str, str]], timeout: float = REACH_SECONDS) -> None:
    """Raise StartupError naming the first (setting, url) of ``endpoints`` whose host accepts
    no TCP connection within ``timeout`` seconds (tried every half second)."""
    for setting, url in endpoints:
        host, port = _address(setting, url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((host, port), timeout=min(2.0, timeout)):
                    break
            except OSError as error:
                if time.monotonic() >= deadline:
                    reason = error.strerror or type(error).__name__
                    raise StartupError(
                        f"{setting}={_without_password(url)} is unreachable: nothing accepted a connection to "
                        f"{host}:{port} within {timeout:.0f}s ({reason}); start that server or fix {setting} "
                        "(`make up` starts its own when it is unset)"
                    ) from None
            time.sleep(0.5)


def _without_password(url: str) -> str:
    # The terminal line may be pasted into a ticket: a database URL's password stays out of it.
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _address(setting: str, url: str) -> tuple[str, int]:
    # The first server of a list (nats://a:4222,nats://b:4222) is enough to tell a typo from a live one.
    first = url.split(",")[0].strip()
    parts = urlsplit(first if "://" in first else f"//{first}")
    scheme = parts.scheme.split("+")[0]
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise StartupError(f"{setting}={url} names no host and port: give one like scheme://host:port")
    return parts.hostname, port


def python_command(env: Mapping[str, str]) -> list[str]:
    """This interpreter, with ``-X brightrun_home=<home>`` when ``env`` names a home (BRIGHTRUN_HOME):
    an option Python keeps and ignores, there so that ``ps -ef | grep <home>`` lists every process
    of that home's stack (the launcher's children, an agent's training workers)."""
    home = env.get("BRIGHTRUN_HOME")
    return [sys.executable, *(["-X", f"brightrun_home={home}"] if home else [])]


class HomeLock:
    """One launcher per home: an exclusive ``flock`` on ``<home>/launcher.lock``,
    which holds the launcher's pid. The kernel releases it when the process
    dies, however it dies, so a stale file never blocks the next start."""

    def __init__(self, home: Path) -> None:
        self.path = home / "launcher.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise StartupError naming the home and the pid that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StartupError(
                f"BrightRun is already running on BRIGHTRUN_HOME={self.path.parent} (launcher pid {holder}): "
                "stop it first, or set BRIGHTRUN_HOME to another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the next launcher in; nothing when not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor releases the flock


def fail(error: BaseException, log: Path | None = None) -> int:
    """Print ``error`` as one line on stderr and return :data:`EXIT_STATUS`.

    A StartupError is the operator's to fix and its message says everything.
    Anything else is a bug: its traceback goes to ``log`` (the terminal for a
    service run alone, whose log is stderr, when ``log`` is None) and the line
    names where to read it.
    """
    if isinstance(error, StartupError):
        line = str(error)
    else:
        detail = "".join(traceback.format_exception(error))
        # A component's message goes on with its log's tail after a colon, left to the log here.
        first = (str(error).splitlines() or [type(error).__name__])[0].rstrip(":")
        if log is None:
            sys.stderr.write(detail)
            line = f"{type(error).__name__}: {first}"
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as out:
                out.write(detail)
            line = f"{type(error).__name__}: {first} (details in {log})"
    print(f"brightrun: cannot start: {line}", file=sys.stderr, flush=True)
    return EXIT_STATUS


def exit_with(error: BaseException, log: Path | None = None) -> NoReturn:
    """:func:`fail`, then exit with its status."""
    sys.exit(fail(error, log))
