"""Process-wide counters that an exporter reads.

A metric belongs to the process, not to one object in it, the way
prometheus_client's default registry does: code deep in the event plumbing
counts without every caller passing a registry down. Nothing else may live at
module level.
"""

from __future__ import annotations

from collections import Counter as _Tally


class Counter:
    """A count that only grows, kept per label (such as a consumer's name)."""

    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description
        self._counts: _Tally[str] = _Tally()

    def inc(self, label: str, amount: int = 1) -> None:
        self._counts[label] += amount

    def value(self, label: str) -> int:
        return self._counts[label]

    def values(self) -> dict[str, int]:
        """Every label counted so far and its count."""
        return dict(self._counts)


PARKED_MESSAGES = Counter(
    "brightrun_messages_parked_total", "Messages a consumer gave up on and parked on the DEADLETTER stream"
)
