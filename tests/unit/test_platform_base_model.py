"""Which base model the embedded default trains: SmolLM2 under ``make up``/``make demo``
(unless BRIGHTRUN_DEFAULT_BASE_MODEL names another), made by the matching child process."""

from __future__ import annotations

import sys

from services.common.gguf_import import EMBEDDED_MODEL_NAME
from services.platform import launcher
from services.platform.__main__ import _platform


def test_up_and_demo_default_to_smollm2_in_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv("BRIGHTRUN_DEFAULT_BASE_MODEL", raising=False)
    platform = _platform(tmp_path)
    assert platform._base_env["BRIGHTRUN_DEFAULT_BASE_MODEL"] == str(tmp_path / "models" / EMBEDDED_MODEL_NAME)
    monkeypatch.setenv("BRIGHTRUN_DEFAULT_BASE_MODEL", "org/model")
    assert _platform(tmp_path)._base_env["BRIGHTRUN_DEFAULT_BASE_MODEL"] == "org/model"


def test_a_missing_model_is_made_by_the_child_its_name_calls_for(tmp_path, monkeypatch):
    commands = []

    class Ran:
        returncode, stdout, stderr = 0, "", ""

    monkeypatch.setattr(launcher.subprocess, "run", lambda command, **kw: commands.append(command) or Ran())
    launcher.build_model(tmp_path / EMBEDDED_MODEL_NAME, {})
    launcher.build_model(tmp_path / "tiny-llama", {})
    assert commands == [
        [sys.executable, "-m", "services.common.gguf_import", "prepare", str(tmp_path / EMBEDDED_MODEL_NAME)],
        [sys.executable, "-m", "services.common.tiny_model", str(tmp_path / "tiny-llama")],
    ]
