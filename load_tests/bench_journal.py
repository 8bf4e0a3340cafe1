"""What the journal costs a pre-trade check: in-process, one host, the same orders.

Runs ``AccountHost.check_many`` with one order per call (the front's batch at low load: one
journal record and, under ``batch``, one fsync per check) for each configuration, alternating
the configurations round by round so machine noise hits all alike. Reports µs per check (median
over rounds) and the ratio to the memory-only host measured in the same process.

    .venv/bin/python load_tests/bench_journal.py [--checks 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskactors.actors.host import AccountHost
from riskactors.domain import default_plan_registry

T0 = 1_746_547_200.0  # 2025-05-06 16:00 UTC
CONFIGS = ["memory", "interval", "batch", "always"]


def _host(config: str, root: str) -> AccountHost:
    storage = None if config == "memory" else {"root": root, "fsync": config, "fsync_interval_seconds": 1.0,
                                               "snapshot_every_events": 10_000, "snapshot_every_seconds": 300.0}
    host = AccountHost("bench", {"storage": storage} if storage else {})
    limits = default_plan_registry().resolve("moderate", None, 100_000.0, {"max_orders_per_second": 1_000_000})[1]
    for i in range(8):
        host.register({"account_id": f"a{i}", "user_id": "u", "challenge_id": "c", "currency": "USD",
                       "initial_balance": 100_000.0, "plan": "moderate", "plan_version": 1,
                       "resolved_limits": limits.to_dict()}, [],
                      [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "ts": T0}], T0)
    return host


def _run(host: AccountHost, n: int, tag: str) -> float:
    orders = [{"order_id": f"{tag}-{k}", "account_id": f"a{k % 8}", "instrument": "EURUSD",
               "side": "buy" if k % 2 else "sell", "quantity": 0.01, "ts": T0 + k * 1e-3} for k in range(n)]
    started = time.perf_counter()
    for o in orders:
        host.check_many([o], [o["ts"]])
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checks", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp:
        hosts = {c: _host(c, f"{tmp}/{c}") for c in CONFIGS}
        samples: dict[str, list[float]] = {c: [] for c in CONFIGS}
        for r in range(args.rounds):
            for c in CONFIGS:
                samples[c].append(_run(hosts[c], args.checks, f"r{r}"))
    base = statistics.median(samples["memory"])
    print(f"{'storage':10} {'µs/check':>10} {'ratio':>7}   ({args.checks} checks x {args.rounds} rounds, one per call)")
    for c in CONFIGS:
        med = statistics.median(samples[c])
        print(f"{c:10} {med:10.1f} {med / base:7.2f}")


if __name__ == "__main__":
    main()
