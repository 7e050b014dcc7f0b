"""Avid Media Composer marker lists: the tab-separated text its Markers window imports.

No interchange library writes this format, so it is written here. One line per marker, the
layout Media Composer's *Export Markers* writes and *Import Markers* reads::

    user <TAB> timecode <TAB> track <TAB> colour <TAB> comment <TAB> duration in frames

The timecode is the frame record's source timecode, so the markers land on the master clip
whatever its start; the track is ``V1`` (``A1`` for an audio-only item).
"""

from __future__ import annotations

from autolog.exports.facts import one_line
from autolog.exports.records import LoggedItem

#: The marker colours Media Composer offers.
AVID_MARKER_COLOURS: tuple[str, ...] = ("red", "green", "blue", "cyan", "magenta", "yellow", "black", "white")

#: The marker colour when none is asked for.
DEFAULT_MARKER_COLOUR = "red"

#: The user name written in each marker's first field.
MARKER_USER = "autolog"


def write_avid_markers(logged: LoggedItem, *, colour: str = DEFAULT_MARKER_COLOUR) -> str:
    """Return one marker per frame record, its description as the comment.

    Raises:
        ValueError: ``colour`` is not one of :data:`AVID_MARKER_COLOURS`.
    """
    if colour not in AVID_MARKER_COLOURS:
        raise ValueError(f"not a Media Composer marker colour: {colour!r}")
    track = "V1" if logged.has_picture else "A1"
    return "".join(f"{MARKER_USER}\t{frame.timecode}\t{track}\t{colour}\t{one_line(frame.description)}\t1\n"
                   for frame in logged.frames)
