"""Serving metrics: one registry per exporter, rendered for a scrape or served over HTTP.

An exporter's registry sums the per-process files of its multiprocess folder (the worker
processes of one pool, or the gunicorn workers of the API) and adds the scrape-time
``ClusterCollector``. The API renders it from its own ``/metrics`` route with
``render_metrics``; a worker pool's exporter serves it with ``serve_metrics``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from autolog.metrics_multiproc import multiprocess_registry

logger = logging.getLogger(__name__)

def build_registry(collectors: Iterable[Collector] = (), *, multiprocess_dir: Path | None = None) -> CollectorRegistry:
    """Return a registry of ``collectors``, plus the process files under ``multiprocess_dir`` if given."""
    registry = multiprocess_registry(multiprocess_dir) if multiprocess_dir is not None else CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    return registry


def render_metrics(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """Render a scrape: the body and its content type, in the format ``accept`` prefers."""
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


def serve_metrics(registry: CollectorRegistry, *, host: str, port: int, stop: threading.Event | None = None) -> None:
    """Serve ``registry`` over HTTP until ``stop`` is set or the process is told to exit.

    Raises:
        OSError: the address cannot be bound (another exporter has the port).
    """
    server, thread = start_http_server(port, addr=host, registry=registry)
    logger.info("Serving metrics on %s:%d.", host, port)
    try:
        (stop or threading.Event()).wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
