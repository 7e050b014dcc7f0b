"""Request checks shared by the resources: JSON bodies and fields, each error naming its field."""

from __future__ import annotations

import json
from typing import Any

import falcon

from autolog.store import NewItem
from pipelines.intake import MAX_BATCH

#: The largest request body accepted, in bytes: 1,000 items of generous size fit.
MAX_BODY_BYTES = 4 * 1024 * 1024


def invalid(field: str, problem: str) -> falcon.HTTPBadRequest:
    """Return the 400 for a field that is missing or malformed; the description names the field."""
    return falcon.HTTPBadRequest(title="Invalid field", description=f"{field}: {problem}")


def json_object(req: falcon.Request) -> dict[str, Any]:
    """Return the request's JSON body, which must be an object.

    A JSON body is parsed whatever its ``Content-Type`` says (``curl -d`` labels it a form),
    so a client never gets a field error about a body it sent right.

    Raises:
        falcon.HTTPUnsupportedMediaType: the body is not JSON and is labelled as something else.
        falcon.HTTPBadRequest: the body is missing, not JSON, or not an object.
    """
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    if content_type in ("", "application/json") or content_type.endswith("+json"):
        body = req.get_media()
    else:
        raw = req.bounded_stream.read()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as ex:
            raise falcon.HTTPUnsupportedMediaType(
                description=f"expected a JSON body with Content-Type: application/json, got {content_type!r}") from ex
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    return body


def optional_text(body: dict[str, Any], field: str, *, max_length: int = 4096, path: str | None = None) -> str | None:
    """Return a string field, or None when it is absent or null."""
    value = body.get(field)
    name = path or field
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(name, "expected a string")
    if len(value) > max_length:
        raise invalid(name, f"longer than {max_length} characters")
    return value


def text(body: dict[str, Any], field: str, *, max_length: int = 4096, path: str | None = None) -> str:
    """Return a required, non-empty string field."""
    value = optional_text(body, field, max_length=max_length, path=path)
    if not value:
        raise invalid(path or field, "is required and must not be empty")
    return value


def flag(body: dict[str, Any], field: str, *, path: str | None = None) -> bool:
    """Return a boolean field, False when absent."""
    value = body.get(field, False)
    if not isinstance(value, bool):
        raise invalid(path or field, "expected true or false")
    return value


def bounded_list(body: dict[str, Any], field: str) -> list[Any]:
    """Return a non-empty list field of at most ``MAX_BATCH`` entries.

    Raises:
        falcon.HTTPBadRequest: it is missing, not a list, or empty.
        falcon.HTTPContentTooLarge: it has more than ``MAX_BATCH`` entries.
    """
    value = body.get(field)
    if not isinstance(value, list):
        raise invalid(field, "expected a list")
    if not value:
        raise invalid(field, "must not be empty")
    if len(value) > MAX_BATCH:
        raise falcon.HTTPContentTooLarge(title="Batch too large",
                                         description=f"{field}: {len(value)} entries; at most {MAX_BATCH}")
    return value


def unique_ids(ids: list[Any], field: str) -> list[str]:
    """Return ``ids`` if each is a string and none repeats."""
    seen: set[str] = set()
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not value:
            raise invalid(f"{field}[{index}]", "expected a non-empty string")
        if value in seen:
            raise invalid(f"{field}[{index}]", f"{value!r} appears twice")
        seen.add(value)
    return list(ids)


def new_item(value: Any, path: str = "body") -> NewItem:
    """Return the item a JSON object describes: ``id``, ``source``, optional ``force_resume`` and ``prompt``."""
    if not isinstance(value, dict):
        raise invalid(path, "expected a JSON object")
    prefix = "" if path == "body" else f"{path}."
    return NewItem(id=text(value, "id", max_length=64, path=f"{prefix}id"),
                   source=text(value, "source", path=f"{prefix}source"),
                   force_resume=flag(value, "force_resume", path=f"{prefix}force_resume"),
                   prompt=optional_text(value, "prompt", path=f"{prefix}prompt"))


def new_items(body: dict[str, Any], field: str = "items") -> list[NewItem]:
    """Return a batch of items from ``body[field]``, naming the first bad entry's field."""
    entries = bounded_list(body, field)
    items = [new_item(entry, f"{field}[{index}]") for index, entry in enumerate(entries)]
    unique_ids([item.id for item in items], field)
    return items


class BodyLimit:
    """Falcon middleware: refuse bodies over ``max_bytes`` before reading them."""

    def __init__(self, max_bytes: int = MAX_BODY_BYTES) -> None:
        self._max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > self._max_bytes:
            raise falcon.HTTPContentTooLarge(title="Body too large",
                                             description=f"body: more than {self._max_bytes} bytes")
