"""Who a gRPC call acts for: the internal user credential, minted and verified here alone.

A service never takes a user id on the caller's word. The gateway, having verified
the user's bearer token, mints a short-lived internal credential (an HS256 JWT:
``sub`` the user id, ``aud`` :data:`AUDIENCE`, ``iat``/``exp`` :data:`TTL_SECONDS`
apart) signed with ``BRIGHTRUN_INTERNAL_TOKEN_SECRET`` and sends it as the
:data:`METADATA_KEY` metadata; every service verifies signature, audience and
expiry before it reads the user id. A bare ``x-user-id``, a forged, expired or
foreign-audience credential is :class:`Unauthenticated` (gRPC UNAUTHENTICATED,
HTTP 401 at the gateway).

Calls one service makes on a user's behalf (job_svc to dataset_svc, billing_svc,
artifact_svc) *mint a fresh credential* rather than forward the incoming one:
every service holds the same symmetric secret (it needs it to verify), so a
forwarded token proves nothing a fresh one does not, while minting keeps working
for work done after the call that started it (consumers, a retry past the TTL)
and needs no call context threaded down to the helpers that call out. What
protects a user is that nobody without the secret can speak for them.

Both ends remember: a process reuses the credential it minted for a user for
:data:`REUSE_SECONDS` (so each has at least ``TTL_SECONDS - REUSE_SECONDS`` left
when sent), and a service trusts a credential it verified until its ``exp``
(``services.common.verified``), keyed by the exact token, so that a call costs a
dictionary lookup rather than an HMAC and a JWT parse at each end. A forged or
altered credential is a different string and is verified in full; an expired one
is refused as before.

No call is made today without a user (trainer agents and consumers talk over
NATS), so there is no service credential; one would carry a ``role`` claim.

The process's secret is installed once by its wiring (:func:`install`, from
``Settings.internal_token_secret``) because :func:`services.common.grpc.as_user`
and ``user_id`` are called deep in handlers that hold no settings.
"""

from __future__ import annotations

import time

import jwt

from services.common.config import MIN_SECRET_LENGTH
from services.common.errors import Unauthenticated
from services.common.verified import Verified

AUDIENCE = "brightrun-internal"
METADATA_KEY = "x-brightrun-identity"
# Long enough for one request's chain of calls, short enough that a leaked credential soon expires.
TTL_SECONDS = 300
# A minted credential is sent again for this long: every one sent has at least 240 s left.
REUSE_SECONDS = TTL_SECONDS // 5
# Users (minted) and credentials (verified) a process remembers; the least recently used go first.
REMEMBERED = 10_000
_ALGORITHM = "HS256"


class InternalTokens:
    """Mints and verifies internal user credentials with one secret."""

    def __init__(self, secret: str):
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the internal token secret must be at least {MIN_SECRET_LENGTH} characters")
        self._secret = secret
        self._minted: Verified[str] = Verified(REMEMBERED)
        self._verified: Verified[str] = Verified(REMEMBERED)

    def for_user(self, user_id: str) -> str:
        """A credential for ``user_id`` to send now: the one minted for them within :data:`REUSE_SECONDS`,
        else a fresh one."""
        now = time.time()
        token = self._minted.get(user_id, now)
        if token is None:
            token = self.mint(user_id, now=now)
            self._minted.put(user_id, token, now + REUSE_SECONDS)
        return token

    def mint(self, user_id: str, ttl_seconds: int = TTL_SECONDS, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {"sub": user_id, "aud": AUDIENCE, "iat": issued, "exp": issued + ttl_seconds}
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> str:
        """The user id ``token`` speaks for; Unauthenticated naming why when it speaks for nobody. A token
        verified before is trusted until its ``exp`` without verifying it again."""
        subject = self._verified.get(token, time.time())
        if subject is not None:
            return subject
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM], audience=AUDIENCE,
                                options={"require": ["sub", "aud", "iat", "exp"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the internal credential has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"the internal credential is not for {AUDIENCE}") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the internal credential's signature does not verify") from None
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"the internal credential is invalid: {error}") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("the internal credential names no user")
        self._verified.put(token, subject, float(claims["exp"]))
        return subject


_installed: InternalTokens | None = None


def install(secret: str) -> None:
    """Make ``secret`` this process's key for minting and verifying (its wiring calls this at start)."""
    global _installed
    _installed = InternalTokens(secret)


def tokens() -> InternalTokens:
    """This process's key; a process that never installed one has a wiring bug, not a bad caller."""
    if _installed is None:
        raise RuntimeError("no internal token secret installed: the process's wiring must call identity.install")
    return _installed
