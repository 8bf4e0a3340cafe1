"""Trading-behaviour analytics over closed trades: metrics, a behaviour score and flags.

Reads :class:`~riskactors.domain.model.ClosedTrade` records (a position from open to flat; in
hedging mode one ticket) of one account, or of several accounts pooled (a user, a challenge),
and computes the statistics prop firms use to judge *how* an account trades, as opposed to how
close it is to its limits (that is the risk score of :mod:`riskactors.domain.valuation`).

Units
-----
- Money (``gross_profit``, ``gross_loss``, ``net_pnl``, ``max_drawdown_amount``, balances):
  account currency, float64, unrounded (presentation rounds, usually to 0.01).
- Ratios and shares (``win_ratio``, ``stop_loss_used``, ``take_profit_used``,
  ``max_relative_drawdown``, ``best_day_share``, score components, thresholds expressed as
  fractions): **fractions 0–1, never per cent**. ``profit_factor`` is a plain ratio (≥ 0).
- Times: seconds (``avg_hold_seconds``, ``hft_seconds``); trade times are epoch seconds (UTC).
- Behaviour score: 0–100, rounded to 0.1.

Order and determinism
---------------------
Inputs need not be sorted. Trades are put in *close-time order*: by ``close_time``, ties by
``position_id``, then ``account_id`` (pooled accounts may reuse position ids). Every
order-dependent metric (balance curve, streaks, the rolling window) uses that order, so the
result does not depend on the order of the input.

Nothing here reads the clock or imports anything but the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .errors import FieldError
from .model import MONEY_EPS, ClosedTrade

__all__ = [
    "COMPONENTS",
    "DEFAULT_WEIGHTS",
    "METRIC_KEYS",
    "AnalyticsConfigError",
    "BehaviourConfig",
    "BehaviourFlag",
    "analyse",
    "behaviour_flags",
    "behaviour_score",
    "pooled",
    "sort_trades",
    "trade_metrics",
]

#: Names of the behaviour-score components, in the order they are reported.
COMPONENTS: tuple[str, ...] = (
    "drawdown",
    "no_stop_loss",
    "hft",
    "layering",
    "losing_streak",
    "best_day_concentration",
    "low_profit_factor",
)

#: Default component weights (sum to 1). Read-only; :class:`BehaviourConfig` copies it.
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "drawdown": 0.25,
    "no_stop_loss": 0.20,
    "hft": 0.15,
    "layering": 0.15,
    "losing_streak": 0.10,
    "best_day_concentration": 0.10,
    "low_profit_factor": 0.05,
})

#: Keys of the dict returned by :func:`trade_metrics`, in order.
METRIC_KEYS: tuple[str, ...] = (
    "trades",
    "wins",
    "losses",
    "win_ratio",
    "gross_profit",
    "gross_loss",
    "net_pnl",
    "profit_factor",
    "start_balance",
    "end_balance",
    "max_relative_drawdown",
    "max_drawdown_amount",
    "stop_loss_used",
    "take_profit_used",
    "hft_count",
    "max_layering",
    "avg_hold_seconds",
    "longest_losing_streak",
    "best_day",
    "best_day_pnl",
    "best_day_share",
)

#: Tolerance when checking that the weights sum to 1.
_WEIGHT_SUM_TOLERANCE = 1e-9


class BehaviourFlag(StrEnum):
    """Behaviour flags raised when a threshold of :class:`BehaviourConfig` is crossed.

    The values are stable codes (part of the HTTP contract: never renamed, only added).
    """

    #: ``max_relative_drawdown ≥ drawdown_threshold``.
    HIGH_DRAWDOWN = "HIGH_DRAWDOWN"
    #: ``stop_loss_used < stop_loss_min_fraction``.
    NO_STOP_LOSS = "NO_STOP_LOSS"
    #: ``hft_count > hft_max_count``.
    HFT = "HFT"
    #: ``max_layering ≥ layering_threshold``.
    LAYERING = "LAYERING"
    #: ``longest_losing_streak ≥ losing_streak_threshold``.
    LOSING_STREAK = "LOSING_STREAK"
    #: ``best_day_share > best_day_share_threshold``.
    PROFIT_CONCENTRATION = "PROFIT_CONCENTRATION"
    #: ``win_ratio < win_ratio_threshold``.
    LOW_WIN_RATIO = "LOW_WIN_RATIO"
    #: ``take_profit_used < take_profit_min_fraction``.
    NO_TAKE_PROFIT = "NO_TAKE_PROFIT"
    #: behaviour score ≥ ``risk_threshold``.
    HIGH_RISK_SCORE = "HIGH_RISK_SCORE"


class AnalyticsConfigError(FieldError):
    """A :class:`BehaviourConfig` value is invalid. ``field`` names the offending field
    (``weights.<component>`` for one bad weight, ``weights`` for a bad key set or sum)."""



def _default_weights() -> dict[str, float]:
    return dict(DEFAULT_WEIGHTS)


@dataclass(frozen=True, slots=True)
class BehaviourConfig:
    """Thresholds and weights of the behaviour analytics; ops-configurable, validated on creation.

    Attributes
    ----------
    hft_seconds : float, default 60.0
        A trade held strictly less than this many seconds (``close_time − open_time``) counts
        as high-frequency; a hold of exactly ``hft_seconds`` does not. ≥ 0.
    window : int, default 100
        Size N of the rolling window: the last N trades in close-time order. ≥ 1.
    drawdown_threshold : float, default 0.10
        Fraction 0–1 (0 excluded). ``HIGH_DRAWDOWN`` when ``max_relative_drawdown`` ≥ it; the
        ``drawdown`` component is ``max_relative_drawdown / drawdown_threshold`` clamped to 1.
    layering_threshold : int, default 10
        Positions open at once. ``LAYERING`` when ``max_layering`` ≥ it; the ``layering``
        component is ``max_layering / layering_threshold`` clamped to 1. ≥ 1.
    losing_streak_threshold : int, default 10
        Consecutive losing trades. ``LOSING_STREAK`` when ``longest_losing_streak`` ≥ it; the
        ``losing_streak`` component is the ratio clamped to 1. ≥ 1.
    hft_max_count : int, default 10
        ``HFT`` when ``hft_count`` is strictly greater. ≥ 0.
    stop_loss_min_fraction : float, default 0.5
        Fraction 0–1. ``NO_STOP_LOSS`` when the fraction of trades with a stop-loss is
        strictly below it.
    best_day_share_threshold : float, default 0.5
        Fraction 0–1 (0 excluded). ``PROFIT_CONCENTRATION`` when ``best_day_share`` is strictly
        above it (prop-firm consistency rule "best day's profit ≤ X % of total profit").
    win_ratio_threshold : float, default 0.3
        Fraction 0–1. ``LOW_WIN_RATIO`` when ``win_ratio`` is strictly below it.
    take_profit_min_fraction : float, default 0.0
        Fraction 0–1. ``NO_TAKE_PROFIT`` when the fraction of trades with a take-profit is
        strictly below it (0: never).
    risk_threshold : float, default 70.0
        Behaviour score 0–100 at or above which ``HIGH_RISK_SCORE`` is raised (the seed
        risk-signal service's webhook threshold).
    weights : dict[str, float], default :data:`DEFAULT_WEIGHTS`
        Weight of each score component; keys exactly :data:`COMPONENTS`, each ≥ 0, summing to
        1 within 1e-9. Stored as a fresh dict in :data:`COMPONENTS` order; treat it as read-only.

    Raises
    ------
    AnalyticsConfigError
        On any invalid value; ``.field`` names the field.
    """

    hft_seconds: float = 60.0
    window: int = 100
    drawdown_threshold: float = 0.10
    layering_threshold: int = 10
    losing_streak_threshold: int = 10
    hft_max_count: int = 10
    stop_loss_min_fraction: float = 0.5
    best_day_share_threshold: float = 0.5
    win_ratio_threshold: float = 0.3
    take_profit_min_fraction: float = 0.0
    risk_threshold: float = 70.0
    weights: dict[str, float] = field(default_factory=_default_weights, hash=False)

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "hft_seconds", _real(self.hft_seconds, "hft_seconds", low=0.0))
        s(self, "window", _integer(self.window, "window", low=1))
        s(self, "drawdown_threshold", _real(self.drawdown_threshold, "drawdown_threshold", low=0.0, high=1.0,
                                            low_open=True))
        s(self, "layering_threshold", _integer(self.layering_threshold, "layering_threshold", low=1))
        s(self, "losing_streak_threshold", _integer(self.losing_streak_threshold, "losing_streak_threshold", low=1))
        s(self, "hft_max_count", _integer(self.hft_max_count, "hft_max_count", low=0))
        s(self, "stop_loss_min_fraction", _real(self.stop_loss_min_fraction, "stop_loss_min_fraction", low=0.0,
                                                high=1.0))
        s(self, "best_day_share_threshold", _real(self.best_day_share_threshold, "best_day_share_threshold",
                                                  low=0.0, high=1.0, low_open=True))
        s(self, "win_ratio_threshold", _real(self.win_ratio_threshold, "win_ratio_threshold", low=0.0, high=1.0))
        s(self, "take_profit_min_fraction", _real(self.take_profit_min_fraction, "take_profit_min_fraction",
                                                  low=0.0, high=1.0))
        s(self, "risk_threshold", _real(self.risk_threshold, "risk_threshold", low=0.0, high=100.0))
        s(self, "weights", _weights(self.weights))

    def with_updates(self, updates: Mapping[str, Any]) -> BehaviourConfig:
        """A copy with the fields of ``updates`` replaced (validated again).

        ``weights``, when given, replaces the whole weight table (a partial table would not
        sum to 1).

        Raises
        ------
        AnalyticsConfigError
            A key that is not a field (``.field`` is that key), or an invalid value.
        """
        known = {f.name for f in fields(self)}
        for key in updates:
            if key not in known:
                raise AnalyticsConfigError(str(key), f"unknown field; known fields: {', '.join(sorted(known))}")
        return replace(self, **dict(updates))

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-safe values (``weights`` copied)."""
        return {f.name: (dict(self.weights) if f.name == "weights" else getattr(self, f.name))
                for f in fields(self)}


def _real(value: Any, name: str, *, low: float | None = None, high: float | None = None,
          low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnalyticsConfigError(name, f"must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise AnalyticsConfigError(name, f"must be finite, got {value!r}")
    if low is not None and (x <= low if low_open else x < low):
        raise AnalyticsConfigError(name, f"must be {'>' if low_open else '≥'} {low:g}, got {x:g}")
    if high is not None and x > high:
        raise AnalyticsConfigError(name, f"must be ≤ {high:g}, got {x:g}")
    return x


def _integer(value: Any, name: str, *, low: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON clients may send 10.0
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnalyticsConfigError(name, f"must be an integer, got {value!r}")
    if value < low:
        raise AnalyticsConfigError(name, f"must be ≥ {low}, got {value}")
    return int(value)


def _weights(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise AnalyticsConfigError("weights", f"must be a mapping of component to weight, got {value!r}")
    missing = [k for k in COMPONENTS if k not in value]
    unknown = sorted(str(k) for k in value if k not in COMPONENTS)
    if missing or unknown:
        raise AnalyticsConfigError("weights", f"keys must be exactly {', '.join(COMPONENTS)}; "
                                              f"missing: {missing or 'none'}, unknown: {unknown or 'none'}")
    out = {k: _real(value[k], f"weights.{k}", low=0.0) for k in COMPONENTS}
    total = math.fsum(out.values())
    if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
        raise AnalyticsConfigError("weights", f"must sum to 1 (±{_WEIGHT_SUM_TOLERANCE:g}), got {total!r}")
    return out


# ---------------------------------------------------------------------------------------------
# metrics


def _close_order_key(t: ClosedTrade) -> tuple[float, str, str]:
    return (t.close_time, t.position_id, t.account_id)


def _checked(trades: Iterable[ClosedTrade]) -> list[ClosedTrade]:
    out = list(trades)
    for t in out:
        if not (math.isfinite(t.open_time) and math.isfinite(t.close_time) and math.isfinite(t.pnl)):
            raise ValueError(f"{t.account_id}/{t.position_id}: open_time, close_time and pnl must be finite")
        if t.close_time < t.open_time:
            raise ValueError(f"{t.account_id}/{t.position_id}: close_time {t.close_time!r} "
                             f"is before open_time {t.open_time!r}")
    return out


def sort_trades(trades: Iterable[ClosedTrade]) -> list[ClosedTrade]:
    """``trades`` in close-time order: by ``close_time``, ties by ``position_id``, then ``account_id``.

    Raises
    ------
    ValueError
        A trade with a non-finite ``open_time``, ``close_time`` or ``pnl``, or closed before it
        opened.
    """
    return sorted(_checked(trades), key=_close_order_key)


def _finite_or_none(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def _max_layering(trades: Sequence[ClosedTrade]) -> int:
    """Most positions open at once, each open over ``[open_time, close_time)``.

    Sweep over events; at one instant, closes come before opens, so a position closed at t
    and one opened at t do not layer. A zero-length position (``open_time == close_time``)
    is open at its instant only, after the closes and before the opens at that instant: it
    counts itself plus the positions with ``open_time < t < close_time``.
    """
    events: list[tuple[float, int]] = []  # kind: 0 close, 1 zero-length, 2 open
    for t in trades:
        if t.close_time > t.open_time:
            events.append((t.open_time, 2))
            events.append((t.close_time, 0))
        else:
            events.append((t.open_time, 1))
    events.sort()
    current = best = 0
    for _, kind in events:
        if kind == 0:
            current -= 1
        elif kind == 1:
            best = max(best, current + 1)
        else:
            current += 1
            best = max(best, current)
    return best


def _metrics_sorted(trades: Sequence[ClosedTrade], start_balance: float, config: BehaviourConfig) -> dict[str, Any]:
    n = len(trades)
    pnls = [t.pnl for t in trades]
    # a result within MONEY_EPS of zero (float dust of a break-even trade) is neither a win nor a loss
    signs = [0 if abs(p) <= MONEY_EPS else (1 if p > 0 else -1) for p in pnls]
    wins = signs.count(1)
    losses = signs.count(-1)
    gross_profit = math.fsum(p for p, sg in zip(pnls, signs) if sg > 0)
    gross_loss = math.fsum(-p for p, sg in zip(pnls, signs) if sg < 0)
    net_pnl = math.fsum(pnls)

    # closed-trade balance curve, starting at start_balance
    balance = peak = float(start_balance)
    max_dd_amount = max_dd_rel = 0.0
    streak = longest_streak = 0
    for p, sg in zip(pnls, signs):
        balance += p
        peak = max(peak, balance)
        max_dd_amount = max(max_dd_amount, peak - balance)
        if peak > MONEY_EPS:  # a ratio to a zero (or dust) peak is undefined
            max_dd_rel = max(max_dd_rel, (peak - balance) / peak)
        streak = streak + 1 if sg < 0 else 0
        longest_streak = max(longest_streak, streak)

    day_pnl: dict[str, list[float]] = {}
    for t in trades:
        day_pnl.setdefault(t.close_day, []).append(t.pnl)
    best_day: str | None = None
    best_day_pnl: float | None = None
    for day in sorted(day_pnl):  # ties: the earliest day
        total = math.fsum(day_pnl[day])
        if best_day_pnl is None or total > best_day_pnl:
            best_day, best_day_pnl = day, total
    best_day_share = best_day_pnl / net_pnl if best_day_pnl is not None and net_pnl > MONEY_EPS else None

    values: dict[str, Any] = {
        "trades": n,
        "wins": wins,
        "losses": losses,
        "win_ratio": wins / n if n else None,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "net_pnl": net_pnl,
        "profit_factor": _finite_or_none(gross_profit / gross_loss) if gross_loss > 0 else None,
        "start_balance": float(start_balance),
        "end_balance": balance,
        "max_relative_drawdown": max_dd_rel,
        "max_drawdown_amount": max_dd_amount,
        "stop_loss_used": sum(1 for t in trades if t.stop_loss_used) / n if n else None,
        "take_profit_used": sum(1 for t in trades if t.take_profit_used) / n if n else None,
        "hft_count": sum(1 for t in trades if t.hold_seconds < config.hft_seconds),
        "max_layering": _max_layering(trades),
        "avg_hold_seconds": math.fsum(t.hold_seconds for t in trades) / n if n else None,
        "longest_losing_streak": longest_streak,
        "best_day": best_day,
        "best_day_pnl": best_day_pnl,
        "best_day_share": _finite_or_none(best_day_share),
    }
    for key, v in values.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{key} overflowed ({v!r}): P&L or balances out of float range")
    return values


def trade_metrics(trades: Iterable[ClosedTrade], initial_balance: float,
                  config: BehaviourConfig | None = None) -> dict[str, Any]:
    """Behaviour metrics over a set of closed trades (one account, or several pooled).

    Parameters
    ----------
    trades : iterable of ClosedTrade
        In any order; put in close-time order (see :func:`sort_trades`).
    initial_balance : float
        Account currency; the balance curve starts here.
    config : BehaviourConfig, optional
        Only ``hft_seconds`` is read. Default ``BehaviourConfig()``.

    Returns
    -------
    dict
        JSON-safe (no infinity or NaN), keys :data:`METRIC_KEYS`:

        - ``trades`` (int): number of trades. ``wins`` / ``losses``: trades with pnl > 0 / < 0
          (|pnl| ≤ ``MONEY_EPS`` counts as 0: float dust of a break-even trade is neither)
          (pnl == 0 is neither).
        - ``win_ratio``: wins / trades, fraction 0–1; ``None`` with no trades.
        - ``gross_profit``: Σ of positive pnl; ``gross_loss``: Σ |negative pnl| (≥ 0);
          ``net_pnl``: Σ pnl. Account currency.
        - ``profit_factor``: gross_profit / gross_loss; ``None`` when gross_loss == 0.
        - ``start_balance`` / ``end_balance``: first and last point of the balance curve
          (account currency).
        - ``max_relative_drawdown``: the closed-trade balance curve is ``start_balance``, then
          the balance after each trade in close-time order; the drawdown at a point is
          (running peak − balance) / running peak; this is its maximum, a fraction ≥ 0
          (0 when the curve never falls below a peak; above 1 only if the balance went
          negative). Points where the running peak is ≤ ``MONEY_EPS`` (1e-6) are skipped: a
          ratio to a zero peak is undefined.
        - ``max_drawdown_amount``: max of (running peak − balance) on the same curve, account
          currency. It may occur at another point than the relative maximum.
        - ``stop_loss_used`` / ``take_profit_used``: fraction 0–1 of trades whose position had a
          stop-loss / take-profit at any time; ``None`` with no trades.
        - ``hft_count``: trades held strictly less than ``config.hft_seconds``
          (hold = close_time − open_time).
        - ``max_layering``: most positions open at the same time over the
          ``[open_time, close_time)`` intervals; a close at t comes before an open at t (they do
          not layer). A zero-length trade counts as open at its instant (see ``_max_layering``).
        - ``avg_hold_seconds``: mean hold, seconds; ``None`` with no trades.
        - ``longest_losing_streak``: longest run of consecutive trades (close-time order) with
          pnl < 0; a trade with pnl ≥ 0 (0 included) ends a run.
        - ``best_day``: ISO ``close_day`` with the largest day profit (Σ pnl of the trades closed
          that trading day; ties: the earliest day); ``best_day_pnl``: that day profit (account
          currency, may be negative). Both ``None`` with no trades.
        - ``best_day_share``: best_day_pnl / net_pnl, fraction (may exceed 1 when other days
          lost); ``None`` when net_pnl ≤ ``MONEY_EPS`` (no total profit). Source: the prop-firm
          consistency rule "best day's profit ≤ X % of total profit".

    Raises
    ------
    ValueError
        ``initial_balance`` not finite, or a trade as in :func:`sort_trades`.
    """
    config = config if config is not None else BehaviourConfig()
    start = _balance(initial_balance)
    return _metrics_sorted(sort_trades(trades), start, config)


def _balance(initial_balance: float) -> float:
    x = float(initial_balance)
    if not math.isfinite(x):
        raise ValueError(f"initial_balance must be finite, got {initial_balance!r}")
    return x


# ---------------------------------------------------------------------------------------------
# score and flags


def _clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def behaviour_score(metrics: Mapping[str, Any], config: BehaviourConfig | None = None
                    ) -> tuple[float, dict[str, float]]:
    """Behaviour score 0–100 of a :func:`trade_metrics` dict: riskier behaviour → higher score.

    score = 100 × Σ_k weight_k × component_k, clamped to [0, 100] and rounded to 0.1, where
    every component is a fraction 0–1 (0 = harmless, 1 = as risky as it counts):

    - ``drawdown``: max_relative_drawdown / drawdown_threshold, clamped to 1.
    - ``no_stop_loss``: 1 − stop_loss_used.
    - ``hft``: hft_count / trades.
    - ``layering``: max_layering / layering_threshold, clamped to 1.
    - ``losing_streak``: longest_losing_streak / losing_streak_threshold, clamped to 1.
    - ``best_day_concentration``: best_day_share clamped to [0, 1]; 0 when it is ``None``.
    - ``low_profit_factor``: clamp(1 − profit_factor, 0, 1); 0 when profit_factor is ``None``
      (no losing trade).

    With no trades every component, and the score, is 0. The score is monotone: making one
    component riskier never lowers it. Weights and thresholds: :class:`BehaviourConfig`
    (seed definition of this project, issue "trading-behaviour analytics").

    Returns
    -------
    (float, dict[str, float])
        The score (0–100, 0.1 steps) and the unweighted components (fractions 0–1, keys
        :data:`COMPONENTS`).
    """
    config = config if config is not None else BehaviourConfig()
    n = int(metrics["trades"])
    if n == 0:
        return 0.0, dict.fromkeys(COMPONENTS, 0.0)
    pf = metrics["profit_factor"]
    share = metrics["best_day_share"]
    sl = metrics["stop_loss_used"]
    components = {
        "drawdown": _clamp01(metrics["max_relative_drawdown"] / config.drawdown_threshold),
        "no_stop_loss": _clamp01(1.0 - sl) if sl is not None else 0.0,
        "hft": _clamp01(metrics["hft_count"] / n),
        "layering": _clamp01(metrics["max_layering"] / config.layering_threshold),
        "losing_streak": _clamp01(metrics["longest_losing_streak"] / config.losing_streak_threshold),
        "best_day_concentration": _clamp01(share) if share is not None else 0.0,
        "low_profit_factor": _clamp01(1.0 - pf) if pf is not None else 0.0,
    }
    raw = 100.0 * math.fsum(config.weights[k] * components[k] for k in COMPONENTS)
    return round(min(100.0, max(0.0, raw)), 1), components


def behaviour_flags(metrics: Mapping[str, Any], config: BehaviourConfig | None = None) -> list[str]:
    """Flags (stable codes of :class:`BehaviourFlag`, in that order) whose threshold is crossed.

    Rules (thresholds from ``config``): ``HIGH_DRAWDOWN`` max_relative_drawdown ≥
    drawdown_threshold; ``NO_STOP_LOSS`` stop_loss_used < stop_loss_min_fraction; ``HFT``
    hft_count > hft_max_count; ``LAYERING`` max_layering ≥ layering_threshold;
    ``LOSING_STREAK`` longest_losing_streak ≥ losing_streak_threshold;
    ``PROFIT_CONCENTRATION`` best_day_share > best_day_share_threshold; ``LOW_WIN_RATIO``
    win_ratio < win_ratio_threshold; ``NO_TAKE_PROFIT`` take_profit_used <
    take_profit_min_fraction; ``HIGH_RISK_SCORE`` score ≥ risk_threshold (only when
    ``metrics`` carries ``score``). A metric that is ``None`` raises no flag; no trades, no flags.
    """
    config = config if config is not None else BehaviourConfig()
    if int(metrics["trades"]) == 0:
        return []
    sl = metrics["stop_loss_used"]
    tp = metrics.get("take_profit_used")
    wr = metrics.get("win_ratio")
    score = metrics.get("score")
    share = metrics["best_day_share"]
    raised = {
        BehaviourFlag.HIGH_DRAWDOWN: metrics["max_relative_drawdown"] >= config.drawdown_threshold,
        BehaviourFlag.NO_STOP_LOSS: sl is not None and sl < config.stop_loss_min_fraction,
        BehaviourFlag.HFT: metrics["hft_count"] > config.hft_max_count,
        BehaviourFlag.LAYERING: metrics["max_layering"] >= config.layering_threshold,
        BehaviourFlag.LOSING_STREAK: metrics["longest_losing_streak"] >= config.losing_streak_threshold,
        BehaviourFlag.PROFIT_CONCENTRATION: share is not None and share > config.best_day_share_threshold,
        BehaviourFlag.LOW_WIN_RATIO: wr is not None and wr < config.win_ratio_threshold,
        BehaviourFlag.NO_TAKE_PROFIT: tp is not None and tp < config.take_profit_min_fraction,
        BehaviourFlag.HIGH_RISK_SCORE: score is not None and score >= config.risk_threshold,
    }
    return [str(flag) for flag in BehaviourFlag if raised[flag]]


# ---------------------------------------------------------------------------------------------
# reports


def _report(trades: Sequence[ClosedTrade], start_balance: float, config: BehaviourConfig) -> dict[str, Any]:
    metrics = _metrics_sorted(trades, start_balance, config)
    score, components = behaviour_score(metrics, config)
    scored = {**metrics, "score": score, "components": components}
    return {**scored, "flags": behaviour_flags(scored, config)}


def _analyse_sorted(trades: list[ClosedTrade], start_balance: float, config: BehaviourConfig) -> dict[str, Any]:
    cut = max(0, len(trades) - config.window)
    window_start = start_balance
    for t in trades[:cut]:  # same running sum as the balance curve
        window_start += t.pnl
    return {
        "all": _report(trades, start_balance, config),
        "window": _report(trades[cut:], window_start, config),
        "window_size": config.window,
    }


def analyse(trades: Iterable[ClosedTrade], initial_balance: float,
            config: BehaviourConfig | None = None) -> dict[str, Any]:
    """Behaviour report of one account: over all its trades and over the last ``config.window``.

    Parameters
    ----------
    trades : iterable of ClosedTrade
        The account's closed trades, any order.
    initial_balance : float
        The account's initial balance, account currency.
    config : BehaviourConfig, optional
        Default ``BehaviourConfig()``.

    Returns
    -------
    dict
        JSON-safe::

            {"all": {...}, "window": {...}, "window_size": config.window}

        ``all`` and ``window`` each hold the :func:`trade_metrics` keys plus ``score``
        (0–100), ``components`` (fractions 0–1, see :func:`behaviour_score`) and ``flags``
        (list of :class:`BehaviourFlag` codes). ``window`` covers the last ``window_size``
        trades in close-time order (all of them when there are fewer); its balance curve
        starts at the balance just before its first trade (``start_balance``), and its
        running peak starts there too (earlier peaks are not carried over).

    Raises
    ------
    ValueError
        As :func:`trade_metrics`.
    """
    config = config if config is not None else BehaviourConfig()
    return _analyse_sorted(sort_trades(trades), _balance(initial_balance), config)


def pooled(groups: Sequence[tuple[Iterable[ClosedTrade], float]],
           config: BehaviourConfig | None = None) -> dict[str, Any]:
    """Behaviour report of several accounts together (a user's, a challenge's).

    Parameters
    ----------
    groups : sequence of (trades, initial_balance)
        One pair per account: its closed trades (any order) and initial balance (account
        currency). The accounts are assumed to share a currency; no conversion is made.
    config : BehaviourConfig, optional
        Default ``BehaviourConfig()``.

    Returns
    -------
    dict
        As :func:`analyse`, over the trades of every account merged in close-time order (ties
        by ``position_id`` then ``account_id``), the balance curve starting at Σ initial
        balances; ``max_layering`` counts positions open at once across the accounts. Plus
        ``"accounts": len(groups)``.

    Raises
    ------
    ValueError
        As :func:`trade_metrics`.
    """
    config = config if config is not None else BehaviourConfig()
    groups = list(groups)
    merged: list[ClosedTrade] = []
    for trades, _ in groups:
        merged.extend(trades)
    start = _balance(math.fsum(_balance(balance) for _, balance in groups))
    report = _analyse_sorted(sort_trades(merged), start, config)
    report["accounts"] = len(groups)
    return report
