"""What every export says about an item: its summary, keywords, speech, tracks, reel.

Text bound for one cell of a tab- or line-based format goes through :func:`one_line`, since
a tab or a line break inside a value would start a new column or record.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence

from autolog.exports.records import LoggedItem
from autolog.store import FrameView, SegmentView

#: The longest text put in one bin column (description, transcript); the full text is in
#: the CSV and the subtitles. Media Composer shows long text cells poorly.
MAX_CELL_CHARS = 1000

#: What joins several shots' descriptions into an item's summary.
SUMMARY_JOINER = " / "

_WHITESPACE = re.compile(r"\s+")


def one_line(text: str | None) -> str:
    """Return ``text`` with every run of whitespace (tabs, line breaks) as one space."""
    return _WHITESPACE.sub(" ", text or "").strip()


def excerpt(text: str, limit: int = MAX_CELL_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters at a word boundary, ending in an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


def summary(frames: Sequence[FrameView]) -> str:
    """Return an item's description: its shots' descriptions in order, in one cell."""
    return excerpt(SUMMARY_JOINER.join(one_line(frame.description) for frame in frames if frame.description.strip()))


def keywords(frames: Iterable[FrameView]) -> list[str]:
    """Return the frames' keywords in first-seen order, each once (case-insensitively).

    A keyword holding commas (``"beach, sunset"``) counts as one keyword per part: the bin's
    ``Keywords`` column is a comma-separated list, where it would read as several anyway.
    """
    seen: dict[str, str] = {}
    for frame in frames:
        for keyword in frame.keywords:
            for part in keyword.split(","):
                word = one_line(part)
                if word and word.casefold() not in seen:
                    seen[word.casefold()] = word
    return list(seen.values())


def transcript_text(segments: Iterable[SegmentView]) -> str:
    """Return the whole transcript as one line of text."""
    return one_line(" ".join(segment.text for segment in segments))


def shot_type(frame: FrameView) -> str:
    """Return the analyzer's shot size for a frame record (``wide``, ``close-up``...), if any."""
    value = frame.analysis.get("shot_type")
    return one_line(value) if isinstance(value, str) else ""


def tracks(logged: LoggedItem) -> str:
    """Return Avid's track list: ``V`` for picture, then ``A1``…``An``, one per audio channel.

    Media Composer links each channel of a file as a mono track, so a stereo stream is
    ``A1A2``; an audio-only item has no ``V``.
    """
    video = "V" if logged.has_picture else ""
    return video + "".join(f"A{number}" for number in range(1, logged.audio_channels + 1))


def file_name(source: str) -> str:
    """Return the file name of a source path or ``s3://`` URL."""
    return posixpath.basename(source.replace("\\", "/").rstrip("/")) or source


def reel(logged: LoggedItem) -> str:
    """Return the item's reel (tape) name: the probed reel, else its file name without extension."""
    if logged.item.reel and one_line(logged.item.reel):
        return one_line(logged.item.reel)
    return posixpath.splitext(file_name(logged.item.source))[0] or logged.item.id
