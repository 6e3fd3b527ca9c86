"""A test phase (setup, call or teardown) that runs past ``BRIGHTRUN_HANG_REPORT_S`` (default 300 s)
reports where everything waits, on the terminal: every thread's stack, every asyncio task's stack
on the session's event loop, and PostgreSQL's sessions with what each waits for. Then it carries on:
a hang explains itself in CI's output instead of only stalling the run until its time is up."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
import traceback
from time import monotonic, sleep  # bound now: a test may monkeypatch the time module's

import pytest

_AFTER_S = float(os.environ.get("BRIGHTRUN_HANG_REPORT_S", "300"))


class HangReporter:
    """A pytest plugin (registered by tests/conftest.py's ``pytest_configure``, while output is not captured:
    it keeps its own copy of the terminal's stderr) with a thread that watches the running phase."""

    def __init__(self, after_s: float = _AFTER_S):
        self.after_s = after_s
        self.phase: tuple[str, float] | None = None  # (what runs, since when: monotonic)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.psql: list[str] | None = None
        self.out = os.fdopen(os.dup(2), "w")
        threading.Thread(target=self._watch, name="hang-report", daemon=True).start()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item):
        return (yield from self._timed(f"{item.nodeid} (setup)"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        return (yield from self._timed(f"{item.nodeid} (call)"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item):
        return (yield from self._timed(f"{item.nodeid} (teardown)"))

    def _timed(self, what: str):
        self.phase = (what, monotonic())
        try:
            return (yield)
        finally:
            self.phase = None

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The session's event loop, whose tasks a report lists."""
        self.loop = loop

    def watch_postgres(self, psql: list[str]) -> None:
        """The psql command (with its connection options) a report asks PostgreSQL's sessions with."""
        self.psql = psql

    def _watch(self) -> None:
        reported = None
        while True:
            sleep(5)
            phase = self.phase
            if phase and phase is not reported and monotonic() - phase[1] > self.after_s:
                reported = phase
                self.report(phase[0])

    def report(self, what: str) -> None:
        out = [f"\n======== HANG REPORT: {what} has run {self.after_s:.0f} s ========"]
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            out.append(f"---- thread {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame)))
        if self.psql:
            query = ("SELECT pid, usename, state, wait_event_type, wait_event, now() - xact_start AS xact_age, "
                     "pg_blocking_pids(pid) AS blocked_by, left(query, 200) FROM pg_stat_activity "
                     "WHERE backend_type = 'client backend'")
            try:
                out.append(subprocess.run([*self.psql, "-c", query], capture_output=True, text=True, timeout=20).stdout)
            except Exception as exc:  # the report must never fail the run
                out.append(f"pg_stat_activity unavailable: {exc}")
        self._write("\n".join(out))
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._report_tasks)

    def _report_tasks(self) -> None:
        out = io.StringIO("---- asyncio tasks\n")
        out.seek(0, io.SEEK_END)
        for task in asyncio.all_tasks(self.loop):
            task.print_stack(limit=40, file=out)
        self._write(out.getvalue() + "======== END OF HANG REPORT ========\n")

    def _write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
