"""Logged items written straight into a store, as the six steps would leave them.

Frame timecodes come from ``frame_timecode`` as step 5 computes them; everything else is
the test's own data, so every export can be compared with what the store holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from autolog.media.probe import AudioTrack, ProbeResult
from autolog.media.timecode import frame_timecode, normalise_timecode, parse_rate
from autolog.statuses import Status
from autolog.store import FrameView, NewItem, SceneView, SegmentView, Store


@dataclass(frozen=True)
class Shot:
    """One shot: where it starts and ends in clip time, and what step 4 said about its frame."""

    start_s: float
    end_s: float
    description: str
    keywords: tuple[str, ...] = ()
    shot_type: str = "wide"


@dataclass(frozen=True)
class Clip:
    """A logged item to write: its source facts, shots and speech."""

    item_id: str
    rate: str = "30000/1001"
    start_timecode: str = "01:00:00;00"
    media_kind: str = "video"
    #: Channels of each audio stream.
    audio_channels: tuple[int, ...] = (2,)
    sample_rate: int = 48_000
    duration_s: float = 6.0
    #: The picture's duration, when it is not the container's (sound that outlasts it).
    video_duration_s: float | None = None
    size: tuple[int, int] = (1920, 1080)
    #: ffprobe's field order: ``progressive``, ``tt``, ``bb``, ``tb``, ``bt``.
    field_order: str = "progressive"
    reel: str | None = "A001C003"
    source: str | None = None
    shots: tuple[Shot, ...] = (
        Shot(0.0, 2.5, "A woman walks into a café.", ("café", "woman")),
        Shot(2.5, 6.0, "Close on the menu;\tprices in\neuros.", ("menu", "Café"), "close-up"),
    )
    speech: tuple[tuple[float, float, str], ...] = (
        (0.4, 1.9, "Two coffees, please."), (2.6, 5.2, "That's <eight> euros & fifty."))
    timecode_source: str = "tmcd track"
    extra: dict[str, object] = field(default_factory=dict)


def log_clip(store: Store, clip: Clip, *, status: Status = Status.AVID_DESCRIPTION) -> None:
    """Create ``clip`` as an item at ``status`` with its probe facts, shots, frame records and transcript."""
    rate = parse_rate(clip.rate)
    start = normalise_timecode(clip.start_timecode, rate)
    source = clip.source or f"/media/cards/{clip.item_id}.mov"
    picture = clip.media_kind == "video"
    tracks = tuple(AudioTrack(index=index + 1, codec="pcm_s24le", channels=channels, sample_rate=clip.sample_rate,
                              start_s=0.0, duration_s=clip.duration_s, language=None)
                   for index, channels in enumerate(clip.audio_channels))
    probe = ProbeResult(
        container="mov,mp4,m4a,3gp,3g2,mj2", duration_s=clip.duration_s, fps=float(rate) if picture else 0.0,
        width=clip.size[0] if picture else 0, height=clip.size[1] if picture else 0,
        video_codec="prores" if picture else None, audio_codec=tracks[0].codec if tracks else None,
        has_audio=bool(tracks), size_bytes=1_000_000, media_kind=clip.media_kind,
        video_stream_index=0 if picture else None, nominal_fps=f"{rate.numerator}/{rate.denominator}",
        video_duration_s=(clip.video_duration_s or clip.duration_s) if picture else None,
        field_order=clip.field_order, display_width=clip.size[0] if picture else 0,
        display_height=clip.size[1] if picture else 0,
        audio_tracks=tracks, start_timecode=start, drop_frame=";" in start, timecode_source=clip.timecode_source,
        reel=clip.reel)
    store.items.create([NewItem(clip.item_id, source)])
    store.items.update(clip.item_id, status=status.value, probe=probe.asdict(), has_audio=bool(tracks),
                       media_kind=clip.media_kind, start_timecode=start, drop_frame=";" in start,
                       nominal_fps=probe.nominal_fps, reel=clip.reel, **clip.extra)
    shots = clip.shots if picture else ()
    store.results.save_scenes(clip.item_id, [
        SceneView(position=position, start_s=shot.start_s, end_s=shot.end_s, sample_s=_middle(shot),
                  image_path=f"/var/artifacts/{clip.item_id}/samples/{position:04d}.jpg")
        for position, shot in enumerate(shots)])
    store.results.save_frames(clip.item_id, [
        FrameView(position=position, time_s=_middle(shot), timecode=frame_timecode(start, rate, _middle(shot)),
                  image_path=f"/var/artifacts/{clip.item_id}/samples/{position:04d}.jpg",
                  description=shot.description, keywords=list(shot.keywords),
                  analysis={"provider": "local", "shot_type": shot.shot_type}, transcript=None)
        for position, shot in enumerate(shots)])
    segments = [SegmentView(position=position, start_s=begin, end_s=end, text=text)
                for position, (begin, end, text) in enumerate(clip.speech)]
    store.results.save_transcript(clip.item_id, segments, _frame_texts(shots, clip.speech))


def _middle(shot: Shot) -> float:
    return round((shot.start_s + shot.end_s) / 2, 3)


def _frame_texts(shots: Sequence[Shot], speech: Sequence[tuple[float, float, str]]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for position, shot in enumerate(shots):
        spoken = [text for begin, end, text in speech if begin < shot.end_s and end > shot.start_s]
        if spoken:
            texts[position] = " ".join(spoken)
    return texts
