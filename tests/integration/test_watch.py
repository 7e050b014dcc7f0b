"""Watch folders: a file dropped while still growing becomes one item, after it settles, through watchdog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from autolog.context import Context
from autolog.source_state import SourceStat
from autolog.statuses import Status
from pipelines.watch import FolderWatch, ingest_file
from tests.conftest import SampleClips, wait_for

SETTLE_S = 1.0


@pytest.fixture
def folder(session_dir: Path, unique_id: Callable[[str], str]) -> Path:
    """A watch folder inside the session's media root."""
    path = session_dir / "media" / unique_id("watch")
    path.mkdir()
    return path


@pytest.fixture
def watch(context: Context, folder: Path) -> Iterator[FolderWatch]:
    """A running watch of ``folder`` that ingests into the test's store."""
    running = FolderWatch([folder], settle_s=SETTLE_S, ingest=lambda path: ingest_file(context, path),
                          check_interval_s=0.05)
    running.start()
    yield running
    running.stop()


def seen_at(watch: FolderWatch, path: Path, size: int) -> Callable[[], bool]:
    """Whether the watch has looked at ``path`` while it was ``size`` bytes long."""
    def seen() -> bool:
        sighting = watch.waiting().get(path)
        return sighting is not None and sighting.stat.size_bytes == size

    return seen


def test_a_file_dropped_while_growing_is_ingested_once_after_it_settles(
    context: Context, watch: FolderWatch, folder: Path, test_media: SampleClips,
) -> None:
    data = test_media.path("cuts_noaudio.mp4").read_bytes()
    target = folder / "A001C003.mp4"
    chunks = [data[start:start + len(data) // 5 + 1] for start in range(0, len(data), len(data) // 5 + 1)]

    # A copy in progress: each chunk lands after the watch has seen the file as it was
    with target.open("wb") as copy:
        for chunk in chunks:
            copy.write(chunk)
            copy.flush()
            wait_for(seen_at(watch, target, target.stat().st_size), what="the watch to see the file grow")
            assert context.store.items.with_source(str(target)) == [], "ingested before the copy finished"
    finished = SourceStat.of(target).changed_at_s

    (item,) = wait_for(lambda: context.store.items.with_source(str(target)), what="the item")

    assert item.id == "A001C003" and item.status is Status.PENDING_FILE_INFO
    assert item.created_at.timestamp() >= finished + SETTLE_S - 0.05
    # Noticed again (a later walk, a restart of the watch): still one item
    again = FolderWatch([folder], settle_s=SETTLE_S, ingest=lambda path: ingest_file(context, path))
    again.scan()
    wait_for(lambda: again.check() == [target], what="the second watch to find the item")
    assert len(context.store.items.with_source(str(target))) == 1


def test_hidden_partial_and_sidecar_files_are_not_ingested_and_the_walk_finds_what_events_missed(
    context: Context, folder: Path, test_media: SampleClips,
) -> None:
    for name in (".A001.mp4", "A002.mp4.part", "A003.mp4~", "manifest.json", "A001.XML"):
        (folder / name).write_bytes(b"partial")
    late = folder / "card" / "A004.mp4"
    late.parent.mkdir()
    late.write_bytes(test_media.path("cuts_noaudio.mp4").read_bytes())
    stopped = FolderWatch([folder], settle_s=0, ingest=lambda path: ingest_file(context, path))

    stopped.scan()

    assert list(stopped.waiting()) == [late]
    assert stopped.check() == [late]
    assert [item.id for item in context.store.items.list()] == ["A004"]


def test_a_file_outside_the_media_roots_is_refused_once_and_not_tried_again(
    context: Context, tmp_path: Path, test_media: SampleClips,
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "B001.mp4").write_bytes(test_media.path("cuts_noaudio.mp4").read_bytes())
    watch = FolderWatch([outside], settle_s=0, ingest=lambda path: ingest_file(context, path))

    watch.scan()
    watch.check()
    watch.scan()

    assert watch.waiting() == {} and context.store.items.list() == []
