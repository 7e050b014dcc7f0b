"""Structured logs: one JSON line per record, with context, extras and no secrets."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest

from autolog.logs import (
    JsonFormatter,
    RedactingFilter,
    Redactor,
    build_log_config,
    current_log_context,
    log_context,
    secret_values,
)
from autolog.settings import Settings


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON through the redaction filter into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(["hunter2-api-key", "whsec-0123456789"]))
    logger = logging.getLogger("tests.observability.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_the_bound_context_and_extras(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    with log_context(item_id="LF1409", message_id="m-1", actor_name="autolog.probe", attempt=2):
        logger.info("Completed %s.", "autolog.probe", extra={"event": "stage_completed", "duration_ms": 12.5})

    [line] = lines(stream)
    assert line["message"] == "Completed autolog.probe."
    assert (line["level"], line["logger"]) == ("info", "tests.observability.logs")
    assert {key: line[key] for key in ("item_id", "message_id", "actor_name", "attempt", "event", "duration_ms")} \
        == {"item_id": "LF1409", "message_id": "m-1", "actor_name": "autolog.probe", "attempt": 2,
            "event": "stage_completed", "duration_ms": 12.5}
    assert stream.getvalue().count("\n") == 1


def test_the_context_ends_with_its_block() -> None:
    with log_context(item_id="a"):
        with log_context(attempt=3):
            assert current_log_context() == {"item_id": "a", "attempt": 3}
        assert current_log_context() == {"item_id": "a"}
    assert current_log_context() == {}


def test_known_secrets_never_appear_in_messages_extras_or_tracebacks(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    logger.warning("Key %s refused", "hunter2-api-key", extra={"header": "X-Api-Key: hunter2-api-key"})
    try:
        raise ValueError("signature whsec-0123456789 did not match")
    except ValueError:
        logger.exception("Webhook failed")

    text = stream.getvalue()
    assert "hunter2-api-key" not in text and "whsec-0123456789" not in text
    first, second = lines(stream)
    assert first["message"] == "Key [REDACTED] refused"
    assert "[REDACTED]" in str(second["exc"]) and "ValueError" in str(second["exc"])


@pytest.mark.parametrize(("text", "expected"), [
    ("redis://:s3cret@cache:6379/0", "redis://:[REDACTED]@cache:6379/0"),
    ("postgresql://autolog:pw@db/autolog", "postgresql://autolog:[REDACTED]@db/autolog"),
    ("X-API-Key: abc123", "X-API-Key: [REDACTED]"),
    ('{"api_key": "abc123"}', '{"api_key": "[REDACTED]"}'),
    ("Authorization: Bearer abcdefghijkl", "Authorization: Bearer [REDACTED]"),
    ("X-Hub-Signature-256: sha256=deadbeef", "X-Hub-Signature-256: sha256=[REDACTED]"),
    ("ingest_webhook_secret=abc", "ingest_webhook_secret=[REDACTED]"),
    ("key AIza" + "A" * 35 + " used", "key [REDACTED] used"),
    ("item LF1409 keywords: sky, sea", "item LF1409 keywords: sky, sea"),
])
def test_secret_shapes_are_redacted_without_knowing_the_value(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_secret_values_come_from_every_secret_setting_and_url_password() -> None:
    settings = Settings(api_keys=("key-one", "key-two"), gemini_api_key="gemini-key",
                        redis_url="redis://:redispw@host:6379/0", database_url="postgresql://u:dbpw@db/x")

    found = secret_values(settings)

    assert {"key-one", "key-two", "gemini-key", "redispw", "dbpw"} <= set(found)
    assert "gemini-2.5-flash" not in found


def test_the_dict_config_installs_one_filtered_json_handler_on_the_root() -> None:
    config = build_log_config(level="DEBUG", fmt="json", secrets=["topsecret"], stream="ext://sys.stdout")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logging.config.dictConfig(config)
        [handler] = root.handlers
        assert isinstance(handler.formatter, JsonFormatter)
        assert any(isinstance(item, RedactingFilter) for item in handler.filters)
        assert root.level == logging.DEBUG
        assert not logging.getLogger("dramatiq").disabled
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_dramatiqs_notice_of_a_discarded_result_is_dropped_and_other_warnings_kept() -> None:
    config = build_log_config(stream="ext://sys.stdout")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    notice = ("Actor 'autolog.transcribe' returned a value that is not None, and you haven't added the Results "
              "middleware to the broker, so the value has been discarded.")
    try:
        logging.config.dictConfig(config)
        [handler] = root.handlers

        def kept(name: str, message: str) -> bool:
            return bool(handler.filter(logging.makeLogRecord({"name": name, "msg": message,
                                                              "levelno": logging.WARNING})))

        assert not kept("dramatiq.worker._WorkerThread", notice)
        assert kept("dramatiq.worker._WorkerThread", "Failed to process message autolog.probe('LF1').")
        assert kept("autolog.steps", notice), "only dramatiq's worker notice is dropped"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_a_store_outage_logs_one_warning_line_without_the_traceback_or_the_statement() -> None:
    import io
    import json

    from sqlalchemy.exc import OperationalError

    out = io.StringIO()
    config = build_log_config(stream="ext://sys.stdout")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    outage = OperationalError("UPDATE items SET run_token=%(token)s WHERE id = %(id)s",
                              {"token": "a-run-token", "id": "LF1"}, Exception("connection refused\nIs it running?"))
    other = ValueError("a bug")
    try:
        logging.config.dictConfig(config)
        [handler] = root.handlers
        handler.setStream(out)  # type: ignore[attr-defined]
        for error in (outage, other):
            try:
                raise error
            except Exception:
                logging.getLogger("dramatiq.worker.WorkerThread").exception(
                    "Failed to process message %s with unhandled exception.", "autolog.assess('LF1')")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])

    waited, failed = (json.loads(line) for line in out.getvalue().splitlines())
    assert (waited["level"], waited["message"]) == (
        "warning", "Failed to process message autolog.assess('LF1') with unhandled exception. The store is"
                   " unavailable: Exception: connection refused")
    assert "exc" not in waited and "a-run-token" not in out.getvalue().split("\n")[0]
    assert (failed["level"], failed["exc"].splitlines()[-1]) == ("error", "ValueError: a bug")


def test_text_format_appends_the_context_as_key_values() -> None:
    config = build_log_config(fmt="text")
    formatter = config["formatters"]["default"]["()"]()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "Started %s.", ("probe",), None)

    with log_context(item_id="LF1"):
        line = formatter.format(record)

    assert line.endswith("INFO x: Started probe. item_id=LF1")
