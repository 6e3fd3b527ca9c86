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


def test_a_remembered_credential_is_refused_once_it_expires():
    tokens = InternalTokens(SECRET)
    token = tokens.mint("alice", ttl_seconds=1)
    assert tokens.verify(token) == "alice" and tokens.verify(token) == "alice"  # the second from memory
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.verify(token)


def test_a_credential_altered_beside_a_remembered_one_is_verified_and_refused():
    tokens = InternalTokens(SECRET)
    token = tokens.mint("alice")
    assert tokens.verify(token) == "alice"
    header, payload, signature = token.split(".")
    forged_signature = f"{header}.{payload}.{'A' * len(signature) if signature[0] != 'A' else 'B' * len(signature)}"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    other_user = jwt.encode({**claims, "sub": "bob"}, "another-stacks-internal-token-secret-0123456789",
                            algorithm="HS256")
    for forged in (forged_signature, other_user):
        with pytest.raises(Unauthenticated, match="signature"):
            tokens.verify(forged)
    # A different verifier (another secret) remembers nothing of this one's.
    with pytest.raises(Unauthenticated, match="signature"):
        InternalTokens("another-stacks-internal-token-secret-0123456789").verify(token)


def test_a_users_credential_is_reused_for_a_while_then_minted_afresh(monkeypatch):
    tokens = InternalTokens(SECRET)
    first = tokens.for_user("alice")
    assert tokens.for_user("alice") == first and tokens.verify(first) == "alice"
    assert tokens.verify(tokens.for_user("bob")) == "bob"  # each user their own
    later = time.time() + identity.REUSE_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    fresh = tokens.for_user("alice")
    assert fresh != first
    claims = jwt.decode(fresh, SECRET, algorithms=["HS256"], audience=AUDIENCE, options={"verify_iat": False})
    assert claims["iat"] == int(later)  # minted at the new time, with its full lifetime ahead
