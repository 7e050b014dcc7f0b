"""ALE exports read back by OpenTimelineIO's ALE reader and compared with the store."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest

from autolog.exports import ExportOptions, MixedFrameRates, Selection, export_item, export_selection, iter_selection
from autolog.exports.ale import AleHeading, write_ale
from autolog.media.timecode import frame_timecode, parse_rate
from autolog.store import Store
from tests.unit.exports.logged import Clip, Shot, log_clip
from tests.unit.exports.timecodes import smpte_frames


def read_ale(text: str) -> tuple[dict[str, str], list[otio.schema.Clip]]:
    """Parse an ALE with OpenTimelineIO; return its heading and clips."""
    collection = otio.adapters.read_from_string(text, adapter_name="ale")
    return dict(collection.metadata["ALE"]["header"]), list(collection.find_clips())


def ale_table(text: str) -> tuple[list[str], list[list[str]]]:
    """Split an ALE's text as a bin reads it: its column names, and each data line's tab-separated cells."""
    columns = text.split("\nColumn\n", 1)[1].splitlines()[0].split("\t")
    return columns, [line.split("\t") for line in text.split("\nData\n", 1)[1].splitlines()]


def ale_of(store: Store, item_id: str, *, shots: bool = False) -> str:
    return "".join(export_item(store, item_id, "ale", ExportOptions(shots=shots)).chunks)


def spelled(time: otio.opentime.RationalTime, rate: Fraction, *, drop: bool) -> str:
    """Spell a time OpenTimelineIO read as a timecode at the item's exact rate."""
    return str(otio.opentime.to_timecode(time, float(rate), drop))


@pytest.mark.parametrize(("sample_rate", "audio_format"), [
    (48_000, "48kHz"), (44_100, "44kHz"), (22_050, "22kHz"), (16_000, "48kHz"), (96_000, "48kHz")])
def test_the_audio_format_is_one_avids_log_specification_lists(
    sqlite_store: Store, sample_rate: int, audio_format: str,
) -> None:
    log_clip(sqlite_store, Clip("SR1", sample_rate=sample_rate))

    heading, _ = read_ale(ale_of(sqlite_store, "SR1"))

    assert heading["AUDIO_FORMAT"] == audio_format


def test_a_drop_frame_clip_reads_back_at_its_source_timecode(sqlite_store: Store) -> None:
    # Given a 6 s clip at 29.97 drop-frame starting at 01:00:00;00, two shots, stereo sound
    clip = Clip("DF1")
    log_clip(sqlite_store, clip)
    item = sqlite_store.items.get("DF1")

    # When its ALE is read back
    heading, (row,) = read_ale(ale_of(sqlite_store, "DF1"))

    # Then the heading and the row carry the stored facts, with an exclusive End
    assert heading == {"FIELD_DELIM": "TABS", "FPS": "29.97", "VIDEO_FORMAT": "1080", "AUDIO_FORMAT": "48kHz"}
    rate = parse_rate(item.nominal_fps or "")
    start, duration = row.source_range.start_time, row.source_range.duration
    assert spelled(start, rate, drop=True) == item.start_timecode == "01:00:00;00"
    assert start.value == smpte_frames("01:00:00;00", 30, drop=True)
    end = frame_timecode("01:00:00;00", rate, clip.duration_s)
    assert spelled(row.source_range.end_time_exclusive(), rate, drop=True) == end == "01:00:06;00"
    assert duration.value == round(clip.duration_s * rate)
    columns = row.metadata["ALE"]
    assert (row.name, columns["Tape"], row.media_reference.target_url) == ("DF1", "A001C003", "DF1.mov")
    assert (columns["Tracks"], columns["FPS"]) == ("VA1A2", "29.97")
    frames = sqlite_store.results.frames("DF1")
    assert columns["Description"] == " / ".join(" ".join(frame.description.split()) for frame in frames)
    assert columns["Keywords"] == "café, woman, menu"
    assert columns["Transcript"] == " ".join(segment.text for segment in sqlite_store.results.transcript("DF1"))
    assert (columns["Autolog Item"], columns["Autolog Source"], columns["Autolog Rate"]) == (
        "DF1", item.source, "30000/1001")
    assert (columns["Autolog Media"], columns["Autolog Size"], columns["Autolog Shots"]) == ("video", "1920x1080", "2")


@pytest.mark.parametrize(("rate", "start", "fps", "drop"), [
    ("25", "10:00:00:00", "25", False),
    ("30000/1001", "01:00:00:00", "29.97", False),
    ("24000/1001", "00:59:50:00", "23.976", False),
    ("60000/1001", "01:00:00;00", "59.94", True),
    ("50", "23:00:00:00", "50", False),
])
def test_each_rate_keeps_its_counting(sqlite_store: Store, rate: str, start: str, fps: str, drop: bool) -> None:
    # Given a clip at another rate (a non-drop 29.97 clip keeps ':' though the rate allows drop-frame)
    log_clip(sqlite_store, Clip("R1", rate=rate, start_timecode=start, duration_s=4.0,
                                shots=(Shot(0.0, 4.0, "One shot."),)))

    heading, (row,) = read_ale(ale_of(sqlite_store, "R1"))

    exact = parse_rate(rate)
    assert heading["FPS"] == fps
    assert spelled(row.source_range.start_time, exact, drop=drop) == start
    assert row.source_range.start_time.value == smpte_frames(start, round(exact), drop=drop)
    assert spelled(row.source_range.end_time_exclusive(), exact, drop=drop) == frame_timecode(start, rate, 4.0)


def test_shots_become_subclip_rows_at_their_source_timecodes(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("DF2"))
    rate = Fraction(30000, 1001)

    _, (whole, *shots) = read_ale(ale_of(sqlite_store, "DF2", shots=True))

    scenes, frames = sqlite_store.results.scenes("DF2"), sqlite_store.results.frames("DF2")
    assert [shot.name for shot in shots] == ["DF2 shot 1", "DF2 shot 2"]
    for shot, scene, frame in zip(shots, scenes, frames, strict=True):
        assert spelled(shot.source_range.start_time, rate, drop=True) == frame_timecode(
            "01:00:00;00", rate, scene.start_s)
        assert spelled(shot.source_range.end_time_exclusive(), rate, drop=True) == frame_timecode(
            "01:00:00;00", rate, scene.end_s)
        assert shot.metadata["ALE"]["Description"] == " ".join(frame.description.split())
        assert shot.metadata["ALE"]["Shot Type"] == frame.analysis["shot_type"]
        assert shot.metadata["ALE"]["Transcript"] == frame.transcript
    assert shots[0].source_range.end_time_exclusive() == shots[1].source_range.start_time
    assert whole.metadata["ALE"]["Shot Type"] == "wide, close-up"


#: ``02_vfr_lowlight.mp4`` of the footage cases: 30 fps then 15 fps, a cut at 1.6 s; its container
#: says 3.967 s, where its last frame (from 3.933 s, at 15 fps) ends at 4.0 s, as its last shot does.
VFR_CLIP = Clip("VFR1", rate="30", start_timecode="00:00:00:00", duration_s=3.967,
                shots=(Shot(0.0, 1.6, "Dim street."), Shot(1.6, 4.0, "A lamp comes on.")))


def test_the_clip_row_holds_every_shot_when_the_container_ends_inside_the_last_frame(sqlite_store: Store) -> None:
    log_clip(sqlite_store, VFR_CLIP)

    _, (whole, *shots) = read_ale(ale_of(sqlite_store, "VFR1", shots=True))

    ends = [str(otio.opentime.to_timecode(clip.source_range.end_time_exclusive(), 30)) for clip in (whole, *shots)]
    assert ends == ["00:00:04:00", "00:00:01:18", "00:00:04:00"]


def test_every_way_to_an_ale_gives_a_clip_the_same_end(sqlite_store: Store) -> None:
    # Given the variable-rate clip whose last shot ends after its container (one item's ALE ends at 4.0 s)
    log_clip(sqlite_store, VFR_CLIP)

    # When it is exported as one item, and in a selection with and without shot rows
    texts = [ale_of(sqlite_store, "VFR1"), "".join(export_selection(sqlite_store, Selection(), "ale").chunks),
             "".join(export_selection(sqlite_store, Selection(), "ale", ExportOptions(shots=True)).chunks)]

    # Then each clip row ends with the last shot (a selection without shots had read the container's 3.967 s)
    rows = [read_ale(text)[1][0] for text in texts]
    ends = [str(otio.opentime.to_timecode(row.source_range.end_time_exclusive(), 30)) for row in rows]
    assert ends == ["00:00:04:00"] * 3


@pytest.mark.parametrize(("item_id", "duration_s", "end"), [
    ("PADDED", 4.032, "10:00:04:00"),  # AAC's last frame pads the sound 0.8 of a frame past the picture
    ("LONGER", 6.936, "10:00:06:23"),  # a recorder that ran on: the sound is logged to its end
])
def test_sound_lengthens_a_clip_only_when_it_runs_a_frame_past_the_picture(
    sqlite_store: Store, item_id: str, duration_s: float, end: str,
) -> None:
    log_clip(sqlite_store, Clip(item_id, rate="25", start_timecode="10:00:00:00", duration_s=duration_s,
                                video_duration_s=4.0, shots=(Shot(0.0, 2.0, "Bars."), Shot(2.0, 4.0, "Tone."))))

    text = ale_of(sqlite_store, item_id)

    _, (clip,) = read_ale(text)
    assert str(otio.opentime.to_timecode(clip.source_range.end_time_exclusive(), 25)) == end
    columns, (row,) = ale_table(text)
    assert dict(zip(columns, row, strict=True))["End"] == end


def test_tabs_and_line_breaks_in_the_log_never_break_a_row(sqlite_store: Store) -> None:
    # Given descriptions holding a tab and a line break (the adapter leaves them in)
    log_clip(sqlite_store, Clip("T1"))

    text = ale_of(sqlite_store, "T1", shots=True)

    columns, data = ale_table(text)
    assert len(data) == 3
    assert all(len(cells) == len(columns) for cells in data)
    assert "Close on the menu; prices in euros." in data[2]


def test_an_audio_only_item_has_audio_tracks_and_no_video(sqlite_store: Store) -> None:
    # Given a sound roll: two mono tracks, no picture, no shots
    log_clip(sqlite_store, Clip("SND", rate="25", start_timecode="14:30:00:00", media_kind="audio",
                                audio_channels=(1, 1)))

    heading, (row,) = read_ale(ale_of(sqlite_store, "SND", shots=True))

    assert row.metadata["ALE"]["Tracks"] == "A1A2"
    assert row.metadata["ALE"]["Autolog Media"] == "audio"
    assert row.metadata["ALE"]["Description"] == ""
    assert heading["FPS"] == "25"
    assert spelled(row.source_range.start_time, Fraction(25), drop=False) == "14:30:00:00"


def test_mixed_frame_rates_are_refused_with_the_rates_named(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("A-DF"))
    log_clip(sqlite_store, Clip("B-25", rate="25", start_timecode="10:00:00:00"))

    with pytest.raises(MixedFrameRates) as refused:
        export_selection(sqlite_store, Selection(), "ale")

    assert refused.value.counts == {"29.97": 1, "25": 1}
    assert "1 at 25 fps, 1 at 29.97 fps" in str(refused.value)
    assert "fps=25" in str(refused.value)


def test_one_rate_of_a_mixed_selection_can_be_exported(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("A-DF"))
    log_clip(sqlite_store, Clip("B-25", rate="25", start_timecode="10:00:00:00"))

    export = export_selection(sqlite_store, Selection.parse(fps="25"), "ale")

    heading, rows = read_ale("".join(export.chunks))
    assert (heading["FPS"], [row.name for row in rows], export.items) == ("25", ["B-25"], 1)


def test_drop_and_non_drop_clips_at_29_97_share_one_ale(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("A-DF"))
    log_clip(sqlite_store, Clip("B-NDF", start_timecode="01:00:00:00"))

    heading, rows = read_ale("".join(export_selection(sqlite_store, Selection(), "ale").chunks))

    rate = Fraction(30000, 1001)
    assert heading["FPS"] == "29.97"
    assert [(row.name, row.source_range.start_time.value) for row in rows] == [
        ("A-DF", smpte_frames("01:00:00;00", 30, drop=True)), ("B-NDF", smpte_frames("01:00:00:00", 30, drop=False))]
    assert spelled(rows[1].source_range.start_time, rate, drop=False) == "01:00:00:00"


def test_an_empty_selection_is_a_valid_ale_without_rows(sqlite_store: Store) -> None:
    export = export_selection(sqlite_store, Selection.parse(text="nothing matches"), "ale")

    text = "".join(export.chunks)
    heading, rows = read_ale(text)
    assert (export.items, rows) == (0, [])
    assert heading["FIELD_DELIM"] == "TABS"
    assert text.split("\nColumn\n", 1)[1].startswith("Name\tTape\tSource File\tStart\tEnd")


def test_a_selection_is_written_in_pieces_that_make_one_file(sqlite_store: Store) -> None:
    # Given seven items, read two at a time and written three rows at a time
    for number in range(7):
        log_clip(sqlite_store, Clip(f"S{number}", start_timecode=f"0{number}:00:00;00"))

    pieces = list(write_ale(iter_selection(sqlite_store, Selection(), page_size=2), AleHeading("29.97"),
                            chunk_rows=3))

    # Then each piece but the first holds rows only, and together they are one ALE of all seven
    assert len(pieces) == 3
    assert all("Heading" not in piece and "Column" not in piece for piece in pieces[1:])
    _, rows = read_ale("".join(pieces))
    assert [row.name for row in rows] == [f"S{number}" for number in range(7)]
    assert [spelled(row.source_range.start_time, Fraction(30000, 1001), drop=True) for row in rows] == [
        f"0{number}:00:00;00" for number in range(7)]


def test_a_keyword_holding_commas_counts_as_one_keyword_per_part(sqlite_store: Store) -> None:
    # Given shots tagged "beach, sunset" and "Beach": in a comma-separated column, beach, sunset, Beach
    log_clip(sqlite_store, Clip("K1", shots=(Shot(0.0, 2.5, "Waves.", ("beach, sunset", "waves")),
                                            Shot(2.5, 6.0, "Dusk.", ("Beach", " , ", "Sunset,dusk")))))

    _, clips = read_ale(ale_of(sqlite_store, "K1"))

    # Then each part is a keyword of its own, once, in first-seen order
    assert clips[0].metadata["ALE"]["Keywords"] == "beach, sunset, waves, dusk"
