"""The review pages' Jinja2 environment: templates from this package, HTML autoescaped."""

from __future__ import annotations

import json
from typing import Any

import falcon
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from web.auth import CSRF_FIELD, CSRF_HEADER
from web.ui.views import STATUS_TONES


class Pages:
    """Renders the review pages' templates into responses."""

    def __init__(self) -> None:
        self._environment = Environment(loader=PackageLoader("web.ui", "templates"),
                                        autoescape=select_autoescape(["html"]), undefined=StrictUndefined)
        self._environment.globals.update(csrf_field=CSRF_FIELD, csrf_header=CSRF_HEADER,
                                         status_tones=json.dumps(STATUS_TONES),
                                         status_tones_map=STATUS_TONES)

    def render(self, req: falcon.Request, resp: falcon.Response, template: str, **values: Any) -> None:
        """Render ``template`` into ``resp`` as HTML, with the session's CSRF token when signed in by cookie."""
        session = getattr(req.context, "session", None)
        resp.content_type = falcon.MEDIA_HTML
        # Pages hold the CSRF token and item data: never cached, never framed by another site.
        resp.set_header("Cache-Control", "no-store")
        resp.set_header("X-Frame-Options", "DENY")
        resp.set_header("Content-Security-Policy",
                        "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
                        "base-uri 'none'; form-action 'self'")
        resp.text = self._environment.get_template(template).render(
            csrf_token=session.csrf_token if session is not None else "", signed_in=session is not None, **values)
