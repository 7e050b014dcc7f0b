"""Turning paths into items: checks before anything is stored, and ids made from sources."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from autolog.errors import InvalidItemId, InvalidSource
from autolog.item_ids import candidate_ids, choose_id, hashed_id, stem_id
from autolog.store import ItemView
from ops.errors import UsageError
from ops.ingest import check_paths, plan_items
from tests.conftest import item_view


def nothing_stored(item_id: str) -> ItemView | None:
    return None


@pytest.mark.parametrize(("path", "expected"), [
    ("/media/LF1409.mov", "LF1409"),
    ("/media/LF1409 take 2 (final).mp4", "LF1409_take_2_final"),
    ("relative/clip.v2.mp4", "clip.v2"),
    ("/media/clip#1 é.mp4", "clip_1_e"),
    ("/media/café Müller.mov", "cafe_Muller"),  # accents folded, not dropped
    ("/media/撮影01.mp4", "01"),
    ("/media/%%%.mp4", "item"),
    ("/media/" + "x" * 100 + ".mp4", "x" * 64),
])
def test_stem_id_is_the_stem_restricted_to_id_characters(path: str, expected: str) -> None:
    assert stem_id(path) == expected


def test_hashed_id_is_the_stem_and_8_hex_digits_of_the_sources_sha1() -> None:
    digest = hashlib.sha1(b"/cards/A/C0001.MP4").hexdigest()[:8]

    assert hashed_id("/cards/A/C0001.MP4") == f"C0001-{digest}"
    assert candidate_ids("/cards/A/C0001.MP4") == ("C0001", f"C0001-{digest}")


def test_a_long_stem_is_shortened_to_keep_the_hash_within_64_characters() -> None:
    long_id = hashed_id("/media/" + "x" * 100 + ".mp4")

    assert len(long_id) == 64 and long_id.startswith("x" * 55 + "-")


def test_a_prefix_counts_toward_the_64_characters() -> None:
    assert stem_id("/m/" + "y" * 70 + ".mp4", prefix="DEMO-") == "DEMO-" + "y" * 59


def test_an_item_an_earlier_version_named_without_its_accented_letters_keeps_its_id() -> None:
    # "café.mov" was "caf" before accents were folded; ingesting it again must find it, not make "cafe"
    earlier = item_view("caf", "/cards/A/café.mov")
    lookup = {"caf": earlier}.get

    assert choose_id("/cards/A/café.mov", lookup) == ("caf", earlier)
    assert choose_id("/cards/B/café.mov", lookup) == ("cafe", None)
    assert choose_id("/cards/A/café.mov", nothing_stored) == ("cafe", None)


def test_a_new_source_takes_its_stem() -> None:
    assert choose_id("/cards/A/C0001.MP4", nothing_stored) == ("C0001", None)


def test_a_stem_another_source_has_gives_the_hashed_id() -> None:
    card_a = item_view("C0001", "/cards/A/C0001.MP4")

    chosen, existing = choose_id("/cards/B/C0001.MP4", {"C0001": card_a}.get)

    assert (chosen, existing) == (hashed_id("/cards/B/C0001.MP4"), None)


@pytest.mark.parametrize("under", ["stem", "hashed"])
def test_a_source_ingested_before_is_its_item_under_either_id(under: str) -> None:
    source = "/cards/B/C0001.MP4"
    item_id = "C0001" if under == "stem" else hashed_id(source)
    items = {"C0001": item_view("C0001", "/cards/A/C0001.MP4"), item_id: item_view(item_id, source)}

    assert choose_id(source, items.get) == (item_id, items[item_id])


def test_a_stem_planned_for_another_source_in_the_same_batch_is_taken() -> None:
    planned = {"C0001": "/cards/A/C0001.MP4"}

    assert choose_id("/cards/B/C0001.MP4", nothing_stored, planned=planned)[0] == hashed_id("/cards/B/C0001.MP4")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("a clip.mp4", "b.mp4"):
        (folder / name).write_bytes(b"x")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.mp4").write_bytes(b"x")
    return folder


def test_paths_become_items_with_stem_ids_and_absolute_sources(root: Path) -> None:
    sources = check_paths([str(root / "a clip.mp4"), str(root / "b.mp4")], [root])

    plan = plan_items(sources, nothing_stored, force_resume=True)

    assert [(item.id, item.source, item.force_resume) for item in plan.new] == [
        ("a_clip", str(root / "a clip.mp4"), True), ("b", str(root / "b.mp4"), True)]
    assert plan.ids == ("a_clip", "b") and plan.existing == ()


def test_two_paths_with_the_same_stem_become_two_items(root: Path) -> None:
    sources = check_paths([str(root / "b.mp4"), str(root / "sub" / "b.mp4")], [root])

    plan = plan_items(sources, nothing_stored)

    assert [item.id for item in plan.new] == ["b", hashed_id(str(root / "sub" / "b.mp4"))]


def test_a_path_given_twice_is_one_item(root: Path) -> None:
    plan = plan_items(check_paths([str(root / "b.mp4"), str(root / "b.mp4")], [root]), nothing_stored)

    assert [item.id for item in plan.new] == ["b"] and plan.ids == ("b",)


def test_a_path_ingested_before_is_its_stored_item(root: Path) -> None:
    item = item_view("b", str(root / "b.mp4"))

    plan = plan_items(check_paths([str(root / "b.mp4")], [root]), {"b": item}.get)

    assert (plan.new, plan.existing, plan.ids) == ((), (item,), ("b",))


def test_prefix_is_put_before_derived_ids(root: Path) -> None:
    plan = plan_items(check_paths([str(root / "b.mp4")], [root]), nothing_stored, prefix="DEMO-")

    assert [item.id for item in plan.new] == ["DEMO-b"]


def test_explicit_id_is_used_for_one_path(root: Path) -> None:
    sources = check_paths([str(root / "b.mp4")], [root], item_id="LF1409")

    assert plan_items(sources, nothing_stored, item_id="LF1409").new[0].id == "LF1409"


def test_explicit_id_with_two_paths_is_refused(root: Path) -> None:
    with pytest.raises(UsageError, match="--id"):
        check_paths([str(root / "a clip.mp4"), str(root / "b.mp4")], [root], item_id="LF1409")


def test_malformed_explicit_id_is_refused(root: Path) -> None:
    with pytest.raises(InvalidItemId):
        check_paths([str(root / "b.mp4")], [root], item_id="no spaces")


def test_path_outside_the_media_roots_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")

    with pytest.raises(InvalidSource, match="outside the media roots"):
        check_paths([str(outside)], [root])


def test_missing_file_is_refused(root: Path) -> None:
    with pytest.raises(InvalidSource, match="no such file"):
        check_paths([str(root / "gone.mp4")], [root])


def test_a_home_folder_of_no_user_is_refused(root: Path) -> None:
    # The CLI expands ``~`` as a shell would; the API takes absolute paths only (tests/web/test_controls.py).
    with pytest.raises(InvalidSource, match="cannot expand the home folder"):
        check_paths(["~nosuchuser-autolog/clip.mov"], [root])


def test_s3_sources_are_not_checked_on_disk(root: Path) -> None:
    plan = plan_items(check_paths(["s3://bucket/key/LF1.mov"], [root]), nothing_stored)

    assert plan.new[0].id == "LF1"


def test_a_folder_is_walked_for_its_footage_files_and_two_cards_clips_become_two_items(root: Path) -> None:
    cards = root / "cards"
    for card in ("A", "B"):
        clips = cards / card / "PRIVATE" / "M4ROOT" / "CLIP"
        clips.mkdir(parents=True)
        (clips / "C0001.MP4").write_bytes(b"x")
        (clips / "C0001M01.XML").write_text("<sidecar/>")
        (clips / "._C0001.MP4").write_bytes(b"resource fork")
    (cards / "A" / "SOUND.wav").write_bytes(b"x")
    (cards / ".Trashes").mkdir()
    (cards / ".Trashes" / "old.mp4").write_bytes(b"x")

    sources = check_paths([str(cards)], [root])
    plan = plan_items(sources, nothing_stored)

    a, b = (str(cards / card / "PRIVATE" / "M4ROOT" / "CLIP" / "C0001.MP4") for card in ("A", "B"))
    assert sources == [str(cards / "A" / "SOUND.wav"), a, b]
    assert [item.id for item in plan.new] == ["SOUND", "C0001", hashed_id(b)]


def test_a_folder_without_footage_is_refused_and_so_is_an_id_for_a_folder(root: Path) -> None:
    (root / "empty" / "sub").mkdir(parents=True)
    (root / "empty" / "notes.txt").write_text("x")

    with pytest.raises(InvalidSource, match="a folder with no footage files"):
        check_paths([str(root / "empty")], [root])
    with pytest.raises(UsageError, match="--id names one file"):
        check_paths([str(root / "sub")], [root], item_id="LF1")


def test_a_file_linked_into_a_folder_from_outside_the_roots_refuses_the_whole_folder(
    root: Path, tmp_path: Path,
) -> None:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    (root / "sub" / "link.mp4").symlink_to(outside)

    with pytest.raises(InvalidSource, match="outside the media roots"):
        check_paths([str(root / "sub")], [root])
