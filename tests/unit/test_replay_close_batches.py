"""``riskactors replay`` sends the closes of one instant together (their marks in one request,
their fills in one ``POST /v1/fills/batch``) only where that is the same replay as one by one:
every answer counted, every account's state and the report must be equal. In process (no
Ray), on a synthetic history built to have closes that may go together and closes that may not
(a price of the instant changed by a later close, an account holding what a later close marks).
"""

from __future__ import annotations

import asyncio

import httpx

from api import create_app
from riskactors.actors import AccountHost, LocalTransport, RiskService, Supervisor
from riskactors.actors.clock import DeploymentClock
from riskactors.replay import ReplayOptions, TradeFile, run_replay
from riskactors.replay import driver as replay_driver
from riskactors.replay.loaders import Trade
from riskactors.settings import Settings

T = 1_746_540_000.0  # a Tuesday


def _trade(n: int, account: str, symbol: str, side: str, open_ts: float, close_ts: float, open_px: float,
           close_px: float, lots: float = 0.1) -> Trade:
    return Trade(trade_id=f"t{n}", account_id=account, user_id=f"u-{account}", challenge_id="c", symbol=symbol,
                 side=side, lots=lots, open_ts=open_ts, close_ts=close_ts, open_price=open_px, close_price=close_px,
                 commission=0.0, swap=0.0, profit=0.0, profit_is_net=False)


def _history() -> TradeFile:
    trades = [
        # closing together at T+600: four accounts, two symbols, one price each
        _trade(1, "A", "EURUSD", "buy", T, T + 600, 1.1000, 1.1010),
        _trade(2, "B", "EURUSD", "sell", T + 1, T + 600, 1.1001, 1.1010),
        _trade(3, "C", "XAUUSD", "buy", T + 2, T + 600, 2300.0, 2310.0),
        _trade(4, "D", "XAUUSD", "sell", T + 3, T + 600, 2300.5, 2310.0),
        # E holds XAUUSD (closed later) and closes EURUSD at T+900, before F's XAUUSD close of
        # that instant marks XAUUSD: F may not join E's group
        _trade(5, "E", "XAUUSD", "buy", T + 4, T + 2_000, 2300.0, 2290.0, lots=3.0),
        _trade(6, "E", "EURUSD", "buy", T + 5, T + 900, 1.1000, 1.0990),
        _trade(7, "F", "XAUUSD", "buy", T + 6, T + 900, 2300.0, 2250.0, lots=1.0),
        # two closes of one symbol at one instant at different prices: not together
        _trade(8, "G", "EURUSD", "buy", T + 7, T + 1_200, 1.1000, 1.1050),
        _trade(9, "H", "EURUSD", "buy", T + 8, T + 1_200, 1.1000, 1.1040),
        # a USD account with a JPY-quoted position, and a USDJPY close of that instant: the
        # conversion pair of I's position
        _trade(10, "I", "GBPJPY", "buy", T + 9, T + 3_000, 190.0, 191.0),
        _trade(11, "J", "GBPJPY", "buy", T + 10, T + 1_500, 190.0, 190.5),
        _trade(12, "K", "USDJPY", "buy", T + 11, T + 1_500, 150.0, 151.0),
    ]
    trades.sort(key=lambda t: t.open_ts)
    marks = [(T - 5, "USDJPY", 150.0), (T + 1_499, "USDJPY", 150.2)]
    return TradeFile(fmt="synthetic", trades=trades, marks=marks, currency="USD", balance=100_000.0, skipped=[])


async def _replay(one_by_one: bool) -> tuple[dict, list[dict], list[tuple[str, str]]]:
    settings = Settings(storage_root=None, clock="events", max_breaches_listed=10 ** 6)
    transport = LocalTransport()
    shards = [AccountHost(f"shard-{i}", settings.host_config()) for i in range(2)]
    service = RiskService(transport, Supervisor(transport, "sharded", shards, settings.host_config()), shards,
                          "sharded", clock=DeploymentClock("events"), max_breaches_listed=10 ** 6)
    app = create_app(settings, service)
    sent: list[tuple[str, str]] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replay.test") as client:
        original = client.post

        async def post(url, *args, **kwargs):
            sent.append((url, kwargs.get("json", {}).get("fills", [{}])[0].get("fill_id", "") if "fills" in url
                         else ""))
            return await original(url, *args, **kwargs)

        client.post = post
        if one_by_one:
            async def close_many(self, trades):
                for t in trades:
                    await self.close(t)

            replay_driver._Driver.close_many, saved = close_many, replay_driver._Driver.close_many
        try:
            report = await run_replay(client, _history(), ReplayOptions(plan="aggressive", read_back=False))
        finally:
            if one_by_one:
                replay_driver._Driver.close_many = saved
        views = [(await client.get(f"/v1/accounts/{a}")).json() for a in "ABCDEFGHIJK"]
    for v in views:
        v.pop("as_of", None)
    return report.to_dict() if hasattr(report, "to_dict") else vars(report), views, sent


def test_closes_of_one_instant_go_together_only_where_the_replay_is_the_same():
    batched, batched_views, batched_sent = asyncio.run(_replay(False))
    single, single_views, single_sent = asyncio.run(_replay(True))
    assert batched_views == single_views
    # the same report, but for the marks: a price that several closes of the instant share is posted once
    assert batched.pop("marks_posted") < single.pop("marks_posted")
    assert batched == single and batched["fills"] == 2 * 12 and not batched["fill_errors"]
    batches = [fill for url, fill in batched_sent if url == "/v1/fills/batch"]
    assert batches == ["t1:close"]  # A, B, C, D at T+600: one batch; E/F, G/H, J/K: one by one
    assert not any(url == "/v1/fills/batch" for url, _ in single_sent)
    singles = [sum(url == "/v1/fills" for url, _ in sent) for sent in (batched_sent, single_sent)]
    assert singles == [2 * 12 - 4, 2 * 12]  # 12 opens and 12 closes; 4 closes went in the batch
