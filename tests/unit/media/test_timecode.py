"""Frame timecodes: the start timecode plus the frame offset at the nominal rate (SMPTE ST 12-1)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from autolog.media import frame_timecode
from autolog.media.timecode import normalise_timecode, parse_rate


def test_zero_seconds_is_the_start_timecode() -> None:
    assert frame_timecode("00:00:00:00", "25", 0.0) == "00:00:00:00"
    assert frame_timecode("10:00:00:00", "25", 0.0) == "10:00:00:00"


def test_hours_minutes_seconds_and_frames_are_added_to_the_start() -> None:
    # Given 1 h 1 min 1.5 s at 25 fps (frame 91537.5, a tie that stays on the earlier frame)
    assert frame_timecode("10:00:00:00", "25", 3661.5) == "11:01:01:12"


def test_a_time_rounds_to_the_nearest_frame() -> None:
    # 0.03 s at 25 fps is 0.75 of a frame: frame 1
    assert frame_timecode("00:00:00:00", "25", 0.03) == "00:00:00:01"


@pytest.mark.parametrize(("seconds", "expected"), [(30.03, "01:00:30;00"), (60.06, "01:01:00;02"),
                                                   (65.032, "01:01:05;01")])
def test_29_97_drop_frame_skips_two_frame_numbers_each_minute(seconds: float, expected: str) -> None:
    # The truth of footage case 03 (a camera MOV starting at 01:00:00;00)
    assert frame_timecode("01:00:00;00", "30000/1001", seconds) == expected


def test_59_94_drop_frame_skips_four_frame_numbers_each_minute() -> None:
    # 60.06 s at 59.94 is frame 3600; the minute boundary drops ;00 to ;03
    assert frame_timecode("01:00:00;00", "60000/1001", 60.06) == "01:01:00;04"


def test_29_97_non_drop_frame_drifts_behind_the_clock() -> None:
    # One minute at 29.97 fps is 1798 frames: 59 s 28 frames when counted without drops
    assert frame_timecode("00:00:00:00", "30000/1001", 60.0) == "00:00:59:28"


@pytest.mark.parametrize(("rate", "seconds", "expected"), [
    ("24000/1001", 1.0, "00:00:01:00"), ("24", 2.5, "00:00:02:12"), ("50", 0.5, "00:00:00:25"),
    ("30", 0.8, "00:00:00:24"), ("30", 2.78, "00:00:02:23"),
])
def test_other_rates_count_at_their_nominal_rate(rate: str, seconds: float, expected: str) -> None:
    assert frame_timecode("00:00:00:00", rate, seconds) == expected


def test_timecode_wraps_at_24_hours() -> None:
    assert frame_timecode("23:59:59:24", "25", 0.04) == "00:00:00:00"


def test_a_semicolon_at_a_rate_without_drop_frame_is_read_as_non_drop() -> None:
    assert normalise_timecode("01:00:00;00", Fraction(25)) == "01:00:00:00"
    assert normalise_timecode("01:00:00.00", Fraction(30000, 1001)) == "01:00:00;00"


@pytest.mark.parametrize(("text", "rate"), [("29.97", Fraction(30000, 1001)), ("59.94", Fraction(60000, 1001)),
                                            ("23.976", Fraction(24000, 1001)), ("25", Fraction(25)),
                                            ("30000/1001", Fraction(30000, 1001))])
def test_decimal_ntsc_rates_are_the_exact_fractions(text: str, rate: Fraction) -> None:
    assert parse_rate(text) == rate


def test_negative_seconds_are_refused() -> None:
    with pytest.raises(ValueError, match="seconds"):
        frame_timecode("00:00:00:00", "25", -0.5)


@pytest.mark.parametrize("rate", ["0", "-25", "fast"])
def test_a_frame_rate_that_is_not_positive_is_refused(rate: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        frame_timecode("00:00:00:00", rate, 1.0)


@pytest.mark.parametrize("start", ["1:00:00:00", "01:00:00:25", "01:60:00:00", "soon"])
def test_a_malformed_start_timecode_is_refused(start: str) -> None:
    with pytest.raises(ValueError, match="timecode"):
        frame_timecode(start, "25", 1.0)
