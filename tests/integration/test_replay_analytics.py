"""The MT4 account's behaviour analytics, as the server computes them after a replay of its
whole history, against a straightforward computation from the statement CSV itself.

To cover all 1,761 trades the replay binds the account to a plan that cannot breach (posted
and activated over HTTP: loss limits of 10^12 JPY, leverage, lots and positions out of
reach) whose trading day is the UTC calendar day. The account is in hedging mode, so every
ticket is one closed trade.

Counts (trades, wins, losses, stop-loss / take-profit use, HFT, layering, hold, losing streak)
must match exactly. Money-based metrics depend on P&L: the server
converts a ticket quoted in another currency than JPY at the latest USD→JPY mark (the H1
USDJPY implied by the EUR/GBP/AUD crosses while the bars run, after that the last traded
rate), not at the broker's rate. So profit factor, drawdown and best-day share are checked
twice: exactly, by the same computation over the server's own per-ticket P&L (returned with
each closing fill), and against the file's profits within bounds derived from the measured
per-ticket differences.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from riskactors.domain import default_registry
from riskactors.replay import ReplayOptions, load_trades
from riskactors.replay.report import CONVERSION_CATEGORY
from tests.conftest import require_data
from tests.integration.test_replay import MT4, replay_on_fresh_deployment

BALANCE = 1_000_000.0
NO_BREACH_PLAN = {
    "id": "replay_no_breach",
    "name": "Replay without limits",
    "description": "Test plan: no limit can be reached, so a replay covers the whole history.",
    "source": "tests/integration/test_replay_analytics.py",
    "rules": {"max_leverage": 100_000, "account_leverage": 100_000, "max_position_lots": 10_000,
              "max_open_positions": 100_000, "daily_loss_limit": 1e12, "max_loss_limit": 1e12,
              "max_orders_per_second": 100_000, "margin_call_level": 1,
              "trading_day_rollover": "00:00", "trading_day_timezone": "UTC"},
}
#: Close of the last EUR/GBP/AUD H1 bar of the statement's folder (2020-02-07 23:00 + 1 h)
BARS_END = datetime(2020, 2, 8, tzinfo=UTC).timestamp()


@dataclass
class Row:
    ticket: str
    symbol: str
    open_ts: float
    close_ts: float
    pnl: float  # net: profit + commission + taxes + swap (JPY)
    sl: bool
    tp: bool


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y.%m.%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def read_statement(path: Path) -> list[Row]:
    """The statement's rows in close order (close time, then ticket)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [Row(r["ticket"], r["item"], _ts(r["open_time"]), _ts(r["close_time"]),
                    float(r["profit"]) + float(r["commission"]) + float(r["taxes"]) + float(r["swap"]),
                    float(r["sl"]) != 0.0, float(r["tp"]) != 0.0) for r in csv.DictReader(fh)]
    return sorted(rows, key=lambda r: (r.close_ts, r.ticket))


def counts(rows: list[Row]) -> dict:
    """Metrics that do not depend on P&L amounts, one loop each."""
    n = len(rows)
    streak = longest = 0
    for r in rows:
        streak = streak + 1 if r.pnl < 0 else 0
        longest = max(longest, streak)
    assert all(r.close_ts > r.open_ts for r in rows)  # no zero-length trade in this file
    layering = 0
    for r in rows:  # positions open at each open instant, over [open, close)
        layering = max(layering, sum(1 for o in rows if o.open_ts <= r.open_ts < o.close_ts))
    return {"trades": n, "wins": sum(r.pnl > 0 for r in rows), "losses": sum(r.pnl < 0 for r in rows),
            "win_ratio": sum(r.pnl > 0 for r in rows) / n, "stop_loss_used": sum(r.sl for r in rows) / n,
            "take_profit_used": sum(r.tp for r in rows) / n,
            "hft_count": sum(r.close_ts - r.open_ts < 60 for r in rows), "max_layering": layering,
            "avg_hold_seconds": sum(r.close_ts - r.open_ts for r in rows) / n, "longest_losing_streak": longest}


def money(pnls: list[float], days: list[str], start: float) -> dict:
    """Profit factor, max relative drawdown of the closed-trade balance curve, best-day share."""
    gross_profit = sum(p for p in pnls if p > 0)
    gross_loss = -sum(p for p in pnls if p < 0)
    balance = peak = start
    drawdown = 0.0
    for p in pnls:
        balance += p
        peak = max(peak, balance)
        drawdown = max(drawdown, (peak - balance) / peak)
    by_day: dict[str, float] = {}
    for p, d in zip(pnls, days):
        by_day[d] = by_day.get(d, 0.0) + p
    net = sum(pnls)
    best_day = max(sorted(by_day), key=lambda d: by_day[d])  # ties: the earliest day
    return {"profit_factor": gross_profit / gross_loss, "max_relative_drawdown": drawdown, "net_pnl": net,
            "gross_profit": gross_profit, "gross_loss": gross_loss, "best_day": best_day,
            "best_day_pnl": by_day[best_day], "best_day_share": by_day[best_day] / net if net > 0 else None}


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


@pytest.fixture(scope="module")
def mt4_whole_history(ray_session):
    path = require_data(MT4)
    tf = load_trades(path)

    async def before(client: httpx.AsyncClient) -> None:
        r = await client.post("/v1/plans", json=NO_BREACH_PLAN)
        assert r.status_code == 201, r.text
        r = await client.post(f"/v1/plans/{NO_BREACH_PLAN['id']}/activate")
        assert r.status_code == 200, r.text

    report, _ = replay_on_fresh_deployment(
        ray_session, tf, ReplayOptions(plan=NO_BREACH_PLAN["id"], balance=BALANCE, currency="JPY"), before=before)
    return read_statement(path), report


def test_whole_history_replays_without_breach_and_ticket_pnl_agrees_with_the_file(mt4_whole_history):
    rows, report = mt4_whole_history
    assert report.trades == 1761 and report.decisions == {"accept": 1761} and not report.breaches
    assert not report.fill_errors and len(report.closed_trades) == 1761
    server = {t["position_id"]: t for t in report.closed_trades}
    registry = default_registry()
    assert sorted(server) == sorted(r.ticket for r in rows)
    for r in rows:
        t = server[r.ticket]
        assert (t["open_time"], t["close_time"]) == (r.open_ts, r.close_ts)
        assert (t["stop_loss_used"], t["take_profit_used"]) == (r.sl, r.tp)
        delta, scale = abs(t["pnl"] - r.pnl), max(abs(r.pnl), 100.0)
        quote = registry.get(r.symbol).quote_currency
        if quote == "JPY":  # no conversion: the server's P&L is the file's to 0.01 yen
            assert delta <= 0.01, r.ticket
        elif quote == "USD" and r.close_ts <= BARS_END:
            # converted at the H1 USDJPY implied by the EUR/GBP/AUD crosses: within 1 %
            assert delta <= 0.01 * scale, r.ticket
        else:  # CAD/CHF/CNH legs, or after the bars end: the last traded rate, within 9 %
            assert delta <= 0.09 * scale, r.ticket
    assert report.pnl_compared == 1761 and report.pnl_equal == 781
    assert set(report.mismatches) == {CONVERSION_CATEGORY}
    assert len(report.mismatches[CONVERSION_CATEGORY]) == 980


def test_account_analytics_counts_match_a_straightforward_computation_from_the_csv(mt4_whole_history):
    rows, report = mt4_whole_history
    got = report.analytics["account"]["all"]
    want = counts(rows)
    for key in ("trades", "losses", "hft_count", "max_layering", "longest_losing_streak"):
        assert got[key] == want[key], key
    for key in ("stop_loss_used", "take_profit_used", "avg_hold_seconds"):
        assert got[key] == pytest.approx(want[key], rel=1e-12), key
    assert (want["trades"], want["losses"], want["hft_count"], want["max_layering"],
            want["longest_losing_streak"]) == (1761, 433, 5, 28, 11)
    # the last-100 window: the same definitions over the last 100 trades in close order
    window = report.analytics["account"]["window"]
    want_window = counts(rows[-100:])
    for key in ("trades", "wins", "losses", "hft_count", "max_layering", "longest_losing_streak"):
        assert window[key] == want_window[key], key


def test_account_analytics_wins_match_the_csv(mt4_whole_history):
    rows, report = mt4_whole_history
    got = report.analytics["account"]["all"]
    want = counts(rows)
    assert (got["wins"], got["win_ratio"]) == (want["wins"], pytest.approx(want["win_ratio"], rel=1e-12))


def test_account_analytics_money_metrics_match_the_server_pnl_exactly_and_the_file_within_bounds(
        mt4_whole_history):
    rows, report = mt4_whole_history
    got = report.analytics["account"]["all"]
    days = [utc_day(r.close_ts) for r in rows]  # the plan's trading day is the UTC date
    server_pnl = [{t["position_id"]: t["pnl"] for t in report.closed_trades}[r.ticket] for r in rows]
    exact = money(server_pnl, days, BALANCE)
    for key in ("profit_factor", "max_relative_drawdown", "net_pnl", "best_day_pnl"):
        assert got[key] == pytest.approx(exact[key], rel=1e-9), key
    assert got["best_day"] == exact["best_day"]
    assert got["best_day_share"] is None and exact["best_day_share"] is None  # the history lost money

    # against the file's profits: ticket i differs by Δ_i (measured), so gross profit and gross
    # loss by at most E = Σ|Δ_i|, a point of the balance curve by at most C = max_k |Σ_{i≤k} Δ_i|,
    # the relative drawdown (1 − balance / peak, peak ≥ start) by at most 2C / (start − C)
    file_ = money([r.pnl for r in rows], days, BALANCE)
    deltas = [p - r.pnl for p, r in zip(server_pnl, rows)]
    e = sum(abs(d) for d in deltas)
    c = max(abs(x) for x in itertools.accumulate(deltas))
    gp, gl = got["gross_profit"], got["gross_loss"]
    assert (gp - e) / (gl + e) <= file_["profit_factor"] <= (gp + e) / (gl - e)
    assert abs(got["max_relative_drawdown"] - file_["max_relative_drawdown"]) <= 2 * c / (BALANCE - c)
    assert abs(got["net_pnl"] - file_["net_pnl"]) <= c
    assert file_["net_pnl"] < -c  # the file's best-day share is undefined too (no net profit)
    # the bounds are tight: the conversion differences are small beside the metrics (measured:
    # E ≈ 7,035 JPY against 2.03 million of gross profit + loss, C ≈ 2,481 JPY)
    assert e < 0.01 * (gp + gl) and c < 0.01 * BALANCE
    assert math.isclose(got["profit_factor"], file_["profit_factor"], rel_tol=0.02)


def test_window_best_day_share_matches_the_server_pnl_exactly_and_the_file_within_bounds(mt4_whole_history):
    rows, report = mt4_whole_history
    got = report.analytics["account"]["window"]
    assert report.analytics["account"]["window_size"] == 100
    pnl = {t["position_id"]: t["pnl"] for t in report.closed_trades}
    server_pnl = [pnl[r.ticket] for r in rows]
    start = BALANCE + sum(server_pnl[:-100])  # the window's curve starts at the balance before it
    days = [utc_day(r.close_ts) for r in rows[-100:]]
    exact = money(server_pnl[-100:], days, start)
    assert got["start_balance"] == pytest.approx(start, rel=1e-12)
    for key in ("profit_factor", "max_relative_drawdown", "net_pnl", "best_day_pnl", "best_day_share"):
        assert got[key] == pytest.approx(exact[key], rel=1e-9), key
    assert got["best_day"] == exact["best_day"]
    # the file: a day's profit and the net differ by at most E = Σ|Δ_i| over the window
    file_ = money([r.pnl for r in rows[-100:]], days, BALANCE + sum(r.pnl for r in rows[:-100]))
    e = sum(abs(p - r.pnl) for p, r in zip(server_pnl[-100:], rows[-100:]))
    best, net = got["best_day_pnl"], got["net_pnl"]
    assert net > e and best > e
    assert (best - e) / (net + e) <= file_["best_day_share"] <= (best + e) / (net - e)
