"""autolog's dramatiq middleware: one class per module."""

from __future__ import annotations

from middleware._limiter import Decision, LimiterCounters, LimiterState, RateLimit, SharedLimiter
from middleware._metrics_export import api_metrics_registry, cluster_collector, serve_worker_metrics
from middleware.lifecycle_logs import LifecycleLogs
from middleware.metrics import Metrics
from middleware.outbox_relay import OutboxRelay, pending, relay_outbox, send_committed
from middleware.progress import Progress
from middleware.queue_pauses import QueuePauses
from middleware.rate_limits import WAIT_OPTION, RateLimits
from middleware.retries import Retries
from middleware.services import Services, ServicesNotReady
from middleware.shutdown_requeue import ShutdownRequeue
from middleware.source_checks import SETTLE_REASON, SOURCE_OPTION, SourceChecks
from middleware.status_writes import (
    FOLLOW_UP_OPTION,
    RUN_OPTION,
    STORE_OUTAGE_REASON,
    SUPERSEDED_OPTION,
    TRANSITION_OPTION,
    StatusWrites,
    committed_queued,
)
from middleware.step_stops import StepStops

__all__ = [
    # Per-process collaborators
    "Services",
    "ServicesNotReady",
    # A stopping worker gives back what it did not finish
    "ShutdownRequeue",
    # Shared rate limits
    "Decision",
    "LimiterCounters",
    "LimiterState",
    "RateLimit",
    "RateLimits",
    "SharedLimiter",
    "WAIT_OPTION",
    # Queue pauses
    "QueuePauses",
    # Sources still being copied, and sources changed since step 1
    "SETTLE_REASON",
    "SOURCE_OPTION",
    "SourceChecks",
    # Item statuses and timeline; running steps of cancelled items stop
    "StatusWrites",
    "StepStops",
    "TRANSITION_OPTION",
    "FOLLOW_UP_OPTION",
    "RUN_OPTION",
    "SUPERSEDED_OPTION",
    # Retries that wait out store outages and acknowledge superseded runs
    "Retries",
    "STORE_OUTAGE_REASON",
    # The outbox: messages committed with their status, and their relay
    "OutboxRelay",
    "committed_queued",
    "pending",
    "relay_outbox",
    "send_committed",
    # Observability: metrics, progress, logs
    "LifecycleLogs",
    "Metrics",
    "Progress",
    "api_metrics_registry",
    "cluster_collector",
    "serve_worker_metrics",
]
