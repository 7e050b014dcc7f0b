"""The operator's controls through the API: one message per item, honest job ids, the API's edges."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from falcon.testing import TestClient
from sqlalchemy import text

from autolog.statuses import Status
from autolog.store import NewEvent, NewItem
from tests.web.test_items import park, queued_ids
from tests.web.test_webhooks import signed
from web.app import AutologApi

Ids = Callable[[str], str]
MediaFile = Callable[..., Path]


def test_queueing_an_item_already_queued_answers_with_its_job_and_sends_nothing(
    client: TestClient, api: AutologApi, media_file: MediaFile, unique_id: Ids,
) -> None:
    footage_id = unique_id("LFTWICE")
    media_file(footage_id)

    first = client.simulate_post("/run/lf_queue", params={"footage_id": footage_id}).json
    again = client.simulate_post("/run/lf_queue_batch", json={"footage_ids": [footage_id]}).json
    retried = client.simulate_post(f"/items/{footage_id}/retry").json

    assert (first["queued"], first["already_queued"]) == (True, False)
    assert again["items"][0]["already_queued"] is True
    assert again["items"][0]["job_id"] == first["job_id"]
    assert again["total_queued"] == 0
    assert (retried["already_queued"], retried["job_id"]) == (True, first["job_id"])
    assert queued_ids(api) == [footage_id]


def test_job_id_in_an_answer_is_the_queued_message(client: TestClient, api: AutologApi, media_file: MediaFile,
                                                    unique_id: Ids) -> None:
    item_id = unique_id("LFJOB")
    source = media_file(item_id)

    answer = client.simulate_post("/items", json={"id": item_id, "source": str(source)}).json
    job = client.simulate_get(f"/jobs/{answer['job_id']}").json

    assert (job["status"], job["item_id"], job["step"]) == ("queued", item_id, "file_info")


@pytest.mark.parametrize(("event", "status"), [("refused", "refused"), ("skipped", "skipped")])
def test_refused_and_skipped_messages_read_as_such(client: TestClient, api: AutologApi, event: str,
                                                   status: str) -> None:
    api.services.store.items.create([NewItem("LFR", "/m/lfr.mp4")])
    timeline = api.services.store.timeline
    for kind in ("queued", "started", event):
        timeline.record(NewEvent(item_id="LFR", event=kind, step="file_info", message_id="m-1",
                                 detail={"reason": "another delivery won"}))

    job = client.simulate_get("/jobs/m-1").json

    assert (job["status"], job["meta"]["reason"]) == (status, "another delivery won")
    assert client.simulate_get("/jobs", params={"status": status}).json["count"] == 1


@pytest.mark.parametrize("name", ["step1_file_info", "file_info", "probe", "1"])
def test_every_queue_route_accepts_the_seed_step_and_queue_names(client: TestClient, name: str) -> None:
    got = client.simulate_get(f"/queues/{name}")
    paused = client.simulate_post(f"/queues/{name}/pause")
    resumed = client.simulate_post(f"/queues/{name}/resume")
    purged = client.simulate_post(f"/queues/{name}/purge")
    letters = client.simulate_get("/dead-letters", params={"queue": name})

    assert [response.status_code for response in (got, paused, resumed, purged, letters)] == [200] * 5
    assert (got.json["name"], paused.json["paused"], purged.json["queue"]) == ("probe", True, "probe")


def test_an_unknown_queue_is_404(client: TestClient) -> None:
    assert client.simulate_get("/queues/step9_nothing").status_code == 404


@pytest.mark.parametrize(("source", "problem"), [
    ("{root}/web/gone.mp4", "no such file"),
    ("{root}/web", "a folder, not a file"),
    # The API's server resolves no path against its own folders: a path must be absolute.
    ("~nosuchuser-autolog/clip.mov", "source: ~nosuchuser-autolog/clip.mov: not an absolute path"),
    ("web/present.mp4", "source: web/present.mp4: not an absolute path"),
])
def test_a_local_source_is_checked_when_submitted(client: TestClient, api: AutologApi, media_root: Path,
                                                  media_file: MediaFile, source: str, problem: str) -> None:
    media_file("present")
    response = client.simulate_post("/items", json={"id": "LFBAD", "source": source.format(root=media_root)})

    assert response.status_code == 400
    assert problem in response.json["description"]
    assert api.services.store.items.list() == []


def test_json_without_a_content_type_is_parsed(client: TestClient, api: AutologApi, media_file: MediaFile,
                                               unique_id: Ids) -> None:
    footage_id = unique_id("LFNOTYPE")
    media_file(footage_id)

    response = client.simulate_post("/run/lf_queue_batch", body=json.dumps({"footage_ids": [footage_id]}),
                                    headers={"Content-Type": ""})

    assert response.status_code == 202, response.json
    assert response.json["items"][0]["footage_id"] == footage_id


def test_a_body_that_is_not_json_is_415_when_labelled_otherwise(client: TestClient) -> None:
    response = client.simulate_post("/run/lf_queue_batch", body="footage_ids=LF1",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert response.status_code == 415
    assert "application/json" in response.json["description"]


def test_malformed_json_is_400_whatever_its_label(client: TestClient) -> None:
    # curl -d labels its body a form
    for content_type in ("application/x-www-form-urlencoded", "application/json"):
        response = client.simulate_post("/run/lf_queue_batch", body='{"footage_ids": ["LF1"',
                                        headers={"Content-Type": content_type})

        assert response.status_code == 400, content_type
        assert response.json["description"].startswith("body: malformed JSON" if "form" in content_type else "")


def test_github_ping_is_answered_200_after_the_signature(anonymous: TestClient, api: AutologApi) -> None:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "p-1", "Content-Type": "application/json"}

    unsigned = anonymous.simulate_post("/webhooks/ingest", body=body, headers=headers)
    ping = anonymous.simulate_post("/webhooks/ingest", body=body,
                                   headers={**headers, "X-Hub-Signature-256": signed(body)})

    assert unsigned.status_code == 401
    assert (ping.status_code, ping.json["event"]) == (200, "ping")


def test_github_events_autolog_does_not_act_on_are_202_with_why(anonymous: TestClient, api: AutologApi) -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()

    push = anonymous.simulate_post("/webhooks/ingest", body=body, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "p-2", "X-Hub-Signature-256": signed(body)})

    assert (push.status_code, push.json["acted"]) == (202, False)
    assert "ingest" in push.json["reason"]
    assert api.services.store.items.list() == []


def test_cancelled_item_is_refused_with_the_right_reason_and_uncancel_queues_it(
    client: TestClient, api: AutologApi, media_file: MediaFile,
) -> None:
    api.services.store.items.create([NewItem("LFC", str(media_file("LFC")))])
    park(api, "LFC", Status.FILE_INFO_COMPLETE)
    client.simulate_post("/items/LFC/cancel")

    refused = client.simulate_post("/items/LFC/retry")
    uncancelled = client.simulate_post("/items/LFC/uncancel")

    assert refused.status_code == 409
    assert "cancelled; uncancel it first" in refused.json["description"]
    assert (uncancelled.status_code, uncancelled.json["queued"]) == (202, True)
    assert api.services.store.items.get("LFC").cancelled is False
    assert queued_ids(api, "thumbnails") == ["LFC"]


def test_delete_removes_the_item_its_timeline_and_its_artifact_files(
    client: TestClient, api: AutologApi, media_file: MediaFile,
) -> None:
    source = media_file("LFDEL")
    client.simulate_post("/items", json={"id": "LFDEL", "source": str(source)})
    poster = api.services.settings.artifacts_root / "LFDEL" / "poster.jpg"
    poster.parent.mkdir(parents=True)
    poster.write_bytes(b"jpeg")
    api.services.store.results.save_artifacts("LFDEL", "poster", [str(poster)])

    deleted = client.simulate_delete("/items/LFDEL")

    assert (deleted.status_code, deleted.json) == (200, {"deleted": "LFDEL", "artifacts_removed": 1})
    assert not poster.exists()
    assert client.simulate_get("/items/LFDEL").status_code == 404
    assert api.services.store.timeline.for_item("LFDEL") == []
    again = client.simulate_post("/items", json={"id": "LFDEL", "source": str(source)})
    assert again.status_code == 202


@pytest.mark.parametrize("item_id", [".", "..", "..."])
def test_an_id_of_dots_is_refused_and_deleting_an_older_such_item_leaves_the_other_items_files(
    client: TestClient, api: AutologApi, media_file: MediaFile, item_id: str,
) -> None:
    # Its artifacts folder would be the artifacts root (".") or its parent (".."): a trial's delete of
    # item "." removed every item's files
    refused = client.simulate_post("/items", json={"id": item_id, "source": str(media_file("LFDOTS"))})
    assert (refused.status_code, refused.json["description"].split(":")[0]) == (400, "id")

    poster = api.services.settings.artifacts_root / "LFKEPT" / "poster.jpg"
    poster.parent.mkdir(parents=True, exist_ok=True)
    poster.write_bytes(b"jpeg")
    with api.services.store.engine.begin() as connection:  # stored by a version that let it through
        connection.execute(text("INSERT INTO items (id, source, status, force_resume, dead_lettered, cancelled,"
                                " purged, version, created_at, updated_at) VALUES (:id, '/m/dots.mp4',"
                                " '0 - Pending File Info', 0, 0, 0, 0, 1, '2026-01-01', '2026-01-01')"),
                           {"id": item_id})

    assert client.simulate_delete(f"/items/{item_id}").status_code == 200
    assert poster.exists()


def test_rerun_needs_a_known_step_and_an_item_that_reached_it(client: TestClient, api: AutologApi) -> None:
    api.services.store.items.create([NewItem("LFRR", "/m/lfrr.mp4")])
    park(api, "LFRR", Status.FILE_INFO_COMPLETE)

    unknown = client.simulate_post("/items/LFRR/rerun", params={"from": "step9_nothing"})
    ahead = client.simulate_post("/items/LFRR/rerun", params={"from": "assess"})

    assert unknown.status_code == 400
    assert ahead.status_code == 409


def test_pool_routes_accept_the_seed_and_queue_names(client: TestClient) -> None:
    started = client.simulate_post("/workers/start", params={"pool": "step1_file_info"})
    stopped = client.simulate_post("/workers/stop", params={"pool": "probe", "timeout_s": "20"})

    assert started.status_code == 200 and started.json["workers"]["file_info"]["running"] is True
    assert stopped.status_code == 200 and stopped.json["workers"]["file_info"]["running"] is False


def test_conflicts_say_what_the_item_is_and_what_to_do_instead(
    client: TestClient, api: AutologApi, media_file: MediaFile,
) -> None:
    items = api.services.store.items
    items.create([NewItem("LFW", "/m/lfw.mp4"), NewItem("LFA", "/m/lfa.mp4"), NewItem("LFN", str(media_file("LFN")))])
    park(api, "LFW", Status.AWAITING_USER_INPUT)
    park(api, "LFA", Status.AWAITING_USER_INPUT)
    items.update("LFA", media_kind="audio")

    queued = client.simulate_post("/run/lf_queue", params={"footage_id": "LFW"})
    retried = client.simulate_post("/items/LFW/retry")
    past_prompt = client.simulate_post("/items/LFW/rerun", params={"from": "analysis"})
    not_cancelled = client.simulate_post("/items/LFN/uncancel")
    audio_only = client.simulate_post("/items/LFA/rerun", params={"from": "assess"})
    first = client.simulate_post("/items/LFN/rerun", params={"from": "file_info"})
    busy = client.simulate_post("/items/LFN/rerun", params={"from": "file_info"})

    awaiting = "item 'LFW' is awaiting a prompt: send one with `autolog prompt LFW TEXT` (POST /items/LFW/prompt)"
    assert queued.status_code == retried.status_code == 409
    assert queued.json["description"].startswith(awaiting)
    assert retried.json["description"].startswith(awaiting)
    assert (past_prompt.status_code, past_prompt.json["description"].startswith(awaiting)) == (409, True), (
        "a rerun from step 4 would skip the prompt")
    assert items.get("LFW").status is Status.AWAITING_USER_INPUT
    assert (not_cancelled.status_code, not_cancelled.json["description"]) == (409, "item 'LFN' is not cancelled")
    assert (audio_only.status_code, audio_only.json["description"]) == (
        409, "item 'LFA' is audio-only: step assess never runs")
    assert first.status_code == 202
    assert busy.status_code == 409
    assert busy.json["description"].startswith(
        f"a message for item 'LFN' is already in flight (job {first.json['job_id']})")
