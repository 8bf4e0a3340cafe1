"""Order-check throughput with 1, 2 and 4 fronts (``serve --workers N``) beside the bare FastAPI baseline.

One entry point::

    .venv/bin/python load_tests/bench_fronts.py [--workers 1,2,4] [--duration 20] [--connections 32]
                                                [--shards 2] [--repeat 1]

In one run it

* starts the baseline once (``uvicorn load_tests/baseline_app.py``) and measures it first;
* for each N of ``--workers``: starts a fresh ``riskactors serve --workers N`` (embedded Ray,
  ``--shards`` shard actors, its own storage root and deployment name), waits for ``/ready`` and
  for all N fronts to be listed by ``GET /v1/cluster``, registers 1 + 128 accounts and a
  EURUSD mark, warms up (300 sequential checks, then 3 s of wrk that are not measured), runs
  wrk closed loop ("max" mode of ``run_bench.py``: ``wrk_check.lua``, ``--connections``
  connections, 2 threads) for ``--duration`` s, and stops it;
* measures the baseline again at the end (the machine is noisy: the mean of the two baseline
  runs is the reference);
* during every measured run records the CPU each process used (psutil, per process and per
  thread): the front processes, the ``serve`` parent (with N > 1 the uvicorn supervisor that
  owns Ray), the shard actors (``ray::AccountHost``), the other actors (supervisor,
  idempotency ledger), the Ray daemons (GCS, raylet, dashboard, agents, idle workers), wrk,
  this script, and whatever else ran on the machine (``foreign``);
* with N = ``--py-spy-workers`` (2) and py-spy found (``--py-spy``, ``.venv/bin/py-spy`` or
  ``py-spy`` on PATH), after the measured run, a separate wrk pass under which py-spy records
  one shard and one front for ``--py-spy-seconds`` (5) s; the top frames go in the report. It
  is not part of the measured run (py-spy pauses the process it samples).

It prints a table (target, workers, rps, p50, p99, non-2xx, socket errors, ratio to the
baseline rps, ratio to the 1-worker server) and the CPU split, and writes the same as JSON and
Markdown to ``load_tests/results/fronts-<UTC stamp>.{json,md}`` (logs in
``load_tests/results/fronts-<stamp>/``). Every server is stopped through its Popen handle
(SIGTERM, then SIGKILL of its session), also on error or Ctrl-C; processes of its tree still
alive afterwards are listed in the report and killed by PID.

The helpers (starting and stopping servers, readiness, accounts, warm-up, wrk and its output,
quiet-wait) are those of ``load_tests/run_bench.py``, imported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run_bench as rb  # after the path insert; re-executes under the project venv if needed

httpx, psutil = rb.httpx, rb.psutil

ROOT, HERE, RESULTS, HOST = rb.ROOT, rb.HERE, rb.RESULTS, rb.HOST
WRK_ACCOUNTS = 128
GROUPS = ["fronts", "serve_parent", "shards", "other_actors", "ray_daemons", "baseline", "wrk", "bench", "foreign"]
GROUP_LABEL = {"fronts": "fronts", "serve_parent": "serve parent", "shards": "shards", "other_actors": "other actors",
               "ray_daemons": "Ray daemons", "baseline": "baseline", "wrk": "wrk", "bench": "this script",
               "foreign": "foreign", "busy": "machine busy", "idle": "idle"}


# --------------------------------------------------------------------------- process accounting
def classify(proc: psutil.Process, server_pid: int | None, workers: int, baseline_pid: int | None) -> str:
    """Which group a process of a server tree (or the baseline) belongs to."""
    if proc.pid == baseline_pid:
        return "baseline"
    if proc.pid == server_pid:
        # --workers 1: the serve process itself is the front (and the Ray driver)
        return "fronts" if workers == 1 else "serve_parent"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        cmd = ""
    if "multiprocessing.spawn" in cmd:  # uvicorn's worker processes
        return "fronts"
    if "multiprocessing.resource_tracker" in cmd:
        return "serve_parent"
    if cmd.startswith("ray::AccountHost"):
        return "shards"
    if cmd.startswith(("ray::_RaySupervisor", "ray::IdempotencyLedger", "ray::Supervisor")):
        return "other_actors"
    return "ray_daemons"  # gcs_server, raylet, dashboard, monitors, agents, ray::IDLE workers


def _thread_names(pid: int) -> dict[int, str]:
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                out[int(tid)] = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            except OSError:
                pass
    except OSError:
        pass
    return out


def proc_snapshot(server: rb.Server | None, workers: int, baseline: rb.Server | None,
                  extra: dict[int, str] | None = None) -> dict[str, Any]:
    """CPU seconds so far of every process of the server tree and the baseline (per thread for
    fronts and shards), of the reaped children (wrk), of this script, and of the machine."""
    procs: dict[int, dict[str, Any]] = {}
    roots = [s for s in (server, baseline) if s is not None]
    for root_srv in roots:
        try:
            root = psutil.Process(root_srv.pid)
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in members:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    group = classify(p, server.pid if server else None, workers, baseline.pid if baseline else None)
                    entry = {"group": group, "cpu": t.user + t.system, "created": p.create_time(),
                             "cmd": (" ".join(p.cmdline()) or p.name())[:120]}
                    if group in ("fronts", "shards"):
                        names = _thread_names(p.pid)
                        entry["threads"] = {th.id: (names.get(th.id, "?"), th.user_time + th.system_time)
                                            for th in p.threads()}
                    if group == "shards":  # write syscalls: the journal writes one record per check_many call
                        io = p.io_counters()
                        entry["io"] = (io.write_count, io.write_bytes)
                procs[p.pid] = entry
            except psutil.Error:
                pass
    for pid, group in (extra or {}).items():
        try:
            p = psutil.Process(pid)
            t = p.cpu_times()
            procs[pid] = {"group": group, "cpu": t.user + t.system, "created": p.create_time(), "cmd": group}
        except psutil.Error:
            pass
    me = psutil.Process().cpu_times()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = psutil.cpu_times()
    return {"t": time.monotonic(), "procs": procs, "bench": me.user + me.system,
            "children": ru.ru_utime + ru.ru_stime,
            "busy": sum(m) - m.idle - getattr(m, "iowait", 0.0)}


def proc_delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Cores used between two snapshots: per group, per front and shard process (with its
    busiest threads), the load generator (children reaped in between: wrk) and ``foreign``."""
    secs = b["t"] - a["t"]
    groups = {g: 0.0 for g in GROUPS}
    per_proc = []
    for pid, e in b["procs"].items():
        old = a["procs"].get(pid)
        same = old is not None and abs(old["created"] - e["created"]) < 0.5
        used = e["cpu"] - (old["cpu"] if same else 0.0)
        groups[e["group"]] += used / secs
        if e["group"] in ("fronts", "shards"):
            threads = []
            for tid, (name, cpu) in e.get("threads", {}).items():
                prev = old.get("threads", {}).get(tid) if same else None
                threads.append((name, (cpu - (prev[1] if prev else 0.0)) / secs))
            threads.sort(key=lambda x: -x[1])
            per_proc.append({"pid": pid, "group": e["group"], "cores": round(used / secs, 3),
                             "top_threads": [{"name": n, "cores": round(c, 3)} for n, c in threads[:3]]})
            if "io" in e:
                io0 = old.get("io", (0, 0)) if same else (0, 0)
                per_proc[-1].update(write_calls=e["io"][0] - io0[0], write_bytes=e["io"][1] - io0[1])
    groups["wrk"] = (b["children"] - a["children"]) / secs
    groups["bench"] = (b["bench"] - a["bench"]) / secs
    busy = (b["busy"] - a["busy"]) / secs
    ours = sum(v for g, v in groups.items() if g != "foreign")
    groups["foreign"] = max(0.0, busy - ours)
    groups["busy"] = busy
    groups["idle"] = max(0.0, (os.cpu_count() or 1) - busy)
    per_proc.sort(key=lambda x: (x["group"], -x["cores"]))
    return {"seconds": round(secs, 2), "cores": {k: round(v, 3) for k, v in groups.items()}, "processes": per_proc}


# --------------------------------------------------------------------------- servers
def start_server(n: int, args, run_dir: Path, stamp: str) -> tuple[rb.Server, str]:
    port = rb.free_port()
    storage = tempfile.mkdtemp(prefix=f"riskactors-fronts-w{n}-")
    cmd = [*rb.venv_tool("riskactors"), "serve", "--host", HOST, "--port", str(port), "--workers", str(n),
           "--shards", str(args.shards)]
    env = {"RISKACTORS_STORAGE_ROOT": storage, "RISKACTORS_DEPLOYMENT": f"fronts-{stamp}-w{n}"}
    return rb.Server(f"server-w{n}", cmd, run_dir / f"server-w{n}.log", port, env=env), storage


def wait_fronts(server: rb.Server, n: int, timeout: float) -> list[int]:
    """Wait until ``GET /v1/cluster`` lists ``n`` fronts (each front beats on start-up); returns their pids."""
    deadline = time.monotonic() + timeout
    pids: list[int] = []
    with httpx.Client(base_url=server.url, timeout=5.0) as c:
        while time.monotonic() < deadline:
            try:
                r = c.get("/v1/cluster")
                if r.status_code == 200:
                    pids = sorted(f["pid"] for f in r.json().get("fronts", []))
                    if len(pids) >= n:
                        return pids
            except httpx.HTTPError:
                pass
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
            time.sleep(0.5)
    raise RuntimeError(f"{server.name}: only {len(pids)} of {n} fronts attached after {timeout:.0f} s")


def tree_pids(server: rb.Server) -> list[int]:
    try:
        root = psutil.Process(server.pid)
        return [root.pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.Error:
        return []


def stop_and_check(server: rb.Server, pids: list[int], grace: float = 15.0) -> dict[str, Any]:
    """Stop the server through its Popen handle, then wait for every process of its tree (pids
    taken while it ran) to be gone; any still alive after ``grace`` s is killed by PID."""
    how = server.stop()
    deadline = time.monotonic() + grace
    alive = [p for p in pids if psutil.pid_exists(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = []
        for pid in pids:
            try:
                p = psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.Error:
                pass
    killed = []
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    stopped_line = "riskactors: stopped" in server.log_tail(5)
    return {"how": how, "exit_code": server.proc.returncode, "printed_stopped": stopped_line,
            "tree_pids": len(pids), "left_after_grace_killed": killed}


# --------------------------------------------------------------------------- load
def wrk_args(args, duration: int) -> SimpleNamespace:
    """The attributes ``run_bench.run_wrk`` reads, closed loop (no pacing)."""
    return SimpleNamespace(wrk_threads=args.wrk_threads, wrk_connections=args.connections, duration=duration,
                           rate=0.0)


def measure(target: rb.Server, is_base: bool, args, log_dir: Path, run_id: str, snap) -> dict[str, Any]:
    """One measured wrk run (``run_bench.run_wrk``, max mode) with the CPU split around it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    before_metrics = None if is_base else rb.front_check_seconds(target.url)
    s0 = snap()
    row = rb.run_wrk(target, is_base, "max", wrk_args(args, args.duration), log_dir, run_id, WRK_ACCOUNTS)
    s1 = snap()
    row["cpu"] = proc_delta(s0, s1)
    after = None if is_base else rb.front_check_seconds(target.url)
    if before_metrics and after and after["count"] > before_metrics["count"]:
        row["server_handler_mean_ms"] = round((after["sum"] - before_metrics["sum"])
                                              / (after["count"] - before_metrics["count"]) * 1000, 3)
    writes = sum(p.get("write_calls", 0) for p in row["cpu"]["processes"] if p["group"] == "shards")
    if not is_base and row["requests"]:
        # one journal record (a write, then one fsync) per check_many call: checks per call ≈ 1 / this
        row["shard_writes_per_check"] = round(writes / row["requests"], 4)
    wrk_err = row.get("wrk_errors") or {}
    row["non_2xx"] = wrk_err.get("status", 0)
    row["socket_errors"] = sum(v for k, v in wrk_err.items() if k != "status")
    return row


def find_py_spy(option: str | None) -> str | None:
    if option == "off":
        return None
    for cand in ([option] if option else []) + [str(ROOT / ".venv" / "bin" / "py-spy"), shutil.which("py-spy") or ""]:
        if cand and Path(cand).exists() and os.access(cand, os.X_OK):
            return cand
    return None


def summarise_collapsed(path: Path, rate: int, seconds: float, top: int = 12) -> dict[str, Any]:
    """Top frames of a py-spy ``--format raw`` (collapsed stacks) file: self (leaf) and inclusive
    shares of the samples, and the samples py-spy counted as not idle over rate × seconds (its
    own heuristic: waits inside native calls, an fsync for one, can count as active)."""
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = stack.split(";")
        self_c[frames[-1]] = self_c.get(frames[-1], 0) + c
        for f in set(frames):
            incl[f] = incl.get(f, 0) + c
    expected = rate * seconds

    def top_of(d: dict[str, int]) -> list[dict[str, Any]]:
        return [{"frame": f, "samples": c, "share": round(c / total, 3) if total else None}
                for f, c in sorted(d.items(), key=lambda x: -x[1])[:top]]

    return {"samples": total, "expected_samples_per_thread": int(expected),
            "busy_share_of_wall": round(total / expected, 3) if expected else None,
            "self": top_of(self_c), "inclusive": top_of(incl)}


def py_spy_pass(exe: str, server: rb.Server, targets: dict[str, int], args, log_dir: Path, run_id: str) -> dict:
    """A wrk pass (not measured) under which py-spy records each target pid for ``--py-spy-seconds``."""
    secs = args.py_spy_seconds
    log_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"py_spy": exe, "seconds": secs, "rate": 100, "targets": {}}
    result: dict[str, Any] = {}

    def load():
        try:
            result["wrk"] = rb.run_wrk(server, False, "max", wrk_args(args, secs + 5), log_dir, run_id, WRK_ACCOUNTS)
        except Exception as exc:  # noqa: BLE001 - reported
            result["error"] = repr(exc)

    rb.register_accounts(server.url, run_id, WRK_ACCOUNTS)
    th = threading.Thread(target=load, daemon=True)
    th.start()
    time.sleep(2.0)
    spies = {}
    for name, pid in targets.items():
        raw = log_dir / f"py-spy-{name}-{pid}.txt"
        cmd = [exe, "record", "--pid", str(pid), "--duration", str(secs), "--rate", "100", "--format", "raw",
               "--output", str(raw), "--nonblocking"]
        spies[name] = (pid, raw, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                                  stderr=open(raw.with_suffix(".log"), "wb")))  # noqa: SIM115
    for name, (pid, raw, proc) in spies.items():
        try:
            proc.wait(secs + 30)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        entry: dict[str, Any] = {"pid": pid, "exit_code": proc.returncode, "file": str(raw.relative_to(ROOT))}
        if raw.exists() and raw.stat().st_size:
            entry.update(summarise_collapsed(raw, 100, secs))
        else:
            entry["error"] = raw.with_suffix(".log").read_text(errors="replace")[-500:]
        out["targets"][name] = entry
    th.join(secs + 60)
    out["wrk_rps_during"] = round(result["wrk"]["rps"], 1) if "wrk" in result else result.get("error")
    return out


# --------------------------------------------------------------------------- report
def summarise(rows: list[dict]) -> list[dict]:
    """One line per target (mean over its runs), with the ratios."""
    base_rps = [r["rps"] for r in rows if r["target"] == "baseline"]
    base_mean = statistics.fmean(base_rps) if base_rps else None
    lines: list[dict] = []
    order = [("baseline", "start"), *sorted({("server", r["workers"]) for r in rows if r["target"] == "server"},
                                             key=lambda x: x[1]), ("baseline", "end")]
    for target, key in order:
        rs = [r for r in rows if r["target"] == target and (r.get("phase") if target == "baseline" else r["workers"])
              == key]
        if not rs:
            continue
        lines.append({"target": target if target == "server" else f"baseline ({key})",
                      "workers": rs[0]["workers"] if target == "server" else None, "runs": len(rs),
                      "rps": statistics.fmean(r["rps"] for r in rs),
                      "p50_ms": statistics.fmean(r["p50_ms"] for r in rs),
                      "p99_ms": statistics.fmean(r["p99_ms"] for r in rs),
                      "non_2xx": sum(r["non_2xx"] for r in rs), "socket_errors": sum(r["socket_errors"] for r in rs),
                      "shard_writes_per_check": (statistics.fmean(r["shard_writes_per_check"] for r in rs)
                                                 if all("shard_writes_per_check" in r for r in rs) else None),
                      "cores": {k: round(statistics.fmean(r["cpu"]["cores"][k] for r in rs), 2)
                                for k in rs[0]["cpu"]["cores"]}})
    one = next((ln["rps"] for ln in lines if ln["workers"] == 1), None)
    for ln in lines:
        # CPU per check, ms: what each group spends on one check (cores / checks per second)
        ln["cpu_ms_per_check"] = {k: round(v * 1000 / ln["rps"], 3) for k, v in ln["cores"].items()
                                  if k not in ("busy", "idle", "foreign", "baseline") and ln["rps"]}
        ln["ratio_baseline"] = ln["rps"] / base_mean if base_mean else None
        ln["ratio_1_worker"] = ln["rps"] / one if one and ln["workers"] else None
    return lines


TABLE = [("target", "target"), ("workers", "workers"), ("rps", "rps"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
         ("non_2xx", "non-2xx"), ("socket_errors", "socket err"), ("ratio_baseline", "÷ baseline"),
         ("ratio_1_worker", "÷ 1 worker")]
CPU_COLS = ["fronts", "serve_parent", "shards", "other_actors", "ray_daemons", "wrk", "bench", "foreign", "busy",
            "idle"]


def _cell(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if key == "rps":
        return f"{v:,.0f}"
    if key.startswith("ratio"):
        return f"{v:.2f}×"
    if isinstance(v, float):
        return f"{v:.2f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _grid(head: list[str], body: list[list[str]], markdown: bool) -> str:
    if markdown:
        return "\n".join(["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
                          *("| " + " | ".join(r) + " |" for r in body)])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(r) for r in body)])


def render(lines: list[dict], markdown: bool = False) -> str:
    main = _grid([h for _, h in TABLE], [[_cell(k, ln.get(k)) for k, _ in TABLE] for ln in lines], markdown)
    cpu = _grid(["target", "workers", *(GROUP_LABEL[c] for c in CPU_COLS)],
                [[ln["target"], _cell("workers", ln["workers"]), *(f"{ln['cores'].get(c, 0):.2f}" for c in CPU_COLS)]
                 for ln in lines], markdown)
    return f"{main}\n\nCPU during each measured run, in cores of {os.cpu_count()}:\n\n{cpu}"


def per_process_lines(rows: list[dict]) -> list[str]:
    out = []
    for r in rows:
        if r["target"] != "server":
            continue
        parts = []
        for p in r["cpu"]["processes"]:
            top = p["top_threads"][0] if p["top_threads"] else None
            parts.append(f"{p['group'][:-1]} {p['pid']} {p['cores']:.2f}"
                         + (f" (busiest thread {top['name']} {top['cores']:.2f})" if top else ""))
        out.append(f"workers={r['workers']}: " + "; ".join(parts))
    return out


def reading(lines: list[dict]) -> list[str]:
    """Plain statements from the CPU split of each server run (the README has the reading)."""
    cpus = os.cpu_count() or 1
    out = []
    for ln in lines:
        if ln["workers"] is None:
            continue
        c = ln["cores"]
        ray = c["shards"] + c["other_actors"] + c["ray_daemons"] + c["serve_parent"]
        out.append(f"workers={ln['workers']}: machine {c['busy']:.2f}/{cpus} cores busy "
                   f"({100 * c['busy'] / cpus:.0f} %): fronts {c['fronts']:.2f}, shards {c['shards']:.2f}, "
                   f"other Ray (parent, actors, daemons) {ray - c['shards']:.2f}, wrk {c['wrk']:.2f}, foreign {c['foreign']:.2f}; "
                   f"fronts {100 * c['fronts'] / max(c['busy'], 1e-9):.0f} % of the busy time")
        m = ln["cpu_ms_per_check"]
        srv = sum(m.get(k, 0.0) for k in ("fronts", "serve_parent", "shards", "other_actors", "ray_daemons"))
        out.append(f"workers={ln['workers']}: CPU per check {srv:.3f} ms in the server (fronts {m['fronts']:.3f}, "
                   f"shards {m['shards']:.3f}) + wrk {m['wrk']:.3f} ms: {cpus} cores allow at most "
                   f"{cpus * 1000 / (srv + m['wrk']):,.0f} checks/s at this cost")
        w = ln.get("shard_writes_per_check")
        if w:
            out.append(f"workers={ln['workers']}: shard write calls per check {w:.3f} (the journal writes one record "
                       f"per check_many call: about {1 / w:.1f} checks per call)")
    return out


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workers", default="1,2,4", help="front counts to measure (comma-separated)")
    p.add_argument("--duration", type=int, default=20, help="seconds per measured wrk run")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--shards", type=int, default=2, help="shard actors of each server")
    p.add_argument("--repeat", type=int, default=1,
                   help="measured runs per server and per baseline slot (start, end); the table shows means")
    p.add_argument("--warmup", type=int, default=300, help="sequential warm-up checks per target")
    p.add_argument("--warmup-wrk", type=int, default=3, help="seconds of unmeasured wrk after the warm-up checks")
    p.add_argument("--ready-timeout", type=float, default=180.0)
    p.add_argument("--quiet-wait", type=float, default=60.0,
                   help="before each measured run wait up to this many seconds for other processes to use "
                        "< 0.25 cores; 0: do not wait")
    p.add_argument("--py-spy", default=None, help="py-spy executable; 'off' to skip (default: .venv/bin/py-spy or PATH)")
    p.add_argument("--py-spy-workers", type=int, default=2, help="the front count whose server py-spy samples")
    p.add_argument("--py-spy-seconds", type=int, default=5)
    a = p.parse_args(argv)
    try:
        a.workers = [int(x) for x in a.workers.split(",") if x.strip()]
    except ValueError:
        p.error("--workers: comma-separated integers")
    if not a.workers or any(n < 1 for n in a.workers) or a.duration <= 0 or a.repeat < 1 or a.connections < 1:
        p.error("--workers, --duration, --connections and --repeat must be >= 1")
    return a


def _quiet(servers: list[rb.Server], limit: float) -> float | None:
    return rb.wait_quiet([s for s in servers if s is not None], limit)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if rb.tools_missing(wrk=True):
        return 2
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    tag = started.strftime("%H%M%S")
    run_dir = RESULTS / f"fronts-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    spy_exe = find_py_spy(args.py_spy)
    print(f"riskactors fronts bench {stamp}: workers {args.workers}, {args.duration} s x {args.repeat} per target, "
          f"{args.connections} connections, {args.shards} shards, {os.cpu_count()} CPUs, py-spy "
          f"{spy_exe or 'not found'}; logs in {run_dir.relative_to(ROOT)}")

    rb.interrupt_on_sigterm()
    rows: list[dict] = []
    servers_info: dict[str, Any] = {}
    profile: dict[str, Any] | None = None
    exit_code = 0
    baseline: rb.Server | None = None
    current: tuple[rb.Server, str, list[int]] | None = None

    def base_runs(phase: str) -> None:
        for i in range(args.repeat):
            quiet = _quiet([baseline], args.quiet_wait)
            run_id = f"{tag}b{phase[0]}{i}"
            print(f"run: baseline ({phase}) #{i + 1} ... ", end="", flush=True)
            row = measure(baseline, True, args, run_dir / f"baseline-{phase}-{i}", run_id,
                          lambda: proc_snapshot(None, 0, baseline))
            row.update(target="baseline", phase=phase, workers=None, run=i, foreign_cores_before=quiet)
            rows.append(row)
            print(f"{row['rps']:,.0f}/s p50 {row['p50_ms']:.2f} p99 {row['p99_ms']:.2f} ms, "
                  f"CPU {row['cpu']['cores']}")

    try:
        bport = rb.free_port()
        baseline = rb.Server("baseline", [*rb.venv_tool("uvicorn"), "--app-dir", str(HERE), "baseline_app:app",
                                          "--host", HOST, "--port", str(bport), "--log-level", "warning"],
                             run_dir / "baseline.log", bport)
        print(f"baseline ready in {baseline.wait_ready(30.0):.1f} s (pid {baseline.pid})")
        rb.warm_up(baseline.url, f"{tag}warm", args.warmup)
        (run_dir / "warm-baseline").mkdir()
        rb.run_wrk(baseline, True, "max", wrk_args(args, args.warmup_wrk), run_dir / "warm-baseline", f"{tag}wb",
                   WRK_ACCOUNTS)
        base_runs("start")

        for n in args.workers:
            server, storage = start_server(n, args, run_dir, tag)
            current = (server, storage, [])
            info: dict[str, Any] = {"pid": server.pid, "command": " ".join(server.cmd), "storage_root": storage}
            info["ready_s"] = round(server.wait_ready(args.ready_timeout), 2)
            t0 = time.monotonic()
            info["front_pids"] = wait_fronts(server, n, 60.0)
            info["fronts_attached_s"] = round(time.monotonic() - t0, 2)
            rb.register_accounts(server.url, f"{tag}w{n}warm", 4)
            info["warmup"] = rb.warm_up(server.url, f"{tag}w{n}warm", args.warmup)
            wdir = run_dir / f"warm-w{n}"
            wdir.mkdir()
            rb.register_accounts(server.url, f"{tag}w{n}ww", WRK_ACCOUNTS)
            rb.run_wrk(server, False, "max", wrk_args(args, args.warmup_wrk), wdir, f"{tag}w{n}ww", WRK_ACCOUNTS)
            current = (server, storage, tree_pids(server))
            print(f"server --workers {n} (pid {server.pid}) ready in {info['ready_s']} s, fronts {info['front_pids']}, "
                  f"{len(current[2])} processes in its tree")
            snap = lambda s=server, k=n: proc_snapshot(s, k, baseline)
            for i in range(args.repeat):
                run_id = f"{tag}w{n}r{i}"
                rb.register_accounts(server.url, run_id, WRK_ACCOUNTS)
                quiet = _quiet([baseline, server], args.quiet_wait)
                print(f"run: server --workers {n} #{i + 1} ... ", end="", flush=True)
                row = measure(server, False, args, run_dir / f"server-w{n}-{i}", run_id, snap)
                row.update(target="server", workers=n, run=i, foreign_cores_before=quiet)
                rows.append(row)
                print(f"{row['rps']:,.0f}/s p50 {row['p50_ms']:.2f} p99 {row['p99_ms']:.2f} ms, non-2xx "
                      f"{row['non_2xx']}, CPU {row['cpu']['cores']}")
            if spy_exe and n == args.py_spy_workers:
                procs = psutil.Process(server.pid).children(recursive=True)
                shard = next((p.pid for p in procs if classify(p, server.pid, n, None) == "shards"), None)
                front = info["front_pids"][0] if info["front_pids"] else None
                targets = {k: v for k, v in (("shard", shard), ("front", front)) if v}
                print(f"py-spy: recording {targets} for {args.py_spy_seconds} s under wrk (not measured) ...")
                try:
                    profile = py_spy_pass(spy_exe, server, targets, args, run_dir / f"py-spy-w{n}", f"{tag}w{n}spy")
                except Exception as exc:  # noqa: BLE001 - optional: the benchmark goes on without it
                    profile = {"error": repr(exc), "targets": {}}
                    print(f"py-spy pass failed: {exc!r}")
                profile["workers"] = n
                profile.setdefault("seconds", args.py_spy_seconds)

            current = (server, storage, tree_pids(server) or current[2])
            info["stop"] = stop_and_check(server, current[2])
            shutil.rmtree(storage, ignore_errors=True)
            current = None
            servers_info[f"w{n}"] = info
            print(f"stopped --workers {n}: {info['stop']}")

        base_runs("end")
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - report, stop the servers, keep partial results
        print(f"\nERROR: {type(exc).__name__}: {exc}", file=sys.stderr)
        exit_code = 2
    finally:
        if current is not None:
            server, storage, pids = current
            res = stop_and_check(server, pids or tree_pids(server))
            shutil.rmtree(storage, ignore_errors=True)
            servers_info.setdefault(server.name, {})["stop"] = res
            print(f"stopped {server.name}: {res}")
        if baseline is not None:
            print(f"stopped baseline: {baseline.stop()}")

    lines = summarise(rows) if rows else []
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_end": os.getloadavg()},
        "versions": rb.versions(),
        "summary": lines,
        "reading": reading(lines),
        "rows": rows,
        "servers": servers_info,
        "profile": profile,
        "logs": str(run_dir.relative_to(ROOT)),
        "complete": exit_code == 0,
    }
    out_json = RESULTS / f"fronts-{stamp}.json"
    out_json.write_text(json.dumps(report, indent=1, default=str))
    md = [f"# Fronts bench {stamp}", "", (f"`{report['command']}`; {os.cpu_count()} CPUs; wrk {args.connections} "
                                          f"connections, {args.wrk_threads} threads, {args.duration} s per run; "
                                          f"{args.shards} shards."), ""]
    if lines:
        md += [render(lines, markdown=True), "", *("- " + s for s in reading(lines)), "",
               "Per process (cores):", "", *("- " + s for s in per_process_lines(rows))]
    if profile:
        md += ["", (f"py-spy ({profile['seconds']} s, workers={profile['workers']}, wrk "
                    f"{profile.get('wrk_rps_during')}/s meanwhile):"), ""]
        for name, t in profile["targets"].items():
            md.append(f"- {name} pid {t['pid']}: active in {t.get('busy_share_of_wall')} of the wall time (py-spy, "
                      "not idle); top self frames: "
                      + "; ".join(f"{f['frame']} {100 * (f['share'] or 0):.0f} %" for f in t.get("self", [])[:6]))
    (RESULTS / f"fronts-{stamp}.md").write_text("\n".join(md) + "\n")

    if lines:
        print()
        print(render(lines))
        print()
        for s in reading(lines):
            print(s)
        print("per process:")
        for s in per_process_lines(rows):
            print("  " + s)
        noisy = [r for r in rows if r["cpu"]["cores"]["foreign"] > 0.25]
        if noisy:
            print(f"NOTE: other processes used up to {max(r['cpu']['cores']['foreign'] for r in noisy):.2f} cores "
                  f"during {len(noisy)} of {len(rows)} runs: compare the ratios, not the absolute rps")
    if profile:
        print(f"py-spy (workers={profile['workers']}, {profile['seconds']} s, wrk {profile.get('wrk_rps_during')}/s):")
        for name, t in profile["targets"].items():
            print(f"  {name} pid {t['pid']}: active (py-spy, not idle) in {t.get('busy_share_of_wall')} of the wall time, "
                  f"{t.get('samples')} samples; top self frames:")
            for f in t.get("self", [])[:8]:
                print(f"    {100 * (f['share'] or 0):5.1f} %  {f['frame']}")
    print(f"results: {out_json.relative_to(ROOT)} and .md")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
