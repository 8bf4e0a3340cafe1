"""Run by ``test_node_loss.py`` in its own process (a Ray cluster needs its own driver).

A ``ray.cluster_utils.Cluster`` with a head and two worker nodes on this machine; the server's
actors spread over them, journaling to one storage root all nodes reach. Accounts get state;
the worker node hosting a shard is removed; the script then reads every account back through
the front (which retries while Ray restarts the actor elsewhere) and prints one JSON line:
states before and after, and the shard's node before and after.
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
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="riskactors", include_dashboard=False, log_to_driver=False)
    runtime = None
    try:
        settings = Settings(address=cluster.address, shards=4, call_timeout_seconds=120.0, storage_root=storage_root)
        runtime = ray_runtime.start(settings)
        service = runtime.service
        worker_ids = {w.node_id for w in workers}
        pings = ray.get([s.ping.remote() for s in runtime.shard_actors()])
        victim = next((i for i, p in enumerate(pings) if p["node_id"] in worker_ids), None)
        if victim is None:
            raise SystemExit(json.dumps({"error": "no shard on a worker node", "pings": pings}))
        now = time.time()


        ids = asyncio.run(seed(service, now, drill="node-loss drill"))
        on_victim = {s["account_id"] for s in ray.get(runtime.shard_actors()[victim].states.remote(None))}
        before = {s["account_id"]: s for part in ray.get([h.states.remote(None) for h in runtime.shard_actors()])
                  for s in part}
        node = next(w for w in workers if w.node_id == pings[victim]["node_id"])
        removed_at = time.monotonic()
        cluster.remove_node(node)

        async def read_back() -> dict:
            views = await asyncio.gather(*(service.view(a, now) for a in ids))
            return {v["account_id"]: v for v in views}

        views = asyncio.run(read_back())
        back_after = time.monotonic() - removed_at
        after = {s["account_id"]: s for part in ray.get([h.states.remote(None) for h in runtime.shard_actors()])
                 for s in part}
        ping = ray.get(runtime.shard_actors()[victim].ping.remote())
        print(json.dumps({"victim": victim, "victim_node": pings[victim]["node_id"], "node_after": ping["node_id"],
                          "recovery": ping["recovery"], "on_victim": sorted(on_victim),
                          "seconds_to_answer": back_after, "equal": sorted(a for a in ids if before[a] == after[a]),
                          "accounts": len(ids), "views": {a: {"balance": v["balance"], "positions": len(v["positions"]),
                                                              "kill_switch": v["kill_switch"]["mode"]}
                                                          for a, v in views.items()}}))
    finally:
        if runtime is not None:
            runtime.shutdown()
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
