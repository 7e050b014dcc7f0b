"""Stopping a pool during a long step (a slow Gemini answer) with one SIGTERM.

The step finishes once within the grace period, or, still running at its end, is put back
without spending a retry; either way the stop says which.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import dramatiq
import pytest
import redis

from actors.analysis import analyze
from autolog.context import Context
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem, Store
from ops.pools import PoolManager
from pipelines import actions
from tests.conftest import SampleClips, wait_for
from tests.gemini_standin import GeminiStandIn
from web.ui import views

pytestmark = pytest.mark.slow

#: The pools an item needs to reach step 4 (the Gemini analysis, the long step here).
TO_ANALYSIS = ["file_info", "thumbnails", "assess", "control", "analysis"]

#: How long the stand-in takes to answer, so step 4 is running when the pool is stopped.
SLOW_ANSWER_S = 8.0


@pytest.fixture
def pools(pool_settings: Settings, cli_store: Store, monkeypatch: pytest.MonkeyPatch,
          ) -> Iterator[Callable[[float], PoolManager]]:
    """Start the pools up to step 4, on a slow Gemini stand-in, with a given grace period; stopped after."""
    standin = GeminiStandIn(latency_s=SLOW_ANSWER_S)
    monkeypatch.setenv("AUTOLOG_GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("AUTOLOG_GEMINI_BASE_URL", standin.base_url)
    managers: list[PoolManager] = []

    def start(grace_s: float) -> PoolManager:
        monkeypatch.setenv("AUTOLOG_STOP_GRACE_S", str(grace_s))
        manager = PoolManager(Settings.from_env())
        manager.start(TO_ANALYSIS)
        managers.append(manager)
        return manager

    yield start
    for manager in managers:
        manager.stop(timeout_s=30)
        manager.close()
    standin.close()


@pytest.fixture
def pool_context(pool_settings: Settings, cli_store: Store, redis_client: object) -> Iterator[Context]:
    """This process's context on the pools' store, so the test's enqueues are recorded."""
    from actors import broker, services

    built = Context.build(pool_settings, store=cli_store)
    broker.flush_all()
    services().install(built)
    yield built
    services().uninstall()


def events(context: Context, item_id: str, event: str, step: str = "analysis") -> int:
    return sum(1 for entry in context.store.timeline.for_item(item_id) if entry.event == event and entry.step == step)


def test_a_step_running_when_its_pool_is_stopped_finishes_once_within_the_grace_period(
    pools: Callable[[float], PoolManager], pool_context: Context, test_media: SampleClips,
) -> None:
    manager = pools(300)
    actions.submit(pool_context, [NewItem("GRACE1", str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    wait_for(lambda: events(pool_context, "GRACE1", "started"), timeout_s=90, what="step 4 to start")

    (stop,) = manager.drain(["analysis"])

    assert not stop.pool.alive
    assert (stop.drained, stop.requeued) == (("GRACE1",), ())
    assert events(pool_context, "GRACE1", "started") == 1 and events(pool_context, "GRACE1", "succeeded") == 1
    assert pool_context.store.items.get("GRACE1").status is Status.PROCESSING_FRAME_INFO


def test_a_step_still_running_at_the_end_of_the_grace_period_is_put_back_without_spending_a_retry(
    pools: Callable[[float], PoolManager], pool_context: Context, test_media: SampleClips, redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = pools(0.5)
    actions.submit(pool_context, [NewItem("GRACE2", str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    wait_for(lambda: events(pool_context, "GRACE2", "started"), timeout_s=90, what="step 4 to start")
    # A worker that died left its ack set behind: a message of an item deleted since, and a stale copy of
    # GRACE2's. Neither runs anywhere, so the stop must not report them.
    namespace = pool_context.settings.namespace
    stale = {message.message_id: message for message in (
        dramatiq.Message(queue_name="analysis", actor_name=analyze.actor_name, args=(item,), kwargs={}, options={})
        for item in ("GONE1", "GRACE2"))}
    redis_client.hset(f"{namespace}:analysis.msgs", mapping={key: m.encode() for key, m in stale.items()})
    redis_client.sadd(f"{namespace}:__acks__.dead-worker.analysis", *stale)

    with caplog.at_level(logging.WARNING, logger="ops.processes"):
        (stop,) = manager.drain(["analysis"])

    # The group of five pools stopped by itself (not killed), having put back the step it still ran
    assert not stop.pool.alive and "killed it" not in caplog.text
    assert (stop.drained, stop.requeued) == ((), ("GRACE2",))
    redis_client.delete(f"{namespace}:__acks__.dead-worker.analysis")
    redis_client.hdel(f"{namespace}:analysis.msgs", *stale)
    assert events(pool_context, "GRACE2", "succeeded") == 0
    # Put back on its queue at once, not left in the stopped worker's ack set for its heartbeat to expire
    assert redis_client.llen(f"{pool_context.settings.namespace}:analysis") == 1

    # Started again, the pool runs the step that was put back, and no retry was spent on it
    manager.start(["analysis"])
    wait_for(lambda: events(pool_context, "GRACE2", "succeeded"), timeout_s=120, what="step 4 to finish")
    assert events(pool_context, "GRACE2", "started") == 2
    assert events(pool_context, "GRACE2", "failed") == 0 and events(pool_context, "GRACE2", "retried") == 0
    # The timeline says the step was put back by the stop, between its two starts, and why
    rows = views.attempt_rows(pool_context.store.items.get("GRACE2"), pool_context.store.timeline.for_item("GRACE2"))
    analysis = [row for row in rows if row.step == "analysis" and row.event in {"started", "requeued"}]
    assert [(row.event, row.note) for row in analysis] == [
        ("started", None),
        ("requeued", "put back on its queue as it was, no retry spent: still running when its worker stopped "
                     "(after the 0.5 s grace period)"),
        ("started", None)]
