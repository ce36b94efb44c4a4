"""The HTTP API: ``create_app()`` and one blueprint per concern."""

from restock.web.app import create_app

__all__ = ["create_app"]
