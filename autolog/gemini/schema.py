"""The JSON Gemini is asked for, and the checks its answer must pass.

Gemini is given :data:`RESPONSE_SCHEMA` as its response schema, which constrains what it
writes, but the answer is still checked field by field: a truncated or hand-edited answer,
or a model that ignores the schema, must fail the item with a message that says what is
wrong, not store half a log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from autolog.errors import MalformedAnalysis
from autolog.media.analysis import FrameAnalysis, FrameInput

#: Shot sizes an editor logs; offered to Gemini as an enum.
SHOT_TYPES: tuple[str, ...] = (
    "extreme close-up", "close-up", "medium close-up", "medium", "medium wide", "wide",
    "extreme wide", "insert", "aerial", "graphic", "other",
)

#: The response schema (JSON Schema subset that Gemini accepts): one entry per frame.
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "frames": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer", "description": "The frame index given with the image."},
                    "description": {"type": "string", "description": "One or two sentences for a footage log."},
                    "keywords": {"type": "array", "items": {"type": "string"}},
                    "shot_type": {"type": "string", "enum": list(SHOT_TYPES)},
                    "people": {"type": "array", "items": {"type": "string"},
                               "description": "People seen, described, never identified by name."},
                    "objects": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["index", "description", "keywords", "shot_type", "people", "objects"],
            },
        },
    },
    "required": ["frames"],
}

#: How much of a bad answer to quote in the error.
_EXCERPT_CHARS = 120


def parse_frames(text: str, frames: Sequence[FrameInput], *, provider: str = "gemini") -> tuple[FrameAnalysis, ...]:
    """Check Gemini's JSON answer and return one ``FrameAnalysis`` per input frame, in input order.

    Raises:
        MalformedAnalysis: the text is not JSON, a field is missing or has the wrong type,
            or the frame indexes are not exactly the ones sent.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as ex:
        raise MalformedAnalysis(f"{provider} output is not valid JSON ({ex.msg} at line {ex.lineno} column "
                                f"{ex.colno}): {_excerpt(text)}") from ex
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise MalformedAnalysis(f"{provider} output must be an object with a 'frames' list: {_excerpt(text)}")
    parsed: dict[int, FrameAnalysis] = {}
    times = {frame.index: frame.time_s for frame in frames}
    for position, entry in enumerate(data["frames"]):
        frame = _parse_entry(entry, f"{provider} output frames[{position}]", times)
        if frame.index in parsed:
            raise MalformedAnalysis(f"{provider} output describes frame {frame.index} twice")
        parsed[frame.index] = frame
    expected = [frame.index for frame in frames]
    missing = sorted(set(expected) - set(parsed))
    extra = sorted(set(parsed) - set(expected))
    if missing or extra:
        problems = [f"missing frames {missing}"] if missing else []
        problems += [f"unexpected frames {extra}"] if extra else []
        raise MalformedAnalysis(f"{provider} output has {' and '.join(problems)}; expected frames {expected}")
    return tuple(parsed[index] for index in expected)


def _parse_entry(entry: object, where: str, times: Mapping[int, float]) -> FrameAnalysis:
    if not isinstance(entry, dict):
        raise MalformedAnalysis(f"{where} must be an object, not {_type_name(entry)}")
    index = entry.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        raise MalformedAnalysis(f"{where}.index must be an integer, not {_type_name(index)}")
    description = _text(entry, "description", where)
    shot_type = _text(entry, "shot_type", where).lower()
    keywords = _strings(entry, "keywords", where)
    people = _strings(entry, "people", where)
    objects = _strings(entry, "objects", where)
    descriptors: dict[str, object] = {"method": "gemini", "people": list(people), "objects": list(objects)}
    if index in times:
        descriptors["time_s"] = times[index]
    return FrameAnalysis(
        index=index, description=description, keywords=tuple(dict.fromkeys(keywords)), shot_type=shot_type,
        subjects=tuple(dict.fromkeys((*people, *objects))), descriptors=descriptors,
    )


def _text(entry: Mapping[str, object], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedAnalysis(f"{where}.{key} must be a non-empty string, not {_type_name(value)}")
    return value.strip()


def _strings(entry: Mapping[str, object], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MalformedAnalysis(f"{where}.{key} must be a list of strings, not {_type_name(value)}")
    return tuple(item.strip() for item in value if item.strip())


def _type_name(value: object) -> str:
    if value is None:
        return "missing or null"
    if isinstance(value, str):
        return "a string" if value.strip() else "an empty string"
    if isinstance(value, list):
        return "a list with non-strings"
    return {"bool": "a boolean", "int": "an integer", "float": "a number",
            "dict": "an object"}.get(type(value).__name__, type(value).__name__)


def _excerpt(text: str) -> str:
    return repr(text[:_EXCERPT_CHARS] + ("…" if len(text) > _EXCERPT_CHARS else ""))
