"""The system clock (时钟): one source of "now" for every service.

Production reads the system time.  When clock control is explicitly enabled
(``XINFANG_CLOCK_CONTROL=1``, refused in production) the clock can be set or
advanced for every service at once: the state (an offset from real time, or a
frozen instant) lives where every process can see it — a small JSON file in the
data folder for the embedded default, a Redis key when a broker URL is set.
Advancing the clock is how tests and the simulator play a month of deadlines in
seconds.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

from shared.config import Settings

log = logging.getLogger(__name__)

#: Redis key (after the namespace) holding the shared clock state in the distributed mode.
REDIS_KEY = "clock"
#: How long a process trusts its cached copy of the shared state (seconds).
CACHE_SECONDS = 0.05


class ClockControlDisabled(RuntimeError):
    """Raised when set/advance is attempted without XINFANG_CLOCK_CONTROL=1."""


@dataclass(frozen=True)
class ClockState:
    offset_seconds: float = 0.0
    frozen_at: datetime | None = None

    def to_json(self) -> str:
        return json.dumps({
            "offset_seconds": self.offset_seconds,
            "frozen_at": self.frozen_at.isoformat() if self.frozen_at else None,
        })

    @classmethod
    def from_json(cls, text: str | bytes | None) -> "ClockState":
        if not text:
            return cls()
        raw = json.loads(text)
        frozen = raw.get("frozen_at")
        return cls(float(raw.get("offset_seconds", 0.0)),
                   datetime.fromisoformat(frozen) if frozen else None)


class StateStore(Protocol):
    def load(self) -> ClockState: ...
    def save(self, state: ClockState) -> None: ...


class MemoryStore:
    """Clock state in this process's memory only: a process that must not share its clock (a bulk-fill worker)."""

    def __init__(self) -> None:
        self.state = ClockState()

    def load(self) -> ClockState:
        return self.state

    def save(self, state: ClockState) -> None:
        self.state = state


class FileStore:
    """Clock state in ``<data_dir>/clock.json`` (embedded default)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> ClockState:
        try:
            return ClockState.from_json(self.path.read_text())
        except FileNotFoundError:
            return ClockState()

    def save(self, state: ClockState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        os.replace(tmp, self.path)


class RedisStore:
    """Clock state in one Redis key (distributed mode)."""

    def __init__(self, url: str, namespace: str = "xinfang") -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.key = f"{namespace}:{REDIS_KEY}"

    def load(self) -> ClockState:
        return ClockState.from_json(self.client.get(self.key))

    def save(self, state: ClockState) -> None:
        self.client.set(self.key, state.to_json())


class Clock:
    """``now()`` in aware UTC.  Controlled only when ``controllable`` is True."""

    def __init__(self, *, store: StateStore | None = None, controllable: bool = False) -> None:
        self.store = store
        self.controllable = controllable and store is not None
        self._cached: ClockState = ClockState()
        self._cached_at = 0.0
        self._lock = threading.Lock()

    def _state(self) -> ClockState:
        if not self.controllable:
            return ClockState()
        mono = time.monotonic()
        if mono - self._cached_at > CACHE_SECONDS:
            with self._lock:
                self._cached = self.store.load()  # type: ignore[union-attr]
                self._cached_at = mono
        return self._cached

    def now(self) -> datetime:
        state = self._state()
        if state.frozen_at is not None:
            return state.frozen_at
        real = datetime.now(timezone.utc)
        return real + timedelta(seconds=state.offset_seconds) if state.offset_seconds else real

    def _require_control(self) -> None:
        if not self.controllable:
            raise ClockControlDisabled("clock control is disabled; set XINFANG_CLOCK_CONTROL=1 (never in production)")

    def set(self, instant: datetime, *, frozen: bool = False) -> datetime:
        """Move every service's clock to ``instant`` (aware)."""
        self._require_control()
        if instant.tzinfo is None:
            raise ValueError("clock instant must be timezone-aware")
        instant = instant.astimezone(timezone.utc)
        if frozen:
            state = ClockState(0.0, instant)
        else:
            state = ClockState((instant - datetime.now(timezone.utc)).total_seconds(), None)
        self._save(state)
        return self.now()

    def advance(self, delta: timedelta) -> datetime:
        """Move every service's clock forward (or back) by ``delta``."""
        self._require_control()
        state = self.store.load()  # type: ignore[union-attr]
        if state.frozen_at is not None:
            state = ClockState(0.0, state.frozen_at + delta)
        else:
            state = ClockState(state.offset_seconds + delta.total_seconds(), None)
        self._save(state)
        return self.now()

    def reset(self) -> None:
        self._require_control()
        self._save(ClockState())

    def _save(self, state: ClockState) -> None:
        self.store.save(state)  # type: ignore[union-attr]
        with self._lock:
            self._cached, self._cached_at = state, time.monotonic()
        log.warning("clock moved: offset=%ss frozen_at=%s", state.offset_seconds, state.frozen_at)


def clock_for(settings: Settings) -> Clock:
    """The clock every service of this process shares."""
    if not settings.clock_control:
        return Clock()
    store: StateStore = (RedisStore(settings.broker_url, settings.redis_namespace) if settings.broker_url
                         else FileStore(settings.data_dir / "clock.json"))
    return Clock(store=store, controllable=True)


_current = Clock()


def configure(settings: Settings) -> Clock:
    """Install the process-wide clock for ``settings`` (called by create_app and the CLI)."""
    global _current
    _current = clock_for(settings)
    return _current


def install(clock: Clock) -> Clock:
    """Install ``clock`` as the process-wide clock (e.g. a forked worker's own, on a ``MemoryStore``)."""
    global _current
    _current = clock
    return _current


def current() -> Clock:
    return _current


def now() -> datetime:
    """The current instant, aware UTC."""
    return _current.now()
