"""Seed 000's curl sequence against real gunicorn driving real worker pools, with urllib.

The API starts the pools itself (``POST /workers/start``, as in the seed), queues one clip
and a batch of two, waits for step 3 to halt them, force-resumes them all, runs discovery,
and checks every clip ends at ``7 - Avid Description``. Conditions are polled against a
deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autolog.settings import Settings
from autolog.statuses import STEPS, Status
from ops.pools import PoolManager
from tests.conftest import SampleClips, wait_for
from tests.web.conftest import KEY, http, serve_api  # noqa: F401  (serve_api is a fixture)

pytestmark = pytest.mark.slow

#: The clips behind seed 000's footage ids: one with dialogue, one silent, one with speech.
CLIPS = {"LF1409": "cuts_audio.mp4", "LF1410": "cuts_noaudio.mp4", "LF1411": "speech.mp4"}


@pytest.fixture
def e2e_env(tmp_path: Path, test_media: SampleClips, redis_client: object) -> Iterator[dict[str, str]]:
    """A private database and var dir, one thread per step, and the seed's footage under the media root."""
    folder = test_media.root.parent / f"e2e-{tmp_path.name}"
    folder.mkdir()
    for footage_id, clip in CLIPS.items():
        shutil.copyfile(test_media.path(clip), folder / f"{footage_id}.mp4")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}", "AUTOLOG_VAR_DIR": str(tmp_path / "var"),
           "AUTOLOG_DISCOVERY_INTERVAL_S": "1"}
    env.update({f"AUTOLOG_POOL_{step.name.upper()}_THREADS": "1" for step in STEPS})
    yield env
    PoolManager(Settings.from_env({**os.environ, **env})).stop(timeout_s=20)
    shutil.rmtree(folder, ignore_errors=True)


def test_seed_000_curl_sequence_end_to_end(serve_api: Callable[[dict[str, str]], str],  # noqa: F811
                                           e2e_env: dict[str, str]) -> None:
    base = serve_api(e2e_env)
    key = {"X-API-Key": KEY}

    def status_of(footage_id: str) -> Any:
        return http("GET", f"{base}/items/{footage_id}", headers=key)[1]["status"]

    started = http("POST", f"{base}/workers/start", headers=key)
    assert started[0] == 200 and started[1]["running_pools"] == 7

    single = http("POST", f"{base}/run/lf_queue?footage_id=LF1409", headers=key)
    batch = http("POST", f"{base}/run/lf_queue_batch", headers=key, body={"footage_ids": ["LF1410", "LF1411"]})
    assert (single[0], single[1]["queued"]) == (202, True)
    assert (batch[0], batch[1]["total_queued"]) == (202, 2)

    wait_for(lambda: all(status_of(footage_id) == Status.AWAITING_USER_INPUT.value for footage_id in CLIPS),
             timeout_s=120, what="step 3 to halt every clip for input")

    resumed = http("POST", f"{base}/run/lf_force_resume_all", headers=key)
    assert (resumed[0], sorted(resumed[1]["footage_ids"])) == (202, sorted(CLIPS))
    discovery = http("POST", f"{base}/run/lf_discovery", headers=key)
    assert (discovery[0], discovery[1]["running"]) == (200, True)

    queue_status = http("GET", f"{base}/queue/status", headers=key)[1]
    assert set(queue_status) == {"queues", "total_queued", "total_failed"}
    workers = http("GET", f"{base}/workers/status", headers=key)[1]
    assert workers["running_pools"] == 7

    wait_for(lambda: all(status_of(footage_id) == Status.AVID_DESCRIPTION.value for footage_id in CLIPS),
             timeout_s=180, what="every clip to reach 7 - Avid Description")
    speech = http("GET", f"{base}/items/LF1411", headers=key)[1]
    assert speech["transcript"] and speech["frames"]
    assert http("GET", f"{base}/queue/status", headers=key)[1]["total_failed"] == 0
    assert http("GET", f"{base}/jobs?status=failed", headers=key)[1]["count"] == 0

    assert http("POST", f"{base}/stop/lf_discovery", headers=key)[1]["running"] is False
    stopped = http("POST", f"{base}/workers/stop", headers=key, timeout_s=120)
    assert (stopped[0], stopped[1]["running_pools"]) == (200, 0)
