"""The library's live parts: ``GET /ui/progress?ids=`` (a page of items' progress as one Server-Sent Events
stream) and ``GET /ui/counts`` (the items at each status, for the filter chips)."""

from __future__ import annotations

import math

import falcon

from autolog.progress import ProgressChannel, sse_stream
from web.services import ApiServices
from web.ui import views
from web.ui.pages import PAGE_SIZE

#: How long one stream lasts before the browser reconnects, in seconds.
STREAM_S = 300.0

#: Seconds of quiet before a keep-alive: short, so a stream whose page was left frees its thread soon.
KEEP_ALIVE_S = 5.0


class LibraryProgress:
    """Streams the latest state, then each new event, of up to ``PAGE_SIZE`` items (``ids``, comma-separated).

    The stream ends after ``max_s`` seconds (at most, and by default, ``STREAM_S``); the browser reconnects.

    A browser opens only six connections to a host, so a page of cards shares one stream.
    """

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ids = sorted({item_id.strip() for value in req.get_param_as_list("ids", required=True)
                      for item_id in value.split(",") if item_id.strip()})
        if not ids or len(ids) > PAGE_SIZE:
            raise falcon.HTTPInvalidParam(f"expected 1 to {PAGE_SIZE} item ids, comma-separated", "ids")
        max_s = req.get_param_as_float("max_s", min_value=0, max_value=STREAM_S, default=STREAM_S)
        if not math.isfinite(max_s):
            raise falcon.HTTPInvalidParam(f"expected a number of seconds from 0 to {STREAM_S:g}", "max_s")
        # Once streaming, an error can only cut the stream: find Redis down now, while it is still a 503.
        self._services.redis_client.ping()
        channel = ProgressChannel(self._services.redis_client, namespace=self._services.settings.namespace)
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        resp.stream = sse_stream(channel.watch(ids, idle_s=KEEP_ALIVE_S, max_duration_s=max_s))


class LibraryCounts:
    """``GET /ui/counts``: how many items are at each status, and in all, as the library's filter chips show them.

    Answers ``{"total": int, "statuses": {status: int}}`` with every status, zero included. The library's
    script asks again when a card's item changes status and every few seconds while the page is shown,
    so the chips follow items that are not on the page too. A read of a few rows whatever the library's
    size (``Items.count_by_status``).
    """

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", "no-store")
        resp.media = views.status_counts(self._services.store.items.count_by_status())
