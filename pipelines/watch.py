"""Watch folders: files that appear under configured folders become items once they have settled.

``watchdog`` reports files created, modified or moved into the folders; a full walk every
``scan_interval_s`` catches what it missed (a network share, a restart, a folder that appeared
later). A file noticed either way is ingested once it has been quiet for the settle time (the
rule step 1 applies, ``autolog.source_state.settle_remaining_s``), so a file still being copied
is never ingested half-written. Each path becomes one item: a path an item already has is left
alone, and new items take the CLI's ids (``autolog.item_ids``). Items are stored and queued by
``pipelines.actions.submit``, the one store-then-queue path of the API and the CLI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from autolog.context import Context
from autolog.errors import AutologError, InvalidSource, ItemExists, MediaMissing, StoreUnavailable
from autolog.item_ids import choose_id, stored_items
from autolog.source_state import Sighting, SourceStat, settle_remaining_s
from autolog.sources import is_media_name
from autolog.store import NewItem
from pipelines import actions

logger = logging.getLogger(__name__)

#: Names of files that are not footage yet: hidden files and the partial files of copy tools.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", "~")


def is_candidate(path: Path) -> bool:
    """True for a name that may be footage: a footage or sound file's ending, not hidden, not a partial file."""
    return not path.name.startswith(".") and not path.name.endswith(PARTIAL_SUFFIXES) and is_media_name(path)


def ingest_file(context: Context, path: Path) -> str | None:
    """Store and queue ``path`` as a new item; return its id, or None when an item already has the path.

    Raises:
        InvalidSource: the path is outside the media roots, missing or not a file.
        StoreUnavailable, SQLAlchemyError: the store cannot be reached (try again later).
    """
    source = str(path.resolve())
    if context.store.items.with_source(source):
        return None
    item_id, existing = choose_id(source, stored_items(context.store.items))
    if existing is not None:
        return None
    actions.submit(context, [NewItem(item_id, source)])
    logger.info("Watch folder: ingested %r as item %r.", source, item_id)
    return item_id


class _Events(FileSystemEventHandler):
    """Passes the paths of watchdog's file events to ``note``."""

    def __init__(self, note: Callable[[Path], None]) -> None:
        self._note = note

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "modified", "moved", "closed"):
            return
        target = getattr(event, "dest_path", "") or event.src_path
        self._note(Path(target if isinstance(target, str) else target.decode()))


class FolderWatch:
    """Notices files under ``folders`` and ingests each once it has settled.

    Args:
        folders: the folders, watched recursively; one that does not exist yet is walked once it does.
        settle_s: how long a file must stay unchanged (size and times) before it is ingested.
        ingest: stores and queues one settled file (``ingest_file`` bound to a context).
        active: whether to ingest now; a file waits while it is False (another host's sweep holds the lease).
        scan_interval_s: seconds between full walks of the folders.
        check_interval_s: seconds between looks at the files noticed and not yet settled.
        clock: Unix seconds.
    """

    def __init__(self, folders: Sequence[Path], *, settle_s: float, ingest: Callable[[Path], object],
                 active: Callable[[], bool] = lambda: True, scan_interval_s: float = 30.0,
                 check_interval_s: float = 0.5, clock: Callable[[], float] = time.time) -> None:
        self.folders = tuple(folders)
        self.settle_s = settle_s
        self._ingest = ingest
        self._active = active
        self.scan_interval_s = scan_interval_s
        self.check_interval_s = check_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        #: Files noticed and not yet ingested, with the stat they last had and since when.
        self._pending: dict[Path, Sighting | None] = {}
        #: Files ingested (or found to be items already) by this watch.
        self._done: set[Path] = set()
        self._stop = threading.Event()
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._thread: threading.Thread | None = None

    def note(self, path: Path) -> None:
        """Remember a file to ingest once it settles (a no-op for a file already handled)."""
        if not is_candidate(path):
            return
        with self._lock:
            if path not in self._done:
                self._pending.setdefault(path, None)

    def waiting(self) -> dict[Path, Sighting | None]:
        """The files noticed and not yet ingested, with their last sighting (None until first checked)."""
        with self._lock:
            return dict(self._pending)

    def scan(self) -> None:
        """Walk every folder and note each file in it."""
        for folder in self.folders:
            if folder.is_dir():
                for path in folder.rglob("*"):
                    if path.is_file():
                        self.note(path)

    def check(self) -> list[Path]:
        """Ingest each noticed file that has settled; return those ingested (or found to be items)."""
        now = self._clock()
        with self._lock:
            pending = list(self._pending.items())
        settled = []
        for path, last in pending:
            try:
                current = SourceStat.of(path)
            except MediaMissing:
                self._forget(path)
                continue
            sighting = last if last is not None and last.stat == current else Sighting(stat=current, since_s=now)
            with self._lock:
                self._pending[path] = sighting
            if settle_remaining_s(current, now_s=now, settle_s=self.settle_s, last=sighting) > 0:
                continue
            if self._active() and self._try_ingest(path):
                settled.append(path)
        return settled

    def _try_ingest(self, path: Path) -> bool:
        try:
            self._ingest(path)
        except (StoreUnavailable, SQLAlchemyError) as ex:
            logger.warning("Watch folder: cannot ingest %r now, trying again: %s", str(path), ex)
            return False
        except (InvalidSource, ItemExists) as ex:
            logger.error("Watch folder: %r is not ingested: %s", str(path), ex)
        except AutologError as ex:
            logger.warning("Watch folder: cannot ingest %r now, trying again: %s", str(path), ex)
            return False
        self._forget(path, done=True)
        return True

    def _forget(self, path: Path, *, done: bool = False) -> None:
        with self._lock:
            self._pending.pop(path, None)
            if done:
                self._done.add(path)

    def start(self) -> None:
        """Watch the folders that exist, walk all of them, and keep checking on a daemon thread."""
        observer = Observer()
        handler = _Events(self.note)
        for folder in self._existing(self.folders):
            observer.schedule(handler, str(folder), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="autolog-watch", daemon=True)
        self._thread.start()
        logger.info("Watching %s (settle %g s).", ", ".join(map(str, self.folders)) or "nothing", self.settle_s)

    def _run(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_scan:
                self.scan()
                next_scan = time.monotonic() + self.scan_interval_s
            self.check()
            self._stop.wait(self.check_interval_s)

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop watching and checking."""
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout_s)
            self._observer = None
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @staticmethod
    def _existing(folders: Iterable[Path]) -> list[Path]:
        return [folder for folder in folders if folder.is_dir()]
