"""The API's entry point: ``gunicorn 'web.app:create_app()'``.

``create_app`` builds the Falcon app from settings (read from the environment when not
given), mounts dramatiq-dashboard at ``/dashboard/`` behind the same API keys, and returns
the WSGI application.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import falcon
import redis
from dramatiq_dashboard import make_wsgi_middleware
from prometheus_client import CollectorRegistry

import actors
from autolog.settings import Settings
from autolog.store import Store
from middleware import api_metrics_registry
from ops.discovery import DiscoveryProcess
from ops.pools import PoolManager
from web.auth import ApiKeyAuth, DashboardGuard, SessionCookies
from web.error_handlers import add_error_handlers
from web.openapi import build_document
from web.resources import exports, items, jobs, queues, seed, system, webhooks
from web.services import ApiServices
from web.sign_ins import SignIns
from web.ui import add_ui_routes
from web.validation import BodyLimit, KnownQueryParams

#: Where dramatiq-dashboard is mounted.
DASHBOARD_PREFIX = "/dashboard"


def add_routes(app: falcon.App[falcon.Request, falcon.Response], services: ApiServices,
               metrics: CollectorRegistry, document: dict[str, Any]) -> None:
    """Add every route; ``document``, the OpenAPI document, lists each of them (a test keeps the two in step)."""
    routes: list[tuple[str, object]] = [
        # Seed 000
        ("/run/lf_queue", seed.RunQueue(services)),
        ("/run/lf_queue_batch", seed.RunQueueBatch(services)),
        ("/run/lf_force_resume_all", seed.ForceResumeAll(services)),
        ("/queue/status", seed.QueueStatus(services)),
        ("/workers/status", seed.WorkersStatus(services)),
        ("/workers/start", seed.WorkersStart(services)),
        ("/workers/stop", seed.WorkersStop(services)),
        ("/run/lf_discovery", seed.DiscoveryStart(services)),
        ("/stop/lf_discovery", seed.DiscoveryStop(services)),
        # Items
        ("/items", items.Items(services)),
        ("/items:batch", items.ItemBatch(services)),
        ("/items/{item_id}", items.ItemResource(services)),
        ("/items/{item_id}/prompt", items.ItemPrompt(services)),
        ("/items/{item_id}/resume", items.ItemResume(services)),
        ("/items/{item_id}/retry", items.ItemRetry(services)),
        ("/items/{item_id}/cancel", items.ItemCancel(services)),
        ("/items/{item_id}/uncancel", items.ItemUncancel(services)),
        ("/items/{item_id}/rerun", items.ItemRerun(services)),
        ("/items/{item_id}/progress", items.ItemProgress(services)),
        ("/items/{item_id}/artifacts/{kind}/{position:int(min=0)}", items.ItemArtifact(services)),
        ("/items/{item_id}/exports/{format}", exports.ItemExport(services)),
        ("/exports/{format}", exports.SelectionExport(services)),
        # Jobs, queues, dead letters, workers, discovery
        ("/jobs", jobs.Jobs(services)),
        ("/jobs/{job_id}", jobs.JobItem(services)),
        ("/queues", queues.Queues(services)),
        ("/queues/{name}", queues.QueueItem(services)),
        ("/queues/{name}/pause", queues.QueuePause(services)),
        ("/queues/{name}/resume", queues.QueueResume(services)),
        ("/queues/{name}/purge", queues.QueuePurge(services)),
        ("/dead-letters", queues.DeadLetters(services)),
        ("/dead-letters/retry", queues.DeadLettersRetry(services)),
        ("/dead-letters/purge", queues.DeadLettersPurge(services)),
        ("/dead-letters/{message_id}/retry", queues.DeadLetterRetry(services)),
        ("/workers", system.Workers(services)),
        ("/discovery", system.Discovery(services)),
        ("/discovery/scan", system.DiscoveryScan(services)),
        # System and ingress
        ("/health", system.Health(services)),
        ("/metrics", system.Metrics(metrics)),
        ("/openapi.json", system.OpenApi(document)),
        ("/webhook/minio", webhooks.MinioWebhook(services)),
        ("/webhooks/ingest", webhooks.IngestWebhook(services)),
    ]
    for uri, resource in routes:
        app.add_route(uri, resource)


def build_api(services: ApiServices, metrics: CollectorRegistry,
              sessions: SessionCookies) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the Falcon app: body limit and API keys (or a session) as middleware, errors mapped in one place.

    ``metrics`` is the registry ``/metrics`` renders; ``sessions`` reads the review pages' cookie.
    """
    document = build_document()
    middleware: list[Any] = [BodyLimit(), ApiKeyAuth(services.settings.api_keys, sessions), KnownQueryParams(document)]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    add_error_handlers(app)
    add_routes(app, services, metrics, document)
    add_ui_routes(app, services, sessions)
    return app


class AutologApi:
    """The WSGI application gunicorn serves: the Falcon app, the dashboard and the guard in front."""

    def __init__(self, services: ApiServices, metrics: CollectorRegistry) -> None:
        self.services = services
        self.metrics = metrics
        settings = services.settings
        sessions = SessionCookies(settings.api_keys, secret=settings.session_secret, ttl_s=settings.session_ttl_s,
                                  sign_ins=SignIns(services.redis_client, namespace=settings.namespace))
        self.api = build_api(services, metrics, sessions)
        dashboard = make_wsgi_middleware(DASHBOARD_PREFIX, services.broker)(self.api)
        self._app = DashboardGuard(dashboard, prefix=DASHBOARD_PREFIX, keys=settings.api_keys, sessions=sessions)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self._app(environ, start_response)

    def close(self) -> None:
        """Forget this process's step context and release the store and the pool manager's Redis client."""
        actors.services().uninstall()
        self.services.pools.close()
        self.services.store.close()


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    redis_client: redis.Redis | None = None,
    pools: PoolManager | None = None,
    discovery: DiscoveryProcess | None = None,
) -> AutologApi:
    """Build the API from ``settings`` (default: the environment) and the collaborators given.

    The broker is the one ``actors`` builds from the environment on import. This process's
    store is installed into it, so enqueues from the API are recorded on the items' timelines.
    """
    settings = settings or Settings.from_env()
    services = ApiServices.build(settings, actors.broker, store=store, redis_client=redis_client, pools=pools,
                                 discovery=discovery)
    actors.services().install(services.context)
    metrics = api_metrics_registry(settings, broker=services.broker, client=services.redis_client,
                                   store=services.store,
                                   expected=services.pools.expected_processes())
    return AutologApi(services, metrics)
