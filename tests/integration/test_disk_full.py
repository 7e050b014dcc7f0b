"""A full artifacts disk is the machine's fault: a clear transient error, waited out, then the item finishes.

The artifacts folder is a real 2 MiB tmpfs (the tests run as root), filled to the last byte.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from autolog.broker_state import messages_in_flight
from autolog.context import Context
from autolog.errors import DiskFull
from autolog.media import make_poster, probe_media
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem
from middleware.rate_limits import WAIT_OPTION
from pipelines import actions
from tests.conftest import SampleClips, wait_for


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs with no byte free; its ``filler`` file is what takes the space."""
    mount = tmp_path / "artifacts"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the tests need root for this one): {mounted.stderr.decode()}")
    try:
        descriptor = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(descriptor, b"\0" * 65536)
        except OSError as ex:
            assert ex.errno == errno.ENOSPC
        finally:
            os.close(descriptor)
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


@pytest.fixture
def settings(full_disk: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The session's settings with the full tmpfs as the artifacts folder."""
    monkeypatch.setenv("AUTOLOG_ARTIFACTS_DIR", str(full_disk))
    return Settings.from_env()


def test_poster_on_a_full_disk_names_the_disk_and_its_free_space(full_disk: Path, test_media: SampleClips) -> None:
    clip = test_media.path("cuts_audio.mp4")

    with pytest.raises(DiskFull) as caught:
        make_poster(clip, probe_media(clip), full_disk / "LF1" / "poster.jpg", at_s=1.0)

    assert caught.value.path.startswith(str(full_disk))
    assert caught.value.free_bytes < 65536 and caught.value.total_bytes == 2 * 1024 * 1024
    assert "no space left on the disk holding" in str(caught.value)


def test_full_artifacts_disk_waits_without_spending_retries_and_the_item_finishes_once_space_returns(
    context: Context, drain: Callable[..., None], full_disk: Path, test_media: SampleClips,
    unique_id: Callable[[str], str], redis_client: redis.Redis,
) -> None:
    # Given a full artifacts disk, When an item reaches step 2
    item_id = unique_id("full")
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    store = context.store
    failed = wait_for(lambda: (store.items.get(item_id).error or {}).get("type") == "DiskFull"
                      and store.items.get(item_id), timeout_s=60, what="step 2 to meet the full disk")

    # Then the error names the disk and its free space, and nothing is dead-lettered
    assert failed.status is Status.FILE_INFO_COMPLETE and not failed.dead_lettered
    assert str(full_disk) in failed.error["message"] and "bytes free" in failed.error["message"]
    assert failed.error["permanent"] is False
    wait_for(lambda: "deferred" in [event.event for event in store.timeline.for_item(item_id)],
             what="the step to wait for space")

    # And meeting the full disk again, the step waits longer: the second wait's marker counts on
    # (the delivery that ended the first wait had set it aside), and one "deferred" marks the stretch
    def second_wait() -> dict[str, object] | None:
        return next((message.options[WAIT_OPTION] for message in messages_in_flight(
            redis_client, context.settings.namespace, ["thumbnails"])
            if message.item_id == item_id and (message.options.get(WAIT_OPTION) or {}).get("waits") == 2), None)
    wait = wait_for(second_wait, what="the step's second wait for space")
    assert (wait["reason"], wait["wait_ms"]) == ("disk full", 2000)
    assert [event.event for event in store.timeline.for_item(item_id)].count("deferred") == 1

    # When space returns, Then the item finishes by itself, with no retry spent
    (full_disk / "filler").unlink()
    drain()
    item = store.items.get(item_id)
    assert (item.status, item.error, item.dead_lettered) == (Status.AVID_DESCRIPTION, None, False)
    timeline = store.timeline.for_item(item_id)
    assert {event.attempt for event in timeline if event.event == "started"} == {1}
    assert not [event for event in timeline if event.event in {"retried", "dead_lettered"}]
