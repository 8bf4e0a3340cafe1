"""The node hosting a shard is removed from a ``ray.cluster_utils.Cluster`` (head + two
workers on this machine); its accounts come back on another node with their state.

The cluster runs in a child process (``node_loss_script.py``) because a process can be the
driver of one Ray only and this session's is the suite's local Ray. The child is stopped by
its own handle if it overruns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import new_storage_root, stop_process

SCRIPT = Path(__file__).with_name("node_loss_script.py")


@pytest.fixture(scope="module")
def outcome():
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, str(SCRIPT), new_storage_root()], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(SCRIPT.parent.parent.parent))
    try:
        out, err = proc.communicate(timeout=280)
    finally:
        stop_process(proc)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"exit {proc.returncode}\n{out[-2000:]}\n{err[-4000:]}"
    return json.loads(lines[-1])


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
