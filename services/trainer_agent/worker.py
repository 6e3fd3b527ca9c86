"""``python -m services.trainer_agent.worker``: one training attempt, in its own
process so that the agent can stop it (SIGTERM: finish the step, then stop)
and outlive it.

It speaks to the agent on stdout, one JSON object a line: ``metrics`` and
``checkpoint`` lines while training, then one ``completed``, ``stopped`` or
``failed`` line. Anything else a library prints goes to stderr. Stopped by
SIGTERM, it finishes the step under way, writes a checkpoint of it (when
checkpoints are on) and says so before ``stopped``.

With ``--distributed`` it is one rank of a torchrun launch (see
``launch.launch_command``); rank 0 alone speaks and writes the adapter.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path

import torch
from transformers.utils import logging as transformers_logging

from services.common import logs, run_summary
from services.common.training_choices import TRAINER_OPTIONS
from services.trainer_agent.checkpoint import CheckpointError, checkpoint_path, latest_checkpoint
from services.trainer_agent.conversations import TemplateError
from services.trainer_agent.distributed import DeepSpeedRanks, SingleProcess
from services.common.lifeline import die_with_parent
from services.trainer_agent.recipe import ConfigError, LoRATrainingRecipe, TrainingConfig
from services.trainer_agent.telemetry import default_gpu_reader, gpu_fields


def config_from_assignment(assignment: dict) -> TrainingConfig:
    """The recipe's configuration from a TrainingAssignment in proto JSON form."""
    hp = assignment.get("hyperparameters", {})
    rank = int(hp.get("rank", 16))
    options = {name: read(hp[name]) for name, read in TRAINER_OPTIONS.items() if name in hp}
    return TrainingConfig(
        base_model=hp["base_model"],
        learning_rate=float(hp.get("learning_rate", 2e-4)),
        batch_size=int(hp.get("batch_size", 8)),
        epochs=int(hp.get("epochs", 1)),
        rank=rank,
        alpha=float(hp.get("alpha") or 2 * rank),
        dropout=float(hp.get("dropout", 0.0)),
        warmup_steps=int(hp.get("warmup_steps", 0)),
        weight_decay=float(hp.get("weight_decay", 0.0)),
        max_seq_length=int(hp.get("max_seq_length") or 2048),
        seed=int(hp.get("seed", 0)),
        dataset_format=assignment.get("dataset_format", ""),
        **options,
    )


def _protocol_channel():
    """The agent's channel, a copy of stdout; stdout itself then points at stderr,
    so that what libraries print (DeepSpeed logs to stdout) cannot break a line."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return channel


def _parallelism(distributed: bool, config: TrainingConfig) -> SingleProcess:
    if not distributed:
        return SingleProcess()
    return DeepSpeedRanks(config.zero_stage, local_rank=int(os.environ["LOCAL_RANK"]))


def failure(exc: BaseException, *, setting_up: bool) -> dict:
    """The ``failed`` line for an error that ended the attempt: a user's error
    (bad configuration, a model that cannot be loaded or does not fit, a
    checkpoint that cannot be continued) is not retried, since another attempt
    would meet it again; anything else may pass. An OSError is the user's
    only while ``setting_up`` (reading the model and data): later it is the
    machine's, a full disk say."""
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        reason = f"the model does not fit in GPU memory with these settings (lower batch_size or max_seq_length): {exc}"
        return {"type": "failed", "reason": reason, "retryable": False}
    user_error = isinstance(exc, (ConfigError, TemplateError, CheckpointError, KeyError))
    user_error = user_error or (setting_up and isinstance(exc, OSError))
    return {"type": "failed", "reason": reason, "retryable": not user_error}


def plan(recipe: LoRATrainingRecipe) -> dict:
    """The run as the set-up recipe planned it from the data it loaded: its steps, and the step it resumes after."""
    return {"type": "plan", "total_steps": recipe.total_steps, "resumed_from_step": recipe.global_step}


def completed(recipe: LoRATrainingRecipe, summary: dict) -> dict:
    """The ``completed`` line: the run's ``summary`` (as ``train()`` returned it)
    and the chat template its adapter was trained with."""
    return {"type": "completed", "summary": {**summary, run_summary.CHAT_TEMPLATE: recipe.tokenizer.chat_template}}


def _save_on_stop(recipe: LoRATrainingRecipe, checkpoint_dir: Path | None, resumed_at: int, emit) -> None:
    """The checkpoint of the last completed step, written when training was
    stopped early, so that a resumed run loses none of it."""
    every = recipe.config.checkpoint_steps
    # Decided alike on every rank, since writing a checkpoint is a collective:
    # no step since the one resumed from, or the step's regular checkpoint, leaves nothing to add.
    if checkpoint_dir is None or not every or recipe.global_step in (resumed_at, 0) or recipe.global_step % every == 0:
        return
    path = recipe.save_checkpoint(checkpoint_path(checkpoint_dir, recipe.global_step))
    emit({"type": "checkpoint", "path": str(path), "step": recipe.global_step})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assignment", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    # Checkpoints every --checkpoint-steps steps and when stopped; a complete one already there is resumed from.
    parser.add_argument("--checkpoint-dir", type=Path)
    parser.add_argument("--checkpoint-steps", type=int, default=0)
    # One rank of a torchrun launch: torchrun's environment says which.
    parser.add_argument("--distributed", action="store_true")
    # The agent's pid: the worker ends when that process does (a rank: when torchrun does).
    parser.add_argument("--agent-pid", type=int)
    args = parser.parse_args()
    # On stderr, which the agent's log collects; what libraries warn of, as before, in the agent's format.
    logs.configure("trainer_worker", level=logging.WARNING)
    transformers_logging.disable_default_handler()
    transformers_logging.enable_propagation()
    die_with_parent(None if args.distributed else args.agent_pid)
    channel = _protocol_channel()
    speaks = not args.distributed or os.environ.get("RANK") == "0"

    def emit(line: dict) -> None:
        if speaks:
            channel.write(json.dumps(line) + "\n")

    stop = {"requested": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    recipe = parallel = gpu = None
    setting_up = True
    try:
        config = config_from_assignment(json.loads(args.assignment.read_text()))
        config = dataclasses.replace(config, checkpoint_steps=args.checkpoint_steps)
        parallel = _parallelism(args.distributed, config)
        gpu = default_gpu_reader() if speaks else None  # after the rank has picked its device
        resume = args.checkpoint_dir is not None and latest_checkpoint(args.checkpoint_dir) is not None
        recipe = LoRATrainingRecipe(
            config,
            args.dataset,
            on_metrics=lambda m: emit({"type": "metrics", **m, **gpu_fields(gpu)}),
            # Every rank stops at the same step, or the others wait for it in a collective.
            should_stop=lambda: parallel.any_rank(stop["requested"]),
            checkpoint_dir=args.checkpoint_dir,
            resume_from=args.checkpoint_dir if resume else None,
            parallel=parallel,
            on_checkpoint=lambda path: emit({"type": "checkpoint", "path": str(path), "step": recipe.global_step}),
        )
        recipe.setup()
        setting_up, resumed_at = False, recipe.global_step
        emit(plan(recipe))
        summary = recipe.train()
        if summary["stopped"]:
            _save_on_stop(recipe, args.checkpoint_dir, resumed_at, emit)
            emit({"type": "stopped", "step": recipe.global_step})
            return 0
        recipe.save_adapter(args.output)
        emit(completed(recipe, summary))
        return 0
    except Exception as exc:
        logging.getLogger(__name__).exception("the training attempt failed")
        emit(failure(exc, setting_up=setting_up))
        return 1
    finally:
        if recipe is not None:
            recipe.cleanup()
        if parallel is not None:
            parallel.close()


if __name__ == "__main__":
    sys.exit(main())
