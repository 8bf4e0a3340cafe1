"""Account host: a thin, Ray-free class that runs the core for the accounts placed on it.

A host decodes a call (plain dicts, so it crosses process boundaries cheaply), runs the
domain core and replies with plain dicts. Errors of the core come back as an envelope
``{"error": {...}}`` rather than as exceptions, so the caller maps them without unpickling
tracebacks. ``riskactors.actors.ray_runtime`` wraps this class with ``ray.remote``; tests use
it directly. One host is one writer for its accounts: calls are applied one at a time.
"""

from __future__ import annotations

from typing import Any

from ..domain import (
    Account,
    AccountConfig,
    AccountStatus,
    CalendarEvent,
    DomainError,
    DuplicateAccount,
    Fill,
    InstrumentRegistry,
    KillSwitch,
    Limits,
    LimitsError,
    Mark,
    MarkBook,
    NewsCalendar,
    Order,
    SizingError,
    TradingDayCalendar,
    UnknownAccount,
    default_registry,
)

__all__ = ["AccountHost", "error_envelope"]


def error_envelope(exc: Exception) -> dict[str, Any]:
    """``{"error": {"type", "code", "subject", "message", "field"}}`` for a core error."""
    if isinstance(exc, (LimitsError, SizingError)):
        return {"error": {"type": type(exc).__name__, "code": "INVALID_" + ("LIMITS" if isinstance(exc, LimitsError)
                                                                            else "REQUEST"),
                          "subject": exc.field, "field": exc.field, "message": exc.message}}
    assert isinstance(exc, DomainError)
    return {"error": {"type": type(exc).__name__, "code": exc.code, "subject": exc.subject, "field": exc.field,
                      "message": exc.message}}


class AccountHost:
    """Hosts many accounts (sharded placement) or one (dedicated placement).

    Parameters
    ----------
    host_id : str
        Name used in logs and readiness.
    config : dict
        ``Settings.host_config()``: reservation TTL, trading-day calendar, optional
        instrument file. Plans are resolved by the supervisor: a host receives resolved limits.
    """

    def __init__(self, host_id: str, config: dict[str, Any] | None = None):
        config = config or {}
        self.host_id = host_id
        self.registry = (InstrumentRegistry.from_csv(config["instruments_file"])
                         if config.get("instruments_file") else default_registry())
        self.account_config = AccountConfig(
            reservation_ttl=float(config.get("reservation_ttl_seconds", 30.0)),
            calendar=TradingDayCalendar(config.get("trading_day_rollover", "17:00"),
                                        config.get("trading_day_timezone", "America/New_York")))
        self.book = MarkBook(self.registry)
        self.news = NewsCalendar()
        self.accounts: dict[str, Account] = {}

    # ------------------------------------------------------------------ helpers
    def _account(self, account_id: str) -> Account:
        acct = self.accounts.get(account_id)
        if acct is None:
            raise UnknownAccount(account_id, "account not registered")
        return acct

    def _targets(self, account_ids: list[str] | None) -> list[Account]:
        if account_ids is None:
            return list(self.accounts.values())
        return [self.accounts[a] for a in account_ids if a in self.accounts]

    # ------------------------------------------------------------------ calls
    def ping(self) -> dict[str, Any]:
        """Liveness of this host: id, account count, marks held."""
        return {"host_id": self.host_id, "accounts": len(self.accounts), "marks": len(self.book)}

    def register(self, spec: dict[str, Any], switches: list[dict[str, Any]], marks: list[dict[str, Any]],
                 now: float, calendar: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Create an account from ``spec`` (HTTP body fields plus ``resolved_limits`` and
        ``plan_version`` from the supervisor), apply the scope switches in force, the latest
        marks and calendar events; return its view (or an error envelope)."""
        try:
            if spec["account_id"] in self.accounts:
                raise DuplicateAccount(spec["account_id"], "account already registered")
            self._apply_marks(marks)
            self.apply_calendar(calendar or [])
            limits = Limits.from_dict(spec["resolved_limits"])
            acct = Account(spec["account_id"], spec["user_id"], spec["challenge_id"], spec["currency"],
                           float(spec["initial_balance"]), spec["plan"], limits, now, self.account_config,
                           position_mode=spec.get("position_mode") or "netting",
                           plan_version=spec.get("plan_version"))
            for sw in switches:
                acct.set_kill_switch(KillSwitch.from_dict(sw), now)
            self.accounts[acct.account_id] = acct
            return acct.view(self.book, now)
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)

    def view(self, account_id: str, now: float) -> dict[str, Any]:
        """Account view (see :meth:`Account.view`) after the time-driven events due at ``now``
        (day roll, reservation expiry), so a quiet account still shows today's figures."""
        try:
            acct = self._account(account_id)
            acct.advance(now, self.book)
            return acct.view(self.book, now)
        except DomainError as exc:
            return error_envelope(exc)

    def events(self, account_id: str, limit: int) -> dict[str, Any]:
        """The account's most recent ``limit`` events, oldest first."""
        try:
            events = list(self._account(account_id).events)
            return {"account_id": account_id, "events": events[-limit:]}
        except DomainError as exc:
            return error_envelope(exc)

    def check(self, order: dict[str, Any], now: float) -> dict[str, Any]:
        """Pre-trade check of one order (reserves on accept). Returns the decision dict."""
        try:
            acct = self._account(order["account_id"])
            peers = order.get("peers")
            if peers is not None:
                order = {**order, "peers": (tuple(peers[0]), tuple(peers[1]))}
            return acct.submit(Order(**order), self.book, now, self.news)
        except DomainError as exc:
            return error_envelope(exc)

    def check_many(self, orders: list[dict[str, Any]], nows: list[float]) -> list[dict[str, Any]]:
        """Several checks in arrival order (one actor call for a batch of the front)."""
        return [self.check(o, n) for o, n in zip(orders, nows)]

    def cancel(self, account_id: str | None, order_id: str, now: float) -> dict[str, Any] | None:
        """Release the reservation of ``order_id``; ``account_id=None`` searches this host.

        Returns ``None`` when ``account_id`` is ``None`` and no account here knows the order.
        """
        try:
            if account_id is not None:
                return self._account(account_id).cancel(order_id, now)
            for acct in self.accounts.values():
                if acct.knows_order(order_id):
                    return acct.cancel(order_id, now)
            return None
        except DomainError as exc:
            return error_envelope(exc)

    def fill(self, fill: dict[str, Any], now: float) -> dict[str, Any]:
        """Apply an execution report (idempotent on ``fill_id``)."""
        try:
            return self._account(fill["account_id"]).apply_fill(Fill(**fill), self.book, now)
        except DomainError as exc:
            return error_envelope(exc)

    def _apply_marks(self, marks: list[dict[str, Any]]) -> tuple[int, int]:
        applied = stale = 0
        for m in marks:
            if self.book.apply(Mark(m["instrument"], float(m["bid"]), float(m["ask"]), float(m["ts"]))):
                applied += 1
            else:
                stale += 1
        return applied, stale

    def apply_marks(self, marks: list[dict[str, Any]], now: float) -> dict[str, Any]:
        """Store marks, then re-value every account here; returns counts and breaches caused."""
        applied, stale = self._apply_marks(marks)
        breaches: list[dict[str, Any]] = []
        if applied:
            # only accounts with positions can change equity; the others roll their day lazily
            for acct in self.accounts.values():
                if acct.positions:
                    breaches.extend(acct.on_market(self.book, now))
        return {"applied": applied, "stale": stale, "breaches": breaches}

    def apply_calendar(self, events: list[dict[str, Any]]) -> int:
        """Add or replace calendar events (rule ``NEWS_BLACKOUT``); returns how many changed."""
        return self.news.add(CalendarEvent(e["event_id"], float(e["at"]), e.get("title") or "",
                                           tuple(e.get("currencies") or ()), tuple(e.get("instruments") or ()),
                                           e.get("impact") or "high") for e in events)

    def set_kill_switch(self, switch: dict[str, Any], account_ids: list[str] | None, now: float) -> int:
        """Activate ``switch`` on ``account_ids`` (``None``: every account here). Returns count."""
        sw = KillSwitch.from_dict(switch)
        targets = self._targets(account_ids)
        for acct in targets:
            acct.set_kill_switch(sw, now)
        return len(targets)

    def release_kill_switch(self, scope: str, scope_id: str | None, reason: str, by: str,
                            account_ids: list[str] | None, now: float) -> int:
        """Release a switch on the given accounts. Returns how many had it active."""
        return sum(1 for acct in self._targets(account_ids)
                   if acct.release_kill_switch(scope, scope_id, reason, by, now))

    def patch_limits(self, account_id: str, overrides: dict[str, Any], by: str, reason: str,
                     now: float) -> dict[str, Any]:
        """Apply limit overrides to an account (recorded) and return its view."""
        try:
            acct = self._account(account_id)
            limits: Limits = acct.limits.with_overrides(overrides)
            acct.set_limits(limits, by, reason, now)
            return acct.view(self.book, now)
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)

    def bind_plan(self, account_id: str, plan: str, version: int | None, limits: dict[str, Any], by: str,
                  reason: str, now: float) -> dict[str, Any]:
        """Rebind an account to a plan version with its resolved limits (recorded); returns the view."""
        try:
            acct = self._account(account_id)
            acct.advance(now, self.book)
            acct.bind_plan(plan, version, Limits.from_dict(limits), by, reason, now)
            return acct.view(self.book, now)
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)

    def position_size(self, account_id: str, request: dict[str, Any], now: float) -> dict[str, Any]:
        """Recommended lots for ``request`` (instrument, entry, stop_loss, risk_amount or
        risk_fraction) on the account (see :func:`riskactors.domain.sizing.position_size`)."""
        try:
            acct = self._account(account_id)
            acct.advance(now, self.book)
            return acct.size_position(request, self.book)
        except (DomainError, SizingError) as exc:
            return error_envelope(exc)

    def recommendations(self, account_ids: list[str] | None, status: str | None, now: float) -> list[dict[str, Any]]:
        """Limit-reduction recommendations of the given accounts (``None``: all here), after the
        day rolls due at ``now`` (a roll is what raises them)."""
        out = []
        for acct in self._targets(account_ids):
            acct.advance(now, self.book)
            out.extend(dict(r) for r in acct.recommendations.values() if status is None or r["status"] == status)
        return out

    def decide_recommendation(self, account_id: str, rec_id: str, apply: bool, by: str, reason: str,
                              now: float) -> dict[str, Any]:
        """Apply or dismiss a pending recommendation; returns it and the account view."""
        try:
            acct = self._account(account_id)
            acct.advance(now, self.book)
            rec = acct.decide_recommendation(rec_id, apply, by, reason, now)
            return {"recommendation": rec, "account": acct.view(self.book, now)}
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)

    def closed_trades(self, account_ids: list[str] | None, now: float) -> list[dict[str, Any]]:
        """Per account: ids, initial balance and its closed trades as tuples (for the analytics)."""
        out = []
        for acct in self._targets(account_ids):
            acct.advance(now, self.book)
            out.append({"account_id": acct.account_id, "user_id": acct.user_id, "challenge_id": acct.challenge_id,
                        "initial_balance": acct.initial_balance, "currency": acct.currency,
                        "open_positions": len(acct.positions),
                        "trades": [tuple(t.to_dict().values()) for t in acct.closed_trades]})
        return out

    def set_status(self, account_id: str, status: str, by: str, reason: str, now: float) -> dict[str, Any]:
        """Ops status change (``active``/``disabled``/``failed``); returns the view."""
        try:
            acct = self._account(account_id)
            acct.set_status(AccountStatus(status), by, reason, now)
            return acct.view(self.book, now)
        except DomainError as exc:
            return error_envelope(exc)

    def summaries(self, account_ids: list[str] | None, now: float) -> list[dict[str, Any]]:
        """Consolidation rows for the given accounts (``None``: all here), after the
        time-driven events due at ``now``."""
        rows = []
        for acct in self._targets(account_ids):
            acct.advance(now, self.book)
            rows.append(acct.summary(self.book, now))
        return rows
