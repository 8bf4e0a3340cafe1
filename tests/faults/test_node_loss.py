"""The node hosting a shard is removed from a ``ray.cluster_utils.Cluster`` (head + two
workers on this machine); its accounts come back on another node with their state.

The cluster runs in a child process (``node_loss_script.py``) because a process can be the
driver of one Ray only and this session's is the suite's local Ray. The child is stopped by
its own handle if it overruns.
"""

from __future__ import annotations

import pytest

from tests.conftest import new_storage_root
from tests.faults.clusterkit import run_script


@pytest.fixture(scope="module")
def outcome():
    return run_script("node_loss_script.py", new_storage_root(), timeout=280)


@pytest.mark.timeout(300)
def test_the_shard_restarted_on_another_node(outcome):
    assert outcome["node_after"] != outcome["victim_node"]
    assert outcome["recovery"]["replayed"] > 0 or outcome["recovery"]["snapshot_seq"] is not None


@pytest.mark.timeout(300)
def test_its_accounts_came_back_with_their_state(outcome):
    assert outcome["on_victim"], "the removed node hosted no account"
    assert outcome["equal"] == sorted(outcome["views"])  # every account, moved or not, unchanged
    for account_id, view in outcome["views"].items():
        assert view["positions"] == 1
        assert view["kill_switch"] == ("halt" if account_id == "acct-1" else None)  # user u1 halted
