"""Tool trouble (timeouts, missing executables) becomes ToolFailed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from autolog.errors import PermanentError, ToolFailed, TransientError
from autolog.media import detect_scenes, make_poster, probe_media
from autolog.media._run import first_error_line
from autolog.processes import pid_alive
from tests.conftest import wait_for

if TYPE_CHECKING:
    from tests.conftest import SampleClips


def timing_out_run(
    args: Sequence[str], *, capture_output: bool, timeout: float | None, check: bool
) -> subprocess.CompletedProcess[bytes]:
    """Behave like subprocess.run when the command overruns its timeout."""
    raise subprocess.TimeoutExpired(cmd=list(args), timeout=timeout or 0.0)


def missing_tool_run(
    args: Sequence[str], *, capture_output: bool, timeout: float | None, check: bool
) -> subprocess.CompletedProcess[bytes]:
    """Behave like subprocess.run when the executable is not installed."""
    raise FileNotFoundError(2, "No such file or directory", args[0])


def test_probe_timeout_raises_tool_failed_naming_the_tool(test_media: SampleClips) -> None:
    # Given a runner whose ffprobe always times out
    # When a clip is probed
    with pytest.raises(ToolFailed) as caught:
        probe_media(test_media.path("cuts_audio.mp4"), run=timing_out_run, timeout_s=5.0)

    # Then ToolFailed names ffprobe and the limit
    assert caught.value.tool == "ffprobe"
    assert caught.value.reason == "timed out after 5 s"


def test_missing_ffprobe_raises_tool_failed(test_media: SampleClips) -> None:
    # Given a runner that cannot find the executable, When a clip is probed, Then ToolFailed
    with pytest.raises(ToolFailed, match="not installed"):
        probe_media(test_media.path("cuts_audio.mp4"), run=missing_tool_run)


def test_scene_detection_timeout_raises_tool_failed(test_media: SampleClips) -> None:
    # Given a runner whose ffmpeg times out, When scenes are detected, Then ToolFailed
    with pytest.raises(ToolFailed, match="ffmpeg: timed out"):
        detect_scenes(test_media.path("cuts_audio.mp4"), probe_media(test_media.path("cuts_audio.mp4")),
                      run=timing_out_run)


def test_poster_timeout_raises_tool_failed_and_leaves_no_file(test_media: SampleClips, tmp_path: Path) -> None:
    # Given a runner whose ffmpeg times out
    # When a poster is made
    with pytest.raises(ToolFailed):
        make_poster(test_media.path("cuts_audio.mp4"), probe_media(test_media.path("cuts_audio.mp4")),
                    tmp_path / "poster.jpg", at_s=1.0, run=timing_out_run)

    # Then neither the poster nor a temporary file is left behind
    assert list(tmp_path.iterdir()) == []


def test_first_error_line_drops_ffmpeg_context_prefix() -> None:
    # Given ffmpeg stderr with a component prefix and a blank first line
    stderr = b"\n[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55c768a721c0] moov atom not found\nsecond line\n"

    # When the first line is read, Then only the message remains
    assert first_error_line(stderr) == "moov atom not found"


def killed_run(
    args: Sequence[str], *, capture_output: bool, timeout: float | None, check: bool
) -> subprocess.CompletedProcess[bytes]:
    """Start the real tool and SIGKILL it, as the OOM killer would."""
    process = subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.kill()
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(list(args), process.returncode, stdout, stderr)


def test_ffmpeg_killed_by_a_signal_is_a_transient_tool_failure_not_corrupt_media(test_media: SampleClips) -> None:
    clip = test_media.path("cuts_audio.mp4")

    # Given an ffmpeg killed mid-decode, When scenes are detected, Then the kill is named, not the footage
    with pytest.raises(ToolFailed, match="ffmpeg: killed by SIGKILL") as caught:
        detect_scenes(clip, probe_media(clip), run=killed_run)

    assert isinstance(caught.value, TransientError) and not isinstance(caught.value, PermanentError)


def test_killed_poster_render_is_a_tool_failure_and_leaves_no_file(test_media: SampleClips, tmp_path: Path) -> None:
    clip = test_media.path("cuts_audio.mp4")

    with pytest.raises(ToolFailed, match="killed by SIGKILL"):
        make_poster(clip, probe_media(clip), tmp_path / "poster.jpg", at_s=1.0, run=killed_run)

    assert list(tmp_path.iterdir()) == []


REPO = Path(__file__).resolve().parents[3]


def test_a_tool_dies_with_the_worker_that_started_it(tmp_path: Path) -> None:
    # Given a worker process running a long tool through run_process
    pid_file = tmp_path / "tool.pid"
    worker = subprocess.Popen([sys.executable, "-c", (
        "import sys; from autolog.media._run import run_process; "
        "run_process(['sh', '-c', 'echo $$ > \"$0\"; exec sleep 60', sys.argv[1]], "
        "capture_output=True, timeout=120, check=False)"), str(pid_file)], cwd=REPO)
    try:
        wait_for(lambda: pid_file.is_file() and pid_file.read_text().strip().isdigit(), what="the tool to start")
        tool = int(pid_file.read_text())
        assert pid_alive(tool)

        # When the worker is killed outright (kill -9, the OOM killer)
        worker.kill()
        worker.wait(timeout=30)

        # Then the tool does not run on as an orphan
        wait_for(lambda: not pid_alive(tool), timeout_s=10, what="the orphaned tool to be killed")
    finally:
        worker.kill()
        worker.wait(timeout=30)
