"""EDL and FCP 7 XML exports read back by OpenTimelineIO and, for the EDL, by pycmx."""

from __future__ import annotations

import io
from xml.etree import ElementTree

import opentimelineio as otio
import pycmx
import pytest
from timecode import Timecode

from autolog.exports import ExportOptions, NotExportable, export_item
from autolog.media.timecode import frame_timecode, parse_rate
from autolog.store import Store
from tests.unit.exports.logged import Clip, Shot, log_clip
from tests.unit.exports.test_ale import VFR_CLIP
from tests.unit.exports.timecodes import smpte_frames

#: Clips at the rates of the footage cases: 29.97 drop-frame from 01:00:00;00, 25 fps, 29.97 non-drop.
CLIPS = [Clip("DF1"), Clip("P25", rate="25", start_timecode="10:00:00:00", reel="R007"),
         Clip("NDF1", start_timecode="00:59:58:00", reel="Card-B 12")]


def export_text(store: Store, item_id: str, format_name: str, **options: object) -> str:
    return "".join(export_item(store, item_id, format_name, ExportOptions.parse(**options)).chunks)  # type: ignore[arg-type]


def expected_shots(store: Store, item_id: str) -> list[tuple[str, str]]:
    """Each shot's source in and exclusive out, from the stored scenes and source facts."""
    item = store.items.get(item_id)
    assert item.start_timecode and item.nominal_fps
    return [(frame_timecode(item.start_timecode, item.nominal_fps, scene.start_s),
             frame_timecode(item.start_timecode, item.nominal_fps, scene.end_s))
            for scene in store.results.scenes(item_id)]


@pytest.mark.parametrize("clip", CLIPS, ids=lambda clip: clip.item_id)
def test_the_edl_lists_each_shot_at_its_source_timecode_for_pycmx(sqlite_store: Store, clip: Clip) -> None:
    log_clip(sqlite_store, clip)

    edit_list = pycmx.parse_cmx3600(io.StringIO(export_text(sqlite_store, clip.item_id, "edl")))

    edits = [edit for event in edit_list.events for edit in event.edits]
    assert edit_list.title == clip.item_id
    assert edit_list.format == "3600"
    assert [(edit.source_in, edit.source_out) for edit in edits] == expected_shots(sqlite_store, clip.item_id)
    expected_reel = "".join(char for char in (clip.reel or "") if char.isalnum())[:8]
    assert [edit.source for edit in edits] == [expected_reel] * 2
    assert [edit.clip_name for edit in edits] == [f"{clip.item_id} shot 1", f"{clip.item_id} shot 2"]
    assert all(edit.channels.video and list(edit.channels.channels) == [1, 2] for edit in edits)  # AA/V: sync sound
    first_record = "01:00:00;00" if ";" in clip.start_timecode else "01:00:00:00"
    assert edits[0].record_in == first_record


@pytest.mark.parametrize(("audio_channels", "field", "audio"), [
    ((), "V", []), ((1,), "B", [1]), ((2,), "AA/V", [1, 2]), ((1, 1, 2), "AA/V", [1, 2])])
def test_each_edl_event_takes_the_clip_s_sound_with_its_picture(sqlite_store: Store, audio_channels: tuple[int, ...],
                                                                 field: str, audio: list[int]) -> None:
    # A trial's two-track clip conformed from the EDL without its production sound: every event was V alone
    log_clip(sqlite_store, Clip("SYNC", audio_channels=audio_channels))

    text = export_text(sqlite_store, "SYNC", "edl")

    edits = [edit for event in pycmx.parse_cmx3600(io.StringIO(text)).events for edit in event.edits]
    assert len(edits) == 2
    assert all(edit.channels.video and sorted(edit.channels.channels) == audio for edit in edits)
    assert [line.split()[2] for line in text.splitlines() if line[:3].isdigit()] == [field, field]


@pytest.mark.parametrize("clip", CLIPS, ids=lambda clip: clip.item_id)
def test_the_edl_reads_back_in_opentimelineio_with_drop_frame_declared(sqlite_store: Store, clip: Clip) -> None:
    log_clip(sqlite_store, clip)
    text = export_text(sqlite_store, clip.item_id, "edl")
    rate = parse_rate(clip.rate)
    drop = ";" in clip.start_timecode

    timeline = otio.adapters.read_from_string(text, adapter_name="cmx_3600", rate=float(rate))

    assert text.splitlines()[1] == ("FCM: DROP FRAME" if drop else "FCM: NON-DROP FRAME")
    (video,) = timeline.video_tracks()
    shots = [(str(otio.opentime.to_timecode(shot.source_range.start_time, float(rate), drop)),
              str(otio.opentime.to_timecode(shot.source_range.end_time_exclusive(), float(rate), drop)))
             for shot in video.find_clips()]
    assert shots == expected_shots(sqlite_store, clip.item_id)
    base = round(rate)
    assert [shot.source_range.start_time.value for shot in video.find_clips()] == [
        smpte_frames(start, base, drop=drop) for start, _ in shots]
    # The events' sound (AA/V) reads as two audio tracks holding the same shots
    assert [[shot.source_range for shot in track.find_clips()] for track in timeline.audio_tracks()] == [
        [shot.source_range for shot in video.find_clips()]] * 2


@pytest.mark.parametrize("clip", CLIPS, ids=lambda clip: clip.item_id)
def test_frame_records_are_edl_locators_at_record_timecode_in_the_chosen_colour(
    sqlite_store: Store, clip: Clip,
) -> None:
    log_clip(sqlite_store, clip)
    rate, drop = parse_rate(clip.rate), ";" in clip.start_timecode
    base = round(rate)

    text = export_text(sqlite_store, clip.item_id, "edl", colour="green")

    # Each locator follows its event, at the record timecode where its frame falls in that event, as Media
    # Composer writes them (record 00:59:58:00-01:00:02:19, LOC 01:00:01:14 in OpenTimelineIO's example)
    events = [edit for event in pycmx.parse_cmx3600(io.StringIO(text)).events for edit in event.edits]
    frames = sqlite_store.results.frames(clip.item_id)
    locators = [line for line in text.splitlines() if line.startswith("* LOC:")]
    assert len(locators) == len(frames) == len(events)
    for line, frame, edit in zip(locators, frames, events, strict=True):
        offset = smpte_frames(frame.timecode, base, drop=drop) - smpte_frames(edit.source_in, base, drop=drop)
        assert 0 <= offset < smpte_frames(edit.source_out, base, drop=drop) - smpte_frames(edit.source_in, base,
                                                                                            drop=drop)
        expected = Timecode(str(rate if drop else base), edit.record_in, force_non_drop_frame=not drop) + offset
        assert line.split()[2:4] == [str(expected), "GREEN"]
    if clip.item_id != "DF1":  # the source timecode, which the lines had held, is not the record's here
        assert locators[0].split()[2] != frames[0].timecode
    assert locators[0].endswith("A WOMAN WALKS INTO A CAFE.")  # ASCII: CMX 3600 has no other characters


def test_an_audio_only_item_has_no_edl(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("SND", rate="25", start_timecode="10:00:00:00", media_kind="audio"))

    with pytest.raises(NotExportable, match=r"no picture .*; export ale, fcp7xml \(its audio tracks\), srt or vtt"):
        export_item(sqlite_store, "SND", "edl")


@pytest.mark.parametrize("clip", CLIPS, ids=lambda clip: clip.item_id)
def test_the_fcp7_xml_holds_the_shots_with_linked_audio_and_markers(sqlite_store: Store, clip: Clip) -> None:
    log_clip(sqlite_store, clip)
    rate = parse_rate(clip.rate)
    drop = ";" in clip.start_timecode

    text = export_text(sqlite_store, clip.item_id, "fcp7xml")
    timeline = otio.adapters.read_from_string(text, adapter_name="fcp_xml")

    video = timeline.video_tracks()
    audio = timeline.audio_tracks()
    assert (len(video), len(audio)) == (1, 2)
    expected = expected_shots(sqlite_store, clip.item_id)
    for track in (*video, *audio):
        shots = [(str(otio.opentime.to_timecode(shot.source_range.start_time, float(rate), drop)),
                  str(otio.opentime.to_timecode(shot.source_range.end_time_exclusive(), float(rate), drop)))
                 for shot in track.find_clips()]
        assert shots == expected
    first = next(iter(video[0].find_clips()))
    reference = first.media_reference
    assert reference.target_url == f"file:///media/cards/{clip.item_id}.mov"
    start = smpte_frames(clip.start_timecode, round(rate), drop=drop)
    assert reference.available_range.start_time.value == start
    assert reference.available_range.duration.value == round(clip.duration_s * rate)
    timecode = reference.metadata["fcp_xml"]["timecode"]
    assert (timecode["displayformat"], timecode["reel"]["name"]) == ("DF" if drop else "NDF", clip.reel)
    # OpenTimelineIO keeps no timecode string; the file's is checked with the standard library
    assert ElementTree.fromstring(text).findtext(".//file/timecode/string") == clip.start_timecode
    frames = sqlite_store.results.frames(clip.item_id)
    markers = [marker for shot in video[0].find_clips() for marker in shot.markers]
    # xmeml counts clip markers in frames from the start of the media
    assert [(marker.name, marker.marked_range.start_time.value) for marker in markers] == [
        (" ".join(frame.description.split()), smpte_frames(frame.timecode, round(rate), drop=drop) - start)
        for frame in frames]


@pytest.mark.parametrize("clip", [CLIPS[0], Clip("SND", rate="25", start_timecode="10:00:00:00", media_kind="audio",
                                        audio_channels=(1, 1, 1), duration_s=12.0)], ids=["shots", "audio-only"])
def test_each_fcp7_xml_audio_track_plays_its_own_channel_and_each_shot_is_linked(
    sqlite_store: Store, clip: Clip,
) -> None:
    log_clip(sqlite_store, clip)

    root = ElementTree.fromstring(export_text(sqlite_store, clip.item_id, "fcp7xml"))

    media = root.find("./project/children/sequence/media")
    assert media is not None
    tracks = [("video", number, track) for number, track in enumerate(media.findall("./video/track"), 1)]
    tracks += [("audio", number, track) for number, track in enumerate(media.findall("./audio/track"), 1)]
    items = {item.get("id"): (kind, number, index + 1)
             for kind, number, track in tracks for index, item in enumerate(track.findall("clipitem"))}
    assert len(items) == sum(len(track.findall("clipitem")) for _, _, track in tracks), "no item is on two tracks"
    assert root.findtext(".//file/media/audio/channelcount") == str(sum(clip.audio_channels))
    for kind, number, track in tracks:
        for index, item in enumerate(track.findall("clipitem"), 1):
            assert len(item.findall("rate")) == 1
            # An audio item plays its own track's channel of the file; a video item none
            assert [(source.findtext("mediatype"), source.findtext("trackindex"))
                    for source in item.findall("sourcetrack")] == ([("audio", str(number))] if kind == "audio" else [])
            # Each item links to every item of its shot, itself included, as Final Cut Pro 7 writes them
            links = {(link.findtext("linkclipref"), link.findtext("mediatype"), int(link.findtext("trackindex") or 0),
                      int(link.findtext("clipindex") or 0)) for link in item.findall("link")}
            assert links == {(other, *place) for other, place in items.items() if place[2] == index}


def test_a_clip_without_sound_declares_no_audio_in_its_fcp7_xml(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("MUTE", audio_channels=()))

    root = ElementTree.fromstring(export_text(sqlite_store, "MUTE", "fcp7xml"))

    assert root.findall(".//file/media/video") and not root.findall(".//file/media/audio")
    assert not root.findall("./project/children/sequence/media/audio/track")


def test_the_fcp7_xml_media_holds_every_shot_when_the_container_ends_inside_the_last_frame(
    sqlite_store: Store,
) -> None:
    log_clip(sqlite_store, VFR_CLIP)

    timeline = otio.adapters.read_from_string(export_text(sqlite_store, "VFR1", "fcp7xml"), adapter_name="fcp_xml")

    last = list(timeline.video_tracks()[0].find_clips())[-1]
    assert last.source_range.end_time_exclusive().value == 120
    assert last.media_reference.available_range.end_time_exclusive().value == 120


@pytest.mark.parametrize(("clip", "width", "height", "dominance"), [
    (Clip("I25", rate="25", start_timecode="10:00:00:00", size=(720, 576), field_order="tt"), 720, 576, "upper"),
    (Clip("I30", size=(720, 480), field_order="bb"), 720, 480, "lower"),
    (Clip("TALL", rate="30", start_timecode="00:00:00:00", size=(1080, 1920)), 1080, 1920, "none"),
], ids=lambda value: value.item_id if isinstance(value, Clip) else None)
def test_the_fcp7_xml_describes_the_picture_and_sound_for_the_sequence_and_the_file(
        sqlite_store: Store, clip: Clip, width: int, height: int, dominance: str) -> None:
    # Premiere Pro and Resolve set the sequence up from these: a trial's portrait and 25i clips had none
    log_clip(sqlite_store, clip)

    root = ElementTree.fromstring(export_text(sqlite_store, clip.item_id, "fcp7xml"))

    sequence = root.find("./project/children/sequence")
    assert sequence is not None
    pictures = [sequence.find("./media/video/format/samplecharacteristics"),
                *root.findall(".//file/media/video/samplecharacteristics")]
    assert len(pictures) == 2  # the sequence's and the one file's (described once, referred to after)
    for picture in pictures:
        assert picture is not None
        assert [picture.findtext(tag) for tag in ("width", "height", "pixelaspectratio", "fielddominance")] == [
            str(width), str(height), "square", dominance]
        assert picture.findtext("./rate/timebase") == sequence.findtext("./rate/timebase")
    sounds = [sequence.find("./media/audio/format/samplecharacteristics"),
              *root.findall(".//file/media/audio/samplecharacteristics")]
    assert len(sounds) == 2
    for sound in sounds:
        assert sound is not None
        assert (sound.findtext("depth"), sound.findtext("samplerate")) == ("24", "48000")  # pcm_s24le
    # The adapter's reader still takes it whole
    timeline = otio.adapters.read_from_string(ElementTree.tostring(root, encoding="unicode"), adapter_name="fcp_xml")
    assert len(timeline.video_tracks()) == 1 and len(timeline.audio_tracks()) == 2


def test_an_audio_only_fcp7_xml_describes_its_sound_and_no_picture(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("SND2", rate="25", start_timecode="10:00:00:00", media_kind="audio",
                                audio_channels=(1,), sample_rate=44_100))

    root = ElementTree.fromstring(export_text(sqlite_store, "SND2", "fcp7xml"))

    assert root.findall(".//samplecharacteristics/width") == []
    assert [element.text for element in root.iter("samplerate")] == ["44100", "44100"]


def test_an_audio_only_fcp7_xml_has_one_clip_per_track_and_no_video(sqlite_store: Store) -> None:
    log_clip(sqlite_store, Clip("SND", rate="25", start_timecode="10:00:00:00", media_kind="audio",
                                audio_channels=(1, 1, 1), duration_s=12.0))

    timeline = otio.adapters.read_from_string(export_text(sqlite_store, "SND", "fcp7xml"), adapter_name="fcp_xml")

    assert timeline.video_tracks() == []
    tracks = timeline.audio_tracks()
    assert len(tracks) == 3
    for track in tracks:
        (whole,) = track.find_clips()
        assert whole.name == "SND"
        assert whole.source_range.start_time.value == smpte_frames("10:00:00:00", 25, drop=False)
        assert whole.source_range.duration == otio.opentime.RationalTime(12 * 25, 25)


def test_the_edl_is_ascii_with_names_and_locators_transliterated(sqlite_store: Store) -> None:
    # Given a clip logged in French, from a card whose path and reel are not ASCII
    log_clip(sqlite_store, Clip("ETE1", reel="Carte-É 12", source="/media/cartes/Été/Plage_été.mov",
                                shots=(Shot(0.0, 2.5, "Un café “crème” à 8 €", ("café",)),
                                       Shot(2.5, 6.0, "Menu à la carte", ("menu",)))))

    text = export_text(sqlite_store, "ETE1", "edl")

    # Then every byte is ASCII, the locators read transliterated, and pycmx still reads both events
    assert text.isascii()
    locators = [line.split("     ", 1)[1] for line in text.splitlines() if line.startswith("* LOC:")]
    assert locators == ['UN CAFE "CREME" A 8 EUR', "MENU A LA CARTE"]
    edit_list = pycmx.parse_cmx3600(io.StringIO(text))
    assert [edit.source for event in edit_list.events for edit in event.edits] == ["Carte12"] * 2


def test_sound_recorded_past_the_picture_stays_on_the_fcp7_xml_audio_tracks(sqlite_store: Store) -> None:
    # As 13_audio_longer.mp4 of the footage cases: 4 s of picture in two shots, 6.9 s of sound
    clip = Clip("RANON", rate="25", start_timecode="10:00:00:00", duration_s=6.9, video_duration_s=4.0,
                shots=(Shot(0.0, 2.0, "A slate."), Shot(2.0, 4.0, "A wide shot.")), speech=())
    log_clip(sqlite_store, clip)

    timeline = otio.adapters.read_from_string(export_text(sqlite_store, clip.item_id, "fcp7xml"),
                                              adapter_name="fcp_xml")
    ale = otio.adapters.read_from_string(export_text(sqlite_store, clip.item_id, "ale"), adapter_name="ale")

    # The picture's shots end with the picture; the last shot's sound runs on to the clip's end, as the ALE's
    [video] = timeline.video_tracks()
    assert [shot.source_range.duration.value for shot in video.find_clips()] == [50, 50]
    [logged] = ale.find_clips()
    assert logged.source_range.duration.value > 170  # 6.9 s at 25 fps
    for audio in timeline.audio_tracks():
        shots = list(audio.find_clips())
        assert [shot.source_range.start_time.value for shot in shots] == [900_000, 900_050]
        assert shots[-1].source_range.end_time_exclusive() == logged.source_range.end_time_exclusive()
