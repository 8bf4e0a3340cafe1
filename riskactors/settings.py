"""Server settings (pydantic-settings): every CLI flag also has an environment variable.

Environment variables are prefixed ``RISKACTORS_`` (``RISKACTORS_PORT=8001``). Settings are
built once at start-up and passed in; nothing reads them at import time.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiKey", "Role", "Settings"]

Role = Literal["router", "ops", "admin"]


class ApiKey(BaseModel):
    """One API key: who holds it, its role and the SHA-256 hex digest of the key itself
    (the key is never stored; ``riskactors hash-key`` prints the digest of a new key)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: Role
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Settings(BaseSettings):
    """Runtime configuration of the risk server.

    Attributes
    ----------
    host, port : str, int
        Where uvicorn listens (default 127.0.0.1:8000).
    deployment : str
        Name of the deployment: its actors are named ``<deployment>/supervisor``,
        ``<deployment>/shard-<i>`` … in the ``riskactors`` Ray namespace. The first front on a
        cluster creates them, later ones attach (default ``riskactors``).
    address : str or None
        Ray cluster to join (``auto`` or ``HOST:PORT``); ``None`` starts an embedded local Ray.
    placement : {"sharded", "dedicated"}
        ``sharded``: users (all of a user's accounts) spread over ``shards`` actors by a stable
        hash of ``user_id``; ``dedicated``: one Ray actor per user.
    shards : int
        Number of shard actors (sharded placement). Embedded: 2 by default. On a cluster
        (``address``) without a value: ``shards_per_node`` × the live nodes when the deployment
        is created, and the deployment's count when a front attaches.
    shards_per_node : int
        Shards per live node when a deployment is created on a cluster without ``shards`` (8):
        more shards than nodes, so ``riskactors rebalance`` can spread them over nodes that join.
    num_cpus : int or None
        CPUs for an embedded Ray (``None``: Ray decides).
    reservation_ttl_seconds : float
        How long an accepted order's reservation lives without a fill or cancel.
    trading_day_rollover, trading_day_timezone : str
        Local ``HH:MM`` and IANA zone at which the trading day rolls (17:00 America/New_York).
    call_timeout_seconds : float
        Timeout of one actor call from the front; past it the call fails closed (503).
    spawn_timeout_seconds : float
        How long starting a dedicated host may take (a new Ray worker process, which recovers
        its accounts from the storage root). A registration under ``dedicated`` placement waits
        this plus ``call_timeout_seconds`` before it fails closed (503; a retry is safe).
    host_link : bool
        Hosts serve checks, fills, cancels, marks, ticks and views on a socket of their own, and
        fronts send those calls there instead of through Ray (:mod:`riskactors.actors.hostlink`: same order, journal and
        fail-closed rules; a Ray call costs the caller more CPU than the check). ``False``:
        every call goes through Ray.
    instruments_file, plans_file : str or None
        Override the instrument registry / plans shipped with the package.
    storage_root : str or None
        Where journals, snapshots and the audit log live: a local directory (default
        ``./var/riskactors``) or any URI ``pyarrow.fs.FileSystem.from_uri`` opens (a shared
        mount, ``file:///…``, an object store). ``None`` or ``""`` keeps state in memory only.
    fsync : {"always", "batch", "interval"}
        When journal writes are forced to disk. ``always``: after every frame; ``batch``
        (default): once per actor call, before it replies, so every acknowledged call is on
        disk; ``interval``: written to the OS per call (survives a process crash) and forced to
        disk at most every ``fsync_interval_seconds`` (a power loss may lose that window).
    fsync_interval_seconds : float
        Period of the ``interval`` policy.
    snapshot_every_events, snapshot_every_seconds : int, float
        A host snapshots its accounts after this many journal frames or this many seconds
        (whichever comes first, checked after each call); the journal before it is compacted.
    snapshot_mode : {"fork", "inline"} or None
        ``fork``: the host forks and the child writes the snapshot while the host answers
        (a copy-on-write consistent cut; ``actors/durable.py``); ``inline``: written inside the
        call that made it due. Default: ``fork`` on a local or mounted root, ``inline`` on an
        object store.
    snapshot_write_mib_per_second : float
        A background snapshot is written no faster than this (MiB/s), 256 KiB at a time, each
        put on disk before the next, so the journal's fsyncs on the same disk are not held up
        behind it (``persistence/storage.paced_write``). 0: as fast as the disk takes it.
    api_keys : list of ApiKey
        Hashed API keys with their role (``router``, ``ops``, ``admin``), from the environment
        (``RISKACTORS_API_KEYS`` as JSON) or ``api_keys_file`` (JSON list). Empty: auth is off
        and the server binds to loopback only.
    api_keys_file : str or None
        JSON file with a list of ``{"name", "role", "sha256"}``; merged with ``api_keys``.
    fast_check : bool
        Answer the plain pre-trade check (JSON, no ``Idempotency-Key``, valid, authorised)
        without FastAPI's routing and the body middlewares (``api/fastcheck.py``); anything
        else takes the route. ``RISKACTORS_FAST_CHECK=false`` sends every check the route's way.
    max_body_bytes : int
        Requests with a larger body are refused with 413.
    max_batch_body_bytes : int
        The same for the batch routes (``/v1/accounts/batch``, ``/v1/fills/batch``): 32 MiB,
        enough for 10,000 items in JSON.
    clock : {"wall", "events"}
        What moves the deployment's time: ``wall``, the server's time (live), or ``events``, the
        latest ``ts`` of the events received (replays, back-tests). See
        :mod:`riskactors.actors.clock`.
    drain_timeout_seconds : float
        On SIGTERM or SIGINT a front stops accepting and waits at most this long for the
        requests in flight before it shuts down (uvicorn's graceful-shutdown timeout).
    workers : int
        Front processes on one port (``serve --workers N``), each attached to the deployment;
        metrics then use prometheus-client's multiprocess mode (one scrape covers the port).
    tick_seconds : float
        ``wall``: how often the front brings every host to the clock (transitions due happen
        within this period with no traffic).
    max_future_seconds : float
        An event (check, fill, mark) stamped more than this many seconds after the wall clock
        is refused (422), in both clock kinds. ``RISKACTORS_MAX_MARK_FUTURE_SECONDS`` is
        accepted as its older name.
    idempotency_ttl_seconds, idempotency_max_keys : float, int
        How long and how many ``Idempotency-Key`` responses the deployment's ledger remembers
        (deployment-level: set when the ledger is created).
    check_calls_in_flight : int
        Pre-trade check calls each front keeps in flight per host (default 1): the checks that
        arrive meanwhile go together in the next call. 2 sends a check that arrives during a
        call at once: measured (2 shards, wrk, alternated) 14 % fewer checks/s at 32
        connections with a lower p99 (18-21 against 27-35 ms), no gain at 4 or 1.
    columnar_from : int
        A host values the accounts a mark moves in columnar form (numpy,
        :mod:`riskactors.domain.columnar`) when at least this many hold the marked instrument
        (64); below it, or 0, one by one. The figures are the same either way.
    max_breaches_listed : int
        A ``POST /v1/marks`` answer lists at most this many of the breaches it caused (100);
        ``breach_count`` and ``breaches_by_code`` count them all, and every one is in the audit
        log (``GET /v1/audit?action=breach``) and the accounts' events. Replays run with no bound.
    idempotency_lease_seconds : float
        How long a keyed request's claim holds without an answer (a front that died while
        running it): after that a retry runs it again.
    """

    model_config = SettingsConfigDict(env_prefix="RISKACTORS_", extra="ignore")

    host: str = "127.0.0.1"
    deployment: str = Field("riskactors", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    port: int = Field(8000, ge=0, le=65535, description="0 picks a free port (embedded replay)")
    address: str | None = None
    placement: Literal["sharded", "dedicated"] = "sharded"
    shards: int = Field(2, ge=1, le=4096)
    shards_per_node: int = Field(8, ge=1, le=256)
    num_cpus: int | None = Field(None, ge=1)
    reservation_ttl_seconds: float = Field(30.0, gt=0)
    trading_day_rollover: str = "17:00"
    trading_day_timezone: str = "America/New_York"
    call_timeout_seconds: float = Field(5.0, gt=0)
    spawn_timeout_seconds: float = Field(60.0, gt=0)
    host_link: bool = True
    instruments_file: str | None = None
    plans_file: str | None = None
    storage_root: str | None = "./var/riskactors"
    fsync: Literal["always", "batch", "interval"] = "batch"
    fsync_interval_seconds: float = Field(1.0, gt=0)
    snapshot_every_events: int = Field(10_000, ge=1)
    snapshot_every_seconds: float = Field(300.0, gt=0)
    snapshot_mode: Literal["fork", "inline"] | None = None
    snapshot_write_mib_per_second: float = Field(32.0, ge=0)
    columnar_from: int = Field(64, ge=0)
    api_keys: list[ApiKey] = Field(default_factory=list)
    api_keys_file: str | None = None
    max_body_bytes: int = Field(1_048_576, ge=1024)
    fast_check: bool = True
    max_batch_body_bytes: int = Field(32 * 1_048_576, ge=1024)
    clock: Literal["wall", "events"] = "wall"
    drain_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    workers: int = Field(1, ge=1, le=64)
    tick_seconds: float = Field(1.0, gt=0, le=60)
    max_future_seconds: float = Field(60.0, gt=0, validation_alias=AliasChoices(
        "max_future_seconds", "RISKACTORS_MAX_FUTURE_SECONDS", "RISKACTORS_MAX_MARK_FUTURE_SECONDS"))
    idempotency_ttl_seconds: float = Field(86_400.0, gt=0)
    idempotency_max_keys: int = Field(100_000, ge=1)
    idempotency_lease_seconds: float = Field(60.0, gt=0)
    max_breaches_listed: int = Field(100, ge=0)
    check_calls_in_flight: int = Field(1, ge=1, le=16)

    @field_validator("trading_day_timezone")
    @classmethod
    def _zone_exists(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    def deployment_settings(self) -> dict:
        """The deployment-level settings, recorded when the deployment is created; a front that
        attaches with another value of one of them is refused (front-level settings — host,
        port, workers, API keys, body limits — may differ between fronts)."""
        return {"placement": self.placement, "shards": self.shards if self.placement == "sharded" else None,
                "plans_file": self.plans_file, "instruments_file": self.instruments_file,
                "trading_day_rollover": self.trading_day_rollover, "trading_day_timezone": self.trading_day_timezone,
                "reservation_ttl_seconds": self.reservation_ttl_seconds, "fsync": self.fsync, "clock": self.clock,
                "idempotency_ttl_seconds": self.idempotency_ttl_seconds,
                "idempotency_max_keys": self.idempotency_max_keys}

    def ledger_config(self) -> dict:
        """The plain dict the ``Idempotency-Key`` ledger is built from."""
        return {"max_keys": self.idempotency_max_keys, "ttl_seconds": self.idempotency_ttl_seconds,
                "lease_seconds": self.idempotency_lease_seconds, "storage": self.storage_config()}

    def host_config(self) -> dict:
        """The plain dict an account host is built from (crosses process boundaries)."""
        return {
            "reservation_ttl_seconds": self.reservation_ttl_seconds,
            "trading_day_rollover": self.trading_day_rollover,
            "trading_day_timezone": self.trading_day_timezone,
            "instruments_file": self.instruments_file,
            "plans_file": self.plans_file,
            "columnar_from": self.columnar_from,
            "link": self.host_link,
            "storage": self.storage_config(),
        }

    def storage_config(self) -> dict | None:
        """Journal/snapshot settings for hosts and the supervisor (``None``: in memory only)."""
        if not self.storage_root:
            return None
        root = self.storage_root
        if "://" not in root:  # a plain path is relative to where the server starts, not to a Ray worker
            root = os.path.abspath(root)
        return {"root": root, "fsync": self.fsync, "fsync_interval_seconds": self.fsync_interval_seconds,
                "snapshot_every_events": self.snapshot_every_events,
                "snapshot_every_seconds": self.snapshot_every_seconds, "snapshot_mode": self.snapshot_mode,
                "snapshot_write_mib_per_second": self.snapshot_write_mib_per_second}
