"""The zygote: a warm process that instances are forked from.

It imports every element module (``registry.load_all()``), compiles or loads
the packet kernels (``kernels.warm()``), builds and runs a small router a few
dozen times (so lazily built tables exist and the interpreter's bytecode is
specialised), puts the code an instance runs together (found by profiling a
real boot in a throwaway child; the code an idle instance writes, found by
comparing another one's memory with its own, first), collects garbage and
freezes the collector
(``gc.freeze()``: children then never scan, and so never dirty, the inherited
objects), and fills the allocators' free lists.  Then it waits on its socket
to the daemon: normally from native code (:meth:`Zygote.serve_snapshot`),
after taking a snapshot of its memory that every instance starts from and
hands unchanged pages back to (:mod:`clickos.vm.pages`); where that is not
possible (no ``memfd_create``, pagemap or numba; ``--no-snapshot``), from the
Python loop below.

Each ``fork`` request carries one end of a fresh SEQPACKET pair (the
instance's control channel, ``SCM_RIGHTS``).  The zygote forks; the child runs
:func:`clickos.vm.instance.child_main` on that channel; the zygote replies
``forked`` with the pid and closes its copy.  The zygote is the instances'
parent, so it reaps them and reports each ``exit`` with its wait status.  It
is also a child subreaper, so anything an instance forks and orphans is
reaped here too.

Run as ``python -m clickos.vm.zygote --fd N``; the daemon starts it.  If the
daemon goes away, the zygote kills its instances and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import mmap
import os
import select
import signal
import socket
import sys
import time
from typing import Any, NoReturn

# Threads in the zygote would be lost in every fork, and some libraries start
# them at import: keep numerical libraries single-threaded.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# Instances use fused-path kernels compiled before but start no compiler process:
# it would count against their memory and process limits (packet/codegen.py).
os.environ.setdefault("CLICKOS_COMPILE_CHILD", "0")


def warm(rounds: int = 30, fault_elements: bool = False, namespaces: list[str] | None = None) -> float:
    """Import and exercise everything instances use; returns the seconds it took."""
    t0 = time.monotonic()
    if fault_elements:
        import clickos.vm.faults  # noqa: F401 - registers the Fault* elements (before load_all)
    from clickos.core import registry
    from clickos.packet import kernels
    from clickos.vm import instance, pages, sandbox

    pages.load_native()   # first: compiling, if it must, leaves much behind
    registry.load_all()
    kernels.warm()
    instance.warm_boot(rounds)
    # Put the code an instance runs together (pages.compact_code), in fresh
    # memory, then specialise it again ...
    hot = instance.hot_code(namespaces)
    # ... the ones an idle instance has written first: they sit on as few
    # pages as they fill, the others stay shared (so do the names of the
    # closures it makes, each of which takes a reference to them)
    written = instance.written_code(hot, namespaces)
    hot = [c for c in hot if id(c) in written] + [c for c in hot if id(c) not in written]
    pages.compact_code(hot, fresh_names=written)
    instance.warm_boot(rounds)
    # What every instance calls outside the practice boots, and can be called
    # here as it is: called often enough for calls to it to be specialised,
    # which gives a function its version number (written on first use, in
    # every instance otherwise).
    for _ in range(16):
        signal.signal(signal.SIGINT, signal.signal(signal.SIGINT, signal.SIG_IGN))
        sandbox.set_process_name("clickos-zygote")
    return time.monotonic() - t0


class Zygote:
    def __init__(self, sock: socket.socket, namespaces: list[str]) -> None:
        self.sock = sock
        self.namespaces = namespaces
        self.children: set[int] = set()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def run(self) -> int:
        self.setup_signals()
        while self.step():
            pass
        return 0

    def setup_signals(self) -> None:
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda s, f: None)
        signal.signal(signal.SIGTERM, lambda s, f: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.reap()

    def step(self) -> bool:
        """Wait for, and handle, what comes next; False once told to quit."""
        from clickos.vm import channel

        try:
            ready, _, _ = select.select([self.sock, self.wake_r], [], [])
        except InterruptedError:
            return True
        if self.wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self.wake_r, 256):
                    pass
            self.reap()
        if self.sock in ready:
            try:
                msg, fds = channel.recv(self.sock, nonblock=True)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                msg, fds = None, []
            if msg is None or msg.get("op") == "quit":
                self.shutdown()
                return False
            if msg.get("op") == "fork" and fds:
                self.fork(msg, fds)
            else:
                for fd in fds:
                    os.close(fd)
        return True

    def fork(self, msg: dict, fds: list[int]) -> None:
        from clickos.vm import channel

        pid = os.fork()
        if pid == 0:
            self.child(msg, fds)
        for fd in fds:
            os.close(fd)
        self.children.add(pid)
        with contextlib.suppress(OSError):
            channel.send(self.sock, {"op": "forked", "id": msg.get("id"), "pid": pid})

    def child(self, msg: dict, fds: list[int]) -> NoReturn:
        """In a new child: become an instance."""
        from clickos.vm import instance

        try:
            signal.set_wakeup_fd(-1)
            self.sock.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            for fd in fds[1:]:
                os.close(fd)
        finally:
            instance.child_main(fds[0], self.namespaces, int(msg.get("prewarm") or 0),
                                list(msg.get("cgroup_procs") or []), msg.get("control_socket"))

    def serve_snapshot(self, hello: dict[str, Any]) -> bool:
        """Take the snapshot and serve from native code (``pagesnative.serve``);
        False, with nothing changed, if that is not possible here.

        From the snapshot on, the zygote runs no Python: its memory stays the
        snapshot, so every child starts from the very pages of the snapshot
        file, and nothing the zygote does between forks leaves a child with
        copies of its own.  A child returns from the native call here."""
        import ctypes
        import json

        import numpy as np

        from clickos.vm import channel, instance, pages

        prep = pages.prepare()
        if prep is None:
            return False
        from clickos.vm import pagesnative as pn

        snap, cap = prep
        srv = mmap.mmap(-1, pn.SERVE_SCRATCH, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        b = np.frombuffer(srv, np.uint8)
        q = np.frombuffer(srv, np.int64)
        d = np.frombuffer(srv, np.int32)
        data = channel.encode(dict(hello, snapshot=True))
        b[pn.MSG: pn.MSG + len(data)] = np.frombuffer(data, np.uint8)
        sc = cap.scratch
        # (the type cache: its names are pinned right before the snapshot, for
        # instances to put its entries back; see pages.TypeCache)
        tc = pages.type_cache
        tc.locate()
        args = (cap.smaps_fd, cap.pagemap_fd, cap.memfd, sc.text, sc.ents, sc.rows, snap.have, snap.view_size,
                self.sock.fileno(), b, q, d, tc.words, tc.pinned)
        pn.serve(*args, -1)    # compiled (or loaded) now, not under the fork lock
        pages.current = snap   # as every child will see it
        api = ctypes.pythonapi
        fork_hooks = (api.PyOS_BeforeFork, api.PyOS_AfterFork_Child, api.PyOS_AfterFork_Parent)
        # The last things before the snapshot: a practice boot, so that the
        # interpreter's caches (attribute lookups above all: each miss in a
        # child writes the cache and two names' reference counts) hold what a
        # boot looks up; then fill what the preparation left in the
        # allocators' free lists (pymalloc's, glibc's, numpy's), so that
        # children allocate afresh (see instance.freeze).
        instance.warm_boot(2)
        gc.collect()           # (the practice instances' selectors: closed)
        pages.fill_pools()
        pages.fill_malloc()
        pages.fill_numpy()
        # Served from native code, the zygote handles no signal in Python
        # (child exits come through a signalfd): no handler functions for
        # every child to drop (a reference count on a shared page each).
        # SIGCHLD's default, not SIG_IGN, which would reap children itself.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # and everything made since instance.freeze(), above all the ballast,
        # out of the collector's reach too: a collection in a child would
        # otherwise go over it, untrack and relink it, copying its pages
        gc.freeze()
        fork_hooks[0]()
        what, n, fd0, fd1 = pn.serve(*args, len(data))
        if what == pn.SERVE_CHILD:
            fork_hooks[1]()
            self.sock.detach()   # closed already (by serve, at once)
            msg = json.loads(bytes(b[pn.MSG: pn.MSG + n]))
            fds = [fd for fd in (fd0, fd1) if fd >= 0]
            del b, q, d, sc, args
            cap.release()
            srv.close()
            self.child(msg, fds)
        fork_hooks[2]()
        del sc, args
        cap.release()
        if what == pn.SERVE_NO_SNAPSHOT:
            pages.current = None
            self.setup_signals()
            return False
        self.children.update(int(pid) for pid in d[pn.PIDS // 4: pn.PIDS // 4 + int(q[0])])
        if what == pn.SERVE_FORK_FAILED:
            raise OSError("fork failed")
        self.shutdown()
        return True

    def reap(self) -> None:
        from clickos.vm import channel

        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            with contextlib.suppress(OSError):
                channel.send(self.sock, {"op": "exit", "pid": pid, "status": status})

    def shutdown(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, 0)
                self.children.discard(pid)
            except ChildProcessError:
                break


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="clickos-zygote")
    ap.add_argument("--fd", type=int, required=True, help="socket to the daemon")
    ap.add_argument("--namespaces", default="net,uts,ipc,mnt")
    ap.add_argument("--warm-rounds", type=int, default=30)
    ap.add_argument("--fault-elements", action="store_true", help="register the Fault* test elements")
    ap.add_argument("--ksm", action="store_true", help="mark memory mergeable (kernel same-page merging)")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="keep memory anonymous (no shared snapshot file, no handing back of copied pages)")
    args = ap.parse_args(argv)
    from clickos.vm import channel, sandbox

    sandbox.disable_thp()
    if args.ksm:
        sandbox.memory_merge()
    with contextlib.suppress(OSError):
        sandbox.die_with_parent()
    with contextlib.suppress(OSError):
        sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
    sandbox.set_process_name("clickos-zygote")
    sock = socket.socket(fileno=args.fd)
    t0 = time.monotonic()
    namespaces = [n for n in args.namespaces.split(",") if n]
    warm(args.warm_rounds, args.fault_elements, namespaces)
    from clickos.vm import instance

    zyg = Zygote(sock, namespaces)
    instance.freeze()
    zyg.setup_signals()
    hello = {"op": "hello", "pid": os.getpid(), "warm_seconds": time.monotonic() - t0}
    if not args.no_snapshot and zyg.serve_snapshot(hello):
        return 0
    channel.send(sock, dict(hello, snapshot=False))
    while zyg.step():
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
