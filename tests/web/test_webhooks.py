"""Ingress: MinIO bucket notifications and the signed ingest webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import TestClient

from autolog.store import NewItem
from tests.web.conftest import INGEST_SECRET, MINIO_TOKEN
from tests.web.test_items import queued_ids
from web.app import AutologApi

MINIO = {"Authorization": f"Bearer {MINIO_TOKEN}"}


def minio_event(name: str, bucket: str, key: str) -> dict[str, Any]:
    """A bucket notification as MinIO sends it: the key URL-encoded."""
    return {"EventName": name, "Key": f"{bucket}/{key}", "Records": [{
        "eventVersion": "2.0", "eventSource": "minio:s3", "awsRegion": "", "eventName": name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": key, "size": 1024, "eTag": "abc", "sequencer": "1"}}}]}


def test_created_object_becomes_a_queued_item_with_a_decoded_s3_source(client: TestClient, api: AutologApi) -> None:
    event = minio_event("s3:ObjectCreated:Put", "footage", "day%201/LF+1409%28take%202%29.mov")

    response = client.simulate_post("/webhook/minio", json=event, headers=MINIO)

    assert response.status_code == 200
    assert response.json["created"] == ["LF-1409-take-2"]
    item = api.services.store.items.get("LF-1409-take-2")
    assert item.source == "s3://footage/day 1/LF 1409(take 2).mov"
    assert queued_ids(api) == ["LF-1409-take-2"]


def test_replayed_event_changes_nothing(client: TestClient, api: AutologApi) -> None:
    event = minio_event("ObjectCreated:Put", "footage", "LF2000.mov")
    client.simulate_post("/webhook/minio", json=event, headers=MINIO)

    replay = client.simulate_post("/webhook/minio", json=event, headers=MINIO)

    assert (replay.json["created"], replay.json["duplicates"]) == ([], ["LF2000"])
    assert queued_ids(api) == ["LF2000"]


def test_same_name_in_another_folder_gets_its_own_item(client: TestClient, api: AutologApi) -> None:
    client.simulate_post("/webhook/minio", json=minio_event("s3:ObjectCreated:Put", "b", "a/clip.mov"), headers=MINIO)

    response = client.simulate_post("/webhook/minio", json=minio_event("s3:ObjectCreated:Copy", "b", "z/clip.mov"),
                                    headers=MINIO)

    [other] = response.json["created"]
    assert other.startswith("clip-") and api.services.store.items.get(other).source == "s3://b/z/clip.mov"


def test_removed_object_cancels_its_item(client: TestClient, api: AutologApi) -> None:
    client.simulate_post("/webhook/minio", json=minio_event("s3:ObjectCreated:Put", "b", "gone+soon.mov"),
                         headers=MINIO)

    response = client.simulate_post("/webhook/minio", json=minio_event("s3:ObjectRemoved:Delete", "b", "gone+soon.mov"),
                                    headers=MINIO)

    assert response.json["removed"] == ["gone-soon"]
    assert api.services.store.items.get("gone-soon").cancelled
    events = [event.event for event in api.services.store.timeline.for_item("gone-soon")]
    assert events[-2:] == ["cancelled", "source_removed"]


def test_other_events_and_folders_are_ignored(client: TestClient, api: AutologApi) -> None:
    for name, key in (("s3:ObjectAccessed:Get", "a.mov"), ("s3:ObjectCreated:Put", "folder/"),
                      ("s3:ObjectRemoved:Delete", "never-seen.mov")):
        assert client.simulate_post("/webhook/minio", json=minio_event(name, "b", key),
                                    headers=MINIO).json["ignored"] == 1
    assert api.services.store.items.list() == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": MINIO_TOKEN},
                                     {"X-API-Key": MINIO_TOKEN}])
def test_minio_needs_its_bearer_token(anonymous: TestClient, api: AutologApi, headers: dict[str, str]) -> None:
    response = anonymous.simulate_post("/webhook/minio", json=minio_event("s3:ObjectCreated:Put", "b", "x.mov"),
                                       headers=headers)

    assert response.status_code == 401
    assert api.services.store.items.list() == []


@pytest.mark.parametrize(("body", "field"), [
    ("{nope", "body"), ({"Records": "x"}, "Records"), ({"Records": [{"eventName": "s3:ObjectCreated:Put"}]},
                                                       "Records[0]"),
])
def test_malformed_notifications_are_400(anonymous: TestClient, body: object, field: str) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)

    response = anonymous.simulate_post("/webhook/minio", body=raw, headers=MINIO)

    assert (response.status_code, response.json["title"]) == (400, "Invalid field")
    assert response.json["description"].startswith(f"{field}:")


def signed(body: bytes, secret: str = INGEST_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_ingest(client: TestClient, items: object, *, delivery: str = "d-1", signature: str | None = None,
                raw: bytes | None = None) -> Any:
    body = raw if raw is not None else json.dumps(items).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Delivery": delivery,
               "X-Hub-Signature-256": signature if signature is not None else signed(body)}
    return client.simulate_post("/webhooks/ingest", body=body, headers=headers)


def test_signed_delivery_stores_and_queues_its_items(anonymous: TestClient, api: AutologApi,
                                                     media_file: Callable[..., Path]) -> None:
    items = [{"id": "W1", "source": str(media_file("W1"))}, {"id": "W2", "source": str(media_file("W2")),
                                                             "force_resume": True}]

    response = post_ingest(anonymous, items)

    assert response.status_code == 202
    assert (response.json["item_ids"], response.json["duplicate"], response.json["queued"]) == (["W1", "W2"],
                                                                                              False, True)
    assert api.services.store.items.get("W2").force_resume
    assert queued_ids(api) == ["W1", "W2"]


def test_replayed_delivery_is_answered_without_storing_again(anonymous: TestClient, api: AutologApi,
                                                             media_file: Callable[..., Path]) -> None:
    items = [{"id": "W3", "source": str(media_file("W3"))}]
    post_ingest(anonymous, items, delivery="same")

    replay = post_ingest(anonymous, items, delivery="same")

    assert (replay.status_code, replay.json["duplicate"], replay.json["item_ids"]) == (200, True, ["W3"])
    assert queued_ids(api) == ["W3"]


@pytest.mark.parametrize("signature", ["", "sha256=", "sha1=abc", signed(b"other body"),
                                       signed(b'[{"id": "W9"}]', "wrong-secret")])
def test_bad_or_missing_signatures_are_401_and_store_nothing(anonymous: TestClient, api: AutologApi,
                                                            signature: str) -> None:
    response = post_ingest(anonymous, [{"id": "W9", "source": "/x.mp4"}], signature=signature)

    assert response.status_code == 401
    assert api.services.store.items.list() == []


def test_signature_is_checked_before_the_body_is_parsed(anonymous: TestClient) -> None:
    assert post_ingest(anonymous, None, raw=b"{garbage", signature="sha256=00").status_code == 401
    assert post_ingest(anonymous, None, raw=b"{garbage").status_code == 400


def test_delivery_with_a_source_outside_the_roots_is_refused_and_not_remembered(
    anonymous: TestClient, api: AutologApi, media_file: Callable[..., Path],
) -> None:
    refused = post_ingest(anonymous, [{"id": "W4", "source": "/etc/passwd"}], delivery="fixme")
    fixed = post_ingest(anonymous, [{"id": "W4", "source": str(media_file("W4"))}], delivery="fixme")

    assert refused.status_code == 400
    assert (fixed.status_code, fixed.json["duplicate"]) == (202, False)


def test_delivery_needs_an_id_and_a_list(anonymous: TestClient, api: AutologApi) -> None:
    body = json.dumps([{"id": "W5", "source": "/x"}]).encode()
    missing = anonymous.simulate_post("/webhooks/ingest", body=body, headers={"X-Hub-Signature-256": signed(body)})

    assert missing.status_code == 400 and "X-GitHub-Delivery" in missing.json["description"]
    assert post_ingest(anonymous, {"items": [{"id": "W5"}]}).json["description"].startswith(
        "body: expected a JSON array of items")
    assert post_ingest(anonymous, []).json["description"] == "body: must not be empty"
    assert post_ingest(anonymous, [{"id": "W5", "source": "/x"}, {"id": "W6"}]).json["description"].startswith(
        "body[1].source:")


def test_delivery_names_the_entry_of_a_field_it_does_not_take_or_a_refused_source(
    anonymous: TestClient, api: AutologApi, media_file: Callable[..., Path],
) -> None:
    good = {"id": "W7", "source": str(media_file("W7"))}

    misspelt = post_ingest(anonymous, [good, {"id": "W8", "source": str(media_file("W8")), "forceresume": True}])
    outside = post_ingest(anonymous, [good, {"id": "W8", "source": "/etc/passwd"}], delivery="outside")

    assert (misspelt.status_code, misspelt.json["description"]) == (
        400, "body[1].forceresume: unknown field; expected id, source, force_resume, prompt")
    assert outside.status_code == 400
    assert outside.json["description"].startswith("body[1].source: /etc/passwd: outside the media roots")
    assert api.services.store.items.list() == []


def test_delivery_reusing_an_item_id_of_another_delivery_is_409(anonymous: TestClient, api: AutologApi,
                                                                media_file: Callable[..., Path]) -> None:
    api.services.store.items.create([NewItem("W6", "/m/w6.mp4")])

    response = post_ingest(anonymous, [{"id": "W6", "source": str(media_file("W6"))}], delivery="another")

    assert response.status_code == 409
    assert "W6" in response.json["description"]
