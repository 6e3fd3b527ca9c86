"""A bounded memo of credentials already verified, each trusted until a time its verifier chose.

Verifying a signed token (parse, HMAC or RSA, claims) costs tens of microseconds every call, while a
client sends the same token with call after call: the gateway's bearer tokens (``gateway.auth``) and the
services' internal credentials (``services.common.identity``) are remembered here once verified, keyed
by the exact token string, so a token differing in any byte (a forged signature, another user's) is
verified in full. Only tokens that verified are kept, never past the ``until`` their verifier gave (at
most the token's own ``exp``); the least recently used entry goes first when ``max_entries`` are held.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class Verified(Generic[T]):
    """What each verified token said (its user id, say), until its time; thread-safe."""

    def __init__(self, max_entries: int):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[T, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, now: float) -> T | None:
        """What ``token`` said when it verified, while ``now`` is before its time; else None (verify it)."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if now >= entry[1]:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return entry[0]

    def put(self, token: str, value: T, until: float) -> None:
        """Trust ``token`` as saying ``value`` until ``until`` (same clock as :meth:`get`'s ``now``)."""
        with self._lock:
            self._entries[token] = (value, until)
            self._entries.move_to_end(token)
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
