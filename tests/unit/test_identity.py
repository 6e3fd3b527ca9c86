"""The internal user credential: what it speaks for, and every way it is refused."""

from __future__ import annotations

import time

import jwt
import pytest

from services.common import identity
from services.common.config import MIN_SECRET_LENGTH
from services.common.errors import Unauthenticated
from services.common.identity import AUDIENCE, InternalTokens

SECRET = "identity-test-internal-token-secret-0123456789"


def test_a_minted_credential_speaks_for_its_user_until_it_expires():
    tokens = InternalTokens(SECRET)
    token = tokens.mint("alice")
    assert tokens.verify(token) == "alice"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["exp"] - claims["iat"] == identity.TTL_SECONDS


# Each token is made when its test runs (not at collection, which may be many minutes earlier).
@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: InternalTokens("another-stacks-internal-token-secret-0123456789").mint("alice"), "signature"),
        (lambda: InternalTokens(SECRET).mint("alice", now=time.time() - identity.TTL_SECONDS - 1), "expired"),
        (lambda: jwt.encode({"sub": "alice", "aud": "authenticated", "iat": int(time.time()),
                             "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"), AUDIENCE),
        (lambda: jwt.encode({"sub": "alice", "aud": AUDIENCE, "iat": int(time.time())}, SECRET, algorithm="HS256"),
         "exp"),
        (lambda: jwt.encode({"sub": "alice", "aud": AUDIENCE, "iat": 0, "exp": 2**40}, None, algorithm="none"),
         "invalid"),
        (lambda: "alice", "invalid"),
    ],
    ids=["forged", "expired", "wrong-audience", "no-expiry", "unsigned", "a-bare-user-id"],
)
def test_a_credential_that_does_not_verify_is_unauthenticated_saying_why(make, why):
    with pytest.raises(Unauthenticated) as info:
        InternalTokens(SECRET).verify(make())
    assert why in info.value.message


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError, match=str(MIN_SECRET_LENGTH)):
        InternalTokens("short")


def test_verifying_is_cheap():
    tokens = InternalTokens(SECRET)
    token = tokens.mint("alice")
    started = time.perf_counter()
    for _ in range(1000):
        tokens.verify(token)
    assert (time.perf_counter() - started) / 1000 < 0.001  # under a millisecond per call, far below a request's
