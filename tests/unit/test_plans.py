"""Plans as versioned data: lifecycle, binding, validation naming the field, resolution, shipped presets."""

from __future__ import annotations

import json

import pytest

from riskactors.domain.codes import DailyLossMode, DailyLossReference, MaxLossMode, PlanStatus, RuleAction
from riskactors.domain.errors import DomainError
from riskactors.domain.limits import FRACTION_FIELDS, LimitsError
from riskactors.domain.plans import (
    PlanConflict,
    PlanNotFound,
    PlanRegistry,
    PlanVersion,
    default_plan_registry,
)

T0 = 1_746_547_200.0  # any fixed instant; the registry only records it
SHIPPED = ("conservative", "moderate", "aggressive", "two_step_phase1", "two_step_phase2",
           "one_step_trailing", "funded")


def doc(plan_id: str = "p", **rules) -> dict:
    return {"id": plan_id, "name": f"Plan {plan_id}", "description": "test plan", "source": "test",
            "rules": rules or {"daily_loss_limit_fraction": 0.05, "max_loss_limit_fraction": 0.10}}


@pytest.fixture
def registry() -> PlanRegistry:
    """Plan ``p`` with version 1 active (5 % daily, 10 % max loss)."""
    reg = PlanRegistry()
    reg.create(doc(), T0)
    reg.activate("p", now=T0)
    return reg


def field_of(call, *args, **kwargs) -> str:
    with pytest.raises(LimitsError) as exc:
        call(*args, **kwargs)
    assert exc.value.field in str(exc.value)
    return exc.value.field


# -- lifecycle ---------------------------------------------------------------------------------


def test_new_plan_is_a_draft_version_1_that_cannot_be_bound_until_activated():
    reg = PlanRegistry()
    v1 = reg.create(doc(), T0)
    assert (v1.plan_id, v1.version, v1.status, v1.created_at, v1.activated_at) == ("p", 1, PlanStatus.DRAFT, T0, None)
    assert reg.active("p") is None
    with pytest.raises(PlanConflict):
        reg.bindable("p")
    assert reg.activate("p", now=T0 + 1).status is PlanStatus.ACTIVE
    assert reg.bindable("p").version == 1


def test_create_on_an_active_plan_adds_draft_v2_and_v1_stays_active(registry):
    v2 = registry.create(doc(daily_loss_limit_fraction=0.04), T0 + 10)
    assert (v2.version, v2.status) == (2, PlanStatus.DRAFT)
    assert registry.active("p").version == 1
    assert registry.latest("p").version == 2
    assert registry.bindable("p").version == 1
    with pytest.raises(PlanConflict, match="draft"):
        registry.bindable("p", 2)


def test_activate_makes_v2_active_and_v1_superseded_and_v1_is_no_longer_bindable(registry):
    registry.create(doc(daily_loss_limit_fraction=0.04), T0 + 10)
    v2 = registry.activate("p", now=T0 + 20)
    assert (v2.version, v2.status, v2.activated_at) == (2, PlanStatus.ACTIVE, T0 + 20)
    v1 = registry.versions("p")[0]
    assert (v1.status, v1.superseded_at, v1.activated_at) == (PlanStatus.SUPERSEDED, T0 + 20, T0)
    assert registry.bindable("p") == v2
    with pytest.raises(PlanConflict, match="superseded") as exc:
        registry.bindable("p", 1)
    assert exc.value.code == "PLAN_CONFLICT" and exc.value.subject == "p"


def test_activating_the_active_version_again_is_idempotent(registry):
    registry.create(doc(daily_loss_limit_fraction=0.04), T0 + 10)
    first = registry.activate("p", 2, now=T0 + 20)
    again = registry.activate("p", 2, now=T0 + 99)
    assert again == first and again.activated_at == T0 + 20
    assert [v.status for v in registry.versions("p")] == [PlanStatus.SUPERSEDED, PlanStatus.ACTIVE]


def test_activating_a_superseded_version_is_a_conflict(registry):
    registry.create(doc(daily_loss_limit_fraction=0.04), T0 + 10)
    registry.activate("p", now=T0 + 20)
    with pytest.raises(PlanConflict, match="superseded"):
        registry.activate("p", 1, now=T0 + 30)
    assert registry.active("p").version == 2


def test_activate_without_a_draft_is_a_conflict(registry):
    with pytest.raises(PlanConflict, match="no draft"):
        registry.activate("p", now=T0 + 1)


def test_activate_default_picks_the_latest_draft(registry):
    registry.create(doc(daily_loss_limit_fraction=0.04), T0 + 1)
    registry.create(doc(daily_loss_limit_fraction=0.03), T0 + 2)
    assert registry.activate("p", now=T0 + 3).version == 3
    assert [v.status for v in registry.versions("p")] == [PlanStatus.SUPERSEDED, PlanStatus.DRAFT, PlanStatus.ACTIVE]


def test_activating_a_draft_older_than_the_active_version_is_a_conflict(registry):
    registry.create(doc(daily_loss_limit_fraction=0.04), T0 + 1)
    registry.create(doc(daily_loss_limit_fraction=0.03), T0 + 2)
    registry.activate("p", 3, now=T0 + 3)
    with pytest.raises(PlanConflict, match="older"):
        registry.activate("p", 2, now=T0 + 4)


def test_unknown_plan_or_version_is_plan_not_found(registry):
    for call in (lambda: registry.activate("nope", now=T0), lambda: registry.activate("p", 7, now=T0),
                 lambda: registry.versions("nope"), lambda: registry.latest("nope"), lambda: registry.active("nope"),
                 lambda: registry.bindable("nope"), lambda: registry.bindable("p", 7),
                 lambda: registry.resolve("p", 7, 100_000)):
        with pytest.raises(PlanNotFound) as exc:
            call()
        assert exc.value.code == "UNKNOWN_PLAN"


def test_plan_errors_are_domain_errors_with_stable_codes():
    assert issubclass(PlanNotFound, DomainError) and issubclass(PlanConflict, DomainError)
    assert PlanNotFound("p", "unknown plan").to_dict() == {"code": "UNKNOWN_PLAN", "subject": "p",
                                                           "message": "unknown plan"}


def test_new_version_keeps_name_description_and_source_unless_given(registry):
    v2 = registry.create({"id": "p", "rules": {"max_leverage": 3}}, T0 + 1)
    assert (v2.name, v2.description, v2.source) == ("Plan p", "test plan", "test")
    v3 = registry.create({"id": "p", "name": "Renamed", "rules": {}}, T0 + 2)
    assert v3.name == "Renamed" and v3.description == "test plan"
    assert PlanRegistry().create({"id": "fresh", "rules": {}}, T0).name == "fresh"


def test_rules_are_kept_as_written_and_not_shared_with_the_caller():
    rules = {"daily_loss_limit_fraction": 0.05, "max_loss_mode": "trailing"}
    v = PlanRegistry().create({"id": "p", "rules": rules}, T0)
    rules["max_leverage"] = 1
    assert v.rules == {"daily_loss_limit_fraction": 0.05, "max_loss_mode": "trailing"}
    assert v.to_dict()["rules"] == v.rules and v.to_dict()["rules"] is not v.rules


def test_list_summarises_each_plan_id(registry):
    registry.create(doc(daily_loss_limit_fraction=0.04), T0 + 1)
    registry.create(doc("another"), T0 + 2)
    assert registry.list() == [
        {"id": "another", "name": "Plan another", "active_version": None, "latest_version": 1,
         "statuses": [{"version": 1, "status": "draft"}]},
        {"id": "p", "name": "Plan p", "active_version": 1, "latest_version": 2,
         "statuses": [{"version": 1, "status": "active"}, {"version": 2, "status": "draft"}]},
    ]


def test_to_dict_is_plain_json(registry):
    d = registry.active("p").to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["status"] == "active" and d["plan_id"] == "p" and d["version"] == 1


# -- validation --------------------------------------------------------------------------------


def test_unknown_rule_key_names_it():
    assert field_of(PlanRegistry().create, doc(max_levrage=5), T0) == "rules.max_levrage"


@pytest.mark.parametrize("frac", [0, 0.0, -0.1, 1.0000001, 1.5, float("nan"), float("inf"), "5%", True, None])
def test_fraction_out_of_range_or_not_a_number_is_rejected(frac):
    assert field_of(PlanRegistry().create, doc(max_loss_limit_fraction=frac), T0) == "rules.max_loss_limit_fraction"


@pytest.mark.parametrize("frac", [1, 1.0, 1e-9, 0.5])
def test_fraction_in_zero_one_is_accepted(frac):
    v = PlanRegistry().create(doc(max_loss_limit_fraction=frac), T0)
    assert v.rules["max_loss_limit_fraction"] == frac


@pytest.mark.parametrize("frac", [0, -1, float("inf"), "1"])
def test_lock_fraction_must_be_a_positive_finite_level(frac):
    assert field_of(PlanRegistry().create, doc(max_loss_lock_fraction=frac), T0) == "rules.max_loss_lock_fraction"


def test_lock_fraction_may_exceed_one():
    assert PlanRegistry().create(doc(max_loss_lock_fraction=1.02), T0).rules["max_loss_lock_fraction"] == 1.02


@pytest.mark.parametrize("frac,amount", sorted(FRACTION_FIELDS.items()))
def test_a_fraction_and_its_amount_together_name_the_fraction(frac, amount):
    rules = {amount: 500, frac: 0.05}  # amount first: the fraction is still the one named
    assert field_of(PlanRegistry().create, {"id": "p", "rules": rules}, T0) == f"rules.{frac}"


@pytest.mark.parametrize("key,value", [
    ("max_loss_mode", "sideways"), ("daily_loss_reference", "equity"), ("daily_loss_mode", "medium"),
    ("hft_action", "ban"), ("hedging_across_accounts", "maybe"),
])
def test_bad_enum_names_the_field(key, value):
    assert field_of(PlanRegistry().create, doc(**{key: value}), T0) == f"rules.{key}"


@pytest.mark.parametrize("key,value", [
    ("max_leverage", 0), ("max_open_positions", 2.5), ("warning_fraction", 1.01), ("stop_loss_required", "yes"),
    ("max_leverage", None), ("weekly_close", "Fri 25:00 America/New_York"), ("weekly_close", 5),
    ("trading_day_rollover", 5), ("trading_day_timezone", "Mars/Base"), ("max_leverage", [10]),
])
def test_bad_value_names_the_rule(key, value):
    rules = {key: value}
    if key == "trading_day_rollover":
        rules["trading_day_timezone"] = "UTC"
    if key == "trading_day_timezone":
        rules["trading_day_rollover"] = "00:00"
    field = field_of(PlanRegistry().create, {"id": "p", "rules": rules}, T0)
    assert field.startswith("rules.") and field.removeprefix("rules.") in rules


def test_null_switches_an_optional_rule_off():
    reg = PlanRegistry()
    reg.create(doc(recommend_losing_streak_days=None, profit_target=None), T0)
    reg.activate("p", now=T0)
    assert reg.resolve("p", None, 100_000)[1].recommendations.recommend_losing_streak_days is None


@pytest.mark.parametrize("plan_id", ["", "has space", "a/b", "é", "x" * 65, 7, None])
def test_bad_id_names_id(plan_id):
    assert field_of(PlanRegistry().create, {"id": plan_id, "rules": {}}, T0) == "id"


def test_id_of_64_allowed_characters_is_accepted():
    assert PlanRegistry().create({"id": "A-z_0.9" + "x" * 57, "rules": {}}, T0).version == 1


def test_missing_id_or_rules_names_it():
    assert field_of(PlanRegistry().create, {"rules": {}}, T0) == "id"
    assert field_of(PlanRegistry().create, {"id": "p"}, T0) == "rules"
    assert field_of(PlanRegistry().create, {"id": "p", "rules": [1]}, T0) == "rules"


def test_unknown_top_level_key_names_it():
    assert field_of(PlanRegistry().create, {**doc(), "version": 3}, T0) == "version"


def test_non_string_name_is_rejected():
    assert field_of(PlanRegistry().create, {**doc(), "name": 5}, T0) == "name"


def test_an_invalid_document_adds_no_version(registry):
    with pytest.raises(LimitsError):
        registry.create(doc(max_loss_limit_fraction=2), T0 + 1)
    assert [v.version for v in registry.versions("p")] == [1]


# -- resolution --------------------------------------------------------------------------------


@pytest.mark.parametrize("balance", [0.01, 1, 10_000, 12_345.67, 100_000, 200_000, 1e12])
def test_resolve_turns_fractions_into_amounts_of_the_initial_balance(balance):
    reg = PlanRegistry()
    reg.create(doc(daily_loss_limit_fraction=0.05, max_loss_limit_fraction=0.1, profit_target_fraction=1), T0)
    reg.activate("p", now=T0)
    plan, lim = reg.resolve("p", None, balance)
    assert plan.version == 1
    assert lim.loss.daily_loss_limit == 0.05 * balance  # no rounding
    assert lim.loss.max_loss_limit == 0.1 * balance
    assert lim.objectives.profit_target == balance


def test_lock_fraction_resolves_to_a_level_of_the_initial_balance():
    reg = PlanRegistry()
    reg.create(doc(max_loss_limit_fraction=0.06, max_loss_mode="trailing_eod", max_loss_lock_fraction=1.0), T0)
    reg.activate("p", now=T0)
    assert reg.resolve("p", None, 50_000)[1].loss.max_loss_lock == 50_000
    reg.create(doc(max_loss_limit_fraction=0.06, max_loss_mode="trailing_eod", max_loss_lock_fraction=1.01), T0)
    assert reg.resolve("p", 2, 50_000)[1].loss.max_loss_lock == pytest.approx(50_500)


def test_resolve_applies_overrides_over_the_fractions(registry):
    _, lim = registry.resolve("p", 1, 100_000, {"daily_loss_limit": 1234})
    assert lim.loss.daily_loss_limit == 1234 and lim.loss.max_loss_limit == pytest.approx(10_000)
    assert field_of(registry.resolve, "p", 1, 100_000, {"max_levrage": 5}) == "max_levrage"
    assert field_of(registry.resolve, "p", 1, 100_000, {"max_leverage": 0}) == "max_leverage"


def test_resolve_still_resolves_a_superseded_version_for_accounts_bound_to_it(registry):
    registry.create(doc(daily_loss_limit_fraction=0.02), T0 + 1)
    registry.activate("p", now=T0 + 2)
    assert registry.resolve("p", 1, 100_000)[1].loss.daily_loss_limit == pytest.approx(5_000)
    assert registry.resolve("p", None, 100_000)[1].loss.daily_loss_limit == pytest.approx(2_000)


@pytest.mark.parametrize("balance", [0, -1, float("nan"), float("inf"), True, "100"])
def test_resolve_rejects_an_unusable_initial_balance(registry, balance):
    assert field_of(registry.resolve, "p", None, balance) == "initial_balance"


def test_resolve_without_an_active_version_is_a_conflict():
    reg = PlanRegistry()
    reg.create(doc(), T0)
    with pytest.raises(PlanConflict):
        reg.resolve("p", None, 100_000)
    assert reg.resolve("p", 1, 100_000)[1].loss.daily_loss_limit == pytest.approx(5_000)  # a draft previews


# -- shipped presets ---------------------------------------------------------------------------


@pytest.mark.parametrize("plan_id", SHIPPED)
@pytest.mark.parametrize("balance", [10_000, 100_000, 200_000])
def test_every_shipped_preset_loads_as_active_v1_and_resolves(plan_id, balance):
    plan, lim = default_plan_registry().resolve(plan_id, None, balance)
    assert (plan.version, plan.status) == (1, PlanStatus.ACTIVE)
    assert plan.name and plan.description and plan.source
    assert lim.loss.daily_loss_limit > 0 and lim.loss.max_loss_limit > 0


def test_shipped_file_has_exactly_the_presets():
    assert default_plan_registry().ids() == sorted(SHIPPED)


def test_two_step_phases_follow_ftmo():
    for plan_id, target in (("two_step_phase1", 0.10), ("two_step_phase2", 0.05)):
        lim = default_plan_registry().resolve(plan_id, None, 100_000)[1]
        assert (lim.loss.daily_loss_limit, lim.loss.max_loss_limit) == pytest.approx((5_000, 10_000))
        assert lim.objectives.profit_target == pytest.approx(target * 100_000) and lim.objectives.min_trading_days == 4
        assert lim.loss.daily_loss_reference is DailyLossReference.BALANCE and lim.loss.daily_loss_mode is DailyLossMode.HARD
        assert lim.loss.max_loss_mode is MaxLossMode.STATIC
        assert (lim.schedule.trading_day_rollover, lim.schedule.trading_day_timezone) == ("00:00", "Europe/Prague")
        assert lim.exposure.account_leverage == 100


def test_one_step_trails_end_of_day_and_locks_at_the_starting_balance():
    lim = default_plan_registry().resolve("one_step_trailing", None, 50_000)[1]
    assert lim.loss.max_loss_mode is MaxLossMode.TRAILING_EOD and lim.loss.max_loss_lock == 50_000
    assert lim.loss.max_loss_limit == pytest.approx(3_000) and lim.loss.daily_loss_limit == pytest.approx(2_000)
    assert lim.loss.daily_loss_reference is DailyLossReference.MAX_BALANCE_EQUITY
    assert lim.loss.daily_loss_mode is DailyLossMode.SOFT
    assert lim.objectives.profit_target == pytest.approx(5_000) and lim.objectives.min_trading_days == 3 and lim.exposure.account_leverage == 30


def test_funded_has_no_target_and_the_order_rules():
    lim = default_plan_registry().resolve("funded", None, 100_000)[1]
    assert lim.objectives.profit_target is None and lim.objectives.consistency_fraction is None
    assert (lim.loss.daily_loss_limit, lim.loss.max_loss_limit) == pytest.approx((5_000, 10_000))
    assert lim.loss.daily_loss_mode is DailyLossMode.HARD and lim.loss.max_loss_mode is MaxLossMode.STATIC
    assert (lim.orders.news_blackout_minutes, lim.orders.weekend_buffer_minutes, lim.orders.hft_max_trades) == (2, 30, 20)
    assert lim.orders.hft_action is RuleAction.WARN
    assert lim.orders.max_risk_per_trade_fraction == 0.02 and lim.orders.stop_loss_required is True


@pytest.mark.parametrize("plan_id,daily", [("conservative", 250), ("moderate", 500), ("aggressive", 1000)])
def test_limit_templates_are_fixed_amounts(plan_id, daily):
    for balance in (10_000, 1_000_000):
        assert default_plan_registry().resolve(plan_id, None, balance)[1].loss.daily_loss_limit == daily


def test_default_registry_is_shared_and_read_only():
    reg = default_plan_registry()
    assert reg is default_plan_registry() and reg.read_only
    with pytest.raises(RuntimeError):
        reg.create(doc(), T0)
    with pytest.raises(RuntimeError):
        reg.activate("moderate", now=T0)


def test_from_json_gives_a_mutable_registry_stamped_with_now(tmp_path):
    path = tmp_path / "plans.json"
    path.write_text(json.dumps({"plans": [doc("a"), doc("b")]}), encoding="utf-8")
    reg = PlanRegistry.from_json(path, now=T0)
    assert not reg.read_only and reg.ids() == ["a", "b"]
    assert reg.active("a").created_at == T0 == reg.active("a").activated_at
    assert reg.create(doc("a"), T0 + 1).version == 2


def test_from_documents_rejects_duplicate_ids_and_names_the_bad_plan():
    with pytest.raises(LimitsError, match="duplicate") as exc:
        PlanRegistry.from_documents([doc("a"), doc("a")], T0)
    assert exc.value.field == "id"
    with pytest.raises(LimitsError, match="'b'") as exc:
        PlanRegistry.from_documents([doc("a"), doc("b", max_leverage=-1)], T0)
    assert exc.value.field == "rules.max_leverage"


def test_from_json_reads_the_legacy_shape(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"plans": {"old": {"description": "d", "limits": {"max_loss_limit_fraction": 0.1}}}}),
                    encoding="utf-8")
    plan, lim = PlanRegistry.from_json(path).resolve("old", None, 20_000)
    assert plan.description == "d" and lim.loss.max_loss_limit == pytest.approx(2_000)


# -- shipped presets ----------------------------------------------------------------------------


def test_default_registry_holds_the_shipped_presets_as_active_versions():
    assert [p["id"] for p in default_plan_registry().list() if p["active_version"] == 1] == sorted(SHIPPED)
    assert isinstance(default_plan_registry().active("funded"), PlanVersion)
