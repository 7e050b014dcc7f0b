"""An item's source clock: frame numbers, spellings and labels, against the tests' own SMPTE oracle."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest

from autolog.exports.timing import SourceClock, frames_per_day, spell_timecode
from tests.unit.exports.timecodes import smpte_frames


@pytest.mark.parametrize(("rate", "start", "drop"), [
    ("30000/1001", "01:00:00;00", True), ("30000/1001", "01:00:00:00", False), ("25", "10:00:00:00", False),
    ("60000/1001", "00:59:59;58", True), ("24000/1001", "00:00:00:00", False),
])
def test_the_start_frame_is_the_smpte_count_of_the_start_timecode(rate: str, start: str, drop: bool) -> None:
    clock = SourceClock.of(rate, start)

    assert (clock.drop_frame, clock.start_timecode) == (drop, start)
    assert clock.start_frame == smpte_frames(start, round(Fraction(rate)), drop=drop)


def test_drop_frame_spelling_agrees_with_the_oracle_over_a_day() -> None:
    rate = Fraction(30000, 1001)
    for frame in range(0, frames_per_day(rate, True), 1_799):
        spelled = spell_timecode(frame, rate, True)
        assert smpte_frames(spelled, 30, drop=True) == frame, spelled


def test_opentimelineio_spells_the_label_rate_as_the_clock_does() -> None:
    # A non-drop 29.97 clock is spelled at 30: OpenTimelineIO would call 29.97 drop-frame
    for rate, start in (("30000/1001", "01:00:00;00"), ("30000/1001", "01:00:00:00"), ("25", "10:00:00:00")):
        clock = SourceClock.of(rate, start)
        for frame in range(clock.start_frame, clock.start_frame + 20_000, 997):
            assert otio.opentime.to_timecode(otio.opentime.RationalTime(frame, clock.label_rate),
                                             clock.label_rate) == clock.timecode(frame)


def test_a_clip_crossing_midnight_counts_on() -> None:
    clock = SourceClock.of("50", "23:59:59:00")

    end = clock.frame_at(2.0)

    assert end - clock.start_frame == 100
    assert clock.timecode(end) == "00:00:01:00"


@pytest.mark.parametrize(("rate", "label"), [("24000/1001", "23.976"), ("24", "24"), ("25", "25"),
                                             ("30000/1001", "29.97"), ("50", "50"), ("60000/1001", "59.94")])
def test_the_ale_fps_label_is_avids(rate: str, label: str) -> None:
    assert SourceClock.of(rate, None).fps_label == label


def test_an_item_stored_before_source_facts_counts_at_its_probed_rate_from_zero() -> None:
    clock = SourceClock.of(None, None, {"fps": 23.976})

    assert (clock.rate, clock.start_timecode, clock.start_frame) == (Fraction(24000, 1001), "00:00:00:00", 0)
