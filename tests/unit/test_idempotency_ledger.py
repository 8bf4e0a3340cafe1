"""The deployment's Idempotency-Key ledger (no Ray): claims across fronts, responses journaled
and recovered, lapsed claims, bounded journal."""

from __future__ import annotations

import os

from riskactors.actors.idempotency import IdempotencyLedger, StoredResponse

T = 1_700_000_000.0


def _cfg(root=None, max_keys: int = 100, lease: float = 60.0) -> dict:
    storage = {"root": str(root), "fsync": "batch", "fsync_interval_seconds": 1.0} if root is not None else None
    return {"max_keys": max_keys, "ttl_seconds": 3600.0, "lease_seconds": lease, "storage": storage}


def _response(body: bytes = b'{"ok": true}', fp: bytes = b"fp", at: float = T) -> StoredResponse:
    return StoredResponse(fp, 201, ((b"content-type", b"application/json"),), body, at)


def test_the_first_front_runs_a_second_waits_then_both_get_the_same_response():
    ledger = IdempotencyLedger(_cfg())
    first = ledger.begin(b"k", b"fp", T)
    assert first["state"] == "run"
    assert ledger.begin(b"k", b"fp", T + 0.1) == {"state": "busy"}  # another front, same key, still running
    assert ledger.finish(b"k", first["claim"], _response()) is True
    again = ledger.begin(b"k", b"fp", T + 0.2)
    assert again["state"] == "replay" and again["response"] == _response()
    assert ledger.begin(b"k", b"other", T + 0.3) == {"state": "conflict"}


def test_a_request_that_failed_leaves_the_key_free_for_the_retry():
    ledger = IdempotencyLedger(_cfg())
    claim = ledger.begin(b"k", b"fp", T)["claim"]
    assert ledger.finish(b"k", claim, None) is False  # a 5xx: not remembered
    assert ledger.begin(b"k", b"fp", T + 1)["state"] == "run" and len(ledger) == 0


def test_a_claim_lapses_after_its_lease_and_the_late_answer_does_not_overwrite():
    ledger = IdempotencyLedger(_cfg(lease=5.0))
    dead = ledger.begin(b"k", b"fp", T)["claim"]  # a front that died while running it
    assert ledger.begin(b"k", b"fp", T + 4.9) == {"state": "busy"}
    retry = ledger.begin(b"k", b"fp", T + 5.0)
    assert retry["state"] == "run" and retry["claim"] != dead
    assert ledger.finish(b"k", retry["claim"], _response(b"retry")) is True
    assert ledger.finish(b"k", dead, _response(b"late")) is False
    assert ledger.begin(b"k", b"fp", T + 6)["response"].body == b"retry"


def test_responses_survive_a_restart_of_the_ledger(tmp_path):
    ledger = IdempotencyLedger(_cfg(tmp_path))
    for i in range(3):
        key = f"k{i}".encode()
        ledger.finish(key, ledger.begin(key, b"fp", T)["claim"], _response(f"body {i}".encode()))
    pending = ledger.begin(b"pending", b"fp", T)  # claims are not journaled: a restart frees them
    assert pending["state"] == "run"
    ledger.close()
    again = IdempotencyLedger(_cfg(tmp_path))
    assert [again.begin(f"k{i}".encode(), b"fp", T + 1)["response"].body for i in range(3)] == [
        b"body 0", b"body 1", b"body 2"]
    assert again.begin(b"pending", b"fp", T + 1)["state"] == "run"


def test_the_journal_compacts_to_the_live_responses(tmp_path):
    ledger = IdempotencyLedger(_cfg(tmp_path, max_keys=10))
    for i in range(100):
        key = f"k{i}".encode()
        ledger.finish(key, ledger.begin(key, b"fp", T + i)["claim"], _response(f"{i}".encode(), at=T + i))
    journal = tmp_path / "idempotency" / "journal"
    frames = sum(os.path.getsize(journal / n) for n in os.listdir(journal))
    assert len(ledger) == 10
    assert frames < 40 * len(_response().body + b"x" * 40)  # bounded, not 100 responses
    again = IdempotencyLedger(_cfg(tmp_path, max_keys=10))
    assert len(again) == 10
    assert again.begin(b"k99", b"fp", T + 100)["response"].body == b"99"
    assert again.begin(b"k80", b"fp", T + 100)["state"] == "run"  # evicted (least recently used)
