"""The signing keys of an identity provider, from a JWKS URL or file.

Supabase (asymmetric JWT signing keys) and every OIDC provider publish their
public keys as a JSON Web Key Set at a well-known URL; a token names its key
by ``kid``. The keys are cached; an unknown ``kid`` (a rotation) or a cache
older than ``max_age_s`` fetches the set again, at most once per
``min_refresh_s`` so that tokens naming made-up keys cannot hammer the
provider. A fetch that fails keeps the keys already known.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import httpx
import jwt

from gateway.errors import HttpError, unavailable

log = logging.getLogger(__name__)

# The asymmetric algorithms a key from the set may verify.
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")


class JwksKeys:
    """Keys by ``kid`` from ``source``: an ``http(s)://`` URL or a file path."""

    def __init__(
        self, source: str, *, max_age_s: float = 600.0, min_refresh_s: float = 30.0, timeout_s: float = 5.0
    ) -> None:
        self.source = source
        self.max_age_s = max_age_s
        self.min_refresh_s = min_refresh_s
        self.timeout_s = timeout_s
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._loaded_at = float("-inf")
        self._tried_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The key a token's header names; a header without ``kid`` may use a set of one key.

        Raises HttpError 401 for a key the set does not hold, 503 while the set
        has never been loaded.
        """
        now = time.monotonic()
        due = now - self._loaded_at > self.max_age_s or kid not in self._keys
        if due and now - self._tried_at > self.min_refresh_s:
            await self._refresh()
        if self._loaded_at == float("-inf"):
            raise unavailable(f"The token signing keys at {self.source} could not be loaded; retry shortly")
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        try:
            return self._keys[kid]
        except KeyError:
            which = "has no 'kid' header" if kid is None else f"names signing key {kid[:80]!r}"
            raise HttpError(
                401, "Unauthorized", f"Token {which}, which the identity provider's key set does not hold"
            ) from None

    async def _refresh(self) -> None:
        async with self._lock:
            # Another request may have tried while this one waited.
            if time.monotonic() - self._tried_at <= self.min_refresh_s:
                return
            self._tried_at = time.monotonic()
            try:
                data = await self._fetch()
                keys = {
                    key.key_id: key
                    for key in jwt.PyJWKSet.from_dict(data).keys
                    if key.algorithm_name in ASYMMETRIC_ALGORITHMS
                }
            except (httpx.HTTPError, OSError, ValueError, jwt.PyJWKSetError) as exc:
                # Keeps the keys already known: a provider's hiccup must not sign everyone out.
                log.warning("could not load the JWKS from %s: %s", self.source, exc)
                return
            if not keys:
                log.warning("the JWKS at %s holds no %s key", self.source, "/".join(ASYMMETRIC_ALGORITHMS))
            self._keys = keys
            self._loaded_at = time.monotonic()

    async def _fetch(self) -> dict:
        if self.source.startswith(("http://", "https://")):
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(self.source)
                response.raise_for_status()
                return response.json()
        return json.loads(Path(self.source).read_text())
