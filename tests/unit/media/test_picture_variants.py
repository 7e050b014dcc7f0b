"""Steps 2-3's pictures of clips of the footage cases' kinds that are not in the handed set.

Other rates, containers and codecs; and the kinds the handed set lacks: HDR (PQ and HLG)
and anamorphic pictures. Every clip is made here with ffmpeg's lavfi sources.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from autolog.errors import CorruptMedia
from autolog.media import ProbeResult, detect_scenes, make_poster, picture_filters, probe_media
from tests.ffmpeg_runs import H264, make_clip
from tests.unit.media.pictures import (
    SAME_PICTURE,
    combing,
    difference,
    image_size,
    make_pictures,
    pixels,
    reference_frame,
    shots,
)

X265_10BIT = ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le"]

#: A white bar crossing a black picture at 400 pixels a second, 50 pictures a second: woven
#: into frames of two fields, its edges comb on every line.
MOVING_BAR = [
    "-f", "lavfi", "-i", "color=black:size=160x120:rate=50", "-f", "lavfi", "-i", "color=white:size=24x80:rate=50",
]  # fmt: skip
_BAR = "[0:v][1:v]overlay=x='mod(t*400,136)':y=20,trim=duration=3"


@pytest.mark.parametrize(("name", "weave", "codec"), [
    ("tff_25i.mp4", "tinterlace=mode=interleave_top,setfield=tff",
     [*H264, "-flags", "+ildct+ilme", "-field_order", "tt", "-x264-params", "tff=1"]),
    ("bff_2997i.ts", "fps=60000/1001,tinterlace=mode=interleave_bottom,setfield=bff",
     [*H264, "-flags", "+ildct+ilme", "-field_order", "bb", "-x264-params", "bff=1"]),
    ("unflagged_25i.avi", "tinterlace=mode=interleave_top", ["-c:v", "mjpeg", "-q:v", "2"]),
])
def test_interlaced_variants_give_images_without_combing(
    tmp_path: Path, name: str, weave: str, codec: list[str]
) -> None:
    # Given a moving bar woven into interlaced frames, flagged or not, in 160x120 (tiles unscaled)
    clip = make_clip(tmp_path / name, *MOVING_BAR, "-filter_complex", f"{_BAR},{weave}[v]", "-map", "[v]", *codec)

    # When steps 2-3 run
    pictures = make_pictures(clip, tmp_path / "out")

    # Then the clip is seen as interlaced, the raw frame combs, and no image does
    assert pictures.probe.interlaced
    woven = reference_frame(clip, pictures.probe, pictures.poster_s, tmp_path / "woven.png")
    assert combing(woven) > 0.05
    for image in (pictures.poster, pictures.sheet, *pictures.samples):
        assert combing(pixels(image)) < 0.005, image.name


@pytest.mark.parametrize(("name", "transfer"), [
    ("pq.mp4", "smpte2084"),
    ("hlg.mkv", "arib-std-b67"),
    ("pq.mov", "smpte2084"),
])
def test_hdr_variants_are_tone_mapped_to_bt709_in_every_image(tmp_path: Path, name: str, transfer: str) -> None:
    # Given an HDR clip and its SDR twin (the same two shots in BT.709)
    sdr = make_pictures(make_clip(tmp_path / "sdr.mp4", *shots("smptebars", "testsrc2", seconds=1.0), *H264),
                        tmp_path / "sdr")
    to_hdr = f"format=gbrp,zscale=tin=bt709:min=gbr:pin=bt709:rin=full:t={transfer}:m=bt2020nc:p=bt2020:r=tv:npl=100"
    tags = f"log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc"
    clip = make_clip(tmp_path / name, *shots("smptebars", "testsrc2", seconds=1.0, then=to_hdr), *X265_10BIT,
                     "-x265-params", tags)

    # When steps 2-3 run
    hdr = make_pictures(clip, tmp_path / "hdr")

    # Then the clip is seen as HDR, and each image is close to the SDR twin's
    assert hdr.probe.hdr
    pairs = [(hdr.poster, sdr.poster), (hdr.sheet, sdr.sheet), *zip(hdr.samples, sdr.samples, strict=True)]
    for image, twin in pairs:
        assert difference(pixels(image), pixels(twin)) < 40, image.name
    # And much closer than the same poster made without the tone-map, which is washed out
    untouched = make_poster(clip, dataclasses.replace(hdr.probe, color_transfer=None), tmp_path / "raw.jpg",
                            at_s=hdr.poster_s)
    washed_out = difference(pixels(untouched), pixels(sdr.poster))
    assert difference(pixels(hdr.poster), pixels(sdr.poster)) < washed_out / 2


@pytest.mark.parametrize(("name", "square", "coded", "sar"), [
    ("sar_4_3.mp4", "320x240", "240:240", "4/3"),
    ("sar_32_27.mkv", "640x360", "540:360", "32/27"),
])
def test_anamorphic_variants_give_square_pixel_images(
    tmp_path: Path, name: str, square: str, coded: str, sar: str
) -> None:
    # Given a picture squeezed into fewer, wider pixels, and its square-pixel twin
    twin = make_pictures(make_clip(tmp_path / "square.mp4", *shots("testsrc2", "smptebars", seconds=1.0, size=square),
                                   *H264), tmp_path / "square")
    clip = make_clip(tmp_path / name, *shots("testsrc2", "smptebars", seconds=1.0, size=square,
                                             then=f"scale={coded},setsar={sar}"), *H264)

    # When steps 2-3 run
    pictures = make_pictures(clip, tmp_path / "out")

    # Then every image has the shown (square-pixel) size and looks like the twin's
    width, height = (int(side) for side in square.split("x"))
    assert image_size(pictures.poster) == (width, height)
    assert [image_size(sample) for sample in pictures.samples] == [(width, height)] * 2
    assert image_size(pictures.sheet) == image_size(twin.sheet)
    pairs = [(pictures.poster, twin.poster), (pictures.sheet, twin.sheet),
             *zip(pictures.samples, twin.samples, strict=True)]
    for image, expected in pairs:
        assert difference(pixels(image), pixels(expected)) < 2 * SAME_PICTURE, image.name


@pytest.fixture(scope="module")
def upright(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 320x240 clip of two shots, cut at 1 s, with no rotation."""
    return make_clip(tmp_path_factory.mktemp("upright") / "upright.mp4",
                     *shots("testsrc2", "smptebars", seconds=1.0), *H264)


def test_every_rotation_gives_images_as_a_player_shows_them(upright: Path, tmp_path: Path) -> None:
    # Given the same clip remuxed with each display rotation a phone writes
    seen = set()
    for tag in ("90", "180", "270"):
        clip = make_clip(tmp_path / f"rotate_{tag}.mov", "-i", str(upright), "-c", "copy",
                         "-metadata:s:v:0", f"rotate={tag}")

        # When steps 2-3 run
        pictures = make_pictures(clip, tmp_path / tag)
        seen.add(pictures.probe.rotation)

        # Then each image is what ffmpeg's own rotation of a full decode shows at its time
        for scene, sample in zip(pictures.scenes, pictures.samples, strict=True):
            expected = reference_frame(clip, pictures.probe, scene.sample_s, tmp_path / f"{tag}_{scene.index}.png")
            assert difference(pixels(sample), expected) < SAME_PICTURE
        poster = reference_frame(clip, pictures.probe, pictures.poster_s, tmp_path / f"{tag}_poster.png")
        assert difference(pixels(pictures.poster), poster) < SAME_PICTURE
        tile_height = 214 if pictures.probe.rotation in (90, 270) else 120
        assert image_size(pictures.sheet) == (640, 3 * tile_height)
    assert seen == {90, 180, 270}


@pytest.mark.parametrize(("name", "rate", "codec"), [
    ("gop300_2997.ts", "30000/1001", [*H264, "-x264-params", "keyint=300:min-keyint=300:scenecut=0", "-f", "mpegts"]),
    ("gop250_hevc.ts", "25", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                              "log-level=error:keyint=250:min-keyint=250:scenecut=0", "-f", "mpegts"]),
    ("gop200_mpeg2.mpg", "25", ["-c:v", "mpeg2video", "-g", "200", "-bf", "2", "-q:v", "4", "-f", "vob"]),
    ("gop250_live.webm", "25", ["-c:v", "libvpx", "-g", "250", "-b:v", "300k", "-f", "webm", "-live", "1"]),
])
def test_long_gop_variants_give_every_frame_at_its_own_time(
    tmp_path: Path, name: str, rate: str, codec: list[str]
) -> None:
    # Given four 3-s shots in one or two long GOPs, in a container without an exact seek index
    clip = make_clip(tmp_path / name, *shots("testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", rate=rate,
                                             seconds=3.0), *codec)

    # When steps 2-3 run
    pictures = make_pictures(clip, tmp_path / "out")

    # Then the shots are found, and each sample and the poster are the frame a full decode gives there
    cuts = [scene.start_s for scene in pictures.scenes[1:]]
    assert cuts == pytest.approx([3.0, 6.0, 9.0], abs=1.5 / pictures.probe.fps)
    references = [reference_frame(clip, pictures.probe, scene.sample_s, tmp_path / f"ref{scene.index}.png")
                  for scene in pictures.scenes]
    for index, sample in enumerate(pictures.samples):
        differences = [difference(pixels(sample), reference) for reference in references]
        assert differences[index] < SAME_PICTURE
        assert min(other for position, other in enumerate(differences) if position != index) > 4 * SAME_PICTURE
    poster = reference_frame(clip, pictures.probe, pictures.poster_s, tmp_path / "poster.png")
    assert difference(pixels(pictures.poster), poster) < SAME_PICTURE


@pytest.mark.parametrize(("name", "rate", "frames"), [
    ("one_frame_5994.mov", "60000/1001", 1),
    ("five_frames_23976.mkv", "24000/1001", 5),
    ("one_frame_25.ts", "25", 1),
])
def test_short_variants_are_one_shot_with_every_image(tmp_path: Path, name: str, rate: str, frames: int) -> None:
    # Given a clip of a few frames
    clip = make_clip(tmp_path / name, "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={rate}",
                     "-frames:v", str(frames), *H264)

    # When steps 2-3 run
    pictures = make_pictures(clip, tmp_path / "out")

    # Then it is one shot, with a sample frame, a poster and a contact sheet of the clip's picture
    assert len(pictures.scenes) == 1
    first = reference_frame(clip, pictures.probe, 0.0, tmp_path / "first.png")
    assert difference(pixels(pictures.samples[0]), first) < 3 * SAME_PICTURE
    assert difference(pixels(pictures.poster), first) < 3 * SAME_PICTURE
    assert image_size(pictures.sheet) == (640, 360)


@pytest.mark.parametrize(("name", "rate", "audio"), [
    ("sound_longer.mkv", "25", ["-c:a", "libopus"]),
    ("sound_longer_2997.mov", "30000/1001", ["-c:a", "pcm_s16le"]),
])
def test_sound_longer_than_the_picture_variants_are_healthy(
    tmp_path: Path, name: str, rate: str, audio: list[str]
) -> None:
    # Given 2 s of picture (cut at 1 s) and 5 s of sound
    sound = ("-f", "lavfi", "-i", "sine=sample_rate=48000:duration=5")
    clip = make_clip(tmp_path / name, *shots("testsrc2", "smptebars", rate=rate, seconds=1.0, more_inputs=sound),
                     "-map", "2:a", *H264, *audio)

    # When its shots are found, Then there is no error and they end with the picture
    scenes = detect_scenes(clip, probe_media(clip))
    assert [scene.start_s for scene in scenes[1:]] == pytest.approx([1.0], abs=1.0 / 25)
    assert scenes[-1].end_s == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize(("name", "rate"), [("motion_50.mp4", "50"), ("motion_2997.mov", "30000/1001")])
def test_high_motion_variants_cut_within_one_frame_and_make_no_short_shots(
    tmp_path: Path, name: str, rate: str
) -> None:
    # Given fast-moving shots (fractal zoom, game of life, cellular automaton), cut at 2 and 4.4 s
    clip = make_clip(tmp_path / name, "-f", "lavfi", "-i", f"mandelbrot=size=320x180:rate={rate},trim=duration=2",
                     "-f", "lavfi", "-i", f"life=size=320x180:rate={rate}:mold=10:ratio=0.2:seed=5,trim=duration=2.4",
                     "-f", "lavfi", "-i", f"cellauto=size=320x180:rate={rate}:rule=30:seed=4,trim=duration=2.5",
                     "-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p[v]", "-map", "[v]", *H264)

    # When its shots are found
    probe = probe_media(clip)
    scenes = detect_scenes(clip, probe)

    # Then the cuts are the true ones within a frame, and no shot is under the 0.5 s minimum
    assert [scene.start_s for scene in scenes[1:]] == pytest.approx([2.0, 4.4], abs=1.0 / probe.fps)
    assert min(scene.end_s - scene.start_s for scene in scenes) >= 0.5


def test_a_truly_truncated_mov_still_fails_with_a_readable_reason(tmp_path: Path) -> None:
    # Given a camera MOV (index at the front) cut to half its bytes: it probes, but the data stops early
    whole = make_clip(tmp_path / "whole.mov", *shots("testsrc2", "smptebars", seconds=2.0), *H264,
                      "-movflags", "+faststart")
    data = whole.read_bytes()
    clip = tmp_path / "truncated.mov"
    clip.write_bytes(data[: len(data) // 2])

    # When its shots are found, Then it fails permanently, saying how far decoding got
    with pytest.raises(CorruptMedia, match=r"decoding stopped at \d+\.\d\d s of 4\.00 s"):
        detect_scenes(clip, probe_media(clip))


def test_an_ordinary_clip_needs_no_picture_filter(upright: Path) -> None:
    # Given a progressive, SDR, upright, square-pixel clip, Then it pays for no picture filter
    probe: ProbeResult = probe_media(upright)
    assert picture_filters(probe) == []


@pytest.mark.parametrize("container", ["mpegts", "mp4"])
def test_a_picture_that_starts_after_the_sound_keeps_clip_time(tmp_path: Path, container: str) -> None:
    # Given a clip whose sound starts half a second before its picture (cut 2 s into the picture),
    # and in MPEG-TS with a clock that does not start at 0, as spanned AVCHD files do
    picture = make_clip(tmp_path / "picture.mp4", *shots("testsrc2", "smptebars", seconds=2.0), *H264)
    sound = make_clip(tmp_path / "sound.m4a", "-f", "lavfi", "-i", "sine=duration=5", "-c:a", "aac")
    clip = make_clip(tmp_path / f"late_picture.{container}", "-itsoffset", "0.5", "-i", str(picture),
                     "-i", str(sound), "-map", "0:v", "-map", "1:a", "-c", "copy", "-output_ts_offset", "30",
                     "-f", container)

    # When steps 2-3 run
    pictures = make_pictures(clip, tmp_path / "out")

    # Then the cut is 2 s after the first frame in clip time (the sound's and the transcript's
    # time), and each sample is the frame at its clip time
    start = pictures.probe.video_start_s
    assert start == pytest.approx(0.5, abs=0.05)
    assert [scene.start_s for scene in pictures.scenes[1:]] == pytest.approx([start + 2.0], abs=0.5 / 25)
    for scene, sample in zip(pictures.scenes, pictures.samples, strict=True):
        expected = reference_frame(clip, pictures.probe, scene.sample_s, tmp_path / f"ref{scene.index}.png")
        assert difference(pixels(sample), expected) < SAME_PICTURE
