"""Drive a risk server through its HTTP API with a trade history, as an order router and a
price feed would, and report what the server decided.

For every trade, in time order: marks for its symbol at the open price (and, where the file
carries the broker's conversion rate, a mark of the conversion pair), a pre-trade check at
the open time, a fill at open if accepted; at the close: marks, then the closing fill (a
broker-side close — stop-loss, take-profit or the trader's own — is reported, not checked).
Bars of the file (MT4) are pushed as marks in between. The realized P&L the server returns
for the closing fill is compared with the file's ``profit`` to 0.01 account currency.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import httpx

from ..domain import InstrumentRegistry, default_registry
from .loaders import Trade, TradeFile

__all__ = ["ReplayOptions", "ReplayReport", "run_replay"]

PNL_TOLERANCE = 0.01


@dataclass
class ReplayOptions:
    """Plan, initial balance and currency of accounts the server does not know yet
    (``None``: the format's default — 100,000 USD for FundingPips, 1,000,000 JPY for MT4)."""

    plan: str = "two_step_phase1"
    balance: float | None = None
    currency: str | None = None
    concurrency: int = 16


@dataclass
class ReplayReport:
    """What a replay did and what the server decided."""

    fmt: str
    trades: int = 0
    accounts_registered: int = 0
    accounts_existing: int = 0
    decisions: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    fills: int = 0
    fill_errors: Counter = field(default_factory=Counter)
    marks_posted: int = 0
    breaches: list[dict[str, Any]] = field(default_factory=list)
    pnl_compared: int = 0
    pnl_equal: int = 0
    pnl_complete_compared: int = 0
    pnl_complete_equal: int = 0
    mismatches: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    firm: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    sample_account: str | None = None

    def render(self) -> str:
        """Human-readable report."""
        lines = [f"replay report ({self.fmt})",
                 f"  trades replayed        {self.trades}",
                 f"  accounts registered    {self.accounts_registered} (already known: {self.accounts_existing})",
                 f"  marks posted           {self.marks_posted}",
                 "  decisions              " + ", ".join(f"{k} {v}" for k, v in sorted(self.decisions.items())),
                 "  reject reasons         " + (", ".join(f"{k} {v}" for k, v in self.reasons.most_common()) or "none"),
                 "  warnings               " + (", ".join(f"{k} {v}" for k, v in self.warnings.most_common()) or "none"),
                 f"  fills applied          {self.fills}"
                 + (f" (errors: {dict(self.fill_errors)})" if self.fill_errors else ""),
                 f"  breaches               {len(self.breaches)}"]
        for b in self.breaches[:20]:
            lines.append(f"    {b['account_id']}: {b['code']} at {b.get('at_iso', b['at'])} — {b['message']}")
        if len(self.breaches) > 20:
            lines.append(f"    … {len(self.breaches) - 20} more")
        killed = sorted({b["account_id"] for b in self.breaches})
        lines.append(f"  killed accounts        {len(killed)}" + (f": {', '.join(killed[:20])}" if killed else ""))
        if self.skipped:
            lines.append(f"  rows skipped           {len(self.skipped)}: " + "; ".join(self.skipped[:5]))
        lines.append(f"  realized P&L = file profit (±{PNL_TOLERANCE}): {self.pnl_equal} of {self.pnl_compared} "
                     f"closing fills; rows with complete fields: {self.pnl_complete_equal} of "
                     f"{self.pnl_complete_compared}")
        for cat, items in sorted(self.mismatches.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"    differ — {cat}: {len(items)}" + (f" (e.g. {'; '.join(items[:3])})" if items else ""))
        f = self.firm
        if f:
            lines.append(f"  firm view: {f['accounts']} accounts, by status {f['accounts_by_status']}, "
                         f"killed {f['killed']}, breached {f['breached']}, in warning {f['in_warning']}, "
                         f"risk score mean {f['risk_score']['mean']:.1f} max {f['risk_score']['max']:.1f}")
            for ccy, t in f["totals_by_currency"].items():
                lines.append(f"    {ccy}: balance {t['balance']:,.2f} equity {t['equity']:,.2f} "
                             f"day P&L {t['daily_pnl']:,.2f}")
        return "\n".join(lines)


def _conversion_mark(registry: InstrumentRegistry, quote: str, currency: str, rate: float):
    """(symbol, price) of an FX pair that carries ``rate`` (quote→account) as its mark."""
    for inst in registry:
        if inst.asset_class != "fx" or not inst.symbol.isupper():
            continue
        if inst.base_currency == quote and inst.quote_currency == currency:
            return inst.symbol, rate
        if inst.base_currency == currency and inst.quote_currency == quote:
            return inst.symbol, 1.0 / rate
    return None


class _Driver:
    def __init__(self, client: httpx.AsyncClient, tf: TradeFile, options: ReplayOptions,
                 registry: InstrumentRegistry):
        self.client = client
        self.tf = tf
        self.options = options
        self.registry = registry
        self.currency = options.currency or tf.currency
        self.balance = options.balance or tf.balance
        self.report = ReplayReport(fmt=tf.fmt, skipped=list(tf.skipped))
        self.opened: set[str] = set()
        self.open_count: Counter = Counter()
        self.overlapped: set[str] = set()

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        r = await self.client.post(path, json=body)
        if r.status_code >= 500:
            raise RuntimeError(f"POST {path} → {r.status_code}: {r.text[:300]}")
        return r

    async def register_accounts(self) -> None:
        first: dict[str, Trade] = {}
        for t in self.tf.trades:
            first.setdefault(t.account_id, t)
        sem = asyncio.Semaphore(self.options.concurrency)
        self.report.sample_account = next(iter(first), None)

        async def one(t: Trade) -> None:
            async with sem:
                r = await self.client.get(f"/v1/accounts/{t.account_id}")
                if r.status_code == 200:
                    self.report.accounts_existing += 1
                    return
                r = await self._post("/v1/accounts", {
                    "account_id": t.account_id, "user_id": t.user_id, "challenge_id": t.challenge_id,
                    "currency": self.currency, "initial_balance": self.balance, "plan": self.options.plan,
                    "opened_at": t.open_ts - 1.0})
                if r.status_code != 201:
                    raise RuntimeError(f"registering {t.account_id}: {r.status_code} {r.text[:300]}")
                self.report.accounts_registered += 1

        await asyncio.gather(*(one(t) for t in first.values()))

    async def marks(self, ts: float, prices: list[tuple[str, float]]) -> None:
        body = {"marks": [{"instrument": s, "bid": p, "ask": p, "ts": ts} for s, p in prices]}
        r = await self._post("/v1/marks", body)
        if r.status_code != 200:
            raise RuntimeError(f"marks rejected: {r.status_code} {r.text[:300]}")
        self.report.marks_posted += len(prices)
        self._breaches(r.json()["breaches"])

    def _breaches(self, breaches: list[dict[str, Any]]) -> None:
        from datetime import datetime

        for b in breaches:
            b["at_iso"] = datetime.fromtimestamp(b["at"], tz=UTC).isoformat(timespec="seconds")
            self.report.breaches.append(b)

    def _prices(self, t: Trade, price: float) -> list[tuple[str, float]]:
        prices = [(t.symbol, price)]
        quote = self.registry.get(t.symbol).quote_currency
        if t.conversion_rate and quote != self.currency:
            conv = _conversion_mark(self.registry, quote, self.currency, t.conversion_rate)
            if conv is not None and conv[0] != t.symbol:
                prices.append(conv)
        return prices

    async def open(self, t: Trade) -> None:
        self.report.trades += 1
        await self.marks(t.open_ts, self._prices(t, t.open_price))
        order = {"order_id": f"{t.trade_id}:open", "account_id": t.account_id, "instrument": t.symbol,
                 "side": t.side, "quantity": t.lots, "ts": t.open_ts}
        if t.stop_loss:
            order["stop_loss"] = t.stop_loss
        if t.take_profit:
            order["take_profit"] = t.take_profit
        r = await self._post("/v1/orders/check", order)
        if r.status_code != 200:
            raise RuntimeError(f"check {t.trade_id}: {r.status_code} {r.text[:300]}")
        d = r.json()
        self.report.decisions[d["decision"]] += 1
        for reason in d["reasons"]:
            self.report.reasons[reason["code"]] += 1
        for w in d["warnings"]:
            self.report.warnings[w["code"]] += 1
        if d["decision"] != "accept":
            return
        fill = {"fill_id": f"{t.trade_id}:open", "order_id": order["order_id"], "account_id": t.account_id,
                "instrument": t.symbol, "side": t.side, "quantity": t.lots, "price": t.open_price, "ts": t.open_ts}
        if await self._fill(fill) is not None:
            self.opened.add(t.trade_id)
            key = (t.account_id, t.symbol)
            self.open_count[key] += 1
            if self.open_count[key] > 1:
                self.overlapped.add(key)

    async def _fill(self, fill: dict[str, Any]) -> dict[str, Any] | None:
        r = await self._post("/v1/fills", fill)
        if r.status_code != 200:
            detail = r.json().get("detail")
            code = detail.get("code") if isinstance(detail, dict) else str(r.status_code)
            self.report.fill_errors[code] += 1
            return None
        self.report.fills += 1
        result = r.json()
        self._breaches(result["breach"])
        return result

    async def close(self, t: Trade) -> None:
        if t.trade_id not in self.opened:
            return
        await self.marks(t.close_ts, self._prices(t, t.close_price))
        side = "sell" if t.side == "buy" else "buy"
        key = (t.account_id, t.symbol)
        overlapped = key in self.overlapped
        result = await self._fill({"fill_id": f"{t.trade_id}:close", "account_id": t.account_id,
                                   "instrument": t.symbol, "side": side, "quantity": t.lots,
                                   "price": t.close_price, "commission": t.commission, "swap": t.swap,
                                   "ts": t.close_ts})
        self.open_count[key] -= 1
        if self.open_count[key] == 0:
            self.overlapped.discard(key)
        if result is None:
            return
        pnl = result["net_pnl"] if t.profit_is_net else result["realized_pnl"]
        equal = abs(pnl - t.profit) <= PNL_TOLERANCE + 1e-9
        rep = self.report
        rep.pnl_compared += 1
        rep.pnl_equal += equal
        if t.complete and not t.notes:
            rep.pnl_complete_compared += 1
            rep.pnl_complete_equal += equal
        if not equal:
            if t.notes:
                cat = "file conventions differ: " + ", ".join(t.notes)
            elif overlapped:
                cat = "netting: another trade of the account on this symbol was open (average price differs)"
            elif self.registry.get(t.symbol).quote_currency != self.currency and not t.conversion_rate:
                cat = ("quote→account conversion from the latest marks (no broker rate in the file) "
                       "differs from the broker's rate")
            else:
                cat = "unexplained by the row's fields (e.g. partial closes at the broker)"
            rep.mismatches[cat].append(f"{t.trade_id} {t.symbol} server {pnl:.2f} vs file {t.profit:.2f}")

    async def run(self) -> ReplayReport:
        await self.register_accounts()
        events: list[tuple[float, int, int, Any]] = []
        for i, (ts, sym, price) in enumerate(self.tf.marks):
            events.append((ts, 0, i, (sym, price)))
        for i, t in enumerate(self.tf.trades):
            events.append((t.open_ts, 2, i, t))
            # closes before opens at the same instant, except a trade's own zero-length close
            events.append((t.close_ts, 3 if t.close_ts <= t.open_ts else 1, i, t))
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        pending: list[tuple[str, float]] = []
        pending_ts = None
        for ts, kind, _, payload in events:
            if kind == 0:
                if pending and ts != pending_ts:
                    await self.marks(pending_ts, pending)
                    pending = []
                pending_ts = ts
                pending.append(payload)
                continue
            if pending:
                await self.marks(pending_ts, pending)
                pending = []
            if kind == 2:
                await self.open(payload)
            else:
                await self.close(payload)
        if pending:
            await self.marks(pending_ts, pending)
        r = await self.client.get("/v1/risk/firm", params={"top": 10})
        self.report.firm = r.json()
        return self.report


async def run_replay(target: str | httpx.AsyncClient, tf: TradeFile, options: ReplayOptions | None = None,
                     registry: InstrumentRegistry | None = None) -> ReplayReport:
    """Replay ``tf`` into the server at ``target`` (a base URL or an ``httpx.AsyncClient``)."""
    options = options or ReplayOptions()
    registry = registry or default_registry()
    if isinstance(target, httpx.AsyncClient):
        return await _Driver(target, tf, options, registry).run()
    async with httpx.AsyncClient(base_url=target, timeout=30.0) as client:
        return await _Driver(client, tf, options, registry).run()
