"""The instance: the child side of a "tiny VM".

A process forked from the zygote runs :func:`child_main`.  It fences itself in
(:mod:`clickos.vm.sandbox`), then waits on its control channel for the
``boot`` message carrying its name, limits, log file and configuration.  It
builds the router with :meth:`Router.from_text`, tells the daemon it is ready
(passing a pidfd of itself, so the daemon can signal it without pid races),
and runs ``master.driver()`` with the channel multiplexed in through
``master.add_select``.  Over the channel the daemon can

- ``read`` / ``write`` handlers (answered by the ControlSocket handler backend,
  so names, errors and codes are Click's);
- ``install`` a new configuration: the new router is built alongside the old
  one with ``hotswap_router=old`` and activated, which hands state (counts,
  queued packets, open ControlSocket connections) to same-named elements;
- ask for per-element ``counts``;
- ``stop`` the router.

Events the instance sends unasked: ``ready`` (or ``failed`` with Click's error
lines), ``first_packet`` once the first packet has gone through an element,
and ``stopped``.

The instance also speaks Click's ControlSocket protocol
(``Click::ControlSocket/1.3``) on a Unix socket of its own, so Click's own
clients work: :class:`ControlServer` runs the sans-IO protocol of
:mod:`clickos.control.protocol` over the same handler backend.  The socket
belongs to the instance, not to a configuration, so it and its connections
outlive every hot-swap; a pre-forked process binds it before it is assigned
(at a temporary name it renames at boot), keeping it off the boot path.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any, NoReturn

from clickos.control.backend import ReplyErrorHandler, RouterBackend
from clickos.control.protocol import ControlProtocol
from clickos.core.errors import ErrorHandler
from clickos.core.master import Master
from clickos.core.portspec import PULL, PUSH
from clickos.core.router import STOP_RUNCOUNT, Router
from clickos.core.task import Timer
from clickos.vm import channel, pages, sandbox

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_INTERNAL = 70
POOL_NICE = 10
# After booting or answering a request, an instance hands back the pages it
# copied from the zygote and has put back as they were (pages.Snapshot), and
# lets go of the snapshot's own pages (it maps again those it touches later):
# once, this long after the first of a burst of requests (not on the boot path).
RESHARE_MS = 30
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE

WARM_CONFIG = ("InfiniteSource(LIMIT 1, STOP false) -> c :: Counter -> Discard;\n"
               "Idle -> q :: Queue(10) -> Unqueue -> Discard;\n")
# A pre-forked process practises only the common boot path: whatever else it
# touches would stay copied in its memory for nothing.
LEAN_CONFIG = "InfiniteSource(LIMIT 1, STOP false) -> c :: Counter -> Discard;\n"


def warm_boot(times: int = 1, mode: str = "dry") -> None:
    """Boot a small instance ``times`` times, in this process, through the real
    path.  ``mode`` "dry" (in the zygote) leaves out every step that changes
    the process and goes through everything instances do (build, ready,
    driver, first packet, ControlSocket clients, handler reads and writes,
    counts, hot-swap, stop); "warm" (in a pre-forked process, already in its
    own namespaces) leaves out only dropping privileges, and practises only
    the common path (build, first packet, a handler read, stop).

    In the zygote this compiles what is compiled lazily and specialises the
    interpreter's bytecode; in a pre-forked child it takes the copy-on-write
    faults of the boot path before a real boot is timed.
    """
    full = mode == "dry"
    for i in range(times):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        path = f"/tmp/.clickos-warm-{os.getpid()}-{i}.sock"
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            inst = Instance(ours, [], listener=listen(path))
            client.connect(path)
            client.sendall(b"READ c.count\r\nWRITE c.reset\r\nREAD nosuch.h\r\nQUIT\r\n" if full
                           else b"READ c.count\r\nQUIT\r\n")
            spec = sandbox.SandboxSpec(name="warm").to_json()
            channel.send(theirs, {"op": "boot", "sandbox": spec, "config": WARM_CONFIG if full else LEAN_CONFIG,
                                  "filename": "warm", "stats": False, "control_socket": path})
            requests: tuple[dict[str, Any], ...] = (
                {"op": "read", "handler": "c.count"}, {"op": "counts"}, {"op": "write", "handler": "c.reset"},
                {"op": "install", "config": WARM_CONFIG}, {"op": "ping"}, {"op": "stop"},
            ) if full else ({"op": "read", "handler": "c.count"}, {"op": "stop"})
            for rid, req in enumerate(requests):
                channel.send(theirs, dict(req, id=rid))
            inst.main(mode=mode)
        except Exception:  # noqa: BLE001 - warming is best effort
            traceback.print_exc()
        finally:
            client.close()
            ours.close()
            theirs.close()
            with contextlib.suppress(OSError):
                os.unlink(path)


def hot_code(namespaces: list[str] | None = None) -> list[Any]:
    """The code objects an instance runs, in the order it first runs them.

    Found by running, with a profiler on, a practice boot here and a real one
    in a throwaway child (its own namespaces, the whole child path: the fork
    hooks, the sandbox, a boot, requests over the channel and the
    ControlSocket, idling, stopping), plus every function of the instance's
    own modules; with every code object nested in one of those (the lambdas
    and comprehensions they make)."""
    import tempfile
    import types

    order: dict[tuple[str, int, str], None] = {}

    def key(code: Any) -> tuple[str, int, str]:
        return (code.co_filename, code.co_firstlineno, code.co_qualname)

    def record(frame: Any, event: str, _arg: Any) -> None:
        if event == "call":
            order.setdefault(key(frame.f_code))

    ours, theirs = channel.pair()
    path = f"/tmp/.clickos-profile-{os.getpid()}.sock"
    with tempfile.TemporaryFile() as out:
        # the profiler goes on before the fork, for the child's fork hooks
        parent = os.getpid()
        sys.setprofile(_recorder(out.fileno(), parent))
        try:
            pid = os.fork()
        finally:
            if os.getpid() == parent:
                sys.setprofile(None)
        if pid == 0:
            ours.close()
            _profiled_child(out.fileno(), theirs.detach(), namespaces or [], path)
        theirs.close()
        try:
            _drive_profiled_child(pid, ours, path)
        finally:
            ours.close()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        out.seek(0)
        for line in out.read().decode(errors="replace").splitlines():
            parts = line.split("\0")
            if len(parts) == 3 and parts[1].isdigit():
                order.setdefault((parts[0], int(parts[1]), parts[2]))
    sys.setprofile(record)
    try:
        warm_boot(1)
    finally:
        sys.setprofile(None)
    by_key: dict[tuple[str, int, str], list[Any]] = {}
    own = {m.__name__ for m in (sys.modules[__name__], sandbox, channel, pages)} | {
        "clickos.core.master", "clickos.core.task", "clickos.vm.zygote"}

    def index(code: Any) -> None:
        by_key.setdefault(key(code), []).append(code)
        for k in code.co_consts:
            if type(k) is types.CodeType:
                index(k)

    for o in gc.get_objects():
        if type(o) is types.FunctionType:
            index(o.__code__)
            if o.__module__ in own:
                order.setdefault(key(o.__code__))
    hot: dict[int, Any] = {}

    def add(code: Any) -> None:
        if id(code) not in hot:
            hot[id(code)] = code
            for k in code.co_consts:
                if type(k) is types.CodeType:
                    add(k)

    for k in order:
        for code in by_key.get(k, ()):
            add(code)
    return list(hot.values())


def written_code(code: list[Any], namespaces: list[str] | None = None) -> set[int]:
    """Which of ``code`` an idle instance has written (ids).

    Running a function writes its code object (reference count, warm-up and
    specialisation counters; a closure made keeps a reference), and code
    that a real instance runs but the zygote's practice boots do not
    (sandboxing, the first request) is written every time.  Found by booting
    a real instance in a throwaway child, as :func:`hot_code` does but
    without a profiler, and comparing, once it is idle, each code object's
    bytes in its memory (``/proc/PID/mem``) with ours.  Empty if that memory
    cannot be read (not root)."""
    import ctypes

    before = []
    c = None
    for c in code:
        raw = bytearray(ctypes.string_at(id(c), sys.getsizeof(c)))
        # (less the reference the loop holds: the child looks with only ``code``'s)
        raw[:8] = (int.from_bytes(raw[:8], sys.byteorder) - 1).to_bytes(8, sys.byteorder)
        before.append((id(c), bytes(raw)))
    c = None
    written: set[int] = set()

    def compare() -> None:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        try:
            for addr, raw in before:
                if os.pread(fd, len(raw), addr) != raw:
                    written.add(addr)
        finally:
            os.close(fd)

    ours, theirs = channel.pair()
    path = f"/tmp/.clickos-probe-{os.getpid()}.sock"
    pid = os.fork()
    if pid == 0:
        ours.close()
        _profiled_child(-1, theirs.detach(), namespaces or [], path)
    theirs.close()
    try:
        _drive_profiled_child(pid, ours, path, _best_effort(compare))
    finally:
        ours.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return written


def _best_effort(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(OSError):
            fn()

    return run


def _recorder(fd: int, parent: int) -> Callable[[Any, str, Any], None]:
    """A profiler writing to ``fd`` each code object called (outside ``parent``)."""
    seen: set[int] = set()

    def record(frame: Any, event: str, _arg: Any) -> None:
        if event == "call":
            c = frame.f_code
            if id(c) not in seen and os.getpid() != parent:
                seen.add(id(c))
                os.write(fd, f"{c.co_filename}\0{c.co_firstlineno}\0{c.co_qualname}\n".encode())

    return record


def _profiled_child(fd: int, chan_fd: int, namespaces: list[str], path: str) -> NoReturn:
    """hot_code's throwaway child: an instance, profiled (see _recorder).  It
    boots in a UTS namespace of its own or not at all (it sets its host name)."""
    try:
        sandbox.unshare(sandbox.CLONE_NEWUTS)
    except OSError:
        sys.setprofile(None)
        os._exit(EXIT_INTERNAL)
    try:
        child_main(chan_fd, namespaces, 0, [], path)
    finally:
        os._exit(EXIT_INTERNAL)


def _drive_profiled_child(pid: int, ours: socket.socket, path: str,
                          idle: Callable[[], None] | None = None) -> None:
    """Play the daemon for hot_code's child: boot it, ask, idle (then call
    ``idle``), stop."""
    try:
        ours.settimeout(10)
        msg, _ = channel.recv(ours)                          # waiting
        spec = sandbox.SandboxSpec(name="profile").to_json()
        channel.send(ours, {"op": "boot", "sandbox": spec, "config": WARM_CONFIG, "filename": "profile",
                            "stats": False, "control_socket": path})
        while msg is not None and msg.get("ev") not in ("ready", "failed"):
            msg, fds = channel.recv(ours)
            for fd in fds:
                os.close(fd)
        channel.send(ours, {"op": "read", "handler": "c.count", "id": 1})
        channel.recv(ours)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(path)
            client.sendall(b"READ c.count\r\nQUIT\r\n")
            while client.recv(4096):
                pass
        time.sleep(2 * RESHARE_MS / 1000)
        if idle is not None:
            idle()
        channel.send(ours, {"op": "stop", "id": 2})
        channel.recv(ours)
    except (OSError, ValueError, TypeError, AttributeError):
        # best effort: what was recorded so far is used
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def listen(path: str) -> socket.socket:
    """A non-blocking Unix listener at ``path`` (mode 0600), for :class:`ControlServer`."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(path)
        os.chmod(path, 0o600)
        s.listen(16)
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


class ControlServer:
    """Click's ControlSocket protocol on the instance's own Unix socket.

    The protocol logic is :class:`~clickos.control.protocol.ControlProtocol`;
    handler calls go to the instance's :class:`RouterBackend`, which follows the
    router across hot-swaps.  Sockets are serviced from the driver loop
    (``master.add_select``).
    """

    def __init__(self, listener: socket.socket, backend: RouterBackend, master: Master,
                 on_request: Callable[[], None] | None = None) -> None:
        self.listener = listener
        self.backend = backend
        self.master = master
        self.on_request = on_request
        self.conns: dict[int, tuple[socket.socket, ControlProtocol]] = {}
        master.add_select(listener.fileno(), _READ, self._accept)

    def _accept(self, fd: int, events: int) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            self.conns[sock.fileno()] = (sock, ControlProtocol(self.backend))
            self.master.add_select(sock.fileno(), _READ, self._service)
            self._service(sock.fileno(), _READ)

    def _service(self, fd: int, events: int) -> None:
        entry = self.conns.get(fd)
        if entry is None:
            return
        sock, proto = entry
        if events & _READ and not proto.input_closed:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data is not None:
                proto.receive_data(data)
        proto.process()
        if self.on_request is not None:
            self.on_request()
        while proto.has_output and not proto.output_closed:
            try:
                n = sock.send(proto.peek_output())
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                proto.close_output()
                break
            proto.output_sent(n)
        if proto.finished:
            self._close(fd)
            return
        if proto.has_output:
            self.master.add_select(fd, _WRITE, self._service)
        else:
            self.master.remove_select(fd, _WRITE)
        if proto.input_closed:
            self.master.remove_select(fd, _READ)

    def _close(self, fd: int) -> None:
        sock, _ = self.conns.pop(fd)
        self.master.remove_select(fd, _READ | _WRITE)
        sock.close()

    def close(self) -> None:
        for fd in list(self.conns):
            self._close(fd)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.master.remove_select(self.listener.fileno(), _READ)
        self.listener.close()


class _Watch:
    """Wraps each element's ``push``/``pull`` before the router connects them.

    Notices the first packet to go through any element (once, for the boot
    notification), and with ``stats`` counts packets into every element.  When
    not counting, the wrappers take themselves out of the connections after the
    first packet, so a running router pays nothing for them.
    """

    def __init__(self, router: Router, on_first: Callable[[], None] | None, stats: bool) -> None:
        self.router = router
        self.on_first = on_first
        self.stats = stats
        self.depth = 0
        self.packets: dict[int, int] = {}
        self.wrapped: list[Any] = []
        if on_first is None and not stats:
            return
        for e in router.elements:
            self.packets[e.eindex] = 0
            e.push = self._wrap_push(e, e.push)  # type: ignore[method-assign]
            e.pull = self._wrap_pull(e, e.pull)  # type: ignore[method-assign]
            self.wrapped.append(e)

    def _wrap_push(self, e: Any, push: Callable[[int, Any], None]) -> Callable[[int, Any], None]:
        packets = self.packets
        idx = e.eindex

        def wrapped_push(port: int, batch: Any) -> None:
            if self.on_first is None:
                if self.stats:
                    packets[idx] += len(batch)
                push(port, batch)
                return
            packets[idx] += len(batch)
            self.depth += 1
            try:
                push(port, batch)
            finally:
                self.depth -= 1
            if self.depth == 0:
                self._first()

        return wrapped_push

    def _wrap_pull(self, e: Any, pull: Callable[..., Any]) -> Callable[..., Any]:
        packets = self.packets
        idx = e.eindex

        def wrapped_pull(port: int, max: int = 1) -> Any:
            if self.on_first is None and not self.stats:
                return pull(port, max)
            self.depth += 1
            try:
                batch = pull(port, max)
            finally:
                self.depth -= 1
            if batch is not None:
                packets[idx] += len(batch)
                if self.on_first is not None and self.depth == 0:
                    self._first()
            return batch

        return wrapped_pull

    def _first(self) -> None:
        cb, self.on_first = self.on_first, None
        if not self.stats:
            self.unwrap()
        if cb is not None:
            cb()

    def unwrap(self) -> None:
        """Put the elements' own methods back into every connection."""
        for e in self.wrapped:
            e.__dict__.pop("push", None)
            e.__dict__.pop("pull", None)
        for e in self.wrapped:
            for port in e.outputs:
                if port.processing == PUSH and port.element is not None:
                    port.push = partial(port.element.push, port.peer_port)
            for port in e.inputs:
                if port.processing == PULL and port.element is not None:
                    port.pull = partial(port.element.pull, port.peer_port)
        self.wrapped = []

    def counts(self) -> list[dict[str, Any]]:
        out = []
        for e in self.router.elements:
            item: dict[str, Any] = {"name": e.name, "class": e.class_name()}
            h = self.router.handlers.find(e, "count")
            if h is not None and h.readable and not h.read_param:
                v = h.call_read("", ErrorHandler(echo=False)).strip()
                with contextlib.suppress(ValueError):
                    item["count"] = int(v)
            if self.stats:
                item["packets"] = self.packets.get(e.eindex, 0)
            out.append(item)
        return out


class Instance:
    """One instance's router and its control channel."""

    def __init__(self, chan: socket.socket, isolation: list[str], listener: socket.socket | None = None) -> None:
        self.chan = chan
        self.listener = listener
        self.control: ControlServer | None = None
        self.isolation = isolation
        self.master = Master()
        self.router: Router | None = None
        self.watch: _Watch | None = None
        self._pending_watch: _Watch | None = None
        self.backend = RouterBackend(None)
        self.name = ""
        self.stats = False
        self.control_path: str | None = None
        self.first_sent = False
        self.ready_sent = False
        self.times: dict[str, float] = {}
        self.closing = False
        self._reshare_timer = Timer(self._reshare)
        self._reshare_timer.master = self.master

    # -- memory -----------------------------------------------------------------------
    def reshare_soon(self) -> None:
        """Hand copied-back pages to the zygote's snapshot shortly (pages.Snapshot)."""
        if pages.current is not None and not self._reshare_timer.scheduled:
            self._reshare_timer.schedule_after_msec(RESHARE_MS)

    def _reshare(self, _timer: Timer) -> None:
        # unmap: the thousands of the zygote's pages mapped since the fork
        # would each count a share of a page in this instance's PSS (and a
        # page table entry), while an idle instance uses a few dozen of them
        pages.reshare(unmap=True)

    # -- messages ---------------------------------------------------------------------
    def send(self, msg: dict[str, Any], fds: list[int] | None = None) -> None:
        with contextlib.suppress(OSError):
            channel.send(self.chan, msg, fds)

    # -- building -------------------------------------------------------------------------
    def _extra(self, r: Router) -> None:
        notify = None if self.first_sent else self._first_packet
        self._pending_watch = _Watch(r, notify, self.stats)

    def build(self, text: str, filename: str, errh: ErrorHandler, hotswap: Router | None = None) -> Router | None:
        return Router.from_text(text, filename, errh, master=self.master, hotswap_router=hotswap,
                                extra=self._extra)

    def _first_packet(self) -> None:
        if self.first_sent:
            return
        self.first_sent = True
        self.times["first_packet"] = time.monotonic()
        if self.ready_sent:
            self.send({"ev": "first_packet", "t": self.times["first_packet"]})
        # else: it goes out with the "ready" message

    # -- life -------------------------------------------------------------------------------
    def main(self, mode: str = "real") -> int:
        """Wait for the boot message, boot, run until stopped.

        ``mode`` is "real", or for warming up "dry" (nothing that changes the
        process itself) or "warm" (everything but dropping privileges).
        """
        dry = mode == "dry"
        real = mode == "real"
        if real:
            self.send({"ev": "waiting"})
        msg, fds = channel.recv(self.chan)
        if msg is None or msg.get("op") != "boot":
            return EXIT_OK
        self.times["boot"] = time.monotonic()
        if fds:
            logfd = fds[0]
            os.dup2(logfd, 1)
            os.dup2(logfd, 2)
            os.close(logfd)
            for extra_fd in fds[1:]:
                os.close(extra_fd)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            name = msg["sandbox"]["name"]
            os.write(2, f"--- clickos: {name} run {msg.get('run', 1)} starting at {stamp} ---\n".encode())
        spec = sandbox.SandboxSpec.from_json(msg["sandbox"])
        self.name = spec.name
        self.stats = bool(msg.get("stats"))
        self.control_path = msg.get("control_socket") or None
        problems: list[str] = []
        if real:
            with contextlib.suppress(OSError):
                if os.getpriority(os.PRIO_PROCESS, 0) != 0:
                    os.setpriority(os.PRIO_PROCESS, 0, 0)
        if not dry:
            sandbox.set_process_name(f"clickos:{self.name}")
            problems = sandbox.enter(spec)
        problems += self._control_socket()
        self.times["sandboxed"] = time.monotonic()
        errh = ErrorHandler(stream=sys.stderr, echo=not dry)
        router = self.build(msg["config"], msg.get("filename") or "config", errh)
        self.times["built"] = time.monotonic()
        if router is None:
            self.send({"ev": "failed", "errors": [ln for ln in errh.lines if ln]})
            return EXIT_CONFIG
        if real:
            problems += sandbox.drop_privileges(spec)
        self.times["dropped"] = time.monotonic()
        self.router = router
        self.watch = self._pending_watch
        self.backend.router = router
        if not dry:
            signal.signal(signal.SIGTERM, self._on_term)
            signal.signal(signal.SIGINT, self._on_term)
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.chan.setblocking(False)
        self.master.add_select(self.chan.fileno(), _READ, self._on_channel)
        if self.listener is not None:
            self.control = ControlServer(self.listener, self.backend, self.master, self.reshare_soon)
        router.activate(errh)
        self.times["activated"] = time.monotonic()
        # One pass of the driver before saying "ready": a source's first packet
        # goes out before the daemon wakes up to take the message.
        self.master.driver_once()
        pidfd = -1
        with contextlib.suppress(OSError, AttributeError):
            pidfd = os.pidfd_open(os.getpid())
        self.ready_sent = True
        self.send({"ev": "ready", "pid": os.getpid(), "isolation": self.isolation, "problems": problems,
                   "warnings": [ln for ln in errh.lines if ln], "times": self.times,
                   "first_packet": self.times.get("first_packet")},
                  [pidfd] if pidfd >= 0 else None)
        if pidfd >= 0:
            os.close(pidfd)
        self.reshare_soon()
        self.master.driver()
        if not self.closing:
            self.send({"ev": "stopped"})
        if self.router is not None:
            self.router.cleanup()
        if self.control is not None:
            self.control.close()
        self.master.close()
        if mode == "warm":
            sandbox.set_process_name("clickos-vm")
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
        return EXIT_OK

    def _control_socket(self) -> list[str]:
        """Put the ControlSocket listener at its final path (renaming the one a
        pre-forked process made in advance), or make it now."""
        want = self.control_path
        if not want:
            if self.listener is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.listener.getsockname())
                self.listener.close()
                self.listener = None
            return []
        try:
            if self.listener is not None:
                have = self.listener.getsockname()
                if have != want:
                    os.rename(have, want)
            else:
                self.listener = listen(want)
        except OSError as e:
            self.control_path = None
            return [f"control socket {want}: {e.strerror}"]
        return []

    def _on_term(self, signo: int, _frame: Any) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.router is not None:
            self.router.set_runcount(STOP_RUNCOUNT)
        self.master.request_stop()

    # -- requests ---------------------------------------------------------------------
    def _on_channel(self, fd: int, events: int) -> None:
        while True:
            try:
                msg, fds = channel.recv(self.chan, nonblock=True)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                msg, fds = None, []
            for extra_fd in fds:
                os.close(extra_fd)
            if msg is None:
                # the daemon went away: stop
                self.closing = True
                self.master.remove_select(fd, selectors.EVENT_READ)
                self._stop()
                return
            self.reshare_soon()
            try:
                reply = self.handle(msg)
            except Exception as e:  # noqa: BLE001 - a bad request must not kill the instance
                traceback.print_exc()
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            if "id" in msg:
                reply["id"] = msg["id"]
                self.chan.setblocking(True)
                try:
                    self.send(reply)
                finally:
                    self.chan.setblocking(False)

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "read":
            r = self.backend.read(str(msg.get("handler", "")), str(msg.get("param", "")))
            return _reply(r)
        if op == "write":
            r = self.backend.write(str(msg.get("handler", "")), str(msg.get("value", "")))
            return _reply(r)
        if op == "counts":
            return {"ok": True, "elements": self.watch.counts() if self.watch else [],
                    "first_packet": self.times.get("first_packet")}
        if op == "install":
            return self.install(str(msg.get("config", "")), msg.get("filename") or "config")
        if op == "stop":
            self._stop()
            return {"ok": True}
        if op == "ping":
            return {"ok": True, "t": time.monotonic()}
        return {"ok": False, "error": f"unknown request '{op}'"}

    def install(self, text: str, filename: str) -> dict[str, Any]:
        """Hot-swap: build the new router next to the old one, hand state over, switch."""
        old = self.router
        errh = _TeeErrorHandler()
        new = self.build(text, filename, errh, hotswap=old)
        if new is None:
            return {"ok": False, "errors": [ln for ln in errh.lines if ln]}
        watch = self._pending_watch
        new.activate(errh)
        self.router, self.watch = new, watch
        self.backend.router = new
        if old is not None:
            old.cleanup()
        return {"ok": True, "warnings": [ln for ln in errh.lines if ln]}


class _TeeErrorHandler(ReplyErrorHandler):
    """Collects lines for the reply and prints them to the instance's log."""

    def _emit(self, text: str) -> None:
        super()._emit(text)
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()


def _reply(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": r.ok, "code": r.code, "messages": list(r.messages)}
    if r.data is not None:
        out["value"] = r.data.decode("latin-1")
    return out


def child_main(chan_fd: int, namespaces: list[str], prewarm: int = 0,
               cgroup_procs: list[str] | None = None, control_socket: str | None = None) -> NoReturn:
    """Entry point in a freshly forked child of the zygote; never returns."""
    rc = EXIT_INTERNAL
    try:
        pages.attach()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        sandbox.set_process_name("clickos-vm")
        if prewarm:
            # warming up ahead of time is background work: yield the CPU to
            # instances that are booting (the daemon restores priority at boot)
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, 0, POOL_NICE)
        isolation = sandbox.prepare(namespaces, cgroup_procs)
        chan = socket.socket(fileno=chan_fd)
        if prewarm:
            # take the copy-on-write faults of the boot path now (in a child
            # when there is a snapshot: see pages.practise)
            if pages.current is not None:
                pages.practise(partial(warm_boot, prewarm, "warm"))
            else:
                warm_boot(prewarm, mode="warm")
                # give back what the warm-up allocated and freed
                gc.collect()
                with contextlib.suppress(Exception):
                    sandbox.libc().malloc_trim(0)
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        listener = None
        if control_socket:
            with contextlib.suppress(OSError):
                listener = listen(control_socket)
        rc = Instance(chan, isolation, listener).main()
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else EXIT_INTERNAL
    except BaseException:  # noqa: BLE001 - report anything, then exit
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(rc)


def freeze() -> None:
    """What the zygote does once warm: collect, fill the allocator's partly used
    pools (children's new objects then go to fresh pools, not into holes all
    over shared pages), then keep the GC off everything that exists (so
    children do not dirty shared pages by scanning them)."""
    gc.collect()
    pages.fill_pools()
    gc.freeze()
    with contextlib.suppress(Exception):
        # hand freed heap pages back: fewer pages to map into every child
        sandbox.libc().malloc_trim(0)
    pages.fill_malloc()
