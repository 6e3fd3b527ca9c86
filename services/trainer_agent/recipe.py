"""The LoRA training recipe: ``setup``, ``train``, ``save_checkpoint``,
``load_checkpoint``, ``save_adapter``, ``cleanup``, with an explicit loop in
the manner of torchtune's recipes.

``batch_size`` is the effective batch: micro-batches of ``micro_batch_size``
accumulate gradients until it is reached, and the loss of a step is the mean
over every trained token of the effective batch, so a step's result does not
depend on how its batch was split.

With ``packing`` (the default) the conversations of a micro-batch share rows
of up to ``max_seq_length`` tokens (see batching): a step still trains
``batch_size`` conversations and its loss is the same, on less padding.

A run resumed from a checkpoint continues exactly where the checkpoint was
taken: the same next batch (an epoch's order derives from seed and epoch
alone), the same optimizer and schedule, the same dropout masks, the same
early-stopping count.

Inside the step loop nothing waits for the device except on the steps that
emit a metric point: losses and gradient norms stay tensors until then.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from services.common import run_summary
from services.common.chat_template import chat_template_of
from services.common.steps import steps_per_epoch, total_steps
from services.trainer_agent.batching import collate, rows_of, to_device
from services.trainer_agent.checkpoint import (
    CheckpointError,
    checkpoint_path,
    read_checkpoint,
    resolve_checkpoint,
    write_checkpoint,
)
from services.trainer_agent.conversations import (
    IGNORE_INDEX,
    TokenizedConversation,
    TrainingData,
    read_training_data,
)
from services.trainer_agent.distributed import SingleProcess
from services.trainer_agent.model import load_lora_model, load_tokenizer, packs_one_row_only, unavailable_here
from services.trainer_agent.schedule import lr_factor, metric_interval, warmup_steps
from services.trainer_agent.training_config import ConfigError, DatasetError, TrainingConfig


# Settings a resumed run may change: none touches what is trained or in which
# order (a checkpoint holds the whole state, however ZeRO partitioned it).
_RESUMABLE_CHANGES = frozenset({"checkpoint_steps", "log_every", "zero_stage"})


class LoRATrainingRecipe:
    """Trains one LoRA adapter on a local JSONL dataset.

    ``on_metrics(dict)`` receives a metric point every ``log_every`` steps
    (and at the last step), and the validation loss and perplexity whenever
    validation runs; ``should_stop()`` is asked before every step;
    ``on_epoch_end(epoch)`` runs after each epoch.

    With ``checkpoint_steps`` above 0 a checkpoint is written under
    ``checkpoint_dir`` every that many steps, and ``on_checkpoint(path)`` runs
    once it is complete (the place to copy it elsewhere). ``resume_from``, a
    checkpoint or a directory of them (the latest complete one is taken), is
    loaded by ``setup()``.

    ``parallel`` trains across processes (``distributed.DeepSpeedRanks``): it
    owns backward and optimizer step; every rank runs the recipe, and only its
    main rank reports metrics and writes files.

    Raises ConfigError when checkpoints are asked for without a ``checkpoint_dir``.
    """

    def __init__(
        self,
        config: TrainingConfig,
        data_path: Path,
        *,
        on_metrics: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_epoch_end: Callable[[int], None] | None = None,
        on_checkpoint: Callable[[Path], None] | None = None,
        checkpoint_dir: Path | None = None,
        resume_from: Path | None = None,
        parallel: SingleProcess | None = None,
    ):
        if config.checkpoint_steps and checkpoint_dir is None:
            raise ConfigError(["checkpoint_dir: must be given when checkpoint_steps is above 0"])
        self.config = config
        self.data_path = Path(data_path)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.resume_from = Path(resume_from) if resume_from is not None else None
        self._on_checkpoint = on_checkpoint or (lambda path: None)
        self._on_metrics = on_metrics or (lambda metrics: None)
        self._should_stop = should_stop or (lambda: False)
        self._on_epoch_end = on_epoch_end or (lambda epoch: None)
        self.parallel = parallel or SingleProcess()
        self.model = None

    def setup(self) -> None:
        """Seed every generator, load tokenizer and base model, add LoRA, read
        the data and build the optimizer and learning-rate schedule.

        With ``resume_from`` set, the training state of its checkpoint replaces
        the fresh one, random generators included.

        Raises ConfigError when NF4 quantization or fused kernels cannot run on
        this machine, or early stopping is asked for without a validation split, DatasetError
        when no conversation is left to train on, OSError when the base model
        or the dataset cannot be read, TemplateError (a ValueError) when the
        model's chat template cannot be trained with, and CheckpointError when
        ``resume_from`` holds no complete checkpoint this run can continue.
        """
        # Imported here: they take seconds to load, and whoever only builds and
        # checks a TrainingConfig should not pay for them.
        from transformers import set_seed

        cfg = self.config
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if problems := unavailable_here(cfg, self.device):
            raise ConfigError(problems)
        set_seed(cfg.seed)
        self.tokenizer = load_tokenizer(cfg.base_model)
        # Stored with the adapter, so that inference renders prompts as training did.
        self.tokenizer.chat_template = chat_template_of(self.tokenizer)
        self.pad_id = _pad_id(self.tokenizer)
        self.data: TrainingData = read_training_data(
            self.data_path, self.tokenizer, cfg.max_seq_length, cfg.dataset_format, cfg.validation_fraction
        )
        self._check_data()
        self.model = load_lora_model(cfg, self.device)
        # Where attention reads packing from one row only, a micro-batch packs
        # into one row of any length: it is never padded either.
        one_row = cfg.packing and packs_one_row_only(self.model)
        self._row_capacity = math.inf if one_row else cfg.max_seq_length
        self.total_steps = total_steps(len(self.data.train), cfg.batch_size, cfg.epochs)
        self.log_every = cfg.log_every or metric_interval(self.total_steps)
        self._trainable = [p for p in self.model.parameters() if p.requires_grad]
        # One kernel for every parameter's update: fused on CUDA, foreach on the CPU (which has no fused AdamW).
        kernel = {"fused": True} if self.device.type == "cuda" else {"foreach": True}
        self.optimizer = torch.optim.AdamW(
            self._trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, **kernel
        )
        warmup = warmup_steps(self.total_steps, cfg.warmup_steps, cfg.warmup_ratio)
        schedule = functools.partial(lr_factor, total_steps=self.total_steps, warmup=warmup, kind=cfg.lr_scheduler)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self._forward = self.parallel.prepare(self.model, self.optimizer, self.scheduler, cfg)
        # Where training stands: the step done last, the epoch under way and
        # how many of its batches are done, and what the summary adds up.
        self.global_step = 0
        self.epoch = 1
        self.epoch_batches_done = 0
        self.trained_tokens = 0
        self.last_loss: torch.Tensor | float | None = None
        self.training_curve: list[tuple[int, float]] = []  # (step, training loss of its metric point)
        self.final_validation_loss: float | None = None
        self.best_validation_loss: float | None = None
        self.best_validation_step: int | None = None
        self.validations_without_improvement = 0
        # This call's tokens in training rows, padding included and not: the summary's padding_fraction.
        self._row_tokens = self._real_tokens = 0
        if self.resume_from is not None:
            # Last: building the model drew from the generators this restores.
            self.load_checkpoint(resolve_checkpoint(self.resume_from))

    def _check_data(self) -> None:
        if not self.data.train:
            found = (
                f"{self.data.dropped} had no trained token, {self.data.invalid} could not be read, "
                f"{len(self.data.validation)} are held out for validation"
            )
            raise DatasetError([found], heading=f"no conversation to train on in {self.data_path.name}")
        if self.config.early_stopping_patience and not self.data.validation:
            raise ConfigError(
                [
                    "early_stopping_patience: needs a validation split, and this dataset has none; "
                    "mark some records with split 'validation', raise validation_fraction, or set it to 0"
                ]
            )

    @property
    def stopped_early(self) -> bool:
        """True once ``early_stopping_patience`` validations in a row found no better loss."""
        patience = self.config.early_stopping_patience
        return patience > 0 and self.validations_without_improvement >= patience

    def train(self) -> dict:
        """Run every epoch, or until ``should_stop()`` says to stop before a
        step, or until early stopping ends the run; after ``resume_from``, from
        the step after its checkpoint's.

        Validation runs every ``eval_steps`` steps and after each epoch's last
        step, before that step's checkpoint, so that a checkpoint holds the
        early-stopping count of every step it covers.

        Returns the run's summary (the keys other services read are named in
        services.common.run_summary): final_loss (of the last step, None
        without one), final_validation_loss, perplexity, best_validation_loss
        and best_validation_step (each None without a validation split),
        training_loss_curve (from the first step, also after a resume, in
        at most run_summary.MAX_CURVE_POINTS points),
        total_steps, steps_completed, trained_tokens, epochs (completed),
        duration_seconds (of this call alone), stopped (by ``should_stop``),
        stopped_early, padding_fraction (of the tokens this call trained on),
        the train and validation example counts, dropped_examples,
        truncated_examples and invalid_records.
        Raises RuntimeError when called before ``setup()``, OSError when a
        checkpoint cannot be written.
        """
        self._require_setup()
        cfg = self.config
        started = time.monotonic()
        window = _Window()
        stopped = False
        for epoch in range(self.epoch, cfg.epochs + 1):
            permutation = _epoch_order(cfg.seed, epoch, len(self.data.train))
            batches = steps_per_epoch(len(permutation), cfg.batch_size)
            # A resumed run starts after the batches its checkpoint had done.
            for first in range(self.epoch_batches_done * cfg.batch_size, len(permutation), cfg.batch_size):
                if self.stopped_early:
                    break
                if self._should_stop():
                    stopped = True
                    break
                batch = [self.data.train[i] for i in permutation[first : first + cfg.batch_size]]
                step = self.global_step + 1
                epoch_end = self.epoch_batches_done + 1 == batches
                validating = epoch_end or bool(cfg.eval_steps and step % cfg.eval_steps == 0)
                self._train_step(epoch, batch, window, point=validating)
                if validating:
                    self._validate(epoch)
                if cfg.checkpoint_steps and self.global_step % cfg.checkpoint_steps == 0:
                    self._on_checkpoint(self.save_checkpoint(checkpoint_path(self.checkpoint_dir, self.global_step)))
            if self.epoch_batches_done < batches:
                break  # stopped, early or not, before the epoch's end
            self.epoch, self.epoch_batches_done = epoch + 1, 0
            self._on_epoch_end(epoch)
        return self._summary(time.monotonic() - started, stopped)

    def _summary(self, duration: float, stopped: bool) -> dict:
        rows = self._row_tokens
        final_validation = self.final_validation_loss
        return {
            run_summary.FINAL_TRAINING_LOSS: _number(self.last_loss),
            run_summary.FINAL_VALIDATION_LOSS: final_validation,
            run_summary.PERPLEXITY: None if final_validation is None else run_summary.perplexity(final_validation),
            run_summary.BEST_VALIDATION_LOSS: self.best_validation_loss,
            run_summary.BEST_VALIDATION_STEP: self.best_validation_step,
            run_summary.TRAINING_LOSS_CURVE: run_summary.thin_curve(self.training_curve),
            run_summary.TOTAL_STEPS: self.total_steps,
            run_summary.STEPS_COMPLETED: self.global_step,
            run_summary.TRAINED_TOKENS: self.trained_tokens,
            run_summary.EPOCHS: self.epoch - 1,
            run_summary.DURATION_SECONDS: duration,
            "stopped": stopped,
            "stopped_early": self.stopped_early,
            "padding_fraction": (rows - self._real_tokens) / rows if rows else 0.0,
            "train_examples": len(self.data.train),
            "validation_examples": len(self.data.validation),
            "dropped_examples": self.data.dropped,
            "truncated_examples": self.data.truncated,
            "invalid_records": self.data.invalid,
        }

    def _train_step(self, epoch: int, batch: list[TokenizedConversation], window: _Window, *, point: bool) -> None:
        learning_rate = self.scheduler.get_last_lr()[0]
        loss, grad_norm = self._step(batch)
        self.global_step += 1
        self.epoch_batches_done += 1
        self.last_loss = loss
        self.trained_tokens += sum(e.trained_tokens for e in batch)
        window.add(loss, sum(len(e.input_ids) for e in batch), len(batch))
        # The last step always has its point, however the steps divide into
        # log_every, and so does a validated one (``point``): its validation
        # result joins that point, never standing alone on a loss chart.
        if point or self.global_step % self.log_every == 0 or self.global_step == self.total_steps:
            measured = window.flush()
            self.training_curve.append((self.global_step, measured["training_loss"]))
            self._on_metrics(
                {
                    "epoch": epoch,
                    "step": self.global_step,
                    "total_steps": self.total_steps,
                    "learning_rate": learning_rate,
                    "grad_norm": float(grad_norm),
                    **measured,
                }
            )

    def _step(self, batch: list[TokenizedConversation]) -> tuple[torch.Tensor, torch.Tensor | float]:
        """One optimizer step over an effective batch; its loss per trained token
        and gradient norm, in one process as tensors on the device (reading them waits for it)."""
        self.model.train()
        batch_trained = sum(e.trained_tokens for e in batch)
        # Summed in float64, as Python summed the floats before: the logged losses did not change.
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        for examples, weight in self.parallel.micro_batches(batch, self.config.micro_batch_size):
            summed, row_tokens = self._loss_sum(examples)
            # Dividing by the whole batch's tokens, not the micro-batch's, keeps
            # the accumulated gradient that of one batch-wide mean.
            self.parallel.backward(summed * (weight / batch_trained))
            loss_sum += weight * summed.detach()
            self._row_tokens += row_tokens
            self._real_tokens += sum(len(e.input_ids) for e in examples)
        grad_norm = self.parallel.step()
        return self.parallel.total(loss_sum) / batch_trained, grad_norm

    def _loss_sum(self, examples: list[TokenizedConversation]) -> tuple[torch.Tensor, int]:
        """Summed cross-entropy over the trained tokens of ``examples``, and the
        size of the rows they were collated into, padding included."""
        rows = rows_of(examples, self._row_capacity, self.config.packing)
        inputs = to_device(collate(rows, self.pad_id), self.device)
        # No attention mask and no cache: transformers then reads the packed
        # conversations from the position ids and confines attention to each.
        logits = self._forward(
            input_ids=inputs["input_ids"], position_ids=inputs["position_ids"], use_cache=False
        ).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(),
            inputs["targets"].reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        return loss, inputs["input_ids"].numel()

    def _validate(self, epoch: int) -> None:
        if not self.data.validation:
            return
        validation_loss = self.evaluate()
        self.final_validation_loss = validation_loss
        if self.best_validation_loss is None or validation_loss < self.best_validation_loss:
            self.best_validation_loss, self.validations_without_improvement = validation_loss, 0
            self.best_validation_step = self.global_step
        else:
            self.validations_without_improvement += 1
        self._on_metrics(
            {
                "epoch": epoch,
                "step": self.global_step,
                "total_steps": self.total_steps,
                "validation_loss": validation_loss,
                "perplexity": run_summary.perplexity(validation_loss),
            }
        )

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean loss per trained token over the validation split.

        Raises RuntimeError when called before ``setup()``.
        """
        self._require_setup()
        self.model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        micro = self.config.micro_batch_size or self.config.batch_size
        for first in range(0, len(self.data.validation), micro):
            summed, _ = self._loss_sum(self.data.validation[first : first + micro])
            total += summed
        tokens = sum(e.trained_tokens for e in self.data.validation)
        return (total / max(tokens, 1)).item()

    def save_checkpoint(self, path: Path) -> Path:
        """Write everything needed to continue this run exactly into a new
        checkpoint directory ``path`` (see ``checkpoint.write_checkpoint``); returns it.

        Raises RuntimeError when called before ``setup()``, FileExistsError
        when ``path`` exists, OSError when it cannot be written.
        """
        self._require_setup()
        # Every rank gathers (under ZeRO the state is partitioned); the main one writes.
        adapter, optimizer_tensors, param_groups = self.parallel.training_state(self._adapter())
        rng_tensors, rng_json = self.parallel.rng_state()
        if not self.parallel.is_main:
            return path
        state = {
            "config": _comparable(self.config),
            "train_examples": len(self.data.train),
            "global_step": self.global_step,
            "epoch": self.epoch,
            "epoch_batches_done": self.epoch_batches_done,
            "trained_tokens": self.trained_tokens,
            "last_loss": _number(self.last_loss),
            "training_curve": self.training_curve,
            "final_validation_loss": self.final_validation_loss,
            "best_validation_loss": self.best_validation_loss,
            "best_validation_step": self.best_validation_step,
            "validations_without_improvement": self.validations_without_improvement,
            "optimizer_param_groups": param_groups,
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_json,
        }
        tensors = {"adapter": adapter, "optimizer": optimizer_tensors, "rng": rng_tensors}
        return write_checkpoint(path, tensors, state)

    def load_checkpoint(self, path: Path) -> None:
        """Continue from the checkpoint at ``path``: adapter weights, optimizer,
        schedule, random generators and the position in the data.

        Raises RuntimeError when called before ``setup()``, and CheckpointError
        when the checkpoint is incomplete or damaged, or was written by a run
        with other training settings, data or adapter.
        """
        self._require_setup()
        tensors, state = read_checkpoint(path)
        changed = sorted(
            name
            for name, value in _comparable(self.config).items()
            if name not in _RESUMABLE_CHANGES and state["config"].get(name) != value
        )
        if changed:
            raise CheckpointError(f"{path} was written with other values of {', '.join(changed)}")
        if state["train_examples"] != len(self.data.train):
            raise CheckpointError(
                f"{path} was written for {state['train_examples']} training examples, "
                f"this dataset has {len(self.data.train)}"
            )
        adapter = self._adapter()
        if set(tensors["adapter"]) != set(adapter):
            raise CheckpointError(f"{path} holds the weights of another adapter")
        self.parallel.load_training_state(
            adapter, tensors["adapter"], tensors["optimizer"], state["optimizer_param_groups"]
        )
        self.scheduler.load_state_dict(state["scheduler"])
        self.parallel.load_rng_state(tensors["rng"], state["rng"])
        self.global_step = state["global_step"]
        self.epoch = state["epoch"]
        self.epoch_batches_done = state["epoch_batches_done"]
        self.trained_tokens = state["trained_tokens"]
        self.last_loss = state["last_loss"]
        self.best_validation_loss = state["best_validation_loss"]
        # Absent from checkpoints written before the summary reported them: a
        # job resumed across that upgrade reports the curve of the steps after
        # it alone, and a best step only once a validation beats the best.
        self.training_curve = [(step, loss) for step, loss in state.get("training_curve", [])]
        self.final_validation_loss = state.get("final_validation_loss")
        self.best_validation_step = state.get("best_validation_step")
        self.validations_without_improvement = state["validations_without_improvement"]

    def _adapter(self) -> dict[str, torch.nn.Parameter]:
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def save_adapter(self, out_dir: Path) -> Path:
        """Write a standard PEFT adapter (adapter_config.json, adapter_model.safetensors),
        the tokenizer files and training_config.json into ``out_dir``; returns it.

        Raises RuntimeError when called before ``setup()``, OSError when the directory cannot be written.
        """
        self._require_setup()
        out = Path(out_dir)
        # Every rank takes part (under ZeRO-3 the weights are gathered from all); the main one writes.
        probe = self._probe()
        with self.parallel.full_parameters(self._trainable):
            if not self.parallel.is_main:
                return out
            out.mkdir(parents=True, exist_ok=True)
            self.model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        (out / "training_config.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        (out / "evaluation_probe.json").write_text(json.dumps(probe) + "\n")
        return out

    @torch.no_grad()
    def _probe(self) -> dict:
        # The trained model's logits on one training input, so that whoever
        # downloads the adapter can check it reproduces the model that trained.
        ids = self.data.train[0].input_ids[:32]
        self.model.eval()
        logits = self._forward(input_ids=torch.tensor([ids], device=self.device)).logits[0, -1, :16]
        return {"input_ids": ids, "last_logits_head": logits.float().tolist()}

    def cleanup(self) -> None:
        """Release the model and optimizer (and the GPU memory they held). Safe to call twice."""
        self.model = self.optimizer = self.scheduler = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _require_setup(self) -> None:
        if self.model is None:
            raise RuntimeError("the recipe is not set up: call setup() first")


class _Window:
    """What happened since the last metric point: mean loss and throughput."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self.started, self.losses, self.tokens, self.samples = time.monotonic(), [], 0, 0

    def add(self, loss: torch.Tensor, tokens: int, samples: int) -> None:
        self.losses.append(loss)
        self.tokens += tokens
        self.samples += samples

    def flush(self) -> dict:
        # The window's one wait for the device; the clock is read after it, once the steps are really done.
        losses = torch.stack(self.losses).tolist()
        elapsed = max(time.monotonic() - self.started, 1e-9)
        point = {
            "training_loss": sum(losses) / len(losses),
            # Every real (unpadded) token the model read, trained or not: the cost that matters.
            "tokens_per_second": self.tokens / elapsed,
            "samples_per_second": self.samples / elapsed,
        }
        self._reset()
        return point


def _epoch_order(seed: int, epoch: int, examples: int) -> list[int]:
    """The order of an epoch's examples: from seed and epoch alone, so that a
    resumed run finds it without replaying the epochs before."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(examples, generator=generator).tolist()


def _comparable(config: TrainingConfig) -> dict:
    # As the config reads back from JSON (tuples become lists), so a saved one compares equal.
    return json.loads(json.dumps(asdict(config)))


def _number(value: torch.Tensor | float | None) -> float | None:
    return None if value is None else float(value)


def _pad_id(tokenizer) -> int:
    # Padded positions are masked out of attention and loss, so any id will do
    # where the tokenizer names no pad token.
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return candidate
    return 0
