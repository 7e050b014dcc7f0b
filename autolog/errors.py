"""The autolog error tree.

``PermanentError`` and ``TransientError`` drive retries: actors list
``PermanentError`` in ``throws=`` so bad input is never retried, while
transient failures are retried with backoff.
"""

from __future__ import annotations


class AutologError(Exception):
    """Base class for every error autolog raises on purpose."""


# --- Errors that drive retries -------------------------------------------------------------


class PermanentError(AutologError):
    """Raised when retrying cannot help: bad input or unsupported media."""


class TransientError(AutologError):
    """Raised when a retry may succeed: storage, network or a busy service."""


# --- Media ---------------------------------------------------------------------------------


class MediaError(PermanentError):
    """Raised when a file cannot be processed as footage."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class EmptyMedia(MediaError):
    """Raised when a file has zero bytes."""


class NotMedia(MediaError):
    """Raised when a file is not a container ffprobe understands."""


class UnsupportedMedia(MediaError):
    """Raised when a file is media but has nothing autolog can log (no video stream)."""


class CorruptMedia(MediaError):
    """Raised when a file probes but does not decode fully."""


class MediaMissing(MediaError):
    """Raised when a source file does not exist."""


class ToolFailed(TransientError):
    """Raised when ffmpeg or ffprobe fail or time out for a reason other than the input."""

    def __init__(self, tool: str, reason: str) -> None:
        super().__init__(f"{tool}: {reason}")
        self.tool = tool
        self.reason = reason


# --- Items and the state machine -----------------------------------------------------------


class ItemNotFound(AutologError):
    """Raised when no item has the given id."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"no item {item_id!r}")
        self.item_id = item_id


class ItemExists(AutologError):
    """Raised when creating an item whose id is already taken."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"item {item_id!r} already exists")
        self.item_id = item_id


class TransitionRefused(AutologError):
    """Raised when an item is not at the status an action expects."""

    def __init__(self, item_id: str, expected: str, actual: str | None) -> None:
        super().__init__(f"item {item_id!r} is at {actual!r}, not {expected!r}")
        self.item_id = item_id
        self.expected = expected
        self.actual = actual


class InvalidSource(PermanentError):
    """Raised when a source path is not under a configured media root."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class InvalidItemId(AutologError):
    """Raised when an item id is empty, too long or has characters outside [A-Za-z0-9._-]."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"invalid item id {item_id!r}: use 1-64 of A-Z a-z 0-9 . _ -")
        self.item_id = item_id


# --- Configuration and services ------------------------------------------------------------


class ConfigError(AutologError):
    """Raised when an AUTOLOG_* setting cannot be parsed."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class StoreUnavailable(TransientError):
    """Raised when the database cannot be reached."""


class AnalysisError(AutologError):
    """Base class for failures of the analysis step."""


class MalformedAnalysis(AnalysisError, PermanentError):
    """Raised when an analyzer returns output that does not match the schema."""
