"""Non-drop-frame timecode from seconds."""

from __future__ import annotations

import pytest

from autolog.media import to_timecode


def test_zero_seconds_is_the_first_frame() -> None:
    # Given the start of a clip, When it is formatted, Then all fields are zero
    assert to_timecode(0.0, 25.0) == "00:00:00:00"


def test_one_second_at_25_fps_is_one_second_and_no_frames() -> None:
    assert to_timecode(1.0, 25.0) == "00:00:01:00"


def test_hours_minutes_seconds_and_frames_are_split_out() -> None:
    # Given 1 h 1 min 1.5 s at 25 fps (frame 91537.5, a tie that stays on the earlier frame)
    # When formatted, Then half a second is frame 12
    assert to_timecode(3661.5, 25.0) == "01:01:01:12"


def test_a_time_rounds_to_the_nearest_frame() -> None:
    # Given 0.03 s at 25 fps (0.75 of a frame), When formatted, Then it is frame 1
    assert to_timecode(0.03, 25.0) == "00:00:00:01"


def test_29_97_fps_counts_frames_at_the_nominal_30() -> None:
    # Given one second at 29.97 fps (29.97 frames, nearest frame 30)
    # When formatted, Then frame 30 rolls over into the seconds field
    assert to_timecode(1.0, 29.97) == "00:00:01:00"


def test_29_97_fps_non_drop_frame_timecode_drifts_behind_the_clock() -> None:
    # Given one minute at 29.97 fps (1798 frames)
    # When formatted with the nominal rate of 30, Then it reads 59 s 28 frames, as NDF does
    assert to_timecode(60.0, 29.97) == "00:00:59:28"


def test_negative_seconds_are_refused() -> None:
    with pytest.raises(ValueError, match="seconds"):
        to_timecode(-0.5, 25.0)


@pytest.mark.parametrize("fps", [0.0, -25.0])
def test_a_frame_rate_that_is_not_positive_is_refused(fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        to_timecode(1.0, fps)
