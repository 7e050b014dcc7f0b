"""Jobs, queues, dead letters, workers and health against real Redis and a real in-process worker."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from falcon.testing import TestClient
from sqlalchemy.exc import OperationalError

from autolog.lease import Lease
from autolog.local_redis import LocalRedis
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem, Store
from autolog.worker_presence import WorkerInfo, WorkerPresence
from ops.pools import pool_specs
from pipelines.discovery import LEASE_KEY
from tests.conftest import SampleClips
from tests.web.conftest import KEY
from tests.web.test_items import queued_ids
from web.app import AutologApi, create_app

Drain = Callable[..., None]
Ids = Callable[[str], str]


def submit(client: TestClient, item_id: str, source: Path, *, force_resume: bool = True) -> None:
    response = client.simulate_post("/items", json={"id": item_id, "source": str(source),
                                                    "force_resume": force_resume})
    assert response.status_code == 202, response.text


def test_jobs_show_each_step_finished_with_its_result(client: TestClient, drain: Drain, test_media: SampleClips,
                                                      unique_id: Ids) -> None:
    item_id = unique_id("J")
    submit(client, item_id, test_media.path("cuts_noaudio.mp4"))
    drain()

    listed = client.simulate_get("/jobs", params={"status": "finished", "limit": "10"}).json
    mine = [job for job in listed["jobs"] if job["item_id"] == item_id]
    assert [job["step"] for job in mine] == ["frames", "analysis", "assess", "thumbnails", "file_info"]
    job = client.simulate_get(f"/jobs/{mine[-1]['job_id']}").json
    assert set(job) >= {"job_id", "status", "created_at", "started_at", "ended_at", "result", "error", "meta"}
    assert job["status"] == "finished"
    assert job["created_at"] <= job["started_at"] <= job["ended_at"]
    assert job["result"]["status"] == Status.FILE_INFO_COMPLETE.value
    assert job["error"] is None


def test_jobs_bad_filters_and_unknown_ids(client: TestClient) -> None:
    assert client.simulate_get("/jobs", params={"status": "exploded"}).status_code == 400
    assert client.simulate_get("/jobs", params={"limit": "101"}).status_code == 400
    assert client.simulate_get("/jobs/no-such-job").status_code == 404
    assert client.simulate_get("/jobs").json == {"count": 0, "jobs": []}


def test_dead_letters_list_their_error_and_can_be_retried_and_purged(
    client: TestClient, api: AutologApi, drain: Drain, test_media: SampleClips, unique_id: Ids,
) -> None:
    item_id = unique_id("DL")
    submit(client, item_id, test_media.path("not_media.mp4"))
    drain()

    letters = client.simulate_get("/dead-letters").json
    assert letters["count"] == 1
    letter = letters["dead_letters"][0]
    assert (letter["item_id"], letter["queue"], letter["actor"]) == (item_id, "probe", "autolog.probe")
    assert letter["error"]["type"] == "NotMedia"
    assert client.simulate_get("/jobs", params={"status": "failed"}).json["jobs"][0]["job_id"] == letter["message_id"]
    assert client.simulate_get("/queues/probe").json["dead_lettered"] == 1

    retried = client.simulate_post(f"/dead-letters/{letter['message_id']}/retry")
    assert (retried.status_code, retried.json["requeued"]) == (202, True)
    drain()
    assert api.services.store.items.get(item_id).dead_lettered
    assert client.simulate_get("/dead-letters", params={"queue": "probe"}).json["count"] == 1

    assert client.simulate_post("/dead-letters/purge").json == {"purged": 1, "items": [item_id]}
    assert client.simulate_get("/dead-letters").json["count"] == 0
    # The purge is on the item's timeline; the item keeps its mark (it failed) and can be retried by itself
    purged = api.services.store.timeline.for_item(item_id)[-1]
    assert (purged.event, purged.step, purged.detail) == ("dead_letter_purged", "file_info", {"queue": "probe"})
    assert api.services.store.items.get(item_id).dead_lettered
    assert client.simulate_post("/dead-letters/nope/retry").status_code == 404
    assert client.simulate_get("/dead-letters", params={"queue": "nope"}).status_code == 404


def test_a_dead_letter_purge_the_store_cannot_record_drops_nothing_and_one_of_a_deleted_item_goes_unrecorded(
    client: TestClient, api: AutologApi, drain: Drain, test_media: SampleClips, unique_id: Ids, tmp_path: Path,
) -> None:
    from pipelines.dead_letters import DeadLetters

    kept, deleted = unique_id("DLKEPT"), unique_id("DLGONE")
    for item_id in (kept, deleted):
        submit(client, item_id, test_media.path("not_media.mp4"))
    drain()
    assert client.simulate_get("/dead-letters").json["count"] == 2

    # When the store cannot take the purge's events, nothing is purged
    unreachable = Store.open(f"sqlite:///{tmp_path / 'missing' / 'autolog.db'}", upgrade=False)
    try:
        services = api.services
        blind = DeadLetters(services.broker, replace(services.context, store=unreachable), services.jobs,
                            queues=services.queues.names)
        with pytest.raises(OperationalError):
            blind.purge()
    finally:
        unreachable.close()
    assert client.simulate_get("/dead-letters").json["count"] == 2

    # And once it can, both letters go; only the item that still exists records it (a letter can outlive
    # its item: deleted from the store while Redis, which the API's delete also clears, was out)
    api.services.store.items.delete(deleted)
    assert client.simulate_post("/dead-letters/purge", params={"queue": "probe"}).json == {
        "purged": 2, "items": [kept]}
    assert client.simulate_get("/dead-letters").json["count"] == 0
    assert api.services.store.timeline.for_item(kept)[-1].event == "dead_letter_purged"


def test_a_dead_letter_whose_source_is_missing_stays_when_retried(
    client: TestClient, drain: Drain, media_file: Callable[[str], Path], unique_id: Ids,
) -> None:
    # Given a dead letter of a file that is not media, which was then moved away
    item_id = unique_id("DLGONE")
    source = media_file(item_id)
    submit(client, item_id, source)
    drain()
    (letter,) = [found for found in client.simulate_get("/dead-letters").json["dead_letters"]
                 if found["item_id"] == item_id]
    source.rename(source.with_suffix(".moved"))

    # When it is retried, alone or with every dead letter
    retried = client.simulate_post(f"/dead-letters/{letter['message_id']}/retry")
    all_retried = client.simulate_post("/dead-letters/retry")

    # Then nothing is queued, the reason is given, and the failure stays listed
    assert (retried.json["requeued"], "file not found" in retried.json["reason"]) == (False, True)
    assert [outcome["requeued"] for outcome in all_retried.json["retried"] if outcome["item_id"] == item_id] == [
        False]
    assert [found["message_id"] for found in client.simulate_get("/dead-letters").json["dead_letters"]
            if found["item_id"] == item_id] == [letter["message_id"]]


def test_queues_report_pause_resume_and_purge(client: TestClient, api: AutologApi) -> None:
    api.services.store.items.create([NewItem("Q1", "/m/q1.mp4"), NewItem("Q2", "/m/q2.mp4")])
    client.simulate_post("/run/lf_queue_batch", json={"footage_ids": ["Q1", "Q2"]})

    probe = client.simulate_get("/queues").json["queues"][0]
    paused = client.simulate_post("/queues/probe/pause").json
    resumed = client.simulate_post("/queues/probe/resume").json
    purged = client.simulate_post("/queues/probe/purge").json

    assert (probe["name"], probe["step"], probe["queued"], probe["paused"]) == ("probe", "file_info", 2, False)
    assert (paused["paused"], resumed["paused"]) == (True, False)
    assert purged == {"queue": "probe", "purged": 2, "items": ["Q1", "Q2"]}
    assert queued_ids(api) == []
    assert {item.status for item in api.services.store.items.list()} == {Status.PENDING_FILE_INFO}
    for action in ("", "/pause", "/resume", "/purge"):
        method = "GET" if not action else "POST"
        assert client.simulate_request(method, f"/queues/nope{action}").status_code == 404


def test_workers_report_heartbeats_of_running_workers(client: TestClient, worker: object) -> None:
    from tests.conftest import wait_for

    wait_for(lambda: any(beat["alive"] for beat in client.simulate_get("/workers").json["heartbeats"]),
               what="a heartbeat")
    document = client.simulate_get("/workers").json
    assert {pool["name"] for pool in document["pools"]} >= {"file_info", "transcription", "control"}
    assert client.simulate_get("/health").json["workers_count"] >= 1


def test_health_is_200_when_redis_and_the_database_answer_and_degraded_with_no_pool_running(
    client: TestClient,
) -> None:
    response = client.simulate_get("/health")

    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert {pool["state"] for pool in response.json["pools"].values()} == {"down"}


def health(client: TestClient) -> tuple[int, str, dict[str, Any], str]:
    """GET /health and /metrics: the status code, the status, each pool's health, and the metrics text."""
    response = client.simulate_get("/health")
    return response.status_code, response.json["status"], response.json["pools"], client.simulate_get("/metrics").text


def test_health_is_healthy_once_every_pool_has_its_processes_and_degraded_when_one_is_short(
    client: TestClient, api_settings: Settings, redis_client: redis.Redis,
) -> None:
    # A sweep acting (another host's, holding the lease)
    Lease(redis_client, f"{api_settings.namespace}:{LEASE_KEY}", ttl_ms=60_000, owner="sweep-host:1").acquire()
    specs = pool_specs(api_settings)
    for spec in specs:
        for index in range(spec.processes):
            WorkerPresence(redis_client, namespace=api_settings.namespace, member=f"{spec.name}-{index}",
                           info=WorkerInfo(pool=spec.name, queues=(spec.queue,), threads=spec.threads, host="h",
                                           pid=index), interval_s=1).beat()
    assert client.simulate_get("/health").json["status"] == "healthy"

    WorkerPresence(redis_client, namespace=api_settings.namespace, member="assess-0",
                   info=WorkerInfo(pool="assess", queues=("assess",), threads=1, host="h", pid=0),
                   interval_s=1).stop()
    code, status, pools, metrics = health(client)

    assert (code, status) == (200, "degraded")
    assert pools["assess"] == {"expected_processes": 1, "live_processes": 0, "state": "down", "crash_loop": None}
    assert 'autolog_pool_degraded{pool="assess"} 1.0' in metrics
    assert 'autolog_pool_degraded{pool="file_info"} 0.0' in metrics

    # Stopped on purpose, the pool is not expected to run: no longer an outage
    assert client.simulate_post("/workers/stop", params={"pool": "assess"}).status_code == 200
    code, status, pools, metrics = health(client)
    assert (code, status) == (200, "healthy")
    assert pools["assess"] == {"expected_processes": 0, "live_processes": 0, "state": "stopped", "crash_loop": None}
    assert 'autolog_pool_degraded{pool="assess"} 0.0' in metrics
    assert 'autolog_pool_expected_processes{pool="assess"} 0.0' in metrics


@pytest.fixture
def stopped_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A client of a real Redis that was started and then stopped."""
    server = LocalRedis(tmp_path / "gone", persist=False)
    client = redis.Redis.from_url(server.start(), socket_connect_timeout=1, socket_timeout=1)
    server.stop()
    yield client
    client.close()


def test_health_is_503_when_redis_is_down(api: AutologApi, api_settings: object, sqlite_store: Store,
                                          stopped_redis: redis.Redis) -> None:
    app = create_app(api.services.settings, store=sqlite_store, redis_client=stopped_redis)

    response = TestClient(app).simulate_get("/health")

    assert response.status_code == 503
    assert (response.json["redis_connected"], response.json["database_connected"]) == (False, True)
    assert TestClient(app).simulate_get("/queue/status", headers={"X-API-Key": KEY}).status_code == 503


def test_health_is_503_when_the_database_is_down(api: AutologApi) -> None:
    from autolog.local_redis import free_port

    down = Store.open(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", upgrade=False)
    app = create_app(api.services.settings, store=down)

    response = TestClient(app).simulate_get("/health")
    listing = TestClient(app).simulate_get("/items", headers={"X-API-Key": KEY})

    assert response.status_code == 503
    assert (response.json["redis_connected"], response.json["database_connected"]) == (True, False)
    assert (listing.status_code, set(listing.json)) == (503, {"title", "description"})
    down.close()


def test_retrying_every_dead_letter_takes_each_item_once_however_many_letters_it_has(
    client: TestClient, api: AutologApi, drain: Drain, media_file: Callable[[str], Path], test_media: SampleClips,
    unique_id: Ids,
) -> None:
    # Given an item dead-lettered twice at step 1 (queued again by hand after its first failure), then fixed
    item_id = unique_id("DLTWICE")
    source = media_file(item_id)
    submit(client, item_id, source)
    drain()
    assert client.simulate_post("/run/lf_queue", params={"footage_id": item_id}).status_code == 202
    drain()
    letters = [found for found in client.simulate_get("/dead-letters").json["dead_letters"]
               if found["item_id"] == item_id]
    assert len(letters) == 2
    shutil.copy(test_media.path("cuts_noaudio.mp4"), source)
    before = len(api.services.store.timeline.for_item(item_id))

    # When every dead letter is retried
    retried = client.simulate_post("/dead-letters/retry")
    drain()

    # Then the item is queued once (the second letter finds its step in flight, or its item moved on), it is
    # logged, and no dead letter of it is left
    assert retried.status_code == 202, retried.json
    assert [outcome["requeued"] for outcome in retried.json["retried"] if outcome["item_id"] == item_id][0] is True
    events = [event.event for event in api.services.store.timeline.for_item(item_id)][before:]
    assert events.count("retry_requested") == 1, " ".join(events)
    assert api.services.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    assert [found for found in client.simulate_get("/dead-letters").json["dead_letters"]
            if found["item_id"] == item_id] == []
