"""Component schemas of the OpenAPI document."""

from __future__ import annotations

from typing import Any

from autolog.statuses import Status
from autolog.store.jobs import JOB_STATUSES

JSON = dict[str, Any]


def ref(name: str) -> JSON:
    """Return a reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: JSON) -> JSON:
    """Return ``schema`` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


STRING, INTEGER, BOOLEAN, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}
OBJECT: JSON = {"type": "object", "additionalProperties": True}
DATETIME: JSON = {"type": "string", "format": "date-time"}
ITEM_ID: JSON = {"type": "string", "pattern": "^(?!\\.+$)[A-Za-z0-9._-]{1,64}$", "example": "LF1409"}


def obj(required: list[str], **properties: JSON) -> JSON:
    """Return an object schema."""
    return {"type": "object", "required": required, "properties": properties}


def request_obj(required: list[str], **properties: JSON) -> JSON:
    """Return a request body's object schema: a field it does not name is refused (``web.validation.known_fields``)."""
    return {**obj(required, **properties), "additionalProperties": False}


SCHEMAS: dict[str, JSON] = {
    "Error": obj(["title", "description"], title=STRING, description=STRING),
    "NewItem": request_obj(
        ["id", "source"], id=ITEM_ID,
        source={"type": "string", "minLength": 1,
                "description": "An absolute path to a file under a media root, or s3://bucket/key.",
                "example": "/media/LF1409.mov"},
        force_resume={"type": "boolean", "default": False, "description": "Run step 4 without waiting for a prompt."},
        prompt=nullable(STRING)),
    "Item": obj(
        ["id", "source", "status"], id=ITEM_ID, source=STRING,
        status={"type": "string", "enum": [status.value for status in Status]},
        force_resume=BOOLEAN, prompt=nullable(STRING), probe=nullable(ref("Probe")), has_audio=nullable(BOOLEAN),
        error=nullable(OBJECT), dead_lettered=BOOLEAN, cancelled=BOOLEAN, version=INTEGER,
        purged={**BOOLEAN, "description": "Its messages were purged; discovery leaves it until it is queued again."},
        created_at=DATETIME, updated_at=DATETIME,
        media_kind=nullable({"type": "string", "enum": ["video", "audio"]}),
        start_timecode=nullable({**STRING, "description": "SMPTE start timecode; ';' before the frames for "
                                                           "drop-frame.", "example": "01:00:00;00"}),
        drop_frame=nullable(BOOLEAN), nominal_fps=nullable({**STRING, "example": "30000/1001"}),
        reel=nullable(STRING),
        source_fingerprint=nullable(obj(
            ["size_bytes", "mtime_ns", "head_tail_sha256"], size_bytes=INTEGER, mtime_ns=INTEGER,
            head_tail_sha256=STRING, sample_bytes=INTEGER))),
    "AudioTrack": obj(
        ["index", "codec", "channels", "sample_rate", "start_s"], index=INTEGER, codec=STRING, channels=INTEGER,
        sample_rate=INTEGER, start_s={**NUMBER, "description": "Offset from clip time 0, in seconds."},
        duration_s=nullable(NUMBER), language=nullable(STRING)),
    "Probe": obj(
        ["container", "duration_s", "fps", "width", "height", "has_audio", "size_bytes"],
        container=STRING, duration_s=NUMBER, size_bytes=INTEGER,
        media_kind={"type": "string", "enum": ["video", "audio"]}, video_stream_index=nullable(INTEGER),
        fps={**NUMBER, "description": "The nominal rate as a number."},
        nominal_fps={**STRING, "description": "Timecode track's rate, else r_frame_rate.", "example": "30000/1001"},
        average_fps=nullable(NUMBER), variable_frame_rate=BOOLEAN,
        video_duration_s=nullable(NUMBER), start_time_s=NUMBER, video_start_s=NUMBER,
        width=INTEGER, height=INTEGER, display_width=INTEGER, display_height=INTEGER,
        rotation={"type": "integer", "enum": [0, 90, 180, 270], "description": "Degrees clockwise for display."},
        sample_aspect_ratio={**STRING, "example": "1:1"},
        field_order={"type": "string", "enum": ["progressive", "tt", "bb", "tb", "bt", "unknown"]},
        color_transfer=nullable(STRING), video_codec=nullable(STRING), audio_codec=nullable(STRING),
        has_audio=BOOLEAN, audio_tracks={"type": "array", "items": ref("AudioTrack")},
        start_timecode=STRING, drop_frame=BOOLEAN,
        timecode_source={"type": "string", "description": "tmcd track, stream tag, format tag, h264 sei, "
                                                          "bext time reference, or default."},
        reel=nullable(STRING)),
    "ItemDetail": {"allOf": [ref("Item"), obj(
        ["timeline", "frames", "transcript", "artifacts"],
        timeline={"type": "array", "items": OBJECT}, scenes={"type": "array", "items": OBJECT},
        frames={"type": "array", "items": OBJECT}, transcript={"type": "array", "items": OBJECT},
        analysis=nullable(OBJECT),
        artifacts={"type": "array", "items": obj(["kind", "position", "path", "url"], kind=STRING,
                                                    position=INTEGER, path=STRING, url=STRING)})]},
    "ItemAccepted": obj(["item", "queued", "job_id", "already_queued"], item=ref("Item"), queued={
        "type": "boolean", "description": "False when Redis was down: the item is stored and discovery queues it."},
        job_id=nullable({**STRING, "description": "The id of the item's first message (GET /jobs/{job_id})."}),
        already_queued={**BOOLEAN, "description": "A message already carried the item; job_id is that message's."},
        created=BOOLEAN, reason=STRING),
    "ItemsAccepted": obj(["items", "count", "queued"], items={"type": "array", "items": ref("Item")},
                         count=INTEGER, queued=BOOLEAN, job_ids={"type": "array", "items": nullable(STRING)}),
    "ItemPage": obj(["items", "count", "next_cursor"], items={"type": "array", "items": ref("Item")},
                    count=INTEGER, next_cursor=nullable(STRING)),
    "SearchHit": obj(
        ["item_id", "status", "source", "rank", "matches", "field", "snippet", "frame", "time_s", "timecode",
         "media_kind"],
        item_id=ITEM_ID, status=STRING, source=STRING,
        rank={**NUMBER, "description": "Relevance, higher is better; compare within one query only."},
        matches={**INTEGER, "description": "Terms found, counted once per name, frame record and speech segment."},
        field={"type": "string", "enum": ["id", "source", "description", "keywords", "transcript"],
               "description": "Where the best match is; the snippet is from that field."},
        snippet={"type": "array", "description": "The text around the match in pieces; hit pieces are the match.",
                 "items": obj(["text", "hit"], text=STRING, hit=BOOLEAN)},
        frame=nullable({**INTEGER, "description": "Position of the frame record (speech: the one whose shot it "
                                                  "starts in); null for an id or source match."}),
        time_s=nullable({**NUMBER, "description": "Clip time of the frame, or of the speech's start."}),
        timecode=nullable({**STRING, "description": "Source timecode at time_s."}),
        media_kind=nullable({**STRING, "description": "video, or audio for an audio-only item (no poster or frame "
                                                      "images); null before step 1 has read the file."})),
    "SearchPage": obj(["query", "total", "limit", "offset", "next_offset", "hits"], query=STRING,
                      total={**INTEGER, "description": "Items matching, across all pages."},
                      limit=INTEGER, offset=INTEGER, next_offset=nullable(INTEGER),
                      hits={"type": "array", "items": ref("SearchHit")}),
    "ItemListing": {"oneOf": [ref("ItemPage"), ref("SearchPage")]},
    "FootageQueued": obj(["footage_id", "status", "queued", "created"], footage_id=ITEM_ID, status=STRING,
                         queued=BOOLEAN, created=BOOLEAN, job_id=nullable(STRING), reason=STRING,
                         already_queued={**BOOLEAN, "description": "The item was already in flight: job_id is "
                                                                   "the message carrying it, no second run."}),
    "FootageBatch": obj(["items", "total_queued", "queued"],
                        items={"type": "array", "items": ref("FootageQueued")}, total_queued=INTEGER, queued=BOOLEAN),
    "Job": obj(
        ["job_id", "status", "created_at", "started_at", "ended_at", "error"], job_id=STRING,
        status={"type": "string", "enum": list(JOB_STATUSES)}, item_id=STRING, step=nullable(STRING),
        attempts=INTEGER, created_at=nullable(DATETIME), started_at=nullable(DATETIME), ended_at=nullable(DATETIME),
        result=nullable(OBJECT), error=nullable(OBJECT), meta=OBJECT),
    "JobList": obj(["count", "jobs"], count=INTEGER, jobs={"type": "array", "items": ref("Job")}),
    "Queue": obj(["name", "queued", "delayed", "held", "in_progress", "dead_lettered", "paused"], name=STRING,
                 step=nullable(STRING), queued=INTEGER, delayed=INTEGER,
                 held={**INTEGER, "description": "Messages a pause holds; released in order on resume."},
                 in_progress=INTEGER, dead_lettered=INTEGER, paused=BOOLEAN),
    "QueuePurged": obj(["queue", "purged", "items"], queue=STRING, purged=INTEGER,
                       items={"type": "array", "items": ITEM_ID, "description": "Items marked purged."}),
    "QueueList": obj(["queues"], queues={"type": "array", "items": ref("Queue")}),
    "QueueStatus": obj(
        ["queues", "total_queued", "total_failed"],
        queues={"type": "object", "additionalProperties": obj(["queued", "failed"], queued=INTEGER, failed=INTEGER),
                "example": {"step1_file_info": {"queued": 5, "failed": 0}}},
        total_queued=INTEGER, total_failed=INTEGER),
    "DeadLetter": obj(["message_id", "queue", "actor", "dead_lettered_at", "retries"], message_id=STRING,
                      queue=STRING, actor=STRING, item_id=nullable(STRING), dead_lettered_at=DATETIME,
                      retries=INTEGER, error=nullable(OBJECT)),
    "DeadLetterList": obj(["count", "dead_letters"], count=INTEGER,
                          dead_letters={"type": "array", "items": ref("DeadLetter")}),
    "RetryOutcome": obj(["message_id", "requeued"], message_id=STRING, item_id=nullable(STRING),
                        requeued=BOOLEAN, reason=nullable(STRING)),
    "PoolsStatus": obj(["workers", "total_workers"], status=STRING, workers={"type": "object",
                       "additionalProperties": OBJECT}, total_workers=INTEGER, running_pools=INTEGER,
                       drained={"type": "object", "description": "After a stop: per pool, the items whose "
                                "running step finished in the grace period.",
                                "additionalProperties": {"type": "array", "items": STRING}},
                       requeued={"type": "object", "description": "After a stop: per pool, the items whose "
                                 "running step was put back unfinished (no retry spent).",
                                 "additionalProperties": {"type": "array", "items": STRING}}),
    "Workers": obj(["pools", "processes", "threads", "heartbeats"], pools={"type": "array", "items": OBJECT},
                   processes=INTEGER, threads=INTEGER, heartbeats={"type": "array", "items": OBJECT}),
    "Discovery": obj(["running", "pid", "interval_s", "stuck_after_s"], status=STRING, running=BOOLEAN,
                     pid=nullable(INTEGER), interval_s=NUMBER, stuck_after_s=NUMBER),
    "DiscoveryReport": obj(["at", "queued", "requeued", "in_flight"], at=DATETIME,
                           queued={"type": "array", "items": STRING}, requeued={"type": "array", "items": STRING},
                           in_flight=INTEGER),
    "Health": obj(["status", "redis_connected", "database_connected"],
                  status={"type": "string", "enum": ["healthy", "degraded", "unhealthy"],
                          "description": "unhealthy (503): Redis or the database does not answer; degraded: a pool "
                                         "is down, short of worker processes or crash-looping (one stopped on "
                                         "purpose is not: its state is stopped), or the sweep is down (no sweep "
                                         "holds its lease in Redis, or this machine's died)."},
                  redis_connected=BOOLEAN, database_connected=BOOLEAN, queue_available=BOOLEAN,
                  queue_length=nullable(INTEGER), workers_count=nullable(INTEGER),
                  pools={"type": "object", "additionalProperties": obj(
                      ["expected_processes", "live_processes", "state"], expected_processes=INTEGER,
                      live_processes=INTEGER,
                      state={"type": "string", "enum": ["ok", "short", "down", "crash_loop", "stopped"]},
                      crash_loop=nullable(STRING))},
                  sweep=nullable(obj(["state", "lease_holder", "running_here"],
                                     state={"type": "string", "enum": ["ok", "down"]},
                                     lease_holder=nullable(STRING), running_here=BOOLEAN)),
                  errors={"type": "array", "items": STRING}),
    "MinioEvent": obj(["Records"], EventName=STRING, Key=STRING, Records={"type": "array", "items": obj(
        ["eventName", "s3"], eventName={"type": "string", "example": "s3:ObjectCreated:Put"},
        s3=obj(["bucket", "object"], bucket=obj(["name"], name=STRING),
               object=obj(["key"], key={"type": "string", "description": "URL-encoded, as S3 sends it."})))}),
    "MinioOutcome": obj(["created", "duplicates", "removed", "ignored", "queued"],
                        created={"type": "array", "items": STRING}, duplicates={"type": "array", "items": STRING},
                        removed={"type": "array", "items": STRING}, ignored=INTEGER, queued=BOOLEAN),
    "Delivery": obj(["delivery", "item_ids", "duplicate", "queued"], delivery=STRING, webhook=STRING,
                    item_ids={"type": "array", "items": STRING}, received_at=DATETIME, duplicate=BOOLEAN,
                    queued=BOOLEAN),
}
