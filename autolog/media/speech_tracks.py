"""Find the audio tracks that carry speech and lay them out in clip time.

A camera file may hold several audio tracks: a camera microphone, radio lavs, a line-up
tone, an empty input that only records its noise floor. Each track is decoded by its
probed stream index to 16 kHz mono, placed at its own timestamps in clip time, and judged
for speech; the tracks that carry speech are mixed into one WAV that a recogniser reads.
Every sample ``n`` of that WAV is at clip time ``n / SAMPLE_RATE``.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from autolog.errors import CorruptMedia
from autolog.media._run import Runner, first_error_line, run_process, run_tool
from autolog.media.probe import AudioTrack

#: pocketsphinx's bundled English model expects 16 kHz mono 16-bit audio.
SAMPLE_RATE = 16_000

#: A track whose voice-activity detector hears less speech than this carries none (s).
MIN_SPEECH_S = 0.3

#: Speech rises and falls by syllable and pauses between phrases, so its short-term level
#: spreads widely; steady sounds (noise floors, wind, hum, line-up tone) do not. Measured on
#: 30 ms frames as the 95th minus the 10th percentile: espeak speech over a noise floor 37 dB,
#: the same speech under pink noise louder than itself 12 dB, pink and brown noise 5.5 dB,
#: a noise floor 0.8 dB, a 1 kHz tone 0 dB. The voice-activity detector alone calls loud
#: noise speech from end to end.
MIN_LEVEL_SPREAD_DB = 10.0

#: With no track above ``MIN_LEVEL_SPREAD_DB``, a track the voice-activity detector heard is
#: still tried when its level spreads more than the steady sounds measured above (pink and
#: brown noise 5.5 dB at most): a line-up tone the detector hears from end to end (0 dB) is not
#: transcribed into a word or two.
MIN_FALLBACK_SPREAD_DB = 6.0

#: Samples per level frame: 30 ms, the voice-activity detector's own frame.
_LEVEL_FRAME = SAMPLE_RATE * 30 // 1000

#: Samples read at a time when measuring or mixing, so an hour of audio is never in memory.
_CHUNK = SAMPLE_RATE * 30


@dataclass(frozen=True)
class TrackSpeech:
    """How much one audio track sounds like speech."""

    #: ffprobe's absolute stream index of the track.
    index: int
    #: Seconds the voice-activity detector calls speech.
    speech_s: float
    #: Spread of the track's 30 ms levels, 95th minus 10th percentile, in dB.
    level_spread_db: float

    @property
    def carries_speech(self) -> bool:
        """True when the track has speech and rises and falls as speech does."""
        return self.speech_s >= MIN_SPEECH_S and self.level_spread_db >= MIN_LEVEL_SPREAD_DB


@dataclass(frozen=True)
class SpeechAudio:
    """A clip's speech as one 16 kHz mono 16-bit WAV whose time 0 is clip time 0."""

    wav_path: Path
    #: The stream indexes mixed into the WAV, in stream order.
    track_indexes: tuple[int, ...]
    #: What was measured on every track, in stream order.
    measured: tuple[TrackSpeech, ...]
    duration_s: float


def choose_speech_tracks(measured: Sequence[TrackSpeech]) -> list[int]:
    """Return the stream indexes of the tracks to transcribe, in the order given.

    Every track that carries speech is chosen (two lavs on two people give one transcript
    of both). When none does but the voice-activity detector heard something, the track
    with the widest level spread is tried, if it spreads more than steady sounds do
    (``MIN_FALLBACK_SPREAD_DB``): speech under heavy noise still spreads more than the noise
    alone. No such track gives ``[]``.
    """
    carrying = [track.index for track in measured if track.carries_speech]
    if carrying:
        return carrying
    heard = [track for track in measured if track.speech_s > 0 and track.level_spread_db >= MIN_FALLBACK_SPREAD_DB]
    return [max(heard, key=lambda track: track.level_spread_db).index] if heard else []


def extract_speech_audio(
    path: Path, tracks: Sequence[AudioTrack], work_dir: Path, *, run: Runner = run_process,
    timeout_s: float = 600.0,
) -> SpeechAudio | None:
    """Write the speech of ``path``'s audio tracks to a clip-time WAV in ``work_dir``.

    ffmpeg decodes each track by its stream index in one pass. The track's first sample is
    put at its probed start offset (``AudioTrack.start_s``), with silence before it, and a
    gap of over 0.1 s inside the track is filled with silence (``aresample`` with
    ``first_pts=0`` and ``async=1``), so sample positions are clip times. The offset comes
    from the probe rather than from ffmpeg's own time shift, because ffmpeg re-bases an
    MPEG-TS input on the earliest of the streams it is asked for ("Correcting start time"):
    an audio track mapped alone would start at 0 however late it begins. The tracks that
    carry speech (:func:`choose_speech_tracks`) are mixed.

    Returns:
        The speech audio, or None when there is no audio track or no track has speech.

    Raises:
        CorruptMedia: ffmpeg cannot decode an audio track.
        ToolFailed: ffmpeg is missing or timed out.
    """
    if not tracks:
        return None
    wavs = _decode_tracks(path, tracks, work_dir, run=run, timeout_s=timeout_s)
    measured = tuple(measure_track(track.index, wavs[track.index]) for track in tracks)
    chosen = choose_speech_tracks(measured)
    if not chosen:
        return None
    wav_path = wavs[chosen[0]] if len(chosen) == 1 else mix_wavs([wavs[index] for index in chosen],
                                                                 work_dir / "speech.wav")
    with wave.open(str(wav_path), "rb") as audio:
        duration_s = audio.getnframes() / SAMPLE_RATE
    return SpeechAudio(wav_path=wav_path, track_indexes=tuple(chosen), measured=measured, duration_s=duration_s)


def _decode_tracks(
    path: Path, tracks: Sequence[AudioTrack], work_dir: Path, *, run: Runner, timeout_s: float
) -> dict[int, Path]:
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(path)]
    wavs: dict[int, Path] = {}
    for track in tracks:
        wavs[track.index] = work_dir / f"track{track.index}.wav"
        command += [
            "-map", f"0:{track.index}",
            "-af", f"asetpts=PTS-STARTPTS+{max(0.0, track.start_s):.6f}/TB,aresample=async=1:first_pts=0",
            "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
            "-map_metadata", "-1", "-fflags", "+bitexact",
            "-f", "wav", str(wavs[track.index]),
        ]  # fmt: skip
    completed = run_tool(command, run=run, timeout_s=timeout_s)
    if completed.returncode != 0:
        raise CorruptMedia(str(path), f"ffmpeg could not decode the audio: {first_error_line(completed.stderr)}")
    return wavs


def measure_track(index: int, wav_path: Path) -> TrackSpeech:
    """Measure the speech in one decoded track (a 16 kHz mono 16-bit WAV)."""
    with wave.open(str(wav_path), "rb") as audio:
        speech_s = sum(end_s - start_s for start_s, end_s in speech_spans(audio))
    return TrackSpeech(index=index, speech_s=round(speech_s, 3), level_spread_db=round(_level_spread_db(wav_path), 1))


def speech_spans(audio: wave.Wave_read) -> Iterator[tuple[float, float]]:
    """Yield (start_s, end_s) of each stretch of speech pocketsphinx's VAD finds.

    ``audio`` must be 16 kHz mono 16-bit; it is read from its current position to the end.
    """
    # NOTE(media): imported here so that importing autolog.media (e.g. in the web
    # process) does not load the native recogniser.
    from pocketsphinx import Endpointer

    endpointer = Endpointer(sample_rate=SAMPLE_RATE)
    samples_per_frame = endpointer.frame_bytes // 2
    while True:
        chunk = audio.readframes(samples_per_frame)
        if len(chunk) < endpointer.frame_bytes:
            was_in_speech = bool(endpointer.in_speech)
            # end_stream rejects an empty buffer; one silent sample is harmless.
            endpointer.end_stream(chunk or b"\x00\x00")
            if was_in_speech:
                yield float(endpointer.speech_start), float(endpointer.speech_end)
            return
        speech = endpointer.process(chunk)
        if speech is not None and not endpointer.in_speech:
            yield float(endpointer.speech_start), float(endpointer.speech_end)


def _level_spread_db(wav_path: Path) -> float:
    # Imported here (and in ``mix_wavs``): numpy costs about 20 MiB, and only the transcription step needs it.
    import numpy as np

    levels: list[np.ndarray] = []
    with wave.open(str(wav_path), "rb") as audio:
        while chunk := audio.readframes(_CHUNK):
            samples = np.frombuffer(chunk, dtype="<i2").astype(np.float64)
            usable = len(samples) // _LEVEL_FRAME * _LEVEL_FRAME
            if usable:
                power = np.square(samples[:usable].reshape(-1, _LEVEL_FRAME)).mean(axis=1)
                # Digital silence (the padding before a late track, a muted stretch) is no
                # sound of the track; counting it would make a steady noise look like speech.
                levels.append(10 * np.log10(power[power > 0]))
    heard = np.concatenate(levels) if levels else np.empty(0)
    if heard.size == 0:
        return 0.0
    low, high = np.percentile(heard, [10, 95])
    return float(high - low)


def mix_wavs(wav_paths: Sequence[Path], out_path: Path) -> Path:
    """Average 16 kHz mono 16-bit WAVs sample by sample into ``out_path``; return it.

    All inputs start at clip time 0; the mix is as long as the longest, the shorter ones
    counting as silence past their end. Averaging (not summing) cannot clip.
    """
    import numpy as np

    readers = [wave.open(str(wav_path), "rb") for wav_path in wav_paths]
    try:
        total = max(reader.getnframes() for reader in readers)
        with wave.open(str(out_path), "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(SAMPLE_RATE)
            for start in range(0, total, _CHUNK):
                mixed = np.zeros(min(_CHUNK, total - start), dtype=np.int32)
                for reader in readers:
                    samples = np.frombuffer(reader.readframes(_CHUNK), dtype="<i2")
                    mixed[: len(samples)] += samples
                writer.writeframes((mixed // len(readers)).astype("<i2").tobytes())
    finally:
        for reader in readers:
            reader.close()
    return out_path
