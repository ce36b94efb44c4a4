"""Take a client's connection away from gunicorn, so a long response needs no thread.

gunicorn's threaded worker keeps a pool thread on a request until its response body ends;
WSGI has no way to hand a connection back. What gunicorn does expose is the connection's
socket (``environ["gunicorn.socket"]``). ``take_client_socket`` duplicates its file
descriptor (the duplicate is ours) and then points gunicorn's descriptor number at a dead
socket pair with ``dup2``: everything gunicorn still does with its socket object (write
its own response head, shut down, close) now fails or lands nowhere, and the client's TCP
connection is untouched. gunicorn sees a client that went away (``EPIPE``, logged at debug
level), frees the thread and forgets the connection.

Only a plain HTTP/1.1 socket is taken: TLS sockets, HTTP/2 streams and servers other
than gunicorn (the test client, ``flask run``) keep the ordinary streamed response.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any

#: the response head is ours to write; these framing headers are decided here
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "upgrade", "proxy-connection", "te", "trailer"})


def detachable(environ: dict[str, Any]) -> bool:
    """Whether this request's connection can be taken over (see the module doc)."""
    sock = environ.get("gunicorn.socket")
    return (isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket)
            and sock.type == socket.SOCK_STREAM
            and environ.get("SERVER_PROTOCOL") == "HTTP/1.1"  # not an HTTP/2 stream
            and environ.get("REQUEST_METHOD") != "HEAD")


def take_client_socket(environ: dict[str, Any]) -> socket.socket | None:
    """The client's connection as a socket of our own, or ``None`` (nothing changed)."""
    if not detachable(environ):
        return None
    theirs: socket.socket = environ["gunicorn.socket"]
    try:
        ours = theirs.dup()
    except OSError:
        return None  # out of descriptors: the caller streams the ordinary way
    dead, peer = socket.socketpair()
    try:
        peer.close()
        os.dup2(dead.fileno(), theirs.fileno(), inheritable=False)
    except OSError:
        ours.close()
        return None
    finally:
        dead.close()
    return ours


def response_head(status: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """An HTTP/1.1 head for a chunked body that ends the connection when it ends."""
    lines = [f"HTTP/1.1 {status}", f"Date: {formatdate(usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in headers
              if name.lower() not in _HOP_BY_HOP]
    lines += ["Transfer-Encoding: chunked", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")
