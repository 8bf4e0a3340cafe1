"""``load_tests/scale.py`` at a tiny size: the code path of the scale table (a real ``riskactors
serve`` with API keys and a durable storage root, batch registration and fills, views, marks, the
firm kill switch, a breaching mark, a restart), with assertions on what the run did, never on
how long it took (benchmarks live in ``load_tests/``). ``--columnar-from 4``: the hosts value
the marks' holders in columnar blocks, as at 100,000 accounts."""

from __future__ import annotations

import json

from load_tests import scale

N = 40


def test_scale_run_of_40_accounts_registers_fills_fails_each_once_and_restarts_with_every_account(tmp_path):
    args = scale.parse_args(["--accounts", str(N), "--shards", "2", "--repeat", "3", "--no-wrk", "--columnar-from", "4",
                             "--quiet-wait", "0", "--storage", str(tmp_path / "storage"),
                             "--results", str(tmp_path / "results")])
    report = scale.run(args)

    assert report["complete"], report["error"]
    (size,) = report["sizes"]
    assert "error" not in size and not size.get("errors"), (size.get("error"), size.get("errors"))
    # every registration item answered 201, every fill applied once
    assert size["register"]["item_statuses"] == {201: N}
    assert size["fills"]["item_statuses"] == {200: N} and size["fills"]["duplicates"] == 0
    assert size["fills"]["breaches"] == 0
    # the reads and the small moves saw every account and breached nothing
    assert size["firm_view"]["accounts"] == N and size["firm_view"]["accounts_by_status"]["active"] == N
    assert size["challenge_view"]["accounts"] == N // scale.CHALLENGES
    assert size["mark_held"]["applied"] == 3 and size["mark_held"]["breach_count"] == 0
    assert size["mark_unheld"]["applied"] == 3 and size["mark_unheld"]["breach_count"] == 0
    assert size["kill_switch"]["activate"]["statuses"] == {200: 3}
    assert size["kill_switch"]["release"]["statuses"] == {200: 3}
    assert size["wrk"] == {"skipped": "--no-wrk"}
    # the breaching mark fails each account once, on its daily loss
    breach = size["breach_mark"]
    assert breach["status"] == 200 and breach["breach_count"] == N
    assert breach["breaches_by_code"] == {"DAILY_LOSS_LIMIT": N}
    # stopped by SIGTERM, started again on the same root: ready, every account there and failed
    assert size["stop"]["how"] == "terminated" and size["stop"]["left_after_grace_killed"] == []
    assert size["restart_s"] > 0
    after = size["firm_view_restarted"]
    assert after["statuses"] == {200: 1} and after["accounts"] == N
    assert after["accounts_by_status"]["failed"] == N
    assert size["stop_final"]["how"] == "terminated" and size["stop_final"]["left_after_grace_killed"] == []
    assert size["checks"] and all(size["checks"].values()), size["checks"]
    # the report: JSON and the Markdown table
    (written,) = (tmp_path / "results").glob("scale-*.json")
    assert json.loads(written.read_text())["sizes"][0]["accounts"] == N
    table = written.with_suffix(".md").read_text()
    assert "GET /v1/risk/firm" in table and "restart to ready" in table
