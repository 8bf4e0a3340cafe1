"""Pure risk core: no Ray, FastAPI, uvicorn or msgpack here; time is always an argument."""

from .account import TRANSITIONS, Account, Cause, account_from_state
from .accountstate import AccountConfig, AccountState
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
                    InvalidTransition,
                    OrderConflict,
                    RecommendationConflict,
                    UnknownAccount,
                    UnknownInstrument,
                    UnknownOrder,
                    UnknownRecommendation,
)
from .exposure import ExposureMap
from .instruments import Instrument, InstrumentRegistry, default_registry
from .limits import LIMIT_FIELDS, Limits, LimitsError
from .marks import LatestMarks, Rate
from .model import CalendarEvent, ClosedTrade, Decision, Fill, KillSwitch, Mark, Order, Position, Reason, Reservation
from .news import NewsCalendar
from .peers import peers_of
from .plans import PlanConflict, PlanNotFound, PlanRegistry, PlanVersion, default_plan_registry
from .sizing import SizingError, position_size
from .state import (
                    STATE_VERSION,
                    account_to_state,
                    marks_from_state,
                    marks_to_state,
                    news_from_state,
                    news_to_state,
)
from .tradingday import TradingDayCalendar, WeeklyClose
from .valuation import Valuation, value
from .views import account_summary, account_view, size_position

__all__ = [
                    "LIMIT_FIELDS",
                    "STATE_VERSION",
                    "TRANSITIONS",
                    "Account",
                    "AccountConfig",
                    "AccountState",
                    "AccountStatus",
                    "AnalyticsConfigError",
                    "BehaviourConfig",
                    "CalendarEvent",
                    "Cause",
                    "ClosedTrade",
                    "ConversionUnavailable",
                    "DailyLossMode",
                    "DailyLossReference",
                    "Decision",
                    "DecisionKind",
                    "DomainError",
                    "DuplicateAccount",
                    "ExposureMap",
                    "Fill",
                    "FillConflict",
                    "Instrument",
                    "InstrumentRegistry",
                    "InvalidFill",
                    "InvalidTransition",
                    "KillMode",
                    "KillScope",
                    "KillSwitch",
                    "LatestMarks",
                    "Limits",
                    "LimitsError",
                    "Mark",
                    "MaxLossMode",
                    "NewsCalendar",
                    "Order",
                    "OrderConflict",
                    "PlanConflict",
                    "PlanNotFound",
                    "PlanRegistry",
                    "PlanStatus",
                    "PlanVersion",
                    "Position",
                    "PositionMode",
                    "Rate",
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
                    "Valuation",
                    "WarningCode",
                    "WeeklyClose",
                    "account_from_state",
                    "account_summary",
                    "account_to_state",
                    "account_view",
                    "analyse",
                    "check_order",
                    "default_plan_registry",
                    "default_registry",
                    "marks_from_state",
                    "marks_to_state",
                    "news_from_state",
                    "news_to_state",
                    "peers_of",
                    "pooled",
                    "position_size",
                    "size_position",
                    "value",
]
