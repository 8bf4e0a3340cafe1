"""Load test of ``POST /v1/orders/check``: the real server beside a bare FastAPI baseline.

One entry point (``make bench``)::

    python load_tests/run_bench.py [--rate 250] [--duration 30] [--users 32] [--tool locust|wrk|both]

It starts, each as a subprocess on its own free port of 127.0.0.1,

* the baseline: ``uvicorn load_tests/baseline_app.py`` (FastAPI + pydantic, same body and
  response models, no risk logic, no Ray);
* the real server: ``riskactors serve`` (embedded local Ray, sharded placement, 2 shards);

waits for ``GET /ready``, sets up accounts and a EURUSD mark over HTTP (httpx), warms both up,
then measures each target in two modes:

* ``fixed``: an offered rate of ``--rate`` checks/s (Locust: ``constant_throughput`` per
  user, ``rate / users`` each; wrk: a wrk2-like send schedule in ``wrk_check.lua``, only with
  ``--tool wrk`` or ``--wrk-paced``);
* ``max``: closed loop, as fast as the clients go (Locust: ``--users`` users without wait;
  wrk: ``--wrk-connections`` connections, default 32).

It prints a table (tool, target, mode, requests, failures, rps, p50/p95/p99 in ms), the
server/baseline ratios of throughput and p95, and the floor check (server p95 < 10 ms at the
fixed rate: PASS/FAIL), and writes the same as JSON (and Markdown) to
``load_tests/results/`` (git-ignored), with the logs and Locust CSVs of the run in a
sub-folder. Both servers are stopped through their Popen handles at the end, also on error.

The load generator runs on the same machine as the servers (single Locust process), so on a
small machine the absolute numbers are pessimistic; the ratio to the baseline measured in
the same run is the figure to compare across machines.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "load_tests"
RESULTS = HERE / "results"
VENV_PY = ROOT / ".venv" / "bin" / "python"

try:
    import httpx
    try:
        import psutil
    except ImportError:  # optional: CPU accounting per run
        psutil = None
except ImportError:  # started with a Python outside the project venv: re-run with the venv's
    if VENV_PY.exists() and Path(sys.executable).resolve() != VENV_PY.resolve():
        os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])
    raise

CHECK_PATH = "/v1/orders/check"
HOST = "127.0.0.1"
INSTRUMENT, BID, ASK = "EURUSD", 1.08500, 1.08510
# same overrides as locustfile.LIMITS: checks are accepted, every rule still evaluated
LIMITS = {"max_leverage": 1e6, "account_leverage": 1e6, "max_position_lots": 1e6, "max_open_positions": 1000,
          "daily_loss_limit": 1e9, "max_loss_limit": 1e9, "max_orders_per_second": 1_000_000}


# --------------------------------------------------------------------------- processes
def tools_missing(wrk: bool) -> bool:
    """Print what a benchmark needs and this environment lacks (psutil; wrk when ``wrk``);
    True when something is missing (the caller exits 2)."""
    missing = False
    if psutil is None:
        print("psutil not installed in this environment (it is in .[test])", file=sys.stderr)
        missing = True
    if wrk and not shutil.which("wrk"):
        print("wrk not found (apt-get install -y wrk)", file=sys.stderr)
        missing = True
    return missing


def interrupt_on_sigterm() -> None:
    """SIGTERM on a benchmark stops what it started, as Ctrl-C does: it raises
    ``KeyboardInterrupt`` in the main thread, so every ``finally`` that stops a server runs."""

    def _on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_term)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def venv_tool(name: str) -> list[str]:
    """Command prefix of a console script of the current interpreter's environment."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    found = shutil.which(name)
    if found:
        return [found]
    return [sys.executable, "-m", {"riskactors": "riskactors.cli"}.get(name, name)]


class Server:
    """A server subprocess, stopped through its Popen handle (terminate, wait, then kill)."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, port: int, env: dict[str, str] | None = None):
        self.name, self.cmd, self.log_path, self.port = name, cmd, log_path, port
        self.url = f"http://{HOST}:{port}"
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop(), lives as long as the server
        # own session: Ctrl-C on the benchmark does not hit the server; we stop it ourselves
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     env=None if env is None else {**os.environ, **env})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float) -> float:
        """Poll ``GET /ready`` until 200; returns seconds waited. Raises if it exits or times out."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if c.get("/ready").status_code == 200:
                        return time.monotonic() - t0
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> str:
        """Terminate (SIGTERM: uvicorn shuts down gracefully, the server also shuts its Ray down),
        wait, then kill if needed. Returns how it ended."""
        how = "already exited"
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                    how = "terminated"
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
                    how = "killed"
                    # the session we created for it holds only its descendants (Ray's processes)
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
        finally:
            self._log.close()
        return how


# --------------------------------------------------------------------------- HTTP set-up
def register_accounts(url: str, run_id: str, n: int) -> None:
    """Register ``bench-<run_id>-w<i>`` (i < n) and post a EURUSD mark (the wrk accounts)."""
    with httpx.Client(base_url=url, timeout=10.0) as c:
        r = c.post("/v1/marks", json={"marks": [{"instrument": INSTRUMENT, "bid": BID, "ask": ASK}]})
        r.raise_for_status()
        for i in range(n):
            body = {"account_id": f"bench-{run_id}-w{i}", "user_id": f"bench-{run_id}-user{i % 16}",
                    "challenge_id": f"bench-{run_id}", "currency": "USD", "initial_balance": 1_000_000.0,
                    "plan": "aggressive", "limits": LIMITS}
            r = c.post("/v1/accounts", json=body)
            if r.status_code not in (201, 409):
                raise RuntimeError(f"register {body['account_id']}: HTTP {r.status_code} {r.text[:300]}")


def warm_up(url: str, run_id: str, n: int) -> dict[str, Any]:
    """``n`` sequential checks (not measured): imports, caches and connections warm."""
    decisions: dict[str, int] = {}
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=10.0) as c:
        for i in range(n):
            body = {"order_id": f"{run_id}-warm-{i}", "account_id": f"bench-{run_id}-w{i % 4}",
                    "instrument": INSTRUMENT, "side": "buy" if i % 2 else "sell", "quantity": 0.01}
            r = c.post(CHECK_PATH, json=body)
            r.raise_for_status()
            d = r.json()["decision"]
            decisions[d] = decisions.get(d, 0) + 1
    return {"checks": n, "seconds": round(time.perf_counter() - t0, 3), "decisions": decisions}


_METRIC = re.compile(r"^riskactors_order_check_seconds_(sum|count)\s+([0-9.eE+-]+)$", re.MULTILINE)


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its live descendants (Ray's included)."""
    if psutil is None:
        return None
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def cpu_snapshot(servers: list[Server]) -> dict[str, float] | None:
    """CPU seconds so far: each server tree and its main process, finished children (the load
    generators), machine busy."""
    if psutil is None:
        return None
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = psutil.cpu_times()
    out = {f"{s.name}_tree": tree_cpu_seconds(s.pid) or 0.0 for s in servers}
    for s in servers:  # the server's own process (the front) apart from its tree (Ray's processes)
        try:
            own = psutil.Process(s.pid).cpu_times()
            out[f"{s.name}_main"] = own.user + own.system
        except psutil.Error:
            out[f"{s.name}_main"] = 0.0
    out["load_generator"] = ru.ru_utime + ru.ru_stime
    out["machine_busy"] = sum(t) - t.idle - getattr(t, "iowait", 0.0)
    return out


def cpu_delta(before: dict | None, after: dict | None, seconds: float) -> dict[str, Any] | None:
    """CPU cores used during a run: by each server, the load generator and everything else."""
    if not before or not after or seconds <= 0:
        return None
    d = {k: (after[k] - before[k]) / seconds for k in before}
    ours = sum(v for k, v in d.items() if k != "machine_busy" and not k.endswith("_main"))  # in their tree
    d["foreign"] = max(0.0, d["machine_busy"] - ours)
    return {k: round(v, 2) for k, v in d.items()}


def front_check_seconds(url: str) -> dict[str, float] | None:
    """``riskactors_order_check_seconds`` sum and count from the server's ``/metrics``."""
    try:
        text = httpx.get(url + "/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return None
    found = {k: float(v) for k, v in _METRIC.findall(text)}
    return found if len(found) == 2 else None


# --------------------------------------------------------------------------- load generators
def _pct(d: dict, *keys: str) -> float | None:
    for k in keys:
        v = d.get(k)
        if v not in (None, "", "N/A"):
            return float(v)
    return None


def run_locust(target: Server, baseline: bool, mode: str, args, run_dir: Path, run_id: str) -> dict[str, Any]:
    tag = f"locust-{'baseline' if baseline else 'server'}-{mode}"
    latency_file = run_dir / f"{tag}-latency.json"
    env = dict(os.environ,
               RISKACTORS_BENCH_BASELINE="1" if baseline else "0",
               RISKACTORS_BENCH_RATE_PER_USER=str(args.rate / args.users) if mode == "fixed" else "0",
               RISKACTORS_BENCH_ACCOUNTS_PER_USER=str(args.accounts_per_user),
               RISKACTORS_BENCH_CANCEL_SHARE=str(args.cancel_share),
               RISKACTORS_BENCH_RUN_ID=run_id,
               RISKACTORS_BENCH_LATENCY_FILE=str(latency_file))
    cmd = [*venv_tool("locust"), "-f", str(HERE / "locustfile.py"), "--headless", "-u", str(args.users),
           "-r", str(args.users), "-t", f"{args.duration}s", "--host", target.url, "--csv", str(run_dir / tag),
           "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0", "--stop-timeout", "5"]
    with open(run_dir / f"{tag}.log", "wb") as log:
        proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=args.duration + 120)
    row: dict[str, Any] = {"tool": "locust", "command": " ".join(cmd), "exit_code": proc.returncode}
    stats_csv = run_dir / f"{tag}_stats.csv"
    if not stats_csv.exists():
        raise RuntimeError(f"locust wrote no {stats_csv.name} (exit {proc.returncode}); see {tag}.log")
    with open(stats_csv, newline="") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    s = rows.get(CHECK_PATH)
    if s is None:
        raise RuntimeError(f"no {CHECK_PATH} row in {stats_csv} (exit {proc.returncode}); see {tag}.log")
    row.update(csv_requests=int(s["Request Count"]), csv_failures=int(s["Failure Count"]),
               csv_rps=float(s["Requests/s"]), csv_p50_ms=_pct(s, "50%"), csv_p95_ms=_pct(s, "95%"),
               csv_p99_ms=_pct(s, "99%"), csv_mean_ms=_pct(s, "Average Response Time"))
    row["other_requests"] = {name: {"requests": int(r["Request Count"]), "failures": int(r["Failure Count"])}
                             for name, r in rows.items() if name not in (CHECK_PATH, "Aggregated")}
    exact = json.loads(latency_file.read_text()) if latency_file.exists() else {}
    # The locustfile's own record is preferred: float-ms percentiles (the CSV rounds to whole
    # ms), every request up to the stop (the CSV is written slightly before the last ones),
    # and the rate over the window from the first to the last check (no spawn time).
    row.update(requests=exact.get("count", row["csv_requests"]) + (exact.get("failures") or 0)
               if exact else row["csv_requests"],
               failures=exact.get("failures", row["csv_failures"]) if exact else row["csv_failures"],
               rps=exact.get("rps") or row["csv_rps"])
    row.update(p50_ms=exact.get("p50_ms", row["csv_p50_ms"]), p95_ms=exact.get("p95_ms", row["csv_p95_ms"]),
               p99_ms=exact.get("p99_ms", row["csv_p99_ms"]), mean_ms=exact.get("mean_ms", row["csv_mean_ms"]),
               p99_9_ms=exact.get("p99_9_ms"), max_ms=exact.get("max_ms"),
               decisions=exact.get("decisions"), reject_codes=exact.get("reject_codes"),
               percentile_source="locustfile exact" if exact else "locust CSV (whole ms)")
    return row


def run_wrk(target: Server, baseline: bool, mode: str, args, run_dir: Path, run_id: str,
            n_accounts: int) -> dict[str, Any]:
    tag = f"wrk-{'baseline' if baseline else 'server'}-{mode}"
    env = dict(os.environ, RISKACTORS_WRK_THREADS=str(args.wrk_threads))
    env.pop("RISKACTORS_WRK_RATE", None)
    if mode == "fixed":
        env["RISKACTORS_WRK_RATE"] = str(args.rate)
    cmd = ["wrk", f"-t{args.wrk_threads}", f"-c{args.wrk_connections}", f"-d{args.duration}s", "--timeout", "5s",
           "--latency", "-s", str(HERE / "wrk_check.lua"), target.url, "--", run_id, str(n_accounts)]
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=args.duration + 60)
    (run_dir / f"{tag}.log").write_text(proc.stdout + proc.stderr)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary (exit {proc.returncode}): {proc.stderr[-500:]}")
    w = json.loads(line[len("WRK_JSON "):])
    errors = sum(w["errors"].values())
    lat = w["latency_us"]
    secs = w["duration_us"] / 1e6
    return {"tool": "wrk", "command": " ".join(cmd), "exit_code": proc.returncode,
            "requests": w["requests"], "failures": errors, "rps": w["requests"] / secs if secs else 0.0,
            "p50_ms": lat["p50"] / 1000, "p95_ms": lat["p95"] / 1000, "p99_ms": lat["p99"] / 1000,
            "p99_9_ms": lat["p99_9"] / 1000, "mean_ms": lat["mean"] / 1000, "max_ms": lat["max"] / 1000,
            "decisions": w["decisions"], "wrk_errors": w["errors"], "connections": args.wrk_connections,
            "threads": args.wrk_threads, "percentile_source": "wrk HdrHistogram (us)"}


# --------------------------------------------------------------------------- report
def _f(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


COLUMNS = [("tool", "tool"), ("target", "target"), ("mode", "mode"), ("requests", "requests"),
           ("failures", "failures"), ("rps", "rps"), ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"), ("p99_ms", "p99 ms")]


def _cells(r: dict) -> list[str]:
    out = []
    for key, _ in COLUMNS:
        v = r.get(key)
        out.append(_f(v, 1) if key == "rps" else _f(v))
    return out


def render_table(rows: list[dict]) -> str:
    head = [h for _, h in COLUMNS]
    body = [_cells(r) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *(fmt(c) for c in body)])


def render_markdown(rows: list[dict]) -> str:
    head = [h for _, h in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def ratios(rows: list[dict]) -> list[dict]:
    out = []
    by = {(r["tool"], r["mode"], r["target"]): r for r in rows}
    for (tool, mode, target), srv in by.items():
        if target != "server" or (tool, mode, "baseline") not in by:
            continue
        base = by[(tool, mode, "baseline")]
        rps = srv["rps"] / base["rps"] if base.get("rps") else None
        p95 = srv["p95_ms"] / base["p95_ms"] if base.get("p95_ms") and srv.get("p95_ms") is not None else None
        out.append({"tool": tool, "mode": mode, "rps_server_over_baseline": rps, "p95_server_over_baseline": p95})
    return out


def floor_checks(rows: list[dict], rate: float, floor_ms: float) -> list[dict]:
    out = []
    for r in rows:
        if r["target"] != "server" or r["mode"] != "fixed":
            continue
        why = []
        if r.get("p95_ms") is None or r["p95_ms"] >= floor_ms:
            why.append(f"p95 {_f(r.get('p95_ms'))} ms >= {floor_ms:g} ms")
        if r["rps"] < 0.95 * rate:
            why.append(f"achieved {r['rps']:.1f}/s < 95 % of offered {rate:g}/s")
        if r["failures"]:
            why.append(f"{r['failures']} failed requests")
        out.append({"tool": r["tool"], "p95_ms": r.get("p95_ms"), "rps": r["rps"], "offered_rps": rate,
                    "floor_ms": floor_ms, "result": "FAIL" if why else "PASS", "why": why})
    return out


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in ("riskactors", "fastapi", "pydantic", "uvicorn", "ray", "locust", "httpx"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    if shutil.which("wrk"):
        v = subprocess.run(["wrk", "--version"], check=False, capture_output=True, text=True).stdout
        out["wrk"] = (v.splitlines() or [""])[0].split("[")[0].strip()
    return out


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rate", type=float, default=250.0, help="offered checks/s of the fixed-rate mode")
    p.add_argument("--duration", type=int, default=30, help="seconds per measured run")
    p.add_argument("--users", type=int, default=32, help="Locust users (one connection each)")
    p.add_argument("--tool", choices=["locust", "wrk", "both"], default="both",
                   help="locust: fixed + max; wrk: fixed (paced) + max; both: Locust fixed + max, wrk max")
    p.add_argument("--wrk-paced", action="store_true", help="with --tool both, also the wrk fixed-rate run")
    p.add_argument("--wrk-connections", type=int, default=32)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--wrk-accounts", type=int, default=128, help="accounts the wrk runs spread checks over")
    p.add_argument("--accounts-per-user", type=int, default=2, help="accounts each Locust user registers")
    p.add_argument("--cancel-share", type=float, default=0.2, help="share of accepted orders Locust cancels")
    p.add_argument("--shards", type=int, default=None, help="shard actors of the server (None: the server's own default, 2)")
    p.add_argument("--no-journal", action="store_true",
                   help="run the server with state in memory only (to measure what the journal costs)")
    p.add_argument("--floor-ms", type=float, default=10.0, help="p95 the server must stay under at --rate")
    p.add_argument("--warmup", type=int, default=300, help="sequential warm-up checks per target")
    p.add_argument("--ready-timeout", type=float, default=120.0)
    p.add_argument("--py-spy", action="store_true",
                   help="record the server (and its Ray workers) with py-spy during its fixed-rate run")
    p.add_argument("--modes", default="fixed,max", help="which modes to run: fixed, max or both (comma-separated)")
    p.add_argument("--quiet-wait", type=float, default=60.0,
                   help="before each run wait up to this many seconds for other processes to use < 0.25 cores "
                        "(shared machines); 0: do not wait")
    p.add_argument("--fail-on-floor", action="store_true", help="exit 1 when the floor check fails")
    a = p.parse_args(argv)
    if a.rate <= 0 or a.duration <= 0 or a.users <= 0:
        p.error("--rate, --duration and --users must be > 0")
    a.modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    if not a.modes or any(m not in ("fixed", "max") for m in a.modes):
        p.error("--modes: a comma-separated subset of fixed,max")
    return a


def plan_runs(args) -> list[tuple[str, str]]:
    if args.tool == "locust":
        runs = [("locust", "fixed"), ("locust", "max")]
    elif args.tool == "wrk":
        runs = [("wrk", "fixed"), ("wrk", "max")]
    else:
        runs = [("locust", "fixed"), ("locust", "max")] + ([("wrk", "fixed")] if args.wrk_paced else [])
        runs.append(("wrk", "max"))
    return [r for r in runs if r[1] in args.modes]


def wait_quiet(servers: list[Server], limit_s: float, threshold: float = 0.25) -> float | None:
    """Wait (at most ``limit_s``) until processes other than ours use < ``threshold`` cores,
    sampled over 1 s. Returns the last foreign load seen (cores), ``None`` without psutil."""
    if psutil is None or limit_s <= 0:
        return None
    deadline = time.monotonic() + limit_s
    foreign = None
    while True:
        a, t0 = cpu_snapshot(servers), time.monotonic()
        time.sleep(1.0)
        d = cpu_delta(a, cpu_snapshot(servers), time.monotonic() - t0)
        foreign = d["foreign"] if d else None
        if foreign is None or foreign < threshold or time.monotonic() >= deadline:
            return foreign


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = plan_runs(args)
    if any(t == "wrk" for t, _ in runs) and not shutil.which("wrk"):
        print("wrk not found (apt-get install wrk), or use --tool locust", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    run_dir = RESULTS / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    tag = started.strftime("%H%M%S")
    print(f"riskactors bench {stamp}: runs {runs}, {args.duration} s each, rate {args.rate:g}/s, "
          f"{args.users} Locust users, {os.cpu_count()} CPUs; artefacts in {run_dir.relative_to(ROOT)}")

    servers: list[Server] = []
    rows: list[dict] = []
    setup: dict[str, Any] = {}
    exit_code = 0
    try:
        bport, sport = free_port(), free_port()
        baseline = Server("baseline", [*venv_tool("uvicorn"), "--app-dir", str(HERE), "baseline_app:app",
                                       "--host", HOST, "--port", str(bport), "--log-level", "warning"],
                          run_dir / "baseline.log", bport)
        servers.append(baseline)
        serve = [*venv_tool("riskactors"), "serve", "--host", HOST, "--port", str(sport)]
        if args.shards:
            serve += ["--shards", str(args.shards)]
        # journaled as in production (default fsync policy), into this run's own folder
        server = Server("server", serve, run_dir / "server.log", sport,
                        env={"RISKACTORS_STORAGE_ROOT": "" if args.no_journal else str(run_dir / "storage")})
        servers.append(server)
        setup["baseline_ready_s"] = round(baseline.wait_ready(30.0), 2)
        setup["server_ready_s"] = round(server.wait_ready(args.ready_timeout), 2)
        print(f"ready: baseline {baseline.url} (pid {baseline.pid}) in {setup['baseline_ready_s']} s, "
              f"server {server.url} (pid {server.pid}) in {setup['server_ready_s']} s")

        register_accounts(server.url, f"{tag}warm", 4)
        setup["warmup"] = {"baseline": warm_up(baseline.url, f"{tag}warm", args.warmup),
                           "server": warm_up(server.url, f"{tag}warm", args.warmup)}
        print(f"warm-up: {setup['warmup']}")

        targets = [("baseline", baseline), ("server", server)]
        for tool, mode in runs:
            for name, srv in targets:
                run_id = f"{tag}{tool[0]}{mode[0]}{name[0]}"
                is_base = name == "baseline"
                if tool == "wrk" and not is_base:
                    register_accounts(srv.url, run_id, args.wrk_accounts)
                before = None if is_base else front_check_seconds(srv.url)
                quiet = wait_quiet(servers, args.quiet_wait)
                load = os.getloadavg()[0]
                time.sleep(1.0)
                spy = None
                if args.py_spy and not is_base and mode == "fixed":
                    spy = start_py_spy(srv.pid, args.duration, run_dir / f"py-spy-{tool}-{mode}.svg")
                print(f"run: {tool:6s} {name:8s} {mode:5s} ... ", end="", flush=True)
                cpu0, t0 = cpu_snapshot(servers), time.monotonic()
                if tool == "locust":
                    row = run_locust(srv, is_base, mode, args, run_dir, run_id)
                else:
                    row = run_wrk(srv, is_base, mode, args, run_dir, run_id, args.wrk_accounts)
                row["cpu_cores"] = cpu_delta(cpu0, cpu_snapshot(servers), time.monotonic() - t0)
                if spy is not None:
                    stop_py_spy(spy)
                row.update(target=name, mode=mode, offered_rps=args.rate if mode == "fixed" else None,
                           loadavg_1m_before=round(load, 2), run_id=run_id, foreign_cores_before=quiet)
                after = None if is_base else front_check_seconds(srv.url)
                if before and after and after["count"] > before["count"]:
                    row["server_front_mean_ms"] = ((after["sum"] - before["sum"]) /
                                                   (after["count"] - before["count"]) * 1000)
                rows.append(row)
                print(f"{row['requests']} req, {row['failures']} failed, {row['rps']:.1f}/s, "
                      f"p50 {_f(row['p50_ms'])} p95 {_f(row['p95_ms'])} p99 {_f(row['p99_ms'])} ms"
                      + (f", decisions {row.get('decisions')}" if row.get("decisions") else "")
                      + (f", CPU cores {row['cpu_cores']}" if row.get("cpu_cores") else ""))
    except Exception as exc:  # noqa: BLE001 - report, stop the servers, keep partial results
        print(f"\nERROR: {type(exc).__name__}: {exc}", file=sys.stderr)
        exit_code = 2
    finally:
        stopped = {}
        for s in reversed(servers):
            stopped[s.name] = s.stop()
        if servers:
            print(f"stopped: {stopped}")

    rat = ratios(rows)
    floors = floor_checks(rows, args.rate, args.floor_ms)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_end": os.getloadavg()},
        "versions": versions(),
        "setup": setup,
        "rows": rows,
        "ratios": rat,
        "floor": floors,
        "artefacts": str(run_dir.relative_to(ROOT)),
        "complete": exit_code == 0,
    }
    out_json = RESULTS / f"bench-{stamp}.json"
    out_json.write_text(json.dumps(report, indent=1, default=str))
    (RESULTS / f"bench-{stamp}.md").write_text(render_markdown(rows) + "\n")

    if rows:
        print()
        print(render_table(rows))
        print()
        for r in rat:
            print(f"ratio server/baseline ({r['tool']}, {r['mode']}): throughput "
                  f"{_f(r['rps_server_over_baseline'])}x, p95 {_f(r['p95_server_over_baseline'])}x")
        for r in rows:
            if "server_front_mean_ms" in r:
                print(f"server front (handler, /metrics) mean during {r['tool']} {r['mode']}: "
                      f"{r['server_front_mean_ms']:.2f} ms")
        noisy = [r for r in rows if (r.get("cpu_cores") or {}).get("foreign", 0) > 0.25]
        if noisy:
            worst = max(r["cpu_cores"]["foreign"] for r in noisy)
            print(f"NOTE: other processes on this machine used up to {worst:.2f} of {os.cpu_count()} cores during "
                  f"{len(noisy)} of {len(rows)} runs (cpu_cores.foreign in the JSON): those numbers are contaminated")
        for f in floors:
            print(f"floor ({f['tool']}): server p95 {_f(f['p95_ms'])} ms at {f['rps']:.1f}/s "
                  f"(offered {f['offered_rps']:g}/s) < {f['floor_ms']:g} ms: {f['result']}"
                  + (f" ({'; '.join(f['why'])})" if f["why"] else ""))
        if floors:
            overall = "PASS" if all(f["result"] == "PASS" for f in floors) else "FAIL"
            print(f"FLOOR: {overall}")
            if overall == "FAIL" and args.fail_on_floor and exit_code == 0:
                exit_code = 1
    print(f"results: {out_json.relative_to(ROOT)}")
    return exit_code


def start_py_spy(pid: int, duration: int, out: Path):
    exe = venv_tool("py-spy")
    cmd = [*exe, "record", "--pid", str(pid), "--subprocesses", "--duration", str(duration + 2),
           "--rate", "100", "--output", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(out.with_suffix(".log"), "wb"))


def stop_py_spy(proc) -> None:
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


if __name__ == "__main__":
    sys.exit(main())
