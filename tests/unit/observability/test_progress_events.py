"""Progress events: percent by status, JSON round trip, Server-Sent Events formatting."""

from __future__ import annotations

from autolog.progress import ProgressEvent, format_sse, percent_before, percent_done, sse_stream
from autolog.statuses import ANALYSIS, FILE_INFO, TRANSCRIPTION, Status


def test_percent_follows_the_steps_done() -> None:
    assert [percent_done(status) for status in Status] == [0, 17, 33, 50, 50, 67, 83, 100]
    assert (percent_before(FILE_INFO), percent_before(ANALYSIS), percent_before(TRANSCRIPTION)) == (0, 50, 83)


def test_an_event_survives_a_json_round_trip() -> None:
    event = ProgressEvent(item_id="LF1", stage="assess", state="running", percent=33, status="2 - Thumbnails Complete",
                          message_id="m", attempt=1, at_ms=5, seq=7)

    assert ProgressEvent.from_json(event.to_json()) == event


def test_an_event_is_one_sse_message_with_its_sequence_as_id() -> None:
    event = ProgressEvent(item_id="LF1", stage="frames", state="succeeded", percent=100, final=True, seq=12)

    text = format_sse(event).decode()

    assert text.startswith("id: 12\nevent: progress\ndata: {")
    assert text.endswith("}\n\n") and text.count("\n") == 4
    assert ProgressEvent.from_json(text.split("data: ", 1)[1]) == event


def test_quiet_becomes_a_keep_alive_comment_and_the_stream_sets_a_retry() -> None:
    body = list(sse_stream(iter([None])))

    assert body == [b"retry: 2000\n\n", b": keep-alive\n\n"]
