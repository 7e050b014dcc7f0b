"""Errors the operator CLI and the pool manager raise on purpose."""

from __future__ import annotations

from autolog.errors import AutologError


class OpsError(AutologError):
    """Base class for errors of the operator tools."""


class UsageError(OpsError):
    """Raised when a command's arguments cannot be acted on (e.g. ``--id`` with two paths)."""


class PoolError(OpsError):
    """Raised when a pool name is unknown or a pool cannot be started."""


class DemoMediaFailed(OpsError):
    """Raised when ``ops/make_test_media.sh`` cannot make the demo clips."""
