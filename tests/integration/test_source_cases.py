"""Intake cases through a real worker: files still being copied, bad input, audio-only items, camera cards.

Each case is a footage case from ``tests/footage_cases`` (truth in ``cases.json``) or a
variant of its kind made here with ffmpeg: other containers, rates and card layouts.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from dramatiq.broker import MessageProxy
from dramatiq.common import dq_name
from dramatiq.message import Message
from dramatiq.middleware import SkipMessage

from actors import assess, broker
from autolog.broker_state import messages_in_flight
from autolog.context import Context
from autolog.errors import CorruptMedia
from autolog.item_ids import stored_items
from autolog.media import ProbeResult
from autolog.settings import Settings
from autolog.source_state import SourceStat, fingerprint_source
from autolog.statuses import ASSESS, FILE_INFO, Status
from autolog.store import ItemGuard, NewItem, Store
from autolog.store.jobs import Jobs
from middleware import SOURCE_OPTION, SUPERSEDED_OPTION, TRANSITION_OPTION, WAIT_OPTION, Services, SourceChecks
from ops.ingest import check_paths, plan_items
from pipelines import actions
from pipelines.callbacks import next_messages
from pipelines.footage import first_message
from tests.conftest import FootageCases, wait_for
from tests.ffmpeg_runs import H264, make_clip

Drain = Callable[..., None]
Ids = Callable[[str], str]

#: The settle time these tests run with, in seconds: short, so fresh files wait briefly.
SETTLE_S = 1.0

#: The stall window these tests run with, in seconds: a file cut short waits this long after its last write.
STALL_S = 3.0

#: One frame at the 25 fps of the cases: the tolerance of cut times.
FRAME_S = 0.04

#: Words of the cases' speech ("Welcome to the footage logging test. The quick brown fox ...").
SPOKEN = ("welcome", "footage", "logging", "test", "quick", "brown", "fox", "jumps", "lazy", "dog")


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """The session's settings with a short settle time, for the worker's context.

    The stall window is ``STALL_S``, or the test's indirect parameter.
    """
    return Settings.from_env().replace(source_settle_s=SETTLE_S, source_stall_s=getattr(request, "param", STALL_S))


@pytest.fixture
def media_dir(session_dir: Path, unique_id: Ids) -> Path:
    """A fresh folder under the media root for this test's files."""
    folder = session_dir / "media" / unique_id("intake")
    folder.mkdir(parents=True)
    return folder


#: The broker's source checks, as a worker runs them.
source_checks = next(middleware for middleware in broker.middleware if isinstance(middleware, SourceChecks))


def events(context: Context, item_id: str, kind: str) -> list[str | None]:
    return [event.step for event in context.store.timeline.for_item(item_id) if event.event == kind]


def kinds(context: Context, item_id: str) -> list[str]:
    return [event.event for event in context.store.timeline.for_item(item_id)]


def probe_of(context: Context, item_id: str) -> ProbeResult:
    probe = context.store.items.get(item_id).probe
    assert probe is not None, "no file info stored"
    return ProbeResult.from_dict(probe)


def cuts(context: Context, item_id: str) -> list[float]:
    return [scene.start_s for scene in context.store.results.scenes(item_id)][1:]


# --- Files still being copied ----------------------------------------------------------------


def growing_source(footage_cases: FootageCases, media_dir: Path, name: str) -> Path:
    """Return the finished file a copy would make: a footage case, or a remux of 16_full.mp4."""
    case = footage_cases.path(name)
    if case.is_file():
        return case
    remuxed = media_dir / "finished" / name
    remuxed.parent.mkdir()
    return make_clip(remuxed, "-i", str(footage_cases.path("16_full.mp4")), "-c", "copy")


@pytest.mark.parametrize("name", ["16_full.mp4", "16_full.ts", "16_full.mov", "16_full.mkv"])
def test_a_file_still_being_copied_is_waited_for_then_logged_whole(
    context: Context, footage_cases: FootageCases, media_dir: Path, drain: Drain, unique_id: Ids, name: str,
) -> None:
    # Given a copy that has written 40 % of the file when the item is ingested
    finished = growing_source(footage_cases, media_dir, name).read_bytes()
    target = media_dir / name
    target.write_bytes(finished[: len(finished) * 4 // 10])
    item_id = unique_id("growing")
    actions.submit(context, [NewItem(item_id, str(target), force_resume=True)])

    # When step 1 has waited for it once and the copy then completes
    wait_for(lambda: "deferred" in kinds(context, item_id), what="step 1 to wait for the copy")
    assert context.store.items.get(item_id).error is None
    with target.open("ab") as copy:
        copy.write(finished[len(finished) * 4 // 10:])
    drain()

    # Then the finished file is logged, and nothing failed or was spent on the wait
    item = context.store.items.get(item_id)
    assert item.status is Status.AVID_DESCRIPTION
    assert probe_of(context, item_id).duration_s == pytest.approx(8.0, abs=FRAME_S)
    assert cuts(context, item_id) == pytest.approx([2.0, 4.0, 6.0], abs=FRAME_S)
    assert item.source_fingerprint == fingerprint_source(target).asdict()
    assert not {"failed", "retried", "dead_lettered"} & set(kinds(context, item_id))
    [started] = [event for event in context.store.timeline.for_item(item_id)
                 if event.event == "started" and event.step == "file_info"]
    assert started.attempt == 1


def stalled_wait(item_id: str) -> dict[str, object] | None:
    """Return the wait marker of ``item_id``'s step-1 message if it is held as a stalled copy, else None."""
    held = broker.client.hvals(f"{broker.namespace}:{dq_name(FILE_INFO.queue_name)}.msgs")
    for encoded in held:
        message = Message.decode(encoded)
        wait = message.options.get(WAIT_OPTION) or {}
        if message.args[0] == item_id and wait.get("cut_short"):
            return dict(wait)
    return None


@pytest.mark.parametrize("settings", [60.0], indirect=True)
@pytest.mark.parametrize(("name", "cut"), [("16_full.mp4", "box runs past the end of the file"),
                                           ("16_full.ts", "-byte packet")])
def test_a_copy_that_stalls_past_the_settle_time_is_held_while_its_file_is_cut_short(
    context: Context, footage_cases: FootageCases, media_dir: Path, drain: Drain, unique_id: Ids,
    settings: Settings, name: str, cut: str,
) -> None:
    # Given a copy that wrote 40 % of the file when the item was ingested, then stalled
    finished = footage_cases.path(name).read_bytes()
    target = media_dir / name
    target.write_bytes(finished[: len(finished) * 4 // 10])
    written_ns = target.stat().st_mtime_ns
    item_id = unique_id("stalled")
    actions.submit(context, [NewItem(item_id, str(target), force_resume=True)])

    # When it has stayed quiet past the settle time
    wait = wait_for(lambda: stalled_wait(item_id), what="step 1 to hold the stalled copy")

    # Then step 1 holds it as a stalled copy, saying why, and has not run
    assert cut in str(wait["cut_short"])
    assert SourceStat.of(target).mtime_ns == written_ns  # quiet all along
    assert "started" not in kinds(context, item_id)
    assert context.store.items.get(item_id).status is Status.PENDING_FILE_INFO

    # When the copy goes on to the end
    with target.open("ab") as copy:
        copy.write(finished[len(finished) * 4 // 10:])
    drain()

    # Then the finished file is logged, once, and nothing failed; the timeline said why it waited
    item = context.store.items.get(item_id)
    reasons = [event.reason for event in context.store.timeline.for_item(item_id) if event.event == "deferred"]
    assert any(cut in reason and "a stalled copy" in reason for reason in reasons if reason), reasons
    assert item.status is Status.AVID_DESCRIPTION
    assert probe_of(context, item_id).duration_s == pytest.approx(8.0, abs=FRAME_S)
    assert cuts(context, item_id) == pytest.approx([2.0, 4.0, 6.0], abs=FRAME_S)
    assert not {"failed", "retried", "dead_lettered", "source_changed"} & set(kinds(context, item_id))
    assert events(context, item_id, "started").count("file_info") == 1


def test_only_a_step_1_message_carries_its_items_source() -> None:
    step_1 = first_message("carries", Status.PENDING_FILE_INFO, source="/media/A001C001.MP4")
    step_2 = first_message("carries", Status.FILE_INFO_COMPLETE, source="/media/A001C001.MP4")
    assert step_1 is not None and step_2 is not None
    assert step_1.options[SOURCE_OPTION] == "/media/A001C001.MP4"
    assert SOURCE_OPTION not in step_2.options
    # A changed source's restart goes through the route callback, which names the source too
    restart = {"options": {TRANSITION_OPTION: {"from": Status.THUMBNAILS_COMPLETE.value,
                                               "to": Status.PENDING_FILE_INFO.value, "applied": True}}}
    [routed] = next_messages(restart, {"item_id": "carries", "source": "/media/A001C001.MP4"})
    assert routed.options[SOURCE_OPTION] == "/media/A001C001.MP4"


@pytest.mark.parametrize("cancelled", [False, True])
def test_a_step_1_message_whose_source_still_changes_is_held_unless_its_item_was_cancelled(
    context: Context, media_dir: Path, unique_id: Ids, cancelled: bool,
) -> None:
    # Given an item whose source a copy is still writing, and its step-1 message, which names that source
    target = media_dir / "A001C020.MP4"
    target.write_bytes(b"\0" * 40_000)
    item_id = unique_id("held-or-skipped")
    context.store.items.create([NewItem(item_id, str(target))])
    if cancelled:
        actions.cancel(context, item_id)
    message = first_message(item_id, Status.PENDING_FILE_INFO, source=str(target))
    assert message is not None
    waiting = f"{broker.namespace}:{dq_name(message.queue_name)}"
    before = broker.client.llen(waiting)

    # When the source check runs before the step
    if not cancelled:
        # Then a live item's message is held for the copy (a delayed copy of it waits)
        with pytest.raises(SkipMessage, match="still changing"):
            source_checks.before_process_message(broker, MessageProxy(message))
        assert broker.client.llen(waiting) == before + 1
        actions.cancel(context, item_id)  # the held copy is skipped when it comes due
    else:
        # Then a cancelled item's message is not held: it goes on to be skipped by its start write
        source_checks.before_process_message(broker, MessageProxy(message))
        assert broker.client.llen(waiting) == before


def test_a_step_1_message_built_for_an_earlier_item_of_the_same_id_waits_for_the_new_items_source(
    context: Context, media_dir: Path, unique_id: Ids,
) -> None:
    # Given a message that names the settled file of an item since deleted, whose id a new item
    # took, made from a file a copy is still writing
    old, new = media_dir / "A001C021.MP4", media_dir / "A001C022.MP4"  # the old one is gone
    item_id = unique_id("id-taken-again")
    message = first_message(item_id, Status.PENDING_FILE_INFO, source=str(old))
    assert message is not None
    new.write_bytes(b"\0" * 40_000)
    context.store.items.create([NewItem(item_id, str(new))])
    waiting = f"{broker.namespace}:{dq_name(message.queue_name)}"
    before = broker.client.llen(waiting)

    # When its run has started (the old file had passed the check before the start)
    with pytest.raises(SkipMessage, match="still changing"):
        source_checks.check_started(broker, MessageProxy(message), FILE_INFO,
                                    ItemGuard(Status.PENDING_FILE_INFO, False, str(new), None))

    # Then it is held for the new item's file, and the held copy names that file
    assert broker.client.llen(waiting) == before + 1
    [held] = broker.client.lrange(waiting, before, -1)
    assert Message.decode(broker.client.hget(f"{waiting}.msgs", held)).options[SOURCE_OPTION] == str(new)
    actions.cancel(context, item_id)  # the held copy is skipped when it comes due


def test_a_step_1_message_naming_an_earlier_items_changing_file_is_checked_on_its_own_items_file(
    context: Context, media_dir: Path, unique_id: Ids,
) -> None:
    # Given a message that names the file of an item since deleted, a file now being written again,
    # and the new item of that id made from a file that has settled (no step runs: any old file will do)
    old, new = media_dir / "A001C023.MP4", Path(__file__)
    item_id = unique_id("id-taken-again-old-changing")
    context.store.items.create([NewItem(item_id, str(new))])
    message = first_message(item_id, Status.PENDING_FILE_INFO, source=str(old))
    assert message is not None
    old.write_bytes(b"\0" * 10)
    waiting = f"{broker.namespace}:{dq_name(message.queue_name)}"
    before = broker.client.llen(waiting)
    proxy = MessageProxy(message)

    # When the source check runs before the step, Then it is not held on the other file
    source_checks.before_process_message(broker, proxy)
    assert broker.client.llen(waiting) == before
    assert proxy.options[SOURCE_OPTION] == str(new)


def test_a_resume_whose_source_changed_starts_again_at_step_1(
    context: Context, footage_cases: FootageCases, media_dir: Path, drain: Drain, unique_id: Ids,
) -> None:
    # Given an item logged up to the prompt from a 2 s clip
    target = media_dir / "A001C003.MP4"
    target.write_bytes(footage_cases.path("21_CARD_A/PRIVATE/M4ROOT/CLIP/C0001.MP4").read_bytes())
    item_id = unique_id("replaced")
    actions.submit(context, [NewItem(item_id, str(target))])
    drain()
    assert context.store.items.get(item_id).status is Status.AWAITING_USER_INPUT

    # When the file is replaced by a 3 s clip and the item is resumed
    target.write_bytes(footage_cases.path("21_CARD_B/PRIVATE/M4ROOT/CLIP/C0001.MP4").read_bytes())
    actions.prompt(context, item_id, "Describe the bars")
    drain()

    # Then it went back through step 1 and waits again, with the new file's facts
    item = context.store.items.get(item_id)
    assert item.status is Status.AWAITING_USER_INPUT
    assert item.prompt == "Describe the bars"
    assert events(context, item_id, "source_changed") == ["analysis"]
    # Checked once the run held the item, with the source its start write returned.
    analysis = [event.event for event in context.store.timeline.for_item(item_id) if event.step == "analysis"]
    assert analysis[analysis.index("source_changed") - 1] == "started"
    # ... and its job ends there, skipped, not started for ever.
    [changed] = [event for event in context.store.timeline.for_item(item_id) if event.event == "source_changed"]
    job = Jobs(context.store.sessions).get(str(changed.message_id))
    assert (job.status, job.meta["reason"]) == ("skipped", "the source changed since step 1; the item starts again "
                                                           "at step 1")
    assert events(context, item_id, "succeeded")[-3:] == ["file_info", "thumbnails", "assess"]
    assert probe_of(context, item_id).duration_s == pytest.approx(3.0, abs=FRAME_S)
    assert item.source_fingerprint == fingerprint_source(target).asdict()

    actions.prompt(context, item_id, "Describe the bars")
    drain()
    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    assert len(context.store.results.frames(item_id)) == 1


def test_a_file_whose_times_lie_in_the_future_settles_after_being_watched_unchanged(
    context: Context, footage_cases: FootageCases, media_dir: Path, drain: Drain, unique_id: Ids,
) -> None:
    # Given a file copied to a share whose clock runs an hour ahead
    target = media_dir / "C0002.MP4"
    target.write_bytes(footage_cases.path("21_CARD_A/PRIVATE/M4ROOT/CLIP/C0001.MP4").read_bytes())
    ahead_ns = target.stat().st_mtime_ns + 3600 * 10**9
    os.utime(target, ns=(ahead_ns, ahead_ns))
    item_id = unique_id("ahead")

    actions.submit(context, [NewItem(item_id, str(target), force_resume=True)])
    drain(timeout_s=60)

    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    assert "deferred" in kinds(context, item_id)


# --- Bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content", "error_type", "reason"), [
    ("empty.mp4", lambda cases: b"", "EmptyMedia", "file is empty"),
    ("notes.mov", lambda cases: b"call sheet, not footage\n" * 40, "NotMedia", "ffprobe cannot read it"),
    ("copy_died.mp4", lambda cases: cases.path("16_full.mp4").read_bytes()[:40_000], "NotMedia", "moov atom not found"),
])
def test_bad_input_fails_for_good_with_a_readable_reason_only_after_the_settle_time(
    context: Context, footage_cases: FootageCases, media_dir: Path, drain: Drain, unique_id: Ids,
    name: str, content: Callable[[FootageCases], bytes], error_type: str, reason: str,
) -> None:
    target = media_dir / name
    target.write_bytes(content(footage_cases))
    written_s = max(target.stat().st_mtime, target.stat().st_ctime)
    item_id = unique_id("bad")

    actions.submit(context, [NewItem(item_id, str(target), force_resume=True)])
    drain()

    item = context.store.items.get(item_id)
    assert item.error is not None
    assert (item.error["type"], item.error["step"], item.error["permanent"]) == (error_type, "file_info", True)
    assert name in item.error["message"] and reason in item.error["message"]
    assert item.dead_lettered and item.status is Status.PENDING_FILE_INFO
    timeline = context.store.timeline.for_item(item_id)
    [started] = [event for event in timeline if event.event == "started"]
    assert [event.event for event in timeline].index("deferred") < timeline.index(started)
    assert started.at.timestamp() >= written_s + SETTLE_S - 0.01
    if name == "copy_died.mp4":
        # Cut short (its 'mdat' runs past its end): waited for as a stalled copy first, then failed
        assert started.at.timestamp() >= written_s + STALL_S - 0.01


# --- Audio-only items ------------------------------------------------------------------------


def audio_variant(footage_cases: FootageCases, media_dir: Path, name: str) -> Path:
    """Return an audio-only case, or make a variant of its kind from 07's speech."""
    case = footage_cases.path(name)
    if case.is_file():
        return case
    speech = str(footage_cases.path("07_audio_only.wav"))
    target = media_dir / name
    if name.startswith("cover"):
        cover = media_dir / "cover.png"
        make_clip(cover, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=1", "-frames:v", "1")
        codecs = {".mp3": ("libmp3lame", "mjpeg"), ".flac": ("flac", "png")}[target.suffix]
        return make_clip(target, "-i", speech, "-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:a", codecs[0],
                         "-c:v", codecs[1], "-disposition:v:0", "attached_pic")
    rates = {".wav": ("-ar", "44100", "-c:a", "pcm_s16le"), ".mov": ("-c:a", "pcm_s24le")}[target.suffix]
    return make_clip(target, "-i", speech, *rates)


@pytest.mark.parametrize("name", [
    "07_audio_only.wav", "08_cover_art.m4a", "cover_art.mp3", "cover_art.flac", "sound_roll_44k.wav",
    "sound_roll.mov",
])
def test_audio_only_item_gets_file_info_and_a_transcript_and_no_picture_steps(
    context: Context, footage_cases: FootageCases, media_dir: Path, drain: Drain, unique_id: Ids, name: str,
) -> None:
    source = audio_variant(footage_cases, media_dir, name)
    item_id = unique_id("sound")

    # Default mode: an audio-only item has no step 3 to halt at.
    actions.submit(context, [NewItem(item_id, str(source))])
    drain()

    item = context.store.items.get(item_id)
    assert item.status is Status.AVID_DESCRIPTION
    assert (item.media_kind, item.has_audio) == ("audio", True)
    assert events(context, item_id, "succeeded") == ["file_info", "transcription"]
    counts = context.store.results.counts(item_id)
    assert (counts["scenes"], counts["frames"]) == (0, 0)
    assert context.store.results.artifacts(item_id) == []
    text = " ".join(segment.text for segment in context.store.results.transcript(item_id)).lower()
    assert sum(word in text for word in SPOKEN) >= 3, text


def test_force_resume_all_leaves_audio_only_items_alone(
    context: Context, footage_cases: FootageCases, drain: Drain, unique_id: Ids,
) -> None:
    item_id = unique_id("roll")
    actions.submit(context, [NewItem(item_id, str(footage_cases.path("07_audio_only.wav")))])
    drain()

    assert actions.force_resume_all(context) == []
    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION


# --- Camera cards ----------------------------------------------------------------------------


def avchd_cards(media_dir: Path) -> list[Path]:
    """Two AVCHD cards whose first clip is ``00000.MTS`` on both, 2 s and 3 s long."""
    clips = []
    for card, (pattern, duration) in {"CARD_A": ("testsrc", "2"), "CARD_B": ("smptebars", "3")}.items():
        clip = media_dir / card / "PRIVATE" / "AVCHD" / "BDMV" / "STREAM" / "00000.MTS"
        clip.parent.mkdir(parents=True)
        clips.append(make_clip(clip, "-f", "lavfi", "-i", f"{pattern}=size=320x240:rate=50,trim=duration={duration}",
                               *H264, "-mpegts_m2ts_mode", "1", "-f", "mpegts"))
    return clips


@pytest.mark.parametrize("layout", ["xavc", "avchd"])
def test_two_cards_clips_with_one_name_are_logged_as_two_items_and_found_again(
    context: Context, footage_cases: FootageCases, media_dir: Path, drain: Drain, layout: str,
) -> None:
    # Given two cards that both hold a first clip with the same name
    if layout == "xavc":
        paths = [footage_cases.path(f"21_CARD_{card}/PRIVATE/M4ROOT/CLIP/C0001.MP4") for card in "AB"]
    else:
        paths = avchd_cards(media_dir)
    sources = check_paths([str(path) for path in paths], context.settings.resolved_media_roots)

    # When both are ingested without ids, as ``autolog ingest`` does
    plan = plan_items(sources, stored_items(context.store.items), force_resume=True)
    actions.submit(context, plan.new)
    drain()

    # Then they are two items, each logged from its own file
    assert len(set(plan.ids)) == 2
    for item_id, source, duration_s in zip(plan.ids, sources, (2.0, 3.0), strict=True):
        item = context.store.items.get(item_id)
        assert (item.source, item.status) == (source, Status.AVID_DESCRIPTION)
        assert probe_of(context, item_id).duration_s == pytest.approx(duration_s, abs=FRAME_S)

    # And ingesting the same paths again finds the same items
    again = plan_items(sources, stored_items(context.store.items))
    assert (again.new, again.ids) == ((), plan.ids)
    assert len(context.store.items.list()) == 2


def at_step_3(context: Context, footage_cases: FootageCases, target: Path, item_id: str) -> tuple[str, Path]:
    """Make ``item_id`` from a 2 s card clip copied to ``target``, at step 3's status with step 1's fingerprint."""
    target.write_bytes(footage_cases.path("21_CARD_A/PRIVATE/M4ROOT/CLIP/C0001.MP4").read_bytes())
    context.store.items.create([NewItem(item_id, str(target))])
    context.store.items.transition(item_id, Status.PENDING_FILE_INFO, Status.THUMBNAILS_COMPLETE,
                                   changes={"source_fingerprint": fingerprint_source(target).asdict()})
    return item_id, target


def test_a_step_that_failed_because_its_source_was_replaced_starts_the_item_again(
    context: Context, footage_cases: FootageCases, media_dir: Path, unique_id: Ids,
) -> None:
    # Given an item at step 3 whose file is replaced while step 3 reads it, so step 3 fails
    item_id, target = at_step_3(context, footage_cases, media_dir / "A001C010.MP4", unique_id("replaced-mid-step"))
    target.write_bytes(footage_cases.path("21_CARD_B/PRIVATE/M4ROOT/CLIP/C0001.MP4").read_bytes())
    message = MessageProxy(assess.message(item_id))

    # When the failure comes back to the middleware
    source_checks.after_process_message(broker, message, exception=CorruptMedia(str(target), "decoding stopped"))

    # Then the item starts again at step 1, and the message is neither retried nor dead-lettered
    assert context.store.items.get(item_id).status is Status.PENDING_FILE_INFO
    assert events(context, item_id, "source_changed") == ["assess"]
    assert message.options[SUPERSEDED_OPTION] is True
    # ... with step 1's own message, committed with the status: its start deletes its outbox row, where a
    # message to the route callback has no start, and a relay could send a copy of it after the lease
    queued = [(stored.actor, stored.item_id) for stored in messages_in_flight(broker.client, broker.namespace,
                                                                              ["probe", "control"])]
    assert queued == [(FILE_INFO.actor_name, item_id)]


def test_a_step_that_failed_with_its_source_unchanged_keeps_its_failure(
    context: Context, footage_cases: FootageCases, media_dir: Path, unique_id: Ids,
) -> None:
    item_id, target = at_step_3(context, footage_cases, media_dir / "A001C011.MP4", unique_id("failed-same-file"))
    message = MessageProxy(assess.message(item_id))

    source_checks.after_process_message(broker, message, exception=CorruptMedia(str(target), "decoding stopped"))

    assert context.store.items.get(item_id).status is Status.THUMBNAILS_COMPLETE
    assert SUPERSEDED_OPTION not in message.options


def test_a_changed_source_whose_restart_cannot_be_written_waits_for_the_store(
    settings: Settings, footage_cases: FootageCases, media_dir: Path, unique_id: Ids, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a step-3 run whose source changed since step 1, and a store locked by another writer
    monkeypatch.setenv("AUTOLOG_SQLITE_BUSY_TIMEOUT_MS", "100")
    store = Store.open(f"sqlite:///{tmp_path / 'locked.db'}")
    target = media_dir / "A001C012.MP4"
    target.write_bytes(footage_cases.path("21_CARD_A/PRIVATE/M4ROOT/CLIP/C0001.MP4").read_bytes())
    item_id = unique_id("locked-restart")
    store.items.create([NewItem(item_id, str(target))])
    stored = fingerprint_source(target).asdict()
    target.write_bytes(footage_cases.path("21_CARD_B/PRIVATE/M4ROOT/CLIP/C0001.MP4").read_bytes())
    services = Services(settings=settings)
    services.install(Context.build(settings, store=store))
    checks = SourceChecks(services=services)
    locker = sqlite3.connect(tmp_path / "locked.db")
    locker.execute("BEGIN EXCLUSIVE")
    message = MessageProxy(assess.message(item_id))
    waiting = f"{broker.namespace}:{dq_name(assess.queue_name)}"
    before = broker.client.llen(waiting)
    try:
        # When the run checks its source, Then it is put back to wait for the store, not run unchecked
        with pytest.raises(SkipMessage, match="store unavailable"):
            checks.check_started(broker, message, ASSESS, ItemGuard(Status.THUMBNAILS_COMPLETE, False, str(target),
                                                                    stored))
    finally:
        locker.rollback()
        locker.close()
        services.uninstall()
        store.close()
    assert broker.client.llen(waiting) == before + 1
