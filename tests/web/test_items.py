"""The item resources through Falcon's TestClient, on real Redis and a real store."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from falcon.testing import TestClient

from autolog.statuses import Status
from autolog.store import NewEvent, NewItem
from web.app import AutologApi

Ids = Callable[[str], str]
MediaFile = Callable[..., Path]


def queued_ids(api: AutologApi, queue: str = "probe") -> list[str]:
    """Return the item ids of the messages waiting in a queue, oldest first."""
    import dramatiq

    client: redis.Redis = api.services.broker.client
    namespace = api.services.broker.namespace
    ids = [message_id.decode() for message_id in client.lrange(f"{namespace}:{queue}", 0, -1)]  # type: ignore[union-attr]
    return [dramatiq.Message.decode(client.hget(f"{namespace}:{queue}.msgs", message_id)).args[0]  # type: ignore[arg-type]
            for message_id in ids]


def park(api: AutologApi, item_id: str, status: Status) -> None:
    """Walk a stored item along the state machine to ``status`` (test setup only)."""
    items = api.services.store.items
    path = [Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE, Status.AWAITING_USER_INPUT]
    for before, after in zip(path, path[1:], strict=False):
        if before is status:
            break
        assert items.transition(item_id, before, after)


def test_created_item_is_stored_then_queued(client: TestClient, api: AutologApi, media_file: MediaFile,
                                            unique_id: Ids) -> None:
    item_id = unique_id("LF")
    source = media_file(item_id)

    response = client.simulate_post("/items", json={"id": item_id, "source": str(source)})

    assert response.status_code == 202
    assert response.json["queued"] is True
    assert response.json["item"]["status"] == Status.PENDING_FILE_INFO.value
    assert response.headers["location"] == f"/items/{item_id}"
    assert api.services.store.items.get(item_id).source == str(source)
    assert queued_ids(api) == [item_id]


def test_batch_is_stored_in_one_transaction(client: TestClient, api: AutologApi, media_file: MediaFile,
                                            unique_id: Ids) -> None:
    ids = [unique_id(f"B{index}") for index in range(3)]
    batch = [{"id": item_id, "source": str(media_file(item_id))} for item_id in ids]

    response = client.simulate_post("/items:batch", json={"items": batch})

    assert response.status_code == 202
    assert (response.json["count"], response.json["queued"]) == (3, True)
    assert queued_ids(api) == ids


def test_batch_with_one_taken_id_stores_nothing(client: TestClient, api: AutologApi, media_file: MediaFile,
                                                unique_id: Ids) -> None:
    taken, fresh = unique_id("taken"), unique_id("fresh")
    api.services.store.items.create([NewItem(taken, str(media_file(taken)))])

    response = client.simulate_post("/items:batch", json={"items": [
        {"id": fresh, "source": str(media_file(fresh))}, {"id": taken, "source": str(media_file(taken))}]})

    assert response.status_code == 409
    assert taken in response.json["description"]
    assert [item.id for item in api.services.store.items.list()] == [taken]


def test_batch_over_1000_items_is_refused(client: TestClient, api: AutologApi) -> None:
    batch = [{"id": f"X{index}", "source": "/nowhere.mp4"} for index in range(1001)]

    response = client.simulate_post("/items:batch", json={"items": batch})

    assert response.status_code == 413
    assert "1001" in response.json["description"]
    assert api.services.store.items.list() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"source": "/a.mp4"}, "id"),
    ({"id": "LF1", "source": 7}, "source"),
    ({"id": "LF1", "source": "/a.mp4", "force_resume": "yes"}, "force_resume"),
    # A misspelt field is refused, not ignored: this item would otherwise wait for a prompt.
    ({"id": "LF1", "source": "/a.mp4", "forceresume": True}, "forceresume"),
    ({"id": "LF1", "source": "clips/a.mp4"}, "source"),
    ([1, 2], "body"),
])
def test_malformed_fields_are_400_naming_the_field(client: TestClient, body: object, field: str) -> None:
    response = client.simulate_post("/items", json=body)

    assert response.status_code == 400
    assert response.json["description"].startswith(f"{field}:")


def test_malformed_batch_entry_names_its_index(client: TestClient) -> None:
    response = client.simulate_post("/items:batch", json={"items": [{"id": "A", "source": "/a"}, {"id": "B"}]})

    assert response.status_code == 400
    assert response.json["description"].startswith("items[1].source:")


def test_batch_names_the_entry_of_a_field_it_does_not_take(client: TestClient, api: AutologApi,
                                                          media_file: MediaFile) -> None:
    good = {"id": "NF1", "source": str(media_file("NF1"))}

    nested = client.simulate_post("/items:batch", json={"items": [good, {**good, "id": "NF2", "Prompt": "x"}]})
    top = client.simulate_post("/items:batch", json={"items": [good], "force_resume": True})

    assert (nested.status_code, nested.json["description"]) == (
        400, "items[1].Prompt: unknown field; expected id, source, force_resume, prompt")
    assert (top.status_code, top.json["description"]) == (400, "force_resume: unknown field; expected items")
    assert api.services.store.items.list() == []


def test_batch_names_the_entry_whose_source_is_refused(client: TestClient, api: AutologApi,
                                                       media_file: MediaFile) -> None:
    batch = [{"id": f"NS{index}", "source": str(media_file(f"NS{index}"))} for index in range(5)]
    batch[3]["source"] = "/etc/passwd"

    response = client.simulate_post("/items:batch", json={"items": batch})

    assert response.status_code == 400
    assert response.json["description"].startswith("items[3].source: /etc/passwd: outside the media roots")
    assert api.services.store.items.list() == []
    assert queued_ids(api) == []


def test_invalid_item_id_is_400_naming_its_field(client: TestClient, api: AutologApi, media_file: MediaFile) -> None:
    source = str(media_file("ok"))
    batch = [{"id": "fine", "source": source}, {"id": "has space", "source": source}]
    answers = [
        client.simulate_post("/items", json={"id": "has space", "source": source}),
        client.simulate_post("/items:batch", json={"items": batch}),
        client.simulate_post("/run/lf_queue", params={"footage_id": "x" * 65}),
        client.simulate_post("/run/lf_queue_batch", json={"footage_ids": ["fine", "../up"]}),
        client.simulate_post("/run/lf_queue"),
        client.simulate_post("/items/fine/rerun"),
    ]

    assert [(answer.status_code, answer.json["title"], answer.json["description"].split(":")[0])
            for answer in answers] == [(400, "Invalid field", field) for field in (
                "id", "items[1].id", "footage_id", "footage_ids[1]", "footage_id", "from")]
    assert "use 1-64 of A-Z a-z 0-9 . _ -" in answers[0].json["description"]
    assert api.services.store.items.list() == []
    assert queued_ids(api) == []


@pytest.mark.parametrize("body", ["", "{not json"])
def test_a_missing_or_malformed_json_body_is_400_naming_the_body(client: TestClient, body: str) -> None:
    response = client.simulate_post("/items", body=body, headers={"Content-Type": "application/json"})

    assert (response.status_code, response.json["title"]) == (400, "Invalid field")
    assert response.json["description"].startswith("body: ")


def _escape_sources(media_root: Path, tmp_path: Path) -> list[str]:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"secret")
    link = media_root / "web" / "escape.mp4"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(outside, link)
    return [str(media_root / ".." / ".." / "etc" / "passwd"), str(outside), "/etc/passwd", str(link),
            "http://example.com/a.mp4"]


def test_sources_outside_the_media_roots_are_400_and_nothing_is_stored(
    client: TestClient, api: AutologApi, media_root: Path, tmp_path: Path,
) -> None:
    for index, source in enumerate(_escape_sources(media_root, tmp_path)):
        response = client.simulate_post("/items", json={"id": f"ESC{index}", "source": source})

        assert response.status_code == 400, source
        assert response.json["description"].startswith(f"source: {source}: ")
    assert api.services.store.items.list() == []
    assert queued_ids(api) == []


def test_listing_filters_by_status_and_pages_by_cursor(client: TestClient, api: AutologApi) -> None:
    api.services.store.items.create([NewItem(f"L{index}", f"/m/{index}.mp4") for index in range(5)])
    park(api, "L1", Status.FILE_INFO_COMPLETE)

    first = client.simulate_get("/items", params={"limit": 2}).json
    second = client.simulate_get("/items", params={"limit": 2, "cursor": first["next_cursor"]}).json
    pending = client.simulate_get("/items", params={"status": Status.PENDING_FILE_INFO.value}).json

    assert [item["id"] for item in first["items"] + second["items"]] == ["L0", "L1", "L2", "L3"]
    assert [item["id"] for item in pending["items"]] == ["L0", "L2", "L3", "L4"]
    assert pending["next_cursor"] is None


def test_listing_reads_status_as_the_cli_does_and_lists_failed_items(client: TestClient, api: AutologApi) -> None:
    items = api.services.store.items
    items.create([NewItem(name, f"/m/{name}.mp4") for name in ("SW", "SD", "SP", "S0")])
    park(api, "SW", Status.AWAITING_USER_INPUT)
    items.update("SD", dead_lettered=True, error={"step": "probe", "permanent": False})
    items.update("SP", error={"step": "probe", "permanent": True})

    def ids(**params: str) -> list[str]:
        answer = client.simulate_get("/items", params=params)
        assert answer.status_code == 200, answer.json
        return [item["id"] for item in answer.json["items"]]

    assert ids(status="0") == ids(status="0 - pending file info") == ids(status="pending") == ["S0", "SD", "SP"]
    assert ids(status="Awaiting") == ids(status="awaiting user input") == ["SW"]
    assert ids(failed="true") == ["SD", "SP"]
    assert ids(dead_lettered="true") == ["SD"]
    ambiguous = client.simulate_get("/items", params={"status": "a"})
    assert ambiguous.status_code == 400
    assert "'a' could be 'Awaiting User Input' or '7 - Avid Description'" in ambiguous.json["description"]


@pytest.mark.parametrize("params", [{"status": "nope"}, {"limit": "0"}, {"updated_after": "yesterday"}])
def test_listing_with_bad_filters_is_400_naming_the_parameter(client: TestClient, params: dict[str, str]) -> None:
    response = client.simulate_get("/items", params=params)

    assert response.status_code == 400
    assert next(iter(params)) in response.json["description"]


def test_item_comes_with_timeline_frames_transcript_and_artifacts(client: TestClient, api: AutologApi,
                                                                 api_settings: object) -> None:
    store = api.services.store
    store.items.create([NewItem("D1", "/m/d1.mp4")])
    poster = api.services.settings.artifacts_root / "D1" / "poster.jpg"
    poster.parent.mkdir(parents=True)
    poster.write_bytes(b"\xff\xd8jpeg")
    store.results.save_artifacts("D1", "poster", [str(poster)])

    document = client.simulate_get("/items/D1").json

    assert document["id"] == "D1"
    assert [event["event"] for event in document["timeline"]] == ["created"]
    assert (document["frames"], document["transcript"]) == ([], [])
    assert document["artifacts"][0]["url"] == "/items/D1/artifacts/poster/0"
    served = client.simulate_get(document["artifacts"][0]["url"])
    assert (served.status_code, served.content, served.headers["content-type"]) == (200, b"\xff\xd8jpeg",
                                                                                    "image/jpeg")
    # A recorded artifact whose file is gone says so, not that the item has none
    poster.unlink()
    gone = client.simulate_get(document["artifacts"][0]["url"])
    assert gone.status_code == 404
    assert gone.json["description"].endswith(f"its file {poster} is missing; rerun the step that made it")


def test_artifact_outside_the_artifacts_folder_is_not_served(client: TestClient, api: AutologApi,
                                                             tmp_path: Path) -> None:
    api.services.store.items.create([NewItem("D2", "/m/d2.mp4")])
    stray = tmp_path / "stray.jpg"
    stray.write_bytes(b"x")
    api.services.store.results.save_artifacts("D2", "poster", [str(stray)])

    assert client.simulate_get("/items/D2/artifacts/poster/0").status_code == 404
    assert client.simulate_get("/items/D2/artifacts/poster/9").status_code == 404


@pytest.mark.parametrize("route", ["/items/nope", "/items/nope/artifacts/poster/0"])
def test_unknown_item_is_404(client: TestClient, route: str) -> None:
    response = client.simulate_get(route)

    assert response.status_code == 404
    assert "nope" in response.json["description"]


@pytest.mark.parametrize("action", ["prompt", "resume", "retry", "cancel"])
def test_actions_on_unknown_items_are_404(client: TestClient, action: str) -> None:
    assert client.simulate_post(f"/items/nope/{action}", json={"prompt": "x"}).status_code == 404


def test_prompt_releases_a_waiting_item_to_step_4(client: TestClient, api: AutologApi, media_file: MediaFile) -> None:
    api.services.store.items.create([NewItem("P1", str(media_file("P1")))])
    park(api, "P1", Status.AWAITING_USER_INPUT)

    response = client.simulate_post("/items/P1/prompt", json={"prompt": "Describe the shots"})

    assert response.status_code == 202
    assert response.json["item"]["status"] == Status.CREATING_FRAMES.value
    assert response.json["item"]["prompt"] == "Describe the shots"
    assert queued_ids(api, "analysis") == ["P1"]


def test_prompt_needs_a_prompt_and_a_waiting_item(client: TestClient, api: AutologApi) -> None:
    api.services.store.items.create([NewItem("P2", "/m/p2.mp4")])

    assert client.simulate_post("/items/P2/prompt", json={}).json["description"].startswith("prompt:")
    assert client.simulate_post("/items/P2/prompt", json={"text": "go"}).json["description"] == (
        "text: unknown field; expected prompt")
    refused = client.simulate_post("/items/P2/prompt", json={"prompt": "go"})
    assert refused.status_code == 409
    assert Status.PENDING_FILE_INFO.value in refused.json["description"]


def test_resume_retry_and_cancel(client: TestClient, api: AutologApi, media_file: MediaFile) -> None:
    store = api.services.store
    store.items.create([NewItem("R1", str(media_file("R1"))), NewItem("R2", str(media_file("R2")))])
    park(api, "R1", Status.AWAITING_USER_INPUT)
    store.items.update("R2", dead_lettered=True, event=NewEvent(item_id="R2", event="dead_lettered"))

    resumed = client.simulate_post("/items/R1/resume")
    retried = client.simulate_post("/items/R2/retry")
    cancelled = client.simulate_post("/items/R2/cancel")

    assert (resumed.status_code, resumed.json["item"]["status"]) == (202, Status.CREATING_FRAMES.value)
    assert (retried.status_code, retried.json["item"]["dead_lettered"]) == (202, False)
    assert (cancelled.status_code, cancelled.json["item"]["cancelled"]) == (200, True)
    assert client.simulate_post("/items/R2/retry").status_code == 409


def test_a_query_parameter_a_route_does_not_take_is_a_400_naming_it(client: TestClient) -> None:
    # The CLI's --after is the API's cursor: the first page, answered as if asked for, would mislead
    listing = client.simulate_get("/items", params={"after": "A001"})
    export = client.simulate_get("/exports/ale", params={"idz": "A001"})
    monitor = client.simulate_get("/health", params={"_": "1733100000"})

    assert (listing.status_code, listing.json["description"].split(";")[0]) == (400, "after: unknown query parameter")
    assert "cursor" in listing.json["description"]
    assert (export.status_code, export.json["description"].split(";")[0]) == (400, "idz: unknown query parameter")
    assert monitor.status_code in (200, 503), "an open route answers monitors whatever they add"
    assert client.simulate_get("/queues", params={"x": "1"}).json["description"].endswith("this route takes none")
    assert client.simulate_get("/items", params={"cursor": "", "limit": "5"}).status_code == 200
