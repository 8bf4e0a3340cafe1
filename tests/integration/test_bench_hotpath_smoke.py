"""``load_tests/bench_hotpath.py`` with tiny settings: every measurement of the hot-path report
runs (bare and real server under wrk at 32, 4 and 1 connections, fsync, the in-process host with
and without its journal, a raw Ray round trip in a subprocess) and the report has every section,
with assertions on its structure and on what the run did, never on how long it took (the
benchmark itself lives in ``load_tests/``)."""

from __future__ import annotations

import json
import numbers
import shutil
from pathlib import Path

import pytest

from load_tests import bench_hotpath

CALLS = 50
ACCOUNTS = 8

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (apt-get install -y wrk)")


def _number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


@pytest.mark.timeout(180)
def test_hotpath_report_has_every_section_measured_and_stops_what_it_started(tmp_path):
    args = bench_hotpath.parse_args([
        "--duration", "1", "--connections", "32,4,1", "--rounds", "1", "--accounts", str(ACCOUNTS),
        "--calls", str(CALLS), "--warmup-calls", "5", "--warmup", "10", "--warmup-seconds", "0",
        "--quiet-wait", "0", "--storage-parent", str(tmp_path), "--results", str(tmp_path / "results")])
    report = bench_hotpath.run(args)

    assert report["complete"], (report["error"], report["errors"])
    # HTTP: one baseline and one server run per connection count, every check answered 200
    runs = report["http"]["runs"]
    assert [(r["connections"], r["target"]) for r in runs] == [
        (c, t) for c in (32, 4, 1) for t in ("baseline", "server")]
    for r in runs:
        assert r["requests"] > 0 and r["rps"] > 0, r
        assert r["non_2xx"] == 0 and r["socket_errors"] == 0, r
        assert r["decisions"]["accept"] > 0 and r["decisions"]["non_200"] == 0, r
        assert all(_number(r[k]) for k in ("p50_ms", "p99_ms")), r  # latencies are reported, never judged here
    summary = report["http"]["summary"]
    assert set(summary) == {"32", "4", "1"}
    for level in summary.values():
        assert level["baseline"]["runs"] == level["server"]["runs"] == 1
        assert _number(level["rps_ratio"]) and level["rps_ratio"] > 0 and len(level["rps_ratio_per_round"]) == 1
        for target in ("baseline", "server"):  # CPU per check: the front (or bare app) and the rest
            cpu = level[target]["cpu_us_per_check"]
            assert set(cpu) == {"main", "rest", "load_generator"} and cpu["main"] > 0, (target, cpu)
        assert level["server"]["cpu_us_per_check"]["rest"] > 0  # the hosts did the checks
    # the micro-measurements: each with its calls and its percentiles
    for name in ("ray_hop", "link_hop", "fsync", "check"):
        m = report[name]
        assert m["calls"] == CALLS, (name, m)
        assert all(_number(m[k]) for k in ("p50_us", "p99_us", "max_us")), (name, m)
    assert report["fsync"]["bytes"] == 200
    assert Path(report["fsync"]["folder"]).is_relative_to(Path(report["setup"]["storage_root"]))
    assert report["check"]["decisions"] == {"accept": CALLS}
    journal = report["journal"]
    assert journal["calls"] == CALLS and journal["with_storage"]["decisions"] == {"accept": CALLS}
    assert _number(journal["p50_us"]) and _number(journal["p99_us"])
    assert report["ray_hop"]["stopped"]["left_after_grace_killed"] == []
    # the three targets, each decided
    assert len(report["targets"]) == 3
    assert all(t["result"] in ("PASS", "FAIL") and _number(t["value"]) for t in report["targets"]), report["targets"]
    # the budget: front, link hop, check, journal; each a number, marked when below zero
    rows = report["budget"]["rows"]
    assert [r["part"] for r in rows] == ["front", "link hop", "check", "journal"]
    for r in rows:
        for q in ("p50_us", "p99_us"):
            assert _number(r[q]), r
            assert r[q] >= 0 or "below zero" in r.get("note", ""), r
    assert all(_number(report["budget"]["total"][q]) and report["budget"]["total"][q] > 0 for q in ("p50_us", "p99_us"))
    # every server stopped through its handle, nothing of its tree left; the temporary root removed
    assert report["stopped"]["baseline"] == "terminated"
    assert report["stopped"]["server"]["how"] == "terminated"
    assert report["stopped"]["server"]["left_after_grace_killed"] == []
    assert not Path(report["setup"]["storage_root"]).exists()
    # JSON and Markdown written
    (written,) = (tmp_path / "results").glob("hotpath-*.json")
    assert json.loads(written.read_text())["budget"]["rows"][0]["part"] == "front"
    md = written.with_suffix(".md").read_text()
    assert "latency budget" in md and "targets of issue 11" in md
