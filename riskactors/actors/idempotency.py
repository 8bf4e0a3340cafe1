"""The deployment's ``Idempotency-Key`` ledger: one actor shared by every front.

A front that receives a mutating request with an ``Idempotency-Key`` asks the ledger first
(:meth:`IdempotencyLedger.begin`): the first response to that key is replayed, another request
under the key is a conflict, a request with the key still running (on any front) waits, and
otherwise this front claims the key and runs the request. When the response is complete the
front hands it to the ledger (:meth:`IdempotencyLedger.finish`), which journals it before it
returns, so it survives the front, the ledger's own restart and a server restart.

Ordering: the response is journaled after the call it answers is durable (that call's host
journals it before it replies). A front that dies between the two leaves the key unanswered;
its claim lapses after ``lease_seconds`` and a retry runs the request again, which the calls
absorb on their own ids (a check on ``order_id``, a fill on ``fill_id``, a registration on
``account_id``, a cancel releases once, a mark sets the same price).

Memory and disk are bounded: at most ``max_keys`` responses and ``max_bytes`` of them, each
forgotten ``ttl_seconds`` (wall clock) after it was stored. The journal compacts itself: past
``2 × max_keys`` frames it is rotated, the live responses are written again after the rotation,
and the segments before it are deleted.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .durable import acquire_fence, open_journal

__all__ = ["MAX_STORED_BYTES", "IdempotencyLedger", "IdempotencyStore", "StoredResponse"]

log = logging.getLogger("riskactors.actors")

#: Upper bound of the bodies kept by one ledger, bytes (least recently used evicted first).
MAX_STORED_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response remembered under a key, with the fingerprint of the request that made it.

    ``stored_at`` is wall-clock epoch seconds (the entry crosses processes and restarts).
    """

    fingerprint: bytes
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    stored_at: float

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers)

    def to_record(self) -> list[Any]:
        """Plain msgpack-safe form (journal frames)."""
        return [self.fingerprint, self.status, [list(h) for h in self.headers], self.body, self.stored_at]

    @classmethod
    def from_record(cls, rec: list[Any]) -> StoredResponse:
        fingerprint, status, headers, body, stored_at = rec
        return cls(bytes(fingerprint), int(status), tuple((bytes(k), bytes(v)) for k, v in headers), bytes(body),
                   float(stored_at))


class IdempotencyStore:
    """LRU of responses by key with a time to live (pure; time is passed in).

    Parameters
    ----------
    max_keys : int
        Entries kept at most; the least recently used goes first.
    ttl_seconds : float
        An entry older than this (since it was stored) is forgotten.
    max_bytes : int
        Bodies and headers kept at most, bytes.
    """

    def __init__(self, max_keys: int, ttl_seconds: float, max_bytes: int = MAX_STORED_BYTES):
        self.max_keys = max_keys
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, StoredResponse] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        """True if ``key`` has an entry (expired or not)."""
        return key in self._entries

    @property
    def bytes(self) -> int:
        """Bytes held (bodies and headers)."""
        return self._bytes

    def items(self) -> list[tuple[bytes, StoredResponse]]:
        """Every entry, least recently used first."""
        return list(self._entries.items())

    def get(self, key: bytes, now: float) -> StoredResponse | None:
        """The live entry of ``key`` at ``now`` (marked as recently used), ``None`` when absent
        or expired."""
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now - entry.stored_at >= self.ttl_seconds:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: StoredResponse) -> bool:
        """Remember ``entry`` under ``key`` (replacing one), then evict down to the bounds;
        returns False if the entry alone is over ``max_bytes`` (not kept)."""
        if key in self._entries:
            self._drop(key)
        if entry.size > self.max_bytes:
            return False
        self._entries[key] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_keys or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
        return True

    def _drop(self, key: bytes) -> None:
        self._bytes -= self._entries.pop(key).size

    def _expire(self, now: float) -> None:
        """Drop expired entries at the cold end (cheap: stops at the first live one)."""
        limit = now - self.ttl_seconds
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.stored_at > limit:
                return
            self._drop(key)


class IdempotencyLedger:
    """The shared store of ``Idempotency-Key`` responses (a Ray actor; plain in tests).

    Parameters
    ----------
    config : dict
        ``max_keys``, ``ttl_seconds``, ``lease_seconds`` (how long a claim holds without an
        answer), optional ``max_bytes`` and ``storage`` (``Settings.storage_config()``; ``None``:
        memory only). Its files are ``idempotency/journal`` and ``idempotency/epoch`` under the
        storage root (fenced like every writer).
    """

    def __init__(self, config: dict[str, Any]):
        self.store = IdempotencyStore(int(config["max_keys"]), float(config["ttl_seconds"]),
                                      int(config.get("max_bytes") or MAX_STORED_BYTES))
        self.lease_seconds = float(config.get("lease_seconds", 60.0))
        self._claims: dict[bytes, tuple[str, float]] = {}  # key -> (claim id, expires at)
        self._claimed = 0
        storage = config.get("storage")
        self._journal = None
        self._frames = 0
        if storage:
            fence = acquire_fence(storage, "idempotency")
            self._journal = open_journal(storage, "idempotency", "journal", fence=fence)
            # a compacted journal starts after its first segment's first seq
            for _, (key, rec) in self._journal.recover(self._journal.first_seq() - 1):
                self.store.put(bytes(key), StoredResponse.from_record(rec))
                self._frames += 1

    def __len__(self) -> int:
        return len(self.store)

    def ping(self) -> dict[str, Any]:
        return {"keys": len(self.store), "bytes": self.store.bytes, "claims": len(self._claims)}

    def begin(self, key: bytes, fingerprint: bytes, now: float) -> dict[str, Any]:
        """What a front should do with a request under ``key`` at wall time ``now``.

        Returns
        -------
        dict
            ``{"state": "replay", "response": StoredResponse}`` (same request: send it again),
            ``{"state": "conflict"}`` (another request used the key: 409), ``{"state": "busy"}``
            (the key's first request is still running: ask again shortly) or
            ``{"state": "run", "claim": str}`` (run it, then :meth:`finish` with the claim).
        """
        stored = self.store.get(key, now)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                return {"state": "conflict"}
            return {"state": "replay", "response": stored}
        held = self._claims.get(key)
        if held is not None and held[1] > now:
            return {"state": "busy"}
        self._claimed += 1
        claim = f"c{self._claimed}"
        self._claims[key] = (claim, now + self.lease_seconds)
        return {"state": "run", "claim": claim}

    def finish(self, key: bytes, claim: str, response: StoredResponse | None) -> bool:
        """End the claim ``claim`` on ``key``: remember ``response`` (journaled before this
        returns), or, with ``None`` (a 5xx, or the request failed), let a retry run it. Returns
        True if the response is kept (a lapsed claim whose key was answered since is not)."""
        held = self._claims.get(key)
        if held is not None and held[0] == claim:
            del self._claims[key]
        elif held is not None or (response is not None and key in self.store):
            return False  # the claim lapsed and another request took the key
        if response is None:
            return False
        if not self.store.put(key, response):
            return False
        if self._journal is not None:
            self._journal.append([key, response.to_record()])
            self._journal.commit()
            self._frames += 1
            if self._frames > 2 * self.store.max_keys:
                self._compact()
        return True

    def _compact(self) -> None:
        """Rotate the journal, write the live responses again, delete what came before."""
        assert self._journal is not None
        self._journal.rotate()
        upto = self._journal.seq
        for key, entry in self.store.items():
            self._journal.append([key, entry.to_record()])
        self._journal.commit()
        self._journal.compact(upto)
        self._frames = len(self.store)
        log.info("idempotency journal compacted to %d responses", self._frames)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
