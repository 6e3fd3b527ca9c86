"""``python -m services.trainer_agent.launch [--agent-pid PID] TORCHRUN_ARGS...``:
torchrun (``torch.distributed.run``), ended with SIGTERM when the agent that
started it dies. torchrun passes the SIGTERM on to every rank, and each rank
dies with torchrun (see ``worker``), so no rank outlives an agent killed outright.
"""

from __future__ import annotations

import runpy
import signal
import sys

from services.common.lifeline import die_with_parent


def main(argv: list[str]) -> None:
    agent_pid = None
    if argv[:1] == ["--agent-pid"]:
        agent_pid, argv = int(argv[1]), argv[2:]
    die_with_parent(agent_pid, signal.SIGTERM)
    sys.argv = ["torch.distributed.run", *argv]
    runpy.run_module("torch.distributed.run", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
