"""Replays of the real trade files through the HTTP app on a real (session) Ray.

Each replay gets its own sharded deployment: marks are shared by every account of a
deployment, and the files' 2019–2025 marks would be stale beside other tests' marks. One
replay per file and mode serves every test of this module (module-scoped fixtures read back
what the tests need, then shut the deployment down).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from riskactors.replay import ReplayOptions, ReplayReport, TradeFile, load_trades, run_replay
from riskactors.replay.report import CONVERSION_CATEGORY, OVERLAP_CATEGORY
from riskactors.settings import Settings
from tests.conftest import asgi_client, new_deployment_name, new_storage_root, require_data

FP = "fundingpips-trades-short/test_task_trades_short.csv"
MT4 = "mt4-ronnaru/closed_trades_DetailedStatement.csv"


def replay_on_fresh_deployment(ray_session, tf: TradeFile, options: ReplayOptions,
                               before: Callable[[httpx.AsyncClient], Awaitable[None]] | None = None,
                               after: Callable[[httpx.AsyncClient], Awaitable[dict[str, Any]]] | None = None,
                               ) -> tuple[ReplayReport, dict[str, Any]]:
    """Replay ``tf`` into a new sharded deployment (2 shards, ``events`` clock) on the session's Ray; ``before``
    runs first (e.g. to post a plan), ``after`` reads back extra state. The deployment is shut
    down before returning (report, what ``after`` returned)."""
    from riskactors.actors import ray_runtime

    assert ray_session.is_initialized()
    settings = Settings(placement="sharded", shards=2, call_timeout_seconds=30.0, storage_root=new_storage_root(),
                        deployment=new_deployment_name(),
                        clock="events")  # what `riskactors replay`'s embedded server runs
    runtime = ray_runtime.start(settings)
    try:
        async def go():
            async with asgi_client(settings, runtime) as client:
                if before is not None:
                    await before(client)
                report = await run_replay(client, tf, options)
                return report, (await after(client) if after is not None else {})

        return asyncio.run(go())
    finally:
        runtime.shutdown()


# ------------------------------------------------------------------------------ FundingPips
@pytest.fixture(scope="module")
def fundingpips(ray_session):
    tf = load_trades(require_data(FP))

    async def after(client: httpx.AsyncClient) -> dict[str, Any]:
        sem = asyncio.Semaphore(16)

        async def view(account_id: str) -> dict[str, Any]:
            async with sem:
                return (await client.get(f"/v1/accounts/{account_id}")).json()

        accounts = sorted({t.account_id for t in tf.trades})
        views = await asyncio.gather(*(view(a) for a in accounts))
        return {"account": (await client.get("/v1/accounts/10452073")).json(),
                "firm": (await client.get("/v1/risk/firm")).json(), "views": dict(zip(accounts, views))}

    report, extra = replay_on_fresh_deployment(
        ray_session, tf, ReplayOptions(plan="two_step_phase1", balance=100_000, currency="USD"), after=after)
    return tf, report, report.render(), extra


def test_fundingpips_file_replays_in_hedging_mode_with_pnl_agreement(fundingpips):
    tf, report, text, extra = fundingpips
    assert len(tf.trades) == 1084 and not tf.skipped
    assert report.position_mode == "hedging"
    assert report.trades == 1084
    assert report.accounts_registered == 1064
    assert sum(report.decisions.values()) == 1084
    # every accepted open is filled and closed; each ticket is one closed trade
    assert report.fills == 2 * report.decisions["accept"]
    assert not report.fill_errors
    assert len(report.closed_trades) == report.decisions["accept"] == 1083
    # rows with complete fields (platform 0, profit_rate present): the large majority agree
    # (the same numbers as in netting mode: only 19 accounts have more than one trade)
    assert report.pnl_complete_compared == 700
    assert report.pnl_complete_equal == 688
    # all rows: platform 1 and 2 rows use other conventions, reported as such
    assert report.pnl_compared == report.decisions["accept"]
    assert report.pnl_equal == 766
    assert any("platform 1" in cat for cat in report.mismatches)
    assert OVERLAP_CATEGORY not in report.mismatches
    assert "realized P&L = file profit" in text
    assert extra["firm"]["accounts"] >= 1064
    one = extra["account"]
    assert one["positions"] == [] and one["currency"] == "USD" and one["position_mode"] == "hedging"
    # 44041186: buy 0.01 XAUUSD 3332.9 → 3332.88, commission −0.07: net −0.09 (the file's profit)
    assert one["balance"] == pytest.approx(100_000 - 0.09, abs=1e-6)


def test_fundingpips_replay_leaves_every_account_on_the_trading_day_of_the_last_event(fundingpips):
    """Issue 9's acceptance: after the replay into an ``events`` server, every account is on the
    trading day of the replay's last event (``two_step_phase1``: days roll at 00:00
    Europe/Prague), its ``trading_days`` the number of those days on which it opened a trade;
    reads happened at the end and rolled nothing to the wall clock's day."""
    from riskactors.domain import TradingDayCalendar

    tf, report, _, extra = fundingpips
    prague = TradingDayCalendar("00:00", "Europe/Prague")
    last = max(max(t.open_ts, t.close_ts) for t in tf.trades)
    accepted = {t["position_id"] for t in report.closed_trades}  # hedging: the ticket is the trade id
    opened_days: dict[str, set[str]] = {}
    for t in tf.trades:
        if t.trade_id in accepted:
            opened_days.setdefault(t.account_id, set()).add(prague.day_of(t.open_ts).isoformat())
    views = extra["views"]
    assert len(views) == 1064
    for account_id, view in views.items():
        assert view["trading_day"] == prague.day_of(last).isoformat() == "2025-05-08", account_id
        assert view["as_of"] == last, account_id
        assert view["trading_days"] == len(opened_days.get(account_id, ())), account_id
    assert sum(v["trading_days"] for v in views.values()) >= 1064 - 1  # one account's only trade was rejected
    assert report.stale_checks > 0 and "stale prices" in report.render()  # counted, not rejected


def test_fundingpips_report_prints_firm_user_and_challenge_analytics(fundingpips):
    _, report, text, _ = fundingpips
    firm = report.analytics["firm"]
    # the firm's pooled analytics cover every closed trade of the replay
    assert firm["all"]["trades"] == len(report.closed_trades) == 1083
    assert firm["accounts"] == 1064 and firm["currencies"] == ["USD"]
    challenges = report.analytics["challenges"]
    assert sorted(challenges) == ["fundingpips-p0", "fundingpips-p1", "fundingpips-p2"]
    assert sum(c["all"]["trades"] for c in challenges.values()) == 1083
    users = report.analytics["users"]
    assert len(users) == 1064 and sum(u["all"]["trades"] for u in users.values()) == 1083
    assert "analytics — firm (1064 accounts, USD" in text
    assert f"trades 1083 (wins {firm['all']['wins']}, losses {firm['all']['losses']})" in text
    assert "behaviour score" in text and "HFT count" in text and "best-day share" in text
    assert "analytics — top 10 of 1064 users by behaviour score" in text
    assert "analytics — top 3 of 3 challenges by behaviour score" in text
    top_user = max(users.items(), key=lambda kv: (kv[1]["all"]["score"], kv[1]["all"]["trades"]))
    assert f"{top_user[1]['all']['score']:.1f}" in text
    # challenge statuses: no account breached or passed in one May 2025 trade or two
    assert "challenge status (accounts)" in text
    assert report.challenges["fundingpips-p0"]["active"] == 688
    assert sum(c.get("active", 0) for c in report.challenges.values()) == 1064


# ------------------------------------------------------------------------------ MT4, two-step plan
@pytest.fixture(scope="module")
def mt4_two_step(ray_session):
    tf = load_trades(require_data(MT4))

    async def after(client: httpx.AsyncClient) -> dict[str, Any]:
        return {"view": (await client.get(f"/v1/accounts/{tf.trades[0].account_id}")).json()}

    report, extra = replay_on_fresh_deployment(
        ray_session, tf, ReplayOptions(plan="two_step_phase1", balance=1_000_000, currency="JPY"), after=after)
    return tf, report, report.render(), extra["view"]


def test_mt4_jpy_account_under_two_step_plan_breaches_max_loss_on_trading_day_2019_09_19(mt4_two_step):
    tf, report, text, view = mt4_two_step
    assert tf.fmt == "mt4" and tf.currency == "JPY" and len(tf.trades) == 1761 and tf.marks
    assert report.trades == 1761 and report.position_mode == "hedging"
    assert not report.fill_errors
    assert len(report.breaches) == 1
    breach = report.first_breach["mt4-ronnaru"]
    assert breach["code"] == "MAX_LOSS_LIMIT" and breach["limit"] == pytest.approx(100_000)
    assert breach["trading_day"] == "2019-09-19"  # 00:00 Europe/Prague days
    assert breach["at_iso"] == "2019-09-19T06:00:00+00:00"
    assert breach["final_status"] == "failed"
    # the report prints the day, the time, the reason and the final status
    assert ("mt4-ronnaru: trading day 2019-09-19, at 2019-09-19T06:00:00+00:00: MAX_LOSS_LIMIT — "
            "MAX_LOSS_LIMIT: loss ") in text
    assert "limit 100000.00" in text and "final status failed" in text
    assert "mt4-mt4-ronnaru: active 0, passed 0, failed 1" in text
    assert view["currency"] == "JPY" and view["status"] == "failed" and view["position_mode"] == "hedging"
    assert view["kill_switch"]["active"] and view["kill_switch"]["mode"] == "reduce_only"
    # after the breach, new exposure is refused, closes are still applied
    assert report.reasons["ACCOUNT_NOT_ACTIVE"] > 0
    assert report.fills == 2 * report.decisions["accept"]
    assert len(report.closed_trades) == report.decisions["accept"] == 730
    # hedging: each close is measured against its own ticket. JPY-quoted tickets agree; the
    # others differ only by the quote→JPY rate (latest H1 mark vs the broker's rate)
    assert report.pnl_compared == 730 and report.pnl_equal == 227
    assert set(report.mismatches) == {CONVERSION_CATEGORY}
    account = report.analytics["account"]
    assert account["all"]["trades"] == 730
    assert "analytics — account mt4-ronnaru (JPY), all trades" in text
    assert "analytics — account mt4-ronnaru, last 100 trades" in text


def test_mt4_first_trades_in_netting_mode_average_tickets_of_a_symbol(ray_session):
    """Netting keeps the earlier behaviour: tickets of one symbol net into one position, so a
    close is measured against the average price (reported as its own mismatch category)."""
    tf = load_trades(require_data(MT4), limit=150)
    report, _ = replay_on_fresh_deployment(
        ray_session, tf, ReplayOptions(plan="two_step_phase1", balance=1_000_000, currency="JPY",
                                       position_mode="netting"))
    assert report.position_mode == "netting" and report.trades == 150 and not report.fill_errors
    assert not report.breaches
    assert len(report.mismatches[OVERLAP_CATEGORY]) > 0
    assert report.pnl_equal < report.pnl_compared
    # netting closes fewer positions than tickets (a closing ticket may only reduce the net)
    assert len(report.closed_trades) < report.pnl_compared
    assert "position mode          netting" in report.render()
