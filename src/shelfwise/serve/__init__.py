"""The HTTP API (FastAPI)."""

from shelfwise.serve.app import create_app

__all__ = ["create_app"]
