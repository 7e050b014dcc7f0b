"""Structured logs: a dictConfig builder, JSON and text formatters, a redaction filter, a context.

Entry points configure logging with ``logging.config.dictConfig(build_log_config(...))``;
modules only call ``logging.getLogger(__name__)``. Every record is one line. The JSON
formatter adds the fields bound with ``log_context`` (item id, message id, actor, attempt)
and any ``extra=`` fields (event, duration_ms, ...). The redaction filter runs on every
handler, so no formatter ever sees a secret.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

#: Fields bound for the message being processed; read by both formatters.
_CONTEXT: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("autolog_log_context",
                                                                                    default=None)

#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

#: Shapes of secrets that can appear without our knowing the value, each with its
#: replacement: credentials in URLs, ``name=value`` / header / JSON pairs with a
#: secret-sounding name, Google API keys and bearer tokens.
SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(://[^/\s:@]*:)[^/\s@]+(@)"), r"\g<1>[REDACTED]\g<2>"),
    (re.compile(r"(?i)([\w-]*(?:api[_-]?key|secret[\w-]*|token|password|passwd|authorization|signature[\w-]*|"
                r"access[_-]?key(?:[_-]?id)?)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+|sha256=)?)"
                r"[^\s\"',;&}]+"), r"\g<1>[REDACTED]"),
    (re.compile(r"AIza[0-9A-Za-z_\-]{35,}"), "[REDACTED]"),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\g<1>[REDACTED]"),
)


def _may_match_a_pattern(text: str) -> bool:
    """Tell whether ``text`` has what any ``SECRET_PATTERNS`` match needs (``:``, ``=``, a key, a bearer).

    PERF(metrics): workers log two lines per message, and the name=value pattern backtracks on
    every word; these substring tests keep the patterns off the common line.
    """
    return ":" in text or "=" in text or "AIza" in text or "earer" in text or "EARER" in text


#: A known secret shorter than this is not searched for: it would blot out ordinary words.
MIN_SECRET_LENGTH = 4

REDACTED = "[REDACTED]"

#: Setting names that hold secrets, matched against ``Settings`` field names.
_SECRET_FIELD = re.compile(r"(key|secret|token|password)", re.IGNORECASE)


#: What ``bind_log_context`` returns, to hand back to ``reset_log_context``.
LogContextToken = contextvars.Token[Mapping[str, Any] | None]


def bind_log_context(**fields: Any) -> LogContextToken:
    """Add fields to every record logged from this thread until the token is reset."""
    return _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})


def reset_log_context(token: LogContextToken | None = None) -> None:
    """Restore the context a ``bind_log_context`` token saved, or clear it."""
    if token is None:
        _CONTEXT.set(None)
    else:
        _CONTEXT.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind fields for the duration of a ``with`` block."""
    token = bind_log_context(**fields)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current_log_context() -> Mapping[str, Any]:
    """Return the fields bound in this thread."""
    return _CONTEXT.get() or {}


def secret_values(settings: object) -> list[str]:
    """Collect the secret values of a settings dataclass: keys, tokens, passwords in URLs."""
    found: list[str] = []
    for field in dataclasses.fields(settings):  # type: ignore[arg-type]
        value = getattr(settings, field.name)
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if not isinstance(item, str) or not item:
                continue
            if _SECRET_FIELD.search(field.name) and not field.name.endswith(("_id", "_region")):
                found.append(item)
            elif "://" in item and (password := urlsplit(item).password):
                found.append(password)
    return found


class Redactor:
    """Replaces known secret values and secret-shaped text with ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str] = (),
                 patterns: Iterable[tuple[re.Pattern[str], str]] = SECRET_PATTERNS) -> None:
        known = sorted({secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(secret) for secret in known)) if known else None
        self._patterns = tuple(patterns)

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret replaced."""
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        if _may_match_a_pattern(text):
            for pattern, replacement in self._patterns:
                text = pattern.sub(replacement, text)
        return text


class RedactingFilter(logging.Filter):
    """Renders each record's message and traceback once, with secrets removed.

    Args:
        secrets: literal values to remove (API keys, webhook secrets, URL passwords).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        extras = record.__dict__
        for name in [name for name in extras if name not in _RECORD_ATTRIBUTES]:
            if isinstance(extras[name], str):
                extras[name] = self._redact(extras[name])
        return True


class DiscardedResultNotice(logging.Filter):
    """Drops dramatiq's warning that a step's return value was discarded for want of its Results middleware.

    autolog's steps return their result to ``StatusWrites``, which stores it with the step's
    status write (``after_process_message`` receives it), so nothing is discarded; dramatiq's
    worker would still warn on every message of a step that is not piped into another actor.
    Only that warning is dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("dramatiq.worker")
                    and "haven't added the Results middleware" in str(record.msg))


class StoreOutageNotice(logging.Filter):
    """Logs an error record whose exception is a store outage as one warning line, without its traceback.

    A store outage is waited out by design (``middleware.retries``): every message that meets it is
    put back, and each would log dramatiq's "unhandled exception" error, or a hook's, with a
    traceback ending in SQLAlchemy's twenty lines of statement and parameters. The record keeps
    its message, says the store is unavailable, and names the driver's error in one line
    (``autolog.store.outage_text``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exception = record.exc_info[1] if record.exc_info else None
        if exception is None:
            return True
        from autolog.store.outages import is_store_outage, outage_text  # only when a record has an exception

        if is_store_outage(exception):
            record.msg = f"{record.getMessage()} The store is unavailable: {outage_text(exception)}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the context and ``extra=`` fields of a record."""
    fields = dict(_CONTEXT.get() or {})
    fields.update({name: value for name, value in record.__dict__.items() if name not in _RECORD_ATTRIBUTES})
    return fields


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            "thread": record.threadName,
        }
        document.update(_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exc"] = record.exc_text
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Formats a record as a line for people, context fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = _fields(record)
        return line + "".join(f" {name}={value}" for name, value in fields.items()) if fields else line


def build_log_config(
    *, level: str = "INFO", fmt: str = "json", secrets: Iterable[str] = (), stream: str = "ext://sys.stderr",
) -> dict[str, Any]:
    """Build a ``logging.config.dictConfig`` document: one handler on the root logger.

    Args:
        level: the root level name.
        fmt: ``json`` or ``text``.
        secrets: values the redaction filter removes wherever they appear.
        stream: where the handler writes, in dictConfig's ``ext://`` notation.
    """
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    return {
        "version": 1,
        # Loggers created before configuration (dramatiq's, gunicorn's) must keep working.
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter, "secrets": list(secrets)},
                    "discarded_result": {"()": DiscardedResultNotice}, "store_outage": {"()": StoreOutageNotice}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "stream": stream, "formatter": "default",
                                 "filters": ["discarded_result", "store_outage", "redact"]}},
        "root": {"level": level, "handlers": ["default"]},
    }
