"""``load_tests/bench_snapshots.py`` with tiny settings: both servers start, load their accounts,
take turns under wrk, the one that snapshots is seen writing snapshots and the other not, every
check is answered 200, the report has its runs, medians and target line, and both servers are
stopped through their handles. Nothing here judges a latency (the benchmark lives in
``load_tests/``)."""

from __future__ import annotations

import shutil

import pytest

from load_tests import bench_snapshots

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (apt-get install -y wrk)")


@pytest.mark.timeout(240)
def test_snapshot_benchmark_alternates_the_servers_and_sees_the_snapshots(tmp_path):
    args = bench_snapshots.parse_args(["--accounts", "40", "--every", "20", "--rounds", "1", "--duration", "2",
                                       "--results", str(tmp_path)])
    report = bench_snapshots.run(args)

    assert [(r["server"], r["round"]) for r in report["runs"]] == [("none", 0), ("every", 0)]
    for r in report["runs"]:
        assert r["requests"] > 0 and r["non_200"] == 0 and r["failures"] == 0, r
        assert r["decisions"]["accept"] > 0, r
    by = {r["server"]: r for r in report["runs"]}
    assert by["none"]["snapshots"] == 0
    assert by["every"]["snapshots"] >= 1
    assert set(report["summary"]) == {"none", "every"}
    assert report["target"].startswith(("PASS", "FAIL")) and "back to back" in report["target"]
    assert report["stopped"] == {"none": "terminated", "every": "terminated"}
    assert (tmp_path / f"snapshots-{report['date']}.md").read_text().count("| none |") == 1
