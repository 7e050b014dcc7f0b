"""The item commands: ingest, status, search, prompt, resume, retry, cancel, force-resume-all.

Every change goes through ``pipelines.actions``. ``pipelines`` is imported inside each
command, after ``pipeline_context`` has published ``REDIS_URL``, because importing it
imports ``actors``, which builds the broker from the environment.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from autolog.item_ids import stored_items
from autolog.settings import Settings
from autolog.store import ItemView
from ops.ingest import check_paths, plan_items
from ops.progress import wait_for_items
from ops.render import (
    all_items,
    format_item,
    format_item_list,
    format_search_page,
    item_document,
    item_list_document,
)
from ops.runtime import open_store, pipeline_context


def print_json(document: Any) -> None:
    """Print ``document`` as indented JSON on stdout."""
    print(json.dumps(document, indent=2, sort_keys=False))


def print_item(item: ItemView) -> None:
    """Print where an item stands after an action."""
    print(f"{item.id}: {item.status.value}{' (cancelled)' if item.cancelled else ''}")


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Submit files as items, or find the items they already are; with ``--wait``, follow them until they rest."""
    sources = check_paths(args.paths, settings.resolved_media_roots, item_id=args.id)
    with pipeline_context(settings) as context:
        from pipelines import actions

        plan = plan_items(sources, stored_items(context.store.items), item_id=args.id,
                          force_resume=args.force_resume)
        for existing in plan.existing:
            print(f"exists {existing.id} {existing.source} ({existing.status.value})")
        for item in actions.submit(context, plan.new):
            print(f"queued {item.id} {item.source}")
        if not args.wait:
            return 0
        ids = list(plan.ids)
        outcome = wait_for_items(lambda: [context.store.items.get(item_id) for item_id in ids],
                                 timeout_s=args.timeout, out=sys.stderr)
        return 0 if outcome.ok else 1


def status(args: argparse.Namespace, settings: Settings) -> int:
    """Show all items with counts per status, or one item in full."""
    with open_store(settings) as store:
        if args.id is None:
            items = all_items(store)
            counts = store.items.count_by_status()
            if args.json:
                print_json(item_list_document(items, counts))
            else:
                print(format_item_list(items, counts))
            return 0
        if args.json:
            print_json(item_document(store, args.id))
            return 0
        item = store.items.get(args.id)
        print(format_item(item, store.results.frames(item.id), store.results.transcript(item.id),
                          store.timeline.for_item(item.id)))
        return 0


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

        print_item(actions.prompt(context, args.id, args.text))
    return 0


def resume(args: argparse.Namespace, settings: Settings) -> int:
    """Release an item waiting for input, without a prompt."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        print_item(actions.prompt(context, args.id, None))
    return 0


def retry(args: argparse.Namespace, settings: Settings) -> int:
    """Queue again the step an item stopped at."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        print_item(actions.retry(context, args.id))
    return 0


def cancel(args: argparse.Namespace, settings: Settings) -> int:
    """Stop an item; queued and later steps skip it."""
    with pipeline_context(settings) as context:
        from pipelines import actions

        print_item(actions.cancel(context, args.id))
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
