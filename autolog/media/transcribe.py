"""Transcribe a clip's speech offline and attach the text to frames.

Every time here is clip time: seconds from the container's first timestamp, the time base
of the probe, the scenes and the sampled frames. The audio tracks are laid out in clip time
before recognition (``autolog.media.speech_tracks``), so a track that starts late puts its
words at the right time and on the right frames.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from autolog.errors import ToolFailed
from autolog.media._fields import read_float, read_str
from autolog.media._run import Runner, run_process, run_tool
from autolog.media.probe import AudioTrack
from autolog.media.speech_tracks import extract_speech_audio

#: Time allowed for recognition per second of audio, on top of ``timeout_s``: pocketsphinx
#: decodes about 0.3 s per second of noisy audio on one core, so 2 leaves room for a busy machine.
RECOGNITION_S_PER_AUDIO_S = 2.0




@dataclass(frozen=True)
class Segment:
    """A phrase of recognised speech and when it was said."""

    start_s: float
    end_s: float
    text: str

    def asdict(self) -> dict[str, object]:
        """Return the fields as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Segment:
        """Rebuild a segment from :meth:`asdict` output.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        return cls(start_s=read_float(data, "start_s"), end_s=read_float(data, "end_s"), text=read_str(data, "text"))


@dataclass(frozen=True)
class Transcript:
    """What a transcriber heard in a clip, and on which audio tracks."""

    #: The phrases in clip time, in time order.
    segments: tuple[Segment, ...]
    #: Stream indexes of the tracks transcribed (mixed when several); ``()`` when none had speech.
    track_indexes: tuple[int, ...]
    #: Tokens a hosted model billed for the call; 0 for offline recognisers.
    input_tokens: int = 0
    output_tokens: int = 0


class Transcriber(Protocol):
    """Turns a clip's audio tracks into timed phrases in clip time."""

    name: str

    def transcribe(self, path: Path, tracks: Sequence[AudioTrack]) -> Transcript:
        """Transcribe the speech on ``tracks`` (``ProbeResult.audio_tracks`` of ``path``).

        No track, or no track with speech, gives a transcript without segments.
        """
        ...


@dataclass(frozen=True)
class _Word:
    text: str
    start_s: float
    end_s: float


class PocketsphinxTranscriber:
    """Offline English speech recognition with pocketsphinx's bundled model.

    Voice-activity detection finds the stretches of speech; each is decoded with a
    little padding (so word onsets are not clipped) and split into phrases wherever
    the words pause for longer than ``pause_s``. Recognition runs in a child process
    (``python -m autolog.media.recognise``) with its own decoder, since pocketsphinx holds
    the GIL while it decodes; the model loads in each child, about 0.5 s more per transcribed clip.
    """

    name = "pocketsphinx"

    def __init__(
        self,
        *,
        run: Runner = run_process,
        timeout_s: float = 600.0,
        pause_s: float = 0.25,
        pad_s: float = 0.3,
    ) -> None:
        """Configure the transcriber; ``timeout_s`` bounds each ffmpeg run and, with the audio's length, recognition."""
        self._run = run
        self._timeout_s = timeout_s
        self._pause_s = pause_s
        # PERF(media): 0.3 s of padding recovered "welcome" and "quick" on the test
        # speech clip, where the bare VAD spans clipped their onsets; 0.5 s added noise.
        self._pad_s = pad_s

    def transcribe(self, path: Path, tracks: Sequence[AudioTrack]) -> Transcript:
        """Return the phrases spoken on the tracks that carry speech, in clip time.

        Raises:
            CorruptMedia: ffmpeg cannot decode an audio track.
            ToolFailed: ffmpeg is missing or timed out, or the recogniser crashed, was killed or timed out.
            StepCancelled: the item was cancelled meanwhile; the running tool was killed.
        """
        with tempfile.TemporaryDirectory(prefix="autolog-asr-") as temp_dir:
            speech = extract_speech_audio(path, tracks, Path(temp_dir), run=self._run, timeout_s=self._timeout_s)
            if speech is None:
                return Transcript(segments=(), track_indexes=())
            words = self._recognise(speech.wav_path, speech.duration_s)
        return Transcript(segments=tuple(_group_words(words, pause_s=self._pause_s)),
                          track_indexes=speech.track_indexes)

    def _recognise(self, wav_path: Path, audio_s: float) -> list[_Word]:
        """Run ``autolog.media.recognise`` on ``wav_path`` (``audio_s`` long) in a child process; return its words.

        The worker only waits on the child, so its other threads keep running (breaker
        report D1); a cancelled item's child is killed at once (``run_process``).
        """
        args = [sys.executable, "-m", "autolog.media.recognise", "--pad-s", repr(self._pad_s), str(wav_path)]
        timeout_s = self._timeout_s + RECOGNITION_S_PER_AUDIO_S * audio_s
        completed = run_tool(args, run=self._run, timeout_s=timeout_s, tool="pocketsphinx")
        if completed.returncode != 0:
            raise ToolFailed("pocketsphinx", f"recogniser exited with status {completed.returncode}: "
                                             f"{_last_line(completed.stderr)}")
        try:
            return [_Word(str(text), float(start_s), float(end_s))
                    for text, start_s, end_s in json.loads(completed.stdout)]
        except (ValueError, TypeError) as ex:
            raise ToolFailed("pocketsphinx", f"recogniser printed no word list ({ex})") from ex


def _last_line(stderr: bytes) -> str:
    """Return the last non-blank line of a child's stderr: a Python traceback ends with its error."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"


def _group_words(words: Sequence[_Word], *, pause_s: float) -> list[Segment]:
    """Join words into phrases, starting a new phrase after a pause longer than ``pause_s``."""
    segments: list[Segment] = []
    phrase: list[_Word] = []
    for word in words:
        if phrase and word.start_s - phrase[-1].end_s > pause_s:
            segments.append(_segment_of(phrase))
            phrase = []
        phrase.append(word)
    if phrase:
        segments.append(_segment_of(phrase))
    return segments


def _segment_of(phrase: Sequence[_Word]) -> Segment:
    return Segment(start_s=phrase[0].start_s, end_s=phrase[-1].end_s, text=" ".join(word.text for word in phrase))


def map_segments_to_frames(
    segments: Sequence[Segment], frame_spans: Sequence[tuple[int, float, float]]
) -> dict[int, str]:
    """Return, for every frame ``(index, start_s, end_s)``, the speech said during it.

    A segment belongs to every frame it overlaps for any positive length of time, so a
    phrase spoken across a cut appears under both scenes; touching end to start is not
    overlap. Texts are joined with single spaces in segment order, and a frame with no
    speech maps to ``""``.
    """
    texts: dict[int, str] = {}
    for index, start_s, end_s in frame_spans:
        spoken = [segment.text for segment in segments if segment.start_s < end_s and start_s < segment.end_s]
        texts[index] = " ".join(text for text in spoken if text)
    return texts
