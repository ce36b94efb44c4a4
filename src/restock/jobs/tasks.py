"""Job bodies: what a queued job actually does, independent of the queue that runs it.

The thread queue and the Celery worker call the same function, so a retrain behaves the
same whichever backend runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from restock.config import Settings
from restock.data.store import SalesStore
from restock.jobs.base import EventData, Task


def make_retrain_task(settings: Settings, store: SalesStore, registry: Any) -> Task:
    """Bind the retrain pipeline to this app's store and registry."""

    def retrain_job(params: dict[str, Any], on_event: Callable[[EventData], None]
                    ) -> dict[str, Any]:
        from restock.training import retrain  # heavy (torch, prophet): load on first job

        version = retrain(settings, store, registry, weights=params.get("weights"),
                          epochs=params.get("epochs"), on_event=on_event)
        meta = registry.meta(version)
        return {"model_version": version, "metrics": meta.get("metrics_summary")}

    return retrain_job
