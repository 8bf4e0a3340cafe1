"""Run by ``test_rebalance.py`` in its own process (a Ray cluster needs its own driver).

A ``ray.cluster_utils.Cluster``: a head and one worker node on this machine, a deployment of 8
shards journaling to one storage root. Accounts get state (positions, a kill switch); a node
joins; ``rebalance`` spreads the shards over the 3 nodes; then one node is drained. After each
step every account's state is compared with the one before, a check goes through the front
(which finds the moved shards by name), and ``service.cluster()`` is read. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


def main(storage_root: str) -> None:
    import ray
    from clusterkit import seed  # beside this script (its directory is on sys.path)
    from ray.cluster_utils import Cluster

    from riskactors.actors import ray_runtime
    from riskactors.settings import Settings

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="riskactors", include_dashboard=False, log_to_driver=False)
    settings = Settings(address=cluster.address, shards=8, call_timeout_seconds=60.0, storage_root=storage_root,
                        deployment="rebalance")
    runtime = ray_runtime.start(settings)
    service = runtime.service
    now = time.time()
    out: dict = {}
    try:

        def states() -> dict:
            return {s["account_id"]: s for part in ray.get([h.states.remote(None) for h in runtime.shard_actors()])
                    for s in part}

        async def after_move(tag: str) -> dict:
            checks = [await service.check({"order_id": f"{tag}-{a}", "account_id": a, "instrument": "EURUSD",
                                           "side": "buy", "quantity": 0.1, "ts": now + 1}, now + 1) for a in ids]
            await asyncio.gather(*(service.cancel(f"{tag}-{a}", a, now + 2) for a in ids))
            return {"decisions": sorted({c["decision"] for c in checks}), "cluster": await service.cluster()}

        ids = asyncio.run(seed(service, now, drill="rebalance drill"))
        before = states()
        out["nodes_before"] = sorted({h["node_id"] for h in asyncio.run(service.cluster())["hosts"]})
        out["epochs_before"] = {h["host_id"]: h["epoch"] for h in asyncio.run(service.cluster())["hosts"]}
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        spread = ray_runtime.rebalance(settings)
        out["spread_moves"] = spread["moves"]
        out["spread_layout"] = spread["layout"]
        middle = states()
        out["equal_after_spread"] = sorted(a for a in ids if before[a] == middle[a])
        seen = asyncio.run(after_move("spread"))
        out["after_spread"] = seen
        base = states()
        drain = next(n for n in sorted(set(spread["layout"].values())) if n != out["nodes_before"][0])
        drained = ray_runtime.rebalance(settings, drain)
        out["drained_node"] = drain
        out["drain_moves"] = drained["moves"]
        out["drain_layout"] = drained["layout"]
        last = states()
        out["equal_after_drain"] = sorted(a for a in ids if base[a] == last[a])
        out["after_drain"] = asyncio.run(after_move("drain"))
        out["accounts"] = ids
        print(json.dumps(out))
    finally:
        ray_runtime.down(settings)
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
