"""``/ui/login`` and ``/ui/logout``: sign a browser in with an API key, and out again."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import falcon

from autolog.errors import AuthenticationFailed
from web.auth import LOGIN_PATH, SessionCookies
from web.ui.render import Pages

#: Where a browser goes after signing in when it was not sent from another page.
HOME = "/ui"


def safe_next(target: object) -> str:
    """Return ``target`` if it is a review page of this site (with its query: a filter, a search), else the library.

    No open redirect: another site, a scheme-relative ``//host`` or a path outside ``/ui`` is the library.
    """
    if not isinstance(target, str):
        return HOME
    parts = urlsplit(target)
    path = parts.path
    if parts.scheme or parts.netloc or "\\" in target or not (path == HOME or path.startswith(HOME + "/")):
        return HOME
    return target


def session_length(ttl_s: int) -> str:
    """Say how long a sign-in lasts: ``12 hours``, ``90 minutes``."""
    return f"{ttl_s // 3600} hours" if ttl_s % 3600 == 0 and ttl_s > 3600 else f"{ttl_s // 60} minutes"


def _same_origin(req: falcon.Request) -> bool:
    """True unless the browser says the form was posted from another site (login CSRF)."""
    origin = req.get_header("Origin")
    return origin is None or origin in {f"{req.scheme}://{req.netloc}", f"{req.forwarded_scheme}://{req.forwarded_host}"}


def client_address(req: falcon.Request) -> str:
    """Return the address a sign-in comes from, for its throttle.

    The API listens on loopback and is reached from other machines through a TLS proxy on its
    host (README, *Review pages*), so every remote reviewer's request comes from that proxy's
    address: counted by it, one person's typos would lock out everyone. A request from a
    loopback peer that carries ``X-Forwarded-For`` is counted by the address the proxy saw
    (the header's last entry, which the proxy itself appends); any other peer by its own
    address (a header from elsewhere is not trusted).
    """
    peer = req.remote_addr or "unknown"
    try:
        loopback = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        loopback = False
    forwarded = req.get_header("X-Forwarded-For") if loopback else None
    return (forwarded.split(",")[-1].strip() or peer) if forwarded else peer


class Login:
    """``GET /ui/login`` shows the form; ``POST /ui/login`` checks the key and sets the session cookie.

    Failed sign-ins are counted per client address (``client_address``, ``web.sign_ins``); past the limit the form
    answers 429 with ``Retry-After`` until the window ends, whatever key is offered.
    """

    auth = "open"

    def __init__(self, pages: Pages, sessions: SessionCookies) -> None:
        self._pages = pages
        self._sessions = sessions

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._pages.render(req, resp, "login.html", next=safe_next(req.get_param("next")), error=None,
                          session_length=session_length(self._sessions.ttl_s))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not (req.content_type or "").startswith(falcon.MEDIA_URLENCODED):
            raise falcon.HTTPUnsupportedMediaType(description=f"post the login form as {falcon.MEDIA_URLENCODED}")
        form = req.get_media(default_when_empty={})
        target = safe_next(form.get("next"))
        if not _same_origin(req):
            raise falcon.HTTPForbidden(description="the login form was posted from another site")
        key = form.get("key")
        sign_ins, address = self._sessions.sign_ins, client_address(req)
        wait_s = sign_ins.wait_s(address) if sign_ins is not None else 0
        if wait_s:
            resp.status = falcon.HTTP_429
            resp.set_header("Retry-After", str(wait_s))
            self._pages.render(req, resp, "login.html", next=target,
                               session_length=session_length(self._sessions.ttl_s),
                               error=f"too many failed sign-ins from this address: try again in {wait_s} s")
            return
        try:
            value, _ = self._sessions.issue(key if isinstance(key, str) else "")
        except AuthenticationFailed as ex:
            if sign_ins is not None:
                sign_ins.failed(address)
            resp.status = falcon.HTTP_401
            self._pages.render(req, resp, "login.html", next=target, error=ex.reason,
                               session_length=session_length(self._sessions.ttl_s))
            return
        if sign_ins is not None:
            sign_ins.succeeded(address)
        self._sessions.set_cookie(resp, value)
        resp.status, resp.location = falcon.HTTP_303, target


class Logout:
    """``POST /ui/logout``: end the session (refused from now on), forget its cookie, go back to the login page."""

    auth = "page"

    def __init__(self, sessions: SessionCookies) -> None:
        self._sessions = sessions

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = getattr(req.context, "session", None)
        if session is not None:
            self._sessions.sign_out(session)
        SessionCookies.clear_cookie(resp)
        resp.status, resp.location = falcon.HTTP_303, LOGIN_PATH
