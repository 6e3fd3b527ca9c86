"""``python -m services.trainer_agent.generation_worker``: one generation
request, in its own process, so that the agent never imports torch and
outlives whatever the model does.

Reads the GenerationAssignment (proto JSON) and the downloaded adapter
directory, writes ``{"type": "completed", "results": [...]}`` or
``{"type": "failed", "reason": ...}`` to ``--output``, and exits.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

import torch

from services.common.lifeline import die_with_parent
from services.trainer_agent.generation import SamplingSettings, generate, load_for_generation


def run(assignment: dict, adapter: Path) -> dict:
    """The ``completed`` outcome of ``assignment`` (proto JSON, field names as in the proto)."""
    conversations = [
        [{"role": m.get("role", ""), "content": m.get("content", "")} for m in c.get("messages", [])]
        for c in assignment.get("conversations", [])
    ]
    sampling = SamplingSettings(
        max_new_tokens=int(assignment["max_new_tokens"]),
        temperature=float(assignment.get("temperature", 0.0)),
        seed=int(assignment["seed"]) if "seed" in assignment else None,
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_for_generation(assignment["base_model"], adapter, device)
    results = generate(model, tokenizer, conversations, sampling, include_base=bool(assignment.get("include_base")))
    return {"type": "completed", "results": results}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assignment", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--agent-pid", type=int)
    args = parser.parse_args()
    die_with_parent(args.agent_pid)
    try:
        outcome = run(json.loads(args.assignment.read_text()), args.adapter)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        outcome = {"type": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    args.output.write_text(json.dumps(outcome))
    return 0 if outcome["type"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
