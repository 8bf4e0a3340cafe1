"""``riskactors rebalance`` on a ``ray.cluster_utils.Cluster`` (head + one worker, then a node
joins): 8 shards spread over the 3 nodes with every account identical, then a node is drained
and its shards move with their accounts intact; the front finds the moved shards by name.

The cluster runs in a child process (``rebalance_script.py``): a process can be the driver of
one Ray only. The child is stopped by its own handle if it overruns.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import new_storage_root
from tests.faults.clusterkit import run_script


@pytest.fixture(scope="module")
def outcome():
    return run_script("rebalance_script.py", new_storage_root(), timeout=400)


@pytest.mark.timeout(420)
def test_a_node_that_joined_gets_shards_and_every_account_is_identical(outcome):
    assert len(outcome["nodes_before"]) == 2
    layout = Counter(outcome["spread_layout"].values())
    assert len(layout) == 3 and sorted(layout.values()) == [2, 3, 3]
    new_node = next(n for n in layout if n not in outcome["nodes_before"])
    assert layout[new_node] >= 2
    # every shard landed on the node it was sent to (a soft affinity Ray honours: see _move)
    assert all(m["to"] == m["wanted"] for m in outcome["spread_moves"] + outcome["drain_moves"])
    assert outcome["equal_after_spread"] == sorted(outcome["accounts"])
    assert outcome["after_spread"]["decisions"] == ["accept", "reject"]  # u1 halted, the rest accepted


@pytest.mark.timeout(420)
def test_a_moved_shard_has_a_new_epoch_and_the_cluster_view_shows_it(outcome):
    cluster = outcome["after_spread"]["cluster"]
    moved = {m["shard"] for m in outcome["spread_moves"]}
    epochs = {h["host_id"]: h["epoch"] for h in cluster["hosts"]}
    for shard, before in outcome["epochs_before"].items():
        assert epochs[shard] > before if shard in moved else epochs[shard] == before, shard
    per_node = {n["node_id"]: sorted(n["hosts"]) for n in cluster["nodes"] if n["hosts"]}
    assert {shard: node for node, hosts in per_node.items() for shard in hosts} == outcome["spread_layout"]
    assert sum(h["accounts"] for h in cluster["hosts"]) == cluster["accounts"] == len(outcome["accounts"])


@pytest.mark.timeout(420)
def test_draining_a_node_moves_its_shards_with_their_accounts(outcome):
    drained = outcome["drained_node"]
    assert drained not in outcome["drain_layout"].values()
    assert {m["shard"] for m in outcome["drain_moves"]} == {
        s for s, n in outcome["spread_layout"].items() if n == drained}
    assert sorted(Counter(outcome["drain_layout"].values()).values()) == [4, 4]
    assert outcome["equal_after_drain"] == sorted(outcome["accounts"])
    assert outcome["after_drain"]["decisions"] == ["accept", "reject"]
