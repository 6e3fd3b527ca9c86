"""The values a job's named training options may take, shared by job_svc
(which refuses any other when the job is created) and the trainer (which
refuses any other when a run is configured)."""

from __future__ import annotations

LR_SCHEDULERS = ("cosine", "linear")
# "nf4": QLoRA, the frozen base model in 4-bit NormalFloat (bitsandbytes, CUDA only).
QUANTIZATIONS = ("none", "nf4")
ZERO_STAGES = (2, 3)
