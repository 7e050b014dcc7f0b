"""HTTP ingress formats: MinIO's bearer token and notifications, GitHub-style signatures and events.

Both webhooks verify before anything else. MinIO sends its target's ``auth_token`` as a bearer
token; the ingest webhook signs its body with GitHub's scheme (``X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the raw body>``), names each delivery in ``X-GitHub-Delivery`` and
its kind in ``X-GitHub-Event``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import unquote_plus

from autolog.errors import AuthenticationFailed
from pipelines.intake import ObjectEvent

#: The ``X-GitHub-Event`` values the ingest webhook acts on (none sent counts as ``ingest``).
INGEST_EVENTS = frozenset({"ingest"})


def verify_bearer(expected: str | None, authorization: str | None) -> None:
    """Check MinIO's ``Authorization: Bearer <token>`` in constant time.

    Raises:
        AuthenticationFailed: no token is configured, or the header is missing or wrong.
    """
    if not expected:
        raise AuthenticationFailed("the MinIO webhook is disabled: set AUTOLOG_MINIO_WEBHOOK_TOKEN")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise AuthenticationFailed("missing or wrong bearer token")


def verify_signature(secret: str | None, body: bytes, header: str | None) -> None:
    """Check a GitHub-style ``X-Hub-Signature-256`` over the raw body, in constant time.

    Raises:
        AuthenticationFailed: no secret is configured, or the signature is missing or wrong.
    """
    if not secret:
        raise AuthenticationFailed("the ingest webhook is disabled: set AUTOLOG_INGEST_WEBHOOK_SECRET")
    if not header or not header.startswith("sha256="):
        raise AuthenticationFailed("missing X-Hub-Signature-256 header (sha256=<hex>)")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(header.strip().encode(), expected.encode()):
        raise AuthenticationFailed("X-Hub-Signature-256 does not match the body")


def parse_minio(document: Any) -> tuple[list[ObjectEvent], int]:
    """Return the created and removed objects of a bucket notification, and how many records were ignored.

    Event names are normalised (``s3:ObjectCreated:Put`` and ``ObjectCreated:Put`` alike);
    keys arrive URL-encoded (``+`` for a space) and are decoded.

    Raises:
        ValueError: the document is not a notification; the message names the field.
    """
    if not isinstance(document, dict) or not isinstance(document.get("Records"), list):
        raise ValueError("Records: expected a list of event records")
    events: list[ObjectEvent] = []
    ignored = 0
    for index, record in enumerate(document["Records"]):
        try:
            name = str(record["eventName"]).removeprefix("s3:")
            bucket = str(record["s3"]["bucket"]["name"])
            key = unquote_plus(str(record["s3"]["object"]["key"]))
        except (KeyError, TypeError) as ex:
            raise ValueError(f"Records[{index}]: expected eventName and s3.bucket.name, s3.object.key") from ex
        kind = "created" if name.startswith("ObjectCreated:") else "removed" if name.startswith(
            "ObjectRemoved:") else None
        if kind is None or not bucket or not key or key.endswith("/"):
            ignored += 1
            continue
        events.append(ObjectEvent(kind=kind, bucket=bucket, key=key))
    return events, ignored
