"""Many fronts on one deployment: the fronts hold nothing that matters.

- In-process: two independent ``RiskService`` objects (two apps) over the same actors. Concurrent
  checks through both never over-commit a limit (one writer per account), the cross-account
  hedging rule is decided in the host (every account of a user on one host), and an
  ``Idempotency-Key`` answer stored through one front is replayed through the other.
- ``serve --workers 2``: two front processes on one port, one deployment, merged metrics,
  SIGTERM stops them all and exits 0.
- A real cluster (``ray start --head``) with two ``serve --address`` fronts: SIGKILL of one
  loses nothing, and it attaches again on restart (no new shard instance).
- Two clusters on one storage root: the newer deployment fences the older one's hosts, which
  answer 503 and write nothing after the fence.

Every process is started here and stopped by its own handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.api.httpkit import Api, codes, fresh_ts
from tests.conftest import forget_ray_head, free_port, new_deployment_name, stop_process

BIN = Path(sys.executable).parent
RISKACTORS = str(BIN / "riskactors")
EURUSD = (1.10000, 1.10020)
XAUUSD = (2000.0, 2000.5)
N = 40  # concurrent checks
K = 5  # admitted by max_position_lots = K x 0.1 with 0.1-lot orders
LOT = 0.1
#: fields of an account view that move with the clock by themselves (not a change of the account)
TIME_FIELDS = ("as_of", "clock", "mark_age_seconds", "now")


# ------------------------------------------------------------------------------ helpers
def _timeless(value: Any) -> Any:
    """``value`` without the fields that move with the clock alone (at any depth)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in TIME_FIELDS}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _assert_k_of_n(decisions: list[dict[str, Any]], orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exactly K accepted, the others rejected with MAX_POSITION_SIZE only; returns the accepted."""
    assert sorted(d["order_id"] for d in decisions) == sorted(o["order_id"] for o in orders)
    accepted = [d for d in decisions if d["decision"] == "accept"]
    rejected = [d for d in decisions if d["decision"] == "reject"]
    assert len(accepted) == K and len(rejected) == N - K, [(d["decision"], codes(d["reasons"])) for d in decisions]
    for d in accepted:
        assert d["reasons"] == [], d
    for d in rejected:
        assert codes(d["reasons"]) == ["MAX_POSITION_SIZE"], d
        assert d["reasons"][0]["limit"] == pytest.approx(K * LOT)
        assert d["reasons"][0]["value"] == pytest.approx(K * LOT + LOT)
    return accepted


def _account_body(account_id: str, user_id: str, **limits: Any) -> dict[str, Any]:
    return {"account_id": account_id, "user_id": user_id, "challenge_id": "c", "currency": "USD",
            "initial_balance": 100_000.0, "plan": "moderate",
            "limits": {"max_orders_per_second": 10_000, **limits}}


def _order(order_id: str, account_id: str, side: str = "buy", quantity: float = LOT,
           instrument: str = "EURUSD") -> dict[str, Any]:
    return {"order_id": order_id, "account_id": account_id, "instrument": instrument, "side": side,
            "quantity": quantity, "ts": fresh_ts()}


def _marks(base: str, prices: dict[str, tuple[float, float]]) -> None:
    ts = time.time()
    r = httpx.post(base + "/v1/marks", json={"marks": [{"instrument": s, "bid": b, "ask": a, "ts": ts}
                                                        for s, (b, a) in prices.items()]}, timeout=30)
    assert r.status_code == 200 and r.json()["stale"] == 0, r.text


def _register(base: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(base + "/v1/accounts", json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def _check(base: str, order: dict[str, Any]) -> httpx.Response:
    return httpx.post(base + "/v1/orders/check", json=order, timeout=30)


def _view(base: str, account_id: str) -> dict[str, Any]:
    r = httpx.get(f"{base}/v1/accounts/{account_id}", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _burst(base: str, orders: list[dict[str, Any]]) -> list[httpx.Response]:
    """Every order checked at once over its own TCP connection."""

    async def run():
        async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=len(orders)),
                                     timeout=60) as client:
            return await asyncio.gather(*(client.post("/v1/orders/check", json=o) for o in orders))

    return asyncio.run(run())


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env.pop("RAY_ADDRESS", None)
    return env


class Server:
    """A ``riskactors serve`` subprocess whose output goes to a file (no pipe to fill)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, port: int):
        self.log = log
        self.base = f"http://127.0.0.1:{port}"
        self._out = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([RISKACTORS, "serve", "--port", str(port), *args], env=env,
                                     stdout=self._out, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"server exited early ({self.proc.returncode}): {self.output()[-3000:]}"
            try:
                if httpx.get(self.base + "/ready", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"server not ready in {timeout:g} s: {self.output()[-3000:]}"
            time.sleep(0.3)

    def stop(self) -> None:
        stop_process(self.proc)
        self._out.close()


def _print_logs(servers: list[Server]) -> None:
    """The tail of every server's output (shown by pytest with a failure)."""
    for s in servers:
        print(f"--- {s.log.name} (exit {s.proc.poll()})\n{s.output()[-4000:]}")


def _reap(processes: list[psutil.Process], timeout: float = 30.0) -> list[psutil.Process]:
    """Wait for processes the servers of this test spawned; kill (by pid handle) those that
    stay, and return them."""
    _, alive = psutil.wait_procs([p for p in processes if p.is_running()], timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return alive


def _epoch_files(root: Path) -> list[str]:
    """Every epoch file of the storage root (hosts, supervisor, ledger), relative to it."""
    return sorted(str(p.relative_to(root)) for p in root.glob("**/epoch/*"))


def _host_epochs(root: Path) -> dict[str, list[int]]:
    return {d.name: sorted(int(p.name) for p in (d / "epoch").iterdir()) for d in sorted((root / "hosts").iterdir())}


def _journal_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.glob("hosts/*/journal/*")) if p.is_file()}


# ============================================================== 1. two fronts, in-process
@pytest.fixture
async def two_fronts(fresh_deployment, uid):
    """(front 1, front 2): two :class:`Api` over two apps, each with its own ``RiskService``,
    over one sharded deployment's actors."""
    from api import create_app
    from riskactors.actors.ray_runtime import RayTransport
    from riskactors.actors.service import RiskService

    settings, runtime = fresh_deployment("sharded", shards=2)
    other = RiskService(RayTransport(settings.call_timeout_seconds, settings.deployment), runtime.supervisor,
                        runtime.shards, settings.placement, ledger=runtime.ledger)
    assert other is not runtime.service
    c1 = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, runtime.service)),
                           base_url="http://front-1.test", timeout=60)
    c2 = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, other)),
                           base_url="http://front-2.test", timeout=60)
    async with c1, c2:
        yield Api(c1, uid), Api(c2, uid)


@pytest.mark.anyio
async def test_40_concurrent_checks_alternating_over_two_fronts_accept_exactly_k(two_fronts):
    """max_position_lots = 0.5, 40 concurrent 0.1-lot buys alternating between two fronts:
    exactly 5 accepted (and reserved), 35 rejected with MAX_POSITION_SIZE; both fronts read
    the same reservations."""
    f1, f2 = two_fronts
    acct = f1.id("k")
    await f1.register("k", max_position_lots=round(K * LOT, 2), max_orders_per_second=10_000)
    await f1.marks({"EURUSD": EURUSD})
    orders = [f1.order(acct, "EURUSD", "buy", LOT) for _ in range(N)]
    fronts = [f1.client if i % 2 == 0 else f2.client for i in range(N)]
    responses = await asyncio.gather(*(c.post("/v1/orders/check", json=o) for c, o in zip(fronts, orders)))
    assert [r.status_code for r in responses] == [200] * N, [r.text for r in responses if r.status_code != 200]
    decisions = [r.json() for r in responses]
    accepted = _assert_k_of_n(decisions, orders)

    v1, v2 = await f1.view(acct), await f2.view(acct)
    for v in (v1, v2):
        assert sorted(r["order_id"] for r in v["reservations"]) == sorted(d["order_id"] for d in accepted)
        assert sum(r["quantity"] for r in v["reservations"]) == pytest.approx(K * LOT)
    assert await f1.state(acct) == await f2.state(acct)
    # the room is used up whichever front asks
    for api in (f1, f2):
        d = await api.check(acct, "EURUSD", "buy", LOT, order_id=f1.order_id())
        assert d["decision"] == "reject" and codes(d["reasons"]) == ["MAX_POSITION_SIZE"], d


@pytest.mark.anyio
async def test_hedging_across_accounts_is_decided_in_the_host_whichever_front_asks(two_fronts):
    """One user, two accounts, hedging_across_accounts = reject: A's long filled through front 1
    blocks B's sell through front 2; B's accepted, unfilled buy through front 2 blocks A's sell
    through front 1. Another user is not concerned."""
    f1, f2 = two_fronts
    a, b, other = f1.id("a"), f1.id("b"), f1.id("o")
    await f1.register("a", hedging_across_accounts="reject")
    await f1.register("b", hedging_across_accounts="reject")
    await f1.register("o", user="u2", hedging_across_accounts="reject")
    await f1.marks({"EURUSD": EURUSD, "XAUUSD": XAUUSD})

    # a filled long on A (front 1) -> B's short (front 2) is a hedge
    filled = await f1.trade(a, "EURUSD", "buy", 1.0, EURUSD[1])
    assert filled["position"]["quantity"] == pytest.approx(1.0)
    d = await f2.check(b, "EURUSD", "sell", 0.5, order_id=f1.order_id())
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["HEDGING_ACROSS_ACCOUNTS"], d
    msg = d["reasons"][0]["message"]
    assert a in msg and "EURUSD" in msg and f1.id("u1") in msg
    # the same direction is no hedge (then cancelled through the other front)
    same = await f2.check(b, "EURUSD", "buy", 0.1, order_id=f1.order_id())
    assert same["decision"] == "accept" and same["reasons"] == [], same
    r = await f1.client.post(f"/v1/orders/{same['order_id']}/cancel", json={})
    assert r.status_code == 200 and r.json()["released"] is True and r.json()["account_id"] == b, r.text

    # a pending (accepted, unfilled) opening buy on B (front 2) -> A's sell (front 1) is a hedge
    pending = await f2.check(b, "XAUUSD", "buy", 0.5, order_id=f1.order_id())
    assert pending["decision"] == "accept" and pending["reasons"] == [], pending
    assert [r["order_id"] for r in (await f1.view(b))["reservations"]] == [pending["order_id"]]
    d = await f1.check(a, "XAUUSD", "sell", 0.2)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["HEDGING_ACROSS_ACCOUNTS"], d
    assert b in d["reasons"][0]["message"] and "XAUUSD" in d["reasons"][0]["message"]
    # another user's account is not concerned, through either front
    for api in (f1, f2):
        d = await api.check(other, "XAUUSD", "sell", 0.1, order_id=f1.order_id())
        assert d["decision"] == "accept", d
    # B's order cancelled (front 1, which never saw it): nothing pending to hedge against
    r = await f1.client.post(f"/v1/orders/{pending['order_id']}/cancel", json={})
    assert r.status_code == 200 and r.json()["released"] is True, r.text
    d = await f1.check(a, "XAUUSD", "sell", 0.2)
    assert d["decision"] == "accept" and d["reasons"] == [], d


@pytest.mark.anyio
async def test_an_idempotency_key_answer_stored_through_one_front_is_replayed_through_the_other(two_fronts):
    """A keyed check and a keyed registration through front 1, repeated through front 2: the
    first answer byte for byte with ``Idempotent-Replayed: true``, nothing applied twice; the
    key with another body through front 2 is a 409 IDEMPOTENCY_KEY_REUSED."""
    f1, f2 = two_fronts
    # a keyed registration
    body = _account_body(f1.id("idem"), f1.id("u1"))
    key = f1.id("key-register")
    first = await f1.client.post("/v1/accounts", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await f2.client.post("/v1/accounts", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    clash = await f2.client.post("/v1/accounts", json={**body, "initial_balance": 5_000.0},
                                 headers={"Idempotency-Key": key})
    assert clash.status_code == 409, clash.text
    detail = clash.json()["detail"]
    assert detail["code"] == "IDEMPOTENCY_KEY_REUSED" and detail["subject"] == key
    assert detail["loc"] == ["header", "Idempotency-Key"]
    assert (await f2.view(body["account_id"]))["initial_balance"] == 100_000.0

    # a keyed check
    acct = body["account_id"]
    await f1.marks({"EURUSD": EURUSD})
    order = f1.order(acct, "EURUSD", "buy", 0.3)
    key = f1.id("key-check")
    first = await f1.client.post("/v1/orders/check", json=order, headers={"Idempotency-Key": key})
    assert first.status_code == 200 and first.json()["decision"] == "accept", first.text
    assert "idempotent-replayed" not in first.headers
    state = await f1.state(acct)
    again = await f2.client.post("/v1/orders/check", json=order, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    clash = await f2.client.post("/v1/orders/check", json={**order, "quantity": 0.4},
                                 headers={"Idempotency-Key": key})
    assert clash.status_code == 409, clash.text
    detail = clash.json()["detail"]
    assert detail["code"] == "IDEMPOTENCY_KEY_REUSED" and detail["subject"] == key
    assert await f2.state(acct) == state  # neither the repeat nor the clash changed anything
    assert [(r["order_id"], r["quantity"]) for r in (await f2.view(acct))["reservations"]] == [
        (order["order_id"], pytest.approx(0.3))]
    # each front counted what it answered
    m1, m2 = (await f1.client.get("/metrics")).text, (await f2.client.get("/metrics")).text
    assert "riskactors_idempotent_replays_total 0.0" in m1 and "riskactors_idempotent_replays_total 2.0" in m2
    assert "riskactors_idempotency_conflicts_total 2.0" in m2


# ============================================================== 2. serve --workers 2
def _metric_sum(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of the samples of ``name`` in a text exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            labels, value = line.rsplit(" ", 1)
            out[labels[len(name):]] = float(value)
    return out


def _checks_per_worker(directory: Path) -> dict[int, float]:
    """``{pid: order checks}`` from the counter files of prometheus-client's multiprocess mode."""
    from prometheus_client.mmap_dict import MmapedDict

    out: dict[int, float] = {}
    for f in directory.glob("counter_*.db"):
        pid = int(f.stem.split("_")[1])
        out[pid] = sum(value for key, value, *_ in MmapedDict.read_all_values_from_file(str(f))
                       if json.loads(key)[1] == "riskactors_order_checks_total")
    return out


def test_serve_with_two_workers_shares_one_deployment_and_stops_on_sigterm(tmp_path):
    """``serve --workers 2`` (embedded Ray): 40 concurrent checks over sockets to the shared port
    accept exactly 5; /metrics merges both workers (every check, by decision); SIGTERM to the
    parent stops everything, prints ``riskactors: stopped`` and exits 0."""
    port = free_port()
    env = _env(RISKACTORS_STORAGE_ROOT=str(tmp_path / "root"), RISKACTORS_DEPLOYMENT=new_deployment_name(),
               RISKACTORS_RESERVATION_TTL_SECONDS="3600")  # the 5 reservations hold while more checks come
    server = Server(["--workers", "2", "--shards", "2"], env, tmp_path / "serve.log", port)
    spawned: list[psutil.Process] = []
    try:
        server.wait_ready()
        base = server.base
        ready = httpx.get(base + "/ready").json()
        assert ready["status"] == "ready" and ready["hosts"] == 2, ready
        parent = psutil.Process(server.proc.pid)
        # two front processes besides the embedded Ray's (uvicorn's workers attach to it)
        deadline = time.monotonic() + 60
        while True:
            spawned = parent.children(recursive=True)
            fronts = [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]
            if len(fronts) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(fronts) == 2, [(p.pid, p.cmdline()) for p in parent.children()]
        # the shard actors run at the fronts' priority (Ray's default would be nice 15)
        shards = [p for p in parent.children(recursive=True) if "AccountHost" in " ".join(p.cmdline())]
        assert len(shards) == 2 and {p.nice() for p in shards} == {parent.nice()}, [
            (p.pid, p.nice(), p.cmdline()) for p in shards]

        _register(base, _account_body("w-k", "w-u", max_position_lots=round(K * LOT, 2)))
        _marks(base, {"EURUSD": EURUSD})
        orders = [_order(f"w-{i}", "w-k") for i in range(N)]
        responses = _burst(base, orders)
        assert [r.status_code for r in responses] == [200] * N, [r.text for r in responses if r.status_code != 200]
        accepted = _assert_k_of_n([r.json() for r in responses], orders)
        v = _view(base, "w-k")
        assert sorted(r["order_id"] for r in v["reservations"]) == sorted(d["order_id"] for d in accepted)

        # the scrape merges what each worker's counter file holds (prometheus multiprocess mode); the
        # kernel decides which worker accepts a connection, so send more (rejected) checks until
        # both have answered some
        metrics_dir = Path(fronts[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        sent = N
        while sum(1 for v in _checks_per_worker(metrics_dir).values() if v) < 2 and sent < N + 400:
            more = [_order(f"w-more-{sent + i}", "w-k") for i in range(20)]
            assert {r.json()["decision"] for r in _burst(base, more)} == {"reject"}
            sent += len(more)
        per_worker = _checks_per_worker(metrics_dir)
        assert set(per_worker) == {p.pid for p in fronts}, (per_worker, [p.pid for p in fronts])
        assert sum(per_worker.values()) == sent and all(per_worker.values()), per_worker
        checks = _metric_sum(httpx.get(base + "/metrics").text, "riskactors_order_checks_total")
        assert checks == {'{decision="accept"}': K, '{decision="reject"}': sent - K}, checks
        reasons = _metric_sum(httpx.get(base + "/metrics").text, "riskactors_reject_reasons_total")
        assert reasons == {'{code="MAX_POSITION_SIZE"}': sent - K}, reasons

        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=90) == 0, server.output()[-3000:]
        out = server.output()
        assert "riskactors: stopped" in out, out[-3000:]
        assert "workers=2" in out
    except BaseException:
        _print_logs([server])
        raise
    finally:
        server.stop()
    alive = _reap(spawned)
    assert not alive, f"left behind: {[p.pid for p in alive]}"


# ============================================================== 3. a cluster, two fronts, SIGKILL
_PING = """
import json, sys, ray
ray.init(address=sys.argv[1], namespace="riskactors", include_dashboard=False, log_to_driver=False,
         configure_logging=False)
out = {}
for name in sys.argv[3:]:
    p = ray.get(ray.get_actor(f"{sys.argv[2]}/{name}", namespace="riskactors").ping.remote(), timeout=60)
    out[name] = {"epoch": p["epoch"], "pid": p["pid"], "accounts": p["accounts"]}
print("PING " + json.dumps(out))
ray.shutdown()
"""


def _ping_shards(env: dict[str, str], address: str, deployment: str) -> dict[str, Any]:
    """Every shard's ``ping`` (epoch, pid, accounts), asked by a driver of its own."""
    done = subprocess.run([sys.executable, "-c", _PING, address, deployment, "shard-0", "shard-1"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("PING ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(lines[-1][5:])


def _timeless_state(base: str, account_id: str) -> dict[str, Any]:
    view = _timeless(_view(base, account_id))
    events = httpx.get(f"{base}/v1/accounts/{account_id}/events", params={"limit": 2000}, timeout=30)
    assert events.status_code == 200, events.text
    return {"view": view, "events": events.json()["events"]}


def test_two_fronts_on_a_cluster_survive_sigkill_of_one_and_it_attaches_again(tmp_path):
    """Head + two ``serve --address`` fronts on one deployment and root. Front 1 is SIGKILLed:
    front 2 keeps answering what was acknowledged; front 1 restarted attaches (same shard
    instances, same epochs, same actor count) and serves the same state."""
    ray_port, p1, p2 = free_port(), free_port(), free_port()
    root = tmp_path / "root"
    deployment = new_deployment_name()
    address = f"127.0.0.1:{ray_port}"
    env = _env(RAY_AUTH_MODE="token", RISKACTORS_STORAGE_ROOT=str(root), RISKACTORS_DEPLOYMENT=deployment)
    head = subprocess.Popen([str(BIN / "ray"), "start", "--head", f"--port={ray_port}", "--num-cpus=2",
                             "--include-dashboard=false", "--block"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers: list[Server] = []
    spawned: list[psutil.Process] = []
    try:
        time.sleep(3)
        assert head.poll() is None, "ray start --head exited"
        front1 = Server(["--address", address, "--shards", "2"], env, tmp_path / "front1.log", p1)
        servers.append(front1)
        front1.wait_ready()
        front2 = Server(["--address", address, "--shards", "2"], env, tmp_path / "front2.log", p2)
        servers.append(front2)
        front2.wait_ready()
        b1, b2 = front1.base, front2.base

        accounts = [f"cl-{i}" for i in range(4)]
        for i, acct in enumerate(accounts):  # registrations through both fronts
            _register(b1 if i % 2 == 0 else b2, _account_body(acct, f"cl-u{i}"))
        _marks(b2, {"EURUSD": EURUSD})
        acknowledged = []
        for i in range(8):
            base = b1 if i % 2 == 0 else b2
            r = _check(base, _order(f"cl-o{i}", accounts[i % 4], quantity=0.2))
            assert r.status_code == 200 and r.json()["decision"] == "accept", r.text
            acknowledged.append(r.json()["order_id"])
        fill = httpx.post(b1 + "/v1/fills", json={"fill_id": "cl-f0", "order_id": "cl-o0", "account_id": "cl-0",
                                                  "instrument": "EURUSD", "side": "buy", "quantity": 0.2,
                                                  "price": EURUSD[1], "ts": fresh_ts()}, timeout=30)
        assert fill.status_code == 200 and fill.json()["duplicate"] is False, fill.text
        before = {a: _timeless_state(b1, a) for a in accounts}
        assert {a: _timeless_state(b2, a) for a in accounts} == before
        epochs = _epoch_files(root)
        host_epochs = _host_epochs(root)
        assert set(host_epochs) == {"shard-0", "shard-1"} and all(e == [1] for e in host_epochs.values()), \
            host_epochs
        pings = _ping_shards(env, address, deployment)
        assert sum(p["accounts"] for p in pings.values()) == 4
        assert {n: p["epoch"] for n, p in pings.items()} == {"shard-0": 1, "shard-1": 1}

        # SIGKILL front 1: front 2 keeps answering, with everything acknowledged
        orphans = psutil.Process(front1.proc.pid).children(recursive=True)
        front1.proc.send_signal(signal.SIGKILL)
        assert front1.proc.wait(timeout=30) == -signal.SIGKILL
        assert not _reap(orphans, timeout=10), "front 1 left processes behind"
        assert {a: _timeless_state(b2, a) for a in accounts} == before
        r = _check(b2, _order("cl-after", "cl-1", quantity=0.1))
        assert r.status_code == 200 and r.json()["decision"] == "accept", r.text
        r = httpx.post(b2 + "/v1/orders/cl-o2/cancel", json={}, timeout=30)  # checked through front 1
        assert r.status_code == 200 and r.json()["released"] is True and r.json()["account_id"] == "cl-2", r.text
        after_kill = {a: _timeless_state(b2, a) for a in accounts}
        assert httpx.get(b2 + "/ready").json()["hosts"] == 2

        # front 1 again on P1: attaches, no new shard instance, the same state
        front1.stop()
        front1 = Server(["--address", address, "--shards", "2"], env, tmp_path / "front1-again.log", p1)
        servers.append(front1)
        front1.wait_ready()
        assert httpx.get(b1 + "/ready").json()["hosts"] == 2
        assert _epoch_files(root) == epochs
        assert _host_epochs(root) == host_epochs
        assert _ping_shards(env, address, deployment) == pings  # the same instances (pid, epoch)
        assert {a: _timeless_state(b1, a) for a in accounts} == after_kill
        assert {a: _timeless_state(b2, a) for a in accounts} == after_kill
        r = _check(b1, _order("cl-again", "cl-3", quantity=0.1))
        assert r.status_code == 200 and r.json()["decision"] == "accept", r.text

        for s in servers:
            if s.proc.poll() is None:
                spawned += psutil.Process(s.proc.pid).children(recursive=True)
            s.stop()
        removed = subprocess.run([RISKACTORS, "down", "--address", address], env=env, capture_output=True,
                                 text=True, timeout=120, check=False)
        assert removed.returncode == 0 and "removed (4 actors)" in removed.stdout, removed.stdout + removed.stderr
        spawned += psutil.Process(head.pid).children(recursive=True)
    except BaseException:
        _print_logs(servers)
        raise
    finally:
        for s in servers:
            s.stop()
        stop_process(head)
        forget_ray_head(ray_port)
    alive = _reap(spawned, timeout=60)
    assert not alive, f"left behind: {[p.pid for p in alive]}"


# ============================================================== 4. two clusters, one root: fencing
def test_a_second_cluster_on_the_same_root_fences_the_first(tmp_path):
    """Embedded front A on root R; a second embedded front B (its own Ray) on R with the same
    deployment name: B recovers A's account, A's (fenced) shard answers 503 and writes no frame
    after the fence, B accepts checks."""
    root = tmp_path / "root"
    deployment = new_deployment_name()
    # reservations outlive the test: no expiry frame is journaled by A's ticks meanwhile
    env = _env(RISKACTORS_STORAGE_ROOT=str(root), RISKACTORS_DEPLOYMENT=deployment,
               RISKACTORS_RESERVATION_TTL_SECONDS="3600")
    pa, pb = free_port(), free_port()
    servers: list[Server] = []
    spawned: list[psutil.Process] = []
    try:
        a = Server(["--shards", "1"], env, tmp_path / "a.log", pa)
        servers.append(a)
        a.wait_ready()
        _register(a.base, _account_body("fx-1", "fx-u"))
        _marks(a.base, {"EURUSD": EURUSD})
        r = _check(a.base, _order("fx-o1", "fx-1", quantity=0.3))
        assert r.status_code == 200 and r.json()["decision"] == "accept", r.text
        seen_by_a = _view(a.base, "fx-1")
        assert [x["order_id"] for x in seen_by_a["reservations"]] == ["fx-o1"]
        journals = _journal_bytes(root)
        assert journals and any(len(b) for b in journals.values()), sorted(journals)
        assert _host_epochs(root) == {"shard-0": [1]}

        b = Server(["--shards", "1"], env, tmp_path / "b.log", pb)
        servers.append(b)
        b.wait_ready()
        assert _host_epochs(root) == {"shard-0": [1, 2]}
        seen_by_b = _view(b.base, "fx-1")
        assert _timeless(seen_by_b) == _timeless(seen_by_a)

        # A's shard is fenced: fail closed, for a check and for a read
        r = _check(a.base, _order("fx-o2", "fx-1", quantity=0.1))
        assert r.status_code == 503, r.text
        d = r.json()
        assert d["decision"] == "reject" and codes(d["reasons"]) == ["SERVICE_UNAVAILABLE"], d
        assert "fenced" in d["reasons"][0]["message"], d
        r = httpx.get(a.base + "/v1/accounts/fx-1", timeout=30)
        assert r.status_code == 503 and r.json()["detail"]["code"] == "SERVICE_UNAVAILABLE", r.text
        # ... and wrote nothing after the fence: A's files are byte for byte what they were
        now = _journal_bytes(root)
        for path, data in journals.items():
            assert path in now, f"{path} of A disappeared"
            assert now[path] == data, f"{path}: A wrote after the fence ({len(data)} -> {len(now[path])} bytes)"

        # B holds the journal: it accepts, and it has A's reservation
        r = _check(b.base, _order("fx-o3", "fx-1", quantity=0.1))
        assert r.status_code == 200 and r.json()["decision"] == "accept", r.text
        v = _view(b.base, "fx-1")
        assert sorted(x["order_id"] for x in v["reservations"]) == ["fx-o1", "fx-o3"]
        for path, data in journals.items():  # B writes only in segments of its own
            assert (root / path).read_bytes() == data, path
        for s in servers:
            spawned += psutil.Process(s.proc.pid).children(recursive=True)
    except BaseException:
        _print_logs(servers)
        raise
    finally:
        for s in reversed(servers):
            s.stop()
    alive = _reap(spawned, timeout=60)
    assert not alive, f"left behind: {[p.pid for p in alive]}"

