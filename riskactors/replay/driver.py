"""Drive a risk server through its HTTP API with a trade history, as an order router and a
price feed would, and report what the server decided.

For every trade, in time order: marks for its symbol at the open price (and, where the file
carries the broker's conversion rate, a mark of the conversion pair), a pre-trade check at
the open time, a fill at open if accepted; at the close: marks, then the closing fill (a
broker-side close — stop-loss, take-profit or the trader's own — is reported, not checked).
Bars of the file (MT4) are pushed as marks in between. The realized P&L the server returns
for the closing fill is compared with the file's ``profit`` to 0.01 account currency.

Position mode
-------------
``hedging`` (default, what MetaTrader 4 and the prop platforms run): every ticket is its own
position; the opening fill carries the ticket (``trade_id``) as ``position_id`` with the
row's stop-loss and take-profit, and the closing fill names the same ``position_id``.
``netting``: one position per instrument; a closing fill of one ticket reduces the net
position, so its realized P&L is measured against the average price of every ticket open.

After the replay the driver fetches, over HTTP: each breached account's final status, every
challenge's accounts by status, and the behaviour analytics of the firm, of every user and
challenge of the file, and of the account when the file holds one (see ``report.py``).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from ..domain import InstrumentRegistry, default_registry
from .loaders import Trade, TradeFile
from .report import (
    CONVERSION_CATEGORY,
    OVERLAP_CATEGORY,
    PNL_TOLERANCE,
    UNEXPLAINED_CATEGORY,
    ReplayReport,
    iso_utc,
)

__all__ = ["BATCH_ITEMS", "ReplayOptions", "ReplayReport", "iso_timestamp", "run_replay"]

#: Items per batch request (the server's limit).
BATCH_ITEMS = 10_000


@dataclass
class ReplayOptions:
    """How accounts the server does not know yet are registered.

    Attributes
    ----------
    plan : str
        Plan id (its active version), default ``two_step_phase1``.
    balance, currency : float or None, str or None
        Initial balance (account currency) and currency; ``None``: the format's default —
        100,000 USD for FundingPips, 1,000,000 JPY for MT4.
    position_mode : {"hedging", "netting"}
        Default ``hedging``: the ticket is the ``position_id``. ``netting``: one position per
        instrument (tickets of the same symbol are averaged together).
    concurrency : int
        Requests in flight when registering accounts and fetching analytics.
    read_back : bool
        After the history, read statuses and analytics back (default). Reads change nothing on
        the server (they are as of its clock), so the state is exactly what the history made.
    max_mark_age : float or None
        ``None`` (default): accounts are registered with rule ``STALE_PRICE`` in ``warn`` (a
        replay prices on whatever its source gives: H1 bars are an hour apart, FundingPips has
        no rate for some conversions), and the report counts the checks that would have been
        stale; a number: the rule rejects, with this maximum mark age in seconds.
    timestamps : {"epoch", "iso"}
        How every ``ts`` and ``opened_at`` is sent: ``epoch`` seconds (default, a JSON number)
        or ``iso``, an ISO 8601 UTC string with ``Z`` and the microseconds
        (``2019-04-01T06:00:00.250000Z``), which the server reads back to the same epoch seconds.
    """

    plan: str = "two_step_phase1"
    balance: float | None = None
    currency: str | None = None
    position_mode: Literal["hedging", "netting"] = "hedging"
    concurrency: int = 16
    read_back: bool = True
    timestamps: Literal["epoch", "iso"] = "epoch"
    max_mark_age: float | None = None


def iso_timestamp(ts: float) -> str:
    """``ts`` (epoch seconds) as ISO 8601 UTC with ``Z``, microseconds kept when not zero:
    ``2023-12-29T07:32:27Z``, ``2023-12-29T07:32:27.250000Z``. A time of the files (whole
    microseconds) reads back to exactly the same float."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


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
                 registry: InstrumentRegistry, progress: Callable[[int, int], None] | None = None):
        if options.position_mode not in ("hedging", "netting"):
            raise ValueError(f"position_mode must be hedging or netting, got {options.position_mode!r}")
        if options.timestamps not in ("epoch", "iso"):
            raise ValueError(f"timestamps must be epoch or iso, got {options.timestamps!r}")
        self.client = client
        self.tf = tf
        self.options = options
        self.registry = registry
        self.hedging = options.position_mode == "hedging"
        self.currency = options.currency or tf.currency
        self.balance = options.balance or tf.balance
        self.report = ReplayReport(fmt=tf.fmt, position_mode=options.position_mode, skipped=list(tf.skipped),
                                   max_mark_age=options.max_mark_age)
        self.opened: set[str] = set()
        self.open_count: Counter = Counter()
        self.held: defaultdict[str, Counter] = defaultdict(Counter)  # account -> open positions per symbol
        self.overlapped: set[tuple[str, str]] = set()
        self._iso = options.timestamps == "iso"
        self.progress = progress

    def _ts(self, ts: float) -> float | str:
        """``ts`` (epoch seconds) as the request sends it (``options.timestamps``)."""
        return iso_timestamp(ts) if self._iso else ts

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        r = await self.client.post(path, json=body)
        if r.status_code >= 500:
            raise RuntimeError(f"POST {path} → {r.status_code}: {r.text[:300]}")
        return r

    async def _get(self, path: str, **params: Any) -> dict[str, Any]:
        r = await self.client.get(path, params=params or None)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} → {r.status_code}: {r.text[:300]}")
        return r.json()

    async def _gather(self, calls) -> list[Any]:
        sem = asyncio.Semaphore(self.options.concurrency)

        async def one(call):
            async with sem:
                return await call

        return await asyncio.gather(*(one(c) for c in calls))

    def _limits(self) -> dict[str, Any]:
        """Limit overrides of the accounts the replay registers (rule ``STALE_PRICE``)."""
        if self.options.max_mark_age is None:
            return {"stale_price_action": "warn"}
        return {"max_mark_age_seconds": float(self.options.max_mark_age)}

    async def register(self, trades: list[Trade]) -> None:
        """Register the accounts of ``trades`` (each its account's first trade) at ``opened_at``
        = its first open − 1 s, in time order with the other events: on an ``events`` server a
        registration moves the clock, so accounts are registered when the history reaches them.
        Registrations with no other event between them go together (``POST
        /v1/accounts/batch``, at most 10,000 a request)."""
        for start in range(0, len(trades), BATCH_ITEMS):
            chunk = trades[start:start + BATCH_ITEMS]
            r = await self._post("/v1/accounts/batch", {"accounts": [{
                "account_id": t.account_id, "user_id": t.user_id, "challenge_id": t.challenge_id,
                "currency": self.currency, "initial_balance": self.balance, "plan": self.options.plan,
                "position_mode": self.options.position_mode, "opened_at": self._ts(t.open_ts - 1.0),
                "limits": self._limits()} for t in chunk]})
            if r.status_code != 200:
                raise RuntimeError(f"registering {len(chunk)} accounts: {r.status_code} {r.text[:300]}")
            for t, result in zip(chunk, r.json()["results"]):
                if result["status"] in (200, 409):  # registered by an earlier run (same or other identity)
                    self.report.accounts_existing += 1
                elif result["status"] == 201:
                    self.report.accounts_registered += 1
                else:
                    raise RuntimeError(f"registering {t.account_id}: {result['status']} {result['error']}")

    async def marks(self, ts: float, prices: list[tuple[str, float]]) -> None:
        stamp = self._ts(ts)
        body = {"marks": [{"instrument": s, "bid": p, "ask": p, "ts": stamp} for s, p in prices]}
        r = await self._post("/v1/marks", body)
        if r.status_code != 200:
            raise RuntimeError(f"marks rejected: {r.status_code} {r.text[:300]}")
        self.report.marks_posted += len(prices)
        answer = r.json()
        self._breaches(answer["breaches"])
        self.report.breaches_unlisted += answer.get("breach_count", len(answer["breaches"])) - len(answer["breaches"])

    def _breaches(self, breaches: list[dict[str, Any]]) -> None:
        for b in breaches:
            b["at_iso"] = iso_utc(b["at"])
            self.report.breaches.append(b)
            self.report.first_breach.setdefault(b["account_id"], dict(b))  # carries its trading_day

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
                 "side": t.side, "quantity": t.lots, "ts": self._ts(t.open_ts)}
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
            if w["code"] == "STALE_PRICE_WARNING":
                self.report.stale_checks += 1
                continue
            self.report.warnings[w["code"]] += 1
        if any(r["code"] == "STALE_PRICE" for r in d["reasons"]):
            self.report.stale_checks += 1
        if d["decision"] != "accept":
            return
        fill = {"fill_id": f"{t.trade_id}:open", "order_id": order["order_id"], "account_id": t.account_id,
                "instrument": t.symbol, "side": t.side, "quantity": t.lots, "price": t.open_price,
                "ts": self._ts(t.open_ts)}
        if self.hedging:
            fill["position_id"] = t.trade_id
            if t.stop_loss:
                fill["stop_loss"] = t.stop_loss
            if t.take_profit:
                fill["take_profit"] = t.take_profit
        if await self._fill(fill) is not None:
            self.opened.add(t.trade_id)
            key = (t.account_id, t.symbol)
            self.open_count[key] += 1
            self.held[t.account_id][t.symbol] += 1
            if self.open_count[key] > 1:
                self.overlapped.add(key)

    async def _fill(self, fill: dict[str, Any]) -> dict[str, Any] | None:
        r = await self._post("/v1/fills", fill)
        if r.status_code != 200:
            detail = r.json().get("detail")
            return self._filled(None, detail if isinstance(detail, dict) else {"code": str(r.status_code)})
        return self._filled(r.json(), None)

    def _filled(self, result: dict[str, Any] | None, error: dict[str, Any] | None) -> dict[str, Any] | None:
        """Count a fill's answer: ``result`` (applied) or ``error`` (its ``code``)."""
        if result is None:
            self.report.fill_errors[(error or {}).get("code") or "error"] += 1
            return None
        self.report.fills += 1
        if result.get("closed_trade") is not None:
            self.report.closed_trades.append(result["closed_trade"])
        self._breaches(result["breach"])
        return result

    def _close_fill(self, t: Trade) -> dict[str, Any]:
        fill = {"fill_id": f"{t.trade_id}:close", "account_id": t.account_id, "instrument": t.symbol,
                "side": "sell" if t.side == "buy" else "buy", "quantity": t.lots, "price": t.close_price,
                "commission": t.commission, "swap": t.swap, "ts": self._ts(t.close_ts)}
        if self.hedging:
            fill["position_id"] = t.trade_id
        return fill

    async def close(self, t: Trade) -> None:
        if t.trade_id not in self.opened:
            return
        await self.marks(t.close_ts, self._prices(t, t.close_price))
        overlapped = (t.account_id, t.symbol) in self.overlapped
        self._closed(t, await self._fill(self._close_fill(t)), overlapped)

    def _closed(self, t: Trade, result: dict[str, Any] | None, overlapped: bool) -> None:
        """The bookkeeping after a close's fill (``result`` ``None``: refused)."""
        key = (t.account_id, t.symbol)
        self.open_count[key] -= 1
        self.held[t.account_id][t.symbol] -= 1
        if self.open_count[key] == 0:
            self.overlapped.discard(key)
        if result is None:
            return
        self._compare(t, result["net_pnl"] if t.profit_is_net else result["realized_pnl"],
                      overlapped and not self.hedging)

    def _depends_on(self, account_id: str) -> set[str]:
        """The symbols whose marks value ``account_id``'s open positions (as this replay opened
        them): their instruments and the FX pairs converting their quote currencies."""
        out: set[str] = set()
        for sym, n in self.held[account_id].items():
            if n > 0:
                out.add(sym)
                quote = self.registry.get(sym).quote_currency
                if quote != self.currency:
                    conv = _conversion_mark(self.registry, quote, self.currency, 1.0)
                    if conv is not None:
                        out.add(conv[0])
        return out

    async def close_many(self, trades: list[Trade]) -> None:
        """Closes of one instant, as few requests as exactness allows. Done one by one, each
        close posts its marks then its fill; together, the marks of the group go in one request
        and the fills in one ``POST /v1/fills/batch`` (in order, so one account's fills keep
        theirs). That is the same replay only if no fill of the group is valued on a mark that
        a later member brings: a member is added only when its marks neither change a price the
        group has, nor touch what an earlier member's account holds (its positions and their
        conversion pairs); else the group so far is sent and a new one begins."""
        trades = [t for t in trades if t.trade_id in self.opened]
        group: list[Trade] = []
        prices: dict[str, float] = {}
        deps: list[tuple[set[str], set[str]]] = []  # per member: (depends on, its own symbols)
        for t in trades:
            own = dict(self._prices(t, t.close_price))
            clash = any(s in prices and prices[s] != p for s, p in own.items()) or any(
                d & (own.keys() - mine) for d, mine in deps)
            if clash:
                await self._close_group(group, prices)
                group, prices, deps = [], {}, []
            group.append(t)
            prices.update(own)
            deps.append((self._depends_on(t.account_id) | own.keys(), set(own)))
        await self._close_group(group, prices)

    async def _close_group(self, group: list[Trade], prices: dict[str, float]) -> None:
        if len(group) <= 1:
            for t in group:
                await self.close(t)
            return
        await self.marks(group[0].close_ts, list(prices.items()))
        overlapped = [(t.account_id, t.symbol) in self.overlapped for t in group]
        for start in range(0, len(group), BATCH_ITEMS):
            chunk = group[start:start + BATCH_ITEMS]
            r = await self._post("/v1/fills/batch", {"fills": [self._close_fill(t) for t in chunk]})
            if r.status_code != 200:
                raise RuntimeError(f"{len(chunk)} closes: {r.status_code} {r.text[:300]}")
            for t, item, lapped in zip(chunk, r.json()["results"], overlapped[start:]):
                self._closed(t, self._filled(item.get("fill") if item["status"] == 200 else None,
                                             item.get("error")), lapped)

    def _compare(self, t: Trade, pnl: float, overlapped: bool) -> None:
        equal = abs(pnl - t.profit) <= PNL_TOLERANCE + 1e-9
        rep = self.report
        rep.pnl_compared += 1
        rep.pnl_equal += equal
        if t.complete and not t.notes:
            rep.pnl_complete_compared += 1
            rep.pnl_complete_equal += equal
        if equal:
            return
        if t.notes:
            cat = "file conventions differ: " + ", ".join(t.notes)
        elif overlapped:
            cat = OVERLAP_CATEGORY
        elif self.registry.get(t.symbol).quote_currency != self.currency and not t.conversion_rate:
            cat = CONVERSION_CATEGORY
        else:
            cat = UNEXPLAINED_CATEGORY
        rep.mismatches[cat].append(f"{t.trade_id} {t.symbol} server {pnl:.2f} vs file {t.profit:.2f}")

    async def run(self) -> ReplayReport:
        events: list[tuple[float, int, int, Any]] = []
        first: dict[str, Trade] = {}
        for t in self.tf.trades:
            first.setdefault(t.account_id, t)
        self.report.sample_account = next(iter(first), None)
        for i, t in enumerate(first.values()):
            events.append((t.open_ts - 1.0, -1, i, t))  # registration: before anything at its instant
        for i, (ts, sym, price) in enumerate(self.tf.marks):
            events.append((ts, 0, i, (sym, price)))
        for i, t in enumerate(self.tf.trades):
            events.append((t.open_ts, 2, i, t))
            # closes before opens at the same instant, except a trade's own zero-length close
            events.append((t.close_ts, 3 if t.close_ts <= t.open_ts else 1, i, t))
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        pending: list[tuple[str, float]] = []
        pending_ts = None
        accounts: list[Trade] = []  # registrations with nothing between them: one batch
        closing: list[Trade] = []  # closes of one instant with nothing between them
        closing_at: tuple[float, int] | None = None
        for done, (ts, kind, _, payload) in enumerate(events, 1):
            if self.progress is not None:
                self.progress(done, len(events))
            if closing and (ts, kind) != closing_at:
                await self.close_many(closing)
                closing = []
            if kind in (1, 3):
                if accounts:
                    await self.register(accounts)
                    accounts = []
                if pending:
                    await self.marks(pending_ts, pending)
                    pending = []
                closing.append(payload)
                closing_at = (ts, kind)
                continue
            if kind == -1:
                if pending:
                    await self.marks(pending_ts, pending)
                    pending = []
                accounts.append(payload)
                continue
            if accounts:
                await self.register(accounts)
                accounts = []
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
            await self.open(payload)
        if closing:
            await self.close_many(closing)
        if accounts:
            await self.register(accounts)
        if pending:
            await self.marks(pending_ts, pending)
        if self.options.read_back:
            await self.collect()
        return self.report

    async def collect(self) -> None:
        """Read back what the server made of the replay: firm risk, accounts by status per
        challenge, final status of breached accounts, behaviour analytics.

        Reads change nothing: they are as of the server's clock (on an ``events`` server, the
        replay's last event)."""
        rep = self.report
        trades = self.tf.trades
        users = sorted({t.user_id for t in trades})
        challenges = sorted({t.challenge_id for t in trades})
        accounts = sorted({t.account_id for t in trades})
        rep.firm = await self._get("/v1/risk/firm", top=10)
        risks = await self._gather(self._get(f"/v1/risk/challenges/{c}", top=1) for c in challenges)
        rep.challenges = {c: dict(r["accounts_by_status"]) for c, r in zip(challenges, risks)}
        breached = sorted(rep.first_breach)
        views = await self._gather(self._get(f"/v1/accounts/{a}") for a in breached)
        for a, view in zip(breached, views):
            rep.first_breach[a]["final_status"] = view["status"]
        rep.analytics["firm"] = await self._get("/v1/analytics/firm")
        user_rows = await self._gather(self._get(f"/v1/analytics/users/{u}") for u in users)
        rep.analytics["users"] = dict(zip(users, user_rows))
        challenge_rows = await self._gather(self._get(f"/v1/analytics/challenges/{c}") for c in challenges)
        rep.analytics["challenges"] = dict(zip(challenges, challenge_rows))
        if len(accounts) == 1:
            rep.analytics["account"] = await self._get(f"/v1/accounts/{accounts[0]}/analytics")


async def run_replay(target: str | httpx.AsyncClient, tf: TradeFile, options: ReplayOptions | None = None,
                     registry: InstrumentRegistry | None = None,
                     progress: Callable[[int, int], None] | None = None) -> ReplayReport:
    """Replay ``tf`` into the server at ``target`` (a base URL or an ``httpx.AsyncClient``),
    then read back statuses and analytics (see the module docstring). ``progress(done, total)``
    is called before each event (registrations, marks, opens, closes).

    Raises
    ------
    RuntimeError
        The server answered a request with an unexpected status (5xx, a rejected mark batch,
        a failed registration or read-back).
    ValueError
        ``options.position_mode`` is neither ``hedging`` nor ``netting``, or
        ``options.timestamps`` neither ``epoch`` nor ``iso``.
    """
    options = options or ReplayOptions()
    registry = registry or default_registry()
    if isinstance(target, httpx.AsyncClient):
        return await _Driver(target, tf, options, registry, progress).run()
    async with httpx.AsyncClient(base_url=target, timeout=30.0) as client:
        return await _Driver(client, tf, options, registry, progress).run()
