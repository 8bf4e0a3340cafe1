"""Durability of the risk state: framed journals, Arrow snapshots and the storage they live on.

``frames`` encodes one record as a checksummed msgpack frame; ``storage`` opens a local
directory or any ``pyarrow.fs`` URI; ``journal`` appends frames with an fsync policy and reads
them back, dropping a torn last frame; ``snapshots`` writes and reads a host's accounts as an
Arrow IPC file. The actor layer (``riskactors.actors``) uses this package; the pure core does not.
"""

from .fence import Fence, Fenced
from .frames import FrameError, decode_frames, encode_frame
from .journal import Journal, JournalCorrupt
from .snapshots import Snapshot, read_latest_snapshot, write_snapshot
from .storage import Storage

__all__ = ["Fence", "Fenced", "FrameError", "Journal", "JournalCorrupt", "Snapshot", "Storage", "decode_frames", "encode_frame",
           "read_latest_snapshot", "write_snapshot"]
