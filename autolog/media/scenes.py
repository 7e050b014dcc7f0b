"""Find hard cuts in one decode pass, and grab one frame per scene."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from autolog.errors import CorruptMedia
from autolog.media._fields import read_float, read_int
from autolog.media._render import render_image
from autolog.media._run import Runner, first_error_line, run_tool

#: Decoding may stop this many seconds short of the probed duration before the file
#: counts as corrupt (or ``_SHORTFALL_FRACTION`` of it, whichever is larger): audio and
#: video tracks routinely end a few frames apart.
_SHORTFALL_S = 0.5
_SHORTFALL_FRACTION = 0.05

_FRAME_PREFIX = "frame:"
_CUT_KEY = "lavfi.scd.time="


@dataclass(frozen=True)
class Scene:
    """A span of a clip between two hard cuts, with a representative time."""

    index: int
    start_s: float
    end_s: float
    sample_s: float

    def asdict(self) -> dict[str, object]:
        """Return the fields as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Scene:
        """Rebuild a scene from :meth:`asdict` output.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        return cls(
            index=read_int(data, "index"),
            start_s=read_float(data, "start_s"),
            end_s=read_float(data, "end_s"),
            sample_s=read_float(data, "sample_s"),
        )


def detect_scenes(
    path: Path,
    *,
    duration_s: float,
    fps: float,
    threshold: float = 10.0,
    run: Runner = subprocess.run,
    timeout_s: float = 1800.0,
) -> list[Scene]:
    """Split a clip into scenes at its hard cuts, proving it decodes to the end.

    One ffmpeg pass runs the ``scdet`` filter and prints every frame's metadata: the
    frames tagged ``lavfi.scd.time`` are cuts, and the last frame's time shows how far
    decoding got.

    Args:
        duration_s: The probed duration; the last scene ends here.
        fps: The probed frame rate, used to find where the last frame ends.
        threshold: scdet's score (0-100) above which a frame starts a new scene.

    Raises:
        CorruptMedia: ffmpeg failed, or decoding stopped well short of ``duration_s``.
        ToolFailed: ffmpeg is missing or timed out.
    """
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
        "-i", str(path),
        "-map", "0:v:0",
        "-vf", f"scdet=threshold={threshold:g},metadata=mode=print:file=-",
        "-f", "null", "-",
    ]  # fmt: skip
    completed = run_tool(command, run=run, timeout_s=timeout_s)
    if completed.returncode != 0:
        reason = first_error_line(completed.stderr)
        raise CorruptMedia(str(path), f"ffmpeg could not decode the video: {reason}")
    cuts_s, last_frame_s = parse_scdet_output(completed.stdout.decode("utf-8", errors="replace"))
    if last_frame_s is None:
        raise CorruptMedia(str(path), "no video frame decodes")
    decoded_s = last_frame_s + 1.0 / fps
    if duration_s - decoded_s > max(_SHORTFALL_S, _SHORTFALL_FRACTION * duration_s):
        raise CorruptMedia(str(path), f"decoding stopped at {decoded_s:.2f} s of {duration_s:.2f} s")
    return scenes_between_cuts(cuts_s, duration_s=duration_s)


def parse_scdet_output(text: str) -> tuple[list[float], float | None]:
    """Return the cut times and the last frame time from ``metadata=mode=print`` output.

    The output has a ``frame:N pts:P pts_time:T`` line per frame followed by its
    ``key=value`` tags; scdet adds ``lavfi.scd.time=T`` to frames that start a scene.
    """
    cuts_s: list[float] = []
    last_frame_s: float | None = None
    for line in text.splitlines():
        if line.startswith(_FRAME_PREFIX):
            for field in line.split():
                frame_s = _float_or_none(field.removeprefix("pts_time:"))
                if field.startswith("pts_time:") and frame_s is not None:
                    last_frame_s = frame_s
        elif line.startswith(_CUT_KEY):
            cut_s = _float_or_none(line.removeprefix(_CUT_KEY))
            if cut_s is not None:
                cuts_s.append(cut_s)
    return cuts_s, last_frame_s


def scenes_between_cuts(cuts_s: Sequence[float], *, duration_s: float) -> list[Scene]:
    """Return the scenes between cuts: the first starts at 0, the last ends at ``duration_s``.

    Cuts at or before 0, at or after ``duration_s``, or repeated are ignored.
    """
    inner = sorted({cut for cut in cuts_s if 0.0 < cut < duration_s})
    bounds = [0.0, *inner, duration_s]
    return [
        Scene(index=index, start_s=start, end_s=end, sample_s=(start + end) / 2)
        for index, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


def extract_frames(
    path: Path,
    scenes: Sequence[Scene],
    out_dir: Path,
    *,
    run: Runner = subprocess.run,
    timeout_s: float = 120.0,
) -> list[Path]:
    """Write one JPEG per scene, taken at its ``sample_s``, as ``frame_{index:04d}.jpg``.

    Each file is written atomically, so a rerun overwrites the previous frames.

    Raises:
        CorruptMedia: A scene's frame does not decode.
        ToolFailed: ffmpeg is missing or timed out.
    """
    written: list[Path] = []
    for scene in scenes:
        command = [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-ss", f"{scene.sample_s:.3f}",
            "-i", str(path),
            "-map", "0:v:0",
            "-frames:v", "1",
            "-q:v", "3",
            "-f", "image2", "-update", "1", "-c:v", "mjpeg",
        ]  # fmt: skip
        out = out_dir / f"frame_{scene.index:04d}.jpg"
        what = f"frame of scene {scene.index} at {scene.sample_s:.2f} s"
        written.append(render_image(command, out, source=path, what=what, run=run, timeout_s=timeout_s))
    return written


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
