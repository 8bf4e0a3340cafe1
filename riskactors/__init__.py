"""riskactors: an actor-based, in-memory pre-trade risk state server for prop-trading firms."""

__version__ = "0.2.0"
