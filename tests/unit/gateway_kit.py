"""Settings for tests that run the gateway in process, its services faked or absent."""

from __future__ import annotations

from services.common.config import Settings, read_settings

# What the gateway's settings require but a gateway test never reaches.
_UNREACHED = {
    "BRIGHTRUN_DATABASE_URL": "postgresql://unused",
    "BRIGHTRUN_S3_ENDPOINT": "http://unused",
    "BRIGHTRUN_S3_ACCESS_KEY": "unused",
    "BRIGHTRUN_S3_SECRET_KEY": "unused",
    "BRIGHTRUN_INTERNAL_TOKEN_SECRET": "gateway-test-internal-token-secret-0123456789",
}


def gateway_settings(**env: str) -> Settings:
    """Settings from ``env`` (``BRIGHTRUN_*`` names) over placeholders for what the test does not start."""
    return read_settings({**_UNREACHED, **env})
