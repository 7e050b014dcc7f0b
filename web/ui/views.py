"""What the review pages show, shaped from the store's views: cards, frame rows, timeline rows, file facts.

Pure functions of the store's frozen views; the templates only lay them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autolog.media.timecode import frame_timecode
from autolog.statuses import AUDIO_ONLY, Status
from autolog.store import EventView, FrameView, ItemView, SegmentView
from web.documents import artifact_url

#: Each status's tone on the page: the colour family of its badge.
STATUS_TONES: dict[str, str] = {
    Status.PENDING_FILE_INFO.value: "pending",
    Status.FILE_INFO_COMPLETE.value: "working",
    Status.THUMBNAILS_COMPLETE.value: "working",
    Status.AWAITING_USER_INPUT.value: "waiting",
    Status.CREATING_FRAMES.value: "working",
    Status.PROCESSING_FRAME_INFO.value: "working",
    Status.GENERATING_DESCRIPTION.value: "working",
    Status.AVID_DESCRIPTION.value: "done",
}

#: The export formats the item page offers, with their labels, once the item is logged.
EXPORT_LINKS: tuple[tuple[str, str], ...] = (
    ("ale", "Avid ALE"), ("markers", "Avid markers"), ("edl", "CMX 3600 EDL"), ("srt", "SubRip subtitles"),
)


def export_links(item: ItemView) -> list[tuple[str, str]]:
    """Return the downloads the item can offer once logged: no EDL for an audio-only item (it has no picture)."""
    return [(name, label) for name, label in EXPORT_LINKS if not (name == "edl" and item.media_kind == AUDIO_ONLY)]


def tone(item: ItemView) -> str:
    """Return the item's badge tone: ``cancelled``, ``failed`` (an error is recorded) or its status's."""
    if item.cancelled:
        return "cancelled"
    if item.error or item.dead_lettered:
        return "failed"
    return STATUS_TONES[item.status.value]


def clock(seconds: float | None) -> str:
    """Return a duration as ``H:MM:SS.s`` or ``M:SS.s``; an em dash when unknown."""
    if seconds is None:
        return "—"
    minutes, rest = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def milliseconds(value: int | None) -> str:
    """Return a wait or run time in ms as ``850 ms`` or ``12.4 s``; an em dash when unknown."""
    if value is None:
        return "—"
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


def source_timecode(item: ItemView, seconds: float) -> str | None:
    """Return the source timecode of a clip time, or None when the item has no usable start and rate."""
    if not item.start_timecode or not item.nominal_fps:
        return None
    try:
        return frame_timecode(item.start_timecode, item.nominal_fps, seconds)
    except ValueError:
        return None


def file_name(source: str) -> str:
    """Return the last part of a path or ``s3://`` URL."""
    return source.rstrip("/").rsplit("/", 1)[-1] or source


@dataclass(frozen=True)
class Card:
    """One item in the library."""

    id: str
    name: str
    status: str
    tone: str
    duration: str
    start_timecode: str | None
    poster_url: str | None
    error: str | None


def card(item: ItemView, *, has_poster: bool) -> Card:
    """Return the library card of an item."""
    probe = item.probe or {}
    error = f"{item.error.get('type', 'Error')}: {item.error.get('message', '')}" if item.error else None
    return Card(id=item.id, name=file_name(item.source), status=item.status.value, tone=tone(item),
                duration=clock(probe.get("duration_s")), start_timecode=item.start_timecode,
                poster_url=artifact_url(item.id, "poster", 0) if has_poster else None, error=error)


@dataclass(frozen=True)
class FrameRow:
    """One frame record on the item page."""

    position: int
    timecode: str
    time: str
    image_url: str
    description: str
    keywords: list[str]
    transcript: str | None


def frame_rows(item_id: str, frames: list[FrameView]) -> list[FrameRow]:
    """Return the item's frame records as rows; each image is its sampled frame's artifact."""
    return [FrameRow(position=frame.position, timecode=frame.timecode, time=clock(frame.time_s),
                     image_url=artifact_url(item_id, "sample", frame.position), description=frame.description,
                     keywords=list(frame.keywords), transcript=frame.transcript) for frame in frames]


@dataclass(frozen=True)
class TranscriptLine:
    """A stretch of speech at its source timecode."""

    timecode: str
    text: str


def transcript_lines(item: ItemView, segments: list[SegmentView]) -> list[TranscriptLine]:
    """Return the transcript with each stretch at its source timecode (clip time when there is none)."""
    return [TranscriptLine(timecode=source_timecode(item, segment.start_s) or clock(segment.start_s),
                           text=segment.text) for segment in segments]


@dataclass(frozen=True)
class AttemptRow:
    """One timeline entry, with the traceback of the failure it records when the item still has it."""

    at: str
    event: str
    step: str
    attempt: int | None
    worker: str
    wait: str
    run: str
    change: str
    error: str | None
    traceback: str | None


def attempt_rows(item: ItemView, events: list[EventView]) -> list[AttemptRow]:
    """Return the timeline, oldest first; the item's last error's traceback goes with its failed event."""
    error = item.error or {}
    rows = []
    for event in events:
        traceback = None
        if (event.event == "failed" and error.get("traceback") and event.step == error.get("step")
                and event.attempt == error.get("attempt")):
            traceback = str(error["traceback"])
        message = f"{event.error_type}: {event.error_message}" if event.error_type else None
        change = f"{event.from_status} → {event.to_status}" if event.from_status and event.to_status else (
            event.to_status or "")
        rows.append(AttemptRow(at=event.at.strftime("%Y-%m-%d %H:%M:%S"), event=event.event, step=event.step or "",
                               attempt=event.attempt, worker=event.worker or "", wait=milliseconds(event.wait_ms),
                               run=milliseconds(event.run_ms), change=change, error=message, traceback=traceback))
    return rows


def file_facts(item: ItemView) -> list[tuple[str, str]]:
    """Return what step 1 found, as label and value pairs; empty before step 1 has run."""
    probe: dict[str, Any] = item.probe or {}
    if not probe:
        return []
    tracks = probe.get("audio_tracks") or []
    audio = "; ".join(
        f"#{track.get('index')} {track.get('codec')} {track.get('channels')} ch {track.get('sample_rate')} Hz"
        + (f" from {clock(track.get('start_s'))}" if track.get("start_s") else "")
        + (f" ({track['language']})" if track.get("language") else "")
        for track in tracks) or "none"
    display = (f"{probe.get('display_width')} × {probe.get('display_height')}"
               if probe.get("display_width") else "—")
    facts = [
        ("Container", str(probe.get("container", "—"))),
        ("Duration", clock(probe.get("duration_s"))),
        ("Rate", f"{probe.get('fps', 0):g} fps ({probe.get('nominal_fps', '—')})"
                 + (", variable" if probe.get("variable_frame_rate") else "")),
        ("Drop-frame", "yes" if item.drop_frame else "no"),
        ("Start timecode", f"{item.start_timecode or '—'} ({probe.get('timecode_source', 'default')})"),
        ("Reel", item.reel or "—"),
        ("Display size", display),
        ("Coded size", f"{probe.get('width')} × {probe.get('height')}" if probe.get("width") else "—"),
        ("Video codec", str(probe.get("video_codec") or "—")),
        ("Field order", str(probe.get("field_order", "—"))),
        ("Audio tracks", audio),
        ("File size", f"{probe.get('size_bytes', 0) / 1_000_000:.1f} MB"),
    ]
    return facts
