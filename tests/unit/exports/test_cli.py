"""``autolog export`` in-process, on the store the environment names."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import opentimelineio as otio
import pycmx
import pytest

from autolog.statuses import Status
from autolog.store import Store
from ops.cli import main
from tests.conftest import one_line_error
from tests.unit.exports.logged import Clip, log_clip


@pytest.fixture
def logged(cli_store: Store) -> Store:
    """The CLI's store with a 29.97 drop-frame item, a 25 fps item and one still in the pipeline."""
    log_clip(cli_store, Clip("DF1"))
    log_clip(cli_store, Clip("MX25", rate="25", start_timecode="10:00:00:00"))
    log_clip(cli_store, Clip("WIP1"), status=Status.AWAITING_USER_INPUT)
    return cli_store


def test_an_ale_of_one_item_is_written_to_a_file(logged: Store, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "exports").mkdir()
    out = tmp_path / "exports" / "DF1.ale"

    code = main(["export", "ale", "DF1", "--shots", "-o", str(out)])

    assert code == 0
    assert capsys.readouterr().err == f"wrote 1 item to {out}\n"
    clips = list(otio.adapters.read_from_string(out.read_text(), adapter_name="ale").find_clips())
    assert [otio.opentime.to_timecode(clip.source_range.start_time, 30000 / 1001) for clip in clips] == [
        "01:00:00;00", "01:00:00;00", "01:00:02;15"]
    assert list(out.parent.iterdir()) == [out]


def test_a_csv_of_a_status_goes_to_stdout(logged: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", "csv", "--status", Status.AVID_DESCRIPTION.value, "--query", "mx"])

    assert code == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(row["item_id"], row["timecode"]) for row in rows] == [
        ("MX25", frame.timecode) for frame in logged.results.frames("MX25")]


def test_an_edl_of_one_item_goes_to_stdout(logged: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "edl", "MX25"]) == 0

    edits = [edit for event in pycmx.parse_cmx3600(io.StringIO(capsys.readouterr().out)).events
             for edit in event.edits]
    assert edits[0].source_in == "10:00:00:00"


@pytest.mark.parametrize(("argv", "message", "exit_code"), [
    (["export", "edl", "DF1", "MX25"], "edl exports one item: give exactly one ID and no filters", 2),
    (["export", "docx", "DF1"], "no item export format 'docx'; formats: ale, markers, edl", 2),
    # A selection the items' state cannot serve is a conflict (409 in the API), not bad input.
    (["export", "ale"], "an ALE holds one frame rate and this selection has several", 3),
    (["export", "srt", "WIP1"], "'WIP1' is at 'Awaiting User Input'", 3),
    (["export", "csv", "DF1", "NOPE"], "no item 'NOPE'", 2),
])
def test_what_cannot_be_exported_exits_2_or_3_with_one_line(logged: Store, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str], argv: list[str],
                                                            message: str, exit_code: int) -> None:
    (tmp_path / "exports").mkdir()

    code = main([*argv, "-o", str(tmp_path / "exports" / "out")])

    assert code == exit_code
    assert message in one_line_error(capsys)
    assert list((tmp_path / "exports").iterdir()) == []


def test_an_output_file_in_a_folder_that_does_not_exist_exits_2_with_one_line(
    logged: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "no such folder" / "day1.ale"

    code = main(["export", "ale", "DF1", "-o", str(out)])

    assert code == 2
    assert f"cannot write {out}: No such file or directory" in one_line_error(capsys)
    assert not out.parent.exists()
