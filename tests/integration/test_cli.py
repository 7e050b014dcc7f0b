"""The ``autolog`` CLI in-process: its error paths, and one real ingest through worker pools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from autolog.item_ids import hashed_id
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem, Store
from ops.cli import main
from ops.pools import PoolManager
from tests.conftest import FootageCases, SampleClips, one_line_error

#: Pools the clip without audio needs: every step but transcription, and the callbacks.
NO_AUDIO_POOLS = ["file_info", "thumbnails", "assess", "analysis", "frames", "control"]


def test_ingest_outside_the_media_roots_exits_2_and_stores_nothing(
    tmp_path: Path, cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "LF1409.mp4"
    outside.write_bytes(b"not under a media root")

    code = main(["ingest", str(outside)])

    assert code == 2
    assert "outside the media roots" in one_line_error(capsys)
    assert cli_store.items.list() == []


def test_ingest_of_a_missing_file_exits_2_and_stores_nothing(
    session_dir: Path, cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ingest", str(session_dir / "media" / "no-such-clip.mp4")])

    assert code == 2
    assert "no such file" in one_line_error(capsys)
    assert cli_store.items.list() == []


def test_ingest_of_a_taken_id_exits_3_a_conflict_and_stores_nothing_more(
    test_media: SampleClips, cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = str(test_media.path("cuts_noaudio.mp4"))
    cli_store.items.create([NewItem(id="LF1409", source=clip)])

    code = main(["ingest", "--id", "LF1409", clip])

    assert code == 3
    assert "item 'LF1409' already exists" in one_line_error(capsys)
    assert [item.id for item in cli_store.items.list()] == ["LF1409"]


def test_two_cards_clips_with_one_name_become_two_items_and_ingesting_again_finds_them(
    footage_cases: FootageCases, cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    card_a = str(footage_cases.path("21_CARD_A/PRIVATE/M4ROOT/CLIP/C0001.MP4"))
    card_b = str(footage_cases.path("21_CARD_B/PRIVATE/M4ROOT/CLIP/C0001.MP4"))
    other_id = hashed_id(card_b)

    assert main(["ingest", card_a, card_b]) == 0
    assert capsys.readouterr().out == f"queued C0001 {card_a}\nqueued {other_id} {card_b}\n"

    assert main(["ingest", card_b]) == 0

    assert capsys.readouterr().out == f"exists {other_id} {card_b} (0 - Pending File Info)\n"
    assert {(item.id, item.source) for item in cli_store.items.list()} == {("C0001", card_a), (other_id, card_b)}


@pytest.mark.parametrize("argv", [["status", "nope"], ["prompt", "nope", "text"], ["resume", "nope"],
                                  ["retry", "nope"], ["cancel", "nope"]])
def test_unknown_id_exits_2(argv: list[str], cli_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert one_line_error(capsys) == "autolog: error: no item 'nope'\n"


def test_prompt_for_an_item_not_waiting_exits_3_a_conflict_with_the_reason(
    test_media: SampleClips, cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_store.items.create([NewItem(id="LF1409", source=str(test_media.path("cuts_noaudio.mp4")))])

    code = main(["prompt", "LF1409", "describe it"])

    assert code == 3
    reason = one_line_error(capsys)
    assert "item 'LF1409' is at '0 - Pending File Info'; this needs 'Awaiting User Input'" in reason
    assert "0 - Pending File Info" in reason and "Awaiting User Input" in reason
    assert cli_store.items.get("LF1409").status is Status.PENDING_FILE_INFO


def test_status_lists_items_and_counts_as_json(
    test_media: SampleClips, cli_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_store.items.create([NewItem(id=name, source=str(test_media.path("cuts_noaudio.mp4")))
                            for name in ("LF1", "LF2")])

    assert main(["status", "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert [item["id"] for item in document["items"]] == ["LF1", "LF2"]
    assert document["counts"] == {"0 - Pending File Info": 2}


@pytest.fixture
def pools(pool_settings: Settings) -> Iterator[PoolManager]:
    """Real worker pools for the steps of a clip without audio, stopped after the test."""
    manager = PoolManager(pool_settings)
    started = manager.start(NO_AUDIO_POOLS)
    assert all(pool.alive for pool in started)
    yield manager
    manager.stop(timeout_s=20)
    manager.close()


@pytest.mark.slow
def test_ingest_and_wait_runs_a_clip_to_avid_description_and_status_shows_its_frames(
    pools: PoolManager, test_media: SampleClips, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = test_media.path("cuts_noaudio.mp4")

    code = main(["ingest", "--force-resume", "--wait", "--timeout", "50", str(clip)])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == f"queued cuts_noaudio {clip}\n"
    assert captured.err.splitlines()[-1] == "[##########] 6/6 cuts_noaudio 7 - Avid Description"

    assert main(["status", "cuts_noaudio", "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["item"]["status"] == Status.AVID_DESCRIPTION.value
    assert document["frames"], "no frame records"
    assert all(frame["timecode"] and frame["description"] for frame in document["frames"])
    assert "succeeded" in {event["event"] for event in document["timeline"]}


@pytest.mark.slow
def test_ingest_and_wait_without_force_resume_says_how_to_go_on_at_the_prompt_stop(
    pools: PoolManager, test_media: SampleClips, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = test_media.path("cuts_noaudio.mp4")

    code = main(["ingest", "--wait", "--timeout", "50", "--id", "PROMPT1", str(clip)])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    *bars, hint = captured.err.splitlines()
    assert bars[-1] == "[#####-----] 3/6 PROMPT1 Awaiting User Input"
    assert hint.startswith("1 item(s) wait for a prompt after step 3: PROMPT1. Give one with"
                           " `autolog prompt PROMPT1 TEXT`")
