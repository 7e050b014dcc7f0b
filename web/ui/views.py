"""What the review pages show, shaped from the store's views: cards, frame rows, timeline rows, file facts.

Pure functions of the store's frozen views; the templates only lay them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autolog.exports.timing import fps_label, stored_rate
from autolog.media.probe import container_name, field_order_name
from autolog.media.timecode import frame_timecode, probed_rate, timecode_duration
from autolog.statuses import AUDIO_ONLY, Status
from autolog.store import EventView, FrameView, ItemView, SceneView, SegmentView
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
    ("ale", "Avid ALE"), ("markers", "Avid markers"), ("edl", "CMX 3600 EDL"),
    ("fcp7xml", "FCP 7 XML (Premiere, Resolve)"), ("srt", "SubRip subtitles"), ("csv", "CSV of frame records"),
)


def status_counts(counts: Mapping[str, int]) -> dict[str, Any]:
    """The library's filter chips from ``Items.count_by_status``: ``{"total": int, "statuses": {status: int}}``,
    every status in the pipeline's order, zero included (the page renders it, ``GET /ui/counts`` answers it)."""
    return {"total": sum(counts.values()), "statuses": {status.value: counts.get(status.value, 0) for status in Status}}


def export_links(item: ItemView, *, has_transcript: bool) -> list[tuple[str, str]]:
    """Return the downloads the item can offer once logged, none that would be empty.

    An audio-only item has no picture: no EDL, no markers (one a shot), no CSV of frame records. A logged item that
    ``has_transcript`` no segments (no speech heard) offers no subtitles; one still running may
    yet get them, and its links are the page's once it finishes.
    """
    audio_only = item.media_kind == AUDIO_ONLY
    silent = item.status.is_terminal and not has_transcript
    left_out = {"edl", "markers", "csv"} if audio_only else set()
    return [(name, label) for name, label in EXPORT_LINKS
            if name not in left_out and not (name == "srt" and silent)]


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


def duration(probe: dict[str, Any]) -> str:
    """Return a clip's length for people: ``M:SS.s``, or ``1 frame`` / ``12 frames`` under a second of picture.

    A clip shorter than a second would read ``0:00.0``; counting its frames at the probed rate
    says what it is. Audio and unknown rates keep the clock; an unknown duration is an em dash.
    """
    seconds, fps = probe.get("duration_s"), probe.get("fps") or 0
    if seconds is not None and probe.get("media_kind", "video") != AUDIO_ONLY and fps > 0 and seconds * fps < fps:
        frames = max(1, round(seconds * fps))
        return f"{frames} frame" if frames == 1 else f"{frames} frames"
    return clock(seconds)


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
    audio_only: bool


def card(item: ItemView, *, has_poster: bool) -> Card:
    """Return the library card of an item."""
    probe = item.probe or {}
    error = f"{item.error.get('type', 'Error')}: {item.error.get('message', '')}" if item.error else None
    return Card(id=item.id, name=file_name(item.source), status=item.status.value, tone=tone(item),
                duration=duration(probe), start_timecode=item.start_timecode,
                poster_url=artifact_url(item.id, "poster", 0) if has_poster else None, error=error,
                audio_only=item.media_kind == AUDIO_ONLY)


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


def frame_speech(frames: list[FrameView], scenes: list[SceneView], segments: list[SegmentView]) -> dict[int, str]:
    """Return each frame record's speech: every segment under the one frame whose shot it starts in.

    The rule is the search's (``autolog.store.search``): a segment belongs to the frame of the
    latest shot starting at or before the segment's start, or to the first frame when it starts
    before every shot. So a phrase spoken across a cut is listed once, where it begins.
    Shapes: ``{frame position: "text of its segments joined by spaces"}``, frames with no speech left out.
    """
    positions = {frame.position for frame in frames}
    starts = sorted((scene.start_s, scene.position) for scene in scenes if scene.position in positions)
    if not positions:
        return {}
    spoken: dict[int, list[str]] = {}
    for segment in segments:
        owner = min(positions)
        for start_s, position in starts:
            if start_s > segment.start_s:
                break
            owner = position
        if segment.text:
            spoken.setdefault(owner, []).append(segment.text)
    return {position: " ".join(texts) for position, texts in spoken.items()}


def frame_rows(item_id: str, frames: list[FrameView], scenes: list[SceneView],
               segments: list[SegmentView]) -> list[FrameRow]:
    """Return the item's frame records as rows, each with its speech (see ``frame_speech``) and sampled image."""
    speech = frame_speech(frames, scenes, segments)
    return [FrameRow(position=frame.position, timecode=frame.timecode, time=clock(frame.time_s),
                     image_url=artifact_url(item_id, "sample", frame.position), description=frame.description,
                     keywords=list(frame.keywords), transcript=speech.get(frame.position)) for frame in frames]


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
    note: str | None = None


#: The note on a ``started`` row whose message had started before and recorded no end since.
REDELIVERED_NOTE = ("started again with no end recorded for the run before: the message was delivered again "
                    "(by dramatiq after its worker was lost, or after a wait for the store)")


def _note(event: EventView, last_of_message: dict[str, str]) -> str | None:
    """Return what a timeline row needs said beside its event name, from the store's own records.

    A message put back at a graceful stop (``requeued``) or by the sweep after its worker
    stopped beating (``redelivered``) has its own event, whose reason is shown. A redelivery
    by dramatiq's own maintenance leaves none: the store sees only a second ``started`` of the
    same message with nothing between (no success, failure, skip, stop or requeue). That
    pattern is named here. Otherwise the event's recorded ``detail.reason`` (a stop's, a
    deferral's) is shown.
    """
    previous = last_of_message.get(event.message_id) if event.message_id else None
    if event.message_id:
        last_of_message[event.message_id] = event.event
    if event.event == "started" and previous == "started":
        return REDELIVERED_NOTE
    return event.reason


def attempt_rows(item: ItemView, events: list[EventView]) -> list[AttemptRow]:
    """Return the timeline, oldest first; the item's last error's traceback goes with its failed event.

    A ``started`` row of a message already started with no end recorded since carries
    ``REDELIVERED_NOTE``; rows whose event recorded a reason carry it as their note.
    """
    error = item.error or {}
    rows = []
    last_of_message: dict[str, str] = {}
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
                               run=milliseconds(event.run_ms), change=change, error=message, traceback=traceback,
                               note=_note(event, last_of_message)))
    return rows


def file_facts(item: ItemView) -> list[tuple[str, str]]:
    """Return what step 1 found, as label and value pairs; empty before step 1 has run.

    Rates read as editors write them (``59.94 fps (60000/1001)``). An audio-only item has no
    picture: its rate is the one its timecode counts at (``Timecode rate``, ``25 fps``), and
    the picture's facts (sizes, codec, field order) are left out.
    """
    probe: dict[str, Any] = item.probe or {}
    if not probe:
        return []
    tracks = probe.get("audio_tracks") or []
    audio = "; ".join(
        f"#{track.get('index')} {track.get('codec')} {track.get('channels')} ch {track.get('sample_rate')} Hz"
        + (f" from {clock(track.get('start_s'))}" if track.get("start_s") else "")
        + (f" ({track['language']})" if track.get("language") else "")
        for track in tracks) or "none"
    length, clock_length = duration(probe), clock(probe.get("duration_s"))
    audio_only, rate = item.media_kind == AUDIO_ONLY, probed_rate(probe)
    if rate is None:
        rate_text = "—"
    elif audio_only:
        rate_text = f"{fps_label(rate)} fps"
    else:
        rate_text = (f"{fps_label(rate)} fps ({stored_rate(rate)})"
                     + (", variable" if probe.get("variable_frame_rate") else ""))
    shown_length = length if length == clock_length else f"{length} ({clock_length})"
    counted = timecode_duration(probe.get("duration_s"), rate, drop_frame=bool(item.drop_frame))
    facts = [
        ("Container", container_name(probe.get("container"), item.source)),
        ("Duration", f"{counted} · {shown_length}" if counted else shown_length),
        ("Timecode rate" if audio_only else "Rate", rate_text),
        ("Drop-frame", "yes" if item.drop_frame else "no"),
        ("Start timecode", f"{item.start_timecode or '—'} ({probe.get('timecode_source', 'default')})"),
        ("Reel", item.reel or "—"),
    ]
    if not audio_only:
        facts += [
            ("Display size", f"{probe.get('display_width')} × {probe.get('display_height')}"
                             if probe.get("display_width") else "—"),
            ("Coded size", f"{probe.get('width')} × {probe.get('height')}" if probe.get("width") else "—"),
            ("Video codec", str(probe.get("video_codec") or "—")),
            ("Field order", field_order_name(probe["field_order"]).capitalize() if probe.get("field_order") else "—"),
        ]
    return [*facts, ("Audio tracks", audio), ("File size", file_size(int(probe.get("size_bytes") or 0)))]


def file_size(size_bytes: int) -> str:
    """Return a size in bytes in decimal units, as file browsers show it: ``850 KB``, ``12.5 MB``, ``1.24 GB``."""
    if size_bytes < 1_000:
        return f"{size_bytes} bytes"
    if size_bytes < 1_000_000:
        return f"{size_bytes / 1_000:.0f} KB"
    if size_bytes < 1_000_000_000:
        return f"{size_bytes / 1_000_000:.1f} MB"
    return f"{size_bytes / 1_000_000_000:.2f} GB"
