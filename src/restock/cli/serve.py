"""``restock serve``: the web app under gunicorn's threaded worker, embedded in-process.

gunicorn's ``BaseApplication`` lets the command pass the already-built ``Settings`` and
the master's start time to every worker's ``create_app`` instead of an import string.
Jobs: every worker can take uploads and stream progress, but only the worker holding
``$RESTOCK_HOME/jobs.lock`` runs retrains (one at a time); if it dies, a sibling takes
over and marks the dead one's running job ``interrupted``. Retrains compete with requests
for the same two cores, so keep ``--workers`` small; run retrains elsewhere with
``RESTOCK_QUEUE=celery`` to scale out.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from restock.cli import cli, pass_settings
from restock.config import Settings

log = logging.getLogger("restock.serve")

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"


class RestockServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with ``create_app`` as the WSGI app; no config file, no argv parsing."""

    def __init__(self, settings: Settings, options: dict[str, Any], heartbeat: float) -> None:
        self.settings = settings
        self.options = options
        self.heartbeat = heartbeat
        self.started_at = datetime.now(timezone.utc)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # control_socket_disable is new in gunicorn 27
                self.cfg.set(key, value)

    def load(self) -> Any:
        from restock.web import create_app

        return create_app(self.settings, heartbeat=self.heartbeat, started_at=self.started_at)


def configure_logging() -> None:
    """Request ids in every log line of ours (gunicorn keeps its own error log)."""
    from restock.web.security import RequestIdFilter

    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger("restock")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


@cli.command()
@click.option("--host", default=None,
              help="Interface to bind (default 127.0.0.1; anything else with no "
                   "RESTOCK_API_TOKENS logs a warning).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1),
              help="gunicorn worker processes; with the embedded queue one of them runs the "
                   "retrains, with RESTOCK_QUEUE=celery the `restock worker` processes do.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1),
              help="Threads per worker for requests; open progress streams hold none (one "
                   "broadcaster thread per worker writes them).")
@click.option("--heartbeat", default=15.0, show_default=True, type=click.FloatRange(0.05),
              help="Seconds between SSE keep-alive comments (below your proxy's idle timeout).")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log one line per request (restock.web.access).")
@pass_settings
def serve(settings: Settings, host: str | None, port: int, workers: int, threads: int,
          heartbeat: float, access_log: bool) -> None:
    """Serve the HTTP API and the retrain page with gunicorn (gthread workers)."""
    configure_logging()
    logging.getLogger("restock.web.access").setLevel(logging.INFO if access_log
                                                     else logging.WARNING)
    bind_host = host or "127.0.0.1"
    if bind_host not in LOCAL_HOSTS and not settings.api_tokens:
        log.warning("binding %s without RESTOCK_API_TOKENS: anyone who can reach this "
                    "address can upload data and retrain", bind_host)
    address = f"[{bind_host}]:{port}" if ":" in bind_host else f"{bind_host}:{port}"
    click.echo(f"restock serving on http://{address}/ (page: /ui, API: /openapi.json)")
    RestockServer(settings, {
        "bind": address, "workers": workers, "threads": threads,
        "worker_class": "gthread", "timeout": 60, "graceful_timeout": 20, "keepalive": 5,
        "accesslog": None, "errorlog": "-", "loglevel": "info",
        "proc_name": "restock", "forwarded_allow_ips": "127.0.0.1",
        "control_socket_disable": True,
    }, heartbeat).run()
