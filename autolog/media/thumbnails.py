"""Make a poster frame and a contact sheet for a clip, as a player shows it."""

from __future__ import annotations

from pathlib import Path

from autolog.errors import UnsupportedMedia
from autolog.media._render import FFMPEG, JPEG_OUTPUT, render_frame_at, render_image
from autolog.media._run import Runner, run_process
from autolog.media.picture import display_filters
from autolog.media.probe import ProbeResult

#: Posters are scaled down to this width at most (never up), keeping the shown aspect ratio.
POSTER_MAX_WIDTH = 640

#: Width of one tile in a contact sheet.
TILE_WIDTH = 160

#: The poster is taken this far into the picture (a fraction of it), but no later than
#: ``POSTER_LATEST_S``: past a slate or a fade-in, still early in long takes.
POSTER_FRACTION = 0.1
POSTER_LATEST_S = 10.0


def poster_time_s(probe: ProbeResult) -> float:
    """Return the clip time of a clip's poster frame: 10 % into its picture, at most 10 s in."""
    picture_s = probe.video_duration_s or probe.duration_s
    return probe.video_start_s + min(picture_s * POSTER_FRACTION, POSTER_LATEST_S)


def make_poster(
    path: Path,
    probe: ProbeResult,
    out: Path,
    *,
    at_s: float,
    run: Runner = run_process,
    timeout_s: float = 120.0,
) -> Path:
    """Write the picture shown at ``at_s`` seconds of clip time to ``out`` as a JPEG.

    The frame is exact in any container (see ``render_frame_at``), shown as a player
    shows it (``autolog.media.picture``) and at most ``POSTER_MAX_WIDTH`` wide.

    Raises:
        UnsupportedMedia: The probe has no video stream.
        CorruptMedia: No frame decodes at ``at_s`` (e.g. past the end of a truncated file).
        ToolFailed: ffmpeg is missing or timed out.
    """
    return render_frame_at(path, probe, out, at_s=at_s, max_width=POSTER_MAX_WIDTH,
                           what=f"poster at {at_s:.2f} s", run=run, timeout_s=timeout_s)


def make_contact_sheet(
    path: Path,
    probe: ProbeResult,
    out: Path,
    *,
    columns: int = 4,
    rows: int = 3,
    run: Runner = run_process,
    timeout_s: float = 600.0,
) -> Path:
    """Write a JPEG grid of ``columns * rows`` evenly spaced pictures to ``out``.

    One ffmpeg pass over the video stream: the picture is cut into ``columns * rows``
    equal intervals, ``select`` keeps the frame nearest the middle of each (sampling the
    middle avoids the black or fade frames at a start), the picture filters and a scale
    to ``TILE_WIDTH`` run on those frames only, and ``tile`` lays them out row by row.
    A clip with fewer frames than tiles, or that ends early, yields blank tiles, not an error.

    Raises:
        ValueError: ``columns`` or ``rows`` is not positive.
        UnsupportedMedia: The probe has no video stream.
        CorruptMedia: No frame decodes at all.
        ToolFailed: ffmpeg is missing or timed out.
    """
    if columns < 1 or rows < 1:
        raise ValueError(f"a contact sheet needs at least one column and row, not {columns}x{rows}")
    if probe.video_stream_index is None:
        raise UnsupportedMedia(str(path), "no video stream for a contact sheet")
    tiles = columns * rows
    interval_s = (probe.video_duration_s or probe.duration_s) / tiles
    # The frame nearest a sample time is the first at or after it less half a frame; a
    # frame starts a new tile when its slot (which interval's middle it is nearest to
    # or past) differs from the previous frame's. Times are container times (-copyts).
    half_frame_s = 0.5 / probe.fps if probe.fps > 0 else 0.0
    first_s = probe.start_time_s + probe.video_start_s + interval_s / 2 - half_frame_s
    slot = f"floor((t-{first_s:.6f})/{interval_s:.6f})"
    previous_slot = f"floor((prev_t-{first_s:.6f})/{interval_s:.6f})"
    starts_tile = f"if(isnan(prev_t),1,gt({slot},{previous_slot}))"
    filters = ",".join([
        f"select='between({slot},0,{tiles - 1})*{starts_tile}'",
        display_filters(probe, width=TILE_WIDTH),
        f"tile=layout={columns}x{rows}",
    ])
    command = [
        *FFMPEG, "-i", str(path), "-map", f"0:{probe.video_stream_index}", "-vf", filters, *JPEG_OUTPUT,
    ]  # fmt: skip
    return render_image(command, out, source=path, what=f"{columns}x{rows} contact sheet", run=run,
                        timeout_s=timeout_s)
