"""Seed 000's routes, with its paths and JSON shapes."""

from __future__ import annotations

from typing import Any

import falcon

from autolog.statuses import step_named
from ops.pools import PoolStatus
from pipelines import actions
from pipelines.intake import queue_footage, refuse_unqueued
from web.documents import seed_queued
from web.services import ApiServices
from web.validation import bounded_list, item_id, json_object, known_fields, required_param, unique_ids


def _pools(req: falcon.Request) -> list[str] | None:
    """Return the pools named by ``pool``: a pool's name, or its step's queue, seed name or number; None for all."""
    names = req.get_param_as_list("pool") or None
    if names is None:
        return None
    resolved = []
    for name in names:
        try:
            resolved.append(step_named(name).name)
        except KeyError:
            resolved.append(name)
    return resolved


def pools_document(pools: list[PoolStatus]) -> dict[str, Any]:
    """Return seed 000's ``/workers/status`` document: the pools by step, and the running worker threads."""
    running = [pool for pool in pools if pool.alive]
    return {
        "workers": {
            pool.name: {"queue": pool.queue, "running": pool.alive, "pid": pool.pid, "processes": pool.processes,
                        "threads": pool.threads, "workers": pool.processes * pool.threads if pool.alive else 0,
                        "crash_loop": pool.crash_loop}
            for pool in pools
        },
        "total_workers": sum(pool.processes * pool.threads for pool in running),
        "running_pools": len(running),
    }


class RunQueue:
    """``POST /run/lf_queue?footage_id=``: queue one item, creating it from its file if new."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        footage_id = item_id(required_param(req, "footage_id"), "footage_id")
        [answer] = queue_footage(self._services.context, [footage_id], source=req.get_param("source"))
        resp.media = seed_queued(refuse_unqueued(answer))
        resp.status = falcon.HTTP_202


class RunQueueBatch:
    """``POST /run/lf_queue_batch``: queue many items, ``{"footage_ids": [...]}``, at most 1,000."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_object(req)
        known_fields(body, ("footage_ids",))
        ids = unique_ids(bounded_list(body, "footage_ids"), "footage_ids")
        outcomes = queue_footage(self._services.context, ids)
        resp.media = {"items": [seed_queued(outcome) for outcome in outcomes],
                      "total_queued": sum(outcome.queued and not outcome.already_queued for outcome in outcomes),
                      "queued": all(outcome.queued for outcome in outcomes)}
        resp.status = falcon.HTTP_202


class ForceResumeAll:
    """``POST /run/lf_force_resume_all``: reprocess from step 3, with force-resume, every item past it."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        moved = actions.force_resume_all(self._services.context)
        resp.media = {"status": "queued", "count": len(moved), "footage_ids": moved}
        resp.status = falcon.HTTP_202


class QueueStatus:
    """``GET /queue/status``: queued and failed messages per step."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._services.queues.seed_status()


class WorkersStatus:
    """``GET /workers/status``: the worker pools of this machine."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = pools_document(self._services.pools.status())


class WorkersStart:
    """``POST /workers/start``: start the pools (all, or those named by ``pool``) that are not running."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "started", **pools_document(self._services.pools.start(_pools(req)))}


class WorkersStop:
    """``POST /workers/stop``: stop the pools, saying which items' running steps finished and which were put back."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        names = _pools(req)
        # By default, the workers' grace period (AUTOLOG_STOP_GRACE_S) plus time to exit.
        timeout = req.get_param_as_int("timeout_s", min_value=0, max_value=3600)
        stops = self._services.pools.drain(names, timeout_s=timeout)
        resp.media = {"status": "stopped", **pools_document([stop.pool for stop in stops]),
                      "drained": {stop.pool.name: list(stop.drained) for stop in stops},
                      "requeued": {stop.pool.name: list(stop.requeued) for stop in stops}}


class DiscoveryStart:
    """``POST /run/lf_discovery``: start the discovery loop unless it runs."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "running", **self._services.discovery.start().to_dict()}


class DiscoveryStop:
    """``POST /stop/lf_discovery``: stop the discovery loop."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "stopped", **self._services.discovery.stop().to_dict()}
