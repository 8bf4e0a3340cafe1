"""The deployment is its actors (issue 10, part 1): named, found again, refused when they differ.

Every test runs on the session's local Ray with a deployment name of its own. Worked numbers:
``moderate`` accounts (5 lots per instrument), EURUSD at 1.10000/1.10020.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import ray

from riskactors.actors import ray_runtime
from riskactors.actors.deployment import actor_name
from riskactors.exceptions import DeploymentMismatch
from riskactors.settings import Settings
from tests.conftest import new_deployment_name, new_storage_root

pytestmark = pytest.mark.usefixtures("ray_session")


def _settings(name: str, **over) -> Settings:
    base = {"placement": "sharded", "shards": 2, "call_timeout_seconds": 30.0, "storage_root": "", "deployment": name}
    return Settings(**{**base, **over})


def _ids(runtime) -> tuple:
    return runtime.supervisor._actor_id.hex(), tuple(s._actor_id.hex() for s in runtime.shard_actors())


async def _register(service, account_id: str) -> None:
    await service.register({"account_id": account_id, "user_id": "u1", "challenge_id": "c1", "currency": "USD",
                            "initial_balance": 100_000.0, "plan": "moderate",
                            "limits": {"max_orders_per_second": 1000}}, time.time())


def test_a_second_front_attaches_to_the_same_actors_and_sees_the_same_accounts():
    name = new_deployment_name()
    first = ray_runtime.start(_settings(name))
    try:
        second = ray_runtime.start(_settings(name))
        assert _ids(second) == _ids(first)  # no second set of actors
        assert ray.get_actor(actor_name(name, "shard-0"), namespace="riskactors")._actor_id == first.shard_actors()[0]._actor_id

        async def scenario():
            await _register(first.service, "a1")
            now = time.time()
            await second.service.marks([{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1002, "ts": now}])
            orders = [({"order_id": f"o{k}", "account_id": "a1", "instrument": "EURUSD", "side": "buy",
                        "quantity": 1.0, "ts": now}, now) for k in range(10)]
            fronts = [first.service, second.service]
            return await asyncio.gather(*(fronts[k % 2].check(o, t) for k, (o, t) in enumerate(orders)))

        decisions = asyncio.run(scenario())
        # 10 one-lot orders through two fronts against a 5-lot limit: exactly 5 reserve
        assert sum(d["decision"] == "accept" for d in decisions) == 5
        rejected = [d for d in decisions if d["decision"] == "reject"]
        assert all([r["code"] for r in d["reasons"]] == ["MAX_POSITION_SIZE"] for d in rejected)
    finally:
        first.shutdown()


@pytest.mark.parametrize(("setting", "value"), [("shards", 3), ("fsync", "always"), ("clock", "events"),
                                                ("reservation_ttl_seconds", 45.0),
                                                ("trading_day_timezone", "Europe/Prague")])
def test_attaching_with_another_deployment_level_setting_is_refused_naming_it(setting, value):
    name = new_deployment_name()
    runtime = ray_runtime.start(_settings(name))
    try:
        with pytest.raises(DeploymentMismatch) as caught:
            ray_runtime.start(_settings(name, **{setting: value}))
        assert caught.value.setting == setting and f"{setting}=" in str(caught.value) and name in str(caught.value)
        # front-level settings may differ
        other = ray_runtime.start(_settings(name, port=8123, max_body_bytes=4096, call_timeout_seconds=7.0))
        assert _ids(other) == _ids(runtime)
    finally:
        runtime.shutdown()


def test_a_front_of_another_version_is_refused(monkeypatch):
    name = new_deployment_name()
    runtime = ray_runtime.start(_settings(name))
    try:
        from riskactors.actors import deployment

        monkeypatch.setattr(deployment, "__version__", "99.0.0")
        with pytest.raises(DeploymentMismatch) as caught:
            ray_runtime.start(_settings(name))
        assert caught.value.setting == "version" and "99.0.0" in str(caught.value)
        assert "riskactors down" in str(caught.value)
    finally:
        runtime.shutdown()


def test_down_removes_the_actors_and_the_state_on_the_root_stays():
    name, root = new_deployment_name(), new_storage_root()
    runtime = ray_runtime.start(_settings(name, storage_root=root))
    asyncio.run(_register(runtime.service, "kept"))
    assert ray_runtime.down(_settings(name, storage_root=root)) == 4  # two shards, the supervisor and the idempotency ledger
    for role in ("supervisor", "shard-0", "shard-1"):
        with pytest.raises(ValueError):
            ray.get_actor(actor_name(name, role), namespace="riskactors")
    assert ray_runtime.down(_settings(name)) == 0  # nothing left to remove
    again = ray_runtime.start(_settings(name, storage_root=root))
    try:
        view = asyncio.run(again.service.view("kept"))
        assert view["account_id"] == "kept" and view["balance"] == 100_000.0
    finally:
        again.shutdown()


def test_a_storage_root_records_its_deployment_and_refuses_another_setting_on_recovery():
    name, root = new_deployment_name(), new_storage_root()
    runtime = ray_runtime.start(_settings(name, storage_root=root))
    ray_runtime.down(_settings(name, storage_root=root))
    with pytest.raises(Exception, match="fsync") as caught:  # the supervisor's constructor refuses it
        ray_runtime.start(_settings(name, storage_root=root, fsync="interval"))
    assert "DeploymentMismatch" in repr(caught.value) or isinstance(caught.value, DeploymentMismatch)
    for role in ("supervisor", "shard-0", "shard-1"):  # no half deployment is left behind
        with pytest.raises(ValueError):
            ray.get_actor(actor_name(name, role), namespace="riskactors")
    assert runtime.owns_actors
