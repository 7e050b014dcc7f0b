"""Argument parsing of the ``autolog`` command line."""

from __future__ import annotations

import pytest

from ops import commands, demo, stack
from ops.cli import DEFAULT_WAIT_TIMEOUT_S, main, parse_args


def test_ingest_takes_paths_and_flags() -> None:
    args = parse_args(["ingest", "a.mp4", "b.mp4", "--force-resume", "--wait", "--timeout", "30"])

    assert (args.paths, args.id, args.force_resume, args.wait, args.timeout) == (
        ["a.mp4", "b.mp4"], None, True, True, 30.0)
    assert args.handler is commands.ingest


def test_ingest_waits_ten_minutes_by_default() -> None:
    args = parse_args(["ingest", "a.mp4"])

    assert (args.wait, args.timeout) == (False, DEFAULT_WAIT_TIMEOUT_S)


def test_status_id_and_json_are_optional() -> None:
    assert (parse_args(["status"]).id, parse_args(["status"]).json) == (None, False)
    assert (parse_args(["status", "LF1409", "--json"]).id, parse_args(["status", "LF1409", "--json"]).json) == (
        "LF1409", True)


def test_workers_alone_lists_the_pools() -> None:
    args = parse_args(["workers"])

    assert (args.action, args.pools, args.handler) == ("status", [], stack.workers)
    assert (parse_args(["workers", "stop", "analysis"]).action, parse_args(["workers", "stop", "analysis"]).pools) == (
        "stop", ["analysis"])


@pytest.mark.parametrize(("argv", "handler"), [
    (["prompt", "LF1", "describe it"], commands.prompt),
    (["resume", "LF1"], commands.resume),
    (["retry", "LF1"], commands.retry),
    (["cancel", "LF1"], commands.cancel),
    (["force-resume-all"], commands.force_resume_all),
    (["up"], stack.up),
    (["down"], stack.down),
    (["demo", "--down"], demo.demo),
])
def test_each_command_has_its_handler(argv: list[str], handler: object) -> None:
    assert parse_args(argv).handler is handler


def test_workers_takes_an_action_and_optional_pools() -> None:
    args = parse_args(["workers", "stop", "file_info", "control", "--timeout", "5", "--json"])

    assert (args.action, args.pools, args.timeout, args.json) == ("stop", ["file_info", "control"], 5.0, True)
    assert parse_args(["workers", "status"]).pools == []


@pytest.mark.parametrize("argv", [[], ["bogus"], ["workers", "restart"], ["ingest"], ["prompt", "LF1"],
                                  ["ingest", "a.mp4", "--timeout", "0"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: autolog" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "force-resume-all" in capsys.readouterr().out


def test_id_with_two_paths_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--id", "LF1", "a.mp4", "b.mp4"]) == 2

    assert capsys.readouterr().err == "autolog: error: --id needs exactly one PATH\n"
