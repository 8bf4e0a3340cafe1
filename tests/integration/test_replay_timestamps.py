"""Time zones of the replay readers (``tz``) and the replay's ISO timestamps.

- The readers take the zone of a file's naive times (``load_trades(..., tz=...)``, ``--tz``):
  the MT4 statement and its H1 bars read in Europe/Prague are the UTC reading shifted by
  Prague's offset at each time (2 h in summer, 1 h in winter).
- ``ReplayOptions(timestamps="iso")`` sends every ``ts`` and ``opened_at`` as ISO 8601 UTC
  strings: the server decides exactly what it decides for the same instants in epoch seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from click.testing import CliRunner

from riskactors.cli import main
from riskactors.replay import ReplayOptions, load_trades
from tests.conftest import require_data
from tests.integration.test_replay import MT4, replay_on_fresh_deployment

PRAGUE = ZoneInfo("Europe/Prague")


def _prague_offset(utc_reading: float) -> float:
    """Seconds Prague is ahead of UTC at the wall time that the UTC reading ``utc_reading`` came from."""
    wall = datetime.fromtimestamp(utc_reading, UTC).replace(tzinfo=None)
    return wall.replace(tzinfo=PRAGUE).utcoffset().total_seconds()


# ------------------------------------------------------------------------------ readers
def test_the_mt4_statement_read_in_prague_is_the_utc_reading_shifted_by_pragues_offset():
    path = require_data(MT4)
    utc, prague = load_trades(path), load_trades(path, tz="Europe/Prague")
    assert len(prague.trades) == len(utc.trades) == 1761
    by_ticket = {t.trade_id: t for t in utc.trades}
    shifts = set()
    for t in prague.trades:
        u = by_ticket[t.trade_id]
        offset = _prague_offset(u.open_ts)
        assert u.open_ts - t.open_ts == offset, t.trade_id
        assert u.close_ts - t.close_ts == _prague_offset(u.close_ts), t.trade_id
        assert (t.symbol, t.lots, t.open_price, t.profit) == (u.symbol, u.lots, u.open_price, u.profit)
        shifts.add(offset)
    assert shifts == {3600.0, 7200.0}  # 2019-04 .. 2020-05: summer (CEST) and winter (CET) time
    # worked example, ticket 10848455: opened 2019.04.04 11:56:57 broker time
    first = next(t for t in prague.trades if t.trade_id == "10848455")
    assert first.open_ts == datetime(2019, 4, 4, 9, 56, 57, tzinfo=UTC).timestamp()  # CEST, UTC+2
    assert by_ticket["10848455"].open_ts == datetime(2019, 4, 4, 11, 56, 57, tzinfo=UTC).timestamp()


def test_the_h1_bars_read_in_prague_are_shifted_like_the_trades():
    path = require_data(MT4)
    utc, prague = load_trades(path), load_trades(path, tz="Europe/Prague")
    start, end = utc.trades[0].open_ts + 2 * 86400, max(t.close_ts for t in utc.trades) - 2 * 86400
    # a bar's mark is at its close (open + 1 h): shift by the offset at the bar's own time
    expected = {(ts - _prague_offset(ts - 3600.0), symbol, price) for ts, symbol, price in utc.marks
                if start <= ts <= end and symbol != "USDJPY"}  # USDJPY marks are implied by the crosses
    assert len(expected) > 10_000
    assert expected <= set(prague.marks)


def test_the_fundingpips_reader_reads_its_times_in_the_zone_given(tmp_path: Path):
    # the header and first row of fundingpips-trades-short/test_task_trades_short.csv
    header = (",identifier,action,reason,open_price,close_price,commission,lot_size,opened_at,closed_at,pips,"
              "price_sl,price_tp,profit,swap,symbol,contract_size,profit_rate,platform,trading_account_login")
    row = ("0,44041186,0,16.0,3332.9,3332.88,-0.07,0.01,2025-05-05 23:41:50.000000,2025-05-06 00:00:10.000000,"
           "0.2,,,-0.09,0.0,XAUUSD,100.0,1.0,0,10452073")
    path = tmp_path / "trades.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    (utc,) = load_trades(path).trades
    (new_york,) = load_trades(path, tz="America/New_York").trades
    assert utc.open_ts == datetime(2025, 5, 5, 23, 41, 50, tzinfo=UTC).timestamp()
    # EDT, UTC−4: 23:41:50 in New York is 03:41:50 UTC the next day
    assert new_york.open_ts == datetime(2025, 5, 6, 3, 41, 50, tzinfo=UTC).timestamp()
    assert new_york.close_ts - utc.close_ts == 4 * 3600


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../etc/passwd", "UTC+2"])
def test_an_unknown_zone_is_a_value_error_naming_it(tmp_path: Path, tz):
    with pytest.raises(ValueError, match="unknown time zone") as caught:
        load_trades(tmp_path / "any.csv", tz=tz)
    assert repr(tz) in str(caught.value)


@pytest.mark.parametrize("command", ["replay", "run"])
def test_the_cli_refuses_an_unknown_zone_before_it_starts_anything(tmp_path: Path, command):
    path = tmp_path / "trades.csv"
    path.write_text("ticket,size_lots\n", encoding="utf-8")
    result = CliRunner().invoke(main, [command, str(path), "--tz", "Mars/Olympus"])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--tz': unknown time zone 'Mars/Olympus'" in result.output


@pytest.mark.parametrize("command", ["replay", "run"])
def test_the_cli_documents_tz(command):
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--tz TEXT" in result.output and "naive times" in result.output and "IANA" in result.output
    assert "[default: UTC]" in result.output


# ------------------------------------------------------------------------------ ISO timestamps on the wire
#: The first 300 trades (2019-04-04 .. 2019-05-27) on 200,000 JPY: the account breaches within
#: them and later orders are rejected, so every kind of answer is compared.
ISO_TRADES = 300
ISO_BALANCE = 200_000.0


def _replay(ray_session, timestamps: str) -> tuple[Any, dict[str, Any]]:
    tf = load_trades(require_data(MT4), limit=ISO_TRADES)

    async def after(client: httpx.AsyncClient) -> dict[str, Any]:
        r = await client.get(f"/v1/accounts/{tf.trades[0].account_id}/events", params={"limit": 2000})
        assert r.status_code == 200, r.text
        return r.json()

    # each run on its own deployment: the second does not see the first's account or marks
    return replay_on_fresh_deployment(ray_session, tf, ReplayOptions(
        plan="two_step_phase1", balance=ISO_BALANCE, currency="JPY", read_back=False, timestamps=timestamps),
        after=after)


def test_a_replay_sending_iso_timestamps_decides_exactly_as_with_epoch_seconds(ray_session):
    epoch, epoch_events = _replay(ray_session, "epoch")
    iso, iso_events = _replay(ray_session, "iso")
    # the replay is one that exercises everything compared below
    assert epoch.trades == iso.trades == ISO_TRADES
    assert epoch.decisions["accept"] > 0 and epoch.decisions["reject"] > 0
    assert epoch.breaches, "no breach in this replay: lower ISO_BALANCE so that breaches are compared too"
    assert len(epoch.closed_trades) == epoch.decisions["accept"] and not epoch.fill_errors

    assert iso.decisions == epoch.decisions and iso.reasons == epoch.reasons and iso.warnings == epoch.warnings
    assert (iso.fills, iso.marks_posted, iso.fill_errors) == (epoch.fills, epoch.marks_posted, epoch.fill_errors)
    assert iso.breaches == epoch.breaches  # code, limit, value, at, trading day
    assert iso.first_breach == epoch.first_breach
    assert iso.closed_trades == epoch.closed_trades  # realized P&L, open and close times, per ticket
    assert (iso.pnl_compared, iso.pnl_equal, dict(iso.mismatches)) == (epoch.pnl_compared, epoch.pnl_equal,
                                                                       dict(epoch.mismatches))
    assert iso.render() == epoch.render()
    # the account's whole history, every event with its time, is the same
    assert len(epoch_events["events"]) < 2000
    assert iso_events == epoch_events
