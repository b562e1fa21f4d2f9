"""The zygote behind the `click` launcher: import everything once, pre-fork runners.

Forking a process that has numpy and numba's compiler loaded costs several
milliseconds, and so does tearing it down; Click starts in about one.  So the
zygote keeps a few children already forked and blocked in ``accept()`` on its
socket.  A connection wakes one of them; it reads the request, tells the
zygote it is taken (handing over a duplicate of the connection, so the zygote
can report the child's death by a signal), runs the program, writes
``exit N`` itself and exits.  Meanwhile the zygote forks a replacement.

Protocol (one Unix stream connection per run): the launcher sends a 4-byte
length and a payload of NUL-terminated fields — ``CLICKOS1``, program name,
argc, arguments, envc, environment entries, working directory, umask (octal)
— with its standard input, output and error attached as SCM_RIGHTS.  The
child answers ``pid N`` first and ``exit N`` at the end; the zygote answers
``signal N`` if the child is killed; ``stale`` means the installed code
changed since the zygote started (the launcher then runs the slow path, and
the zygote gives its socket up to a fresh one).

If the launcher disappears, the zygote terminates its child.  An idle zygote
exits after IDLE_EXIT seconds, and so does one whose socket was replaced.
"""

from __future__ import annotations

import array
import gc
import io
import os
import selectors
import signal
import socket
import struct
import sys
import time

IDLE_EXIT = 300.0
SPARE_RUNNERS = 2
MAGIC = "CLICKOS1"


def source_stamp() -> float:
    """Latest modification time of the installed clickos sources."""
    import clickos

    root = os.path.dirname(clickos.__file__)
    latest = 0.0
    for d, _dirs, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                try:
                    latest = max(latest, os.stat(os.path.join(d, f)).st_mtime)
                except OSError:
                    pass
    return latest


def warm() -> None:
    """Import and compile everything a run may need, before any fork."""
    import clickos.cli  # noqa: F401
    import clickos.driver  # noqa: F401
    import clickos.lang  # noqa: F401
    from clickos.core import registry

    registry.load_all()
    # Every kernel module under clickos.packet offers warm(): compile or load them all
    # now, or each run would pay tens of milliseconds loading them.
    import importlib
    import pkgutil

    import clickos.packet as packet_pkg

    for info in pkgutil.iter_modules(packet_pkg.__path__, "clickos.packet."):
        try:
            mod = importlib.import_module(info.name)
            if callable(getattr(mod, "warm", None)):
                mod.warm()
        except Exception as e:  # noqa: BLE001 - a router without kernels still runs
            print(f"zygote: {info.name} not warmed: {e}", file=sys.stderr)


def _recv_request(conn: socket.socket) -> tuple[list[str], list[int]] | None:
    head, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
    if len(head) < 4:
        for fd in fds:
            os.close(fd)
        return None
    (n,) = struct.unpack("=I", head[:4])
    data = head[4:]
    while len(data) < n:
        more = conn.recv(n - len(data))
        if not more:
            break
        data += more
    fields = data[:n].decode("utf-8", "surrogateescape").split("\0")
    return fields, fds


def _parse(fields: list[str]) -> tuple[str, list[str], dict[str, str], str, int]:
    it = iter(fields)
    if next(it) != MAGIC:
        raise ValueError("bad magic")
    prog = next(it)
    argv = [next(it) for _ in range(int(next(it)))]
    env: dict[str, str] = {}
    for _ in range(int(next(it))):
        k, _, v = next(it).partition("=")
        env[k] = v
    cwd = next(it)
    umask = int(next(it), 8)
    return prog, argv, env, cwd, umask


def _send_ctl(ctl: socket.socket, word: str, fds: list[int]) -> None:
    msg = f"{word} {os.getpid()}".encode()
    if fds:
        ctl.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        ctl.send(msg)


# Run while a runner waits for work.  A forked child pays a copy-on-write page
# fault for every shared page it writes, and Python writes reference counts all
# over its heap; building and running a small router here takes those faults
# before a caller is waiting (a first run costs ~10 ms more without this).
PREFAULT_CONFIG = (
    "s :: InfiniteSource(LIMIT 4, BURST 2) -> c :: Counter -> q :: Queue(8) -> u :: Unqueue -> a :: AverageCounter"
    " -> Discard; Script(print >/dev/null $(add 1 $(c.count)), wait 1ms, write stop)"
)


def _prefault() -> None:
    saved = sys.stdout, sys.stderr
    null = open(os.devnull, "w")
    sys.stdout = sys.stderr = null
    try:
        from clickos.launch import dispatch

        dispatch("click", ["--simtime", "-e", PREFAULT_CONFIG, "-h", "c.count"])
        dispatch("click-flatten", ["-e", PREFAULT_CONFIG])
    except BaseException:  # noqa: BLE001 - warming is best effort
        pass
    finally:
        sys.stdout, sys.stderr = saved
        null.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)


def _runner(srv: socket.socket, ctl: socket.socket, stamp: float) -> None:
    """A pre-forked child: wait for one run, perform it, exit.  Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for s in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _prefault()
        gc.collect()
        gc.freeze()
        srv.setblocking(True)
        conn, _ = srv.accept()
        t_accept = time.time()
        srv.close()
        conn.settimeout(5.0)
        got = _recv_request(conn)
        if got is None:
            os._exit(0)
        fields, fds = got
        prog, argv, env, cwd, umask = _parse(fields)
        conn.settimeout(None)
        _send_ctl(ctl, "taken", [conn.fileno()])
        ctl.close()
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(cwd)
        os.umask(umask)
        os.environ.clear()
        os.environ.update(env)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="surrogateescape")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="surrogateescape",
                                      line_buffering=os.isatty(1))
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=True)
        import random

        random.seed()
        conn.sendall(f"pid {os.getpid()}\n".encode())
        sys.argv = [prog] + argv
        from clickos.launch import dispatch

        t_dispatch = time.time()
        try:
            code = dispatch(prog, argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except KeyboardInterrupt:
            code = 130
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        code &= 0xFF
        # Release the caller's descriptors and tell the launcher before exiting:
        # tearing down this big address space takes milliseconds that the caller
        # (say, a shell waiting for EOF on a pipe) need not wait for.
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        conn.sendall(f"exit {code}\n".encode())
        trace = os.environ.get("CLICKOS_ZYGOTE_TRACE")
        if trace:
            with open(trace, "a") as f:
                f.write(f"accept {t_accept:.6f} dispatch {t_dispatch:.6f} done {time.time():.6f} "
                        f"setup_ms {(t_dispatch - t_accept) * 1e3:.2f} run_ms {(time.time() - t_dispatch) * 1e3:.2f}\n")
    except BaseException:  # noqa: BLE001 - report, then exit like a crashed program
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def serve(path: str) -> int:
    if _live(path):
        return 0  # another zygote already serves this installation
    warm()
    stamp = source_stamp()
    if _live(path):
        return 0  # another zygote came up while this one was warming
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    srv.bind(path)
    os.umask(old_umask)
    my_inode = os.stat(path).st_ino
    srv.listen(64)
    ctl_parent, ctl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    gc.collect()
    gc.freeze()  # keep the warm heap shared with children (no gc-driven copies)

    sel = selectors.DefaultSelector()
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda s, f: None)
    term = [False]
    signal.signal(signal.SIGTERM, lambda s, f: term.__setitem__(0, True))
    pidfile = path + ".pid"
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    sel.register(ctl_parent, selectors.EVENT_READ, "ctl")
    sel.register(rfd, selectors.EVENT_READ, "wake")
    idle: set[int] = set()
    running: dict[int, socket.socket] = {}
    last_active = time.monotonic()
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            sel.close()
            ctl_parent.close()
            os.close(rfd)
            os.close(wfd)
            for c in running.values():
                c.close()
            _runner(srv, ctl_child, stamp)
        idle.add(pid)

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            idle.discard(pid)
            conn = running.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                try:
                    conn.sendall(f"signal {os.WTERMSIG(status)}\n".encode())
                except OSError:
                    pass
            try:
                sel.unregister(conn)
            except (KeyError, ValueError):
                pass
            conn.close()

    last_stamp_check = time.monotonic()
    while True:
        if not stopping and time.monotonic() - last_stamp_check > 0.5:
            # Checked here, not per run, to keep it off the runs' critical path.
            last_stamp_check = time.monotonic()
            if source_stamp() != stamp:
                term[0] = True
        if term[0] and not stopping:
            _unlink_if_ours(path, my_inode)
            stopping = True
        if not stopping and not _is_ours(path, my_inode):
            stopping = True  # replaced by a newer zygote: finish our runs, then go
        if not stopping and not running and time.monotonic() - last_active > IDLE_EXIT:
            stopping = True
        if stopping:
            for pid in list(idle):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    idle.discard(pid)
            if not running and not idle:
                break
        else:
            while len(idle) < SPARE_RUNNERS:
                spawn()
        for key, _ev in sel.select(timeout=0.5):
            if key.data == "wake":
                try:
                    while os.read(rfd, 512):
                        pass
                except BlockingIOError:
                    pass
            elif key.data == "ctl":
                try:
                    msg, fds, _flags, _addr = socket.recv_fds(ctl_parent, 256, 1)
                except BlockingIOError:
                    continue
                word, _, spid = msg.decode().partition(" ")
                pid = int(spid or 0)
                last_active = time.monotonic()
                if word == "taken" and fds:
                    idle.discard(pid)
                    conn = socket.socket(fileno=fds[0])
                    running[pid] = conn
                    sel.register(conn, selectors.EVENT_READ, pid)
                elif word == "stale":
                    idle.discard(pid)
                    if not stopping:
                        _unlink_if_ours(path, my_inode)
                        stopping = True
            else:
                # The launcher's side closed: it is gone, so end its child.
                pid = key.data
                conn = key.fileobj
                try:
                    data = conn.recv(64)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(conn)
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
        reap()
    _unlink_if_ours(path, my_inode)
    try:
        with open(pidfile) as f:
            if int(f.read().strip() or 0) == os.getpid():
                os.unlink(pidfile)
    except (OSError, ValueError):
        pass
    return 0


def stop(path: str) -> int:
    """Ask the zygote serving ``path`` to finish its runs and exit."""
    try:
        with open(path + ".pid") as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return 0
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    return 0


def _live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _is_ours(path: str, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _unlink_if_ours(path: str, inode: int) -> None:
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--stop":
        raise SystemExit(stop(sys.argv[2]))
    raise SystemExit(serve(sys.argv[1]))
