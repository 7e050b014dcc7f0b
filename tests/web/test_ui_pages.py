"""The review pages' content, paths that try to leave their folders, and the library's progress stream."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from falcon.testing import TestClient

from autolog.media.probe import container_name
from autolog.media.timecode import timecode_duration
from autolog.progress import ProgressChannel, ProgressEvent
from autolog.statuses import STEPS, Status
from autolog.store import FrameView, NewEvent, NewItem, SceneView, SegmentView, Store
from tests.conftest import item_view
from tests.web.test_progress_route import sse_events
from web.app import AutologApi
from web.ui import views
from web.ui.pages import PAGE_SIZE

Ids = Callable[[str], str]

#: What step 1 would store for a 29.97 fps drop-frame clip with two audio tracks.
PROBE = {"container": "mov,mp4,m4a,3gp,3g2,mj2", "duration_s": 65.5, "fps": 29.97, "nominal_fps": "30000/1001",
         "width": 1920, "height": 1080, "display_width": 1920, "display_height": 1080, "video_codec": "h264",
         "field_order": "progressive", "size_bytes": 12_500_000, "timecode_source": "tmcd track",
         "audio_tracks": [{"index": 1, "codec": "pcm_s24le", "channels": 2, "sample_rate": 48000, "start_s": 0.0},
                          {"index": 2, "codec": "pcm_s24le", "channels": 1, "sample_rate": 48000, "start_s": 0.5}]}


def artifact(api: AutologApi, item_id: str, name: str) -> str:
    path = api.services.settings.artifacts_root / item_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8jpeg")
    return str(path)


@pytest.fixture
def logged(api: AutologApi, unique_id: Ids) -> str:
    """A logged item with a poster, a contact sheet, two frame records, a transcript and a failure on its timeline."""
    store: Store = api.services.store
    item_id = unique_id("LOG")
    store.items.create([NewItem(item_id, f"/media/cards/{item_id}.mov")])
    store.items.update(item_id, status=Status.AVID_DESCRIPTION.value, probe=PROBE, start_timecode="01:00:00;00",
                       drop_frame=True, nominal_fps="30000/1001", media_kind="video")
    store.results.save_artifacts(item_id, "poster", [artifact(api, item_id, "poster.jpg")])
    store.results.save_artifacts(item_id, "contact_sheet", [artifact(api, item_id, "sheet.jpg")])
    store.results.save_scenes(item_id, [
        SceneView(position=0, start_s=0.0, end_s=65.0, sample_s=1.0, image_path=artifact(api, item_id, "s0.jpg")),
        SceneView(position=1, start_s=65.0, end_s=65.5, sample_s=65.032, image_path=artifact(api, item_id, "s1.jpg"))])
    store.results.save_frames(item_id, [
        FrameView(position=0, time_s=1.0, timecode="01:00:01;00", image_path=artifact(api, item_id, "f0.jpg"),
                  description="Wide shot of a <harbour> at dawn", keywords=["harbour", "boats"], analysis={},
                  transcript=None),
        FrameView(position=1, time_s=65.032, timecode="01:01:05;01", image_path=artifact(api, item_id, "f1.jpg"),
                  description="Close-up of a rope", keywords=["rope"], analysis={}, transcript=None),
    ])
    # "steady now" is said across the cut at 65 s: step 6 stores it under both frames it overlaps.
    store.results.save_transcript(item_id, [SegmentView(position=0, start_s=1.0, end_s=2.0, text="the tide is turning"),
                                            SegmentView(position=1, start_s=64.6, end_s=65.3, text="steady now"),
                                            SegmentView(position=2, start_s=65.032, end_s=66.0, text="hold it there")],
                                  {0: "the tide is turning steady now", 1: "steady now hold it there"})
    store.timeline.record(NewEvent(item_id=item_id, event="failed", step="analysis", attempt=1, worker="host:1:2",
                                   wait_ms=40, run_ms=2500, error_type="UpstreamUnavailable",
                                   error_message="Gemini answered 503"))
    return item_id


def test_library_shows_each_item_as_a_card_with_poster_duration_timecode_and_status(
        client: TestClient, logged: str, api: AutologApi, unique_id: Ids) -> None:
    waiting = unique_id("WAIT")
    api.services.store.items.create([NewItem(waiting, f"/media/{waiting}.mov")])
    api.services.store.items.update(waiting, error={"type": "NotMedia", "message": "not a media file"})

    page = client.simulate_get("/ui").text

    assert f'src="/items/{logged}/artifacts/poster/0"' in page and f'alt="Poster frame of {logged}"' in page
    assert "1:05.5" in page and "01:00:00;00" in page
    assert 'class="badge tone-done"' in page and "7 - Avid Description" in page
    assert 'class="badge tone-failed"' in page and "NotMedia: not a media file" in page


def test_library_filters_by_status_and_pages_by_id(client: TestClient, api: AutologApi, logged: str) -> None:
    ids = [f"PAGE-{index:03d}" for index in range(PAGE_SIZE + 1)]
    api.services.store.items.create([NewItem(item_id, f"/media/{item_id}.mov") for item_id in ids])

    first = client.simulate_get("/ui", params={"status": Status.PENDING_FILE_INFO.value}).text
    second = client.simulate_get("/ui", params={"status": Status.PENDING_FILE_INFO.value, "cursor": ids[-2]}).text

    assert first.count('class="card"') == PAGE_SIZE and logged not in first
    assert f"cursor={ids[-2]}" in first and "Next page" in first
    assert second.count('class="card"') == 1 and ids[-1] in second and "First page" in second
    assert client.simulate_get("/ui", params={"status": "9 - Nope"}).status_code == 400


def test_item_page_shows_frames_transcript_timeline_facts_and_downloads(client: TestClient, logged: str) -> None:
    page = client.simulate_get(f"/ui/items/{logged}").text

    assert f'src="/items/{logged}/artifacts/contact_sheet/0"' in page
    assert f'src="/items/{logged}/artifacts/sample/1"' in page and 'data-timecode="01:01:05;01"' in page
    assert "Wide shot of a &lt;harbour&gt; at dawn" in page and "<harbour>" not in page
    assert "the tide is turning" in page and "<li>boats</li>" in page
    assert '<span class="tc">01:01:05;01</span> <span>hold it there</span>' in page
    assert "UpstreamUnavailable: Gemini answered 503" in page and "2.5 s" in page and "host:1:2" in page
    assert "29.97 fps (30000/1001)" in page and "<dt>Drop-frame</dt><dd>yes</dd>" in page
    assert "1920 × 1080" in page and "#2 pcm_s24le 1 ch 48000 Hz from 0:00.5" in page
    assert "<dt>Container</dt><dd>QuickTime (MOV)</dd>" in page and "mov,mp4" not in page
    assert "<dt>Field order</dt><dd>Progressive</dd>" in page
    assert f'href="/items/{logged}/exports/edl"' in page and f'href="/items/{logged}/exports/srt"' in page


def test_item_page_folds_the_traceback_of_the_failure_it_records(client: TestClient, api: AutologApi,
                                                                 unique_id: Ids) -> None:
    item_id = unique_id("FAIL")
    store = api.services.store
    store.items.create([NewItem(item_id, f"/media/{item_id}.mov")])
    store.items.update(item_id, event=NewEvent(item_id=item_id, event="failed", step="file_info", attempt=2,
                                               error_type="ToolFailed", error_message="ffprobe crashed"),
                       error={"step": "file_info", "type": "ToolFailed", "message": "ffprobe crashed", "attempt": 2,
                              "traceback": "Traceback (most recent call last):\n  ToolFailed: ffprobe crashed"})

    page = client.simulate_get(f"/ui/items/{item_id}").text

    assert "<details><summary>Traceback</summary><pre>Traceback (most recent call last):" in page
    assert 'id="retry-button" >' in page or 'id="retry-button">' in page


@pytest.mark.parametrize(("status", "has_audio", "said"), [
    (Status.PENDING_FILE_INFO, None, "No transcript yet: it comes from the transcription (step 6)"),
    (Status.AVID_DESCRIPTION, False, "No transcript: the file has no sound."),
    (Status.AVID_DESCRIPTION, True, "No speech transcribed."),
])
def test_an_item_page_without_a_transcript_says_why(client: TestClient, api: AutologApi, unique_id: Ids,
                                                   status: Status, has_audio: bool | None, said: str) -> None:
    # A step that failed before transcription ran is not "no speech": a new-user trial read that on a dead letter's page
    item_id = unique_id("NOTX")
    store = api.services.store
    store.items.create([NewItem(item_id, f"/media/{item_id}.mov")])
    store.items.update(item_id, status=status.value, has_audio=has_audio, dead_lettered=not status.is_terminal)

    page = client.simulate_get(f"/ui/items/{item_id}").text

    transcript = page[page.index('id="transcript-title"'):page.index('id="timeline-title"')]
    assert said in transcript
    assert sum(phrase in transcript for phrase in ("No transcript yet", "has no sound", "No speech")) == 1


def test_unknown_item_page_is_404(client: TestClient) -> None:
    response = client.simulate_get("/ui/items/NO-SUCH-ITEM")

    assert response.status_code == 404 and "No item NO-SUCH-ITEM" in response.text


@pytest.mark.parametrize("route", [
    "/ui/static/..%2F__init__.py", "/ui/static/../__init__.py", "/ui/static/%2e%2e%2fpages.py",
    "/ui/static/templates", "/ui/static/..%5C__init__.py",
])
def test_static_files_outside_the_static_folder_are_not_served(anonymous: TestClient, route: str) -> None:
    response = anonymous.simulate_get(route)

    assert response.status_code == 404
    assert b"import" not in response.content


@pytest.mark.parametrize("route", [
    "/items/{id}/artifacts/..%2F..%2F..%2Fetc%2Fpasswd/0", "/items/{id}/artifacts/poster%2F..%2F..%2Fsecret/0",
    "/items/..%2F{id}/artifacts/poster/0", "/items/{id}%2F..%2F..%2F/artifacts/poster/0",
])
def test_artifact_paths_that_try_to_leave_are_refused(client: TestClient, logged: str, route: str) -> None:
    response = client.simulate_get(route.format(id=logged))

    assert response.status_code == 404
    assert b"root:" not in response.content


def test_an_artifact_that_links_outside_the_artifacts_folder_is_not_served(
        client: TestClient, api: AutologApi, logged: str, tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.jpg"
    secret.parent.mkdir()
    secret.write_bytes(b"secret")
    link = api.services.settings.artifacts_root / logged / "linked.jpg"
    link.symlink_to(secret)
    dotted = api.services.settings.artifacts_root / logged / ".." / ".." / "outside" / "secret.jpg"
    api.services.store.results.save_artifacts(logged, "poster", [str(link)])
    api.services.store.results.save_artifacts(logged, "contact_sheet", [str(dotted)])

    assert client.simulate_get(f"/items/{logged}/artifacts/poster/0").status_code == 404
    assert client.simulate_get(f"/items/{logged}/artifacts/contact_sheet/0").status_code == 404


def test_library_progress_streams_the_latest_state_of_each_listed_item(client: TestClient, api: AutologApi,
                                                                       logged: str, unique_id: Ids) -> None:
    channel = ProgressChannel(api.services.redis_client, namespace=api.services.settings.namespace)
    other, unlisted = unique_id("A"), unique_id("B")
    for item_id, stage in ((logged, "transcription"), (other, "assess"), (unlisted, "frames")):
        channel.publish(ProgressEvent(item_id=item_id, stage=stage, state="running", percent=50, status="x"))

    response = client.simulate_get("/ui/progress", params={"ids": f"{logged},{other}", "max_s": "0"})

    assert response.headers["content-type"] == "text/event-stream"
    assert sorted(data["item_id"] for _, data in sse_events(response.text)) == sorted([logged, other])


def test_library_counts_give_the_items_at_every_status_and_in_all(client: TestClient, api: AutologApi,
                                                                  unique_id: Ids) -> None:
    # Given three items, one of which step 1 has moved on
    store: Store = api.services.store
    moved, *waiting = (unique_id(name) for name in ("MOVED", "W1", "W2"))
    store.items.create([NewItem(item_id, f"/media/{item_id}.mov") for item_id in (moved, *waiting)])
    store.items.transition(moved, Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)

    # When the library's script asks for the counts
    response = client.simulate_get("/ui/counts")

    # Then every status is there, zero included, with the total, and no cache keeps an old answer
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json == {"total": 3, "statuses": {
        status.value: {Status.PENDING_FILE_INFO: 2, Status.FILE_INFO_COMPLETE: 1}.get(status, 0) for status in Status}}


@pytest.mark.parametrize("ids", ["", ",", ",".join(f"I{index}" for index in range(PAGE_SIZE + 1))])
def test_library_progress_needs_one_to_a_page_of_ids(client: TestClient, ids: str) -> None:
    response = client.simulate_get("/ui/progress", params={"ids": ids, "max_s": "0"})

    assert response.status_code == 400
    assert json.loads(response.text)["title"]


def test_watch_yields_each_new_event_of_the_listed_items_only(api: AutologApi, unique_id: Ids) -> None:
    # Given a stream of one page's items, one of which has a final state already
    channel = ProgressChannel(api.services.redis_client, namespace=api.services.settings.namespace)
    listed, unlisted = unique_id("L"), unique_id("U")
    channel.publish(ProgressEvent(item_id=listed, stage="assess", state="succeeded", percent=50, final=True))
    stream = channel.watch([listed], idle_s=30, max_duration_s=30)
    try:
        # When it is read: Then the latest state comes first (the stream now listens)
        first = next(stream)
        # And a final state does not end it: later events of listed items follow, others do not
        channel.publish(ProgressEvent(item_id=unlisted, stage="frames", state="running", percent=60))
        channel.publish(ProgressEvent(item_id=listed, stage="analysis", state="queued", percent=50))
        second = next(stream)
    finally:
        stream.close()
    assert [(event.item_id, event.stage) for event in (first, second) if event] == [(listed, "assess"),
                                                                                    (listed, "analysis")]


def test_pages_are_not_cached_framed_or_allowed_inline_scripts(client: TestClient, logged: str) -> None:
    for route in ("/ui", f"/ui/items/{logged}", "/ui/login"):
        headers = client.simulate_get(route).headers

        assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]


def test_a_segment_spoken_across_a_cut_is_listed_once_under_the_frame_search_links_to(
        client: TestClient, api: AutologApi, logged: str) -> None:
    page = client.simulate_get(f"/ui/items/{logged}").text
    frames = page.split('<ol class="frames">')[1].split("</ol>")[0].split('<li class="frame"')[1:]

    under = [index for index, frame in enumerate(frames) if "steady now" in frame]
    hit = api.services.store.search.search("steady").hits[0]

    assert under == [0] and hit.item_id == logged and hit.frame == 0
    assert '<blockquote class="frame-transcript">the tide is turning steady now</blockquote>' in frames[0]
    assert '<blockquote class="frame-transcript">hold it there</blockquote>' in frames[1]
    assert api.services.store.search.search("hold").hits[0].frame == 1


def test_an_audio_only_card_says_so_and_a_one_frame_clip_counts_its_frame(
        client: TestClient, api: AutologApi, unique_id: Ids) -> None:
    store: Store = api.services.store
    audio, still = unique_id("WAV"), unique_id("ONE")
    store.items.create([NewItem(audio, f"/media/{audio}.wav"), NewItem(still, f"/media/{still}.mp4")])
    store.items.update(audio, probe={"container": "wav", "duration_s": 6.9, "fps": 0, "media_kind": "audio"},
                       media_kind="audio")
    store.items.update(still, probe={**PROBE, "duration_s": 0.04, "fps": 25.0, "nominal_fps": "25/1"},
                       media_kind="video")

    library = client.simulate_get("/ui").text
    audio_card = library.split(f'data-item-id="{audio}"')[1].split("</li>")[0]
    still_card = library.split(f'data-item-id="{still}"')[1].split("</li>")[0]
    item = client.simulate_get(f"/ui/items/{still}").text

    assert "audio only" in audio_card and "sound-icon" in audio_card and "no picture yet" not in audio_card
    assert "0:06.9" in audio_card
    assert "no picture yet" in still_card and '<span class="duration" title="Duration">1 frame</span>' in still_card
    assert "<dt>Duration</dt><dd>00:00:00:01 · 1 frame (0:00.0)</dd>" in item and "<dd>MP4</dd>" in item


@pytest.mark.parametrize(("seconds", "rate", "drop_frame", "shown"), [
    (65.3, Fraction(25), False, "00:01:05:07"),  # 1,632.5 frames: the half-way frame is the earlier one
    (65.3, Fraction(30000, 1001), True, "00:01:05;09"),  # 1,957 frames, counted drop-frame
    (65.3, Fraction(30000, 1001), False, "00:01:05:07"),
    (600.0, Fraction(30000, 1001), True, "00:10:00;00"),  # 17,982 frames: ten minutes of drop-frame count
    (2.0, Fraction(24000, 1001), True, "00:00:02:00"),  # no drop-frame count at 23.976
    (None, Fraction(25), False, None), (6.9, None, False, None),
])
def test_a_clips_length_reads_as_timecode_as_in_an_editors_bin(
    seconds: float | None, rate: Fraction | None, drop_frame: bool, shown: str | None,
) -> None:
    assert timecode_duration(seconds, rate, drop_frame=drop_frame) == shown


@pytest.mark.parametrize(("format_name", "source", "shown"), [
    ("mov,mp4,m4a,3gp,3g2,mj2", "/m/A001.MOV", "QuickTime (MOV)"),
    ("mov,mp4,m4a,3gp,3g2,mj2", "/m/clip.mp4", "MP4"),
    ("mov,mp4,m4a,3gp,3g2,mj2", "/m/voice.m4a", "MPEG-4 audio (M4A)"),
    ("mov,mp4,m4a,3gp,3g2,mj2", "/m/no_extension", "QuickTime / MP4"),
    ("matroska,webm", "/m/live.webm", "WebM"),
    ("matroska,webm", "/m/live.mkv", "Matroska (MKV)"),
    ("mpegts", "/m/gop.ts", "MPEG transport stream"),
    ("some_new_demuxer", "/m/x.bin", "some_new_demuxer"),
    (None, "/m/x.mov", "—"),
])
def test_containers_have_the_names_people_know(format_name: str | None, source: str, shown: str) -> None:
    assert container_name(format_name, source) == shown


@pytest.mark.parametrize(("size_bytes", "shown"), [
    (0, "0 bytes"), (999, "999 bytes"), (48_213, "48 KB"), (12_500_000, "12.5 MB"), (3_912_000_000, "3.91 GB")])
def test_file_sizes_read_in_the_unit_that_fits(size_bytes: int, shown: str) -> None:
    # A tiny clip's size read "0.0 MB" to a trial
    assert views.file_size(size_bytes) == shown


def test_the_item_page_offers_the_steps_it_can_rerun_from_uncancel_and_delete(
        client: TestClient, api: AutologApi, logged: str, unique_id: Ids) -> None:
    store: Store = api.services.store
    audio = unique_id("WAV")
    store.items.create([NewItem(audio, f"/media/{audio}.wav")])
    store.items.update(audio, status=Status.AVID_DESCRIPTION.value, media_kind="audio", cancelled=True)

    page = client.simulate_get(f"/ui/items/{logged}").text
    cancelled = client.simulate_get(f"/ui/items/{audio}").text
    store.items.update(audio, cancelled=False)
    audio_page = client.simulate_get(f"/ui/items/{audio}").text

    assert re.findall(r'<option value="(\w+)">', page) == [step.name for step in STEPS]
    assert re.search(r'id="uncancel-button"\s+hidden', page) and 'id="delete-button"' in page
    assert not re.search(r'id="uncancel-button"\s+hidden', cancelled)
    assert re.search(r'<form id="rerun-form" class="action-group"\s+hidden', cancelled)
    assert re.findall(r'<option value="(\w+)">', audio_page) == ["file_info", "transcription"]


def test_a_start_with_no_end_before_the_next_start_of_its_message_is_noted_as_redelivered(
        client: TestClient, api: AutologApi, logged: str) -> None:
    timeline = api.services.store.timeline
    for event in ("started", "started", "succeeded", "started"):
        timeline.record(NewEvent(item_id=logged, event=event, step="transcription", message_id="m-1", attempt=1))
    timeline.record(NewEvent(item_id=logged, event="stopped", step="transcription", message_id="m-2", attempt=1,
                             detail={"reason": "the item was cancelled while the step ran"}))

    page = client.simulate_get(f"/ui/items/{logged}").text

    assert page.count(f'<span class="event-note">{views.REDELIVERED_NOTE}</span>') == 1
    rows = page.split('<tr class="event-')[1:]
    assert views.REDELIVERED_NOTE in rows[-4] and views.REDELIVERED_NOTE not in rows[-2]
    assert "the item was cancelled while the step ran" in rows[-1]


def test_every_page_links_the_favicon_and_it_is_served(client: TestClient, anonymous: TestClient,
                                                        logged: str) -> None:
    icon = anonymous.simulate_get("/ui/static/favicon.svg")

    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml" and b"<svg" in icon.content
    for page in (client.simulate_get("/ui").text, client.simulate_get(f"/ui/items/{logged}").text,
                 anonymous.simulate_get("/ui/login").text):
        assert '<link rel="icon" href="/ui/static/favicon.svg" type="image/svg+xml">' in page


def test_an_audio_only_item_page_says_it_has_no_picture_and_shows_its_timecode_rate(
        client: TestClient, api: AutologApi, unique_id: Ids) -> None:
    # Given a logged sound roll: step 1 counts its BWF timecode at 25, and it has no picture rate
    store: Store = api.services.store
    audio = unique_id("WAV")
    store.items.create([NewItem(audio, f"/media/{audio}.wav")])
    store.items.update(audio, status=Status.AVID_DESCRIPTION.value, media_kind="audio", nominal_fps="25/1",
                       probe={"container": "wav", "duration_s": 6.9, "fps": 0, "nominal_fps": "25/1",
                              "media_kind": "audio", "field_order": "unknown", "timecode_source": "bwf"})

    # When its page is opened
    page = client.simulate_get(f"/ui/items/{audio}").text

    # Then the rate is the timecode's, the picture facts are left out, and nothing promises pictures
    assert "<dt>Timecode rate</dt><dd>25 fps</dd>" in page and "0 fps" not in page and "<dt>Rate</dt>" not in page
    assert "<dt>Field order</dt>" not in page and "<dt>Video codec</dt>" not in page
    assert "No thumbnails yet" not in page and "they come after the analysis" not in page
    assert "An audio-only item has no picture, so no contact sheet." in page
    assert "No frame records: an audio-only item skips the picture steps (2 to 5)." in page


@pytest.mark.parametrize(("nominal_fps", "fps", "shown"), [
    ("60000/1001", 59.94005994005994, "59.94 fps (60000/1001)"),
    ("30000/1001", 29.97002997002997, "29.97 fps (30000/1001)"),
    ("24000/1001", 23.976023976023978, "23.976 fps (24000/1001)"),
    ("25/1", 25.0, "25 fps (25/1)"),
])
def test_a_clip_s_rate_is_written_as_editors_write_it(nominal_fps: str, fps: float, shown: str) -> None:
    item = item_view("RATE", "/media/RATE.mov", media_kind="video",
                     probe={**PROBE, "fps": fps, "nominal_fps": nominal_fps})

    assert dict(views.file_facts(item))["Rate"] == shown


def test_an_unknown_status_filter_answers_an_html_page_with_a_way_back(client: TestClient) -> None:
    response = client.simulate_get("/ui", params={"status": "<b>bogus</b>"})

    assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
    assert "There is no status “&lt;b&gt;bogus&lt;/b&gt;”" in response.text and "<b>bogus" not in response.text
    assert Status.AWAITING_USER_INPUT.value in response.text and "Invalid parameter" not in response.text
    assert '<a href="/ui">Back to the library</a>' in response.text


def test_the_library_filter_takes_a_status_as_the_api_does_and_ignores_a_links_extra_parameters(
    client: TestClient,
) -> None:
    # A number, a label, or the value; a mail's tracking parameter is no reason to refuse the page
    for spelling in ("7", "Avid Description", Status.AVID_DESCRIPTION.value):
        response = client.simulate_get("/ui", params={"status": spelling, "utm_source": "mail"})

        assert response.status_code == 200, spelling
        current = response.text.split('aria-current="true">', 1)[1].split("<", 1)[0]
        assert current.strip().startswith(Status.AVID_DESCRIPTION.value), spelling


#: A prompt as loggers write them: markup to show, not run; a right-to-left line; several lines.
PROMPT = 'Note the <script>alert("x")</script> & <b>boats</b>\nשלום, the harbour master\n\nthird line'


def test_the_item_page_shows_the_prompt_the_item_was_sent_as_text(client: TestClient, api: AutologApi,
                                                                  logged: str) -> None:
    api.services.store.items.update(logged, prompt=PROMPT)

    page = client.simulate_get(f"/ui/items/{logged}").text
    shown = page.split('id="item-prompt"')[1].split("</blockquote>")[0]

    assert 'dir="auto"' in shown and "<script>" not in page.split("<main")[1].split("</main>")[0]
    assert ("Note the &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;boats&lt;/b&gt;\n"
            "שלום, the harbour master\n\nthird line") in shown
    assert not re.search(r'id="prompt-panel"[^>]*hidden', page)


def test_an_item_sent_no_prompt_shows_no_prompt(client: TestClient, logged: str) -> None:
    page = client.simulate_get(f"/ui/items/{logged}").text

    assert re.search(r'id="prompt-panel"[^>]*hidden', page)


@pytest.mark.parametrize(("media_kind", "spoken", "offered"), [
    ("video", True, ["ale", "markers", "edl", "fcp7xml", "srt", "csv"]),
    ("video", False, ["ale", "markers", "edl", "fcp7xml", "csv"]),  # no speech heard: no empty subtitles
    ("audio", True, ["ale", "fcp7xml", "srt"]),  # no picture: no EDL, no shot markers, no frame records
    ("audio", False, ["ale", "fcp7xml"]),
])
def test_item_page_offers_no_download_that_would_be_empty(client: TestClient, api: AutologApi, unique_id: Ids,
                                                          media_kind: str, spoken: bool, offered: list[str]) -> None:
    store = api.services.store
    item_id = unique_id("DL")
    store.items.create([NewItem(item_id, f"/media/{item_id}.wav")])
    store.items.update(item_id, status=Status.AVID_DESCRIPTION.value, media_kind=media_kind)
    if spoken:
        store.results.save_transcript(item_id, [SegmentView(position=0, start_s=0.5, end_s=1.5, text="roll sound")], {})

    page = client.simulate_get(f"/ui/items/{item_id}").text

    assert re.findall(rf'href="/items/{item_id}/exports/(\w+)"', page) == offered


def test_a_running_items_page_still_offers_subtitles_it_may_get(client: TestClient, api: AutologApi,
                                                                unique_id: Ids) -> None:
    store = api.services.store
    item_id = unique_id("DL")
    store.items.create([NewItem(item_id, f"/media/{item_id}.mov")])
    store.items.update(item_id, status=Status.GENERATING_DESCRIPTION.value, media_kind="video")

    page = client.simulate_get(f"/ui/items/{item_id}").text

    assert f'href="/items/{item_id}/exports/srt"' in page
