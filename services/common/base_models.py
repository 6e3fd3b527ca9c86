"""Where a base model may come from: a Hugging Face hub id, or a local
directory or GGUF file inside one of the configured model directories. Pure
but for resolving paths and reading a GGUF file's header on this machine's
file system.

A base model is handed to ``from_pretrained``, which reads whatever local
path it is given and, for a name, looks for a local directory of that name
first: an unchecked value lets a caller make the validator and the trainer
read any file the service can (``/etc``, ``/proc/self/root/...``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from services.common.errors import InvalidArgument
from services.common.gguf_import import GGUF_SUFFIX, GgufError, check_gguf, gguf_location

# The hub's repository id: `name` or `org/name`, each of letters, digits, '.', '_'
# and '-', neither starting nor ending with '.' or '-', 96 characters at most.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?"
_HUB_ID = re.compile(rf"^{_HUB_PART}(?:/{_HUB_PART})?$")
_HUB_ID_MAX = 96
MAX_LENGTH = 1024


class ModelNotAllowed(ValueError):
    """The base model is neither a hub id nor inside an allowed model directory, or it is
    a GGUF file that cannot be used; the message says which."""


def is_local_model(value: str) -> bool:
    """Whether ``from_pretrained`` reads ``value`` from the file system: anything
    but a hub id, and a hub id that names an existing relative path."""
    return not _is_hub_shaped(value) or os.path.lexists(value)


def resolve_base_model(value: str, model_dirs: Sequence[Path]) -> str:
    """The base model to store and load: a hub id unchanged, a local model as its real absolute path.

    A hub id that also names an existing path relative to the working
    directory is a local model, as ``from_pretrained`` would load it. Raises
    ModelNotAllowed for a local path outside every directory of
    ``model_dirs`` (after following symlinks), for ``..``, control characters
    or an over-long value, and for a GGUF file (a path ending in ``.gguf``, or a
    directory without config.json holding one) that is not a usable GGUF.
    """
    if len(value) > MAX_LENGTH:
        raise ModelNotAllowed(f"must be at most {MAX_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ModelNotAllowed("must not contain control characters")
    given = value
    value = _named_local_model(value, model_dirs) or value
    if not is_local_model(value):
        return value
    allowed = _where(model_dirs)
    if ".." in Path(value).parts:
        raise ModelNotAllowed(f"{value!r} must not contain '..'; give the name of a model in {allowed}")
    real = Path(os.path.realpath(os.path.expanduser(value)))
    if not any(real.is_relative_to(os.path.realpath(d)) for d in model_dirs):
        raise ModelNotAllowed(
            f"{value!r} is a local path outside {allowed}: give a Hugging Face hub id (name or org/name), "
            "or the name of a model there"
        )
    try:
        if found := gguf_location(str(real)):
            check_gguf(found[0] / found[1])
    except GgufError as exc:
        # Named as the caller gave it: the server's paths are not theirs to see.
        raise ModelNotAllowed(str(exc).replace(str(real), given)) from None
    return str(real)


def _is_hub_shaped(value: str) -> bool:
    return len(value) <= _HUB_ID_MAX and ".." not in value and _HUB_ID.match(value) is not None


def _named_local_model(value: str, model_dirs: Sequence[Path]) -> str | None:
    """The directory, or GGUF file, a name (as :func:`shown_to_callers` gives it) names inside a model
    directory, or None."""
    if not _is_hub_shaped(value):
        return None
    for directory in model_dirs:
        path = Path(directory) / value
        if path.is_dir() or (value.lower().endswith(GGUF_SUFFIX) and path.is_file()):
            return str(path)
    return None


def shown_to_callers(value: object, model_dirs: Sequence[Path]) -> object:
    """``value`` (text, or JSON-like dicts and lists of it) as a caller may see it: every resolved local
    base model reads as its path inside its model directory (``tiny-llama``), which
    :func:`resolve_base_model` takes back, never as the server's absolute path."""
    if isinstance(value, str):
        for directory in model_dirs:
            value = value.replace(os.path.realpath(directory) + os.sep, "")
        return value
    if isinstance(value, dict):
        return {key: shown_to_callers(item, model_dirs) for key, item in value.items()}
    if isinstance(value, list):
        return [shown_to_callers(item, model_dirs) for item in value]
    return value


def check_base_model(value: str, model_dirs: Sequence[Path], field: str = "base_model") -> str:
    """:func:`resolve_base_model` for a request; raises InvalidArgument naming ``field``."""
    try:
        return resolve_base_model(value, model_dirs)
    except ModelNotAllowed as exc:
        raise InvalidArgument(f"Validation error: check {field}", {field: [str(exc)]}) from None


def _where(model_dirs: Sequence[Path]) -> str:
    # Names, not the server's paths: a caller gives a model by its name inside them.
    if not model_dirs:
        return "an allowed model directory (none is configured: set BRIGHTRUN_MODEL_DIRS)"
    names = sorted({p.name for d in model_dirs if Path(d).is_dir() for p in Path(d).iterdir() if p.is_dir()})
    return "the server's model directories (BRIGHTRUN_MODEL_DIRS; models there: " + (", ".join(names) or "none") + ")"
