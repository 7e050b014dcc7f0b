"""A file's start timecode and reel name, read from wherever cameras and recorders write them.

Looked for in this order (the first found wins):

1. a QuickTime/MP4 timecode track (``tmcd`` data stream): its ``timecode`` tag and its rate;
2. the video stream's ``timecode`` tag (ffmpeg's view of a tmcd track, MXF's source package);
3. the container's ``timecode`` tag (MXF material package, MPEG-TS/MTS when the muxer kept one);
4. the first frame's SMPTE ST 12-1 timecode (H.264 picture-timing SEI, as AVCHD cameras write),
   for MPEG-TS/M2TS only, where no tag carries it;
5. a Broadcast WAVE ``bext`` time reference (samples since midnight) for audio-only files,
   counted at the configured audio timecode rate;
6. else the configured default (``00:00:00:00``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from autolog.errors import ConfigError
from autolog.media._run import Runner, run_tool
from autolog.media._streams import positive_number, stream_rate
from autolog.media.timecode import frame_timecode, is_drop_frame_rate, normalise_timecode, parse_rate

#: Tags that name the reel or tape a clip came from, in the spellings ffprobe shows.
_REEL_TAGS = ("reel_name", "reel", "tape_name", "com.apple.proapps.reel")

#: Containers whose timecode may sit only in the H.264 stream's SEI messages.
_TRANSPORT_STREAMS = ("mpegts",)


@dataclass(frozen=True)
class SourceTimecode:
    """Where a clip's timecode starts and how it counts."""

    #: ``HH:MM:SS:FF``, or ``HH:MM:SS;FF`` for drop-frame.
    start: str
    #: The rate the timecode counts at.
    rate: Fraction
    drop_frame: bool
    #: Where it was read, or ``default``.
    source: str
    reel: str | None
    #: True when ``rate`` is a timecode track's own rate (it then wins over ``r_frame_rate``).
    from_track: bool = False


def read_source_timecode(
    path: Path,
    fmt: Mapping[str, object],
    streams: Sequence[Mapping[str, object]],
    video: Mapping[str, object] | None,
    *,
    video_rate: Fraction | None,
    default: str,
    audio_rate: str,
    run: Runner,
    timeout_s: float,
) -> SourceTimecode:
    """Return the clip's start timecode and reel (see the module docstring for the order).

    A tag that is not a valid timecode at the clip's rate is passed over, not fatal.

    Args:
        video: ffprobe's record of the main video stream; None for audio-only files.
        video_rate: that stream's nominal rate, which tags count at; None for audio-only files.

    Raises:
        ConfigError: ``default`` or ``audio_rate`` is malformed.
        ToolFailed: ffprobe is missing or timed out while reading an SEI timecode.
    """
    rate = parse_rate(video_rate) if video_rate is not None else _config_rate(audio_rate)
    reel = _reel(fmt, streams)
    candidates: list[tuple[str, object, Fraction, bool]] = []
    for stream in streams:
        if stream.get("codec_tag_string") == "tmcd" or _tag(stream, "handler_name") == "TimeCodeHandler":
            track_rate = stream_rate(stream.get("avg_frame_rate")) or stream_rate(stream.get("r_frame_rate"))
            candidates.append(("tmcd track", _tag(stream, "timecode"), track_rate or rate, track_rate is not None))
    if video is not None:
        candidates.append(("stream tag", _tag(video, "timecode"), rate, False))
    candidates.append(("format tag", _tag(fmt, "timecode"), rate, False))
    for source, value, candidate_rate, from_track in candidates:
        found = _valid(value, candidate_rate)
        if found is not None:
            return SourceTimecode(start=found, rate=candidate_rate, drop_frame=";" in found, source=source,
                                  reel=reel, from_track=from_track)
    if video is not None and str(fmt.get("format_name", "")) in _TRANSPORT_STREAMS:
        found = _valid(_sei_timecode(path, video, run=run, timeout_s=timeout_s), rate)
        if found is not None:
            return SourceTimecode(start=found, rate=rate, drop_frame=";" in found, source="h264 sei", reel=reel)
    if video is None:
        samples = positive_number(_tag(fmt, "time_reference"), allow_zero=True)
        sample_rate = _first_audio_sample_rate(streams)
        if samples is not None and sample_rate:
            midnight = "00:00:00;00" if is_drop_frame_rate(rate) else "00:00:00:00"
            found = _valid(frame_timecode(midnight, rate, samples / sample_rate), rate)
            if found is not None:
                return SourceTimecode(start=found, rate=rate, drop_frame=";" in found,
                                      source="bext time reference", reel=reel)
    try:
        start = normalise_timecode(default, rate)
    except ValueError as ex:
        raise ConfigError("AUTOLOG_DEFAULT_START_TIMECODE", str(ex)) from ex
    return SourceTimecode(start=start, rate=rate, drop_frame=";" in start, source="default", reel=reel)


def _config_rate(text: str) -> Fraction:
    try:
        return parse_rate(text)
    except ValueError as ex:
        raise ConfigError("AUTOLOG_AUDIO_TIMECODE_RATE", str(ex)) from ex


def _tag(entry: Mapping[str, object], name: str) -> str | None:
    tags = entry.get("tags")
    if not isinstance(tags, dict):
        return None
    for key, value in tags.items():
        if str(key).lower() == name and isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _reel(fmt: Mapping[str, object], streams: Sequence[Mapping[str, object]]) -> str | None:
    for entry in (*streams, fmt):
        for name in _REEL_TAGS:
            value = _tag(entry, name)
            if value:
                return value[:120]
    return None


def _valid(value: object, rate: Fraction) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return normalise_timecode(value, rate)
    except ValueError:
        return None


def _first_audio_sample_rate(streams: Sequence[Mapping[str, object]]) -> float | None:
    for stream in streams:
        if stream.get("codec_type") == "audio":
            return positive_number(stream.get("sample_rate"))
    return None


def _sei_timecode(path: Path, video: Mapping[str, object], *, run: Runner, timeout_s: float) -> str | None:
    """Return the first frame's SMPTE 12-1 timecode from its side data, if the stream has one."""
    command = [
        "ffprobe", "-v", "error", "-select_streams", str(video.get("index", 0)),
        "-read_intervals", "%+#1", "-show_frames", "-show_entries", "frame=side_data_list",
        "-print_format", "json", str(path),
    ]  # fmt: skip
    completed = run_tool(command, run=run, timeout_s=timeout_s)
    if completed.returncode != 0:
        return None
    try:
        info = json.loads(completed.stdout)
    except json.JSONDecodeError:
        return None
    for frame in info.get("frames", []) if isinstance(info, dict) else []:
        for side in frame.get("side_data_list", []) if isinstance(frame, dict) else []:
            timecodes = side.get("timecodes") if isinstance(side, dict) else None
            if isinstance(timecodes, list):
                for entry in timecodes:
                    if isinstance(entry, dict) and isinstance(entry.get("value"), str):
                        return str(entry["value"])
    return None
