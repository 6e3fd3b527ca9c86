"""Bearer-token authentication: JWTs whose ``sub`` is the user's UUID.

Two ways to verify, either or both configured:

- HS256 with a shared secret: the embedded default, and Supabase's (legacy)
  JWT secret.
- RS256/ES256 against the identity provider's JWKS, the key chosen by the
  token's ``kid``: Supabase's asymmetric signing keys and any OIDC provider.

Every token must carry ``exp``, ``sub`` and the configured audience (Supabase
issues ``aud: "authenticated"``), and the issuer when one is configured.
The :class:`Authenticate` middleware verifies the header of every ``/api``
request (key lookups may fetch, so it is async) and the routes read the
outcome with :func:`authenticated_user`.
"""

from __future__ import annotations

import time
import uuid

import jwt
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import HttpError
from gateway.jwks import ASYMMETRIC_ALGORITHMS, JwksKeys
from services.common.config import ConfigError, Settings
from services.common.verified import Verified

_HS256 = "HS256"
# A verified token is trusted again without verifying for this long, and never past its ``exp``: a client
# sends one token with every call, and verifying it (signature, JSON, claims) again cost a tenth of the
# gateway's CPU per call. Short, so a key the identity provider withdraws stops working within a minute.
VERIFIED_TTL_S = 60.0
# Distinct live tokens remembered; past this the least recently used is verified again when it comes back.
VERIFIED_MAX = 10_000
# The audience Supabase Auth puts in a signed-in user's token.
SUPABASE_AUDIENCE = "authenticated"


def _unauthorized(details: str) -> HttpError:
    return HttpError(401, "Unauthorized", details)


class TokenVerifier:
    """Checks bearer tokens against the configured secret and/or key set."""

    def __init__(self, *, secret: str = "", jwks: JwksKeys | None = None, audience: str, issuer: str = "") -> None:
        if not secret and jwks is None:
            raise ConfigError(
                "The gateway has no way to verify tokens: set BRIGHTRUN_JWT_SECRET (HS256) "
                "or BRIGHTRUN_JWT_JWKS (the identity provider's JWKS URL or file)"
            )
        self.secret = secret
        self.jwks = jwks
        self.audience = audience
        self.issuer = issuer
        # token -> its user id, trusted without verifying until min(exp, VERIFIED_TTL_S from its verification)
        self._verified: Verified[str] = Verified(VERIFIED_MAX)

    @classmethod
    def from_settings(cls, settings: Settings) -> "TokenVerifier":
        """Raises ConfigError when the settings give no secret and no key set."""
        jwks = JwksKeys(settings.jwt_jwks) if settings.jwt_jwks else None
        return cls(secret=settings.jwt_secret, jwks=jwks, audience=settings.jwt_audience, issuer=settings.jwt_issuer)

    async def user_id(self, authorization: str | None) -> str:
        """The user id from an ``Authorization: Bearer <JWT>`` header value.

        Raises HttpError 401 saying what is wrong: no header, not a bearer
        token, an algorithm or key this gateway does not accept, a bad
        signature, a missing or past ``exp``, a wrong audience or issuer, or a
        ``sub`` that is not a UUID.
        """
        if not authorization:
            raise _unauthorized("Missing Authorization header; send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("Authorization header must be 'Bearer <token>'")
        now = time.time()
        user = self._verified.get(token, now)
        if user is None:
            user, expires = await self._verify(token)
            self._verified.put(token, user, min(expires, now + VERIFIED_TTL_S))
        return user

    async def _verify(self, token: str) -> tuple[str, float]:
        """The token's user id and ``exp``; raises HttpError 401 as :meth:`user_id` says."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"Token is invalid: {exc}") from None
        key, algorithm = await self._key(header)
        options = {"require": ["exp", "sub"]}
        try:
            claims = jwt.decode(
                token, key, algorithms=[algorithm], audience=self.audience,
                issuer=self.issuer or None, options=options,
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("Token has expired; sign in again") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"Token has no '{exc.claim}' claim") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized(f"Token audience ('aud') must be {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized(f"Token issuer ('iss') must be {self.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("Token signature is invalid") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"Token is invalid: {exc}") from None
        try:
            return str(uuid.UUID(str(claims["sub"]))), float(claims["exp"])
        except ValueError:
            raise _unauthorized("Token subject ('sub') must be a user UUID") from None

    async def _key(self, header: dict) -> tuple[object, str]:
        """The key and the one algorithm to verify with, from the token's header.

        The algorithm is the key's own, never the header's choice alone: an
        RS256 public key must not be accepted as an HS256 secret.
        """
        algorithm = header.get("alg")
        if algorithm == _HS256 and self.secret:
            return self.secret, _HS256
        if algorithm in ASYMMETRIC_ALGORITHMS and self.jwks is not None:
            key = await self.jwks.key(header.get("kid"))
            if key.algorithm_name != algorithm:
                raise _unauthorized(f"Token algorithm {algorithm} does not match its key's {key.algorithm_name}")
            return key.key, algorithm
        accepted = ([_HS256] if self.secret else []) + (list(ASYMMETRIC_ALGORITHMS) if self.jwks else [])
        raise _unauthorized(f"Token algorithm {str(algorithm)[:20]!r} is not accepted; this gateway accepts {', '.join(accepted)}")


class Authenticate:
    """ASGI middleware: verifies the bearer token of every ``/api`` request.

    The outcome (the user id or the 401) waits in the request's state until a
    route asks for it, so a route that needs no user, or a path that matches
    no route, answers as it would without the middleware.
    """

    def __init__(self, app: ASGIApp, verifier: TokenVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            state = scope.setdefault("state", {})
            header = dict(scope["headers"]).get(b"authorization")
            try:
                state["user_id"] = await self.verifier.user_id(header.decode("latin-1") if header else None)
            except HttpError as exc:
                state["auth_error"] = exc
        await self.app(scope, receive, send)


def authenticated_user(request: Request) -> str:
    """The verified user id of this request; raises its HttpError 401 (or 503) otherwise."""
    state = request.scope.get("state", {})
    if "user_id" in state:
        return state["user_id"]
    raise state.get("auth_error") or _unauthorized("Missing Authorization header; send 'Authorization: Bearer <token>'")


def mint_token(user_id: str, secret: str, ttl_seconds: int = 3600, audience: str = SUPABASE_AUDIENCE) -> str:
    """An HS256 token shaped as Supabase issues them (``aud``, ``role``) for ``user_id``,
    valid for ``ttl_seconds``; raises ValueError for a non-UUID id."""
    subject = str(uuid.UUID(user_id))
    now = int(time.time())
    claims = {"sub": subject, "aud": audience, "role": "authenticated", "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=_HS256)
