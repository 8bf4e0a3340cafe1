"""Where journals, snapshots and the audit log live: a local directory or a ``pyarrow.fs`` URI.

A plain path (``./var/riskactors``) or ``file://`` URI is a local (or mounted shared) directory:
files are written with ``os`` calls so that ``fsync`` really forces them to disk. Any other URI
(``s3://bucket/prefix``, ``hdfs://…``, ``gs://…``) is opened with
``pyarrow.fs.FileSystem.from_uri``; there a journal appends where the filesystem supports it
and otherwise writes one segment object per commit (object stores have no append), and a
"sync" is the filesystem's own durability guarantee on close.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

from pyarrow import fs as pafs

__all__ = ["Appender", "Storage"]


class Appender(Protocol):
    """An open, append-only file."""

    def write(self, data: bytes) -> None: ...

    def sync(self) -> None: ...

    def close(self) -> None: ...


class _LocalAppender:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _ArrowAppender:
    def __init__(self, fs: pafs.FileSystem, path: str):
        self.stream = fs.open_append_stream(path)

    def write(self, data: bytes) -> None:
        self.stream.write(data)

    def sync(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


class Storage:
    """A storage root and the file operations the journal and snapshots need.

    Parameters
    ----------
    root : str
        Local path or URI (see the module docstring).
    appendable : bool, optional
        Override whether files can be appended to (tests force ``False`` to exercise the
        segment-per-commit mode used on object stores). Default: local filesystems and HDFS.
    """

    def __init__(self, root: str, appendable: bool | None = None):
        if "://" in root and not root.startswith("file://"):
            self.fs, self.root = pafs.FileSystem.from_uri(root)
            self.local = False
        else:
            path = root.removeprefix("file://")
            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(path)
            self.local = True
        self.uri = root
        self.appendable = appendable if appendable is not None else (self.local or self.fs.type_name == "hdfs")

    def path(self, *parts: str) -> str:
        """``root/part/…`` in this filesystem's path syntax."""
        return "/".join([self.root.rstrip("/"), *parts])

    def makedirs(self, path: str) -> None:
        self.fs.create_dir(path, recursive=True)

    def list(self, directory: str) -> list[str]:
        """Base names of the files in ``directory``, sorted (empty if it does not exist)."""
        infos = self.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.File)

    def read(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as f:
            return f.read()

    def write_atomic(self, path: str, data: bytes, pace: float | None = None) -> None:
        """Write ``data`` to ``path`` so a reader sees the old file or the whole new one
        (temporary file, fsync, rename, fsync of the directory on local storage).

        ``pace`` (bytes per second, local storage only): write no faster, in chunks each put on
        disk before the next (:func:`paced_write`), so the journal's fsyncs on the same disk do
        not wait behind megabytes of someone else's dirty pages."""
        tmp = path + ".tmp"
        if self.local:
            with open(tmp, "wb") as f:
                if pace:
                    paced_write(f, data, pace)
                else:
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            self._sync_dir(os.path.dirname(path))
        else:
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            self.fs.move(tmp, path)

    def exists(self, path: str) -> bool:
        """True if ``path`` is a file."""
        return self.fs.get_file_info(path).type == pafs.FileType.File

    def sync_dir(self, directory: str) -> None:
        """Make the directory entries of ``directory`` durable (local storage; no-op elsewhere)."""
        if self.local:
            self._sync_dir(directory)

    def delete(self, path: str) -> None:
        self.fs.delete_file(path)

    def truncate(self, path: str, size: int) -> None:
        """Cut ``path`` to its first ``size`` bytes (drops a torn tail)."""
        if self.local:
            os.truncate(path, size)
            return
        self.write_atomic(path, self.read(path)[:size])

    def open_appender(self, path: str) -> Appender:
        """An append-only handle on ``path`` (requires :attr:`appendable`)."""
        if self.local:
            created = not os.path.exists(path)
            appender = _LocalAppender(path)
            if created:
                self._sync_dir(os.path.dirname(path))  # the new file's directory entry is durable too
            return appender
        return _ArrowAppender(self.fs, path)

    def _sync_dir(self, directory: str) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: Bytes :func:`paced_write` puts on disk at a time.
PACE_CHUNK = 256 << 10


def paced_write(f, data: bytes, pace: float, clock: Callable[[], float] = time.perf_counter,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """Write ``data`` to the open file ``f`` in :data:`PACE_CHUNK` chunks, each flushed and
    ``fdatasync``-ed before the next, no faster than ``pace`` bytes per second.

    Why: on ext4 (``data=ordered``) an fsync of a small file also waits for the other dirty
    data of the file system, so one process writing a snapshot of megabytes at disk speed made
    the journal's fsync of a 200-byte record take 6.5 ms at p99 instead of 0.3 ms; written this
    way (256 KiB at 32 MiB/s) it took 0.4 ms (this machine, ``load_tests`` notes in the README).
    """
    start = clock()
    for offset in range(0, len(data), PACE_CHUNK):
        chunk = data[offset:offset + PACE_CHUNK]
        f.write(chunk)
        f.flush()
        os.fdatasync(f.fileno())
        ahead = (offset + len(chunk)) / pace - (clock() - start)
        if ahead > 0:
            sleep(ahead)
