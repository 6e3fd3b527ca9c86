import pytest

from services.common.config import ConfigError, read_settings

BASE = {
    "BRIGHTRUN_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:5432/db",
    "BRIGHTRUN_S3_ENDPOINT": "http://127.0.0.1:8333",
    "BRIGHTRUN_S3_ACCESS_KEY": "k",
    "BRIGHTRUN_S3_SECRET_KEY": "s",
    "BRIGHTRUN_INTERNAL_TOKEN_SECRET": "config-test-internal-token-secret-0123456789",
}


def test_defaults_fill_what_is_optional():
    settings = read_settings(BASE)
    # No token secret by default: only the embedded default sets its development one.
    assert settings.jwt_secret == ""
    assert settings.jwt_audience == "authenticated"
    assert settings.cors_origins == ()
    assert settings.s3_public_endpoint == BASE["BRIGHTRUN_S3_ENDPOINT"]
    assert settings.http_port == 8080
    assert settings.datasets_bucket == "lora-datasets"
    assert settings.dataset_max_line_bytes == 8 * 1024 * 1024
    assert settings.max_request_body_bytes == 1024 * 1024


def test_the_internal_token_secret_is_required_and_long():
    settings = read_settings(BASE)
    assert settings.internal_token_secret == BASE["BRIGHTRUN_INTERNAL_TOKEN_SECRET"]
    assert settings.internal_token_secret not in repr(settings)
    for value, why in (("", "is not set"), ("too-short", "is shorter than 32 characters")):
        with pytest.raises(ConfigError, match=f"BRIGHTRUN_INTERNAL_TOKEN_SECRET {why}"):
            read_settings(BASE | {"BRIGHTRUN_INTERNAL_TOKEN_SECRET": value})


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        read_settings({"BRIGHTRUN_HTTP_PORT": "eighty"})
    message = str(info.value)
    for name in ("BRIGHTRUN_INTERNAL_TOKEN_SECRET", "BRIGHTRUN_S3_ENDPOINT", "BRIGHTRUN_S3_ACCESS_KEY", "BRIGHTRUN_HTTP_PORT"):
        assert name in message


def test_a_trainer_agent_starts_without_any_credential_of_the_control_plane():
    settings = read_settings({"BRIGHTRUN_NATS_URL": "nats://nats:4222"}, agent=True)
    assert settings.nats_url == "nats://nats:4222"
    assert (settings.s3_access_key, settings.s3_secret_key, settings.database_url) == ("", "", "")
    # Its own settings are still checked.
    with pytest.raises(ConfigError, match="BRIGHTRUN_METRICS_PORT"):
        read_settings({"BRIGHTRUN_METRICS_PORT": "ninety"}, agent=True)


def test_an_agents_grant_lasts_at_most_what_s3_allows():
    assert read_settings(BASE).agent_grant_seconds == 7 * 24 * 3600
    assert read_settings(BASE | {"BRIGHTRUN_AGENT_GRANT_SECONDS": "3600"}).agent_grant_seconds == 3600
    with pytest.raises(ConfigError, match="BRIGHTRUN_AGENT_GRANT_SECONDS"):
        read_settings(BASE | {"BRIGHTRUN_AGENT_GRANT_SECONDS": str(8 * 24 * 3600)})


def test_the_dataset_line_cap_is_a_positive_size():
    assert read_settings(BASE | {"BRIGHTRUN_DATASET_MAX_LINE_BYTES": "1024"}).dataset_max_line_bytes == 1024
    for bad in ("0", "-5", "8MB"):
        with pytest.raises(ConfigError) as info:
            read_settings(BASE | {"BRIGHTRUN_DATASET_MAX_LINE_BYTES": bad})
        assert "BRIGHTRUN_DATASET_MAX_LINE_BYTES" in str(info.value)


def test_the_request_body_cap_is_a_positive_size():
    assert read_settings(BASE | {"BRIGHTRUN_MAX_REQUEST_BODY_BYTES": "4096"}).max_request_body_bytes == 4096
    with pytest.raises(ConfigError) as info:
        read_settings(BASE | {"BRIGHTRUN_MAX_REQUEST_BODY_BYTES": "1MiB"})
    assert "BRIGHTRUN_MAX_REQUEST_BODY_BYTES" in str(info.value)


def test_launch_check_settings_default_off_and_ten_minutes_and_bad_values_are_reported():
    settings = read_settings(BASE)
    assert (settings.hub_check, settings.hf_token, settings.agent_seen_minutes) == (False, "", 10)
    assert "secret-token" not in repr(read_settings(BASE | {"HF_TOKEN": "secret-token"}))
    on = read_settings(BASE | {"BRIGHTRUN_HUB_CHECK": "on", "BRIGHTRUN_AGENT_SEEN_MINUTES": "3"})
    assert (on.hub_check, on.agent_seen_minutes) == (True, 3)
    with pytest.raises(ConfigError) as info:
        read_settings(BASE | {"BRIGHTRUN_HUB_CHECK": "yes", "BRIGHTRUN_AGENT_SEEN_MINUTES": "0"})
    assert "BRIGHTRUN_HUB_CHECK" in str(info.value) and "BRIGHTRUN_AGENT_SEEN_MINUTES" in str(info.value)


def test_a_jwks_that_is_neither_a_url_nor_a_file_is_refused_and_origins_are_a_list(tmp_path):
    with pytest.raises(ConfigError, match="BRIGHTRUN_JWT_JWKS"):
        read_settings({**BASE, "BRIGHTRUN_JWT_JWKS": str(tmp_path / "missing.json")})
    settings = read_settings({**BASE, "BRIGHTRUN_CORS_ORIGINS": "https://a.example, https://b.example"})
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_webhook_settings_default_to_https_only_a_day_of_retries_and_bad_values_are_reported():
    settings = read_settings(BASE)
    assert (settings.webhooks_allow_http, settings.webhook_retry_seconds, settings.webhook_first_retry_seconds,
            settings.webhook_timeout_seconds) == (False, 86400.0, 5.0, 10.0)
    quick = read_settings(BASE | {"BRIGHTRUN_WEBHOOKS_ALLOW_HTTP": "on", "BRIGHTRUN_WEBHOOK_FIRST_RETRY_SECONDS": "0.2"})
    assert (quick.webhooks_allow_http, quick.webhook_first_retry_seconds) == (True, 0.2)
    bad = {"BRIGHTRUN_WEBHOOK_RETRY_SECONDS": "0", "BRIGHTRUN_WEBHOOK_FIRST_RETRY_SECONDS": "nan",
           "BRIGHTRUN_WEBHOOK_TIMEOUT_SECONDS": "10s"}
    with pytest.raises(ConfigError) as info:
        read_settings(BASE | bad)
    assert all(name in str(info.value) for name in bad)


def test_the_queue_alert_and_cost_tick_bounds_default_and_bad_ones_are_named():
    settings = read_settings(BASE)
    assert (settings.queued_alert_minutes, settings.cost_tick_seconds) == (15.0, 60.0)
    short = read_settings(BASE | {"BRIGHTRUN_QUEUED_ALERT_MINUTES": "0.5", "BRIGHTRUN_COST_TICK_SECONDS": "2"})
    assert (short.queued_alert_minutes, short.cost_tick_seconds) == (0.5, 2.0)
    with pytest.raises(ConfigError) as info:
        read_settings(BASE | {"BRIGHTRUN_QUEUED_ALERT_MINUTES": "soon", "BRIGHTRUN_COST_TICK_SECONDS": "-1"})
    assert "BRIGHTRUN_QUEUED_ALERT_MINUTES='soon'" in str(info.value)
    assert "BRIGHTRUN_COST_TICK_SECONDS='-1'" in str(info.value)


def test_download_urls_last_a_day_by_default_and_at_most_the_seven_days_s3_allows():
    assert read_settings(BASE).download_url_seconds == 86400
    assert read_settings(BASE | {"BRIGHTRUN_DOWNLOAD_URL_SECONDS": "600"}).download_url_seconds == 600
    with pytest.raises(ConfigError) as info:
        read_settings(BASE | {"BRIGHTRUN_DOWNLOAD_URL_SECONDS": str(8 * 86400)})
    assert "BRIGHTRUN_DOWNLOAD_URL_SECONDS" in str(info.value) and "604800" in str(info.value)


def test_generation_waits_thirty_seconds_for_an_agent_and_allows_two_at_once_per_user_by_default():
    settings = read_settings(BASE)
    assert (settings.generate_timeout_seconds, settings.generate_concurrency_per_user) == (30.0, 2)
    with pytest.raises(ConfigError) as info:
        read_settings(BASE | {"BRIGHTRUN_GENERATE_TIMEOUT_SECONDS": "0", "BRIGHTRUN_GENERATE_CONCURRENCY_PER_USER": "-1"})
    assert "BRIGHTRUN_GENERATE_TIMEOUT_SECONDS" in str(info.value)
    assert "BRIGHTRUN_GENERATE_CONCURRENCY_PER_USER" in str(info.value)
