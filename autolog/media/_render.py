"""Write images with ffmpeg atomically: any filter chain's output, or the picture at a clip time."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from autolog.errors import CorruptMedia, UnsupportedMedia
from autolog.media._run import Runner, first_error_line, run_tool
from autolog.media.picture import display_filters
from autolog.media.probe import ProbeResult

#: ffmpeg's JPEG quality scale runs 2 (best) to 31; 3 is visually clean at small sizes.
JPEG_QUALITY = "3"

#: The start of every ffmpeg command here: quiet; no automatic rotation (the picture
#: filters turn the selected frames themselves; see ``autolog.media.picture``); and the
#: container's own timestamps (-copyts), so clip time is a frame's time less the probe's
#: ``start_time_s``. ffmpeg's own shift to clip time is not that: given only the video
#: stream of an MPEG-TS whose sound starts first, it counts from the first frame; after a
#: seek into MPEG-PS it is off by a frame or more.
FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-noautorotate", "-copyts"]

#: One JPEG to the path appended after it.
JPEG_OUTPUT = ["-frames:v", "1", "-q:v", JPEG_QUALITY, "-f", "image2", "-update", "1", "-c:v", "mjpeg"]

#: How far before the wanted frame to seek, tried in turn, before decoding from the start.
#: Formats without an index (MPEG-TS, a live WebM) land on the packet nearest the seek
#: point, and decoding there shows nothing until the next keyframe; a seek that lands
#: before the keyframe that starts the wanted frame's GOP is exact. IP cameras and
#: hardware encoders write GOPs of up to ten seconds; a minute covers the longest seen.
SEEK_MARGINS_S = (0.5, 3.0, 12.0, 60.0)

#: A seek's decode stops this far past the wanted frame.
_READ_PAST_S = 1.0


def render_image(
    command: Sequence[str],
    out: Path,
    *,
    source: Path,
    what: str,
    run: Runner,
    timeout_s: float,
) -> Path:
    """Run ``command`` with a temporary output path appended, then move it to ``out``.

    Args:
        command: An ffmpeg command line that ends just before its output path.
        what: What is being made, for error messages ("poster at 4.00 s").

    Raises:
        CorruptMedia: ffmpeg failed, or exited 0 without writing any bytes, which it
            does when asked for a frame past the end of a truncated file.
        ToolFailed: ffmpeg is missing or timed out.
    """
    if not _try_render(command, out, source=source, what=what, run=run, timeout_s=timeout_s):
        raise CorruptMedia(str(source), f"ffmpeg decoded no frame for the {what} (the file may be truncated)")
    return out


def render_frame_at(
    source: Path,
    probe: ProbeResult,
    out: Path,
    *,
    at_s: float,
    max_width: int | None,
    what: str,
    run: Runner,
    timeout_s: float,
) -> Path:
    """Write the picture shown at ``at_s`` seconds of clip time as a JPEG, as a player shows it.

    The frame is the first one at or after ``at_s`` less half a nominal frame: the frame
    nearest ``at_s``, or exactly the frame whose timestamp is ``at_s``. ffmpeg seeks to
    ``SEEK_MARGINS_S`` before it and selects the frame only when the first keyframe it
    decodes is not later than the frame; otherwise, a further seek, and finally a decode
    from the start, which is exact in any container.

    Raises:
        UnsupportedMedia: The probe has no video stream.
        CorruptMedia: No frame decodes at ``at_s`` (e.g. past the end of a truncated file).
        ToolFailed: ffmpeg is missing or timed out.
    """
    if probe.video_stream_index is None:
        raise UnsupportedMedia(str(source), "no video stream to take a picture from")
    half_frame_s = 0.5 / probe.fps if probe.fps > 0 else 0.0
    picture = display_filters(probe, max_width=max_width)
    wanted = f"{probe.start_time_s + at_s - half_frame_s:.6f}"
    # Register 0 holds the start: 0 until the first keyframe decodes, then 1 if that
    # keyframe is at or before the wanted frame (every frame after it decodes whole),
    # else 2 (decoding began at a later keyframe): then no frame is selected at all.
    # Frames before the first keyframe may be grey garbage (HEVC and MPEG-2 decoders
    # show them), so they never count.
    select = f"if(if(eq(ld(0),0)*key,st(0,1+gt(t,{wanted})),ld(0))-1,0,gte(t,{wanted}))"
    # Decoding stops a little past the wanted frame, so a failed try costs little more
    # than the GOP it landed in (-t would count from the first decoded frame instead).
    trim = f"trim=end={probe.start_time_s + at_s + _READ_PAST_S:.6f}"
    for margin_s in SEEK_MARGINS_S:
        seek_s = at_s - margin_s
        if seek_s <= 0:
            break
        command = [
            # -noaccurate_seek: else ffmpeg drops the frames before the seek point,
            # keyframe and all, before the filters see them.
            *FFMPEG, "-noaccurate_seek", "-ss", f"{seek_s:.6f}", "-i", str(source),
            "-map", f"0:{probe.video_stream_index}", "-vf", f"{trim},select='{select}',{picture}", *JPEG_OUTPUT,
        ]  # fmt: skip
        if _try_render(command, out, source=source, what=what, run=run, timeout_s=timeout_s):
            return out
    command = [
        *FFMPEG, "-i", str(source), "-map", f"0:{probe.video_stream_index}",
        "-vf", f"select='gte(t,{wanted})',{picture}", *JPEG_OUTPUT,
    ]  # fmt: skip
    return render_image(command, out, source=source, what=what, run=run, timeout_s=timeout_s)


def _try_render(
    command: Sequence[str], out: Path, *, source: Path, what: str, run: Runner, timeout_s: float
) -> bool:
    """Run ``command`` into a temporary file and move it to ``out``; False if ffmpeg wrote nothing.

    The temporary file sits next to ``out`` so ``os.replace`` is atomic and a rerun
    simply overwrites the previous image.

    Raises:
        CorruptMedia: ffmpeg failed.
        ToolFailed: ffmpeg is missing or timed out.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    # NOTE(media): ffmpeg creates the temporary file itself, so it gets the usual
    # umask permissions (mkstemp would make it 0600); the random part keeps two
    # concurrent reruns from writing to the same name.
    temp_path = out.parent / f".{out.name}.{uuid.uuid4().hex}.tmp"
    try:
        completed = run_tool([*command, str(temp_path)], run=run, timeout_s=timeout_s)
        if completed.returncode != 0:
            reason = first_error_line(completed.stderr)
            raise CorruptMedia(str(source), f"ffmpeg could not make the {what}: {reason}")
        if not temp_path.is_file() or temp_path.stat().st_size == 0:
            return False
        os.replace(temp_path, out)
    finally:
        temp_path.unlink(missing_ok=True)
    return True
