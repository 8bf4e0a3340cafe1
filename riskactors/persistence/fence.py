"""One writer per journal: epochs stored beside it.

A writer (a shard or dedicated host, the supervisor) takes the next **epoch** when it starts,
before it reads its journal, by creating the file ``<directory>/<epoch, 20 digits>`` with an
*exclusive create*. Before it writes a frame, and again after the frame is on disk and before
the call is answered, it checks that epoch ``+ 1`` does not exist. A writer that finds it has
been replaced (another instance started on the same storage root: a Ray restart or a move on
the same cluster, or a second cluster pointed at the root by mistake) raises :class:`Fenced`
and never writes again; the host answers ``SERVICE_UNAVAILABLE`` from then on.

Why this is enough, on a filesystem with exclusive create (local disks; shared POSIX mounts
such as NFSv3+, CephFS, Lustre, EFS, which honour ``O_CREAT | O_EXCL``):

- two writers never get the same epoch (the loser of a race takes the next one), and every
  newer writer creates ``epoch + 1`` of every older one's epoch or one after it, so the older
  one's check (``epoch + 1`` exists?) sees it: epoch files are never deleted;
- the new writer created its epoch before reading the journal. A frame the old writer wrote
  before that is read by the new one; a frame it wrote after can only be one that was in flight
  when the fence appeared, and its after-write check then fails, so that call is answered 503,
  never acknowledged. On recovery such a frame is in an older segment and overlaps the new
  writer's first segment; :meth:`~riskactors.persistence.journal.Journal.recover` drops it.

Object stores (``s3://``, ``gs://``) have no exclusive create in ``pyarrow.fs``: there the
epoch file is written and listed back (the highest epoch wins), which detects a second writer
at its next check but cannot stop two writers that start within the same instant, and a
segment written per commit by a fenced writer in flight may overwrite the new writer's
segment of the same first ``seq``. On an object store, do not run two clusters on one root.
"""

from __future__ import annotations

import os

from .storage import Storage

__all__ = ["Fence", "Fenced"]

_WIDTH = 20


class Fenced(RuntimeError):
    """A newer writer holds this journal; this one must not write (answer 503)."""

    def __init__(self, directory: str, epoch: int):
        super().__init__(f"fenced: a newer instance holds {directory} (this instance has epoch {epoch}, "
                         f"epoch {epoch + 1} exists); it no longer writes")
        self.directory = directory
        self.epoch = epoch

    def __reduce__(self):  # crosses process boundaries (a Ray actor's error reaches the front)
        return type(self), (self.directory, self.epoch)


class Fence:
    """The epoch files of one writer's journal.

    Parameters
    ----------
    storage : Storage
    directory : str
        Where the epoch files live (``…/epoch`` beside ``…/journal``); created if missing.
    """

    def __init__(self, storage: Storage, directory: str):
        self.storage = storage
        self.directory = directory
        self.epoch = 0
        self.fenced = False
        storage.makedirs(directory)

    def epochs(self) -> list[int]:
        """Every epoch taken so far, in order."""
        return [int(n) for n in self.storage.list(self.directory) if n.isdigit()]

    def acquire(self) -> int:
        """Take the next epoch (exclusive create); returns it. Call before reading the journal."""
        candidate = max(self.epochs(), default=0) + 1
        while not self._create(candidate):
            candidate += 1  # another writer won this one: take the next
        self.epoch = candidate
        self.fenced = False
        return candidate

    def check(self) -> None:
        """Raise :class:`Fenced` if a newer writer took an epoch after this one."""
        if self.fenced or self._exists(self.epoch + 1):
            self.fenced = True
            raise Fenced(self.directory, self.epoch)

    def _path(self, epoch: int) -> str:
        return f"{self.directory}/{epoch:0{_WIDTH}d}"

    def _exists(self, epoch: int) -> bool:
        path = self._path(epoch)
        if self.storage.local:
            return os.path.exists(path)
        return self.storage.exists(path)

    def _create(self, epoch: int) -> bool:
        path = self._path(epoch)
        if self.storage.local:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            os.close(fd)
            self.storage.sync_dir(self.directory)
            return True
        if self.storage.exists(path):  # no exclusive create on object stores: see the module docstring
            return False
        self.storage.write_atomic(path, b"")
        return max(self.epochs(), default=0) == epoch
