"""A TCP proxy in front of a Redis unix socket that loses one reply: the command ran, its answer never came.

What a network drop between Redis and a client looks like from the client: the connection
closes after Redis ran a command and before its reply arrived. ``cut_reply_with(marker)``
arms the proxy: the first reply (Redis to client) whose bytes hold ``marker`` is not
forwarded, and both sides of that connection are closed. Later connections pass as before.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path


class ReplyCuttingProxy:
    """Forwards ``127.0.0.1:<port>`` to the Redis listening on ``target`` (a unix socket); see the module docstring.

    Args:
        target: the Redis server's unix socket.
    """

    def __init__(self, target: Path) -> None:
        self._target = str(target)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._marker: bytes | None = None
        self._sockets: list[socket.socket] = []
        #: Set once a reply was cut.
        self.cut = threading.Event()
        self._closed = False
        threading.Thread(target=self._accept, name="reply-cutting-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        """The proxy's Redis URL."""
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def cut_reply_with(self, marker: bytes) -> None:
        """Cut the first reply from now on whose bytes hold ``marker`` (once)."""
        with self._lock:
            self._marker = marker
            self.cut.clear()

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed = True
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in [self._listener, *sockets]:
            _close(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.connect(self._target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        tail = b""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if replies:
                with self._lock:
                    marker = self._marker
                    seen = tail + data
                    hit = marker is not None and marker in seen
                    if hit:
                        self._marker = None
                    keep = len(marker) - 1 if marker else 0
                    tail = seen[len(seen) - keep:] if keep else b""
                if hit:
                    self.cut.set()
                    break
            try:
                sink.sendall(data)
            except OSError:
                break
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
