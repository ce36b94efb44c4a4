"""The application factory: settings in, a fully wired Flask app out.

``create_app`` builds the store, registry, forecast service and job queue once and installs
them as the app's ``Services`` (``web/services.py``, which the blueprints import instead
of this module), so tests can build as many independent apps as they like and nothing
happens at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask

from restock.accuracy import AccuracyTracker
from restock.config import Settings
from restock.data.store import SalesStore
from restock.jobs import JobQueue, JobRecords, Task, ThreadJobQueue
from restock.jobs.tasks import make_retrain_task
from restock.registry import ModelRegistry
from restock.serving import ForecastService
from restock.web import (accuracy, data, forecast, health, items, jobs, models, plan,
                         retrain, simulate, ui)
from restock.web.errors import register_error_handlers
from restock.web.jsonbody import FiniteJSONProvider
from restock.web.security import (install_auth, install_cors, install_host_check,
                                  install_limiter, install_origin_check, install_request_ids,
                                  install_security_headers)
from restock.web.services import Services
from restock.web.streams import StreamHub, install_streams

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


def build_queue(settings: Settings, store: SalesStore, task: Task,
                started_at: datetime | None) -> JobQueue:
    """The embedded thread queue, or with ``RESTOCK_QUEUE=celery`` the Celery one (jobs run
    on ``restock worker`` processes; celery and redis are imported only then)."""
    if settings.queue == "celery":
        from restock.jobs.celery import CeleryJobQueue

        return CeleryJobQueue(settings, store.engine, task)
    return ThreadJobQueue(JobRecords(store.engine), task, lock_path=settings.home / "jobs.lock",
                          started_at=started_at).start()


def create_app(settings: Settings | Mapping[str, Any] | None = None, *,
               task: Task | None = None, heartbeat: float = 15.0,
               started_at: datetime | None = None) -> Flask:
    """Build the app.

    ``settings`` is a ``Settings`` or a mapping of overrides applied on top of the
    environment. ``task`` replaces the retrain pipeline as the job body (tests use a fast
    one); ``heartbeat`` is the SSE keep-alive interval in seconds; ``started_at`` is when
    the server (the gunicorn master) started, so queued jobs older than that are swept as
    interrupted.
    """
    if not isinstance(settings, Settings):
        settings = Settings.from_env(settings)
    app = Flask("restock.web", static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config.update(
        MAX_CONTENT_LENGTH=int(settings.max_upload_mb * 1024 * 1024),
        MAX_FORM_MEMORY_SIZE=int(settings.max_upload_mb * 1024 * 1024),
        JSON_SORT_KEYS=False,
    )
    app.json = FiniteJSONProvider(app)
    app.json.sort_keys = False
    app.url_map.merge_slashes = False  # /jobs//events is a 404, not a redirect to /jobs/events

    store = SalesStore.from_settings(settings)
    registry = ModelRegistry(settings.models_dir, keep=settings.keep_versions)
    AccuracyTracker.attach(store, registry)  # score served forecasts as actuals arrive
    forecasts = ForecastService(settings, store, registry)
    queue = build_queue(settings, store, task or make_retrain_task(settings, store, registry),
                        started_at)
    streams = StreamHub(queue, heartbeat, max_streams=settings.max_streams,
                        max_streams_per_client=settings.max_streams_per_client)
    Services(settings, store, registry, forecasts, queue, heartbeat, streams).install(app)

    install_request_ids(app)
    install_host_check(app, settings.allowed_hosts)
    install_origin_check(app, settings.cors_origins)
    limiter = install_limiter(app, settings)
    install_auth(app, settings.api_tokens)
    install_cors(app, settings.cors_origins)
    install_security_headers(app)
    register_error_handlers(app)
    install_streams(app, streams)
    for blueprint in (health.bp, retrain.bp, jobs.bp, forecast.bp, plan.bp, simulate.bp,
                      accuracy.bp, items.bp,
                      data.bp, models.bp, ui.bp):
        app.register_blueprint(blueprint)
    for upload in (retrain.bp, items.bp):  # uploads are the heavy requests
        limiter.limit(settings.ratelimit_retrain, methods=["POST"])(upload)
    limiter.exempt(health.healthz)
    return app
