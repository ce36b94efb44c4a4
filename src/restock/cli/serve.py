"""``restock serve``: the web app under gunicorn's threaded worker, embedded in-process.

gunicorn's ``BaseApplication`` lets the command pass the already-built ``Settings`` and
the master's start time to every worker's ``create_app`` instead of an import string.
Jobs: every worker can take uploads and stream progress, but only the worker holding
``$RESTOCK_HOME/jobs.lock`` runs retrains (one at a time); if it dies, a sibling takes
over and marks the dead one's running job ``interrupted``. Retrains compete with requests
for the same two cores, so keep ``--workers`` small; run retrains elsewhere with
``RESTOCK_QUEUE=celery`` to scale out. The workers are ``RestockWorker`` (gthread that
answers malformed HTTP in the JSON error shape and stops a running retrain cleanly on
SIGTERM).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import datetime, timezone
from typing import Any

import click
from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from restock.cli import cli, pass_settings
from restock.config import Settings

log = logging.getLogger("restock.serve")

#: seconds the master gives workers to finish after SIGTERM (then SIGKILL): time for open
#: requests to drain and for a running retrain to reach its next event and unwind
GRACEFUL_TIMEOUT = 30
#: a stopping worker gives up on its job this long before the master's SIGKILL
STOP_MARGIN = 5.0
STOP_TIMED_OUT = {"code": "interrupted",
                  "message": "the server shut down and the job did not stop in time; "
                             "retrain again"}
#: bind addresses meaning "every interface": no single name for clients to use
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` (its page for requests it refuses as malformed HTTP,
    before the app sees them) with restock's JSON error shape instead of HTML."""
    from restock.web.errors import HTTP_CODES, error_body

    code = HTTP_CODES.get(status_int) or reason.lower().replace(" ", "_")
    body = json.dumps(error_body(code, mesg or reason)).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


class RestockWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, plus JSON errors for malformed HTTP and a clean stop.

    On SIGTERM the embedded job runner is told to stop at once, so a running retrain is
    cancelled at its next progress event while connections drain (its SSE streams end
    with the ``cancelled`` event). After the drain it gets until ``graceful_timeout`` (less
    a margin before the master's SIGKILL) to unwind. A job that is still inside torch or
    Prophet then is recorded ``failed`` and the process ends with ``os._exit``: letting
    the interpreter tear down under that thread aborts (``std::terminate``, SIGABRT).
    """

    _stop_by: float | None = None

    def init_process(self) -> None:
        # base.Worker.handle_error writes through this module function, and gunicorn has
        # no hook for its error pages; only this worker process is affected
        gunicorn_util.write_error = write_json_error
        super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.alive and (queue := self._thread_queue()) is not None:
            self._stop_by = time.monotonic() + self.cfg.graceful_timeout - STOP_MARGIN
            queue.shutdown(wait=False)
        super().handle_exit(sig, frame)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._stop_jobs()

    def _thread_queue(self) -> Any:
        """The embedded job queue of this worker's app (None before the app is loaded, and
        with Celery, whose jobs run elsewhere)."""
        from restock.jobs.thread import ThreadJobQueue

        from restock.web.services import services

        app = getattr(self, "wsgi", None)
        queue = services(app).queue if app is not None else None
        return queue if isinstance(queue, ThreadJobQueue) else None

    def _stop_jobs(self) -> None:
        queue = self._thread_queue()
        if queue is None:
            return
        stop_by = self._stop_by or time.monotonic() + self.cfg.graceful_timeout - STOP_MARGIN
        queue.shutdown(timeout=max(0.0, stop_by - time.monotonic()))
        if not queue.stopped:
            queue.fail_running(STOP_TIMED_OUT)
            log.error("pid %s: the running job did not stop in time; recorded as failed, "
                      "exiting now", os.getpid())
            logging.shutdown()
            os._exit(0)


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


def with_bind_host_allowed(settings: Settings, bind_host: str) -> Settings:
    """The default ``RESTOCK_ALLOWED_HOSTS`` for this bind address: loopback names plus the
    address itself. A wildcard bind has no such name: only loopback names are answered
    until the setting lists the names clients use (the log says so)."""
    from restock.web.security import LOOPBACK_HOSTS

    if settings.allowed_hosts:
        return settings
    if bind_host in WILDCARD_HOSTS:
        log.warning("binding %s with RESTOCK_ALLOWED_HOSTS unset: only requests for %s are "
                    "answered; list the names clients use (or '*') in RESTOCK_ALLOWED_HOSTS",
                    bind_host, ", ".join(LOOPBACK_HOSTS))
        return settings
    return settings.with_overrides(allowed_hosts=(*LOOPBACK_HOSTS, bind_host))


@cli.command()
@click.option("--host", default=None,
              help="Interface to bind (default 127.0.0.1; it joins the default "
                   "RESTOCK_ALLOWED_HOSTS; anything else with no RESTOCK_API_TOKENS logs "
                   "a warning).")
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
    from restock.web.security import LOOPBACK_HOSTS

    bind_host = host or "127.0.0.1"
    if bind_host not in LOOPBACK_HOSTS and not settings.api_tokens:
        log.warning("binding %s without RESTOCK_API_TOKENS: anyone who can reach this "
                    "address can upload data and retrain", bind_host)
    settings = with_bind_host_allowed(settings, bind_host)
    address = f"[{bind_host}]:{port}" if ":" in bind_host else f"{bind_host}:{port}"
    click.echo(f"restock serving on http://{address}/ (page: /ui, API: /openapi.json)")
    RestockServer(settings, {
        "bind": address, "workers": workers, "threads": threads,
        "worker_class": RestockWorker, "timeout": 60, "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 5,
        "accesslog": None, "errorlog": "-", "loglevel": "info",
        "proc_name": "restock", "forwarded_allow_ips": "127.0.0.1",
        "control_socket_disable": True,
    }, heartbeat).run()
