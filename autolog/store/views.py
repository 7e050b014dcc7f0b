"""Frozen, JSON-ready views of stored rows; what the store hands to other layers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from autolog.source_state import CUT_SHORT_DETAIL
from autolog.statuses import Status


def aware(moment: datetime) -> datetime:
    """Attach UTC to a naive datetime (SQLite drops the zone)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_ready(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in data.items()}


@dataclass(frozen=True)
class ItemView:
    """An item as stored: where it stands and its last error."""

    id: str
    source: str
    status: Status
    force_resume: bool
    prompt: str | None
    probe: dict[str, Any] | None
    has_audio: bool | None
    error: dict[str, Any] | None
    dead_lettered: bool
    cancelled: bool
    version: int
    created_at: datetime
    updated_at: datetime
    media_kind: str | None = None
    start_timecode: str | None = None
    drop_frame: bool | None = None
    nominal_fps: str | None = None
    reel: str | None = None
    source_fingerprint: dict[str, Any] | None = None
    purged: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        data = _json_ready(asdict(self))
        data["status"] = self.status.value
        return data


@dataclass(frozen=True)
class EventView:
    """One timeline entry."""

    id: int
    item_id: str
    at: datetime
    event: str
    step: str | None
    message_id: str | None
    attempt: int | None
    worker: str | None
    wait_ms: int | None
    run_ms: int | None
    from_status: str | None
    to_status: str | None
    error_type: str | None
    error_message: str | None
    detail: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict without empty fields."""
        return {key: value for key, value in _json_ready(asdict(self)).items() if value is not None}

    @property
    def reason(self) -> str | None:
        """The reason the event recorded (a wait's, a skip's), as one phrase; None when it recorded none.

        A wait for a stalled copy says why the file looks cut short (``autolog.source_state.cut_short``).
        """
        detail = self.detail or {}
        reason = detail.get("reason")
        if not reason:
            return None
        cut = detail.get(CUT_SHORT_DETAIL)
        return f"{reason}: a stalled copy, {cut}" if cut else str(reason)


@dataclass(frozen=True)
class SceneView:
    """A shot from step 3 and its representative frame."""

    position: int
    start_s: float
    end_s: float
    sample_s: float
    image_path: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class FrameView:
    """A frame record from step 5, with its speech from step 6."""

    position: int
    time_s: float
    timecode: str
    image_path: str
    description: str
    keywords: list[str]
    analysis: dict[str, Any]
    transcript: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class SegmentView:
    """A stretch of transcribed speech."""

    position: int
    start_s: float
    end_s: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class ArtifactView:
    """A file a step wrote."""

    kind: str
    position: int
    path: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class AnalysisView:
    """Step 4's stored result."""

    provider: str
    model: str
    prompt: str | None
    result: dict[str, Any]
    input_tokens: int
    output_tokens: int
    cost_usd: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class NewEvent:
    """A timeline entry to record; everything but the item and the event is optional."""

    item_id: str
    event: str
    step: str | None = None
    message_id: str | None = None
    attempt: int | None = None
    worker: str | None = None
    wait_ms: int | None = None
    run_ms: int | None = None
    from_status: str | None = None
    to_status: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    detail: dict[str, Any] | None = None
    #: When it happened, if not now: a message's enqueue time is known before its event is written.
    at: datetime | None = None
