"""Format seconds as SMPTE-style non-drop-frame timecode."""

from __future__ import annotations

import math


def to_timecode(seconds: float, fps: float) -> str:
    """Return ``HH:MM:SS:FF`` for a time in a clip running at ``fps``.

    The time becomes the nearest frame number; a time exactly half-way between two
    frames belongs to the earlier one, still on screen at that instant (so 3661.5 s at
    25 fps is frame 91537, ``01:01:01:12``). Frames are then counted off at the
    nominal integer rate ``round(fps)``, non-drop-frame: at 29.97 fps a frame number is
    split by 30, so the timecode drifts behind wall-clock time by 0.1 %, as NDF does.

    Raises:
        ValueError: ``seconds`` is negative or ``fps`` is not positive (or either is not finite).
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, not {seconds}")
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite number > 0, not {fps}")
    frame_number = math.ceil(seconds * fps - 0.5)
    nominal_fps = max(1, round(fps))
    total_seconds, frames = divmod(max(0, frame_number), nominal_fps)
    minutes_total, secs = divmod(total_seconds, 60)
    hours, minutes = divmod(minutes_total, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}:{frames:02d}"
