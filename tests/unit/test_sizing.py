"""Position sizing: hand-computed sizes, rounding at the lot step, each cap binding, the minimum
lot, input errors, and a property test that the size is the largest one within every bound.

Money is in account currency (USD unless said), quantities in lots.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskactors.domain.instruments import Instrument
from riskactors.domain.limits import Limits
from riskactors.domain.sizing import BOUNDS, SizeRecommendation, SizingError, position_size

EURUSD = Instrument("EURUSD", "fx", "EUR", "USD", contract_size=100_000, margin_rate=0.01, digits=5)
XAUUSD = Instrument("XAUUSD", "metal", "XAU", "USD", contract_size=100, margin_rate=0.01, digits=2)
USDJPY = Instrument("USDJPY", "fx", "USD", "JPY", contract_size=100_000, margin_rate=0.01, digits=3)

#: Limits loose enough that only the risk budget binds in the EURUSD examples below:
#: 100k equity × 10 max leverage / 110k notional per lot ≈ 9.09 lots; free margin ≈ 90.9 lots.
LOOSE = Limits.of(max_leverage=10, account_leverage=100, max_position_lots=5, margin_call_level=100)


def size(**kw) -> SizeRecommendation:
    """EURUSD buy at 1.1000, stop-loss 1.0950 (50 pips: 500 USD per lot), 100k balance and equity."""
    args = {"instrument": EURUSD, "entry": 1.1000, "stop_loss": 1.0950, "rate": 1.0, "balance": 100_000.0,
            "equity": 100_000.0, "limits": LOOSE}
    args.update(kw)
    if "risk_amount" not in kw and "risk_fraction" not in kw:
        args["risk_fraction"] = 0.01
    return position_size(**args)


# --- hand-computed examples -------------------------------------------------------------------

def test_eurusd_one_percent_of_100k_with_50_pip_stop_is_2_lots():
    # 1 % of 100,000 = 1,000 USD; 0.0050 × 100,000 × 1.0 = 500 USD per lot → 2.0 lots.
    rec = size()
    assert rec.lots == 2.0
    assert rec.side == "buy"
    assert rec.bound_by == "risk" and not rec.below_min_lot
    assert rec.risk_amount == pytest.approx(1_000.0)
    assert rec.loss_at_stop == pytest.approx(1_000.0)
    assert rec.caps["risk"] == pytest.approx(2.0)
    assert rec.caps["max_position_lots"] == 5.0
    assert rec.caps["max_leverage"] == pytest.approx(1_000_000 / 110_000)
    assert rec.caps["free_margin"] == pytest.approx(100_000 / 1_100)


def test_stop_loss_above_entry_is_a_sell_of_the_same_size():
    rec = size(stop_loss=1.1050)
    assert (rec.side, rec.lots, rec.bound_by) == ("sell", 2.0, "risk")


def test_xauusd_contract_100_500_usd_over_10_dollars_is_half_a_lot():
    # 10.00 × 100 oz × 1.0 = 1,000 USD per lot → 500 USD buys 0.5 lots.
    rec = size(instrument=XAUUSD, entry=2000.0, stop_loss=1990.0, risk_amount=500.0)
    assert rec.lots == 0.5 and rec.bound_by == "risk"
    assert rec.loss_at_stop == pytest.approx(500.0)
    # notional per lot 200,000 USD: 10 × 100k equity → 5 lots; margin 2,000 per lot → 50 lots.
    assert rec.caps["max_leverage"] == pytest.approx(5.0)
    assert rec.caps["free_margin"] == pytest.approx(50.0)


def test_usdjpy_in_a_usd_account_converts_the_stop_distance_at_the_rate():
    # 0.50 JPY × 100,000 = 50,000 JPY per lot × (1/150) = 333.33 USD → 1,000 USD buys 3.0 lots.
    rec = size(instrument=USDJPY, entry=150.0, stop_loss=149.5, rate=1 / 150, risk_amount=1_000.0)
    assert rec.lots == 3.0 and rec.bound_by == "risk"
    assert rec.loss_at_stop == pytest.approx(1_000.0)
    # notional per lot = 100,000 × 150 JPY × (1/150) = 100,000 USD → 10 lots at 10× leverage.
    assert rec.caps["max_leverage"] == pytest.approx(10.0)


def test_risk_fraction_is_of_the_balance_not_the_equity():
    rec = size(balance=50_000.0, equity=100_000.0, risk_fraction=0.01)
    assert rec.risk_amount == pytest.approx(500.0) and rec.lots == 1.0


def test_risk_fraction_of_one_is_allowed():
    rec = size(balance=1_000.0, risk_fraction=1.0)
    assert rec.risk_amount == 1_000.0 and rec.lots == 2.0


# --- rounding at the lot step -----------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 7, 37, 200, 333])
def test_budget_exactly_enough_for_n_steps_gives_n_steps(n):
    # 0.01 lot × 500 USD per lot = 5 USD per step.
    rec = size(risk_amount=5.0 * n, limits=Limits.of(max_position_lots=100, max_leverage=100))
    assert rec.lots == round(n * 0.01, 10) and rec.bound_by == "risk"


@pytest.mark.parametrize("n", [2, 7, 37, 200, 333])
def test_budget_a_hair_under_n_steps_gives_n_minus_1_steps(n):
    rec = size(risk_amount=5.0 * n - 1e-6, limits=Limits.of(max_position_lots=100, max_leverage=100))
    assert rec.lots == round((n - 1) * 0.01, 10)
    assert rec.loss_at_stop <= rec.risk_amount


def test_rounding_is_down_never_to_nearest():
    rec = size(risk_amount=9.99)  # 0.01998 lots
    assert rec.lots == 0.01


def test_a_cap_of_0_3_lots_is_30_steps_not_29():
    rec = size(limits=Limits.of(max_position_lots=0.3))
    assert rec.lots == 0.3 and rec.bound_by == "max_position_lots"
    # 5.0 − 4.7 is 0.2999999999999998 in binary floating point.
    rec = size(held_lots=4.7, limits=Limits.of(max_position_lots=5.0))
    assert rec.lots == 0.3 and rec.bound_by == "max_position_lots"


def test_lots_are_expressed_to_the_steps_decimals():
    inst = Instrument("EURUSD", "fx", "EUR", "USD", contract_size=100_000, margin_rate=0.01, digits=5,
                      lot_step=0.1, min_lot=0.1)
    rec = size(instrument=inst, risk_amount=350.0)  # 0.7 lots exactly, 7 × 0.1 = 0.7000000000000001
    assert rec.lots == 0.7 and repr(rec.lots) == "0.7"


# --- each cap binds ---------------------------------------------------------------------------

def test_max_position_lots_binds():
    rec = size(limits=Limits.of(max_position_lots=1.5))
    assert (rec.lots, rec.bound_by) == (1.5, "max_position_lots")
    assert rec.loss_at_stop == pytest.approx(750.0) and rec.risk_amount == pytest.approx(1_000.0)


def test_max_position_lots_counts_lots_already_held_in_the_same_direction():
    rec = size(held_lots=4.25, limits=Limits.of(max_position_lots=5))
    assert rec.caps["max_position_lots"] == pytest.approx(0.75)
    assert (rec.lots, rec.bound_by) == (0.75, "max_position_lots")


def test_max_leverage_binds_with_other_exposure_counted():
    # (2 × 100,000 − 50,000) / 110,000 = 1.3636 lots → 1.36.
    rec = size(other_notional=50_000.0, limits=Limits.of(max_leverage=2, max_position_lots=5))
    assert rec.caps["max_leverage"] == pytest.approx(150_000 / 110_000)
    assert (rec.lots, rec.bound_by) == (1.36, "max_leverage")


def test_max_leverage_uses_equity_not_balance():
    rec = size(balance=100_000.0, equity=10_000.0)  # 10 × 10,000 / 110,000 = 0.909 lots
    assert (rec.lots, rec.bound_by) == (0.9, "max_leverage")


def test_free_margin_binds():
    # (100,000 × 100 / 100 − 99,000) / (110,000 × 0.01) = 0.909 lots → 0.90.
    rec = size(margin_used=99_000.0)
    assert rec.caps["free_margin"] == pytest.approx(1_000 / 1_100)
    assert (rec.lots, rec.bound_by) == (0.9, "free_margin")


def test_free_margin_respects_the_margin_call_level_and_account_leverage():
    # margin allowed = 100,000 × 100 / 200 = 50,000; margin rate max(0.01, 1/20) = 0.05 →
    # 5,500 USD per lot → (50,000 − 45,000) / 5,500 = 0.909 lots.
    limits = Limits.of(max_leverage=100, account_leverage=20, margin_call_level=200)
    rec = size(margin_used=45_000.0, limits=limits)
    assert rec.caps["free_margin"] == pytest.approx(5_000 / 5_500)
    assert (rec.lots, rec.bound_by) == (0.9, "free_margin")


def test_the_instrument_margin_rate_wins_when_higher_than_1_over_account_leverage():
    inst = Instrument("XAUUSD", "metal", "XAU", "USD", contract_size=100, margin_rate=0.05, digits=2)
    # 100 × 2,000 × 0.05 = 10,000 USD margin per lot; 5,000 free → 0.5 lots.
    rec = size(instrument=inst, entry=2000.0, stop_loss=1999.0, equity=100_000.0, margin_used=95_000.0,
               limits=Limits.of(max_leverage=100))
    assert (rec.lots, rec.bound_by) == (0.5, "free_margin")


def test_negative_caps_count_as_zero():
    rec = size(held_lots=6.0, other_notional=2_000_000.0, margin_used=150_000.0)
    assert rec.caps == {"risk": pytest.approx(2.0), "max_position_lots": 0.0, "max_leverage": 0.0,
                        "free_margin": 0.0}
    assert rec.lots == 0.0 and rec.below_min_lot


def test_negative_equity_allows_no_new_exposure():
    rec = size(equity=-100.0)
    assert rec.caps["max_leverage"] == 0.0 and rec.caps["free_margin"] == 0.0
    assert (rec.lots, rec.bound_by, rec.below_min_lot) == (0.0, "max_leverage", True)


# --- ties ------------------------------------------------------------------------------------

def test_equal_lots_prefer_risk():
    assert size(limits=Limits.of(max_position_lots=2.0)).bound_by == "risk"


def test_caps_that_round_to_the_same_lots_prefer_risk():
    # risk allows 2.004 lots, the position cap 2.0: both give 2.00 lots.
    rec = size(risk_amount=1_002.0, limits=Limits.of(max_position_lots=2.0))
    assert rec.lots == 2.0 and rec.bound_by == "risk"


def test_equal_caps_follow_the_documented_order():
    assert BOUNDS == ("risk", "max_position_lots", "max_leverage", "free_margin")
    # leverage cap (1 × 110,000) / 110,000 = 1 lot; free margin (1,100 × 100 / 100) / 1,100 = 1 lot.
    rec = size(equity=110_000.0, margin_used=108_900.0, limits=Limits.of(max_leverage=1, max_position_lots=5))
    assert rec.caps["max_leverage"] == pytest.approx(1.0) and rec.caps["free_margin"] == pytest.approx(1.0)
    assert (rec.lots, rec.bound_by) == (1.0, "max_leverage")


# --- minimum lot ------------------------------------------------------------------------------

def test_risk_under_the_minimum_lot_recommends_zero_lots():
    rec = size(risk_amount=4.0)  # 0.008 lots < 0.01
    assert (rec.lots, rec.bound_by, rec.below_min_lot) == (0.0, "risk", True)
    assert rec.loss_at_stop == 0.0 and rec.caps["risk"] == pytest.approx(0.008)


def test_a_size_on_the_step_but_under_a_larger_minimum_lot_is_zero():
    inst = Instrument("XAUUSD", "metal", "XAU", "USD", contract_size=100, margin_rate=0.01, digits=2,
                      lot_step=0.01, min_lot=0.1)
    rec = size(instrument=inst, entry=2000.0, stop_loss=1990.0, risk_amount=80.0)  # 0.08 lots
    assert (rec.lots, rec.below_min_lot, rec.min_lot, rec.lot_step) == (0.0, True, 0.1, 0.01)
    rec = size(instrument=inst, entry=2000.0, stop_loss=1990.0, risk_amount=100.0)  # exactly the minimum
    assert (rec.lots, rec.below_min_lot) == (0.1, False)


def test_below_min_lot_names_the_cap_that_caused_it():
    rec = size(margin_used=99_995.0)  # 5 USD of free margin, 0.0045 lots
    assert (rec.lots, rec.bound_by, rec.below_min_lot) == (0.0, "free_margin", True)


def test_to_dict_is_plain_and_complete():
    d = size().to_dict()
    assert set(d) == {"lots", "side", "bound_by", "risk_amount", "loss_at_stop", "caps", "lot_step", "min_lot",
                      "below_min_lot"}
    assert set(d["caps"]) == set(BOUNDS)
    assert (d["lots"], d["side"], d["bound_by"], d["below_min_lot"]) == (2.0, "buy", "risk", False)


# --- errors -----------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("kw,field", [
    ({"entry": 0.0}, "entry"),
    ({"entry": -1.1}, "entry"),
    ({"entry": NAN}, "entry"),
    ({"entry": INF}, "entry"),
    ({"stop_loss": 0.0}, "stop_loss"),
    ({"stop_loss": -1.0}, "stop_loss"),
    ({"stop_loss": NAN}, "stop_loss"),
    ({"stop_loss": INF}, "stop_loss"),
    ({"stop_loss": 1.1}, "stop_loss"),  # equal to the entry
    ({"risk_amount": 0.0}, "risk_amount"),
    ({"risk_amount": -10.0}, "risk_amount"),
    ({"risk_amount": NAN}, "risk_amount"),
    ({"risk_amount": INF}, "risk_amount"),
    ({"risk_fraction": 0.0}, "risk_fraction"),
    ({"risk_fraction": -0.01}, "risk_fraction"),
    ({"risk_fraction": 1.01}, "risk_fraction"),
    ({"risk_fraction": NAN}, "risk_fraction"),
    ({"risk_fraction": 0.01, "balance": 0.0}, "balance"),
    ({"rate": 0.0}, "rate"),
    ({"rate": -1.0}, "rate"),
    ({"rate": NAN}, "rate"),
    ({"equity": NAN}, "equity"),
    ({"held_lots": -0.01}, "held_lots"),
    ({"other_notional": -1.0}, "other_notional"),
    ({"margin_used": INF}, "margin_used"),
])
def test_invalid_input_raises_sizing_error_naming_the_field(kw, field):
    with pytest.raises(SizingError) as exc:
        size(**kw)
    assert exc.value.field == field
    assert isinstance(exc.value, ValueError)
    assert str(exc.value).startswith(f"{field}: ") and exc.value.message


def test_neither_risk_amount_nor_risk_fraction_names_risk_amount():
    with pytest.raises(SizingError) as exc:
        position_size(instrument=EURUSD, entry=1.1, stop_loss=1.095, rate=1.0, balance=1e5, equity=1e5,
                      limits=LOOSE)
    assert exc.value.field == "risk_amount"


def test_both_risk_amount_and_risk_fraction_names_risk_amount():
    with pytest.raises(SizingError) as exc:
        size(risk_amount=100.0, risk_fraction=0.01)
    assert exc.value.field == "risk_amount"


# --- property: the largest size within every bound --------------------------------------------

#: (contract size, lowest and highest entry price) of realistic contracts: FX, metal, index/crypto, energy.
CONTRACTS = [(100_000.0, 0.5, 200.0), (100.0, 15.0, 5_000.0), (1.0, 10.0, 100_000.0), (1_000.0, 20.0, 150.0)]


@st.composite
def requests(draw):
    """Requests around the limits: every input drawn relative to the limit it meets, so every bound binds often."""
    step = draw(st.sampled_from([0.001, 0.01, 0.1, 1.0]))
    contract, low, high = draw(st.sampled_from(CONTRACTS))
    inst = Instrument("X", "fx", "AAA", "BBB", contract_size=contract, margin_rate=draw(st.floats(0.001, 0.5)),
                      digits=5, lot_step=step, min_lot=round(step * draw(st.integers(1, 10)), 10))
    entry = draw(st.floats(low, high))
    distance = entry * draw(st.floats(1e-4, 0.2))
    stop = entry - distance if draw(st.booleans()) else entry + distance
    limits = Limits.of(max_position_lots=draw(st.floats(0.01, 100.0)), max_leverage=draw(st.floats(1.0, 500.0)),
                    account_leverage=draw(st.floats(1.0, 1_000.0)), margin_call_level=draw(st.floats(10.0, 500.0)))
    balance = draw(st.floats(1_000.0, 1e7))
    equity = balance * draw(st.floats(-0.1, 1.5))
    kw = {"instrument": inst, "entry": entry, "stop_loss": stop, "rate": draw(st.floats(5e-3, 2.0)),
          "balance": balance, "equity": equity, "limits": limits,
          "held_lots": limits.exposure.max_position_lots * draw(st.floats(0.0, 1.1)),
          "other_notional": max(0.0, limits.exposure.max_leverage * equity) * draw(st.floats(0.0, 1.1)),
          "margin_used": max(0.0, equity) * 100 / limits.exposure.margin_call_level * draw(st.floats(0.0, 1.1))}
    if draw(st.booleans()):
        kw["risk_amount"] = balance * draw(st.floats(1e-4, 0.2))
    else:
        kw["risk_fraction"] = draw(st.floats(1e-4, 1.0))
    return kw


def _bounds_broken(kw: dict, lots: float) -> list[str]:
    """Bounds that ``lots`` breaks, computed from the inputs independently of the caps."""
    inst, lim = kw["instrument"], kw["limits"]
    per_lot_notional = inst.contract_size * kw["entry"] * kw["rate"]
    loss = lots * abs(kw["entry"] - kw["stop_loss"]) * inst.contract_size * kw["rate"]
    budget = kw.get("risk_amount") or kw["risk_fraction"] * kw["balance"]
    margin = lots * per_lot_notional * max(inst.margin_rate, 1 / lim.exposure.account_leverage)
    allowed = max(0.0, kw["equity"]) * 100 / lim.exposure.margin_call_level
    broken = []
    if loss > budget:
        broken.append("risk")
    if kw["held_lots"] + lots > lim.exposure.max_position_lots:
        broken.append("max_position_lots")
    if kw["other_notional"] + lots * per_lot_notional > lim.exposure.max_leverage * kw["equity"]:
        broken.append("max_leverage")
    if kw["margin_used"] + margin > allowed:
        broken.append("free_margin")
    return broken


@settings(max_examples=400, deadline=None)
@given(requests())
def test_recommended_size_is_the_largest_within_every_bound(kw):
    rec = position_size(**kw)
    step, tol = rec.lot_step, 1e-9 * rec.lot_step
    # on the lot grid, and either 0 or at least the minimum lot
    assert abs(rec.lots / step - round(rec.lots / step)) < 1e-6
    assert rec.lots == 0.0 if rec.below_min_lot else rec.lots >= rec.min_lot - tol
    # never over a cap (up to the documented rounding tolerance of 1e-9 lot step)
    for name in BOUNDS:
        assert rec.caps[name] >= 0.0
        assert rec.lots <= rec.caps[name] + tol + 1e-12 * rec.caps[name], name
    assert rec.loss_at_stop <= rec.risk_amount + 1e-9 * max(1.0, rec.risk_amount)
    if rec.lots > 0:  # the same, from the inputs (a hair of slack for the tolerance)
        assert not _bounds_broken(kw, rec.lots * (1 - 1e-8))
    # one more step (or, under the minimum lot, the minimum lot itself) breaks a bound
    more = rec.min_lot if rec.below_min_lot else rec.lots + step
    assert rec.caps[rec.bound_by] < more
    assert min(rec.caps.values()) == pytest.approx(rec.caps[rec.bound_by], abs=step)
    assert rec.bound_by in _bounds_broken(kw, more)
