"""``autolog demo``: sample clips through the whole stack, then a report of what it made."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from autolog.item_ids import stored_items
from autolog.settings import Settings
from autolog.store import ItemView, Store
from ops.errors import DemoMediaFailed
from ops.ingest import check_paths, plan_items
from ops.progress import error_summary, is_failed, wait_for_items
from ops.runtime import pipeline_context
from ops.stack import Stack, autolog_command, report_up

#: The clips the demo ingests: three valid ones and two broken ones that show failure handling.
DEMO_CLIPS = ("cuts_noaudio.mp4", "cuts_audio.mp4", "speech.mp4", "not_media.mp4", "truncated_partial.mp4")

#: Demo item ids are ``DEMO-<stem>``.
ID_PREFIX = "DEMO-"

MAKE_TEST_MEDIA = Path(__file__).resolve().parent / "make_test_media.sh"


def make_clips(folder: Path) -> list[Path]:
    """Make the demo clips in ``folder`` unless they are there already; return their paths.

    The script makes more clips than the demo ingests (an empty file, a WAV, another broken
    MP4 for the tests); it runs in a scratch folder and only the demo's clips and the manifest
    move into ``folder``, which is a watch folder by default: the sweep would log the others as
    items the demo never mentions.

    Raises:
        DemoMediaFailed: the script failed (it needs ffmpeg and espeak-ng).
    """
    clips = [folder / name for name in DEMO_CLIPS]
    if (folder / "manifest.json").is_file() and all(clip.is_file() for clip in clips):
        return clips
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="autolog-demo-clips-") as scratch:
        made = subprocess.run(["bash", str(MAKE_TEST_MEDIA), scratch], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise DemoMediaFailed(f"{MAKE_TEST_MEDIA.name} failed: {made.stderr.strip() or made.returncode}")
        # The manifest last: with it in place, the clips are taken as made.
        for name in (*DEMO_CLIPS, "manifest.json"):
            shutil.move(Path(scratch) / name, folder / name)
    return clips


def format_report(store: Store, items: Sequence[ItemView]) -> str:
    """Render each item's status, frames and transcript, and each failure's reason."""
    blocks = []
    for item in items:
        lines = [f"== {item.id}  {item.status.value}{'  FAILED' if is_failed(item) else ''}",
                 f"   source: {item.source}"]
        if item.error:
            lines.append(f"   reason: {error_summary(item.error, width=200)}")
        for frame in store.results.frames(item.id):
            keywords = ", ".join(frame.keywords)
            lines.append(f"   {frame.timecode}  {frame.description}  [{keywords}]")
        transcript = " ".join(segment.text for segment in store.results.transcript(item.id)).strip()
        if transcript:
            lines.append(f"   transcript: {transcript}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def demo(args: argparse.Namespace, settings: Settings) -> int:
    """Make the clips, bring the stack up, ingest, wait, report; stop the stack with ``--down``."""
    folder = settings.resolved_media_roots[0] / "demo"
    print(f"making sample clips in {folder} ...", file=sys.stderr)
    clips = make_clips(folder)
    stack = Stack(settings)
    print("starting Redis and the worker pools ...", file=sys.stderr)
    try:
        report_up(stack.up(), stack.settings)
        sys.stdout.flush()  # the key and the stack before the progress on stderr, also when piped
        timed_out = _ingest_and_report(clips, settings, timeout_s=args.timeout)
        if args.down:
            stack.down()
    finally:
        stack.pools.close()
    if not args.down:
        print(f"\nThe stack is still running; stop it with `{autolog_command()} down`.")
    return 1 if timed_out else 0


def _ingest_and_report(clips: Sequence[Path], settings: Settings, *, timeout_s: float) -> bool:
    """Ingest the clips not ingested by an earlier demo, wait, print the report; True on timeout."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        sources = check_paths([str(clip) for clip in clips], settings.resolved_media_roots)
        # The demo's folder is a watch folder by default: a clip the sweep ingested already is reused.
        watched = {source: found[0] for source in sources if (found := context.store.items.with_source(source))}
        plan = plan_items([source for source in sources if source not in watched], stored_items(context.store.items),
                          force_resume=True, prefix=ID_PREFIX)
        for existing in [*plan.existing, *watched.values()]:
            print(f"{existing.id} exists from an earlier demo or the watch folder ({existing.status.value}); "
                  "reusing it", file=sys.stderr)
        actions.submit(context, plan.new)
        ids = [*plan.ids, *(item.id for item in watched.values())]
        outcome = wait_for_items(lambda: [context.store.items.get(item_id) for item_id in ids],
                                 timeout_s=timeout_s, out=sys.stderr)
        print(format_report(context.store, outcome.items))
        return outcome.timed_out
