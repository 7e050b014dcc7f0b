"""The item commands: ingest, status, search, prompt, resume, retry, cancel, uncancel, rerun, delete,
force-resume-all.

Every change goes through ``pipelines.actions``. ``pipelines`` is imported inside each
command, after ``pipeline_context`` has published ``REDIS_URL``, because importing it
imports ``actors``, which builds the broker from the environment.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import TYPE_CHECKING, Any

from autolog.item_ids import stored_items
from autolog.settings import Settings
from autolog.statuses import Status, parse_status
from autolog.store import ItemView
from ops.errors import UsageError
from ops.ingest import check_paths, left_out_note, plan_items
from ops.progress import awaiting_prompt_hint, wait_for_items
from ops.render import (
    format_item,
    format_item_list,
    format_search_page,
    format_table,
    item_document,
    item_list_document,
)
from ops.runtime import open_store, pipeline_context

if TYPE_CHECKING:
    from pipelines.actions import Queued


def print_json(document: Any) -> None:
    """Print ``document`` as indented JSON on stdout."""
    print(json.dumps(document, indent=2, sort_keys=False))


def print_item(item: ItemView) -> None:
    """Print where an item stands after an action."""
    print(f"{item.id}: {item.status.value}{' (cancelled)' if item.cancelled else ''}")


def print_queued(answer: Queued) -> None:
    """Print where an item stands after an action that queues, and which message carries it."""
    print_item(answer.item)
    if answer.already_queued:
        print(f"already queued as job {answer.job_id}")
    elif answer.job_id:
        print(f"queued as job {answer.job_id}")
    elif not answer.queued and not answer.reason:
        print("autolog: warning: stored; Redis is down, discovery will queue it", file=sys.stderr)


def status_option(text: str) -> Status:
    """Return the status ``--status`` names (see ``autolog.statuses.parse_status``).

    Raises:
        UsageError: it names no status, or several.
    """
    try:
        return parse_status(text)
    except ValueError as ex:
        raise UsageError(f"--status: {ex}") from ex


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Submit files as items, or find the items they already are; with ``--wait``, follow them until they rest."""
    sources = check_paths(args.paths, settings.resolved_media_roots, item_id=args.id,
                          left_out=lambda folder, others: print(f"autolog: note: {left_out_note(folder, others)}",
                                                                file=sys.stderr))
    with pipeline_context(settings) as context:
        from pipelines import actions

        plan = plan_items(sources, stored_items(context.store.items), item_id=args.id,
                          force_resume=args.force_resume)
        for existing in plan.existing:
            print(f"exists {existing.id} {existing.source} ({existing.status.value})")
        deferred = 0
        for answer in actions.submit(context, plan.new):
            print(f"{'queued' if answer.queued else 'stored'} {answer.item.id} {answer.item.source}")
            deferred += not answer.queued
        if deferred:
            # Redis down, or this command stalled past the send deadline (a locked store): each item's
            # queue_deferred event says which.
            print(f"autolog: warning: {deferred} item(s) stored, not yet queued (Redis unavailable or the store slow:"
                  " see each item's queue_deferred event); a worker's outbox relay queues them",
                  file=sys.stderr)
        if not args.wait:
            return 0
        # What went to stdout comes before the progress on stderr, also when both are piped.
        sys.stdout.flush()
        ids = list(plan.ids)
        outcome = wait_for_items(lambda: [context.store.items.get(item_id) for item_id in ids],
                                 timeout_s=args.timeout, out=sys.stderr)
        if (hint := awaiting_prompt_hint(outcome.items)) is not None:
            print(hint, file=sys.stderr)
        return 0 if outcome.ok else 1


def status(args: argparse.Namespace, settings: Settings) -> int:
    """Show items (by status and id pattern, a page at a time) with counts per status, or one item in full."""
    with open_store(settings) as store:
        if args.id is None:
            status_ = status_option(args.status) if args.status else None
            page = store.items.list(status=status_, id_pattern=args.match, after_id=args.after, limit=args.limit,
                                    failed=args.failed, dead_lettered=args.dead_lettered)
            counts = store.items.count_by_status(id_pattern=args.match)
            next_after = page[-1].id if len(page) == args.limit else None
            if args.json:
                print_json({**item_list_document(page, counts), "next_after": next_after})
            else:
                print(format_item_list(page, counts,
                                       filtered=bool(status_ or args.failed or args.dead_lettered)))
                if next_after:
                    print(f"\nmore: {shlex.join(_next_page(args, next_after))}")
            return 0
        if args.json:
            print_json(item_document(store, args.id))
            return 0
        item = store.items.get(args.id)
        print(format_item(item, store.results.frames(item.id), store.results.transcript(item.id),
                          store.timeline.for_item(item.id)))
        return 0


def _next_page(args: argparse.Namespace, after: str) -> list[str]:
    """The ``autolog status`` command line of the page after ``after``, with this page's filters and size."""
    command = ["autolog", "status", "--after", after]
    for flag, value in (("--status", args.status), ("--match", args.match)):
        if value:
            command += [flag, value]
    command += [flag for flag, on in (("--failed", args.failed), ("--dead-lettered", args.dead_lettered)) if on]
    return [*command, "--limit", str(args.limit)]


def search(args: argparse.Namespace, settings: Settings) -> int:
    """Show the items matching a search, best first, each with its best match in context."""
    with open_store(settings) as store:
        page = store.search.search(args.query, status=args.status, limit=args.limit, offset=args.offset)
    if args.json:
        print_json(page.to_dict())
    else:
        print(format_search_page(page))
    return 0


def prompt(args: argparse.Namespace, settings: Settings) -> int:
    """Release an item waiting for input, with the user's prompt."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        print_queued(actions.prompt(context, args.id, args.text))
    return 0


def resume(args: argparse.Namespace, settings: Settings) -> int:
    """Release an item waiting for input, without a prompt."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        print_queued(actions.prompt(context, args.id, None))
    return 0


def retry(args: argparse.Namespace, settings: Settings) -> int:
    """Queue again the step an item stopped at."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        print_queued(actions.retry(context, args.id))
    return 0


def cancel(args: argparse.Namespace, settings: Settings) -> int:
    """Stop an item; queued and later steps skip it."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        print_item(actions.cancel(context, args.id))
    return 0


def uncancel(args: argparse.Namespace, settings: Settings) -> int:
    """Undo a cancel and queue the item from where it stopped."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        print_queued(actions.uncancel(context, args.id))
    return 0


def rerun(args: argparse.Namespace, settings: Settings) -> int:
    """Re-log a finished or failed item from a chosen step."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        print_queued(actions.rerun(context, args.id, args.from_step))
    return 0


def delete(args: argparse.Namespace, settings: Settings) -> int:
    """Delete an item with its timeline, results and artifact files."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        removed = actions.delete(context, args.id)
    print(f"deleted {args.id} ({len(removed)} artifact file(s) removed)")
    return 0


def force_resume_all(args: argparse.Namespace, settings: Settings) -> int:
    """Reprocess from step 3, with force-resume, every item step 3 has run for."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        moved = actions.force_resume_all(context)
    for item_id in moved:
        print(f"requeued {item_id}")
    print(f"{len(moved)} item(s) sent back to step 3")
    return 0


def queues(args: argparse.Namespace, settings: Settings) -> int:
    """List the queues with their counts, or pause, resume or purge one (as ``/queues`` does)."""
    if args.action != "list" and not args.queue:
        raise UsageError(f"queues {args.action} needs a queue name (see `autolog queues`)")
    with pipeline_context(settings) as context:
        from actors import broker
        from pipelines.queues import Queues

        control = Queues.of_broker(broker)
        if args.action == "purge":
            outcome = control.purge(context, args.queue)
            if args.json:
                print_json(outcome.to_dict())
            else:
                print(f"purged {outcome.purged} message(s) from {outcome.queue}; items marked purged: "
                      f"{', '.join(outcome.items) or 'none'}")
            return 0
        if args.action == "pause":
            views = [control.pause(args.queue)]
        elif args.action == "resume":
            views = [control.resume(args.queue)]
        else:
            views = [control.get(args.queue)] if args.queue else control.list()
    if args.json:
        print_json([view.to_dict() for view in views])
        return 0
    print(format_table(("QUEUE", "STEP", "QUEUED", "DELAYED", "HELD", "RUNNING", "DEAD", "PAUSED"),
                       [(view.name, view.step, view.queued, view.delayed, view.held, view.in_progress,
                         view.dead_lettered, view.paused) for view in views]))
    return 0
