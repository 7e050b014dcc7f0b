"""What the metrics exporters serve: the scrape-time collector, wired to Redis, store and limits.

``api_metrics_registry`` is for the API's ``/metrics``; ``serve_worker_metrics`` is the
entry point of each worker pool's exporter (a dramatiq fork process, see ``Metrics.forks``).
"""

from __future__ import annotations

import logging
import logging.config
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import dramatiq
import redis
from prometheus_client import CollectorRegistry

from autolog.logs import build_log_config, secret_values
from autolog.metrics_cluster import ClusterCollector, RateLimitReading
from autolog.metrics_exposition import build_registry, serve_metrics
from autolog.settings import Settings
from autolog.store import Store
from autolog.worker_presence import read_workers
from middleware._limiter import RateLimit
from middleware.rate_limits import RateLimits


def read_rate_limits(reader: RateLimits, limits: Iterable[RateLimit], *,
                     clock: Callable[[], float] = time.time) -> list[RateLimitReading]:
    """Read the running totals and state of each shared limit (one entry per key).

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    readings = {}
    for limit in limits:
        if limit.key in readings:
            continue
        counters, state = reader.counters(limit.key), reader.state(limit)
        readings[limit.key] = RateLimitReading(
            limit=limit.key, calls=counters.calls, waits=counters.waits, upstream_429s=counters.upstream_limited,
            tokens=counters.tokens, in_window=state.in_window, in_flight=state.in_flight,
            capacity=limit.requests * state.scale, pause_remaining_s=max(0.0, state.paused_until_s - clock()),
        )
    return list(readings.values())


def cluster_collector(
    settings: Settings, *, client: redis.Redis, store: Store | None, queues: Sequence[str] = (),
    pools: Sequence[str] = (), broker: dramatiq.Broker | None = None, expected: Mapping[str, int] | None = None,
) -> ClusterCollector:
    """Build the scrape-time collector that the API and every worker exporter serve.

    Rate limits are those of ``broker``'s actors, if given, plus those registered workers run;
    ``expected`` is each pool's configured worker processes (see ``ClusterCollector``).
    """
    declared: list[RateLimit] = []
    if broker is not None:
        for name in sorted(broker.get_declared_actors()):
            if isinstance(limit := broker.get_actor(name).options.get("rate_limit"), RateLimit):
                declared.append(limit)
    reader = RateLimits(client=client, namespace=settings.namespace)

    def limits() -> list[RateLimitReading]:
        workers = read_workers(client, settings.namespace, timeout_ms=settings.heartbeat_timeout_ms,
                               now_ms=int(time.time() * 1000))
        registered = [RateLimit.from_dict(limit) for entry in workers for limit in entry.info.rate_limits]
        return read_rate_limits(reader, [*declared, *registered])

    return ClusterCollector(
        client=client, namespace=settings.namespace, heartbeat_timeout_ms=settings.heartbeat_timeout_ms,
        queues=queues, pools=pools, items=store.items.count_by_status if store is not None else None,
        rate_limits=limits, expected=expected,
    )


def api_metrics_registry(
    settings: Settings, *, broker: dramatiq.Broker, client: redis.Redis, store: Store | None,
    pools: Sequence[str] = (), multiprocess_dir: Path | None = None, expected: Mapping[str, int] | None = None,
) -> CollectorRegistry:
    """Return the registry the API's ``/metrics`` renders (with ``render_metrics``).

    Args:
        pools: pools always reported, such as ``[spec.name for spec in pool_specs(settings)]``.
        expected: each pool's configured worker processes, so down or short pools show as degraded.
        multiprocess_dir: the gunicorn workers' multiprocess folder, if the API keeps
            per-process metrics of its own.
    """
    collector = cluster_collector(settings, client=client, store=store, pools=pools, broker=broker,
                                  queues=sorted(broker.get_declared_queues()), expected=expected)
    return build_registry([collector], multiprocess_dir=multiprocess_dir)


def serve_worker_metrics() -> int:
    """Serve this worker group's metrics on its port until dramatiq stops the group.

    Runs as a dramatiq fork process (see ``Metrics.forks``).
    """
    # NOTE(metrics): dramatiq starts fork processes from its master, which never imports the
    # broker, so this function is the exporter process's entry point and parses settings itself.
    settings = Settings.from_env()
    logging.config.dictConfig(build_log_config(level=settings.log_level, fmt=settings.log_format,
                                               secrets=secret_values(settings)))
    logger = logging.getLogger(__name__)
    if settings.metrics_port is None:
        return 0
    client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=5)
    store = Store.open(settings.sqlalchemy_url, upgrade=False)
    try:
        collector = cluster_collector(settings, client=client, store=store,
                                      pools=[settings.worker_pool] if settings.worker_pool else [])
        registry = build_registry([collector], multiprocess_dir=settings.metrics_root)
        serve_metrics(registry, host=settings.metrics_host, port=settings.metrics_port)
    except OSError as ex:
        logger.error("Cannot serve metrics on %s:%d: %s", settings.metrics_host, settings.metrics_port, ex)
        return 1
    finally:
        store.close()
        client.close()
    return 0
