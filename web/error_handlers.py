"""Domain errors to HTTP, in one place: every error is JSON ``{"title", "description"}``, never a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import falcon
import redis
from sqlalchemy.exc import InterfaceError, OperationalError

from autolog.errors import (
    ArtifactNotFound,
    AuthenticationFailed,
    AutologError,
    ConfigError,
    DeadLetterNotFound,
    InvalidItemId,
    InvalidSearchQuery,
    InvalidSource,
    ItemExists,
    ItemNotFound,
    JobNotFound,
    QueueNotFound,
    StoreUnavailable,
    TransitionRefused,
    UnknownStep,
)
from autolog.exports import InvalidExportOption, ItemsNotLogged, MixedFrameRates, NotExportable, UnknownExportFormat
from ops.errors import PoolError
from web.auth import CHALLENGE, from_a_page

logger = logging.getLogger(__name__)

#: Domain errors and the HTTP error each becomes; the error's message is the description.
STATUS_OF: dict[type[Exception], Callable[..., falcon.HTTPError]] = {
    ItemNotFound: falcon.HTTPNotFound,
    JobNotFound: falcon.HTTPNotFound,
    QueueNotFound: falcon.HTTPNotFound,
    DeadLetterNotFound: falcon.HTTPNotFound,
    ArtifactNotFound: falcon.HTTPNotFound,
    UnknownExportFormat: falcon.HTTPNotFound,
    InvalidExportOption: falcon.HTTPBadRequest,
    InvalidItemId: falcon.HTTPBadRequest,
    InvalidSearchQuery: falcon.HTTPBadRequest,
    InvalidSource: falcon.HTTPBadRequest,
    UnknownStep: falcon.HTTPBadRequest,
    PoolError: falcon.HTTPBadRequest,
    ItemExists: falcon.HTTPConflict,
    TransitionRefused: falcon.HTTPConflict,
    ItemsNotLogged: falcon.HTTPConflict,
    MixedFrameRates: falcon.HTTPConflict,
    NotExportable: falcon.HTTPConflict,
    StoreUnavailable: falcon.HTTPServiceUnavailable,
    ConfigError: falcon.HTTPServiceUnavailable,
}


def _domain(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
    for kind in type(ex).__mro__:
        if kind in STATUS_OF:
            raise STATUS_OF[kind](description=str(ex))
    _unexpected(req, resp, ex, params)


def _unauthorized(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
    reason = ex.reason if isinstance(ex, AuthenticationFailed) else "unauthorized"
    # A review page's script (signed out in another tab, or its cookie expired and dropped) gets a plain 401,
    # which it turns into the login page: a challenge would open the browser's basic-auth dialog over the page.
    raise falcon.HTTPUnauthorized(description=reason, challenges=None if from_a_page(req) else [CHALLENGE])


def _redis_down(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
    logger.warning("Redis is unavailable for %s %s: %s", req.method, req.path, ex)
    raise falcon.HTTPServiceUnavailable(description=f"Redis is unavailable: {type(ex).__name__}")


def _database_down(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
    logger.warning("The database failed for %s %s: %s", req.method, req.path, ex)
    raise falcon.HTTPServiceUnavailable(description=f"the database is unavailable: {type(ex).__name__}")


def _unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]) -> None:
    # The process boundary: anything unforeseen is logged once, with its traceback, and the
    # client gets a plain 500 without one.
    logger.error("Unhandled error in %s %s.", req.method, req.path, exc_info=ex)
    raise falcon.HTTPInternalServerError(description="an unexpected error occurred; it has been logged")


def serialize_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError) -> None:
    """Write every error as JSON with a title and a description."""
    resp.content_type = falcon.MEDIA_JSON
    description = ex.description or f"{ex.title}: {req.method} {req.path}"
    resp.text = json.dumps({"title": ex.title, "description": description})


def add_error_handlers(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """Register the handlers and the serializer on ``app``; Falcon picks the most specific by MRO."""
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(AutologError, _domain)
    app.add_error_handler(AuthenticationFailed, _unauthorized)
    app.add_error_handler(redis.RedisError, _redis_down)
    app.add_error_handler(OperationalError, _database_down)
    app.add_error_handler(InterfaceError, _database_down)
    app.set_error_serializer(serialize_error)
