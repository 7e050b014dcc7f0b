"""Helpers for the picture tests: run steps 2-3's media work, decode references, compare pixels."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from autolog.media import (
    ProbeResult,
    Scene,
    detect_scenes,
    extract_frames,
    make_contact_sheet,
    make_poster,
    poster_time_s,
    probe_media,
)
from tests.ffmpeg_runs import FFMPEG

Pixels = npt.NDArray[np.float64]

#: JPEG at quality 3 against a lossless decode of the same frame: a few levels on average.
SAME_PICTURE = 8.0


def shots(
    *sources: str, rate: str = "25", seconds: float = 2.0, size: str = "320x240", then: str = "",
    more_inputs: tuple[str, ...] = (),
) -> list[str]:
    """Return ffmpeg arguments for lavfi shots joined by hard cuts, as ``[v]`` for ``-map``.

    ``then`` is a filter chain applied after the join; ``more_inputs`` are input options
    placed after the shots' inputs (their first input's index is ``len(sources)``).
    """
    args: list[str] = []
    for source in sources:
        args += ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate},trim=duration={seconds}"]
    joined = "".join(f"[{index}:v]" for index in range(len(sources)))
    graph = f"{joined}concat=n={len(sources)}:v=1:a=0" + (f",{then}" if then else "") + "[v]"
    return [*args, *more_inputs, "-filter_complex", graph, "-map", "[v]"]


@dataclass(frozen=True)
class Pictures:
    """Every image steps 2-3 make for a clip, with the probe and the shots."""

    probe: ProbeResult
    scenes: list[Scene]
    samples: list[Path]
    poster_s: float
    poster: Path
    sheet: Path


def make_pictures(clip: Path, out: Path, *, min_shot_s: float = 0.5) -> Pictures:
    """Do steps 2-3's media work on a clip, as ``autolog.steps`` does."""
    probe = probe_media(clip)
    scenes = detect_scenes(clip, probe, min_shot_s=min_shot_s)
    samples = extract_frames(clip, probe, scenes, out / "samples")
    poster_s = poster_time_s(probe)
    poster = make_poster(clip, probe, out / "poster.jpg", at_s=poster_s)
    sheet = make_contact_sheet(clip, probe, out / "contact_sheet.jpg")
    return Pictures(probe=probe, scenes=scenes, samples=samples, poster_s=poster_s, poster=poster, sheet=sheet)


def reference_frame(clip: Path, probe: ProbeResult, at_s: float, out: Path) -> Pixels:
    """Decode the clip from its start to ``at_s`` (no seeking) and return the frame nearest it.

    ``at_s`` is clip time: container time less the probe's ``start_time_s``. ffmpeg's own
    rotation applies (a player's view); no other picture filter does.
    """
    assert probe.video_stream_index is not None
    select = f"select='gte(t,{probe.start_time_s + at_s - 0.5 / probe.fps:.6f})'"
    subprocess.run([*FFMPEG, "-copyts", "-i", str(clip), "-map", f"0:{probe.video_stream_index}", "-vf", select,
                    "-frames:v", "1", str(out)], check=True, capture_output=True)
    return pixels(out)


def pixels(path: Path, *, size: tuple[int, int] | None = None) -> Pixels:
    """Return an image's RGB values (0-255), resized to ``size`` if given."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        if size is not None and rgb.size != size:
            rgb = rgb.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.float64)


def image_size(path: Path) -> tuple[int, int]:
    """Return an image's width and height."""
    with Image.open(path) as image:
        return image.size


def difference(first: Pixels, second: Pixels) -> float:
    """Return the mean absolute difference of two same-sized images (0-255)."""
    assert first.shape == second.shape, f"{first.shape} != {second.shape}"
    return float(np.abs(first - second).mean())


def combing(image: Pixels) -> float:
    """Return the share of pixels where a line zig-zags against both its neighbours.

    Woven fields of a moving picture alternate line by line: each line differs from the
    line above and the line below in the same direction, by much. A progressive picture
    (or one properly deinterlaced) almost never does.
    """
    grey = image @ np.array([0.299, 0.587, 0.114])
    above = grey[1:-1] - grey[:-2]
    below = grey[1:-1] - grey[2:]
    zigzag = (above * below > 0) & (np.abs(above) > 40) & (np.abs(below) > 40)
    return float(zigzag.mean())
