"""The collector policy of server processes (:mod:`riskactors.actors.gcpolicy`), run in a fresh
interpreter so this test process keeps CPython's default: after a collection of generation 1
or 2 its survivors are frozen (the next collections walk only newer objects), not after one of
generation 0, garbage cycles made afterwards are still collected, and installing twice
installs once."""

from __future__ import annotations

import subprocess
import sys

_PROGRAM = r"""
import gc, weakref
from riskactors.actors import gcpolicy

gc.collect()
assert not gcpolicy.installed()
base = gc.get_freeze_count()
kept = [[i] for i in range(10_000)]          # long-lived, tracked
gc.collect()
assert gc.get_freeze_count() == base, "without the policy nothing is frozen"

gcpolicy.install(); gcpolicy.install()
assert gc.callbacks.count(gcpolicy._freeze_survivors) == 1
gc.collect()
frozen = gc.get_freeze_count()
assert frozen >= base + 10_000, (base, frozen)
assert not gc.get_objects(2), "the oldest generation is empty after the freeze"

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a                      # a cycle made after the freeze
gone = weakref.ref(a)
del a, b
gc.collect()
assert gone() is None, "a cycle made after the freeze is still collected"
young = [[i] for i in range(1_000)]
before = gc.get_freeze_count()
gc.collect(0)
assert gc.get_freeze_count() == before, "the youngest generation's collection freezes nothing"
gc.collect(1)
assert gc.get_freeze_count() >= before + 1_000, "the middle generation's survivors are frozen"
print("ok", frozen - base)
"""


def test_full_collections_freeze_their_survivors_and_later_cycles_are_still_collected():
    done = subprocess.run([sys.executable, "-c", _PROGRAM], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")


_HOST_TRAFFIC = r"""
import asyncio, gc, sys, threading
sys.path.insert(0, sys.argv[2])
from unitkit import T0, make_limits
from riskactors.actors import gcpolicy
from riskactors.actors.host import AccountHost
from riskactors.actors.hostlink import HostLink, LinkServer

if sys.argv[1] == "on":
    gcpolicy.install()
limits = make_limits("moderate", 10_000, max_orders_per_second=100_000, max_open_positions=1_000,
                     max_leverage=1_000).to_dict()
host = AccountHost("h0", {})
for i in range(16):
    host.register({"account_id": f"a{i}", "user_id": f"u{i}", "challenge_id": "c1", "currency": "USD",
                   "initial_balance": 10_000.0, "plan": "moderate", "plan_version": 1, "resolved_limits": limits},
                  [], [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "ts": T0}], T0)
server = LinkServer(host, threading.RLock())

async def traffic():
    link = await HostLink.open(server.endpoint(), True, timeout=5)
    for k in range(600):
        now = T0 + 1 + k * 1e-3
        orders = [{"order_id": f"o{k}-{j}", "account_id": f"a{(k * 4 + j) % 16}", "instrument": "EURUSD",
                   "side": "buy", "quantity": 0.01, "ts": now} for j in range(4)]
        await asyncio.gather(*(link.call("check_many", [[o], [now]], timeout=5) for o in orders))
        await link.call("view", ["nobody", now], timeout=5)  # an error answer
        if k % 50 == 0:
            gc.collect()  # full collections while calls are in flight: the policy freezes
    link.close()

asyncio.run(traffic())
server.close()
gc.unfreeze()
print(gc.collect())
"""


def test_a_host_and_its_link_leave_no_cycles_for_the_policy_to_keep():
    """What a frozen full collection could keep for good is cyclic garbage: checks, error
    answers and views over the host link, with full collections in between, leave as much
    of it with the policy as without (found once everything is unfrozen)."""
    from pathlib import Path

    unit = str(Path(__file__).parent)
    found = {}
    for mode in ("off", "on"):
        done = subprocess.run([sys.executable, "-c", _HOST_TRAFFIC, mode, unit], check=False, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        found[mode] = int(done.stdout.split()[-1])
    assert found["on"] <= found["off"] + 5, found
