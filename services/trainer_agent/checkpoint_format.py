"""The names in a checkpoint directory, shared by the worker that writes
checkpoints (``checkpoint``) and the agent that copies them to and from the
object store (``checkpoint_store``), which imports no torch."""

import re

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "brightrun.checkpoint.v1"
STATE = "state.json"
# A checkpoint directory's name: ``step-<global step>`` (the step zero-padded to 8 digits).
STEP_DIR = re.compile(r"step-(\d+)")
