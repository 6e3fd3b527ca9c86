"""``python -m services.platform up|demo``: the embedded default.

``up`` runs the whole platform in the foreground until Ctrl-C/SIGTERM.
``demo`` starts it, walks the product journey over HTTP, prints where the
adapter is and the job's final loss, and stops everything.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

from services.common.config import DEV_JWT_SECRET
from services.platform.demo import run_demo
from services.platform.launcher import Platform


def _home() -> Path:
    return Path(os.environ.get("BRIGHTRUN_HOME", ".brightrun"))


def up() -> int:
    platform = Platform(_home())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("starting BrightRun (PostgreSQL, NATS, S3, services, trainer agent, gateway)...", flush=True)
    platform.start()
    from gateway.auth import mint_token

    secret = platform.env.get("BRIGHTRUN_JWT_SECRET", DEV_JWT_SECRET)
    token = mint_token(str(uuid.uuid4()), secret, ttl_seconds=24 * 3600)
    print(f"BrightRun is up: {platform.gateway_url}  (logs: {platform.home / 'logs'})")
    print(f"development token (24 h): {token}")
    print("Ctrl-C stops everything.", flush=True)
    try:
        while not stop.is_set():
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        platform.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.platform")
    parser.add_argument("command", choices=["up", "demo"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.command == "up":
        return up()
    # SIGTERM unwinds like Ctrl-C, so the platform's children are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return run_demo(_home())


if __name__ == "__main__":
    sys.exit(main())
