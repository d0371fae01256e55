"""Configuration, read once from environment variables.

Every setting has a working default so that ``xinfang up`` runs with nothing
configured (the embedded default: SQLite files in the data folder and an
in-process broker).  ``Settings.from_env()`` is the only place that reads the
environment; services receive a ``Settings`` object (or a mapping of
overrides, for tests) in ``create_app(config=None)``.

| variable | default | meaning |
|---|---|---|
| ``XINFANG_DATA_DIR`` | ``./var`` | data folder: SQLite files, clock state, exports |
| ``XINFANG_<SERVICE>_DATABASE_URL`` | ``sqlite:///<data>/<service>.db`` | one database per service (``postgresql+psycopg://…`` in production) |
| ``XINFANG_BROKER_URL`` | empty | ``redis://…`` selects the Redis broker; empty selects the in-process broker |
| ``XINFANG_SECRET_KEY`` | a development key | signs bearer tokens; must be set in production (``XINFANG_ENV=production`` refuses the default) |
| ``XINFANG_TOKEN_TTL_SECONDS`` | ``28800`` | lifetime of a login token |
| ``XINFANG_ENV`` | ``development`` | ``production`` forbids clock control and the default secret |
| ``XINFANG_CLOCK_CONTROL`` | ``0`` | ``1`` lets ``xinfang clock set/advance`` move the clock of every service (tests and simulation only) |
| ``XINFANG_TIMEZONE`` | ``Asia/Shanghai`` | local time for deadlines and display; storage is UTC |
| ``XINFANG_CALENDAR_FILE`` | empty | YAML override table for years ``chinesecalendar`` does not know |
| ``XINFANG_CALENDAR_UNKNOWN_YEAR`` | ``weekends`` | for a year neither the package nor the override table knows: ``weekends`` counts Mon–Fri and logs a WARNING (and the case says its deadline is provisional); ``error`` refuses |
| ``XINFANG_DIRECTORY_FILE`` | the shipped demo directory | units and routing for assign_svc |
| ``XINFANG_OUTBOX_POLL_SECONDS`` | ``0.5`` | how often a relay looks for unpublished outbox rows when not woken |
| ``XINFANG_WEB_RELAY`` | ``1`` | distributed mode: ``0`` leaves publishing the outbox to the service's ``xinfang worker`` processes (their relay polls every ``XINFANG_OUTBOX_POLL_SECONDS`` and publishes in batches) instead of a relay in every web worker woken after each commit; needs a running worker of that service, else accepted messages wait in the outbox |
| ``XINFANG_SWEEP_INTERVAL_SECONDS`` | ``60`` | the scheduler's period for the periodic sweeps |
| ``XINFANG_WORKER_THREADS`` | ``4`` | Dramatiq worker threads per worker process (embedded: per process) |
| ``XINFANG_RETENTION_DAYS`` | ``30`` | published outbox rows and inbox ids older than this are pruned |
| ``XINFANG_LOG_LEVEL`` | ``INFO`` | log level |
| ``XINFANG_PII_KEY`` | derived from the secret key | Fernet key(s), comma-separated (newest first), encrypting identity numbers and phones at rest |
| ``XINFANG_PII_INDEX_KEY`` | derived from the secret key | HMAC key of the blind indexes used to match identity numbers and phones |
| ``XINFANG_PII_FULL_ROLES`` | ``admin,registrar`` | roles that may ask for unmasked personal data (every such read is audited) |
| ``XINFANG_REPEAT_WINDOW_DAYS`` | ``365`` | how far back registration looks for the same petitioner's same matter (重复信访) |
| ``XINFANG_GROUP_VISIT_THRESHOLD`` | ``5`` | people concerned from which a visit is a group visit (集体访) |
| ``XINFANG_RATE_LIMIT`` | ``600/minute`` | default request limit per API key (429 with Retry-After beyond it) |
| ``XINFANG_REDIS_NAMESPACE`` | ``xinfang`` | prefix of every Redis key (queues, clock); one per deployment sharing a Redis |
| ``XINFANG_REDIS_HEARTBEAT_MS`` | ``60000`` | after this long a dead Redis worker's messages are requeued |
| ``XINFANG_REDIS_MAINTENANCE_CHANCE`` | ``1000`` | per million broker commands, how often the Redis broker looks for dead workers' messages |
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

#: The four services, by short name.  The short name is the URL prefix, the
#: queue name and the database name.
SERVICES: tuple[str, ...] = ("intake", "assign", "supervise", "notify")

#: The development secret; refused when ``XINFANG_ENV=production``.
DEV_SECRET = "xinfang-development-secret-change-me"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """All tunables of one process. Immutable; build with ``from_env`` or ``replace``."""

    data_dir: Path = Path("./var")
    database_urls: Mapping[str, str] = field(default_factory=dict)
    broker_url: str = ""
    secret_key: str = DEV_SECRET
    token_ttl_seconds: int = 8 * 3600
    env: str = "development"
    clock_control: bool = False
    timezone: str = "Asia/Shanghai"
    calendar_file: str = ""
    calendar_unknown_year: str = "weekends"
    directory_file: str = ""
    outbox_poll_seconds: float = 0.5
    web_relay: bool = True
    sweep_interval_seconds: float = 60.0
    worker_threads: int = 4
    retention_days: int = 30
    log_level: str = "INFO"
    pii_key: str = ""
    pii_index_key: str = ""
    pii_full_roles: tuple[str, ...] = ("admin", "registrar")
    repeat_window_days: int = 365
    group_visit_threshold: int = 5
    rate_limit: str = "600/minute"
    redis_namespace: str = "xinfang"
    redis_heartbeat_ms: int = 60_000
    redis_maintenance_chance: int = 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("XINFANG_DATA_DIR", "./var"))
        urls = {
            svc: env.get(f"XINFANG_{svc.upper()}_DATABASE_URL", "")
            for svc in SERVICES
        }
        settings = cls(
            data_dir=data_dir,
            database_urls=urls,
            broker_url=env.get("XINFANG_BROKER_URL", ""),
            secret_key=env.get("XINFANG_SECRET_KEY", DEV_SECRET),
            token_ttl_seconds=int(env.get("XINFANG_TOKEN_TTL_SECONDS", 8 * 3600)),
            env=env.get("XINFANG_ENV", "development"),
            clock_control=_flag(env.get("XINFANG_CLOCK_CONTROL")),
            timezone=env.get("XINFANG_TIMEZONE", "Asia/Shanghai"),
            calendar_file=env.get("XINFANG_CALENDAR_FILE", ""),
            calendar_unknown_year=env.get("XINFANG_CALENDAR_UNKNOWN_YEAR", "weekends"),
            directory_file=env.get("XINFANG_DIRECTORY_FILE", ""),
            outbox_poll_seconds=float(env.get("XINFANG_OUTBOX_POLL_SECONDS", 0.5)),
            web_relay=_flag(env.get("XINFANG_WEB_RELAY", "1")),
            sweep_interval_seconds=float(env.get("XINFANG_SWEEP_INTERVAL_SECONDS", 60)),
            worker_threads=int(env.get("XINFANG_WORKER_THREADS", 4)),
            retention_days=int(env.get("XINFANG_RETENTION_DAYS", 30)),
            log_level=env.get("XINFANG_LOG_LEVEL", "INFO"),
            pii_key=env.get("XINFANG_PII_KEY", ""),
            pii_index_key=env.get("XINFANG_PII_INDEX_KEY", ""),
            pii_full_roles=tuple(r.strip() for r in env.get("XINFANG_PII_FULL_ROLES", "admin,registrar").split(",")
                                 if r.strip()),
            repeat_window_days=int(env.get("XINFANG_REPEAT_WINDOW_DAYS", 365)),
            group_visit_threshold=int(env.get("XINFANG_GROUP_VISIT_THRESHOLD", 5)),
            rate_limit=env.get("XINFANG_RATE_LIMIT", "600/minute"),
            redis_namespace=env.get("XINFANG_REDIS_NAMESPACE", "xinfang"),
            redis_heartbeat_ms=int(env.get("XINFANG_REDIS_HEARTBEAT_MS", 60_000)),
            redis_maintenance_chance=int(env.get("XINFANG_REDIS_MAINTENANCE_CHANCE", 1000)),
        )
        if overrides:
            settings = settings.replace(**overrides)
        settings.check()
        return settings

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    def check(self) -> None:
        """Refuse configurations that must never reach production, and values that make no sense."""
        if self.calendar_unknown_year not in ("weekends", "error"):
            raise ValueError("XINFANG_CALENDAR_UNKNOWN_YEAR must be 'weekends' or 'error'")
        if self.env == "production":
            if self.clock_control:
                raise ValueError("XINFANG_CLOCK_CONTROL must not be enabled when XINFANG_ENV=production")
            if self.secret_key == DEV_SECRET:
                raise ValueError("XINFANG_SECRET_KEY must be set when XINFANG_ENV=production")

    def database_url(self, service: str) -> str:
        """The service's own database; SQLite in the data folder unless configured."""
        url = self.database_urls.get(service) or ""
        if url:
            return url
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    @property
    def distributed(self) -> bool:
        """True when a real broker is configured (separate web/worker processes)."""
        return bool(self.broker_url)


def settings_from(config: "Settings | Mapping[str, Any] | None") -> Settings:
    """Accept what ``create_app(config=...)`` accepts: nothing, Settings, or overrides."""
    if config is None:
        return Settings.from_env()
    if isinstance(config, Settings):
        return config
    return Settings.from_env(**dict(config))
