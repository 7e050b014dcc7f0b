"""Seed 000's routes, their X-API-Key header and JSON shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from falcon.testing import TestClient

from autolog.statuses import Status
from autolog.store import NewItem
from tests.conftest import wait_for
from tests.web.test_items import park, queued_ids
from web.app import AutologApi

Ids = Callable[[str], str]
MediaFile = Callable[..., Path]


def test_lf_queue_creates_a_new_item_from_the_file_named_after_it(
    client: TestClient, api: AutologApi, media_file: MediaFile, unique_id: Ids,
) -> None:
    footage_id = unique_id("LF1409")
    path = media_file(footage_id, ".mov")

    response = client.simulate_post("/run/lf_queue", params={"footage_id": footage_id})

    assert response.status_code == 202
    assert response.json["footage_id"] == footage_id
    assert (response.json["queued"], response.json["created"]) == (True, True)
    assert response.json["job_id"]
    assert api.services.store.items.get(footage_id).source == str(path)
    assert queued_ids(api) == [footage_id]


def test_lf_queue_requeues_an_existing_item_from_its_status(client: TestClient, api: AutologApi) -> None:
    api.services.store.items.create([NewItem("LF7", "/m/lf7.mp4")])
    park(api, "LF7", Status.FILE_INFO_COMPLETE)

    response = client.simulate_post("/run/lf_queue", params={"footage_id": "LF7"})

    assert (response.status_code, response.json["created"]) == (202, False)
    assert queued_ids(api, "thumbnails") == ["LF7"]


def test_lf_queue_refuses_an_item_waiting_for_input(client: TestClient, api: AutologApi) -> None:
    api.services.store.items.create([NewItem("LF8", "/m/lf8.mp4")])
    park(api, "LF8", Status.AWAITING_USER_INPUT)

    assert client.simulate_post("/run/lf_queue", params={"footage_id": "LF8"}).status_code == 409


@pytest.mark.parametrize(("params", "status"), [
    ({}, 400), ({"footage_id": "no such/id"}, 400), ({"footage_id": "LF404"}, 404),
])
def test_lf_queue_bad_ids(client: TestClient, params: dict[str, str], status: int) -> None:
    response = client.simulate_post("/run/lf_queue", params=params)

    assert response.status_code == status
    assert set(response.json) == {"title", "description"}


def test_lf_queue_batch_queues_every_id(client: TestClient, api: AutologApi, media_file: MediaFile,
                                        unique_id: Ids) -> None:
    ids = [unique_id(f"LF{number}") for number in (1409, 1410, 1411)]
    for footage_id in ids:
        media_file(footage_id)

    response = client.simulate_post("/run/lf_queue_batch", json={"footage_ids": ids})

    assert response.status_code == 202
    assert (response.json["total_queued"], response.json["queued"]) == (3, True)
    assert [entry["footage_id"] for entry in response.json["items"]] == ids
    assert queued_ids(api) == ids


def test_lf_queue_batch_with_an_unknown_id_does_nothing(client: TestClient, api: AutologApi,
                                                        media_file: MediaFile, unique_id: Ids) -> None:
    known = unique_id("LFk")
    media_file(known)

    response = client.simulate_post("/run/lf_queue_batch", json={"footage_ids": [known, "LF-missing"]})

    assert response.status_code == 404
    assert "LF-missing" in response.json["description"]
    assert api.services.store.items.list() == []


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"footage_ids": [f"LF{index}" for index in range(1001)]}, 413, "footage_ids"),
    ({"footage_ids": []}, 400, "footage_ids"),
    ({"footage_ids": "LF1"}, 400, "footage_ids"),
    ({"footage_ids": ["LF1", 2]}, 400, "footage_ids[1]"),
    ({"footage_ids": ["LF1", "LF1"]}, 400, "footage_ids[1]"),
    ({"ids": ["LF1"]}, 400, "ids"),
    ({}, 400, "footage_ids"),
])
def test_lf_queue_batch_bad_bodies(client: TestClient, body: object, status: int, field: str) -> None:
    response = client.simulate_post("/run/lf_queue_batch", json=body)

    assert response.status_code == status
    assert response.json["description"].startswith(f"{field}:")


def test_force_resume_all_sends_items_past_step_3_back_to_it(client: TestClient, api: AutologApi) -> None:
    api.services.store.items.create([NewItem("F1", "/m/f1.mp4"), NewItem("F2", "/m/f2.mp4")])
    park(api, "F1", Status.AWAITING_USER_INPUT)

    response = client.simulate_post("/run/lf_force_resume_all")

    assert response.status_code == 202
    assert response.json == {"status": "queued", "count": 1, "footage_ids": ["F1"]}
    assert api.services.store.items.get("F1").force_resume
    assert queued_ids(api, "assess") == ["F1"]


def test_queue_status_has_seed_000s_shape(client: TestClient, api: AutologApi, media_file: MediaFile,
                                          unique_id: Ids) -> None:
    footage_id = unique_id("LFq")
    media_file(footage_id)
    client.simulate_post("/run/lf_queue", params={"footage_id": footage_id})

    status = client.simulate_get("/queue/status").json

    assert set(status) == {"queues", "total_queued", "total_failed"}
    assert list(status["queues"])[:2] == ["step1_file_info", "step2_thumbnails"]
    assert len(status["queues"]) == 6
    assert status["queues"]["step1_file_info"] == {"queued": 1, "failed": 0}
    assert (status["total_queued"], status["total_failed"]) == (1, 0)


def test_workers_start_status_and_stop_drive_the_pool_manager(client: TestClient) -> None:
    started = client.simulate_post("/workers/start", params={"pool": "control"})
    assert started.status_code == 200
    assert started.json["workers"]["control"]["running"] is True
    wait_for(lambda: client.simulate_get("/workers").json["heartbeats"] != [], what="a control worker heartbeat")

    status = client.simulate_get("/workers/status").json
    assert status["workers"]["control"]["running"] is True
    assert status["workers"]["file_info"]["running"] is False
    assert status["total_workers"] == status["workers"]["control"]["threads"]

    stopped = client.simulate_post("/workers/stop", params={"pool": "control", "timeout_s": "20"})
    assert stopped.json["workers"]["control"]["running"] is False
    assert client.simulate_post("/workers/start", params={"pool": "nope"}).status_code == 400


def test_discovery_starts_once_and_stops(client: TestClient) -> None:
    first = client.simulate_post("/run/lf_discovery").json
    second = client.simulate_post("/run/lf_discovery").json

    assert first["running"] and first["pid"] == second["pid"]
    assert client.simulate_get("/discovery").json["running"] is True
    stopped = client.simulate_post("/stop/lf_discovery").json
    assert (stopped["status"], stopped["running"], stopped["pid"]) == ("stopped", False, None)


def test_lf_queue_refuses_an_id_two_files_are_named_after_until_told_which(
    client: TestClient, api: AutologApi, media_root: Path, unique_id: Ids,
) -> None:
    footage_id = unique_id("C0001")
    cards = [media_root / "web" / card / "CLIP" / f"{footage_id}.MP4" for card in ("CARD_A", "CARD_B")]
    for path in cards:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"clip")

    refused = client.simulate_post("/run/lf_queue", params={"footage_id": footage_id})
    chosen = client.simulate_post("/run/lf_queue", params={"footage_id": footage_id, "source": str(cards[1])})

    assert refused.status_code == 400
    assert "2 files have this name" in refused.json["description"] and str(cards[0]) in refused.json["description"]
    assert chosen.status_code == 202
    assert api.services.store.items.get(footage_id).source == str(cards[1])
