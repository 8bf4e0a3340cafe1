"""Shared fixtures: one local Ray per test session, deployments per placement, data paths.

Ray is started lazily (only when a test needs it), once, with ``num_cpus=2`` and the
dashboard off, and shut down at the end of the session by its own handle.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RISKACTORS_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    """Servers the suite starts keep state in memory unless a test gives them a storage root
    of their own (``Settings(storage_root=...)``, ``RISKACTORS_STORAGE_ROOT`` in a subprocess's
    environment): never ``./var/riskactors``, and two deployments never share a journal."""
    os.environ["RISKACTORS_STORAGE_ROOT"] = ""


def new_storage_root() -> str:
    """A fresh temporary storage root (one per deployment)."""
    import tempfile

    return tempfile.mkdtemp(prefix="riskactors-test-")


def new_deployment_name() -> str:
    """A deployment name no other deployment of the session uses (the session's Ray holds them
    all: a second deployment of the same name would attach to the first's actors)."""
    import uuid

    return f"t{uuid.uuid4().hex[:12]}"


def require_data(relative: str) -> Path:
    """Path of ``../shared/data/<relative>``; fails under CI, skips elsewhere, when missing."""
    path = DATA / relative
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing under CI: {path}")
        pytest.skip(f"reference data not present: {path}")
    return path


@pytest.fixture(scope="session")
def ray_session():
    """The session's local Ray (started once)."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 namespace="riskactors-tests")
        started = True
    yield ray
    if started:
        ray.shutdown()


def _deployment(ray_session, placement: str, shards: int = 2, timeout: float = 10.0, clock: str = "wall",
                **extra):
    from riskactors.actors import ray_runtime
    from riskactors.settings import Settings

    settings = Settings(placement=placement, shards=shards, call_timeout_seconds=timeout, clock=clock,
                        storage_root=new_storage_root(),  # journaled, each deployment in its own root
                        deployment=new_deployment_name(),  # its own actors in the session's Ray
                        **({"max_breaches_listed": 10**6} | extra))  # shared by many tests: list them all
    runtime = ray_runtime.start(settings)
    return settings, runtime


def asgi_client(settings, runtime, timeout: float = 60.0):
    """An ``httpx.AsyncClient`` bound in-process to a new app over ``runtime``'s actors."""
    import httpx

    from api import create_app

    app = create_app(settings, runtime.service)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://riskactors.test",
                             timeout=timeout)


@pytest.fixture
def fresh_deployment(ray_session):
    """Factory of deployments private to one test (own actors and marks), shut down after it:
    ``settings, runtime = fresh_deployment("sharded", shards=1, timeout=2.0, clock="events")``; other
    settings as keywords (``max_breaches_listed=2``)."""
    made = []

    def make(placement: str = "sharded", shards: int = 2, timeout: float = 30.0, clock: str = "wall", **extra):
        settings, runtime = _deployment(ray_session, placement, shards, timeout, clock, **extra)
        made.append(runtime)
        return settings, runtime

    yield make
    for runtime in made:
        runtime.shutdown()


@pytest.fixture(scope="session")
def sharded_deployment(ray_session):
    """(settings, RayRuntime) with sharded placement over 2 shard actors, for the session."""
    settings, runtime = _deployment(ray_session, "sharded")
    yield settings, runtime
    runtime.shutdown()


@pytest.fixture(scope="session")
def dedicated_deployment(ray_session):
    """(settings, RayRuntime) with dedicated placement (keep accounts few: ~57 MiB each)."""
    settings, runtime = _deployment(ray_session, "dedicated")
    yield settings, runtime
    runtime.shutdown()


@pytest.fixture(params=["sharded", "dedicated"])
def deployment(request):
    """Both placements, parametrized."""
    return request.getfixturevalue(f"{request.param}_deployment")


@pytest.fixture
def app_client(deployment):
    """An ``httpx.AsyncClient`` bound in-process to the real app over the real Ray deployment.

    Account ids must be unique per test (the deployment lives for the whole session):
    use the ``uid`` fixture.
    """
    settings, runtime = deployment
    return asgi_client(settings, runtime)


@pytest.fixture
def uid(request):
    """A short id unique to the test (prefix account/user/challenge ids with it)."""
    import hashlib

    return "t" + hashlib.blake2b(request.node.nodeid.encode(), digest_size=5).hexdigest()


@pytest.fixture(scope="session")
def anyio_backend():
    """Async tests run with ``@pytest.mark.anyio`` on asyncio (anyio's pytest plugin)."""
    return "asyncio"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc, base: str, timeout: float = 120.0) -> None:
    """Wait until the server ``proc`` (a Popen with text stdout) answers ``GET /ready`` with
    200; fail with its output if it exits first or is not ready within ``timeout`` seconds."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"server exited early: {proc.stdout.read()[-3000:]}"
        try:
            if httpx.get(base + "/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"server not ready in {timeout:g} s"
        time.sleep(0.5)


def stop_process(proc) -> None:
    """Stop a process this test started, by its own handle: SIGTERM, then SIGKILL after 60 s."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def forget_ray_head(port: int) -> None:
    """`ray start --head` records its address for `address="auto"`; a head stopped by signal
    may leave that record behind. Remove it if it still names our (stopped) head on ``port``."""
    record = Path("/tmp/ray/ray_current_cluster")
    try:
        if record.read_text().strip().endswith(f":{port}"):
            record.unlink()
    except OSError:
        pass
