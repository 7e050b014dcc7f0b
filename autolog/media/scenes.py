"""Find the shots of a clip in one decode pass, and take one picture per shot at its time."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from autolog.errors import CorruptMedia, UnsupportedMedia
from autolog.media._fields import read_float, read_int
from autolog.media._render import FFMPEG, render_frame_at
from autolog.media._run import Runner, first_error_line, run_process, run_tool
from autolog.media.probe import ProbeResult

#: Decoding may stop this many seconds short of the video stream's end before the file
#: counts as corrupt (or ``_SHORTFALL_FRACTION`` of it, whichever is larger): a
#: container's stated stream duration can run a few frames past the last frame.
_SHORTFALL_S = 0.5
_SHORTFALL_FRACTION = 0.05

_FRAME_PREFIX = "frame:"
_SCORE_KEY = "lavfi.scd.score="
_CUT_KEY = "lavfi.scd.time="

#: The scdet pass counts time in microseconds (``settb=AVTB``) and reads each frame's
#: integer ``pts``: the printed ``pts_time`` and ``lavfi.scd.time`` keep 6 significant
#: digits, 10 ms at three hours in.
_TICKS_PER_S = 1_000_000


@dataclass(frozen=True)
class Scene:
    """A shot: the span of a clip between two hard cuts, and the frame time sampled from it."""

    index: int
    start_s: float
    end_s: float
    #: The timestamp (clip time) of a real frame, the one nearest the middle of the shot.
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


@dataclass(frozen=True)
class DecodePass:
    """What one ``scdet`` pass saw: every frame's time and the cuts scdet found, with scores."""

    #: Each decoded frame's clip time, in decode output order.
    frame_times_s: tuple[float, ...]
    #: ``(time, score)`` of each frame scdet flags as starting a new shot (score 0-100).
    cuts: tuple[tuple[float, float], ...]


def detect_scenes(
    path: Path,
    probe: ProbeResult,
    *,
    threshold: float = 10.0,
    min_shot_s: float = 0.5,
    run: Runner = run_process,
    timeout_s: float = 1800.0,
) -> list[Scene]:
    """Split a clip's picture into shots at its hard cuts, proving it decodes to the end.

    One ffmpeg pass over the probed main video stream runs the ``scdet`` filter and
    prints every frame's time and scores. The cuts are scdet's, thinned so that no shot
    is shorter than ``min_shot_s`` (fast motion makes scdet fire on the frames after a
    cut too: the strongest cut of a cluster is kept). The shots run from clip time 0 to
    the end of the last decoded frame; each one's sample is its frame nearest the middle.

    The decode must reach the end of the video stream (``video_start_s`` plus
    ``video_duration_s``), not of the clip: sound that outlasts the picture is healthy.

    Args:
        threshold: scdet's score (0-100) above which a frame starts a new shot.
        min_shot_s: The shortest shot kept (``Settings.min_shot_s``).

    Raises:
        UnsupportedMedia: The probe has no video stream.
        CorruptMedia: ffmpeg failed, or decoding stopped well short of the video's end.
        ToolFailed: ffmpeg is missing or timed out.
    """
    if probe.video_stream_index is None:
        raise UnsupportedMedia(str(path), "no video stream to find shots in")
    command = [
        *FFMPEG, "-i", str(path), "-map", f"0:{probe.video_stream_index}",
        "-vf", f"settb=AVTB,scdet=threshold={threshold:g},metadata=mode=print:file=-",
        "-f", "null", "-",
    ]  # fmt: skip
    completed = run_tool(command, run=run, timeout_s=timeout_s)
    if completed.returncode != 0:
        raise CorruptMedia(str(path), f"ffmpeg could not decode the video: {first_error_line(completed.stderr)}")
    decoded = parse_scdet_output(completed.stdout.decode("utf-8", errors="replace"), start_time_s=probe.start_time_s)
    if not decoded.frame_times_s:
        raise CorruptMedia(str(path), "no video frame decodes")
    end_s = picture_end_s(decoded.frame_times_s, fps=probe.fps)
    video_end_s = probe.video_start_s + (probe.video_duration_s or probe.duration_s)
    if video_end_s - end_s > max(_SHORTFALL_S, _SHORTFALL_FRACTION * (video_end_s - probe.video_start_s)):
        raise CorruptMedia(str(path), f"decoding stopped at {end_s:.2f} s of {video_end_s:.2f} s")
    cuts_s = keep_cuts(decoded.cuts, start_s=0.0, end_s=end_s, min_shot_s=min_shot_s)
    return scenes_between_cuts(cuts_s, decoded.frame_times_s, end_s=end_s)


def parse_scdet_output(text: str, *, start_time_s: float = 0.0) -> DecodePass:
    """Read ``settb=AVTB,scdet,metadata=mode=print`` output, in clip time.

    The output has a ``frame:N pts:P pts_time:T`` line per frame (``P`` in microseconds
    of container time, so clip time is ``P`` less ``start_time_s``) followed by its
    ``key=value`` tags; scdet tags every frame with ``lavfi.scd.score`` and adds
    ``lavfi.scd.time`` to the frames that start a shot.
    """
    frame_times: list[float] = []
    cuts: list[tuple[float, float]] = []
    score = 0.0
    for line in text.splitlines():
        if line.startswith(_FRAME_PREFIX):
            for field in line.split():
                if field.startswith("pts:") and field[4:].lstrip("-").isdigit():
                    frame_times.append(round(int(field[4:]) / _TICKS_PER_S - start_time_s, 6))
            score = 0.0
        elif line.startswith(_SCORE_KEY):
            score = _float_or_none(line.removeprefix(_SCORE_KEY)) or 0.0
        elif line.startswith(_CUT_KEY) and frame_times:
            cuts.append((frame_times[-1], score))
    return DecodePass(frame_times_s=tuple(frame_times), cuts=tuple(cuts))


def picture_end_s(frame_times_s: Sequence[float], *, fps: float) -> float:
    """Return where the picture ends: the last frame's time plus its duration.

    The last frame lasts as long as the gap before it (a variable-rate clip's last frames
    may be slower than nominal), or one nominal frame for a one-frame clip.
    """
    ordered = sorted(frame_times_s)
    gap_s = ordered[-1] - ordered[-2] if len(ordered) > 1 else 0.0
    return ordered[-1] + (gap_s if gap_s > 0 else 1.0 / fps if fps > 0 else 0.0)


def keep_cuts(
    cuts: Sequence[tuple[float, float]], *, start_s: float, end_s: float, min_shot_s: float
) -> list[float]:
    """Return the cut times that leave no shot shorter than ``min_shot_s``, in time order.

    Cuts are taken strongest first; a cut closer than ``min_shot_s`` to the start, the
    end or a cut already taken is dropped, so of a cluster of detections around one
    cut, the clearest frame wins.
    """
    kept: list[float] = []
    # A shot of exactly min_shot_s seconds must survive float rounding of frame times.
    shortest_s = min_shot_s - 1e-6
    for cut_s, _score in sorted(cuts, key=lambda cut: (-cut[1], cut[0])):
        if cut_s - start_s < shortest_s or end_s - cut_s < shortest_s or cut_s <= start_s or cut_s >= end_s:
            continue
        if all(abs(cut_s - other_s) >= shortest_s and cut_s != other_s for other_s in kept):
            kept.append(cut_s)
    return sorted(kept)


def scenes_between_cuts(cuts_s: Sequence[float], frame_times_s: Sequence[float], *, end_s: float) -> list[Scene]:
    """Return the shots between cuts: the first starts at 0, the last ends at ``end_s``.

    Each shot's ``sample_s`` is the time of its frame nearest its middle (every shot
    holds a frame: it starts at a cut, which is a frame, or at 0 before the first frame;
    were one empty, the clip's frame nearest the middle stands in).
    """
    bounds = [0.0, *cuts_s, end_s]
    times = sorted(frame_times_s)
    scenes = []
    for index, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        middle = (start + end) / 2
        in_shot = times[bisect.bisect_left(times, start):bisect.bisect_left(times, end)] or times
        sample = min(in_shot, key=lambda frame_s: (abs(frame_s - middle), frame_s))
        scenes.append(Scene(index=index, start_s=start, end_s=end, sample_s=sample))
    return scenes


def extract_frames(
    path: Path,
    probe: ProbeResult,
    scenes: Sequence[Scene],
    out_dir: Path,
    *,
    run: Runner = run_process,
    timeout_s: float = 120.0,
) -> list[Path]:
    """Write each scene's picture at its ``sample_s`` as ``frame_{index:04d}.jpg``, full display size.

    Each is the exact frame at that time, in any container, shown as a player shows it
    (``render_frame_at``); each file is written atomically, so a rerun overwrites them.

    Raises:
        UnsupportedMedia: The probe has no video stream.
        CorruptMedia: A scene's frame does not decode.
        ToolFailed: ffmpeg is missing or timed out.
    """
    return [
        render_frame_at(path, probe, out_dir / f"frame_{scene.index:04d}.jpg", at_s=scene.sample_s, max_width=None,
                        what=f"frame of scene {scene.index} at {scene.sample_s:.2f} s", run=run,
                        timeout_s=timeout_s)
        for scene in scenes
    ]


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
