"""Speech on every audio track, in clip time: the footage cases and the sound variants.

The recogniser is the real pocketsphinx on the real clips. Its words on espeak speech vary
with the codec ("the quick brown fox" on one clip, "that tweet probably thought" on
another), so word checks ask for any of a sentence's words; timing checks use phrase
times, which the voice-activity detector fixes to within a few tens of ms.
"""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import pytest

from autolog.media import PocketsphinxTranscriber, Transcriber, map_segments_to_frames, probe_media
from autolog.media.speech_tracks import (
    SAMPLE_RATE,
    TrackSpeech,
    choose_speech_tracks,
    extract_speech_audio,
    mix_wavs,
)
from autolog.media.transcribe import Transcript
from tests.conftest import SENTENCE1, SENTENCE2, FootageCases
from tests.ffmpeg_runs import recording_runner

LATE_AUDIO = ["late_audio.mov", "late_audio.mkv", "late_audio.ts"]


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    """One transcriber for the module, so the model loads once."""
    return PocketsphinxTranscriber()


def transcribe(transcriber: Transcriber, path: Path) -> Transcript:
    return transcriber.transcribe(path, probe_media(path).audio_tracks)


def words_of(transcript: Transcript) -> set[str]:
    return {word for segment in transcript.segments for word in segment.text.split()}


# --- Which tracks carry speech --------------------------------------------------------


def test_speech_only_on_track_2_is_transcribed_from_track_2(
    transcriber: Transcriber, footage_cases: FootageCases
) -> None:
    # Given a camera MOV whose track 1 holds only a noise floor and track 2 the speech
    name = "09_two_mono_tracks.mov"

    transcript = transcribe(transcriber, footage_cases.path(name))

    assert transcript.track_indexes == (2,)
    assert words_of(transcript) & set(footage_cases.truth[name]["transcript_contains_any"])


def test_each_audio_track_is_decoded_by_its_probed_stream_index(
    footage_cases: FootageCases, tmp_path: Path
) -> None:
    path = footage_cases.path("09_two_mono_tracks.mov")
    commands: list[list[str]] = []

    speech = extract_speech_audio(path, probe_media(path).audio_tracks, tmp_path, run=recording_runner(commands))

    [decode] = commands
    assert [decode[at + 1] for at, arg in enumerate(decode) if arg == "-map"] == ["0:1", "0:2"]
    assert speech is not None
    assert [(track.index, track.carries_speech) for track in speech.measured] == [(1, False), (2, True)]


def test_a_tone_and_loud_noise_are_not_taken_for_speech(
    transcriber: Transcriber, sound_variants: FootageCases, tmp_path: Path
) -> None:
    # Given line-up tone on track 1, pink noise louder than the speech on 2, speech on 3
    name = "tone_noise_speech.mkv"
    path = sound_variants.path(name)

    speech = extract_speech_audio(path, probe_media(path).audio_tracks, tmp_path)
    transcript = transcribe(transcriber, path)

    assert speech is not None
    tone, noise, voice = speech.measured
    assert tone.speech_s == 0
    assert noise.speech_s > 5 and not noise.carries_speech, "the VAD hears the noise; its steady level gives it away"
    assert voice.carries_speech
    assert transcript.track_indexes == tuple(sound_variants.truth[name]["speech_tracks"])
    assert words_of(transcript) & SENTENCE2


def test_bars_and_tone_alone_are_not_transcribed(transcriber: Transcriber, tmp_path: Path) -> None:
    # Given a camera's line-up: bars and a 1 kHz tone at 24 bits on two channels, which
    # pocketsphinx's voice-activity detector hears from end to end (it made "gervais" of it)
    path = tmp_path / "bars_and_tone.mov"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "smptebars=size=320x240:rate=25,trim=duration=6", "-f", "lavfi", "-i",
                    "sine=f=1000:d=6:sample_rate=48000", "-c:v", "libx264", "-c:a", "pcm_s24le", "-ac", "2",
                    str(path)], check=True)

    speech = extract_speech_audio(path, probe_media(path).audio_tracks, tmp_path)
    transcript = transcribe(transcriber, path)

    assert speech is None
    assert transcript.segments == ()


def test_two_lavs_are_mixed_so_both_speakers_are_transcribed(
    transcriber: Transcriber, sound_variants: FootageCases
) -> None:
    # Given sentence 1 on track 1 only and sentence 2 on track 2 only
    name = "two_lavs.mov"
    truth = sound_variants.truth[name]

    transcript = transcribe(transcriber, sound_variants.path(name))

    assert transcript.track_indexes == (1, 2)
    starts = [segment.start_s for segment in transcript.segments]
    assert any(abs(start - truth["sentence1"][0]) < 0.2 for start in starts)
    assert any(abs(start - truth["sentence2"][0]) < 0.2 for start in starts)
    assert words_of(transcript) & SENTENCE2


def test_the_tracks_that_carry_speech_are_all_chosen() -> None:
    measured = [TrackSpeech(1, speech_s=0.0, level_spread_db=0.8), TrackSpeech(2, speech_s=4.0, level_spread_db=30.0),
                TrackSpeech(3, speech_s=8.0, level_spread_db=5.0), TrackSpeech(4, speech_s=2.0, level_spread_db=25.0)]
    assert choose_speech_tracks(measured) == [2, 4]


def test_with_no_clear_speech_the_most_speech_like_track_heard_is_tried() -> None:
    # Given speech under heavy noise (spread 8 dB) beside steady noise (5 dB), both heard by the VAD
    measured = [TrackSpeech(1, speech_s=8.0, level_spread_db=5.0), TrackSpeech(2, speech_s=3.0, level_spread_db=8.0)]
    assert choose_speech_tracks(measured) == [2]


def test_a_steady_track_the_vad_hears_throughout_is_not_tried() -> None:
    # Given a line-up tone (0 dB) and pink noise (5.5 dB), both heard as speech by the VAD
    measured = [TrackSpeech(1, speech_s=6.0, level_spread_db=0.0), TrackSpeech(2, speech_s=6.0, level_spread_db=5.5)]
    assert choose_speech_tracks(measured) == []


def test_tracks_the_vad_hears_nothing_on_give_no_tracks() -> None:
    assert choose_speech_tracks([TrackSpeech(1, speech_s=0.0, level_spread_db=0.0)]) == []
    assert choose_speech_tracks([]) == []


def test_a_mix_is_the_average_and_as_long_as_the_longest_track(tmp_path: Path) -> None:
    # Given two clip-time tracks of 3 and 2 samples
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    write_wav(first, [1000, -2000, 3000])
    write_wav(second, [3000, 2000])

    mixed = mix_wavs([first, second], tmp_path / "mix.wav")

    assert read_wav(mixed) == [2000, 0, 1500]


def write_wav(path: Path, samples: list[int]) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"".join(sample.to_bytes(2, "little", signed=True) for sample in samples))


def read_wav(path: Path) -> list[int]:
    with wave.open(str(path), "rb") as audio:
        raw = audio.readframes(audio.getnframes())
    return [int.from_bytes(raw[at:at + 2], "little", signed=True) for at in range(0, len(raw), 2)]


# --- Clip time: offsets, sound past the picture, audio-only items ----------------------


@pytest.mark.parametrize("name", LATE_AUDIO)
def test_a_late_audio_track_puts_its_words_on_the_right_shot(
    transcriber: Transcriber, sound_variants: FootageCases, name: str
) -> None:
    # Given sound that starts 2 s after the picture, and a cut at 5.5 s between the sentences
    truth = sound_variants.truth[name]

    transcript = transcribe(transcriber, sound_variants.path(name))
    texts = map_segments_to_frames(transcript.segments, sound_variants.shot_spans(name))

    # Then each sentence is timed where it is heard in the clip, and stays on its own shot
    starts = [segment.start_s for segment in transcript.segments]
    assert any(abs(start - truth["sentence1"][0]) < 0.2 for start in starts), starts
    assert any(abs(start - truth["sentence2"][0]) < 0.2 for start in starts), starts
    assert texts[0] and not set(texts[0].split()) & SENTENCE2, texts
    assert set(texts[1].split()) & SENTENCE2, texts


@pytest.mark.parametrize("name", LATE_AUDIO)
def test_a_late_audio_track_is_padded_to_clip_time(
    sound_variants: FootageCases, tmp_path: Path, name: str
) -> None:
    path = sound_variants.path(name)
    probe = probe_media(path)

    speech = extract_speech_audio(path, probe.audio_tracks, tmp_path)

    assert speech is not None
    assert probe.audio_tracks[0].start_s == pytest.approx(sound_variants.truth[name]["audio_start_s"], abs=0.07)
    assert speech.duration_s == pytest.approx(probe.duration_s, abs=0.1)


def test_speech_that_outlasts_the_picture_is_transcribed(
    transcriber: Transcriber, footage_cases: FootageCases
) -> None:
    # Given 6.9 s of speech under 4 s of picture
    name = "13_audio_longer.mp4"
    truth = footage_cases.truth[name]

    transcript = transcribe(transcriber, footage_cases.path(name))

    assert words_of(transcript) & set(truth["transcript_contains_any"])
    assert transcript.segments[-1].end_s > truth["video_duration"] + 1.5


def test_avchd_speech_is_timed_from_the_clip_start_not_the_cameras_clock(
    transcriber: Transcriber, footage_cases: FootageCases
) -> None:
    # Given an M2TS whose timestamps start at 601 s, and speech 0.5 s into the clip
    name = "05_avchd_spanned.m2ts"

    transcript = transcribe(transcriber, footage_cases.path(name))

    assert transcript.segments
    assert transcript.segments[0].start_s == pytest.approx(footage_cases.truth[name]["speech_from"], abs=0.15)
    assert transcript.segments[-1].end_s < 7.0


@pytest.mark.parametrize("name", ["07_audio_only.wav", "08_cover_art.m4a"])
def test_audio_only_items_are_transcribed(
    transcriber: Transcriber, footage_cases: FootageCases, name: str
) -> None:
    transcript = transcribe(transcriber, footage_cases.path(name))

    # The sound is stream 0 in both; 08's cover art (stream 1) is never decoded as sound.
    assert transcript.track_indexes == (0,)
    assert transcript.segments[0].start_s == pytest.approx(0.5, abs=0.15)
    assert words_of(transcript) & (SENTENCE1 | SENTENCE2)
