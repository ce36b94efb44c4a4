"""``restock worker``: a Celery worker that runs retrains for ``RESTOCK_QUEUE=celery``.

As in Flask's ``examples/celery``, the worker builds the app with ``create_app`` and takes
the Celery app from ``app.extensions``: workers and web servers share one configuration
and one job body, and nothing is created at import time.
"""

from __future__ import annotations

import os
from typing import Any

import click

from restock.cli import cli, pass_settings
from restock.config import Settings


@cli.command()
@click.option("--concurrency", type=click.IntRange(1), default=None,
              help="Pool processes (default: the CPU count). A retrain holds one; the "
                   "others fit its shards (Prophet, the statistical members).")
@click.option("--loglevel", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@pass_settings
def worker(settings: Settings, concurrency: int | None, loglevel: str) -> None:
    """Run retrains from the Redis broker (needs RESTOCK_QUEUE=celery, RESTOCK_REDIS_URL)."""
    if settings.queue != "celery":
        raise click.UsageError("restock worker needs RESTOCK_QUEUE=celery (and the web "
                               "servers need it too, or they run retrains themselves)")
    from celery.signals import worker_process_init

    from restock.web import create_app
    from restock.web.services import services

    queue = services(create_app(settings)).queue
    celery_app = queue.celery

    def forked(**_: Any) -> None:
        queue.after_fork()

    worker_process_init.connect(forked, weak=False)
    queue.kick()  # sweep whatever a worker that died left running, then run what waits
    celery_app.worker_main([
        "worker", f"--concurrency={concurrency or os.cpu_count() or 1}",
        f"--loglevel={loglevel}", f"--hostname=restock-{os.getpid()}@%h",
        "--without-gossip", "--without-mingle",
    ])
