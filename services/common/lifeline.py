"""Tying a process's life to its parent's: the kernel's parent-death signal.

A child in a process group or session of its own (a server the platform
starts, a training worker or launcher the agent starts) would outlive a parent
killed outright, and hold its ports, data directory or GPU against the next one.

``die_with_parent`` asks for the signal from inside a Python process. Run as a
program (``lifeline_command`` builds the command line), this file asks for it
and then executes another program in its place: the setting survives exec, but
a change of user clears it, so the switch to another user happens here, first.
It is run by path with ``-I -S``, so it imports nothing but the standard library.

The kernel sends the signal when the *thread* that started the child ends, not
the whole parent process: start children from a thread that outlives them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import sys
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None, sig: signal.Signals = signal.SIGKILL) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies, and
    exit at once when ``parent_pid`` is given and the parent is already gone.
    Does nothing beyond the check where the system has no ``prctl``."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: nothing to ask for
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    if parent_pid is not None and os.getppid() != parent_pid:  # it died before the line above ran
        sys.exit(1)


def lifeline_command(argv: Sequence[str], sig: signal.Signals = signal.SIGKILL, user: str | None = None) -> list[str]:
    """The command line that runs ``argv`` (as ``user`` when given) so that it
    gets ``sig`` when the calling thread of this process ends; ``argv[0]`` is
    the program's path (no PATH search)."""
    switch = ["--user", user] if user else []
    return [sys.executable, "-I", "-S", __file__, str(os.getpid()), sig.name, *switch, "--", *map(str, argv)]


def _main(args: list[str]) -> None:
    parent, sig, args = int(args[0]), signal.Signals[args[1]], args[2:]
    if args[0] == "--user":
        account = pwd.getpwnam(args[1])
        os.setgroups([])
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
        args = args[2:]
    die_with_parent(parent, sig)
    # A parent that is stopping ignores SIGINT and SIGTERM, and exec keeps
    # what is ignored: the program must still stop when asked.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_DFL)
    # execv, not execvp: its PATH search imports modules, which another user
    # may not be allowed to read (an interpreter under /root).
    os.execv(args[1], args[1:])  # args[0] is the "--"


if __name__ == "__main__":
    _main(sys.argv[1:])
