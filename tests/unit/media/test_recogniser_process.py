"""Speech recognition runs in a child process: the worker's other threads keep running, and a stop kills it.

pocketsphinx holds the GIL for a whole decode (breaker report D1), so the transcriber runs it
as ``python -m autolog.media.recognise`` and only waits on the child.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from autolog.errors import PermanentError, ToolFailed, TransientError
from autolog.media import PocketsphinxTranscriber, probe_media
from autolog.media._run import run_process
from autolog.media.speech_tracks import speech_spans
from autolog.stops import StepCancelled, stop_when
from tests.ffmpeg_runs import make_clip

if TYPE_CHECKING:
    from tests.conftest import SampleClips

Runner = Callable[..., subprocess.CompletedProcess[bytes]]
Done = subprocess.CompletedProcess[bytes]

#: Seconds of loud pink noise: the voice-activity detector calls all of it speech, and one
#: in-GIL decode of it froze every other thread for about 4-5 s on this machine.
NOISE_S = 25


def is_recogniser(args: Sequence[str]) -> bool:
    return "autolog.media.recognise" in args


def recogniser_replaced_by(command: list[str]) -> Runner:
    """Return a runner that runs ``command`` instead of the recogniser, and everything else for real."""
    def run(args: Sequence[str], *, capture_output: bool, timeout: float | None, check: bool) -> Done:
        return run_process(command if is_recogniser(args) else args, capture_output=capture_output, timeout=timeout,
                           check=check)

    return run


def killing_recogniser(args: Sequence[str], *, capture_output: bool, timeout: float | None, check: bool) -> Done:
    """Run ffmpeg for real, but SIGKILL the recogniser at once, as the OOM killer would."""
    if not is_recogniser(args):
        return run_process(args, capture_output=capture_output, timeout=timeout, check=check)
    process = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.kill()
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(list(args), process.returncode, stdout, stderr)


def timing_out_recogniser(args: Sequence[str], *, capture_output: bool, timeout: float | None, check: bool) -> Done:
    """Run ffmpeg for real; the recogniser overruns its time limit."""
    if not is_recogniser(args):
        return run_process(args, capture_output=capture_output, timeout=timeout, check=check)
    raise subprocess.TimeoutExpired(cmd=list(args), timeout=timeout or 0.0)


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WAV of loud pink noise that the voice-activity detector takes for continuous speech.

    Its level rises and falls three times a second (``tremolo``), as speech's does (11 dB of
    spread), so the track is transcribed: steady noise (5.5 dB) is not, by design
    (``autolog.media.speech_tracks.MIN_FALLBACK_SPREAD_DB``).
    """
    path = make_clip(tmp_path_factory.mktemp("noise") / "noise.wav", "-f", "lavfi", "-i",
                     f"anoisesrc=color=pink:amplitude=0.3:duration={NOISE_S}:sample_rate=16000,tremolo=f=3:d=0.7",
                     "-c:a", "pcm_s16le")
    with wave.open(str(path), "rb") as audio:
        heard_s = sum(end_s - start_s for start_s, end_s in speech_spans(audio))
    assert heard_s > NOISE_S - 5, f"the VAD heard only {heard_s:.1f} s of speech"
    return path


def test_other_threads_keep_running_while_speech_is_recognised(noise: Path) -> None:
    # Given a thread that ticks every 50 ms, as a worker's heartbeat and consumers do
    done = threading.Event()
    gaps: list[float] = []

    def tick() -> None:
        last = time.monotonic()
        while not done.wait(0.05):
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()

    # When NOISE_S seconds of "speech" are transcribed beside it
    started = time.monotonic()
    try:
        PocketsphinxTranscriber().transcribe(noise, probe_media(noise).audio_tracks)
    finally:
        done.set()
        ticker.join()
    transcribe_s = time.monotonic() - started

    # Then it never stalls for long: decoding in-process held the GIL for the whole window,
    # a gap of several seconds (3.8 s for 20 s of this noise, idle machine)
    print(f"transcribe {transcribe_s:.2f} s; ticker's longest gap {max(gaps):.2f} s")
    assert max(gaps) < 2.0


def test_cancelling_the_item_kills_the_recogniser_at_once(noise: Path) -> None:
    # Given a stop check that turns true once the recogniser has started
    recognising = threading.Event()

    def run(args: Sequence[str], *, capture_output: bool, timeout: float | None, check: bool) -> Done:
        if is_recogniser(args):
            recognising.set()
        return run_process(args, capture_output=capture_output, timeout=timeout, check=check)

    # When the item is cancelled during recognition
    # Then the child is killed (not waited out) and the step stops
    with stop_when(recognising.is_set), pytest.raises(StepCancelled, match="killed: the item was cancelled"):
        PocketsphinxTranscriber(run=run).transcribe(noise, probe_media(noise).audio_tracks)
    assert recognising.is_set()


@pytest.mark.parametrize(("runner", "message"), [
    (killing_recogniser, "pocketsphinx: killed by SIGKILL"),
    (timing_out_recogniser, r"pocketsphinx: timed out after \d+"),
    (recogniser_replaced_by([sys.executable, "-c", "raise SystemExit('decoder failed')"]),
     "pocketsphinx: recogniser exited with status 1: decoder failed"),
    (recogniser_replaced_by([sys.executable, "-c", "print('not json')"]),
     "pocketsphinx: recogniser printed no word list"),
], ids=["killed", "timed-out", "crashed", "garbled"])
def test_a_failed_recogniser_is_a_transient_tool_failure(
    runner: Runner, message: str, test_media: SampleClips
) -> None:
    clip = test_media.path("speech.wav")

    with pytest.raises(ToolFailed, match=message) as caught:
        PocketsphinxTranscriber(run=runner).transcribe(clip, probe_media(clip).audio_tracks)

    assert isinstance(caught.value, TransientError) and not isinstance(caught.value, PermanentError)
