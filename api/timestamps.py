"""Timestamps as clients send them: epoch seconds or ISO 8601 with a zone, read as epoch seconds.

Every timestamp of a request (body fields ``ts``, ``opened_at``, ``at``; the query parameters
``since`` and ``until``) has the type :data:`Timestamp` (or :data:`OptionalTimestamp`); the
handlers and the core see a float of **epoch seconds (UTC)**, whichever form was sent.
Responses are unchanged: their times are epoch seconds (floats).

Accepted
--------
- a number (JSON or msgpack), int or float: epoch seconds, e.g. ``1703835147`` or
  ``1703835147.25``. This is the order router's hot path: a number passes the validator
  after one ``type()`` check.
- a string holding a number: what a query parameter always is (``?since=1703835147``).
- an ISO 8601 string **with a zone**, read by :meth:`datetime.datetime.fromisoformat`:
  ``2023-12-29T07:32:27Z`` and ``2023-12-29T09:32:27+02:00`` are the same instant,
  ``1703835147.0``; fractional seconds are kept to the microsecond
  (``2023-12-29T07:32:27.25Z`` is ``1703835147.25``; further digits are truncated).

Refused: a 422 whose ``detail[0].loc`` names the field and ``type`` is a stable code
-----------------------------------------------------------------------------------
- ``timestamp_zone_missing``: an ISO time or date without a zone (``2023-12-29T07:32:27``):
  the instant it means depends on a zone the server would have to guess.
- ``timestamp_parsing``: any other string (``"yesterday"``, ``"29/12/2023"``).
- ``timestamp_type``: a boolean, an array, an object, or null where a time is required.
- ``finite_number`` (NaN, ±inf) and ``greater_than_equal`` (before 1970-01-01, a negative
  epoch): pydantic's own codes, as for any number of the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from annotated_types import Ge
from pydantic import BeforeValidator, TypeAdapter, ValidationError
from pydantic.json_schema import GetJsonSchemaHandler, JsonSchemaValue
from pydantic.types import AllowInfNan
from pydantic_core import CoreSchema, PydanticCustomError

__all__ = ["OptionalTimestamp", "Timestamp", "TimestampError", "parse_timestamp"]

#: Types that pass unchanged (exact types: ``bool`` is a subclass of ``int`` and is refused).
_NUMBERS = (float, int)
_EXAMPLE = "2023-12-29T07:32:27Z"
_FORMS = f"epoch seconds (a number) or an ISO 8601 time with a zone (e.g. {_EXAMPLE})"


def _shown(value: str) -> str:
    """``value`` quoted for an error message, cut to 64 characters."""
    return repr(value if len(value) <= 64 else value[:61] + "...")


def _from_string(value: str) -> float:
    try:
        return float(value)  # a number in a string: a query parameter's epoch seconds
    except ValueError:
        pass
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("timestamp_parsing", "expected {forms}, got {value}",
                                  {"forms": _FORMS, "value": _shown(value)}) from None
    if instant.tzinfo is None:
        raise PydanticCustomError(
            "timestamp_zone_missing",
            "a time zone is required (Z or ±HH:MM, e.g. {example}): {value} has none",
            {"example": _EXAMPLE, "value": _shown(value)})
    return instant.timestamp()


def _epoch_seconds(value: Any) -> Any:
    """Before-validator of :data:`Timestamp`: a number as it is, a string converted to epoch
    seconds (float); pydantic's float validation (finite, ≥ 0) runs on the result."""
    if type(value) in _NUMBERS:  # the hot path
        return value
    if isinstance(value, str):
        return _from_string(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # int / float subclasses
        return value
    what = "a boolean" if isinstance(value, bool) else "null" if value is None else type(value).__name__
    raise PydanticCustomError("timestamp_type", "expected {forms}, got {what}", {"forms": _FORMS, "what": what})


class _NumberOrDateTime:
    """JSON schema of a timestamp: the number's schema (epoch seconds, with its bounds) or a
    string of format ``date-time`` (RFC 3339, which requires the zone)."""

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        number = {**handler(schema), "description": "Epoch seconds (UTC)"}
        text = {"type": "string", "format": "date-time",
                "description": f"ISO 8601 with a zone (Z or ±HH:MM), e.g. {_EXAMPLE}"}
        return {"anyOf": [number, text]}


Timestamp = Annotated[float, Ge(0), AllowInfNan(False), BeforeValidator(_epoch_seconds), _NumberOrDateTime()]
"""An instant, validated to a float of epoch seconds (UTC), ≥ 0 and finite; accepts a number
or an ISO 8601 string with a zone (see the module docstring). Further bounds go on the field:
``at: Timestamp = Field(le=1e11)``."""

OptionalTimestamp = Timestamp | None
"""A :data:`Timestamp` or ``None`` (``null``: typically "the deployment clock")."""

_ADAPTER: TypeAdapter[float] = TypeAdapter(Timestamp)


class TimestampError(ValueError):
    """A value that is not a timestamp, raised by :func:`parse_timestamp`.

    Attributes
    ----------
    field : str
        The field or parameter the value was given for (first in the message).
    code : str
        The stable error code (``timestamp_zone_missing``, ``timestamp_parsing``,
        ``timestamp_type``, ``finite_number``, ``greater_than_equal``).
    """

    def __init__(self, field: str, code: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code


def parse_timestamp(value: Any, field: str = "timestamp") -> float:
    """Read ``value`` as an instant, exactly as the HTTP API reads a :data:`Timestamp`.

    Parameters
    ----------
    value : int, float or str
        Epoch seconds (UTC), as a number or a string of one, or an ISO 8601 string with a
        zone, e.g. ``"2023-12-29T07:32:27Z"`` or ``"2023-12-29T09:32:27+02:00"``.
    field : str
        Name of the field, for the error message.

    Returns
    -------
    float
        Epoch seconds (UTC); a number comes back unchanged (as a float).

    Raises
    ------
    TimestampError
        A time without a zone, a string that is neither a number nor ISO 8601, a boolean or
        another type, NaN/inf, or a time before 1970-01-01 (negative epoch). A ``ValueError``.
    """
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise TimestampError(field, error["type"], error["msg"]) from None
