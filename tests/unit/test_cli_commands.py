"""Commands without a cluster: ``riskactors rebalance`` (its flags reach the runtime, the moves
and the shards per node are printed, a refusal exits 1 naming the problem; the cluster side is
``tests/faults/test_rebalance.py``) and the replay's progress lines off a terminal."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

pytest.importorskip("ray")
from riskactors.actors import ray_runtime
from riskactors.cli import main


def test_rebalance_prints_each_move_and_the_shards_per_node(monkeypatch):
    seen = {}

    def fake(settings, drain):
        seen.update(address=settings.address, deployment=settings.deployment, drain=drain)
        return {"moves": [{"shard": "shard-2", "from": "node-a", "to": "node-c", "wanted": "node-c", "attempts": 1,
                           "seconds": 0.91}],
                "layout": {"shard-0": "node-a", "shard-1": "node-b", "shard-2": "node-c"}}

    monkeypatch.setattr(ray_runtime, "rebalance", fake)
    result = CliRunner().invoke(main, ["rebalance", "--address", "10.0.0.1:6379", "--deployment", "firm",
                                       "--drain", "node-x"])
    assert result.exit_code == 0, result.output
    assert seen == {"address": "10.0.0.1:6379", "deployment": "firm", "drain": "node-x"}
    assert "moved shard-2: node-a -> node-c (0.91 s)" in result.output
    assert "node node-c: 1 shards (shard-2)" in result.output
    assert result.output.strip().endswith("riskactors: 1 shards moved")


def test_rebalance_refused_names_the_problem(monkeypatch):
    def refuse(settings, drain):
        raise ValueError("--drain 'node-x': no live node has that id or address")

    monkeypatch.setattr(ray_runtime, "rebalance", refuse)
    result = CliRunner().invoke(main, ["rebalance", "--address", "10.0.0.1:6379", "--drain", "node-x"])
    assert result.exit_code == 1
    assert "no live node has that id or address" in result.output


def test_replay_progress_off_a_terminal_is_a_line_per_tenth_with_rate_and_time_left(capsys):
    from riskactors.cli import _progress

    with _progress("replay") as progress:
        for done in range(1, 101):
            progress(done, 100)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 11  # 1 %, then every tenth of the way
    assert lines[0].startswith("replay: 1/100 events (1 %), ")
    assert lines[-1].startswith("replay: 100/100 events (100 %), ") and lines[-1].endswith("0 s left")
    assert all("/s, " in line for line in lines)
