"""Settings: one typed object read from ``RESTOCK_*`` environment variables.

Defaults first, then the environment, then explicit overrides (a test's or a CLI flag's),
the same layering as Flask's app factory. Nothing reads the environment after this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal, Mapping

from restock.errors import InvalidParameterError

QueueKind = Literal["thread", "celery"]
WeightsMode = Literal["auto", "seed"]
RefitMode = Literal["used", "all"]


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Everything configurable; the env var is ``RESTOCK_`` + the upper-cased field name."""

    home: Path = Path("restock-data")
    database_url: str = ""  # empty: SQLite file $home/restock.db
    queue: QueueKind = "thread"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # every Redis key restock and its Celery queues use starts with this, so several
    # deployments (or test runs) can share one Redis
    redis_prefix: str = "restock"
    # seconds the cluster-wide retrain lock outlives a silent holder (renewed at a third)
    job_lock_ttl: float = 30.0
    # training
    weights: WeightsMode = "auto"
    # after the selection, refit only the members the chosen rules use, or all of them on
    # every series (every member's own forecast in every answer; slower)
    refit_members: RefitMode = "used"
    lstm_epochs: int = 50
    interval_level: float = 0.95
    # days of forecast precomputed at retrain; 0: by frequency (restock.calendar: 365 days,
    # 104 weeks, 24 months)
    max_horizon_days: int = 0
    backtest_windows: int = 3
    keep_versions: int = 5
    holidays_country: str = ""
    prophet_workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    seed: int = 42
    # upload validation: dates after today + max_future_days (UTC) or before min_date, and
    # numbers above max_quantity (quantity, price, on_hand), are row errors
    max_future_days: int = 7
    min_date: str = "1900-01-01"
    max_quantity: float = 1e9
    # web
    api_tokens: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    max_upload_mb: float = 100.0
    # a `limits` storage URI (redis://..., memory:// per process); empty: the SQLite file
    # $home/ratelimits.db, which every worker of one server shares
    ratelimit_storage_uri: str = ""
    ratelimit_default: str = "600 per minute"
    ratelimit_retrain: str = "10 per minute"
    # host names the server answers to ('*': any; '.example.com': it and its subdomains);
    # empty: localhost, 127.0.0.1, ::1 and the host `restock serve --host` binds to
    allowed_hosts: tuple[str, ...] = ()
    # open progress streams per server process (each gunicorn worker counts its own): in
    # total (503 beyond), and per client address (429 beyond)
    max_streams: int = 2000
    max_streams_per_client: int = 100

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL actually used."""
        return self.database_url or f"sqlite:///{(self.home / 'restock.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def plots_dir(self) -> Path:
        return self.home / "plots"

    @classmethod
    def from_env(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> "Settings":
        """Build settings from defaults, ``RESTOCK_*`` variables and ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get("RESTOCK_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = raw
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls()._with(values)

    def with_overrides(self, **overrides: Any) -> "Settings":
        return self._with({k: v for k, v in overrides.items() if v is not None})

    def _with(self, values: Mapping[str, Any]) -> "Settings":
        known = {f.name: f for f in fields(self)}
        converted: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                raise InvalidParameterError(f"unknown setting {name!r}")
            converted[name] = _convert(name, getattr(self, name), value)
        if converted.get("holidays_country"):  # a typo stops here, not minutes into a retrain
            from restock.calendar import holidays_country

            converted["holidays_country"] = holidays_country(converted["holidays_country"])
        settings = replace(self, **converted)
        settings._check()
        return settings

    def _check(self) -> None:
        if self.queue not in ("thread", "celery"):
            raise InvalidParameterError("RESTOCK_QUEUE must be 'thread' or 'celery'")
        if self.weights not in ("auto", "seed"):
            raise InvalidParameterError("RESTOCK_WEIGHTS must be 'auto' or 'seed'")
        if self.refit_members not in ("used", "all"):
            raise InvalidParameterError("RESTOCK_REFIT_MEMBERS must be 'used' or 'all'")
        if not 0.5 < self.interval_level < 1:
            raise InvalidParameterError("RESTOCK_INTERVAL_LEVEL must be between 0.5 and 1")
        for name in ("lstm_epochs", "keep_versions", "prophet_workers", "max_streams",
                     "max_streams_per_client"):
            if getattr(self, name) < 1:
                raise InvalidParameterError(f"RESTOCK_{name.upper()} must be at least 1")
        if self.max_horizon_days < 0:
            raise InvalidParameterError(
                "RESTOCK_MAX_HORIZON_DAYS must be 0 (by frequency) or a number of days")
        if self.job_lock_ttl < 1:
            raise InvalidParameterError("RESTOCK_JOB_LOCK_TTL must be at least 1 second")
        if self.backtest_windows < 1:
            raise InvalidParameterError("RESTOCK_BACKTEST_WINDOWS must be at least 1")
        if self.max_future_days < 0:
            raise InvalidParameterError("RESTOCK_MAX_FUTURE_DAYS must be at least 0")
        try:
            date.fromisoformat(self.min_date)
        except ValueError:
            raise InvalidParameterError(
                f"RESTOCK_MIN_DATE must be a date as YYYY-MM-DD, not {self.min_date!r}") from None
        if not 0 < self.max_quantity < float("inf"):  # also refuses NaN
            raise InvalidParameterError("RESTOCK_MAX_QUANTITY must be a positive finite number")


def _convert(name: str, current: Any, value: Any) -> Any:
    """Coerce an env string (or an override) to the type of the field's default."""
    try:
        if isinstance(current, Path):
            return Path(value)
        if isinstance(current, tuple):
            return _split(value) if isinstance(value, str) else tuple(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"RESTOCK_{name.upper()}: cannot read {value!r}") from exc
