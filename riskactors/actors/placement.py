"""Placement: which host an account lives on.

``sharded`` placement maps an account to shard ``stable_shard(account_id, n)``: the first 8
bytes of BLAKE2b(account_id) modulo ``n`` — stable across processes and Python versions
(unlike ``hash()``, which is salted per process).
"""

from __future__ import annotations

import hashlib

__all__ = ["dedicated_key", "shard_key", "stable_shard"]


def stable_shard(account_id: str, n: int) -> int:
    """Shard index in ``[0, n)`` for ``account_id``."""
    digest = hashlib.blake2b(account_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def shard_key(index: int) -> str:
    """Host key of shard ``index``."""
    return f"shard-{index}"


def dedicated_key(account_id: str) -> str:
    """Host key of an account's dedicated actor."""
    return f"account-{account_id}"
