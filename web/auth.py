"""API keys: checked in constant time on every route but the open ones, and never logged.

A key is accepted from ``X-API-Key`` (seed 000), ``Authorization: Bearer <key>``, or HTTP
basic auth with the key as the password, so a browser can open the dashboard.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import falcon

from autolog.errors import AuthenticationFailed

#: The challenge sent with every 401, so browsers offer a login for the dashboard.
CHALLENGE = 'Basic realm="autolog", charset="UTF-8"'

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


class ApiKeyAuth:
    """Falcon middleware: every resource needs a key unless it sets ``auth = "open"`` or ``"webhook"``."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = tuple(keys)

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object, params: object) -> None:
        if getattr(resource, "auth", "api_key") != "api_key":
            return
        check_key({"x-api-key": req.get_header("X-API-Key"), "authorization": req.auth}, self._keys)


class DashboardGuard:
    """WSGI middleware: requests under ``prefix`` need a key before they reach the dashboard."""

    def __init__(self, app: WsgiApp, *, prefix: str, keys: Sequence[str]) -> None:
        self._app = app
        self._prefix = prefix
        self._keys = tuple(keys)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != self._prefix and not path.startswith(self._prefix + "/"):
            return self._app(environ, start_response)
        try:
            check_key({"x-api-key": environ.get("HTTP_X_API_KEY"), "authorization": environ.get("HTTP_AUTHORIZATION")},
                      self._keys)
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
