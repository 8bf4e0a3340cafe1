"""Limits and plans: the seed templates, fraction-of-balance plans, overrides, validation."""

from __future__ import annotations

import pytest

from riskactors.domain import LIMIT_FIELDS, Limits, LimitsError, PlanNotFound, PlanRegistry, default_plan_registry


def _resolve(plan, balance, overrides=None):
    """Limits of the active version of a shipped plan."""
    return default_plan_registry().resolve(plan, None, balance, overrides)[1]


@pytest.mark.parametrize("plan,leverage,positions,daily", [("conservative", 5, 3, 250), ("moderate", 10, 5, 500),
                                                           ("aggressive", 20, 10, 1000)])
def test_seed_templates_have_the_seed_numbers(plan, leverage, positions, daily):
    lim = _resolve(plan, 10_000)
    assert (lim.exposure.max_leverage, lim.exposure.max_open_positions, lim.loss.daily_loss_limit) == (leverage, positions, daily)


def test_template_amounts_do_not_scale_with_the_balance():
    assert _resolve("moderate", 1_000_000).loss.daily_loss_limit == 500


@pytest.mark.parametrize("balance", [10_000, 100_000, 200_000])
def test_two_step_phase1_resolves_5_and_10_percent_of_initial_balance(balance):
    lim = _resolve("two_step_phase1", balance)
    assert lim.loss.daily_loss_limit == pytest.approx(0.05 * balance)
    assert lim.loss.max_loss_limit == pytest.approx(0.10 * balance)
    assert str(lim.loss.max_loss_mode) == "static" and str(lim.loss.daily_loss_reference) == "balance"


def test_shipped_plans_are_listed():
    names = [p["id"] for p in default_plan_registry().list() if p["active_version"] is not None]
    assert {"conservative", "moderate", "aggressive", "two_step_phase1", "two_step_phase2",
            "one_step_trailing"} <= set(names)
    assert names == sorted(names)
    assert default_plan_registry().active("moderate").description


def test_overrides_replace_single_fields():
    lim = _resolve("moderate", 10_000, {"max_leverage": 3, "max_loss_mode": "trailing"})
    assert lim.exposure.max_leverage == 3 and str(lim.loss.max_loss_mode) == "trailing_intraday"  # the older name is accepted
    assert lim.exposure.max_open_positions == 5  # untouched


def test_override_wins_over_a_fraction_of_balance():
    lim = _resolve("two_step_phase1", 100_000, {"daily_loss_limit": 1234})
    assert lim.loss.daily_loss_limit == 1234 and lim.loss.max_loss_limit == pytest.approx(10_000)


def test_none_switches_an_optional_rule_off_and_is_rejected_for_a_required_limit():
    lim = _resolve("two_step_phase1", 100_000, {"profit_target": None})
    assert lim.objectives.profit_target is None
    with pytest.raises(LimitsError) as exc:
        _resolve("moderate", 10_000, {"max_leverage": None})
    assert exc.value.field == "max_leverage"


@pytest.mark.parametrize("field,value", [
    ("max_leverage", 0), ("max_leverage", -1), ("max_leverage", "10"), ("max_leverage", True),
    ("account_leverage", 0), ("max_position_lots", -0.01), ("daily_loss_limit", 0), ("max_loss_limit", -5),
    ("margin_call_level", 0), ("max_open_positions", 0), ("max_open_positions", 2.5),
    ("max_orders_per_second", 0), ("max_orders_per_second", False), ("warning_fraction", 0),
    ("warning_fraction", 1.01), ("warning_fraction", "0.8"), ("warning_fraction", True),
    ("max_loss_mode", "sideways"), ("daily_loss_reference", "equity"),
])
def test_invalid_override_raises_limits_error_naming_the_field(field, value):
    with pytest.raises(LimitsError) as exc:
        _resolve("moderate", 10_000, {field: value})
    assert exc.value.field == field
    assert field in str(exc.value)


def test_unknown_override_field_raises_limits_error_naming_it():
    with pytest.raises(LimitsError) as exc:
        _resolve("moderate", 10_000, {"max_levrage": 5})
    assert exc.value.field == "max_levrage"


def test_unknown_plan_raises_plan_not_found():
    with pytest.raises(PlanNotFound) as exc:  # registration maps it to a 422 naming ``plan`` (tests/api)
        _resolve("yolo", 10_000)
    assert exc.value.subject == "yolo"


def test_limits_error_is_a_value_error():
    assert issubclass(LimitsError, ValueError)


@pytest.mark.parametrize("frac", [0, 1.5, "5%"])
def test_plan_with_an_invalid_fraction_is_rejected_when_loaded(frac):
    with pytest.raises(LimitsError) as exc:
        PlanRegistry.from_documents({"bad": {"limits": {"daily_loss_limit_fraction": frac}}}, now=0.0)
    assert exc.value.field == "rules.daily_loss_limit_fraction"


def test_warning_fraction_of_one_is_allowed():
    assert Limits.of(warning_fraction=1.0).warning_fraction == 1.0


def test_to_dict_has_every_field_and_plain_strings():
    d = Limits.of().to_dict()
    assert set(d) == set(LIMIT_FIELDS)
    assert type(d["max_loss_mode"]) is str and type(d["daily_loss_reference"]) is str
