"""What a deployment is: its name, the version that created it and its deployment-level settings.

A deployment is its actors (``<name>/supervisor``, ``<name>/shard-<i>``, ``<name>/<host>`` for
dedicated hosts, in the ``riskactors`` Ray namespace). The first front creates them and records
:func:`record` in the supervisor (journaled on the storage root); every later front, and the
supervisor itself when it recovers from the root, compares its own with :func:`check`, which
refuses another version or another value of a deployment-level setting and names it.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..exceptions import DeploymentMismatch

__all__ = ["actor_name", "check", "record"]


def actor_name(deployment: str, role: str) -> str:
    """The Ray actor name of ``role`` (``supervisor``, ``shard-0``, a dedicated host key) in
    ``deployment``."""
    return f"{deployment}/{role}"


def record(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The record of a deployment created now by this version with ``settings``."""
    return {"name": name, "version": __version__, "settings": dict(settings)}


def check(recorded: dict[str, Any], wanted: dict[str, Any], where: str) -> None:
    """Refuse ``wanted`` (a :func:`record`) unless it matches ``recorded``.

    Raises
    ------
    DeploymentMismatch
        Another riskactors version, or another value of a deployment-level setting (the message
        names it, with both values, and ``where`` the record was found).
    """
    if recorded.get("version") != wanted["version"]:
        raise DeploymentMismatch(
            "version", f"deployment {recorded.get('name')!r} ({where}) was created by riskactors "
                       f"{recorded.get('version')}; this is {wanted['version']}. Upgrading the actors is "
                       f"`riskactors down` then `riskactors serve` (see the README)")
    theirs, ours = recorded.get("settings", {}), wanted["settings"]
    for key in sorted(set(theirs) | set(ours)):
        if theirs.get(key) != ours.get(key):
            raise DeploymentMismatch(
                key, f"deployment {recorded.get('name')!r} ({where}) has {key}={theirs.get(key)!r}; this front "
                     f"has {key}={ours.get(key)!r}. Deployment-level settings are fixed when the deployment is "
                     f"created: start the front with the same value, or `riskactors down` the deployment first")
