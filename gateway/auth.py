"""Bearer-token authentication: HS256 JWTs whose ``sub`` is the user's UUID."""

from __future__ import annotations

import time
import uuid

import jwt

from gateway.errors import HttpError

_ALGORITHM = "HS256"


def _unauthorized(details: str) -> HttpError:
    return HttpError(401, "Unauthorized", details)


def authenticate(authorization: str | None, secret: str) -> str:
    """The user id from an ``Authorization: Bearer <JWT>`` header value.

    Raises HttpError 401 saying what is wrong: no header, not a bearer token,
    a bad signature, a missing or past ``exp``, or a ``sub`` that is not a UUID.
    """
    if not authorization:
        raise _unauthorized("Missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Authorization header must be 'Bearer <token>'")
    try:
        claims = jwt.decode(token.strip(), secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise _unauthorized("Token has expired; sign in again") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _unauthorized(f"Token has no '{exc.claim}' claim") from None
    except jwt.InvalidSignatureError:
        raise _unauthorized("Token signature is invalid") from None
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(f"Token is invalid: {exc}") from None
    try:
        return str(uuid.UUID(str(claims["sub"])))
    except ValueError:
        raise _unauthorized("Token subject ('sub') must be a user UUID") from None


def mint_token(user_id: str, secret: str, ttl_seconds: int = 3600) -> str:
    """An HS256 token for ``user_id`` valid for ``ttl_seconds``; raises ValueError for a non-UUID id."""
    subject = str(uuid.UUID(user_id))
    now = int(time.time())
    return jwt.encode({"sub": subject, "iat": now, "exp": now + ttl_seconds}, secret, algorithm=_ALGORITHM)
