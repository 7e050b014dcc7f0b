"""Turning paths into items: id sanitising and the checks made before anything is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from autolog.errors import InvalidItemId, InvalidSource, MediaMissing
from ops.errors import UsageError
from ops.ingest import item_id_for, plan_items


@pytest.mark.parametrize(("path", "expected"), [
    ("/media/LF1409.mov", "LF1409"),
    ("/media/LF1409 take 2 (final).mp4", "LF1409_take_2_final"),
    ("relative/clip.v2.mp4", "clip.v2"),
    ("/media/clip#1 é.mp4", "clip_1"),
    ("/media/%%%.mp4", "item"),
    ("/media/" + "x" * 100 + ".mp4", "x" * 64),
])
def test_item_id_is_the_stem_restricted_to_id_characters(path: str, expected: str) -> None:
    assert item_id_for(path) == expected


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("a clip.mp4", "b.mp4"):
        (folder / name).write_bytes(b"x")
    return folder


def test_paths_become_items_with_stem_ids_and_absolute_sources(root: Path) -> None:
    items = plan_items([str(root / "a clip.mp4"), str(root / "b.mp4")], [root], force_resume=True)

    assert [(item.id, item.source, item.force_resume) for item in items] == [
        ("a_clip", str(root / "a clip.mp4"), True), ("b", str(root / "b.mp4"), True)]


def test_prefix_is_put_before_derived_ids(root: Path) -> None:
    assert [item.id for item in plan_items([str(root / "b.mp4")], [root], prefix="DEMO-")] == ["DEMO-b"]


def test_explicit_id_is_used_for_one_path(root: Path) -> None:
    assert plan_items([str(root / "b.mp4")], [root], item_id="LF1409")[0].id == "LF1409"


def test_explicit_id_with_two_paths_is_refused(root: Path) -> None:
    with pytest.raises(UsageError, match="--id"):
        plan_items([str(root / "a clip.mp4"), str(root / "b.mp4")], [root], item_id="LF1409")


def test_malformed_explicit_id_is_refused(root: Path) -> None:
    with pytest.raises(InvalidItemId):
        plan_items([str(root / "b.mp4")], [root], item_id="no spaces")


def test_path_outside_the_media_roots_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")

    with pytest.raises(InvalidSource, match="outside the media roots"):
        plan_items([str(outside)], [root])


def test_missing_file_is_refused(root: Path) -> None:
    with pytest.raises(MediaMissing, match="no such file"):
        plan_items([str(root / "gone.mp4")], [root])


def test_two_paths_with_the_same_id_are_refused(root: Path) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "b.mp4").write_bytes(b"x")

    with pytest.raises(UsageError, match="both be item 'b'"):
        plan_items([str(root / "b.mp4"), str(root / "sub" / "b.mp4")], [root])


def test_s3_sources_are_not_checked_on_disk(root: Path) -> None:
    assert plan_items(["s3://bucket/key/LF1.mov"], [root])[0].id == "LF1"
