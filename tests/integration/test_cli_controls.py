"""The operator's controls on the command line: ingest with Redis down, status filters, uncancel, rerun, delete."""

from __future__ import annotations

import json
import os
import pty
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from autolog.local_redis import free_port
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem, Store
from ops.cli import main
from tests.conftest import SampleClips, one_line_error


def test_ingest_with_redis_down_stores_defers_and_exits_0_with_a_warning(
    test_media: SampleClips, cli_store: Store,
) -> None:
    clip = test_media.path("cuts_noaudio.mp4")
    # A fresh process: the broker is built from REDIS_URL when ``actors`` is first imported.
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}

    done = subprocess.run([sys.executable, "-m", "ops", "ingest", str(clip)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"stored cuts_noaudio {clip}\n"
    assert "1 item(s) stored, not yet queued" in done.stderr
    events = [event.event for event in cli_store.timeline.for_item("cuts_noaudio")]
    assert events == ["created", "queue_deferred"]


def test_ingest_with_redis_down_on_a_terminal_prints_no_json_log_line(
    test_media: SampleClips, cli_store: Store,
) -> None:
    clip = test_media.path("cuts_audio.mp4")
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    env.pop("AUTOLOG_LOG_FORMAT", None)
    leader, terminal = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "ops", "ingest", str(clip)], env=env, stdout=subprocess.PIPE,
                              stderr=terminal, text=True, timeout=60, check=False)
        os.close(terminal)
        shown = _read_all(leader)
    finally:
        os.close(leader)

    assert done.returncode == 0, shown
    lines = shown.splitlines()
    assert lines[-1] == ("autolog: warning: 1 item(s) stored, not yet queued (Redis unavailable or the store slow:"
                         " see each item's queue_deferred event); a worker's outbox relay queues them")
    assert not any(line.lstrip().startswith("{") for line in lines), shown


def _read_all(leader: int) -> str:
    """Everything written to a pseudo-terminal whose other end is closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the other end is closed and nothing is left
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_ingest_wait_piped_prints_the_queued_line_on_its_own_line_before_the_progress(
    test_media: SampleClips, cli_store: Store,
) -> None:
    clip = test_media.path("speech.mp4")

    # stdout and stderr into one pipe, as `autolog ingest X --wait 2>&1 | tail` has them (Python buffering a pipe)
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-m", "ops", "ingest", str(clip), "--wait", "--timeout", "0.2"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, check=False)

    lines = done.stdout.splitlines()
    assert lines[0] == f"queued speech {clip}", done.stdout
    assert lines[1].startswith("[") and lines[1].endswith("speech 0 - Pending File Info"), done.stdout


def test_status_filters_by_status_and_id_pattern_and_pages(
    cli_store: Store, capsys: pytest.CaptureFixture[str],
) -> None:
    cli_store.items.create([NewItem(id=f"LF{number}", source=f"/m/{number}.mp4") for number in range(1, 6)]
                           + [NewItem(id="OTHER_1", source="/m/o.mp4")])
    assert cli_store.items.transition("LF2", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)

    assert main(["status", "--json", "--match", "LF*", "--status", "0", "--limit", "2"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["status", "--json", "--match", "LF*", "--status", "0", "--limit", "2",
                 "--after", first["next_after"]]) == 0
    second = json.loads(capsys.readouterr().out)

    assert [item["id"] for item in first["items"]] == ["LF1", "LF3"]
    assert [item["id"] for item in second["items"]] == ["LF4", "LF5"]
    assert first["counts"] == {"0 - Pending File Info": 4, "1 - File Info Complete": 1}
    assert main(["status", "--match", "OTHER_?"]) == 0
    assert "OTHER_1" in capsys.readouterr().out
    assert main(["status", "--status", "9"]) == 2
    assert "--status: expected a status's value, number or label" in one_line_error(capsys)


def test_status_lists_failed_items_reads_status_prefixes_and_its_next_page_keeps_the_filters(
    cli_store: Store, capsys: pytest.CaptureFixture[str],
) -> None:
    cli_store.items.create([NewItem(f"FX{number}", f"/m/{number}.mp4") for number in range(1, 5)])
    for number in (1, 2, 3):
        cli_store.items.update(f"FX{number}", dead_lettered=True, error={"step": "probe", "permanent": False})

    assert main(["status", "--failed", "--status", "pend", "--match", "FX*", "--limit", "2"]) == 0
    out = capsys.readouterr().out

    assert "FX1" in out and "FX2" in out and "FX3" not in out and "FX4" not in out
    more = out.rstrip().splitlines()[-1]
    assert more == "more: autolog status --after FX2 --status pend --match 'FX*' --failed --limit 2"
    assert main(shlex.split(more.removeprefix("more: autolog "))) == 0
    second = capsys.readouterr().out
    assert "FX3" in second and "FX2" not in second and "FX4" not in second
    assert main(["status", "--dead-lettered", "--json"]) == 0
    assert [item["id"] for item in json.loads(capsys.readouterr().out)["items"]] == ["FX1", "FX2", "FX3"]


def test_cancel_uncancel_rerun_and_delete_on_the_command_line(
    cli_store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path, pool_settings: Settings,
) -> None:
    source = pool_settings.resolved_media_roots[0] / "cli-controls" / "x.mp4"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(b"not really footage")
    cli_store.items.create([NewItem(id="LFX", source=str(source))])
    for before, after in ((Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE),
                          (Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE)):
        assert cli_store.items.transition("LFX", before, after)

    assert main(["cancel", "LFX"]) == 0
    assert main(["retry", "LFX"]) == 3
    assert "cancelled; uncancel it first" in one_line_error(capsys)
    assert main(["uncancel", "LFX"]) == 0
    assert "queued as job " in capsys.readouterr().out
    assert main(["uncancel", "LFX"]) == 3
    assert one_line_error(capsys) == "autolog: error: item 'LFX' is not cancelled\n"
    assert main(["rerun", "LFX", "--from", "file_info"]) == 3
    assert "a message for item 'LFX' is already in flight (job " in one_line_error(capsys)
    assert main(["delete", "LFX"]) == 0
    assert capsys.readouterr().out == "deleted LFX (0 artifact file(s) removed)\n"
    assert cli_store.items.list() == []

    # A finished item has nothing to cancel: said so, not pretended
    cli_store.items.create([NewItem(id="LFD", source="/m/d.mp4")])
    cli_store.items.update("LFD", status=Status.AVID_DESCRIPTION.value)
    assert main(["cancel", "LFD"]) == 3
    assert "item 'LFD' is finished (7 - Avid Description)" in one_line_error(capsys)
    assert cli_store.items.get("LFD").cancelled is False
    assert main(["delete", "LFD"]) == 0
    assert capsys.readouterr().out == "deleted LFD (0 artifact file(s) removed)\n"


def test_ingest_of_a_folder_queues_each_footage_file_under_it(
    test_media: SampleClips, cli_store: Store, capsys: pytest.CaptureFixture[str], unique_id: Callable[[str], str],
) -> None:
    card = test_media.root / unique_id("card") / "CLIP"
    card.mkdir(parents=True)
    os.link(test_media.path("cuts_audio.mp4"), card / "C0001.MP4")
    os.link(test_media.path("cuts_audio.mp4"), card / "C0002.ts")  # a transport stream, by name only here
    (card / "C0001M01.XML").write_text("<sidecar/>")
    (card / "C0002M01.XML").write_text("<sidecar/>")
    (card / "A001_C003.R3D").write_bytes(b"a format autolog does not read")

    assert main(["ingest", str(card.parent)]) == 0

    printed = capsys.readouterr()
    assert printed.out == f"queued C0001 {card / 'C0001.MP4'}\nqueued C0002 {card / 'C0002.ts'}\n"
    # What it left out is said, not dropped silently: a RED clip a team expected logged
    assert printed.err == (f"autolog: note: left out 3 file(s) under {card.parent} not named as footage or sound:"
                           " 2 .XML, 1 .R3D\n")
    assert [item.source for item in cli_store.items.list()] == [str(card / "C0001.MP4"), str(card / "C0002.ts")]


def test_queues_are_listed_paused_resumed_and_purged_on_the_command_line(
    cli_store: Store, capsys: pytest.CaptureFixture[str],
) -> None:
    from actors import broker, probe

    cli_store.items.create([NewItem(id="QA", source="/m/qa.mp4"), NewItem(id="QB", source="/m/qb.mp4")])
    for item_id in ("QA", "QB"):
        broker.enqueue(probe.message(item_id))
    capsys.readouterr()

    assert main(["queues", "pause", "step1_file_info", "--json"]) == 0
    [paused] = json.loads(capsys.readouterr().out)
    assert (paused["name"], paused["paused"], paused["held"], paused["queued"]) == ("probe", True, 2, 0)
    assert main(["queues", "resume", "probe"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["probe", "file_info", "2", "0", "0", "0", "0", "no"]
    assert main(["queues"]) == 0
    assert {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]} >= {"probe", "analysis", "control"}

    assert main(["queues", "purge", "probe"]) == 0
    assert capsys.readouterr().out == "purged 2 message(s) from probe; items marked purged: QA, QB\n"
    assert cli_store.items.get("QA").purged

    assert main(["queues", "purge"]) == 2
    assert "needs a queue name" in one_line_error(capsys)
    assert main(["queues", "pause", "nosuchqueue"]) == 2
    assert "nosuchqueue" in one_line_error(capsys)
