"""Account host: a thin, Ray-free class that runs the core for the accounts placed on it.

A host decodes a call (plain dicts, so it crosses process boundaries cheaply), runs the
domain core and replies with plain dicts. Errors of the core come back as an envelope
``{"error": {...}}`` rather than as exceptions, so the caller maps them without unpickling
tracebacks. ``riskactors.actors.ray_runtime`` wraps this class with ``ray.remote``; tests use
it directly. One host is one writer for its accounts: calls are applied one at a time.

Time. The host keeps ``clock``, the deployment clock as far as its calls have told it (the
``now`` of each state-changing call: an event's ``ts``, or the front's clock); it never goes
back. Every state-changing call first moves the clock, which applies the time-driven events
(day roll, reservation expiry, time limit) of every account here that falls due by then, in
due order, before the call's own event; :meth:`AccountHost.advance_to` moves it with no event
(the front's ticks). Accounts are kept in a heap by their next due instant, so moving the
clock costs only the accounts that fall due. Reads change nothing: they answer as of
``max(now, clock)``, projecting an account on the side when something falls due by then.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import heapq
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..domain import (
    Account,
    AccountConfig,
    AccountStatus,
    CalendarEvent,
    DomainError,
    DuplicateAccount,
    ExposureMap,
    Fill,
    InstrumentRegistry,
    KillSwitch,
    LatestMarks,
    Limits,
    LimitsError,
    Mark,
    NewsCalendar,
    Order,
    SizingError,
    TradingDayCalendar,
    UnknownAccount,
    account_from_state,
    account_summary,
    account_to_state,
    account_view,
    default_registry,
    marks_from_state,
    marks_to_state,
    news_from_state,
    news_to_state,
    peers_of,
    size_position,
)
from ..domain.rollup import Rollup, Row, account_row, combine, part_of
from .durable import HostStore
from .scopeswitches import ScopeSwitches

__all__ = ["AccountHost", "error_envelope", "unavailable_envelope"]

log = logging.getLogger("riskactors.actors")

#: A rollup's sums are summed afresh from its rows after this many updates per row (floating
#: drift: about 1e-16 of the values per update, so some 1e-8 of a currency unit at 100,000 rows).
_REBUILD_EVERY = 256

if TYPE_CHECKING:  # imported by _block_of, when a host first builds a block
    from ..domain.columnar import Block


def journaled(when: Callable[[Any], bool] | None = None):
    """Mark a host method as state-changing: after it runs, its name and arguments are
    appended to the host's journal and committed (per the fsync policy) before it returns;
    ``when(result)`` false skips journaling (the call changed nothing). During recovery the
    same method is re-run from the journal, which is exact because the core is deterministic
    (time is an argument)."""

    def wrap(method):
        name = method.__name__

        @functools.wraps(method)
        def wrapper(self: AccountHost, *args: Any) -> Any:
            self._writing = True  # its commit checks the fence (before and after the write)
            try:
                result = method(self, *args)
            finally:
                self._writing = False
            if self._store is not None and not self._replaying and (when is None or when(result)):
                self._store.record(name, list(args))
                self._commit()
            return result

        return wrapper

    return wrap


def error_envelope(exc: Exception) -> dict[str, Any]:
    """``{"error": {"type", "code", "subject", "message", "field"}}`` for a core error."""
    if isinstance(exc, (LimitsError, SizingError)):
        return {"error": {"type": type(exc).__name__, "code": "INVALID_" + ("LIMITS" if isinstance(exc, LimitsError)
                                                                            else "REQUEST"),
                          "subject": exc.field, "field": exc.field, "message": exc.message}}
    assert isinstance(exc, DomainError)
    return {"error": {"type": type(exc).__name__, "code": exc.code, "subject": exc.subject, "field": exc.field,
                      "message": exc.message}}


def unavailable_envelope(exc: Exception) -> dict[str, Any]:
    """The error envelope of a host that could not be reached (``ShardUnavailable``: 503)."""
    return {"error": {"type": "ShardUnavailable", "code": "SERVICE_UNAVAILABLE", "subject": None, "field": None,
                      "message": str(exc)}}


def _with_change(view: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """``view`` plus ``audit``: the before/after of the change ``event`` recorded (the front
    writes it to the audit log and does not return it)."""
    view["audit"] = {"before": event.get("before"), "after": event.get("after")}
    return view


def _settle() -> None:
    """Move every object alive now out of the cyclic garbage collector's sight (``gc.freeze``):
    a host holds millions of long-lived objects, and each full collection walked them all
    (tens of ms per mark at 12,500 accounts, measured). Done once accounts are loaded or
    registered in bulk, after bulk fills and marks that revalue many accounts, and before
    a snapshot's fork (the child then touches fewer pages, too). Frozen objects are still freed by reference counting; only a reference cycle among
    them would wait (accounts hold none)."""
    gc.freeze()


def _node_id() -> str | None:
    """The Ray node this process runs on (``None`` outside Ray); the host does not import Ray
    at module level, so it stays usable in plain tests."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - informational only
        return None


class AccountHost:
    """Hosts many accounts (sharded placement) or the accounts of one user (dedicated placement).

    Parameters
    ----------
    host_id : str
        Name used in logs and readiness.
    config : dict
        ``Settings.host_config()``: reservation TTL, trading-day calendar, optional
        instrument file, ``storage`` (journal and snapshots; ``None`` keeps state in memory
        only). Plans are resolved by the supervisor: a host receives resolved limits.

    Notes
    -----
    With storage, construction recovers the host before it answers anything: the newest
    snapshot, then the journal records after it are re-run in order. Ray restarts a dead host
    by constructing it again with the same arguments, so a restart (on any node that reaches
    the storage root) recovers the same state; calls sent meanwhile wait or fail closed.
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
        self.latest = LatestMarks(self.registry)
        self.exposure = ExposureMap(self.registry)
        self.news = NewsCalendar()
        self.accounts: dict[str, Account] = {}
        #: user id -> the ids of that user's accounts here (all of them: placement is by user)
        self._by_user: dict[str, set[str]] = {}
        #: symbol -> the ids of the accounts here whose equity its marks move (see ``_reindex``)
        self._held: dict[str, set[str]] = {}
        self._deps: dict[str, frozenset[str]] = {}  # account id -> its symbols in ``_held``
        self._seq: dict[str, int] = {}  # account id -> order of arrival (revaluation order)
        #: consolidated risk kept up to date (see ``domain.rollup``): each account's row, the
        #: accounts changed since their row was made, and one rollup per challenge
        self._rows: dict[str, Row] = {}
        self._dirty: set[str] = set()
        #: symbol -> the columnar form of its holders (a cache: see ``_revalue_columnar``)
        self._blocks: dict[str, Block] = {}
        self._versions: dict[str, int] = {}  # account id -> how many times its row changed
        self._columnar_from = int(config.get("columnar_from", 64))
        self._challenges: dict[str, Rollup] = {}
        self._in_challenge: dict[str, set[str]] = {}
        #: audit entries of the admin actions applied here, not yet in the supervisor's audit
        #: log (see ``_to_outbox``): kept in the journal record of the action and in snapshots
        self.outbox: dict[str, dict[str, Any]] = {}
        #: user, challenge and firm kill switches, applied to an account when next touched
        self.scope_switches = ScopeSwitches()
        #: the deployment clock as this host has seen it (epoch seconds; never goes back)
        self.clock = 0.0
        self._due: list[tuple[float, str]] = []  # (next due instant, account id), lazily pruned
        self._due_at: dict[str, float] = {}
        self._replaying = False
        self._writing = False
        self._grouping = False  # inside commit_group: a call's commit waits for the group's
        self._group_pending = False
        storage = config.get("storage")
        self._store = HostStore(storage, host_id) if storage else None
        self.recovery: dict[str, Any] = {"snapshot_seq": None, "replayed": 0, "seconds": 0.0}
        if self._store is not None:
            self._recover()
        _settle()

    # ------------------------------------------------------------------ durability
    def _recover(self) -> None:
        started = time.perf_counter()
        snap, tail = self._store.load()
        if snap is not None:
            for st in snap.accounts:
                acct = account_from_state(st, self.account_config)
                self._add(acct)
            self.latest = marks_from_state(snap.host.get("marks", snap.host.get("book")), self.registry)  # v1: "book"
            self.news = news_from_state(snap.host["news"])
            self.outbox = {e["key"]: e for e in snap.host.get("outbox", [])}
            self.scope_switches.active = {(sw["scope"], sw["id"]): KillSwitch.from_dict(sw)
                                          for sw in snap.host.get("scope_switches", [])}
            self.clock = float(snap.host.get("clock", max((a.clock for a in self.accounts.values()), default=0.0)))
        self._replaying = True
        try:
            for _, (op, args) in tail:
                self._replay(op, args)
        finally:
            self._replaying = False
        self.recovery = {"snapshot_seq": snap.seq if snap else None, "replayed": len(tail),
                         "seconds": round(time.perf_counter() - started, 6),
                         "torn_frames_dropped": self._store.journal.torn_frames_dropped}
        log.info("host %s recovered %d accounts (snapshot %s, %d journal records) in %.3f s", self.host_id,
                 len(self.accounts), self.recovery["snapshot_seq"], len(tail), self.recovery["seconds"])

    def _replay(self, op: str, args: list[Any]) -> None:
        if op == "advance":  # journals of state version 1: the accounts a read advanced
            ids, now = args
            for a in ids:
                self.accounts[a].advance(now, self.latest)
                self._schedule(self.accounts[a])
            return
        getattr(self, op)(*args)

    def _commit(self) -> None:
        if self._grouping:
            self._group_pending = True
            return
        self._store.commit()
        self._store.reap()
        if self._store.snapshot_due():
            self._store.snapshot_in_background(self._snapshot_state)

    @contextlib.contextmanager
    def commit_group(self):
        """Group commit: the journaled calls made inside share one commit (one write and one
        fsync, under the fsync policy) when the block ends, instead of one each.

        The caller must not acknowledge any of them before the block has ended without an
        exception: until then none is durable. On exit the commit raises what
        :meth:`_commit` raises (``Fenced``: a newer instance holds the journal, so none of the
        group may be acknowledged). The host link (:class:`~riskactors.actors.hostlink.LinkServer`)
        runs the requests read together in one turn of its loop, from every connection, in one
        group, which is the
        group commit of issue 11 §3: one fsync per batch of concurrent calls, still before
        any of them is answered. Nested groups are one group.
        """
        if self._grouping or self._store is None:
            yield
            return
        self._grouping, self._group_pending = True, False
        try:
            yield
        finally:
            self._grouping = False
        if self._group_pending:
            self._group_pending = False
            self._commit()

    def _snapshot_state(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every account brought up to date with the scope switches (so the snapshot needs no
        log), and the host-level state. In a snapshot's child this changes the child's copy."""
        for acct in self.accounts.values():
            self._sync(acct)
        return ([account_to_state(a) for a in self.accounts.values()],
                {"marks": marks_to_state(self.latest), "news": news_to_state(self.news), "clock": self.clock,
                 "outbox": list(self.outbox.values()),
                 "scope_switches": [sw.to_dict() for sw in self.scope_switches.active.values()]})

    def snapshot(self) -> dict[str, Any]:
        """Write a snapshot of every account here now (waiting for one being written in the
        background first) and compact the journal (no-op without storage). Returns the path
        and the journal ``seq`` it includes."""
        if self._store is None:
            return {"path": None, "seq": None}
        self._store.commit()
        path = self._store.snapshot(*self._snapshot_state())
        return {"path": path, "seq": self._store.journal.seq}

    def close(self) -> None:
        """Wait for a background snapshot, flush and close the journal (orderly shutdown)."""
        if self._store is not None:
            self._store.reap(wait=True)
            self._store.journal.close()

    # ------------------------------------------------------------------ the clock
    def _schedule(self, acct: Account) -> None:
        """(Re)file ``acct`` in the due heap under its next due instant."""
        self._dirty.add(acct.account_id)  # every path that changes an account files it again
        due = acct.next_due()
        if self._due_at.get(acct.account_id) != due:
            self._due_at[acct.account_id] = due
            heapq.heappush(self._due, (due, acct.account_id))

    def _move_clock(self, now: float) -> tuple[int, list[dict[str, Any]]]:
        """Move the clock to ``now`` (if later) and apply what falls due by then to every
        account here, in due order. Returns (accounts advanced, breach events caused)."""
        self.clock = max(self.clock, now)
        heap, advanced, breaches = self._due, 0, []
        while heap and heap[0][0] <= self.clock:
            due, account_id = heapq.heappop(heap)
            if self._due_at.get(account_id) != due:
                continue  # refiled under a later instant since
            del self._due_at[account_id]
            acct = self._sync(self.accounts[account_id])
            breaches.extend(acct.advance(self.clock, self.latest))
            advanced += 1
            self._schedule(acct)
        return advanced, breaches

    def _as_of(self, now: float | None) -> float:
        return self.clock if now is None else max(float(now), self.clock)

    # ------------------------------------------------------------------ helpers
    def _add(self, acct: Account) -> None:
        self.accounts[acct.account_id] = acct
        self._seq.setdefault(acct.account_id, len(self._seq))
        self._in_challenge.setdefault(acct.challenge_id, set()).add(acct.account_id)
        self._by_user.setdefault(acct.user_id, set()).add(acct.account_id)
        self.scope_switches.joined(acct.account_id)  # registered with the switches in force, or restored
        self._schedule(acct)
        self._reindex(acct)

    def _sync(self, acct: Account) -> Account:
        """``acct`` brought up to date with the scope switches set or released since it was
        last touched (see :mod:`~riskactors.actors.scopeswitches`); every path that reads or
        changes an account goes through here first."""
        if self.scope_switches.sync(acct):
            self._dirty.add(acct.account_id)
        return acct

    def _in_scope(self, scope: str, scope_id: str | None) -> int:
        """How many accounts here a user, challenge or firm switch applies to."""
        if scope == "firm":
            return len(self.accounts)
        held = self._in_challenge if scope == "challenge" else self._by_user
        return len(held.get(scope_id, ()))
    def _reindex(self, acct: Account) -> None:
        """File ``acct`` under the symbols whose marks move its equity (its positions and their
        conversions, :meth:`~riskactors.domain.ExposureMap.of_account`); a mark revalues only
        the accounts filed under its symbol. Called wherever positions change (fills)."""
        now = self.exposure.of_account(acct)
        was = self._deps.get(acct.account_id, frozenset())
        if now == was:
            return
        for sym in was - now:
            ids = self._held[sym]
            ids.discard(acct.account_id)
            if not ids:
                del self._held[sym]
        for sym in now - was:
            self._held.setdefault(sym, set()).add(acct.account_id)
        self._deps[acct.account_id] = now

    def held_symbols(self) -> list[str]:
        """The symbols whose marks move the equity of some account here, sorted."""
        return sorted(self._held)

    def _fence(self) -> None:
        """Raise ``Fenced`` (answered 503) once a newer instance of this host holds its journal:
        a fenced instance neither writes nor answers from its (stale) memory."""
        if self._store is not None and not self._replaying:
            if self._writing:  # the call's commit checks it, before it writes anything
                if self._store.fence.fenced:
                    self._store.fence.check()
                return
            self._store.fence.check()

    def _account(self, account_id: str) -> Account:
        self._fence()
        acct = self.accounts.get(account_id)
        if acct is None:
            raise UnknownAccount(account_id, "account not registered")
        return self._sync(acct)

    def _targets(self, account_ids: list[str] | None) -> list[Account]:
        self._fence()
        if account_ids is None:
            return [self._sync(a) for a in self.accounts.values()]
        return [self._sync(self.accounts[a]) for a in account_ids if a in self.accounts]

    # ------------------------------------------------------------------ calls
    def ping(self) -> dict[str, Any]:
        """Liveness of this host: id, account count, marks held, its clock, the journal's last
        sequence number (``None`` in memory), process, node and recovery."""
        self._fence()
        if self._store is not None:
            self._store.commit()  # the interval fsync policy forces written frames when due
            self._store.reap()  # a background snapshot finished: compact now, not at the next call
        return {"host_id": self.host_id, "accounts": len(self.accounts), "marks": len(self.latest),
                "epoch": self._store.fence.epoch if self._store is not None else None,
                "clock": self.clock, "journal_seq": self._store.journal.seq if self._store is not None else None,
                "pid": os.getpid(), "node_id": _node_id(), "recovery": self.recovery}

    def latest_marks(self) -> list[dict[str, Any]]:
        """The latest mark of every instrument this host has received (``instrument``, ``bid``,
        ``ask``, ``ts``)."""
        return marks_to_state(self.latest)

    @journaled(when=lambda r: r["advanced"] > 0)
    def advance_to(self, now: float) -> dict[str, Any]:
        """Move the clock to ``now`` with no other event (the front's tick): every account here
        gets the time-driven events due by then. Returns ``clock``, ``advanced`` (accounts that
        changed) and ``breaches`` (``TIME_LIMIT`` failures). Journaled only when one changed."""
        advanced, breaches = self._move_clock(now)
        return {"host_id": self.host_id, "clock": self.clock, "advanced": advanced, "breaches": breaches}

    @journaled()
    def register(self, spec: dict[str, Any], switches: list[dict[str, Any]], marks: list[dict[str, Any]],
                 now: float, calendar: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Create an account from ``spec`` (HTTP body fields plus ``resolved_limits`` and
        ``plan_version`` from the supervisor) whose history starts at ``now`` (its
        ``opened_at``), apply the scope switches in force, the latest marks and calendar
        events, bring it to the host's clock; return its view (or an error envelope)."""
        return self._register(spec, switches, marks, now, calendar)

    @journaled()
    def register_many(self, specs: list[dict[str, Any]], switches: list[list[dict[str, Any]]],
                      marks: list[dict[str, Any]], nows: list[float],
                      calendar: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Several registrations in order (one actor call, one journal record and one fsync):
        ``specs[i]`` with the scope switches ``switches[i]`` at ``nows[i]``; the marks and
        calendar events are applied first. One view or error envelope per spec."""
        if marks:
            self._revalue(*self._apply_marks(marks)[2:], now=self.clock)
        self._apply_calendar(calendar or [])
        out = [self._register(spec, sw, [], now, None) for spec, sw, now in zip(specs, switches, nows)]
        if len(specs) >= 100:
            _settle()
        return out

    def _register(self, spec: dict[str, Any], switches: list[dict[str, Any]], marks: list[dict[str, Any]],
                  now: float, calendar: list[dict[str, Any]] | None) -> dict[str, Any]:
        try:
            held = self.accounts.get(spec["account_id"])
            if held is not None:
                self._sync(held)
                # a retry of a registration this host applied but the supervisor never recorded
                # (it failed in between) gets the account back; anything else is a duplicate
                if (held.user_id, held.challenge_id, held.currency, held.initial_balance) == (
                        spec["user_id"], spec["challenge_id"], str(spec["currency"]).upper(),
                        float(spec["initial_balance"])):
                    return account_view(held, self.latest, self._as_of(now))
                raise DuplicateAccount(spec["account_id"], "account already registered")
            self._move_clock(now)
            self._apply_marks(marks)
            self._apply_calendar(calendar or [])
            limits = Limits.from_dict(spec["resolved_limits"])
            acct = Account(spec["account_id"], spec["user_id"], spec["challenge_id"], spec["currency"],
                           float(spec["initial_balance"]), spec["plan"], limits, now, self.account_config,
                           position_mode=spec.get("position_mode") or "netting",
                           plan_version=spec.get("plan_version"))
            for sw in switches:
                acct.set_kill_switch(KillSwitch.from_dict(sw), now)
            acct.advance(self.clock, self.latest)  # opened in the past: its history up to now
            self._add(acct)
            return account_view(acct, self.latest, self.clock)
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)

    def view(self, account_id: str, now: float | None = None) -> dict[str, Any]:
        """Account view as of ``max(now, clock)`` (see :func:`riskactors.domain.views.account_view`):
        a quiet account shows the day roll, expiries and time limit due by then, projected on
        the side. Changes nothing."""
        try:
            return account_view(self._account(account_id), self.latest, self._as_of(now))
        except DomainError as exc:
            return error_envelope(exc)

    def events(self, account_id: str, limit: int) -> dict[str, Any]:
        """The account's most recent ``limit`` events, oldest first."""
        try:
            events = list(self._account(account_id).events)
            return {"account_id": account_id, "events": events[-limit:]}
        except DomainError as exc:
            return error_envelope(exc)

    @journaled()
    def check(self, order: dict[str, Any], now: float) -> dict[str, Any]:
        """Pre-trade check of one order at ``now`` (reserves on accept). Returns the decision dict."""
        return self._check(order, now)

    def _check(self, order: dict[str, Any], now: float) -> dict[str, Any]:
        try:
            acct = self._account(order["account_id"])
            self._move_clock(now)
            if acct.limits.orders.hedging_across_accounts is not None:
                mates = self._by_user.get(acct.user_id, ())
                if len(mates) > 1:
                    order = {**order, "peers": peers_of((self.accounts[a] for a in mates), acct.account_id,
                                                        order["instrument"])}
            result = acct.submit(Order(**order), self.latest, now, self.news)
            self._schedule(acct)
            if self._due[0][0] <= self.clock:  # a late check's reservation may already be due: it expires now
                self._move_clock(now)
            return result
        except DomainError as exc:
            return error_envelope(exc)

    @journaled()
    def check_many(self, orders: list[dict[str, Any]], nows: list[float]) -> list[dict[str, Any]]:
        """Several checks in arrival order (one actor call, one journal record and one fsync
        for a batch of the front)."""
        return [self._check(o, n) for o, n in zip(orders, nows)]

    @journaled()
    def cancel(self, account_id: str | None, order_id: str, now: float) -> dict[str, Any] | None:
        """Release the reservation of ``order_id``; ``account_id=None`` searches this host.

        Returns ``None`` when ``account_id`` is ``None`` and no account here knows the order.
        """
        try:
            self._move_clock(now)
            if account_id is not None:
                acct = self._account(account_id)
            else:
                acct = next((a for a in self.accounts.values() if a.knows_order(order_id)), None)
                if acct is None:
                    return None
                self._sync(acct)
            result = acct.cancel(order_id, now)
            self._schedule(acct)
            return result
        except DomainError as exc:
            return error_envelope(exc)

    @journaled()
    def fill(self, fill: dict[str, Any], now: float) -> dict[str, Any]:
        """Apply an execution report at ``now`` (idempotent on ``fill_id``)."""
        return self._fill(fill, now)

    @journaled()
    def fill_many(self, fills: list[dict[str, Any]], nows: list[float]) -> list[dict[str, Any]]:
        """Several fills in order (one actor call, one journal record and one fsync); one
        result or error envelope per fill."""
        out = [self._fill(f, n) for f, n in zip(fills, nows)]
        if len(fills) >= 100:
            _settle()
        return out

    def _fill(self, fill: dict[str, Any], now: float) -> dict[str, Any]:
        try:
            acct = self._account(fill["account_id"])
            self._move_clock(now)
            result = acct.apply_fill(Fill(**fill), self.latest, now)
            self._schedule(acct)
            self._reindex(acct)
            return result
        except DomainError as exc:
            return error_envelope(exc)

    def _apply_marks(self, marks: list[dict[str, Any]]) -> tuple[int, int, set[str], list[str]]:
        """Store the marks newer than the held ones: (applied, stale, ids of the accounts whose
        equity the applied ones move, the symbols applied)."""
        applied = stale = 0
        moved: set[str] = set()
        symbols: list[str] = []
        for m in marks:
            mark = Mark(m["instrument"], float(m["bid"]), float(m["ask"]), float(m["ts"]))
            if mark != self.latest.get(mark.instrument) and self.latest.apply(mark):  # the very mark held: no change
                applied += 1
                moved |= self._held.get(m["instrument"], set())
                symbols.append(mark.instrument)
            else:
                stale += 1
        return applied, stale, moved, symbols

    def _revalue(self, account_ids: set[str], symbols: Sequence[str] = (), *, now: float) -> list[dict[str, Any]]:
        """Re-value ``account_ids`` on the latest marks at ``now`` (``symbols``: the ones just
        marked); returns the breaches caused. The holders of a symbol many accounts hold are
        valued together in columnar form (:meth:`_revalue_columnar`); every other account, and
        every account a mark could breach, one by one, in order of arrival here."""
        breaches: list[dict[str, Any]] = []
        if now > self.clock:  # callers move the clock first; this keeps "nothing here is due by now" true
            breaches.extend(self._move_clock(now)[1])
        latest, accounts, set_row = self.latest, self.accounts, self._set_row
        sync = self._sync if self.scope_switches.log else None  # nothing logged: nothing to bring up
        todo = account_ids
        if self._columnar_from and len(account_ids) >= self._columnar_from and symbols:
            todo = self._revalue_columnar(set(account_ids), symbols, now, sync)
        for account_id in sorted(todo, key=self._seq.__getitem__):
            acct = accounts[account_id]
            if sync is not None:
                sync(acct)
            status = acct.status
            caused, val = acct.revalue(latest, now, advance=False)
            if caused or acct.status is not status:  # a breach or a pass: its due instants changed
                breaches.extend(caused)
                self._schedule(acct)
            set_row(account_row(acct, latest, val))  # from the valuation just made
        return breaches

    def _revalue_columnar(self, todo: set[str], symbols: Sequence[str], now: float,
                          sync: Callable[[Account], Account] | None) -> set[str]:
        """Value the holders of each of ``symbols`` held by at least ``columnar_from`` accounts
        in one :class:`~riskactors.domain.columnar.Block` (kept per symbol, rebuilt when an
        eighth of it changed since); file the new rows of the accounts on which the marks are
        quiet. Returns the rest of ``todo``: accounts changed since their block was built, new
        holders, and every account the block flags for the exact path (a breach, a price or
        rate missing)."""
        if sync is not None:  # scope switches first: an account they change is no longer its block's
            for account_id in todo:
                sync(self.accounts[account_id])
        for sym in dict.fromkeys(symbols):
            held = self._held.get(sym)
            if held is None or len(held) < self._columnar_from:
                self._blocks.pop(sym, None)
                continue
            block = self._blocks.get(sym)
            if block is None or 8 * (block.stale + abs(len(held) - len(block))) > len(block):
                block = self._blocks[sym] = self._block_of(held)
            made, shifts = block.settle(block.value(self.latest), todo, now, self._versions, self._dirty)
            self._rows.update((row.account_id, row) for row in made)
            for challenge_id, shift in shifts.items():
                rollup = self._challenges[challenge_id]
                rollup.shift(shift)
                if rollup.updates > _REBUILD_EVERY * (rollup.accounts + 16):
                    self._challenges[challenge_id] = self._rebuilt(self._in_challenge[challenge_id])
        return todo

    def _block_of(self, account_ids: set[str]) -> Block:
        """A block of the accounts of ``account_ids`` whose row is current (the others take
        the exact path until the next build)."""
        from ..domain.columnar import Block  # here: a process loads numpy (if pyarrow has not) with its first block

        rows, dirty, accounts = self._rows, self._dirty, self.accounts
        ids = [a for a in account_ids if a not in dirty and a in rows and accounts[a].positions]
        versions = self._versions
        return Block([accounts[a] for a in ids], [rows[a] for a in ids], [versions[a] for a in ids], self.latest)

    # ------------------------------------------------------------------ consolidated risk
    def _set_row(self, row: Row) -> None:
        """Make ``row`` its account's current row in the rollups, and give the account a new
        version (a block built before values it the exact way: ``_revalue_columnar``, whose
        own rows are filed in bulk and move the version themselves)."""
        account_id = row.account_id
        self._versions[account_id] = self._versions.get(account_id, 0) + 1
        self._dirty.discard(account_id)
        old = self._rows.get(account_id)
        challenge = self._challenges.get(row.challenge_id)
        if challenge is None:
            challenge = self._challenges[row.challenge_id] = Rollup()
        self._rows[account_id] = row
        if old is None:
            challenge.add(row)
        else:
            challenge.replace(old, row)
        if challenge.updates > _REBUILD_EVERY * (challenge.accounts + 16):
            self._challenges[row.challenge_id] = self._rebuilt(self._in_challenge[row.challenge_id])

    def _rebuilt(self, account_ids) -> Rollup:
        """A rollup summed afresh from the current rows (bounds the drift of the sums)."""
        rollup = Rollup()
        for a in account_ids:
            row = self._rows.get(a)
            if row is not None:  # an account without a row yet is added when it gets one
                rollup.add(row)
        rollup.updates = 0
        return rollup

    def _fresh_rows(self) -> None:
        """Make the rows of the accounts changed since their row was made."""
        for account_id in list(self._dirty):
            self._set_row(account_row(self.accounts[account_id], self.latest))

    def _due_by(self, at: float) -> list[Account]:
        """The accounts here with a time-driven event due by ``at`` (a walk of the due heap
        that visits only entries due by then)."""
        heap, out, stack = self._due, [], [0]
        while stack:
            i = stack.pop()
            if i < len(heap) and heap[i][0] <= at:
                due, account_id = heap[i]
                if self._due_at.get(account_id) == due:
                    out.append(self.accounts[account_id])
                stack.extend((2 * i + 1, 2 * i + 2))
        return out

    def rollup(self, scope: str, scope_id: str | None, top_n: int, now: float | None = None) -> dict[str, Any]:
        """This host's part of the consolidated risk of ``scope`` (``firm``: every account
        here; ``challenge``/``user``: ``scope_id``'s accounts here) as of ``max(now, clock)``,
        from the rollups kept up to date (:mod:`riskactors.domain.rollup`; the supervisor
        merges the parts). An account with an event due by then is projected on the side.
        Changes nothing but the rows' cache."""
        self._fence()
        if self.scope_switches.log:  # bring the scope's accounts up to date (their rows' killed flag)
            ids = (self.accounts if scope == "firm" else
                   self._in_challenge.get(scope_id, ()) if scope == "challenge" else self._by_user.get(scope_id, ()))
            for a in ids:
                self._sync(self.accounts[a])
            if scope == "firm":
                self.scope_switches.trim()
        self._fresh_rows()
        at = self._as_of(now)
        due = [a for a in self._due_by(at) if scope == "firm" or (
            a.challenge_id == scope_id if scope == "challenge" else a.user_id == scope_id)]
        projected = {a.account_id: account_row(a.projected(at, self.latest), self.latest) for a in due}
        if scope == "user":
            rows = [projected.get(a) or self._rows[a] for a in sorted(self._by_user.get(scope_id, ()))]
            return part_of(rows, at, top_n)
        swaps = [(self._rows[a], row) for a, row in projected.items()]
        rows = self._rows
        if scope == "firm":
            return combine([r.part([rows[a] for a in self._in_challenge[c]], at, top_n,
                                   [w for w in swaps if w[0].challenge_id == c])
                            for c, r in self._challenges.items()], top_n)
        rollup = self._challenges.get(scope_id)
        if rollup is None:
            return part_of([], at, top_n)
        return rollup.part([rows[a] for a in self._in_challenge[scope_id]], at, top_n, swaps)

    @journaled(when=lambda r: r["applied"] > 0 or r["advanced"] > 0)
    def apply_marks(self, marks: list[dict[str, Any]], now: float, listed: int | None = None) -> dict[str, Any]:
        """Move the clock to ``now``, store the marks, then re-value the accounts whose equity
        they move (positions in a marked instrument or converted through it; in order of
        arrival here): a mark nobody here holds costs no account. Returns ``applied``,
        ``stale``, ``advanced``, ``revalued`` (accounts), ``breaches`` (the breaches caused;
        the first ``listed`` of them when given: a mark that fails 12,500 accounts here need
        not ship 12,500 records to the front), ``breach_count`` and ``breaches_by_code``."""
        advanced, breaches = self._move_clock(now)
        applied, stale, moved, symbols = self._apply_marks(marks)
        breaches.extend(self._revalue(moved, symbols, now=now))
        if len(moved) >= 1000:
            _settle()  # the rows just made: out of the next full collections' way
        by_code: dict[str, int] = {}
        for b in breaches:
            by_code[b["code"]] = by_code.get(b["code"], 0) + 1
        return {"applied": applied, "stale": stale, "advanced": advanced, "revalued": len(moved),
                "breaches": breaches if listed is None else breaches[:listed], "breach_count": len(breaches),
                "breaches_by_code": by_code}

    @journaled()
    def apply_calendar(self, events: list[dict[str, Any]]) -> int:
        """Add or replace calendar events (rule ``NEWS_BLACKOUT``); returns how many changed.
        A calendar is a schedule, not an event: it does not move the clock."""
        return self._apply_calendar(events)

    def _apply_calendar(self, events: list[dict[str, Any]]) -> int:
        return self.news.add(CalendarEvent(e["event_id"], float(e["at"]), e.get("title") or "",
                                           tuple(e.get("currencies") or ()), tuple(e.get("instruments") or ()),
                                           e.get("impact") or "high") for e in events)

    @journaled()
    def set_kill_switch(self, switch: dict[str, Any], account_ids: list[str] | None, now: float,
                        audit: dict[str, Any] | None = None) -> int:
        """Activate ``switch`` on ``account_ids`` (``None``: every account here). Returns count.
        A user, challenge or firm switch is logged and reaches each account of its scope when
        that account is next touched (:mod:`~riskactors.actors.scopeswitches`): O(1) here.
        ``audit`` (an account-scope switch, whose only record is this one): its audit entry,
        put in the outbox with ``accounts_affected``."""
        self._move_clock(now)
        sw = KillSwitch.from_dict(switch)
        if sw.scope != "account":  # logged here, applied to each account when next touched
            self.scope_switches.set(sw, now)
            return self._in_scope(str(sw.scope), sw.scope_id)
        targets = self._targets(account_ids)
        for acct in targets:
            acct.set_kill_switch(sw, now)
        self._dirty.update(a.account_id for a in targets)
        if audit is not None and targets:
            self._outboxed(targets[0], {**audit, "after": {**audit["after"], "accounts_affected": len(targets)}})
        return len(targets)

    @journaled()
    def release_kill_switch(self, scope: str, scope_id: str | None, reason: str, by: str,
                            account_ids: list[str] | None, now: float, audit: dict[str, Any] | None = None) -> int:
        """Release a switch on the given accounts. Returns how many had it active. ``audit``:
        as for :meth:`set_kill_switch` (``accounts_released``), when one was released."""
        self._move_clock(now)
        if scope != "account" and (scope, scope_id) in self.scope_switches.active:
            self.scope_switches.release(scope, scope_id, reason, by, now)
            return self._in_scope(scope, scope_id)
        # an account switch, or a scope switch not set through the log (a state of 0.2): now
        released = [acct for acct in self._targets(account_ids)
                    if acct.release_kill_switch(scope, scope_id, reason, by, now)]
        self._dirty.update(a.account_id for a in released)
        if audit is not None and released:
            self._outboxed(released[0], {**audit, "after": {"accounts_released": len(released)}})
        return len(released)

    def _changed_view(self, acct: Account, action: str, who: list | None, by: str, reason: str,
                      now: float) -> dict[str, Any]:
        """The view after an ops change, with its before/after (see :func:`_with_change`); with
        ``who``, ``audit`` is the action's whole audit entry, put in the outbox."""
        self._schedule(acct)
        view = _with_change(account_view(acct, self.latest, self.clock), acct.events[-1])
        entry = self._to_outbox(action, acct, who, by, reason, now, view["audit"]["before"], view["audit"]["after"])
        if entry is not None:
            view["audit"] = entry
        return view

    def _to_outbox(self, action: str, acct: Account, who: list | None, by: str | None, reason: str, now: float,
                   before: Any, after: Any, scope: str = "account", scope_id: str | None = None
                   ) -> dict[str, Any] | None:
        """The audit entry of an admin action applied here now, kept in :attr:`outbox` until
        the supervisor's audit log has it (:meth:`audit_delivered`). It is made from the call's
        own arguments, so re-running the journal record makes it again: an applied action
        never loses its entry, whatever fails after. Keyed by host, account and event number
        (the supervisor ignores a key it has). ``who`` (actor name and role) ``None``: a record
        journaled before 0.3, whose front wrote the entry itself."""
        if who is None:
            return None
        name, role = who
        return self._outboxed(acct, {"at": now, "actor": name, "role": role, "by": by, "action": action,
                                     "account_id": acct.account_id, "scope": scope,
                                     "scope_id": acct.account_id if scope_id is None else scope_id,
                                     "reason": reason, "before": before, "after": after})

    def _outboxed(self, acct: Account, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"key": f"{self.host_id}/{acct.account_id}/{acct.event_seq}", **entry}
        self.outbox[entry["key"]] = entry
        return entry

    def audit_outbox(self) -> list[dict[str, Any]]:
        """The audit entries not yet acknowledged by the supervisor, oldest first."""
        self._fence()
        return list(self.outbox.values())

    def audit_delivered(self, keys: list[str]) -> int:
        """Forget the entries the supervisor's audit log now holds; returns how many. Not
        journaled: after a restart they are delivered again, and the supervisor skips them."""
        return sum(1 for k in keys if self.outbox.pop(k, None) is not None)

    @journaled()
    def patch_limits(self, account_id: str, overrides: dict[str, Any], by: str, reason: str,
                     now: float, who: list | None = None) -> dict[str, Any]:
        """Apply limit overrides to an account (recorded; audit entry ``limits_changed``) and
        return its view."""
        try:
            acct = self._account(account_id)
            self._move_clock(now)
            limits: Limits = acct.limits.with_overrides(overrides)
            acct.set_limits(limits, by, reason, now)
            return self._changed_view(acct, "limits_changed", who, by, reason, now)
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)

    @journaled()
    def bind_plan(self, account_id: str, plan: str, version: int | None, limits: dict[str, Any], by: str,
                  reason: str, now: float, who: list | None = None) -> dict[str, Any]:
        """Rebind an account to a plan version with its resolved limits (recorded; audit entry
        ``plan_bound``); returns the view."""
        try:
            acct = self._account(account_id)
            self._move_clock(now)
            acct.bind_plan(plan, version, Limits.from_dict(limits), by, reason, now)
            return self._changed_view(acct, "plan_bound", who, by, reason, now)
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)

    def position_size(self, account_id: str, request: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        """Recommended lots for ``request`` (instrument, entry, stop_loss, risk_amount or
        risk_fraction) on the account as of ``max(now, clock)`` (see
        :func:`riskactors.domain.views.size_position`). Changes nothing."""
        try:
            return size_position(self._account(account_id), request, self.latest, self._as_of(now))
        except (DomainError, SizingError) as exc:
            return error_envelope(exc)

    def recommendations(self, account_ids: list[str] | None, status: str | None,
                        now: float | None = None) -> list[dict[str, Any]]:
        """Limit-reduction recommendations of the given accounts (``None``: all here) as of
        ``max(now, clock)``: a day roll due by then (what raises them) is projected."""
        at = self._as_of(now)
        out = []
        for acct in self._targets(account_ids):
            acct = acct.projected(at, self.latest)
            out.extend(dict(r) for r in acct.recommendations.values() if status is None or r["status"] == status)
        return out

    @journaled()
    def decide_recommendation(self, account_id: str, rec_id: str, apply: bool, by: str, reason: str,
                              now: float, who: list | None = None) -> dict[str, Any]:
        """Apply or dismiss a pending recommendation (audit entry ``recommendation_applied`` or
        ``_dismissed``, under ``audit``); returns it and the account view."""
        try:
            acct = self._account(account_id)
            self._move_clock(now)
            rec = acct.decide_recommendation(rec_id, apply, by, reason, now)
            self._schedule(acct)
            entry = self._to_outbox("recommendation_" + rec["status"], acct, who, by, reason, now,
                                    {"status": "pending"}, {"status": rec["status"], "proposed": rec.get("proposed")},
                                    scope="recommendation", scope_id=rec_id)
            out = {"recommendation": rec, "account": account_view(acct, self.latest, self.clock)}
            if entry is not None:
                out["audit"] = entry
            return out
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)

    def closed_trades(self, account_ids: list[str] | None, now: float | None = None) -> list[dict[str, Any]]:
        """Per account: ids, initial balance and its closed trades as tuples (for the analytics)."""
        return [{"account_id": acct.account_id, "user_id": acct.user_id, "challenge_id": acct.challenge_id,
                 "initial_balance": acct.initial_balance, "currency": acct.currency,
                 "open_positions": len(acct.positions),
                 "trades": [tuple(t.to_dict().values()) for t in acct.closed_trades]}
                for acct in self._targets(account_ids)]

    def states(self, account_ids: list[str] | None) -> list[dict[str, Any]]:
        """Full state of the given accounts (``None``: all here), as in a snapshot
        (``riskactors.domain.state.account_to_state``); for audits of recovery and exports."""
        return [account_to_state(a) for a in self._targets(account_ids)]

    def breaches(self, account_ids: list[str] | None) -> list[dict[str, Any]]:
        """Breach records of the given accounts (``None``: all here) as audit entries:
        ``actor`` ``system``, ``action`` ``breach``, why (code, message), before/after status."""
        out = []
        for acct in self._targets(account_ids):
            for b in acct.breaches:
                soft = b.get("type") == "soft_breach"
                out.append({"audit_id": f"{acct.account_id}:{b['seq']}", "at": b["at"], "actor": "system",
                            "role": None, "action": "breach", "account_id": acct.account_id,
                            "user_id": acct.user_id, "challenge_id": acct.challenge_id,
                            "reason": b.get("message") or b["code"], "code": b["code"],
                            "trading_day": b.get("trading_day"),
                            "before": {"status": "active"},
                            "after": {"status": "active" if soft else "failed",
                                      "kill_switch": None if soft else "reduce_only"},
                            "details": {k: v for k, v in b.items() if k in ("limit", "value", "floor", "equity")}})
        return out

    @journaled()
    def set_status(self, account_id: str, status: str, by: str, reason: str, now: float,
                   who: list | None = None) -> dict[str, Any]:
        """Ops status change (``active``/``disabled``/``failed``; audit entry
        ``status_changed``); returns the view."""
        try:
            acct = self._account(account_id)
            self._move_clock(now)
            acct.set_status(AccountStatus(status), by, reason, now)
            return self._changed_view(acct, "status_changed", who, by, reason, now)
        except DomainError as exc:
            return error_envelope(exc)

    def summaries(self, account_ids: list[str] | None, now: float | None = None) -> list[dict[str, Any]]:
        """Consolidation rows for the given accounts (``None``: all here) as of ``max(now,
        clock)`` (see :func:`riskactors.domain.views.account_summary`). Changes nothing."""
        at = self._as_of(now)
        return [account_summary(acct, self.latest, at) for acct in self._targets(account_ids)]
