"""Paths of the OpenAPI document: every route the app serves, with its answers."""

from __future__ import annotations

from typing import Any

from autolog.exports import (
    AVID_MARKER_COLOURS,
    DEFAULT_MARKER_COLOUR,
    DEFAULT_TIMING,
    FINAL_STATUSES,
    FORMATS,
    MAX_IDS,
    MAX_TEXT_CHARS,
    SELECTION_FORMATS,
    TIMINGS,
)
from autolog.store.jobs import JOB_STATUSES
from autolog.store.search_query import MAX_QUERY_CHARS
from web.openapi.schemas import ITEM_ID, JSON, ref, request_obj

ERRORS = {
    "400": "Malformed JSON or a bad field; the description names the field.",
    "401": "Missing or wrong API key, bearer token or signature.",
    "403": "Signed in by session cookie without the session's CSRF token, or a login form from another site.",
    "404": "Unknown id.",
    "409": "The id is taken, or the item is not at a status the action needs.",
    "413": "More than 1,000 items, or a body over 4 MiB.",
    "503": "Redis or the database is down.",
}


def _error(code: str) -> JSON:
    return {"description": ERRORS[code], "content": {"application/json": {"schema": ref("Error")}}}


def op(summary: str, ok: str, schema: str | None, *, tag: str, errors: str = "", params: list[JSON] | None = None,
       body: JSON | None = None, secure: bool = True, description: str | None = None) -> JSON:
    """Return one operation: ``ok`` is its success code, ``errors`` the error codes it adds to 401/503."""
    content = {"application/json": {"schema": ref(schema)}} if schema else None
    success: JSON = {"description": summary, **({"content": content} if content else {})}
    codes = sorted(set(errors.split()) | ({"401"} if secure else set()) | {"503"})
    operation: JSON = {"summary": summary, "tags": [tag], "responses": {ok: success, **{c: _error(c) for c in codes}}}
    if description:
        operation["description"] = description
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if not secure:
        operation["security"] = []
    return operation


def query(name: str, schema: JSON, *, required: bool = False, description: str = "") -> JSON:
    """Return a query parameter."""
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def path(name: str, schema: JSON | None = None) -> JSON:
    """Return a path parameter."""
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


ITEM = path("item_id", ITEM_ID)
QUEUE = {**path("name"), "description": "A queue's name (probe), its step's name (file_info) or seed name "
                                        "(step1_file_info)."}
POOLS = query("pool", {"type": "array", "items": {"type": "string"}},
              description="Pools to act on, by pool name (file_info), queue (probe) or seed name "
                          "(step1_file_info); default all.")
QUEUE_FILTER = query("queue", {"type": "string"}, description="Only this queue.")
QUEUED_NOTE = ("Items are stored before they are queued. If Redis is down the item stays stored, the answer is "
               "still 202 with `\"queued\": false`, and discovery queues it once Redis is back.")
FOOTAGE_IDS = request_obj(["footage_ids"],
                          footage_ids={"type": "array", "items": ITEM_ID, "minItems": 1, "maxItems": 1000})


def seed_paths() -> dict[str, JSON]:
    """Seed 000's routes."""
    return {
        "/run/lf_queue": {"post": op(
            "Queue one item", "202", "FootageQueued", tag="seed", errors="400 404 409", description=(
                "Queues an existing item from its status; a new id is created from `source`, else from the file "
                "under the media roots named after it. " + QUEUED_NOTE),
            params=[query("footage_id", ITEM_ID, required=True),
                    query("source", {"type": "string"}, description="Source of a new item.")])},
        "/run/lf_queue_batch": {"post": op("Queue many items", "202", "FootageBatch", tag="seed",
                                           errors="400 404 413", body=FOOTAGE_IDS, description=QUEUED_NOTE)},
        "/run/lf_force_resume_all": {"post": op(
            "Reprocess from step 3 every item past it, with force-resume", "202", None, tag="seed")},
        "/queue/status": {"get": op("Queued and failed messages per step", "200", "QueueStatus", tag="seed")},
        "/workers/status": {"get": op("Worker pools per step", "200", "PoolsStatus", tag="seed")},
        "/workers/start": {"post": op("Start the worker pools", "200", "PoolsStatus", tag="seed", errors="400",
                                      params=[POOLS])},
        "/workers/stop": {"post": op("Stop the worker pools", "200", "PoolsStatus", tag="seed", errors="400",
                                     params=[POOLS, query("timeout_s", {"type": "integer", "minimum": 0,
                                                                        "maximum": 3600})])},
        "/run/lf_discovery": {"post": op("Start the discovery loop", "200", "Discovery", tag="seed")},
        "/stop/lf_discovery": {"post": op("Stop the discovery loop", "200", "Discovery", tag="seed")},
    }


#: How ``q`` searches (GET /items, GET /exports/{format}).
SEARCH_NOTE = (
    "Full-text search of item ids, sources, frame descriptions and keywords, and transcripts. Every word must "
    "be found in the item; \"quoted words\" are a phrase; `word*` and the last word match as prefixes; case "
    "and accents do not matter; other marks are plain text. A blank q is 400."
)


#: How ``?status=`` is read, as ``autolog status --status`` reads it.
STATUS_NOTE = ("A status: its full value (`7 - Avid Description`), its leading number (`7`), its label "
               "(`Avid Description`) or a prefix naming one status only (`awaiting`); case does not matter. "
               "400 when it names none or several.")


def item_paths() -> dict[str, JSON]:
    """Items and their actions."""
    accepted = "ItemAccepted"
    return {
        "/items": {
            "get": op("List items, or search them", "200", "ItemListing", tag="items", errors="400", params=[
                query("q", {"type": "string", "maxLength": MAX_QUERY_CHARS}, description=SEARCH_NOTE),
                query("status", {"type": "string"}, description=STATUS_NOTE),
                query("failed", {"type": "boolean"}, description="Listing only: only failed items (dead-lettered, "
                      "or stopped by an error no retry can fix)."),
                query("dead_lettered", {"type": "boolean"}, description="Listing only: only dead-lettered items."),
                query("updated_after", {"type": "string", "format": "date-time"}, description="Listing only."),
                query("updated_before", {"type": "string", "format": "date-time"}, description="Listing only."),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
                      description="Page size: default 100 for the listing, 20 for a search."),
                query("cursor", {"type": "string"}, description="Listing only: `next_cursor` of the previous page."),
                query("offset", {"type": "integer", "minimum": 0, "maximum": 100_000},
                      description="Search only: `next_offset` of the previous page.")],
                description="Without `q`: an `ItemPage` in id order. With `q`: a `SearchPage`, best match first."),
            "post": op("Create and queue one item", "202", accepted, tag="items", errors="400 409 413",
                       body=ref("NewItem"), description=QUEUED_NOTE)},
        "/items:batch": {"post": op(
            "Create and queue up to 1,000 items in one transaction", "202", "ItemsAccepted", tag="items",
            errors="400 409 413", description=QUEUED_NOTE,
            body=request_obj(["items"], items={"type": "array", "items": ref("NewItem"), "minItems": 1,
                                               "maxItems": 1000}))},
        "/items/{item_id}": {
            "get": op("One item with its timeline, frames, transcript and artifacts", "200", "ItemDetail",
                      tag="items", errors="404", params=[ITEM]),
            "delete": op("Delete the item", "200", None, tag="items", errors="404", params=[ITEM], description=(
                "Cancels it (a running step stops at its next safe point), then deletes its row, timeline, "
                "results and artifact files. The timeline goes with it, so the id can be ingested again."))},
        "/items/{item_id}/prompt": {"post": op(
            "Give a waiting item its prompt and resume it", "202", accepted, tag="items", errors="400 404 409",
            params=[ITEM], body=request_obj(["prompt"], prompt={"type": "string", "minLength": 1}))},
        "/items/{item_id}/resume": {"post": op("Resume a waiting item without a prompt", "202", accepted,
                                               tag="items", errors="404 409", params=[ITEM])},
        "/items/{item_id}/retry": {"post": op("Queue again the step the item stopped at", "202", accepted,
                                              tag="items", errors="404 409", params=[ITEM])},
        "/items/{item_id}/cancel": {"post": op(
            "Cancel the item", "200", None, tag="items", errors="404", params=[ITEM],
            description="Queued steps skip it; a running step stops at its next safe point, its subprocess killed.")},
        "/items/{item_id}/uncancel": {"post": op("Undo a cancel and queue the item from where it stopped", "202",
                                                 accepted, tag="items", errors="404 409", params=[ITEM])},
        "/items/{item_id}/rerun": {"post": op(
            "Re-log the item from a chosen step", "202", accepted, tag="items", errors="400 404 409",
            params=[ITEM, query("from", {"type": "string", "example": "assess"}, required=True,
                                description="The step: its name, number, queue or seed name (step3_assess).")])},
        "/items/{item_id}/progress": {"get": progress_operation()},
        "/items/{item_id}/artifacts/{kind}/{position}": {"get": {
            **op("An artifact as a file", "200", None, tag="items", errors="404",
                 params=[ITEM, path("kind"), path("position", {"type": "integer", "minimum": 0})]),
        }},
        **export_paths(),
    }


EXPORT_OPTIONS = [
    query("shots", {"type": "boolean", "default": False}, description="ale: add one subclip row per shot."),
    query("color", {"type": "string", "enum": list(AVID_MARKER_COLOURS), "default": DEFAULT_MARKER_COLOUR},
          description="markers, edl: the marker colour."),
    query("timing", {"type": "string", "enum": list(TIMINGS), "default": DEFAULT_TIMING},
          description="srt, vtt: cue times from the clip's start, or at source timecode."),
]


def export_operation(summary: str, formats: list[str], params: list[JSON], description: str) -> JSON:
    """An export: a file (streamed for selections) with its name and item count, not JSON."""
    listed = "; ".join(f"`{name}`: {FORMATS[name].title}" for name in formats)
    operation = op(summary, "200", None, tag="exports", errors="400 404 409",
                   params=[path("format", {"type": "string", "enum": formats}), *params, *EXPORT_OPTIONS],
                   description=f"{description} Formats: {listed}.")
    operation["responses"]["200"] = {
        "description": "The export, as an attachment named in Content-Disposition.",
        "headers": {"Content-Disposition": {"schema": {"type": "string"}, "description": "attachment; filename=..."},
                    "X-Export-Items": {"schema": {"type": "integer", "minimum": 0},
                                       "description": "Items in the file; 0 is a valid file with no rows."}},
        "content": {media_type: {"schema": {"type": "string"}}
                    for media_type in dict.fromkeys(FORMATS[name].content_type.split(";")[0] for name in formats)},
    }
    return operation


def export_paths() -> dict[str, JSON]:
    """One logged item, or a selection of logged items, as files editing systems import."""
    return {
        "/items/{item_id}/exports/{format}": {"get": export_operation(
            "One logged item as a file an editor imports", list(FORMATS), [ITEM],
            f"The item must be at `{FINAL_STATUSES[0].value}` (409 names its status). Unknown format: 404 "
            "listing the formats. An audio-only item has no EDL (409); its other exports have no video track.")},
        "/exports/{format}": {"get": export_operation(
            "Logged items as one ALE or CSV, streamed", list(SELECTION_FORMATS), [
                query("ids", {"type": "array", "items": ITEM_ID, "maxItems": MAX_IDS}, description=(
                    "Item ids, comma-separated or repeated; each must be logged (409 names those that are not).")),
                query("status", {"type": "string"},
                      description=f"Only items at this status; default: every logged item. {STATUS_NOTE}"),
                query("q", {"type": "string", "maxLength": MAX_TEXT_CHARS},
                      description="A search query, as `q` of GET /items: only the logged items it matches."),
                query("fps", {"type": "string", "example": "29.97"},
                      description="Only items at this nominal rate (25, 29.97, 30000/1001...)."),
            ],
            "Items in id order, read from the store page by page as the file is sent. An ALE holds one frame "
            "rate: a selection of several is refused (409 listing the rates) unless `fps` picks one. An empty "
            "selection is a valid file with its header and no rows (`X-Export-Items: 0`).")},
    }


def progress_operation() -> JSON:
    """``GET /items/{item_id}/progress``: a ``text/event-stream``, not JSON."""
    operation = op(
        "The item's progress as Server-Sent Events", "200", None, tag="items", errors="400 404",
        params=[ITEM,
                query("max_s", {"type": "number", "minimum": 0, "maximum": 3600, "default": 300},
                      description="End the stream after this many seconds."),
                {"name": "Last-Event-ID", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                 "description": "The id of the last event seen: a reconnecting client gets only newer events."}],
        description=(
            "The item's latest state first, then each new event, until its final event (done or dead-lettered) "
            "or `max_s`. Each event is `id: <seq>`, `event: progress` and `data: <ProgressEvent JSON>`; a quiet "
            "stream sends a `: keep-alive` comment every 15 s."))
    operation["responses"]["200"] = {
        "description": "Server-Sent Events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    return operation


def operations_paths() -> dict[str, JSON]:
    """Jobs, queues, dead letters, workers and discovery."""
    return {
        "/jobs": {"get": op("List jobs", "200", "JobList", tag="jobs", errors="400", params=[
            query("status", {"type": "string", "enum": ["all", *JOB_STATUSES]}),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 100})])},
        "/jobs/{job_id}": {"get": op("One job", "200", "Job", tag="jobs", errors="404", params=[path("job_id")])},
        "/queues": {"get": op("Every queue's counts", "200", "QueueList", tag="queues")},
        "/queues/{name}": {"get": op("One queue's counts", "200", "Queue", tag="queues", errors="404",
                                     params=[QUEUE])},
        "/queues/{name}/pause": {"post": op("Pause a queue", "200", "Queue", tag="queues", errors="404",
                                            params=[QUEUE])},
        "/queues/{name}/resume": {"post": op("Resume a queue", "200", "Queue", tag="queues", errors="404",
                                             params=[QUEUE])},
        "/queues/{name}/purge": {"post": op("Drop a queue's queued, delayed and held messages", "200", "QueuePurged",
                                            tag="queues",
                                            errors="404", params=[QUEUE])},
        "/dead-letters": {"get": op("Dead letters with their errors", "200", "DeadLetterList", tag="queues",
                                    errors="400 404", params=[QUEUE_FILTER, query(
                                        "limit", {"type": "integer", "minimum": 1, "maximum": 1000})])},
        "/dead-letters/{message_id}/retry": {"post": op("Retry one dead letter", "202", "RetryOutcome",
                                                        tag="queues", errors="404", params=[path("message_id")])},
        "/dead-letters/retry": {"post": op("Retry every dead letter", "202", None, tag="queues", errors="404",
                                           params=[QUEUE_FILTER])},
        "/dead-letters/purge": {"post": op("Delete dead letters, each recorded on its item's timeline", "200", None,
                                           tag="queues", errors="404", params=[QUEUE_FILTER])},
        "/workers": {"get": op("Pools, processes, threads and heartbeats", "200", "Workers", tag="workers")},
        "/discovery": {"get": op("Whether discovery runs", "200", "Discovery", tag="discovery")},
        "/discovery/scan": {"post": op("Run one discovery pass now", "200", "DiscoveryReport", tag="discovery")},
    }


def system_paths() -> dict[str, Any]:
    """Health, metrics, this document and the webhooks."""
    return {
        "/health": {"get": op("Redis, database, queues and workers; 503 when Redis or the database is down",
                              "200", "Health", tag="system", secure=False)},
        "/metrics": {"get": {**op("Prometheus metrics", "200", None, tag="system", secure=False),
                             "responses": {"200": {"description": "Prometheus text, or OpenMetrics if accepted",
                                                   "content": {"text/plain": {"schema": {"type": "string"}},
                                                               "application/openmetrics-text": {
                                                                   "schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": op("This document", "200", None, tag="system")},
        "/webhook/minio": {"post": {**op(
            "MinIO/S3 bucket notification", "200", "MinioOutcome", tag="webhooks", errors="400 413",
            body=ref("MinioEvent"), description="Authenticated by the bearer token of MinIO's webhook target."),
            "security": [{"minioToken": []}]}},
        "/webhooks/ingest": {"post": {**op(
            "Signed list of items to ingest", "202", "Delivery", tag="webhooks", errors="400 409 413",
            body={"type": "array", "items": ref("NewItem"), "maxItems": 1000},
            description=("Signed like GitHub webhooks: `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`; "
                         "deduplicated by `X-GitHub-Delivery` (a replay answers 200 with `duplicate: true`). "
                         "Items are stored with the delivery before the answer."),
            params=[{"name": "X-GitHub-Delivery", "in": "header", "required": True, "schema": {"type": "string"}},
                    {"name": "X-Hub-Signature-256", "in": "header", "required": True,
                     "schema": {"type": "string"}}]),
            "security": []}},
    }
