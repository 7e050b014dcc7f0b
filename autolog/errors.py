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


class DiskFull(TransientError):
    """Raised when a disk autolog writes to has no space left: the machine's fault, not the footage's.

    Waited out without spending a retry (``middleware.Retries``): the step runs again once
    space returns.
    """

    def __init__(self, path: str, free_bytes: int, total_bytes: int) -> None:
        super().__init__(f"no space left on the disk holding {path} ({free_bytes:,} bytes free of "
                         f"{total_bytes:,}); the step runs again once space is freed")
        self.path = path
        self.free_bytes = free_bytes
        self.total_bytes = total_bytes


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
    """Raised when an item is not in the state an action needs (a conflict: HTTP 409, CLI exit code 3).

    Args:
        expected: the state the action needs; actual: the state the item is in.
        reason: the whole message, when the generic "is at ACTUAL; this needs EXPECTED" would
            not say what to do instead.
    """

    def __init__(self, item_id: str, expected: str, actual: str | None, *, reason: str | None = None) -> None:
        super().__init__(reason or f"item {item_id!r} is at {actual!r}; this needs {expected!r}")
        self.item_id = item_id
        self.expected = expected
        self.actual = actual


class ItemCancelled(TransitionRefused):
    """Raised when an action needs an item that is not cancelled."""

    def __init__(self, item_id: str) -> None:
        AutologError.__init__(self, f"item {item_id!r} is cancelled; uncancel it first")
        self.item_id = item_id
        self.expected = "not cancelled"
        self.actual = "cancelled"


class UnknownStep(AutologError):
    """Raised when a name is no step's name, number, queue or seed name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no step is named {name!r}; use a step name (file_info ... transcription), "
                         "its number, its queue or its seed name (step1_file_info)")
        self.name = name


class InvalidSource(PermanentError):
    """Raised when a source path is not under a configured media root."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class InvalidItemId(AutologError):
    """Raised when an item id is empty, too long, all dots, or has characters outside [A-Za-z0-9._-]."""

    def __init__(self, item_id: str) -> None:
        super().__init__(f"invalid item id {item_id!r}: use 1-64 of A-Z a-z 0-9 . _ -, not dots alone")
        self.item_id = item_id


class InvalidSearchQuery(AutologError):
    """Raised when a search query is blank or too long; any other text is a valid query."""

    def __init__(self, query: str, reason: str) -> None:
        super().__init__(f"invalid search query: {reason}")
        self.query = query
        self.reason = reason


# --- Configuration and services ------------------------------------------------------------


class ConfigError(AutologError):
    """Raised when an AUTOLOG_* setting cannot be parsed."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class StoreUnavailable(TransientError):
    """Raised when the database cannot be reached."""


class StaleRun(AutologError):
    """Raised when a step run's write is fenced off: the item moved on, or a newer run took over.

    The run's work is not stored; the current run (or the item's new status) stands. Not a
    failure of the item: the message is acknowledged, not retried.
    """

    def __init__(self, item_id: str, token: str) -> None:
        super().__init__(f"run {token!r} of item {item_id!r} is no longer current; its writes are refused")
        self.item_id = item_id
        self.token = token


class AnalysisError(AutologError):
    """Base class for failures of the analysis step."""


class MalformedAnalysis(AnalysisError, PermanentError):
    """Raised when an analyzer returns output that does not match the schema."""


class MalformedTranscript(AnalysisError, PermanentError):
    """Raised when a hosted transcriber returns output that does not match its schema."""


class UpstreamError(AnalysisError):
    """Base class for failures reported by a model provider's API."""

    def __init__(self, provider: str, reason: str, *, code: int | None = None) -> None:
        super().__init__(f"{provider}: {reason}" if code is None else f"{provider}: HTTP {code}: {reason}")
        self.provider = provider
        self.reason = reason
        self.code = code


class UpstreamRateLimited(UpstreamError, TransientError):
    """Raised when a provider answers 429 / RESOURCE_EXHAUSTED; ``retry_after_s`` is its delay."""

    def __init__(self, provider: str, reason: str, *, retry_after_s: float, code: int | None = 429) -> None:
        super().__init__(provider, reason, code=code)
        self.retry_after_s = retry_after_s


class UpstreamUnavailable(UpstreamError, TransientError):
    """Raised when a provider fails with a 5xx, times out or cannot be reached."""


class UpstreamRejected(UpstreamError, PermanentError):
    """Raised when a provider refuses a request (a 4xx other than 429); retrying cannot help."""


# --- Sources, jobs, queues and webhooks ----------------------------------------------------


class SourceFetchFailed(TransientError):
    """Raised when a remote source cannot be downloaded for a reason a retry may fix."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class SourceChanged(TransientError):
    """Raised when a source file changes while a step reads it: it is read again once settled."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class JobNotFound(AutologError):
    """Raised when no message with the given id has been recorded."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class QueueNotFound(AutologError):
    """Raised when a queue name is not one of autolog's queues."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no queue {name!r}")
        self.name = name


class DeadLetterNotFound(AutologError):
    """Raised when no dead-lettered message has the given id."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"no dead-lettered message {message_id!r}")
        self.message_id = message_id


class ArtifactNotFound(AutologError):
    """Raised when an item has no artifact of the given kind and position, or its file is gone."""

    def __init__(self, item_id: str, kind: str, position: int, *, reason: str | None = None) -> None:
        super().__init__(f"item {item_id!r} has no {kind} artifact at position {position}"
                         + (f": {reason}" if reason else ""))
        self.item_id = item_id
        self.kind = kind
        self.position = position


class AuthenticationFailed(AutologError):
    """Raised when an API key, bearer token or webhook signature is missing or wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
