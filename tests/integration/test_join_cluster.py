"""``riskactors serve --address`` joins an existing Ray cluster (here a head started with
``ray start --head --block`` on this machine), as ``cluster/README.md`` describes. Both
processes are stopped by their own handles and must leave nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.conftest import forget_ray_head, free_port, stop_process, wait_ready

BIN = Path(sys.executable).parent


def test_serve_joins_an_existing_ray_cluster_with_token_auth():
    """The first front creates the deployment's actors, a second attaches to them and keeps
    answering when the first stops, one with another shard count is refused, and
    `riskactors down` removes the actors."""
    ray_port, http_port = free_port(), free_port()
    env = dict(os.environ, RAY_AUTH_MODE="token")  # Ray ≥ 2.59: the same mode on every node and driver
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen([str(BIN / "ray"), "start", "--head", f"--port={ray_port}", "--num-cpus=1",
                             "--include-dashboard=false", "--block"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    serve = None
    spawned: list[psutil.Process] = []
    try:
        time.sleep(3)
        serve = subprocess.Popen([str(BIN / "riskactors"), "serve", "--address", f"127.0.0.1:{ray_port}",
                                  "--port", str(http_port), "--shards", "2"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        base = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 120
        while True:
            assert serve.poll() is None, serve.stdout.read()[-3000:]
            try:
                if httpx.get(base + "/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                serve.terminate()
                raise AssertionError(f"serve did not join the cluster in 120 s: {serve.communicate()[0][-3000:]}")
            time.sleep(0.5)
        ready = httpx.get(base + "/ready").json()
        assert ready["placement"] == "sharded" and ready["hosts"] == 2
        r = httpx.post(base + "/v1/accounts", json={"account_id": "join-1", "user_id": "u", "challenge_id": "c",
                                                    "currency": "USD", "initial_balance": 10_000, "plan": "moderate"})
        assert r.status_code == 201
        # the shard actors live in the head's cluster, not under the serve process
        head_tree = psutil.Process(head.pid).children(recursive=True)
        assert any("AccountHost" in " ".join(p.cmdline()) for p in head_tree if p.is_running())
        spawned = head_tree + psutil.Process(serve.pid).children(recursive=True)

        # a second front attaches to the same deployment; the first stops, the actors stay
        second_port = free_port()
        second = subprocess.Popen([str(BIN / "riskactors"), "serve", "--address", f"127.0.0.1:{ray_port}",
                                   "--port", str(second_port), "--shards", "2"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            other = f"http://127.0.0.1:{second_port}"
            wait_ready(second, other)
            stop_process(serve)
            serve = None
            view = httpx.get(other + "/v1/accounts/join-1", timeout=30)
            assert view.status_code == 200 and view.json()["account_id"] == "join-1", view.text
            assert httpx.get(other + "/ready").json()["hosts"] == 2  # no second set of shards
        finally:
            stop_process(second)
        refused = subprocess.run([str(BIN / "riskactors"), "serve", "--address", f"127.0.0.1:{ray_port}",
                                  "--port", str(free_port()), "--shards", "3"],
                                 env=env, capture_output=True, text=True, timeout=120, check=False)
        assert refused.returncode != 0 and "shards=2" in refused.stdout + refused.stderr
        removed = subprocess.run([str(BIN / "riskactors"), "down", "--address", f"127.0.0.1:{ray_port}"],
                                 env=env, capture_output=True, text=True, timeout=120, check=False)
        assert removed.returncode == 0 and "removed (4 actors)" in removed.stdout, removed.stdout + removed.stderr
    finally:
        if serve is not None:
            stop_process(serve)
        stop_process(head)
        forget_ray_head(ray_port)
    _, alive = psutil.wait_procs([p for p in spawned if p.is_running()], timeout=60)
    assert not alive, f"left behind: {[(p.pid, p.name()) for p in alive]}"
