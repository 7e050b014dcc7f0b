"""Reading ffprobe's stream records: which stream is the picture, its rates, geometry and fields."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from autolog.media._run import Runner, run_tool

#: Field orders ffprobe reports for interlaced pictures (top or bottom field first, coded and shown).
INTERLACED_ORDERS = frozenset({"tt", "bb", "tb", "bt"})

#: Still-image codecs: a stream of one of these with no frame rate is a picture, not video.
_STILL_CODECS = frozenset({"png", "mjpeg", "bmp", "gif", "webp", "tiff", "jpeg2000"})

#: The average rate may differ from the nominal one by this fraction before a clip counts
#: as variable frame rate (container rounding of the last frame's duration stays below it).
_VFR_TOLERANCE = 0.02

#: How many frames idet looks at when a stream does not flag its field order.
_IDET_FRAMES = 120

_IDET_LINE = re.compile(r"Multi frame detection:\s*TFF:\s*(\d+)\s*BFF:\s*(\d+)\s*Progressive:\s*(\d+)")


def positive_number(value: object, *, allow_zero: bool = False, allow_negative: bool = False) -> float | None:
    """Return ffprobe's number (a string or a number) as a finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or (number < 0 and not allow_negative) or (number == 0 and not allow_zero):
        return None
    return number


def stream_rate(value: object) -> Fraction | None:
    """Parse ffprobe's ``num/den`` rate; ``0/0`` and junk mean unknown."""
    if not isinstance(value, str):
        return None
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def _disposition(stream: Mapping[str, object], flag: str) -> bool:
    disposition = stream.get("disposition")
    return isinstance(disposition, dict) and disposition.get(flag) == 1


def main_video_stream(streams: Sequence[Mapping[str, object]]) -> Mapping[str, object] | None:
    """Return the clip's picture: the first video stream that is not cover art or a thumbnail.

    Cover art and embedded thumbnails are flagged ``attached_pic`` (drone and phone files
    may list theirs first), or are a still-image codec with no frame rate.
    """
    for stream in streams:
        if stream.get("codec_type") != "video" or not isinstance(stream.get("index"), int):
            continue
        if _disposition(stream, "attached_pic") or _disposition(stream, "timed_thumbnails"):
            continue
        if stream.get("codec_name") in _STILL_CODECS and stream_rate(stream.get("avg_frame_rate")) is None:
            continue
        return stream
    return None


def stream_duration_s(stream: Mapping[str, object]) -> float | None:
    """Return a stream's duration: its ``duration``, else a Matroska ``DURATION`` tag."""
    duration = positive_number(stream.get("duration"))
    if duration is not None:
        return duration
    tags = stream.get("tags")
    if isinstance(tags, dict):
        for key, value in tags.items():
            if str(key).upper() == "DURATION" and isinstance(value, str):
                hours, _, rest = value.partition(":")
                minutes, _, seconds = rest.partition(":")
                try:
                    total = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
                except ValueError:
                    return None
                return total if total > 0 else None
    return None


@dataclass(frozen=True)
class Rates:
    """A video stream's frame rates: nominal (for timecode) and average (frames over time)."""

    nominal: Fraction
    average: float | None
    variable: bool


def rates_of(video: Mapping[str, object], *, timecode_rate: Fraction | None) -> Rates | None:
    """Return the stream's nominal and average rates, or None when neither is known.

    The nominal rate is the timecode track's when there is one, else ``r_frame_rate`` (the
    rate the stream is timed in), else the average; a clip is variable frame rate when the
    average strays from the nominal rate by more than 2 %.
    """
    real = stream_rate(video.get("r_frame_rate"))
    average = stream_rate(video.get("avg_frame_rate"))
    if real is not None and real > 1000:
        real = None  # A timebase (e.g. 90000/1), not a frame rate.
    nominal = timecode_rate or real or average
    if nominal is None:
        return None
    variable = average is not None and abs(float(average) / float(nominal) - 1) > _VFR_TOLERANCE
    return Rates(nominal=nominal, average=float(average) if average is not None else None, variable=variable)


@dataclass(frozen=True)
class Geometry:
    """Coded and displayed picture size."""

    width: int
    height: int
    display_width: int
    display_height: int
    rotation: int
    sample_aspect_ratio: str


def _rotation_clockwise(video: Mapping[str, object]) -> int:
    """Degrees to turn the coded picture clockwise, from the display matrix or a ``rotate`` tag."""
    side_data = video.get("side_data_list")
    if isinstance(side_data, list):
        for entry in side_data:
            if isinstance(entry, dict) and isinstance(entry.get("rotation"), int | float):
                # The display matrix's rotation is counter-clockwise (ffprobe: -90 = a quarter turn clockwise).
                return int(round(-float(entry["rotation"]) / 90) * 90) % 360
    tags = video.get("tags")
    rotate = tags.get("rotate") if isinstance(tags, dict) else None
    number = positive_number(rotate, allow_zero=True, allow_negative=True)
    return int(round(number / 90) * 90) % 360 if number is not None else 0


def display_geometry(video: Mapping[str, object]) -> Geometry:
    """Return the coded size and the size a player shows (square pixels, then rotation)."""
    coded_width, coded_height = video.get("width"), video.get("height")
    width = coded_width if isinstance(coded_width, int) else 0
    height = coded_height if isinstance(coded_height, int) else 0
    sar_text = str(video.get("sample_aspect_ratio") or "1:1")
    try:
        sar = Fraction(*(int(part) for part in sar_text.split(":")))
    except (ValueError, TypeError, ZeroDivisionError):
        sar, sar_text = Fraction(1), "1:1"
    if sar <= 0:
        sar, sar_text = Fraction(1), "1:1"
    # Anamorphic pictures widen to square pixels, keeping the height (as players do), to an even width.
    display_width = max(2, 2 * round(width * sar / 2)) if width else 0
    display_height = height
    rotation = _rotation_clockwise(video)
    if rotation in (90, 270):
        display_width, display_height = display_height, display_width
    return Geometry(width=width, height=height, display_width=display_width, display_height=display_height,
                    rotation=rotation, sample_aspect_ratio=sar_text)


def field_order_of(video: Mapping[str, object]) -> str:
    """Return the flagged field order: ``progressive``, ``tt``, ``bb``, ``tb``, ``bt`` or ``unknown``."""
    order = video.get("field_order")
    if order == "progressive" or order in INTERLACED_ORDERS:
        return str(order)
    return "unknown"


def detect_field_order(path: Path, *, stream_index: int, run: Runner, timeout_s: float) -> str:
    """Classify an unflagged stream's first frames with ffmpeg's ``idet``.

    Returns ``tt`` or ``bb`` when one field order clearly dominates idet's verdicts, else ``progressive``
    (including when idet cannot run: an unreadable picture fails later, in step 3).
    """
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
        "-i", str(path), "-map", f"0:{stream_index}", "-frames:v", str(_IDET_FRAMES),
        "-vf", "idet", "-an", "-f", "null", "-",
    ]  # fmt: skip
    completed = run_tool(command, run=run, timeout_s=timeout_s)
    # idet prints its running totals at the end; the last "Multi frame" line is the verdict.
    matches = _IDET_LINE.findall(completed.stderr.decode("utf-8", errors="replace"))
    if not matches:
        return "progressive"
    top, bottom, progressive = (int(group) for group in matches[-1])
    # Interlaced only when one field order clearly dominates: fast synthetic or noisy progressive
    # pictures fool idet into a mix of TFF and BFF verdicts, woven fields never do.
    dominant, other = max(top, bottom), min(top, bottom)
    if dominant <= 2 * progressive or dominant < 3 * other:
        return "progressive"
    return "tt" if top > bottom else "bb"


def packet_ends_s(path: Path, *, run: Runner, timeout_s: float) -> dict[int, float]:
    """Return each stream's end time (its last packet's pts plus duration), by stream index.

    Reads every packet header, for files whose container states no duration (a live WebM,
    a pipe capture). Demuxes, does not decode.
    """
    command = [
        "ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts_time,duration_time",
        "-of", "csv=p=0", str(path),
    ]  # fmt: skip
    completed = run_tool(command, run=run, timeout_s=timeout_s)
    ends: dict[int, float] = {}
    for line in completed.stdout.decode("utf-8", errors="replace").splitlines():
        parts = line.split(",")
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        pts = positive_number(parts[1], allow_zero=True, allow_negative=True)
        if pts is None:
            continue
        duration = positive_number(parts[2], allow_zero=True) if len(parts) > 2 else None
        index = int(parts[0])
        ends[index] = max(ends.get(index, pts), pts + (duration or 0.0))
    return ends
