"""Queues and their dead letters: counts, pause, resume, purge, retry."""

from __future__ import annotations

import falcon

from web.services import ApiServices


class Queues:
    """``GET /queues``: every queue's queued, delayed, in-progress and dead-lettered counts."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"queues": [queue.to_dict() for queue in self._services.queues.list()]}


class QueueItem:
    """``GET /queues/{name}``: one queue's counts."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = self._services.queues.get(name).to_dict()


class QueuePause:
    """``POST /queues/{name}/pause``: pause the queue; its messages are held, counted, until it resumes."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = self._services.queues.pause(name).to_dict()


class QueueResume:
    """``POST /queues/{name}/resume``: resume the queue; its held messages go back on it in order."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = self._services.queues.resume(name).to_dict()


class QueuePurge:
    """``POST /queues/{name}/purge``: drop the queue's queued, delayed, held and unsent messages; mark their items."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = self._services.queues.purge(self._services.context, name).to_dict()


def _queue(req: falcon.Request, services: ApiServices) -> str | None:
    name = req.get_param("queue")
    return services.queues.check(name) if name else None


class DeadLetters:
    """``GET /dead-letters?queue=&limit=``: dead-lettered messages with their errors, newest first."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = req.get_param_as_int("limit", min_value=1, max_value=1000, default=100)
        letters = self._services.dead_letters.fetch(queue=_queue(req, self._services), limit=limit)
        resp.media = {"count": len(letters), "dead_letters": [letter.to_dict() for letter in letters]}


class DeadLetterRetry:
    """``POST /dead-letters/{message_id}/retry``: queue one dead letter's work again."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        resp.media = self._services.dead_letters.retry(message_id).to_dict()
        resp.status = falcon.HTTP_202


class DeadLettersRetry:
    """``POST /dead-letters/retry?queue=``: retry every dead letter (of one queue)."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        outcomes = self._services.dead_letters.retry_all(queue=_queue(req, self._services))
        resp.media = {"count": len(outcomes), "retried": [outcome.to_dict() for outcome in outcomes]}
        resp.status = falcon.HTTP_202


class DeadLettersPurge:
    """``POST /dead-letters/purge?queue=``: delete every dead letter (of one queue)."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._services.dead_letters.purge(queue=_queue(req, self._services)).to_dict()
