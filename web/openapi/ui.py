"""Paths of the review pages (``/ui``): HTML for browsers, described so the document lists every route."""

from __future__ import annotations

from web.openapi.paths import ITEM, op, path, query
from web.openapi.schemas import JSON, SCHEMAS

#: Status filter of the library, as in ``GET /items``.
STATUS = query("status", SCHEMAS["Item"]["properties"]["status"])


def _html(operation: JSON, description: str) -> JSON:
    """Make ``operation``'s success an HTML page, answered 303 to the login page when signed out."""
    ok = next(code for code in operation["responses"] if code.startswith("2"))
    operation["responses"][ok] = {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}
    operation["responses"]["303"] = {"description": "Signed out: sent to /ui/login?next=..."}
    return operation


def ui_paths() -> dict[str, JSON]:
    """The review pages, their login, their live progress stream and the library's status counts."""
    session = ("A page for people: needs a session cookie from /ui/login (or an API key). Signed-out browsers "
               "are redirected to the login page.")
    login_form = {"type": "object", "required": ["key"], "properties": {
        "key": {"type": "string", "description": "One of the API keys."},
        "next": {"type": "string", "description": "The /ui page to go to after signing in."}}}
    return {
        "/ui": {"get": _html(op("The library: every item as a card", "200", None, tag="ui", errors="400",
                                params=[STATUS, query("cursor", {"type": "string"},
                                                      description="The last item id of the previous page."),
                                        query("q", {"type": "string"},
                                              description="A search: the page opens on its results (from "
                                                          "`GET /items?q=`) in place of the cards."),
                                        query("deleted", {"type": "string"},
                                              description="The id of an item just deleted from its page, "
                                                          "named in a notice.")],
                                description=session), "The library page")},
        "/ui/items/{item_id}": {"get": _html(op("One item's review page", "200", None, tag="ui", errors="404",
                                                params=[ITEM], description=session), "The item page")},
        "/ui/login": {
            "get": _html(op("The login form", "200", None, tag="ui", secure=False,
                            params=[query("next", {"type": "string"})]), "The login page"),
            "post": {**op("Sign in with an API key", "303", None, tag="ui", errors="401", secure=False,
                          description="Sets the session cookie (signed, expiring, HttpOnly, Secure, SameSite=Lax) "
                                      "and redirects to `next`. A wrong key shows the form again with 401; a form "
                                      "posted from another origin is 403."),
                     "requestBody": {"required": True,
                                     "content": {"application/x-www-form-urlencoded": {"schema": login_form}}}},
        },
        "/ui/logout": {"post": op("Sign out: clear the session cookie", "303", None, tag="ui", errors="403",
                                  description="Needs the session's CSRF token (`csrf_token` field or "
                                              "`X-CSRF-Token` header), as every unsafe request with the cookie.")},
        "/ui/progress": {"get": _progress()},
        "/ui/counts": {"get": _counts()},
        "/ui/static/{name}": {"get": {**op("A stylesheet, script or icon of the review pages", "200", None, tag="ui",
                                           errors="404", secure=False, params=[path("name")])}},
    }


def _progress() -> JSON:
    operation = op("The progress of a page of items as Server-Sent Events", "200", None, tag="ui", errors="400",
                   params=[query("ids", {"type": "string"}, required=True,
                                 description="Up to 48 item ids, comma-separated."),
                           query("max_s", {"type": "number", "minimum": 0, "maximum": 300, "default": 300},
                                 description="End the stream after this many seconds.")],
                   description="Each item's latest state, then every new event of any of them, for 300 s; "
                               "a quiet stream sends a `: keep-alive` comment every 5 s.")
    operation["responses"]["200"] = {"description": "Server-Sent Events",
                                     "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    return operation


def _counts() -> JSON:
    operation = op("How many items are at each status: the library's filter chips", "200", None, tag="ui",
                   description="Every status, zero included, and the total; the library asks again as its items "
                               "move and every few seconds while it is shown.")
    statuses = SCHEMAS["Item"]["properties"]["status"]
    schema = {"type": "object", "required": ["total", "statuses"], "properties": {
        "total": {"type": "integer", "minimum": 0},
        "statuses": {"type": "object", "description": "Items at each status, keyed by the status.",
                     "propertyNames": statuses, "additionalProperties": {"type": "integer", "minimum": 0}}}}
    operation["responses"]["200"]["content"] = {"application/json": {"schema": schema}}
    return operation
