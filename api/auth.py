"""API keys with roles: who may call what.

A key is presented as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (the bearer
header wins when both are sent). The server stores only the SHA-256 hex digest of each key
(:class:`riskactors.settings.ApiKey`, from ``RISKACTORS_API_KEYS`` and/or the JSON list in
``RISKACTORS_API_KEYS_FILE``; ``riskactors hash-key`` makes one) and compares digests with
:func:`hmac.compare_digest` against every configured key.

Roles
-----
``router``
    The order router and price feed: checks, cancels, fills, marks, position sizing.
``ops``
    Operations staff: read every view, activate kill switches, position sizing.
``admin``
    Everything, notably accounts, plans, limits, status, calendar, recommendations,
    analytics configuration and releasing kill switches.

Each route declares the roles it accepts with ``dependencies=[require("ops")]`` (``admin`` is
always accepted); :func:`route_roles` reads them back, the OpenAPI document shows them
(``x-roles`` and a line of each description) and the tests check the matrix route by route.
``/health``, ``/ready``, ``/metrics`` and the OpenAPI pages need no key.

Answers: no key or an unknown key → 401 ``UNAUTHENTICATED`` with ``WWW-Authenticate: Bearer``;
a known key whose role is not accepted → 403 ``FORBIDDEN`` naming the roles required and the
role held. With no key configured at all, auth is off: every request acts as
``Principal("anonymous", "admin", authenticated=False)`` and the server may listen on a
loopback address only (:func:`check_bind`).

Errors raised at start-up::

    ValueError
    ├── ApiKeysError      the keys file is missing or malformed, or two keys share a digest
    └── InsecureBindError no key configured and a non-loopback listen address
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import TypeAdapter, ValidationError

from riskactors.actors.service import ACTOR
from riskactors.settings import ApiKey, Role, Settings

__all__ = [
    "ANONYMOUS",
    "ROLES",
    "ApiKeysError",
    "InsecureBindError",
    "KeyStore",
    "Principal",
    "RouteRoles",
    "authenticate",
    "check_bind",
    "document_roles",
    "hash_key",
    "is_loopback",
    "load_keys",
    "require",
    "role_matrix",
    "route_roles",
]

log = logging.getLogger("riskactors.auth")

#: Every role, least to most privileged.
ROLES: tuple[str, ...] = get_args(Role)


class ApiKeysError(ValueError):
    """The configured keys cannot be used (malformed keys file, duplicate digest)."""


class InsecureBindError(ValueError):
    """No API key is configured and the listen address is not a loopback address."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's ``name`` and ``role``; ``authenticated`` is False when auth
    is off (no key configured)."""

    name: str
    role: Role
    authenticated: bool = True


#: The principal of every request when no key is configured.
ANONYMOUS = Principal("anonymous", "admin", authenticated=False)


def hash_key(key: str) -> str:
    """SHA-256 hex digest (lower case) of a key, as stored in ``ApiKey.sha256``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """The configured keys; :meth:`lookup` finds the key matching a presented secret."""

    def __init__(self, keys: list[ApiKey] | tuple[ApiKey, ...] = ()):
        self.keys: tuple[ApiKey, ...] = tuple(keys)
        self._digests = [(bytes.fromhex(k.sha256), k) for k in self.keys]

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured (auth on)."""
        return bool(self.keys)

    def lookup(self, presented: str) -> ApiKey | None:
        """The key whose digest matches ``presented``; every key is compared (constant time
        per key), so the answer time does not depend on which key matched."""
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        found = None
        for stored, key in self._digests:
            if hmac.compare_digest(stored, digest):
                found = key
        return found


_KEY_LIST = TypeAdapter(list[ApiKey])


def load_keys(settings: Settings) -> KeyStore:
    """``settings.api_keys`` plus the keys of ``settings.api_keys_file``.

    Raises
    ------
    ApiKeysError
        The file cannot be read, is not JSON, is not a list of ``{"name", "role", "sha256"}``
        (the message names the file, the entry and the field), or two keys share a digest.
    """
    keys = list(settings.api_keys)
    if settings.api_keys_file:
        keys += _read_key_file(Path(settings.api_keys_file))
    seen: dict[str, str] = {}
    for k in keys:
        if k.sha256 in seen:
            raise ApiKeysError(f"API keys {seen[k.sha256]!r} and {k.name!r} have the same sha256: "
                               "each key must be distinct")
        seen[k.sha256] = k.name
    return KeyStore(keys)


def _read_key_file(path: Path) -> list[ApiKey]:
    where = f"API keys file {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ApiKeysError(f"{where} cannot be read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiKeysError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, list):
        raise ApiKeysError(f"{where} must hold a JSON list of {{\"name\", \"role\", \"sha256\"}} objects, "
                           f"not a {type(data).__name__}")
    try:
        return _KEY_LIST.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e, data) for e in exc.errors(include_url=False)[:5])
        raise ApiKeysError(f"{where} has invalid entries: {problems}") from exc


def _describe(error: dict[str, Any], data: list) -> str:
    loc = list(error["loc"])
    index = loc.pop(0) if loc and isinstance(loc[0], int) else None
    entry = f"entry {index}" if index is not None else "entry"
    if index is not None and isinstance(data[index], dict) and isinstance(data[index].get("name"), str):
        entry += f" ({data[index]['name']!r})"
    field = ".".join(str(p) for p in loc)
    msg = error["msg"]
    if field == "sha256" and error["type"] == "string_pattern_mismatch":
        msg = "must be 64 lower-case hex digits (riskactors hash-key prints it)"
    elif field == "role" and error["type"] == "literal_error":
        msg = f"must be one of {', '.join(ROLES)}"
    return f"{entry}: {field}: {msg}" if field else f"{entry}: {msg}"


# ---------------------------------------------------------------------------- bind policy
def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (also ``[::1]`` and IPv4-mapped
    loopback); False for everything else, including ``0.0.0.0``, ``::`` and other names."""
    h = host.strip().lower().rstrip(".")
    if h == "localhost":
        return True
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    try:
        ip = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def check_bind(settings: Settings, host: str | None = None, *, warn: bool = True) -> KeyStore:
    """Load the keys and check the listen address (``host`` or ``settings.host``) against them.

    With no key configured auth is off: a warning is logged (unless ``warn`` is False), and a
    non-loopback address is refused.

    Raises
    ------
    ApiKeysError
        See :func:`load_keys`.
    InsecureBindError
        No key configured and ``host`` is not a loopback address.
    """
    host = settings.host if host is None else host
    store = load_keys(settings)
    if store.enabled:
        return store
    if not is_loopback(host):
        raise InsecureBindError(
            f"refusing to listen on {host!r} without API keys: with no key configured auth is off, so only a "
            "loopback address (127.0.0.1, ::1, localhost) is allowed. Configure keys (RISKACTORS_API_KEYS or "
            "RISKACTORS_API_KEYS_FILE; `riskactors hash-key` makes one) or listen on 127.0.0.1.")
    if warn:
        log.warning("auth is off (no API keys configured); listening on loopback only (%s)", host)
    return store


# --------------------------------------------------------------------------- dependencies
#: The security schemes the OpenAPI document declares (see :func:`document_roles`). The key is
#: read from the headers by :func:`principal_of` itself rather than through FastAPI's security
#: dependencies: one dependency per route keeps the check route's front cost down.
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "`Authorization: Bearer <key>`; see the roles in each operation's description"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "`X-API-Key: <key>` (same keys as the bearer scheme)"},
}

_UNAUTHENTICATED = {"WWW-Authenticate": "Bearer"}


def _store(request: Request) -> KeyStore:
    store = getattr(request.app.state, "keys", None)
    return store if store is not None else KeyStore()


def _presented_key(request: Request) -> str | None:
    """The key of ``Authorization: Bearer <key>`` (preferred) or ``X-API-Key: <key>``."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def principal_of(request: Request) -> Principal:
    """The caller's :class:`Principal` (401 ``UNAUTHENTICATED`` without a known key when keys
    are configured; :data:`ANONYMOUS` when none is)."""
    store = _store(request)
    if not store.enabled:
        return ANONYMOUS
    presented = _presented_key(request)
    if not presented:
        raise HTTPException(status_code=401, headers=_UNAUTHENTICATED, detail={
            "code": "UNAUTHENTICATED",
            "message": "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"})
    key = store.lookup(presented)
    if key is None:
        raise HTTPException(status_code=401, headers=_UNAUTHENTICATED, detail={
            "code": "UNAUTHENTICATED", "message": "unknown API key"})
    return Principal(key.name, key.role)


async def authenticate(request: Request) -> Principal:
    """Dependency form of :func:`principal_of` (``PrincipalDep``)."""
    return principal_of(request)


def require(*roles: str) -> Any:
    """A dependency (``Depends``) accepting callers whose role is one of ``roles`` or ``admin``.

    Use as ``dependencies=[require("ops")]`` on a route or a router. A caller with another
    role gets 403 ``FORBIDDEN``; without a known key, 401 (see :func:`authenticate`).
    """
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"roles must be among {ROLES}, got {roles}")
    allowed = frozenset(roles) | {"admin"}
    names = " or ".join(r for r in ROLES if r in allowed)

    async def check_role(request: Request) -> Principal:
        principal = principal_of(request)
        if principal.role not in allowed:
            raise HTTPException(status_code=403, detail={
                "code": "FORBIDDEN",
                "message": f"this endpoint requires role {names}; API key {principal.name!r} has role "
                           f"{principal.role!r}"})
        ACTOR.set((principal.name, principal.role if principal.authenticated else None))  # for the audit log
        return principal

    check_role.roles = allowed  # type: ignore[attr-defined]  # read back by route_roles
    return Depends(check_role)


def route_roles(route: Any) -> frozenset[str] | None:
    """The roles a route accepts (``None``: no key needed); ``route`` is anything with a
    FastAPI ``dependant`` (an ``APIRoute`` or a route context of an included router)."""
    found: frozenset[str] | None = None
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant is not None else []
    while stack:
        dep = stack.pop()
        roles = getattr(dep.call, "roles", None)
        if roles is not None:
            found = roles if found is None else found & roles
        stack.extend(dep.dependencies)
    return found


@dataclass(frozen=True, slots=True)
class RouteRoles:
    """One endpoint of the role matrix: ``roles`` is ``None`` for an open endpoint."""

    method: str
    path: str
    roles: frozenset[str] | None
    in_schema: bool


def role_matrix(app: FastAPI) -> list[RouteRoles]:
    """Every (method, path) the app serves with the roles it accepts, in routing order
    (``HEAD`` is left out: it follows ``GET``)."""
    try:  # FastAPI >= 0.16x keeps included routers unflattened in app.routes
        from fastapi.routing import iter_route_contexts
        contexts: Any = iter_route_contexts(app.routes)
    except ImportError:  # pragma: no cover - older FastAPI: app.routes is flat
        contexts = app.routes
    out = []
    for route in contexts:
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if path is None:
            continue
        roles = route_roles(route)
        in_schema = bool(getattr(route, "include_in_schema", False))
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                out.append(RouteRoles(method, path, roles, in_schema))
    return out


_AUTH_RESPONSES = {
    "401": {"description": "No API key, or an unknown one (code UNAUTHENTICATED)"},
    "403": {"description": "The API key's role may not call this endpoint (code FORBIDDEN)"},
}


def _append(description: str | None, line: str) -> str:
    return f"{description}\n\n{line}" if description else line


def document_roles(app: FastAPI) -> None:
    """Show each route's roles in the OpenAPI document: ``x-roles``, a line of the
    description, and the 401/403 answers."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for entry in role_matrix(app):
            op = schema.get("paths", {}).get(entry.path, {}).get(entry.method.lower()) if entry.in_schema else None
            if op is None:
                continue
            if entry.roles is None:
                op["x-roles"] = []
                op["description"] = _append(op.get("description"), "**Roles:** none (no API key needed)")
                continue
            ordered = [r for r in ROLES if r in entry.roles]
            op["x-roles"] = ordered
            op["description"] = _append(op.get("description"), "**Roles:** " + ", ".join(f"`{r}`" for r in ordered))
            op["security"] = [{name: []} for name in SECURITY_SCHEMES]
            for status, answer in _AUTH_RESPONSES.items():
                op.setdefault("responses", {}).setdefault(status, answer)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
