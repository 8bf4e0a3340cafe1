"""API keys with roles, endpoint by endpoint (issue 4, "Roles").

The app is built with three keys (``router``, ``ops``, ``admin``) over the session's sharded
deployment. ``MATRIX`` is the role matrix of the README: every (method, path) the app serves
with the roles allowed on it (``None``: open, no key needed). For each endpoint each role is
either let through (any answer but 401/403: a dummy id may well be a 404 or a 422) or refused
with 403 ``FORBIDDEN`` naming the role required and the role held; no key and an unknown key
are 401 ``UNAUTHENTICATED``. Request bodies are ``{}`` and ids unknown, so allowed calls change
nothing (``POST /admin/update-config`` with ``{}`` updates no threshold).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from api import create_app
from api.auth import ApiKeysError, hash_key, role_matrix
from api.deps import PrincipalDep
from riskactors.settings import ApiKey

pytestmark = pytest.mark.anyio

KEYS = {"router": "router-secret-0123456789abcdef", "ops": "ops-secret-0123456789abcdef",
        "admin": "admin-secret-0123456789abcdef"}
API_KEYS = [ApiKey(name=f"{role}-desk", role=role, sha256=hash_key(key)) for role, key in KEYS.items()]

ROUTER = frozenset({"router", "admin"})
OPS = frozenset({"ops", "admin"})
ADMIN = frozenset({"admin"})
SIZING = frozenset({"router", "ops", "admin"})
OPEN = None

#: (method, path, roles allowed): the whole app, in the order of the README table.
MATRIX = [
    # order router
    ("POST", "/v1/orders/check", ROUTER),
    ("POST", "/v1/orders/{order_id}/cancel", ROUTER),
    ("POST", "/v1/fills", ROUTER),
    ("POST", "/v1/fills/batch", ROUTER),
    ("POST", "/v1/marks", ROUTER),
    ("POST", "/v1/accounts/{account_id}/position-size", SIZING),
    # accounts
    ("POST", "/v1/accounts", ADMIN),
    ("POST", "/v1/accounts/batch", ADMIN),
    ("GET", "/v1/accounts", OPS),
    ("GET", "/v1/accounts/{account_id}", OPS),
    ("GET", "/v1/accounts/{account_id}/events", OPS),
    ("PATCH", "/v1/accounts/{account_id}/limits", ADMIN),
    ("PUT", "/v1/accounts/{account_id}/status", ADMIN),
    ("PUT", "/v1/accounts/{account_id}/plan", ADMIN),
    # kill switches and consolidated risk
    ("POST", "/v1/kill-switch", OPS),
    ("DELETE", "/v1/kill-switch/firm", ADMIN),
    ("DELETE", "/v1/kill-switch/{scope}/{scope_id}", ADMIN),
    ("GET", "/v1/risk/users/{user_id}", OPS),
    ("GET", "/v1/risk/challenges/{challenge_id}", OPS),
    ("GET", "/v1/risk/firm", OPS),
    # plans
    ("GET", "/v1/plans", OPS),
    ("POST", "/v1/plans", ADMIN),
    ("GET", "/v1/plans/{plan_id}", OPS),
    ("POST", "/v1/plans/{plan_id}/activate", ADMIN),
    # prop-firm tools
    ("GET", "/v1/calendar", OPS),
    ("POST", "/v1/calendar", ADMIN),
    ("GET", "/v1/recommendations", OPS),
    ("POST", "/v1/recommendations/{recommendation_id}/apply", ADMIN),
    ("POST", "/v1/recommendations/{recommendation_id}/dismiss", ADMIN),
    # analytics, v1 and the earlier service's routes
    ("GET", "/v1/accounts/{account_id}/analytics", OPS),
    ("GET", "/v1/analytics/users/{user_id}", OPS),
    ("GET", "/v1/analytics/challenges/{challenge_id}", OPS),
    ("GET", "/v1/analytics/firm", OPS),
    ("GET", "/v1/analytics/config", OPS),
    ("GET", "/risk-report/{account_login}", OPS),
    ("GET", "/risk/user/{user_id}", OPS),
    ("GET", "/risk/challenge/{challenge_id}", OPS),
    ("POST", "/admin/update-config", ADMIN),
    # audit log
    ("GET", "/v1/audit", OPS),
    ("GET", "/v1/audit/export", OPS),
    ("GET", "/v1/cluster", OPS),
    # probes and the API's own documentation
    ("GET", "/health", OPEN),
    ("GET", "/ready", OPEN),
    ("GET", "/metrics", OPEN),
    ("GET", "/openapi.json", OPEN),
    ("GET", "/docs", OPEN),
    ("GET", "/docs/oauth2-redirect", OPEN),
    ("GET", "/redoc", OPEN),
]
_IDS = [f"{m} {p}" for m, p, _ in MATRIX]
AUTH_ERRORS = (401, 403)


def _settings(base, **over):
    return base.model_copy(update=over)


@pytest.fixture(scope="module")
def keyed_app(sharded_deployment):
    """The app with the three keys, over the session's sharded deployment."""
    settings, runtime = sharded_deployment
    return create_app(_settings(settings, api_keys=API_KEYS), runtime.service)


@pytest.fixture(scope="module")
def open_app(sharded_deployment):
    """The app with no key configured (auth off)."""
    settings, runtime = sharded_deployment
    return create_app(_settings(settings, api_keys=[], api_keys_file=None), runtime.service)


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://riskactors.test", timeout=60)


def _concrete(path: str, uid: str) -> str:
    """``path`` with every ``{param}`` replaced by an id no test uses (``{scope}``: account)."""
    return re.sub(r"\{(\w+)\}", lambda m: "account" if m.group(1) == "scope" else f"{uid}-no-{m.group(1)}", path)


async def _call(client, method: str, path: str, headers: dict | None = None) -> httpx.Response:
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return await client.request(method, path, headers=headers or {}, **body)


def _bearer(role: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[role]}"}


# ------------------------------------------------------------------------------- the matrix
def test_the_matrix_covers_every_route_of_the_app_with_the_roles_it_declares(keyed_app):
    """A route added without a row here (or without a role) fails this test."""
    served = {(e.method, e.path): e.roles for e in role_matrix(keyed_app)}
    table = {(m, p): roles for m, p, roles in MATRIX}
    assert len(table) == len(MATRIX), "a row appears twice"
    assert set(served) - set(table) == set(), "routes without a row in MATRIX"
    assert set(table) - set(served) == set(), "rows of MATRIX the app does not serve"
    wrong = {k: (sorted(served[k] or []), sorted(table[k] or [])) for k in table if served[k] != table[k]}
    assert not wrong, f"declared roles differ from the matrix (declared, table): {wrong}"
    probes = {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    assert {p for (_, p), roles in served.items() if roles is None} == probes, "only probes and docs are open"


@pytest.mark.parametrize(("method", "path", "roles"), MATRIX, ids=_IDS)
async def test_each_endpoint_lets_its_roles_through_and_refuses_the_others(keyed_app, uid, method, path, roles):
    url = _concrete(path, uid)
    async with _client(keyed_app) as c:
        for role in KEYS:
            r = await _call(c, method, url, _bearer(role))
            assert r.status_code < 500, (role, r.status_code, r.text)
            if roles is None or role in roles:
                assert r.status_code not in AUTH_ERRORS, (role, r.status_code, r.text)
            else:
                assert r.status_code == 403, (role, r.status_code, r.text)
                detail = r.json()["detail"]
                assert detail["code"] == "FORBIDDEN"
                needed = " or ".join(x for x in ("router", "ops", "admin") if x in roles)
                assert f"requires role {needed}" in detail["message"]
                assert f"'{role}-desk' has role '{role}'" in detail["message"]
        for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"X-API-Key": "not-a-key"}):
            r = await _call(c, method, url, headers)
            if roles is None:
                assert r.status_code not in AUTH_ERRORS, (headers, r.status_code, r.text)
            else:
                assert r.status_code == 401, (headers, r.status_code, r.text)
                assert r.json()["detail"]["code"] == "UNAUTHENTICATED"
                assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "roles"), MATRIX, ids=_IDS)
async def test_with_no_key_configured_every_endpoint_is_reachable_without_a_key(open_app, uid, method, path, roles):
    async with _client(open_app) as c:
        r = await _call(c, method, _concrete(path, uid))
        assert r.status_code not in AUTH_ERRORS and r.status_code < 500, (r.status_code, r.text)
        # a key sent anyway, even an unknown one, changes nothing
        r = await _call(c, method, _concrete(path, uid), {"Authorization": "Bearer whatever"})
        assert r.status_code not in AUTH_ERRORS and r.status_code < 500, (r.status_code, r.text)


# ------------------------------------------------------------------------- headers, answers
async def test_both_header_styles_carry_the_key_through_a_whole_flow(keyed_app, uid):
    acct = f"{uid}-a"
    async with _client(keyed_app) as c:
        r = await c.post("/v1/accounts", headers={"X-API-Key": KEYS["admin"]},
                         json={"account_id": acct, "user_id": f"{uid}-u", "challenge_id": f"{uid}-c",
                               "currency": "USD", "initial_balance": 100_000, "plan": "moderate"})
        assert r.status_code == 201, r.text
        r = await c.post("/v1/orders/check", headers={"Authorization": f"bearer {KEYS['router']}"},  # any case
                         json={"order_id": f"{uid}-o1", "account_id": acct, "instrument": "EURUSD", "side": "buy",
                               "quantity": 0.01})
        assert r.status_code == 200 and r.json()["account_id"] == acct, r.text
        r = await c.get(f"/v1/accounts/{acct}", headers={"X-API-Key": KEYS["ops"]})
        assert r.status_code == 200 and r.json()["account_id"] == acct
        r = await c.get(f"/v1/accounts/{acct}", headers={"Authorization": f"Bearer {KEYS['ops']}"})
        assert r.status_code == 200
        # the bearer header wins over X-API-Key when both are sent
        r = await c.get(f"/v1/accounts/{acct}", headers={"Authorization": f"Bearer {KEYS['router']}",
                                                          "X-API-Key": KEYS["ops"]})
        assert r.status_code == 403
        # another scheme is no key: X-API-Key is then used
        r = await c.get(f"/v1/accounts/{acct}", headers={"Authorization": "Basic dXNlcjpwdw==",
                                                          "X-API-Key": KEYS["ops"]})
        assert r.status_code == 200


async def test_a_missing_key_is_a_401_telling_how_to_send_one(keyed_app):
    async with _client(keyed_app) as c:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwdw=="}, {"X-API-Key": ""}):
            r = await c.get("/v1/risk/firm", headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json() == {"detail": {
                "code": "UNAUTHENTICATED",
                "message": "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"}}
        r = await c.get("/v1/risk/firm", headers={"X-API-Key": KEYS["ops"] + "x"})
        assert r.status_code == 401
        assert r.json() == {"detail": {"code": "UNAUTHENTICATED", "message": "unknown API key"}}


async def test_a_wrong_role_is_a_403_naming_the_role_required_and_the_role_held(keyed_app, uid):
    async with _client(keyed_app) as c:
        r = await c.post("/v1/accounts", headers=_bearer("router"), json={})
        assert r.status_code == 403
        assert r.json() == {"detail": {"code": "FORBIDDEN", "message": "this endpoint requires role admin; "
                                                                       "API key 'router-desk' has role 'router'"}}
        r = await c.get(f"/v1/accounts/{uid}-x", headers=_bearer("router"))
        assert r.json()["detail"]["message"] == ("this endpoint requires role ops or admin; "
                                                 "API key 'router-desk' has role 'router'")
        r = await c.delete("/v1/kill-switch/firm", headers=_bearer("ops"), params={"reason": "r"})
        assert r.status_code == 403 and "requires role admin" in r.json()["detail"]["message"]


async def test_auth_is_checked_before_the_body_is_validated(keyed_app):
    """An invalid body without a key is a 401, not a 422 that would describe the contract."""
    async with _client(keyed_app) as c:
        r = await c.post("/v1/orders/check", json={"order_id": 1})
        assert r.status_code == 401
        r = await c.post("/v1/orders/check", json={"order_id": 1}, headers=_bearer("ops"))
        assert r.status_code == 403
        r = await c.post("/v1/orders/check", json={"order_id": 1}, headers=_bearer("router"))
        assert r.status_code == 422


async def test_msgpack_requests_are_authenticated_too(keyed_app):
    import msgpack

    body = msgpack.packb({"marks": []})
    async with _client(keyed_app) as c:
        r = await c.post("/v1/marks", content=body, headers={"content-type": "application/msgpack"})
        assert r.status_code == 401
        r = await c.post("/v1/marks", content=body, headers={"content-type": "application/msgpack", **_bearer("ops")})
        assert r.status_code == 403


# ----------------------------------------------------------------------------- the principal
def _with_whoami(app):
    @app.get("/test/whoami")
    async def whoami(principal: PrincipalDep):
        return {"name": principal.name, "role": principal.role, "authenticated": principal.authenticated}

    return app


async def test_handlers_see_who_called_through_principal_dep(sharded_deployment):
    settings, runtime = sharded_deployment
    app = _with_whoami(create_app(_settings(settings, api_keys=API_KEYS), runtime.service))
    async with _client(app) as c:
        r = await c.get("/test/whoami", headers={"X-API-Key": KEYS["ops"]})
        assert r.json() == {"name": "ops-desk", "role": "ops", "authenticated": True}
        assert (await c.get("/test/whoami")).status_code == 401
    app = _with_whoami(create_app(_settings(settings, api_keys=[], api_keys_file=None), runtime.service))
    async with _client(app) as c:
        r = await c.get("/test/whoami")
        assert r.json() == {"name": "anonymous", "role": "admin", "authenticated": False}


# ------------------------------------------------------------------------------- keys file
async def test_keys_from_the_keys_file_work_alongside_the_environment_keys(sharded_deployment, tmp_path):
    settings, runtime = sharded_deployment
    file = tmp_path / "keys.json"
    file.write_text(json.dumps([{"name": "night-ops", "role": "ops", "sha256": hash_key("file-ops-key-0123456789")}]))
    env_keys = [ApiKey(name="router-desk", role="router", sha256=hash_key(KEYS["router"]))]
    app = create_app(_settings(settings, api_keys=env_keys, api_keys_file=str(file)), runtime.service)
    async with _client(app) as c:
        assert (await c.get("/v1/risk/firm", headers={"X-API-Key": "file-ops-key-0123456789"})).status_code == 200
        r = await c.get("/v1/risk/firm", headers=_bearer("router"))
        assert r.status_code == 403 and "'router-desk' has role 'router'" in r.json()["detail"]["message"]
        assert (await c.get("/v1/risk/firm")).status_code == 401
    # the file alone turns auth on
    app = create_app(_settings(settings, api_keys=[], api_keys_file=str(file)), runtime.service)
    async with _client(app) as c:
        assert (await c.get("/v1/risk/firm")).status_code == 401


_GOOD = {"name": "k", "role": "ops", "sha256": "a" * 64}


@pytest.mark.parametrize(("content", "problem"), [
    ("[{\"name\": \"k\",", "is not valid JSON"),
    (json.dumps(_GOOD), "must hold a JSON list"),
    (json.dumps([{**_GOOD, "role": "trader"}]), "entry 0 ('k'): role: must be one of router, ops, admin"),
    (json.dumps([_GOOD, {**_GOOD, "name": "b", "sha256": "XYZ"}]),
     "entry 1 ('b'): sha256: must be 64 lower-case hex digits"),
    (json.dumps([{"name": "k", "role": "ops"}]), "entry 0 ('k'): sha256: Field required"),
    (json.dumps([{**_GOOD, "extra": 1}]), "entry 0 ('k'): extra: Extra inputs are not permitted"),
    (json.dumps(["k"]), "entry 0: Input should be"),
    (None, "cannot be read"),
], ids=["not-json", "not-a-list", "bad-role", "bad-digest", "missing-field", "unknown-field", "not-an-object",
        "missing-file"])
def test_a_malformed_keys_file_fails_at_start_up_naming_the_file_and_the_problem(tmp_path, content, problem):
    file = tmp_path / "keys.json"
    if content is not None:
        file.write_text(content)
    from riskactors.settings import Settings

    with pytest.raises(ApiKeysError) as err:
        create_app(Settings(api_keys_file=str(file), storage_root=""))
    assert str(file) in str(err.value)
    assert problem in str(err.value)


def test_two_keys_with_the_same_digest_are_refused(tmp_path):
    from riskactors.settings import Settings

    file = tmp_path / "keys.json"
    file.write_text(json.dumps([{"name": "b", "role": "admin", "sha256": hash_key(KEYS["ops"])}]))
    with pytest.raises(ApiKeysError, match="'ops-desk' and 'b' have the same sha256"):
        create_app(Settings(api_keys=API_KEYS, api_keys_file=str(file), storage_root=""))


# ------------------------------------------------------------------------------------ OpenAPI
def test_openapi_shows_each_operations_roles_and_the_security_schemes(keyed_app):
    doc = keyed_app.openapi()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    assert schemes["apiKey"]["in"] == "header" and schemes["apiKey"]["name"] == "X-API-Key"
    for method, path, roles in MATRIX:
        op = doc["paths"].get(path, {}).get(method.lower())
        if op is None:  # the documentation pages themselves
            assert path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
            continue
        if roles is None:
            assert op["x-roles"] == [] and "security" not in op and "401" not in op["responses"]
            continue
        expected = [r for r in ("router", "ops", "admin") if r in roles]
        assert op["x-roles"] == expected, (method, path)
        assert op["description"].endswith("**Roles:** " + ", ".join(f"`{r}`" for r in expected))
        assert op["security"] == [{"bearer": []}, {"apiKey": []}]
        assert {"401", "403"} <= set(op["responses"])
