"""ControlSocket: the sans-IO protocol, the router backend, and real sockets.

The protocol tests feed bytes line by line and compare the exact bytes
returned, which were checked against Click 2.1's ControlSocket.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
import time

import pytest

from clickos.control.backend import (
    CLICK_LLRPC_GET_SWITCH,
    CLICK_LLRPC_SET_SWITCH,
    HandlerBackend,
    RouterBackend,
    llrpc_number,
)
from clickos.control.protocol import GREETING, ControlProtocol, Reply, printable
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import PRIVATE, READ_PARAM
from clickos.core.master import Master
from clickos.core.router import Router
from clickos.core.task import Timer

# -- a fake backend for framing tests ------------------------------------------------------


class Recorder(HandlerBackend):
    """Answers every request with OK and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def read(self, name: str, param: str) -> Reply:
        self.calls.append(("read", name, param))
        return Reply.one(200, f"Read handler '{name}' OK", f"<{param}>".encode())

    def write(self, name: str, value: str) -> Reply:
        self.calls.append(("write", name, value))
        return Reply.one(200, f"Write handler '{name}' OK")

    def check(self, name: str, write: bool) -> Reply:
        self.calls.append(("check", name, write))
        return Reply.one(200, "checked")

    def llrpc(self, spec: str, data: bytes) -> Reply:
        self.calls.append(("llrpc", spec, data))
        return Reply.one(200, "llrpc", data)


def fresh(backend: HandlerBackend | None = None) -> tuple[ControlProtocol, Recorder]:
    rec = Recorder()
    p = ControlProtocol(backend if backend is not None else rec)
    assert p.data_to_send() == GREETING
    return p, rec


def test_greeting_is_version_1_3() -> None:
    assert GREETING == b"Click::ControlSocket/1.3\r\n"


def test_line_endings_cr_lf_crlf_and_blank_lines() -> None:
    p, rec = fresh()
    out = p.feed(b"read a.b\rread c.d\nREAD e.f\r\n\r\n   \n")
    assert [c[1] for c in rec.calls] == ["a.b", "c.d", "e.f"]
    assert out.count(b"200 Read handler") == 3


def test_partial_line_waits_for_its_end() -> None:
    p, rec = fresh()
    assert p.feed(b"read a") == b""
    assert not p.has_command()
    assert p.feed(b".b x   y \n") == b"200 Read handler 'a.b' OK\r\nDATA 7\r\n<x   y>"
    assert rec.calls == [("read", "a.b", "x   y")]


def test_eof_completes_an_unterminated_line() -> None:
    p, rec = fresh()
    p.receive_data(b"write a.b 1")
    assert p.process() == 0
    p.receive_eof()
    assert p.process() == 1
    assert rec.calls == [("write", "a.b", "1")]
    assert p.data_to_send() == b"200 Write handler 'a.b' OK\r\n"
    assert p.finished


def test_get_and_set_are_aliases_and_case_is_ignored() -> None:
    p, rec = fresh()
    p.feed(b"get x\nGeT y\nset z 5\nSeT w\n")
    assert rec.calls == [("read", "x", ""), ("read", "y", ""), ("write", "z", "5"), ("write", "w", "")]


def test_read_write_need_a_handler_name() -> None:
    p, _ = fresh()
    assert p.feed(b"read\n") == b"500 Wrong number of arguments\r\n"
    assert p.feed(b"WRITE   \n") == b"500 Wrong number of arguments\r\n"


def test_unknown_command_is_501_in_upper_case() -> None:
    p, _ = fresh()
    assert p.feed(b"frob a b\n") == b"501 Command 'FROB' unimplemented\r\n"


def test_readdata_writedata_setdata() -> None:
    p, rec = fresh()
    assert p.feed(b"readdata x 3\r\nab") == b""          # waits for the third byte
    assert p.feed(b"c") == b"200 Read handler 'x' OK\r\nDATA 5\r\n<abc>"
    p.feed(b"WRITEDATA y 0\nSETDATA z 4\n\r\n\r\nread q\n")
    assert rec.calls[1:] == [("write", "y", ""), ("write", "z", "\r\n\r\n"), ("read", "q", "")]


def test_data_counts_in_other_bases() -> None:
    p, rec = fresh()
    p.feed(b"readdata x 0x2\nabreaddata y 010\n12345678")
    assert rec.calls == [("read", "x", "ab"), ("read", "y", "12345678")]


def test_data_commands_argument_errors() -> None:
    p, _ = fresh()
    assert p.feed(b"readdata x\n") == b"500 Wrong number of arguments\r\n"
    assert p.feed(b"writedata x 1 2\n") == b"500 Wrong number of arguments\r\n"
    # Click 2.1 answers a bad count with a lone continued line; kept for fidelity
    assert p.feed(b"readdata x -1\n") == b"500-Syntax error in '%s'\r\n"
    assert p.feed(b"writedata x zz\n") == b"500-Syntax error in '%s'\r\n"


def test_not_enough_data_at_eof_then_rest_is_commands() -> None:
    p, rec = fresh()
    p.receive_data(b"writedata x 100\nread y\n")
    assert p.process() == 0
    p.receive_eof()
    p.process()
    assert p.data_to_send() == b"500 Not enough data\r\n200 Read handler 'y' OK\r\nDATA 2\r\n<>"
    assert rec.calls == [("read", "y", "")]


def test_readuntil_default_terminator_is_blank_line() -> None:
    p, rec = fresh()
    assert p.feed(b"READUNTIL x\nline 1\n") == b""
    p.feed(b"line 2\r\n  \t\nread z\n")
    assert rec.calls == [("read", "x", "line 1\nline 2\r\n"), ("read", "z", "")]


def test_writeuntil_terminator_trailing_space_ignored_leading_not() -> None:
    p, rec = fresh()
    p.feed(b"writeuntil x   END   \n1\n  END\n2\nEND  \t\n")
    assert rec.calls == [("write", "x", "1\n  END\n2\n")]


def test_until_not_found_at_eof() -> None:
    p, rec = fresh()
    p.receive_data(b"writeuntil x END\nabc\n")
    p.process()
    p.receive_eof()
    p.process()
    assert p.data_to_send() == b"500 Not enough data\r\n501 Command 'ABC' unimplemented\r\n"
    assert rec.calls == []


def test_until_needs_a_handler() -> None:
    p, _ = fresh()
    assert p.feed(b"readuntil\n") == b"500 Wrong number of arguments\r\n"


def test_checkread_checkwrite() -> None:
    p, rec = fresh()
    p.feed(b"checkread a\nCHECKWRITE b\n")
    assert rec.calls == [("check", "a", False), ("check", "b", True)]
    assert p.feed(b"checkread\n") == b"500 Wrong number of arguments\r\n"
    assert p.feed(b"checkwrite a b\n") == b"500 Wrong number of arguments\r\n"


def test_llrpc_framing() -> None:
    p, rec = fresh()
    assert p.feed(b"llrpc s#1 4\nab") == b""
    assert p.feed(b"cd") == b"200 llrpc\r\nDATA 4\r\nabcd"
    p.feed(b"llrpc s#2\n")
    assert rec.calls == [("llrpc", "s#1", b"abcd"), ("llrpc", "s#2", b"")]
    assert p.feed(b"llrpc\n") == b"500 Wrong number of arguments\r\n"
    assert p.feed(b"llrpc a 1 2\n") == b"500 Wrong number of arguments\r\n"
    assert p.feed(b"llrpc a x\n") == b"500 Syntax error in 'llrpc'\r\n"


def test_quit_and_close() -> None:
    p, rec = fresh()
    assert p.feed(b"quit\nread x\n") == b"200 Goodbye!\r\n"
    assert rec.calls == []
    assert p.input_closed and p.finished
    p.receive_data(b"read y\n")           # ignored after QUIT
    assert p.process() == 0
    q, _ = fresh()
    assert q.feed(b"CLOSE now\n") == b"500 Bad command syntax\r\n200 Goodbye!\r\n"


def test_help_lists_every_command() -> None:
    p, _ = fresh()
    lines = p.feed(b"help\n").split(b"\r\n")
    assert lines[0] == b"200-Commands supported:"
    assert lines[-2].startswith(b"200 QUIT")
    assert all(line.startswith(b"200-") for line in lines[:-2])
    for cmd in (b"READ ", b"READDATA", b"READUNTIL", b"WRITE ", b"WRITEDATA", b"WRITEUNTIL",
                b"CHECKREAD", b"CHECKWRITE", b"LLRPC"):
        assert any(line[4:].startswith(cmd) for line in lines)


def test_no_backend_is_540() -> None:
    p = ControlProtocol(None)
    p.data_to_send()
    assert p.feed(b"read x\n") == b"540 No router installed\r\n"


def test_one_command_at_a_time() -> None:
    p, rec = fresh()
    p.receive_data(b"read a\nread b\n")
    assert p.next_command() and len(rec.calls) == 1 and p.has_command()
    assert p.next_command() and len(rec.calls) == 2
    assert not p.next_command()


def test_reply_encoding_and_printable() -> None:
    assert printable("a\x00b\nc\x7f\xff") == "a^@b^Jc\\177\\377"
    r = Reply.with_details(520, "Write handler 'x' error", ["one", "two\tt"])
    assert r.encode() == b"520-Write handler 'x' error:\r\n520-one\r\n520 two^It\r\n"
    assert Reply.with_details(200, "fine", []).encode() == b"200 fine\r\n"
    assert Reply.one(200, "r", b"").encode() == b"200 r\r\nDATA 0\r\n"


def test_output_closed_drops_output() -> None:
    p, _ = fresh()
    p.close_output()
    assert p.feed(b"read a\n") == b""
    assert p.finished


# -- the router backend -------------------------------------------------------------------


class Gadget(Element):
    """Test element with every kind of handler."""

    register = False

    def __init__(self) -> None:
        super().__init__()
        self.value = 7
        self.switch = 0

    def add_handlers(self) -> None:
        self.add_read_handler("value", lambda: self.value)
        self.add_write_handler("value", self._write_value)
        self.add_read_handler("echo", lambda p: f"[{p}]", READ_PARAM)
        self.add_read_handler("secret", lambda: "hidden", PRIVATE)
        self.add_read_handler("fails", self._failing_read)
        self.add_read_handler("explodes", lambda: 1 // 0)
        self.add_write_handler("warns", self._warns)
        self.add_write_handler("negative", lambda v, e: -errno.EPERM)
        self.add_write_handler("chatty", lambda v, e: e.message("just saying"))

    def _write_value(self, value: str, errh: ErrorHandler) -> None:
        try:
            self.value = int(value)
        except ValueError:
            raise ConfigError("value must be integer") from None

    def _failing_read(self) -> str:
        raise ConfigError("cannot read now")

    def _warns(self, value: str, errh: ErrorHandler) -> None:
        errh.warning("careful")
        errh.warning("very careful")

    def llrpc(self, command: int, data: bytearray) -> int:
        if command == CLICK_LLRPC_GET_SWITCH:
            data[:] = struct.pack("=i", self.switch)
            return 0
        if command == CLICK_LLRPC_SET_SWITCH:
            (v,) = struct.unpack("=i", data)
            if v >= 2:
                return -errno.EINVAL
            self.switch = v
            return 0
        if command == llrpc_number(9, 4, data_in=True, data_out=True, flat=True):
            raise ConfigError("bad llrpc input")
        return -errno.EINVAL


def gadget_router(*extra: tuple[Element, str, str]) -> Router:
    r = Router(master=Master())
    r.add_element(Gadget(), "g")
    r.add_element(Gadget(), "dir/h")
    for e, name, conf in extra:
        r.add_element(e, name, conf)
    errh = ErrorHandler(echo=False)
    assert r.initialize(errh), errh.text()
    return r


def talk(backend: HandlerBackend, text: bytes) -> bytes:
    p = ControlProtocol(backend)
    p.data_to_send()
    return p.feed(text)


@pytest.fixture()
def backend() -> RouterBackend:
    return RouterBackend(gadget_router())


def test_backend_read_forms_of_names(backend: RouterBackend) -> None:
    assert talk(backend, b"read g.value\n") == b"200 Read handler 'g.value' OK\r\nDATA 1\r\n7"
    assert talk(backend, b"read 2.name\n") == b"200 Read handler '2.name' OK\r\nDATA 5\r\ndir/h"
    assert talk(backend, b"read dir/h.value\n").endswith(b"DATA 1\r\n7")
    for name in (b"version", b".version", b"0.version"):
        out = talk(backend, b"read " + name + b"\n")
        assert out.startswith(b"200 Read handler '" + name + b"' OK\r\nDATA ")


def test_backend_no_such_element_or_handler(backend: RouterBackend) -> None:
    assert talk(backend, b"read nope.x\n") == b"510 No element named 'nope'\r\n"
    assert talk(backend, b"read 3.name\n") == b"510 No element named '3'\r\n"
    assert talk(backend, b"read g.nope\n") == b"511 No handler named 'g.nope'\r\n"
    assert talk(backend, b"write nope\n") == b"511 No handler named 'nope'\r\n"


def test_backend_private_handler_is_invisible(backend: RouterBackend) -> None:
    assert talk(backend, b"read g.secret\n") == b"511 No handler named 'g.secret'\r\n"
    assert talk(backend, b"checkread g.secret\n") == b"511 No handler named 'g.secret'\r\n"


def test_backend_read_parameters(backend: RouterBackend) -> None:
    assert talk(backend, b"read g.echo a  b\n") == b"200 Read handler 'g.echo' OK\r\nDATA 6\r\n[a  b]"
    assert talk(backend, b"readdata g.echo 2\nxy") == b"200 Read handler 'g.echo' OK\r\nDATA 4\r\n[xy]"
    assert talk(backend, b"read g.value 1\n") == (
        b"590-Read handler 'g.value' error:\r\n590 read handler 'g.value' does not take parameters\r\n")


def test_backend_read_errors_are_590(backend: RouterBackend) -> None:
    assert talk(backend, b"read g.fails\n") == (
        b"590-Read handler 'g.fails' error:\r\n590 cannot read now\r\n")
    out = talk(backend, b"read g.explodes\n")
    assert out.startswith(b"590-Read handler 'g.explodes' error:\r\n590 ")


def test_backend_write_codes(backend: RouterBackend) -> None:
    assert talk(backend, b"write g.value 12\n") == b"200 Write handler 'g.value' OK\r\n"
    assert backend.router is not None and backend.router.names["g"].value == 12  # type: ignore[attr-defined]
    assert talk(backend, b"write g.value x\n") == (
        b"520-Write handler 'g.value' error:\r\n520 value must be integer\r\n")
    assert talk(backend, b"write g.negative\n") == b"520 Write handler 'g.negative' error\r\n"
    assert talk(backend, b"write g.warns\n") == (
        b"220-Write handler 'g.warns' OK with warnings:\r\n220-warning: careful\r\n"
        b"220 warning: very careful\r\n")
    assert talk(backend, b"write g.chatty\n") == (
        b"200-Write handler 'g.chatty' OK:\r\n200 just saying\r\n")


def test_backend_direction_errors_are_530_and_511(backend: RouterBackend) -> None:
    assert talk(backend, b"read g.warns\n") == b"530 Handler 'g.warns' write-only\r\n"
    assert talk(backend, b"write g.echo\n") == b"530 Handler 'g.echo' read-only\r\n"
    assert talk(backend, b"checkread g.value\n") == b"200 Read handler 'g.value' OK\r\n"
    assert talk(backend, b"checkwrite g.value\n") == b"200 Write handler 'g.value' OK\r\n"
    assert talk(backend, b"checkread g.warns\n") == b"511 Handler 'g.warns' not readable\r\n"
    assert talk(backend, b"checkwrite g.echo\n") == b"511 Handler 'g.echo' not writable\r\n"
    assert talk(backend, b"checkwrite x.y\n") == b"510 No element named 'x'\r\n"


def test_backend_read_only() -> None:
    ro = RouterBackend(gadget_router(), read_only=True)
    assert talk(ro, b"read g.value\n").startswith(b"200 ")
    assert talk(ro, b"write g.value 1\n") == b"530 Permission denied for 'g.value'\r\n"
    assert talk(ro, b"checkwrite g.value\n") == b"530 Permission denied for 'g.value'\r\n"
    assert talk(ro, b"checkwrite g.echo\n") == b"511 Handler 'g.echo' not writable\r\n"
    assert talk(ro, b"llrpc g#4004C005\n") == b"530 Permission denied for 'g#4004C005'\r\n"


def test_backend_llrpc(backend: RouterBackend) -> None:
    assert talk(backend, b"llrpc g#4004C005\n") == b"200 LLRPC 'g#4004C005' OK\r\nDATA 4\r\n\0\0\0\0"
    one = struct.pack("=i", 1)
    assert talk(backend, b"llrpc g#80044006 4\n" + one) == b"200 LLRPC 'g#80044006' OK\r\nDATA 0\r\n"
    assert talk(backend, b"llrpc g#4004c005 3\nabc").endswith(b"DATA 4\r\n" + one)   # input ignored
    assert talk(backend, b"llrpc g#80044006 4\n" + struct.pack("=i", 5)) == (
        b"522 LLRPC 'g#80044006' error: Invalid argument\r\n")
    assert talk(backend, b"llrpc g#80044006 3\nabc") == (
        b"522 LLRPC 'g#80044006' requires 4 bytes input data\r\n")
    assert talk(backend, b"llrpc g#C0044009 4\nabcd") == (
        b"522-LLRPC 'g#C0044009' error:\r\n522 bad llrpc input\r\n")
    assert talk(backend, b"llrpc g#00000001\n") == b"501 Cannot call LLRPC 'g#00000001' remotely\r\n"
    assert talk(backend, b"llrpc g#20000001\n") == b"501 Cannot call LLRPC 'g#20000001' remotely\r\n"
    assert talk(backend, b"llrpc g\n") == b"500 Syntax error in LLRPC name 'g'\r\n"
    assert talk(backend, b"llrpc g#xyz\n") == b"500 Syntax error in LLRPC name 'g#xyz'\r\n"
    assert talk(backend, b"llrpc zz#4004C005\n") == b"510 No element named 'zz'\r\n"
    assert talk(backend, b"llrpc 1#4004C005\n").startswith(b"200 ")


def test_llrpc_on_element_without_llrpc_is_einval() -> None:
    from clickos.elements.standard.sinks import Idle

    b = RouterBackend(gadget_router((Idle(), "idle", "")))
    assert talk(b, b"llrpc idle#4004C005\n") == b"522 LLRPC 'idle#4004C005' error: Invalid argument\r\n"


def test_backend_without_router() -> None:
    assert talk(RouterBackend(None), b"read x\n") == b"540 No router installed\r\n"


def test_backend_proxy() -> None:
    r = gadget_router()
    proxy = r.names["g"]
    r.handlers.add_read(proxy, "dir/h.value", lambda: "proxied")
    b = RouterBackend(r, proxy=proxy)
    assert talk(b, b"read dir/h.value\n").endswith(b"DATA 7\r\nproxied")
    assert talk(b, b"read g.value\n") == b"511 No proxied handler named 'g.value'\r\n"


# -- ControlSocket elements on real sockets ----------------------------------------------


class Client:
    """A blocking test client with a deadline on every read."""

    def __init__(self, addr: object, family: int = socket.AF_INET) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(addr)
        self.buf = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def data(self) -> bytes:
        header = self.line()
        assert header.startswith(b"DATA "), header
        n = int(header[5:])
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def ask(self, command: bytes) -> bytes:
        self.sock.sendall(command + b"\n")
        return self.line()

    def read(self, handler: bytes) -> bytes:
        status = self.ask(b"read " + handler)
        assert status.startswith(b"200 "), status
        return self.data()

    def close(self) -> None:
        self.sock.close()


def start(config: str) -> tuple[Router, threading.Thread]:
    """Build a router from text and run its driver on a background thread."""
    errh = ErrorHandler(echo=False)
    r = Router.from_text(config, "config", errh, master=Master())
    assert r is not None, errh.text()
    r.activate(errh)
    t = threading.Thread(target=r.master.driver, daemon=True)
    t.start()
    return r, t


def stop(r: Router, t: threading.Thread, client: Client) -> None:
    assert client.ask(b"write stop") == b"200 Write handler 'stop' OK"
    t.join(5)
    assert not t.is_alive()
    r.cleanup()


def test_tcp_socket_end_to_end_with_two_clients() -> None:
    r, t = start("cs :: ControlSocket(TCP, 0); g :: Idle -> c :: Counter -> Discard")
    port = int(r.call_read("cs.port", ErrorHandler(echo=False)) or "0")
    assert port > 0
    cs = r.names["cs"]
    assert cs._listener.getsockname()[0] == "127.0.0.1"  # type: ignore[attr-defined]
    a = Client(("127.0.0.1", port))
    b = Client(("127.0.0.1", port))
    assert a.line() == b"Click::ControlSocket/1.3"
    assert b.line() == b"Click::ControlSocket/1.3"
    assert a.read(b"c.count") == b"0"
    assert b.ask(b"checkwrite c.reset") == b"200 Write handler 'c.reset' OK"
    # several commands in one segment are all answered, in order
    b.sock.sendall(b"read c.count\nread cs.port\nread g.name\n")
    assert b.line() == b"200 Read handler 'c.count' OK" and b.data() == b"0"
    assert b.line() == b"200 Read handler 'cs.port' OK" and b.data() == str(port).encode()
    assert b.line() == b"200 Read handler 'g.name' OK" and b.data() == b"g"
    assert a.ask(b"quit") == b"200 Goodbye!"
    a.sock.settimeout(5)
    assert a.sock.recv(10) == b""          # server closed its side
    a.close()
    stop(r, t, b)
    b.close()


def test_unix_socket_and_cleanup_unlinks(tmp_path: os.PathLike) -> None:
    path = os.path.join(str(tmp_path), "cs.sock")
    r, t = start(f"cs :: ControlSocket(UNIX, {path}, READONLY true)")
    c = Client(path, socket.AF_UNIX)
    assert c.line() == b"Click::ControlSocket/1.3"
    assert c.read(b"cs.filename") == path.encode()
    assert c.ask(b"write cs.nothing 1") == b"511 No handler named 'cs.nothing'"
    # READONLY also blocks `stop`; end the driver from outside instead
    assert c.ask(b"write stop") == b"530 Permission denied for 'stop'"
    r.please_stop_driver()
    c.close()                 # wakes the driver's select so it notices the stop
    t.join(5)
    assert not t.is_alive()
    r.cleanup()
    assert not os.path.exists(path)


def test_port_plus_skips_a_busy_port() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        errh = ErrorHandler(echo=False)
        r = Router.from_text(f"cs :: ControlSocket(TCP, {port}+)", "config", errh, master=Master())
        assert r is not None, errh.text()
        assert int(r.call_read("cs.port", errh) or 0) > port
        r.cleanup()
        r2 = Router.from_text(f"cs :: ControlSocket(TCP, {port})", "config", errh, master=Master())
        assert r2 is None
        assert "bind: Address already in use" in errh.text()
    finally:
        busy.close()


@pytest.mark.parametrize("config, message", [
    ("ControlSocket(FOO, 1)", "unknown socket type 'FOO'"),
    ("ControlSocket(TCP, x)", "PORT requires TCP port"),
    ("ControlSocket(TCP, 65536+)", "PORT requires TCP port"),
    ("ControlSocket(TCP)", "PORT: required argument missing"),
    ("ControlSocket(TCP, 0, 3)", "too many arguments"),
    ("ControlSocket(TCP, 0, READONLY maybe)", "READONLY: parse error"),
    ("ControlSocket(TCP, 0, PROXY nope)", "PROXY: does not name an element"),
    ("ControlSocket(UNIX, /tmp/" + "x" * 120 + ")", "filename too long"),
])
def test_configuration_errors(config: str, message: str) -> None:
    errh = ErrorHandler(echo=False)
    assert Router.from_text(config, "config", errh, master=Master()) is None
    assert f"  {message}" in errh.lines


def test_hot_swap_keeps_socket_and_open_connection() -> None:
    """The successor ControlSocket adopts the listener and a live client."""
    errh = ErrorHandler(echo=False)
    master = Master()
    old = Router.from_text("cs :: ControlSocket(TCP, 0); s :: Switch(0) -> Idle; Idle -> s; s[1] -> Idle",
                           "config", errh, master=master)
    assert old is not None, errh.text()
    old.activate(errh)
    port = int(old.call_read("cs.port", errh) or 0)
    client = Client(("127.0.0.1", port))

    # a driver-level timer that keeps the select in run_os from blocking for long
    tick = Timer(lambda t: t.schedule_after_msec(5))
    tick.master = master
    tick.schedule_after_msec(5)

    def pump(sock: socket.socket | None = None) -> None:
        """Run the driver until ``sock`` (default: the client's) has something to read."""
        import select

        sock = sock or client.sock
        end = time.monotonic() + 5
        while time.monotonic() < end:
            master.driver_once()
            master.run_os()
            if select.select([sock], [], [], 0)[0]:
                return

    def ask(cmd: bytes) -> bytes:
        client.sock.sendall(cmd + b"\n")
        pump()
        return client.line()

    pump()
    assert client.line() == b"Click::ControlSocket/1.3"
    assert ask(b"read s.switch") == b"200 Read handler 's.switch' OK" and client.data() == b"0"
    text = f"cs :: ControlSocket(TCP, {port}+, RETRIES 1); s :: Switch(1) -> Idle; Idle -> s; s[1] -> Idle"
    new = Router.from_text(text, "config", errh, master=master, hotswap_router=old)
    assert new is not None, errh.text()
    new.activate(errh)
    old.cleanup()
    assert ask(b"read s.switch") == b"200 Read handler 's.switch' OK" and client.data() == b"1"
    assert ask(b"read cs.config") == b"200 Read handler 'cs.config' OK"
    assert b"RETRIES 1" in client.data()
    late = Client(("127.0.0.1", port))      # the listener moved over too
    pump(late.sock)
    assert late.line() == b"Click::ControlSocket/1.3"
    late.close()
    client.close()
    new.cleanup()
    master.close()


def test_socket_type_talks_over_an_inherited_descriptor() -> None:
    ours, theirs = socket.socketpair()
    try:
        r, t = start(f"cs :: ControlSocket(SOCKET, {theirs.fileno()}); Idle -> c :: Counter -> Discard")
        ours.settimeout(5)
        c = Client.__new__(Client)
        c.sock, c.buf = ours, b""
        assert c.line() == b"Click::ControlSocket/1.3"
        assert c.read(b"c.count") == b"0"
        stop(r, t, c)
    finally:
        ours.close()


def test_click_driver_hotconfig_keeps_queue_and_clients(tmp_path: os.PathLike) -> None:
    """``click -R -u PATH``: hot-swap through the driver's ``hotconfig`` handler."""
    import subprocess

    from conftest import BIN

    exe = os.path.join(BIN, "click")
    if not os.path.exists(exe):
        pytest.skip("click program not installed")
    path = os.path.join(str(tmp_path), "ctl")
    config = "InfiniteSource(LIMIT 5) -> c :: Counter -> q :: Queue(10) -> Idle"
    proc = subprocess.Popen([exe, "-R", "-u", path, "-e", config],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            # The socket file appears at bind(), a moment before listen(): retry.
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            try:
                c = Client(path, socket.AF_UNIX)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.01)
        assert c.line() == b"Click::ControlSocket/1.3"
        assert c.read(b"q.length") == b"5"
        assert c.ask(b"write hotconfig " + config.replace("LIMIT 5", "LIMIT 2").encode()) == (
            b"200 Write handler 'hotconfig' OK")
        # the queue's five packets moved over; the new source added two more
        assert c.read(b"q.length") == b"7"
        assert c.read(b"click_driver@@ControlSocket.config").endswith(b", RETRIES 1, RETRY_WARNINGS false")
        assert c.ask(b"write hotconfig Print") == b"520-Write handler 'hotconfig' error:"
        assert c.line() == b"520-config:1: 'Print@1 :: Print' input 0 unused"
        assert c.line() == b"520-config:1: 'Print@1 :: Print' output 0 unused"
        assert c.line() == b"520 Router could not be initialized!"
        assert c.read(b"q.length") == b"7"
        assert c.ask(b"write stop") == b"200 Write handler 'stop' OK"
        assert proc.wait(10) == 0
        c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
