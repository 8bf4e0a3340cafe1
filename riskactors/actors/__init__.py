"""Actors: thin hosts, the supervisor, placement and the front's facade.

Importing this package does not import Ray; ``riskactors.actors.ray_runtime`` does.
"""

from .host import AccountHost
from .placement import stable_shard
from .service import RiskService
from .supervisor import Supervisor
from .transport import LocalTransport, unwrap

__all__ = ["AccountHost", "LocalTransport", "RiskService", "Supervisor", "stable_shard", "unwrap"]
