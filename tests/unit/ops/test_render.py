"""Plain-text tables for items and pools."""

from __future__ import annotations

from datetime import UTC, datetime

from autolog.broker_state import QueueStats
from autolog.statuses import Status
from autolog.store import EventView, FrameView, ItemView, SegmentView
from ops.pools import PoolStatus
from ops.render import format_item, format_item_list, format_pools, format_table
from tests.conftest import item_view

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
PROBE = {"media_kind": "video", "container": "mov,mp4,m4a,3gp,3g2,mj2", "duration_s": 70.004, "fps": 29.97,
         "nominal_fps": "30000/1001", "average_fps": 29.97, "variable_frame_rate": False, "video_codec": "h264",
         "width": 1440, "height": 1080, "display_width": 1920, "display_height": 1080, "rotation": 0,
         "sample_aspect_ratio": "4:3", "field_order": "tt", "color_transfer": None,
         "start_timecode": "01:00:00;00", "drop_frame": True, "timecode_source": "tmcd track", "reel": "A001",
         "audio_tracks": [{"index": 1, "codec": "pcm_s16le", "channels": 1, "sample_rate": 48000, "start_s": 0.0},
                          {"index": 2, "codec": "pcm_s16le", "channels": 1, "sample_rate": 48000, "start_s": 0.5}]}


def view(item_id: str, status: Status, error: dict[str, object] | None = None) -> ItemView:
    return item_view(item_id, f"/media/{item_id}.mov", status=status, probe=PROBE, has_audio=False, error=error,
                     created_at=NOW, updated_at=NOW)


def test_table_columns_are_as_wide_as_their_widest_cell() -> None:
    table = format_table(("ID", "N"), [("LF1", 1), ("LF1409", None), ("x", True)])

    assert table.splitlines() == ["ID      N", "LF1     1", "LF1409", "x       yes"]


def test_item_list_shows_status_update_time_error_and_counts() -> None:
    items = [view("LF1", Status.AVID_DESCRIPTION),
             view("LF2", Status.PENDING_FILE_INFO, {"step": "file_info", "type": "NotMedia", "message": "bad"})]

    text = format_item_list(items, {"7 - Avid Description": 1, "0 - Pending File Info": 1})

    lines = text.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "UPDATED", "ERROR"]
    assert lines[1] == "LF1  7 - Avid Description   2025-01-02 03:04:05"
    assert lines[2].endswith("file_info: NotMedia: bad")
    assert lines[-2:] == ["0 - Pending File Info  1", "7 - Avid Description   1"]


def test_a_filtered_list_says_its_counts_count_every_item() -> None:
    counts = {"7 - Avid Description": 50, "0 - Pending File Info": 2}

    assert format_item_list([], counts, filtered=True).splitlines()[2].split() == ["STATUS", "ALL", "ITEMS"]
    assert format_item_list([], counts).splitlines()[2].split() == ["STATUS", "ITEMS"]


def test_empty_item_list_says_so() -> None:
    assert format_item_list([], {}) == "no items"


def test_item_detail_has_fields_frames_transcript_and_timeline() -> None:
    frame = FrameView(position=0, time_s=1.0, timecode="00:00:01:00", image_path="/a/f0.jpg",
                      description="a red frame", keywords=["red", "dark"], analysis={}, transcript="hello")
    segment = SegmentView(position=0, start_s=0.5, end_s=1.5, text="hello")
    event = EventView(id=1, item_id="LF1", at=NOW, event="failed", step="assess", message_id="m", attempt=2,
                      worker="host:1:Thread-1", wait_ms=5, run_ms=7, from_status=None, to_status=None,
                      error_type="CorruptMedia", error_message="stopped early", detail=None)

    text = format_item(view("LF1", Status.THUMBNAILS_COMPLETE), [frame], [segment], [event])

    assert "status         2 - Thumbnails Complete" in text
    assert "media          video, QuickTime (MOV), 70.004 s (00:01:10;00)" in text  # as people name it, not ffprobe
    assert "timecode       01:00:00;00 (drop-frame, from tmcd track), reel A001" in text
    assert "rate           30000/1001 nominal, 29.970 average" in text
    assert ("picture        h264 1440x1080 shown 1920x1080, rotation 0, SAR 4:3, interlaced, upper field first,"
            " transfer untagged") in text
    assert "audio          #1 pcm_s16le 1 ch 48000 Hz; #2 pcm_s16le 1 ch 48000 Hz from 0.500 s" in text
    assert "00:00:01:00  a red frame  red, dark  hello" in text
    assert "   0.50-   1.50  hello" in text
    assert ("03:04:05.000  failed  assess  2        host:1:Thread-1  5        7       "
            "CorruptMedia: stopped early") in text


def test_pool_table_shows_depth_or_a_question_mark() -> None:
    pools = [
        PoolStatus(name="file_info", queue="probe", processes=1, threads=8, pid=42, alive=True,
                   depth=QueueStats(ready=3, delayed=1, in_flight=2, dead=0, oldest_age_s=0.0)),
        PoolStatus(name="control", queue="control", processes=1, threads=2, pid=None, alive=False, depth=None),
    ]

    lines = format_pools(pools).splitlines()

    assert lines[1].split() == ["file_info", "probe", "1", "8", "42", "yes", "3", "1", "2", "0"]
    assert lines[2].split() == ["control", "control", "1", "2", "no", "?", "?", "?", "?"]


def test_pool_table_says_why_a_pool_is_left_stopped() -> None:
    pools = [PoolStatus(name="frames", queue="frames", processes=1, threads=4, pid=7, alive=False, depth=None,
                        crash_loop="died 6 times within 600 s; not restarted", wanted=True)]

    lines = format_pools(pools).splitlines()

    assert lines[-1] == "frames: crash-looping: died 6 times within 600 s; not restarted"


def test_item_timeline_says_why_a_step_waited() -> None:
    stalled = EventView(id=1, item_id="LF1", at=NOW, event="deferred", step="file_info", message_id="m1", attempt=1,
                        worker=None, wait_ms=None, run_ms=None, from_status=None, to_status=None, error_type=None,
                        error_message=None, detail={"queue": "probe", "reason": "source settling", "waits": 1,
                                                    "cut_short": "it ends 36 bytes into a 188-byte packet"})

    text = format_item(view("LF1", Status.PENDING_FILE_INFO), [], [], [stalled])

    assert "ERROR OR REASON" in text
    assert "source settling: a stalled copy, it ends 36 bytes into a 188-byte packet" in text
