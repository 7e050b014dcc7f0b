"""API keys and review-page sessions: checked on every route but the open ones, never logged.

A key is accepted from ``X-API-Key`` (seed 000), ``Authorization: Bearer <key>``, or HTTP
basic auth with the key as the password, so a browser can open the dashboard.

A browser signs in once on ``/ui/login`` with a key and gets a session cookie instead:
signed with itsdangerous, expiring, HttpOnly, Secure, SameSite=Lax. The cookie names the key
by an HMAC fingerprint (never the key), so removing a key from ``AUTOLOG_API_KEYS`` ends its
sessions, and signing out refuses the session from then on, even a copy of its cookie
(``web.sign_ins``). A request authenticated by the cookie that could change something (any method but
GET, HEAD and OPTIONS) must also carry the session's CSRF token, which only the session's own
pages hold, in the ``X-CSRF-Token`` header or a ``csrf_token`` form field. Requests with a key
are unaffected.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import quote

import falcon
from itsdangerous import BadData, URLSafeSerializer

from autolog.errors import AuthenticationFailed
from web.sign_ins import SignIns

#: The challenge sent with every 401, so browsers offer a login for the dashboard.
CHALLENGE = 'Basic realm="autolog", charset="UTF-8"'

#: The review pages' session cookie.
SESSION_COOKIE = "autolog_session"

#: Where a signed-out browser asking for a review page is sent.
LOGIN_PATH = "/ui/login"

#: The header, and the form field, that carry a cookie session's CSRF token.
CSRF_HEADER, CSRF_FIELD = "X-CSRF-Token", "csrf_token"

#: Methods that change nothing: the only ones a cookie session may use without its CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: A WSGI application.
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def offered_key(headers: Mapping[str, str | None]) -> str | None:
    """Return the key a request offers, from ``X-API-Key``, a bearer token or basic auth."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def checks_key(headers: Mapping[str, str | None], session_cookie: str | None) -> bool:
    """Tell whether a request is judged by its key rather than by its session cookie.

    A key offered wins over a cookie (a script with a key is not a browser session), and a
    request with neither must offer a key (its refusal names what to send).
    """
    return offered_key(headers) is not None or not session_cookie


def is_valid_key(offered: str | None, keys: Sequence[str]) -> bool:
    """Compare ``offered`` with every key in constant time."""
    if not offered:
        return False
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(offered.encode(), key.encode())
    return matched


def check_key(headers: Mapping[str, str | None], keys: Sequence[str]) -> None:
    """Raise unless the request offers one of ``keys``.

    Raises:
        AuthenticationFailed: no keys are configured, or the request has none or a wrong one.
    """
    if not keys:
        raise AuthenticationFailed("no API keys are configured: set AUTOLOG_API_KEYS")
    offered = offered_key(headers)
    if offered is None:
        raise AuthenticationFailed("send an API key in the X-API-Key header")
    if not is_valid_key(offered, keys):
        raise AuthenticationFailed("the API key is not valid")


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the fingerprint of the key it signed in with, its CSRF token, its expiry."""

    key_id: str
    csrf_token: str
    #: Unix time, in seconds, after which the session is refused.
    expires_at: float


class SessionCookies:
    """Issues and reads the signed session cookie of the review pages.

    Args:
        keys: the API keys a browser may sign in with.
        secret: signs the cookie; None derives one from ``keys``.
        ttl_s: how long a session lasts, in seconds.
        sign_ins: where sessions signed out early, and failed sign-ins, are kept; None keeps
            neither (a signed-out cookie then stays valid until it expires).
        clock: the current Unix time, in seconds.
    """

    def __init__(self, keys: Sequence[str], *, secret: str | None, ttl_s: int, sign_ins: SignIns | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys = tuple(keys)
        self.ttl_s = ttl_s
        self.sign_ins = sign_ins
        self._clock = clock
        if secret is None:
            secret = hmac.new(b"autolog session secret", "\n".join(sorted(self._keys)).encode(),
                              hashlib.sha256).hexdigest()
        self._secret = secret.encode()
        self._serializer = URLSafeSerializer(secret, salt="autolog.session")

    def _key_id(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, key: str) -> tuple[str, Session]:
        """Sign in with ``key``: return the cookie's value and the session it holds.

        Raises:
            AuthenticationFailed: no keys are configured, or ``key`` is not one of them.
        """
        check_key({"x-api-key": key}, self._keys)
        session = Session(key_id=self._key_id(key), csrf_token=secrets.token_urlsafe(32),
                          expires_at=self._clock() + self.ttl_s)
        value = self._serializer.dumps({"k": session.key_id, "c": session.csrf_token, "e": session.expires_at})
        return value, session

    def read(self, value: str) -> Session:
        """Return the session a cookie holds.

        Raises:
            AuthenticationFailed: the cookie was not signed here, was altered, has expired,
                names a key that is no longer configured, or its session was signed out.
        """
        try:
            data = self._serializer.loads(value)
        except BadData as ex:
            raise AuthenticationFailed("the session cookie is not valid: sign in again") from ex
        if not (isinstance(data, dict) and isinstance(data.get("k"), str) and isinstance(data.get("c"), str)
                and isinstance(data.get("e"), int | float)):
            raise AuthenticationFailed("the session cookie is not valid: sign in again")
        session = Session(key_id=data["k"], csrf_token=data["c"], expires_at=float(data["e"]))
        if self._clock() >= session.expires_at:
            raise AuthenticationFailed("the session has expired: sign in again")
        if not any(hmac.compare_digest(session.key_id.encode(), self._key_id(key).encode()) for key in self._keys):
            raise AuthenticationFailed("the key this session signed in with is no longer accepted")
        if self.sign_ins is not None and self.sign_ins.is_signed_out(session.csrf_token):
            raise AuthenticationFailed("this session was signed out: sign in again")
        return session

    def sign_out(self, session: Session) -> None:
        """Refuse ``session`` from now on, until it would have expired."""
        if self.sign_ins is not None:
            self.sign_ins.sign_out(session.csrf_token, expires_at=session.expires_at)

    def set_cookie(self, resp: falcon.Response, value: str) -> None:
        """Set the session cookie: HttpOnly, Secure, SameSite=Lax, for the whole site, expiring with the session."""
        resp.set_cookie(SESSION_COOKIE, value, max_age=self.ttl_s, path="/", secure=True, http_only=True,
                        same_site="Lax")

    @staticmethod
    def clear_cookie(resp: falcon.Response) -> None:
        """Tell the browser to forget the session cookie: empty, expired, with the same attributes it was set with."""
        resp.set_cookie(SESSION_COOKIE, "", max_age=0, expires=datetime.fromtimestamp(0, UTC), path="/",
                        secure=True, http_only=True, same_site="Lax")


def _csrf_token(req: falcon.Request) -> str:
    token = req.get_header(CSRF_HEADER)
    if token is None and (req.content_type or "").startswith(falcon.MEDIA_URLENCODED):
        form = req.get_media(default_when_empty={})
        field = form.get(CSRF_FIELD) if isinstance(form, dict) else None
        token = field if isinstance(field, str) else None
    return token or ""


def from_a_page(req: falcon.Request) -> bool:
    """Whether ``req`` comes from a review page: a route under ``/ui/`` (the pages' streams and counts), or a
    script's call to the JSON API, which always sends the ``X-CSRF-Token`` header (``web/ui/static/ui.js``)."""
    return req.path.startswith("/ui/") or req.get_header(CSRF_HEADER) is not None


def login_redirect(req: falcon.Request) -> falcon.HTTPSeeOther:
    """Return the redirect that sends a signed-out browser to the login page, and back after."""
    return falcon.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(req.relative_uri, safe='')}")


class ApiKeyAuth:
    """Falcon middleware: every resource needs a key or a session unless it sets ``auth = "open"`` or ``"webhook"``.

    A resource with ``auth = "page"`` is a review page: a signed-out browser is redirected to
    the login page instead of answered 401. ``req.context.session`` is the cookie's session,
    or None when the request offered a key.
    """

    def __init__(self, keys: Sequence[str], sessions: SessionCookies) -> None:
        self._keys = tuple(keys)
        self._sessions = sessions

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object, params: object) -> None:
        mode = getattr(resource, "auth", "api_key")
        if mode not in ("api_key", "page"):
            return
        req.context.session = None
        headers = {"x-api-key": req.get_header("X-API-Key"), "authorization": req.auth}
        cookies = req.get_cookie_values(SESSION_COOKIE)
        cookie = cookies[0] if cookies else None
        if cookie is None or checks_key(headers, cookie):
            try:
                check_key(headers, self._keys)
            except AuthenticationFailed:
                if mode == "page":
                    raise login_redirect(req) from None
                raise
            return
        try:
            session = self._sessions.read(cookie)
        except AuthenticationFailed as ex:
            if mode == "page":
                raise login_redirect(req) from None
            # No basic-auth challenge: a page's script gets a plain 401, not a browser login dialog.
            raise falcon.HTTPUnauthorized(description=ex.reason) from None
        if req.method not in SAFE_METHODS and not hmac.compare_digest(_csrf_token(req).encode(),
                                                                       session.csrf_token.encode()):
            raise falcon.HTTPForbidden(description="the CSRF token is missing or wrong: reload the page")
        req.context.session = session


class DashboardGuard:
    """WSGI middleware: requests under ``prefix`` need a key, or a review-page session, before they reach the dashboard.

    A browser signed in on the review pages opens the dashboard with its session cookie (no
    basic-auth dialog). The dashboard's own actions (requeue, delete) are POSTs it guards
    with its own CSRF token (a double-submit cookie), so the session needs no token of ours.

    Args:
        sessions: reads the review pages' session cookie.
    """

    def __init__(self, app: WsgiApp, *, prefix: str, keys: Sequence[str], sessions: SessionCookies) -> None:
        self._app = app
        self._prefix = prefix
        self._keys = tuple(keys)
        self._sessions = sessions

    def _check(self, environ: dict[str, Any]) -> None:
        headers = {"x-api-key": environ.get("HTTP_X_API_KEY"), "authorization": environ.get("HTTP_AUTHORIZATION")}
        cookie = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookie.load(environ.get("HTTP_COOKIE", ""))
        session = cookie.get(SESSION_COOKIE)
        value = session.value if session is not None else None
        if value is None or checks_key(headers, value):
            check_key(headers, self._keys)
        else:
            self._sessions.read(value)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != self._prefix and not path.startswith(self._prefix + "/"):
            return self._app(environ, start_response)
        try:
            self._check(environ)
        except AuthenticationFailed as ex:
            body = json.dumps({"title": "401 Unauthorized", "description": ex.reason}).encode()
            start_response("401 Unauthorized", [("Content-Type", "application/json"),
                                                ("Content-Length", str(len(body))), ("WWW-Authenticate", CHALLENGE)])
            return [body]
        if path == self._prefix:
            start_response("308 Permanent Redirect", [("Location", self._prefix + "/"), ("Content-Type", "text/plain"),
                                                      ("Content-Length", "0")])
            return [b""]
        return self._app(environ, start_response)
