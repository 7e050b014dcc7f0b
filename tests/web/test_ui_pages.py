"""The review pages' content, paths that try to leave their folders, and the library's progress stream."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from falcon.testing import TestClient

from autolog.progress import ProgressChannel, ProgressEvent
from autolog.statuses import Status
from autolog.store import FrameView, NewEvent, NewItem, SegmentView, Store
from tests.web.test_progress_route import sse_events
from web.app import AutologApi
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
    store.results.save_frames(item_id, [
        FrameView(position=0, time_s=1.0, timecode="01:00:01;00", image_path=artifact(api, item_id, "f0.jpg"),
                  description="Wide shot of a <harbour> at dawn", keywords=["harbour", "boats"], analysis={},
                  transcript=None),
        FrameView(position=1, time_s=65.032, timecode="01:01:05;01", image_path=artifact(api, item_id, "f1.jpg"),
                  description="Close-up of a rope", keywords=["rope"], analysis={}, transcript=None),
    ])
    store.results.save_transcript(item_id, [SegmentView(position=0, start_s=1.0, end_s=2.0, text="the tide is turning"),
                                            SegmentView(position=1, start_s=65.032, end_s=66.0, text="hold it there")],
                                  {0: "the tide is turning", 1: "hold it there"})
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
