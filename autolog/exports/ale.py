"""Avid Log Exchange (ALE): one row per clip, optionally one per shot, written by OpenTimelineIO.

OpenTimelineIO's ``ale`` adapter (``otio-ale-adapter``) writes the Heading, Column and Data
sections. Three things are done around it, each for a reason found in the adapter:

- It builds the whole file in one string, so rows go to it in chunks of ``CHUNK_ROWS``
  clips with the same columns; the Heading and Column sections of every chunk but the
  first are dropped, which makes the file a stream.
- It spells 29.97 and 59.94 timecodes as drop-frame whatever the clip, and writes its
  ``fps`` argument as ``FPS``; non-drop clips at those rates are written at the integer
  rate (same labels, see :attr:`SourceClock.label_rate`) and ``FPS`` is set to Avid's
  label afterwards.
- It does not take tabs or line breaks out of values (its ``replace`` result is unused),
  so every value goes through :func:`one_line` first.

End timecodes are exclusive, as in Avid's ALEs: End = Start + Duration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby, islice

import opentimelineio as otio
from otio_ale_adapter.ale import AVID_VIDEO_FORMAT_FROM_WIDTH_HEIGHT, DEFAULT_VIDEO_FORMAT

from autolog.exports.facts import (
    excerpt,
    file_name,
    keywords,
    one_line,
    shot_type,
    summary,
    tracks,
    transcript_text,
)
from autolog.exports.records import LoggedItem
from autolog.exports.timing import stored_rate

#: The columns, in order: Avid's own, then autolog's facts.
COLUMNS: tuple[str, ...] = (
    "Name", "Tape", "Source File", "Start", "End", "Duration", "Tracks", "FPS", "Description", "Keywords",
    "Transcript", "Shot Type", "Autolog Item", "Autolog Shot", "Autolog Source", "Autolog Media", "Autolog Rate",
    "Autolog Size", "Autolog Shots", "Autolog Timecode",
)

#: Clips handed to the adapter at a time; bounds the memory an export of any size needs.
CHUNK_ROWS = 500

#: The audio format of a heading when no item has sound, or when its rate is not one Avid's takes.
DEFAULT_AUDIO_FORMAT = "48kHz"

#: The ``AUDIO_FORMAT`` values of Avid's log specification (Avid Log Exchange, "Global Headings"),
#: by the sample rate in kHz, rounded: 22.05 and 44.1 kHz are ``22kHz`` and ``44kHz``. Another
#: rate (a 16 kHz voice recorder, 96 kHz production sound) is written as the project's usual
#: ``48kHz``: Media Composer converts linked audio to its project's rate either way.
AVID_AUDIO_FORMATS = {22: "22kHz", 24: "24kHz", 44: "44kHz", 48: "48kHz"}

_FPS_LINE = re.compile(r"^FPS\t.*$", re.MULTILINE)


@dataclass(frozen=True)
class AleHeading:
    """The Heading section: one rate, picture format and audio format for the whole file."""

    fps_label: str
    video_format: str = DEFAULT_VIDEO_FORMAT
    audio_format: str = DEFAULT_AUDIO_FORMAT

    @classmethod
    def describe(cls, fps_label: str, *, display_width: int, display_height: int, sample_rate: int) -> AleHeading:
        """Return the heading for clips of one rate, the largest picture and sound given."""
        video = AVID_VIDEO_FORMAT_FROM_WIDTH_HEIGHT(display_width, display_height) if display_height else None
        audio = AVID_AUDIO_FORMATS.get(round(sample_rate / 1000), DEFAULT_AUDIO_FORMAT)
        return cls(fps_label=fps_label, video_format=str(video or DEFAULT_VIDEO_FORMAT), audio_format=audio)

    @classmethod
    def of_item(cls, logged: LoggedItem) -> AleHeading:
        """Return the heading of a one-item ALE."""
        probe = logged.probe
        return cls.describe(
            logged.clock.fps_label, display_width=probe.display_width if probe else 0,
            display_height=probe.display_height if probe else 0,
            sample_rate=max((track.sample_rate for track in probe.audio_tracks), default=0) if probe else 0)


def write_ale(items: Iterable[LoggedItem], heading: AleHeading, *, shots: bool = False,
              chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
    """Yield an ALE of ``items`` piece by piece: one row per clip, and with ``shots`` one per shot.

    Every item must count at ``heading``'s rate (``MixedFrameRates`` is the caller's check).
    An empty ``items`` gives a valid ALE with a heading, the columns and no rows.
    """
    rows = (row for logged in items for row in _rows(logged, shots=shots))
    first = True
    while chunk := list(islice(rows, chunk_rows)):
        # One adapter call per run of clips spelled at the same rate (drop and non-drop
        # clips at 29.97 can share a file).
        for label_rate, run in groupby(chunk, key=lambda row: row[1]):
            text = _adapter_text([clip for clip, _ in run], label_rate, heading)
            yield text if first else text.split("\nData\n", 1)[1]
            first = False
    if first:
        yield _adapter_text([], float(heading.fps_label), heading)


def _adapter_text(clips: list[otio.schema.Clip], label_rate: float, heading: AleHeading) -> str:
    collection = otio.schema.SerializableCollection(children=clips)
    collection.metadata["ALE"] = {"header": {"AUDIO_FORMAT": heading.audio_format}}
    text = str(otio.adapters.write_to_string(collection, adapter_name="ale", columns=list(COLUMNS), fps=label_rate,
                                             video_format=heading.video_format))
    return _FPS_LINE.sub(f"FPS\t{heading.fps_label}", text, count=1)


def _rows(logged: LoggedItem, *, shots: bool) -> Iterator[tuple[otio.schema.Clip, float]]:
    item, clock = logged.item, logged.clock
    rate = clock.label_rate
    common = _item_columns(logged)
    end = logged.end_frame
    yield _clip(item.id, clock.start_frame, end, rate, item.source, {
        **common, "Description": summary(logged.frames), "Keywords": ", ".join(keywords(logged.frames)),
        "Transcript": excerpt(transcript_text(logged.segments)),
        "Shot Type": ", ".join(dict.fromkeys(filter(None, (shot_type(frame) for frame in logged.frames)))),
    }), rate
    if not shots:
        return
    frames = {frame.position: frame for frame in logged.frames}
    for number, scene in enumerate(logged.scenes, start=1):
        frame = frames.get(scene.position)
        described = [frame] if frame is not None else []
        yield _clip(f"{item.id} shot {number}", clock.frame_at(scene.start_s), clock.frame_at(scene.end_s), rate,
                    item.source, {
                        **common, "Description": summary(described), "Keywords": ", ".join(keywords(described)),
                        "Transcript": excerpt(one_line(frame.transcript)) if frame else "",
                        "Shot Type": shot_type(frame) if frame else "", "Autolog Shot": str(number),
                    }), rate


def _item_columns(logged: LoggedItem) -> dict[str, str]:
    item, probe = logged.item, logged.probe
    size = f"{probe.display_width}x{probe.display_height}" if probe and probe.display_height else ""
    return {
        "Tape": item.reel or "", "Tracks": tracks(logged), "FPS": logged.clock.fps_label, "Autolog Item": item.id,
        "Autolog Shot": "", "Autolog Source": item.source, "Autolog Media": "video" if logged.has_picture else "audio",
        "Autolog Rate": stored_rate(logged.clock.rate), "Autolog Size": size,
        "Autolog Shots": str(len(logged.frames)), "Autolog Timecode": probe.timecode_source if probe else "",
    }


def _clip(name: str, start_frame: int, end_frame: int, rate: float, source: str, columns: dict[str, str]
          ) -> otio.schema.Clip:
    time_range = otio.opentime.TimeRange(otio.opentime.RationalTime(start_frame, rate),
                                         otio.opentime.RationalTime(max(end_frame - start_frame, 0), rate))
    clip = otio.schema.Clip(name=one_line(name), source_range=time_range,
                            media_reference=otio.schema.ExternalReference(target_url=one_line(file_name(source))))
    # Empty cells are left out: the adapter writes a missing value as an empty cell, and
    # converting values into OpenTimelineIO metadata is most of a row's cost.
    clip.metadata["ALE"] = {column: text for column, value in columns.items() if (text := one_line(value))}
    return clip
