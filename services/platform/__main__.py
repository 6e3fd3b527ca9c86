"""``python -m services.platform up|demo``: the embedded default.

``up`` runs the whole platform in the foreground until Ctrl-C/SIGTERM and
exits 0 once it has stopped. ``demo`` starts it, teaches SmolLM2 a persona
over HTTP, prints the loss's fall and the held-out answers of the base model
and of the adapter side by side, and stops everything. Both train SmolLM2-135M-Instruct by
default (fetched and converted on first use; BRIGHTRUN_DEFAULT_BASE_MODEL
chooses another). A signal never cuts a stop short: the first SIGINT/SIGTERM starts
it, later ones (a Ctrl-C held down, a supervisor's repeated SIGTERM) are ignored.
When the platform cannot start, one line on stderr says why (the traceback of
an unexpected failure goes to ``$BRIGHTRUN_HOME/logs/launcher.log``), nothing
is left running, and the exit status is ``startup.EXIT_STATUS``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from services.common import logs
from services.common.gguf_import import EMBEDDED_MODEL_NAME, MARKER
from services.common.startup import fail
from services.platform.demo import run_demo
from services.platform.launcher import Platform

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopSignals:
    """SIGINT and SIGTERM as one request to stop.

    The first raises KeyboardInterrupt in the main thread, which unwinds
    whatever it does (starting, waiting, walking the demo) into the platform's
    stop; from then on the kernel ignores both. Not a Python handler that
    counts them: it runs between any two bytecodes of the main thread, the
    stop's included, and the interpreter gives a signal with a Python handler
    its default action (death) back while it exits.
    """

    def __init__(self) -> None:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def ignore(self) -> None:
        """From now on (the stop has begun) both signals are ignored."""
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum: int, frame: object) -> None:
        self.ignore()
        raise KeyboardInterrupt


def _home() -> Path:
    return Path(os.environ.get("BRIGHTRUN_HOME", ".brightrun"))


def _platform(home: Path, **options) -> Platform:
    """The platform on a real base model: SmolLM2 unless BRIGHTRUN_DEFAULT_BASE_MODEL names another."""
    env = dict(os.environ)
    model = Path(env.setdefault("BRIGHTRUN_DEFAULT_BASE_MODEL", str(home.resolve() / "models" / EMBEDDED_MODEL_NAME)))
    if model.name == EMBEDDED_MODEL_NAME and not (model / MARKER).exists():
        print(f"first run: fetching SmolLM2-135M-Instruct (92 MB) and converting it into {model}...", flush=True)
    return Platform(home, env, **options)


def up() -> int:
    signals = _StopSignals()
    platform = _platform(_home())
    try:
        print("starting BrightRun (PostgreSQL, NATS, S3, services, trainer agent, gateway)...", flush=True)
        platform.start()
        token = platform.token(str(uuid.uuid4()), ttl_seconds=24 * 3600)
        print(f"BrightRun is up: {platform.gateway_url}  (logs: {platform.home / 'logs'})")
        print("Prometheus metrics: " + ", ".join(f"{name} {url}" for name, url in platform.metrics_urls.items()))
        print(f"development token (24 h): {token}")
        # The token rides in the fragment, which browsers never send to a server or write to its logs.
        print(f"open the dashboard (signs you in): {platform.gateway_url}/#token={token}")
        print("Ctrl-C stops everything.", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return 0
    except Exception as error:  # noqa: BLE001 - whatever stopped the start, the terminal gets one line
        return fail(error, _launcher_log(platform))
    finally:
        signals.ignore()
        print("stopping...", flush=True)
        platform.stop()
        print("stopped.", flush=True)


def demo() -> int:
    signals = _StopSignals()
    platform = _platform(_home(), http_port=0)
    started = time.monotonic()
    try:
        print("starting BrightRun (PostgreSQL, NATS, S3, 4 services, trainer agent, gateway)...", flush=True)
        try:
            platform.start()
        except Exception as error:  # noqa: BLE001 - as in up(); the demo's own failures keep their traceback
            return fail(error, _launcher_log(platform))
        print(f"platform up in {time.monotonic() - started:.1f}s at {platform.gateway_url}", flush=True)
        return run_demo(platform)
    except KeyboardInterrupt:
        print("\ndemo interrupted", flush=True)
        return 130
    finally:
        signals.ignore()
        platform.stop()
        print(f"everything stopped; {time.monotonic() - started:.1f}s in all", flush=True)


def _launcher_log(platform: Platform) -> Path:
    return platform.home / "logs" / "launcher.log"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.platform")
    parser.add_argument("command", choices=["up", "demo"])
    args = parser.parse_args()
    logs.configure("platform", level=logging.WARNING)
    return up() if args.command == "up" else demo()


if __name__ == "__main__":
    sys.exit(main())
