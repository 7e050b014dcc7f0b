"""Checks on Gemini's JSON answer: what passes, and what fails with which message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autolog.errors import MalformedAnalysis
from autolog.gemini import RESPONSE_SCHEMA, SHOT_TYPES, parse_frames
from autolog.media import FrameInput

FRAMES = [FrameInput(index=index, time_s=index + 0.5, image=Path(f"{index}.jpg")) for index in (0, 1, 2)]


def entry(number: int, **changes: Any) -> dict[str, Any]:
    base = {"index": number, "description": f"Frame {number}.", "keywords": ["a", "b"], "shot_type": "Wide",
            "people": ["a cyclist"], "objects": ["a bridge"]}
    return {**base, **changes}


def answer(*entries: object) -> str:
    return json.dumps({"frames": list(entries)})


def test_a_complete_answer_becomes_frames_in_input_order() -> None:
    text = answer(entry(2), entry(0), entry(1))

    frames = parse_frames(text, FRAMES)

    assert [frame.index for frame in frames] == [0, 1, 2]
    first = frames[0]
    assert (first.description, first.keywords, first.shot_type) == ("Frame 0.", ("a", "b"), "wide")
    assert first.subjects == ("a cyclist", "a bridge")
    assert first.descriptors == {"method": "gemini", "people": ["a cyclist"], "objects": ["a bridge"], "time_s": 0.5}


def test_the_schema_asks_for_every_field_the_parser_requires() -> None:
    item = RESPONSE_SCHEMA["properties"]["frames"]["items"]

    assert set(item["required"]) == {"index", "description", "keywords", "shot_type", "people", "objects"}
    assert item["properties"]["shot_type"]["enum"] == list(SHOT_TYPES)


@pytest.mark.parametrize(("text", "message"), [
    ('{"frames": [{"index": 0, "desc', "gemini output is not valid JSON (Unterminated string"),
    ("[]", "must be an object with a 'frames' list"),
    ('{"frames": {}}', "must be an object with a 'frames' list"),
    (answer(entry(0), entry(1)), "missing frames [2]; expected frames [0, 1, 2]"),
    (answer(entry(0), entry(1), entry(2), entry(7)), "unexpected frames [7]"),
    (answer(entry(0), entry(0), entry(1)), "describes frame 0 twice"),
    (answer(entry(0), entry(1), "frame two"), "frames[2] must be an object, not a string"),
    (answer(entry(0, index="0"), entry(1), entry(2)), "frames[0].index must be an integer, not a string"),
    (answer(entry(0, index=True), entry(1), entry(2)), "frames[0].index must be an integer, not a boolean"),
    (answer(entry(0), entry(1, description=""), entry(2)), "frames[1].description must be a non-empty string"),
    (answer(entry(0), entry(1), entry(2, keywords="a, b")), "frames[2].keywords must be a list of strings, not a"),
    (answer(entry(0), entry(1), entry(2, people=[1])), "frames[2].people must be a list of strings, not a list"),
    (answer(entry(0, objects=None), entry(1), entry(2)), "frames[0].objects must be a list of strings, not missing"),
])
def test_malformed_answers_fail_with_a_message_that_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(MalformedAnalysis) as caught:
        parse_frames(text, FRAMES)

    assert message in str(caught.value)


def test_a_long_bad_answer_is_quoted_only_in_part() -> None:
    text = "not json " * 100

    with pytest.raises(MalformedAnalysis) as caught:
        parse_frames(text, FRAMES)

    assert len(str(caught.value)) < 250
