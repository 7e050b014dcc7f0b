"""Avid Media Composer marker lists: the tab-separated text its Markers window imports.

No interchange library writes this format, so it is written here. One line per marker, the
layout Media Composer's *Export Markers* writes and *Import Markers* reads::

    user <TAB> timecode <TAB> track <TAB> colour <TAB> comment <TAB> duration in frames

The timecode is the frame record's source timecode, so the markers land on the master clip
whatever its start, on track ``V1``. An item without frame records (an audio-only item skips
the picture steps) has no markers: a file of none is refused, as an EDL of no shots is.
"""

from __future__ import annotations

from autolog.exports.errors import NotExportable
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
        NotExportable: the item has no frame records.
    """
    if colour not in AVID_MARKER_COLOURS:
        raise ValueError(f"not a Media Composer marker colour: {colour!r}")
    if not logged.frames:
        why = "it has no picture and so no frame records" if not logged.has_picture else "it has no frame records"
        raise NotExportable(logged.item.id, "Avid markers", f"{why}; export ale, srt or vtt")
    return "".join(f"{MARKER_USER}\t{frame.timecode}\tV1\t{colour}\t{one_line(frame.description)}\t1\n"
                   for frame in logged.frames)
