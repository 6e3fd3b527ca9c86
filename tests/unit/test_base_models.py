"""The base-model rule: hub ids pass, local models only from the allowed directories."""

import os

import pytest

from services.common.base_models import (
    ModelNotAllowed, check_base_model, resolve_base_model, shown_in_json, shown_to_callers,
)
from services.common.config import ConfigError, read_settings
from services.common.errors import InvalidArgument

from tests.unit.test_config import BASE


@pytest.fixture
def models(tmp_path):
    allowed = tmp_path / "models"
    (allowed / "tiny").mkdir(parents=True)
    return allowed


@pytest.mark.parametrize("hub_id", ["gpt2", "meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-0.5B-Instruct", "org_1/m.v2"])
def test_a_hub_id_passes_unchanged(models, hub_id, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_base_model(hub_id, [models]) == hub_id


def test_a_model_inside_an_allowed_directory_resolves_to_its_real_path(models, tmp_path, monkeypatch):
    assert resolve_base_model(str(models / "tiny"), [models]) == str(models / "tiny")
    # Not there yet (a GPU node may hold models this machine lacks): still inside.
    assert resolve_base_model(str(models / "later"), [models]) == str(models / "later")
    monkeypatch.chdir(tmp_path)
    assert resolve_base_model("./models/tiny", [models]) == str(models / "tiny")
    # Hub-shaped, but from_pretrained would read the local directory first.
    assert resolve_base_model("models/tiny", [models]) == str(models / "tiny")


@pytest.mark.parametrize("value", ["/etc", "/proc/self/root", "/proc/self/root/etc", "/proc/self/environ", "~", "/"])
def test_a_path_outside_the_allowed_directories_is_refused(models, value):
    with pytest.raises(ModelNotAllowed) as info:
        resolve_base_model(value, [models])
    # It names the models there, not the server's directories.
    assert "models there: tiny" in str(info.value) and "hub id" in str(info.value)
    assert str(models) not in str(info.value)


def test_a_symlink_that_leaves_the_allowed_directory_is_refused(models, tmp_path):
    (tmp_path / "secret").mkdir()
    os.symlink(tmp_path / "secret", models / "escape")
    os.symlink(models / "tiny", models / "alias")
    with pytest.raises(ModelNotAllowed):
        resolve_base_model(str(models / "escape"), [models])
    assert resolve_base_model(str(models / "alias"), [models]) == str(models / "tiny")


def test_dot_dot_and_control_characters_are_refused(models):
    for value in (f"{models}/../models/tiny", f"{models}/tiny/../../x", "../etc", "org/..", "a..b/c"):
        with pytest.raises(ModelNotAllowed):
            resolve_base_model(value, [models])
    with pytest.raises(ModelNotAllowed, match="control characters"):
        resolve_base_model(f"{models}/tiny\x00", [models])


def test_a_hub_shaped_name_of_an_existing_relative_path_is_a_local_path(models, monkeypatch):
    monkeypatch.chdir("/")
    with pytest.raises(ModelNotAllowed):
        resolve_base_model("etc", [models])
    with pytest.raises(ModelNotAllowed):
        resolve_base_model("proc/self", [models])


def test_no_configured_directory_refuses_every_local_path(models):
    with pytest.raises(ModelNotAllowed, match="BRIGHTRUN_MODEL_DIRS"):
        resolve_base_model(str(models / "tiny"), [])


def test_a_request_gets_an_invalid_argument_naming_the_field(models):
    with pytest.raises(InvalidArgument) as info:
        check_base_model("/etc", [models], field="hyperparameters.base_model")
    assert list(info.value.details) == ["hyperparameters.base_model"]
    assert "/etc" in info.value.details["hyperparameters.base_model"][0]


def test_the_model_directories_default_to_home_models_and_the_default_models_directory(tmp_path):
    default = tmp_path / "elsewhere" / "tiny-llama"
    settings = read_settings(BASE | {"BRIGHTRUN_HOME": str(tmp_path / "home"),
                                     "BRIGHTRUN_DEFAULT_BASE_MODEL": str(default)})
    assert settings.model_dirs == (tmp_path / "home" / "models", tmp_path / "elsewhere")
    hub = read_settings(BASE | {"BRIGHTRUN_HOME": str(tmp_path), "BRIGHTRUN_DEFAULT_BASE_MODEL": "org/model"})
    assert hub.model_dirs == (tmp_path / "models",)
    listed = read_settings(BASE | {"BRIGHTRUN_MODEL_DIRS": os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]),
                                   "BRIGHTRUN_DEFAULT_BASE_MODEL": str(tmp_path / "b" / "m")})
    assert listed.model_dirs == (tmp_path / "a", tmp_path / "b")


def test_a_local_default_base_model_outside_the_model_directories_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="BRIGHTRUN_DEFAULT_BASE_MODEL"):
        read_settings(BASE | {"BRIGHTRUN_MODEL_DIRS": str(tmp_path / "a"), "BRIGHTRUN_DEFAULT_BASE_MODEL": "/etc"})


def test_a_local_model_is_shown_by_its_name_inside_its_directory_which_resolves_back(models, tmp_path, monkeypatch):
    monkeypatch.chdir("/")  # "tiny" is no relative path from here: the name is found in the model directory
    resolved = resolve_base_model(str(models / "tiny"), [models])
    assert shown_to_callers(resolved, [models]) == "tiny"
    assert resolve_base_model("tiny", [models]) == resolved
    assert shown_to_callers({"m": ["meta-llama/Llama-3.1-8B"]}, [models]) == {"m": ["meta-llama/Llama-3.1-8B"]}
    quoted = shown_to_callers([f"{resolved!r} has no config.json"], [models])
    assert quoted == ["'tiny' has no config.json"]
    # A hub id with no such local directory stays a hub id.
    assert resolve_base_model("gpt2", [models]) == "gpt2"


def test_a_json_document_shows_every_local_model_by_name_as_the_walk_does(models, tmp_path):
    import json

    odd = tmp_path / 'qu"ote\\dir é'
    (odd / "m").mkdir(parents=True)
    dirs = [models, odd]
    value = {"a": [str(models / "tiny"), {"b": f"{odd / 'm'} failed"}], "c": 'x"', "d": str(tmp_path / "tiny")}
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(shown_in_json(text, dirs)) == shown_to_callers(value, dirs)
    assert json.loads(shown_in_json(text, dirs))["a"] == ["tiny", {"b": "m failed"}]
