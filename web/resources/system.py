"""Workers, discovery, health, metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import falcon
from prometheus_client import CollectorRegistry

from autolog.metrics_exposition import render_metrics
from autolog.worker_presence import read_heartbeats
from ops.health import check_health
from pipelines.discovery import scan
from web.services import ApiServices


class Workers:
    """``GET /workers``: the pools of this machine, their processes and threads, and every heartbeat."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        pools = self._services.pools.status()
        beats = read_heartbeats(self._services.redis_client, self._services.broker.namespace,
                                timeout_ms=self._services.settings.heartbeat_timeout_ms)
        resp.media = {
            "pools": [pool.to_dict() for pool in pools],
            "processes": sum(pool.processes for pool in pools if pool.alive),
            "threads": sum(pool.processes * pool.threads for pool in pools if pool.alive),
            "heartbeats": [beat.to_dict() for beat in beats],
        }


class Discovery:
    """``GET /discovery``: whether the discovery loop runs."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._services.discovery.status().to_dict()


class DiscoveryScan:
    """``POST /discovery/scan``: run one discovery pass now, in this process."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = scan(self._services.context, self._services.broker).to_dict()


class Health:
    """``GET /health``: Redis, database, queue length, live workers and pools.

    503 when Redis or the database is down; 200 with ``"status": "degraded"`` when a pool is down,
    short of worker processes or crash-looping, or the sweep is down (no sweep holds its lease, or
    this machine's died).
    """

    auth = "open"

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        health = check_health(self._services.redis_client, self._services.store, settings=self._services.settings,
                              queues=self._services.queues.names, local_pools=self._services.pools.status(),
                              local_sweep=self._services.discovery.status())
        resp.media = health.to_dict()
        resp.status = falcon.HTTP_200 if health.healthy else falcon.HTTP_503


class Metrics:
    """``GET /metrics``: the API's registry (queues, items by status, workers, rate limits), read at scrape time.

    Rendered in the format the ``Accept`` header prefers: Prometheus text or OpenMetrics.
    """

    auth = "open"

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data, resp.content_type = render_metrics(self._registry, req.get_header("Accept"))


class OpenApi:
    """``GET /openapi.json``: the OpenAPI 3 document of this API."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._document
