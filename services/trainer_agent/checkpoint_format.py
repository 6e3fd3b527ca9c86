"""The names in a checkpoint directory, shared by the worker that writes
checkpoints (``checkpoint``) and the agent that copies them to and from the
object store (``checkpoint_store``), which imports no torch."""

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "brightrun.checkpoint.v1"
STATE = "state.json"
