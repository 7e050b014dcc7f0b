"""The OpenAPI 3.1 document of the API, built from the path and schema tables."""

from __future__ import annotations

from typing import Any

from web.auth import SESSION_COOKIE
from web.openapi.paths import QUEUED_NOTE, item_paths, operations_paths, seed_paths, system_paths
from web.openapi.schemas import SCHEMAS
from web.openapi.ui import ui_paths

__all__ = ["build_document"]

DESCRIPTION = (
    "The autolog API: seed 000's LF AutoLog routes, a resource API for items, jobs, queues, dead letters, "
    "workers and discovery, and ingress webhooks. Every route but /health and /metrics needs an API key "
    "(`X-API-Key`, a bearer token, or basic auth with the key as password). Errors are JSON "
    "`{\"title\", \"description\"}`. Nothing accepted is lost: " + QUEUED_NOTE +
    " Routes that only act on Redis (queue status, purges, dead letters, workers) answer 503 while it is down. "
    "dramatiq-dashboard is served at /dashboard/ behind the same keys. The review pages under /ui/ sign a "
    "browser in with a key and a session cookie; the API accepts that cookie too, with the session's CSRF "
    "token in `X-CSRF-Token` on every request that is not GET, HEAD or OPTIONS."
)


def build_document(version: str = "0.1.0") -> dict[str, Any]:
    """Return the OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "autolog", "version": version, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}, {"basicAuth": []}, {"sessionCookie": []}],
        "paths": {**seed_paths(), **item_paths(), **operations_paths(), **system_paths(), **ui_paths()},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "basicAuth": {"type": "http", "scheme": "basic",
                              "description": "Any user name; an API key as password."},
                "minioToken": {"type": "http", "scheme": "bearer"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                                  "description": "Set by POST /ui/login; with it, requests other than GET, HEAD "
                                                 "and OPTIONS also need the session's `X-CSRF-Token`."},
            },
        },
    }
