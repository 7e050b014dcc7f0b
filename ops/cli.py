"""``autolog``: the operator's command line.

Exit codes: 0 success; 1 the work failed or timed out, or a service is unavailable;
2 bad input (unknown id, refused transition, path outside the media roots, bad arguments).
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import sys
from collections.abc import Callable, Sequence

import redis
from sqlalchemy.exc import SQLAlchemyError

from autolog.errors import (
    AutologError,
    ConfigError,
    InvalidItemId,
    InvalidSearchQuery,
    InvalidSource,
    ItemExists,
    ItemNotFound,
    MediaMissing,
    QueueNotFound,
    TransitionRefused,
    UnknownStep,
)
from autolog.exports import ExportError
from autolog.exports.errors import ItemsNotLogged, MixedFrameRates, NotExportable
from autolog.logs import build_log_config, secret_values
from autolog.settings import Settings
from autolog.statuses import Status, parse_status
from ops import commands, demo, stack
from ops.errors import PoolError, UsageError
from ops.exports import add_export_command

#: A command: parsed arguments and settings in, exit code out.
Command = Callable[[argparse.Namespace, Settings], int]

#: Errors that mean the item is not in a state the action needs (HTTP 409): exit code 3.
CONFLICT_ERRORS = (ItemExists, ItemsNotLogged, MixedFrameRates, NotExportable, TransitionRefused)

#: Errors that mean the operator asked for something that cannot be: exit code 2.
INPUT_ERRORS = (ConfigError, ExportError, InvalidItemId, InvalidSearchQuery, InvalidSource, ItemNotFound,
                MediaMissing, PoolError, QueueNotFound, UnknownStep, UsageError)

#: How long ``ingest --wait`` and ``demo`` wait by default, in seconds.
DEFAULT_WAIT_TIMEOUT_S = 600.0

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFLICT = 0, 1, 2, 3

#: Items ``status`` lists per page by default, and at most.
DEFAULT_PAGE, MAX_PAGE = 100, 10_000

#: The most items ``autolog search`` shows at once.
MAX_SEARCH_LIMIT = 1000


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _status_page_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_PAGE}, got {text}")
    return value


def _status(text: str) -> Status:
    try:
        return parse_status(text)
    except ValueError as ex:
        raise argparse.ArgumentTypeError(str(ex)) from ex


def _page_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_SEARCH_LIMIT:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_SEARCH_LIMIT}, got {text}")
    return value


def _offset(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _add_item_commands(commands_: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = commands_.add_parser("ingest", help="submit files as items",
                                  description="Submit files as items. Ids default to the file stem, or the stem "
                                              "and a hash of the path when another file has that stem; "
                                              "a path ingested again is the item it already is.")
    ingest.add_argument("paths", nargs="+", metavar="PATH",
                        help="a file under a media root, a folder there (a camera card: the footage files under it), "
                             "or s3://bucket/key")
    ingest.add_argument("--id", help="the item id (only with one PATH)")
    ingest.add_argument("--force-resume", action="store_true", help="run step 4 without waiting for a prompt")
    ingest.add_argument("--wait", action="store_true", help="show progress until every item rests")
    ingest.add_argument("--timeout", type=_positive, default=DEFAULT_WAIT_TIMEOUT_S,
                        help="seconds --wait waits (default: %(default)g)")
    ingest.set_defaults(handler=commands.ingest)

    status = commands_.add_parser("status", help="list items, or show one item",
                                  description="Without ID, list items (a page at a time, by id) and counts per "
                                              "status; with ID, show its fields, frames, transcript and timeline.")
    status.add_argument("id", nargs="?", metavar="ID")
    status.add_argument("--status", help="only items at this status: its full name, its leading number (7), "
                                         "its label or a prefix naming one status (awaiting)")
    status.add_argument("--match", metavar="PATTERN", help="only ids matching this pattern (LF14*, C000?)")
    status.add_argument("--failed", action="store_true",
                        help="only failed items: dead-lettered, or stopped by an error no retry can fix")
    status.add_argument("--dead-lettered", action="store_true", help="only dead-lettered items")
    status.add_argument("--limit", type=_status_page_size, default=DEFAULT_PAGE,
                        help="items per page (default: %(default)s)")
    status.add_argument("--after", metavar="ID", help="the page after this id (printed at the end of a page)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=commands.status)

    search = commands_.add_parser(
        "search", help="search items by id, source, description, keywords and transcript",
        description="Full-text search, best match first: every word must be in the item; \"quoted words\" "
                    "are a phrase; word* and the last word match as prefixes; case and accents do not matter.")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--status", type=_status, help="only items at this status")
    search.add_argument("--limit", type=_page_size, default=20,
                        help=f"items to show, 1 to {MAX_SEARCH_LIMIT} (default: %(default)s)")
    search.add_argument("--offset", type=_offset, default=0, help="skip this many best matches (default: 0)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(handler=commands.search)

    prompt = commands_.add_parser("prompt", help="give a waiting item its prompt and resume it")
    prompt.add_argument("id", metavar="ID")
    prompt.add_argument("text", metavar="TEXT")
    prompt.set_defaults(handler=commands.prompt)

    for name, handler, summary in (
        ("resume", commands.resume, "resume a waiting item without a prompt"),
        ("retry", commands.retry, "queue again the step an item stopped at"),
        ("cancel", commands.cancel, "cancel an item; a running step stops at its next safe point"),
        ("uncancel", commands.uncancel, "undo a cancel and queue the item from where it stopped"),
        ("delete", commands.delete, "delete an item, its timeline, results and artifact files"),
    ):
        parser = commands_.add_parser(name, help=summary)
        parser.add_argument("id", metavar="ID")
        parser.set_defaults(handler=handler)

    rerun = commands_.add_parser("rerun", help="re-log a finished or failed item from a chosen step")
    rerun.add_argument("id", metavar="ID")
    rerun.add_argument("--from", dest="from_step", required=True, metavar="STEP",
                       help="the step to start from: file_info ... transcription, its number or queue name")
    rerun.set_defaults(handler=commands.rerun)

    commands_.add_parser("force-resume-all", help="reprocess from step 3 every item step 3 has run for") \
        .set_defaults(handler=commands.force_resume_all)

    queues = commands_.add_parser("queues", help="list the queues, or pause, resume or purge one",
                                  description="A queue is named by its queue, step or seed name (probe, "
                                              "file_info, step1_file_info). Purge drops its queued, delayed and "
                                              "held messages and marks their items purged.")
    queues.add_argument("action", nargs="?", choices=("list", "pause", "resume", "purge"), default="list",
                        help="default: list")
    queues.add_argument("queue", nargs="?", help="the queue (all, for list)")
    queues.add_argument("--json", action="store_true", help="print JSON")
    queues.set_defaults(handler=commands.queues)


def _add_stack_commands(commands_: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    workers = commands_.add_parser("workers", help="start, stop or list the worker pools",
                                   description="Manage the worker pools (one per step queue, plus control).")
    workers.add_argument("action", nargs="?", choices=("start", "stop", "status"), default="status",
                         help="default: status")
    workers.add_argument("pools", nargs="*", metavar="POOL",
                         help="pool names (file_info ... transcription, control); default: all")
    workers.add_argument("--timeout", type=_positive, default=None,
                         help="seconds stop waits before SIGKILL (default: longest time limit + 10)")
    workers.add_argument("--json", action="store_true", help="print JSON")
    workers.set_defaults(handler=stack.workers)

    commands_.add_parser("up", help="start Redis (unless REDIS_URL is set), migrate, start the pools") \
        .set_defaults(handler=stack.up)
    down = commands_.add_parser("down", help="stop the pools, then the private Redis")
    down.add_argument("--timeout", type=_positive, default=None,
                      help="seconds to wait before SIGKILL (default: longest time limit + 10)")
    down.set_defaults(handler=stack.down)

    demo_ = commands_.add_parser("demo", help="run sample clips through the whole stack and show the results")
    demo_.add_argument("--down", action="store_true", help="stop the stack at the end")
    demo_.add_argument("--timeout", type=_positive, default=DEFAULT_WAIT_TIMEOUT_S,
                       help="seconds to wait for the clips (default: %(default)g)")
    demo_.set_defaults(handler=demo.demo)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``autolog`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="autolog", description="Operate the autolog footage-logging pipeline.",
        epilog="Exit codes: 0 ok; 1 failed, timed out or a service is down; 2 bad input.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    commands_ = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_item_commands(commands_)
    add_export_command(commands_)
    _add_stack_commands(commands_)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` (default: the process's arguments).

    Raises:
        SystemExit: the arguments are invalid (code 2) or help was asked for (code 0).
    """
    return build_parser().parse_args(argv)


def configure_logging(verbosity: int, settings: Settings) -> None:
    """Send log records to stderr: warnings, more with ``-v``; as text to a terminal, else as settings say.

    A person at a terminal reads lines, not JSON; a log collector reading a pipe gets the
    configured format (JSON by default). Like ``logging.basicConfig``, it leaves alone a
    process whose root logger has handlers.
    """
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    if logging.getLogger().handlers:
        return
    fmt = "text" if sys.stderr.isatty() else settings.log_format
    logging.config.dictConfig(build_log_config(level=logging.getLevelName(level), fmt=fmt,
                                               secrets=secret_values(settings)))


def fail(message: object, code: int) -> int:
    """Print a one-line error on stderr and return ``code``."""
    text = " ".join(str(message).split())
    print(f"autolog: error: {text}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``autolog`` command and return its exit code."""
    try:
        args = parse_args(argv)
    except SystemExit as ex:
        return ex.code if isinstance(ex.code, int) else EXIT_USAGE
    handler: Command = args.handler
    try:
        settings = Settings.from_env()
        configure_logging(args.verbose, settings)
        return handler(args, settings)
    except CONFLICT_ERRORS as ex:
        return fail(ex, EXIT_CONFLICT)
    except INPUT_ERRORS as ex:
        return fail(ex, EXIT_USAGE)
    except redis.RedisError as ex:
        return fail(f"Redis is unavailable: {ex}", EXIT_FAILED)
    except SQLAlchemyError as ex:
        return fail(f"the database is unavailable: {ex}", EXIT_FAILED)
    except AutologError as ex:
        return fail(ex, EXIT_FAILED)
    except BrokenPipeError:
        # The reader went away (``autolog status | head``); send what is left to devnull so the
        # interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        return fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
