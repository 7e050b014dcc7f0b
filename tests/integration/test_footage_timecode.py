"""Source timecode through the whole pipeline: real workers, real ffmpeg, the footage cases' truth."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

from autolog.context import Context
from tests.conftest import FootageCases, log_through_pipeline
from tests.ffmpeg_runs import H264, make_clip
from tests.unit.exports.timecodes import ndf_timecode, smpte_frames

Drain = Callable[..., None]


def logged_frames(context: Context, drain: Drain, path: Path, item_id: str) -> list[tuple[float, str]]:
    """Run one clip through every step and return its frame records' (time, timecode)."""
    log_through_pipeline(context, drain, path, item_id)
    return [(frame.time_s, frame.timecode) for frame in context.store.results.frames(item_id)]


def test_a_drop_frame_camera_mov_is_logged_at_its_source_timecode(
    context: Context, footage_cases: FootageCases, drain: Drain, unique_id: Callable[[str], str],
) -> None:
    # Given a 29.97 fps camera MOV whose tmcd track starts at 01:00:00;00, cut at 60.06 s
    truth = footage_cases.truth["03_ntsc_df_tc.mov"]
    item_id = unique_id("df")

    # When it is logged
    frames = logged_frames(context, drain, footage_cases.path("03_ntsc_df_tc.mov"), item_id)

    # Then the item carries the source facts, and each frame's timecode counts drop-frame from the start
    item = context.store.items.get(item_id)
    assert (item.start_timecode, item.drop_frame, item.nominal_fps) == (
        truth["start_timecode"], True, truth["nominal_fps"])
    examples = truth["timecode_examples"]
    assert len(frames) == 2
    for (time_s, timecode), example_s in zip(frames, ("30.03", "65.032"), strict=True):
        assert time_s == pytest.approx(float(example_s), abs=1 / 29.97)
        assert timecode == examples[example_s]


def test_a_variable_frame_rate_phone_clip_counts_at_its_nominal_rate(
    context: Context, footage_cases: FootageCases, drain: Drain, unique_id: Callable[[str], str],
) -> None:
    frames = logged_frames(context, drain, footage_cases.path("02_vfr_lowlight.mp4"), unique_id("vfr"))

    assert frames, "no frame records"
    for time_s, timecode in frames:
        assert timecode == ndf_timecode(round(time_s * 30), 30)


@pytest.mark.parametrize(("rate", "start"), [
    ("24000/1001", "00:59:50:00"), ("25", "10:00:00:00"), ("50", "23:59:59:00"), ("60000/1001", "01:00:00;00"),
])
def test_other_rates_and_starts_are_logged_from_their_timecode_track(
    context: Context, session_dir: Path, drain: Drain, unique_id: Callable[[str], str], rate: str, start: str,
) -> None:
    # Given a 2 s camera MOV at another rate with a timecode track (one shot: its frame sits near 1 s)
    path = session_dir / "media" / f"{unique_id('tc')}.mov"
    make_clip(path, "-f", "lavfi", "-i", f"testsrc=size=96x72:rate={rate},trim=duration=2", *H264, "-timecode", start)
    item_id = unique_id("rate")

    # When it is logged
    (time_s, timecode), = logged_frames(context, drain, path, item_id)

    # Then the frame's timecode is the start plus round(t * rate) frames, counted at the integer
    # rate (no minute boundary is crossed, so drop-frame counts the same), wrapping at 24 h
    item = context.store.items.get(item_id)
    assert item.start_timecode == start
    nominal = round(Fraction(rate))
    start_frames = smpte_frames(start, nominal, drop=False)
    expected = ndf_timecode((start_frames + round(time_s * Fraction(rate))) % (24 * 3600 * nominal), nominal)
    separator = ";" if ";" in start else ":"
    assert timecode == expected[:8] + separator + expected[9:]
