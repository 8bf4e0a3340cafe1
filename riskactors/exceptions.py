"""Errors of the server around the core (infrastructure), beside the core's own errors.

Hierarchy::

    RiskActorsError
    ├── ShardUnavailable     a host (shard or dedicated actor) or the supervisor cannot be
    │                        reached or timed out: checks fail closed (HTTP 503)
    └── DeploymentMismatch   a front (or a recovering supervisor) with another version or another
                             deployment-level setting than the deployment it meets: refused

Core errors (``riskactors.domain.errors``): ``DomainError`` and subclasses; limit/plan
errors: ``riskactors.domain.limits.LimitsError``.
"""

from __future__ import annotations

__all__ = ["DeploymentMismatch", "RiskActorsError", "ShardUnavailable"]


class RiskActorsError(Exception):
    """Base of the server's infrastructure errors."""


class ShardUnavailable(RiskActorsError):
    """A host or the supervisor could not answer (dead actor, timeout)."""


class DeploymentMismatch(RiskActorsError):
    """A deployment-level setting (or the version) differs from the deployment's record.
    ``setting`` names it."""

    def __init__(self, setting: str, message: str):
        super().__init__(message)
        self.setting = setting
