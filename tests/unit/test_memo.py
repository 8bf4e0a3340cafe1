"""Remembered answers (``riskactors.domain.memo``): kept as marshal bytes, given back equal."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from unitkit import T0, make_account

from riskactors.domain import AccountStatus, Fill, LatestMarks, Mark, default_registry
from riskactors.domain.memo import pack, unpack

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                     max_leaves=20)


@given(answer=st.dictionaries(st.text(max_size=10), _json, max_size=8))
def test_an_answer_comes_back_equal_float_for_float(answer):
    stored = pack(answer)
    assert isinstance(stored, bytes)
    assert unpack(stored) == answer and unpack(stored) is not answer


def test_equal_answers_give_equal_bytes_however_their_strings_were_made():
    a = {"order_id": "o-1", "reasons": [{"code": "MAX_LEVERAGE"}], "code": "MAX_LEVERAGE"}
    b = {"order_id": "o-" + str(1), "reasons": [{"code": "max_leverage".upper()}], "code": "MAX_LEVERAGE"}  # made at run time
    assert pack(a) == pack(b)


def test_negative_zero_and_nan_keep_their_bits():
    back = unpack(pack({"z": -0.0, "n": math.nan}))
    assert math.copysign(1.0, back["z"]) == -1.0 and math.isnan(back["n"])


def test_an_answer_marshal_cannot_write_is_kept_as_it_is():
    answer = {"status": AccountStatus.ACTIVE}  # a str subclass: marshal refuses it
    assert pack(answer) is answer and unpack(pack(answer)) is answer


def test_a_repeated_fill_gets_the_first_answer_and_changing_it_changes_nothing_remembered():
    acct = make_account()
    latest = LatestMarks(default_registry())
    latest.apply(Mark("EURUSD", 1.0, 1.0, T0))
    fill = Fill("f1", acct.account_id, "EURUSD", "buy", 1.0, 1.0, T0)
    first = acct.apply_fill(fill, latest, T0)
    assert isinstance(acct.fills["f1"][1], bytes)
    first["balance"] = -1.0  # a caller editing its copy
    again = acct.apply_fill(fill, latest, T0 + 1)
    assert again == {**first, "balance": acct.balance, "duplicate": True}
