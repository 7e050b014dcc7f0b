"""Avid markers, SRT, WebVTT and CSV exports read back by independent parsers and compared with the store.

The marker list and the CSV are read with the standard library's ``csv``; SRT with ``srt``;
WebVTT with ``webvtt-py``.
"""

from __future__ import annotations

import csv
import html
import io
from datetime import timedelta
from fractions import Fraction

import pytest
import srt
import webvtt

from autolog.exports import (
    ExportOptions,
    InvalidExportOption,
    NotExportable,
    Selection,
    export_item,
    export_selection,
)
from autolog.store import Store
from tests.unit.exports.logged import Clip, log_clip
from tests.unit.exports.timecodes import smpte_frames


def export_text(store: Store, item_id: str, format_name: str, **options: object) -> str:
    return "".join(export_item(store, item_id, format_name, ExportOptions.parse(**options)).chunks)  # type: ignore[arg-type]


@pytest.mark.parametrize("clip", [Clip("DF1"), Clip("P25", rate="25", start_timecode="10:00:00:00")],
                         ids=["29.97df", "25"])
def test_each_frame_record_is_a_marker_at_its_source_timecode(sqlite_store: Store, clip: Clip) -> None:
    log_clip(sqlite_store, clip)

    text = export_text(sqlite_store, clip.item_id, "markers", colour="blue")

    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    frames = sqlite_store.results.frames(clip.item_id)
    assert rows == [["autolog", frame.timecode, "V1", "blue", " ".join(frame.description.split()), "1"]
                    for frame in frames]
    drop = ";" in clip.start_timecode
    assert all((";" in row[1]) is drop for row in rows)


def test_the_drop_frame_markers_count_from_01_00_00_00(sqlite_store: Store) -> None:
    # Given the drop-frame clip: its frame records at 1.25 s and 4.25 s into the clip
    log_clip(sqlite_store, Clip("DF1"))

    rows = list(csv.reader(io.StringIO(export_text(sqlite_store, "DF1", "markers")), delimiter="\t"))

    # Then each marker is 01:00:00;00 plus round(t * 29.97) frames
    start = smpte_frames("01:00:00;00", 30, drop=True)
    assert [smpte_frames(row[1], 30, drop=True) - start for row in rows] == [
        round(1.25 * Fraction(30000, 1001)), round(4.25 * Fraction(30000, 1001))]
    assert [row[3] for row in rows] == ["red", "red"]


def test_an_unknown_marker_colour_is_refused() -> None:
    with pytest.raises(InvalidExportOption, match="color: expected one of red, green"):
        ExportOptions.parse(colour="mauve")


@pytest.mark.parametrize("timing", ["clip", "source"])
def test_the_srt_holds_the_transcript_from_the_clip_start_or_at_source_timecode(sqlite_store: Store,
                                                                               timing: str) -> None:
    log_clip(sqlite_store, Clip("DF1"))

    cues = list(srt.parse(export_text(sqlite_store, "DF1", "srt", timing=timing)))

    # 01:00:00;00 at 29.97 drop-frame is frame 107,892, shown 107,892 * 1001 / 30000 s after 00:00:00;00
    offset_s = smpte_frames("01:00:00;00", 30, drop=True) * 1001 / 30000 if timing == "source" else 0.0
    segments = sqlite_store.results.transcript("DF1")
    assert [(cue.index, cue.content) for cue in cues] == [(1, "Two coffees, please."),
                                                          (2, "That's <eight> euros & fifty.")]
    for cue, segment in zip(cues, segments, strict=True):
        assert cue.start == timedelta(milliseconds=round((offset_s + segment.start_s) * 1000))
        assert cue.end == timedelta(milliseconds=round((offset_s + segment.end_s) * 1000))


@pytest.mark.parametrize("timing", ["clip", "source"])
def test_the_webvtt_holds_the_transcript_with_its_markup_escaped(sqlite_store: Store, timing: str) -> None:
    log_clip(sqlite_store, Clip("P25", rate="25", start_timecode="10:00:00:00"))

    text = export_text(sqlite_store, "P25", "vtt", timing=timing)
    captions = list(webvtt.from_buffer(io.StringIO(text)))

    offset_ms = 10 * 3600 * 1000 if timing == "source" else 0
    segments = sqlite_store.results.transcript("P25")
    # webvtt-py leaves character references as written
    assert [html.unescape(caption.text) for caption in captions] == [segment.text for segment in segments]
    assert "<eight>" not in text
    assert [(caption.start_time.in_milliseconds(), caption.end_time.in_milliseconds()) for caption in captions] == [
        (offset_ms + round(segment.start_s * 1000), offset_ms + round(segment.end_s * 1000)) for segment in segments]


@pytest.mark.parametrize(("format_name", "named"), [("srt", "SRT subtitles"), ("vtt", "WebVTT subtitles")])
def test_an_item_without_speech_has_no_subtitles(sqlite_store: Store, format_name: str, named: str) -> None:
    # An empty SRT is what Premiere Pro reports as a damaged file: refused with the reason, as an EDL of no shots
    log_clip(sqlite_store, Clip("MUTE", speech=((1.0, 2.0, "  "),)))

    with pytest.raises(NotExportable, match=rf"'MUTE' cannot be exported as {named}: no speech was transcribed"):
        export_item(sqlite_store, "MUTE", format_name)


def test_an_audio_only_item_has_no_markers(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("SND", rate="25", start_timecode="10:00:00:00", media_kind="audio"))

    with pytest.raises(NotExportable, match=r"as Avid markers: it has no picture and so no frame records; export ale"):
        export_item(sqlite_store, "SND", "markers")


def test_the_csv_has_one_row_per_frame_record(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("DF1"))
    log_clip(sqlite_store, Clip("P25", rate="25", start_timecode="10:00:00:00", reel=None))

    export = export_selection(sqlite_store, Selection(), "csv")

    rows = list(csv.DictReader(io.StringIO("".join(export.chunks))))
    expected = [(item_id, frame) for item_id in ("DF1", "P25") for frame in sqlite_store.results.frames(item_id)]
    assert len(rows) == len(expected) == 4
    for row, (item_id, frame) in zip(rows, expected, strict=True):
        item = sqlite_store.items.get(item_id)
        assert (row["item_id"], row["source"], row["reel"]) == (item_id, item.source, item.reel or "")
        assert (int(row["position"]), float(row["time_s"])) == (frame.position, pytest.approx(frame.time_s))
        assert (row["timecode"], row["description"], row["transcript"]) == (
            frame.timecode, frame.description, frame.transcript or "")
        assert row["keywords"].split("; ") == frame.keywords
        assert (row["shot_type"], row["image_path"]) == (frame.analysis["shot_type"], frame.image_path)


def test_an_empty_csv_selection_is_the_header_alone(sqlite_store: Store) -> None:
    export = export_selection(sqlite_store, Selection(), "csv")

    text = "".join(export.chunks)
    assert export.items == 0
    assert list(csv.reader(io.StringIO(text))) == [[
        "item_id", "source", "reel", "position", "time_s", "timecode", "description", "keywords", "shot_type",
        "transcript", "image_path"]]


def test_an_arrow_spoken_in_a_cue_never_reads_as_its_timing_line(sqlite_store: Store) -> None:
    # Given speech whose text holds "-->" (a line with it is a timing line to an SRT or WebVTT reader)
    log_clip(sqlite_store, Clip("ARROW", speech=((0.4, 1.9, "Go left --> then right."), (2.6, 5.2, "A ---> B."))))

    srt_cues = list(srt.parse(export_text(sqlite_store, "ARROW", "srt")))
    vtt_cues = list(webvtt.from_buffer(io.StringIO(export_text(sqlite_store, "ARROW", "vtt"))))

    # Then both readers find the two cues, the arrow written "->"
    assert [cue.content for cue in srt_cues] == ["Go left -> then right.", "A -> B."]
    assert [html.unescape(caption.text) for caption in vtt_cues] == ["Go left -> then right.", "A -> B."]
