"""RayTransport while an actor restarts: idempotent calls are sent again until the actor is
back (within the call timeout); other calls, and idempotent ones past the timeout, fail closed
with ``ShardUnavailable`` (HTTP 503 ``SERVICE_UNAVAILABLE``). Fake actor handles stand in for
Ray's, so the timing is exact; the real restart is in ``tests/faults``."""

from __future__ import annotations

import asyncio

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError

from riskactors.actors.ray_runtime import IDEMPOTENT_CALLS, RayTransport
from riskactors.exceptions import ShardUnavailable


class FlakyActor:
    """``method.remote()`` raises ``errors[i]`` on the i-th call, then answers ``"ok"``."""

    def __init__(self, *errors: Exception):
        self.errors = list(errors)
        self.calls = 0

    def __getattr__(self, method: str):
        actor = self

        class _Method:
            @staticmethod
            def remote(*args):
                actor.calls += 1
                fut = asyncio.get_running_loop().create_future()
                if actor.errors:
                    fut.set_exception(actor.errors.pop(0))
                else:
                    fut.set_result(("ok", method, args))
                return fut

        return _Method


def _restarting() -> ActorUnavailableError:
    return ActorUnavailableError("the actor is restarting", None)


def test_an_idempotent_call_is_sent_again_until_the_actor_is_back():
    actor = FlakyActor(ActorDiedError(), _restarting(), _restarting())
    result = asyncio.run(RayTransport(timeout=5.0).call(actor, "fill", {"fill_id": "f1"}, 1.0))
    assert result == ("ok", "fill", ({"fill_id": "f1"}, 1.0)) and actor.calls == 4


def test_a_call_that_is_not_idempotent_fails_closed_at_once():
    assert "register" not in IDEMPOTENT_CALLS and "patch_limits" not in IDEMPOTENT_CALLS
    actor = FlakyActor(_restarting())
    with pytest.raises(ShardUnavailable, match="patch_limits: actor restarting"):
        asyncio.run(RayTransport(timeout=5.0).call(actor, "patch_limits", "a1", {}, "ops", "", 1.0))
    assert actor.calls == 1


def test_an_idempotent_call_fails_closed_when_the_actor_is_not_back_within_the_timeout():
    actor = FlakyActor(*[_restarting() for _ in range(100)])
    with pytest.raises(ShardUnavailable, match="check_many: actor restarting"):
        asyncio.run(RayTransport(timeout=0.3).call(actor, "check_many", [], []))
    assert 2 <= actor.calls <= 6  # 50, 100, 200 ms backoff inside 0.3 s


def test_a_slow_actor_fails_closed_after_the_timeout():
    class Silent:
        def __getattr__(self, method):
            class _M:
                @staticmethod
                def remote(*args):
                    return asyncio.get_running_loop().create_future()  # never answers
            return _M

    with pytest.raises(ShardUnavailable, match="did not answer within 0.2 s"):
        asyncio.run(RayTransport(timeout=0.2).call(Silent(), "view", "a1", 1.0))
