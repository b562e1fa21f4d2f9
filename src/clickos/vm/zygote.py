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
        from clickos.vm import channel

        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda s, f: None)
        signal.signal(signal.SIGTERM, lambda s, f: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.reap()
        while True:
            try:
                ready, _, _ = select.select([self.sock, self.wake_r], [], [])
            except InterruptedError:
                continue
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 256):
                        pass
                self.reap()
            if self.sock in ready:
                try:
                    msg, fds = channel.recv(self.sock, nonblock=True)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    msg, fds = None, []
                if msg is None or msg.get("op") == "quit":
                    self.shutdown()
                    return 0
                if msg.get("op") == "fork" and fds:
                    self.fork(msg, fds)
                else:
                    for fd in fds:
                        os.close(fd)

    def fork(self, msg: dict, fds: list[int]) -> None:
        from clickos.vm import channel, instance

        chan_fd = fds[0]
        pid = os.fork()
        if pid == 0:
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
    ap.add_argument("--fault-elements", action="store_true", help="register the Fault* test elements")
    ap.add_argument("--ksm", action="store_true", help="mark memory mergeable (kernel same-page merging)")
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
    seconds = warm(args.warm_rounds, args.fault_elements)
    from clickos.vm import instance

    namespaces = [n for n in args.namespaces.split(",") if n]
    zyg = Zygote(sock, namespaces)
    instance.freeze()
    channel.send(sock, {"op": "hello", "pid": os.getpid(), "warm_seconds": seconds})
    return zyg.run()


if __name__ == "__main__":
    sys.exit(main())
