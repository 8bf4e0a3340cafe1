"""The supervisor: account → user/challenge registry, placement authority, scope kill
switches and consolidated risk. A plain class with async methods; ``ray_runtime`` makes it
an async Ray actor, tests use it directly with :class:`~riskactors.actors.transport.LocalTransport`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from ..domain import DuplicateAccount, KillScope, UnknownAccount
from ..domain.aggregate import consolidate
from .host import error_envelope
from .placement import dedicated_key, shard_key, stable_shard
from .transport import unwrap

__all__ = ["Supervisor"]


class Supervisor:
    """Registry and consolidation.

    Parameters
    ----------
    transport : Transport
        How hosts are called (Ray or local).
    placement : {"sharded", "dedicated"}
    shards : list
        Shard targets (sharded placement); empty for dedicated.
    host_config : dict
        Passed to dedicated hosts when they are spawned.
    """

    def __init__(self, transport: Any, placement: str, shards: list[Any], host_config: dict[str, Any]):
        self.transport = transport
        self.placement = placement
        self.host_config = host_config
        self.hosts: dict[str, Any] = {shard_key(i): s for i, s in enumerate(shards)}
        self.n_shards = len(shards)
        self.accounts: dict[str, dict[str, str]] = {}
        self.by_user: dict[str, set[str]] = defaultdict(set)
        self.by_challenge: dict[str, set[str]] = defaultdict(set)
        self.switches: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._pending: set[str] = set()

    # ------------------------------------------------------------------ registry
    def _host_key(self, account_id: str) -> str:
        if self.placement == "dedicated":
            return dedicated_key(account_id)
        return shard_key(stable_shard(account_id, self.n_shards))

    def _switches_for(self, user_id: str, challenge_id: str) -> list[dict[str, Any]]:
        wanted = {("firm", None), ("user", user_id), ("challenge", challenge_id)}
        return [sw for key, sw in self.switches.items() if key in wanted]

    async def register(self, spec: dict[str, Any], marks: list[dict[str, Any]], now: float) -> dict[str, Any]:
        """Place and create an account. Returns ``{"view", "host_key", "host"}`` or an error envelope."""
        account_id = spec["account_id"]
        if account_id in self.accounts or account_id in self._pending:
            return error_envelope(DuplicateAccount(account_id, "account already registered"))
        self._pending.add(account_id)  # no await above: registration of one id is atomic
        try:
            key = self._host_key(account_id)
            host = self.hosts.get(key)
            spawned = False
            if host is None:
                host = await self.transport.spawn_host(key, self.host_config)
                spawned = True
            switches = self._switches_for(spec["user_id"], spec["challenge_id"])
            view = await self.transport.call(host, "register", spec, switches, marks, now)
            if isinstance(view, dict) and "error" in view:
                if spawned:
                    await self.transport.kill(host)
                return view
            self.hosts[key] = host
            self.accounts[account_id] = {"user_id": spec["user_id"], "challenge_id": spec["challenge_id"],
                                         "host_key": key}
            self.by_user[spec["user_id"]].add(account_id)
            self.by_challenge[spec["challenge_id"]].add(account_id)
            return {"view": view, "host_key": key, "host": host}
        finally:
            self._pending.discard(account_id)

    def locate(self, account_id: str) -> dict[str, Any] | None:
        """``{"host_key", "host"}`` of an account, or ``None`` if unknown."""
        meta = self.accounts.get(account_id)
        if meta is None:
            return None
        return {"host_key": meta["host_key"], "host": self.hosts[meta["host_key"]]}

    def host_list(self) -> list[tuple[str, Any]]:
        """Every host (key, target)."""
        return list(self.hosts.items())

    def stats(self) -> dict[str, Any]:
        """Counts for readiness and the firm page."""
        return {"accounts": len(self.accounts), "hosts": len(self.hosts), "placement": self.placement,
                "switches": [sw for sw in self.switches.values()]}

    def _accounts_in(self, scope: str, scope_id: str | None) -> list[str]:
        if scope == "firm":
            return list(self.accounts)
        if scope == "user":
            return sorted(self.by_user.get(scope_id, ()))
        if scope == "challenge":
            return sorted(self.by_challenge.get(scope_id, ()))
        if scope == "account":
            if scope_id not in self.accounts:
                raise UnknownAccount(str(scope_id), "account not registered")
            return [scope_id]
        raise ValueError(f"unknown scope {scope!r}")

    def _hosts_for(self, scope: str, account_ids: list[str]) -> dict[str, list[str] | None]:
        """Host key → the scope's account ids on it; ``None`` (every account there) for the firm."""
        if scope == "firm":
            return {k: None for k in self.hosts}
        groups: dict[str, list[str]] = defaultdict(list)
        for a in account_ids:
            groups[self.accounts[a]["host_key"]].append(a)
        return dict(groups)

    async def _fan_out(self, method: str, groups: dict[str, list[str] | None], *before: Any,
                       after: tuple = ()) -> list[Any]:
        """Call ``method(*before, account_ids, *after)`` on every host of ``groups`` at once."""
        calls = [self.transport.call(self.hosts[k], method, *before, ids, *after) for k, ids in groups.items()]
        return await asyncio.gather(*calls)

    # ------------------------------------------------------------------ kill switches
    async def set_kill_switch(self, scope: str, scope_id: str | None, mode: str, reason: str, by: str,
                              now: float) -> dict[str, Any]:
        """Activate a switch for a scope; reaches every affected account. Returns the switch and
        ``accounts_affected``."""
        KillScope(scope)
        try:
            ids = self._accounts_in(scope, scope_id)
        except UnknownAccount as exc:
            return error_envelope(exc)
        switch = {"active": True, "scope": scope, "id": scope_id, "mode": mode, "reason": reason, "by": by,
                  "at": now, "breach": False}
        if scope != "account":
            self.switches[(scope, scope_id)] = switch
        counts = await self._fan_out("set_kill_switch", self._hosts_for(scope, ids), switch, after=(now,))
        return {"switch": switch, "accounts_affected": sum(counts)}

    async def release_kill_switch(self, scope: str, scope_id: str | None, reason: str, by: str,
                                  now: float) -> dict[str, Any]:
        """Release a scope's switch on every affected account."""
        KillScope(scope)
        try:
            ids = self._accounts_in(scope, scope_id)
        except UnknownAccount as exc:
            return error_envelope(exc)
        was_set = self.switches.pop((scope, scope_id), None) is not None
        released = sum(await self._fan_out("release_kill_switch", self._hosts_for(scope, ids), scope, scope_id,
                                           reason, by, after=(now,)))
        return {"scope": scope, "id": scope_id, "released": bool(was_set or released),
                "accounts_released": released, "reason": reason, "by": by, "at": now}

    # ------------------------------------------------------------------ consolidation
    async def consolidated(self, scope: str, scope_id: str | None, top_n: int, now: float) -> dict[str, Any]:
        """Consolidated risk of a user, a challenge or the firm (see ``domain.aggregate``)."""
        ids = self._accounts_in(scope, scope_id)
        parts = await self._fan_out("summaries", self._hosts_for(scope, ids), after=(now,))
        rows = [row for part in parts for row in unwrap(part)]
        result = consolidate(rows, scope, scope_id, top_n)
        result["kill_switches"] = [sw for (s, i), sw in self.switches.items()
                                   if s == "firm" or (s == scope and i == scope_id)]
        return result
