"""Timestamps as clients send them (``api/timestamps.py``): epoch seconds or ISO 8601 with a zone,
read as epoch seconds (UTC); a time without a zone, garbage and booleans are refused naming the field.

Worked instant: 2023-12-29 07:32:27 UTC = 1,703,835,147 epoch seconds
(19,720 days × 86,400 s + 7 h 32 min 27 s = 1,703,808,000 + 27,147).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.timestamps import OptionalTimestamp, Timestamp, TimestampError, _epoch_seconds, parse_timestamp
from riskactors.replay.driver import iso_timestamp

EPOCH = 1_703_835_147.0  # 2023-12-29T07:32:27Z


def test_the_worked_instant_is_what_the_standard_library_says():
    assert datetime(2023, 12, 29, 7, 32, 27, tzinfo=UTC).timestamp() == EPOCH


@pytest.mark.parametrize("text", ["2023-12-29T07:32:27Z", "2023-12-29T07:32:27+00:00", "2023-12-29T07:32:27-00:00",
                                  "2023-12-29 07:32:27Z"])
def test_iso_in_utc_gives_the_epoch_seconds(text):
    assert parse_timestamp(text, "ts") == EPOCH


@pytest.mark.parametrize("text", ["2023-12-29T09:32:27+02:00", "2023-12-29T02:32:27-05:00",
                                  "2023-12-29T13:02:27+05:30", "2023-12-30T00:32:27+17:00"])
def test_an_offset_gives_the_same_instant_as_z_at_the_utc_wall_time(text):
    # 09:32:27 at +02:00 is 07:32:27 Z: the same epoch, not two hours later
    assert parse_timestamp(text, "ts") == parse_timestamp("2023-12-29T07:32:27Z", "ts") == EPOCH


@pytest.mark.parametrize(("text", "expected"), [
    ("2023-12-29T07:32:27.25Z", EPOCH + 0.25),
    ("2023-12-29T07:32:27.5+02:00", EPOCH - 7200 + 0.5),
    ("2023-12-29T07:32:27.123456Z", 1_703_835_147.123456),
    ("2023-12-29T07:32:27.000001Z", 1_703_835_147.000001),
    # the parser keeps microseconds; further digits are truncated, not rounded
    ("2023-12-29T07:32:27.1234569Z", 1_703_835_147.123456),
])
def test_fractional_seconds_are_kept_to_the_microsecond(text, expected):
    assert parse_timestamp(text, "ts") == expected


@pytest.mark.parametrize("value", [1_703_835_147, 1_703_835_147.0, 1_703_835_147.123456, 0, 0.0, 1e11])
def test_epoch_numbers_come_back_unchanged(value):
    out = parse_timestamp(value, "ts")
    assert out == value and type(out) is float


@pytest.mark.parametrize("value", [1_703_835_147.25, 1_703_835_147])
def test_a_number_passes_the_validator_as_the_same_object(value):
    # the hot path (POST /v1/orders/check): no conversion, one type() check
    assert _epoch_seconds(value) is value


@pytest.mark.parametrize(("text", "expected"), [("1703835147", EPOCH), ("1703835147.25", EPOCH + 0.25),
                                                ("20231229", 20_231_229.0)])
def test_a_number_in_a_string_is_epoch_seconds_as_a_query_parameter_sends_it(text, expected):
    # digits are always epoch seconds, never read as a basic-format ISO date (20231229)
    assert parse_timestamp(text, "since") == expected


@pytest.mark.parametrize("text", ["2023-12-29T07:32:27", "2023-12-29T07:32:27.250", "2023-12-29 07:32", "2023-12-29"])
def test_a_time_without_a_zone_is_refused_naming_the_field_and_asking_for_a_zone(text):
    with pytest.raises(TimestampError) as caught:
        parse_timestamp(text, "opened_at")
    err = caught.value
    assert isinstance(err, ValueError)
    assert err.field == "opened_at" and err.code == "timestamp_zone_missing"
    assert str(err) == (f"opened_at: a time zone is required (Z or ±HH:MM, e.g. 2023-12-29T07:32:27Z): "
                        f"{text!r} has none")


@pytest.mark.parametrize("text", ["yesterday", "", " ", "29/12/2023 07:32", "2023-12-29T07:32:27 UTC",
                                  "2023-13-01T00:00:00Z", "2023-12-29T24:00:00Z", "0x10", "1,5"])
def test_garbage_is_refused_naming_the_field_and_both_forms(text):
    with pytest.raises(TimestampError) as caught:
        parse_timestamp(text, "ts")
    err = caught.value
    assert err.field == "ts" and err.code == "timestamp_parsing"
    assert str(err) == ("ts: expected epoch seconds (a number) or an ISO 8601 time with a zone "
                        f"(e.g. 2023-12-29T07:32:27Z), got {text!r}")


def test_a_long_garbage_string_is_cut_in_the_message():
    with pytest.raises(TimestampError) as caught:
        parse_timestamp("x" * 10_000, "ts")
    assert len(str(caught.value)) < 200 and str(caught.value).endswith("...'")


@pytest.mark.parametrize(("value", "what"), [(True, "a boolean"), (False, "a boolean"), (None, "null"),
                                             ([EPOCH], "list"), ({"ts": EPOCH}, "dict")])
def test_booleans_and_other_types_are_not_timestamps(value, what):
    with pytest.raises(TimestampError) as caught:
        parse_timestamp(value, "at")
    assert caught.value.code == "timestamp_type"
    assert str(caught.value) == ("at: expected epoch seconds (a number) or an ISO 8601 time with a zone "
                                 f"(e.g. 2023-12-29T07:32:27Z), got {what}")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan", "inf", "-Infinity"])
def test_nan_and_infinity_are_refused(value):
    with pytest.raises(TimestampError) as caught:
        parse_timestamp(value, "ts")
    assert caught.value.code == "finite_number"


@pytest.mark.parametrize("value", [-1, -0.001, "-5", "1969-12-31T23:59:59Z", "1970-01-01T01:00:00+02:00"])
def test_before_1970_is_refused_as_a_negative_epoch(value):
    with pytest.raises(TimestampError) as caught:
        parse_timestamp(value, "ts")
    assert caught.value.code == "greater_than_equal"


def test_the_unix_epoch_itself_is_accepted_in_any_zone():
    assert parse_timestamp("1970-01-01T00:00:00Z", "ts") == 0.0
    assert parse_timestamp("1970-01-01T02:00:00+02:00", "ts") == 0.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    ts: OptionalTimestamp = None
    at: Timestamp = Field(le=1e11)


def test_in_a_model_the_error_loc_names_the_field_and_further_bounds_apply():
    assert _Body(at="2023-12-29T09:32:27+02:00").at == EPOCH and _Body(at=EPOCH).ts is None
    assert _Body(ts="2023-12-29T07:32:27.5Z", at=0).ts == EPOCH + 0.5
    with pytest.raises(ValidationError) as caught:
        _Body(ts="2023-12-29T07:32:27", at="6000-01-01T00:00:00Z")  # 1.27e11 s
    errors = {e["loc"]: e["type"] for e in caught.value.errors()}
    assert errors == {("ts",): "timestamp_zone_missing", ("at",): "less_than_equal"}


def test_the_json_schema_documents_a_number_or_a_date_time_string():
    props = _Body.model_json_schema()["properties"]
    number = {"type": "number", "minimum": 0, "description": "Epoch seconds (UTC)"}
    text = {"type": "string", "format": "date-time",
            "description": "ISO 8601 with a zone (Z or ±HH:MM), e.g. 2023-12-29T07:32:27Z"}
    assert props["ts"]["anyOf"] == [number, text, {"type": "null"}]
    assert props["at"]["anyOf"] == [{**number, "maximum": 1e11}, text]


# ------------------------------------------------------------------------------ the replay's ISO form
def test_the_replay_writes_utc_with_z_and_keeps_microseconds():
    assert iso_timestamp(EPOCH) == "2023-12-29T07:32:27Z"
    assert iso_timestamp(EPOCH + 0.25) == "2023-12-29T07:32:27.250000Z"
    assert iso_timestamp(1_703_835_147.000001) == "2023-12-29T07:32:27.000001Z"


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**6))  # up to 2100-01-01, in microseconds
def test_a_time_in_whole_microseconds_round_trips_exactly_through_the_replays_iso_form(micros):
    ts = micros / 10**6  # what datetime.timestamp() gives for the files' times
    assert parse_timestamp(iso_timestamp(ts), "ts") == ts
