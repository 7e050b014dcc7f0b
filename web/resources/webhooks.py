"""Ingress webhooks: MinIO bucket notifications and the signed ingest webhook."""

from __future__ import annotations

import json

import falcon

from pipelines.intake import accept_delivery, apply_minio
from web.ingress import INGEST_EVENTS, parse_minio, verify_bearer, verify_signature
from web.services import ApiServices
from web.validation import bounded_list, invalid, item_list, naming_sources


def _raw_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as ex:
        raise invalid("body", f"malformed JSON: {ex}") from ex


class MinioWebhook:
    """``POST /webhook/minio``: created objects become queued items; removed objects cancel theirs."""

    auth = "webhook"

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        verify_bearer(self._services.settings.minio_webhook_token, req.auth)
        try:
            events, ignored = parse_minio(_raw_json(req.bounded_stream.read()))
        except ValueError as ex:
            raise invalid(str(ex).partition(":")[0], str(ex).partition(":")[2].strip()) from ex
        resp.media = apply_minio(self._services.context, events, ignored=ignored).to_dict()


class IngestWebhook:
    """``POST /webhooks/ingest``: a signed JSON list of items, stored once per delivery id.

    The signature is checked first. GitHub's ``ping`` (sent when a hook is created) answers
    200; an ``X-GitHub-Event`` other than ``ingest`` answers 202 saying it was not acted on.
    """

    auth = "webhook"

    def __init__(self, services: ApiServices) -> None:
        self._services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.bounded_stream.read()
        verify_signature(self._services.settings.ingest_webhook_secret, body, req.get_header("X-Hub-Signature-256"))
        event = req.get_header("X-GitHub-Event") or "ingest"
        if event == "ping":
            resp.media = {"event": "ping", "ok": True}
            return
        if event not in INGEST_EVENTS:
            resp.media = {"event": event, "acted": False,
                          "reason": f"autolog acts on {', '.join(sorted(INGEST_EVENTS))} events only"}
            resp.status = falcon.HTTP_202
            return
        delivery_id = req.get_header("X-GitHub-Delivery", required=True)
        if len(delivery_id) > 100:
            raise invalid("X-GitHub-Delivery", "longer than 100 characters")
        entries = _raw_json(body)
        if not isinstance(entries, list):
            raise invalid("body", "expected a JSON array of items, [{\"id\": ..., \"source\": ...}, ...]")
        items = item_list(bounded_list({"body": entries}, "body"), "body")
        with naming_sources(items, "body"):
            delivery, answers = accept_delivery(self._services.context, self._services.deliveries, delivery_id,
                                                body, items)
        resp.media = {**delivery.to_dict(), "queued": all(answer.queued for answer in answers),
                      "job_ids": [answer.job_id for answer in answers]}
        resp.status = falcon.HTTP_200 if delivery.duplicate else falcon.HTTP_202
