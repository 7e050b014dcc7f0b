"""Read a clip's container, streams and duration with ffprobe."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from autolog.errors import EmptyMedia, MediaMissing, NotMedia, ToolFailed, UnsupportedMedia
from autolog.media._fields import read_bool, read_float, read_int, read_optional_str, read_str
from autolog.media._run import Runner, first_error_line, run_tool


@dataclass(frozen=True)
class ProbeResult:
    """What ffprobe says about a clip that autolog can log."""

    container: str
    duration_s: float
    fps: float
    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    has_audio: bool
    size_bytes: int

    def asdict(self) -> dict[str, object]:
        """Return the fields as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ProbeResult:
        """Rebuild a result from :meth:`asdict` output.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        return cls(
            container=read_str(data, "container"),
            duration_s=read_float(data, "duration_s"),
            fps=read_float(data, "fps"),
            width=read_int(data, "width"),
            height=read_int(data, "height"),
            video_codec=read_str(data, "video_codec"),
            audio_codec=read_optional_str(data, "audio_codec"),
            has_audio=read_bool(data, "has_audio"),
            size_bytes=read_int(data, "size_bytes"),
        )


def probe_media(path: Path, *, run: Runner = subprocess.run, timeout_s: float = 60.0) -> ProbeResult:
    """Probe a clip and check it has a video stream with a known duration.

    Raises:
        MediaMissing: There is no file at ``path``.
        EmptyMedia: The file has zero bytes.
        NotMedia: ffprobe cannot read the file; the reason quotes ffprobe.
        UnsupportedMedia: No video stream, or no usable duration or frame rate.
        ToolFailed: ffprobe is missing, timed out or printed unreadable output.
    """
    size_bytes = _file_size(path)
    completed = run_tool(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        run=run,
        timeout_s=timeout_s,
    )
    if completed.returncode != 0:
        raise NotMedia(str(path), f"ffprobe cannot read it: {first_error_line(completed.stderr)}")
    try:
        info = json.loads(completed.stdout)
    except json.JSONDecodeError as ex:
        raise ToolFailed("ffprobe", f"printed output that is not JSON: {ex}") from ex
    if not isinstance(info, dict):
        raise ToolFailed("ffprobe", "printed JSON that is not an object")
    return _result_from_info(path, info, size_bytes=size_bytes)


def _file_size(path: Path) -> int:
    try:
        stat = path.stat()
    except FileNotFoundError as ex:
        raise MediaMissing(str(path), "no such file") from ex
    if not path.is_file():
        raise MediaMissing(str(path), "not a regular file")
    if stat.st_size == 0:
        raise EmptyMedia(str(path), "file is empty (0 bytes)")
    return stat.st_size


def _result_from_info(path: Path, info: Mapping[str, object], *, size_bytes: int) -> ProbeResult:
    streams = _list_of_dicts(info.get("streams"))
    video = _first_stream(streams, "video")
    if video is None:
        raise UnsupportedMedia(str(path), "no video stream")
    audio = _first_stream(streams, "audio")
    format_info = info.get("format")
    format_dict: Mapping[str, object] = format_info if isinstance(format_info, dict) else {}
    duration_s = _positive_number(format_dict.get("duration")) or _positive_number(video.get("duration"))
    if duration_s is None:
        raise UnsupportedMedia(str(path), "duration is zero or unknown")
    fps = _frame_rate(video.get("avg_frame_rate")) or _frame_rate(video.get("r_frame_rate"))
    if fps is None:
        raise UnsupportedMedia(str(path), "video frame rate is unknown")
    return ProbeResult(
        container=str(format_dict.get("format_name", "unknown")),
        duration_s=duration_s,
        fps=fps,
        width=_int_or_zero(video.get("width")),
        height=_int_or_zero(video.get("height")),
        video_codec=str(video.get("codec_name", "unknown")),
        audio_codec=str(audio.get("codec_name", "unknown")) if audio is not None else None,
        has_audio=audio is not None,
        size_bytes=size_bytes,
    )


def _list_of_dicts(value: object) -> list[dict[str, object]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _first_stream(streams: list[dict[str, object]], codec_type: str) -> dict[str, object] | None:
    for stream in streams:
        if stream.get("codec_type") != codec_type:
            continue
        disposition = stream.get("disposition")
        # NOTE(media): cover art in audio files shows up as a one-frame "video" stream.
        if isinstance(disposition, dict) and disposition.get("attached_pic") == 1:
            continue
        return stream
    return None


def _positive_number(value: object) -> float | None:
    if not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number > 0 and math.isfinite(number) else None


def _frame_rate(value: object) -> float | None:
    """Parse ffprobe's ``num/den`` rate; ``0/0`` and junk mean unknown."""
    if not isinstance(value, str):
        return None
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None


def _int_or_zero(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
