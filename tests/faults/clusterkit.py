"""Shared by the tests that run a ``ray.cluster_utils.Cluster`` in a child process
(``test_node_loss.py``, ``test_rebalance.py``) and by their scripts: running a script and reading
its JSON line, and seeding a deployment with accounts that hold a position."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run_script(name: str, storage_root: str, timeout: float) -> dict[str, Any]:
    """Run ``tests/faults/<name>`` with ``storage_root`` in its own process (a process drives one
    Ray only); return the last JSON line it printed. The child is stopped by its own handle if
    it overruns."""
    from tests.conftest import stop_process

    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, str(HERE / name), storage_root], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(HERE.parent.parent))
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"exit {proc.returncode}\n{out[-2000:]}\n{err[-4000:]}"
    return json.loads(lines[-1])


async def seed(service: Any, now: float, n: int = 24, drill: str = "drill") -> list[str]:
    """``n`` accounts ``acct-<i>`` of users ``u<i>``, each with a 0.1-lot EURUSD position, and
    user ``u1`` halted; returns the account ids."""
    ids = []
    await service.marks([{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "ts": now}])
    for i in range(n):
        spec = {"account_id": f"acct-{i}", "user_id": f"u{i}", "challenge_id": "ch", "currency": "USD",
                "initial_balance": 10_000.0, "plan": "moderate", "limits": {"max_orders_per_second": 1000}}
        await service.register(spec, now)
        order = {"order_id": f"o{i}", "account_id": spec["account_id"], "instrument": "EURUSD", "side": "buy",
                 "quantity": 0.1, "ts": now}
        assert (await service.check(order, now))["decision"] == "accept"
        await service.fill({"fill_id": f"f{i}", "order_id": f"o{i}", "account_id": spec["account_id"],
                            "instrument": "EURUSD", "side": "buy", "quantity": 0.1, "price": 1.1001, "ts": now}, now)
        ids.append(spec["account_id"])
    await service.set_kill_switch("user", "u1", "halt", drill, "ops", now)
    return ids
