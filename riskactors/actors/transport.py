"""How the supervisor and the front call hosts. Every Ray call of the server goes through
``riskactors.actors.ray_runtime.RayTransport``; :class:`LocalTransport` runs the same code on
plain in-process objects, so the rest is testable without a cluster.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from ..domain import DomainError, LimitsError, SizingError
from ..domain.errors import ERRORS_BY_NAME
from ..exceptions import ShardUnavailable
from ..persistence import Fenced
from .host import AccountHost

__all__ = ["LocalTransport", "Transport", "as_error", "unwrap"]


class Transport(Protocol):
    """Calls a method of a host/supervisor target and awaits the reply (within ``timeout``
    seconds, ``None``: the transport's own)."""

    async def call(self, target: Any, method: str, *args: Any, timeout: float | None = None) -> Any: ...

    async def spawn_host(self, host_id: str, config: dict[str, Any]) -> Any: ...

    async def kill(self, target: Any) -> None: ...


class LocalTransport:
    """In-process transport: targets are plain objects, calls are direct."""

    async def call(self, target: Any, method: str, *args: Any, timeout: float | None = None) -> Any:
        try:
            result = getattr(target, method)(*args)
            if inspect.isawaitable(result):
                result = await result
        except Fenced as exc:  # a newer instance holds the journal: fail closed, as over Ray
            raise ShardUnavailable(f"{method}: {exc}") from None
        return result

    async def spawn_host(self, host_id: str, config: dict[str, Any]) -> Any:
        return AccountHost(host_id, config)

    async def kill(self, target: Any) -> None:
        return None




def unwrap(result: Any) -> Any:
    """Raise the core error carried by an error envelope, else return ``result``."""
    error = as_error(result)
    if error is not None:
        raise error
    return result


def as_error(result: Any) -> Exception | None:
    """The exception an error envelope carries (a core error, or ``ShardUnavailable``), else
    ``None``."""
    if not (isinstance(result, dict) and "error" in result and len(result) == 1):
        return None
    err = result["error"]
    if err["type"] == "LimitsError":
        return LimitsError(err["field"], err["message"])
    if err["type"] == "SizingError":
        return SizingError(err["field"], err["message"])
    if err["type"] == "ShardUnavailable":
        return ShardUnavailable(err["message"])
    return ERRORS_BY_NAME.get(err["type"], DomainError)(err["subject"], err["message"], err.get("field"))
