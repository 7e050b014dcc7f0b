"""Read a clip's container, streams, timing, geometry and source timecode with ffprobe."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autolog.errors import EmptyMedia, NotMedia, ToolFailed, UnsupportedMedia
from autolog.media._fields import read_bool, read_float, read_int, read_optional_str, read_str
from autolog.media._run import Runner, first_error_line, run_process, run_tool
from autolog.media._streams import (
    INTERLACED_ORDERS,
    detect_field_order,
    display_geometry,
    field_order_of,
    main_video_stream,
    packet_ends_s,
    positive_number,
    rates_of,
    stream_duration_s,
)
from autolog.media.source_timecode import read_source_timecode
from autolog.source_state import SourceStat

#: The field each of ffprobe's interlaced orders shows first (``tb``: top coded first, bottom shown first).
FIELD_SHOWN_FIRST: dict[str, str] = {"tt": "upper", "bt": "upper", "bb": "lower", "tb": "lower"}

#: How ffprobe's field orders read to an editor: the field shown first, and for ``tb``/``bt``
#: (coded in one order, shown in the other) both.
FIELD_ORDER_NAMES: dict[str, str] = {
    "progressive": "progressive", "tt": "interlaced, upper field first", "bb": "interlaced, lower field first",
    "tb": "interlaced, upper coded first, lower shown first", "bt": "interlaced, lower coded first, upper shown first",
    "unknown": "unknown",
}

#: ffprobe's names of the HDR transfer functions: PQ (SMPTE ST 2084) and HLG (ARIB STD-B67).
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream: its absolute ffprobe index and where it starts in clip time."""

    index: int
    codec: str
    channels: int
    sample_rate: int
    #: Seconds from clip time 0 (the container's first timestamp) to the track's first sample.
    start_s: float
    duration_s: float | None
    language: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AudioTrack:
        """Rebuild a track from ``asdict`` output.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        duration = data.get("duration_s")
        return cls(
            index=read_int(data, "index"), codec=read_str(data, "codec"), channels=read_int(data, "channels"),
            sample_rate=read_int(data, "sample_rate"), start_s=read_float(data, "start_s"),
            duration_s=read_float(data, "duration_s") if duration is not None else None,
            language=read_optional_str(data, "language"),
        )


@dataclass(frozen=True)
class ProbeResult:
    """What ffprobe says about a clip that autolog can log.

    Times are seconds; clip time 0 is the container's first timestamp (``start_time_s``),
    which is also where ffmpeg's output timestamps start. Rates are frames per second.
    """

    container: str
    #: The clip's duration: the container's, else the longest stream's, else from packets.
    duration_s: float
    #: The nominal frame rate as a float (``nominal_fps``); 0 for audio-only items.
    fps: float
    #: Coded picture size; 0 for audio-only items.
    width: int
    height: int
    video_codec: str | None
    audio_codec: str | None
    has_audio: bool
    size_bytes: int
    #: ``video`` or ``audio`` (no real picture: a sound roll, or audio with cover art).
    media_kind: str = "video"
    #: ffprobe's absolute index of the main video stream (never cover art); None for audio.
    video_stream_index: int | None = None
    #: The nominal rate as an exact ``num/den`` (the timecode track's, else ``r_frame_rate``).
    nominal_fps: str = "0/1"
    #: Frames over duration, as ffprobe's ``avg_frame_rate``; None when unknown.
    average_fps: float | None = None
    variable_frame_rate: bool = False
    #: The video stream's own duration (sound may outlast it); None for audio-only items.
    video_duration_s: float | None = None
    start_time_s: float = 0.0
    #: Seconds from clip time 0 to the video stream's first frame.
    video_start_s: float = 0.0
    #: The size a player shows: sample aspect ratio and rotation applied.
    display_width: int = 0
    display_height: int = 0
    #: Degrees to turn the coded picture clockwise for display: 0, 90, 180 or 270.
    rotation: int = 0
    sample_aspect_ratio: str = "1:1"
    #: ``progressive``, ``tt``, ``bb``, ``tb``, ``bt`` or ``unknown``.
    field_order: str = "progressive"
    #: ffprobe's ``color_transfer`` (``bt709``, ``smpte2084``, ``arib-std-b67``…), if tagged.
    color_transfer: str | None = None
    audio_tracks: tuple[AudioTrack, ...] = field(default=())
    #: ``HH:MM:SS:FF``, or ``HH:MM:SS;FF`` for drop-frame.
    start_timecode: str = "00:00:00:00"
    drop_frame: bool = False
    #: Where the start timecode was read (``tmcd track``, ``stream tag``, ``format tag``,
    #: ``bext time reference``, ``h264 sei``), or ``default`` when the file carries none.
    timecode_source: str = "default"
    reel: str | None = None

    @property
    def interlaced(self) -> bool:
        """True when the picture is stored as two fields per frame."""
        return self.field_order in INTERLACED_ORDERS

    @property
    def hdr(self) -> bool:
        """True for PQ or HLG pictures, which need tone-mapping for BT.709 images."""
        return self.color_transfer in HDR_TRANSFERS

    def asdict(self) -> dict[str, object]:
        """Return the fields as a JSON-able dict."""
        data = asdict(self)
        data["audio_tracks"] = [asdict(track) for track in self.audio_tracks]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ProbeResult:
        """Rebuild a result from :meth:`asdict` output; fields added later take their defaults.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        tracks = data.get("audio_tracks", [])
        if not isinstance(tracks, list) or not all(isinstance(track, dict) for track in tracks):
            raise ValueError("audio_tracks: expected a list of objects")
        # Validates the fields every stored probe has; later fields are ours, written by asdict().
        required: dict[str, Any] = {
            "container": read_str(data, "container"), "duration_s": read_float(data, "duration_s"),
            "fps": read_float(data, "fps"), "width": read_int(data, "width"), "height": read_int(data, "height"),
            "video_codec": read_optional_str(data, "video_codec"),
            "audio_codec": read_optional_str(data, "audio_codec"),
            "has_audio": read_bool(data, "has_audio"), "size_bytes": read_int(data, "size_bytes"),
        }
        later: dict[str, Any] = {name: data[name] for name in cls.__dataclass_fields__
                 if name in data and name not in required and name != "audio_tracks"}
        return cls(**required, **later, audio_tracks=tuple(AudioTrack.from_dict(track) for track in tracks))


#: ffprobe's format names (its demuxer's list of names) as people know them; the ISO family is told apart by extension.
CONTAINERS: dict[str, str] = {
    "matroska,webm": "Matroska (MKV)", "mpegts": "MPEG transport stream", "mpeg": "MPEG program stream",
    "mxf": "MXF", "avi": "AVI", "wav": "WAV", "aiff": "AIFF", "mp3": "MP3", "flac": "FLAC", "ogg": "Ogg",
    "gxf": "GXF", "image2": "Image sequence", "dv": "DV",
}

#: The ISO base media family (``mov,mp4,m4a,3gp,3g2,mj2``) and Matroska's WebM, by file extension.
CONTAINERS_BY_EXTENSION: dict[str, str] = {
    "mov": "QuickTime (MOV)", "qt": "QuickTime (MOV)", "mp4": "MP4", "m4v": "MP4", "m4a": "MPEG-4 audio (M4A)",
    "3gp": "3GP", "3g2": "3G2", "mj2": "Motion JPEG 2000", "webm": "WebM",
}


def container_name(format_name: str | None, source: str) -> str:
    """Return a container's friendly name from ffprobe's format name and the file's extension.

    ``mov,mp4,m4a,3gp,3g2,mj2`` is one demuxer for the whole ISO family, so the extension
    decides (``.mov`` is QuickTime, ``.mp4`` MP4); an ISO file with another extension reads
    ``QuickTime / MP4``. A format this table does not know is shown as ffprobe names it.
    """
    if not format_name:
        return "—"
    name = source.rstrip("/").rsplit("/", 1)[-1]
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if format_name.startswith("mov,mp4") or format_name == "matroska,webm":
        by_extension = CONTAINERS_BY_EXTENSION.get(extension)
        if by_extension:
            return by_extension
        if format_name.startswith("mov,mp4"):
            return "QuickTime / MP4"
    return CONTAINERS.get(format_name, format_name)


def field_order_name(field_order: object) -> str:
    """Return ``field_order`` (ffprobe's ``progressive``, ``tt``, ``bb``, ``tb``, ``bt``) in words; others as given."""
    return FIELD_ORDER_NAMES.get(str(field_order), str(field_order))


def audio_tracks(streams: Sequence[Mapping[str, object]], *, start_time_s: float) -> tuple[AudioTrack, ...]:
    """Return every audio stream as an ``AudioTrack`` with its start in clip time."""
    tracks = []
    for stream in streams:
        if stream.get("codec_type") != "audio" or not isinstance(stream.get("index"), int):
            continue
        start = positive_number(stream.get("start_time"), allow_zero=True, allow_negative=True)
        tags = stream.get("tags")
        language = tags.get("language") if isinstance(tags, dict) else None
        channels = stream.get("channels")
        tracks.append(AudioTrack(
            index=int(str(stream["index"])), codec=str(stream.get("codec_name", "unknown")),
            channels=channels if isinstance(channels, int) else 0,
            sample_rate=int(positive_number(stream.get("sample_rate")) or 0),
            start_s=round(max(0.0, (start if start is not None else start_time_s) - start_time_s), 6),
            duration_s=stream_duration_s(stream),
            language=language if isinstance(language, str) and language != "und" else None,
        ))
    return tuple(tracks)


def probe_media(
    path: Path,
    *,
    default_start_timecode: str = "00:00:00:00",
    audio_timecode_rate: str = "25",
    run: Runner = run_process,
    timeout_s: float = 60.0,
) -> ProbeResult:
    """Probe a clip: streams, timing, geometry, picture and source timecode.

    Args:
        default_start_timecode: the start of a file that carries no timecode.
        audio_timecode_rate: the rate an audio-only file's timecode counts at.

    Raises:
        MediaMissing: There is no file at ``path``.
        EmptyMedia: The file has zero bytes.
        NotMedia: ffprobe cannot read the file; the reason quotes ffprobe.
        UnsupportedMedia: No video or audio stream, or no usable duration or frame rate.
        ToolFailed: ffprobe is missing, timed out or printed unreadable output.
    """
    size_bytes = _file_size(path)
    info = _ffprobe_json(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        path, run=run, timeout_s=timeout_s,
    )
    stream_list = info.get("streams")
    streams = [stream for stream in stream_list if isinstance(stream, dict)] if isinstance(stream_list, list) else []
    format_info = info.get("format")
    fmt: Mapping[str, object] = format_info if isinstance(format_info, dict) else {}
    start_time_s = positive_number(fmt.get("start_time"), allow_zero=True, allow_negative=True) or 0.0
    video = main_video_stream(streams)
    # The picture's first timestamp, container time (None without a picture, or when ffprobe gives none).
    video_stream_start_s = (positive_number(video.get("start_time"), allow_zero=True, allow_negative=True)
                            if video is not None else None)
    tracks = audio_tracks(streams, start_time_s=start_time_s)
    if video is None and not tracks:
        raise UnsupportedMedia(str(path), "no video or audio stream")
    duration_s = positive_number(fmt.get("duration")) or max(
        (end for stream in streams if (end := stream_duration_s(stream)) is not None), default=None)
    packet_ends: dict[int, float] = {}
    if duration_s is None:
        # A live WebM or a pipe capture: no duration anywhere but in the packets.
        packet_ends = packet_ends_s(path, run=run, timeout_s=timeout_s)
        duration_s = max(packet_ends.values(), default=start_time_s) - start_time_s
    duration_s -= _codec_delay_s(start_time_s, has_picture=video is not None, picture_start_s=video_stream_start_s)
    if duration_s <= 0:
        raise UnsupportedMedia(str(path), "duration is zero or unknown")
    stream_rates = rates_of(video, timecode_rate=None) if video is not None else None
    timecode = read_source_timecode(
        path, fmt, streams, video, video_rate=stream_rates.nominal if stream_rates is not None else None,
        default=default_start_timecode, audio_rate=audio_timecode_rate, run=run, timeout_s=timeout_s,
    )
    if video is None:
        rates, geometry, video_index, field_order = None, None, None, "unknown"
        video_start_s, video_duration_s, transfer = 0.0, None, None
    else:
        video_index = int(str(video["index"]))
        # A timecode track's own rate wins over the stream's (see ``rates_of``).
        rates = rates_of(video, timecode_rate=timecode.rate) if timecode.from_track else stream_rates
        if rates is None:
            raise UnsupportedMedia(str(path), "video frame rate is unknown")
        geometry = display_geometry(video)
        field_order = field_order_of(video)
        if field_order == "unknown":
            field_order = detect_field_order(path, stream_index=video_index, run=run, timeout_s=timeout_s)
        video_start_s = max(0.0, (video_stream_start_s or start_time_s) - start_time_s)
        video_duration_s = stream_duration_s(video)
        if video_duration_s is None and video_index in packet_ends:
            video_duration_s = packet_ends[video_index] - start_time_s - video_start_s
        video_duration_s = round(min(video_duration_s or duration_s, duration_s), 6)
        tagged = video.get("color_transfer")
        transfer = tagged if isinstance(tagged, str) and tagged != "unknown" else None
    nominal = rates.nominal if rates is not None else timecode.rate
    return ProbeResult(
        container=str(fmt.get("format_name", "unknown")), duration_s=duration_s, size_bytes=size_bytes,
        media_kind="video" if video is not None else "audio", video_stream_index=video_index,
        fps=float(rates.nominal) if rates is not None else 0.0,
        nominal_fps=f"{nominal.numerator}/{nominal.denominator}",
        average_fps=rates.average if rates is not None else None,
        variable_frame_rate=rates.variable if rates is not None else False,
        width=geometry.width if geometry else 0, height=geometry.height if geometry else 0,
        display_width=geometry.display_width if geometry else 0,
        display_height=geometry.display_height if geometry else 0,
        rotation=geometry.rotation if geometry else 0,
        sample_aspect_ratio=geometry.sample_aspect_ratio if geometry else "1:1",
        video_codec=str(video.get("codec_name", "unknown")) if video is not None else None,
        video_duration_s=video_duration_s, start_time_s=start_time_s, video_start_s=round(video_start_s, 6),
        field_order=field_order, color_transfer=transfer,
        has_audio=bool(tracks), audio_codec=tracks[0].codec if tracks else None, audio_tracks=tracks,
        start_timecode=timecode.start, drop_frame=timecode.drop_frame, timecode_source=timecode.source,
        reel=timecode.reel,
    )


def _codec_delay_s(start_time_s: float, *, has_picture: bool, picture_start_s: float | None) -> float:
    """Return how much of the container's span is its audio codec's delay, not the clip's: in s, 0 or more.

    Opus in WebM or Matroska starts its first packet before 0 by the codec's delay (Matroska's
    ``CodecDelay``, Opus's pre-skip of 312 samples, 6.5 ms; RFC 7845 §4.2), samples every decoder
    drops, and ffprobe's duration spans from there: a 7.0 s live WebM of 175 frames read 7.021 s,
    175.5 frames, and its ALE ended a frame late. Only when the picture starts at 0 or later (or
    there is none): a picture that starts before 0, or at a time ffprobe does not give, is shown from there.
    """
    if start_time_s >= 0:
        return 0.0
    if has_picture and (picture_start_s is None or picture_start_s < 0):
        return 0.0
    return -start_time_s


def _ffprobe_json(command: list[str], path: Path, *, run: Runner, timeout_s: float) -> dict[str, object]:
    completed = run_tool(command, run=run, timeout_s=timeout_s)
    if completed.returncode != 0:
        raise NotMedia(str(path), f"ffprobe cannot read it: {first_error_line(completed.stderr)}")
    try:
        info = json.loads(completed.stdout)
    except json.JSONDecodeError as ex:
        raise ToolFailed("ffprobe", f"printed output that is not JSON: {ex}") from ex
    if not isinstance(info, dict):
        raise ToolFailed("ffprobe", "printed JSON that is not an object")
    return info


def _file_size(path: Path) -> int:
    size_bytes = SourceStat.of(path).size_bytes
    if size_bytes == 0:
        raise EmptyMedia(str(path), "file is empty (0 bytes)")
    return size_bytes
