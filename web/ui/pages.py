"""The review pages: ``/ui`` (the library) and ``/ui/items/{item_id}`` (one item)."""

from __future__ import annotations

import falcon

from autolog.errors import ItemNotFound
from autolog.statuses import AUDIO_ONLY, Status, parse_status
from pipelines.actions import rerun_steps
from web.documents import artifact_url
from web.services import ApiServices
from web.ui import views
from web.ui.render import Pages

#: Cards on one page of the library.
PAGE_SIZE = 48


class Library:
    """``GET /ui``: every item as a card, filtered by status, ``PAGE_SIZE`` at a time by id.

    With ``q`` the page opens on its search results in place of the cards (its script asks
    ``GET /items?q=``); ``deleted`` names the item the item page just deleted, for a notice.
    A ``status`` that is none of ours answers 400 with a page that names them.
    """

    auth = "page"

    def __init__(self, services: ApiServices, pages: Pages) -> None:
        self._services = services
        self._pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        store = self._services.store
        raw_status = req.get_param("status") or ""
        try:
            status = parse_status(raw_status) if raw_status else None
        except ValueError:
            resp.status = falcon.HTTP_400
            self._pages.render(req, resp, "problem.html", heading="Unknown status",
                               message=f"There is no status “{raw_status}”. The statuses are: "
                                       + ", ".join(f"“{known.value}”" for known in Status) + ".")
            return
        cursor = req.get_param("cursor")
        items = store.items.list(status=status, after_id=cursor, limit=PAGE_SIZE)
        posters = store.results.items_with_artifact([item.id for item in items], "poster")
        counts = views.status_counts(store.items.count_by_status())
        self._pages.render(
            req, resp, "library.html", cards=[views.card(item, has_poster=item.id in posters) for item in items],
            status=status.value if status else "", statuses=list(counts["statuses"].items()),
            total=counts["total"], cursor=cursor or "", query=req.get_param("q") or "",
            deleted=req.get_param("deleted") or "",
            next_cursor=items[-1].id if len(items) == PAGE_SIZE else "")


class ItemPage:
    """``GET /ui/items/{item_id}``: the contact sheet, frame records, transcript, timeline, file facts, actions."""

    auth = "page"

    def __init__(self, services: ApiServices, pages: Pages) -> None:
        self._services = services
        self._pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        store = self._services.store
        try:
            item = store.items.get(item_id)
        except ItemNotFound:
            resp.status = falcon.HTTP_404
            self._pages.render(req, resp, "missing.html", item_id=item_id)
            return
        segments = store.results.transcript(item_id)
        kinds = {(artifact.kind, artifact.position) for artifact in store.results.artifacts(item_id)}
        self._pages.render(
            req, resp, "item.html", item=item, tone=views.tone(item), name=views.file_name(item.source),
            audio_only=item.media_kind == AUDIO_ONLY,
            contact_sheet_url=artifact_url(item_id, "contact_sheet", 0) if ("contact_sheet", 0) in kinds else None,
            poster_url=artifact_url(item_id, "poster", 0) if ("poster", 0) in kinds else None,
            frames=views.frame_rows(item_id, store.results.frames(item_id), store.results.scenes(item_id), segments),
            transcript=views.transcript_lines(item, segments),
            attempts=views.attempt_rows(item, store.timeline.for_item(item_id)),
            facts=views.file_facts(item), exports=item.status.is_terminal,
            export_links=views.export_links(item, has_transcript=bool(segments)),
            awaiting=item.status is Status.AWAITING_USER_INPUT, retryable=bool(item.error or item.dead_lettered),
            cancellable=not item.cancelled and not item.status.is_terminal,
            rerun_steps=[(step.name, f"{step.number} · {step.name.replace('_', ' ')}") for step in rerun_steps(item)])
