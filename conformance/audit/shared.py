"""One verdict cache for all the worker processes of an audit.

Each worker judges its share of the files; with a cache of its own, a key that both workers meet
is evaluated by both (on 10,000 objects, two private caches miss about 20% more often than one).
The cache lives in the auditing process, served by a thread (`serve_caches`), and every call to
it is a round trip between processes, so a worker talks to it only when its own cache lacks a key
(`CacheClient`): what it evaluated since waits and travels with that question, and the answer
brings back, besides the keys asked for, everything the other workers added since. Every key is
evaluated about once whichever worker meets it first, for about one round trip per key that is
new to the worker.

A thread, not a manager process: a manager is one more interpreter to start (0.1 to 0.3 s, which
the workers waited for) and to stop, and the auditing process is idle while the workers run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Hashable, Iterable, Iterator
from multiprocessing import AuthenticationError, current_process
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, Protocol


class SharedCache:
    """Entries (a key → what was found) that any worker may read and add to; the manager serialises calls."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, Any] = {}
        self._log: list[tuple[Hashable, Hashable]] = []  # (key, the worker that added it), in the order added

    def exchange(self, entries: dict[Hashable, Any], keys: Iterable[Hashable], seen: int, worker: Hashable
                 ) -> tuple[dict[Hashable, Any], int]:
        """Add `worker`'s `entries`; return the known ones of `keys` and every entry another worker added
        after position `seen` of the log, with the position reached."""
        for key, value in entries.items():
            if key not in self._entries:
                self._log.append((key, worker))
            self._entries[key] = value
        found = {key: self._entries[key] for key in keys if key in self._entries}
        found.update((key, self._entries[key]) for key, origin in self._log[seen:] if origin != worker)
        return found, len(self._log)


class Exchange(Protocol):
    """What a CacheClient asks: a SharedCache of its own process, or a RemoteCache of the auditing one."""

    def exchange(self, entries: dict[Hashable, Any], keys: Iterable[Hashable], seen: int, worker: Hashable
                 ) -> tuple[dict[Hashable, Any], int]: ...


class CacheClient:
    """One worker's side of a SharedCache: entries it adds wait for its next question (or `flush`)."""

    def __init__(self, shared: Exchange, worker: Hashable) -> None:
        self.shared, self.worker = shared, worker
        self.pending: dict[Hashable, Any] = {}
        self.seen = 0

    def known(self, keys: Iterable[Hashable]) -> dict[Hashable, Any]:
        """The known entries of `keys`, and every entry other workers added since the last call."""
        found, self.seen = self.shared.exchange(self.pending, list(keys), self.seen, self.worker)
        self.pending = {}
        return found

    def add(self, entries: dict[Hashable, Any]) -> None:
        self.pending.update(entries)

    def flush(self) -> dict[Hashable, Any]:
        """Hand over what waits; returns what other workers added meanwhile."""
        return self.known([]) if self.pending else {}


class RemoteCache:
    """A SharedCache of the auditing process, reached from a worker over its connection."""

    def __init__(self, connection: Connection, index: int) -> None:
        self.connection, self.index = connection, index

    def exchange(self, entries: dict[Hashable, Any], keys: Iterable[Hashable], seen: int, worker: Hashable
                 ) -> tuple[dict[Hashable, Any], int]:
        self.connection.send((self.index, entries, list(keys), seen, worker))
        found, position = self.connection.recv()
        return found, position


def remote_caches(address: str, count: int) -> list[RemoteCache]:
    """The `count` caches that `serve_caches` serves at `address`, over one connection."""
    connection = Client(address, authkey=current_process().authkey)  # a spawned worker has its parent's key
    return [RemoteCache(connection, index) for index in range(count)]


@contextlib.contextmanager
def serve_caches(count: int) -> Iterator[str]:
    """`count` SharedCaches served from a thread of this process, at the address it yields, for as long as the
    audit runs; one thread per connected worker answers its questions in turn."""
    caches = [SharedCache() for _ in range(count)]
    lock = threading.Lock()
    stopping = threading.Event()

    def serve(connection: Connection) -> None:
        with connection:
            while True:
                try:
                    index, entries, keys, seen, worker = connection.recv()
                except (EOFError, OSError):  # the worker is gone
                    return
                with lock:
                    answer = caches[index].exchange(entries, keys, seen, worker)
                connection.send(answer)

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection = listener.accept()
            except (OSError, EOFError, AuthenticationError):  # a caller that failed to connect, or not one of ours
                continue
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    with Listener(authkey=current_process().authkey) as listener:
        accepting = threading.Thread(target=accept, daemon=True)
        accepting.start()
        try:
            yield str(listener.address)
        finally:
            stopping.set()
            with contextlib.suppress(OSError):
                Client(listener.address, authkey=current_process().authkey).close()  # wakes the accepting thread
            accepting.join(timeout=5)  # a daemon thread: never holds up the audit
