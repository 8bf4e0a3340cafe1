"""The hot path of issue 11 §3: the pre-trade check against the HTTP limit, in one run.

One entry point (``make bench-hotpath``)::

    .venv/bin/python load_tests/bench_hotpath.py [--duration 15] [--rounds 1] [--calls 2000]

It measures, on this machine and in this order:

1. **HTTP, bare and server.** ``baseline_app.py`` under uvicorn (the bare FastAPI endpoint of the
   same shape) and ``riskactors serve`` (embedded Ray, 2 shards, the default durable journal on a
   temporary storage root), both started as ``run_bench.py`` starts them. For 32, 4 and 1 wrk
   connections (``--connections``), closed loop, ``--duration`` s each, ``wrk_check.lua``:
   checks/s, p50 and p99. Baseline and server alternate, ``--rounds`` times per connection
   count (baseline, server, baseline, server…). Every server run gets ``--accounts`` (128) fresh
   accounts and a EURUSD mark first. The servers are then stopped through their Popen handles.
2. **fsync** on the storage root's disk, in the folder the server's hosts journalled to: 200 bytes
   appended and ``os.fsync``, ``--calls`` times.
3. **The host's own check** (``riskactors.actors.AccountHost`` in this process, no storage, 64
   accounts and a EURUSD mark, as one shard of the server holds): ``check_many([order], [now])``
   one call after the other.
4. **The journal's cost per call:** the same calls on a second host with the server's default
   durable storage (``fsync`` ``batch``: one record and one fsync per call) on the same disk, calls
   alternating with the memory-only host; journal = with storage − without, at p50 and at p99.
5. **One raw Ray round trip from asyncio**, in a subprocess of its own: a local Ray
   (``num_cpus=2``, dashboard off), one actor with a no-op method taking a small dict, ``--calls``
   sequential ``await actor.noop.remote(order)``; then the same over the host link (the checks'
   path, ``riskactors/actors/hostlink.py``) to a second actor's link server: ``--calls``
   sequential no-op ``check_many`` calls. That process ends its Ray with ``ray.shutdown()``.

It prints the runs, the three targets of the issue with PASS/FAIL (throughput at 32 connections
≥ 0.8× bare; at 1 connection server p50 ≤ bare p50 + Ray round trip p50 + fsync p50 + 0.3 ms; p99 at
4 connections < 10 ms) and the latency budget in µs at p50 and p99: front (the server at 1
connection minus the three other parts), link hop, check, journal. It writes the same to
``load_tests/results/hotpath-<UTC stamp>.json`` and ``.md`` (git-ignored), with the logs in
``load_tests/results/hotpath-<stamp>/``.

Every process it starts is stopped through its Popen handle (SIGTERM, wait, SIGKILL), also on an
error, Ctrl-C or SIGTERM; a process of a server's tree still alive after that is killed by PID and
listed in the JSON. The helpers (ports, the server process, readiness, set-up, wrk, quiet-wait)
come from ``run_bench.py`` and ``bench_fronts.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fronts as bf  # after the path insert; both re-execute under the project venv if needed
import run_bench as rb

psutil = rb.psutil

__all__ = ["main", "parse_args", "run"]

ROOT, HERE, RESULTS, HOST = rb.ROOT, rb.HERE, rb.RESULTS, rb.HOST
#: Targets of issue 11 §3.
THROUGHPUT_RATIO = 0.8
SLACK_US = 300.0
P99_LIMIT_MS = 10.0
FSYNC_BYTES = 200
#: Accounts per in-process host: one shard's share of the server's 128 accounts over 2 shards.
HOST_ACCOUNTS = 64
LEVEL_FOR = {"throughput": 32, "p50": 1, "p99": 4}


# --------------------------------------------------------------------------- figures
def percentiles(samples_ns: list[int]) -> dict[str, Any]:
    """Count, p50, p99, mean and max of durations in ns, in µs (nearest-rank percentiles).

    Parameters
    ----------
    samples_ns : list of int
        Durations in nanoseconds.

    Returns
    -------
    dict
        ``calls``, ``p50_us``, ``p99_us``, ``mean_us``, ``max_us`` (``None`` figures when empty).
    """
    if not samples_ns:
        return {"calls": 0, "p50_us": None, "p99_us": None, "mean_us": None, "max_us": None}
    s = sorted(samples_ns)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))] / 1000

    return {"calls": len(s), "p50_us": round(rank(50), 1), "p99_us": round(rank(99), 1),
            "mean_us": round(statistics.fmean(s) / 1000, 1), "max_us": round(s[-1] / 1000, 1)}


def _sub(a: float | None, *b: float | None) -> float | None:
    return None if a is None or any(x is None for x in b) else round(a - sum(b), 1)


# --------------------------------------------------------------------------- 1. HTTP
def start_servers(args, run_dir: Path, storage: str, stamp: str) -> tuple[rb.Server, rb.Server]:
    """The bare baseline and ``riskactors serve`` (``--shards``, durable on ``storage``)."""
    bport, sport = rb.free_port(), rb.free_port()
    baseline = rb.Server("baseline", [*rb.venv_tool("uvicorn"), "--app-dir", str(HERE), "baseline_app:app",
                                      "--host", HOST, "--port", str(bport), "--log-level", "warning"],
                         run_dir / "baseline.log", bport)
    cmd = [*rb.venv_tool("riskactors"), "serve", "--host", HOST, "--port", str(sport), "--shards", str(args.shards)]
    # journaled as in production (default fsync policy) into this run's own storage root
    env = {"RISKACTORS_STORAGE_ROOT": storage, "RISKACTORS_DEPLOYMENT": f"hotpath-{stamp}"}
    try:
        server = rb.Server("server", cmd, run_dir / "server.log", sport, env=env)
    except BaseException:
        baseline.stop()
        raise
    return baseline, server


def wrk_run(target: rb.Server, is_base: bool, connections: int, duration: int, log_dir: Path, run_id: str,
            accounts: int) -> dict[str, Any]:
    """One closed-loop wrk run (``run_bench.run_wrk``, max mode): at most 2 threads, one per connection."""
    log_dir.mkdir(parents=True, exist_ok=True)
    wargs = SimpleNamespace(wrk_threads=min(2, connections), wrk_connections=connections, duration=duration,
                            rate=0.0)
    row = rb.run_wrk(target, is_base, "max", wargs, log_dir, run_id, accounts)
    errors = row.get("wrk_errors") or {}
    row["non_2xx"] = errors.get("status", 0)
    row["socket_errors"] = sum(v for k, v in errors.items() if k != "status")
    return row


def http_runs(baseline: rb.Server, server: rb.Server, args, run_dir: Path, tag: str,
              rows: list[dict[str, Any]]) -> None:
    """Every measured wrk run, appended to ``rows`` as it ends (kept after an error)."""
    servers = [baseline, server]
    for conns in args.connections:
        for r in range(args.rounds):
            for name, srv in (("baseline", baseline), ("server", server)):
                is_base = name == "baseline"
                run_id = f"{tag}c{conns}r{r}{name[0]}"
                if not is_base:
                    rb.register_accounts(srv.url, run_id, args.accounts)  # fresh accounts, no reservations
                quiet = rb.wait_quiet(servers, args.quiet_wait)
                before = None if is_base else rb.front_check_seconds(srv.url)
                print(f"run: {name:8s} {conns:3d} connections, round {r + 1}/{args.rounds} ... ", end="", flush=True)
                cpu0, t0 = rb.cpu_snapshot(servers), time.monotonic()
                row = wrk_run(srv, is_base, conns, args.duration, run_dir / f"wrk-{name}-c{conns}-r{r}", run_id,
                              args.accounts)
                row["cpu_cores"] = rb.cpu_delta(cpu0, rb.cpu_snapshot(servers), time.monotonic() - t0)
                after = None if is_base else rb.front_check_seconds(srv.url)
                if before and after and after["count"] > before["count"]:
                    row["server_handler_mean_ms"] = round((after["sum"] - before["sum"])
                                                          / (after["count"] - before["count"]) * 1000, 3)
                row.update(target=name, connections=conns, round=r, run_id=run_id, foreign_cores_before=quiet)
                rows.append(row)
                print(f"{row['requests']:,} req, {row['rps']:,.0f}/s, p50 {row['p50_ms']:.2f} p99 "
                      f"{row['p99_ms']:.2f} ms, non-2xx {row['non_2xx']}, socket errors {row['socket_errors']}, "
                      f"decisions {row.get('decisions')}, foreign {(row['cpu_cores'] or {}).get('foreign')}")


def _cpu_per_check(rows: list[dict[str, Any]], target: str) -> dict[str, float] | None:
    """Mean CPU µs per request over ``rows``: the target's main process (the front, or the bare
    app), the rest of its tree (the server's Ray processes: hosts, supervisor, raylet…) and the
    load generator. ``None`` without psutil figures."""
    parts: dict[str, list[float]] = {"main": [], "rest": [], "load_generator": []}
    for r in rows:
        cpu = r.get("cpu_cores")
        if not cpu or not r.get("rps") or f"{target}_main" not in cpu:
            return None
        per = 1e6 / r["rps"]  # µs of one core per request, times cores used
        parts["main"].append(cpu[f"{target}_main"] * per)
        parts["rest"].append(max(0.0, cpu[f"{target}_tree"] - cpu[f"{target}_main"]) * per)
        parts["load_generator"].append(cpu["load_generator"] * per)
    return {k: round(statistics.fmean(v), 1) for k, v in parts.items()}


def summarise_http(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per connection count and target: mean checks/s, median p50 and p99 over the rounds, and the
    server/baseline ratios (of the means, and per round: the runs next to each other)."""
    out: dict[str, Any] = {}
    for conns in sorted({r["connections"] for r in rows}, reverse=True):
        level: dict[str, Any] = {}
        for target in ("baseline", "server"):
            rs = [r for r in rows if r["connections"] == conns and r["target"] == target]
            if not rs:
                continue
            level[target] = {"runs": len(rs), "requests": sum(r["requests"] for r in rs),
                             "rps": round(statistics.fmean(r["rps"] for r in rs), 1),
                             "p50_ms": round(statistics.median(r["p50_ms"] for r in rs), 3),
                             "p99_ms": round(statistics.median(r["p99_ms"] for r in rs), 3),
                             "non_2xx": sum(r["non_2xx"] for r in rs),
                             "socket_errors": sum(r["socket_errors"] for r in rs),
                             "cpu_us_per_check": _cpu_per_check(rs, target)}
        if "baseline" in level and "server" in level:
            b, s = level["baseline"], level["server"]
            level["rps_ratio"] = round(s["rps"] / b["rps"], 3) if b["rps"] else None
            level["p50_ratio"] = round(s["p50_ms"] / b["p50_ms"], 2) if b["p50_ms"] else None
            per_round = []
            for r in sorted({x["round"] for x in rows if x["connections"] == conns}):
                pair = {x["target"]: x for x in rows if x["connections"] == conns and x["round"] == r}
                if len(pair) == 2 and pair["baseline"]["rps"]:
                    per_round.append(round(pair["server"]["rps"] / pair["baseline"]["rps"], 3))
            level["rps_ratio_per_round"] = per_round
        out[str(conns)] = level
    return out


# --------------------------------------------------------------------------- 2. fsync
def fsync_probe(folder: Path, calls: int, warmup: int) -> dict[str, Any]:
    """``FSYNC_BYTES`` appended and ``os.fsync`` on a new file in ``folder``, ``calls`` times
    (after ``warmup`` untimed ones); the file is removed afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"fsync-probe-{os.getpid()}.bin"
    payload = os.urandom(FSYNC_BYTES)
    samples: list[int] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for i in range(warmup + calls):
            t0 = time.perf_counter_ns()
            os.write(fd, payload)
            os.fsync(fd)
            if i >= warmup:
                samples.append(time.perf_counter_ns() - t0)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return {**percentiles(samples), "bytes": FSYNC_BYTES, "folder": str(folder)}


# --------------------------------------------------------------------------- 3./4. host
def _new_host(host_id: str, storage_root: str | None):
    """An ``AccountHost`` configured as the server configures its shards (``Settings.host_config``:
    the default fsync policy and snapshot settings), in memory when ``storage_root`` is None, with
    ``HOST_ACCOUNTS`` accounts like ``run_bench.register_accounts`` registers them and a EURUSD mark."""
    from riskactors.actors import AccountHost
    from riskactors.domain import default_plan_registry
    from riskactors.settings import Settings

    host = AccountHost(host_id, Settings(storage_root=storage_root or "").host_config())
    version, limits = default_plan_registry().resolve("aggressive", None, 1_000_000.0, rb.LIMITS)
    now = time.time()
    mark = {"instrument": rb.INSTRUMENT, "bid": rb.BID, "ask": rb.ASK, "ts": now}
    for i in range(HOST_ACCOUNTS):
        spec = {"account_id": f"h{i}", "user_id": f"u{i % 16}", "challenge_id": "hotpath", "currency": "USD",
                "initial_balance": 1_000_000.0, "plan": "aggressive", "plan_version": version.version,
                "limits": rb.LIMITS, "resolved_limits": limits.to_dict()}
        view = host.register(spec, [], [mark], now)
        if "error" in view:
            raise RuntimeError(f"in-process host: register h{i}: {view}")
    return host


def _order(tag: str, k: int, now: float) -> dict[str, Any]:
    """What the front sends a host for one check: the ``OrderCheck`` fields with ``ts`` set."""
    from api.schemas import OrderCheck

    order = OrderCheck(order_id=f"{tag}-{k}", account_id=f"h{k % HOST_ACCOUNTS}", instrument=rb.INSTRUMENT,
                       side="buy" if k % 2 else "sell", quantity=0.01).model_dump()
    order["ts"] = now
    return order


def host_costs(storage_root: Path, calls: int, warmup: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The host's own check (memory-only host) and the journal's cost per call (durable host minus
    memory-only host), the two hosts' calls alternating one by one.

    Returns
    -------
    tuple of dict
        ``check`` (µs figures of the memory-only host, decisions) and ``journal`` (the durable
        host's figures, the difference at p50 and p99, the storage folder).
    """
    folder = storage_root / "hotpath-host"
    hosts = {"memory": _new_host("hotpath-memory", None), "journal": _new_host("hotpath-journal", str(folder))}
    samples: dict[str, list[int]] = {k: [] for k in hosts}
    decisions: dict[str, dict[str, int]] = {k: {} for k in hosts}
    try:
        for k in range(warmup + calls):
            for name, host in hosts.items():
                now = time.time()
                order = _order(f"{name}-{k}", k, now)
                t0 = time.perf_counter_ns()
                (result,) = host.check_many([order], [now])
                elapsed = time.perf_counter_ns() - t0
                if k >= warmup:
                    samples[name].append(elapsed)
                    d = result.get("decision") or f"error {result.get('error', {}).get('code', '?')}"
                    decisions[name][d] = decisions[name].get(d, 0) + 1
    finally:
        for host in hosts.values():
            host.close()
    check = {**percentiles(samples["memory"]), "accounts": HOST_ACCOUNTS, "decisions": decisions["memory"]}
    durable = {**percentiles(samples["journal"]), "decisions": decisions["journal"]}
    journal = {"calls": durable["calls"], "p50_us": _sub(durable["p50_us"], check["p50_us"]),
               "p99_us": _sub(durable["p99_us"], check["p99_us"]), "with_storage": durable,
               "storage": str(folder), "fsync": "batch (the server's default: one per call)"}
    return check, journal


# --------------------------------------------------------------------------- 5. Ray hop
def ray_hop_child(out: Path, calls: int, warmup: int) -> int:
    """In the subprocess: a local Ray, one actor, ``calls`` awaited no-op calls; write the µs
    figures to ``out`` as JSON. Ray is ended by ``ray.shutdown()`` here, also on SIGTERM."""

    rb.interrupt_on_sigterm()
    os.environ.setdefault("RAY_worker_niceness", "0")  # as ``riskactors serve`` runs its actors
    import ray

    from riskactors.actors.hostlink import HostLink, LinkServer

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             namespace="riskactors-hotpath")
    try:
        init_s = time.perf_counter() - t0

        @ray.remote(num_cpus=0)  # as the server's hosts: a plain (sync) actor needing no CPU slot
        class Noop:
            def noop(self, order: dict[str, Any]) -> None:
                return None

        @ray.remote(num_cpus=0)
        class LinkedNoop:  # as the server's hosts serve checks: a link server in the actor's process
            host_id = "noop"

            def __init__(self):
                self._server = LinkServer(self, threading.RLock())

            def endpoint(self) -> dict[str, Any]:
                return self._server.endpoint()

            def check_many(self, orders: list[dict[str, Any]], nows: list[float]) -> list[Any]:
                return []

        actor, linked = Noop.remote(), LinkedNoop.remote()
        endpoint = ray.get(linked.endpoint.remote())

        def order(k: int) -> dict[str, Any]:
            return {"order_id": f"hop-{k}", "account_id": "h0", "instrument": "EURUSD", "side": "buy",
                    "quantity": 0.01, "ts": time.time()}

        async def loop() -> tuple[list[int], list[int]]:
            samples, over_link = [], []
            for k in range(warmup + calls):
                t = time.perf_counter_ns()
                await actor.noop.remote(order(k))
                if k >= warmup:
                    samples.append(time.perf_counter_ns() - t)
            link = await HostLink.open(endpoint, True, timeout=30)
            try:
                for k in range(warmup + calls):
                    o = order(k)
                    t = time.perf_counter_ns()
                    await link.call("check_many", [[o], [o["ts"]]], 30)
                    if k >= warmup:
                        over_link.append(time.perf_counter_ns() - t)
            finally:
                link.close()
            return samples, over_link

        samples, over_link = asyncio.run(loop())
        result = {**percentiles(samples), "ray_init_s": round(init_s, 2), "ray": ray.__version__,
                  "method": "await actor.noop.remote(order: 6-field dict) -> None",
                  "link": {**percentiles(over_link), "method": "HostLink.call('check_many', [[order], [ts]]) "
                                                               "over the abstract Unix socket -> []"}}
    finally:
        ray.shutdown()
    out.write_text(json.dumps(result))
    return 0


def ray_hop(run_dir: Path, calls: int, warmup: int, timeout: float) -> dict[str, Any]:
    """Run :func:`ray_hop_child` in a subprocess of its own (its own session), stopped through its
    Popen handle; its process tree is recorded while it runs and checked to be gone at the end."""
    out = run_dir / "ray-hop.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--ray-hop-child", str(out), "--calls", str(calls),
           "--warmup-calls", str(warmup)]
    child = rb.Server("ray-hop", cmd, run_dir / "ray-hop.log", 0)  # no port: only its Popen handling is used
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + timeout
        while child.proc.poll() is None:
            pids.update(bf.tree_pids(child))
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray hop not done after {timeout:.0f} s:\n{child.log_tail()}")
            time.sleep(0.2)
    finally:
        stopped = bf.stop_and_check(child, sorted(pids))
    if child.proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"Ray hop exited with {child.proc.returncode}:\n{child.log_tail()}")
    return {**json.loads(out.read_text()), "stopped": stopped}


# --------------------------------------------------------------------------- verdicts
def _cpu_detail(bare: dict[str, Any], server: dict[str, Any]) -> str:
    """Where the CPU of a check went, beside a bare request's (what bounds the ratio on a machine
    whose cores the hosts share with the front and the load generator)."""
    b, s = bare.get("cpu_us_per_check"), server.get("cpu_us_per_check")
    if not b or not s:
        return ""
    return (f"; CPU per check: front {s['main']:.0f} µs + the server's other processes {s['rest']:.0f} µs, "
            f"against bare {b['main']:.0f} µs per request; load generator {s['load_generator']:.0f} / "
            f"{b['load_generator']:.0f} µs")


def targets(http: dict[str, Any], hop: dict | None, fsync: dict | None) -> list[dict[str, Any]]:
    """The three targets of issue 11 §3 with PASS/FAIL (``N/A`` when a figure is missing)."""
    def level(conns: int, target: str) -> dict | None:
        return (http.get(str(conns)) or {}).get(target)

    out = []
    b32, s32 = level(32, "baseline"), level(32, "server")
    ok = b32 and s32 and b32["rps"]
    ratio = s32["rps"] / b32["rps"] if ok else None
    out.append({"target": f"throughput at 32 connections >= {THROUGHPUT_RATIO}x bare",
                "value": round(ratio, 3) if ratio is not None else None, "limit": THROUGHPUT_RATIO,
                "result": "N/A" if ratio is None else ("PASS" if ratio >= THROUGHPUT_RATIO else "FAIL"),
                "detail": (f"server {s32['rps']:,.0f}/s vs bare {b32['rps']:,.0f}/s = {ratio:.2f}x"
                           + _cpu_detail(b32, s32) if ratio is not None else "missing")})
    b1, s1 = level(1, "baseline"), level(1, "server")
    parts = [b1 and b1["p50_ms"] * 1000, (hop or {}).get("p50_us"), (fsync or {}).get("p50_us")]
    srv = s1["p50_ms"] * 1000 if s1 else None
    limit = None if srv is None or any(p is None for p in parts) else sum(parts) + SLACK_US
    out.append({"target": "at 1 connection: server p50 <= bare p50 + Ray round trip p50 + fsync p50 + 0.3 ms",
                "value": round(srv, 1) if srv is not None else None,
                "limit": round(limit, 1) if limit is not None else None, "unit": "µs",
                "result": "N/A" if limit is None else ("PASS" if srv <= limit else "FAIL"),
                "detail": (f"server {srv:,.0f} µs vs bare {parts[0]:,.0f} + Ray {parts[1]:,.0f} + fsync "
                           f"{parts[2]:,.0f} + {SLACK_US:.0f} = {limit:,.0f} µs" if limit is not None else "missing")})
    s4 = level(4, "server")
    out.append({"target": f"p99 at 4 connections < {P99_LIMIT_MS:g} ms",
                "value": s4["p99_ms"] if s4 else None, "limit": P99_LIMIT_MS, "unit": "ms",
                "result": "N/A" if not s4 else ("PASS" if s4["p99_ms"] < P99_LIMIT_MS else "FAIL"),
                "detail": f"server p99 {s4['p99_ms']:.2f} ms" if s4 else "missing"})
    return out


def budget(http: dict[str, Any], hop: dict | None, check: dict | None, journal: dict | None) -> dict[str, Any]:
    """Latency budget of one check at 1 connection, µs at p50 and p99: front = the server's figure
    minus the hop (the host link's round trip: checks go over it, not through Ray), the check
    and the journal. Percentiles do not add, so the p99 column is a
    rough split; a part below zero (noise, or parts that overlap) is kept and marked."""
    s1 = (http.get("1") or {}).get("server")
    b1 = (http.get("1") or {}).get("baseline")
    total = {q: (s1[f"{q}_ms"] * 1000 if s1 else None) for q in ("p50", "p99")}
    parts = {"link hop": hop, "check": check, "journal": journal}
    rows = [{"part": "front", "how": "server at 1 connection (wrk) minus the three parts below",
             **{f"{q}_us": _sub(total[q], *((p or {}).get(f"{q}_us") for p in parts.values()))
                for q in ("p50", "p99")}}]
    rows += [{"part": "link hop", "how": "host link round trip to a Ray actor's link server (no-op check_many)"},
             {"part": "check", "how": "AccountHost.check_many([order], [now]) in process, no storage"},
             {"part": "journal", "how": "the same with the default durable journal (fsync batch) minus without"}]
    for row in rows[1:]:
        src = parts[row["part"]] or {}
        row.update(p50_us=src.get("p50_us"), p99_us=src.get("p99_us"))
    for row in rows:
        bad = [q for q in ("p50", "p99") if row[f"{q}_us"] is None or row[f"{q}_us"] < 0]
        if bad:
            row["note"] = ("missing" if any(row[f"{q}_us"] is None for q in bad) else
                           "below zero at " + " and ".join(bad) + ": the parts measured alone add up to more "
                           "than the whole (they overlap, or percentiles that do not add)")
    return {"rows": rows, "total": {"part": "server at 1 connection", **{f"{q}_us": total[q] for q in total}},
            "bare": {"part": "bare endpoint at 1 connection",
                     **{f"{q}_us": (b1[f"{q}_ms"] * 1000 if b1 else None) for q in ("p50", "p99")}}}


# --------------------------------------------------------------------------- report
def _n(v: Any, nd: int = 0) -> str:
    return "-" if v is None else f"{v:,.{nd}f}"


def _grid(head: list[str], body: list[list[str]], markdown: bool, align: str | None = None) -> str:
    """A table; ``align`` has one letter per column, ``l`` or ``r`` (default: first left, rest right)."""
    align = align or "l" + "r" * (len(head) - 1)
    if markdown:
        rule = "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"
        return "\n".join(["| " + " | ".join(head) + " |", rule] + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                                  for c, w, a in zip(cells, widths, align)).rstrip()
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(r) for r in body)])


def render(report: dict[str, Any], markdown: bool = False) -> str:
    """The runs, the per-level summary, the micro-measurements, the targets and the budget."""
    out = []
    rows = report["http"]["runs"]
    if rows:
        body = [[r["target"], str(r["connections"]), str(r["round"] + 1), f"{r['requests']:,}", _n(r["rps"]),
                 _n(r["p50_ms"], 2), _n(r["p99_ms"], 2), str(r["non_2xx"]), str(r["socket_errors"]),
                 _n((r.get("cpu_cores") or {}).get("foreign"), 2)] for r in rows]
        out += ["wrk runs (closed loop, in the order run):",
                _grid(["target", "connections", "round", "requests", "checks/s", "p50 ms", "p99 ms", "non-2xx",
                       "socket errors", "foreign cores"], body, markdown, "l" + "r" * 9), ""]
        body = []
        for conns, lv in report["http"]["summary"].items():
            b, s = lv.get("baseline") or {}, lv.get("server") or {}
            body.append([conns, _n(b.get("rps")), _n(s.get("rps")), _n(lv.get("rps_ratio"), 2) + "x",
                         " ".join(f"{x:.2f}" for x in lv.get("rps_ratio_per_round", [])) or "-",
                         _n(b.get("p50_ms"), 2), _n(s.get("p50_ms"), 2), _n(b.get("p99_ms"), 2),
                         _n(s.get("p99_ms"), 2)])
        out += ["server beside bare, per connection count (mean checks/s, median p50/p99 over the rounds):",
                _grid(["connections", "bare checks/s", "server checks/s", "server/bare", "per round",
                       "bare p50 ms", "server p50 ms", "bare p99 ms", "server p99 ms"], body, markdown, "r" * 9), ""]
    micro = [("Ray round trip (raw actor, asyncio)", report.get("ray_hop")),
             ("host link round trip (a Ray actor's link server)", report.get("link_hop")),
             (f"fsync of {FSYNC_BYTES} B on the storage root's disk", report.get("fsync")),
             ("host check, in process, no storage", report.get("check")),
             ("host check with the durable journal", (report.get("journal") or {}).get("with_storage"))]
    body = [[name, _n((m or {}).get("calls")), _n((m or {}).get("p50_us")), _n((m or {}).get("p99_us")),
             _n((m or {}).get("mean_us")), _n((m or {}).get("max_us"))] for name, m in micro]
    out += ["one call at a time, µs:", _grid(["measurement", "calls", "p50", "p99", "mean", "max"], body, markdown), ""]
    out.append("targets of issue 11 §3:")
    for t in report["targets"]:
        out.append(f"{'- ' if markdown else '  '}{t['result']}: {t['target']} ({t['detail']})")
    out.append("")
    bud = report["budget"]

    def mark(v: float | None) -> str:
        return _n(v) + (" (!)" if v is not None and v < 0 else "")

    body = [[r["part"], mark(r["p50_us"]), mark(r["p99_us"]), r["how"] + (f" [{r['note']}]" if r.get("note") else "")]
            for r in bud["rows"]]
    body += [[x["part"], _n(x["p50_us"]), _n(x["p99_us"]), ""] for x in (bud["total"], bud["bare"])]
    out += ["latency budget of one check at 1 connection, µs (p99: a rough split, percentiles do not add):",
            _grid(["part", "p50", "p99", "from"], body, markdown, "lrrl")]
    return "\n".join(out)


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--help`` lists them with their defaults)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=int, default=15, help="seconds per measured wrk run")
    p.add_argument("--connections", default="32,4,1", help="wrk connection counts, comma-separated")
    p.add_argument("--rounds", type=int, default=1,
                   help="baseline/server pairs per connection count (baseline, server, baseline, server...)")
    p.add_argument("--accounts", type=int, default=128, help="fresh accounts registered before each server run")
    p.add_argument("--shards", type=int, default=2, help="shard actors of the server")
    p.add_argument("--calls", type=int, default=2000, help="timed calls of the Ray hop, fsync and host measurements")
    p.add_argument("--warmup-calls", type=int, default=200, help="untimed calls before each of those")
    p.add_argument("--warmup", type=int, default=300, help="sequential HTTP warm-up checks per target")
    p.add_argument("--warmup-seconds", type=int, default=3, help="untimed wrk run (32 connections) per target; 0: none")
    p.add_argument("--storage-parent", default=None,
                   help="folder in which the temporary storage root is made (default: the system's temp folder); "
                        "the fsync and journal figures are of that disk")
    p.add_argument("--keep-storage", action="store_true", help="keep the temporary storage root")
    p.add_argument("--quiet-wait", type=float, default=30.0,
                   help="before each measurement wait up to this many seconds for other processes to use < 0.25 "
                        "cores; 0: do not wait")
    p.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to wait for the server's /ready")
    p.add_argument("--ray-timeout", type=float, default=180.0, help="seconds the Ray hop subprocess may take")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of the JSON, Markdown and logs")
    p.add_argument("--fail-on-target", action="store_true", help="exit 1 when a target fails")
    p.add_argument("--ray-hop-child", type=Path, default=None, help=argparse.SUPPRESS)  # internal: the subprocess
    a = p.parse_args(argv)
    try:
        a.connections = [int(x) for x in a.connections.split(",") if x.strip()]
    except ValueError:
        p.error("--connections: comma-separated integers")
    if not a.connections or min(a.connections) < 1:
        p.error("--connections: integers >= 1")
    if min(a.duration, a.rounds, a.accounts, a.shards, a.calls) < 1 or min(a.warmup_calls, a.warmup,
                                                                            a.warmup_seconds) < 0:
        p.error("--duration, --rounds, --accounts, --shards and --calls must be >= 1; the warm-ups >= 0")
    return a


def _phase(report: dict[str, Any], name: str, fn, *a, **kw) -> Any:
    """One measurement; its error is recorded under ``report["errors"][name]`` and the run goes on."""
    try:
        out = fn(*a, **kw)
    except Exception as exc:  # noqa: BLE001 - a failed measurement is a result, the others still run
        report["errors"][name] = f"{type(exc).__name__}: {exc}"[:1000]
        print(f"{name}: ERROR {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return None
    report[name] = out
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything (module docstring), print the report and write it as JSON and Markdown.

    Returns
    -------
    dict
        The report written as JSON: ``http`` (``runs``, ``summary`` per connection count),
        ``fsync``, ``check``, ``journal``, ``ray_hop`` (µs figures), ``targets``, ``budget``,
        ``setup``, ``errors`` (per measurement) and ``complete`` (False after an error or Ctrl-C;
        ``error`` says which).
    """
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    tag = started.strftime("%H%M%S")
    results = Path(args.results)
    run_dir = results / f"hotpath-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = Path(tempfile.mkdtemp(prefix="riskactors-hotpath-", dir=args.storage_parent))
    print(f"riskactors hot path {stamp}: wrk {args.connections} connections x {args.rounds} round(s), "
          f"{args.duration} s each, {args.shards} shards, {args.accounts} accounts per server run, {args.calls} calls "
          f"per micro-measurement, storage root {storage}, {os.cpu_count()} CPUs; logs in {run_dir}", flush=True)
    report: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": rb.versions(), "setup": {"storage_root": str(storage)}, "errors": {},
        "http": {"runs": [], "summary": {}}, "fsync": None, "check": None, "journal": None, "ray_hop": None,
    }
    error = None
    servers: list[rb.Server] = []
    server_pids: set[int] = set()
    try:
        try:
            baseline, server = start_servers(args, run_dir, str(storage), tag)
            servers += [baseline, server]
            setup = report["setup"]
            setup["baseline_ready_s"] = round(baseline.wait_ready(30.0), 2)
            setup["server_ready_s"] = round(server.wait_ready(args.ready_timeout), 2)
            server_pids.update(bf.tree_pids(server))
            print(f"ready: baseline {baseline.url} in {setup['baseline_ready_s']} s, server {server.url} "
                  f"(pid {server.pid}) in {setup['server_ready_s']} s", flush=True)
            rb.register_accounts(server.url, f"{tag}warm", 4)
            setup["warmup"] = {"baseline": rb.warm_up(baseline.url, f"{tag}warm", args.warmup),
                               "server": rb.warm_up(server.url, f"{tag}warm", args.warmup)}
            if args.warmup_seconds:
                rb.register_accounts(server.url, f"{tag}ww", args.accounts)
                for name, srv in (("baseline", baseline), ("server", server)):
                    w = wrk_run(srv, name == "baseline", 32, args.warmup_seconds, run_dir / f"warm-{name}",
                                f"{tag}ww", args.accounts)
                    setup["warmup"][f"{name}_wrk"] = {"requests": w["requests"], "rps": round(w["rps"], 1)}
            print(f"warm-up: {setup['warmup']}", flush=True)
            http_runs(baseline, server, args, run_dir, tag, report["http"]["runs"])
            server_pids.update(bf.tree_pids(server))
        finally:
            stopped = {}
            for s in reversed(servers):
                stopped[s.name] = (bf.stop_and_check(s, sorted(server_pids)) if s.name == "server" else s.stop())
            report["stopped"] = stopped
            if servers:
                print(f"stopped: {stopped}", flush=True)
        report["http"]["summary"] = summarise_http(report["http"]["runs"])

        journal_dir = storage / "hosts" if (storage / "hosts").is_dir() else storage
        report["setup"]["foreign_cores_before_micro"] = rb.wait_quiet([], args.quiet_wait)
        print("fsync ... ", end="", flush=True)
        f = _phase(report, "fsync", fsync_probe, journal_dir, args.calls, args.warmup_calls)
        print(f"p50 {_n((f or {}).get('p50_us'))} p99 {_n((f or {}).get('p99_us'))} µs", flush=True)
        print("host check and journal, in process ... ", end="", flush=True)
        hc = _phase(report, "host", host_costs, storage, args.calls, args.warmup_calls)
        report.pop("host", None)
        if hc:
            report["check"], report["journal"] = hc
            print(f"check p50 {_n(hc[0]['p50_us'])} p99 {_n(hc[0]['p99_us'])} µs, journal p50 "
                  f"{_n(hc[1]['p50_us'])} p99 {_n(hc[1]['p99_us'])} µs", flush=True)
        rb.wait_quiet([], args.quiet_wait)
        print("Ray round trip (subprocess) ... ", end="", flush=True)
        h = _phase(report, "ray_hop", ray_hop, run_dir, args.calls, args.warmup_calls, args.ray_timeout)
        report["link_hop"] = (h or {}).pop("link", None)
        print(f"p50 {_n((h or {}).get('p50_us'))} p99 {_n((h or {}).get('p99_us'))} µs; over the host link p50 "
              f"{_n((report['link_hop'] or {}).get('p50_us'))} µs", flush=True)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - report what was measured; processes are stopped
        error = f"{type(exc).__name__}: {exc}"
        print(f"\nERROR: {error}", file=sys.stderr, flush=True)
    finally:
        if not args.keep_storage:
            shutil.rmtree(storage, ignore_errors=True)

    report["targets"] = targets(report["http"]["summary"], report["ray_hop"], report["fsync"])
    report["budget"] = budget(report["http"]["summary"], report.get("link_hop"), report["check"], report["journal"])
    report["complete"] = error is None and not report["errors"]
    report["error"] = error
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["logs"] = str(run_dir)
    out_json = results / f"hotpath-{stamp}.json"
    out_json.write_text(json.dumps(report, indent=1, default=str))
    text = render(report)
    md = [f"# Hot path {stamp}", "",
          (f"`{report['command']}`; {os.cpu_count()} CPUs; {args.shards} shards, durable (default fsync), "
           f"{args.accounts} accounts, wrk {args.duration} s per run, {args.rounds} round(s)."), "",
          render(report, markdown=True)]
    (results / f"hotpath-{stamp}.md").write_text("\n".join(md) + "\n")
    print()
    print(text)
    if report["errors"]:
        print(f"\nerrors: {report['errors']}")
    print(f"results: {out_json} and .md")
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0, 1 with ``--fail-on-target`` when a target fails, 2 when a
    measurement errored or the run stopped early."""
    args = parse_args(argv)
    if args.ray_hop_child is not None:
        return ray_hop_child(args.ray_hop_child, args.calls, args.warmup_calls)
    if rb.tools_missing(wrk=True):
        return 2

    rb.interrupt_on_sigterm()
    report = run(args)
    if not report["complete"]:
        return 2
    if args.fail_on_target and any(t["result"] != "PASS" for t in report["targets"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
