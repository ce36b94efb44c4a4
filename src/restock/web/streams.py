"""This process's progress streams: their limits, their broadcaster, and the WSGI layer
that hands a stream's connection to it.

The stream views (``GET /jobs/<id>/events``, ``POST /retrain`` with ``Accept:
text/event-stream``) run through Flask as usual, so authentication, the 404, rate limits,
CORS and the security headers all apply, and they return an ordinary streamed response.
They also leave a ``PendingStream`` in the WSGI environ. ``DetachStreams``, the outermost
WSGI layer, then looks at what Flask answered: a 200 for a pending stream on a connection
it can take (``restock.web.detach``) goes to the broadcaster with exactly the head Flask
would have sent, and gunicorn's thread is free at once. Anything else (an error answer,
the test client, TLS, HTTP/2) goes out as Flask built it, still counted against the limits
until its body ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.wsgi import ClosingIterator

from restock.jobs.base import JobQueue
from restock.web.broadcast import Broadcaster, Handoff, chunk
from restock.web.detach import response_head, take_client_socket
from restock.web.errors import error_body
from restock.web.sse import PENDING, RETRY_MS, PendingStream
from restock.web.streamslots import StreamLimitError, StreamSlots

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class StreamHub:
    """The slots of this process's streams and its broadcaster (started on first use, so
    processes that never take a connection, tests and Celery workers, run no thread)."""

    def __init__(self, queue: JobQueue, heartbeat: float, *, max_streams: int,
                 max_streams_per_client: int) -> None:
        self.queue = queue
        self.heartbeat = heartbeat
        self.slots = StreamSlots(max_streams, max_streams_per_client)
        self._broadcaster: Broadcaster | None = None
        self._lock = threading.Lock()

    @property
    def broadcaster(self) -> Broadcaster:
        """The running broadcaster; a new one if the last stopped on an unexpected error
        (its streams were closed; their clients resume with Last-Event-ID)."""
        with self._lock:
            if self._broadcaster is None or not self._broadcaster.alive:
                self._broadcaster = Broadcaster(self.queue, self.heartbeat)
            return self._broadcaster

    def close(self) -> None:
        with self._lock:
            if self._broadcaster is not None:
                self._broadcaster.close()
                self._broadcaster = None


class DetachStreams:
    """WSGI middleware: give a pending stream's connection to the broadcaster."""

    def __init__(self, app: WSGIApp, hub: StreamHub) -> None:
        self.app = app
        self.hub = hub

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        answered: list[Any] = []

        def recording(status: str, headers: list[tuple[str, str]], exc_info: Any = None
                      ) -> Any:
            answered[:] = [status, headers]
            return start_response(status, headers, exc_info)  # gunicorn writes later

        body = self.app(environ, recording)
        pending: PendingStream | None = environ.get(PENDING)
        if pending is None:
            return body
        sock = None
        if answered and answered[0].startswith("200 "):
            sock = take_client_socket(environ)
        if sock is None:  # streamed by this thread, as any response
            return ClosingIterator(body, pending.slot.release)
        if hasattr(body, "close"):
            body.close()  # the unstarted generator: nothing of it has run
        first = response_head(answered[0], answered[1]) + chunk(f"retry: {RETRY_MS}\n\n")
        self.hub.broadcaster.add(Handoff(sock, first, pending.job_id, pending.after_id,
                                         pending.finished, pending.slot))
        return []


def _stream_limit(error: StreamLimitError) -> Response:
    response = jsonify(error_body(error.code, error.message, error.details))
    response.status_code = error.status
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def install_streams(app: Flask, hub: StreamHub) -> None:
    """Put ``DetachStreams`` outermost and answer the limits with 429/503 JSON."""
    app.wsgi_app = DetachStreams(app.wsgi_app, hub)  # type: ignore[method-assign]
    app.register_error_handler(StreamLimitError, _stream_limit)
