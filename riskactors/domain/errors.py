"""Errors of the risk core. Reject reasons are values (``ReasonCode``), not exceptions; these
exceptions are for requests that cannot be applied at all.

Hierarchy::

    DomainError
    ├── UnknownAccount        account id not hosted            (HTTP 404)
    ├── UnknownOrder          order id never checked           (HTTP 404)
    ├── UnknownInstrument     symbol not in the registry       (HTTP 422)
    ├── DuplicateAccount      account id already registered    (HTTP 409)
    ├── OrderConflict         order id reused, other content   (HTTP 409)
    ├── FillConflict          fill id reused, other content    (HTTP 409)
    ├── ConversionUnavailable no quote→account rate known      (HTTP 409)
    ├── InvalidFill           side/quantity/price unusable     (HTTP 422)
    ├── PlanNotFound          plan id or version unknown       (HTTP 404)
    ├── PlanConflict          lifecycle step not allowed now   (HTTP 409)
    ├── UnknownRecommendation recommendation id unknown        (HTTP 404)
    ├── RecommendationConflict not pending any more            (HTTP 409)
    └── InvalidTransition     status change the table refuses  (HTTP 409)
"""

from __future__ import annotations

__all__ = [
    "ERRORS_BY_NAME",
    "ConversionUnavailable",
    "DomainError",
    "DuplicateAccount",
    "FieldError",
    "FillConflict",
    "InvalidFill",
    "InvalidTransition",
    "OrderConflict",
    "PlanConflict",
    "PlanNotFound",
    "RecommendationConflict",
    "UnknownAccount",
    "UnknownInstrument",
    "UnknownOrder",
    "UnknownRecommendation",
]


class DomainError(Exception):
    """Base class. ``subject`` is the id or symbol concerned, ``code`` a stable string."""

    code = "DOMAIN_ERROR"

    def __init__(self, subject: str, message: str, field: str | None = None):
        super().__init__(f"{subject}: {message}")
        self.subject = subject
        self.message = message
        self.field = field  # the request field at fault, when there is one (HTTP 422 names it)

    def to_dict(self) -> dict:
        return {"code": self.code, "subject": self.subject, "message": self.message}


class UnknownAccount(DomainError):
    code = "UNKNOWN_ACCOUNT"


class UnknownOrder(DomainError):
    code = "UNKNOWN_ORDER"


class UnknownInstrument(DomainError):
    code = "UNKNOWN_INSTRUMENT"


class DuplicateAccount(DomainError):
    code = "DUPLICATE_ACCOUNT"


class OrderConflict(DomainError):
    code = "ORDER_CONFLICT"


class FillConflict(DomainError):
    code = "FILL_CONFLICT"


class ConversionUnavailable(DomainError):
    code = "NO_CONVERSION_RATE"


class InvalidFill(DomainError, ValueError):
    """A fill whose side, quantity or price cannot be applied (nothing is changed)."""

    code = "INVALID_FILL"


class PlanNotFound(DomainError):
    """No plan with this id, or the plan has no such version. ``subject`` is the plan id."""

    code = "UNKNOWN_PLAN"


class PlanConflict(DomainError):
    """The lifecycle step is not allowed in the plan's current state (e.g. activating a
    superseded version, binding a version that is not active). ``subject`` is the plan id."""

    code = "PLAN_CONFLICT"


class UnknownRecommendation(DomainError):
    code = "UNKNOWN_RECOMMENDATION"


class RecommendationConflict(DomainError):
    """A recommendation that was already applied, dismissed or superseded."""

    code = "RECOMMENDATION_CONFLICT"


class FieldError(ValueError):
    """Bad input naming its field (HTTP 422 naming it): the base of ``LimitsError``,
    ``SizingError`` and ``AnalyticsConfigError``. ``field`` may be dotted (``rules.x``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


#: Every concrete core error, by class name (how an error envelope names it across processes).
class InvalidTransition(DomainError):
    """A status change the account's transition table does not allow (nothing is changed)."""

    code = "INVALID_TRANSITION"


ERRORS_BY_NAME: dict[str, type[DomainError]] = {cls.__name__: cls for cls in (
    UnknownAccount, UnknownOrder, UnknownInstrument, DuplicateAccount, OrderConflict, FillConflict,
    ConversionUnavailable, InvalidFill, UnknownRecommendation, RecommendationConflict, PlanNotFound, PlanConflict,
    InvalidTransition)}
