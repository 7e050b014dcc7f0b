"""Fenced writes: a worker frozen past its heartbeat, then resumed, changes nothing.

Real ``dramatiq`` worker processes on a real SQLite store: the process running step 3 is
frozen with SIGSTOP (as a VM pause would), its message is redelivered to the other
group, which finishes the item; then SIGCONT lets the stale run carry on, and its writes
are refused.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from autolog.context import Context
from autolog.statuses import Status
from autolog.store import NewItem
from pipelines import actions
from tests.conftest import SampleClips, wait_for
from tests.e2e.workers import WORKERS, Start, first_event, long_clip

pytestmark = pytest.mark.slow


def test_frozen_then_resumed_worker_changes_nothing(
    processes_context: Context, processes: Start, database_url: str, test_media: SampleClips,
    unique_id: Callable[[str], str],
) -> None:
    # Given two worker groups (the tests' 3 s heartbeat timeout), one of them running step 3
    clip = long_clip(test_media, 40)
    env = {**os.environ, "DATABASE_URL": database_url}
    groups = [processes(WORKERS, env), processes(WORKERS, env)]
    store = processes_context.store
    item_id = unique_id("frozen")
    actions.submit(processes_context, [NewItem(item_id, str(clip), force_resume=True)])
    first = wait_for(lambda: first_event(store.timeline.for_item(item_id), "started", "assess"), timeout_s=60,
                     what="step 3 to start")
    assert first.worker is not None
    frozen_pid = int(first.worker.split(":")[1])
    assert os.getpgid(frozen_pid) in {group.pid for group in groups}

    # When its worker process is frozen until the other group has redone step 3 and finished the item
    os.kill(frozen_pid, signal.SIGSTOP)
    try:
        wait_for(lambda: store.items.get(item_id).status is Status.AVID_DESCRIPTION, timeout_s=120,
                 what="the other group to finish the item")
        finished = store.items.get(item_id)
        scenes = store.results.scenes(item_id)
        frames = store.results.frames(item_id)
    finally:
        os.kill(frozen_pid, signal.SIGCONT)

    # Then the stale run, resumed, is refused: it changes nothing and is not retried
    superseded = wait_for(lambda: first_event(store.timeline.for_item(item_id), "superseded", "assess"),
                          timeout_s=120, what="the stale run to be refused")
    assert superseded.message_id == first.message_id
    assert superseded.worker is not None and superseded.worker.split(":")[1] == str(frozen_pid)
    after = store.items.get(item_id)
    assert (after.status, after.version, after.error, after.dead_lettered) == (
        finished.status, finished.version, None, False)
    assert store.results.scenes(item_id) == scenes
    assert store.results.frames(item_id) == frames
    assert all(Path(scene.image_path).is_file() for scene in scenes)
    timeline = store.timeline.for_item(item_id)
    assert [event.step for event in timeline if event.event == "succeeded"] == [
        "file_info", "thumbnails", "assess", "analysis", "frames"]
    assert [event.worker for event in timeline if event.event == "started" and event.step == "assess"][0] == \
        first.worker
    assert len([event for event in timeline if event.event == "started" and event.step == "assess"]) == 2
    assert not [event for event in timeline if event.event in {"failed", "retried", "dead_lettered"}]
