"""An item's source clock: clip time to SMPTE frame numbers, and the spellings exports need.

Exports count in *frame numbers*: the SMPTE frame count of a timecode (``01:00:00;00`` at
29.97 drop-frame is frame 107,892). A frame shown ``t`` seconds into the clip has the frame
number of :func:`autolog.media.timecode.frame_timecode` (the one rounding rule), counted on
past midnight so an end never comes before its start. Counting and spelling use the
``timecode`` library.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from timecode.timecode import Timecode

from autolog.media.timecode import frame_timecode, is_drop_frame_rate, library_rate, normalise_timecode, parse_rate

#: The start timecode of an item whose file carries none (the probe's default).
DEFAULT_START_TIMECODE = "00:00:00:00"

#: The rate of a legacy item stored without a nominal rate or a probed one.
FALLBACK_RATE = Fraction(25)


@dataclass(frozen=True)
class SourceClock:
    """How an item counts frames: exact nominal rate, drop-frame or not, first frame."""

    #: The exact nominal rate, e.g. ``30000/1001``.
    rate: Fraction
    drop_frame: bool
    #: The first frame's timecode, ``;`` before the frames for drop-frame.
    start_timecode: str
    #: The SMPTE frame count of ``start_timecode``.
    start_frame: int

    @classmethod
    def of(cls, nominal_fps: str | None, start_timecode: str | None, probe: dict[str, Any] | None = None
           ) -> SourceClock:
        """Build the clock from an item's stored facts.

        An item stored before the source facts existed counts at its probed ``fps`` (else
        25) from ``00:00:00:00``.

        Raises:
            ValueError: a stored rate or timecode is malformed.
        """
        fps = probe.get("fps") if probe else None
        probed = float(fps) if isinstance(fps, int | float) and fps > 0 else None
        return _clock(nominal_fps if nominal_fps and nominal_fps != "0/1" else None, probed,
                      start_timecode or DEFAULT_START_TIMECODE)

    @property
    def timecode_base(self) -> int:
        """Frames per timecode second: 30 at 29.97, 25 at 25."""
        return math.ceil(self.rate)

    @property
    def fps_label(self) -> str:
        """The rate as Avid writes it in an ALE's ``FPS``: ``23.976``, ``25``, ``29.97``, ``59.94``."""
        return fps_label(self.rate)

    @property
    def label_rate(self) -> float:
        """The rate at which OpenTimelineIO spells this clock's timecodes.

        OpenTimelineIO spells every 29.97 and 59.94 timecode as drop-frame. A non-drop
        timecode at those rates has the labels of the integer rate, so non-drop clocks are
        spelled at ``timecode_base``; drop-frame ones at the exact rate.
        """
        return float(self.rate) if self.drop_frame else float(self.timecode_base)

    def frame_at(self, seconds: float) -> int:
        """Return the frame number of the frame shown ``seconds`` into the clip.

        Raises:
            ValueError: a negative or non-finite time.
        """
        return self.frame_of(frame_timecode(self.start_timecode, self.rate, seconds))

    def frame_of(self, timecode: str) -> int:
        """Return the frame number of a timecode in this clip, counting on past midnight.

        Timecode wraps at 24 h; an export's end must not come before its start.
        """
        frame = frame_number(timecode, self.rate)
        return frame + frames_per_day(self.rate, self.drop_frame) if frame < self.start_frame else frame

    def timecode(self, frame: int) -> str:
        """Spell a frame number as a timecode of this clock (wrapping at 24 h)."""
        return spell_timecode(frame, self.rate, self.drop_frame)

    def seconds(self, frame: int) -> float:
        """Return the time of a frame number on a clock that read ``00:00:00:00`` at 0 s."""
        return float(frame / self.rate)


@functools.lru_cache(maxsize=4096)
def _clock(nominal_fps: str | None, probed_fps: float | None, start_timecode: str) -> SourceClock:
    # Cached: a selection's items share a few rates and often their start timecodes.
    rate = parse_rate(nominal_fps) if nominal_fps else parse_rate(probed_fps) if probed_fps else FALLBACK_RATE
    start = normalise_timecode(start_timecode, rate)
    return SourceClock(rate=rate, drop_frame=";" in start, start_timecode=start, start_frame=frame_number(start, rate))


def fps_label(rate: Fraction) -> str:
    """Spell ``rate`` as Avid writes it in an ALE's ``FPS``: ``23.976``, ``25``, ``29.97``."""
    if rate.denominator == 1:
        return str(rate.numerator)
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def stored_rate(rate: Fraction) -> str:
    """Spell ``rate`` as items store their ``nominal_fps``: ``30000/1001``, ``25/1``."""
    return f"{rate.numerator}/{rate.denominator}"


def frame_number(timecode: str, rate: Fraction) -> int:
    """Return the SMPTE frame count of ``timecode`` (``;`` before the frames: drop-frame)."""
    drop = ";" in timecode and is_drop_frame_rate(rate)
    return int(Timecode(library_rate(rate), timecode, force_non_drop_frame=not drop).frames) - 1


def spell_timecode(frame: int, rate: Fraction, drop_frame: bool) -> str:
    """Spell a frame number as ``HH:MM:SS:FF`` (``;`` for drop-frame), wrapping at 24 h."""
    frame %= frames_per_day(rate, drop_frame)
    return str(Timecode(library_rate(rate), frames=frame + 1, force_non_drop_frame=not drop_frame))


def frames_per_day(rate: Fraction, drop_frame: bool) -> int:
    """Return how many frame numbers a day of timecode holds (fewer with drop-frame)."""
    separator = ";" if drop_frame else ":"
    return frame_number(f"23:59:59{separator}{math.ceil(rate) - 1:02d}", rate) + 1
