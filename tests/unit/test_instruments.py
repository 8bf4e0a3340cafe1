"""The instrument registry: shipped file coverage of the reference data, parsing and look-ups.

The coverage test reads the project's reference data from ``../shared/data`` relative to the
repository (it is never copied into the repository; ``RISKACTORS_DATA`` overrides the folder). When the data is missing it is skipped,
except under CI (environment variable ``CI`` set), where it fails.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

from riskactors.domain import Instrument, InstrumentRegistry, default_registry

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("RISKACTORS_DATA", REPO.parent / "shared" / "data"))  # same override as tests/conftest.py
FUNDINGPIPS = DATA / "fundingpips-trades-short" / "test_task_trades_short.csv"
RONNARU = DATA / "mt4-ronnaru" / "closed_trades_DetailedStatement.csv"
BARS = DATA / "mt4-ronnaru" / "broker_bars_H1"


def _require_data() -> None:
    missing = [p for p in (FUNDINGPIPS, RONNARU, BARS) if not p.exists()]
    if not missing:
        return
    msg = f"reference data missing: {', '.join(str(p) for p in missing)}"
    if os.environ.get("CI"):
        pytest.fail(msg + " (CI is set: the data must be present)")
    pytest.skip(msg)


def _column(path: Path, name: str) -> set[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {row[name].strip() for row in csv.DictReader(fh) if row.get(name) and row[name].strip()}


def reference_symbols() -> dict[str, set[str]]:
    return {
        "fundingpips symbol": _column(FUNDINGPIPS, "symbol"),
        "mt4-ronnaru item": _column(RONNARU, "item"),
        "bar file stems": {p.stem[: -len("H1")] for p in BARS.glob("*H1.csv")},
    }


@pytest.mark.data
def test_shipped_registry_covers_every_symbol_of_the_reference_data():
    _require_data()
    registry = default_registry()
    sources = reference_symbols()
    assert all(sources.values()), f"a reference source yielded no symbols: {sources}"
    missing = {src: sorted(s for s in syms if s not in registry) for src, syms in sources.items()}
    assert missing == {src: [] for src in sources}


@pytest.mark.data
def test_reference_data_symbol_sets_are_the_expected_size():
    _require_data()
    sources = reference_symbols()
    # guards against a parsing change silently checking nothing
    assert len(sources["fundingpips symbol"]) >= 30
    assert len(sources["mt4-ronnaru item"]) >= 15
    assert len(sources["bar file stems"]) >= 10


def test_shipped_registry_specs_are_consistent():
    registry = default_registry()
    assert len(registry) == len(registry.symbols()) >= 60
    for inst in registry:
        assert inst.contract_size > 0 and 0 < inst.margin_rate <= 1 and inst.lot_step > 0 and inst.min_lot > 0
        assert inst.asset_class in {"fx", "metal", "index", "energy", "crypto"}
        if inst.asset_class == "fx":
            assert len(inst.base_currency) == 3 and len(inst.quote_currency) == 3
            assert inst.contract_size == 100_000


@pytest.mark.parametrize("symbol,contract_size,quote", [("EURUSD", 100_000, "USD"), ("USDJPY", 100_000, "JPY"),
                                                        ("XAUUSD", 100, "USD"), ("xauusd.", 100, "USD"),
                                                        ("NDX100", 20, "USD"), ("GER40", 25, "EUR")])
def test_known_contract_specs(symbol, contract_size, quote):
    inst = default_registry().get(symbol)
    assert inst is not None
    assert inst.contract_size == contract_size and inst.quote_currency == quote


def test_lookup_is_case_sensitive_and_unknown_is_none():
    registry = default_registry()
    assert "EURUSD" in registry and "eurusd." in registry
    assert "eurusd" not in registry and registry.get("eurusd") is None


def test_duplicate_symbol_is_rejected():
    inst = Instrument("ABCUSD", "fx", "ABC", "USD", 100_000, 0.01, 5)
    with pytest.raises(ValueError, match="duplicate"):
        InstrumentRegistry([inst, inst])


HEADER = "symbol,asset_class,base_currency,quote_currency,contract_size,margin_rate,digits,lot_step,min_lot,source\n"


def test_from_csv_loads_a_broker_file(tmp_path):
    path = tmp_path / "inst.csv"
    path.write_text(HEADER + "ABCUSD,fx,abc,usd,100000,0.01,5,0.01,0.01,test\n", encoding="utf-8")
    reg = InstrumentRegistry.from_csv(path)
    inst = reg.get("ABCUSD")
    assert (inst.base_currency, inst.quote_currency, inst.contract_size) == ("ABC", "USD", 100_000)


@pytest.mark.parametrize("row", ["ABCUSD,fx,ABC,USD,0,0.01,5,0.01,0.01,x",
                                 "ABCUSD,fx,ABC,USD,100000,,5,0.01,0.01,x",
                                 "ABCUSD,fx,ABC,USD,100000,0.01,five,0.01,0.01,x"])
def test_from_csv_names_the_row_of_a_bad_number(tmp_path, row):
    path = tmp_path / "inst.csv"
    path.write_text(HEADER + row + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"inst\.csv:2"):
        InstrumentRegistry.from_csv(path)


def test_missing_reference_data_fails_under_ci_and_skips_otherwise(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "FUNDINGPIPS", tmp_path / "absent.csv")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        _require_data()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _require_data()
