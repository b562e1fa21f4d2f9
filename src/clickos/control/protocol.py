"""The ControlSocket wire protocol (``Click::ControlSocket/1.3``), without I/O.

A :class:`ControlProtocol` is one client connection's state.  The owner feeds it
the bytes that arrived (:meth:`ControlProtocol.receive_data`; an empty chunk
means the peer closed its sending side), asks it to work through the buffered
commands (:meth:`ControlProtocol.next_command` does one, :meth:`process` all
that are complete) and sends whatever :meth:`ControlProtocol.data_to_send`
hands back.  It never touches a socket, so the ControlSocket element and any
other server (a daemon, the tests) can drive it the same way.

What the protocol object itself decides is the framing: splitting lines (CR,
LF or CRLF), words, the byte counts of ``READDATA``/``WRITEDATA``/``LLRPC``,
the terminator lines of ``READUNTIL``/``WRITEUNTIL``, ``QUIT`` and ``HELP``,
and the syntax replies (500, 501).  Everything that touches handlers goes to a
:class:`HandlerBackend`, which answers with a :class:`Reply`.

Replies follow Click's conventions: each message line is a three-digit code
and text, ``-`` after the code on every line but the last of one reply, CRLF
line ends, control characters shown as ``^X`` and bytes above 126 as octal
escapes.  Read results follow as ``DATA n`` plus exactly ``n`` raw bytes.

Two oddities of Click 2.1 are kept on purpose, so that every reply matches
Click's byte for byte: a bad byte count in ``READDATA``/``WRITEDATA`` is
answered by the single line ``500-Syntax error in '%s'`` (continuation mark,
no final line), and a ``QUIT`` with extra words first says ``500 Bad command
syntax`` and then closes anyway.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "CSERR_DATA_TOO_BIG", "CSERR_HANDLER_ERROR", "CSERR_LLRPC_ERROR", "CSERR_NO_ROUTER",
    "CSERR_NO_SUCH_ELEMENT", "CSERR_NO_SUCH_HANDLER", "CSERR_OK", "CSERR_OK_HANDLER_WARNING",
    "CSERR_PERMISSION", "CSERR_SYNTAX", "CSERR_UNIMPLEMENTED", "CSERR_UNSPECIFIED",
    "GREETING", "PROTOCOL_VERSION", "ControlProtocol", "HandlerBackend", "Reply", "printable",
]

PROTOCOL_VERSION = "1.3"
GREETING = f"Click::ControlSocket/{PROTOCOL_VERSION}\r\n".encode("ascii")

# Reply codes.  2xx: the command worked; 5xx: it did not.
CSERR_OK = 200                  # success
CSERR_OK_HANDLER_WARNING = 220  # success, but the write handler warned
CSERR_SYNTAX = 500              # malformed command
CSERR_UNIMPLEMENTED = 501       # unknown command, or an LLRPC that cannot go over a socket
CSERR_NO_SUCH_ELEMENT = 510     # the element part of a handler name matched nothing
CSERR_NO_SUCH_HANDLER = 511     # no (visible) handler of that name, or wrong direction
CSERR_HANDLER_ERROR = 520       # a write handler failed
CSERR_DATA_TOO_BIG = 521        # value too large for the handler
CSERR_LLRPC_ERROR = 522         # an LLRPC failed or was given the wrong amount of data
CSERR_PERMISSION = 530          # read-only socket, or read of a write-only handler etc.
CSERR_NO_ROUTER = 540           # nothing to talk to
CSERR_UNSPECIFIED = 590         # a read handler failed

_HELP = (
    "Commands supported:",
    "READ handler [arg...]   call read handler, return DATA",
    "READDATA handler len    call read handler with len data bytes, return DATA",
    "READUNTIL handler term  call read handler, take data until term, return DATA",
    "WRITE handler [arg...]  call write handler",
    "WRITEDATA handler len   call write handler, pass len data bytes",
    "WRITEUNTIL handler term call write handler, take data until term",
    "CHECKREAD handler       check if read handler is valid",
    "CHECKWRITE handler      check if write handler is valid",
    "LLRPC elt#number [len]  call LLRPC, pass len data bytes, return DATA",
    "QUIT                    close connection",
)

# A "word" is a run of bytes other than C's isspace() set (space, \t, \n, \v, \f, \r).
_WORD = re.compile(rb"[^ \t\n\v\f\r]+")
_SPACE = b" \t\n\v\f\r"

# next_command's results
_DONE = 0      # a command was consumed (successfully or not)
_BLOCKED = 1   # the command needs bytes that have not arrived yet


def printable(text: str) -> str:
    """Make ``text`` safe for one reply line, the way Click escapes messages.

    Bytes below 32 become ``^`` plus the character 64 above them (``^@`` for
    NUL, ``^J`` for newline); bytes from 127 up become a backslash and three
    octal digits.  Characters beyond latin-1 are first encoded as UTF-8.
    """
    if all(32 <= ord(c) < 127 for c in text):
        return text
    raw = _to_bytes(text)
    out = []
    for b in raw:
        if 32 <= b < 127:
            out.append(chr(b))
        elif b < 32:
            out.append("^" + chr(b + 64))
        else:
            out.append(f"\\{b:03o}")
    return "".join(out)


def _to_bytes(text: str) -> bytes:
    """Handler text to wire bytes: latin-1 when possible (as configurations are
    read), UTF-8 for anything wider."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _parse_count(word: bytes) -> int | None:
    """A non-negative byte count written as Click's IntArg accepts it, else None."""
    from clickos.core.confparse import parse_int
    from clickos.core.errors import ClickError

    try:
        value = parse_int(word.decode("latin-1"))
    except (ClickError, ValueError):
        return None
    return value if value >= 0 else None


@dataclass
class Reply:
    """One answer to a command: a code, one or more message lines, maybe data.

    All lines carry ``code``; every line but the
    last is marked as continued.  With ``data`` set (even to ``b""``), a
    ``DATA n`` line and the bytes follow.  ``final=False`` leaves the last line
    marked as continued too (only Click's malformed-count quirk needs that).
    """

    code: int
    messages: list[str] = field(default_factory=list)
    data: bytes | None = None
    final: bool = True

    @classmethod
    def one(cls, code: int, message: str, data: bytes | None = None) -> Reply:
        """A reply of a single message line."""
        return cls(code, [message], data)

    @classmethod
    def with_details(cls, code: int, summary: str, details: list[str],
                     data: bytes | None = None) -> Reply:
        """A summary line, then (if there are any) the detail lines under it.

        With details the summary gets a trailing colon, as in
        ``520-Write handler 'x' error:`` followed by the handler's messages.
        An empty summary leaves just the details.
        """
        lines = ([summary + ":"] if details else [summary]) if summary else []
        lines.extend(details)
        return cls(code, lines, data)

    @property
    def ok(self) -> bool:
        """Whether the code means success (2xx)."""
        return 200 <= self.code < 300

    def encode(self) -> bytes:
        """The reply as bytes on the wire."""
        assert 100 <= self.code <= 999, self.code
        out = bytearray()
        last = len(self.messages) - 1
        for i, msg in enumerate(self.messages):
            sep = " " if i == last and self.final else "-"
            out += f"{self.code}{sep}{printable(msg)}\r\n".encode("latin-1")
        if self.data is not None:
            out += b"DATA %d\r\n" % len(self.data)
            out += self.data
        return bytes(out)


class HandlerBackend(ABC):
    """What the protocol needs from whatever owns the handlers.

    Names are passed exactly as the client wrote them (``elem.h``, ``3.h``,
    ``h``, ``.h``, ``0.h``); values and parameters as text (bytes decoded as
    latin-1, so every byte survives).  Each method returns the full
    :class:`Reply`, including its error code and message lines.
    """

    @abstractmethod
    def read(self, name: str, param: str) -> Reply:
        """Call a read handler with ``param`` ("" for none); data in ``Reply.data``."""

    @abstractmethod
    def write(self, name: str, value: str) -> Reply:
        """Call a write handler with ``value``."""

    @abstractmethod
    def check(self, name: str, write: bool) -> Reply:
        """Say whether a handler exists and can be read (or written)."""

    @abstractmethod
    def llrpc(self, spec: str, data: bytes) -> Reply:
        """Call the low-level RPC ``element#hexcommand`` with ``data`` as its input."""


class ControlProtocol:
    """One ControlSocket connection: bytes in, commands to the backend, bytes out.

    The greeting is queued at construction.  ``backend`` may be replaced at any
    time (a hot-swapped router hands its connections to its successor).
    """

    def __init__(self, backend: HandlerBackend | None) -> None:
        self.backend = backend
        self._in = bytearray()
        self._pos = 0
        self._out = bytearray(GREETING)
        self.input_closed = False   # the peer sent EOF, or said QUIT
        self.peer_eof = False       # the peer sent EOF
        self.output_closed = False  # the owner could not write any more
        self.quit_requested = False

    # -- feeding --------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means it will send no more."""
        if not data:
            self.peer_eof = True
            self.input_closed = True
            return
        if self.quit_requested:
            return                      # after QUIT, input is ignored
        self._in += data

    def receive_eof(self) -> None:
        """The peer closed its sending side."""
        self.receive_data(b"")

    def close_output(self) -> None:
        """The owner can no longer deliver output (the peer went away)."""
        self.output_closed = True
        self._out.clear()

    # -- output ---------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        """Take all pending output."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def peek_output(self) -> bytes:
        """Pending output, without taking it."""
        return bytes(self._out)

    def output_sent(self, n: int) -> None:
        """Drop the first ``n`` pending output bytes (after a partial send)."""
        del self._out[:n]

    @property
    def has_output(self) -> bool:
        """Whether output is waiting to be sent."""
        return bool(self._out)

    def _emit(self, reply: Reply) -> None:
        if not self.output_closed:
            self._out += reply.encode()

    def _message(self, code: int, text: str, final: bool = True) -> None:
        self._emit(Reply(code, [text], final=final))

    # -- state ----------------------------------------------------------------------
    @property
    def pending_input(self) -> bool:
        """Whether unprocessed input bytes remain."""
        return self._pos < len(self._in)

    def has_command(self) -> bool:
        """Whether a whole command line is buffered (or the input ended)."""
        if self._pos >= len(self._in):
            return False
        if self.input_closed:
            return True
        return self._line_end(self._pos) is not None

    @property
    def finished(self) -> bool:
        """True once nothing more can happen: input over and processed, output
        taken (or impossible)."""
        if self.output_closed:
            return True
        return self.input_closed and not self.pending_input and not self._out

    def _line_end(self, start: int) -> int | None:
        """Index of the first CR or LF at or after ``start``, or None."""
        buf = self._in
        cr = buf.find(b"\r", start)
        lf = buf.find(b"\n", start)
        if cr < 0:
            return lf if lf >= 0 else None
        if lf < 0:
            return cr
        return min(cr, lf)

    def _compact(self) -> None:
        if self._pos >= len(self._in):
            self._in.clear()
            self._pos = 0
        elif self._pos > 8192:
            del self._in[:self._pos]
            self._pos = 0

    # -- processing -----------------------------------------------------------------
    def next_command(self) -> bool:
        """Carry out at most one buffered command; return whether one was consumed.

        False means there is no whole command yet (or a command is waiting for
        more of its data bytes).
        """
        if self._pos >= len(self._in):
            return False
        start = self._pos
        end = self._line_end(start)
        if end is None:
            if not self.input_closed:
                return False
            end = stop = len(self._in)
        elif self._in[end:end + 2] == b"\r\n":
            stop = end + 2
        else:
            stop = end + 1
        line = bytes(self._in[start:stop])
        self._pos = stop
        if self._command(line) == _BLOCKED:
            self._pos = start
            return False
        self._compact()
        return True

    def process(self) -> int:
        """Carry out every complete buffered command; return how many."""
        n = 0
        while self.next_command():
            n += 1
        return n

    def feed(self, data: bytes) -> bytes:
        """Convenience for simple servers and tests: receive, process, return output."""
        self.receive_data(data)
        self.process()
        return self.data_to_send()

    # -- data for DATA/UNTIL commands ------------------------------------------------
    def _insufficient(self) -> int:
        if self.input_closed:
            self._message(CSERR_SYNTAX, "Not enough data")
            return _DONE
        return _BLOCKED

    def _take(self, n: int) -> bytes | None:
        if len(self._in) - self._pos < n:
            return None
        data = bytes(self._in[self._pos:self._pos + n])
        self._pos += n
        return data

    def _take_until(self, terminator: bytes) -> bytes | None:
        """Bytes up to the first line equal to ``terminator`` (trailing white space
        on that line ignored); the terminator line is consumed.  None if no such
        complete line has arrived."""
        buf = self._in
        s = self._pos
        while True:
            e = self._line_end(s)
            if e is None:
                return None
            content = bytes(buf[s:e]).rstrip(_SPACE)
            nxt = e + 2 if buf[e:e + 2] == b"\r\n" else e + 1
            if content == terminator:
                data = bytes(buf[self._pos:s])
                self._pos = nxt
                return data
            s = nxt

    # -- commands -------------------------------------------------------------------
    def _command(self, line: bytes) -> int:
        spans = [(m.start(), m.end()) for m in _WORD.finditer(line)]
        if not spans:
            return _DONE
        words = [line[a:b] for a, b in spans]
        command = words[0].decode("latin-1").upper()

        def rest(i: int) -> bytes:
            # words i.. as written, inner spacing kept
            return line[spans[i][0]:spans[-1][1]] if len(spans) > i else b""

        if command in ("READ", "GET", "WRITE", "SET"):
            if len(words) < 2:
                self._message(CSERR_SYNTAX, "Wrong number of arguments")
                return _DONE
            self._call(command[0] in "RG", words[1], rest(2))
            return _DONE

        if command in ("READDATA", "WRITEDATA", "SETDATA"):
            if len(words) != 3:
                self._message(CSERR_SYNTAX, "Wrong number of arguments")
                return _DONE
            count = _parse_count(words[2])
            if count is None:
                # Click 2.1 prints this literally, as a continued line.
                self._message(CSERR_SYNTAX, "Syntax error in '%s'", final=False)
                return _DONE
            data = self._take(count)
            if data is None:
                return self._insufficient()
            self._call(command[0] == "R", words[1], data)
            return _DONE

        if command in ("READUNTIL", "WRITEUNTIL"):
            if len(words) < 2:
                self._message(CSERR_SYNTAX, "Wrong number of arguments")
                return _DONE
            data = self._take_until(rest(2))
            if data is None:
                return self._insufficient()
            self._call(command[0] == "R", words[1], data)
            return _DONE

        if command in ("CHECKREAD", "CHECKWRITE"):
            if len(words) != 2:
                self._message(CSERR_SYNTAX, "Wrong number of arguments")
                return _DONE
            self._dispatch(lambda b: b.check(words[1].decode("latin-1"), command == "CHECKWRITE"))
            return _DONE

        if command == "LLRPC":
            if len(words) not in (2, 3):
                self._message(CSERR_SYNTAX, "Wrong number of arguments")
                return _DONE
            count = 0
            if len(words) == 3:
                parsed = _parse_count(words[2])
                if parsed is None:
                    self._message(CSERR_SYNTAX, "Syntax error in 'llrpc'")
                    return _DONE
                count = parsed
            data = self._take(count)
            if data is None:
                return self._insufficient()
            spec = words[1].decode("latin-1")
            self._dispatch(lambda b: b.llrpc(spec, data))
            return _DONE

        if command in ("QUIT", "CLOSE"):
            if len(words) != 1:
                self._message(CSERR_SYNTAX, "Bad command syntax")
            self._message(CSERR_OK, "Goodbye!")
            self.quit_requested = True
            self.input_closed = True
            self._in.clear()
            self._pos = 0
            return _DONE

        if command == "HELP":
            self._emit(Reply(CSERR_OK, list(_HELP)))
            return _DONE

        self._message(CSERR_UNIMPLEMENTED, f"Command '{command}' unimplemented")
        return _DONE

    def _call(self, read: bool, name: bytes, value: bytes) -> None:
        hname = name.decode("latin-1")
        text = value.decode("latin-1")
        if read:
            self._dispatch(lambda b: b.read(hname, text))
        else:
            self._dispatch(lambda b: b.write(hname, text))

    def _dispatch(self, call: Callable[[HandlerBackend], Reply]) -> None:
        backend = self.backend
        if backend is None:
            self._message(CSERR_NO_ROUTER, "No router installed")
            return
        self._emit(call(backend))
