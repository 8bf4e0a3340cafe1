"""Placement: which host an account lives on.

Accounts are placed **by user**: every account of one user lives on one host, so the rules
that look across a user's accounts (``HEDGING_ACROSS_ACCOUNTS``) are decided inside one actor,
exactly, whatever the number of fronts.

- ``sharded``: shard ``stable_shard(user_id, n)``, the first 8 bytes of BLAKE2b(user_id) modulo
  ``n`` — stable across processes and Python versions (unlike ``hash()``, salted per process).
- ``dedicated``: one actor per user, ``user-<user_id>`` (all of that user's accounts).
"""

from __future__ import annotations

import hashlib

__all__ = ["dedicated_key", "host_key", "shard_key", "stable_shard"]


def stable_shard(key: str, n: int) -> int:
    """Shard index in ``[0, n)`` for ``key`` (a user id)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def shard_key(index: int) -> str:
    """Host key of shard ``index``."""
    return f"shard-{index}"


def dedicated_key(user_id: str) -> str:
    """Host key of a user's dedicated actor."""
    return f"user-{user_id}"


def host_key(placement: str, user_id: str, shards: int) -> str:
    """The host key of an account of ``user_id`` under ``placement`` with ``shards`` shards."""
    if placement == "dedicated":
        return dedicated_key(user_id)
    return shard_key(stable_shard(user_id, shards))
