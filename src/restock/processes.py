"""Worker processes: started by a fork server, never forked from a threaded server.

A retrain runs on a thread of a gunicorn worker that has torch loaded and request threads
running; a plain ``fork`` of that process copies locks other threads held, and its
children can hang or die (a statsforecast pool forked there stalled a retrain for good).
Prophet's pool and statsforecast's pools (which use the default start method) therefore
start their workers from a fork server, which preloads the modelling libraries once so
each worker starts warm. ``spawn`` is the fallback where there is no fork server.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

#: imported once in the fork server, so every worker it starts has them loaded
PRELOAD = ["prophet", "statsforecast", "restock.models.prophet"]


def safe_context() -> BaseContext:
    """The fork-server context (``spawn`` where unavailable), preloading ``PRELOAD``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def use_safe_start_method() -> None:
    """Make it the process-wide default, for pools that take no context (statsforecast)."""
    multiprocessing.set_start_method(safe_context().get_start_method(), force=True)
