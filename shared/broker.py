"""Broker setup and the consumer pattern shared by every service's actors.

``make_broker(settings)`` returns a Redis broker when ``XINFANG_BROKER_URL`` is
set and an in-process broker otherwise (the embedded default).  No broker exists
at import time: actors are declared on a broker passed in by the caller
(``declare_consumer``), so a test, a worker process and the embedded
supervisor each build their own.

A consumer decodes the envelope, restores the correlation id, records the
message id in the service's inbox and runs its handler in the same
transaction: at-least-once delivery, exactly-once effects.
"""
from __future__ import annotations

import contextvars
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence
from uuid import uuid4

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, Retries
from marshmallow import ValidationError

from shared.config import Settings
from shared.contracts import Envelope, load_envelope
from shared.jsoncodec import MessageEncoder
from shared.observability import metrics_for, reset_correlation_id, set_correlation_id

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

#: Default actor limits: few quick retries (the outbox and sweeps are the long-term safety net).
DEFAULT_MAX_RETRIES = 5
#: Milliseconds an actor may run before it is interrupted.
DEFAULT_TIME_LIMIT_MS = 60_000
#: Upper bound of a retry's backoff, milliseconds.
MAX_BACKOFF_MS = 30_000

_message_id: contextvars.ContextVar[str] = contextvars.ContextVar("message_id", default="")


def current_message_id() -> str:
    return _message_id.get()


class ContextMiddleware(Middleware):
    """Restores the correlation id and exposes the message id while an actor runs."""

    def before_process_message(self, broker, message):
        message.options["_cid_token"] = set_correlation_id(message.options.get("correlation_id"))
        message.options["_mid_token"] = _message_id.set(message.message_id)
        message.options["_started"] = time.monotonic()

    def _reset(self, message):
        for key, reset in (("_cid_token", reset_correlation_id), ("_mid_token", _message_id.reset)):
            token = message.options.pop(key, None)
            if token is not None:
                try:
                    reset(token)
                except ValueError:  # token from another context (retried in a new thread)
                    pass

    def after_process_message(self, broker, message, *, result=None, exception=None):
        started = message.options.pop("_started", None)
        service = message.queue_name.split(".")[0]
        metrics = metrics_for(service)
        outcome = "ok" if exception is None else "error"
        metrics.messages.labels(service, message.actor_name, outcome).inc()
        if started is not None:
            metrics.message_seconds.labels(service, message.actor_name).observe(time.monotonic() - started)
        self._reset(message)

    def after_skip_message(self, broker, message):
        self._reset(message)


class OutboxConfirmMiddleware(Middleware):
    """Embedded default: tell the producing service's outbox that a message is finished.

    Placed before ``Retries`` so that its after-hook runs after Retries decided
    whether the message failed for good.
    """

    def __init__(self) -> None:
        self.confirmers: dict[str, Callable[..., None]] = {}

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is not None and not message.failed:
            return  # will be retried
        self._confirm(message, failed=exception is not None, error=repr(exception) if exception else None)

    def after_skip_message(self, broker, message):
        self._confirm(message, failed=True, error="skipped")

    def _confirm(self, message, *, failed: bool, error: str | None) -> None:
        confirmer = self.confirmers.get(message.options.get("producer", ""))
        if confirmer is None:
            return
        try:
            confirmer(message.message_id, failed=failed, error=error)
        except Exception:
            log.exception("could not confirm message %s", message.message_id)


#: Messages are JSON as with dramatiq's own encoder, through orjson (``shared.jsoncodec``): the relay writes
#: one per outbox row, every consumer reads one per delivery.
dramatiq.set_encoder(MessageEncoder())


def make_broker(settings: Settings) -> dramatiq.Broker:
    """Redis broker if a URL is configured, else the in-process broker."""
    if settings.broker_url:
        from dramatiq.brokers.redis import RedisBroker

        broker: dramatiq.Broker = RedisBroker(url=settings.broker_url, namespace=settings.redis_namespace,
                                              heartbeat_timeout=settings.redis_heartbeat_ms,
                                              maintenance_chance=settings.redis_maintenance_chance)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
        broker.add_middleware(OutboxConfirmMiddleware(), before=Retries)
    for mw in broker.middleware:
        if isinstance(mw, Retries):
            mw.max_backoff = MAX_BACKOFF_MS
            mw.min_backoff = 200
    broker.add_middleware(ContextMiddleware())
    return broker


def enqueue_many(broker: dramatiq.Broker, messages: Sequence[dramatiq.Message]) -> None:
    """``broker.enqueue`` for each message in order, with the Redis broker's dispatch script calls sent
    in ONE pipeline (one round trip for the batch instead of one per message; the outbox relay publishes
    hundreds at a time).  The Redis state is what ``RedisBroker.enqueue`` leaves: each message under a
    fresh ``redis_message_id`` in its queue, the enqueue middleware hooks run per message.  A failed
    pipeline raises; the caller's transaction then keeps the rows pending, and a message that did reach
    Redis goes out again under the same message id, which the consumer's inbox turns into a no-op.
    Other brokers (the in-process one) enqueue one by one."""
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.common import current_millis

    if not isinstance(broker, RedisBroker) or len(messages) < 2:
        for message in messages:
            broker.enqueue(message)
        return
    from redis.exceptions import NoScriptError

    # The arguments of RedisBroker's own ``do_enqueue`` (dramatiq 2.x ``_dispatch``): command, timestamp,
    # queue, broker id, heartbeat timeout, dead message TTL, maintenance flag, Lua unpack limit, then the
    # command's own (redis message id, encoded message).
    dispatch, unpack = broker.scripts["dispatch"], broker._max_unpack_size()
    # Only the middleware that act on an enqueue are called (dramatiq's ``emit_before`` calls every one).
    before = [m.before_enqueue for m in broker.middleware if _overrides(m, "before_enqueue")]
    after = [m.after_enqueue for m in broker.middleware if _overrides(m, "after_enqueue")]

    def send() -> list[dramatiq.Message]:
        sent = []
        with broker.client.pipeline(transaction=False) as pipe:
            for message in messages:
                # ``message.copy(options={"redis_message_id": …})`` built directly (copy's dataclasses.replace
                # costs more than the rest of a message's enqueue)
                message = dramatiq.Message(message.queue_name, message.actor_name, message.args, message.kwargs,
                                           {**message.options, "redis_message_id": str(uuid4())},
                                           message.message_id, message.message_timestamp)
                for hook in before:
                    hook(broker, message, None)
                # EVALSHA itself, not the Script object: a Script in a pipeline costs a SCRIPT EXISTS round
                # trip per execute (redis-py's ``load_scripts``), which was a third of a small batch's time.
                pipe.evalsha(dispatch.sha, 1, broker.namespace, "enqueue", current_millis(), message.queue_name,
                             broker.broker_id, broker.heartbeat_timeout, broker.dead_message_ttl,
                             broker._should_do_maintenance("enqueue"), unpack, message.options["redis_message_id"],
                             message.encode())
                sent.append(message)
            pipe.execute()
        return sent

    try:
        sent = send()
    except NoScriptError:  # a Redis restarted or flushed since the script was loaded: load it, send again
        broker.client.script_load(dispatch.script)
        sent = send()  # a message that got in before the error goes twice, under one id: the inbox drops it
    for message in sent:
        for hook in after:
            hook(broker, message, None)


def _overrides(middleware: Middleware, hook: str) -> bool:
    return getattr(type(middleware), hook) is not getattr(Middleware, hook)


def confirm_middleware(broker: dramatiq.Broker) -> OutboxConfirmMiddleware | None:
    for mw in broker.middleware:
        if isinstance(mw, OutboxConfirmMiddleware):
            return mw
    return None


Handler = Callable[["ServiceRuntime", Any, Envelope], None]


def declare_consumer(runtime: "ServiceRuntime", actor_name: str, handler: Handler, *,
                     max_retries: int = DEFAULT_MAX_RETRIES,
                     time_limit: int = DEFAULT_TIME_LIMIT_MS) -> dramatiq.Actor:
    """Declare an actor on the runtime's broker that runs ``handler(runtime, session, envelope)``
    at most once per message id, in one transaction with the inbox record."""

    def consume(body: dict) -> None:
        try:
            envelope = load_envelope(body)
        except ValidationError as exc:
            log.error("%s: rejecting malformed message %s: %s", actor_name, current_message_id(), exc.messages)
            raise
        with runtime.uow() as session:
            if not runtime.claim(session, current_message_id(), actor_name):
                log.info("%s: message %s already processed; skipped", actor_name, current_message_id())
                return
            handler(runtime, session, envelope)

    consume.__name__ = actor_name.replace(".", "_")
    return dramatiq.actor(consume, broker=runtime.broker, actor_name=actor_name, queue_name=runtime.name,
                          max_retries=max_retries, time_limit=time_limit, throws=(ValidationError,))


def declare_task(runtime: "ServiceRuntime", actor_name: str, fn: Callable[..., Any], *,
                 max_retries: int = 0, time_limit: int = 10 * 60_000) -> dramatiq.Actor:
    """Declare a plain task actor (e.g. a periodic sweep) on the service's queue."""
    return dramatiq.actor(fn, broker=runtime.broker, actor_name=actor_name, queue_name=runtime.name,
                          max_retries=max_retries, time_limit=time_limit)
