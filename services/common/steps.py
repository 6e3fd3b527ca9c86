"""How many optimizer steps a job trains: one rule for job_svc (the estimate
and the job's total_steps, which progress and ETA count against) and the
trainer, which steps by it.

A step trains one effective batch of ``batch_size`` conversations, however
the batch is laid out: micro_batch_size × gradient_accumulation_steps × GPUs
always make ``batch_size``, and packing only changes the rows a micro-batch
is laid out in. An epoch trains every training conversation once, its last
batch possibly short. The training conversations are the dataset's readable
conversations with a trained token, less those the split holds out for
validation (services.common.splits): dataset_svc's validator counts both in
the dataset's statistics, under CONVERSATIONS and VALIDATION_CONVERSATIONS.

The one way the trainer can train fewer: a conversation whose trained tokens
all lie beyond the job's max_seq_length is dropped (it would train nothing),
while the validator, which does not know the job, counted it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

# Keys of the dataset's statistics (written by dataset_svc's validator).
CONVERSATIONS = "conversations"
VALIDATION_CONVERSATIONS = "validation_conversations"


def steps_per_epoch(training_conversations: int, batch_size: int) -> int:
    """Batches of ``batch_size`` in one pass over ``training_conversations``."""
    return math.ceil(training_conversations / batch_size)


def total_steps(training_conversations: int, batch_size: int, epochs: int) -> int:
    """The steps of a whole run of ``epochs`` epochs."""
    return steps_per_epoch(training_conversations, batch_size) * epochs


def training_conversations(statistics: Mapping) -> int | None:
    """The conversations a dataset trains on, from its validation statistics;
    None when they were never counted (the dataset is not validated)."""
    if CONVERSATIONS not in statistics:
        return None
    held_out = statistics[VALIDATION_CONVERSATIONS] if VALIDATION_CONVERSATIONS in statistics else 0
    return int(statistics[CONVERSATIONS]) - int(held_out)
