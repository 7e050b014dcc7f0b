"""The item resources: create, batch, list, get with everything, prompt, resume, retry, cancel, artifacts, progress."""

from __future__ import annotations

import math
import mimetypes
from datetime import datetime

import falcon

from autolog.progress import sse_stream, stream_progress
from autolog.statuses import Status, parse_status
from pipelines import actions
from web.documents import accepted_document, artifact_file, item_document
from web.services import ApiServices
from web.validation import (
    invalid,
    json_object,
    known_fields,
    naming_sources,
    new_item,
    new_items,
    optional_text,
    required_param,
)

#: Page size of ``GET /items`` when ``limit`` is not given, and its ceiling.
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000

#: Page size of ``GET /items?q=`` when ``limit`` is not given, and the furthest ``offset`` a search pages to.
DEFAULT_SEARCH_LIMIT, MAX_SEARCH_OFFSET = 20, 100_000

#: How long ``GET /items/{item_id}/progress`` streams when ``max_s`` is not given, and its ceiling, in seconds.
DEFAULT_STREAM_S, MAX_STREAM_S = 300.0, 3600.0


def _last_event_id(req: falcon.Request) -> int:
    """Return the sequence number of the last event a reconnecting client saw; 0 when it sent none."""
    raw = (req.get_header("Last-Event-ID") or "").strip()
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise invalid("Last-Event-ID", "expected the id of an event this stream sent, a non-negative integer")
    return int(raw)


def _max_duration_s(req: falcon.Request) -> float:
    """Return how long to stream, ``max_s`` seconds: 0 to 3600, default 300."""
    max_s = req.get_param_as_float("max_s", min_value=0, max_value=MAX_STREAM_S, default=DEFAULT_STREAM_S)
    if not math.isfinite(max_s):
        raise invalid("max_s", f"expected a number of seconds from 0 to {MAX_STREAM_S:g}")
    return max_s


def _moment(req: falcon.Request, name: str) -> datetime | None:
    raw = req.get_param(name)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError as ex:
        raise falcon.HTTPInvalidParam("expected an ISO 8601 date and time", name) from ex


def _search_query(req: falcon.Request) -> str | None:
    """Return ``q`` as given, blank included (a blank query is refused, not read as no query)."""
    given = falcon.uri.parse_query_string(req.query_string, keep_blank=True).get("q")
    if isinstance(given, list):
        raise invalid("q", "give one search query")
    return given


class Items:
    """``/items``: list items by status and update time, paged by cursor, or search them (``q``); create one item."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raw_status = req.get_param("status")
        try:
            status = parse_status(raw_status) if raw_status else None
        except ValueError as ex:
            raise falcon.HTTPInvalidParam(str(ex), "status") from ex
        query = _search_query(req)
        if query is not None:
            self._search(req, resp, query, status)
            return
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
        if req.get_param("offset") is not None:
            raise invalid("offset", "pages search results (with q); the listing pages by cursor")
        page = self._services.store.items.list(
            status=status, updated_after=_moment(req, "updated_after"), updated_before=_moment(req, "updated_before"),
            after_id=req.get_param("cursor"), limit=limit, failed=req.get_param_as_bool("failed", default=False),
            dead_lettered=req.get_param_as_bool("dead_lettered", default=False))
        resp.media = {"items": [item.to_dict() for item in page], "count": len(page),
                      "next_cursor": page[-1].id if len(page) == limit else None}

    def _search(self, req: falcon.Request, resp: falcon.Response, query: str, status: Status | None) -> None:
        """Answer ``GET /items?q=``: the matching items, best first, paged by ``limit`` and ``offset``."""
        for name in ("cursor", "updated_after", "updated_before", "failed", "dead_lettered"):
            if req.get_param(name) is not None:
                raise invalid(name, "pages or filters the listing; a search (q) takes status, limit and offset")
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT, default=DEFAULT_SEARCH_LIMIT)
        offset = req.get_param_as_int("offset", min_value=0, max_value=MAX_SEARCH_OFFSET, default=0)
        resp.media = self._services.store.search.search(query, status=status, limit=limit, offset=offset).to_dict()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        item = new_item(json_object(req))
        with naming_sources([item]):
            [answer] = actions.submit(self._services.context, [item])
        resp.media = answer.to_dict()
        resp.location = f"/items/{answer.item.id}"
        resp.status = falcon.HTTP_202


class ItemBatch:
    """``POST /items:batch``: create up to 1,000 items in one transaction and queue them."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        items = new_items(json_object(req))
        with naming_sources(items, "items"):
            resp.media = accepted_document(actions.submit(self._services.context, items))
        resp.status = falcon.HTTP_202


class ItemResource:
    """``GET /items/{item_id}``: the item in full; ``DELETE``: the item, its timeline, results and artifact files."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        resp.media = item_document(self._services.context, item_id)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        removed = actions.delete(self._services.context, item_id)
        resp.media = {"deleted": item_id, "artifacts_removed": len(removed)}


class ItemPrompt:
    """``POST /items/{item_id}/prompt``: give a waiting item its prompt, ``{"prompt": "..."}``, and resume it."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        body = json_object(req)
        known_fields(body, ("prompt",))
        text = optional_text(body, "prompt", max_length=20_000)
        if not text:
            raise invalid("prompt", "is required and must not be empty")
        resp.media = actions.prompt(self._services.context, item_id, text).to_dict()
        resp.status = falcon.HTTP_202


class ItemResume:
    """``POST /items/{item_id}/resume``: resume a waiting item without a prompt."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        resp.media = actions.prompt(self._services.context, item_id, None).to_dict()
        resp.status = falcon.HTTP_202


class ItemRetry:
    """``POST /items/{item_id}/retry``: queue again the step the item stopped at."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        resp.media = actions.retry(self._services.context, item_id).to_dict()
        resp.status = falcon.HTTP_202


class ItemCancel:
    """``POST /items/{item_id}/cancel``: stop the item; queued steps skip it, a running one stops."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        resp.media = {"item": actions.cancel(self._services.context, item_id).to_dict()}


class ItemUncancel:
    """``POST /items/{item_id}/uncancel``: undo a cancel and queue the item from where it stopped."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        resp.media = actions.uncancel(self._services.context, item_id).to_dict()
        resp.status = falcon.HTTP_202


class ItemRerun:
    """``POST /items/{item_id}/rerun?from=STEP``: re-log a finished or failed item from a chosen step."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        from_step = required_param(req, "from")
        resp.media = actions.rerun(self._services.context, item_id, from_step).to_dict()
        resp.status = falcon.HTTP_202


class ItemArtifact:
    """``GET /items/{item_id}/artifacts/{kind}/{position}``: the poster, contact sheet or a frame, as a file."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str, kind: str, position: int) -> None:
        path = artifact_file(self._services.context, item_id, kind, position)
        resp.content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        resp.set_stream(path.open("rb"), path.stat().st_size)


class ItemProgress:
    """``GET /items/{item_id}/progress``: the item's progress as Server-Sent Events.

    The latest state comes first, then each new event, until the item's final event or
    ``max_s`` seconds; a quiet stream sends a keep-alive comment every 15 s. Each event's id
    is its sequence number, so a client reconnecting with ``Last-Event-ID`` skips what it saw.
    """

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        after_seq, max_duration_s = _last_event_id(req), _max_duration_s(req)
        self._services.store.items.get(item_id)
        # Once streaming, an error can only cut the stream: find Redis down now, while it is still a 503.
        self._services.redis_client.ping()
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        # Tells a buffering proxy (nginx) to pass each event on as it comes.
        resp.set_header("X-Accel-Buffering", "no")
        resp.stream = sse_stream(stream_progress(self._services.redis_client, self._services.settings.namespace,
                                                 item_id, after_seq=after_seq, max_duration_s=max_duration_s))
