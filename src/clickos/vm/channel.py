"""Messages between the daemon, the zygote and instances.

Each link is an ``AF_UNIX``/``SOCK_SEQPACKET`` socket pair: the kernel keeps
message boundaries and carries file descriptors (``SCM_RIGHTS``) with a
message, so there is no framing code.  A message is one JSON object.

Requests carry an ``id`` and get exactly one reply with the same ``id``;
messages without one are events.
"""

from __future__ import annotations

import array
import json
import socket
from typing import Any

MAX_MESSAGE = 16 << 20          # configurations and handler values travel in one message
_BUFFER = MAX_MESSAGE + 4096
_PEEK = bytearray(1)
# (plain ints: or-ing the socket module's flag enums makes enum objects on each call)
_PEEK_FLAGS = int(socket.MSG_PEEK | socket.MSG_TRUNC)
_DONTWAIT = int(socket.MSG_DONTWAIT)


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected SEQPACKET pair, both ends close-on-exec, large send buffers."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (a, b):
        tune(s)
    return a, b


def tune(s: socket.socket) -> None:
    """Let one message be as large as MAX_MESSAGE."""
    for opt in (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF):
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, _BUFFER)
            break
        except OSError:
            continue


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


def send(s: socket.socket, msg: dict[str, Any], fds: list[int] | None = None) -> None:
    """Send one message (blocking, unless the socket is non-blocking)."""
    data = encode(msg)
    if len(data) > MAX_MESSAGE:
        raise ValueError("message too large")
    if fds:
        s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        s.send(data)


def recv(s: socket.socket, nonblock: bool = False) -> tuple[dict[str, Any] | None, list[int]]:
    """Receive one message and any descriptors with it.  ``(None, [])`` at end of file.

    With ``nonblock`` (or on a non-blocking socket) raises BlockingIOError when
    nothing is waiting.
    """
    flags = _DONTWAIT if nonblock else 0
    size = s.recv_into(_PEEK, 1, _PEEK_FLAGS | flags)
    if size == 0:
        # a zero-length read is end of file (we never send empty messages)
        return None, []
    fds = array.array("i")
    data, ancdata, _flags, _addr = s.recvmsg(size, socket.CMSG_SPACE(16 * fds.itemsize), flags)
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data:
        return None, list(fds)
    return json.loads(data), list(fds)
