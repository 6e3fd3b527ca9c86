"""Training on several GPUs of one node: one worker process per GPU, started by
torchrun, training with DeepSpeed ZeRO (stage 2 by default, 3 on request).

The recipe does not know how many processes train. It hands its backward
pass, optimizer step and the few values every rank must agree on to a
*parallelism* object: ``SingleProcess`` does what one process does alone,
``DeepSpeedRanks`` does the same through a DeepSpeed engine across ranks.

Every rank reads the whole dataset and walks the same epoch order; each takes
its own slice of a step's batch. The user's ``batch_size`` stays the effective
batch: micro-batch × accumulation steps × world size.
"""

from __future__ import annotations

import contextlib
import math
from datetime import timedelta

import torch

from services.trainer_agent.checkpoint import load_optimizer_state, load_rng_state, optimizer_state, rng_state
from services.trainer_agent.conversations import TokenizedConversation
from services.trainer_agent.launch import BatchLayout, batch_layout

# A rank that stops answering (dead peer, hung kernel) fails every collective
# after this long instead of holding the node forever; the agent then retries.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=10)


def deepspeed_config(layout: BatchLayout, *, zero_stage: int, max_grad_norm: float, bf16: bool) -> dict:
    """The DeepSpeed configuration of one run."""
    return {
        "train_batch_size": layout.micro_batch_size * layout.accumulation_steps * layout.world_size,
        "train_micro_batch_size_per_gpu": layout.micro_batch_size,
        "gradient_accumulation_steps": layout.accumulation_steps,
        "gradient_clipping": max_grad_norm,
        "zero_optimization": {"stage": zero_stage},
        "bf16": {"enabled": bf16},
        # The recipe's own torch AdamW: DeepSpeed's FusedAdam and CPUAdam would
        # compile C++/CUDA on first use, for no gain on a LoRA's few parameters.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**62,
    }


class SingleProcess:
    """One process trains alone: plain backward, clipping and optimizer step."""

    rank = 0
    world_size = 1
    is_main = True

    def prepare(self, model, optimizer, scheduler, config) -> torch.nn.Module:
        """Take charge of the optimizer step; returns the module to run forward passes through."""
        self._trainable = [p for p in model.parameters() if p.requires_grad]
        self._optimizer, self._scheduler, self._max_grad_norm = optimizer, scheduler, config.max_grad_norm
        return model

    def micro_batches(self, batch: list[TokenizedConversation], micro_batch_size: int | None):
        """This rank's micro-batches of a step's batch, each with its loss weight (1 or 0)."""
        micro = micro_batch_size or len(batch)
        return [(batch[i : i + micro], 1.0) for i in range(0, len(batch), micro)]

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> torch.Tensor | float:
        """Clip, step optimizer and schedule, clear gradients; returns the gradient
        norm before clipping (a tensor, read only when a metric point needs it)."""
        grad_norm = torch.nn.utils.clip_grad_norm_(self._trainable, self._max_grad_norm)
        self._optimizer.step()
        self._scheduler.step()
        self._optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` (a tensor on the device) summed over the ranks."""
        return value

    def any_rank(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any rank: every rank must stop at the same step."""
        return flag

    def full_parameters(self, parameters, *, modify: bool = False):
        """A context in which ``parameters`` hold their whole values on this rank;
        with ``modify``, what the main rank writes into them is kept."""
        return contextlib.nullcontext()

    def training_state(self, adapter: dict[str, torch.nn.Parameter]) -> tuple[dict, dict, list[dict]]:
        """The adapter's weights and the optimizer's state, whole, as a checkpoint
        stores them (see ``checkpoint.optimizer_state``), and the parameter groups."""
        return {name: p.detach() for name, p in adapter.items()}, *optimizer_state(self._optimizer)

    def load_training_state(
        self, adapter: dict[str, torch.nn.Parameter], weights: dict, tensors: dict, groups: list[dict]
    ) -> None:
        """Restore what ``training_state`` returned, on a run with the same adapter."""
        with torch.no_grad():
            for name, value in weights.items():
                adapter[name].copy_(value)
        load_optimizer_state(self._optimizer, tensors, groups)

    def rng_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The random generators' states, as ``checkpoint.rng_state`` gives them."""
        return rng_state()

    def load_rng_state(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        """Restore what ``rng_state`` returned."""
        load_rng_state(tensors, state)

    def close(self) -> None:
        """Leave the process group, where one was joined."""


class DeepSpeedRanks(SingleProcess):
    """One rank of a torchrun launch, training through a DeepSpeed ZeRO engine.

    The constructor joins the process group (gloo on CPU, NCCL on CUDA) that
    torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT describe; ``local_rank``
    (torchrun's LOCAL_RANK) picks this rank's GPU.
    """

    def __init__(self, zero_stage: int, local_rank: int):
        import deepspeed
        import torch.distributed as dist

        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        else:
            _skip_shared_memory_comm_op()
        deepspeed.init_distributed(timeout=PROCESS_GROUP_TIMEOUT)
        self._dist = dist
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.zero_stage = zero_stage

    def prepare(self, model, optimizer, scheduler, config) -> torch.nn.Module:
        import deepspeed

        self.layout = batch_layout(config.batch_size, config.micro_batch_size, self.world_size)
        # The recipe loads the base model in bf16 where the GPU computes in it;
        # DeepSpeed then keeps fp32 master weights of the adapter.
        bf16 = any(p.dtype == torch.bfloat16 for p in model.parameters())
        ds_config = deepspeed_config(
            self.layout, zero_stage=self.zero_stage, max_grad_norm=config.max_grad_norm, bf16=bf16
        )
        self.engine, *_ = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
        )
        # The torch AdamW, which DeepSpeed now runs over its flat fp32 partitions.
        self._optimizer = optimizer
        return self.engine

    def micro_batches(self, batch: list[TokenizedConversation], micro_batch_size: int | None):
        # Every rank runs the same number of micro-batches (under ZeRO-3 each
        # forward gathers parameters with every peer). Where the epoch's last,
        # short batch leaves a rank without examples, it runs the batch's first
        # one with weight 0: it joins the collectives and adds no gradient.
        micro, accumulation = self.layout.micro_batch_size, self.layout.accumulation_steps
        share = batch[self.rank * micro * accumulation : (self.rank + 1) * micro * accumulation]
        micros = [share[k * micro : (k + 1) * micro] for k in range(accumulation)]
        return [(examples, 1.0) if examples else (batch[:1], 0.0) for examples in micros]

    def backward(self, loss: torch.Tensor) -> None:
        # The recipe's loss is already this rank's part of the batch-wide mean;
        # DeepSpeed averages gradients over ranks, which the world size undoes.
        self.engine.backward(loss * self.world_size, scale_wrt_gas=False)
        self.engine.step()

    def step(self) -> float:
        # engine.step() after each backward has stepped on the accumulation boundary.
        grad_norm = self.engine.get_global_grad_norm()
        return float(grad_norm) if grad_norm is not None else math.nan

    def total(self, value: torch.Tensor) -> torch.Tensor:
        summed = torch.as_tensor(value, dtype=torch.float64, device=_device()).clone()
        self._dist.all_reduce(summed)
        return summed

    def any_rank(self, flag: bool) -> bool:
        return bool(self.total(torch.tensor(float(flag))) > 0)

    def full_parameters(self, parameters, *, modify: bool = False):
        if self.zero_stage < 3:
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(parameters), modifier_rank=0 if modify else None)

    # A checkpoint holds the whole fp32 adapter and Adam state, gathered from
    # the ranks' partitions, in the same form one process writes: it resumes on
    # any number of GPUs. Every rank must call these (they are collective).

    def training_state(self, adapter):
        from deepspeed.utils import safe_get_full_fp32_param, safe_get_full_optimizer_state

        weights, tensors = {}, {}
        step = next(iter(self._optimizer.state.values()))["step"]
        for index, (name, p) in enumerate(adapter.items()):
            weights[name] = safe_get_full_fp32_param(p).cpu()
            tensors[f"{index}.step"] = step.clone()
            for key in _ADAM_STATE:
                tensors[f"{index}.{key}"] = safe_get_full_optimizer_state(p, key).cpu()
        (group,) = self._optimizer.param_groups
        return weights, tensors, [{**_hyperparameters(group), "params": list(range(len(adapter)))}]

    def load_training_state(self, adapter, weights, tensors, groups):
        from deepspeed.utils import safe_set_full_fp32_param, safe_set_full_optimizer_state

        self._create_optimizer_state()
        device = _device()
        for index, (name, p) in enumerate(adapter.items()):
            safe_set_full_fp32_param(p, weights[name].to(device))
            for key in _ADAM_STATE:
                safe_set_full_optimizer_state(p, tensors[f"{index}.{key}"].to(device), key)
        with torch.no_grad(), self.full_parameters(adapter.values(), modify=True):
            for name, p in adapter.items():
                p.copy_(weights[name])
        for state in self._optimizer.state.values():
            state["step"] = tensors["0.step"].clone()
        (saved,) = groups
        for group in self._optimizer.param_groups:
            group.update(_hyperparameters(saved), betas=tuple(saved["betas"]))

    def rng_state(self):
        # Each rank draws its own dropout masks (on a GPU how far a generator
        # moves depends on the batch's shape), so every rank's generators are
        # kept: rank 0's under the usual names, which one process resumes
        # from, the others' under "rank-<r>.".
        tensors, state = rng_state()
        own = {"torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            own["cuda"] = torch.cuda.get_rng_state()
        ranks = [None] * self.world_size
        self._dist.all_gather_object(ranks, own)
        for rank, states in enumerate(ranks[1:], start=1):
            tensors |= {f"rank-{rank}.{name}": value.cpu() for name, value in states.items()}
        return tensors, state

    def load_rng_state(self, tensors, state):
        load_rng_state(tensors, state)
        prefix = f"rank-{self.rank}."
        own = {name.removeprefix(prefix): value for name, value in tensors.items() if name.startswith(prefix)}
        if "torch_cpu" in own:
            torch.set_rng_state(own["torch_cpu"])
        if "cuda" in own:
            torch.cuda.set_rng_state(own["cuda"])

    def _create_optimizer_state(self) -> None:
        # Adam creates its state at its first step, which a resumed run has not
        # taken: create it as torch's AdamW would, over DeepSpeed's fp32 partitions.
        zero = self.engine.optimizer
        flats = zero.fp32_partitioned_groups_flat if self.zero_stage == 3 else zero.single_partition_of_fp32_groups
        for flat in flats:
            self._optimizer.state[flat] = {"step": torch.tensor(0.0)} | {
                key: torch.zeros_like(flat, memory_format=torch.preserve_format) for key in _ADAM_STATE
            }
        if self.zero_stage == 2:
            # ZeRO-2 links each parameter to its slice of the Adam state at its
            # own first step; a resumed run needs that link before the state is set.
            zero._lazy_init_hp_params_optimizer_state()


_ADAM_STATE = ("exp_avg", "exp_avg_sq")


def _hyperparameters(group: dict) -> dict:
    return {key: value for key, value in group.items() if key != "params"}


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def _skip_shared_memory_comm_op() -> None:
    # On CPU DeepSpeed JIT-compiles a shared-memory all-reduce on its first
    # start (about a minute of g++). gloo carries a LoRA's gradients well enough
    # without it; marking the op incompatible makes DeepSpeed fall back to gloo.
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
