"""``GET /items/{item_id}/progress``: an item's progress as Server-Sent Events, on real Redis.

Every stream here is bounded: ``max_s`` is small, or a final event ends it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from falcon.testing import TestClient

from autolog.progress import ProgressChannel, ProgressEvent, progress_keys
from autolog.settings import Settings
from autolog.store import NewItem
from tests.conftest import wait_for
from web.app import AutologApi

Ids = Callable[[str], str]


@pytest.fixture
def channel(api: AutologApi, api_settings: Settings) -> ProgressChannel:
    """The channel the workers publish on, through the API's Redis."""
    return ProgressChannel(api.services.redis_client, namespace=api_settings.namespace)


@pytest.fixture
def item_id(api: AutologApi, unique_id: Ids) -> str:
    """A stored item (nothing runs it)."""
    created = unique_id("P")
    api.services.store.items.create([NewItem(created, f"/media/{created}.mov")])
    return created


def event(item_id: str, stage: str, state: str, percent: int, *, final: bool = False) -> ProgressEvent:
    return ProgressEvent(item_id=item_id, stage=stage, state=state, percent=percent, message_id="m", final=final)


def sse_events(body: str) -> list[tuple[int, dict[str, Any]]]:
    """Return the (id, data) of each ``progress`` event of a ``text/event-stream`` body, in order."""
    found = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":") and ": " in line)
        if fields.get("event") == "progress":
            found.append((int(fields["id"]), json.loads(fields["data"])))
    return found


def test_unknown_item_answers_404(client: TestClient) -> None:
    response = client.simulate_get("/items/NO-SUCH-ITEM/progress", params={"max_s": "0"})

    assert response.status_code == 404
    assert response.json["title"]


def test_progress_needs_an_api_key(anonymous: TestClient, item_id: str) -> None:
    response = anonymous.simulate_get(f"/items/{item_id}/progress", params={"max_s": "0"})

    assert response.status_code == 401


@pytest.mark.parametrize(("params", "headers", "field"), [
    ({"max_s": "soon"}, {}, "max_s"),
    ({"max_s": "-1"}, {}, "max_s"),
    ({"max_s": "3601"}, {}, "max_s"),
    ({"max_s": "nan"}, {}, "max_s"),
    ({"max_s": "0"}, {"Last-Event-ID": "seven"}, "Last-Event-ID"),
    ({"max_s": "0"}, {"Last-Event-ID": "-3"}, "Last-Event-ID"),
])
def test_bad_max_s_or_last_event_id_answers_400_naming_it(client: TestClient, item_id: str, params: dict[str, str],
                                                          headers: dict[str, str], field: str) -> None:
    response = client.simulate_get(f"/items/{item_id}/progress", params=params, headers=headers)

    assert response.status_code == 400
    assert field in response.json["description"]


def test_a_late_subscriber_gets_the_latest_state_first(client: TestClient, channel: ProgressChannel,
                                                       item_id: str) -> None:
    # Given an item that has already progressed
    channel.publish(event(item_id, "file_info", "running", 0))
    latest = channel.publish(event(item_id, "file_info", "succeeded", 17))

    # When a client subscribes afterwards, for a short while
    response = client.simulate_get(f"/items/{item_id}/progress", params={"max_s": "0.2"})

    # Then it is an uncached event stream whose first event is the latest state, with its sequence as id
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.text.startswith("retry: ")
    assert f"id: {latest}\nevent: progress\ndata: " in response.text
    events = sse_events(response.text)
    assert [(seq, data["stage"], data["state"], data["percent"]) for seq, data in events] == [
        (latest, "file_info", "succeeded", 17)]


def test_last_event_id_skips_events_the_client_has_seen(client: TestClient, channel: ProgressChannel,
                                                        item_id: str) -> None:
    seen = channel.publish(event(item_id, "thumbnails", "running", 17))

    response = client.simulate_get(f"/items/{item_id}/progress", params={"max_s": "0.2"},
                                   headers={"Last-Event-ID": str(seen)})

    assert response.status_code == 200
    assert sse_events(response.text) == []


def test_a_final_event_ends_the_stream(client: TestClient, channel: ProgressChannel, item_id: str) -> None:
    final = channel.publish(event(item_id, "frames", "succeeded", 100, final=True))
    started = time.monotonic()

    response = client.simulate_get(f"/items/{item_id}/progress", params={"max_s": "60"})

    assert [seq for seq, _ in sse_events(response.text)] == [final]
    assert time.monotonic() - started < 30, "the stream went on after the final event"


def test_a_listening_client_gets_each_new_event_in_order(client: TestClient, channel: ProgressChannel,
                                                         api: AutologApi, api_settings: Settings,
                                                         item_id: str) -> None:
    # Given a publisher that waits until the client listens, then reports two stages
    redis_client: redis.Redis = api.services.redis_client
    _, _, name = progress_keys(api_settings.namespace, item_id)

    def publish_once_subscribed() -> None:
        wait_for(lambda: dict(redis_client.pubsub_numsub(name)).get(name.encode(), 0) > 0, timeout_s=20,
                   what="a subscriber")
        channel.publish(event(item_id, "assess", "running", 33))
        channel.publish(event(item_id, "assess", "succeeded", 100, final=True))

    publisher = threading.Thread(target=publish_once_subscribed, daemon=True)
    publisher.start()

    # When the client listens (the final event ends the stream; max_s bounds it otherwise)
    response = client.simulate_get(f"/items/{item_id}/progress", params={"max_s": "30"})
    publisher.join(timeout=30)

    # Then it got both, in order, each with its own increasing id
    events = sse_events(response.text)
    assert [(data["state"], data["final"]) for _, data in events] == [("running", False), ("succeeded", True)]
    assert [seq for seq, _ in events] == sorted({seq for seq, _ in events})
