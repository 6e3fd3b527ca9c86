"""Tying a training process's life to its parent's.

A worker or launcher runs in a process group of its own (the agent kills a
stalled attempt by group; torchrun starts each rank in a session of its own),
so it would outlive an agent killed outright, and hold the GPU against the
attempt that replaces it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None, sig: signal.Signals = signal.SIGKILL) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies, and
    exit at once when ``parent_pid`` is given and the parent is already gone.
    Does nothing beyond the check where the system has no ``prctl``."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: nothing to ask for
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    if parent_pid is not None and os.getppid() != parent_pid:  # it died before the line above ran
        sys.exit(1)
