"""Locust scenario: an order router asking ``POST /v1/orders/check`` before every order.

Each simulated router (one Locust user, one keep-alive connection) registers its own
account(s) on start (plan ``aggressive`` with limits raised so that checks are accepted),
posts a EURUSD mark, then sends checks with unique ``order_id`` s and 0.01-lot quantities,
buy or sell at random, round-robin over its accounts. A share of accepted orders is later
cancelled (oldest first), as a router would after a broker reject, so reservations do not
pile up beyond what the 30 s reservation TTL keeps. The measured request is named
``/v1/orders/check``; cancels and set-up calls have their own names.

Configuration is by environment variable (``load_tests/run_bench.py`` sets them):

=====================================  =====================================================
``RISKACTORS_BENCH_BASELINE``          ``1``: target is ``baseline_app.py``; no registration,
                                       marks or cancels (those endpoints do not exist there)
``RISKACTORS_BENCH_RATE_PER_USER``     checks/s per user (fixed schedule, random phase, see
                                       ``OrderRouter.wait_time``); ``0`` or unset: closed
                                       loop, no wait (max throughput)
``RISKACTORS_BENCH_ACCOUNTS_PER_USER`` accounts each user registers and uses (default 2)
``RISKACTORS_BENCH_CANCEL_SHARE``      fraction 0–1 of accepted orders cancelled (default 0.2)
``RISKACTORS_BENCH_RUN_ID``            prefix of account and order ids (default: random)
``RISKACTORS_BENCH_LATENCY_FILE``      where to write exact check latencies (JSON) at stop
=====================================  =====================================================

Run it by hand against a server on port 8000 (250 checks/s from 25 users, 30 s)::

    RISKACTORS_BENCH_RATE_PER_USER=10 .venv/bin/locust -f load_tests/locustfile.py --headless \\
        -u 25 -r 25 -t 30s --host http://127.0.0.1:8000

Locust's own CSV rounds percentiles to whole milliseconds; the latency file keeps the
float milliseconds Locust measured (time to the full response body), so
``run_bench.py`` reports sub-millisecond percentiles from it.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from collections import Counter, deque

import gevent
from locust import FastHttpUser, events, task

CHECK_NAME = "/v1/orders/check"
CANCEL_NAME = "/v1/orders/[order_id]/cancel"
INSTRUMENT = "EURUSD"
BID, ASK = 1.08500, 1.08510
QUANTITY = 0.01  # lots (the instrument's minimum lot)
MAX_OPEN_PER_USER = 10_000  # bound on the ids a user remembers for cancels


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


BASELINE = _flag("RISKACTORS_BENCH_BASELINE")
RATE_PER_USER = float(os.environ.get("RISKACTORS_BENCH_RATE_PER_USER") or 0)
ACCOUNTS_PER_USER = max(1, int(os.environ.get("RISKACTORS_BENCH_ACCOUNTS_PER_USER") or 2))
CANCEL_SHARE = 0.0 if BASELINE else float(os.environ.get("RISKACTORS_BENCH_CANCEL_SHARE") or 0.2)
RUN_ID = os.environ.get("RISKACTORS_BENCH_RUN_ID") or uuid.uuid4().hex[:8]
LATENCY_FILE = os.environ.get("RISKACTORS_BENCH_LATENCY_FILE")

# Limits raised far above what the scenario uses so that checks are accepted: the benchmark
# measures the cost of a full check (every rule evaluated), not of a reject path.
LIMITS = {
    "max_leverage": 1e6,
    "account_leverage": 1e6,
    "max_position_lots": 1e6,
    "max_open_positions": 1000,
    "daily_loss_limit": 1e9,
    "max_loss_limit": 1e9,
    "max_orders_per_second": 1_000_000,
}
INITIAL_BALANCE = 1_000_000.0  # USD

# --------------------------------------------------------------------------- exact latencies
_latencies: list[float] = []  # ms, successful checks only
_failures = [0]  # failed checks (non-200, bad body, connection errors)
_decisions: Counter = Counter()
_reject_codes: Counter = Counter()
_window = [None, None]  # wall time of the first and last recorded check
_dumped = False


@events.request.add_listener
def _on_request(request_type, name, response_time, response_length, exception=None, **_kw):
    if name != CHECK_NAME:
        return
    if exception is not None:
        _failures[0] += 1
        return
    _latencies.append(float(response_time))
    t = time.time()
    if _window[0] is None:
        _window[0] = t
    _window[1] = t


def _percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0–100) of an ascending list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, round(p / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def latency_summary() -> dict:
    """Exact percentiles (ms) of the successful checks recorded so far."""
    values = sorted(_latencies)
    span = (_window[1] - _window[0]) if _window[0] is not None else 0.0
    return {
        "name": CHECK_NAME,
        "count": len(values),
        "failures": _failures[0],
        "rps": (len(values) / span) if span > 0 else None,
        "mean_ms": (sum(values) / len(values)) if values else None,
        **{f"p{str(p).replace('.', '_')}_ms": _percentile(values, p) for p in (50, 90, 95, 99, 99.9)},
        "max_ms": values[-1] if values else None,
        "window_s": span,
        "decisions": dict(_decisions),
        "reject_codes": dict(_reject_codes),
        "baseline": BASELINE,
        "rate_per_user": RATE_PER_USER,
        "accounts_per_user": ACCOUNTS_PER_USER,
        "cancel_share": CANCEL_SHARE,
        "run_id": RUN_ID,
    }


def _dump(**_kw) -> None:
    global _dumped
    if _dumped or not LATENCY_FILE:
        return
    _dumped = True
    with open(LATENCY_FILE, "w") as f:
        json.dump(latency_summary(), f, indent=1)


events.test_stop.add_listener(_dump)
events.quitting.add_listener(_dump)


# --------------------------------------------------------------------------- the user
class OrderRouter(FastHttpUser):
    """One order-router connection: set-up on start, then checks (and some cancels)."""

    def wait_time(self) -> float:
        """Closed loop (0) or a fixed schedule of ``RATE_PER_USER`` checks/s with a random phase.

        Like ``constant_throughput`` (one task every 1/rate s whatever the response time), but
        the schedule starts at a random phase per user: Locust's ``constant_throughput`` counts
        from the user's spawn, so users spawned together send in bursts of N every 1/rate s
        (measured against the baseline at 250/s: p50 9.6 ms with 32 users vs 2.0 ms with 4).
        Late slots are caught up (no sleep), except more than 1 s behind (restart there).
        """
        if RATE_PER_USER <= 0:
            return 0.0
        now = time.perf_counter()
        self._next_slot += 1.0 / RATE_PER_USER
        if self._next_slot < now - 1.0:
            self._next_slot = now
        return max(0.0, self._next_slot - now)

    network_timeout = 10.0
    connection_timeout = 10.0

    _numbers = itertools.count()

    def on_start(self) -> None:
        self.number = next(OrderRouter._numbers)
        self.seq = itertools.count()
        self.accounts = [f"bench-{RUN_ID}-u{self.number}-a{i}" for i in range(ACCOUNTS_PER_USER)]
        self.open_orders: deque[tuple[str, str]] = deque(maxlen=MAX_OPEN_PER_USER)
        if not BASELINE:
            self._register()
        if RATE_PER_USER > 0:  # random phase of this user's schedule (see wait_time)
            gevent.sleep(random.uniform(0.0, 1.0 / RATE_PER_USER))
        self._next_slot = time.perf_counter()

    def _register(self) -> None:
        for account_id in self.accounts:
            body = {"account_id": account_id, "user_id": f"bench-{RUN_ID}-u{self.number}",
                    "challenge_id": f"bench-{RUN_ID}", "currency": "USD", "initial_balance": INITIAL_BALANCE,
                    "plan": "aggressive", "limits": LIMITS}
            with self.client.post("/v1/accounts", json=body, name="/v1/accounts (setup)",
                                  catch_response=True) as resp:
                if resp.status_code in (201, 409):  # 409: already there (re-run with the same RUN_ID)
                    resp.success()
                else:
                    resp.failure(f"register {account_id}: HTTP {resp.status_code} {(resp.text or '')[:200]}")
        self.client.post("/v1/marks", json={"marks": [{"instrument": INSTRUMENT, "bid": BID, "ask": ASK}]},
                         name="/v1/marks (setup)")

    @task
    def check(self) -> None:
        n = next(self.seq)
        account_id = self.accounts[n % len(self.accounts)]
        order_id = f"{RUN_ID}-u{self.number}-{n}"
        body = {"order_id": order_id, "account_id": account_id, "instrument": INSTRUMENT,
                "side": random.choice(("buy", "sell")), "quantity": QUANTITY}
        decision = None
        with self.client.post(CHECK_NAME, json=body, name=CHECK_NAME, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
                return
            try:
                out = resp.json()
                decision = out["decision"]
            except Exception as exc:  # noqa: BLE001 - a malformed answer is a failure of the check
                resp.failure(f"bad decision body: {exc}")
                return
        _decisions[decision] += 1
        if decision == "reject":
            for r in out.get("reasons", ()):
                _reject_codes[r.get("code")] += 1
            return
        if CANCEL_SHARE <= 0:
            return
        self.open_orders.append((order_id, account_id))
        if random.random() < CANCEL_SHARE and self.open_orders:
            old_id, old_account = self.open_orders.popleft()
            self.client.post(f"/v1/orders/{old_id}/cancel", json={"account_id": old_account}, name=CANCEL_NAME)
