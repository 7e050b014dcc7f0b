"""Request checks shared by the resources: JSON bodies and fields, each error naming its field."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import falcon

from autolog.errors import InvalidItemId, InvalidSource
from autolog.store import NewItem, validate_item_id
from pipelines.intake import MAX_BATCH

#: The largest request body accepted, in bytes: 1,000 items of generous size fit.
MAX_BODY_BYTES = 4 * 1024 * 1024


def invalid(field: str, problem: str) -> falcon.HTTPBadRequest:
    """Return the 400 for a field that is missing or malformed; the description names the field."""
    return falcon.HTTPBadRequest(title="Invalid field", description=f"{field}: {problem}")


def required_param(req: falcon.Request, name: str) -> str:
    """Return a query parameter that must be given; its absence is a 400 naming it, as a body field's is."""
    value = req.get_param(name)
    if value is None:
        raise invalid(name, "is required")
    return value


def json_object(req: falcon.Request) -> dict[str, Any]:
    """Return the request's JSON body, which must be an object.

    A JSON body is parsed whatever its ``Content-Type`` says (``curl -d`` labels it a form),
    so a client never gets a field error about a body it sent right. One that opens as JSON
    does (``{`` or ``[``) but does not parse is malformed JSON, a 400 (PRODUCT.md §4), whatever
    its label.

    Raises:
        falcon.HTTPUnsupportedMediaType: the body is not JSON, does not look like it, and is
            labelled as something else.
        falcon.HTTPBadRequest: the body is missing, not JSON, or not an object.
    """
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    if content_type in ("", "application/json") or content_type.endswith("+json"):
        try:
            body = req.get_media()
        except falcon.MediaNotFoundError as ex:
            raise invalid("body", "missing; expected a JSON object") from ex
        except falcon.MediaMalformedError as ex:
            raise invalid("body", f"malformed JSON: {ex.__cause__ or ex.description}") from ex
    else:
        raw = req.bounded_stream.read()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as ex:
            if raw.lstrip()[:1] in (b"{", b"["):
                raise invalid("body", f"malformed JSON: {ex}") from ex
            raise falcon.HTTPUnsupportedMediaType(
                description=f"expected a JSON body with Content-Type: application/json, got {content_type!r}") from ex
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    return body


def known_fields(body: dict[str, Any], allowed: Sequence[str], *, path: str = "body") -> None:
    """Refuse a field ``body`` does not take, naming it: a misspelt one would be ignored, and what it asked lost.

    ``{"forceresume": true}`` must not create an item that waits for a prompt (PRODUCT.md §4:
    malformed fields are a 400 naming the field).

    Raises:
        falcon.HTTPBadRequest: a field outside ``allowed``.
    """
    for name in body:
        if name not in allowed:
            field = name if path == "body" else f"{path}.{name}"
            raise invalid(field, f"unknown field; expected {', '.join(allowed)}")


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


def item_id(value: str, field: str) -> str:
    """Return ``value`` if it is a valid item id (``autolog.store.validate_item_id``), else a 400 naming ``field``."""
    try:
        return validate_item_id(value)
    except InvalidItemId as ex:
        raise invalid(field, str(ex)) from ex


def unique_ids(ids: list[Any], field: str) -> list[str]:
    """Return ``ids`` if each is a valid item id and none repeats."""
    seen: set[str] = set()
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not value:
            raise invalid(f"{field}[{index}]", "expected a non-empty string")
        item_id(value, f"{field}[{index}]")
        if value in seen:
            raise invalid(f"{field}[{index}]", f"{value!r} appears twice")
        seen.add(value)
    return list(ids)


#: The fields of an item to create, as ``new_item`` reads them.
ITEM_FIELDS = ("id", "source", "force_resume", "prompt")


def new_item(value: Any, path: str = "body") -> NewItem:
    """Return the item a JSON object describes: ``id``, ``source``, optional ``force_resume`` and ``prompt``.

    ``source`` is an absolute path (the API's server resolves no path against its own working
    folder) or ``s3://bucket/key``; whether it is under a media root is checked on submission.
    """
    if not isinstance(value, dict):
        raise invalid(path, "expected a JSON object")
    prefix = "" if path == "body" else f"{path}."
    known_fields(value, ITEM_FIELDS, path=path)
    source = text(value, "source", path=f"{prefix}source")
    if "://" not in source and not source.startswith("/"):  # s3://bucket/key, or another scheme submit refuses
        raise invalid(f"{prefix}source", f"{source}: not an absolute path; give a file under a media root, or"
                                         " s3://bucket/key")
    return NewItem(id=item_id(text(value, "id", path=f"{prefix}id"), f"{prefix}id"), source=source,
                   force_resume=flag(value, "force_resume", path=f"{prefix}force_resume"),
                   prompt=optional_text(value, "prompt", path=f"{prefix}prompt"))


def new_items(body: dict[str, Any], field: str = "items") -> list[NewItem]:
    """Return a batch of items from ``body[field]``, naming the first bad entry's field."""
    known_fields(body, (field,))
    return item_list(bounded_list(body, field), field)


def item_list(entries: list[Any], path: str) -> list[NewItem]:
    """Return the items ``entries`` describe (``new_item``), each error naming its entry (``path[3].source``)."""
    items = [new_item(entry, f"{path}[{index}]") for index, entry in enumerate(entries)]
    unique_ids([item.id for item in items], path)
    return items


@contextmanager
def naming_sources(items: Sequence[NewItem], path: str | None = None) -> Iterator[None]:
    """Turn a refused source of one of ``items`` into a 400 naming its field: ``path[3].source``.

    ``path`` is the list's name in the request; None for a single item (its field is ``source``).

    Raises:
        falcon.HTTPBadRequest: the block raised ``InvalidSource`` for one of ``items``.
    """
    try:
        yield
    except InvalidSource as ex:
        fields = [f"{path}[{index}].source" for index, item in enumerate(items) if item.source == ex.source]
        raise invalid(fields[0] if path is not None and fields else "source", str(ex)) from ex


class KnownQueryParams:
    """Falcon middleware: a query parameter the OpenAPI document does not give the route is a 400 naming it.

    As a misspelt body field (``known_fields``): ``/items?after=A001`` (the CLI's flag, where
    the API's parameter is ``cursor``) had answered the first page as if asked for it.
    Routes the document does not describe, the open ones (health, metrics, webhooks) and the
    review pages are left alone.

    Args:
        document: the API's OpenAPI document (``web.openapi.build_document``).
    """

    def __init__(self, document: dict[str, Any]) -> None:
        self._allowed: dict[tuple[str, str], frozenset[str]] = {
            (template, method.upper()): frozenset(
                parameter["name"] for parameter in operation.get("parameters", []) if parameter.get("in") == "query")
            for template, operations in document.get("paths", {}).items()
            for method, operation in operations.items() if isinstance(operation, dict)}

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object, params: object) -> None:
        if getattr(resource, "auth", "api_key") != "api_key":
            # /health, /metrics and the webhooks answer monitors and senders that may add their own, and a review
            # page a browser opens from a link that may carry a mail's tracking parameters
            return
        allowed = self._allowed.get((req.uri_template or "", req.method))
        if allowed is None:
            return
        for name in req.params:
            if name not in allowed:
                expected = f"expected {', '.join(sorted(allowed))}" if allowed else "this route takes none"
                raise invalid(name, f"unknown query parameter; {expected}")


class BodyLimit:
    """Falcon middleware: refuse bodies over ``max_bytes`` before reading them."""

    def __init__(self, max_bytes: int = MAX_BODY_BYTES) -> None:
        self._max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > self._max_bytes:
            raise falcon.HTTPContentTooLarge(title="Body too large",
                                             description=f"body: more than {self._max_bytes} bytes")
