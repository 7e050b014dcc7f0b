"""A PostgreSQL cluster of a test's or a bench's own, which it may stop and start.

``initdb``/``pg_ctl`` in a temporary folder, on a given port, run as the ``postgres`` user
when the caller is root; never the machine's shared server.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class PostgresCommandFailed(RuntimeError):
    """An ``initdb`` or ``pg_ctl`` call failed; the message holds its output."""


def find_postgres_bin() -> Path | None:
    """Return the newest installed PostgreSQL's server programs folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """A private cluster in a temporary folder, listening on 127.0.0.1:``port``.

    Raises:
        PostgresCommandFailed: from ``init``, ``start`` or ``stop`` when the program fails.
    """

    def __init__(self, bin_dir: Path, port: int) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="autolog-pg-"))
        self.data = self.root / "data"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.root, "postgres")

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as_postgres, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise PostgresCommandFailed(f"{Path(args[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}")

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
