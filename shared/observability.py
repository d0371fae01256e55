"""Observability: correlation ids on every log line and message, Prometheus metrics.

A correlation id is taken from the first request's ``X-Correlation-ID`` header
(or made up there), kept in a context variable, written into every outbox
message the request causes, restored by the actor that consumes the message,
and printed on every log line (``[cid=…]``).

Metrics live in one registry per service (the embedded default hosts all four
services in one process, each exposing its own ``/<service>/metrics``).
"""
from __future__ import annotations

import contextvars
import logging
import threading
import uuid
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

#: Header carrying the correlation id in and out of every service.
CORRELATION_HEADER = "X-Correlation-ID"

_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")


def get_correlation_id() -> str:
    return _correlation_id.get()


def set_correlation_id(value: str | None) -> contextvars.Token:
    return _correlation_id.set(value or uuid.uuid4().hex)


def reset_correlation_id(token: contextvars.Token) -> None:
    _correlation_id.reset(token)


class CorrelationFilter(logging.Filter):
    """Adds ``record.correlation_id`` so formats can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = _correlation_id.get() or "-"
        return True


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [cid=%(correlation_id)s] %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Install the correlation-aware format on the root logger (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in root.handlers:
        if any(isinstance(f, CorrelationFilter) for f in handler.filters):
            return
    handler = logging.StreamHandler()
    handler.addFilter(CorrelationFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)


class ServiceMetrics:
    """The Prometheus metrics of one service."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("xinfang_http_requests", "HTTP requests handled",
                                ["service", "method", "endpoint", "status"], registry=self.registry)
        self.request_seconds = Histogram("xinfang_http_request_duration_seconds", "HTTP request latency",
                                         ["service", "endpoint"], registry=self.registry)
        self.messages = Counter("xinfang_actor_messages", "Actor messages processed",
                                ["service", "actor", "outcome"], registry=self.registry)
        self.message_seconds = Histogram("xinfang_actor_message_duration_seconds", "Actor message latency",
                                         ["service", "actor"], registry=self.registry)
        self.sweep_seconds = Histogram("xinfang_sweep_duration_seconds", "Periodic sweep duration",
                                       ["service", "job"], registry=self.registry)
        self._backlog: Callable[[], int] | None = None
        self.registry.register(_BacklogCollector(self))

    def watch_outbox(self, backlog: Callable[[], int]) -> None:
        """Report the outbox backlog (unpublished rows), computed at scrape time."""
        self._backlog = backlog


class _BacklogCollector:
    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        family = GaugeMetricFamily("xinfang_outbox_backlog", "Outbox rows not yet published", labels=["service"])
        if self.metrics._backlog is not None:
            try:
                family.add_metric([self.metrics.service], self.metrics._backlog())
            except Exception:  # a scrape must not fail because the database is down
                logging.getLogger(__name__).warning("outbox backlog unavailable for %s", self.metrics.service)
        yield family


def enable_multiprocess(directory: str) -> None:
    """Share metrics across the processes of a pre-forking web server (gunicorn).

    Must run in the parent before any metric exists; each worker writes its
    samples to files in ``directory`` and any worker's /metrics adds them up.
    """
    import os

    from prometheus_client import values

    os.makedirs(directory, exist_ok=True)
    for leftover in os.listdir(directory):  # samples of a previous run would be added in
        os.remove(os.path.join(directory, leftover))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.get_value_class()


def exposition_registry(metrics: ServiceMetrics) -> CollectorRegistry:
    """The registry a /metrics scrape should read (all processes' samples in multiprocess mode)."""
    import os

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return metrics.registry
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_BacklogCollector(metrics))
    return registry


_metrics: dict[str, ServiceMetrics] = {}
_metrics_lock = threading.Lock()


def metrics_for(service: str) -> ServiceMetrics:
    """The process's metrics object for ``service`` (created on first use)."""
    with _metrics_lock:
        if service not in _metrics:
            _metrics[service] = ServiceMetrics(service)
        return _metrics[service]
