"""What the views use, and how they reach it: the app's ``Services`` and their accessor.

The app factory (``web/app.py``) builds one ``Services`` per app and imports the
blueprints; the blueprints reach the services through ``services()`` here, never through
``web/app.py``, so nothing imports back into the factory (``tests/web/test_imports.py``
keeps it so). The instance lives in ``app.extensions``, never in a module global, so tests
can build as many independent apps as they like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:  # only for the field types: this module stays a light leaf
    from restock.config import Settings
    from restock.data.store import SalesStore
    from restock.jobs import JobQueue
    from restock.registry import ModelRegistry
    from restock.serving import ForecastService
    from restock.web.streams import StreamHub

#: the key of an app's ``Services`` in ``app.extensions``
EXTENSION = "restock"


@dataclass
class Services:
    """What the views use; one instance per app."""

    settings: Settings
    store: SalesStore
    registry: ModelRegistry
    forecasts: ForecastService
    queue: JobQueue
    heartbeat: float
    streams: StreamHub

    def close(self) -> None:
        """Stop the queue's thread and release the database (tests, worker exit)."""
        self.streams.close()
        self.queue.shutdown(timeout=10)
        self.store.close()

    def install(self, app: Flask) -> None:
        """Make these the services of ``app`` (the factory calls this once)."""
        app.extensions[EXTENSION] = self


def services(app: Flask | None = None) -> Services:
    """The services of ``app``, by default of the app handling the current request."""
    return (app or current_app).extensions[EXTENSION]
