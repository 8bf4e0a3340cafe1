"""Scale table of issue 11: one server holding 1,000, 10,000 and 100,000 accounts.

One entry point (``make bench-scale``)::

    .venv/bin/python load_tests/scale.py [--accounts 1000,10000,100000] [--shards 8] [--positions 1]
                                         [--storage DIR|memory] [--repeat 5] [--no-wrk]

For each account count N it starts a fresh ``riskactors serve`` (embedded Ray, sharded
placement, ``--shards`` shard actors, API keys with the three roles from a keys file, durable
storage with the default fsync policy in a temporary root unless ``--storage``) and, in order:

1. measures the resident memory of the empty server right after ``GET /ready`` answers 200
   (the sum of RSS over the server's process tree: the front and every Ray process it
   started; the PSS sum, which splits shared pages between their processes, is shown beside it);
2. registers N USD accounts of 100,000 on plan ``--plan`` (hedging), 2 accounts per user and
   spread over 10 challenges, with ``POST /v1/accounts/batch`` (admin key) in requests of
   ``--batch`` (1,000) items, and counts the item statuses other than 201;
3. posts one EURUSD and one GBPJPY mark (not timed) and opens ``--positions`` long 1-lot EURUSD
   positions per account with ``POST /v1/fills/batch`` (router key, ``--batch`` fills per
   request); every fill must be applied (status 200, not a duplicate);
4. measures memory again (the figure of the table) and the bytes on the storage root;
5. times ``GET /v1/risk/firm`` and ``GET /v1/risk/challenges/{id}`` of a challenge holding
   10 % of the accounts (ops key), ``--repeat`` times each;
6. times ``POST /v1/marks``: EURUSD (every account holds it) and GBPJPY (nobody holds it),
   ``--repeat`` times each, alternating a 1-pip move up and back (no account comes near a limit);
7. times the firm kill switch: ``POST /v1/kill-switch`` (ops) then ``DELETE
   /v1/kill-switch/firm`` (admin), ``--repeat`` times;
8. runs wrk closed loop against ``POST /v1/orders/check`` (``wrk_check.lua`` as ``run_bench.py``
   runs it: ``--wrk-connections`` 32, 2 threads, ``--wrk-duration`` 10 s, 0.01-lot EURUSD
   checks spread over all N accounts, router key), unless wrk is missing or ``--no-wrk``;
9. posts one breaching EURUSD mark, once: the bid falls until each account has lost 7.5 % of its
   balance (7,500 USD), past the 5 % daily loss (hard: the account fails) and short of the 10 %
   max loss, so each account breaches once; records its time, ``breach_count`` and body size;
10. stops the server (SIGTERM through its Popen handle) and starts it again on the same storage
    root, timing until ``/ready`` answers 200, then reads the firm view once more (it must
    show the N accounts, all failed; in memory the restarted server is empty) and its memory.

It prints the table (one row per measurement, one column per N, as in the issue), and writes
``load_tests/results/scale-<UTC stamp>.json`` (every figure, statuses and errors) and ``.md``;
server logs and wrk output go to ``load_tests/results/scale-<stamp>/`` (git-ignored). Every
server is stopped through its Popen handle (SIGTERM, wait, SIGKILL of its session), also on
an error, Ctrl-C or SIGTERM; processes of its tree still alive after that are killed by PID and listed.

The helpers (ports, the server process, readiness, wrk, quiet-wait) come from
``load_tests/run_bench.py`` and ``load_tests/bench_fronts.py``, imported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fronts as bf  # after the path insert; both re-execute under the project venv if needed
import run_bench as rb

httpx, psutil = rb.httpx, rb.psutil

__all__ = ["main", "parse_args", "run"]

ROOT, HERE, RESULTS, HOST = rb.ROOT, rb.HERE, rb.RESULTS, rb.HOST
ROLES = ("admin", "ops", "router")
CHALLENGES = 10
ACCOUNTS_PER_USER = 2
BALANCE = 100_000.0
LOTS = 1.0  # per position; EURUSD: 100,000 EUR, about 108,500 USD of notional
CONTRACT = 100_000.0  # EURUSD contract size (riskactors/data/instruments.csv)
EURUSD = ("EURUSD", 1.08500, 0.00010)  # instrument, bid, spread
GBPJPY = ("GBPJPY", 190.000, 0.020)
MOVE = {"EURUSD": 0.00010, "GBPJPY": 0.010}  # one pip: 10 USD per EURUSD lot, nowhere near a limit
#: Loss of the breaching mark per account, fraction of the balance: past the 5 % daily loss of the
#: two-step plans (a hard rule: the account fails), short of their 10 % max loss, so each account
#: breaches exactly once and ``breach_count`` counts accounts (a deeper move breaches both rules).
BREACH_LOSS = 0.075


# --------------------------------------------------------------------------- names
def account_id(run_id: str, i: int) -> str:
    """The i-th account: ``bench-<run_id>-w<i>``, the names ``wrk_check.lua`` sends checks for."""
    return f"bench-{run_id}-w{i}"


def challenge_id(run_id: str, k: int) -> str:
    """The k-th of the ``CHALLENGES`` challenges (each holds every tenth account)."""
    return f"bench-{run_id}-c{k}"


def account_items(run_id: str, n: int, plan: str) -> list[dict[str, Any]]:
    """Registration items of ``POST /v1/accounts`` for ``n`` accounts.

    Parameters
    ----------
    run_id : str
        Prefix of every id of the run.
    n : int
        Accounts; account ``i`` belongs to user ``i // 2`` and challenge ``i % 10``.
    plan : str
        Plan id (an active plan of the server, e.g. the preset ``two_step_phase1``).

    Returns
    -------
    list of dict
        USD accounts of ``BALANCE`` (100,000 USD), hedging (one position per ticket).
    """
    return [{"account_id": account_id(run_id, i), "user_id": f"bench-{run_id}-u{i // ACCOUNTS_PER_USER}",
             "challenge_id": challenge_id(run_id, i % CHALLENGES), "currency": "USD", "initial_balance": BALANCE,
             "plan": plan, "position_mode": "hedging"} for i in range(n)]


def fill_items(run_id: str, n: int, positions: int) -> list[dict[str, Any]]:
    """Execution reports of ``POST /v1/fills`` opening ``positions`` long EURUSD tickets of
    ``LOTS`` (1) lot per account at the ask of the set-up mark; ``fill_id`` and ``position_id``
    are unique per account and ticket."""
    instrument, bid, spread = EURUSD
    return [{"fill_id": f"{account_id(run_id, i)}-f{j}", "account_id": account_id(run_id, i),
             "instrument": instrument, "side": "buy", "quantity": LOTS, "price": round(bid + spread, 5),
             "position_id": f"{account_id(run_id, i)}-p{j}"}
            for i in range(n) for j in range(positions)]


# --------------------------------------------------------------------------- measuring
def make_keys(folder: Path) -> tuple[dict[str, str], Path]:
    """One fresh key per role and the server's keys file (names, roles, SHA-256 digests only).

    Returns
    -------
    keys : dict of str to str
        Role → key, for the ``Authorization: Bearer`` header.
    path : Path
        The JSON list to pass as ``RISKACTORS_API_KEYS_FILE``.
    """
    keys = {role: secrets.token_urlsafe(24) for role in ROLES}
    doc = [{"name": f"scale-{role}", "role": role, "sha256": hashlib.sha256(k.encode()).hexdigest()}
           for role, k in keys.items()]
    path = folder / "api-keys.json"
    path.write_text(json.dumps(doc))
    return keys, path


def tree_memory(pid: int) -> dict[str, Any]:
    """Resident memory of a server's process tree (the process and all its descendants).

    Returns
    -------
    dict
        ``rss_bytes`` (sum of RSS: pages shared by several processes count once per process),
        ``pss_bytes`` (sum of PSS: shared pages split between their processes, ``None`` if
        unreadable), ``processes`` and ``by_group`` (RSS per group of
        :func:`bench_fronts.classify`: ``fronts``, ``shards``, ``other_actors``, ``ray_daemons``).
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {"rss_bytes": None, "pss_bytes": None, "processes": 0, "by_group": {}}
    rss, pss, seen = 0, 0, 0
    groups: Counter[str] = Counter()
    for p in procs:
        try:
            with p.oneshot():
                r = p.memory_info().rss
                group = bf.classify(p, pid, 1, None)
            try:
                s = p.memory_full_info().pss
            except (psutil.Error, AttributeError):
                s = None
        except psutil.Error:
            continue
        seen += 1
        rss += r
        groups[group] += r
        pss = None if pss is None or s is None else pss + s
    return {"rss_bytes": rss, "pss_bytes": pss, "processes": seen, "by_group": dict(groups)}


def disk_bytes(root: str | None) -> int | None:
    """Bytes of the files under a local storage root (``None`` in memory)."""
    if not root:
        return None
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


class Api:
    """An ``httpx.Client`` on one server with a key per role; every call is timed.

    Parameters
    ----------
    url : str
        The server's base URL.
    keys : dict of str to str
        Role → key (empty: no ``Authorization`` header, auth off).
    timeout : float
        Seconds per request (connect, read, write).
    """

    def __init__(self, url: str, keys: dict[str, str], timeout: float):
        self.client = httpx.Client(base_url=url, timeout=timeout)
        self.headers = {role: ({"Authorization": f"Bearer {keys[role]}"} if keys else {}) for role in ROLES}

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, role: str, body: Any = None,
             params: dict[str, Any] | None = None) -> tuple[float, httpx.Response]:
        """One request with ``role``'s key; ``body`` is JSON-encoded unless it is bytes already.

        Returns
        -------
        ms : float
            Client-side milliseconds from sending the request to having read the whole answer.
        response : httpx.Response
        """
        headers = dict(self.headers[role])
        content = None
        if body is not None:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        r = self.client.request(method, path, content=content, params=params, headers=headers)
        return (time.perf_counter() - t0) * 1000.0, r


def _stats(times: list[float], statuses: Counter) -> dict[str, Any]:
    return {"median_ms": round(statistics.median(times), 2) if times else None,
            "max_ms": round(max(times), 2) if times else None, "min_ms": round(min(times), 2) if times else None,
            "times_ms": [round(t, 2) for t in times], "statuses": dict(statuses)}


def post_batches(api: Api, path: str, role: str, key: str, items: list[dict], batch: int,
                 ok: int) -> dict[str, Any]:
    """Send ``items`` as ``{key: [...]}`` in requests of ``batch`` items, one after the other.

    Parameters
    ----------
    ok : int
        The item status that counts as done (201 for registrations, 200 for fills).

    Returns
    -------
    dict
        ``items``, ``seconds`` (wall time of the requests; bodies are encoded before the clock
        starts), ``per_second``, ``item_statuses`` (per status; a request that failed as a
        whole counts its items under ``"http <code>"``), ``not_ok`` (items other than ``ok``),
        ``http_statuses``, ``duplicates`` (fills answered as a duplicate), ``breaches``
        (breaches the items caused), ``request_ms`` (median and max per request) and up to 5
        ``examples`` of items not ok.
    """
    bodies = [(len(items[k:k + batch]), json.dumps({key: items[k:k + batch]}).encode())
              for k in range(0, len(items), batch)]
    statuses: Counter = Counter()
    http: Counter = Counter()
    examples: list[Any] = []
    duplicates = breaches = 0
    times = []
    t0 = time.perf_counter()
    for count, body in bodies:
        ms, r = api.call("POST", path, role, body)
        times.append(ms)
        http[r.status_code] += 1
        if r.status_code != 200:
            statuses[f"http {r.status_code}"] += count
            if len(examples) < 5:
                examples.append(r.text[:300])
            continue
        for res in r.json()["results"]:
            statuses[res["status"]] += 1
            fill = res.get("fill") or {}
            duplicates += bool(fill.get("duplicate"))
            breaches += len(fill.get("breach") or ())
            if res["status"] != ok and len(examples) < 5:
                examples.append(res)
    secs = time.perf_counter() - t0
    not_ok = sum(v for s, v in statuses.items() if s != ok)
    return {"items": len(items), "requests": len(bodies), "seconds": round(secs, 3),
            "per_second": round(len(items) / secs, 1) if secs > 0 else None, "item_statuses": dict(statuses),
            "not_ok": not_ok, "http_statuses": dict(http), "duplicates": duplicates, "breaches": breaches,
            "request_ms": _stats(times, http), "examples": examples}


def timed_reads(api: Api, path: str, repeat: int) -> dict[str, Any]:
    """``GET path`` (ops key) ``repeat`` times: median, max, statuses, and the last 200 answer's
    ``accounts`` and ``accounts_by_status``."""
    times, statuses, last = [], Counter(), None
    for _ in range(repeat):
        ms, r = api.call("GET", path, "ops")
        times.append(ms)
        statuses[r.status_code] += 1
        if r.status_code == 200:
            last = r.json()
    out = _stats(times, statuses)
    if last is not None:
        out.update(accounts=last.get("accounts"), accounts_by_status=last.get("accounts_by_status"),
                   body_bytes=len(json.dumps(last)))
    return out


def mark(instrument: str, bid: float, spread: float) -> dict[str, Any]:
    """A ``POST /v1/marks`` body with one mark (no ``ts``: the server's clock)."""
    digits = 5 if bid < 50 else 3
    return {"marks": [{"instrument": instrument, "bid": round(bid, digits), "ask": round(bid + spread, digits)}]}


def timed_marks(api: Api, spec: tuple[str, float, float], repeat: int) -> dict[str, Any]:
    """``repeat`` single marks of one instrument, alternating one pip up and back to the set-up
    bid; median, max, statuses, and what the answers counted (applied, stale, breaches)."""
    instrument, bid, spread = spec
    times, statuses = [], Counter()
    applied = stale = breach_count = 0
    for k in range(repeat):
        ms, r = api.call("POST", "/v1/marks", "router", mark(instrument, bid + (MOVE[instrument] if k % 2 == 0 else 0),
                                                            spread))
        times.append(ms)
        statuses[r.status_code] += 1
        if r.status_code == 200:
            d = r.json()
            applied += d["applied"]
            stale += d["stale"]
            breach_count += d["breach_count"]
    return {**_stats(times, statuses), "applied": applied, "stale": stale, "breach_count": breach_count}


def kill_switch(api: Api, repeat: int) -> dict[str, Any]:
    """Activate (``POST /v1/kill-switch``, ops) and release (``DELETE /v1/kill-switch/firm``,
    admin) the firm switch ``repeat`` times; timings of both, statuses."""
    on, off, s_on, s_off = [], [], Counter(), Counter()
    for _ in range(repeat):
        ms, r = api.call("POST", "/v1/kill-switch", "ops", {"scope": "firm", "reason": "scale benchmark",
                                                             "mode": "halt", "by": "scale.py"})
        on.append(ms)
        s_on[r.status_code] += 1
        ms, r = api.call("DELETE", "/v1/kill-switch/firm", "admin",
                         params={"reason": "scale benchmark", "by": "scale.py"})
        off.append(ms)
        s_off[r.status_code] += 1
    return {"activate": _stats(on, s_on), "release": _stats(off, s_off)}


def breaching_mark(api: Api, positions: int) -> dict[str, Any]:
    """One EURUSD mark at which every account (``positions`` long tickets of ``LOTS`` bought at
    the set-up ask) has lost ``BREACH_LOSS`` of its balance: each fails on its daily loss."""
    instrument, bid, spread = EURUSD
    breach_bid = bid + spread - BREACH_LOSS * BALANCE / (positions * LOTS * CONTRACT)
    ms, r = api.call("POST", "/v1/marks", "router", mark(instrument, breach_bid, spread))
    out: dict[str, Any] = {"ms": round(ms, 2), "status": r.status_code, "body_bytes": len(r.content)}
    if r.status_code == 200:
        d = r.json()
        out.update(breach_count=d["breach_count"], breaches_by_code=d["breaches_by_code"],
                   breaches_listed=len(d["breaches"]), applied=d["applied"])
    else:
        out["body"] = r.text[:300]
    return out


def run_wrk(server: rb.Server, run_id: str, n: int, folder: Path, args, router_key: str | None) -> dict[str, Any]:
    """Closed-loop wrk on ``POST /v1/orders/check`` (``run_bench.run_wrk``, max mode) over the
    ``n`` accounts, the router key in ``RISKACTORS_WRK_API_KEY`` (read by ``wrk_check.lua``)."""
    wargs = SimpleNamespace(wrk_threads=args.wrk_threads, wrk_connections=args.wrk_connections,
                            duration=args.wrk_duration, rate=0.0)
    before = os.environ.get("RISKACTORS_WRK_API_KEY")
    if router_key:
        os.environ["RISKACTORS_WRK_API_KEY"] = router_key  # run_wrk hands the environment to wrk
    try:
        row = rb.run_wrk(server, False, "max", wargs, folder, run_id, n)
    finally:
        if before is None:
            os.environ.pop("RISKACTORS_WRK_API_KEY", None)
        else:
            os.environ["RISKACTORS_WRK_API_KEY"] = before
    errors = row.get("wrk_errors") or {}
    row["non_2xx"] = errors.get("status", 0)
    row["socket_errors"] = sum(v for k, v in errors.items() if k != "status")
    return row


# --------------------------------------------------------------------------- one size
def start_server(n: int, args, folder: Path, storage: str, keys_file: Path | None, name: str) -> rb.Server:
    """``riskactors serve`` on a free port with ``--shards``, the storage root and the keys file."""
    port = rb.free_port()
    cmd = [*rb.venv_tool("riskactors"), "serve", "--host", HOST, "--port", str(port), "--shards", str(args.shards)]
    env = {"RISKACTORS_STORAGE_ROOT": storage, "RISKACTORS_DEPLOYMENT": f"scale-{n}"}
    if args.columnar_from is not None:
        env["RISKACTORS_COLUMNAR_FROM"] = str(args.columnar_from)
    if keys_file is not None:
        env["RISKACTORS_API_KEYS_FILE"] = str(keys_file)
    return rb.Server(name, cmd, folder / f"{name}.log", port, env=env)


def _phase(result: dict[str, Any], name: str, fn, *a, **kw) -> Any:
    """Run one measurement; an exception (a timeout, a 5xx body that is not JSON) is recorded
    under ``result["errors"][name]`` and the run goes on with the next phase."""
    try:
        out = fn(*a, **kw)
    except Exception as exc:  # noqa: BLE001 - a failed measurement is a result, the others still run
        result.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:500]
        print(f"  {name}: ERROR {type(exc).__name__}: {exc}", flush=True)
        return None
    result[name] = out
    return out


def run_size(n: int, args, run_dir: Path, keys: dict[str, str], keys_file: Path | None,
             sink: list[dict[str, Any]]) -> dict[str, Any]:
    """Every measurement of the table for ``n`` accounts on a fresh server (see the module
    docstring for the order); the server is stopped on the way out, also on an error.

    The result dict is appended to ``sink`` before the first measurement, so a run stopped by
    Ctrl-C still reports what it measured. A server that does not start or stop in time is
    recorded under ``error``; a measurement that fails under ``errors`` (:func:`_phase`).
    """
    run_id = f"s{n}"
    folder = run_dir / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    own_storage = args.storage is None
    if args.storage == "memory":
        storage = ""
    elif own_storage:
        storage = tempfile.mkdtemp(prefix=f"riskactors-scale-{n}-")
    else:
        storage = str(Path(args.storage).resolve() / f"scale-{run_dir.name}-n{n}")
    res: dict[str, Any] = {"accounts": n, "shards": args.shards, "positions": args.positions, "plan": args.plan,
                           "storage_root": storage or "memory", "checks": {}}
    sink.append(res)
    t_size = time.perf_counter()
    server: rb.Server | None = None
    pids: list[int] = []
    api: Api | None = None
    try:
        t0 = time.perf_counter()
        server = start_server(n, args, folder, storage, keys_file, "server")
        server.wait_ready(args.ready_timeout)
        res["ready_s"] = round(time.perf_counter() - t0, 2)  # from the Popen, as restart_s
        res["memory_empty"] = tree_memory(server.pid)
        print(f"[{n:,}] server pid {server.pid} ready in {res['ready_s']} s, "
              f"{_gib(res['memory_empty']['rss_bytes'])} GiB empty", flush=True)
        api = Api(server.url, keys, args.timeout)

        reg = _phase(res, "register", post_batches, api, "/v1/accounts/batch", "admin", "accounts",
                     account_items(run_id, n, args.plan), args.batch, 201)
        if reg:
            print(f"[{n:,}] registered in {reg['seconds']:.1f} s ({reg['per_second']:,.0f}/s), "
                  f"item statuses {reg['item_statuses']}", flush=True)
        res["memory_registered"] = tree_memory(server.pid)
        for spec in (EURUSD, GBPJPY):  # the first mark of each instrument, not timed
            res.setdefault("setup_marks", {})[spec[0]] = api.call("POST", "/v1/marks", "router", mark(*spec))[1].status_code
        fills = _phase(res, "fills", post_batches, api, "/v1/fills/batch", "router", "fills",
                       fill_items(run_id, n, args.positions), args.batch, 200)
        if fills:
            print(f"[{n:,}] {fills['items']:,} fills in {fills['seconds']:.1f} s ({fills['per_second']:,.0f}/s), "
                  f"item statuses {fills['item_statuses']}, duplicates {fills['duplicates']}", flush=True)
        pids = bf.tree_pids(server)
        res["memory"] = tree_memory(server.pid)
        res["disk_bytes_after_fills"] = disk_bytes(storage)
        print(f"[{n:,}] memory {_gib(res['memory']['rss_bytes'])} GiB in {res['memory']['processes']} processes",
              flush=True)

        res["foreign_cores_before_reads"] = rb.wait_quiet([server], args.quiet_wait)
        _phase(res, "firm_view", timed_reads, api, "/v1/risk/firm", args.repeat)
        _phase(res, "challenge_view", timed_reads, api, f"/v1/risk/challenges/{challenge_id(run_id, 0)}",
               args.repeat)
        _phase(res, "mark_held", timed_marks, api, EURUSD, args.repeat)
        _phase(res, "mark_unheld", timed_marks, api, GBPJPY, args.repeat)
        _phase(res, "kill_switch", kill_switch, api, args.repeat)
        print(f"[{n:,}] firm view {_ms(res.get('firm_view'))}, challenge {_ms(res.get('challenge_view'))}, "
              f"EURUSD mark {_ms(res.get('mark_held'))}, GBPJPY mark {_ms(res.get('mark_unheld'))}, "
              f"kill switch {_ms((res.get('kill_switch') or {}).get('activate'))}", flush=True)

        if args.no_wrk:
            res["wrk"] = {"skipped": "--no-wrk"}
        elif not shutil.which("wrk"):
            res["wrk"] = {"skipped": "wrk not found (apt-get install -y wrk)"}
            print(f"[{n:,}] wrk not found (apt-get install -y wrk): order checks skipped", flush=True)
        else:
            res["foreign_cores_before_wrk"] = rb.wait_quiet([server], args.quiet_wait)
            w = _phase(res, "wrk", run_wrk, server, run_id, n, folder, args, keys.get("router"))
            if w:
                print(f"[{n:,}] wrk {w['rps']:,.0f} checks/s, p50 {w['p50_ms']:.1f} p99 {w['p99_ms']:.1f} ms, "
                      f"decisions {w['decisions']}, errors {w['wrk_errors']}", flush=True)

        b = _phase(res, "breach_mark", breaching_mark, api, args.positions)
        if b:
            print(f"[{n:,}] breaching mark {b['ms']:.0f} ms, breach_count {b.get('breach_count')}, "
                  f"{b['body_bytes']:,} bytes", flush=True)
        res["memory_end"] = tree_memory(server.pid)
        res["disk_bytes_before_restart"] = disk_bytes(storage)
        api.close()
        api = None

        pids = bf.tree_pids(server) or pids
        t0 = time.perf_counter()
        res["stop"] = bf.stop_and_check(server, pids)
        res["stop"]["seconds"] = round(time.perf_counter() - t0, 2)
        server, pids = None, []
        t0 = time.perf_counter()
        server = start_server(n, args, folder, storage, keys_file, "server-restarted")
        res["restart_waited_s"] = round(server.wait_ready(args.ready_timeout), 2)
        res["restart_s"] = round(time.perf_counter() - t0, 2)
        pids = bf.tree_pids(server)
        res["memory_restarted"] = tree_memory(server.pid)
        api = Api(server.url, keys, args.timeout)
        _phase(res, "firm_view_restarted", timed_reads, api, "/v1/risk/firm", 1)
        print(f"[{n:,}] restart to ready {res['restart_s']} s (stop {res['stop']['seconds']} s, "
              f"{res['stop']['how']}), firm view after it: "
              f"{(res.get('firm_view_restarted') or {}).get('accounts')} accounts", flush=True)
    except Exception as exc:  # noqa: BLE001 - a server that did not start or stop: keep what was measured
        res["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        print(f"[{n:,}] ERROR {res['error']}", file=sys.stderr, flush=True)
    finally:
        if api is not None:
            api.close()
        if server is not None:
            res["stop_final"] = bf.stop_and_check(server, bf.tree_pids(server) or pids)
        if own_storage and storage and not args.keep_storage:
            shutil.rmtree(storage, ignore_errors=True)
        res["wall_s"] = round(time.perf_counter() - t_size, 1)
        res["checks"] = size_checks(res)
    print(f"[{n:,}] done in {res['wall_s']} s; checks {res['checks']}", flush=True)
    return res


def size_checks(res: dict[str, Any]) -> dict[str, bool]:
    """What the run must show, whatever the timings: every registration 201, every fill applied,
    the breaching mark failing every account, the restarted server ready with every account."""
    n = res["accounts"]
    reg, fills, b = res.get("register") or {}, res.get("fills") or {}, res.get("breach_mark") or {}
    after = res.get("firm_view_restarted") or {}
    out = {"registered_all_201": reg.get("item_statuses") == {201: n},
           "fills_all_applied": (fills.get("item_statuses") == {200: n * res["positions"]}
                                 and fills.get("duplicates") == 0),
           "breach_count_is_accounts": b.get("breach_count") == n,
           "setup_marks_200": res.get("setup_marks") == {"EURUSD": 200, "GBPJPY": 200},
           "restart_ready": "restart_s" in res}
    if res["storage_root"] != "memory":
        out["restart_kept_accounts"] = after.get("accounts") == n
        out["restart_all_failed"] = (after.get("accounts_by_status") or {}).get("failed") == n
    return out


# --------------------------------------------------------------------------- report
def _secs(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:,.1f}"


def _gib(b: int | None) -> str:
    return "-" if b is None else f"{b / 2**30:.2f}"


def _ms(d: dict | None) -> str:
    if not d or d.get("median_ms") is None:
        return "-"
    bad = {s: c for s, c in d["statuses"].items() if int(s) >= 300}
    return f"{d['median_ms']:,.1f} ms (max {d['max_ms']:,.1f})" + (f", HTTP {bad}" if bad else "")


def _cell_memory(r: dict) -> str:
    m, e = (r.get("memory") or {}).get("rss_bytes"), (r.get("memory_empty") or {}).get("rss_bytes")
    if m is None or e is None:
        return "-"
    per = (m - e) / r["accounts"] / 1024
    pss = r["memory"].get("pss_bytes")
    return (f"{_gib(m)} GiB ({per:,.1f} KB/account above {_gib(e)} GiB empty"
            + (f"; PSS {_gib(pss)} GiB)" if pss is not None else ")"))


def _cell_batches(d: dict | None, unit: str, bad: str) -> str:
    if not d:
        return "-"
    return f"{_secs(d['seconds'])} s ({d['per_second']:,.0f} {unit}/s); {bad} {d['not_ok']}"


def _cell_breach(d: dict | None) -> str:
    if not d:
        return "-"
    if d["status"] != 200:
        return f"{d['ms']:,.0f} ms, HTTP {d['status']}"
    return f"{d['ms']:,.1f} ms; breach_count {d['breach_count']:,}, body {d['body_bytes'] / 1024:,.1f} KiB"


def _cell_kill(d: dict | None) -> str:
    if not d:
        return "-"
    return f"{_ms(d['activate'])}; release {d['release']['median_ms']:,.1f} ms"


def _cell_restart(r: dict) -> str:
    if "restart_s" not in r:
        return "-"
    disk = r.get("disk_bytes_before_restart")
    after = (r.get("firm_view_restarted") or {}).get("accounts")
    return (f"{_secs(r['restart_s'])} s (empty start {_secs(r['ready_s'])} s; stop {_secs(r['stop']['seconds'])} s"
            + (f", {disk / 2**20:,.1f} MiB on disk" if disk is not None else ", in memory")
            + f"; {after if after is not None else '-'} accounts after)")


def _cell_wrk(d: dict | None) -> str:
    if not d:
        return "-"
    if "skipped" in d:
        return f"skipped ({d['skipped']})"
    rejects = (d.get("decisions") or {}).get("reject", 0)
    return (f"{d['rps']:,.0f}/s, p50 {d['p50_ms']:,.1f} p99 {d['p99_ms']:,.1f} ms; non-2xx {d['non_2xx']}, "
            f"socket errors {d['socket_errors']}" + (f", rejected {rejects:,}" if rejects else ""))


def table_rows(positions: int) -> list[tuple[str, Any]]:
    """(label, cell function) of each row of the table."""
    return [
        ("memory of the server's processes (RSS)", _cell_memory),
        ("registering (accounts/batch, 1,000 per request)", lambda r: _cell_batches(r.get("register"),
                                                                                   "accounts", "non-201")),
        (f"opening {positions} position{'s' if positions != 1 else ''} per account (fills/batch)",
         lambda r: _cell_batches(r.get("fills"), "fills", "not applied")),
        ("GET /v1/risk/firm, median (max)", lambda r: _ms(r.get("firm_view"))),
        ("GET /v1/risk/challenges/{id} (10 % of the accounts)", lambda r: _ms(r.get("challenge_view"))),
        ("one EURUSD mark that every account holds", lambda r: _ms(r.get("mark_held"))),
        ("one GBPJPY mark that nobody holds", lambda r: _ms(r.get("mark_unheld"))),
        ("a breaching mark (every account fails)", lambda r: _cell_breach(r.get("breach_mark"))),
        ("firm kill switch, POST answered", lambda r: _cell_kill(r.get("kill_switch"))),
        ("restart to ready", _cell_restart),
        ("order checks, wrk closed loop", lambda r: _cell_wrk(r.get("wrk"))),
        ("wall time of this size", lambda r: f"{r['wall_s']:,.0f} s"),
    ]


def render(sizes: list[dict], positions: int, markdown: bool = False) -> str:
    """The table: one row per measurement, one column per account count."""
    head = ["accounts"] + [f"{r['accounts']:,}" for r in sizes]
    body = [[label] + [fn(r) for r in sizes] for label, fn in table_rows(positions)]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * len(sizes)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(row) for row in body)])


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--help`` lists them with their defaults)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--accounts", default="1000,10000,100000", help="account counts, comma-separated")
    p.add_argument("--shards", type=int, default=8, help="shard actors of each server")
    p.add_argument("--positions", type=int, default=1, help="EURUSD positions (1 lot each) opened per account")
    p.add_argument("--storage", default=None,
                   help="'memory' (no journal), a folder (each size gets a sub-folder, kept), or by default a "
                        "temporary root per size (durable, default fsync policy; deleted at the end)")
    p.add_argument("--keep-storage", action="store_true", help="keep the temporary storage roots")
    p.add_argument("--repeat", type=int, default=5, help="timed repeats of each read, mark and kill switch")
    p.add_argument("--batch", type=int, default=1000, help="items per accounts/batch and fills/batch request")
    p.add_argument("--plan", default="two_step_phase1", help="plan of the accounts (a preset of plans.json)")
    p.add_argument("--columnar-from", type=int, default=None,
                   help="RISKACTORS_COLUMNAR_FROM of the servers (holders of an instrument from which a host values "
                        "them in a numpy block; 0: never); default: the server's")
    p.add_argument("--no-wrk", action="store_true", help="skip the order checks under wrk")
    p.add_argument("--wrk-duration", type=int, default=10, help="seconds of the wrk run")
    p.add_argument("--wrk-connections", type=int, default=32)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--no-auth", action="store_true", help="run the servers without API keys (auth off)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per HTTP request of this script")
    p.add_argument("--ready-timeout", type=float, default=900.0, help="seconds to wait for /ready (start, restart)")
    p.add_argument("--quiet-wait", type=float, default=30.0,
                   help="before the reads and before wrk wait up to this many seconds for other processes to use "
                        "< 0.25 cores; 0: do not wait")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of the JSON, Markdown and logs")
    a = p.parse_args(argv)
    try:
        a.accounts = [int(x.replace("_", "")) for x in a.accounts.split(",") if x.strip()]
    except ValueError:
        p.error("--accounts: comma-separated integers")
    if not a.accounts or min(a.accounts) < CHALLENGES or a.shards < 1 or a.positions < 1 or a.repeat < 1:
        p.error(f"--accounts must be >= {CHALLENGES}; --shards, --positions and --repeat >= 1")
    if not 1 <= a.batch <= 10_000:
        p.error("--batch: 1 to 10,000 (the server's MAX_BATCH_ITEMS)")
    return a


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every size of ``args.accounts`` in turn; print the table, write the results.

    Returns
    -------
    dict
        The report written as JSON: ``sizes`` (one dict per account count, every figure of
        :func:`run_size` with its ``checks``), ``complete`` (False after an error or Ctrl-C,
        ``error`` then says which), arguments, machine and versions.
    """
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    results = Path(args.results)
    run_dir = results / f"scale-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    keys, keys_file = ({}, None) if args.no_auth else make_keys(run_dir)
    print(f"riskactors scale {stamp}: accounts {args.accounts}, {args.shards} shards, {args.positions} position(s) "
          f"per account, storage {args.storage or 'temporary, durable'}, repeat {args.repeat}, "
          f"{os.cpu_count()} CPUs; logs in {run_dir}", flush=True)
    sizes: list[dict[str, Any]] = []
    error = None
    try:
        for n in args.accounts:
            run_size(n, args, run_dir, keys, keys_file, sizes)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - report what was measured; servers are stopped
        error = f"{type(exc).__name__}: {exc}"
        print(f"\nERROR: {error}", file=sys.stderr)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_end": os.getloadavg(),
                    "memory_bytes": psutil.virtual_memory().total},
        "versions": rb.versions(),
        "sizes": sizes,
        "complete": error is None,
        "error": error,
        "logs": str(run_dir),
    }
    out_json = results / f"scale-{stamp}.json"
    out_json.write_text(json.dumps(report, indent=1, default=str))
    md = [f"# Scale {stamp}", "",
          (f"`{report['command']}`; {os.cpu_count()} CPUs; {args.shards} shards, {args.positions} position(s) per "
           f"account, storage {args.storage or 'temporary (durable)'}, repeat {args.repeat}."), ""]
    if sizes:
        md.append(render(sizes, args.positions, markdown=True))
        print()
        print(render(sizes, args.positions))
        print()
        for r in sizes:
            failed = [k for k, ok in r["checks"].items() if not ok]
            errs = r.get("errors") or {}
            print(f"{r['accounts']:,} accounts: checks " + ("all passed" if not failed else f"FAILED {failed}")
                  + (f"; errors {errs}" if errs else ""))
    (results / f"scale-{stamp}.md").write_text("\n".join(md) + "\n")
    print(f"results: {out_json} and .md")
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the scale table; exit 0 when every size ran and passed its checks, 1 when a check
    failed or a measurement errored, 2 when the run stopped early."""
    args = parse_args(argv)
    if rb.tools_missing(wrk=False):
        return 2

    rb.interrupt_on_sigterm()
    report = run(args)
    if not report["complete"]:
        return 2
    bad = any(not all(r["checks"].values()) or r.get("errors") for r in report["sizes"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
