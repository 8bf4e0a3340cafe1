"""Journal frames: ``magic (2 bytes "RA") | length (u32 BE) | CRC-32 of payload (u32 BE) | payload``.

The payload is one msgpack-encoded record. A frame is valid only when the whole header and
payload are present and the CRC-32 (``zlib.crc32``, the IEEE 802.3 polynomial) matches, so a
frame torn by a crash in the middle of a write is detected, never decoded as garbage.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import msgpack

__all__ = ["HEADER", "MAGIC", "FrameError", "decode_frames", "encode_frame"]

MAGIC = b"RA"
HEADER = struct.Struct(">2sII")
#: Largest payload accepted when reading (a length beyond it is corruption, not a record).
MAX_PAYLOAD = 256 * 1024 * 1024


class FrameError(ValueError):
    """Bytes that are not a complete, valid frame at ``offset``."""

    def __init__(self, offset: int, message: str):
        super().__init__(f"offset {offset}: {message}")
        self.offset = offset


def encode_frame(record: Any) -> bytes:
    """One record (msgpack-safe plain data) as a framed byte string."""
    payload = msgpack.packb(record, use_bin_type=True)
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_frames(data: bytes) -> tuple[list[Any], int, FrameError | None]:
    """Decode consecutive frames from ``data``.

    Returns
    -------
    records : list
        Records of the valid frames, in order.
    valid_end : int
        Offset just after the last valid frame (``len(data)`` when all are valid).
    error : FrameError or None
        Why decoding stopped before the end (a torn or corrupt frame at ``valid_end``).
    """
    records: list[Any] = []
    offset, n = 0, len(data)
    view = memoryview(data)
    while offset < n:
        if n - offset < HEADER.size:
            return records, offset, FrameError(offset, "incomplete frame header")
        magic, length, crc = HEADER.unpack_from(data, offset)
        if magic != MAGIC or length > MAX_PAYLOAD:
            return records, offset, FrameError(offset, "bad frame header")
        start = offset + HEADER.size
        if n - start < length:
            return records, offset, FrameError(offset, f"incomplete payload ({n - start} of {length} bytes)")
        payload = view[start:start + length]
        if zlib.crc32(payload) != crc:
            return records, offset, FrameError(offset, "checksum mismatch")
        records.append(msgpack.unpackb(payload, raw=False, strict_map_key=True))
        offset = start + length
    return records, offset, None
