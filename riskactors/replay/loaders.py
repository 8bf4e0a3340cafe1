"""Readers of real trade histories into :class:`Trade` records and price marks.

Formats
-------
``fundingpips``
    The FundingPips / seed risk-signal trade CSV (``identifier, action (0 buy, 1 sell), …,
    profit, swap, symbol, contract_size, profit_rate, platform, trading_account_login``).
    Times are read in ``tz``. ``profit`` is net of commission and swap. ``profit_rate`` is the
    broker's quote→account rate on platform 0 (MT5 convention); platform 1 rows leave it
    empty and platform 2 rows put the close price in it, so it is used as a rate only on
    platform 0. The file has no user or challenge columns: the user is the account login,
    the challenge ``fundingpips-p<platform>``.
``mt4``
    A MetaTrader 4 closed-trades statement CSV (``ticket, open_time, type, size_lots, item,
    open_price, sl, tp, close_time, close_price, commission, taxes, swap, profit,
    close_reason``), broker time read in ``tz``; ``profit`` is gross (commission, taxes and
    swap are separate). Marks come from the broker's H1 bars (``date,time,open,high,low,
    close,volume``, no header; times in ``tz``): one mark per bar at its close time with the close price.
    Where the bars have no USD/<account currency> bar at a bar time but have both legs of a
    cross (EURJPY and EURUSD, GBPJPY and GBPUSD, AUDJPY and AUDUSD…), a mark of the
    registry's USD/<account currency> pair (``USDJPY``) implied by the crosses (the mean of
    X/JPY ÷ X/USD) is added, so USD-quoted P&L converts at a rate of that hour: the
    ``mt4-ronnaru`` USDJPY bars end on 2019-04-05, before its trades start, while its EUR, GBP
    and AUD bars run to 2020-02-07.

Time zones
----------
A file's times carry no zone: ``tz`` (an IANA name, default ``UTC``, read with :mod:`zoneinfo`)
says which zone they are in, and every time becomes epoch seconds (UTC). In a zone with summer
time, a time in the hour repeated when the clocks go back is read as the first of the two
(``fold=0``), and one in the hour skipped when they go forward is read with the offset before
the change (PEP 495).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..domain import InstrumentRegistry, default_registry

__all__ = ["Trade", "TradeFile", "detect_format", "load_trades", "time_zone"]


@dataclass(slots=True)
class Trade:
    """One closed trade of a history file. Money in account currency, prices in quote currency."""

    trade_id: str
    account_id: str
    user_id: str
    challenge_id: str
    symbol: str
    side: str
    lots: float
    open_ts: float
    close_ts: float
    open_price: float
    close_price: float
    commission: float
    swap: float
    profit: float
    profit_is_net: bool
    stop_loss: float | None = None
    take_profit: float | None = None
    conversion_rate: float | None = None
    platform: str = ""
    complete: bool = True
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TradeFile:
    """Trades (sorted by open time), extra marks ``(ts, symbol, price)`` and the defaults of
    the format (account currency and initial balance of accounts it creates)."""

    fmt: str
    trades: list[Trade]
    marks: list[tuple[float, str, float]]
    currency: str
    balance: float
    skipped: list[str]


def time_zone(name: str) -> ZoneInfo:
    """The zone ``name`` (IANA, e.g. ``UTC``, ``Europe/Prague``) in which a file's naive times are read.

    Raises
    ------
    ValueError
        ``name`` is not a time zone known to :mod:`zoneinfo` (the message names it).
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name, e.g. UTC or Europe/Prague") from None


def _epoch(text: str, pattern: str, zone: tzinfo) -> float:
    """Epoch seconds (UTC) of the naive time ``text`` (``strptime`` ``pattern``) read in ``zone``."""
    return datetime.strptime(text, pattern).replace(tzinfo=zone).timestamp()


def _float(text: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    v = float(text)
    return v if math.isfinite(v) else None


def detect_format(path: Path) -> str:
    """``fundingpips`` or ``mt4`` from the header line.

    Raises
    ------
    ValueError
        Unrecognised header.
    """
    with open(path, encoding="utf-8") as fh:
        header = fh.readline()
    if "trading_account_login" in header and "profit_rate" in header:
        return "fundingpips"
    if header.startswith("ticket,") and "size_lots" in header:
        return "mt4"
    raise ValueError(f"{path}: unknown trade file format (header {header.strip()[:80]!r})")


def _load_fundingpips(path: Path, registry: InstrumentRegistry, zone: tzinfo) -> TradeFile:
    trades, skipped = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            ident = row["identifier"]
            symbol = row["symbol"]
            if symbol not in registry:
                skipped.append(f"{ident}: unknown symbol {symbol}")
                continue
            side = {"0": "buy", "1": "sell"}.get(row["action"])
            if side is None:
                skipped.append(f"{ident}: action {row['action']!r} is neither 0 (buy) nor 1 (sell)")
                continue
            platform = row["platform"]
            rate = _float(row["profit_rate"])
            notes = []
            complete = rate is not None
            if rate is None:
                notes.append("profit_rate empty")
            if platform != "0":
                notes.append(f"platform {platform} conventions")
            trades.append(Trade(
                trade_id=ident, account_id=row["trading_account_login"], user_id=row["trading_account_login"],
                challenge_id=f"fundingpips-p{platform}", symbol=symbol, side=side, lots=float(row["lot_size"]),
                open_ts=_epoch(row["opened_at"], "%Y-%m-%d %H:%M:%S.%f", zone),
                close_ts=_epoch(row["closed_at"], "%Y-%m-%d %H:%M:%S.%f", zone),
                open_price=float(row["open_price"]), close_price=float(row["close_price"]),
                commission=_float(row["commission"]) or 0.0, swap=_float(row["swap"]) or 0.0,
                profit=float(row["profit"]), profit_is_net=True,
                stop_loss=_float(row["price_sl"]), take_profit=_float(row["price_tp"]),
                conversion_rate=rate if platform == "0" else None, platform=platform, complete=complete,
                notes=notes))
    trades.sort(key=lambda t: (t.open_ts, t.trade_id))
    return TradeFile("fundingpips", trades, [], "USD", 100_000.0, skipped)


def _bar_symbol(stem: str, registry: InstrumentRegistry) -> str | None:
    for candidate in (stem.lower() + ".", stem.lower(), stem):
        if candidate in registry:
            return candidate
    return None


def _load_bars(folder: Path, registry: InstrumentRegistry, start: float, end: float,
               zone: tzinfo) -> list[tuple[float, str, float]]:
    marks = []
    for path in sorted(folder.glob("*H1.csv")):
        symbol = _bar_symbol(path.name[: -len("H1.csv")], registry)
        if symbol is None:
            continue
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                if len(row) < 6:
                    continue
                ts = _epoch(f"{row[0]} {row[1]}", "%Y.%m.%d %H:%M", zone) + 3600.0  # known at the bar's close
                if start - 86400.0 <= ts <= end:
                    marks.append((ts, symbol, float(row[5])))
    marks.sort()
    return marks


def _implied_usd_marks(marks: list[tuple[float, str, float]], registry: InstrumentRegistry,
                       currency: str) -> list[tuple[float, str, float]]:
    """Marks of the registry's USD/``currency`` pair implied by cross bars, at the bar times
    that have no bar of that pair (see the module docstring)."""
    target = next((i.symbol for i in registry if i.asset_class == "fx" and i.symbol.isupper()
                   and i.base_currency == "USD" and i.quote_currency == currency), None)
    if target is None:
        return []
    by_ts: dict[float, dict[tuple[str, str], float]] = defaultdict(dict)
    for ts, symbol, price in marks:
        inst = registry.get(symbol)
        if inst.asset_class == "fx":
            by_ts[ts][(inst.base_currency, inst.quote_currency)] = price
    implied = []
    for ts, pairs in by_ts.items():
        if ("USD", currency) in pairs:
            continue
        rates = [pairs[(base, quote)] / pairs[(base, "USD")] for base, quote in sorted(pairs)
                 if quote == currency and (base, "USD") in pairs]
        if rates:
            implied.append((ts, target, math.fsum(rates) / len(rates)))
    return implied


#: Account currency of the MT4 statement (the ronnaru account is in JPY).
_MT4_CURRENCY = "JPY"


def _load_mt4(path: Path, registry: InstrumentRegistry, bars: Path | None, zone: tzinfo) -> TradeFile:
    trades, skipped = [], []
    account = path.parent.name or "mt4"
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            symbol = row["item"]
            if symbol not in registry:
                skipped.append(f"{row['ticket']}: unknown symbol {symbol}")
                continue
            if row["type"] not in ("buy", "sell"):
                skipped.append(f"{row['ticket']}: type {row['type']!r}")
                continue
            sl, tp = _float(row["sl"]), _float(row["tp"])
            trades.append(Trade(
                trade_id=row["ticket"], account_id=account, user_id=account, challenge_id=f"mt4-{account}",
                symbol=symbol, side=row["type"], lots=float(row["size_lots"]),
                open_ts=_epoch(row["open_time"], "%Y.%m.%d %H:%M:%S", zone),
                close_ts=_epoch(row["close_time"], "%Y.%m.%d %H:%M:%S", zone),
                open_price=float(row["open_price"]), close_price=float(row["close_price"]),
                commission=(_float(row["commission"]) or 0.0) + (_float(row["taxes"]) or 0.0),
                swap=_float(row["swap"]) or 0.0, profit=float(row["profit"]), profit_is_net=False,
                stop_loss=sl or None, take_profit=tp or None))
    trades.sort(key=lambda t: (t.open_ts, t.trade_id))
    folder = bars if bars is not None else path.parent / "broker_bars_H1"
    marks = []
    if trades and folder.is_dir():
        marks = _load_bars(folder, registry, trades[0].open_ts, max(t.close_ts for t in trades), zone)
        marks = sorted(marks + _implied_usd_marks(marks, registry, _MT4_CURRENCY))
    return TradeFile("mt4", trades, marks, _MT4_CURRENCY, 1_000_000.0, skipped)


def load_trades(path: Path, fmt: str = "auto", bars: Path | None = None, limit: int | None = None,
                registry: InstrumentRegistry | None = None, tz: str = "UTC") -> TradeFile:
    """Read a trade history.

    Parameters
    ----------
    path : Path
    fmt : {"auto", "fundingpips", "mt4"}
    bars : Path, optional
        MT4 bars folder (default ``broker_bars_H1`` beside the file).
    limit : int, optional
        Keep only the first ``limit`` trades by open time (marks are cut to their span).
    tz : str
        IANA zone of the file's naive times (trades and bars), default ``UTC``; every time
        becomes epoch seconds (UTC). See "Time zones" in the module docstring.

    Raises
    ------
    ValueError
        Unknown format; unknown time zone ``tz`` (named in the message).
    """
    zone = time_zone(tz)
    registry = registry or default_registry()
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    tf = _load_fundingpips(path, registry, zone) if fmt == "fundingpips" else _load_mt4(path, registry, bars, zone)
    if limit is not None and limit < len(tf.trades):
        tf.trades = tf.trades[:limit]
        end = max(t.close_ts for t in tf.trades)
        tf.marks = [m for m in tf.marks if m[0] <= end]
    return tf
