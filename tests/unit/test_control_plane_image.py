"""The control-plane image holds no torch, PEFT, DeepSpeed or accelerate: the
gateway and the four services import none of them (each entry module the
manifests run, imported in a fresh interpreter), pyproject.toml keeps them
in the `trainer` extra, and the Dockerfile's control-plane target installs
without it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from services.platform.launcher import SERVICES

ROOT = Path(__file__).resolve().parents[2]
TRAINER_ONLY = {"torch", "peft", "deepspeed", "accelerate", "safetensors"}
# dataset_svc counts tokens with the base model's tokenizer (transformers' tokenizer classes, no torch).
TOKENIZING = {"dataset_svc"}
ENTRY_MODULES = ["gateway", *(f"services.{s}" for s in SERVICES)]

# Imports ``<module>.__main__`` as ``python -m`` would run it, but with the
# services' run_main (which would serve until signalled) replaced by a no-op,
# then prints the top-level packages now imported.
_IMPORT = """
import importlib, json, sys
import services.common.runtime as runtime
runtime.run_main = lambda start: None
importlib.import_module(sys.argv[1] + ".__main__")
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _imported_by(module: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT, module], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_a_control_plane_process_imports_no_training_library(module):
    imported = _imported_by(module)
    assert "services" in imported  # the entry module really was imported
    forbidden = TRAINER_ONLY | ({"transformers"} if module.rsplit(".", 1)[-1] not in TOKENIZING else set())
    assert not imported & forbidden, f"{module} imports {sorted(imported & forbidden)}"


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[=<>~! ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_training_libraries_are_only_in_the_trainer_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not _requirement_names(project["dependencies"]) & TRAINER_ONLY
    trainer = project["optional-dependencies"]["trainer"]
    assert _requirement_names(trainer) >= TRAINER_ONLY - {"safetensors"}
    assert "torch==2.13.0" in trainer


def _stage(dockerfile: str, name: str) -> str:
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S)
    assert match, f"the Dockerfile has no {name} target"
    return match.group(1)


def test_the_dockerfile_installs_the_trainer_extra_only_in_the_trainer_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = {name: re.findall(r"pip install (?:--\S+ )*(\S+)", _stage(dockerfile, name)) for name in ("control-plane", "trainer")}
    assert installs["control-plane"] and all(target == "." for target in installs["control-plane"])
    assert "'.[trainer]'" in installs["trainer"]
    assert "BRIGHTRUN_WEB_DIST" in _stage(dockerfile, "control-plane"), "the gateway serves the built dashboard"
