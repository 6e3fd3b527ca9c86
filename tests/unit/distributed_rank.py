"""One rank of the distributed recipe test, launched by torchrun from
test_distributed.py: trains like the worker does, then writes this rank's
adapter weights (gathered under ZeRO-3) to ``<out>/rank-<rank>.safetensors``
and, from rank 0, the adapter to ``<out>/adapter``. Checkpoints go to
``<out>/checkpoints``; a fourth argument names one to resume from."""

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from services.trainer_agent.distributed import DeepSpeedRanks
from services.trainer_agent.recipe import LoRATrainingRecipe, TrainingConfig

config_json, data, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
resume_from = Path(sys.argv[4]) if len(sys.argv) > 4 else None
config = TrainingConfig(**json.loads(config_json))
parallel = DeepSpeedRanks(config.zero_stage, local_rank=int(os.environ["LOCAL_RANK"]))
recipe = LoRATrainingRecipe(
    config, data, parallel=parallel, checkpoint_dir=out / "checkpoints", resume_from=resume_from
)
recipe.setup()
if resume_from is None:
    # On a GPU the ranks' generators drift apart (dropout draws depend on the
    # batch's shape); on the CPU they would not. Rank r draws r numbers, so
    # that a resume which does not restore each rank's own generators shows.
    torch.rand(parallel.rank)
recipe.train()
with parallel.full_parameters(recipe._trainable):
    weights = {n: p.detach().clone() for n, p in recipe.model.named_parameters() if p.requires_grad}
save_file(weights, out / f"rank-{parallel.rank}.safetensors")
recipe.save_adapter(out / "adapter")
parallel.close()
