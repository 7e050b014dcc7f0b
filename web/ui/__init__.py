"""The review pages at ``/ui``: the library, one item, login and logout, served by the API's Falcon app.

Templates (Jinja2), a stylesheet and plain scripts ship in this package; nothing is built or
fetched. The pages' scripts call the JSON API with the session cookie (``web.auth``).
"""

from __future__ import annotations

import falcon

from web.auth import SessionCookies
from web.services import ApiServices
from web.ui.assets import StaticFile
from web.ui.live import LibraryCounts, LibraryProgress
from web.ui.login import Login, Logout
from web.ui.pages import ItemPage, Library
from web.ui.render import Pages

__all__ = ["add_ui_routes"]


def add_ui_routes(app: falcon.App[falcon.Request, falcon.Response], services: ApiServices,
                  sessions: SessionCookies) -> None:
    """Add the review pages' routes to ``app``."""
    pages = Pages()
    app.add_route("/ui", Library(services, pages))
    app.add_route("/ui/items/{item_id}", ItemPage(services, pages))
    app.add_route("/ui/login", Login(pages, sessions))
    app.add_route("/ui/logout", Logout(sessions))
    app.add_route("/ui/progress", LibraryProgress(services))
    app.add_route("/ui/counts", LibraryCounts(services))
    app.add_route("/ui/static/{name}", StaticFile())
