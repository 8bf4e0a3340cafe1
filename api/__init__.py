"""HTTP front (FastAPI): routing, validation, error mapping. No risk logic here."""

from .app import create_app

__all__ = ["create_app"]
