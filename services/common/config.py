"""Settings shared by the services, read from the environment once at start-up.

Nothing below a service's wiring reads ``os.environ``: the ``__main__`` module
calls :func:`read_settings` and passes the frozen result down.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.common.base_models import ModelNotAllowed, is_local_model, resolve_base_model

# The embedded default's HS256 secret (``services.platform`` sets it); a
# deployment sets its own or a JWKS, and the gateway refuses to start with neither.
DEV_JWT_SECRET = "brightrun-development-secret-change-me"
# The longest an S3 (SigV4) presigned URL may be valid: 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class ConfigError(Exception):
    """Raised with every configuration problem at once."""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    nats_url: str
    s3_endpoint: str
    s3_public_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    datasets_bucket: str
    models_bucket: str
    default_base_model: str
    # Where local base models may come from; any other local path is refused.
    model_dirs: tuple[Path, ...]
    # HS256 secret of bearer tokens; empty when only the JWKS verifies them.
    jwt_secret: str = field(repr=False)
    # The identity provider's key set (an http(s) URL or a file) for RS256/ES256 tokens; empty for none.
    jwt_jwks: str
    # The ``aud`` every token must carry (Supabase: "authenticated") and the ``iss``, when set.
    jwt_audience: str
    jwt_issuer: str
    # Browser origins allowed to call the API (CORS); empty allows none.
    cors_origins: tuple[str, ...]
    http_host: str
    http_port: int
    dataset_addr: str
    job_addr: str
    artifact_addr: str
    billing_addr: str
    grpc_port: int
    dataset_max_line_bytes: int  # a longer dataset line is reported as line_too_long, never loaded whole
    max_request_body_bytes: int  # the gateway answers a bigger request body with 413
    # Whether job_svc asks the Hugging Face hub that a job's hub-id base model exists and is not gated.
    hub_check: bool = False
    # The hub token trainers download gated models with; job_svc only needs to know one is set.
    hf_token: str = field(default="", repr=False)
    # A job for a GPU type and count no agent was seen taking in this long is created with a warning.
    agent_seen_minutes: int = 10
    # Whether webhook endpoints may be plain http (on in the embedded default, for local receivers).
    webhooks_allow_http: bool = False
    # A webhook delivery is retried for this long after its event, the first retry this long after the
    # first failure (later ones up to 720 times that), and each attempt waits this long for an answer.
    webhook_retry_seconds: float = 86400.0
    webhook_first_retry_seconds: float = 5.0
    webhook_timeout_seconds: float = 10.0
    # A job still queued this long (no agent took it) gets one notification to its owner.
    queued_alert_minutes: float = 15.0
    # A running job publishes its cost so far at least this often, even when no step arrives.
    cost_tick_seconds: float = 60.0
    # How long a model's presigned download URLs are valid; S3 signatures allow at most 7 days.
    download_url_seconds: int = 24 * 3600
    # Where the process serves its Prometheus metrics (/metrics); port 0: not served.
    metrics_port: int = 0
    metrics_host: str = "0.0.0.0"


def read_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``env`` (default ``os.environ``); raises ConfigError listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    home = Path(env.get("BRIGHTRUN_HOME", ".brightrun")).resolve()

    def need(name: str) -> str:
        value = env.get(name, "")
        if not value:
            problems.append(f"{name} is not set")
        return value

    def port(name: str, default: int) -> int:
        raw = env.get(name, str(default))
        if not raw.isdigit() or not 0 <= int(raw) <= 65535:
            problems.append(f"{name}={raw!r} is not a port number (0-65535)")
            return default
        return int(raw)

    def size(name: str, default: int) -> int:
        raw = env.get(name, str(default))
        if not raw.isdigit() or int(raw) == 0:
            problems.append(f"{name}={raw!r} is not a size in bytes (a whole number above 0)")
            return default
        return int(raw)

    def minutes(name: str, default: int) -> int:
        raw = env.get(name, str(default))
        if not raw.isdigit() or int(raw) == 0:
            problems.append(f"{name}={raw!r} is not a number of minutes (a whole number above 0)")
            return default
        return int(raw)

    def positive(name: str, default: float, unit: str) -> float:
        raw = env.get(name, str(default))
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            problems.append(f"{name}={raw!r} is not a number of {unit} (a number above 0)")
            return default
        return value
    def seconds(name: str, default: int, maximum: int) -> int:
        raw = env.get(name, str(default))
        if not raw.isdigit() or not 1 <= int(raw) <= maximum:
            problems.append(f"{name}={raw!r} is not a number of seconds from 1 to {maximum}")
            return default
        return int(raw)

    def switch(name: str, default: bool) -> bool:
        raw = env.get(name, "on" if default else "off").lower()
        if raw not in ("on", "off"):
            problems.append(f"{name}={raw!r} must be on or off")
            return default
        return raw == "on"

    s3_endpoint = need("BRIGHTRUN_S3_ENDPOINT")
    jwks = env.get("BRIGHTRUN_JWT_JWKS", "")
    if jwks and not jwks.startswith(("http://", "https://")) and not Path(jwks).is_file():
        problems.append(f"BRIGHTRUN_JWT_JWKS={jwks!r} is neither an http(s) URL nor a file")
    default_base_model = env.get("BRIGHTRUN_DEFAULT_BASE_MODEL", str(home / "models" / "tiny-llama"))
    model_dirs = _model_dirs(env.get("BRIGHTRUN_MODEL_DIRS", ""), home, default_base_model)
    try:
        resolve_base_model(default_base_model, model_dirs)
    except ModelNotAllowed as exc:
        problems.append(f"BRIGHTRUN_DEFAULT_BASE_MODEL: {exc}")
    settings = Settings(
        home=home,
        database_url=need("BRIGHTRUN_DATABASE_URL"),
        nats_url=env.get("BRIGHTRUN_NATS_URL", "nats://127.0.0.1:4222"),
        s3_endpoint=s3_endpoint,
        s3_public_endpoint=env.get("BRIGHTRUN_S3_PUBLIC_ENDPOINT", s3_endpoint),
        s3_access_key=need("BRIGHTRUN_S3_ACCESS_KEY"),
        s3_secret_key=need("BRIGHTRUN_S3_SECRET_KEY"),
        s3_region=env.get("BRIGHTRUN_S3_REGION", "us-east-1"),
        datasets_bucket=env.get("BRIGHTRUN_DATASETS_BUCKET", "lora-datasets"),
        models_bucket=env.get("BRIGHTRUN_MODELS_BUCKET", "lora-models"),
        default_base_model=default_base_model,
        model_dirs=model_dirs,
        jwt_secret=env.get("BRIGHTRUN_JWT_SECRET", ""),
        jwt_jwks=jwks,
        jwt_audience=env.get("BRIGHTRUN_JWT_AUDIENCE", "authenticated"),
        jwt_issuer=env.get("BRIGHTRUN_JWT_ISSUER", ""),
        cors_origins=tuple(origin.strip() for origin in env.get("BRIGHTRUN_CORS_ORIGINS", "").split(",") if origin.strip()),
        http_host=env.get("BRIGHTRUN_HTTP_HOST", "127.0.0.1"),
        http_port=port("BRIGHTRUN_HTTP_PORT", 8080),
        dataset_addr=env.get("BRIGHTRUN_DATASET_ADDR", "127.0.0.1:50051"),
        job_addr=env.get("BRIGHTRUN_JOB_ADDR", "127.0.0.1:50052"),
        artifact_addr=env.get("BRIGHTRUN_ARTIFACT_ADDR", "127.0.0.1:50053"),
        billing_addr=env.get("BRIGHTRUN_BILLING_ADDR", "127.0.0.1:50054"),
        grpc_port=port("BRIGHTRUN_GRPC_PORT", 0),
        dataset_max_line_bytes=size("BRIGHTRUN_DATASET_MAX_LINE_BYTES", 8 << 20),
        # API bodies are small JSON; datasets go straight to the object store by presigned URL.
        max_request_body_bytes=size("BRIGHTRUN_MAX_REQUEST_BODY_BYTES", 1 << 20),
        hub_check=switch("BRIGHTRUN_HUB_CHECK", False),
        hf_token=env.get("HF_TOKEN", ""),
        agent_seen_minutes=minutes("BRIGHTRUN_AGENT_SEEN_MINUTES", 10),
        webhooks_allow_http=switch("BRIGHTRUN_WEBHOOKS_ALLOW_HTTP", False),
        webhook_retry_seconds=positive("BRIGHTRUN_WEBHOOK_RETRY_SECONDS", 86400.0, "seconds"),
        webhook_first_retry_seconds=positive("BRIGHTRUN_WEBHOOK_FIRST_RETRY_SECONDS", 5.0, "seconds"),
        webhook_timeout_seconds=positive("BRIGHTRUN_WEBHOOK_TIMEOUT_SECONDS", 10.0, "seconds"),
        queued_alert_minutes=positive("BRIGHTRUN_QUEUED_ALERT_MINUTES", 15.0, "minutes"),
        cost_tick_seconds=positive("BRIGHTRUN_COST_TICK_SECONDS", 60.0, "seconds"),
        download_url_seconds=seconds("BRIGHTRUN_DOWNLOAD_URL_SECONDS", 24 * 3600, MAX_PRESIGN_SECONDS),
        metrics_port=port("BRIGHTRUN_METRICS_PORT", 0),
        metrics_host=env.get("BRIGHTRUN_METRICS_HOST", "0.0.0.0"),
    )
    if problems:
        raise ConfigError("; ".join(problems))
    return settings


def _model_dirs(raw: str, home: Path, default_base_model: str) -> tuple[Path, ...]:
    """BRIGHTRUN_MODEL_DIRS (os.pathsep-separated), else ``home/models`` and the
    default base model's directory when that is local; each as its real path."""
    if raw:
        dirs = [Path(part) for part in raw.split(os.pathsep) if part]
    else:
        dirs = [home / "models"]
        if is_local_model(default_base_model):
            dirs.append(Path(default_base_model).expanduser().parent)
    return tuple(dict.fromkeys(Path(os.path.realpath(d.expanduser())) for d in dirs))
