"""``GET /ui/static/{name}``: the review pages' stylesheet and scripts, from a fixed list."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import falcon

#: The folder the files are read from; only the files in it when the app starts are served.
STATIC_DIR = Path(__file__).resolve().parent / "static"


class StaticFile:
    """Serves one of the files in ``STATIC_DIR`` by name; nothing else, so no path can reach outside it.

    Open to everyone: the login page needs the stylesheet, and the files hold no footage data.
    """

    auth = "open"

    def __init__(self) -> None:
        self._files = {path.name: path for path in STATIC_DIR.iterdir() if path.is_file()}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        path = self._files.get(name)
        if path is None:
            raise falcon.HTTPNotFound(description=f"no static file {name!r}")
        resp.content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.data = path.read_bytes()
