"""The memo of verified tokens: trusted until their time only, bounded, keyed by the exact token."""

from __future__ import annotations

import pytest

from services.common.verified import Verified


def test_a_token_is_trusted_until_its_time_and_then_forgotten():
    memo: Verified[str] = Verified(10)
    memo.put("token", "alice", until=100.0)
    assert memo.get("token", 99.9) == "alice"
    assert memo.get("token", 100.0) is None
    assert len(memo) == 0 and memo.get("token", 50.0) is None  # dropped, not merely hidden


def test_only_the_exact_token_is_trusted():
    memo: Verified[str] = Verified(10)
    memo.put("header.payload.signature", "alice", until=100.0)
    assert memo.get("header.payload.signaturf", 1.0) is None
    assert memo.get("header.payload.signature ", 1.0) is None


def test_the_least_recently_used_token_goes_first_when_full():
    memo: Verified[str] = Verified(2)
    memo.put("a", "alice", until=100.0)
    memo.put("b", "bob", until=100.0)
    assert memo.get("a", 1.0) == "alice"  # now the most recently used
    memo.put("c", "carol", until=100.0)
    assert memo.get("b", 1.0) is None and memo.get("a", 1.0) == "alice" and memo.get("c", 1.0) == "carol"
    assert len(memo) == 2


def test_a_memo_holds_at_least_one():
    with pytest.raises(ValueError, match="max_entries"):
        Verified(0)
