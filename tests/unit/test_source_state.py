"""Settling and fingerprints of local sources: the rules step 1's wait and the restart rely on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autolog.errors import MediaMissing
from autolog.source_state import (
    SAMPLE_BYTES,
    Sighting,
    SourceFingerprint,
    SourceStat,
    fingerprint_source,
    settle_remaining_s,
    source_changed,
)

NOW_S = 1_800_000_000.0


def stat(changed_s: float, *, size_bytes: int = 100, ctime_s: float | None = None) -> SourceStat:
    return SourceStat(size_bytes=size_bytes, mtime_ns=int(changed_s * 1e9),
                      ctime_ns=int((changed_s if ctime_s is None else ctime_s) * 1e9))


def test_a_file_quiet_for_the_settle_time_has_settled() -> None:
    assert settle_remaining_s(stat(NOW_S - 5.0), now_s=NOW_S, settle_s=5.0) == 0.0


def test_a_file_changed_two_seconds_ago_waits_the_rest_of_the_settle_time() -> None:
    assert settle_remaining_s(stat(NOW_S - 2.0), now_s=NOW_S, settle_s=5.0) == pytest.approx(3.0)


def test_an_old_mtime_on_a_just_written_file_counts_from_its_inode_change() -> None:
    # ``cp -p`` writes the data, then puts the original's modification time back.
    copied = stat(NOW_S - 3600.0, ctime_s=NOW_S - 1.0)

    assert settle_remaining_s(copied, now_s=NOW_S, settle_s=5.0) == pytest.approx(4.0)


def test_a_future_mtime_settles_after_the_settle_time_of_watching_it_unchanged() -> None:
    ahead = stat(NOW_S + 600.0)
    first = Sighting(stat=ahead, since_s=NOW_S - 5.0)

    assert settle_remaining_s(ahead, now_s=NOW_S, settle_s=5.0, last=first) == 0.0
    assert settle_remaining_s(ahead, now_s=NOW_S, settle_s=5.0) > 5.0


def test_an_earlier_sighting_of_another_size_does_not_count() -> None:
    grown = stat(NOW_S + 600.0, size_bytes=200)
    earlier = Sighting(stat=stat(NOW_S + 600.0, size_bytes=100), since_s=NOW_S - 60.0)

    assert settle_remaining_s(grown, now_s=NOW_S, settle_s=5.0, last=earlier) > 5.0


def test_sighting_round_trips_through_json_types() -> None:
    sighting = Sighting(stat=stat(NOW_S), since_s=NOW_S)

    assert Sighting.from_dict(sighting.asdict()) == sighting


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(bytes(range(256)) * 1024)  # 256 KiB: head and tail samples do not overlap
    return path


def test_fingerprint_holds_size_mtime_and_a_hash_of_both_ends(clip: Path) -> None:
    fingerprint = fingerprint_source(clip)

    assert (fingerprint.size_bytes, fingerprint.mtime_ns) == (256 * 1024, clip.stat().st_mtime_ns)
    assert len(fingerprint.head_tail_sha256) == 64 and fingerprint.sample_bytes == SAMPLE_BYTES
    assert SourceFingerprint.from_dict(fingerprint.asdict()) == fingerprint


def test_the_same_file_is_unchanged(clip: Path) -> None:
    assert source_changed(fingerprint_source(clip), clip) is None


def test_an_appended_file_has_changed(clip: Path) -> None:
    before = fingerprint_source(clip)
    with clip.open("ab") as file:
        file.write(b"more")

    changed = source_changed(before, clip)

    assert changed is not None and changed.size_bytes == before.size_bytes + 4


def test_a_rewritten_tail_with_the_same_size_and_mtime_has_changed(clip: Path) -> None:
    before = fingerprint_source(clip)
    with clip.open("r+b") as file:
        file.seek(-10, os.SEEK_END)
        file.write(b"0123456789")
    os.utime(clip, ns=(before.mtime_ns, before.mtime_ns))

    assert source_changed(before, clip) is not None


def test_a_small_file_is_hashed_whole(tmp_path: Path) -> None:
    small = tmp_path / "small.wav"
    small.write_bytes(b"RIFF")

    assert fingerprint_source(small).size_bytes == 4


def test_a_missing_file_is_reported_as_missing(tmp_path: Path) -> None:
    with pytest.raises(MediaMissing, match="no such file"):
        fingerprint_source(tmp_path / "gone.mp4")
