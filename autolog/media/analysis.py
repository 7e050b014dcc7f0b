"""Frame analysis results, the analyzer interface, and an offline pixel analyzer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from autolog.media._fields import (
    read_float,
    read_int,
    read_mapping,
    read_optional_str,
    read_str,
    read_str_tuple,
)

if TYPE_CHECKING:
    from autolog.media import _pixels


@dataclass(frozen=True)
class FrameInput:
    """One sampled frame to analyze: its scene index, time in the clip and image file."""

    index: int
    time_s: float
    image: Path


@dataclass(frozen=True)
class FrameAnalysis:
    """What an analyzer says about one frame."""

    index: int
    description: str
    keywords: tuple[str, ...]
    shot_type: str | None = None
    subjects: tuple[str, ...] = ()
    #: Provider-specific measurements; JSON-able values only.
    descriptors: Mapping[str, object] = field(default_factory=dict)

    def asdict(self) -> dict[str, object]:
        """Return the fields as a JSON-able dict (tuples become lists)."""
        return {
            "index": self.index,
            "description": self.description,
            "keywords": list(self.keywords),
            "shot_type": self.shot_type,
            "subjects": list(self.subjects),
            "descriptors": dict(self.descriptors),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FrameAnalysis:
        """Rebuild a frame analysis from :meth:`asdict` output.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        return cls(
            index=read_int(data, "index"),
            description=read_str(data, "description"),
            keywords=read_str_tuple(data, "keywords"),
            shot_type=read_optional_str(data, "shot_type"),
            subjects=read_str_tuple(data, "subjects"),
            descriptors=read_mapping(data, "descriptors"),
        )


@dataclass(frozen=True)
class AnalysisResult:
    """All frames of one analysis run, with who did it and what it cost."""

    provider: str
    model: str
    frames: tuple[FrameAnalysis, ...]
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def asdict(self) -> dict[str, object]:
        """Return the fields as a JSON-able dict."""
        return {
            "provider": self.provider,
            "model": self.model,
            "frames": [frame.asdict() for frame in self.frames],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AnalysisResult:
        """Rebuild a result from :meth:`asdict` output.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        frames = data.get("frames", [])
        if not isinstance(frames, list | tuple) or not all(isinstance(item, Mapping) for item in frames):
            raise ValueError("field 'frames' must be a list of objects")
        return cls(
            provider=read_str(data, "provider"),
            model=read_str(data, "model"),
            frames=tuple(FrameAnalysis.from_dict(item) for item in frames),
            input_tokens=read_int(data, "input_tokens") if "input_tokens" in data else 0,
            output_tokens=read_int(data, "output_tokens") if "output_tokens" in data else 0,
            cost_usd=read_float(data, "cost_usd") if "cost_usd" in data else 0.0,
        )


class Analyzer(Protocol):
    """Describes sampled frames; implementations call a model or compute locally."""

    provider: str

    def analyze(self, frames: Sequence[FrameInput], prompt: str | None) -> AnalysisResult:
        """Return one ``FrameAnalysis`` per input frame, in input order."""
        ...


class LocalAnalyzer:
    """Describes frames from their pixels alone: colours, light, detail, change.

    It needs no network or key, and says so in every description; it cannot follow
    a prompt, and records ``"prompt_ignored": true`` when given one.
    """

    provider = "local"
    model = "autolog-local-1"

    def __init__(self, *, reason: str | None = None) -> None:
        """Create an analyzer; ``reason`` (e.g. "no Gemini key configured") goes in descriptions."""
        self._label = "Local pixel analysis, not Gemini" + (f" ({reason})" if reason else "")

    def analyze(self, frames: Sequence[FrameInput], prompt: str | None) -> AnalysisResult:
        """Measure each frame, comparing it with the frame before it in ``frames``.

        Raises:
            CorruptMedia: A frame image is missing or cannot be decoded.
        """
        # Imported here: numpy and Pillow cost about 25 MiB, and only the analysis step measures pixels.
        from autolog.media import _pixels

        results: list[FrameAnalysis] = []
        previous: _pixels.FloatImage | None = None
        for frame in frames:
            stats = _pixels.measure_image(frame.image)
            change = None if previous is None else _pixels.change_between(previous, stats.thumbnail)
            previous = stats.thumbnail
            results.append(self._describe(frame, stats, change, prompt_ignored=prompt is not None))
        return AnalysisResult(provider=self.provider, model=self.model, frames=tuple(results))

    def _describe(
        self, frame: FrameInput, stats: _pixels.PixelStats, change: float | None, *, prompt_ignored: bool
    ) -> FrameAnalysis:
        words = _Words.from_stats(stats, change)
        colour_names = [colour.name for colour in stats.colours if colour.share >= _MIN_NAMED_SHARE]
        look = ", ".join(word for word in (words.brightness, words.contrast) if word)
        sentence = f"{look} frame dominated by {_join_names(colour_names)}" if colour_names else f"{look} frame"
        clauses = [sentence, words.detail, words.colour]
        if words.change:
            clauses.append(words.change)
        description = f"{self._label}: " + "; ".join(clauses) + "."
        if prompt_ignored:
            description += " The prompt was not applied: a pixel analysis cannot follow one."
        keywords = [words.brightness, words.contrast, *colour_names, words.detail_keyword]
        keywords += [words.colour_keyword, words.change_keyword]
        descriptors: dict[str, object] = {
            "method": "local-pixel-analysis",
            "time_s": frame.time_s,
            "width": stats.width,
            "height": stats.height,
            "dominant_colours": [
                {"name": colour.name, "hex": colour.hex, "share": round(colour.share, 4)} for colour in stats.colours
            ],
            "brightness": round(stats.brightness, 4),
            "contrast": round(stats.contrast, 4),
            "sharpness": round(stats.sharpness, 2),
            "colourfulness": round(stats.colourfulness, 2),
            "change_from_previous": None if change is None else round(change, 4),
            "prompt_ignored": prompt_ignored,
        }
        return FrameAnalysis(
            index=frame.index,
            description=description,
            keywords=tuple(dict.fromkeys(word for word in keywords if word)),
            descriptors=descriptors,
        )


#: A colour must cover this share of the frame to be named in the description.
_MIN_NAMED_SHARE = 0.08


@dataclass(frozen=True)
class _Words:
    """Plain words for measured values; thresholds were set on the test patterns."""

    brightness: str
    contrast: str
    detail: str
    detail_keyword: str
    colour: str
    colour_keyword: str
    change: str
    change_keyword: str

    @classmethod
    def from_stats(cls, stats: _pixels.PixelStats, change: float | None) -> _Words:
        """Choose the words for one frame's measurements and its change from the last."""
        brightness = "dark" if stats.brightness < 0.3 else "bright" if stats.brightness > 0.6 else "mid-tone"
        contrast = "high-contrast" if stats.contrast > 0.25 else "low-contrast" if stats.contrast < 0.1 else ""
        if stats.sharpness >= 200:
            detail, detail_keyword = "sharp", "sharp"
        elif stats.sharpness < 50:
            detail, detail_keyword = "soft (little fine detail)", "soft"
        else:
            detail, detail_keyword = "moderate detail", ""
        if stats.colourfulness > 80:
            colour, colour_keyword = "very colourful", "colourful"
        elif stats.colourfulness < 20:
            colour, colour_keyword = "muted colour", "muted"
        else:
            colour, colour_keyword = "moderately colourful", ""
        if change is None:
            change_text, change_keyword = "", ""
        elif change >= 0.2:
            change_text, change_keyword = "strong change from the previous scene", "scene-change"
        elif change >= 0.08:
            change_text, change_keyword = "some change from the previous scene", ""
        else:
            change_text, change_keyword = "little change from the previous scene", "similar-to-previous"
        return cls(brightness, contrast, detail, detail_keyword, colour, colour_keyword, change_text, change_keyword)


def _join_names(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + f" and {names[-1]}"
