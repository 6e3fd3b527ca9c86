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
# An HS256 key shorter than this is guessable: BRIGHTRUN_INTERNAL_TOKEN_SECRET is refused (services.common.identity).
MIN_SECRET_LENGTH = 32
# The longest an S3 (SigV4) presigned URL may be valid: 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# The control plane's credentials. A trainer agent is given none of them: it
# reaches the object store only by the grants its assignments carry
# (services.common.grants), and touches no database.
SERVICE_SECRETS = ("BRIGHTRUN_DATABASE_URL", "BRIGHTRUN_S3_ACCESS_KEY", "BRIGHTRUN_S3_SECRET_KEY",
                   "BRIGHTRUN_INTERNAL_TOKEN_SECRET", "BRIGHTRUN_JWT_SECRET")


class ConfigError(Exception):
    """Raised with every configuration problem at once."""


@dataclass(frozen=True)
class GrpcTls:
    """TLS of this process's gRPC server and of its calls to the other services (PEM file paths).

    Files, not their contents: cert-manager renews a certificate by rewriting its secret's files;
    a server reads them again for each new connection, a caller when it restarts. Absent from Settings: plaintext (the embedded default).
    """

    # The CA that signed the servers' certificates (and, with require_client_cert, the clients').
    ca: Path
    # This process's server certificate and key; None for a process that only calls (the gateway).
    cert: Path | None = None
    key: Path | None = None
    # The certificate and key this process presents when it calls another service (mutual TLS).
    client_cert: Path | None = None
    client_key: Path | None = None
    # Whether the server refuses a caller without a certificate the CA signed.
    require_client_cert: bool = False
    # The name checked in a server's certificate instead of the address's host; empty: the host.
    server_name: str = ""
    # A plaintext port serving grpc.health.v1 alone, for the kubelet's gRPC probes (which speak no TLS); 0: none.
    health_port: int = 0


@dataclass(frozen=True)
class Settings:
    home: Path
    # The PostgreSQL URL of a service, as its own role (services.common.db_roles); only the services
    # need one (services.common.runtime.run_main refuses to start without it): the gateway and agents hold none.
    database_url: str
    nats_url: str
    # The NATS identity this process logs in as (services.common.nats_access) and its password.
    nats_user: str
    nats_password: str
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
    # HS256 key of the internal user credentials services accept from each other (services.common.identity).
    internal_token_secret: str = field(repr=False)
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
    # How long an assignment's object-store grant (services.common.grants) lasts from when it is queued.
    agent_grant_seconds: int = MAX_PRESIGN_SECONDS
    # Where the process serves its Prometheus metrics (/metrics); port 0: not served.
    metrics_port: int = 0
    metrics_host: str = "0.0.0.0"
    # A generation request (POST /api/models/{id}/generate) no trainer agent took, or answered, in this long is
    # refused as no_agent_available; each user may have this many waiting or running at once.
    generate_timeout_seconds: float = 30.0
    generate_concurrency_per_user: int = 2
    # TLS for gRPC (BRIGHTRUN_GRPC_TLS_*); None: plaintext, the embedded default.
    grpc_tls: GrpcTls | None = None


def read_settings(env: Mapping[str, str] | None = None, *, agent: bool = False) -> Settings:
    """Build Settings from ``env`` (default ``os.environ``); raises ConfigError listing every problem.

    ``agent``: for a trainer agent, which needs none of SERVICE_SECRETS nor the
    object store's address (they stay empty); the control plane needs them all.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    home = Path(env.get("BRIGHTRUN_HOME", ".brightrun")).resolve()

    def need(name: str) -> str:
        value = env.get(name, "")
        if not value and not (agent and (name in SERVICE_SECRETS or name == "BRIGHTRUN_S3_ENDPOINT")):
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

    def count(name: str, default: int) -> int:
        raw = env.get(name, str(default))
        if not raw.isdigit() or int(raw) == 0:
            problems.append(f"{name}={raw!r} is not a whole number above 0")
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
    internal_token_secret = need("BRIGHTRUN_INTERNAL_TOKEN_SECRET")
    if internal_token_secret and len(internal_token_secret) < MIN_SECRET_LENGTH:
        problems.append(f"BRIGHTRUN_INTERNAL_TOKEN_SECRET is shorter than {MIN_SECRET_LENGTH} characters; "
                        "generate one with `openssl rand -base64 48`")
    settings = Settings(
        home=home,
        database_url=env.get("BRIGHTRUN_DATABASE_URL", ""),
        nats_url=env.get("BRIGHTRUN_NATS_URL", "nats://127.0.0.1:4222"),
        nats_user=env.get("BRIGHTRUN_NATS_USER", ""),
        nats_password=env.get("BRIGHTRUN_NATS_PASSWORD", ""),
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
        internal_token_secret=internal_token_secret,
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
        agent_grant_seconds=seconds("BRIGHTRUN_AGENT_GRANT_SECONDS", MAX_PRESIGN_SECONDS, MAX_PRESIGN_SECONDS),
        metrics_port=port("BRIGHTRUN_METRICS_PORT", 0),
        metrics_host=env.get("BRIGHTRUN_METRICS_HOST", "0.0.0.0"),
        generate_timeout_seconds=positive("BRIGHTRUN_GENERATE_TIMEOUT_SECONDS", 30.0, "seconds"),
        generate_concurrency_per_user=count("BRIGHTRUN_GENERATE_CONCURRENCY_PER_USER", 2),
        grpc_tls=_grpc_tls(env, problems, switch("BRIGHTRUN_GRPC_TLS_REQUIRE_CLIENT_CERT", False),
                           port("BRIGHTRUN_GRPC_TLS_HEALTH_PORT", 0)),
    )
    if problems:
        raise ConfigError("; ".join(problems))
    return settings


# What each PEM file must hold: the marker its block starts with (any private key type for a key).
_PEM_MARKERS = {"certificate": b"-----BEGIN CERTIFICATE-----", "private key": b"PRIVATE KEY-----"}


def _grpc_tls(
    env: Mapping[str, str], problems: list[str], require_client_cert: bool, health_port: int
) -> GrpcTls | None:
    """BRIGHTRUN_GRPC_TLS_*: every file must exist and hold PEM of its kind, a key needs its
    certificate and the reverse, and TLS of any kind needs the CA; None when none is set."""

    def pem(name: str, kind: str) -> Path | None:
        raw = env.get(name, "")
        if not raw:
            return None
        path = Path(raw)
        try:
            content = path.read_bytes()
        except OSError as exc:
            problems.append(f"{name}={raw!r} cannot be read ({exc.strerror}): point it at a PEM {kind} file")
            return None
        if _PEM_MARKERS[kind] not in content:
            problems.append(f"{name}={raw!r} holds no PEM {kind} (a '-----BEGIN ...{kind.upper()}-----' block)")
        return path

    ca = pem("BRIGHTRUN_GRPC_TLS_CA", "certificate")
    cert = pem("BRIGHTRUN_GRPC_TLS_CERT", "certificate")
    key = pem("BRIGHTRUN_GRPC_TLS_KEY", "private key")
    client_cert = pem("BRIGHTRUN_GRPC_TLS_CLIENT_CERT", "certificate")
    client_key = pem("BRIGHTRUN_GRPC_TLS_CLIENT_KEY", "private key")
    server_name = env.get("BRIGHTRUN_GRPC_TLS_SERVER_NAME", "")
    for cert_name, key_name in (
        ("BRIGHTRUN_GRPC_TLS_CERT", "BRIGHTRUN_GRPC_TLS_KEY"),
        ("BRIGHTRUN_GRPC_TLS_CLIENT_CERT", "BRIGHTRUN_GRPC_TLS_CLIENT_KEY"),
    ):
        if bool(env.get(cert_name)) != bool(env.get(key_name)):
            have, missing = (cert_name, key_name) if env.get(cert_name) else (key_name, cert_name)
            problems.append(f"{have} is set without {missing}: set both (the certificate and its private key) or neither")
    for needs_server, wanted in (("BRIGHTRUN_GRPC_TLS_REQUIRE_CLIENT_CERT=on", require_client_cert),
                                 (f"BRIGHTRUN_GRPC_TLS_HEALTH_PORT={health_port}", health_port)):
        if wanted and not env.get("BRIGHTRUN_GRPC_TLS_CERT"):
            problems.append(f"{needs_server} needs a server certificate: "
                            "set BRIGHTRUN_GRPC_TLS_CERT and BRIGHTRUN_GRPC_TLS_KEY")
    configured = [name for name in (
        "BRIGHTRUN_GRPC_TLS_CERT", "BRIGHTRUN_GRPC_TLS_KEY", "BRIGHTRUN_GRPC_TLS_CLIENT_CERT",
        "BRIGHTRUN_GRPC_TLS_CLIENT_KEY", "BRIGHTRUN_GRPC_TLS_SERVER_NAME", "BRIGHTRUN_GRPC_TLS_HEALTH_PORT",
    ) if env.get(name)] + (["BRIGHTRUN_GRPC_TLS_REQUIRE_CLIENT_CERT"] if require_client_cert else [])
    if not env.get("BRIGHTRUN_GRPC_TLS_CA"):
        if configured:
            problems.append(f"{', '.join(configured)} set without BRIGHTRUN_GRPC_TLS_CA: set it to the CA certificate "
                            "that signed the services' certificates, which callers verify servers with"
                            + (" and servers verify client certificates with" if require_client_cert else ""))
        return None
    if ca is None:
        return None
    return GrpcTls(ca=ca, cert=cert, key=key, client_cert=client_cert, client_key=client_key,
                   require_client_cert=require_client_cert, server_name=server_name, health_port=health_port)


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
