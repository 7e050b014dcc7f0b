"""The one broker: a RedisBroker built from settings, with middleware in a fixed order.

Importing ``actors`` runs this module first. It reads settings once, builds the broker
and makes it the global one, so every actor module can declare against it. Nothing here
needs a running Redis: the address comes from settings (``Settings.broker_url``) and the
client connects on first use.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)

from actors._waking_broker import WakingRedisBroker
from autolog.logs import build_log_config, secret_values
from autolog.progress import ProgressChannel
from autolog.settings import Settings
from middleware import (
    LifecycleLogs,
    Metrics,
    OutboxRelay,
    Progress,
    QueuePauses,
    RateLimits,
    Retries,
    Services,
    ShutdownRequeue,
    SourceChecks,
    StatusWrites,
    StepStops,
)


def build_broker(settings: Settings, *, url: str | None = None) -> RedisBroker:
    """Build the broker and its middleware from settings.

    The order matters: ``after_*`` hooks run in reverse, so ``StatusWrites``, added last,
    writes the status with what comes next (through the outbox) before ``Pipelines`` and
    ``Callbacks`` would, and
    ``Metrics`` and ``Progress``, just before it, report the write before the next step is
    enqueued. ``LifecycleLogs`` is first, so its log context spans every other hook.
    """
    services = Services(settings=settings)
    retries = Retries(max_retries=settings.max_retries, min_backoff=settings.min_backoff_ms,
                      max_backoff=settings.max_backoff_ms)
    broker = WakingRedisBroker(
        url=url or settings.broker_url,
        namespace=settings.namespace,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
        middleware=[
            LifecycleLogs(log_config=build_log_config(level=settings.log_level, fmt=settings.log_format,
                                                      secrets=secret_values(settings))),
            AgeLimit(),
            TimeLimit(),
            ShutdownNotifications(),
            Callbacks(),
            Pipelines(),
            retries,
            CurrentMessage(),
        ],
    )
    # No dramatiq Results middleware: a step's result is stored with its status write, in its
    # "succeeded" event (``StatusWrites``), where the jobs API reads it; a Redis write per
    # message cost about a third of the no-op drain rate.
    broker.add_middleware(services)
    # Right after Services: its after_worker_shutdown (what is still held once the threads had
    # their grace period) runs just before Services closes the store its requeued events go to.
    broker.add_middleware(ShutdownRequeue(services=services))
    # After Services: its relay thread, started at worker boot, reads the store Services opened.
    broker.add_middleware(OutboxRelay(services=services))
    # Before StatusWrites: a message that must wait for its rate limit is skipped before a
    # start is recorded, and its slot is released after the outcome is written.
    # First of ours: a paused queue's messages go back to Redis before anything counts them.
    broker.add_middleware(QueuePauses(client=broker.client, namespace=settings.namespace))
    # Before RateLimits: a source still being copied takes no slot while it waits.
    source_checks = SourceChecks(services=services)
    broker.add_middleware(source_checks)
    broker.add_middleware(RateLimits(client=broker.client, namespace=settings.namespace))
    # After RateLimits (they see only admitted messages), before StatusWrites (see above).
    status_writes = StatusWrites(services=services, after_start=source_checks.check_started)
    metrics = Metrics(client=broker.client, namespace=settings.namespace, directory=settings.metrics_root,
                      pool=settings.worker_pool, exporter_port=settings.metrics_port,
                      heartbeat_timeout_ms=settings.heartbeat_timeout_ms, status_writes=status_writes)
    retries.on_retry = metrics.count_retry
    broker.add_middleware(metrics)
    broker.add_middleware(Progress(channel=ProgressChannel(broker.client, namespace=settings.namespace)))
    # Just before StatusWrites: a running step's item is read for a cancel only while the step runs.
    broker.add_middleware(StepStops(services=services))
    broker.add_middleware(status_writes)
    return broker


settings = Settings.from_env()
broker = build_broker(settings)
dramatiq.set_broker(broker)


def services() -> Services:
    """Return the broker's ``Services`` middleware."""
    for middleware in broker.middleware:
        if isinstance(middleware, Services):
            return middleware
    raise LookupError("the broker has no Services middleware")


def rate_limits() -> RateLimits:
    """Return the broker's ``RateLimits`` middleware."""
    for middleware in broker.middleware:
        if isinstance(middleware, RateLimits):
            return middleware
    raise LookupError("the broker has no RateLimits middleware")


def metrics() -> Metrics:
    """Return the broker's ``Metrics`` middleware."""
    for middleware in broker.middleware:
        if isinstance(middleware, Metrics):
            return middleware
    raise LookupError("the broker has no Metrics middleware")
