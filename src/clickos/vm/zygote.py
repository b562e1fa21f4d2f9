"""The zygote: a warm process that instances are forked from.

It imports every element module (``registry.load_all()``), compiles or loads
the packet kernels (``kernels.warm()``), builds and runs a small router a few
dozen times (so lazily built tables exist and the interpreter's bytecode is
specialised), collects garbage and freezes the collector (``gc.freeze()``:
children then never scan, and so never dirty, the inherited objects).  Then it
waits on its socket to the daemon.

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
import os
import select
import signal
import socket
import sys
import time

# Threads in the zygote would be lost in every fork, and some libraries start
# them at import: keep numerical libraries single-threaded.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def warm(rounds: int = 30, fault_elements: bool = False) -> float:
    """Import and exercise everything instances use; returns the seconds it took."""
    t0 = time.monotonic()
    if fault_elements:
        import clickos.vm.faults  # noqa: F401 - registers the Fault* elements (before load_all)
    from clickos.core import registry
    from clickos.packet import kernels
    from clickos.vm import instance

    registry.load_all()
    kernels.warm()
    instance.warm_boot(rounds)
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

    def practice(self, rounds: int, snapshot: bool) -> None:
        """Go through the loop as for real ``rounds`` times, with fork requests
        whose children exit at once, so that the loop's own code is warm (and
        its bytecode specialised) before the snapshot, which the last round
        takes (:func:`clickos.vm.pages.before_fork`): in the same state as
        every later fork, the zygote then copies few pages between forks."""
        from clickos.vm import channel, pages

        real = self.sock
        ours, self.sock = channel.pair()
        try:
            for i in range(rounds):
                if snapshot and i == rounds - 1:
                    pages.enable()
                theirs, child_end = channel.pair()
                channel.send(ours, {"op": "fork", "id": -1 - i, "prewarm": 0, "practice": True},
                             [child_end.fileno()])
                child_end.close()
                waiting = {"forked", "exit"}
                deadline = time.monotonic() + 10
                while waiting and time.monotonic() < deadline:
                    self.step()
                    with contextlib.suppress(BlockingIOError, InterruptedError):
                        while True:
                            msg, fds = channel.recv(ours, nonblock=True)
                            for fd in fds:
                                os.close(fd)
                            if msg is None:
                                break
                            waiting.discard(msg.get("op"))
                theirs.close()
        finally:
            self.sock.close()
            ours.close()
            self.sock = real

    def fork(self, msg: dict, fds: list[int]) -> None:
        from clickos.vm import channel, instance, pages

        chan_fd = fds[0]
        pages.before_fork()
        pid = os.fork()
        if pid == 0:
            if msg.get("practice"):
                os._exit(0)
            try:
                signal.set_wakeup_fd(-1)
                self.sock.close()
                os.close(self.wake_r)
                os.close(self.wake_w)
                for fd in fds[1:]:
                    os.close(fd)
            finally:
                instance.child_main(chan_fd, self.namespaces, int(msg.get("prewarm") or 0),
                                    list(msg.get("cgroup_procs") or []), msg.get("control_socket"))
        for fd in fds:
            os.close(fd)
        self.children.add(pid)
        with contextlib.suppress(OSError):
            channel.send(self.sock, {"op": "forked", "id": msg.get("id"), "pid": pid})

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
    ap.add_argument("--practice-forks", type=int, default=20,
                    help="forks practised (children that exit at once) before serving the daemon")
    ap.add_argument("--fault-elements", action="store_true", help="register the Fault* test elements")
    ap.add_argument("--ksm", action="store_true", help="mark memory mergeable (kernel same-page merging)")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="keep memory anonymous (no shared snapshot file, no handing back of copied pages)")
    args = ap.parse_args(argv)
    from clickos.vm import channel, pages, sandbox

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
    warm(args.warm_rounds, args.fault_elements)
    from clickos.vm import instance

    namespaces = [n for n in args.namespaces.split(",") if n]
    zyg = Zygote(sock, namespaces)
    instance.freeze()
    zyg.setup_signals()
    zyg.practice(max(1, args.practice_forks), snapshot=not args.no_snapshot)
    channel.send(sock, {"op": "hello", "pid": os.getpid(), "warm_seconds": time.monotonic() - t0,
                        "snapshot": pages.current is not None})
    while zyg.step():
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
