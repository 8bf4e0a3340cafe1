"""Plain data: the msgpack- and JSON-safe values the journal and snapshots carry.

Plain data is ``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` and ``dict`` with
``str`` keys only. Tuples become lists (as msgpack and JSON make them), enums their
``.value``, and subclasses of ``str``/``int``/``float`` the base type. Pickle is deliberately
not used: state lives on shared storage and must neither run code when read nor depend on
class layouts.
"""

from __future__ import annotations

from dataclasses import fields
from enum import Enum
from typing import Any

__all__ = ["dataclass_from", "fields_of", "plain", "tuples"]

_ATOMS = frozenset({bool, int, float, str, type(None)})


class _NotPlain(TypeError):
    """A value that is not plain data; ``path`` is filled in while the recursion unwinds."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def _copy(x: Any) -> Any:
    # hot loop of every snapshot (tens of thousands of remembered decisions and fills per
    # busy account): atoms are copied inline, containers by recursion
    t = type(x)
    if t in _ATOMS:
        return x
    if t is dict or isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if type(k) is not str:
                k = _key(k)
            if type(v) in _ATOMS:
                out[k] = v
                continue
            try:
                out[k] = _copy(v)
            except _NotPlain as exc:
                exc.path.append(f".{k}")
                raise
        return out
    if t is list or t is tuple or isinstance(x, (list, tuple)):
        out_list = []
        for i, v in enumerate(x):
            if type(v) in _ATOMS:
                out_list.append(v)
                continue
            try:
                out_list.append(_copy(v))
            except _NotPlain as exc:
                exc.path.append(f"[{i}]")
                raise
        return out_list
    if isinstance(x, Enum):
        return _copy(x.value)
    for base in (str, int, float):
        if isinstance(x, base):
            return base(x)
    raise _NotPlain(f"{type(x).__name__} value {x!r} is not plain data")


def _key(k: Any) -> str:
    if not isinstance(k, str):
        raise _NotPlain(f"dict key {k!r} is not a str")
    return k.value if isinstance(k, Enum) else str(k)


def plain(x: Any, where: str) -> Any:
    """A deep copy of ``x`` made of plain types only (module docstring).

    Raises
    ------
    TypeError
        A value of any other type (a set, a date, a dataclass …) or a non-``str`` dict key;
        the message names where in ``where`` it was found.
    """
    try:
        return _copy(x)
    except _NotPlain as exc:
        raise TypeError(f"{where}{''.join(reversed(exc.path))}: {exc.message}") from None


def tuples(x: Any) -> Any:
    """``x`` with every list turned back into a tuple, recursively (order fingerprints)."""
    if isinstance(x, (list, tuple)):
        return tuple(tuples(v) for v in x)
    return x


def fields_of(obj: Any) -> dict[str, Any]:
    """Field name → value of a dataclass instance, in field order (made plain by the caller)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def dataclass_from(cls: type, data: dict[str, Any], where: str, **convert: Any) -> Any:
    """An instance of dataclass ``cls`` with exactly the fields in ``data`` (plain copies).

    Built with ``cls.__new__`` and field assignment, so ``__post_init__`` does not run: a
    restored value is the stored value, not a re-normalised one. ``convert`` maps a field name
    to a function applied to its stored value (e.g. ``tuple``).

    Raises
    ------
    TypeError
        ``data`` is not a dict.
    ValueError
        ``data`` lacks or adds fields.
    """
    if not isinstance(data, dict):
        raise TypeError(f"{where}: expected a dict of {cls.__name__} fields, got {type(data).__name__}")
    names = [f.name for f in fields(cls)]
    if set(data) != set(names):
        missing, extra = sorted(set(names) - set(data)), sorted(set(data) - set(names))
        raise ValueError(f"{where}: {cls.__name__} fields do not match (missing {missing}, unknown {extra})")
    obj = cls.__new__(cls)
    for name in names:
        value = data[name]
        object.__setattr__(obj, name, convert[name](value) if name in convert else value)
    return obj
