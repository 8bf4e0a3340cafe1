"""Request and response schemas of HTTP contract v1. Names follow the glossary; money is in
account currency, quantities in lots, prices in quote currency, times in epoch seconds (a request
may also give a time as ISO 8601 with a zone: :mod:`api.timestamps`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .timestamps import OptionalTimestamp, Timestamp

__all__ = [
    "AccountCreate", "AccountView", "CalendarEventIn", "CalendarIn", "CancelRequest", "CancelResult", "ConsolidatedRisk", "DecisionOut", "FillIn",
    "FillResult", "KillSwitchIn", "KillSwitchOut", "LimitsIn", "LimitsPatch", "MarkIn", "MarksIn", "MarksResult",
    "OrderCheck", "PlanActivate", "PlanBinding", "PlanIn", "PlanVersionOut", "PositionSizeIn", "PositionSizeOut",
    "ReasonOut", "RecommendationDecision", "StatusChange",
]

Id = Field(min_length=1, max_length=128)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LimitsIn(_Strict):
    """Optional limit and rule overrides (amounts in account currency; fractions 0–1). An
    explicit ``null`` switches an optional rule off. The README documents each rule."""

    max_leverage: float | None = Field(None, gt=0, description="Cap on notional / equity, ×")
    account_leverage: float | None = Field(None, gt=0, description="Margin leverage, 100 = 1:100")
    max_position_lots: float | None = Field(None, gt=0, description="Cap on |lots| per instrument")
    max_open_positions: int | None = Field(None, ge=1, description="Netting: instruments; hedging: tickets")
    daily_loss_limit: float | None = Field(None, gt=0, description="Account currency")
    daily_loss_reference: Literal["balance", "max_balance_equity"] | None = None
    daily_loss_mode: Literal["hard", "soft"] | None = None
    max_loss_limit: float | None = Field(None, gt=0, description="Account currency")
    max_loss_mode: Literal["static", "trailing", "trailing_intraday", "trailing_eod"] | None = None
    max_loss_lock: float | None = Field(None, gt=0, description="Floor level where a trailing floor stops, "
                                                                "account currency")
    max_orders_per_second: int | None = Field(None, ge=1)
    margin_call_level: float | None = Field(None, gt=0, description="Per cent (equity / margin × 100)")
    warning_fraction: float | None = Field(None, gt=0, le=1, description="Fraction 0–1 of a limit")
    hedged_margin_factor: float | None = Field(None, ge=0, le=1, description="Fraction 0–1 of margin per hedged lot")
    profit_target: float | None = Field(None, gt=0, description="Closed profit to pass, account currency")
    min_trading_days: int | None = Field(None, ge=0)
    time_limit_days: int | None = Field(None, ge=1, description="Calendar days")
    consistency_fraction: float | None = Field(None, gt=0, le=1, description="Best day ≤ this × total profit")
    stop_loss_required: bool | None = None
    take_profit_required: bool | None = None
    max_risk_per_trade_fraction: float | None = Field(None, gt=0, le=1, description="Of balance, 0–1")
    max_daily_trades: int | None = Field(None, ge=1)
    cooldown_seconds: float | None = Field(None, ge=0)
    news_blackout_minutes: float | None = Field(None, ge=0)
    weekly_close: str | None = Field(None, max_length=64, description="e.g. 'Fri 17:00 America/New_York'")
    weekend_buffer_minutes: float | None = Field(None, ge=0)
    hedging_across_accounts: Literal["warn", "reject"] | None = None
    hft_seconds: float | None = Field(None, gt=0)
    hft_max_trades: int | None = Field(None, ge=0)
    hft_action: Literal["warn", "reject"] | None = None
    trading_day_rollover: str | None = Field(None, max_length=5, description="HH:MM")
    trading_day_timezone: str | None = Field(None, max_length=64, description="IANA zone")
    recommend_losing_streak_days: int | None = Field(None, ge=1)
    recommend_day_loss_fraction: float | None = Field(None, gt=0, le=1)
    recommend_reduction: float | None = Field(None, gt=0, le=1)
    max_mark_age_seconds: float | None = Field(None, gt=0, description="Oldest mark (and conversion rate) a "
                                               "position-increasing order may be priced on, seconds; null: each "
                                               "instrument's own (at most 300)")
    stale_price_action: Literal["warn", "reject"] | None = Field(None, description="STALE_PRICE rejects (default) "
                                                                 "or only warns (STALE_PRICE_WARNING)")


class LimitsPatch(LimitsIn):
    """Limit changes plus who made them and why (recorded)."""

    by: str = Field("api", min_length=1, max_length=128)
    reason: str = Field("", max_length=1000)


class AccountCreate(_Strict):
    account_id: str = Id
    user_id: str = Id
    challenge_id: str = Id
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD")
    initial_balance: float = Field(gt=0, le=1e15, description="Account currency")
    plan: str = Field(min_length=1, max_length=128, description="Plan id (bound to its active version)")
    plan_version: int | None = Field(None, ge=1, description="Must be the active version; default: the active one")
    position_mode: Literal["netting", "hedging"] = "netting"
    limits: LimitsIn | None = None
    opened_at: OptionalTimestamp = Field(None, description="Epoch seconds or ISO 8601 with a zone; "
                                                           "default: the deployment clock")


class ReasonOut(BaseModel):
    """A reject reason or a warning. ``limit`` and ``value`` share the unit named in ``message``
    (null for rules that are not numeric, or a value that is not finite)."""

    code: str = Field(description="Stable code, e.g. MAX_LEVERAGE, DAILY_LOSS_WARNING")
    limit: float | None
    value: float | None
    message: str


class KillSwitchOut(BaseModel):
    active: bool
    mode: Literal["halt", "reduce_only"] | None = None
    scope: Literal["account", "user", "challenge", "firm"] | None = None
    id: str | None = None
    reason: str | None = None
    by: str | None = None
    at: float | None = None
    breach: bool = False


class PositionOut(BaseModel):
    position_id: str = Field(description="Netting: the instrument; hedging: the ticket")
    instrument: str
    quantity: float = Field(description="Signed lots: + long, − short")
    average_price: float
    mark_price: float
    floating_pnl: float
    realized_pnl: float
    notional: float
    quote_currency: str
    opened_at: float
    stop_loss: float | None = None
    take_profit: float | None = None
    mark_age_seconds: float | None = Field(None, description="Age of the mark the position is valued at, at the "
                                                             "view's as_of (seconds); null: no mark, last fill price")


class ReservationOut(BaseModel):
    order_id: str
    instrument: str
    quantity: float
    price: float | None
    created_at: float
    expires_at: float
    reduces_position: bool
    position_id: str | None = None


class AccountView(BaseModel):
    account_id: str
    user_id: str
    challenge_id: str
    currency: str
    plan: str
    plan_version: int | None
    position_mode: Literal["netting", "hedging"]
    as_of: float = Field(description="The instant the view is as of (epoch seconds): the deployment clock, or the "
                                     "projection's ?at=")
    initial_balance: float
    balance: float
    equity: float
    floating_pnl: float
    daily_pnl: float = Field(description="Equity − start-of-day balance")
    day_realized_pnl: float
    margin_used: float
    reserved_margin: float
    free_margin: float
    margin_level: float | None = Field(description="Per cent; null when no margin is used")
    leverage: float | None = Field(description="Notional / equity, ×; null when equity ≤ 0")
    notional: float
    positions: list[PositionOut]
    reservations: list[ReservationOut]
    limits: dict
    status: Literal["active", "passed", "failed", "disabled"]
    kill_switch: KillSwitchOut
    kill_switches: list[KillSwitchOut]
    risk_score: float = Field(ge=0, le=100)
    warnings: list[ReasonOut]
    trading_day: str
    trading_days: int = Field(description="Trading days with at least one trade opened")
    day_opened_trades: int
    day_start_balance: float
    day_start_equity: float
    daily_loss: float
    daily_loss_floor: float
    daily_loss_blocked: bool = Field(description="A soft daily-loss breach blocks new orders today")
    max_loss: float
    max_loss_floor: float
    high_water_mark: float = Field(description="Equity high-water mark")
    eod_high_water_mark: float = Field(description="High-water mark of end-of-day balances")
    objectives: dict = Field(description="Profit target, minimum trading days, consistency, time limit")
    closed_trades: int
    hft_count: int
    last_losing_close: float | None
    recommendations: list[dict] = Field(description="Pending limit-reduction recommendations")
    breaches: list[dict]
    created_at: float


class StatusChange(_Strict):
    status: Literal["active", "disabled", "failed"]
    reason: str = Field(min_length=1, max_length=1000)
    by: str = Field("ops", min_length=1, max_length=128)


class OrderCheck(_Strict):
    """An order to check. Malformed input — a zero or negative quantity or price, NaN/inf, an
    unknown field — is a 422 naming the field; what the risk rules decide (an unknown ``side``,
    a quantity off the lot step or beyond the instrument's maximum, a stop on the wrong side)
    is a ``reject`` with ``INVALID_ORDER``, HTTP 200."""

    order_id: str = Id
    account_id: str = Id
    instrument: str = Field(min_length=1, max_length=64)
    side: str = Field(min_length=1, max_length=16, description="buy or sell")
    quantity: float = Field(gt=0, description="Lots, > 0")
    price: float | None = Field(None, gt=0, description="Limit price; market orders use the mark")
    stop_loss: float | None = Field(None, gt=0, description="Price")
    take_profit: float | None = Field(None, gt=0, description="Price")
    position_id: str | None = Field(None, min_length=1, max_length=128,
                                    description="Hedging accounts: the ticket this order closes")
    ts: OptionalTimestamp = Field(None, description="Event time, epoch seconds or ISO 8601 with a zone; "
                                                    "default: the deployment clock")


class DecisionOut(BaseModel):
    """Answer of a pre-trade check. A reject lists every reason that applies."""

    order_id: str
    account_id: str
    decision: Literal["accept", "reject"]
    reasons: list[ReasonOut]
    warnings: list[ReasonOut]
    risk_score: float = Field(description="0–100, projected with this order and pending reservations")
    reduces_position: bool = Field(False, description="True when the order only reduces a position")
    late: bool = Field(False, description="ts fell in a trading day the account had already rolled past; the check "
                                          "was booked to the current trading day")


class CancelRequest(_Strict):
    account_id: str | None = Field(None, min_length=1, max_length=128)
    ts: OptionalTimestamp = None


class CancelResult(BaseModel):
    order_id: str
    account_id: str
    released: bool
    reservation: ReservationOut | None


class FillIn(_Strict):
    fill_id: str = Id
    order_id: str | None = Field(None, min_length=1, max_length=128)
    account_id: str = Id
    instrument: str = Field(min_length=1, max_length=64)
    side: Literal["buy", "sell"]
    quantity: float = Field(gt=0, le=1e7, description="Lots")
    price: float = Field(gt=0, le=1e12, description="Quote currency")
    commission: float = Field(0.0, ge=-1e12, le=1e12, description="Account currency, signed; a charge is negative")
    swap: float = Field(0.0, ge=-1e12, le=1e12, description="Account currency, signed")
    position_id: str | None = Field(None, min_length=1, max_length=128,
                                    description="Hedging: the ticket (a new id opens one, an open id reduces it)")
    stop_loss: float | None = Field(None, gt=0, le=1e12)
    take_profit: float | None = Field(None, gt=0, le=1e12)
    ts: OptionalTimestamp = None


class FillResult(BaseModel):
    fill_id: str
    account_id: str
    user_id: str
    duplicate: bool
    realized_pnl: float
    net_pnl: float
    position: PositionOut | None
    closed_trade: dict | None
    balance: float
    instrument_lots: list[float] = Field(description="[long lots, short lots] on the instrument after the fill")
    breach: list[dict]
    status: str
    late: bool = Field(False, description="ts fell in a trading day the account had already rolled past; the fill "
                                          "was booked to the current trading day")


class MarkIn(_Strict):
    instrument: str = Field(min_length=1, max_length=64)
    bid: float = Field(gt=0, le=1e12)
    ask: float = Field(gt=0, le=1e12)
    ts: OptionalTimestamp = None

    @model_validator(mode="after")
    def _bid_le_ask(self):
        if self.bid > self.ask:
            raise ValueError(f"bid {self.bid} > ask {self.ask}")
        return self


class MarksIn(_Strict):
    marks: list[MarkIn] = Field(min_length=1, max_length=10_000)


class MarksResult(BaseModel):
    received: int
    applied: int
    stale: int
    breaches: list[dict] = Field(description="The breaches caused, at most RISKACTORS_MAX_BREACHES_LISTED (100); "
                                             "the rest are in GET /v1/audit?action=breach and the accounts' events")
    breach_count: int = Field(description="Every breach caused, listed or not")
    breaches_by_code: dict[str, int]
    hosts: int = Field(description="Hosts the marks went to: those exposed to their instruments (positions or "
                                   "orders in them, or conversion through them)")
    revalued: int = Field(description="Accounts revalued: those whose equity the applied marks move")


class KillSwitchIn(_Strict):
    scope: Literal["account", "user", "challenge", "firm"]
    id: str | None = Field(None, min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=1000)
    mode: Literal["halt", "reduce_only"] = "halt"
    by: str = Field("ops", min_length=1, max_length=128)

    @model_validator(mode="after")
    def _id_for_scope(self):
        if self.scope == "firm" and self.id is not None:
            raise ValueError("id must be omitted for scope firm")
        if self.scope != "firm" and self.id is None:
            raise ValueError(f"id is required for scope {self.scope}")
        return self


class CurrencyTotals(BaseModel):
    """One currency's totals in a consolidated view: money in that currency, ``accounts`` a count."""

    balance: float
    equity: float
    daily_pnl: float
    accounts: int


class ConsolidatedRisk(BaseModel):
    scope: str
    id: str | None
    accounts: int
    accounts_by_status: dict[str, int]
    totals_by_currency: dict[str, CurrencyTotals]
    exposure: dict[str, dict]
    in_warning: int
    breached: int
    killed: int
    risk_score: dict[str, float]
    closest_to_breach: list[dict]
    kill_switches: list[dict]
    as_of: float = Field(description="The instant the figures are as of (epoch seconds)")


# ---------------------------------------------------------------------------- plans
class PlanIn(_Strict):
    """A plan document: a new id starts at version 1, an existing id gets the next version,
    always as a ``draft`` until activated. ``rules`` holds limit fields (amounts in account
    currency) or ``*_fraction`` fields of the initial balance; the README lists them."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=4000)
    source: str | None = Field(None, max_length=4000)
    rules: dict = Field(description="Rule parameters")


class PlanVersionOut(BaseModel):
    plan_id: str
    version: int
    status: Literal["draft", "active", "superseded"]
    name: str
    description: str
    source: str
    rules: dict
    created_at: float
    activated_at: float | None
    superseded_at: float | None


class PlanActivate(_Strict):
    version: int | None = Field(None, ge=1, description="Default: the latest draft")


class PlanBinding(_Strict):
    plan: str = Field(min_length=1, max_length=64)
    version: int | None = Field(None, ge=1, description="Must be active; default: the active version")
    keep_overrides: bool = Field(True, description="Keep the account's limit overrides on top of the new plan")
    reason: str = Field(min_length=1, max_length=1000)
    by: str = Field("ops", min_length=1, max_length=128)


# ---------------------------------------------------------------------------- calendar
class CalendarEventIn(_Strict):
    event_id: str = Id
    at: Timestamp = Field(le=1e11, description="Epoch seconds or ISO 8601 with a zone")
    title: str = Field("", max_length=500)
    currencies: list[str] = Field(default_factory=list, max_length=50)
    instruments: list[str] = Field(default_factory=list, max_length=500, validate_default=True)
    impact: Literal["low", "medium", "high"] = "high"

    @field_validator("currencies")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [c.upper() for c in v]

    @field_validator("instruments")
    @classmethod
    def _something_affected(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if not v and not info.data.get("currencies"):
            raise ValueError("give the currencies or instruments the event affects")
        return v


class CalendarIn(_Strict):
    events: list[CalendarEventIn] = Field(min_length=1, max_length=10_000)


# ---------------------------------------------------------------------------- sizing
class PositionSizeIn(_Strict):
    """Give exactly one of ``risk_amount`` and ``risk_fraction``; the core checks it and a 422
    names ``risk_amount`` (a model validator here could only name the whole body)."""

    instrument: str = Field(min_length=1, max_length=64)
    entry: float = Field(gt=0, le=1e12, description="Entry price, quote currency")
    stop_loss: float = Field(gt=0, le=1e12, description="Stop-loss price, quote currency")
    risk_amount: float | None = Field(None, gt=0, le=1e15, description="Account currency")
    risk_fraction: float | None = Field(None, gt=0, le=1, description="Fraction 0–1 of balance")


class PositionSizeOut(BaseModel):
    account_id: str
    instrument: str
    currency: str
    lots: float = Field(description="Recommended lots, rounded down to the lot step")
    side: Literal["buy", "sell"]
    bound_by: Literal["risk", "max_position_lots", "max_leverage", "free_margin"]
    risk_amount: float
    loss_at_stop: float
    caps: dict[str, float]
    lot_step: float
    min_lot: float
    below_min_lot: bool


# ---------------------------------------------------------------------------- recommendations
class RecommendationDecision(_Strict):
    reason: str = Field("", max_length=1000)
    by: str = Field("ops", min_length=1, max_length=128)


class ClusterNode(BaseModel):
    """A node of the Ray cluster and the hosts (shards) on it."""

    node_id: str | None
    address: str | None
    alive: bool
    cpus: float | None
    hosts: list[str]
    accounts: int


class ClusterHost(BaseModel):
    """A shard or dedicated host: where it runs, its accounts and the epoch of its journal."""

    host_id: str
    available: bool
    node_id: str | None
    accounts: int | None
    epoch: int | None
    pid: int | None
    journal_seq: int | None = None
    error: str | None = None


class ClusterFront(BaseModel):
    """A front process attached to the deployment (heard from within the last 15 s)."""

    front_id: str
    host: str
    pid: int
    listen: str
    version: str
    started_at: float
    last_seen: float


class ClusterView(BaseModel):
    """``GET /v1/cluster``: the deployment on its cluster."""

    deployment: str | None
    version: str | None
    placement: str
    shards: int
    accounts: int
    nodes: list[ClusterNode]
    hosts: list[ClusterHost]
    fronts: list[ClusterFront]
    supervisor_epoch: int | None


#: Items per batch request at most.
MAX_BATCH_ITEMS = 10_000


class AccountsBatchIn(_Strict):
    """``POST /v1/accounts/batch``: the items of ``POST /v1/accounts``, validated one by one (a
    bad item is answered in its result and blocks nothing)."""

    accounts: list[Any] = Field(max_length=MAX_BATCH_ITEMS, description="Registration bodies, in order")


class FillsBatchIn(_Strict):
    """``POST /v1/fills/batch``: the items of ``POST /v1/fills``, validated one by one."""

    fills: list[Any] = Field(max_length=MAX_BATCH_ITEMS, description="Execution reports, in order")


class BatchItemError(BaseModel):
    """Why an item was not applied: a stable ``code`` (a 422's error type, or the core code such
    as ``DUPLICATE_ACCOUNT``), the message, and ``loc`` inside the item (e.g. ``["initial_balance"]``)."""

    code: str
    message: str
    loc: list[str | int]


class AccountBatchResult(BaseModel):
    """One item's outcome: ``status`` is what ``POST /v1/accounts`` would have answered (201
    registered; 200 with ``existing: true`` for the same account registered before, a safe
    retry; 404, 409, 422, 503 with ``error``)."""

    account_id: str | None
    status: int
    existing: bool = False
    account: AccountView | None = None
    error: BatchItemError | None = None


class AccountsBatchOut(BaseModel):
    results: list[AccountBatchResult]


class FillBatchResult(BaseModel):
    """One item's outcome: ``status`` is what ``POST /v1/fills`` would have answered (200, with
    ``fill.duplicate`` for a retried ``fill_id``; 404, 409, 422, 503 with ``error``)."""

    fill_id: str | None
    status: int
    fill: FillResult | None = None
    error: BatchItemError | None = None


class FillsBatchOut(BaseModel):
    results: list[FillBatchResult]


class AccountRow(BaseModel):
    """An account in a page of ``GET /v1/accounts`` (money in account currency)."""

    account_id: str
    user_id: str
    challenge_id: str
    currency: str
    status: str
    balance: float
    equity: float
    daily_pnl: float
    risk_score: float
    warnings: list[str]
    breached: bool
    killed: bool
    breach_headroom: float = Field(description="Fraction of the nearer loss limit left before its floor (0: at it)")


class AccountPage(BaseModel):
    accounts: list[AccountRow]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")
    as_of: float
