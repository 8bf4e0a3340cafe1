"""Trading-behaviour analytics over HTTP (sharded placement): the v1 account, user, challenge and
firm routes and the legacy risk-signal routes (``/risk-report/{login}``, ``/risk/user/{id}``,
``/risk/challenge/{id}``, ``POST /admin/update-config``) over closed trades made by hand, whose
metrics are computed here by hand.

The trades are fills stamped in yesterday's trading day (explicit ``ts``), so their hold times
are exact, on a deployment of this module's own (one shard): in the session's shared deployment
the clock is already today, and fills stamped yesterday would be late, booked to today. Marks
are stamped at the trades' times too. The configuration test runs on a deployment of its own:
the analytics thresholds are firm-wide and would change the answers of the other tests.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from httpkit import Api, locs

from riskactors.domain import TradingDayCalendar

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def deployment(ray_session):
    """This module's own sharded deployment (one shard): its clock is moved only by its events."""
    from tests.conftest import _deployment

    settings, runtime = _deployment(ray_session, "sharded", shards=1)
    yield settings, runtime
    runtime.shutdown()


@pytest.fixture
async def api(deployment, uid):
    from tests.conftest import asgi_client

    async with asgi_client(*deployment) as client:
        yield Api(client, uid)


async def _marks(api, ts: float, prices: dict[str, tuple[float, float]]) -> None:
    """Marks stamped at ``ts`` (the trades' day), not at the wall clock."""
    body = {"marks": [{"instrument": s, "bid": b, "ask": a, "ts": ts} for s, (b, a) in prices.items()]}
    r = await api.client.post("/v1/marks", json=body)
    assert r.status_code == 200, r.text

# Closed trades of account A, times in seconds after ``base`` (1 lot EURUSD = 100,000 units,
# 1 lot XAUUSD = 100 oz, USD account: P&L = Δprice × lots × contract size):
#   T1 EURUSD long 1.0   1.10000 → 1.10100   0 →   30 s  SL        +100    (HFT: 30 s < 60 s)
#   T2 XAUUSD long 1.0   2300.00 → 2295.00 100 →  400 s  TP        −500
#   T3 EURUSD short 1.0  1.10200 → 1.10000 200 →  700 s  SL, TP    +200
#   T4 EURUSD long 0.5   1.10000 → 1.09800 1000 → 1010 s  −7 commission: −100 − 7 = −107  (HFT)
# T2 and T3 overlap (layering 2). Close order T1, T2, T3, T4: balance 100,100 (peak), 99,600,
# 99,800, 99,693.
A_TRADES = {"trades": 4, "wins": 2, "losses": 2, "win_ratio": 0.5, "gross_profit": 300.0, "gross_loss": 607.0,
            "net_pnl": -307.0, "profit_factor": 300 / 607, "start_balance": 100_000.0, "end_balance": 99_693.0,
            "max_relative_drawdown": 500 / 100_100, "max_drawdown_amount": 500.0, "stop_loss_used": 0.5,
            "take_profit_used": 0.5, "hft_count": 2, "max_layering": 2, "avg_hold_seconds": (30 + 300 + 500 + 10) / 4,
            "longest_losing_streak": 1, "best_day_pnl": -307.0, "best_day_share": None}
# Behaviour score with the default weights: drawdown (500/100,100)/0.10, no stop-loss 0.5, HFT 2/4,
# layering 2/10, losing streak 1/10, best-day concentration 0 (no total profit), low profit factor
# 1 − 300/607.
A_COMPONENTS = {"drawdown": (500 / 100_100) / 0.10, "no_stop_loss": 0.5, "hft": 0.5, "layering": 0.2,
                "losing_streak": 0.1, "best_day_concentration": 0.0, "low_profit_factor": 1 - 300 / 607}
WEIGHTS = {"drawdown": 0.25, "no_stop_loss": 0.20, "hft": 0.15, "layering": 0.15, "losing_streak": 0.10,
           "best_day_concentration": 0.10, "low_profit_factor": 0.05}
A_SCORE = round(100 * sum(WEIGHTS[k] * v for k, v in A_COMPONENTS.items()), 1)  # 25.3


def _calendar(deployment) -> TradingDayCalendar:
    settings, _ = deployment
    return TradingDayCalendar(settings.trading_day_rollover, settings.trading_day_timezone)


def _base(deployment) -> float:
    """One hour into yesterday's trading day of the deployment's calendar."""
    cal = _calendar(deployment)
    return cal.start_of(cal.day_of(time.time()) - timedelta(days=1)) + 3_600


async def _register(api, account_id: str, base: float, *, user: str = "u1", challenge: str = "c1",
                    balance: float = 100_000.0) -> None:
    body = {"account_id": account_id, "user_id": api.id(user), "challenge_id": api.id(challenge), "currency": "USD",
            "initial_balance": balance, "plan": "moderate", "opened_at": base - 60,
            "limits": {"max_orders_per_second": 1000}}
    r = await api.client.post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text


async def _fill(api, acct, instrument, side, qty, price, ts, **extra):
    return await api.fill(acct, instrument, side, qty, price, ts=ts, **extra)


async def _trades_of_a(api, acct: str, base: float) -> None:
    await _fill(api, acct, "EURUSD", "buy", 1.0, 1.10000, base + 0, stop_loss=1.09500)
    t1 = await _fill(api, acct, "EURUSD", "sell", 1.0, 1.10100, base + 30)
    await _fill(api, acct, "XAUUSD", "buy", 1.0, 2300.00, base + 100, take_profit=2310.00)
    await _fill(api, acct, "EURUSD", "sell", 1.0, 1.10200, base + 200, stop_loss=1.10700, take_profit=1.09700)
    t2 = await _fill(api, acct, "XAUUSD", "sell", 1.0, 2295.00, base + 400)
    t3 = await _fill(api, acct, "EURUSD", "buy", 1.0, 1.10000, base + 700)
    await _fill(api, acct, "EURUSD", "buy", 0.5, 1.10000, base + 1000)
    t4 = await _fill(api, acct, "EURUSD", "sell", 0.5, 1.09800, base + 1010, commission=-7.0)
    pnls = [t["closed_trade"]["pnl"] for t in (t1, t2, t3, t4)]
    assert pnls == [pytest.approx(100.0), pytest.approx(-500.0), pytest.approx(200.0), pytest.approx(-107.0)]


def _assert_block(block: dict, expected: dict) -> None:
    for key, value in expected.items():
        got = block[key]
        if isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (key, got, value)
        else:
            assert got == value, (key, got, value)


async def _analytics(api, path: str) -> dict:
    r = await api.client.get(path)
    assert r.status_code == 200, (path, r.text)
    return r.json()


async def test_account_analytics_match_hand_computed_metrics_and_the_legacy_report(api, deployment, uid):
    base = _base(deployment)
    # a numeric account id: the legacy report answers it as an int, as the earlier service did
    login = str(int(uid[1:], 16))
    await _register(api, login, base)
    await _marks(api, base - 1, {"EURUSD": (1.10000, 1.10020), "XAUUSD": (2300.00, 2300.50)})
    await _trades_of_a(api, login, base)

    out = await _analytics(api, f"/v1/accounts/{login}/analytics")
    assert (out["scope"], out["id"], out["account_id"]) == ("account", login, login)
    assert (out["user_id"], out["challenge_id"], out["currency"]) == (api.id("u1"), api.id("c1"), "USD")
    assert out["window_size"] == 100 and out["open_positions"] == 0
    assert out["last_trade_at"] == pytest.approx(base + 1010)
    assert out["config"]["window"] == 100 and out["config"]["hft_seconds"] == 60
    full = out["all"]
    _assert_block(full, A_TRADES)
    assert full["best_day"] == _calendar(deployment).day_of(base).isoformat()
    assert full["components"] == {k: pytest.approx(v) for k, v in A_COMPONENTS.items()}
    assert full["score"] == A_SCORE == 25.3
    assert full["flags"] == []
    # fewer trades than the window: the window is every trade
    assert out["window"] == full

    # the account view counts the same closed trades and HFT trades (its own 60 s rule)
    v = await api.view(login)
    assert v["closed_trades"] == 4 and v["hft_count"] == 2
    assert v["balance"] == pytest.approx(99_693.0)

    # legacy route: the window block under the earlier service's names
    r = await api.client.get(f"/risk-report/{login}")
    assert r.status_code == 200, r.text
    legacy = r.json()
    assert legacy["trading_account_login"] == int(login)
    assert legacy["risk_signals"] == out["window"]["flags"] == []
    assert legacy["risk_score"] == out["window"]["score"] == 25.3
    assert legacy["last_trade_at"] == datetime.fromtimestamp(out["last_trade_at"], UTC).isoformat()
    assert legacy["metrics"] == out["window"]


async def test_an_account_without_trades_has_no_legacy_report_and_empty_metrics(api, deployment):
    base = _base(deployment)
    acct = api.id("quiet")
    await _register(api, acct, base)
    r = await api.client.get(f"/risk-report/{acct}")
    assert r.status_code == 404 and r.json()["detail"] == "No trades found", r.text
    out = await _analytics(api, f"/v1/accounts/{acct}/analytics")
    assert out["all"]["trades"] == 0 and out["all"]["score"] == 0 and out["all"]["flags"] == []
    assert out["all"]["win_ratio"] is None and out["all"]["profit_factor"] is None
    assert out["last_trade_at"] is None

    # an open position is not a closed trade
    await _marks(api, base - 1, {"EURUSD": (1.10000, 1.10020)})
    await _fill(api, acct, "EURUSD", "buy", 0.1, 1.10020, base)
    out = await _analytics(api, f"/v1/accounts/{acct}/analytics")
    assert out["all"]["trades"] == 0 and out["open_positions"] == 1
    assert (await api.client.get(f"/risk-report/{acct}")).status_code == 404

    for path in (f"/risk-report/{api.id('ghost')}", f"/v1/accounts/{api.id('ghost')}/analytics"):
        r = await api.client.get(path)
        assert r.status_code == 404 and r.json()["detail"]["code"] == "UNKNOWN_ACCOUNT", (path, r.text)
    for path in (f"/v1/analytics/users/{api.id('nobody')}", f"/risk/user/{api.id('nobody')}"):
        r = await api.client.get(path)
        assert r.status_code == 404 and r.json()["detail"]["code"] == "UNKNOWN_USER", (path, r.text)
    for path in (f"/v1/analytics/challenges/{api.id('none')}", f"/risk/challenge/{api.id('none')}"):
        r = await api.client.get(path)
        assert r.status_code == 404 and r.json()["detail"]["code"] == "UNKNOWN_CHALLENGE", (path, r.text)


async def test_user_and_challenge_analytics_pool_the_trades_of_their_accounts(api, deployment):
    """A (the four trades above) and B (50,000; one long 1 lot EURUSD 1.10000 → 1.10050 from
    150 s to 250 s, with a stop-loss: +50), one user and one challenge. Pooled in close order:
    T1 +100 (150,100), B +50 (150,150 peak), T2 −500 (149,650), T3 +200, T4 −107 (149,743).
    B overlaps T2 and T3: three positions open at once."""
    base = _base(deployment)
    a, b = api.id("a"), api.id("b")
    await _register(api, a, base)
    await _register(api, b, base, balance=50_000.0)
    await _register(api, api.id("other"), base, user="u2", challenge="c2")  # not pooled
    await _marks(api, base - 1, {"EURUSD": (1.10000, 1.10020), "XAUUSD": (2300.00, 2300.50)})
    await _trades_of_a(api, a, base)
    await _fill(api, b, "EURUSD", "buy", 1.0, 1.10000, base + 150, stop_loss=1.09000)
    await _fill(api, b, "EURUSD", "sell", 1.0, 1.10050, base + 250)
    await _fill(api, api.id("other"), "EURUSD", "buy", 1.0, 1.10000, base + 10)
    await _fill(api, api.id("other"), "EURUSD", "sell", 1.0, 1.09900, base + 20)

    expected = {"trades": 5, "wins": 3, "losses": 2, "win_ratio": 0.6, "gross_profit": 350.0, "gross_loss": 607.0,
                "net_pnl": -257.0, "profit_factor": 350 / 607, "start_balance": 150_000.0,
                "end_balance": 149_743.0, "max_relative_drawdown": 500 / 150_150, "max_drawdown_amount": 500.0,
                "stop_loss_used": 0.6, "take_profit_used": 0.4, "hft_count": 2, "max_layering": 3,
                "avg_hold_seconds": (30 + 300 + 500 + 10 + 100) / 5, "longest_losing_streak": 1}
    user = await _analytics(api, f"/v1/analytics/users/{api.id('u1')}")
    challenge = await _analytics(api, f"/v1/analytics/challenges/{api.id('c1')}")
    for out, scope, scope_id in ((user, "user", api.id("u1")), (challenge, "challenge", api.id("c1"))):
        assert (out["scope"], out["id"], out["accounts"]) == (scope, scope_id, 2)
        assert out["currencies"] == ["USD"] and out["open_positions"] == 0
        assert out["last_trade_at"] == pytest.approx(base + 1010)
        _assert_block(out["all"], expected)
        assert out["window"] == out["all"]
        assert set(out["by_account"]) == {a, b}
        assert out["by_account"][a] == {"trades": 4, "score": A_SCORE}
        assert out["by_account"][b]["trades"] == 1
    assert user["all"] == challenge["all"]

    legacy = (await api.client.get(f"/risk/user/{api.id('u1')}")).json()
    assert legacy["trading_account_login"] == api.id("u1")
    assert (legacy["risk_score"], legacy["risk_signals"]) == (user["window"]["score"], user["window"]["flags"])
    assert legacy["last_trade_at"] == datetime.fromtimestamp(base + 1010, UTC).isoformat()
    legacy = (await api.client.get(f"/risk/challenge/{api.id('c1')}")).json()
    assert legacy["trading_account_login"] == api.id("c1") and legacy["metrics"] == challenge["window"]

    firm = await _analytics(api, "/v1/analytics/firm")
    assert firm["scope"] == "firm" and firm["id"] is None
    assert firm["accounts"] >= 3 and firm["all"]["trades"] >= 7
    assert {a, b, api.id("other")} <= set(firm["by_account"])
    assert firm["by_account"][a] == {"trades": 4, "score": A_SCORE}


@pytest.fixture
async def own_api(fresh_deployment, uid):
    """:class:`Api` over a deployment of this test's own (its analytics config is its own)."""
    from api import create_app

    settings, runtime = fresh_deployment("sharded", shards=1)
    app = create_app(settings, runtime.service)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://riskactors.test", timeout=60.0) as client:
        yield Api(client, uid), settings, runtime


async def test_update_config_changes_the_window_and_thresholds_of_later_answers(own_api):
    api, settings, runtime = own_api
    base = _base((settings, runtime))
    acct = api.id("a")
    await _register(api, acct, base)
    await _trades_of_a(api, acct, base)
    before = await _analytics(api, f"/v1/accounts/{acct}/analytics")
    assert before["window_size"] == 100 and before["window"]["trades"] == 4

    # the earlier service's names: window_size → window, win_ratio_threshold
    r = await api.client.post("/admin/update-config", json={"window_size": 2, "win_ratio_threshold": 0.6})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Configuration updated"
    assert r.json()["config"] == {**before["config"], "window": 2, "win_ratio_threshold": 0.6}
    assert (await _analytics(api, "/v1/analytics/config")) == r.json()["config"]

    out = await _analytics(api, f"/v1/accounts/{acct}/analytics")
    assert out["window_size"] == 2 and out["config"]["window"] == 2
    assert out["all"]["trades"] == 4 and out["all"]["flags"] == ["LOW_WIN_RATIO"]  # 0.5 < 0.6
    # the window is T3 (+200) and T4 (−107), starting from the balance after T2
    _assert_block(out["window"], {"trades": 2, "wins": 1, "losses": 1, "win_ratio": 0.5, "start_balance": 99_600.0,
                                  "end_balance": 99_693.0, "net_pnl": 93.0, "max_layering": 1, "hft_count": 1})
    # its one day made all of its +93: the best day's share is 1 (> 0.5)
    assert out["window"]["best_day_share"] == pytest.approx(1.0)
    assert out["window"]["flags"] == ["PROFIT_CONCENTRATION", "LOW_WIN_RATIO"]
    legacy = (await api.client.get(f"/risk-report/{acct}")).json()
    assert legacy["risk_signals"] == ["PROFIT_CONCENTRATION", "LOW_WIN_RATIO"] and legacy["metrics"]["trades"] == 2
    assert legacy["risk_score"] == out["window"]["score"]

    # initial_balance is accepted for compatibility and ignored
    r = await api.client.post("/admin/update-config", json={"initial_balance": 5_000})
    assert r.status_code == 200 and "initial_balance ignored" in r.json()["message"], r.text
    assert r.json()["config"]["window"] == 2

    # invalid values are 422s naming the field, and change nothing
    for body, loc in (({"window_size": 0}, ["body", "window_size"]),
                      ({"window_size": 2.5}, ["body", "window_size"]),
                      ({"win_ratio_threshold": 1.5}, ["body", "win_ratio_threshold"]),
                      ({"drawdown_threshold": 0}, ["body", "drawdown_threshold"]),
                      ({"hft_duration": -1}, ["body", "hft_duration"]),
                      ({"window": 5}, ["body", "window"])):
        r = await api.client.post("/admin/update-config", json=body)
        assert locs(r) == [loc], (body, r.json())
    assert (await _analytics(api, "/v1/analytics/config"))["window"] == 2
