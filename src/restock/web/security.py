"""Everything between the socket and a view: request ids, rate limits, auth, CORS, headers.

Order matters and is fixed here: the request id comes first (so every later log line and
error names it), then the host and origin checks (cheap refusals of what a browser was
tricked into sending), then the rate limit (so token guessing is throttled too), then the
bearer-token check.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from urllib.parse import urlsplit

from flask import Flask, Response, g, has_request_context, request
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import Unauthorized

from restock.config import Settings
from restock.web.errors import CrossOriginError, DisallowedHostError
from restock.web.ratelimits import storage_uri

access_log = logging.getLogger("restock.web.access")

#: Endpoints anyone may call: liveness for probes, and the page that asks for the token.
OPEN_ENDPOINTS = frozenset({"health.health", "health.healthz", "ui.page", "static"})
#: what the default RESTOCK_ALLOWED_HOSTS always covers (``restock serve`` adds --host)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class RequestIdFilter(logging.Filter):
    """Stamp every log record with the current request's id ('-' outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(g, "request_id", "-") if has_request_context() else "-"
        return True


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def token_is_valid(token: str | None, tokens: tuple[str, ...]) -> bool:
    """Compare against every configured token in constant time (no early exit)."""
    if not token:
        return False
    given = token.encode()
    matched = False
    for candidate in tokens:
        matched |= hmac.compare_digest(given, candidate.encode())
    return matched


def install_request_ids(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        access_log.info("%s %s %s %.1fms rid=%s", request.method, request.path,
                        response.status_code, elapsed, response.headers["X-Request-ID"])
        return response


def host_name(host: str) -> str:
    """The lower-cased name of a ``Host`` value or setting: ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host  # a name, or a bare IPv6 address in a setting


def host_is_allowed(name: str, allowed: frozenset[str]) -> bool:
    """Exact names, or ``.example.com`` for it and every subdomain (Django's rule).

    Not werkzeug's ``TRUSTED_HOSTS``: its matching (3.1) is case-sensitive and cannot
    express an IPv6 address such as ``::1``.
    """
    return bool(name) and (name in allowed or any(
        entry.startswith(".") and (name == entry[1:] or name.endswith(entry))
        for entry in allowed))


def install_host_check(app: Flask, hosts: tuple[str, ...]) -> None:
    """Answer only to allowed host names (400 otherwise), so a page on a DNS-rebound name
    cannot read this server; ``*`` turns the check off. Liveness answers any name (probes
    address a container by its IP)."""
    allowed = frozenset(host_name(h) for h in (hosts or LOOPBACK_HOSTS))
    if "*" in allowed:
        return

    @app.before_request
    def _check_host() -> None:
        name = host_name(request.host)
        if request.endpoint != "health.healthz" and not host_is_allowed(name, allowed):
            raise DisallowedHostError(
                f"this server does not answer to the host {name[:100]!r}; add it to "
                "RESTOCK_ALLOWED_HOSTS", {"host": name[:100]})


def install_origin_check(app: Flask, cors_origins: tuple[str, ...]) -> None:
    """Refuse POST/PUT/PATCH/DELETE sent by a web page of a foreign origin (CSRF): with no
    token any page open in the user's browser could otherwise retrain or roll back.

    Allowed: no ``Origin`` (curl, scripts, the CLI), this server's own origin, and the
    ``RESTOCK_CORS_ORIGINS`` allow-list. Browsers send ``Origin`` on every cross-origin
    request and every POST; ``Sec-Fetch-Site`` catches the rest. ``Referer`` is not used:
    it is often stripped (this server's own pages send none, ``Referrer-Policy``).
    ``POST /forecast`` changes nothing but may render a file, and one rule is easier to
    trust than a list of exceptions, so it is refused too.
    """
    listed = frozenset(origin.rstrip("/").lower() for origin in cors_origins)

    @app.before_request
    def _check_origin() -> None:
        if request.method not in UNSAFE_METHODS:
            return
        origin = request.headers.get("Origin")
        if origin is None:
            site = request.headers.get("Sec-Fetch-Site", "")
            if site in ("cross-site", "same-site"):
                raise CrossOriginError(
                    f"a {site} request may not change anything here (no Origin given)",
                    {"sec_fetch_site": site})
            return
        origin = origin.strip().rstrip("/").lower()
        if origin in listed or _netloc(origin) == request.host.lower():
            return
        raise CrossOriginError(
            f"requests from the web origin {origin[:200]!r} may not change anything here; "
            "add it to RESTOCK_CORS_ORIGINS to allow it", {"origin": origin[:200]})


def _netloc(origin: str) -> str | None:
    try:
        return urlsplit(origin).netloc
    except ValueError:  # "http://[::1" and the like: nobody's origin
        return None


def install_limiter(app: Flask, settings: Settings) -> Limiter:
    """flask-limiter keyed by token (when one is valid) or client address, counting in
    ``RESTOCK_RATELIMIT_STORAGE_URI`` or else the SQLite file all workers share."""
    tokens = settings.api_tokens

    def rate_limit_key() -> str:
        token = presented_token()
        if tokens and token_is_valid(token, tokens):
            return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        return "addr:" + (get_remote_address() or "unknown")

    storage = settings.ratelimit_storage_uri or storage_uri(settings.home / "ratelimits.db")
    return Limiter(rate_limit_key, app=app, default_limits=[settings.ratelimit_default],
                   storage_uri=storage, headers_enabled=True, strategy="fixed-window")


def install_auth(app: Flask, tokens: tuple[str, ...]) -> None:
    """Require ``Authorization: Bearer <token>`` on everything but ``OPEN_ENDPOINTS``."""
    if not tokens:
        return

    @app.before_request
    def _require_token() -> None:
        if request.method == "OPTIONS" or request.endpoint in OPEN_ENDPOINTS:
            return  # CORS preflights never carry credentials
        if not token_is_valid(presented_token(), tokens):
            raise Unauthorized("a valid bearer token is required (Authorization: Bearer ...)")


def install_cors(app: Flask, origins: tuple[str, ...]) -> None:
    """Allow-listed origins only; tokens travel in a header, so credentials stay off."""
    if not origins:
        return
    CORS(app, origins=list(origins), supports_credentials=False, max_age=600,
         allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Request-ID"],
         expose_headers=["X-Request-ID", "Retry-After", "Location", "X-Job-ID"])


def install_security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if response.mimetype == "application/json":
            response.headers.setdefault("Cache-Control", "no-store")
        return response
