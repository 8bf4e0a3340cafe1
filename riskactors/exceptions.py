"""Errors of the server around the core (infrastructure), beside the core's own errors.

Hierarchy::

    RiskActorsError
    └── ShardUnavailable     a host (shard or dedicated actor) or the supervisor cannot be
                             reached or timed out: checks fail closed (HTTP 503)

Core errors (``riskactors.domain.errors``): ``DomainError`` and subclasses; limit/plan
errors: ``riskactors.domain.limits.LimitsError``.
"""

from __future__ import annotations

__all__ = ["RiskActorsError", "ShardUnavailable"]


class RiskActorsError(Exception):
    """Base of the server's infrastructure errors."""


class ShardUnavailable(RiskActorsError):
    """A host or the supervisor could not answer (dead actor, timeout)."""
