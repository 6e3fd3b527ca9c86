import subprocess
import sys
import time
import uuid

import jwt
import pytest

from gateway.auth import authenticate, mint_token
from gateway.errors import HttpError

SECRET = "test-secret-that-is-long-enough-for-hs256"


def _rejection(header: str | None) -> str:
    with pytest.raises(HttpError) as caught:
        authenticate(header, SECRET)
    assert caught.value.status == 401
    assert caught.value.error == "Unauthorized"
    return caught.value.details


def test_a_minted_token_authenticates_its_user():
    user = str(uuid.uuid4())
    assert authenticate(f"Bearer {mint_token(user, SECRET)}", SECRET) == user


def test_a_missing_header_is_401_saying_so():
    assert "Missing Authorization header" in _rejection(None)


def test_a_non_bearer_scheme_is_401():
    assert "Bearer" in _rejection(f"Basic {mint_token(str(uuid.uuid4()), SECRET)}")


def test_a_forged_signature_is_401():
    forged = mint_token(str(uuid.uuid4()), "another-secret-that-is-long-enough-for-hs256")
    assert "signature" in _rejection(f"Bearer {forged}")


def test_an_expired_token_is_401():
    expired = jwt.encode({"sub": str(uuid.uuid4()), "exp": int(time.time()) - 5}, SECRET, algorithm="HS256")
    assert "expired" in _rejection(f"Bearer {expired}")


def test_a_token_without_exp_is_401():
    forever = jwt.encode({"sub": str(uuid.uuid4())}, SECRET, algorithm="HS256")
    assert "'exp'" in _rejection(f"Bearer {forever}")


def test_a_subject_that_is_not_a_uuid_is_401():
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert "UUID" in _rejection(f"Bearer {token}")


def test_garbage_is_401():
    assert "invalid" in _rejection("Bearer not.a.jwt")


def test_the_token_cli_signs_with_the_configured_secret():
    user = str(uuid.uuid4())
    env = {"BRIGHTRUN_JWT_SECRET": SECRET, "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-m", "gateway.token", "--user", user, "--ttl", "60"],
        env=env, capture_output=True, text=True, check=True,
    )
    claims = jwt.decode(out.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == user
    assert 0 < claims["exp"] - time.time() <= 60
