"""Exports of clips logged by the real pipeline: real workers, real ffmpeg, the footage cases' truth."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import opentimelineio as otio
import pycmx

from autolog.context import Context
from autolog.exports import ExportOptions, export_item
from autolog.media.timecode import frame_timecode
from tests.conftest import FootageCases, log_through_pipeline
from tests.ffmpeg_runs import make_clip
from tests.unit.exports.timecodes import smpte_frames

Drain = Callable[..., None]


def exported(context: Context, item_id: str, format_name: str, **options: object) -> str:
    return "".join(export_item(context.store, item_id, format_name, ExportOptions(**options)).chunks)  # type: ignore[arg-type]


def test_the_drop_frame_camera_mov_exports_at_01_00_00_00(
    context: Context, footage_cases: FootageCases, drain: Drain, unique_id: Callable[[str], str],
) -> None:
    # Given the 29.97 fps camera MOV whose tmcd track starts at 01:00:00;00, cut at 60.06 s, logged
    truth = footage_cases.truth["03_ntsc_df_tc.mov"]
    item_id = unique_id("df")
    log_through_pipeline(context, drain, footage_cases.path("03_ntsc_df_tc.mov"), item_id)
    item = context.store.items.get(item_id)
    assert item.probe is not None

    # When its ALE (with shots) and its marker list are exported and read back
    collection = otio.adapters.read_from_string(exported(context, item_id, "ale", shots=True), adapter_name="ale")
    markers = list(csv.reader(io.StringIO(exported(context, item_id, "markers")), delimiter="\t"))

    # Then the ALE counts drop-frame from 01:00:00;00 and ends (exclusive) at the clip's last frame
    rate = 30000 / 1001
    whole, *shots = collection.find_clips()
    assert collection.metadata["ALE"]["header"]["FPS"] == "29.97"
    assert otio.opentime.to_timecode(whole.source_range.start_time, rate) == truth["start_timecode"]
    assert otio.opentime.to_timecode(whole.source_range.end_time_exclusive(), rate) == frame_timecode(
        truth["start_timecode"], truth["nominal_fps"], item.probe["duration_s"])
    # and the second shot starts at the cut, 01:01:00;02, within a frame
    cut = smpte_frames(truth["timecode_examples"]["60.06"], 30, drop=True)
    assert len(shots) == 2
    assert abs(shots[1].source_range.start_time.value - cut) <= 1
    assert shots[0].source_range.end_time_exclusive() == shots[1].source_range.start_time
    # And each marker sits at its frame record's timecode, the truth's examples
    assert [row[1] for row in markers] == [truth["timecode_examples"][at] for at in ("30.03", "65.032")]
    assert {row[2] for row in markers} == {"V1"}


def test_a_25_fps_mxf_exports_non_drop_from_its_timecode(
    context: Context, session_dir: Path, drain: Drain, unique_id: Callable[[str], str],
) -> None:
    # Given a 4 s MXF (OP1a, MPEG-2, PCM) at 25 fps, timecode 10:00:00:00, a hard cut at 2 s
    path = session_dir / "media" / f"{unique_id('mxf')}.mxf"
    make_clip(path, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
              "-f", "lavfi", "-i", "smptebars=size=320x240:rate=25:duration=2",
              "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
              "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
              "-c:v", "mpeg2video", "-b:v", "2M", "-c:a", "pcm_s16le", "-timecode", "10:00:00:00")
    item_id = unique_id("mx")
    log_through_pipeline(context, drain, path, item_id)

    # When its ALE, EDL and markers are exported and read back
    heading, (row,) = _ale(exported(context, item_id, "ale"))
    edits = [edit for event in pycmx.parse_cmx3600(io.StringIO(exported(context, item_id, "edl"))).events
             for edit in event.edits]
    markers = list(csv.reader(io.StringIO(exported(context, item_id, "markers")), delimiter="\t"))

    # Then everything counts non-drop at 25 from 10:00:00:00
    assert heading["FPS"] == "25"
    assert otio.opentime.to_timecode(row.source_range.start_time, 25) == "10:00:00:00"
    assert otio.opentime.to_timecode(row.source_range.end_time_exclusive(), 25) == "10:00:04:00"
    assert row.metadata["ALE"]["Tracks"] == "VA1"
    assert [edit.source_in for edit in edits][0] == "10:00:00:00"
    assert abs(smpte_frames(edits[1].source_in, 25, drop=False) - smpte_frames("10:00:02:00", 25, drop=False)) <= 1
    assert edits[-1].source_out == "10:00:04:00"
    frames = context.store.results.frames(item_id)
    assert [marker[1] for marker in markers] == [frame.timecode for frame in frames]
    assert all(":" == marker[1][8] for marker in markers)


def _ale(text: str) -> tuple[dict[str, str], list[otio.schema.Clip]]:
    collection = otio.adapters.read_from_string(text, adapter_name="ale")
    return dict(collection.metadata["ALE"]["header"]), list(collection.find_clips())
