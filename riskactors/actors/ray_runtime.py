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
from ..persistence import Fenced
from ..settings import Settings
from .clock import DeploymentClock
from .deployment import actor_name, check, record
from .host import AccountHost
from .idempotency import IdempotencyLedger
from .placement import shard_key
from .service import RiskService
from .supervisor import Supervisor

__all__ = ["RayRuntime", "RayTransport", "down", "start", "stop_actors"]

log = logging.getLogger("riskactors.actors")
_NAMESPACE = "riskactors"
RemoteHost = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(AccountHost)


class _RaySupervisor(Supervisor):
    """The supervisor as a Ray actor: every constructor argument is plain data (the shards by
    name, found again here), so Ray can re-create it after the front that created it is gone."""

    def __init__(self, deployment: str, timeout: float, placement: str, shard_names: list[str],
                 host_config: dict[str, Any]):
        shards = [ray.get_actor(n, namespace=_NAMESPACE) for n in shard_names]
        super().__init__(RayTransport(timeout, deployment), placement, shards, host_config)


RemoteSupervisor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(_RaySupervisor)
RemoteLedger = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(IdempotencyLedger)

#: Calls that give the same answer and change nothing when repeated (reads; checks and fills
#: are idempotent on ``order_id``/``fill_id``; cancels, marks and calendar events on their
#: keys), so they are sent again while their actor restarts.
IDEMPOTENT_CALLS = frozenset({
    "ping", "stats", "locate", "host_list", "latest_marks", "remember_marks", "view", "events", "summaries", "recommendations", "closed_trades",
    "position_size", "breaches", "check", "check_many", "cancel", "fill", "apply_marks", "apply_calendar",
    "plans_list", "plan_versions", "consolidated", "analytics", "behaviour_config", "calendar_list", "audit",
    "advance_to", "begin", "finish",
})


class RayTransport:
    """Awaits actor method refs with a timeout; retries idempotent calls while the actor
    restarts (backoff 50 ms doubling to 0.5 s, within the timeout); maps Ray failures to
    ``ShardUnavailable``."""

    def __init__(self, timeout: float = 5.0, deployment: str = "riskactors"):
        self.timeout = timeout
        self.deployment = deployment

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
                if isinstance(cause, Fenced):  # a newer instance holds the journal: fail closed
                    raise ShardUnavailable(f"{method}: {cause}") from None
                raise cause from None

    async def spawn_host(self, host_id: str, config: dict[str, Any]) -> Any:
        """The dedicated host ``host_id``: the live named actor, or a new one (which recovers
        its accounts from the storage root)."""
        handle = RemoteHost.options(name=actor_name(self.deployment, host_id), namespace=_NAMESPACE,
                                    get_if_exists=True, lifetime=config.get("lifetime"),
                                    scheduling_strategy="SPREAD").remote(host_id, config)
        await self.call(handle, "ping")
        return handle

    async def kill(self, target: Any) -> None:
        ray.kill(target, no_restart=True)


@dataclass
class RayRuntime:
    """Handles of a running deployment; :meth:`shutdown` stops what :func:`start` started.

    ``owns_actors``: the deployment lives in this process's Ray (embedded, or a test's local
    Ray): its actors stop with the front. A front attached to a cluster (``--address``) leaves
    them running (``riskactors down`` removes them).
    """

    service: RiskService
    supervisor: Any
    shards: list[Any]
    started_ray: bool
    owns_actors: bool = True
    ledger: Any = None

    def shutdown(self) -> None:
        """Stop this front: kill the deployment's actors if it owns them; shut Ray down only if
        it started it."""
        if self.owns_actors:
            stop_actors(self.supervisor, self.shards, self.ledger)
        if self.started_ray and ray.is_initialized():
            ray.shutdown()


def stop_actors(supervisor: Any, shards: list[Any], ledger: Any = None) -> int:
    """Flush every host's journal and kill the deployment's actors (supervisor last); returns
    how many were killed. The state on the storage root stays."""
    if ledger is not None:
        try:
            ray.get(ledger.close.remote(), timeout=10)
        except Exception as exc:  # noqa: BLE001 - best effort at shutdown
            log.warning("closing the idempotency ledger at shutdown: %s", exc)
        _kill_quietly(ledger)
    try:
        hosts = ray.get(supervisor.host_list.remote(), timeout=10)
    except Exception:  # noqa: BLE001 - best effort at shutdown
        hosts = [(shard_key(i), s) for i, s in enumerate(shards)]
    try:  # flush journals in an orderly stop (under the default policy they are already on disk)
        ray.get([h.close.remote() for _, h in hosts], timeout=30)
    except Exception as exc:  # noqa: BLE001 - best effort at shutdown
        log.warning("closing journals at shutdown: %s", exc)
    for _, h in hosts:
        _kill_quietly(h)
    _kill_quietly(supervisor)
    return len(hosts) + 1 + (ledger is not None)


def _kill_quietly(handle: Any) -> None:
    """Kill an actor at shutdown; one already gone is only logged."""
    try:
        ray.kill(handle, no_restart=True)
    except Exception as exc:  # noqa: BLE001 - best effort at shutdown
        log.debug("actor already gone at shutdown: %s", exc)


def start(settings: Settings) -> RayRuntime:
    """Connect to (``settings.address``) or start an embedded Ray, then create the deployment's
    actors or attach to them.

    The actors are named (``<deployment>/supervisor``, ``<deployment>/shard-<i>``, in the
    ``riskactors`` namespace); on a cluster they are detached, so they outlive this front. A
    front that finds the deployment attaches to it after checking the record the first front
    left: the same riskactors version and the same deployment-level settings
    (:meth:`Settings.deployment_settings`).

    Raises
    ------
    DeploymentMismatch
        The deployment was created by another version or with another value of a setting; the
        error names it.
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
    name = settings.deployment
    wanted = record(name, settings.deployment_settings())
    config = settings.host_config()
    config["deployment"] = wanted
    lifetime = "detached" if settings.address else None
    config["lifetime"] = lifetime
    supervisor = _existing(actor_name(name, "supervisor"))
    if supervisor is not None:  # attach: the deployment is there already
        check(ray.get(supervisor.deployment_info.remote(), timeout=120), wanted, "on the cluster")
    shard_names = [actor_name(name, shard_key(i)) for i in range(settings.shards)] \
        if settings.placement == "sharded" else []
    shards = [RemoteHost.options(name=n, namespace=_NAMESPACE, get_if_exists=True, lifetime=lifetime,
                                 scheduling_strategy="SPREAD").remote(shard_key(i), config)
              for i, n in enumerate(shard_names)]
    ray.get([s.ping.remote() for s in shards], timeout=120)
    if supervisor is None:
        supervisor = RemoteSupervisor.options(name=actor_name(name, "supervisor"), namespace=_NAMESPACE,
                                              get_if_exists=True, lifetime=lifetime).remote(
            name, settings.call_timeout_seconds, settings.placement, shard_names, config)
        try:  # another front may have won the race to create it: the record decides either way
            check(ray.get(supervisor.deployment_info.remote(), timeout=120), wanted, "on the cluster")
        except Exception:  # refused (or its root refused it on recovery): leave no half deployment
            for actor in (*shards, supervisor):
                _kill_quietly(actor)
            raise
    ledger = RemoteLedger.options(name=actor_name(name, "idempotency"), namespace=_NAMESPACE, get_if_exists=True,
                                  lifetime=lifetime).remote(settings.ledger_config())
    ray.get(ledger.ping.remote(), timeout=120)
    # the events clock resumes at the latest event the hosts have journaled (never goes back)
    hosts = [h for _, h in ray.get(supervisor.host_list.remote(), timeout=120)]
    clocks = [p["clock"] for p in ray.get([h.ping.remote() for h in hosts], timeout=120)]
    clock = DeploymentClock(settings.clock, start=max(clocks, default=0.0))
    service = RiskService(RayTransport(settings.call_timeout_seconds, name), supervisor, shards, settings.placement,
                          clock, settings.tick_seconds, ledger)
    return RayRuntime(service=service, supervisor=supervisor, shards=shards, started_ray=started,
                      owns_actors=not settings.address, ledger=ledger)


def _existing(name: str) -> Any | None:
    """The live named actor ``name`` of the riskactors namespace, or ``None``."""
    try:
        return ray.get_actor(name, namespace=_NAMESPACE)
    except ValueError:
        return None


def down(settings: Settings) -> int:
    """Remove the deployment ``settings.deployment`` from the cluster at ``settings.address``:
    flush and kill its actors (the state on the storage root stays). Returns how many actors
    were killed (0: no such deployment)."""
    started = False
    if not ray.is_initialized():
        ray.init(address=settings.address or "auto", namespace=_NAMESPACE, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        started = True
    try:
        supervisor = _existing(actor_name(settings.deployment, "supervisor"))
        if supervisor is None:
            return 0
        return stop_actors(supervisor, [], _existing(actor_name(settings.deployment, "idempotency")))
    finally:
        if started:
            ray.shutdown()
