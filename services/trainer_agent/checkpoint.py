"""Training checkpoints on the local filesystem, complete or absent.

A checkpoint is a directory ``step-<global step>`` of safetensors files and
one ``state.json``. It is written under a temporary sibling name, its
``manifest.json`` (every file with its size and sha256) is written last, and
only then is the directory renamed into place: a directory under a final name
without a manifest was not written by us, and is refused. Nothing is ever
unpickled: tensors come back through ``safetensors``, everything else is JSON.

Whoever copies a checkpoint elsewhere (an object store) keeps the same rule:
the files first, ``manifest.json`` last.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import uuid
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from services.trainer_agent.checkpoint_format import MANIFEST, MANIFEST_FORMAT, STATE, STEP_DIR


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from: incomplete, damaged, or written by another run."""


def checkpoint_path(root: Path, global_step: int) -> Path:
    """Where the checkpoint after ``global_step`` steps lives under ``root``."""
    return Path(root) / f"step-{global_step:08d}"


def write_checkpoint(path: Path, tensors: dict[str, dict[str, torch.Tensor]], state: dict) -> Path:
    """Write ``tensors`` (file stem -> named tensors) as safetensors files and
    ``state`` as ``state.json`` into a new checkpoint directory ``path``; returns it.

    Raises FileExistsError when ``path`` already exists, OSError when it cannot be written.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"checkpoint {path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    contents = {f"{stem}.safetensors": save_tensors(_contiguous(named)) for stem, named in tensors.items()}
    contents[STATE] = (json.dumps(state, indent=2) + "\n").encode()
    for name, data in contents.items():
        _write_durably(staging / name, data)
    manifest = {
        "format": MANIFEST_FORMAT,
        "files": {
            name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in contents.items()
        },
    }
    _write_durably(staging / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    _fsync_dir(staging)
    # The rename is the commit: before it, readers see no checkpoint; after it, a complete one.
    os.rename(staging, path)
    _fsync_dir(path.parent)
    return path


def read_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """The tensors (file stem -> named tensors) and the state of the checkpoint at ``path``.

    Raises CheckpointError when the manifest is missing or unreadable, or when
    a file it lists is missing or differs from it in size or sha256.
    """
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise CheckpointError(f"{path} has no {MANIFEST}: the checkpoint was never completed") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path / MANIFEST} cannot be read: {exc}") from None
    if manifest.get("format") != MANIFEST_FORMAT or STATE not in files:
        raise CheckpointError(f"{path / MANIFEST} is not a {MANIFEST_FORMAT} manifest")
    contents = {}
    for name, expected in files.items():
        # Names come from a file that may have been edited: never leave the directory.
        if Path(name).name != name:
            raise CheckpointError(f"{path / MANIFEST} lists a file outside the checkpoint: {name!r}")
        try:
            data = (path / name).read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"{path} lacks {name}, which its manifest lists") from None
        if len(data) != expected["size"] or hashlib.sha256(data).hexdigest() != expected["sha256"]:
            raise CheckpointError(f"{path / name} differs from its manifest: damaged or changed after it was written")
        contents[name] = data
    # Deserialised from the bytes just verified, so no file can change in between.
    tensors = {
        name.removesuffix(".safetensors"): load_tensors(data) for name, data in contents.items() if name != STATE
    }
    return tensors, json.loads(contents[STATE])


def latest_checkpoint(root: Path) -> Path | None:
    """The complete checkpoint with the highest step under ``root``; None when there is none."""
    root = Path(root)
    if not root.is_dir():
        return None
    complete = [
        (int(match.group(1)), child)
        for child in root.iterdir()
        if (match := STEP_DIR.fullmatch(child.name)) and (child / MANIFEST).is_file()
    ]
    return max(complete)[1] if complete else None


def resolve_checkpoint(path: Path) -> Path:
    """``path`` itself when it is a complete checkpoint, else the latest complete one under it.

    Raises CheckpointError when there is neither.
    """
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise CheckpointError(f"{path} holds no complete checkpoint (one whose {MANIFEST} was written)")
    return latest


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The optimizer's per-parameter state as named tensors, and its parameter groups as JSON."""
    saved = optimizer.state_dict()
    tensors = {f"{index}.{key}": value for index, state in saved["state"].items() for key, value in state.items()}
    return tensors, saved["param_groups"]


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    """Restore what ``optimizer_state`` returned into an optimizer over the same parameters."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    # JSON has no tuples; AdamW's betas go back to the type it was built with.
    groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group for group in groups]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Every random generator training draws from (dropout among them): torch's as tensors, Python's as JSON."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())}
    version, internal, gauss_next = random.getstate()
    return tensors, {"python": [version, list(internal), gauss_next]}


def load_rng_state(tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Restore what ``rng_state`` returned.

    Raises CheckpointError when the checkpoint holds CUDA generator states for
    a different number of GPUs than this machine has.
    """
    cuda = [tensors[f"cuda.{i}"] for i in range(sum(name.startswith("cuda.") for name in tensors))]
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    # Dropout on a GPU draws from its CUDA generator: resuming on another count of GPUs cannot be exact.
    if len(cuda) != gpus:
        raise CheckpointError(f"the checkpoint holds {len(cuda)} CUDA generator states, this machine has {gpus} GPUs")
    torch.set_rng_state(tensors["torch_cpu"])
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _contiguous(named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors takes plain tensors: no autograd, on the CPU, laid out contiguously.
    return {name: tensor.detach().cpu().contiguous() for name, tensor in named.items()}


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    # A new name (a file's, a rename's) is only durable once its directory is flushed.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
