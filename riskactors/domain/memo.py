"""Remembered answers kept compact.

An account remembers the answer of each check (20,000 per account) and fill (200,000) it
applied, so that a retry with the same ``order_id`` or ``fill_id`` gets the same answer (see
:mod:`riskactors.domain.account`). As Python dicts those answers were the largest part of an
account's memory (about 1.2 KB for one fill's answer, measured with ``tracemalloc`` at 12,500
accounts); :mod:`marshal` bytes of the same answer take about half of that, and give back an
equal dict (floats bit for bit). An answer holding a value marshal cannot write (none does
today: answers are made of str, float, int, bool, None, lists and dicts) is kept as it is.
"""

from __future__ import annotations

import marshal
from typing import Any

__all__ = ["pack", "unpack"]

#: marshal format 2: no back-references, so equal answers give equal bytes (formats 3 and 4
#: refer back to objects by identity, which depends on how each string was made)
_VERSION = 2


def pack(answer: dict[str, Any]) -> bytes | dict[str, Any]:
    """``answer`` as marshal bytes (or itself, when marshal cannot write one of its values)."""
    try:
        return marshal.dumps(answer, _VERSION)
    except ValueError:
        return answer


def unpack(stored: bytes | dict[str, Any]) -> dict[str, Any]:
    """The answer :func:`pack` kept: a new dict equal to the one packed."""
    return marshal.loads(stored) if isinstance(stored, bytes) else stored
