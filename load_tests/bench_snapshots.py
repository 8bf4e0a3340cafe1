"""Checks while snapshots are written, against checks without (issue 11 §2, "Snapshots off the
hot path": p99 with a snapshot running no worse than 2x p99 without).

One entry point (``make bench-snapshots``)::

    .venv/bin/python load_tests/bench_snapshots.py [--accounts 10000] [--rounds 3] [--duration 10]

Two ``riskactors serve`` (embedded Ray, ``--shards`` shards, the default durable journal, each
on a temporary storage root of its own) run side by side with the same accounts:
``--accounts`` accounts with one EURUSD position each (registered and filled through the batch
routes, 1,000 a request), and before each wrk run 128 fresh accounts for ``wrk_check.lua`` to
check on (fresh order ids: every check is new and journaled). One, *none*, never
snapshots (``RISKACTORS_SNAPSHOT_EVERY_EVENTS`` 10⁹); the other, *every*, snapshots every
``--every`` journal records (300: written back to back under this load, the worst case; the
server's default is 10,000 records or 300 s). wrk runs alternate between them (none, every,
none, every…), ``--rounds`` pairs, closed loop, ``--connections`` (4) connections,
``--duration`` s each, so both see the same machine. During each run the snapshot files of
*every* are listed every 0.2 s: the report says how many snapshots each run saw written.

It prints every run, the medians and the target with PASS/FAIL: the median p99 of *every* at
most 2x the median p99 of *none*. It writes the same to ``load_tests/results/snapshots-<UTC
stamp>.json`` and ``.md`` (git-ignored), with the servers' logs in
``load_tests/results/snapshots-<stamp>/``. Both servers are stopped through their Popen
handles (``run_bench.Server``), also on an error or Ctrl-C; their storage roots are deleted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench as rb

HERE = Path(__file__).resolve().parent
WRK_ACCOUNTS = 128
BATCH = 1_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--accounts", type=int, default=10_000, help="accounts with one position, on both servers")
    p.add_argument("--shards", type=int, default=2, help="shard actors of each server")
    p.add_argument("--every", type=int, default=300, help="journal records between snapshots of 'every'")
    p.add_argument("--connections", type=int, default=4, help="wrk connections")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=3, help="none/every pairs of wrk runs")
    p.add_argument("--ready-timeout", type=float, default=180.0, help="seconds a server may take to be ready")
    p.add_argument("--results", type=Path, default=HERE / "results", help="folder of the report")
    return p.parse_args(argv)


def load(url: str, n: int) -> float:
    """Register ``n`` accounts with one EURUSD lot each (batch routes); returns seconds taken."""
    t0 = time.monotonic()
    with httpx.Client(base_url=url, timeout=300.0) as c:
        for start in range(0, n, BATCH):
            ids = range(start, min(n, start + BATCH))
            accounts = [{"account_id": f"snap-{i}", "user_id": f"snap-u{i}", "challenge_id": f"snap-c{i % 10}",
                         "currency": "USD", "initial_balance": 100_000.0, "plan": "aggressive"} for i in ids]
            r = c.post("/v1/accounts/batch", json={"accounts": accounts})
            r.raise_for_status()
            bad = [x for x in r.json()["results"] if x["status"] not in (200, 201)]
            if bad:
                raise RuntimeError(f"registration refused: {bad[:3]}")
            fills = [{"fill_id": f"snap-f{i}", "account_id": f"snap-{i}", "instrument": rb.INSTRUMENT,
                      "side": "buy", "quantity": 1.0, "price": rb.ASK} for i in ids]
            r = c.post("/v1/fills/batch", json={"fills": fills})
            r.raise_for_status()
    return time.monotonic() - t0


class SnapshotWatch:
    """Lists the ``*.arrow`` snapshot files under a storage root every 0.2 s, from a thread:
    :meth:`stop` returns how many distinct ones appeared meanwhile."""

    def __init__(self, root: Path):
        self.root = root
        self.before = self._names()
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _names(self) -> set[str]:
        return {str(p.relative_to(self.root)) for p in self.root.rglob("*.arrow")}

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.seen |= self._names()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        self.seen |= self._names()
        return len(self.seen - self.before)


def start(name: str, every: int, storage: Path, args, log_dir: Path) -> rb.Server:
    port = rb.free_port()
    env = {"RISKACTORS_STORAGE_ROOT": str(storage), "RISKACTORS_DEPLOYMENT": f"snapshots-{name}",
           "RISKACTORS_SNAPSHOT_EVERY_EVENTS": str(every), "RISKACTORS_SNAPSHOT_EVERY_SECONDS": "1e9"}
    cmd = [*rb.venv_tool("riskactors"), "serve", "--host", rb.HOST, "--port", str(port), "--shards", str(args.shards)]
    return rb.Server(name, cmd, log_dir / f"{name}.log", port, env=env)


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start both servers, load them, alternate the wrk runs, stop them; the report (module
    docstring), also written to ``args.results``. Raises when a server fails or a check is not
    answered 200 (after stopping both)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    log_dir = args.results / f"snapshots-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="riskactors-snapshots-"))
    report: dict[str, Any] = {"date": stamp, "command": " ".join([sys.executable, *sys.argv]), "args": vars(args)
                              | {"results": str(args.results)}, "runs": [], "setup": {}}
    servers: dict[str, rb.Server] = {}
    rb.interrupt_on_sigterm()
    try:
        for name, every in (("none", 1_000_000_000), ("every", args.every)):
            servers[name] = start(name, every, scratch / name, args, log_dir)
        for name, srv in servers.items():
            ready = srv.wait_ready(args.ready_timeout)
            rb.register_accounts(srv.url, "warm", WRK_ACCOUNTS)
            report["setup"][name] = {"ready_seconds": round(ready, 1), "load_seconds": round(load(srv.url, args.accounts), 1),
                                     "warm_up": rb.warm_up(srv.url, "warm", 200)}
        wargs = SimpleNamespace(wrk_threads=min(2, args.connections), wrk_connections=args.connections,
                                duration=args.duration, rate=0.0)
        for r in range(args.rounds):
            for name in ("none", "every"):
                run_id = f"{name}{r}"  # fresh accounts and order ids: every check is a new one, journaled
                rb.register_accounts(servers[name].url, run_id, WRK_ACCOUNTS)
                (log_dir / run_id).mkdir()
                watch = SnapshotWatch(scratch / name)
                row = rb.run_wrk(servers[name], False, "max", wargs, log_dir / run_id, run_id, WRK_ACCOUNTS)
                row.update(server=name, round=r, snapshots=watch.stop(), non_200=row["decisions"].get("non_200", 0))
                report["runs"].append(row)
                print(f"run: {name:5s} round {r + 1}/{args.rounds}: {row['rps']:,.0f} checks/s, p50 {row['p50_ms']:.2f} "
                      f"p99 {row['p99_ms']:.2f} ms, snapshots written {row['snapshots']}, "
                      f"non-200 {row['non_200']}, errors {row['failures']}", flush=True)
                if row["non_200"] or row["failures"]:
                    raise RuntimeError(f"{name}: {row['non_200']} answers were not 200 (wrk log in {log_dir / run_id})")
    finally:
        report["stopped"] = {name: srv.stop() for name, srv in servers.items()}
        shutil.rmtree(scratch, ignore_errors=True)
    runs = {name: [r for r in report["runs"] if r["server"] == name] for name in ("none", "every")}
    summary = {name: {"checks_per_s": round(median(rows, "rps")), "p50_ms": round(median(rows, "p50_ms"), 2),
                      "p99_ms": round(median(rows, "p99_ms"), 2), "snapshots": sum(r["snapshots"] for r in rows)}
               for name, rows in runs.items()}
    ratio = summary["every"]["p99_ms"] / summary["none"]["p99_ms"]
    verdict = "PASS" if ratio <= 2.0 else "FAIL"
    target = (f"{verdict}: p99 with snapshots written back to back <= 2x p99 without (median {summary['every']['p99_ms']} "
              f"ms against {summary['none']['p99_ms']} ms = {ratio:.2f}x; {summary['every']['snapshots']} snapshots in "
              f"{len(runs['every'])} runs)")
    report.update(summary=summary, ratio=round(ratio, 3), target=target)
    lines = [f"# Snapshots {stamp}", "", (f"`{report['command']}`; {args.accounts:,} accounts with one position, "
             f"{args.shards} shards, wrk {args.connections} connections, {args.duration} s per run, snapshots every "
             f"{args.every} records on 'every'."), "",
             "| server | round | checks/s | p50 ms | p99 ms | snapshots written |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['server']} | {r['round'] + 1} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['snapshots']} |" for r in report["runs"]]
    lines += ["", "medians: " + "; ".join(f"{k} {v['checks_per_s']:,}/s p50 {v['p50_ms']} p99 {v['p99_ms']} ms"
                                         for k, v in summary.items()), "", target]
    text = "\n".join(lines) + "\n"
    print(text)
    (args.results / f"snapshots-{stamp}.md").write_text(text)
    (args.results / f"snapshots-{stamp}.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"results: {args.results / f'snapshots-{stamp}'}.json and .md")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if rb.tools_missing(wrk=True):
        return 2
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
