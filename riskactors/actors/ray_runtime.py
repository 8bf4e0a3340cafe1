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
import contextlib
import functools
import inspect
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..exceptions import ShardUnavailable
from ..persistence import Fenced
from ..settings import Settings
from . import gcpolicy
from .clock import DeploymentClock
from .deployment import actor_name, check, record
from .host import AccountHost
from .hostlink import LINK_METHODS, HostLink, LinkDown, LinkServer
from .idempotency import IdempotencyLedger
from .placement import shard_key
from .service import RiskService
from .supervisor import Supervisor

__all__ = ["RayRuntime", "RayTransport", "down", "plan_moves", "rebalance", "start", "stop_actors"]

log = logging.getLogger("riskactors.actors")
_NAMESPACE = "riskactors"
#: The "memory" resource a moved shard asks for (bytes): see ``_RaySupervisor._move``.
_MOVED_MEMORY = 1 << 20


def _serialised(method: Any) -> Any:
    @functools.wraps(method)
    def call(self: AccountHostActor, *args: Any, **kwargs: Any) -> Any:
        with self._call_lock:
            return method(self, *args, **kwargs)

    return call


class AccountHostActor(AccountHost):
    """An account host as a Ray actor that also serves :data:`~riskactors.actors.hostlink.LINK_METHODS`
    on a socket (:mod:`~riskactors.actors.hostlink`; off with ``config["link"] = False``). Every
    public method holds one lock, as the link's calls do, so calls still run one at a time. Its
    process freezes the survivors of full collections (:mod:`~riskactors.actors.gcpolicy`)."""

    def __init__(self, host_id: str, config: dict[str, Any] | None = None):
        gcpolicy.install()
        self._call_lock = threading.RLock()  # re-entrant: a public method may call another
        super().__init__(host_id, config)
        self._link = None
        if (config or {}).get("link", True):
            self._link = LinkServer(self, self._call_lock, ray.util.get_node_ip_address())

    def link_endpoint(self) -> dict[str, Any] | None:
        """Where a front reaches :data:`LINK_METHODS` of this instance, with its token and node
        id (``None``: no link; call through Ray)."""
        if self._link is None:
            return None
        return {**self._link.endpoint(), "node_id": ray.get_runtime_context().get_node_id()}


for _name, _method in list(vars(AccountHost).items()):
    if inspect.isfunction(_method) and not _name.startswith("_"):
        setattr(AccountHostActor, _name, _serialised(_method))

RemoteHost = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(AccountHostActor)


class _RaySupervisor(Supervisor):
    """The supervisor as a Ray actor: every constructor argument is plain data (the shards by
    name), so Ray can re-create it after the front that created it is gone. Hosts are called by
    actor name (:class:`RayTransport` finds the live instance), so a shard moved to another node
    (:meth:`rebalance`) is found again by every caller."""

    def __init__(self, deployment: str, timeout: float, placement: str, shard_names: list[str],
                 host_config: dict[str, Any], spawn_timeout: float = 60.0):
        super().__init__(RayTransport(timeout, deployment, spawn_timeout), placement, list(shard_names), host_config)
        self.deployment_name = deployment

    def _nodes(self) -> list[dict[str, Any]]:
        return [{"node_id": n["NodeID"], "address": n.get("NodeManagerAddress"), "alive": bool(n.get("Alive")),
                 "cpus": n.get("Resources", {}).get("CPU", 0.0)} for n in ray.nodes()]

    async def rebalance(self, drain: str | None = None) -> dict[str, Any]:
        """Spread the shards evenly over the live nodes (all but ``drain``: a node id or
        address), one shard at a time: each move flushes the shard, stops it and starts it again
        on the target node from the storage root (a new epoch fences the old instance); checks
        to that shard fail closed (503) for the moment of the move. Returns the moves made and
        the layout after them."""
        layout = await self._layout()
        nodes = [n["node_id"] for n in self._nodes() if n["alive"] and drain not in (n["node_id"], n["address"])]
        if drain is not None and len(nodes) == len([n for n in self._nodes() if n["alive"]]):
            raise ValueError(f"--drain {drain!r}: no live node has that id or address")
        if not nodes:
            raise ValueError("no live node to place the shards on")
        moves = []
        for key, target in plan_moves(layout, nodes):
            started = time.perf_counter()
            placed, attempts = await self._move(key, target)
            moves.append({"shard": key, "from": layout[key], "to": placed, "wanted": target, "attempts": attempts,
                          "seconds": round(time.perf_counter() - started, 3)})
            layout[key] = placed
        return {"moves": moves, "layout": layout}

    async def _layout(self) -> dict[str, str]:
        """Shard key → node id of its live instance."""
        keys = sorted(self.hosts, key=lambda k: int(k.rsplit("-", 1)[1]))
        pings = await asyncio.gather(*(self.transport.call(self.hosts[k], "ping") for k in keys))
        return {k: p["node_id"] for k, p in zip(keys, pings)}

    async def _move(self, key: str, node_id: str) -> tuple[str, int]:
        """Restart shard ``key`` on ``node_id``. Should it land elsewhere (a soft affinity falls
        back when the node cannot take it at that moment), the move is tried again, up to 5
        times, half a second apart. Returns (node it runs on, attempts)."""
        name = self.hosts[key]
        for attempt in range(5):
            old = ray.get_actor(name, namespace=_NAMESPACE)
            try:
                await asyncio.wait_for(old.close.remote(), self.transport.timeout)  # flush its journal
            except Exception as exc:  # noqa: BLE001 - its journal is durable per call anyway
                log.warning("closing %s before its move: %s", name, exc)
            ray.kill(old, no_restart=True)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while _existing(name) is not None:  # the name is free once the old instance is gone
                if loop.time() > deadline:
                    raise TimeoutError(f"{name} did not stop within 60 s")
                await asyncio.sleep(0.05)
            # soft: if that node goes later, Ray restarts the shard anywhere. Ray ignores a soft
            # affinity for a request of no resources at all (it picks a random node), so the
            # moved shard asks for 1 MiB of the "memory" resource, which every node has.
            strategy = NodeAffinitySchedulingStrategy(node_id, soft=True)
            handle = RemoteHost.options(name=name, namespace=_NAMESPACE, get_if_exists=True,
                                        lifetime=self.host_config.get("lifetime"), memory=_MOVED_MEMORY,
                                        scheduling_strategy=strategy).remote(key, self.host_config)
            placed = (await asyncio.wait_for(handle.ping.remote(), 120))["node_id"]
            self.transport.pin(name, handle, replace=True)
            if placed == node_id:
                return placed, attempt + 1
            log.warning("%s landed on %s, not %s (attempt %d)", name, placed, node_id, attempt + 1)
            await asyncio.sleep(0.5)
        return placed, 5


def plan_moves(layout: dict[str, str], nodes: list[str]) -> list[tuple[str, str]]:
    """The moves that spread ``layout`` (shard key → node id) evenly over ``nodes``: shards on a
    node not in ``nodes`` first, then from the most loaded node to the least loaded, until no
    node holds more than ``ceil(shards / nodes)`` nor fewer than ``floor``. Deterministic."""
    count = {n: 0 for n in nodes}
    for node in layout.values():
        if node in count:
            count[node] += 1
    cap = -(-len(layout) // len(nodes))
    moves: list[tuple[str, str]] = []
    placed = dict(layout)
    for key in sorted(placed, key=lambda k: int(k.rsplit("-", 1)[1])):
        node = placed[key]
        if node not in count or count[node] > cap:
            target = min(nodes, key=lambda n: (count[n], n))
            if node in count:
                count[node] -= 1
            count[target] += 1
            placed[key] = target
            moves.append((key, target))
    while True:
        hi = max(nodes, key=lambda n: (count[n], n))
        lo = min(nodes, key=lambda n: (count[n], n))
        if count[hi] - count[lo] <= 1:
            return moves
        key = max(k for k, n in placed.items() if n == hi)
        placed[key] = lo
        count[hi] -= 1
        count[lo] += 1
        moves.append((key, lo))


RemoteSupervisor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(_RaySupervisor)
RemoteLedger = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(IdempotencyLedger)

#: Calls that give the same answer and change nothing when repeated (reads; checks and fills
#: are idempotent on ``order_id``/``fill_id``; cancels, marks and calendar events on their
#: keys), so they are sent again while their actor restarts.
IDEMPOTENT_CALLS = frozenset({
    "ping", "stats", "locate", "host_list", "latest_marks", "route_marks", "expose", "cluster", "front_seen",
    "view", "events", "summaries", "rollup", "recommendations", "closed_trades",
    "position_size", "breaches", "check", "check_many", "cancel", "fill", "fill_many", "apply_marks", "apply_calendar",
    "plans_list", "plan_versions", "consolidated", "analytics", "behaviour_config", "calendar_list", "audit",
    "advance_to", "begin", "finish", "audit_outbox", "audit_delivered", "audit_append_many", "deliver_audits",
    "link_endpoint",
})
assert LINK_METHODS <= IDEMPOTENT_CALLS, "a call whose link broke is sent again through Ray"


class RayTransport:
    """Awaits actor method refs with a timeout; retries idempotent calls while the actor
    restarts (backoff 50 ms doubling to 0.5 s, within the timeout); maps Ray failures to
    ``ShardUnavailable``.

    ``timeout`` (seconds) bounds a call unless the call names its own; ``spawn_timeout`` bounds
    the start of a dedicated host (:meth:`spawn_host`: a new worker process and its recovery)."""

    def __init__(self, timeout: float = 5.0, deployment: str = "riskactors", spawn_timeout: float = 60.0,
                 links: bool = True):
        self.timeout = timeout
        self.spawn_timeout = spawn_timeout
        self.deployment = deployment
        self._handles: dict[str, Any] = {}
        self._pinned: dict[str, Any] = {}
        #: host name -> its link (:mod:`~riskactors.actors.hostlink`), or the loop time before
        #: which it is not tried again (no link offered, or connecting failed)
        self.links = links
        self._links: dict[str, HostLink | float] = {}
        self._linking: dict[str, asyncio.Lock] = {}
        #: calls answered over a link, per method (tests and benchmarks read it)
        self.link_calls: Counter[str] = Counter()

    def _resolve(self, target: Any) -> Any:
        """A target is an actor handle or an actor name (hosts: the live instance, found again
        after a move or a restart)."""
        if not isinstance(target, str):
            return target
        handle = self._handles.get(target)
        if handle is None:
            handle = self._handles[target] = ray.get_actor(target, namespace=_NAMESPACE)
        return handle

    def forget(self, name: str) -> None:
        """Drop the cached handle of ``name`` (its instance was replaced), and its link."""
        self._handles.pop(name, None)
        self._drop_link(name)

    def _drop_link(self, name: str) -> None:
        link = self._links.pop(name, None)
        if isinstance(link, HostLink):
            link.close()

    async def _link(self, name: str, deadline: float) -> HostLink | None:
        """The open link to host ``name``, connecting first if needed; ``None`` when there is
        none to use (the call goes through Ray). A host that offers none, or a connection that
        failed, is tried again after 1 s."""
        link = self._links.get(name)
        if isinstance(link, HostLink) and not link.closed:
            return link
        loop = asyncio.get_running_loop()
        if isinstance(link, float) and loop.time() < link:
            return None
        async with self._linking.setdefault(name, asyncio.Lock()):
            link = self._links.get(name)
            if isinstance(link, HostLink) and not link.closed:
                return link
            try:
                endpoint = await self._ray_call(name, "link_endpoint", (), deadline, self.timeout)
                if endpoint is None:
                    raise LinkDown("the host offers no link", sent=False)
                same_node = endpoint["node_id"] == ray.get_runtime_context().get_node_id()
                link = await HostLink.open(endpoint, same_node, max(deadline - loop.time(), 0.01))
            except Exception as exc:  # noqa: BLE001 - no link is never an error: the call goes through Ray
                log.debug("no link to %s: %s", name, exc)
                self._links[name] = loop.time() + 1.0
                return None
            self._links[name] = link
            return link

    def pin(self, name: str, handle: Any, replace: bool = False) -> None:
        """Use ``handle`` for ``name`` and keep it: an actor that is not detached lives only
        while its creator holds the handle it was created with (the embedded mode's actors), so
        a handle already kept is replaced only for a new instance (``replace``)."""
        self._handles[name] = handle
        if replace or name not in self._pinned:
            self._pinned[name] = handle

    async def call(self, target: Any, method: str, *args: Any, timeout: float | None = None) -> Any:
        """``method(*args)`` of ``target`` (an actor handle or name), within ``timeout`` seconds
        (default: the transport's). :data:`~riskactors.actors.hostlink.LINK_METHODS` of a host
        called by name go over its link when there is one: a link that is down, or broke
        while the call was in flight, hands the call to Ray (they are idempotent). Raises
        ``ShardUnavailable`` when no answer comes in time or the instance is fenced."""
        loop = asyncio.get_running_loop()
        timeout = self.timeout if timeout is None else timeout
        deadline = loop.time() + timeout
        if self.links and method in LINK_METHODS and isinstance(target, str):
            link = await self._link(target, deadline)
            if link is not None:
                try:
                    result = await link.call(method, list(args), max(deadline - loop.time(), 0.01))
                except LinkDown as exc:
                    log.info("link to %s down (%s): %s goes through Ray", target, exc, method)
                    self._drop_link(target)
                except ShardUnavailable:
                    self._drop_link(target)  # timed out or fenced: the next call asks Ray afresh
                    raise
                else:
                    self.link_calls[method] += 1
                    return result
        return await self._ray_call(target, method, args, deadline, timeout)

    async def _ray_call(self, target: Any, method: str, args: tuple[Any, ...], deadline: float,
                        timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        delay = 0.05
        while True:
            try:
                handle = self._resolve(target)
            except ValueError as exc:  # no live actor of that name (being moved or removed)
                if loop.time() + delay < deadline:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                raise ShardUnavailable(f"{method}: actor {target} not found ({exc})") from exc
            try:
                ref = getattr(handle, method).remote(*args)
                async with asyncio.timeout(max(deadline - loop.time(), 0.01)):  # no task, unlike wait_for
                    return await ref
            except (TimeoutError, GetTimeoutError) as exc:
                raise ShardUnavailable(f"{method}: actor did not answer within {timeout:g} s") from exc
            except RayActorError as exc:
                if isinstance(target, str) and not isinstance(exc, ActorUnavailableError):
                    self.forget(target)  # dead for good: a moved shard has a new instance by that name
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
        name = actor_name(self.deployment, host_id)
        handle = RemoteHost.options(name=name, namespace=_NAMESPACE,
                                    get_if_exists=True, lifetime=config.get("lifetime"),
                                    scheduling_strategy="SPREAD").remote(host_id, config)
        await self.call(handle, "ping", timeout=self.spawn_timeout)
        self.pin(name, handle)
        return name

    async def kill(self, target: Any) -> None:
        ray.kill(self._resolve(target), no_restart=True)
        if isinstance(target, str):
            self.forget(target)
            self._pinned.pop(target, None)


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
    settings: Settings | None = None

    def shard_actors(self) -> list[Any]:
        """The live actor handle of every shard (``shards`` are actor names)."""
        return [ray.get_actor(n, namespace=_NAMESPACE) for n in self.shards]

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
    hosts = [(k, h) for k, h in ((k, _handle(h)) for k, h in hosts) if h is not None]
    try:  # flush journals in an orderly stop (under the default policy they are already on disk)
        ray.get([h.close.remote() for _, h in hosts], timeout=30)
    except Exception as exc:  # noqa: BLE001 - best effort at shutdown
        log.warning("closing journals at shutdown: %s", exc)
    for _, h in hosts:
        _kill_quietly(h)
    _kill_quietly(supervisor)
    return len(hosts) + 1 + (ledger is not None)


def _handle(target: Any) -> Any | None:
    """The actor handle of a target (a handle or an actor name); ``None`` if no such actor."""
    return _existing(target) if isinstance(target, str) else target


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
        # Ray runs actor processes at nice 15 by default: on a busy machine the shards would lose
        # the CPU to the front first. An embedded Ray runs them at 0 (the variable wins if set);
        # on a cluster it is the nodes' `ray start` environment (cluster/start-*.sh set it).
        os.environ.setdefault("RAY_worker_niceness", "0")
        kwargs: dict[str, Any] = {"namespace": _NAMESPACE, "include_dashboard": False,
                                  "log_to_driver": False, "configure_logging": False}
        if settings.address:
            ray.init(address=settings.address, **kwargs)
        else:
            # "local": always a new embedded instance, never a cluster `ray start` left on this machine
            ray.init(address="local", num_cpus=settings.num_cpus, **kwargs)
        started = True
    name = settings.deployment
    supervisor = _existing(actor_name(name, "supervisor"))
    info = ray.get(supervisor.deployment_info.remote(), timeout=120) if supervisor is not None else None
    if settings.placement == "sharded" and settings.address and "shards" not in settings.model_fields_set:
        # on a cluster the shard count defaults to shards_per_node x the live nodes at creation;
        # a front that does not name one attaches with the deployment's
        recorded = ((info or {}).get("settings") or {}).get("shards")
        alive = sum(1 for n in ray.nodes() if n.get("Alive"))
        settings = settings.model_copy(update={"shards": recorded or settings.shards_per_node * max(alive, 1)})
    wanted = record(name, settings.deployment_settings())
    config = settings.host_config()
    config["deployment"] = wanted
    lifetime = "detached" if settings.address else None
    config["lifetime"] = lifetime
    if supervisor is not None:  # attach: the deployment is there already
        check(info, wanted, "on the cluster")
    shard_names = [actor_name(name, shard_key(i)) for i in range(settings.shards)] \
        if settings.placement == "sharded" else []
    handles = [RemoteHost.options(name=n, namespace=_NAMESPACE, get_if_exists=True, lifetime=lifetime,
                                  **placement).remote(shard_key(i), config)
               for (i, n), placement in zip(enumerate(shard_names), _spread(len(shard_names)), strict=True)]
    ray.get([s.ping.remote() for s in handles], timeout=120)
    shards = list(shard_names)  # hosts are called by name: a moved shard is found again
    if supervisor is None:
        supervisor = RemoteSupervisor.options(name=actor_name(name, "supervisor"), namespace=_NAMESPACE,
                                              get_if_exists=True, lifetime=lifetime).remote(
            name, settings.call_timeout_seconds, settings.placement, shard_names, config,
            settings.spawn_timeout_seconds)
        try:  # another front may have won the race to create it: the record decides either way
            check(ray.get(supervisor.deployment_info.remote(), timeout=120), wanted, "on the cluster")
        except Exception:  # refused (or its root refused it on recovery): leave no half deployment
            for actor in (*handles, supervisor):
                _kill_quietly(actor)
            raise
    ledger = RemoteLedger.options(name=actor_name(name, "idempotency"), namespace=_NAMESPACE, get_if_exists=True,
                                  lifetime=lifetime).remote(settings.ledger_config())
    ray.get(ledger.ping.remote(), timeout=120)
    # the events clock resumes at the latest event the hosts have journaled (never goes back)
    hosts = [_handle(h) for _, h in ray.get(supervisor.host_list.remote(), timeout=120)]
    clocks = [p["clock"] for p in ray.get([h.ping.remote() for h in hosts if h is not None], timeout=120)]
    clock = DeploymentClock(settings.clock, start=max(clocks, default=0.0))
    transport = RayTransport(settings.call_timeout_seconds, name, settings.spawn_timeout_seconds, settings.host_link)
    for n, h in zip(shard_names, handles):
        transport.pin(n, h)  # embedded: the shards live while this front holds their handles
    service = RiskService(transport, supervisor, shards, settings.placement,
                          clock, settings.tick_seconds, ledger, settings.max_breaches_listed,
                          settings.check_calls_in_flight,
                          registration_timeout=settings.call_timeout_seconds + settings.spawn_timeout_seconds
                          if settings.placement == "dedicated" else None)
    return RayRuntime(service=service, supervisor=supervisor, shards=shards, started_ray=started,
                      owns_actors=not settings.address, ledger=ledger, settings=settings)


def _spread(count: int) -> list[dict[str, Any]]:
    """Ray options that put ``count`` new shards round-robin on the live nodes (sorted by id).
    Ray's ``SPREAD`` is best effort: measured under load on a two-node test cluster, it put all
    8 shards on one node. Each shard gets a soft affinity to its node (a shard whose node is gone
    restarts anywhere), with 1 MiB of the ``memory`` resource, since Ray ignores a soft affinity
    for a request of no resources (see ``_RaySupervisor._move``). One node: ``SPREAD``, which
    is then the same."""
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
    if len(nodes) <= 1:
        return [{"scheduling_strategy": "SPREAD"}] * count
    return [{"scheduling_strategy": NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=True),
             "memory": _MOVED_MEMORY} for i in range(count)]


def _existing(name: str) -> Any | None:
    """The live named actor ``name`` of the riskactors namespace, or ``None``."""
    try:
        return ray.get_actor(name, namespace=_NAMESPACE)
    except ValueError:
        return None


@contextlib.contextmanager
def _cluster(settings: Settings):
    """Connected to the cluster at ``settings.address`` for a command (``rebalance``, ``down``):
    yields the deployment's supervisor (``None`` if there is no such deployment); disconnects
    only if it connected."""
    started = False
    if not ray.is_initialized():
        ray.init(address=settings.address or "auto", namespace=_NAMESPACE, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        started = True
    try:
        yield _existing(actor_name(settings.deployment, "supervisor"))
    finally:
        if started:
            ray.shutdown()


def rebalance(settings: Settings, drain: str | None = None) -> dict[str, Any]:
    """``riskactors rebalance``: spread the deployment's shards over the live nodes of the
    cluster at ``settings.address`` (all but ``drain``), one at a time (see
    ``_RaySupervisor.rebalance``). Returns the moves and the layout.

    Raises
    ------
    ValueError
        No such deployment, no such node to drain, or no node left.
    """
    with _cluster(settings) as supervisor:
        if supervisor is None:
            raise ValueError(f"no deployment {settings.deployment!r} on this cluster")
        try:
            return ray.get(supervisor.rebalance.remote(drain), timeout=3600)
        except RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            raise cause from None


def down(settings: Settings) -> int:
    """Remove the deployment ``settings.deployment`` from the cluster at ``settings.address``:
    flush and kill its actors (the state on the storage root stays). Returns how many actors
    were killed (0: no such deployment)."""
    with _cluster(settings) as supervisor:
        if supervisor is None:
            return 0
        return stop_actors(supervisor, [], _existing(actor_name(settings.deployment, "idempotency")))
