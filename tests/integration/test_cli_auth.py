"""API keys on the command line: ``riskactors hash-key`` and the loopback rule of ``serve`` /
``run`` / ``replay`` / the embedded server (no key configured: loopback only, refused before
Ray or uvicorn start). Runs the click commands in-process (``CliRunner``); nothing here starts
Ray: the functions that would are replaced by tripwires."""

from __future__ import annotations

import json
import logging
import re
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from api.auth import check_bind, hash_key, is_loopback
from riskactors.cli import main
from riskactors.settings import ApiKey, Settings

ADMIN_KEY = "admin-secret-0123456789abcdef"
KEYS_JSON = json.dumps([{"name": "admin-desk", "role": "admin", "sha256": hash_key(ADMIN_KEY)}])


@pytest.fixture(autouse=True)
def _no_configured_keys(monkeypatch):
    for var in ("RISKACTORS_API_KEYS", "RISKACTORS_API_KEYS_FILE", "RISKACTORS_API_KEY", "RISKACTORS_HOST"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def tripwires(monkeypatch):
    """Replace everything that would start Ray or a server; records what was reached."""
    import ray
    import uvicorn

    from riskactors.actors import ray_runtime
    from riskactors.replay import server

    reached: list[tuple] = []

    def trip(name, allowed=False, returns=None):
        def f(*args, **kwargs):
            reached.append((name, args, kwargs))
            if not allowed:
                raise AssertionError(f"{name} reached")
            return returns
        return f

    # `serve` starts the deployment (on the main thread) and then uvicorn: both are recorded
    runtime = SimpleNamespace(service=None, shutdown=lambda: reached.append(("runtime.shutdown", (), {})))
    monkeypatch.setattr(uvicorn, "run", trip("uvicorn.run", allowed=True))
    monkeypatch.setattr(ray, "init", trip("ray.init"))
    monkeypatch.setattr(ray_runtime, "start", trip("ray_runtime.start", allowed=True, returns=runtime))
    monkeypatch.setattr(server, "embedded_server", trip("embedded_server"))
    return reached


# ------------------------------------------------------------------------------- hash-key
def test_hash_key_prints_the_sha256_of_the_key_on_stdin_and_an_example_configuration():
    r = CliRunner().invoke(main, ["hash-key", "--role", "ops", "--name", "night-ops"],
                           input="my-own-key-0123456789\n")
    assert r.exit_code == 0, r.output
    digest = hash_key("my-own-key-0123456789")
    assert f"sha256: {digest}" in r.output
    assert "my-own-key-0123456789" not in r.output  # a key given is never echoed
    example = re.search(r"RISKACTORS_API_KEYS='(.*)'", r.output).group(1)
    assert [ApiKey.model_validate(k) for k in json.loads(example)] == [ApiKey(name="night-ops", role="ops",
                                                                               sha256=digest)]


def test_hash_key_generate_prints_a_new_key_and_its_digest():
    r = CliRunner().invoke(main, ["hash-key", "--generate"])
    assert r.exit_code == 0, r.output
    key = re.search(r"^key:\s+(\S+)$", r.output, re.MULTILINE).group(1)
    assert len(key) >= 43  # secrets.token_urlsafe(32)
    assert f"sha256: {hash_key(key)}" in r.output
    assert json.loads(re.search(r"RISKACTORS_API_KEYS='(.*)'", r.output).group(1)) == [
        {"name": "router-1", "role": "router", "sha256": hash_key(key)}]
    again = CliRunner().invoke(main, ["hash-key", "--generate"])
    assert re.search(r"^key:\s+(\S+)$", again.output, re.MULTILINE).group(1) != key


def test_hash_key_without_a_key_on_stdin_fails_with_a_hint():
    r = CliRunner().invoke(main, ["hash-key"], input="")
    assert r.exit_code != 0
    assert "no key on stdin" in r.output and "--generate" in r.output


def test_hash_key_warns_about_a_short_key():
    r = CliRunner().invoke(main, ["hash-key"], input="short\n")
    assert r.exit_code == 0
    assert f"sha256: {hash_key('short')}" in r.output
    assert "shorter than 16 characters" in r.stderr


# ---------------------------------------------------------------------------- loopback rule
@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LOCALHOST", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("10.0.0.5", False), ("192.168.1.2", False),
    ("example.com", False), ("localhost.example.com", False), ("128.0.0.1", False),
])
def test_loopback_is_127_0_0_0_8_ipv6_loopback_and_localhost(host, loopback):
    assert is_loopback(host) is loopback


def test_serve_on_a_public_address_without_keys_is_refused_before_ray_starts(tripwires):
    r = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "8123"])
    assert r.exit_code == 1, r.output
    assert "refusing to listen on '0.0.0.0' without API keys" in r.output
    assert "RISKACTORS_API_KEYS" in r.output and "riskactors hash-key" in r.output
    assert tripwires == []  # neither uvicorn nor Ray was reached


def test_serve_on_a_public_address_with_keys_starts(tripwires, monkeypatch):
    monkeypatch.setenv("RISKACTORS_API_KEYS", KEYS_JSON)
    r = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert [t[0] for t in tripwires] == ["ray_runtime.start", "uvicorn.run", "runtime.shutdown"]
    _, _, kwargs = tripwires[1]
    assert kwargs["host"] == "0.0.0.0"


def test_serve_on_loopback_without_keys_warns_that_auth_is_off(tripwires, caplog):
    with caplog.at_level(logging.WARNING, logger="riskactors.auth"):
        r = CliRunner().invoke(main, ["serve", "--host", "127.0.0.1", "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert [t[0] for t in tripwires] == ["ray_runtime.start", "uvicorn.run", "runtime.shutdown"]
    assert any("auth is off (no API keys configured); listening on loopback only" in m for m in caplog.messages)


def test_serve_with_a_malformed_keys_file_fails_naming_the_file(tripwires, monkeypatch, tmp_path):
    bad = tmp_path / "keys.json"
    bad.write_text('{"name": "k"}')
    monkeypatch.setenv("RISKACTORS_API_KEYS_FILE", str(bad))
    r = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert r.exit_code == 1
    assert str(bad) in r.output and "must hold a JSON list" in r.output
    assert tripwires == []


@pytest.fixture
def trades_file(tmp_path):
    f = tmp_path / "trades.csv"
    f.write_text("not read: the address is checked first\n")
    return f


@pytest.mark.parametrize("command", ["run", "replay"])
def test_run_and_replay_on_a_public_address_without_keys_are_refused(tripwires, trades_file, command):
    r = CliRunner().invoke(main, [command, str(trades_file), "--host", "0.0.0.0"])
    assert r.exit_code == 1, r.output
    assert "refusing to listen on '0.0.0.0' without API keys" in r.output
    assert tripwires == []


@pytest.mark.parametrize(("key", "why"), [(None, ""), ("nope-0123456789", "the key given is unknown")])
def test_run_with_keys_needs_an_admin_key_for_its_replay_client(tripwires, trades_file, monkeypatch, key, why):
    monkeypatch.setenv("RISKACTORS_API_KEYS", json.dumps(
        [{"name": "router-desk", "role": "router", "sha256": hash_key("router-secret-0123456789")}]))
    r = CliRunner().invoke(main, ["run", str(trades_file), *(["--api-key", key] if key else [])])
    assert r.exit_code == 1, r.output
    assert "pass --api-key (or RISKACTORS_API_KEY) with an admin key" in r.output and why in r.output
    r = CliRunner().invoke(main, ["run", str(trades_file), "--api-key", "router-secret-0123456789"])
    assert r.exit_code == 1 and "key 'router-desk' has role router" in r.output
    assert tripwires == []


def test_embedded_server_refuses_a_public_address_without_keys():
    from api.auth import InsecureBindError
    from riskactors.replay.server import embedded_server

    with pytest.raises(InsecureBindError, match="refusing to listen on '0.0.0.0'"), \
            embedded_server(Settings(host="0.0.0.0", port=0, storage_root="")):
        pass


def test_check_bind_accepts_any_address_once_keys_are_configured():
    keys = [ApiKey(name="a", role="admin", sha256=hash_key(ADMIN_KEY))]
    assert check_bind(Settings(host="0.0.0.0", api_keys=keys)).enabled
    assert not check_bind(Settings(host="::1")).enabled
