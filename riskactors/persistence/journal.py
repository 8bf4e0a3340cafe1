"""A write-ahead journal of framed records in numbered segment files, with an fsync policy.

Layout: ``<directory>/<first seq, 20 digits>.log``; every frame holds ``[seq, record]`` with
``seq`` increasing by one from 1. A new segment starts after recovery and at every
:meth:`Journal.rotate` (a snapshot), so segments wholly covered by a snapshot are deleted by
:meth:`Journal.compact`. On a filesystem without append (object stores) every commit is its
own segment.

Durability (``fsync`` policy, see ``riskactors.settings.Settings``):

- ``always``: every frame is written and forced to disk (``fsync``) as it is appended;
- ``batch``: the frames of one call are written and forced to disk once, by :meth:`commit`,
  before the caller replies, so every acknowledged call is on disk;
- ``interval``: :meth:`commit` writes to the operating system (a killed process loses nothing)
  and forces to disk when ``interval`` seconds passed since the last force (checked at each
  commit; the host also commits on its readiness ping); a power loss may lose what was written
  since.

Recovery (:meth:`Journal.recover`) reads every segment in order. A torn or corrupt frame at the
end of the last segment (a crash during a write) is dropped and the file truncated to its valid
prefix; the same in an earlier segment, or a gap in ``seq``, raises :class:`JournalCorrupt`,
because acknowledged records would otherwise be lost silently.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from .fence import Fence, Fenced
from .frames import decode_frames, encode_frame
from .storage import Appender, Storage

__all__ = ["FSYNC_POLICIES", "Journal", "JournalCorrupt"]

log = logging.getLogger("riskactors.persistence")
FSYNC_POLICIES = ("always", "batch", "interval")
_SUFFIX = ".log"


class JournalCorrupt(RuntimeError):
    """The journal cannot be replayed without losing acknowledged records."""


def _first_seq(name: str) -> int:
    return int(name[: -len(_SUFFIX)])


class Journal:
    """Append-only journal of one writer (a host or the supervisor).

    Parameters
    ----------
    storage : Storage
    directory : str
        Directory of the segments (created if missing).
    fsync : {"always", "batch", "interval"}
    interval : float
        Seconds between forced writes under ``interval``.
    clock : callable
        Monotonic seconds (tests pass a fake one).
    fence : Fence, optional
        One writer at a time (see :mod:`riskactors.persistence.fence`): checked before frames
        are written and again once they are on disk; :class:`Fenced` is raised when a newer
        writer holds the journal. Acquire it before :meth:`recover`.
    """

    def __init__(self, storage: Storage, directory: str, fsync: str = "batch", interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, fence: Fence | None = None):
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {FSYNC_POLICIES}, not {fsync!r}")
        self.storage = storage
        self.directory = directory
        self.fsync = fsync
        self.interval = interval
        self.clock = clock
        self.seq = 0
        self.torn_frames_dropped = 0
        self._buffer: list[bytes] = []
        self._buffer_first = 0
        self._appender: Appender | None = None
        self._dirty = False
        self._last_sync = clock()
        self.fence = fence
        self.fenced_frames_dropped = 0
        storage.makedirs(directory)

    # ------------------------------------------------------------------ reading
    def segments(self) -> list[str]:
        return [n for n in self.storage.list(self.directory) if n.endswith(_SUFFIX)]

    def first_seq(self) -> int:
        """The ``seq`` the oldest segment kept starts at (1 for an empty or uncompacted journal)."""
        names = self.segments()
        return _first_seq(names[0]) if names else 1

    def recover(self, after_seq: int = 0) -> list[tuple[int, Any]]:
        """Every record with ``seq > after_seq``, in order, as ``(seq, record)``.

        Sets :attr:`seq` to the last sequence number seen (at least ``after_seq``). Must be
        called before the first :meth:`append`.

        Raises
        ------
        JournalCorrupt
            A corrupt frame before the end of the journal, or a gap in ``seq``.
        """
        out: list[tuple[int, Any]] = []
        names = self.segments()
        last = after_seq
        expected: int | None = None
        for i, name in enumerate(names):
            path = f"{self.directory}/{name}"
            data = self.storage.read(path)
            records, valid_end, error = decode_frames(data)
            if error is not None:
                if i != len(names) - 1:
                    raise JournalCorrupt(f"{path}: {error} (not the last segment)")
                log.warning("journal %s: dropping a torn last frame (%s, %d bytes)", path, error,
                            len(data) - valid_end)
                self.torn_frames_dropped += 1
                self.storage.truncate(path, valid_end)
            if expected is None and records:
                expected = records[0][0]
            next_first = _first_seq(names[i + 1]) if i + 1 < len(names) else None
            for seq, record in records:
                if next_first is not None and seq >= next_first:
                    # written by a fenced writer after a newer one took over (never acknowledged)
                    self.fenced_frames_dropped += 1
                    log.warning("journal %s: dropping frame %d, written after segment %d began (a fenced writer)",
                                path, seq, next_first)
                    continue
                if seq != expected:
                    raise JournalCorrupt(f"{path}: sequence gap (expected {expected}, found {seq})")
                expected = seq + 1
                last = max(last, seq)
                if seq > after_seq:
                    out.append((seq, record))
        if out and out[0][0] != after_seq + 1:
            raise JournalCorrupt(f"{self.directory}: records {after_seq + 1}..{out[0][0] - 1} are missing")
        self.seq = last
        return out

    # ------------------------------------------------------------------ writing
    def append(self, record: Any) -> int:
        """Add a record (plain msgpack-safe data); returns its ``seq``. Under ``always`` it is
        on disk when this returns; otherwise at the next :meth:`commit`."""
        self.seq += 1
        if not self._buffer:
            self._buffer_first = self.seq
        self._buffer.append(encode_frame([self.seq, record]))
        if self.fsync == "always":
            self.commit()
        return self.seq

    def commit(self) -> None:
        """Write the buffered frames and force them to disk as the policy says.

        Raises
        ------
        Fenced
            A newer writer holds the journal: nothing more is written (the frames buffered are
            dropped), or the frames just written must not be acknowledged.
        """
        if self._buffer:
            if self.fence is not None:
                try:
                    self.fence.check()
                except Fenced:
                    self._buffer.clear()
                    raise
            data = b"".join(self._buffer)
            first = self._buffer_first
            self._buffer.clear()
            if not self.storage.appendable:
                self.storage.write_atomic(self._segment_path(first), data)
                if self.fence is not None:
                    self.fence.check()
                return
            if self._appender is None:
                self._appender = self.storage.open_appender(self._segment_path(first))
            self._appender.write(data)
            self._dirty = True
            if self._dirty and (self.fsync != "interval" or self.clock() - self._last_sync >= self.interval):
                self.sync()
            if self.fence is not None:
                self.fence.check()  # on disk; a fence that appeared meanwhile: do not acknowledge
            return
        if self._dirty and (self.fsync != "interval" or self.clock() - self._last_sync >= self.interval):
            self.sync()

    def sync(self) -> None:
        """Force written frames to disk now."""
        if self._appender is not None and self._dirty:
            self._appender.sync()
        self._dirty = False
        self._last_sync = self.clock()

    def rotate(self) -> None:
        """Commit, sync and close the current segment; the next record starts a new one."""
        self.commit()
        self.sync()
        if self._appender is not None:
            self._appender.close()
            self._appender = None

    def compact(self, upto_seq: int) -> int:
        """Delete segments whose records all have ``seq <= upto_seq``; returns how many."""
        names = self.segments()
        deleted = 0
        for name, nxt in itertools.pairwise(names):
            if _first_seq(nxt) <= upto_seq + 1:
                self.storage.delete(f"{self.directory}/{name}")
                deleted += 1
        return deleted

    def close(self) -> None:
        self.rotate()

    def _segment_path(self, first_seq: int) -> str:
        return f"{self.directory}/{first_seq:020d}{_SUFFIX}"
