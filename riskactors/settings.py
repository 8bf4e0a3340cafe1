"""Server settings (pydantic-settings): every CLI flag also has an environment variable.

Environment variables are prefixed ``RISKACTORS_`` (``RISKACTORS_PORT=8001``). Settings are
built once at start-up and passed in; nothing reads them at import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Runtime configuration of the risk server.

    Attributes
    ----------
    host, port : str, int
        Where uvicorn listens (default 127.0.0.1:8000).
    address : str or None
        Ray cluster to join (``auto`` or ``HOST:PORT``); ``None`` starts an embedded local Ray.
    placement : {"sharded", "dedicated"}
        ``sharded``: accounts spread over ``shards`` actors by a stable hash of ``account_id``;
        ``dedicated``: one Ray actor per account.
    shards : int
        Number of shard actors (sharded placement).
    num_cpus : int or None
        CPUs for an embedded Ray (``None``: Ray decides).
    reservation_ttl_seconds : float
        How long an accepted order's reservation lives without a fill or cancel.
    trading_day_rollover, trading_day_timezone : str
        Local ``HH:MM`` and IANA zone at which the trading day rolls (17:00 America/New_York).
    call_timeout_seconds : float
        Timeout of one actor call from the front; past it the call fails closed (503).
    instruments_file, plans_file : str or None
        Override the instrument registry / plans shipped with the package.
    """

    model_config = SettingsConfigDict(env_prefix="RISKACTORS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535, description="0 picks a free port (embedded replay)")
    address: str | None = None
    placement: Literal["sharded", "dedicated"] = "sharded"
    shards: int = Field(2, ge=1, le=4096)
    num_cpus: int | None = Field(None, ge=1)
    reservation_ttl_seconds: float = Field(30.0, gt=0)
    trading_day_rollover: str = "17:00"
    trading_day_timezone: str = "America/New_York"
    call_timeout_seconds: float = Field(5.0, gt=0)
    instruments_file: str | None = None
    plans_file: str | None = None

    @field_validator("trading_day_timezone")
    @classmethod
    def _zone_exists(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    def host_config(self) -> dict:
        """The plain dict an account host is built from (crosses process boundaries)."""
        return {
            "reservation_ttl_seconds": self.reservation_ttl_seconds,
            "trading_day_rollover": self.trading_day_rollover,
            "trading_day_timezone": self.trading_day_timezone,
            "instruments_file": self.instruments_file,
            "plans_file": self.plans_file,
        }
