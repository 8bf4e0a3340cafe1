"""The exact state of the pure core as plain data: accounts, the latest marks, the news calendar.

Journal replays and snapshots (:mod:`riskactors.persistence`) store each account's full state
as plain data (:mod:`riskactors.domain.plain`), produced from the account's field definitions:
every stored field of :class:`~riskactors.domain.accountstate.AccountState` declares its codec
there, so this module holds no list of fields of its own.

Exactness. ``account_to_state(account_from_state(s, config)) == s`` for every ``s`` produced by
:func:`account_to_state`; and a restored account and the original return identical results for
any later sequence of calls: every field is captured, the reservation running sums exactly as
accumulated (float drift included), the expiry heap in list order, the idempotency memories
in insertion order, the rate window, the events and the closed trades with their ``maxlen``.
Only ``config`` (host settings, passed back in) and ``calendar`` (derived from the limits and
``config.calendar``) are not stored. Values are copied both ways: a state never aliases the live
account. Numbers keep their Python type; floats are stored as they are, infinities and NaN
included (msgpack carries them).

Versions. The state carries ``"version"``. :data:`STATE_VERSION` is 2. Version 1 (written
before the deployment clock, issue 9) had the same keys without ``clock``; it is migrated on
read: ``clock`` = the latest instant in its events (never before ``created_at``), and an expiry
heap whose top is no longer a live reservation is pruned.
"""

from __future__ import annotations

import heapq
from typing import Any

from .accountstate import AccountState, stored_fields
from .instruments import InstrumentRegistry
from .marks import LatestMarks
from .model import CalendarEvent, Mark
from .news import NewsCalendar
from .plain import dataclass_from, fields_of, plain

__all__ = [
    "STATE_VERSION",
    "account_to_state",
    "marks_from_state",
    "marks_to_state",
    "news_from_state",
    "news_to_state",
    "state_fields",
]

#: Version of the account state layout; stored under ``"version"``.
STATE_VERSION = 2
_FIELDS = stored_fields()
_KEYS = frozenset(_FIELDS) | {"version"}


def account_to_state(acct: AccountState) -> dict[str, Any]:
    """The complete state of ``acct`` as plain, msgpack-safe data.

    Returns
    -------
    dict
        ``{"version": STATE_VERSION, <field>: <stored value>, …}``, one key per stored field of
        :class:`AccountState`, as its codec stores it (money in account currency, quantities in
        signed lots, times in epoch seconds, days as ISO dates). Order-sensitive mappings are
        lists of ``[key, value]``. The result shares no mutable object with ``acct``.

    Raises
    ------
    TypeError
        Some value is not plain data (a bug to fix in the field's codec, not at the caller).
    """
    state: dict[str, Any] = {"version": STATE_VERSION}
    for name, codec in _FIELDS.items():
        state[name] = codec.dump(getattr(acct, name))
    return plain(state, "account")  # one deep copy: plain types only, nothing shared with ``acct``


def state_fields(state: dict[str, Any]) -> dict[str, Any]:
    """Field name → value of the account a state describes (any supported version).

    Parameters
    ----------
    state : dict
        Output of :func:`account_to_state` of this or an earlier version (possibly after a
        msgpack or JSON round trip). It is not modified; nothing returned aliases it.

    Raises
    ------
    TypeError
        ``state`` is not a dict, a part of it is not of the type stored there, or it holds a
        value that is not plain data.
    ValueError
        An unknown ``version``, or keys that do not match it (the message names them).
    LimitsError
        The stored limits are invalid.
    """
    if not isinstance(state, dict):
        raise TypeError(f"account state must be a dict, got {type(state).__name__}")
    s = plain(state, "account")  # private copy
    version = s.get("version")
    if version == 1:
        s = _from_version_1(s)
    elif version != STATE_VERSION:
        raise ValueError(f"unknown account state version {version!r}: this build reads versions 1 and "
                         f"{STATE_VERSION}")
    if set(s) != _KEYS:
        missing, extra = sorted(_KEYS - set(s)), sorted(set(s) - _KEYS)
        raise ValueError(f"account state keys do not match version {STATE_VERSION} (missing {missing}, "
                         f"unknown {extra})")
    return {name: codec.load(s[name]) for name, codec in _FIELDS.items()}


def _from_version_1(s: dict[str, Any]) -> dict[str, Any]:
    """Version 1 → 2: add ``clock``; prune an expiry heap whose top is not a live reservation."""
    events = s.get("events", {}).get("items", [])
    s["clock"] = max([s["created_at"], *(e["at"] for e in events if isinstance(e.get("at"), (int, float)))])
    live = {k: r["expires_at"] for k, r in s["reservations"]}
    heap = [tuple(x) for x in s["expiry"]]
    while heap and live.get(heap[0][1]) != heap[0][0]:
        heapq.heappop(heap)
    s["expiry"] = [list(x) for x in heap]
    s["version"] = STATE_VERSION
    return s


# ---------------------------------------------------------------------- marks and news
def marks_to_state(latest: LatestMarks) -> list[dict[str, Any]]:
    """The latest mark of every instrument, in the order first stored.

    Returns
    -------
    list of dict
        ``[{"instrument": str, "bid": float, "ask": float, "ts": float}, ...]``; prices in the
        instrument's quote currency, ``ts`` epoch seconds. The registry is not stored (it is
        configuration, passed back to :func:`marks_from_state`).
    """
    return plain([fields_of(m) for m in latest], "marks")


def marks_from_state(state: list[dict[str, Any]], registry: InstrumentRegistry) -> LatestMarks:
    """A :class:`LatestMarks` over ``registry`` holding the marks of :func:`marks_to_state`.

    Raises
    ------
    TypeError
        ``state`` is not a list of mark dicts.
    ValueError
        A mark lacks or adds fields, or one instrument appears twice.
    """
    if not isinstance(state, list):
        raise TypeError(f"marks state must be a list of marks, got {type(state).__name__}")
    latest = LatestMarks(registry)
    for i, m in enumerate(plain(state, "marks")):
        mark = dataclass_from(Mark, m, f"marks[{i}]")
        if latest.get(mark.instrument) is not None:
            raise ValueError(f"marks[{i}]: instrument {mark.instrument!r} appears twice")
        latest.apply(mark)
    return latest


def news_to_state(news: NewsCalendar) -> list[dict[str, Any]]:
    """Every calendar event of ``news``, in time order.

    Returns
    -------
    list of dict
        ``[{"event_id", "at" (epoch seconds), "title", "currencies" (list of str),
        "instruments" (list of str), "impact"}, ...]``.
    """
    return plain([fields_of(e) for e in news.events()], "news")


def news_from_state(state: list[dict[str, Any]]) -> NewsCalendar:
    """A :class:`NewsCalendar` holding the events of :func:`news_to_state`.

    Raises
    ------
    TypeError
        ``state`` is not a list of event dicts.
    ValueError
        An event lacks or adds ``CalendarEvent`` fields.
    """
    if not isinstance(state, list):
        raise TypeError(f"news state must be a list of events, got {type(state).__name__}")
    return NewsCalendar(dataclass_from(CalendarEvent, e, f"news[{i}]", currencies=tuple, instruments=tuple)
                        for i, e in enumerate(plain(state, "news")))
