"""The one place that touches Ray: actor classes, the Ray transport, start-up and shutdown.

``AccountHost`` and ``Supervisor`` are plain classes; they are wrapped with ``ray.remote``
here and nowhere else. Every actor call of the server goes through :class:`RayTransport`,
which awaits object refs (never ``ray.get`` on the event loop) with a timeout and turns a
dead or slow actor into ``ShardUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from ..exceptions import ShardUnavailable
from ..settings import Settings
from .host import AccountHost
from .placement import shard_key
from .service import RiskService
from .supervisor import Supervisor

__all__ = ["RayRuntime", "RayTransport", "start"]

log = logging.getLogger("riskactors.actors")
_NAMESPACE = "riskactors"
RemoteHost = ray.remote(num_cpus=0, max_restarts=0)(AccountHost)
RemoteSupervisor = ray.remote(num_cpus=0, max_restarts=0)(Supervisor)


class RayTransport:
    """Awaits actor method refs with a timeout; maps Ray failures to ``ShardUnavailable``."""

    def __init__(self, timeout: float = 5.0):
        self.timeout = timeout

    async def call(self, target: Any, method: str, *args: Any) -> Any:
        try:
            ref = getattr(target, method).remote(*args)
            return await asyncio.wait_for(ref, self.timeout)
        except (TimeoutError, RayActorError, GetTimeoutError) as exc:
            raise ShardUnavailable(f"{method}: actor unavailable ({type(exc).__name__})") from exc
        except RayTaskError as exc:  # a bug inside the actor: surface the original error
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise cause from None

    async def spawn_host(self, host_id: str, config: dict[str, Any]) -> Any:
        handle = RemoteHost.options(name=f"riskactors-{host_id}", namespace=_NAMESPACE,
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
    service = RiskService(RayTransport(settings.call_timeout_seconds), supervisor, shards, settings.placement,
                          settings.reservation_ttl_seconds)
    return RayRuntime(service=service, supervisor=supervisor, shards=shards, started_ray=started)
