"""The export resources: one logged item, or a selection, as a file an editing system imports."""

from __future__ import annotations

import falcon

from autolog.exports import Export, ExportOptions, Selection, export_item, export_selection
from web.services import ApiServices

#: The header giving how many items an export holds (0: a valid file with no rows).
ITEMS_HEADER = "X-Export-Items"


def _options(req: falcon.Request) -> ExportOptions:
    return ExportOptions.parse(shots=req.get_param_as_bool("shots", default=False), colour=req.get_param("color"),
                               timing=req.get_param("timing"))


def _ids(req: falcon.Request) -> list[str]:
    """Return the ``ids`` parameter's ids, given comma-separated, repeated, or both."""
    return [item_id.strip() for value in req.get_param_as_list("ids", default=[])
            for item_id in value.split(",") if item_id.strip()]


def _send(resp: falcon.Response, export: Export) -> None:
    resp.content_type = export.format.content_type
    resp.downloadable_as = export.filename
    resp.set_header(ITEMS_HEADER, str(export.items))
    resp.stream = (chunk.encode() for chunk in export.chunks)


class ItemExport:
    """``GET /items/{item_id}/exports/{format}``: one logged item as ALE, markers, EDL, XML, SRT, VTT or CSV."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str, format: str) -> None:
        _send(resp, export_item(self._services.store, item_id, format, _options(req)))


class SelectionExport:
    """``GET /exports/{format}``: the logged items chosen by ``ids``, ``status``, ``q`` and ``fps``, streamed."""

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, format: str) -> None:
        selection = Selection.parse(ids=_ids(req), status=req.get_param("status"), text=req.get_param("q"),
                                    fps=req.get_param("fps"))
        _send(resp, export_selection(self._services.store, selection, format, _options(req)))
