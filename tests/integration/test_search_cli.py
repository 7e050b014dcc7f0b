"""``autolog search``: the matching items in a table or as JSON, and a clear error for a blank query."""

from __future__ import annotations

import json

import pytest

from autolog.statuses import Status
from autolog.store import Store
from ops.cli import main
from tests.conftest import one_line_error
from tests.search_items import FILLER, log_item


@pytest.fixture
def logged(cli_store: Store) -> Store:
    for number, (description, words) in enumerate(FILLER):
        log_item(cli_store, f"FILL{number}", descriptions=[description], speech=[(0.5, words)])
    log_item(cli_store, "REEDS", descriptions=["a heron in the reeds"], status=Status.AVID_DESCRIPTION)
    log_item(cli_store, "EGRET", descriptions=["an egret and a heron"], speech=[(0.5, "a heron, look")])
    return cli_store


def test_search_prints_the_best_matches_with_their_context(logged: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["search", "heron"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].split() == ["ID", "STATUS", "FIELD", "TIMECODE", "MATCH"]
    assert lines[1].startswith("EGRET") and "[heron]" in lines[1]
    assert lines[2].startswith("REEDS") and "a [heron] in the reeds" in lines[2]
    assert lines[3] == "1-2 of 2 items for 'heron'"


def test_search_pages_filters_and_prints_json(logged: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "heron", "--limit", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1-1 of 2 items for 'heron'; next page: --offset 1"

    assert main(["search", "heron", "--status", Status.AVID_DESCRIPTION.value, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["total"], [hit["item_id"] for hit in document["hits"]]) == (1, ["REEDS"])


def test_a_search_matching_nothing_says_so(logged: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", '"NEAR(" -*']) == 0
    assert capsys.readouterr().out.splitlines() == ["no items match", "0 of 0 items for '\"NEAR(\" -*'"]


def test_a_blank_query_exits_2_with_the_reason(logged: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "  "]) == 2
    assert "blank" in one_line_error(capsys)


@pytest.mark.parametrize("option", [["--limit", "0"], ["--offset", "-1"], ["--status", "done"]])
def test_bad_options_exit_2(logged: Store, option: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "heron", *option]) == 2
    assert option[0] in capsys.readouterr().err
