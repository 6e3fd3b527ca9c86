"""Keeping the embedded default's processes running, as a supervisor would.

``Child`` is one Python process of the platform (a service, a trainer agent,
the gateway); the components (PostgreSQL, NATS, SeaweedFS) are the
``services.common.components`` servers. Both say when they are ``down()`` (died
without being stopped) and can ``revive()``; ``Supervisor`` watches them from a
thread of its own and revives each that fails, after a backoff.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.common.lifeline import lifeline_command
from services.common.startup import python_command

log = logging.getLogger(__name__)

# Backoff between restarts of one process: doubles from the first to the
# last, and starts over once the process has run for STABLE_SECONDS.
FIRST_DELAY_SECONDS = 1.0
LAST_DELAY_SECONDS = 30.0
STABLE_SECONDS = 60.0
# How often the supervisor looks: a death is noticed within this.
WATCH_SECONDS = 0.25


class Supervised(Protocol):
    name: str

    @property
    def exit_status(self) -> int | None: ...

    def down(self) -> bool: ...

    def revive(self) -> bool: ...


class Child:
    """``python -m module`` with ``env``, its output appended to ``log``, in a
    session of its own, killed by the kernel when the thread that started it ends."""

    def __init__(self, name: str, module: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.module = module
        self.env = env
        self.log = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._wanted = False
        # Held while starting or stopping, so revive() never races terminate().
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def exit_status(self) -> int | None:
        """Its exit status once it has ended; None while it runs."""
        return self._proc.poll() if self._proc is not None else None

    def start(self) -> None:
        with self._lock:
            self._wanted = True
            self._spawn()

    def _command(self) -> list[str]:
        """``python -m module``, marked with the home its environment names (``startup.python_command``)."""
        return [*python_command(self.env), "-m", self.module]

    def _spawn(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                lifeline_command(self._command()), env=self.env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def down(self) -> bool:
        """True when it ended without terminate() being asked."""
        return self._wanted and self.exit_status is not None

    def revive(self) -> bool:
        """Start it again if ``down()``; True when it did."""
        with self._lock:
            if not self.down():
                return False
            self._spawn()
            return True

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM); it is not revived after this."""
        with self._lock:
            self._wanted = False
            if self._proc is not None and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)

    def finish(self, deadline: float) -> None:
        """Wait for it to end until ``deadline`` (monotonic), then SIGKILL its process group."""
        with self._lock:
            if self._proc is None:
                return
            try:
                self._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", self.name)
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()


@dataclass
class _Backoff:
    delay: float = FIRST_DELAY_SECONDS
    due: float | None = None  # when the next restart is due, while one is
    revived_at: float = float("-inf")
    reported: bool = False  # a clean exit was logged once


class Supervisor:
    """Revives every process of ``targets()`` that is down with a failure.

    A process that exits with status 0 on its own was asked to leave (SIGTERM
    from an operator, an agent's clean shutdown) and stays down, as with
    ``Restart=on-failure``. The thread must outlive the processes it revived:
    they die with it (see ``lifeline``), so ``close()`` comes after they stop.
    """

    def __init__(self, targets: Callable[[], Iterable[Supervised]]) -> None:
        self._targets = targets
        self._backoff: dict[int, _Backoff] = {}
        self._paused = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="brightrun-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        """Revive nothing from now on (the platform is stopping)."""
        self._paused.set()

    def close(self) -> None:
        """End the watching thread; call once what it revived is stopped."""
        self._paused.set()
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        while not self._closed.wait(WATCH_SECONDS):
            for target in list(self._targets()):
                if self._paused.is_set():
                    break
                try:
                    self._look_at(target)
                except Exception:  # a bug here must not end all supervision
                    log.exception("supervising %s failed", target.name)

    def _look_at(self, target: Supervised) -> None:
        state = self._backoff.setdefault(id(target), _Backoff())
        now = time.monotonic()
        if state.due is None:
            if not target.down():
                state.reported = False
                return
            status = target.exit_status
            if status == 0:
                if not state.reported:
                    log.warning("%s exited with status 0 on its own; leaving it stopped", target.name)
                    state.reported = True
                return
            if now - state.revived_at >= STABLE_SECONDS:
                state.delay = FIRST_DELAY_SECONDS
            state.due = now + state.delay
            log.warning("%s died (exit status %s); restarting it in %.0fs", target.name, status, state.delay)
            return
        if now < state.due:
            return
        try:
            revived = target.revive()
        except Exception as error:  # noqa: BLE001 - any failed start is retried the same way
            state.delay = min(state.delay * 2, LAST_DELAY_SECONDS)
            state.due = time.monotonic() + state.delay
            reason = str(error).splitlines()[0]  # a component's error goes on with its log tail
            log.warning("%s did not restart (%s); next try in %.0fs", target.name, reason, state.delay)
            return
        state.due = None
        if revived:
            log.warning("%s restarted", target.name)
            state.revived_at = time.monotonic()
            state.delay = min(state.delay * 2, LAST_DELAY_SECONDS)
