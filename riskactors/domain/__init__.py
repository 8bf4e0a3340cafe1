"""Pure risk core: no Ray, FastAPI, uvicorn or msgpack here; time is always an argument."""

from .account import Account, AccountConfig
from .analytics import AnalyticsConfigError, BehaviourConfig, analyse, pooled
from .checks import check_order
from .codes import (
                    AccountStatus,
                    DailyLossMode,
                    DailyLossReference,
                    DecisionKind,
                    KillMode,
                    KillScope,
                    MaxLossMode,
                    PlanStatus,
                    PositionMode,
                    ReasonCode,
                    RuleAction,
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
                    RecommendationConflict,
                    UnknownAccount,
                    UnknownInstrument,
                    UnknownOrder,
                    UnknownRecommendation,
)
from .instruments import Instrument, InstrumentRegistry, default_registry
from .limits import LIMIT_FIELDS, Limits, LimitsError
from .marks import MarkBook
from .model import CalendarEvent, ClosedTrade, Decision, Fill, KillSwitch, Mark, Order, Position, Reason, Reservation
from .peers import PeerBook
from .plans import PlanConflict, PlanNotFound, PlanRegistry, PlanVersion, default_plan_registry
from .rules import NewsCalendar
from .sizing import SizingError, position_size
from .tradingday import TradingDayCalendar, WeeklyClose

__all__ = [
                    "LIMIT_FIELDS",
                    "Account",
                    "AccountConfig",
                    "AccountStatus",
                    "AnalyticsConfigError",
                    "BehaviourConfig",
                    "CalendarEvent",
                    "ClosedTrade",
                    "ConversionUnavailable",
                    "DailyLossMode",
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
                    "NewsCalendar",
                    "Order",
                    "OrderConflict",
                    "PeerBook",
                    "PlanConflict",
                    "PlanNotFound",
                    "PlanRegistry",
                    "PlanStatus",
                    "PlanVersion",
                    "Position",
                    "PositionMode",
                    "Reason",
                    "ReasonCode",
                    "RecommendationConflict",
                    "Reservation",
                    "RuleAction",
                    "Side",
                    "SizingError",
                    "TradingDayCalendar",
                    "UnknownAccount",
                    "UnknownInstrument",
                    "UnknownOrder",
                    "UnknownRecommendation",
                    "WarningCode",
                    "WeeklyClose",
                    "analyse",
                    "check_order",
                    "default_plan_registry",
                    "default_registry",
                    "pooled",
                    "position_size",
]
