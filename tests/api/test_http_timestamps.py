"""Timestamps as clients send them, over HTTP (``api/timestamps.py``): every timestamp field and
parameter takes epoch seconds or ISO 8601 with a zone, and the server answers an ISO request
exactly as it answers the same instant in epoch seconds; a time without a zone is a 422 whose
``loc`` names the field.

Sharded deployment only: the reading of a timestamp is the front's, placement plays no part, and
a few accounts on the session's shards cost no actor. "Twins" are two accounts registered alike
(``<prefix>-epoch`` and ``<prefix>-iso``, each with its own user and challenge, on the same
shard): one is driven with epoch seconds, the other with the same instants as ISO strings, and
their answers are compared whole, with the ids of the epoch twin renamed to the ISO twin's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgpack
import pytest
from httpkit import Api, fresh_ts

from riskactors.actors.placement import stable_shard
from tests.conftest import asgi_client

pytestmark = pytest.mark.anyio

PLUS2 = timezone(timedelta(hours=2))
#: 2023-12-29T07:32:27Z in epoch seconds (the worked instant of tests/unit/test_timestamps.py)
EPOCH = 1_703_835_147.0
MP = "application/msgpack"
ZONE_MESSAGE = "a time zone is required (Z or ±HH:MM, e.g. 2023-12-29T07:32:27Z)"


@pytest.fixture
async def api(sharded_deployment, uid):
    """:class:`Api` over the app on the session's sharded deployment (auth off). Its id prefix is
    the test's ``uid`` and a digit chosen so that the twins ``<prefix>-epoch`` and ``<prefix>-iso``
    (users ``<prefix>-epoch-u`` and ``<prefix>-iso-u``: accounts are placed by user) live on the same shard: they share its clock (a view's ``as_of``, the time-driven events)."""
    settings, runtime = sharded_deployment
    prefix = next(f"{uid}{k}" for k in itertools.count()
                  if stable_shard(f"{uid}{k}-epoch-u", settings.shards) == stable_shard(f"{uid}{k}-iso-u", settings.shards))
    async with asgi_client(settings, runtime) as client:
        yield Api(client, prefix)


def _instant() -> tuple[float, str, str]:
    """A fresh instant in whole microseconds: (epoch seconds, ISO with ``Z``, ISO at +02:00)."""
    at = datetime.fromtimestamp(fresh_ts(), UTC)
    return at.timestamp(), at.isoformat().replace("+00:00", "Z"), at.astimezone(PLUS2).isoformat()


def _as_iso_twin(api: Api, body: Any) -> Any:
    """``body`` (an answer about the epoch twin) with its ids renamed to the ISO twin's."""
    return json.loads(json.dumps(body).replace(api.id("epoch"), api.id("iso")))


def _account(api: Api, name: str, opened_at: float | str | None = None) -> dict[str, Any]:
    body = {"account_id": api.id(name), "user_id": api.id(f"{name}-u"), "challenge_id": api.id(f"{name}-c"),
            "currency": "USD", "initial_balance": 100_000.0, "plan": "moderate",
            "limits": {"max_orders_per_second": 1000}}
    if opened_at is not None:
        body["opened_at"] = opened_at
    return body


async def _register_twins(api: Api, epoch: float, iso: str) -> tuple[dict, dict]:
    answers = []
    for name, opened_at in (("epoch", epoch), ("iso", iso)):
        r = await api.client.post("/v1/accounts", json=_account(api, name, opened_at))
        assert r.status_code == 201, r.text
        answers.append(r.json())
    return answers[0], answers[1]


def _order(api: Api, name: str, n: int, ts: float | str, **extra: Any) -> dict[str, Any]:
    return {"order_id": api.id(f"{name}-o{n}"), "account_id": api.id(name), "instrument": "EURUSD", "side": "buy",
            "quantity": 1.5, "ts": ts, **extra}


def _fill(api: Api, name: str, n: int, ts: float | str, **extra: Any) -> dict[str, Any]:
    return {"fill_id": api.id(f"{name}-f{n}"), "account_id": api.id(name), "instrument": "EURUSD", "side": "buy",
            "quantity": 1.5, "price": 1.10020, "ts": ts, **extra}


async def _post(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


# ------------------------------------------------------------------------------ the same instant, both forms
async def test_an_account_opened_at_iso_has_created_at_equal_to_that_epoch(api):
    epoch_view, iso_view = await _register_twins(api, EPOCH, "2023-12-29T09:32:27+02:00")
    assert iso_view["created_at"] == epoch_view["created_at"] == EPOCH
    assert _as_iso_twin(api, epoch_view) == iso_view
    # the view read back later still says when it was opened
    assert (await api.view(api.id("iso")))["created_at"] == EPOCH


async def test_check_and_fills_with_iso_ts_answer_exactly_as_with_epoch_ts(api):
    opened, opened_z, _ = _instant()
    await _register_twins(api, opened, opened_z)
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    t_open, _, t_open_plus2 = _instant()
    answers: dict[str, list[dict[str, Any]]] = {}
    for name, ts in (("epoch", t_open), ("iso", t_open_plus2)):
        decision = await _post(api, "/v1/orders/check", _order(api, name, 1, ts, stop_loss=1.0990))
        opening = await _post(api, "/v1/fills", _fill(api, name, 1, ts, order_id=api.id(f"{name}-o1"),
                                                      commission=-10.5))
        answers[name] = [decision, opening]
    await api.marks({"EURUSD": (1.10120, 1.10140)})
    t_close, t_close_z, _ = _instant()
    for name, ts in (("epoch", t_close), ("iso", t_close_z)):
        answers[name].append(await _post(api, "/v1/fills", _fill(api, name, 2, ts, side="sell", price=1.10120)))

    decision, opening, closing = answers["iso"]
    assert decision["decision"] == "accept" and decision["reasons"] == []
    assert opening["position"]["opened_at"] == t_open  # the instant sent at +02:00, not two hours later
    assert opening["position"]["quantity"] == 1.5
    # 1.5 lots × 100,000 × (1.10120 − 1.10020) = 150 USD; net of the 10.5 commission: 139.5
    assert closing["realized_pnl"] == pytest.approx(150.0, abs=1e-6) and closing["position"] is None
    assert closing["balance"] == pytest.approx(100_000 + 150 - 10.5, abs=1e-6)
    assert _as_iso_twin(api, answers["epoch"]) == answers["iso"]
    # and everything the two accounts show, events (with their times) included, is the same
    assert _as_iso_twin(api, await api.state(api.id("epoch"))) == await api.state(api.id("iso"))


async def test_a_cancel_with_an_iso_ts_releases_as_with_epoch(api):
    opened, opened_z, _ = _instant()
    await _register_twins(api, opened, opened_z)
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    ts, z, _ = _instant()
    released = {}
    for name, stamp in (("epoch", ts), ("iso", z)):
        assert (await _post(api, "/v1/orders/check", _order(api, name, 1, stamp)))["decision"] == "accept"
        released[name] = await _post(api, f"/v1/orders/{api.id(f'{name}-o1')}/cancel",
                                     {"account_id": api.id(name), "ts": stamp})
    assert released["iso"]["released"] and released["iso"]["reservation"]["created_at"] == ts
    assert _as_iso_twin(api, released["epoch"]) == released["iso"]


async def test_marks_stamped_in_iso_are_ordered_by_their_instant(api):
    ts, z, _ = _instant()
    first = await _post(api, "/v1/marks", {"marks": [{"instrument": "XAUUSD", "bid": 2300.0, "ask": 2300.5, "ts": z}]})
    assert (first["applied"], first["stale"]) == (1, 0)
    # a microsecond earlier in epoch seconds is older than the ISO mark: stale
    older = await _post(api, "/v1/marks", {"marks": [{"instrument": "XAUUSD", "bid": 2301.0, "ask": 2301.5,
                                                      "ts": ts - 1e-6}]})
    assert (older["applied"], older["stale"]) == (0, 1)
    # +02:00 is the same instant (read as wall time it would be 2 h in the future: a 422)
    _, _, later_plus2 = _instant()
    r = await api.client.post("/v1/marks", json={"marks": [{"instrument": "XAUUSD", "bid": 2302.0, "ask": 2302.5,
                                                            "ts": later_plus2}]})
    assert r.status_code == 200 and r.json()["applied"] == 1, r.text


async def test_a_calendar_event_at_iso_is_stored_at_its_epoch(api):
    # ten years ago: no order of the session is near a blackout around it
    events = [{"event_id": api.id("nfp-epoch"), "at": 1_452_259_800.0, "title": "NFP", "currencies": ["USD"]},
              {"event_id": api.id("nfp-iso"), "at": "2016-01-08T14:30:00+01:00", "title": "NFP",
               "currencies": ["USD"]}]
    r = await api.client.post("/v1/calendar", json={"events": events})
    assert r.status_code == 200 and r.json()["received"] == 2, r.text
    stored = {e["event_id"]: e for e in (await api.client.get("/v1/calendar")).json()["events"]
              if e["event_id"].startswith(api.uid)}
    assert stored[api.id("nfp-iso")]["at"] == stored[api.id("nfp-epoch")]["at"] == 1_452_259_800.0
    assert {**stored[api.id("nfp-epoch")], "event_id": None} == {**stored[api.id("nfp-iso")], "event_id": None}


async def test_audit_since_and_until_in_iso_filter_like_epoch_seconds(api):
    r = await api.client.post("/v1/accounts", json=_account(api, "a"))
    assert r.status_code == 201, r.text
    await asyncio.sleep(0.002)
    mid = datetime.fromtimestamp(time.time(), UTC)
    await asyncio.sleep(0.002)
    r = await api.client.patch(f"/v1/accounts/{api.id('a')}/limits",
                               json={"max_open_positions": 3, "by": "jane", "reason": "tighter"})
    assert r.status_code == 200, r.text

    async def entries(**params: Any) -> list[dict[str, Any]]:
        r = await api.client.get("/v1/audit", params={"account_id": api.id("a"), **params})
        assert r.status_code == 200, r.text
        return r.json()["entries"]

    both = await entries()
    assert [e["action"] for e in both] == ["account_registered", "limits_changed"]
    epoch, z, plus2 = mid.timestamp(), mid.isoformat().replace("+00:00", "Z"), mid.astimezone(PLUS2).isoformat()
    assert await entries(since=z) == await entries(since=plus2) == await entries(since=epoch) == both[1:]
    assert await entries(until=z) == await entries(until=plus2) == await entries(until=epoch) == both[:1]
    export = await api.client.get("/v1/audit/export", params={"account_id": api.id("a"), "since": plus2})
    assert export.status_code == 200 and export.headers["content-type"] == "application/vnd.apache.parquet"


async def test_a_msgpack_body_with_an_iso_ts_answers_as_json_with_epoch(api):
    opened, opened_z, _ = _instant()
    await _register_twins(api, opened, opened_z)
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    ts, _, plus2 = _instant()
    headers = {"content-type": MP, "accept": MP}
    answers: dict[str, list[dict[str, Any]]] = {"epoch": [], "iso": []}
    for path, body in (("/v1/orders/check", _order), ("/v1/fills", _fill)):
        answers["epoch"].append(await _post(api, path, body(api, "epoch", 1, ts)))
        r = await api.client.post(path, content=msgpack.packb(body(api, "iso", 1, plus2), use_bin_type=True),
                                  headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == MP, r.content[:300]
        answers["iso"].append(msgpack.unpackb(r.content, raw=False))
    assert answers["iso"][1]["position"]["opened_at"] == ts
    assert _as_iso_twin(api, answers["epoch"]) == answers["iso"]


# ------------------------------------------------------------------------------ refused
NAIVE = "2023-12-29T07:32:27"
BODIES = {  # path, body with the timestamp to refuse in it, loc of that field
    "check ts": ("/v1/orders/check", lambda api, v: _order(api, "a", 1, v), ["body", "ts"]),
    "fill ts": ("/v1/fills", lambda api, v: _fill(api, "a", 1, v), ["body", "ts"]),
    "cancel ts": ("/v1/orders/x/cancel", lambda api, v: {"ts": v}, ["body", "ts"]),
    "mark ts": ("/v1/marks", lambda api, v: {"marks": [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1, "ts": v}]},
                ["body", "marks", 0, "ts"]),
    "opened_at": ("/v1/accounts", lambda api, v: {**_account(api, "new"), "opened_at": v}, ["body", "opened_at"]),
    "calendar at": ("/v1/calendar", lambda api, v: {"events": [{"event_id": api.id("e"), "at": v,
                                                                 "currencies": ["USD"]}]},
                    ["body", "events", 0, "at"]),
}


@pytest.mark.parametrize("field", list(BODIES))
async def test_a_body_time_without_a_zone_is_a_422_naming_the_field(api, field):
    path, body, loc = BODIES[field]
    r = await api.client.post(path, json=body(api, NAIVE))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert len(detail) == 1
    assert detail[0]["loc"] == loc and detail[0]["type"] == "timestamp_zone_missing"
    assert detail[0]["msg"] == f"{ZONE_MESSAGE}: '{NAIVE}' has none"


@pytest.mark.parametrize(("value", "kind"), [("yesterday", "timestamp_parsing"), ("29/12/2023", "timestamp_parsing"),
                                             (True, "timestamp_type"), (-1, "greater_than_equal"),
                                             ("1969-12-31T23:59:59Z", "greater_than_equal")])
async def test_garbage_booleans_and_negative_times_in_a_body_are_a_422_naming_the_field(api, value, kind):
    await api.register("a")
    before = await api.state(api.id("a"))
    r = await api.client.post("/v1/fills", json=_fill(api, "a", 1, value))
    assert r.status_code == 422, r.text
    assert [(d["loc"], d["type"]) for d in r.json()["detail"]] == [(["body", "ts"], kind)]
    assert await api.state(api.id("a")) == before  # nothing was applied


@pytest.mark.parametrize("path", ["/v1/audit", "/v1/audit/export"])
@pytest.mark.parametrize("param", ["since", "until"])
async def test_a_query_time_without_a_zone_or_garbage_is_a_422_naming_the_parameter(api, path, param):
    r = await api.client.get(path, params={param: NAIVE})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert [(d["loc"], d["type"]) for d in detail] == [(["query", param], "timestamp_zone_missing")]
    assert detail[0]["msg"] == f"{ZONE_MESSAGE}: '{NAIVE}' has none"
    r = await api.client.get(path, params={param: "last tuesday"})
    assert r.status_code == 422
    assert [(d["loc"], d["type"]) for d in r.json()["detail"]] == [(["query", param], "timestamp_parsing")]
    # a "+" left unencoded in a URL is a space: refused, never read as another instant
    r = await api.client.get(f"{path}?{param}=2023-12-29T09:32:27+02:00")
    assert r.status_code == 422
    assert [(d["loc"], d["type"]) for d in r.json()["detail"]] == [(["query", param], "timestamp_parsing")]


async def test_the_openapi_document_says_both_forms_are_accepted(api):
    doc = (await api.client.get("/openapi.json")).json()
    forms = [{"type": "number", "minimum": 0.0, "description": "Epoch seconds (UTC)"},
             {"type": "string", "format": "date-time",
              "description": "ISO 8601 with a zone (Z or ±HH:MM), e.g. 2023-12-29T07:32:27Z"}]
    schemas = doc["components"]["schemas"]
    for model, field in (("OrderCheck", "ts"), ("CancelRequest", "ts"), ("FillIn", "ts"), ("MarkIn", "ts"),
                         ("AccountCreate", "opened_at")):
        assert schemas[model]["properties"][field]["anyOf"] == [*forms, {"type": "null"}], (model, field)
    assert schemas["CalendarEventIn"]["properties"]["at"]["anyOf"] == [{**forms[0], "maximum": 1e11}, forms[1]]
    for path in ("/v1/audit", "/v1/audit/export"):
        params = {p["name"]: p["schema"] for p in doc["paths"][path]["get"]["parameters"]}
        assert params["since"]["anyOf"] == params["until"]["anyOf"] == [*forms, {"type": "null"}]
