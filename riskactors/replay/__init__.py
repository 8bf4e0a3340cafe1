"""Replay of real trade histories through the HTTP API (``riskactors replay``)."""

from .driver import ReplayOptions, ReplayReport, run_replay
from .loaders import Trade, TradeFile, detect_format, load_trades

__all__ = ["ReplayOptions", "ReplayReport", "Trade", "TradeFile", "detect_format", "load_trades", "run_replay"]
