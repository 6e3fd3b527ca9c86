"""Stopping a background task for certain.

On Python 3.11 a cancel can be lost: ``asyncio.wait_for`` returns the result of the awaitable it waits on
when that finished in the same turn of the loop as the cancel (fixed in 3.12), and nats-py turns a cancel
into an error of its own in places (``publish_async`` raises TooManyStalledMsgsError). A ``while True`` loop
that catches ``Exception`` and has lost its cancel runs on, and whoever awaits its end waits for good (CI
runs hung in a service's stop this way: its outbox relay went on sweeping).
"""

from __future__ import annotations

import asyncio

AGAIN_AFTER_S = 1.0


async def cancel_and_wait(*tasks: asyncio.Future, again_after: float = AGAIN_AFTER_S) -> None:
    """Cancel ``tasks`` and wait until each has ended, cancelling again every ``again_after`` seconds
    those still running. What they end with (a result, an error, a cancel) is taken and dropped, as
    ``asyncio.gather(..., return_exceptions=True)`` would."""
    running = {task for task in tasks if not task.done()}
    while running:
        for task in running:
            task.cancel()
        _, running = await asyncio.wait(running, timeout=again_after)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: asyncio logs no "exception was never retrieved"
