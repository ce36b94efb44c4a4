"""How many progress streams a process keeps open: in total and per client address.

An open stream no longer holds a request thread (see ``restock.web.broadcast``), but it
still holds a socket, a file descriptor and a little memory, so a runaway script must get a
clear answer instead of exhausting them: 429 when one client has too many open, 503 when
the process is full. Both carry ``Retry-After``. The counts are per server process (each
gunicorn worker counts its own), which keeps them free of any shared store.
"""

from __future__ import annotations

import resource
import threading
from collections import Counter

from restock.errors import RestockError

#: file descriptors kept for everything else a worker opens (database, models, requests)
RESERVED_FDS = 256


class StreamLimitError(RestockError):
    """No stream slot for this request; ``retry_after`` seconds is a sensible wait."""

    status = 503
    retry_after = 5


class TooManyStreamsError(StreamLimitError):
    """This client already holds its share of the process's open streams."""

    code = "too_many_streams"
    status = 429


class StreamsFullError(StreamLimitError):
    """The process holds as many open streams as it is configured (or able) to."""

    code = "streams_full"
    status = 503


def open_file_limit(wanted: int) -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` towards ``wanted`` (at most the hard
    limit) and return the soft limit now in force: every open stream is one descriptor,
    and distributions still start services with a soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # not allowed here: the limit below follows what we have
    return soft


class Slot:
    """One open stream's place in the counts; ``release`` is safe to call twice."""

    def __init__(self, slots: "StreamSlots", client: str) -> None:
        self._slots = slots
        self.client = client
        self._released = False

    def release(self) -> None:
        self._slots._release(self)


class StreamSlots:
    """Thread-safe counters of open streams, in total and per client address.

    ``total`` is lowered to what the open-file limit allows, so a full process answers 503
    instead of failing to accept connections.
    """

    def __init__(self, total: int, per_client: int) -> None:
        fd_limit = open_file_limit(total + RESERVED_FDS)
        self.total = max(1, min(total, fd_limit - RESERVED_FDS))
        self.per_client = per_client
        self._lock = threading.Lock()
        self._open = 0
        self._by_client: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return self._open

    def acquire(self, client: str) -> Slot:
        """A slot for ``client``, or ``TooManyStreamsError`` / ``StreamsFullError``."""
        with self._lock:
            if self._by_client[client] >= self.per_client:
                raise TooManyStreamsError(
                    f"this client already has {self.per_client} open progress streams, the "
                    "limit per client; close one or retry later",
                    {"open": self._by_client[client], "limit": self.per_client})
            if self._open >= self.total:
                raise StreamsFullError(
                    f"the server already has {self.total} open progress streams, its limit; "
                    "retry later", {"open": self._open, "limit": self.total})
            self._open += 1
            self._by_client[client] += 1
        return Slot(self, client)

    def _release(self, slot: Slot) -> None:
        with self._lock:
            if slot._released:
                return
            slot._released = True
            self._open -= 1
            self._by_client[slot.client] -= 1
            if self._by_client[slot.client] <= 0:
                del self._by_client[slot.client]
