"""The export routes through Falcon's TestClient, on real Redis and a real store."""

from __future__ import annotations

import csv
import io

import opentimelineio as otio
import pycmx
import pytest
import srt
import webvtt
from falcon.testing import TestClient

from autolog.statuses import Status
from autolog.store import Store
from tests.unit.exports.logged import Clip, log_clip
from web.app import AutologApi

#: Each item format: its media type and file name for item ``DF1``.
ITEM_FORMATS = {
    "ale": ("text/plain; charset=utf-8", "DF1.ale"),
    "markers": ("text/plain; charset=utf-8", "DF1-markers.txt"),
    "edl": ("text/plain; charset=utf-8", "DF1.edl"),
    "fcp7xml": ("application/xml; charset=utf-8", "DF1.xml"),
    "srt": ("application/x-subrip; charset=utf-8", "DF1.srt"),
    "vtt": ("text/vtt; charset=utf-8", "DF1.vtt"),
    "csv": ("text/csv; charset=utf-8", "DF1.csv"),
}


@pytest.fixture
def logged(api: AutologApi) -> Store:
    """The API's store with a 29.97 drop-frame item, a 25 fps item and a sound roll, all logged."""
    store = api.services.store
    log_clip(store, Clip("DF1"))
    log_clip(store, Clip("MX25", rate="25", start_timecode="10:00:00:00", reel="R007",
                         source="/media/day1/MX25.mxf"))
    log_clip(store, Clip("SND1", rate="25", start_timecode="14:30:00:00", media_kind="audio",
                         audio_channels=(1, 1), source="/media/day1/SND1.wav"))
    return store


def read_back(format_name: str, text: str) -> int:
    """Parse an export with an independent reader; return how many records it holds."""
    if format_name == "ale":
        return len(list(otio.adapters.read_from_string(text, adapter_name="ale").find_clips()))
    if format_name == "edl":
        return len(list(pycmx.parse_cmx3600(io.StringIO(text)).events))
    if format_name == "fcp7xml":
        return len(list(otio.adapters.read_from_string(text, adapter_name="fcp_xml").video_tracks()[0].find_clips()))
    if format_name == "srt":
        return len(list(srt.parse(text)))
    if format_name == "vtt":
        return len(list(webvtt.from_buffer(io.StringIO(text))))
    if format_name == "csv":
        return len(list(csv.DictReader(io.StringIO(text))))
    return len(list(csv.reader(io.StringIO(text), delimiter="\t")))


@pytest.mark.parametrize("format_name", list(ITEM_FORMATS))
def test_each_format_of_one_item_is_an_attachment_its_reader_parses(client: TestClient, logged: Store,
                                                                    format_name: str) -> None:
    response = client.simulate_get(f"/items/DF1/exports/{format_name}")

    content_type, filename = ITEM_FORMATS[format_name]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    assert response.headers["x-export-items"] == "1"
    expected = {"ale": 1, "srt": 2, "vtt": 2}.get(format_name, 2)
    assert read_back(format_name, response.text) == expected


def test_the_ale_of_the_drop_frame_item_starts_at_its_source_timecode(client: TestClient, logged: Store) -> None:
    response = client.simulate_get("/items/DF1/exports/ale", params={"shots": "true"})

    collection = otio.adapters.read_from_string(response.text, adapter_name="ale")
    rate = 30000 / 1001
    starts = [otio.opentime.to_timecode(clip.source_range.start_time, rate) for clip in collection.find_clips()]
    frames = logged.results.frames("DF1")
    assert starts[:2] == ["01:00:00;00", "01:00:00;00"]
    assert len(starts) == 1 + len(frames)


def test_an_unknown_format_is_404_listing_the_formats(client: TestClient, logged: Store) -> None:
    response = client.simulate_get("/items/DF1/exports/docx")

    assert response.status_code == 404
    assert response.json["description"] == (
        "no item export format 'docx'; formats: ale, markers, edl, fcp7xml, srt, vtt, csv")


def test_an_item_not_logged_yet_is_409_naming_its_status(client: TestClient, logged: Store) -> None:
    log_clip(logged, Clip("WIP1"), status=Status.AWAITING_USER_INPUT)

    response = client.simulate_get("/items/WIP1/exports/ale")

    assert response.status_code == 409
    assert "'WIP1' is at 'Awaiting User Input'" in response.json["description"]


def test_an_unknown_item_is_404(client: TestClient, logged: Store) -> None:
    assert client.simulate_get("/items/NOPE/exports/srt").status_code == 404


def test_an_audio_only_item_has_no_edl_but_an_ale_without_video(client: TestClient, logged: Store) -> None:
    edl = client.simulate_get("/items/SND1/exports/edl")
    ale = client.simulate_get("/items/SND1/exports/ale")

    assert edl.status_code == 409
    assert "no picture" in edl.json["description"]
    (row,) = otio.adapters.read_from_string(ale.text, adapter_name="ale").find_clips()
    assert row.metadata["ALE"]["Tracks"] == "A1A2"


@pytest.mark.parametrize(("path", "reason"), [
    ("/items/SND1/exports/markers", "no picture and so no frame records"),
    ("/items/MUTE1/exports/srt", "no speech was transcribed"),
    ("/items/MUTE1/exports/vtt", "no speech was transcribed"),
])
def test_an_export_that_would_be_empty_is_409_with_the_reason(client: TestClient, logged: Store, path: str,
                                                              reason: str) -> None:
    log_clip(logged, Clip("MUTE1", speech=()))

    response = client.simulate_get(path)

    assert response.status_code == 409
    assert reason in response.json["description"]


def test_a_selection_of_ids_is_one_streamed_ale(client: TestClient, logged: Store) -> None:
    response = client.simulate_get("/exports/ale", query_string="ids=MX25,SND1&ids=MX25")

    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="autolog-export.ale"'
    assert response.headers["x-export-items"] == "2"
    # Streamed: the length is not known before the body is sent
    assert "content-length" not in response.headers
    collection = otio.adapters.read_from_string(response.text, adapter_name="ale")
    assert collection.metadata["ALE"]["header"]["FPS"] == "25"
    assert [clip.name for clip in collection.find_clips()] == ["MX25", "SND1"]


def test_mixed_rates_in_one_ale_are_409_until_fps_picks_one(client: TestClient, logged: Store) -> None:
    refused = client.simulate_get("/exports/ale")
    picked = client.simulate_get("/exports/ale", params={"fps": "29.97"})

    assert refused.status_code == 409
    assert refused.json["description"].startswith("an ALE holds one frame rate and this selection has several "
                                                  "(2 at 25 fps, 1 at 29.97 fps)")
    assert picked.status_code == 200
    assert [clip.name for clip in otio.adapters.read_from_string(picked.text, adapter_name="ale").find_clips()] == [
        "DF1"]


def test_a_search_selects_by_source_and_an_empty_selection_is_a_header_alone(client: TestClient,
                                                                            logged: Store) -> None:
    found = client.simulate_get("/exports/csv", params={"q": "/DAY1/"})
    empty = client.simulate_get("/exports/csv", params={"q": "no such footage"})

    assert {row["item_id"] for row in csv.DictReader(io.StringIO(found.text))} == {"MX25"}
    assert (empty.status_code, empty.headers["x-export-items"]) == (200, "0")
    assert empty.text.splitlines() == [
        "item_id,source,reel,position,time_s,timecode,description,keywords,shot_type,transcript,image_path"]


def test_a_selection_asking_for_an_item_still_in_the_pipeline_is_409(client: TestClient, logged: Store) -> None:
    log_clip(logged, Clip("WIP1"), status=Status.PROCESSING_FRAME_INFO)

    response = client.simulate_get("/exports/csv", params={"ids": "DF1,WIP1"})

    assert response.status_code == 409
    assert "'WIP1' is at '5 - Processing Frame Info'" in response.json["description"]


def test_a_format_of_one_item_is_not_a_selection_format(client: TestClient, logged: Store) -> None:
    response = client.simulate_get("/exports/edl")

    assert response.status_code == 404
    assert response.json["description"] == "no selection export format 'edl'; formats: ale, csv"


@pytest.mark.parametrize(("url", "params", "field"), [
    ("/items/DF1/exports/markers", {"color": "mauve"}, "color"),
    ("/items/DF1/exports/srt", {"timing": "wallclock"}, "timing"),
    ("/items/DF1/exports/ale", {"shots": "perhaps"}, "shots"),
    ("/exports/ale", {"fps": "fast"}, "fps"),
    ("/exports/ale", {"ids": "../etc"}, "../etc"),
    ("/exports/csv", {"status": "8 - Done"}, "status"),
])
def test_bad_options_are_400_naming_the_option(client: TestClient, logged: Store, url: str,
                                               params: dict[str, str], field: str) -> None:
    response = client.simulate_get(url, params=params)

    assert response.status_code == 400
    assert field in response.json["description"] + response.json["title"]
