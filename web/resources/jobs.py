"""Jobs in seed 003's shape: one message each, by id or listed by status."""

from __future__ import annotations

import falcon

from autolog.store.jobs import JOB_STATUSES
from web.documents import job_document
from web.services import ApiServices

#: ``GET /jobs`` page size when ``limit`` is not given, and its ceiling (seed 003's).
DEFAULT_LIMIT, MAX_LIMIT = 50, 100


class Jobs:
    """``GET /jobs?status=&limit=``: the most recently active jobs."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        status = req.get_param("status") or "all"
        if status != "all" and status not in JOB_STATUSES:
            raise falcon.HTTPInvalidParam(f"expected all or one of {', '.join(JOB_STATUSES)}", "status")
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
        jobs = self._services.jobs.list(status=None if status == "all" else status, limit=limit)
        resp.media = {"count": len(jobs), "jobs": [job.to_dict() for job in jobs]}


class JobItem:
    """``GET /jobs/{job_id}``: one job with its timestamps, result and error."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        job = self._services.jobs.get(job_id)
        resp.media = job_document(job)
