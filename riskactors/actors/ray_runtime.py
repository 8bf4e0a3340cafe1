"""The one place that touches Ray: actor classes, the Ray transport, start-up and shutdown.

``AccountHost`` and ``Supervisor`` are plain classes; they are wrapped with ``ray.remote``
here and nowhere else, with restarts enabled (``max_restarts=-1``): Ray re-creates a dead
actor, on another node if its node is gone, and the constructor recovers the state from the
storage root before the actor answers. Every actor call of the server goes through
:class:`RayTransport`, which awaits object refs (never ``ray.get`` on the event loop) with a
timeout, retries idempotent calls while an actor restarts, and turns a dead, restarting or
slow actor into ``ShardUnavailable`` (HTTP 503, fail closed).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError

from ..exceptions import ShardUnavailable
from ..settings import Settings
from .clock import DeploymentClock
from .host import AccountHost
from .placement import shard_key
from .service import RiskService
from .supervisor import Supervisor

__all__ = ["RayRuntime", "RayTransport", "start"]

log = logging.getLogger("riskactors.actors")
_NAMESPACE = "riskactors"
RemoteHost = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(AccountHost)
RemoteSupervisor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(Supervisor)

#: Calls that give the same answer and change nothing when repeated (reads; checks and fills
#: are idempotent on ``order_id``/``fill_id``; cancels, marks and calendar events on their
#: keys), so they are sent again while their actor restarts.
IDEMPOTENT_CALLS = frozenset({
    "ping", "stats", "locate", "host_list", "view", "events", "summaries", "recommendations", "closed_trades",
    "position_size", "breaches", "check", "check_many", "cancel", "fill", "apply_marks", "apply_calendar",
    "plans_list", "plan_versions", "consolidated", "analytics", "behaviour_config", "calendar_list", "audit",
    "advance_to",
})


class RayTransport:
    """Awaits actor method refs with a timeout; retries idempotent calls while the actor
    restarts (backoff 50 ms doubling to 0.5 s, within the timeout); maps Ray failures to
    ``ShardUnavailable``."""

    def __init__(self, timeout: float = 5.0):
        self.timeout = timeout

    async def call(self, target: Any, method: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        delay = 0.05
        while True:
            try:
                ref = getattr(target, method).remote(*args)
                return await asyncio.wait_for(ref, max(deadline - loop.time(), 0.01))
            except (TimeoutError, GetTimeoutError) as exc:
                raise ShardUnavailable(f"{method}: actor did not answer within {self.timeout:g} s") from exc
            except RayActorError as exc:
                if method in IDEMPOTENT_CALLS and loop.time() + delay < deadline:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                state = "restarting" if isinstance(exc, ActorUnavailableError) else "unavailable"
                raise ShardUnavailable(f"{method}: actor {state} ({type(exc).__name__})") from exc
            except RayTaskError as exc:  # a bug inside the actor: surface the original error
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                raise cause from None

    async def spawn_host(self, host_id: str, config: dict[str, Any]) -> Any:
        """The dedicated host ``host_id``: the live named actor, or a new one (which recovers
        its accounts from the storage root)."""
        handle = RemoteHost.options(name=f"riskactors-{host_id}", namespace=_NAMESPACE, get_if_exists=True,
                                    scheduling_strategy="SPREAD").remote(host_id, config)
        await self.call(handle, "ping")
        return handle

    async def kill(self, target: Any) -> None:
        ray.kill(target, no_restart=True)


@dataclass
class RayRuntime:
    """Handles of a running deployment; :meth:`shutdown` stops what :func:`start` started."""

    service: RiskService
    supervisor: Any
    shards: list[Any]
    started_ray: bool

    def shutdown(self) -> None:
        """Kill this deployment's actors; shut Ray down only if we started it."""
        try:
            hosts = ray.get(self.supervisor.host_list.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            hosts = [(shard_key(i), s) for i, s in enumerate(self.shards)]
        try:  # flush journals in an orderly stop (under the default policy they are already on disk)
            ray.get([h.close.remote() for _, h in hosts], timeout=30)
        except Exception as exc:  # noqa: BLE001 - best effort at shutdown
            log.warning("closing journals at shutdown: %s", exc)
        for _, h in hosts:
            _kill_quietly(h)
        _kill_quietly(self.supervisor)
        if self.started_ray and ray.is_initialized():
            ray.shutdown()


def _kill_quietly(handle: Any) -> None:
    """Kill an actor at shutdown; one already gone is only logged."""
    try:
        ray.kill(handle, no_restart=True)
    except Exception as exc:  # noqa: BLE001 - best effort at shutdown
        log.debug("actor already gone at shutdown: %s", exc)


def start(settings: Settings) -> RayRuntime:
    """Connect to (``settings.address``) or start an embedded Ray and create the actors.

    Embedded Ray starts with the dashboard off. Sharded placement creates ``settings.shards``
    host actors spread over the cluster's nodes; dedicated placement creates one per account
    as accounts register (by the supervisor).
    """
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"namespace": _NAMESPACE, "include_dashboard": False,
                                  "log_to_driver": False, "configure_logging": False}
        if settings.address:
            ray.init(address=settings.address, **kwargs)
        else:
            # "local": always a new embedded instance, never a cluster `ray start` left on this machine
            ray.init(address="local", num_cpus=settings.num_cpus, **kwargs)
        started = True
    config = settings.host_config()
    shards: list[Any] = []
    if settings.placement == "sharded":
        shards = [RemoteHost.options(scheduling_strategy="SPREAD").remote(shard_key(i), config)
                  for i in range(settings.shards)]
        ray.get([s.ping.remote() for s in shards], timeout=120)
    supervisor = RemoteSupervisor.remote(RayTransport(settings.call_timeout_seconds), settings.placement, shards,
                                         config)
    ray.get(supervisor.stats.remote(), timeout=120)
    # the events clock resumes at the latest event the hosts have journaled (never goes back)
    hosts = [h for _, h in ray.get(supervisor.host_list.remote(), timeout=120)]
    clocks = [p["clock"] for p in ray.get([h.ping.remote() for h in hosts], timeout=120)]
    clock = DeploymentClock(settings.clock, start=max(clocks, default=0.0))
    service = RiskService(RayTransport(settings.call_timeout_seconds), supervisor, shards, settings.placement,
                          settings.reservation_ttl_seconds, clock, settings.tick_seconds)
    return RayRuntime(service=service, supervisor=supervisor, shards=shards, started_ray=started)
