"""What a training run measured, as its summary names it: the trainer
(services.trainer_agent.recipe) writes these keys into the summary it ends
with, which travels in ``trainer.job.completed`` and ``job.completed``, and
artifact_svc grades the model from them. Named once, here, so that a reader
cannot ask for a key the trainer never writes.
"""

from __future__ import annotations

import math

# The loss of the last training step.
FINAL_TRAINING_LOSS = "final_loss"
# The validation loss after the last step (validation runs after each epoch's
# last step, so after the run's); None without a validation split.
FINAL_VALIDATION_LOSS = "final_validation_loss"
# perplexity(FINAL_VALIDATION_LOSS); None without a validation split.
PERPLEXITY = "perplexity"
# The lowest validation loss of the run, and the step it was measured after.
BEST_VALIDATION_LOSS = "best_validation_loss"
BEST_VALIDATION_STEP = "best_validation_step"
# The training loss curve: [[step, mean training loss of the steps since the
# point before], ...] in step order, at most MAX_CURVE_POINTS points.
TRAINING_LOSS_CURVE = "training_loss_curve"
# Steps the run was planned for, and steps it trained (fewer when stopped early).
TOTAL_STEPS = "total_steps"
STEPS_COMPLETED = "steps_completed"
EPOCHS = "epochs"
TRAINED_TOKENS = "trained_tokens"
DURATION_SECONDS = "duration_seconds"
# A few held-out validation conversations answered by the trained model at the
# end of training, with and without its adapter (added by the worker): a list of
# {prompt, expected, completion, base_completion}.
SMOKE_SAMPLES = "smoke_samples"
# The chat template the adapter was trained with (added by the worker).
CHAT_TEMPLATE = "chat_template"
# The adapter as saved (added by the worker): {"rank", "target_modules",
# "modules_to_save", "architecture", "dtype"}; artifact_svc checks it against
# what inference servers can load (services/artifact_svc/serving.py).
ADAPTER = "adapter"

MAX_CURVE_POINTS = 200
# Caps the loss perplexity is taken of, so that a diverged run's stays a finite
# number (exp overflows above 709); beyond this no perplexity means anything.
_LARGEST_LOSS_FOR_PERPLEXITY = 50.0


def perplexity(loss: float) -> float:
    """exp(loss), the spec's perplexity, with the loss capped at 50 so that it stays finite."""
    return math.exp(min(loss, _LARGEST_LOSS_FOR_PERPLEXITY))


def thin_curve(curve: list[tuple[int, float]], most: int = MAX_CURVE_POINTS) -> list[list[float]]:
    """``curve`` in at most ``most`` points: consecutive points merged into their
    mean loss at the last one's step, so that the shape survives and the summary
    stays small however many points a long run emitted."""
    if len(curve) <= most:
        return [[step, loss] for step, loss in curve]
    bounds = [i * len(curve) // most for i in range(most + 1)]
    merged = []
    for start, end in zip(bounds, bounds[1:]):
        group = curve[start:end]
        merged.append([group[-1][0], sum(loss for _, loss in group) / len(group)])
    return merged
