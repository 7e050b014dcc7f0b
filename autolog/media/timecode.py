"""SMPTE timecode: where a file's start timecode comes from, and each frame's timecode.

The arithmetic (drop-frame included) is the PyPI ``timecode`` library's; this module only
decides which rate and start apply. Rules (SMPTE ST 12-1):

- A frame's timecode is the start timecode plus its frame offset at the *nominal* rate,
  ``round(t * rate)`` for a frame shown ``t`` seconds into the clip, whatever the clip's
  average rate (a variable-rate phone clip is still counted at its nominal 30).
- Drop-frame exists only at 29.97 and 59.94 fps and is written with ``;`` before the frames.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from timecode.timecode import Timecode

#: ``HH:MM:SS:FF``, with ``;`` (or ``.``) before the frames for drop-frame.
_TIMECODE = re.compile(r"^(\d{2}):([0-5]\d):([0-5]\d)([:;.,])(\d{2,3})$")

#: The NTSC rates at which drop-frame counting exists.
_DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))


def parse_rate(rate: str | float | Fraction) -> Fraction:
    """Return a frame rate as an exact fraction: ``"30000/1001"``, ``"29.97"``, ``25`` all work.

    The decimal NTSC spellings (23.976, 29.97, 47.952, 59.94, 119.88) map to their exact
    ``N*1000/1001`` rates.

    Raises:
        ValueError: not a positive, finite rate.
    """
    try:
        value = Fraction(rate) if not isinstance(rate, float) else Fraction(rate).limit_denominator(1001)
    except (ValueError, ZeroDivisionError) as ex:
        raise ValueError(f"not a frame rate: {rate!r}") from ex
    if value <= 0:
        raise ValueError(f"a frame rate must be positive, not {rate!r}")
    ntsc = Fraction(math.ceil(value), 1) * Fraction(1000, 1001)
    if value.denominator != 1 and abs(value - ntsc) < Fraction(1, 100):
        return ntsc
    return value


def is_drop_frame_rate(rate: Fraction) -> bool:
    """True for 29.97 and 59.94 fps, the only rates with drop-frame timecode."""
    return rate in _DROP_FRAME_RATES


def normalise_timecode(text: str, rate: Fraction) -> str:
    """Return ``text`` as ``HH:MM:SS:FF`` or, for drop-frame at 29.97/59.94, ``HH:MM:SS;FF``.

    A ``;``, ``.`` or ``,`` before the frames marks drop-frame (the spellings cameras and
    ffmpeg use); at rates without drop-frame it is read as non-drop.

    Raises:
        ValueError: ``text`` is not a timecode, or its frames field reaches the rate.
    """
    match = _TIMECODE.match(text.strip())
    if match is None:
        raise ValueError(f"not a timecode (HH:MM:SS:FF): {text!r}")
    hours, minutes, seconds, separator, frames = match.groups()
    if int(frames) >= math.ceil(rate):
        raise ValueError(f"timecode {text!r} has frame {int(frames)} at {float(rate):g} fps")
    drop = separator != ":" and is_drop_frame_rate(rate)
    return f"{hours}:{minutes}:{seconds}{';' if drop else ':'}{int(frames):02d}"


def library_rate(rate: Fraction) -> str:
    """Spell ``rate`` as the ``timecode`` library reads it: ``"30000/1001"`` or ``"25"``."""
    return f"{rate.numerator}/{rate.denominator}" if rate.denominator != 1 else str(rate.numerator)


def frame_timecode(start_timecode: str, rate: str | Fraction, seconds: float) -> str:
    """Return the timecode of the frame shown ``seconds`` into a clip starting at ``start_timecode``.

    The time becomes a frame offset ``round(seconds * rate)``, a time exactly half-way
    between two frames belonging to the earlier one (still on screen at that instant); the
    offset is added to the start by SMPTE counting, drop-frame when the start is written
    with ``;`` at 29.97 or 59.94 fps. Timecode wraps at 24 hours.

    Args:
        start_timecode: the clip's first frame, e.g. ``01:00:00;00``.
        rate: the nominal frame rate, e.g. ``"30000/1001"``.
        seconds: clip time (from the clip's first timestamp), >= 0.

    Raises:
        ValueError: a negative or non-finite time, a bad rate or a bad start timecode.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, not {seconds}")
    exact_rate = parse_rate(rate)
    start = normalise_timecode(start_timecode, exact_rate)
    drop = ";" in start
    offset = max(0, math.ceil(seconds * exact_rate - Fraction(1, 2)))
    # NOTE(media): the library's frame counts are 1-based and it reads ':' at 29.97 as drop-frame
    # unless told otherwise; non-integer non-NTSC rates (e.g. 12.5) count at their ceiling.
    first = Timecode(library_rate(exact_rate), start, force_non_drop_frame=not drop)
    return str(first + offset) if offset else str(first)


def timecode_duration(seconds: float | None, rate: Fraction | None, *, drop_frame: bool) -> str | None:
    """Return a length as an editor's bin shows it: ``HH:MM:SS:FF`` frames at ``rate`` (``;`` counted drop-frame).

    The clip's frame count at its timecode rate (``round(seconds * rate)``), written as the timecode that
    many frames after ``00:00:00:00``; None without a length or a rate.
    """
    if seconds is None or not rate or seconds < 0:
        return None
    drop = drop_frame and rate.denominator == 1001
    return frame_timecode("00:00:00;00" if drop else "00:00:00:00", rate, float(seconds))


def probed_rate(probe: Mapping[str, Any]) -> Fraction | None:
    """Return the exact nominal rate step 1 found (``nominal_fps``, else ``fps``); None when it found none."""
    nominal = probe.get("nominal_fps")
    try:
        return parse_rate(nominal if nominal and nominal != "0/1" else probe.get("fps") or 0)
    except ValueError:
        return None
