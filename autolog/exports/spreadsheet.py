"""Frame records as CSV (RFC 4180) for a spreadsheet or a database import, written by ``csv``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from autolog.exports.facts import shot_type
from autolog.exports.records import LoggedItem

#: The header row; one row per frame record follows.
CSV_COLUMNS: tuple[str, ...] = (
    "item_id", "source", "reel", "position", "time_s", "timecode", "description", "keywords", "shot_type",
    "transcript", "image_path",
)

#: What joins a frame's keywords in one cell.
KEYWORD_JOINER = "; "


def write_csv(items: Iterable[LoggedItem]) -> Iterator[str]:
    """Yield the header, then each item's frame records, one item at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield _drain(buffer)
    for logged in items:
        for frame in logged.frames:
            writer.writerow([
                logged.item.id, logged.item.source, logged.item.reel or "", frame.position, f"{frame.time_s:.3f}",
                frame.timecode, frame.description, KEYWORD_JOINER.join(frame.keywords), shot_type(frame),
                frame.transcript or "", frame.image_path,
            ])
        if buffer.tell():
            yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
