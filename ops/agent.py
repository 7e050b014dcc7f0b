"""This machine's background process, started with the stack: sweep, pool supervisor, watch folders, metrics.

Every ``discovery_interval_s`` it starts the private Redis again if its process died
(``LocalRedis.revive``; not one that is hung, which is ``autolog up``'s call), restarts this
machine's pools that died (``PoolSupervisor``,
whether or not this machine holds the sweep's lease) and runs the sweep (``pipelines.discovery``,
which acts only while it holds the cluster-wide lease). On its own thread it watches the watch
folders (``pipelines.watch``) and ingests their settled files while it holds the lease. It is
also the machine's one metrics exporter (on ``AUTOLOG_METRICS_PORT_BASE``): the sum of every
pool's worker processes, from their shared multiprocess folder, and the cluster gauges.
``autolog up`` starts it, ``autolog down`` stops it, and so do ``POST /run/lf_discovery`` and
``POST /stop/lf_discovery``.
"""

from __future__ import annotations

import logging
import logging.config
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import start_http_server

import actors
from autolog.context import Context
from autolog.lease import Lease
from autolog.local_redis import RedisServerError, private_redis
from autolog.logs import build_log_config, secret_values
from autolog.settings import Settings
from middleware import api_metrics_registry
from ops.pools import PoolManager
from ops.supervisor import PoolSupervisor
from pipelines.discovery import LEASE_KEY, DiscoveryLoop, DiscoveryReport, Sweep, lease_ttl_ms
from pipelines.watch import FolderWatch, ingest_file

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGTERM; ``argv`` may hold ``--pid-file PATH``, removed on a clean exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    pid_file = Path(args[args.index("--pid-file") + 1]) if "--pid-file" in args else None
    settings = Settings.from_env()
    logging.config.dictConfig(build_log_config(level=settings.log_level, fmt=settings.log_format,
                                               secrets=secret_values(settings)))
    context = Context.build(settings)
    actors.services().install(context)
    lease = Lease(actors.broker.client, f"{settings.namespace}:{LEASE_KEY}",
                  ttl_ms=lease_ttl_ms(settings.discovery_interval_s), owner=f"{socket.gethostname()}:{os.getpid()}")
    sweep = Sweep(context=context, broker=actors.broker, lease=lease)
    pools = PoolManager(settings)
    supervisor = PoolSupervisor(pools)

    # Every host watches; only the sweep holding the lease ingests, so a shared folder gives one item per file.
    watch = FolderWatch(settings.resolved_watch_folders, settle_s=settings.source_settle_s,
                        ingest=lambda path: ingest_file(context, path), active=lambda: lease.held,
                        scan_interval_s=settings.watch_scan_interval_s)

    private = None if settings.redis_url else private_redis(settings)

    def tick() -> DiscoveryReport:
        try:
            if private is not None and private.revive():
                logger.warning("The private Redis had died; started it again on its data at %s.", private.url)
        except RedisServerError:
            logger.exception("The private Redis is down and could not be started; trying again next sweep.")
        try:
            supervisor.check()
        except OSError:
            logger.exception("The pool supervisor could not start a pool; trying again next sweep.")
        return sweep.run_once()

    # This machine's one metrics exporter: every pool's worker processes write to one folder.
    registry = api_metrics_registry(settings, broker=actors.broker, client=actors.broker.client, store=context.store,
                                    expected=pools.expected_processes(),
                                    multiprocess_dir=pools.metrics_dir)
    try:
        exporter, exporter_thread = start_http_server(settings.metrics_port_base, addr=settings.metrics_host,
                                                      registry=registry)
    except OSError as ex:
        logger.error("Cannot serve metrics on %s:%d: %s", settings.metrics_host, settings.metrics_port_base, ex)
        exporter = None
    loop = DiscoveryLoop(scan=tick, interval_s=settings.discovery_interval_s)
    signal.signal(signal.SIGTERM, lambda *_: loop.stop(timeout_s=0))
    signal.signal(signal.SIGINT, lambda *_: loop.stop(timeout_s=0))
    logger.info("Sweep and pool supervisor started (pid %d, every %g s).", os.getpid(), settings.discovery_interval_s)
    started = time.monotonic()
    watch.start()
    loop.run()
    watch.stop()
    if exporter is not None:
        exporter.shutdown()
        exporter_thread.join(timeout=5)
    lease.release()
    logger.info("Sweep stopped after %.0f s.", time.monotonic() - started)
    pools.close()
    context.close()
    if pid_file is not None and pid_file.is_file() and pid_file.read_text().strip() == str(os.getpid()):
        pid_file.unlink()
    return 0
