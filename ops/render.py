"""Plain-text tables and JSON documents for the CLI's reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autolog.media.probe import container_name, field_order_name
from autolog.media.timecode import probed_rate, timecode_duration
from autolog.store import EventView, FrameView, ItemView, SearchPage, SegmentView, Store
from ops.pools import PoolStatus
from ops.progress import error_summary


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Lay out ``rows`` under ``headers`` in left-aligned columns; None shows as empty."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = ["  ".join(header.ljust(widths[i]) for i, header in enumerate(headers)).rstrip()]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("\n", " ")


def format_item_list(items: Sequence[ItemView], counts: Mapping[str, int], *, filtered: bool = False) -> str:
    """Render the items table followed by the count of items per status.

    ``filtered``: the table holds only some of the items the counts count (``--failed``, ``--status``), so the
    counts' column says it counts them all.
    """
    rows = [(item.id, item.status.value + (" (cancelled)" if item.cancelled else ""),
             item.updated_at.strftime("%Y-%m-%d %H:%M:%S"), error_summary(item.error, width=60))
            for item in items]
    table = format_table(("ID", "STATUS", "UPDATED", "ERROR"), rows) if rows else "no items"
    tally = format_table(("STATUS", "ALL ITEMS" if filtered else "ITEMS"), sorted(counts.items()))
    return f"{table}\n\n{tally}" if counts else table


def item_list_document(items: Sequence[ItemView], counts: Mapping[str, int]) -> dict[str, Any]:
    """Return the items list as JSON."""
    return {"items": [item.to_dict() for item in items], "counts": dict(counts)}


def item_document(store: Store, item_id: str) -> dict[str, Any]:
    """Return one item with its frames, transcript and timeline, as JSON.

    Raises:
        ItemNotFound: no item has that id.
    """
    item = store.items.get(item_id)
    return {
        "item": item.to_dict(),
        "frames": [frame.to_dict() for frame in store.results.frames(item_id)],
        "transcript": [segment.to_dict() for segment in store.results.transcript(item_id)],
        "timeline": [event.to_dict() for event in store.timeline.for_item(item_id)],
    }


def format_item(
    item: ItemView, frames: Sequence[FrameView], transcript: Sequence[SegmentView], timeline: Sequence[EventView]
) -> str:
    """Render one item's fields, frames, transcript and timeline."""
    fields: list[tuple[str, object]] = [
        ("id", item.id), ("source", item.source), ("status", item.status.value),
        ("force resume", item.force_resume), ("prompt", item.prompt), ("has audio", item.has_audio),
        ("cancelled", item.cancelled), ("dead-lettered", item.dead_lettered),
        ("error", error_summary(item.error, width=200) or None),
        ("created", item.created_at.isoformat(timespec="seconds")),
        ("updated", item.updated_at.isoformat(timespec="seconds")),
    ]
    if item.probe:
        fields.extend(footage_facts(item.probe, item.source))
    width = max(len(name) for name, _ in fields)
    parts = ["\n".join(f"{name.ljust(width)}  {_cell(value)}" for name, value in fields)]
    parts.append("Frames\n" + (format_table(
        ("TIMECODE", "DESCRIPTION", "KEYWORDS", "TRANSCRIPT"),
        [(frame.timecode, frame.description, ", ".join(frame.keywords), frame.transcript) for frame in frames],
    ) if frames else "none"))
    if transcript:
        parts.append("Transcript\n" + "\n".join(
            f"{segment.start_s:7.2f}-{segment.end_s:7.2f}  {segment.text}" for segment in transcript))
    parts.append("Timeline\n" + format_table(
        ("TIME", "EVENT", "STEP", "ATTEMPT", "WORKER", "WAIT_MS", "RUN_MS", "ERROR OR REASON"),
        [(event.at.strftime("%H:%M:%S.%f")[:-3], event.event, event.step, event.attempt, event.worker,
          event.wait_ms, event.run_ms,
          f"{event.error_type}: {event.error_message}" if event.error_type else event.reason)
         for event in timeline],
    ))
    return "\n\n".join(parts)


def footage_facts(probe: Mapping[str, Any], source: str) -> list[tuple[str, object]]:
    """Return the file facts a logger reads first, as (name, value) rows, from a stored probe of ``source``."""
    container = container_name(probe.get("container"), source)
    seconds = float(probe.get("duration_s", 0.0))
    counted = timecode_duration(seconds, probed_rate(probe), drop_frame=bool(probe.get("drop_frame")))
    facts: list[tuple[str, object]] = [("media", f"{probe.get('media_kind', 'video')}, {container}, {seconds:.3f} s"
                                                 + (f" ({counted})" if counted else ""))]
    if probe.get("start_timecode"):
        facts.append(("timecode", f"{probe['start_timecode']} "
                                  f"({'drop-frame' if probe.get('drop_frame') else 'non-drop'}, "
                                  f"from {probe.get('timecode_source', 'default')})"
                                  + (f", reel {probe['reel']}" if probe.get("reel") else "")))
    if probe.get("media_kind", "video") == "video":
        rate = f"{probe.get('nominal_fps', probe.get('fps'))} nominal"
        if probe.get("average_fps") is not None:
            rate += f", {float(probe['average_fps']):.3f} average"
        facts.append(("rate", rate + (", variable" if probe.get("variable_frame_rate") else "")))
        facts.append(("picture", f"{probe.get('video_codec')} {probe.get('width')}x{probe.get('height')}"
                                 f" shown {probe.get('display_width')}x{probe.get('display_height')}"
                                 f", rotation {probe.get('rotation', 0)}, SAR {probe.get('sample_aspect_ratio')}"
                                 f", {field_order_name(probe.get('field_order'))}"
                                 f", transfer {probe.get('color_transfer') or 'untagged'}"))
    tracks = probe.get("audio_tracks") or []
    facts.append(("audio", "; ".join(
        f"#{track['index']} {track['codec']} {track['channels']} ch {track['sample_rate']} Hz"
        + (f" from {float(track['start_s']):.3f} s" if track.get("start_s") else "")
        for track in tracks if isinstance(track, dict)) or "none"))
    return facts


def format_pools(statuses: Sequence[PoolStatus]) -> str:
    """Render pool statuses as a table with each queue's depth."""
    rows = []
    for pool in statuses:
        depth = pool.depth
        rows.append((pool.name, pool.queue, pool.processes, pool.threads, pool.pid, pool.alive,
                     *((depth.ready, depth.delayed, depth.in_flight, depth.dead) if depth else ("?",) * 4)))
    table = format_table(("POOL", "QUEUE", "PROCESSES", "THREADS", "PID", "ALIVE", "READY", "DELAYED",
                          "IN_FLIGHT", "DEAD"), rows)
    notes = [f"{pool.name}: crash-looping: {pool.crash_loop}" for pool in statuses if pool.crash_loop]
    return "\n".join([table, *notes])


def format_search_page(page: SearchPage) -> str:
    """Lay out a search page: one row per item, best first, its best match in ``[brackets]``, then the count."""
    rows = [(hit.item_id, hit.status.value, hit.field.value, hit.timecode, hit.marked()) for hit in page.hits]
    shown = f"{page.offset + 1}-{page.offset + len(page.hits)} of {page.total}" if page.hits else f"0 of {page.total}"
    more = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    table = format_table(("ID", "STATUS", "FIELD", "TIMECODE", "MATCH"), rows) if rows else "no items match"
    return f"{table}\n{shown} items for {page.query!r}{more}"
