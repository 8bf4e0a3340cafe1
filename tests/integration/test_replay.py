"""Replays of the real trade files through the HTTP app on a real (session) Ray.

Each replay gets its own sharded deployment: marks are shared by every account of a
deployment, and the files' 2019–2025 marks would be stale beside other tests' marks.
"""

from __future__ import annotations

import httpx
import pytest

from riskactors.replay import ReplayOptions, load_trades, run_replay
from tests.conftest import asgi_client, require_data

FP = "fundingpips-trades-short/test_task_trades_short.csv"
MT4 = "mt4-ronnaru/closed_trades_DetailedStatement.csv"


@pytest.fixture
def replay_deployment(fresh_deployment):
    return fresh_deployment("sharded", shards=2, timeout=30.0)


def _client(deployment) -> httpx.AsyncClient:
    return asgi_client(*deployment)


@pytest.mark.anyio
async def test_fundingpips_file_replays_end_to_end_with_pnl_agreement(replay_deployment):
    tf = load_trades(require_data(FP))
    assert len(tf.trades) == 1084 and not tf.skipped
    async with _client(replay_deployment) as client:
        report = await run_replay(client, tf, ReplayOptions(plan="two_step_phase1", balance=100_000, currency="USD"))
        text = report.render()
        assert report.trades == 1084
        assert report.accounts_registered == 1064
        assert sum(report.decisions.values()) == 1084
        # every accepted open is filled and, unless the trade never closed, closed
        assert report.fills == 2 * report.decisions["accept"]
        assert not report.fill_errors
        # rows with complete fields (platform 0, profit_rate present): the large majority agree
        assert report.pnl_complete_compared == 700
        assert report.pnl_complete_equal == 688
        assert report.pnl_complete_equal / report.pnl_complete_compared > 0.95
        # all rows: platform 1 and 2 rows use other conventions, reported as such
        assert report.pnl_compared == report.decisions["accept"]
        assert report.pnl_equal == 766
        assert any("platform 1" in cat for cat in report.mismatches)
        assert "realized P&L = file profit" in text
        firm = (await client.get("/v1/risk/firm")).json()
        assert firm["accounts"] >= 1064
        one = (await client.get("/v1/accounts/10452073")).json()
        assert one["positions"] == [] and one["currency"] == "USD"
        # 44041186: buy 0.01 XAUUSD 3332.9 → 3332.88, commission −0.07: net −0.09 (the file's profit)
        assert one["balance"] == pytest.approx(100_000 - 0.09, abs=1e-6)


@pytest.mark.anyio
async def test_mt4_jpy_account_under_two_step_plan_breaches_max_loss_on_2019_09_19(replay_deployment):
    tf = load_trades(require_data(MT4))
    assert tf.fmt == "mt4" and tf.currency == "JPY" and len(tf.trades) == 1761 and tf.marks
    async with _client(replay_deployment) as client:
        report = await run_replay(client, tf, ReplayOptions(plan="two_step_phase1", balance=1_000_000,
                                                            currency="JPY"))
        assert report.trades == 1761
        assert not report.fill_errors
        assert len(report.breaches) == 1
        breach = report.breaches[0]
        assert breach["code"] == "MAX_LOSS_LIMIT" and breach["limit"] == pytest.approx(100_000)
        assert breach["at_iso"] == "2019-09-19T04:00:00+00:00"
        view = (await client.get(f"/v1/accounts/{tf.trades[0].account_id}")).json()
        assert view["currency"] == "JPY" and view["status"] == "failed"
        assert view["kill_switch"]["active"] and view["kill_switch"]["mode"] == "reduce_only"
        # after the breach, new exposure is refused, closes are still applied
        assert report.reasons["ACCOUNT_NOT_ACTIVE"] > 0
        assert report.fills == 2 * report.decisions["accept"]
        # netting vs the file's per-ticket profits: agreement only where no other ticket was open
        assert 0 < report.pnl_equal < report.pnl_compared
