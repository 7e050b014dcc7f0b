"""The transcript as SubRip (SRT) and WebVTT subtitles, timed from the clip's start or at source timecode.

No interchange library writes these, so they are written here and read back by the ``srt``
and ``webvtt-py`` parsers in the tests. Times are milliseconds. At source timecode a cue
at ``t`` seconds into the clip is at ``t`` plus the start timecode's time (its frame count
over the exact rate: ``01:00:00;00`` at 29.97 drop-frame is 3599.9964 s). An item in which no
speech was transcribed has no subtitles: a file of no cues is refused (Premiere Pro reports an
empty SRT as damaged), as an EDL of no shots is.
"""

from __future__ import annotations

import re

from autolog.exports.errors import NotExportable
from autolog.exports.facts import one_line
from autolog.exports.records import LoggedItem

#: How cue times may be counted.
TIMINGS: tuple[str, ...] = ("clip", "source")

#: Cue times when no timing is asked for: from the clip's start.
DEFAULT_TIMING = "clip"

#: An arrow in spoken text that would read as a cue's timing line: ``-->``, or longer.
_TIMING_ARROW = re.compile(r"-{2,}>")


def write_srt(logged: LoggedItem, *, timing: str = DEFAULT_TIMING) -> str:
    """Return the transcript as SRT: numbered cues, ``HH:MM:SS,mmm`` times.

    Raises:
        NotExportable: no speech was transcribed in the item.
    """
    return "".join(f"{number}\n{_time(start_ms, ',')} --> {_time(end_ms, ',')}\n{text}\n\n"
                   for number, (start_ms, end_ms, text) in enumerate(_cues(logged, timing, "SRT subtitles"), start=1))


def write_vtt(logged: LoggedItem, *, timing: str = DEFAULT_TIMING) -> str:
    """Return the transcript as WebVTT: ``HH:MM:SS.mmm`` times, text with ``&``, ``<``, ``>`` escaped.

    Raises:
        NotExportable: no speech was transcribed in the item.
    """
    cues = "".join(f"{_time(start_ms, '.')} --> {_time(end_ms, '.')}\n{_escape(text)}\n\n"
                   for start_ms, end_ms, text in _cues(logged, timing, "WebVTT subtitles"))
    return f"WEBVTT\n\n{cues}"


def _cues(logged: LoggedItem, timing: str, format_name: str) -> list[tuple[int, int, str]]:
    """Return the item's cues: start and end in ms, one-line text.

    Raises:
        ValueError: an unknown ``timing``.
        NotExportable: there are none (``format_name`` names the export refused).
    """
    if timing not in TIMINGS:
        raise ValueError(f"timing must be one of {TIMINGS}, not {timing!r}")
    offset_s = logged.clock.seconds(logged.clock.start_frame) if timing == "source" else 0.0
    cues = []
    for segment in logged.segments:
        # A cue's text must not hold "-->" (WebVTT forbids it; an SRT reader takes the line for a
        # timing line and loses the cue): it reads "->".
        text = _TIMING_ARROW.sub("->", one_line(segment.text))
        if not text:
            continue
        start_ms = round((offset_s + segment.start_s) * 1000)
        cues.append((start_ms, max(round((offset_s + segment.end_s) * 1000), start_ms), text))
    if not cues:
        raise NotExportable(logged.item.id, format_name, "no speech was transcribed in it")
    return cues


def _time(ms: int, separator: str) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours:02d}:{minute:02d}:{second:02d}{separator}{millis:03d}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
