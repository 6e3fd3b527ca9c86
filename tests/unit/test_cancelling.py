"""services.common.cancelling: a background loop that loses a cancel still ends when it is stopped."""

from __future__ import annotations

import asyncio
import sys

import pytest

from services.common.cancelling import cancel_and_wait


async def _sweeping(wake: asyncio.Event, rounds: list[int]) -> None:
    """The outbox relay's shape: wait for a wake-up or a sweep, do a round, again, until cancelled."""
    while True:
        try:
            await asyncio.wait_for(wake.wait(), timeout=2.0)
        except TimeoutError:
            pass
        wake.clear()
        rounds.append(1)


async def _wake_in_the_turn_of_the_cancel(wake: asyncio.Event) -> None:
    """Wake the loop and cancel it in the same turn: on Python 3.11 asyncio.wait_for returns the wait's
    result and the cancel is gone."""
    await asyncio.sleep(0.05)
    wake.set()
    await asyncio.sleep(0)  # the wait ends; wait_for has not yet resumed


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio.wait_for keeps the cancel from 3.12")
async def test_a_plain_cancel_of_the_loop_can_be_lost():
    """What the helper guards against, shown: the loop runs on after one cancel."""
    wake, rounds = asyncio.Event(), []
    task = asyncio.create_task(_sweeping(wake, rounds))
    await _wake_in_the_turn_of_the_cancel(wake)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=0.5)
    assert not done and rounds  # it did a round after its cancel and waits for the next
    await cancel_and_wait(task)


async def test_a_loop_that_lost_its_cancel_is_cancelled_again_until_it_ends():
    wake, rounds = asyncio.Event(), []
    task = asyncio.create_task(_sweeping(wake, rounds))
    await _wake_in_the_turn_of_the_cancel(wake)
    await asyncio.wait_for(cancel_and_wait(task, again_after=0.1), 5.0)
    assert task.cancelled()


async def test_a_task_that_catches_its_cancel_once_is_cancelled_again():
    caught = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if caught:
                    raise
                caught.append(1)  # like nats-py's publish_async, which raises an error of its own instead

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, again_after=0.1), 5.0)
    assert caught == [1] and task.cancelled()


async def test_what_the_tasks_ended_with_is_taken_not_raised():
    async def fails() -> None:
        raise RuntimeError("boom")

    failed, ended = asyncio.create_task(fails()), asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(0.01)
    running = asyncio.create_task(asyncio.sleep(10))
    await cancel_and_wait(failed, ended, running)
    assert failed.done() and ended.done() and running.cancelled()
