"""Where the client finds the API and its token.

Environment variables win over the config file, which wins over the defaults:

- ``BRIGHTRUN_URL`` / ``url``: the gateway, default ``http://127.0.0.1:8080``
- ``BRIGHTRUN_TOKEN`` / ``token``: the bearer token
- ``BRIGHTRUN_GPU`` / ``gpu``: the CLI's default ``--gpu`` (``TYPE`` or ``TYPExN``), default ``CPU``

The file is TOML at ``$BRIGHTRUN_CONFIG``, else
``$XDG_CONFIG_HOME/brightrun/config.toml`` (``~/.config/brightrun/config.toml``)::

    url = "https://brightrun.example.com"
    token = "eyJ..."
    gpu = "A100x2"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_GPU = "CPU"


@dataclass(frozen=True)
class Config:
    url: str = DEFAULT_URL
    token: str | None = None
    gpu: str = DEFAULT_GPU


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("BRIGHTRUN_CONFIG"):
        return Path(env["BRIGHTRUN_CONFIG"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "brightrun" / "config.toml"


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """The configuration from the environment and the config file (absent file: defaults)."""
    env = os.environ if env is None else env
    path = config_path(env)
    try:
        with path.open("rb") as handle:
            file = tomllib.load(handle)
    except FileNotFoundError:
        file = {}
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None

    def pick(variable: str, key: str, default: str | None) -> str | None:
        value = env.get(variable) or file.get(key)
        return str(value) if value else default

    return Config(
        url=pick("BRIGHTRUN_URL", "url", DEFAULT_URL).rstrip("/"),
        token=pick("BRIGHTRUN_TOKEN", "token", None),
        gpu=pick("BRIGHTRUN_GPU", "gpu", DEFAULT_GPU),
    )
