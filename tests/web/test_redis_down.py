"""Nothing accepted is lost: with Redis down the API stores the item, says so, and discovery queues it later.

The API runs in real gunicorn on a second private Redis, which the test stops; discovery
then runs on the session's Redis against the same database, as it would once Redis is back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autolog.local_redis import LocalRedis
from autolog.settings import Settings
from autolog.store import Store
from middleware.outbox_relay import relay_outbox
from pipelines.discovery import scan
from tests.web.conftest import KEY, http
from tests.web.test_items import queued_ids
from web.app import create_app


@pytest.fixture
def doomed_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A second private Redis, for the API only; the test stops it."""
    server = LocalRedis(tmp_path / "doomed", persist=False)
    server.start()
    yield server
    server.stop()


def test_item_accepted_while_redis_is_down_is_stored_and_sent_once_later_by_the_relay(
    serve_api: Callable[[dict[str, str]], str], doomed_redis: LocalRedis, tmp_path: Path, settings: Settings,
    media_file: Callable[..., Path], redis_client: object,
) -> None:
    database = f"sqlite:///{tmp_path / 'down.db'}"
    source = media_file("LFDOWN")
    base = serve_api({"REDIS_URL": str(doomed_redis.url), "DATABASE_URL": database})
    key = {"X-API-Key": KEY}
    assert http("GET", f"{base}/health")[0] == 200

    doomed_redis.stop()
    status, accepted = http("POST", f"{base}/items", body={"id": "LFDOWN", "source": str(source)}, headers=key)
    health_status, health = http("GET", f"{base}/health")
    queue_status = http("GET", f"{base}/queue/status", headers=key)[0]
    stored_status, stored = http("GET", f"{base}/items/LFDOWN", headers=key)

    assert (status, accepted["queued"], accepted["item"]["id"]) == (202, False, "LFDOWN")
    assert (health_status, health["redis_connected"], health["database_connected"]) == (503, False, True)
    assert queue_status == 503
    assert stored_status == 200
    assert [event["event"] for event in stored["timeline"]] == ["created", "queue_deferred"]

    store = Store.open(database)
    app = create_app(settings, store=store)
    try:
        later = datetime.now(UTC) + timedelta(minutes=1)
        # A sweep: the outbox's relay first, then the scan, which sends no second message of its own
        # (a trial's item, both sent, ran step 1 twice at once)
        assert relay_outbox(app.services.broker, store.outbox, now=later.timestamp()) == 1
        report = scan(app.services.context, app.services.broker, now=later)
        assert report.queued == ()
        assert queued_ids(app) == ["LFDOWN"]
    finally:
        app.close()

