"""The web dashboard in a real browser (headless Chromium through Playwright)
against the real embedded platform, started as `make up` starts it.

Chromium is never downloaded: the system's /usr/bin/chromium is launched. Where
it (or the playwright package) is missing the tests skip, saying how to install
it; in CI (CI=true) they fail instead. Screenshots go to test-results/browser/.
"""

from __future__ import annotations

import os
import re
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "gateway" / "web"
CHROMIUM = Path(os.environ.get("BRIGHTRUN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: browser tests must run)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sources_newer_than(built: Path) -> bool:
    """True when a source of the build (what the Makefile's web target depends on) changed after ``built``."""
    stamp = built.stat().st_mtime
    sources = [*(WEB / "src").rglob("*"), *(WEB / name for name in ("index.html", "package.json", "vite.config.ts",
                                                                     "tsconfig.json", "package-lock.json"))]
    return any(p.is_file() and p.stat().st_mtime > stamp for p in sources)


@pytest.fixture(scope="session")
def web_build() -> Path:
    """gateway/web/dist, built (npm ci + vite build) when absent or older than its sources, as `make web` does."""
    index = WEB / "dist" / "index.html"
    if not index.is_file() or _sources_newer_than(index):
        if shutil.which("npm") is None:
            _missing("the web dashboard is not built and npm is missing: install Node 20, then `make web`")
        if not (WEB / "node_modules").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True)
        subprocess.run(["npm", "run", "build"], cwd=WEB, check=True)
    return index.parent


# Module scope (tests/ has no packages, so "package" would be the whole session): the
# browser (Playwright's sync API keeps an event loop running in this thread while it
# is open) and the platform end with the last browser test, before the rest of
# `make test`'s suite, whose asyncio tests need the thread free of a running loop.
@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing: install Chromium (`apt-get install -y chromium`) to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is missing: `make venv` installs it (pyproject.toml test extras)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Up:
    """`python -m services.platform up` running in a child process."""

    def __init__(self, home: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
        env.update(BRIGHTRUN_HOME=str(home), BRIGHTRUN_HTTP_PORT=str(_free_port()), PYTHONUNBUFFERED="1",
                   # The tiny offline model, not the SmolLM2 that `up` fetches by default.
                   BRIGHTRUN_DEFAULT_BASE_MODEL=str(home.resolve() / "models" / "tiny-llama"))
        self.home = home
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.platform", "up"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.sign_in_url = self._wait_for(r"open the dashboard \(signs you in\): (\S+)", 240)
        self.url = self.sign_in_url.split("#", 1)[0].rstrip("/")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if m := re.search(pattern, line):
                return m.group(1)
        self.stop()
        raise RuntimeError("`up` printed no sign-in URL:\n" + "".join(self.output[-40:]))

    def kill_child(self, module: str) -> None:
        """SIGKILLs the process `up` started for ``python -m <module>`` (the supervisor restarts it)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and b"-m" in cmdline and module.encode() in cmdline:
                os.kill(int(entry.name), signal.SIGKILL)
                return
        raise LookupError(f"no child running -m {module}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def up(web_build, chromium, tmp_path_factory):
    running = Up(tmp_path_factory.mktemp("brightrun-web-home"))
    yield running
    running.stop()


@pytest.fixture
def context(chromium):
    ctx = chromium.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.console_errors = []
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    yield page

