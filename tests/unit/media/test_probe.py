"""Probing real clips: what ffprobe reports, and how unreadable files fail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from autolog.errors import EmptyMedia, MediaMissing, NotMedia, UnsupportedMedia
from autolog.media import ProbeResult, probe_media
from autolog.media.probe import field_order_name
from tests.ffmpeg_runs import make_clip

if TYPE_CHECKING:
    from tests.conftest import SampleClips


@pytest.mark.parametrize("name", ["cuts_noaudio.mp4", "cuts_audio.mp4", "speech.mp4"])
def test_probe_of_a_good_clip_matches_the_manifest(test_media: SampleClips, name: str) -> None:
    # Given a valid clip and its ground truth
    truth = test_media.manifest[name]

    # When it is probed
    result = probe_media(test_media.path(name))

    # Then every field agrees with the manifest
    assert result.duration_s == pytest.approx(truth["duration"], abs=0.1)
    assert result.fps == pytest.approx(truth["fps"])
    assert (result.width, result.height) == (truth["width"], truth["height"])
    assert result.video_codec == truth["video_codec"]
    assert result.has_audio is truth["has_audio"]
    assert result.audio_codec == truth.get("audio_codec")
    assert result.size_bytes == test_media.path(name).stat().st_size
    assert "mp4" in result.container


def test_probe_result_survives_a_round_trip_through_a_dict(test_media: SampleClips) -> None:
    # Given a probe result
    result = probe_media(test_media.path("cuts_audio.mp4"))

    # When it is turned into a dict and back
    rebuilt = ProbeResult.from_dict(result.asdict())

    # Then nothing is lost
    assert rebuilt == result


def test_probe_result_from_dict_names_a_field_of_the_wrong_type(test_media: SampleClips) -> None:
    # Given a stored probe whose width is text
    data = probe_media(test_media.path("cuts_audio.mp4")).asdict() | {"width": "320"}

    # When it is rebuilt, Then the error names the field
    with pytest.raises(ValueError, match="'width'"):
        ProbeResult.from_dict(data)


def test_probe_of_a_missing_file_raises_media_missing(test_media: SampleClips) -> None:
    # Given a path with no file, When it is probed, Then MediaMissing says so
    with pytest.raises(MediaMissing, match="no such file"):
        probe_media(test_media.path("does_not_exist.mp4"))


def test_probe_of_an_empty_file_raises_empty_media(test_media: SampleClips) -> None:
    # Given a zero-byte file, When it is probed, Then EmptyMedia says it is empty
    with pytest.raises(EmptyMedia, match=r"empty \(0 bytes\)"):
        probe_media(test_media.path("empty.mp4"))


def test_probe_of_a_text_file_raises_not_media_quoting_ffprobe(test_media: SampleClips) -> None:
    # Given a text file named .mp4
    path = test_media.path("not_media.mp4")

    # When it is probed
    with pytest.raises(NotMedia) as caught:
        probe_media(path)

    # Then the reason quotes ffprobe's first line, without ffmpeg's "[mov @ 0x...]" noise
    assert caught.value.reason == "ffprobe cannot read it: moov atom not found"
    assert caught.value.path == str(path)


def test_probe_of_an_mp4_cut_before_its_moov_atom_raises_not_media(test_media: SampleClips) -> None:
    # Given an mp4 truncated before its header, When it is probed, Then NotMedia explains why
    with pytest.raises(NotMedia, match="moov atom not found"):
        probe_media(test_media.path("truncated_nomoov.mp4"))


def test_probe_of_an_audio_only_file_is_an_audio_item(test_media: SampleClips) -> None:
    # Given a WAV file, When it is probed, Then it is audio: one track, no picture
    result = probe_media(test_media.path("speech.wav"))
    assert (result.media_kind, result.video_stream_index, result.has_audio) == ("audio", None, True)
    assert [track.index for track in result.audio_tracks] == [0]


def test_probe_of_a_file_with_neither_picture_nor_sound_raises_unsupported_media(tmp_path: Path) -> None:
    # Given a file holding only a subtitle stream
    subtitles = tmp_path / "only.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    path = make_clip(tmp_path / "only_subtitles.mkv", "-i", str(subtitles))
    # When it is probed, Then it is refused for having nothing to log
    with pytest.raises(UnsupportedMedia, match="no video or audio stream"):
        probe_media(path)


def test_probe_of_a_truncated_file_with_a_header_still_succeeds(test_media: SampleClips) -> None:
    # Given a faststart mp4 cut in half (its header survives)
    # When it is probed
    result = probe_media(test_media.path("truncated_partial.mp4"))

    # Then the header's claims are reported; only decoding reveals the damage
    assert result.duration_s == pytest.approx(6.0, abs=0.1)


@pytest.mark.parametrize(("order", "words"), [
    ("tt", "interlaced, upper field first"), ("bb", "interlaced, lower field first"),
    ("tb", "interlaced, upper coded first, lower shown first"), ("progressive", "progressive"), ("odd", "odd")])
def test_a_field_order_reads_in_words(order: str, words: str) -> None:
    # ffprobe's "tt" read as jargon on the item page and in `autolog status`
    assert field_order_name(order) == words
