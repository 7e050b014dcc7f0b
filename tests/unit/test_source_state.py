"""Settling and fingerprints of local sources: the rules step 1's wait and the restart rely on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autolog.errors import MediaMissing
from autolog.source_state import (
    BMFF_SUFFIXES,
    SAMPLE_BYTES,
    TS_PACKETS,
    Sighting,
    SourceFingerprint,
    SourceStat,
    cut_short,
    fingerprint_source,
    settle_remaining_s,
    source_changed,
    stall_remaining_s,
)
from tests.conftest import FootageCases

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


# --- Stalled copies: files visibly cut short ------------------------------------------------------

#: Every footage case of a judged family (``cases.json``), whole: none may look cut short.
WHOLE = [name for name in json.loads((Path(__file__).parents[1] / "footage_cases" / "cases.json").read_text())
         if os.path.splitext(name)[1].lower() in {*TS_PACKETS, *BMFF_SUFFIXES}]


def judged(path: Path) -> str | None:
    return cut_short(str(path), SourceStat.of(path))


@pytest.mark.parametrize("name", WHOLE)
def test_a_whole_file_is_not_cut_short(footage_cases: FootageCases, name: str) -> None:
    assert judged(footage_cases.path(name)) is None


@pytest.mark.parametrize(("name", "reason"), [
    ("16_full.mp4", "its 'mdat' box runs past the end of the file"),
    ("03_ntsc_df_tc.mov", "its 'mdat' box runs past the end of the file"),
    ("12_long_gop.ts", "bytes into a 188-byte packet"),
    ("05_avchd_spanned.m2ts", "bytes into a 192-byte packet"),
])
def test_the_first_part_of_a_copy_is_cut_short(footage_cases: FootageCases, tmp_path: Path, name: str,
                                               reason: str) -> None:
    whole = footage_cases.path(name).read_bytes()
    part = tmp_path / Path(name).name
    part.write_bytes(whole[:len(whole) * 4 // 10 + 1])  # +1: never on a packet's end by chance
    assert reason in (judged(part) or "")


def test_an_mp4_that_stops_after_its_media_data_has_no_moov(footage_cases: FootageCases, tmp_path: Path) -> None:
    # A camera writes the index last: cut at the end of 'mdat', every box is whole and 'moov' is missing
    whole = footage_cases.path("16_full.mp4").read_bytes()
    offset, end_of_mdat = 0, 0
    while offset < len(whole):
        size, kind = int.from_bytes(whole[offset:offset + 4], "big"), whole[offset + 4:offset + 8]
        offset += size
        if kind == b"mdat":
            end_of_mdat = offset
    assert 0 < end_of_mdat < len(whole)
    part = tmp_path / "no_moov.mp4"
    part.write_bytes(whole[:end_of_mdat])
    assert judged(part) == "it has no 'moov' box (the index a player needs, written last)"


def test_a_copy_cut_inside_a_box_header_is_cut_short(footage_cases: FootageCases, tmp_path: Path) -> None:
    whole = footage_cases.path("16_full.mp4").read_bytes()
    first = int.from_bytes(whole[:4], "big")  # the 'ftyp' box
    part = tmp_path / "header.mp4"
    part.write_bytes(whole[:first + 5])
    assert judged(part) == "it ends inside a box header (5 bytes after the last whole box)"


def test_a_whole_file_with_a_few_bytes_of_padding_is_not_cut_short(footage_cases: FootageCases,
                                                                   tmp_path: Path) -> None:
    padded = tmp_path / "padded.mp4"
    padded.write_bytes(footage_cases.path("16_full.mp4").read_bytes() + b"\0\0\0\0")
    assert judged(padded) is None


@pytest.mark.parametrize(("name", "content"), [
    ("hello.mp4", b"hello"),  # shorter than a box header
    ("notes.mp4", b"call sheet, not footage\n" * 40),  # not boxes: ffprobe's to judge
    ("zeros.mp4", b"\0" * 4096),
    ("empty.mov", b""),
    ("notes.ts", b"export const take = 2;\n" * 40),  # a TypeScript file, not a stream
    ("picture.ts", b"GIF89a" + bytes(range(256)) * 4),  # starts with "G", the sync byte, and only there
    ("clip.mxf", b"\x06\x0e\x2b\x34" + b"\0" * 1001),  # a family not judged
])
def test_files_of_no_judged_structure_are_left_to_ffprobe(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert judged(path) is None


def test_a_transport_stream_that_stops_on_a_packet_boundary_looks_whole(footage_cases: FootageCases,
                                                                        tmp_path: Path) -> None:
    # A limit of the rule (README): the stream's structure cannot tell this copy from a finished file
    whole = footage_cases.path("05_avchd_spanned.m2ts").read_bytes()
    part = tmp_path / "boundary.m2ts"
    part.write_bytes(whole[:3 * 65_536])  # 1,024 packets of 192 bytes
    assert judged(part) is None


def test_the_stall_window_counts_from_the_modification_time_only() -> None:
    # Cut short a day ago, moved into the media root a second ago (a new inode change time): no copy runs
    moved = stat(NOW_S - 86_400.0, ctime_s=NOW_S - 1.0)
    assert stall_remaining_s(moved, now_s=NOW_S, stall_s=120.0) == 0.0
    # Written 20 s ago: 100 s of the window left
    assert stall_remaining_s(stat(NOW_S - 20.0), now_s=NOW_S, stall_s=120.0) == pytest.approx(100.0)


def test_a_future_mtime_ends_its_stall_window_after_that_long_of_watching() -> None:
    future = stat(NOW_S + 3600.0)
    assert stall_remaining_s(future, now_s=NOW_S, stall_s=120.0) > 120.0
    seen = Sighting(stat=future, since_s=NOW_S - 120.0)
    assert stall_remaining_s(future, now_s=NOW_S, stall_s=120.0, last=seen) == 0.0
