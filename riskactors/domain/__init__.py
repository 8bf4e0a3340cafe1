"""Pure risk core: no Ray, FastAPI, uvicorn or msgpack here; time is always an argument."""

from .account import Account, AccountConfig
from .checks import check_order
from .codes import (
                    AccountStatus,
                    DailyLossReference,
                    DecisionKind,
                    KillMode,
                    KillScope,
                    MaxLossMode,
                    ReasonCode,
                    Side,
                    WarningCode,
)
from .errors import (
                    ConversionUnavailable,
                    DomainError,
                    DuplicateAccount,
                    FillConflict,
                    InvalidFill,
                    OrderConflict,
                    UnknownAccount,
                    UnknownInstrument,
                    UnknownOrder,
)
from .instruments import Instrument, InstrumentRegistry, default_registry
from .limits import LIMIT_FIELDS, Limits, LimitsError, PlanBook, default_planbook
from .marks import MarkBook
from .model import Decision, Fill, KillSwitch, Mark, Order, Position, Reason, Reservation
from .tradingday import TradingDayCalendar

__all__ = [
                    "LIMIT_FIELDS",
                    "Account",
                    "AccountConfig",
                    "AccountStatus",
                    "ConversionUnavailable",
                    "DailyLossReference",
                    "Decision",
                    "DecisionKind",
                    "DomainError",
                    "DuplicateAccount",
                    "Fill",
                    "FillConflict",
                    "Instrument",
                    "InstrumentRegistry",
                    "InvalidFill",
                    "KillMode",
                    "KillScope",
                    "KillSwitch",
                    "Limits",
                    "LimitsError",
                    "Mark",
                    "MarkBook",
                    "MaxLossMode",
                    "Order",
                    "OrderConflict",
                    "PlanBook",
                    "Position",
                    "Reason",
                    "ReasonCode",
                    "Reservation",
                    "Side",
                    "TradingDayCalendar",
                    "UnknownAccount",
                    "UnknownInstrument",
                    "UnknownOrder",
                    "WarningCode",
                    "check_order",
                    "default_planbook",
                    "default_registry",
]
