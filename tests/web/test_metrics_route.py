"""``GET /metrics``: the API's scrape-time registry (queues, items by status), open without a key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from falcon.testing import TestClient

from autolog.statuses import Status

Ids = Callable[[str], str]


def test_metrics_report_a_created_item_and_its_queue_without_a_key(client: TestClient, anonymous: TestClient,
                                                                   media_file: Callable[..., Path],
                                                                   unique_id: Ids) -> None:
    # Given one item created (and queued) and nothing run
    item_id = unique_id("M")
    created = client.simulate_post("/items", json={"id": item_id, "source": str(media_file(item_id))})
    assert created.status_code == 202, created.text

    # When Prometheus scrapes without credentials
    response = anonymous.simulate_get("/metrics")

    # Then the item counts at its status and its queue holds one ready message
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert f'autolog_status_items{{status="{Status.PENDING_FILE_INFO.value}"}} 1.0' in response.text
    assert 'autolog_queue_ready_messages{queue_name="probe"} 1.0' in response.text


def test_metrics_answer_in_openmetrics_when_asked(anonymous: TestClient) -> None:
    response = anonymous.simulate_get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
