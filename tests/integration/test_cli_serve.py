"""``riskactors serve`` as a user runs it: a separate process with its own embedded Ray,
configured by flags and environment variables, stopped by its own handle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import free_port, require_data, stop_process, wait_ready

BIN = Path(sys.executable).parent / "riskactors"


@pytest.fixture
def served():
    port = free_port()
    env = dict(os.environ, RISKACTORS_PORT=str(port), RISKACTORS_PLACEMENT="dedicated")
    env.pop("RAY_ADDRESS", None)
    # the flag --placement wins over RISKACTORS_PLACEMENT; the port comes from the environment
    proc = subprocess.Popen([str(BIN), "serve", "--placement", "sharded", "--shards", "3"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base)
        yield base, proc
    finally:
        stop_process(proc)


def test_serve_uses_flags_over_env_and_answers_the_contract(served):
    base, proc = served
    ready = httpx.get(base + "/ready").json()
    assert ready["status"] == "ready"
    assert ready["placement"] == "sharded" and ready["hosts"] == 3
    assert httpx.get(base + "/health").json() == {"status": "ok"}
    r = httpx.post(base + "/v1/accounts", json={"account_id": "cli-1", "user_id": "u", "challenge_id": "c",
                                                "currency": "USD", "initial_balance": 10_000, "plan": "moderate"})
    assert r.status_code == 201 and r.json()["balance"] == 10_000
    httpx.post(base + "/v1/marks", json={"marks": [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1}]})
    d = httpx.post(base + "/v1/orders/check", json={"order_id": "o", "account_id": "cli-1", "instrument": "EURUSD",
                                                    "side": "buy", "quantity": 1.0}).json()
    # 1 lot = 110,000 USD on 10,000 equity: 11x > moderate's 10x
    assert d["decision"] == "reject" and [x["code"] for x in d["reasons"]] == ["MAX_LEVERAGE"]
    assert "riskactors_order_checks_total" in httpx.get(base + "/metrics").text
    _fifty_concurrent_checks_over_sockets_accept_exactly_seven(base)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "the embedded Ray runs in child processes"
    proc.terminate()
    # uvicorn shuts down gracefully (lifespan: actors killed, Ray shut down), then re-raises
    # SIGTERM so the exit status says how it ended
    assert proc.wait(timeout=60) in (0, -15)
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left behind: {[p.pid for p in alive]}"


def test_cli_help_lists_serve_and_replay():
    out = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, check=True).stdout
    assert "serve" in out and "replay" in out and "run" in out
    serve = subprocess.run([str(BIN), "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--host", "--port", "--address", "--placement", "--shards", "RISKACTORS_PORT"):
        assert flag in serve


def test_replay_command_with_embedded_server_prints_the_report():
    trades = require_data("fundingpips-trades-short/test_task_trades_short.csv")
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([str(BIN), "replay", str(trades), "--limit", "25", "--shards", "1"], env=env, check=False,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "replay report (fundingpips)" in out
    assert "trades replayed        25" in out
    assert "realized P&L = file profit" in out and "firm view: 25 accounts" in out


def _fifty_concurrent_checks_over_sockets_accept_exactly_seven(base: str) -> None:
    """50 concurrent checks over real TCP connections against an account admitting exactly 7."""
    import asyncio

    r = httpx.post(base + "/v1/accounts", json={
        "account_id": "cli-k", "user_id": "u", "challenge_id": "c", "currency": "USD", "initial_balance": 100_000,
        "plan": "moderate", "limits": {"max_position_lots": 0.7, "max_orders_per_second": 1000}})
    assert r.status_code == 201

    async def burst():
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            calls = [client.post("/v1/orders/check", json={"order_id": f"k-{i}", "account_id": "cli-k",
                                                           "instrument": "EURUSD", "side": "buy", "quantity": 0.1})
                     for i in range(50)]
            return [x.json() for x in await asyncio.gather(*calls)]

    decisions = asyncio.run(burst())
    accepted = [d for d in decisions if d["decision"] == "accept"]
    assert len(accepted) == 7
    assert all([x["code"] for x in d["reasons"]] == ["MAX_POSITION_SIZE"] for d in decisions if d not in accepted)


def test_sigterm_stops_serve_in_order_answers_what_is_in_flight_and_exits_0(tmp_path):
    """SIGTERM: the front stops accepting, answers the requests in flight, shuts the embedded
    deployment down (journals flushed), prints that it stopped and exits 0 — not 143 — and a
    restart on the same storage root reloads the account."""
    import signal
    import threading

    port = free_port()
    env = dict(os.environ, RISKACTORS_PORT=str(port), RISKACTORS_STORAGE_ROOT=str(tmp_path / "root"))
    env.pop("RAY_ADDRESS", None)
    base = f"http://127.0.0.1:{port}"

    def start():
        proc = subprocess.Popen([str(BIN), "serve", "--shards", "2"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        wait_ready(proc, base)
        return proc

    proc = start()
    try:
        r = httpx.post(base + "/v1/accounts", json={"account_id": "sig-1", "user_id": "u", "challenge_id": "c",
                                                    "currency": "USD", "initial_balance": 10_000, "plan": "moderate"})
        assert r.status_code == 201, r.text
        answers: list[int] = []

        def reads():
            with httpx.Client(base_url=base, timeout=30) as c:
                for _ in range(200):
                    try:
                        answers.append(c.get("/v1/accounts/sig-1").status_code)
                    except httpx.HTTPError:
                        return  # the listener is closed: no request is taken after that

        reader = threading.Thread(target=reads)
        reader.start()
        while not answers:
            pass
        proc.send_signal(signal.SIGTERM)
        reader.join(timeout=120)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out[-3000:]
        assert "riskactors: stopped" in out
        assert answers and set(answers) == {200}  # every request taken was answered
    finally:
        stop_process(proc)
    again = start()
    try:
        assert httpx.get(base + "/v1/accounts/sig-1").json()["initial_balance"] == 10_000
    finally:
        stop_process(again)
