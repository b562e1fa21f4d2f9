"""ControlSocket: lets other programs call the router's handlers over a socket."""

from __future__ import annotations

import errno
import os
import selectors
import socket
import sys
from typing import ClassVar

from clickos.control.backend import RouterBackend
from clickos.control.protocol import ControlProtocol
from clickos.core.args import Args
from clickos.core.confparse import parse_bool, parse_element, parse_filename, parse_int, parse_word
from clickos.core.element import CONFIGURE_PHASE_DEFAULT, Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.task import Timer

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_RECV_SIZE = 65536
_LISTEN_BACKLOG = 16
# sun_path is 108 bytes on Linux, including the terminating NUL
_UNIX_PATH_MAX = 108

TYPE_TCP, TYPE_UNIX, TYPE_SOCKET = "TCP", "UNIX", "SOCKET"


def _chatter(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _parse_tcp_port(text: str) -> str:
    """A TCP port as written in the configuration: a number, a service name, or
    a number followed by ``+`` ("this port or one of the next few")."""
    word = text.strip()
    try:
        value = int(word, 10)
    except ValueError:
        value = -1
    if word.isdigit() and 0 <= value <= 65535:
        return str(value)
    if word.endswith("+"):
        try:
            n = parse_int(word[:-1])
        except ConfigError:
            n = 0
        if 0 < n < 65536:
            return f"{n}+"
    elif word and not word[0].isdigit():
        try:
            return str(socket.getservbyname(word, "tcp"))
        except OSError:
            pass
    raise ConfigError("PORT requires TCP port")


class _Connection:
    """A connected client: its socket and its protocol state."""

    __slots__ = ("sock", "fd", "proto")

    def __init__(self, sock: socket.socket, proto: ControlProtocol) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.proto = proto


class ControlSocket(Element):
    """ControlSocket(TYPE, PORT or FILENAME [, keywords READONLY, PROXY, VERBOSE, LOCALHOST, RETRIES, RETRY_WARNINGS])

    Opens a socket on which other programs can call the router's handlers.

    With TYPE ``TCP`` the element listens on TCP port PORT; with ``UNIX`` it
    listens on a UNIX-domain socket at FILENAME; with ``SOCKET`` it talks over
    the already-open file descriptor FD.  Any number of clients may be
    connected at once.  A PORT written as a number followed by ``+`` (as in
    ``41930+``) means "that port, or if it is taken, one of the next few";
    PORT 0 lets the system pick a free port.  The ``port`` handler tells which
    port was bound.

    Clients speak Click's line-based ControlSocket protocol, version 1.3: on
    connecting they receive ``Click::ControlSocket/1.3``; each command line
    (``READ h [args]``, ``READDATA h n``, ``READUNTIL h [term]``, ``WRITE h
    value``, ``WRITEDATA h n``, ``WRITEUNTIL h [term]``, ``CHECKREAD h``,
    ``CHECKWRITE h``, ``LLRPC e#hex [n]``, ``HELP``, ``QUIT``) is answered by
    lines of the form ``CODE text`` (``CODE-text`` for all but the last), and
    read results follow as ``DATA n`` plus n bytes.  Codes: 200 OK, 220 OK with
    warnings, 500 syntax error, 501 unimplemented, 510 no such element, 511 no
    such handler, 520 handler error, 522 LLRPC error, 530 permission denied,
    540 no router, 590 read handler error.  Handlers are named ``elem.h``,
    ``N.h`` (the Nth element, from 1) or just ``h`` for global handlers.
    Private handlers cannot be reached.  See :mod:`clickos.control.protocol`.

    The element survives hot-swapping (``click -R`` and the ``hotconfig``
    handler): the replacement ControlSocket with the same name, type and
    port or filename adopts the listening socket and every open connection,
    so clients keep talking across configurations.

    Keyword arguments:

    READONLY
        Boolean.  Refuse writes and LLRPCs.  Default false.
    PROXY
        Element.  Look handlers up on this element instead: ``E.H`` means the
        proxy's handler named ``E.H``.  Default none.
    VERBOSE
        Boolean.  Report each connection opened and closed on standard error.
        Default false.
    LOCALHOST
        Boolean.  Accept TCP connections on the loopback address only.  Unlike
        Click, the default here is true; give ``LOCALHOST false`` to listen on
        every address.
    ADDRESS
        IP address to listen on (TCP only); overrides LOCALHOST.  An extension.
    RETRIES
        Integer.  If the socket cannot be opened, try again once a second, at
        most this many times, then stop the router.  Default 0 (fail at once).
    RETRY_WARNINGS
        Boolean.  Warn about every failed attempt, not only the last.
        Default true.

    Handlers:

    port (read)
        The TCP port listened on (TYPE TCP only).
    filename (read)
        The socket's filename (TYPE UNIX only).

    Example::

        ControlSocket(TCP, 7777);
        ControlSocket(UNIX, /tmp/clicksocket, READONLY true);
    """

    port_count: ClassVar[str] = "0/0"
    processing: ClassVar[str] = "a"
    flags: ClassVar[str] = "S0"
    configure_phase: ClassVar[int] = CONFIGURE_PHASE_DEFAULT

    def __init__(self) -> None:
        super().__init__()
        self._type = TYPE_TCP
        self._pathname = ""          # port text (TCP), file name (UNIX) or fd (SOCKET)
        self._address = "127.0.0.1"
        self._read_only = False
        self._verbose = False
        self._retry_warnings = True
        self._retries = 0
        self._proxy_name = ""
        self._proxy: Element | None = None
        self._listener: socket.socket | None = None
        self._unlink_on_cleanup = False
        self._conns: dict[int, _Connection] = {}
        self._retry_timer: Timer | None = None
        self.backend = RouterBackend(None)

    # -- configuration ----------------------------------------------------------------
    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        args = Args(conf, self)
        socktype = args.read_mp("TYPE", parse_word)
        args.execute()
        self._read_only = bool(args.read("READONLY", parse_bool, False))
        self._proxy_name = args.read("PROXY", parse_element, "") or ""
        self._verbose = bool(args.read("VERBOSE", parse_bool, False))
        self._retries = int(args.read("RETRIES", parse_int, 0))
        self._retry_warnings = bool(args.read("RETRY_WARNINGS", parse_bool, True))
        localhost = bool(args.read("LOCALHOST", parse_bool, True))
        address = args.read("ADDRESS", _parse_ipv4, None)
        args.consume()
        self._address = address or ("127.0.0.1" if localhost else "0.0.0.0")

        kind = socktype.upper()
        if kind == TYPE_TCP:
            self._type = TYPE_TCP
            word = args.read_mp("PORT", parse_word)
            args.complete()
            self._pathname = _parse_tcp_port(word)
        elif kind == TYPE_UNIX:
            self._type = TYPE_UNIX
            self._pathname = args.read_mp("FILENAME", parse_filename)
            args.complete()
            if len(os.fsencode(self._pathname)) >= _UNIX_PATH_MAX:
                raise ConfigError("filename too long")
        elif kind == TYPE_SOCKET:
            self._type = TYPE_SOCKET
            self._pathname = str(args.read_mp("FD", parse_int))
            args.complete()
        else:
            raise ConfigError(f"unknown socket type '{kind}'")

        if self._proxy_name:
            proxy = self.router.find(self._proxy_name, self)
            if proxy is None:
                raise ConfigError("PROXY: does not name an element")
            self._proxy = proxy

    def add_handlers(self) -> None:
        if self._type == TYPE_TCP:
            self.add_read_handler("port", lambda: self._pathname)
        elif self._type == TYPE_UNIX:
            self.add_read_handler("filename", lambda: self._pathname)

    # -- opening the socket ----------------------------------------------------------
    def initialize(self, errh: ErrorHandler) -> None:
        self.backend = RouterBackend(self.router, read_only=self._read_only, proxy=self._proxy)
        if self.hotswap_element() is not None:
            # The predecessor's socket and clients arrive through take_state when
            # the new router is activated; binding again would only collide.
            if self._retries > 0:
                self._start_retry_timer()
            return
        if self._open_socket(errh):
            return
        if self._retries >= 0:
            self._start_retry_timer()

    def _start_retry_timer(self) -> None:
        self._retry_timer = Timer(self._retry, self)
        self._retry_timer.initialize(self)
        self._retry_timer.schedule_after_sec(1)

    def _retry(self, timer: Timer) -> None:
        if self._listener is not None or self._conns:
            return
        if self._open_socket(ErrorHandler()):
            return
        if self._retries >= 0:
            timer.schedule_after_sec(1)
        else:
            self.router.please_stop_driver()

    def _socket_failed(self, errh: ErrorHandler, syscall: str, err: OSError,
                       sock: socket.socket | None) -> bool:
        if sock is not None:
            sock.close()
        reason = err.strerror or str(err)
        if self._retries >= 0:
            if self._retry_warnings:
                left = self._retries + 1
                errh.warning(f"{syscall}: {reason} ({left} {'try' if left == 1 else 'tries'} left)")
        else:
            errh.error(f"{syscall}: {reason}")
        return False

    def _open_socket(self, errh: ErrorHandler) -> bool:
        """Try once to open, bind and listen; False (after reporting) on failure."""
        self._retries -= 1
        if self._type == TYPE_SOCKET:
            fd = int(self._pathname)
            try:
                sock = socket.socket(fileno=fd)
            except OSError as err:
                return self._socket_failed(errh, "socket", err, None)
            self._add_connection(sock)
            return True

        family = socket.AF_INET if self._type == TYPE_TCP else socket.AF_UNIX
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as err:
            return self._socket_failed(errh, "socket", err, None)
        if self._type == TYPE_TCP:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            except OSError as err:
                errh.warning(f"setsockopt: {err.strerror}")
            plus = self._pathname.endswith("+")
            port = int(self._pathname.rstrip("+"))
            tries = 0
            while True:
                try:
                    sock.bind((self._address, port))
                    break
                except OSError as err:
                    if tries > 10 or not plus or port >= 65534:
                        return self._socket_failed(errh, "bind", err, sock)
                    port += 1
                    tries += 1
            self._pathname = str(sock.getsockname()[1])
        else:
            try:
                sock.bind(self._pathname)
            except OSError as err:
                return self._socket_failed(errh, "bind", err, sock)
            self._unlink_on_cleanup = True
        try:
            sock.listen(_LISTEN_BACKLOG)
        except OSError as err:
            return self._socket_failed(errh, "listen", err, sock)
        sock.setblocking(False)
        self._listener = sock
        self.router.master.add_select(sock.fileno(), _READ, self._selected)
        return True

    # -- hot swap ---------------------------------------------------------------------
    def hotswap_element(self) -> Element | None:
        """The predecessor to adopt: same name and class, same socket type, and the
        same port or filename (any port, if ours ends in ``+``)."""
        old = super().hotswap_element()
        if not isinstance(old, ControlSocket) or old._type != self._type:
            return None
        if old._pathname == self._pathname or (self._type == TYPE_TCP and self._pathname.endswith("+")):
            return old
        return None

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        """Adopt the predecessor's listening socket and its connected clients."""
        if not isinstance(old, ControlSocket):
            return
        if self._listener is not None or self._conns:
            errh.error("already initialized, can't take state")
            return
        master = self.router.master
        self._listener, old._listener = old._listener, None
        self._pathname = old._pathname
        self._unlink_on_cleanup, old._unlink_on_cleanup = old._unlink_on_cleanup, False
        self._conns, old._conns = old._conns, {}
        if self._retry_timer is not None:
            self._retry_timer.unschedule()
        if self._listener is not None:
            master.add_select(self._listener.fileno(), _READ, self._selected)
        for conn in self._conns.values():
            conn.proto.backend = self.backend
            mask = (0 if conn.proto.input_closed else _READ) | (0 if conn.proto.output_closed else _WRITE)
            if mask:
                master.add_select(conn.fd, mask, self._selected)

    # -- connections ------------------------------------------------------------------
    def _add_connection(self, sock: socket.socket) -> _Connection:
        sock.setblocking(False)
        conn = _Connection(sock, ControlProtocol(self.backend))
        self._conns[conn.fd] = conn
        self.router.master.add_select(conn.fd, _READ | _WRITE, self._selected)
        return conn

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.ECONNABORTED):
                    _chatter(f"{self.declaration()}: accept: {err.strerror}")
                return
            conn = self._add_connection(sock)
            if self._verbose:
                if self._type == TYPE_TCP:
                    _chatter(f"{self.declaration()}: opened connection {conn.fd} from {peer[0]}.{peer[1]}")
                else:
                    _chatter(f"{self.declaration()}: opened connection {conn.fd}")
            self._service(conn)

    def _selected(self, fd: int, events: int) -> None:
        if self._listener is not None and fd == self._listener.fileno():
            self._accept()
            return
        conn = self._conns.get(fd)
        if conn is not None:
            self._service(conn)

    def _service(self, conn: _Connection) -> None:
        """Read what arrived, carry out one command, write what is pending.

        Like Click, one command per call: the driver runs tasks and timers
        between commands, so a command sees the effects of the previous one
        (a hot swap, say) settle first.
        """
        proto = conn.proto
        if not proto.input_closed:
            try:
                data = conn.sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data is not None:
                proto.receive_data(data)
        consumed = proto.next_command()
        more = consumed and proto.pending_input
        self._flush(conn, more)
        if proto.finished:
            self._close(conn)

    def _flush(self, conn: _Connection, more_to_do: bool) -> None:
        proto = conn.proto
        master = self.router.master
        while proto.has_output and not proto.output_closed:
            try:
                n = conn.sock.send(proto.peek_output())
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                proto.close_output()
                break
            proto.output_sent(n)
        if proto.output_closed:
            return
        if proto.has_output or more_to_do:
            master.add_select(conn.fd, _WRITE, self._selected)
        else:
            master.remove_select(conn.fd, _WRITE)
        if proto.input_closed:
            master.remove_select(conn.fd, _READ)

    def _close(self, conn: _Connection) -> None:
        self.router.master.remove_select(conn.fd, _READ | _WRITE)
        self._conns.pop(conn.fd, None)
        try:
            conn.sock.close()
        except OSError:
            pass
        if self._verbose:
            _chatter(f"{self.declaration()}: closed connection {conn.fd}")

    # -- teardown ---------------------------------------------------------------------
    def cleanup(self, stage: int) -> None:
        master = self.router.master if self.router is not None else None
        if self._retry_timer is not None:
            self._retry_timer.unschedule()
            self._retry_timer = None
        if self._listener is not None:
            fd = self._listener.fileno()
            if master is not None:
                master.remove_select(fd, _READ | _WRITE)
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
            if self._type == TYPE_UNIX and self._unlink_on_cleanup:
                try:
                    os.unlink(self._pathname)
                except OSError:
                    pass
        for conn in list(self._conns.values()):
            # one last attempt to deliver what is pending, without blocking
            while conn.proto.has_output and not conn.proto.output_closed:
                try:
                    conn.proto.output_sent(conn.sock.send(conn.proto.peek_output()))
                except OSError:
                    break
            if master is not None:
                master.remove_select(conn.fd, _READ | _WRITE)
            conn.sock.close()
        self._conns.clear()


def _parse_ipv4(text: str) -> str:
    """An IPv4 address in dotted form, checked by the socket library."""
    try:
        socket.inet_aton(text.strip())
    except OSError:
        raise ConfigError("expected IP address") from None
    return text.strip()
