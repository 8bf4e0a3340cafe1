"""Explicit, exact serialization of the pure core's in-memory state to plain data.

Snapshots (issue 4) store each account's full state, the latest marks and the news calendar
as plain data that msgpack (or JSON) can carry: ``None``, ``bool``, ``int``, ``float``,
``str``, ``list`` and ``dict`` with ``str`` keys only — no tuples (emitted as lists), sets
(sorted lists), enums (their ``.value``), dates (ISO ``YYYY-MM-DD`` strings) or dataclass
instances (dicts of their fields). Pickle is deliberately not used: snapshots live on shared
storage and must neither execute code when read nor depend on class layouts.

Exactness. The round trip is exact in two senses:

- ``account_to_state(account_from_state(s, config)) == s`` for every ``s`` produced by
  :func:`account_to_state`;
- behavioural: a restored account and the original return identical results (decisions, fill
  results, views, events) for any later sequence of calls. So every attribute of
  :class:`~riskactors.domain.account.Account` is captured, private ones included: the
  reservation running sums exactly as accumulated (never recomputed, float drift included), the
  expiry heap in list order, the order and fill idempotency memories in insertion order, the
  rate window, the event journal and the closed trades with their ``maxlen``. Mappings whose
  order can matter (positions are summed in insertion order, for instance) are emitted as
  lists of ``[key, value]`` pairs so that state equality implies order equality.

Only ``config`` (host settings, passed back in) and ``calendar`` (derived from the limits and
``config.calendar``) are not stored. Values are copied both ways: a state never aliases the
live account, and two accounts restored from one state share nothing mutable.

Numbers keep their Python type (an ``int`` timestamp stays an ``int``). Floats are stored as
they are, infinities and NaN included (msgpack carries them; strict JSON would not); NaN being
unequal to itself, an equality check of two states holding one (say the remembered fingerprint
of an order rejected for a NaN quantity) fails although the restore is exact.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import fields
from datetime import date
from enum import Enum
from typing import Any

from .account import Account, AccountConfig
from .codes import AccountStatus, KillMode, KillScope, PositionMode
from .instruments import InstrumentRegistry
from .limits import Limits
from .marks import MarkBook
from .model import CalendarEvent, ClosedTrade, KillSwitch, Mark, Position, Reservation
from .rules import NewsCalendar

__all__ = [
    "STATE_VERSION",
    "account_from_state",
    "account_to_state",
    "book_from_state",
    "book_to_state",
    "news_from_state",
    "news_to_state",
]

#: Version of the account state layout; stored under ``"version"`` and checked on restore.
STATE_VERSION = 1

#: Account attribute → key of the account state that carries it (every stored attribute).
_ATTRIBUTE_KEYS: dict[str, str] = {
    "account_id": "account_id",
    "user_id": "user_id",
    "challenge_id": "challenge_id",
    "currency": "currency",
    "initial_balance": "initial_balance",
    "plan": "plan",
    "plan_version": "plan_version",
    "limits": "limits",
    "position_mode": "position_mode",
    "created_at": "created_at",
    "balance": "balance",
    "positions": "positions",
    "reservations": "reservations",
    "_reserved": "reserved",
    "_opening_reservations": "opening_reservations",
    "_expiry": "expiry",
    "status": "status",
    "switches": "switches",
    "trading_day": "trading_day",
    "day_start_balance": "day_start_balance",
    "day_start_equity": "day_start_equity",
    "high_water_mark": "high_water_mark",
    "eod_high_water_mark": "eod_high_water_mark",
    "soft_blocked_day": "soft_blocked_day",
    "active_days": "active_days",
    "day_opened_trades": "day_opened_trades",
    "day_results": "day_results",
    "hft_count": "hft_count",
    "last_losing_close": "last_losing_close",
    "closed_trades": "closed_trades",
    "_closed_ids": "closed_ids",
    "recommendations": "recommendations",
    "_losing_days": "losing_days",
    "breaches": "breaches",
    "events": "events",
    "event_seq": "event_seq",
    "_orders": "orders",
    "_fills": "fills",
    "_recent_checks": "recent_checks",
}
#: Account attributes deliberately not stored: rebuilt from ``config`` and the limits.
_DERIVED_ATTRIBUTES = frozenset({"config", "calendar"})
_STATE_KEYS = frozenset(_ATTRIBUTE_KEYS.values()) | {"version"}


# ---------------------------------------------------------------------- plain-data helpers
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


def _plain(x: Any, where: str) -> Any:
    """A deep copy of ``x`` made of msgpack-safe plain types only.

    Tuples become lists (as msgpack and JSON would make them), enums their ``.value``, and
    subclasses of ``str``/``int``/``float`` the base type.

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


def _tuple(x: Any) -> Any:
    """``x`` with every list turned back into a tuple, recursively (order fingerprints)."""
    if isinstance(x, (list, tuple)):
        return tuple(_tuple(v) for v in x)
    return x


def _enum_value(x: Any) -> Any:
    return x.value if isinstance(x, Enum) else x


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _date(s: str | None) -> date | None:
    return None if s is None else date.fromisoformat(s)


def _fields_of(obj: Any) -> dict[str, Any]:
    """Field name → value of a dataclass instance, in field order (made plain by the caller)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _dataclass_from(cls: type, data: dict[str, Any], where: str, **convert: Any) -> Any:
    """An instance of dataclass ``cls`` with exactly the fields in ``data`` (already plain copies).

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


def _switch_to(sw: KillSwitch) -> dict[str, Any]:
    return {"scope": _enum_value(sw.scope), "id": sw.scope_id, "mode": _enum_value(sw.mode),
            "reason": sw.reason, "by": sw.by, "at": sw.at, "breach": sw.breach}


def _switch_from(d: dict[str, Any]) -> KillSwitch:
    return KillSwitch(KillScope(d["scope"]), d["id"], KillMode(d["mode"]), d["reason"], d["by"], d["at"],
                      d["breach"])


# ---------------------------------------------------------------------- account
def account_to_state(acct: Account) -> dict[str, Any]:
    """The complete state of ``acct`` as plain, msgpack-safe data.

    Parameters
    ----------
    acct : Account

    Returns
    -------
    dict
        ``{"version": STATE_VERSION, ...}`` with one key per stored attribute. Money in account
        currency, quantities in signed lots, times in epoch seconds, days as ISO dates, exactly
        as the account holds them. Order-sensitive mappings are lists of ``[key, value]``:
        ``positions`` ``[[key, {Position fields}]]``, ``reservations`` ``[[order_id,
        {Reservation fields}]]``, ``reserved`` ``[[instrument, [buys, sells, count, opening
        buys, opening sells]]]``, ``switches`` ``[[[scope, id], {switch}]]``, ``day_results``
        ``[[day, result]]``, ``recommendations`` ``[[id, {…}]]``, ``orders`` ``[[order_id,
        fingerprint list, decision]]``, ``fills`` ``[[fill_id, fingerprint list, result]]``;
        ``expiry`` is the heap list ``[[expires_at, order_id]]``; ``events`` and
        ``closed_trades`` are ``{"maxlen": int, "items": [...]}``. The result shares no mutable
        object with ``acct``.

    Raises
    ------
    TypeError
        Some value of the account is not plain data (a bug to fix here, not at the caller).
    """
    a = acct
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "account_id": a.account_id,
        "user_id": a.user_id,
        "challenge_id": a.challenge_id,
        "currency": a.currency,
        "initial_balance": a.initial_balance,
        "plan": a.plan,
        "plan_version": a.plan_version,
        "limits": a.limits.to_dict(),
        "position_mode": _enum_value(a.position_mode),
        "created_at": a.created_at,
        "balance": a.balance,
        "positions": [[k, _fields_of(p)] for k, p in a.positions.items()],
        "reservations": [[k, _fields_of(r)] for k, r in a.reservations.items()],
        "reserved": [[k, list(sums)] for k, sums in a._reserved.items()],
        "opening_reservations": a._opening_reservations,
        "expiry": [[at, oid] for at, oid in a._expiry],
        "status": _enum_value(a.status),
        "switches": [[[scope, scope_id], _switch_to(sw)] for (scope, scope_id), sw in a.switches.items()],
        "trading_day": _iso(a.trading_day),
        "day_start_balance": a.day_start_balance,
        "day_start_equity": a.day_start_equity,
        "high_water_mark": a.high_water_mark,
        "eod_high_water_mark": a.eod_high_water_mark,
        "soft_blocked_day": _iso(a.soft_blocked_day),
        "active_days": sorted(a.active_days),
        "day_opened_trades": a.day_opened_trades,
        "day_results": [[day, result] for day, result in a.day_results.items()],
        "hft_count": a.hft_count,
        "last_losing_close": a.last_losing_close,
        "closed_trades": {"maxlen": a.closed_trades.maxlen,
                          "items": [_fields_of(t) for t in a.closed_trades]},
        "closed_ids": list(a._closed_ids),
        "recommendations": [[k, r] for k, r in a.recommendations.items()],
        "losing_days": a._losing_days,
        "breaches": a.breaches,
        "events": {"maxlen": a.events.maxlen, "items": list(a.events)},
        "event_seq": a.event_seq,
        "orders": [[k, fp, d] for k, (fp, d) in a._orders.items()],
        "fills": [[k, fp, r] for k, (fp, r) in a._fills.items()],
        "recent_checks": list(a._recent_checks),
    }
    return _plain(state, "account")  # one deep copy: plain types only, nothing shared with ``acct``


def account_from_state(state: dict[str, Any], config: AccountConfig) -> Account:
    """Rebuild the account that :func:`account_to_state` described.

    ``Account.__init__`` is not run (it would record a second ``account_opened`` event): the
    account is allocated and every attribute is set from ``state``; ``calendar`` is derived
    from the limits and ``config.calendar``, as the account itself derives it.

    Parameters
    ----------
    state : dict
        Output of :func:`account_to_state` (possibly after a msgpack or JSON round trip). It is
        not modified, and the account shares no mutable object with it.
    config : AccountConfig
        Host settings (reservation TTL, default trading-day calendar) the account runs under.

    Returns
    -------
    Account

    Raises
    ------
    TypeError
        ``state`` is not a dict, a part of it is not of the type stored there, or it holds a
        value that is not plain data.
    ValueError
        Its ``version`` is not :data:`STATE_VERSION`, or it (or a stored dataclass) lacks or
        adds keys; the message names them.
    LimitsError
        The stored limits are invalid.
    """
    if not isinstance(state, dict):
        raise TypeError(f"account state must be a dict, got {type(state).__name__}")
    version = state.get("version")
    if version != STATE_VERSION:
        raise ValueError(f"unknown account state version {version!r}: this build reads version {STATE_VERSION}")
    if set(state) != _STATE_KEYS:
        missing, extra = sorted(_STATE_KEYS - set(state)), sorted(set(state) - _STATE_KEYS)
        raise ValueError(f"account state keys do not match version {STATE_VERSION} (missing {missing}, "
                         f"unknown {extra})")
    s = _plain(state, "account")  # private copy: nothing restored aliases the caller's state
    a = Account.__new__(Account)
    a.account_id = s["account_id"]
    a.user_id = s["user_id"]
    a.challenge_id = s["challenge_id"]
    a.currency = s["currency"]
    a.initial_balance = s["initial_balance"]
    a.plan = s["plan"]
    a.plan_version = s["plan_version"]
    a.limits = Limits.from_dict(s["limits"])
    a.config = config
    a.calendar = a.limits.calendar(config.calendar)
    a.position_mode = PositionMode(s["position_mode"])
    a.created_at = s["created_at"]
    a.balance = s["balance"]
    a.positions = {k: _dataclass_from(Position, p, f"positions.{k}") for k, p in s["positions"]}
    a.reservations = {k: _dataclass_from(Reservation, r, f"reservations.{k}") for k, r in s["reservations"]}
    a._reserved = {k: list(sums) for k, sums in s["reserved"]}
    a._opening_reservations = s["opening_reservations"]
    a._expiry = [(at, oid) for at, oid in s["expiry"]]
    a.status = AccountStatus(s["status"])
    a.switches = {(scope, scope_id): _switch_from(sw) for (scope, scope_id), sw in s["switches"]}
    a.trading_day = _date(s["trading_day"])
    a.day_start_balance = s["day_start_balance"]
    a.day_start_equity = s["day_start_equity"]
    a.high_water_mark = s["high_water_mark"]
    a.eod_high_water_mark = s["eod_high_water_mark"]
    a.soft_blocked_day = _date(s["soft_blocked_day"])
    a.active_days = set(s["active_days"])
    a.day_opened_trades = s["day_opened_trades"]
    a.day_results = {day: result for day, result in s["day_results"]}
    a.hft_count = s["hft_count"]
    a.last_losing_close = s["last_losing_close"]
    trades = s["closed_trades"]
    a.closed_trades = deque((_dataclass_from(ClosedTrade, t, "closed_trades") for t in trades["items"]),
                            maxlen=trades["maxlen"])
    a._closed_ids = OrderedDict((pid, None) for pid in s["closed_ids"])
    a.recommendations = OrderedDict((k, r) for k, r in s["recommendations"])
    a._losing_days = s["losing_days"]
    a.breaches = s["breaches"]
    a.events = deque(s["events"]["items"], maxlen=s["events"]["maxlen"])
    a.event_seq = s["event_seq"]
    a._orders = OrderedDict((k, (_tuple(fp), d)) for k, fp, d in s["orders"])
    a._fills = {k: (_tuple(fp), r) for k, fp, r in s["fills"]}
    a._recent_checks = deque(s["recent_checks"])
    return a


# ---------------------------------------------------------------------- marks and news
def book_to_state(book: MarkBook) -> list[dict[str, Any]]:
    """The latest mark of every instrument held by ``book``, in the order first stored.

    Returns
    -------
    list of dict
        ``[{"instrument": str, "bid": float, "ask": float, "ts": float}, ...]``; prices in the
        instrument's quote currency, ``ts`` epoch seconds. The registry is not stored (it is
        configuration, passed back to :func:`book_from_state`).
    """
    marks = book._marks.values()  # same package: MarkBook has no public iterator over its marks
    return _plain([_fields_of(m) for m in marks], "book")


def book_from_state(state: list[dict[str, Any]], registry: InstrumentRegistry) -> MarkBook:
    """A :class:`MarkBook` over ``registry`` holding the marks of :func:`book_to_state`.

    Raises
    ------
    TypeError
        ``state`` is not a list of mark dicts.
    ValueError
        A mark lacks or adds fields, or one instrument appears twice.
    """
    if not isinstance(state, list):
        raise TypeError(f"book state must be a list of marks, got {type(state).__name__}")
    book = MarkBook(registry)
    for i, m in enumerate(_plain(state, "book")):
        mark = _dataclass_from(Mark, m, f"book[{i}]")
        if book.get(mark.instrument) is not None:
            raise ValueError(f"book[{i}]: instrument {mark.instrument!r} appears twice")
        book.apply(mark)
    return book


def news_to_state(news: NewsCalendar) -> list[dict[str, Any]]:
    """Every calendar event of ``news``, in time order.

    Returns
    -------
    list of dict
        ``[{"event_id", "at" (epoch seconds), "title", "currencies" (list of str),
        "instruments" (list of str), "impact"}, ...]``.
    """
    return _plain([_fields_of(e) for e in news.events()], "news")


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
    return NewsCalendar(_dataclass_from(CalendarEvent, e, f"news[{i}]", currencies=tuple, instruments=tuple)
                        for i, e in enumerate(_plain(state, "news")))
