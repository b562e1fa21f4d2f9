"""The daemon: keeps instances, restarts them, and cleans up after them.

One :class:`Daemon` owns

- a zygote process (:mod:`clickos.vm.zygote`), started at boot, that forks
  instances; it reports each child's exit status, so the daemon notices every
  exit and crash as it happens (it also holds a pidfd of every instance, sent
  by the instance itself, to signal it without pid races);
- a pool of pre-forked processes (``prefork``): already in their own cgroup
  (joining one can wait for an RCU grace period, ~10 ms on cgroup v1) and
  namespaces, with their ControlSocket bound, having practised a boot at low
  priority (``prefork_warm``) so the copy-on-write faults of the boot path
  are behind them.  Creating an instance then costs building its router;
- one record per instance: name, configuration, limits, restart policy
  (``no``, ``on-failure``, ``always``, with exponential back-off and an
  optional ``max_restarts``), state, pid, cgroup, log file, ControlSocket
  path, recent events and the reason for its last exit (signal, status, and
  which limit it hit, from the cgroup's counters);
- a supervisor thread that reads the zygote's and every instance's channel
  (replies, ``ready``/``failed``/``first_packet`` events, exits), runs the
  restart and pool-refill timers, and removes dead instances' cgroups.

Instance states: ``created`` (not started), ``starting``, ``running``,
``stopping``, ``stopped`` (by request), ``exited`` (on its own, cleanly),
``crashed`` (killed or failed), ``failed`` (bad configuration, or gave up
restarting), ``backoff`` (waiting to restart).

The REST API (:mod:`clickos.vm.api`) calls the public methods from its
request threads; they raise :class:`ApiError` with the HTTP status to answer.
:meth:`Daemon.close` stops everything and removes every process, cgroup and
socket it made (logs stay in ``run_dir/logs``).
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clickos import __version__
from clickos.vm import channel
from clickos.vm.cgroup import CgroupManager, CgroupSet
from clickos.vm.sandbox import DEFAULT_NAMESPACES, KsmControl, Limits, SandboxSpec

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
RESTART_POLICIES = ("no", "on-failure", "always")
WAIT_MODES = ("none", "ready", "first-packet")
STABLE_SECONDS = 10.0     # a run this long resets the back-off
EXIT_CONFIG = 2
POOL_REFILL_DELAY = 0.02  # seconds after a boot before the pool is topped up


class ApiError(Exception):
    """An error with the HTTP status the API answers it with."""

    def __init__(self, status: int, message: str, details: list[str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.details:
            err["details"] = self.details
        err.update(self.extra)
        return {"error": err}


_TIMEOUT = object()
_GONE = object()


class Waiter:
    """A one-shot result slot a request thread waits on."""

    __slots__ = ("event", "value")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: Any = None

    def set(self, value: Any) -> None:
        if not self.event.is_set():
            self.value = value
            self.event.set()

    def wait(self, timeout: float | None) -> Any:
        return self.value if self.event.wait(timeout) else _TIMEOUT


@dataclass
class RestartPolicy:
    policy: str = "no"
    max_restarts: int | None = None
    backoff_initial: float = 0.1
    backoff_max: float = 30.0

    @classmethod
    def from_json(cls, v: Any) -> RestartPolicy:
        if v is None:
            return cls()
        if isinstance(v, str):
            v = {"policy": v}
        if not isinstance(v, dict):
            raise ValueError("restart must be a policy name or an object")
        d = dict(v)
        rp = cls(policy=str(d.pop("policy", "no")))
        if rp.policy not in RESTART_POLICIES:
            raise ValueError(f"restart policy must be one of {', '.join(RESTART_POLICIES)}")
        if d.get("max_restarts") is not None:
            rp.max_restarts = int(d.pop("max_restarts"))
        for key in ("backoff_initial", "backoff_max"):
            if d.get(key) is not None:
                setattr(rp, key, float(d.pop(key)))
        d.pop("max_restarts", None)
        if d:
            raise ValueError(f"unknown restart option(s): {', '.join(sorted(d))}")
        if rp.backoff_initial <= 0 or rp.backoff_max < rp.backoff_initial:
            raise ValueError("back-off times must be positive, max >= initial")
        return rp

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "max_restarts": self.max_restarts,
                "backoff_initial": self.backoff_initial, "backoff_max": self.backoff_max}


@dataclass
class DaemonConfig:
    run_dir: str = "/run/clickos"
    socket_path: str | None = None          # default: run_dir/clickos.sock
    prefork: int = 2
    prefork_warm: int = 1
    namespaces: tuple[str, ...] = DEFAULT_NAMESPACES
    cgroups: bool = True
    uid_base: int | None = 200_000          # None: instances keep the daemon's user
    control_sockets: bool = True
    fault_elements: bool = False
    ksm: bool = False                       # let KSM merge identical pages across instances
    ksm_pages_to_scan: int | None = 2000    # ksmd's scan rate while we run (pages per 20 ms)
    snapshot: bool = True                   # instances hand back pages they copied unchanged (vm/pages.py)
    boot_timeout: float = 10.0
    request_timeout: float = 5.0
    stop_grace: float = 2.0
    warm_rounds: int = 30

    @property
    def api_socket(self) -> str:
        return self.socket_path or os.path.join(self.run_dir, "clickos.sock")


class Proc:
    """A process forked from the zygote: pooled (no record yet) or an instance's."""

    __slots__ = ("token", "chan", "pid", "pidfd", "record", "pending", "warm", "ready", "exit_waiter",
                 "killed", "stopped_router", "cgroup", "control_tmp")

    def __init__(self, token: int, chan: socket.socket) -> None:
        self.token = token
        self.chan = chan
        self.pid: int | None = None
        self.pidfd = -1
        self.record: Record | None = None
        self.pending: dict[int, Waiter] = {}
        self.warm = False
        self.ready = False
        self.exit_waiter = Waiter()
        self.killed = False
        self.stopped_router = False
        self.cgroup: CgroupSet | None = None
        self.control_tmp: str | None = None


@dataclass
class Record:
    name: str
    config: str
    filename: str
    limits: Limits
    restart: RestartPolicy
    stats: bool
    uid_slot: int
    created: float = field(default_factory=time.time)
    state: str = "created"
    desired: str = "running"
    proc: Proc | None = None
    run: int = 0
    restarts: int = 0
    failures: int = 0                       # consecutive, for the back-off
    started_mono: float | None = None
    started_wall: float | None = None
    launch_mono: float | None = None
    first_packet_mono: float | None = None
    last_exit: dict[str, Any] | None = None
    events: collections.deque = field(default_factory=lambda: collections.deque(maxlen=32))
    cgroup: CgroupSet | None = None
    ready_waiter: Waiter = field(default_factory=Waiter)
    first_waiter: Waiter = field(default_factory=Waiter)
    boot_errors: list[str] = field(default_factory=list)
    boot_times: dict[str, float] = field(default_factory=dict)
    isolation: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    restart_at: float | None = None
    removed: bool = False
    log_path: str = ""
    control_path: str | None = None
    boot_source: str = ""
    old_cgroup: CgroupSet | None = None     # the last run's, being removed
    ready_seen_mono: float = 0.0
    boot_sent_mono: float = 0.0
    first_seen_mono: float = 0.0

    def event(self, what: str, **info: Any) -> None:
        e = {"time": time.time(), "event": what}
        e.update(info)
        self.events.append(e)


def _fmt_signal(signo: int) -> str:
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"signal {signo}"


def memory_of(pid: int) -> dict[str, int] | None:
    """RSS, PSS and USS (private) in bytes, from /proc/PID/smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            text = f.read()
    except OSError:
        return None
    vals: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "kB":
            vals[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return {"rss_bytes": vals.get("Rss", 0), "pss_bytes": vals.get("Pss", 0),
            "uss_bytes": vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0),
            "swap_bytes": vals.get("Swap", 0)}


class Daemon:
    """Instances, their processes and their lifecycle.  Thread-safe."""

    def __init__(self, cfg: DaemonConfig | None = None) -> None:
        self.cfg = cfg or DaemonConfig()
        self.lock = threading.RLock()
        self.records: dict[str, Record] = {}
        self.procs_by_token: dict[int, Proc] = {}
        self.procs_by_pid: dict[int, Proc] = {}
        self.pool: collections.deque[Proc] = collections.deque()
        self._tokens = itertools.count(1)
        self._ids = itertools.count(1)
        self._free_slots: list[int] = []
        self._next_slot = 0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._register_q: collections.deque[Proc] = collections.deque()
        self._cleanup_q: collections.deque[CgroupSet] = collections.deque()
        self._thread: threading.Thread | None = None
        self.closing = False
        self.closed = False
        self.started = time.time()
        self.zygote: subprocess.Popen | None = None
        self.zygote_sock: socket.socket | None = None
        self.zygote_pid: int | None = None
        self.zygote_warm_seconds = 0.0
        self.zygote_snapshot = False
        self.zlock = threading.Lock()
        self.cgroups: CgroupManager | None = None
        self.ksm: KsmControl | None = None
        self.sock_dir = os.path.join(self.cfg.run_dir, "sockets")
        self.log_dir = os.path.join(self.cfg.run_dir, "logs")
        self.events: collections.deque = collections.deque(maxlen=64)

    # -- start and stop ----------------------------------------------------------------
    def start(self) -> None:
        for d in (self.cfg.run_dir, self.sock_dir, self.log_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self.cgroups = CgroupManager(enabled=self.cfg.cgroups)
        if self.cfg.ksm:
            self.ksm = KsmControl()
            problem = self.ksm.enable(self.cfg.ksm_pages_to_scan) if self.ksm.available else "ksm: not available"
            if problem:
                self._daemon_event("ksm unavailable", error=problem)
        self._start_zygote()
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._supervise, name="clickos-supervisor", daemon=True)
        self._thread.start()
        with self.lock:
            self._fill_pool()

    def _start_zygote(self) -> None:
        ours, theirs = channel.pair()
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env[var] = "1"
        # A fixed mmap threshold: large arrays (packet pools) always get fresh,
        # lazily zeroed pages.  With glibc's adaptive threshold they end up on
        # the heap after the zygote's warm-up, and calloc then dirties every page.
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
        env["MALLOC_TRIM_THRESHOLD_"] = "262144"
        cmd = [sys.executable, "-m", "clickos.vm.zygote", "--fd", str(theirs.fileno()),
               "--namespaces", ",".join(self.cfg.namespaces), "--warm-rounds", str(self.cfg.warm_rounds)]
        if self.cfg.fault_elements:
            cmd.append("--fault-elements")
        if self.cfg.ksm:
            cmd.append("--ksm")
        if not self.cfg.snapshot:
            cmd.append("--no-snapshot")
        self.zygote = subprocess.Popen(cmd, pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        ours.settimeout(300)
        try:
            msg, _ = channel.recv(ours)
        except OSError as e:
            msg = None
            err = str(e)
        else:
            err = "zygote exited during start-up"
        if msg is None or msg.get("op") != "hello":
            with contextlib.suppress(Exception):
                self.zygote.kill()
                self.zygote.wait(5)
            raise RuntimeError(f"cannot start the zygote: {err}")
        ours.settimeout(None)
        self.zygote_sock = ours
        self.zygote_pid = int(msg["pid"])
        self.zygote_warm_seconds = float(msg.get("warm_seconds", 0.0))
        self.zygote_snapshot = bool(msg.get("snapshot"))
        self._daemon_event("zygote started", pid=self.zygote_pid, warm_seconds=round(self.zygote_warm_seconds, 3),
                           snapshot=self.zygote_snapshot)

    def close(self) -> None:
        """Stop every instance and remove everything made for them."""
        if self.closed:
            return
        self.closing = True
        with self.lock:
            recs = list(self.records.values())
            for rec in recs:
                rec.desired = "stopped"
                rec.restart_at = None
                if rec.proc is not None:
                    rec.state = "stopping"
                    self._signal(rec.proc, signal.SIGTERM)
            pooled = list(self.pool)
            self.pool.clear()
        for p in pooled:
            self._signal(p, signal.SIGKILL)
        deadline = time.monotonic() + self.cfg.stop_grace
        for rec in recs:
            p = rec.proc
            if p is not None and p.exit_waiter.wait(max(0.0, deadline - time.monotonic())) is _TIMEOUT:
                p.killed = True
                self._signal(p, signal.SIGKILL)
        for rec in recs:
            p = rec.proc
            if p is not None:
                p.exit_waiter.wait(5)
        for p in pooled:
            p.exit_waiter.wait(2)
        # the zygote kills whatever is left and exits
        if self.zygote is not None:
            with contextlib.suppress(OSError), self.zlock:
                channel.send(self.zygote_sock, {"op": "quit"})  # type: ignore[arg-type]
            try:
                self.zygote.wait(10)
            except subprocess.TimeoutExpired:
                self.zygote.kill()
                self.zygote.wait(5)
        self._stop_supervisor()
        self._cleanup()
        with self.lock:
            for rec in list(self.records.values()):
                self._release(rec, remove_files=False)
            self.records.clear()
            for p in list(self.procs_by_token.values()):
                self._forget(p)
        if self.cgroups is not None:
            self.cgroups.close()
        if self.ksm is not None:
            self.ksm.restore()
        if self.zygote_sock is not None:
            self.zygote_sock.close()
        with contextlib.suppress(OSError):
            os.rmdir(self.sock_dir)
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.closed = True

    def _stop_supervisor(self) -> None:
        if self._thread is not None:
            self._wake()
            self._thread.join(5)
            self._thread = None

    # -- processes -----------------------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def _fork_proc(self, prewarm: int) -> Proc:
        """Ask the zygote for a new blank process; returns at once (pid arrives later)."""
        ours, theirs = channel.pair()
        proc = Proc(next(self._tokens), ours)
        self.procs_by_token[proc.token] = proc
        msg: dict[str, Any] = {"op": "fork", "id": proc.token, "prewarm": prewarm}
        if self.cfg.control_sockets:
            # bound by the child now, renamed to the instance's name at boot
            proc.control_tmp = os.path.join(self.sock_dir, f".p{proc.token}.sock")
            msg["control_socket"] = proc.control_tmp
        if self.cgroups is not None and self.cgroups.available:
            # one cgroup per process, joined by the child right after the fork;
            # the instance's limits are written into it when it is assigned
            try:
                proc.cgroup = self.cgroups.create(f"p{proc.token}")
                msg["cgroup_procs"] = proc.cgroup.procs_files()
            except OSError as e:
                self._daemon_event("cgroup failed", error=str(e))
        try:
            with self.zlock:
                channel.send(self.zygote_sock, msg, [theirs.fileno()])  # type: ignore[arg-type]
        except OSError:
            self._forget(proc)
            raise
        finally:
            theirs.close()
        self._register_q.append(proc)
        self._wake()
        return proc

    def _fill_pool(self) -> None:
        if self.closing:
            return
        while len(self.pool) < self.cfg.prefork:
            try:
                self.pool.append(self._fork_proc(self.cfg.prefork_warm))
            except OSError:
                return

    def _take_proc(self) -> Proc:
        chosen = None
        for p in self.pool:
            if p.warm:
                chosen = p
                break
        if chosen is None and self.pool:
            chosen = self.pool[0]
        if chosen is not None:
            self.pool.remove(chosen)
            return chosen
        return self._fork_proc(0)

    def _signal(self, proc: Proc, signo: int) -> None:
        try:
            if proc.pidfd >= 0:
                signal.pidfd_send_signal(proc.pidfd, signo)
            elif proc.pid is not None:
                os.kill(proc.pid, signo)
            else:
                # not even forked yet: closing the channel makes it leave when it starts
                proc.chan.shutdown(socket.SHUT_RDWR)
        except (ProcessLookupError, OSError):
            pass

    def _forget(self, proc: Proc) -> None:
        self.procs_by_token.pop(proc.token, None)
        if proc.pid is not None:
            self.procs_by_pid.pop(proc.pid, None)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(proc.chan)
        with contextlib.suppress(OSError):
            proc.chan.close()
        if proc.pidfd >= 0:
            with contextlib.suppress(OSError):
                os.close(proc.pidfd)
            proc.pidfd = -1
        if proc.cgroup is not None and self.cgroups is not None and proc.record is None:
            self._cleanup_q.append(proc.cgroup)
            proc.cgroup = None
        if proc.control_tmp:
            with contextlib.suppress(OSError):
                os.unlink(proc.control_tmp)
        for w in proc.pending.values():
            w.set(_GONE)
        proc.pending.clear()
        proc.exit_waiter.set(True)

    # -- the supervisor thread -------------------------------------------------------------
    def _supervise(self) -> None:
        assert self.zygote_sock is not None
        self._sel.register(self.zygote_sock, selectors.EVENT_READ, "zygote")
        while not self.closed:
            timeout = None
            with self.lock:
                if self._timers:
                    timeout = max(0.0, self._timers[0][0] - time.monotonic())
            if self.closing and self.zygote is not None and self.zygote.poll() is not None and timeout is None:
                timeout = 0.05
            try:
                ready = self._sel.select(timeout)
            except (OSError, ValueError):
                if self.closing:
                    return
                continue
            for key, _ in ready:
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._wake_r, 4096):
                            pass
                elif key.data == "zygote":
                    self._zygote_readable()
                else:
                    self._proc_readable(key.data)
            while self._register_q:
                p = self._register_q.popleft()
                if p.token in self.procs_by_token:
                    with contextlib.suppress(KeyError, ValueError, OSError):
                        self._sel.register(p.chan, selectors.EVENT_READ, p)
            self._run_timers()
            self._cleanup()
            if self.closing and self._thread_should_exit():
                return

    def _cleanup(self) -> None:
        """Remove the cgroups of processes that are gone (supervisor thread, no lock)."""
        while self._cleanup_q:
            cg = self._cleanup_q.popleft()
            if self.cgroups is not None:
                self.cgroups.remove(cg, timeout=1.0)

    def _thread_should_exit(self) -> bool:
        return self.zygote is not None and self.zygote.poll() is not None and not self.procs_by_token

    def _run_timers(self) -> None:
        due = []
        with self.lock:
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        for fn in due:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - a timer must not kill the supervisor
                self._daemon_event("timer failed", error=f"{type(e).__name__}: {e}")

    def _at(self, when: float, fn: Callable[[], None], wake: bool = True) -> None:
        """Run ``fn`` in the supervisor thread at ``when`` (``wake=False`` from the
        supervisor thread itself, which recomputes its timeout every turn)."""
        heapq.heappush(self._timers, (when, next(self._timer_seq), fn))
        if wake:
            self._wake()

    def _zygote_readable(self) -> None:
        assert self.zygote_sock is not None
        while True:
            try:
                msg, fds = channel.recv(self.zygote_sock, nonblock=True)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                msg, fds = None, []
            for fd in fds:
                os.close(fd)
            if msg is None:
                self._zygote_lost()
                return
            op = msg.get("op")
            with self.lock:
                if op == "forked":
                    p = self.procs_by_token.get(int(msg["id"]))
                    if p is not None:
                        p.pid = int(msg["pid"])
                        self.procs_by_pid[p.pid] = p
                elif op == "exit":
                    p = self.procs_by_pid.get(int(msg["pid"]))
                    if p is not None:
                        self._exited(p, int(msg["status"]))

    def _zygote_lost(self) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self.zygote_sock)
        if self.closing:
            return
        # Instances die with the zygote (PDEATHSIG).  Report them, start a new one.
        self._daemon_event("zygote died", pid=self.zygote_pid)
        with self.lock:
            for p in list(self.procs_by_token.values()):
                self._exited(p, signal.SIGKILL, reason="the zygote died")
            self.pool.clear()
        with contextlib.suppress(Exception):
            assert self.zygote is not None
            self.zygote.wait(5)
        with contextlib.suppress(OSError):
            self.zygote_sock.close()  # type: ignore[union-attr]
        try:
            self._start_zygote()
        except RuntimeError as e:
            self._daemon_event("zygote restart failed", error=str(e))
            return
        self._sel.register(self.zygote_sock, selectors.EVENT_READ, "zygote")  # type: ignore[arg-type]
        with self.lock:
            self._fill_pool()

    def _drain(self, proc: Proc) -> None:
        while True:
            try:
                msg, fds = channel.recv(proc.chan, nonblock=True)
            except (BlockingIOError, InterruptedError, OSError):
                return
            if msg is None:
                for fd in fds:
                    os.close(fd)
                return
            self._proc_message(proc, msg, fds)

    def _proc_readable(self, proc: Proc) -> None:
        while True:
            try:
                msg, fds = channel.recv(proc.chan, nonblock=True)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                msg, fds = None, []
            if msg is None:
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(proc.chan)
                for fd in fds:
                    os.close(fd)
                return
            with self.lock:
                self._proc_message(proc, msg, fds)

    def _proc_message(self, proc: Proc, msg: dict[str, Any], fds: list[int]) -> None:
        if "id" in msg:
            for fd in fds:
                os.close(fd)
            w = proc.pending.pop(msg["id"], None)
            if w is not None:
                w.set(msg)
            return
        ev = msg.get("ev")
        rec = proc.record
        if ev == "ready":
            if fds:
                proc.pidfd = fds[0]
                for fd in fds[1:]:
                    os.close(fd)
            proc.ready = True
            if proc.pid is None and msg.get("pid"):
                proc.pid = int(msg["pid"])
                self.procs_by_pid[proc.pid] = proc
            if rec is not None:
                rec.state = "running" if rec.state == "starting" else rec.state
                rec.started_mono = time.monotonic()
                rec.started_wall = time.time()
                rec.isolation = list(msg.get("isolation") or [])
                rec.problems = list(msg.get("problems") or [])
                rec.boot_times = dict(msg.get("times") or {})
                rec.event("started", pid=proc.pid, run=rec.run)
                rec.ready_seen_mono = time.monotonic()
                if msg.get("first_packet"):
                    rec.first_packet_mono = float(msg["first_packet"])
                    rec.first_seen_mono = rec.ready_seen_mono
                    rec.first_waiter.set(rec.first_packet_mono)
                rec.ready_waiter.set(("ready", msg))
            # Refill the pool now that this boot is done, a little later, so that
            # forking and warming the replacement does not compete with it.
            self._at(time.monotonic() + POOL_REFILL_DELAY, self._refill, wake=False)
            return
        for fd in fds:
            os.close(fd)
        if ev == "waiting":
            proc.warm = True
        elif ev == "failed" and rec is not None:
            rec.boot_errors = list(msg.get("errors") or [])
            rec.event("configuration failed", errors=rec.boot_errors[-5:])
            rec.ready_waiter.set(("failed", rec.boot_errors))
        elif ev == "first_packet" and rec is not None:
            rec.first_packet_mono = float(msg.get("t") or time.monotonic())
            rec.first_seen_mono = time.monotonic()
            rec.first_waiter.set(rec.first_packet_mono)
        elif ev == "stopped":
            proc.stopped_router = True

    # -- exits -----------------------------------------------------------------------------
    def _exited(self, proc: Proc, status: int, reason: str | None = None) -> None:
        """A process is gone (called with the lock held)."""
        rec = proc.record
        # what it said before dying (say, why its configuration failed) may
        # still be waiting on its channel: the zygote's report can come first
        self._drain(proc)
        self._forget(proc)
        if proc in self.pool:
            self.pool.remove(proc)
        self._fill_pool()
        if rec is None or rec.proc is not proc:
            return
        rec.proc = None
        if rec.control_path:
            with contextlib.suppress(OSError):
                os.unlink(rec.control_path)
        code = os.waitstatus_to_exitcode(status) if reason is None else -signal.SIGKILL
        info = self._explain(rec, proc, code, reason)
        if rec.cgroup is not None:
            info["cgroup"] = self.cgroups.stats(rec.cgroup) if self.cgroups else {}
            # removing it may mean killing stragglers and waiting: not under the lock
            self._cleanup_q.append(rec.cgroup)
            rec.old_cgroup = rec.cgroup
            rec.cgroup = proc.cgroup = None
        rec.last_exit = info
        ran = time.monotonic() - rec.started_mono if rec.started_mono else 0.0
        rec.started_mono = None
        failed = info["failure"]
        if rec.state == "stopping" or rec.desired == "stopped":
            rec.state = "stopped"
        elif rec.state == "starting" and info.get("code") == EXIT_CONFIG:
            rec.state = "failed"
        else:
            rec.state = "crashed" if failed else "exited"
        rec.event("exited", **{k: v for k, v in info.items() if k != "cgroup"})
        rec.ready_waiter.set(("exited", info))
        rec.first_waiter.set(None)
        if ran >= STABLE_SECONDS or not failed:
            rec.failures = 0
        if failed:
            rec.failures += 1
        self._maybe_restart(rec, failed)

    def _explain(self, rec: Record, proc: Proc, code: int, reason: str | None) -> dict[str, Any]:
        info: dict[str, Any] = {"time": time.time(), "pid": proc.pid}
        stats = self.cgroups.stats(rec.cgroup) if (self.cgroups and rec.cgroup) else {}
        if code >= 0:
            info["code"] = code
            if code == 0:
                why = "exited normally (its router stopped)" if proc.stopped_router else "exited normally"
            elif code == EXIT_CONFIG:
                why = "configuration failed"
            else:
                why = f"exited with status {code}"
            info["failure"] = code != 0
        else:
            signo = -code
            info["signal"] = _fmt_signal(signo)
            info["failure"] = True
            if reason:
                why = f"killed: {reason}"
            elif signo == signal.SIGKILL and (stats.get("oom_kills", 0) > 0 or stats.get("memory_limit_hits", 0) > 0):
                why = (f"killed by the kernel's OOM killer: memory limit "
                       f"({(rec.limits.memory_bytes or 0) / 2**20:g} MiB) reached")
            elif signo == signal.SIGXCPU:
                why = f"CPU time limit ({rec.limits.cpu_seconds} s) reached"
            elif signo == signal.SIGKILL and proc.killed:
                why = f"did not stop within {self.cfg.stop_grace:g} s, killed"
            elif signo == signal.SIGTERM and rec.state == "stopping":
                why = "stopped"
            else:
                why = f"killed by {info['signal']}"
        if stats.get("pids_limit_hits"):
            why += f"; {stats['pids_limit_hits']} fork(s) refused by the pids limit ({rec.limits.pids})"
        if stats.get("cpu_nr_throttled"):
            info["cpu_throttled_periods"] = stats["cpu_nr_throttled"]
        if rec.state == "stopping":
            info["failure"] = False
        info["reason"] = why
        return info

    def _maybe_restart(self, rec: Record, failed: bool) -> None:
        if rec.removed or self.closing or rec.desired != "running":
            return
        pol = rec.restart
        if pol.policy == "no" or (pol.policy == "on-failure" and not failed):
            return
        if pol.max_restarts is not None and rec.restarts >= pol.max_restarts:
            rec.event("not restarting", reason=f"max_restarts ({pol.max_restarts}) reached")
            rec.state = "failed"
            return
        delay = min(pol.backoff_max, pol.backoff_initial * (2 ** max(0, rec.failures - 1)))
        rec.restart_at = time.monotonic() + delay
        rec.state = "backoff"
        rec.event("restart scheduled", delay_s=round(delay, 3))
        run = rec.run

        def fire() -> None:
            with self.lock:
                if (rec.removed or self.closing or rec.desired != "running" or rec.proc is not None
                        or rec.run != run):
                    return
                rec.restart_at = None
                rec.restarts += 1
                try:
                    self._launch(rec)
                except Exception as e:  # noqa: BLE001
                    rec.event("restart failed", error=str(e))
                    rec.state = "crashed"

        self._at(rec.restart_at, fire)

    # -- launching ---------------------------------------------------------------------------
    def _alloc_slot(self) -> int:
        if self._free_slots:
            return heapq.heappop(self._free_slots)
        self._next_slot += 1
        return self._next_slot - 1

    def _launch(self, rec: Record) -> None:
        """Give the instance a process and send it its boot message (lock held)."""
        if self.zygote_sock is None:
            raise ApiError(503, "the zygote is not running")
        rec.run += 1
        rec.state = "starting"
        rec.ready_waiter = Waiter()
        rec.first_waiter = Waiter()
        rec.boot_errors = []
        rec.first_packet_mono = None
        rec.launch_mono = time.monotonic()
        proc = self._take_proc()
        rec.boot_source = "warm pool" if proc.warm else ("pool" if proc.pid is not None else "fork")
        if proc.pid is not None:
            # pre-forked processes warm up at low priority; this one is needed now
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, proc.pid, 0)
        proc.record = rec
        rec.proc = proc
        limits = rec.limits
        cg = proc.cgroup
        if cg is not None and self.cgroups is not None:
            try:
                self.cgroups.set_limits(cg, memory_bytes=limits.memory_bytes, cpu_percent=limits.cpu_percent,
                                        pids=limits.pids)
            except OSError as e:
                rec.event("cgroup limits failed", error=str(e))
        rec.cgroup = cg
        uid = None if self.cfg.uid_base is None else self.cfg.uid_base + rec.uid_slot
        spec = SandboxSpec(name=rec.name, limits=limits.to_json(), cgroup_procs=[],
                           memory_cgroup=bool(cg and "memory" in cg.dirs), uid=uid, gid=uid)
        rec.control_path = os.path.join(self.sock_dir, f"{rec.name}.sock") if self.cfg.control_sockets else None
        logfd = os.open(rec.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            boot = {"op": "boot", "sandbox": spec.to_json(), "config": rec.config, "filename": rec.filename,
                    "stats": rec.stats, "control_socket": rec.control_path, "run": rec.run}
            channel.send(proc.chan, boot, [logfd])
            rec.boot_sent_mono = time.monotonic()
        except OSError as e:
            rec.event("boot message failed", error=str(e))
            self._signal(proc, signal.SIGKILL)
        finally:
            os.close(logfd)

    def _refill(self) -> None:
        with self.lock:
            self._fill_pool()

    def _release(self, rec: Record, remove_files: bool) -> None:
        if rec.cgroup is not None and self.cgroups is not None:
            self.cgroups.remove(rec.cgroup, timeout=1.0)
            rec.cgroup = None
        if rec.control_path:
            with contextlib.suppress(OSError):
                os.unlink(rec.control_path)
        if remove_files:
            with contextlib.suppress(OSError):
                os.unlink(rec.log_path)
        if rec.uid_slot >= 0:
            heapq.heappush(self._free_slots, rec.uid_slot)
            rec.uid_slot = -1

    # -- helpers for API methods -----------------------------------------------------------
    def _get(self, name: str) -> Record:
        rec = self.records.get(name)
        if rec is None or rec.removed:
            raise ApiError(404, f"no instance named '{name}'")
        return rec

    def _wait_boot(self, rec: Record, wait: str, t0: float) -> dict[str, Any]:
        """Wait for ready (and maybe the first packet); raise ApiError on failure."""
        timing: dict[str, Any] = {}
        if wait == "none":
            return timing
        r = rec.ready_waiter.wait(self.cfg.boot_timeout)
        if r is _TIMEOUT:
            raise ApiError(504, f"instance '{rec.name}' did not become ready within {self.cfg.boot_timeout:g} s")
        kind, payload = r
        if kind == "failed":
            raise ApiError(400, "bad configuration", list(payload))
        if kind == "exited":
            raise ApiError(500, f"instance '{rec.name}' exited while booting: {payload.get('reason')}")
        timing["ready_ms"] = round((time.monotonic() - t0) * 1000, 3)
        if wait == "first-packet":
            t = rec.first_waiter.wait(self.cfg.boot_timeout)
            if t is _TIMEOUT:
                raise ApiError(504, f"instance '{rec.name}' forwarded no packet within {self.cfg.boot_timeout:g} s")
            if t is None:
                raise ApiError(500, f"instance '{rec.name}' exited before forwarding a packet")
            timing["first_packet_ms"] = round((t - t0) * 1000, 3)
            timing["first_packet_seen_ms"] = round((rec.first_seen_mono - t0) * 1000, 3)
        timing["ready_seen_ms"] = round((rec.ready_seen_mono - t0) * 1000, 3)
        timing["boot_sent_ms"] = round((rec.boot_sent_mono - t0) * 1000, 3)
        timing["answer_ms"] = round((time.monotonic() - t0) * 1000, 3)
        return timing

    def _request(self, rec: Record, msg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        with self.lock:
            proc = rec.proc
            if proc is None or not proc.ready:
                raise ApiError(409, f"instance '{rec.name}' is not running (state {rec.state})")
            rid = next(self._ids)
            w = Waiter()
            proc.pending[rid] = w
        msg["id"] = rid
        try:
            channel.send(proc.chan, msg)
        except OSError:
            with self.lock:
                proc.pending.pop(rid, None)
            raise ApiError(409, f"instance '{rec.name}' is not running") from None
        r = w.wait(self.cfg.request_timeout if timeout is None else timeout)
        if r is _TIMEOUT:
            with self.lock:
                proc.pending.pop(rid, None)
                rec.event("unresponsive", request=msg.get("op"))
            raise ApiError(504, f"instance '{rec.name}' did not answer within "
                                f"{self.cfg.request_timeout if timeout is None else timeout:g} s")
        if r is _GONE:
            raise ApiError(409, f"instance '{rec.name}' exited while handling the request")
        return r

    # -- the API -----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        with self.lock:
            states = collections.Counter(r.state for r in self.records.values())
            return {"version": __version__, "pid": os.getpid(), "uptime_s": round(time.time() - self.started, 3),
                    "zygote": {"pid": self.zygote_pid, "warm_seconds": round(self.zygote_warm_seconds, 3),
                               "snapshot": self.zygote_snapshot,
                               "memory": memory_of(self.zygote_pid) if self.zygote_pid else None},
                    "instances": len(self.records), "states": dict(states), "pool": len(self.pool),
                    "cgroups": self.cgroups.describe() if self.cgroups else None,
                    "namespaces": list(self.cfg.namespaces), "socket": self.cfg.api_socket,
                    "ksm": self.ksm.stats() if self.ksm else None,
                    "run_dir": self.cfg.run_dir, "events": list(self.events)}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        t0 = time.monotonic()
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        name = body.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ApiError(400, "name must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit")
        config = body.get("config")
        if not isinstance(config, str):
            raise ApiError(400, "config (the configuration text) is required")
        try:
            limits = Limits.from_json(body.get("limits"))
            restart = RestartPolicy.from_json(body.get("restart"))
        except (ValueError, TypeError) as e:
            raise ApiError(400, str(e)) from None
        wait = body.get("wait", "ready")
        if wait not in WAIT_MODES:
            raise ApiError(400, f"wait must be one of {', '.join(WAIT_MODES)}")
        start = body.get("start", True)
        with self.lock:
            if self.closing:
                raise ApiError(503, "the daemon is shutting down")
            if name in self.records:
                raise ApiError(409, f"an instance named '{name}' already exists")
            rec = Record(name=name, config=config, filename=str(body.get("filename") or "config"),
                         limits=limits, restart=restart, stats=bool(body.get("stats", False)),
                         uid_slot=self._alloc_slot())
            rec.log_path = os.path.join(self.log_dir, f"{name}.log")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(rec.log_path)
            self.records[name] = rec
            rec.event("created")
            if not start:
                rec.desired = "stopped"
                rec.state = "created"
                return self._summary(rec)
            try:
                self._launch(rec)
            except BaseException:
                self._drop(rec)
                raise
        try:
            timing = self._wait_boot(rec, wait, t0)
        except ApiError:
            with self.lock:
                rec.desired = "stopped"
                if rec.proc is not None:
                    self._signal(rec.proc, signal.SIGKILL)
                proc = rec.proc
            if proc is not None:
                proc.exit_waiter.wait(2)
            with self.lock:
                self._drop(rec)
            raise
        with self.lock:
            out = self._summary(rec, memory=False)
        out["timing"] = timing
        return out

    def _drop(self, rec: Record) -> None:
        rec.removed = True
        if self.records.get(rec.name) is rec:
            del self.records[rec.name]
        self._release(rec, remove_files=True)

    def list(self, memory: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            items = [self._summary(r, memory=False) for r in self.records.values()]
        if memory:
            # outside the lock: a thousand page-table walks take a while
            for it in items:
                if it["pid"] and it["state"] in ("running", "stopping"):
                    it["memory"] = memory_of(it["pid"])
        return items

    def _summary(self, rec: Record, memory: bool = True) -> dict[str, Any]:
        """The instance as the API shows it; ``memory`` reads /proc/PID/smaps_rollup
        (a walk of the process's page tables: about a millisecond)."""
        proc = rec.proc
        pid = proc.pid if proc is not None else None
        out: dict[str, Any] = {
            "name": rec.name, "state": rec.state, "pid": pid,
            "uptime_s": round(time.monotonic() - rec.started_mono, 3) if rec.started_mono else None,
            "restarts": rec.restarts, "restart": rec.restart.to_json(), "limits": rec.limits.to_json(),
            "memory": memory_of(pid) if memory and pid and proc is not None and proc.ready else None,
            "last_exit": rec.last_exit, "control_socket": rec.control_path if proc is not None else None,
            "log": rec.log_path,
        }
        if rec.restart_at is not None:
            out["restart_in_s"] = round(max(0.0, rec.restart_at - time.monotonic()), 3)
        return out

    def show(self, name: str) -> dict[str, Any]:
        with self.lock:
            rec = self._get(name)
            out = self._summary(rec, memory=False)
            out["config"] = rec.config
            out["events"] = list(rec.events)
            out["isolation"] = rec.isolation
            out["problems"] = rec.problems
            out["cgroup"] = (self.cgroups.stats(rec.cgroup) if (self.cgroups and rec.cgroup) else None)
            out["boot"] = self._boot_timing(rec)
            running = rec.proc is not None and rec.proc.ready
        out["elements"] = None
        out["responsive"] = None
        if running and out["pid"]:
            out["memory"] = memory_of(out["pid"])
        if running:
            try:
                r = self._request(rec, {"op": "counts"}, timeout=min(1.0, self.cfg.request_timeout))
                out["elements"] = r.get("elements")
                out["responsive"] = True
            except ApiError as e:
                if e.status == 504:
                    out["responsive"] = False
        return out

    def _boot_timing(self, rec: Record) -> dict[str, Any] | None:
        t = rec.boot_times
        if not t or rec.launch_mono is None:
            return None

        def ms(a: float | None) -> float | None:
            return None if a is None else round((a - rec.launch_mono) * 1000, 3)  # type: ignore[operator]

        return {"source": rec.boot_source, "boot_message_ms": ms(t.get("boot")), "sandboxed_ms": ms(t.get("sandboxed")),
                "router_built_ms": ms(t.get("built")), "privileges_dropped_ms": ms(t.get("dropped")),
                "first_packet_ms": ms(rec.first_packet_mono)}

    def start_instance(self, name: str, wait: str = "ready") -> dict[str, Any]:
        t0 = time.monotonic()
        if wait not in WAIT_MODES:
            raise ApiError(400, f"wait must be one of {', '.join(WAIT_MODES)}")
        with self.lock:
            rec = self._get(name)
            if rec.proc is not None:
                raise ApiError(409, f"instance '{name}' is already running (state {rec.state})")
            rec.desired = "running"
            rec.restart_at = None
            rec.failures = 0
            self._launch(rec)
        try:
            timing = self._wait_boot(rec, wait, t0)
        except ApiError:
            with self.lock:
                rec.desired = "stopped"
            raise
        with self.lock:
            out = self._summary(rec, memory=False)
        out["timing"] = timing
        return out

    def stop_instance(self, name: str) -> dict[str, Any]:
        with self.lock:
            rec = self._get(name)
            rec.desired = "stopped"
            rec.restart_at = None
            proc = rec.proc
            if proc is None:
                if rec.state in ("backoff", "crashed", "exited", "failed", "created"):
                    rec.event("stopped")
                    rec.state = "stopped"
                return self._summary(rec)
            rec.state = "stopping"
            self._signal(proc, signal.SIGTERM)
        if proc.exit_waiter.wait(self.cfg.stop_grace) is _TIMEOUT:
            proc.killed = True
            self._signal(proc, signal.SIGKILL)
            proc.exit_waiter.wait(5)
        with self.lock:
            return self._summary(rec, memory=False)

    def destroy(self, name: str) -> None:
        with self.lock:
            rec = self._get(name)
        self.stop_instance(name)
        with self.lock:
            if self.records.get(name) is rec:
                self._drop(rec)
            old, rec.old_cgroup = rec.old_cgroup, None
        if old is not None and self.cgroups is not None:
            # gone when destroy returns, with anything its processes left behind
            self.cgroups.remove(old, timeout=2.0)

    def get_config(self, name: str) -> dict[str, Any]:
        with self.lock:
            rec = self._get(name)
            return {"name": name, "config": rec.config, "filename": rec.filename}

    def install(self, name: str, config: str, filename: str = "config") -> dict[str, Any]:
        if not isinstance(config, str):
            raise ApiError(400, "config (the configuration text) is required")
        with self.lock:
            rec = self._get(name)
        r = self._request(rec, {"op": "install", "config": config, "filename": filename},
                          timeout=max(self.cfg.request_timeout, self.cfg.boot_timeout))
        if not r.get("ok"):
            raise ApiError(400, "bad configuration", list(r.get("errors") or [r.get("error", "")]))
        with self.lock:
            rec.config = config
            rec.filename = filename
            rec.event("configuration installed")
            out = self._summary(rec, memory=False)
        out["warnings"] = r.get("warnings") or []
        return out

    def read_handler(self, name: str, handler: str, param: str = "") -> dict[str, Any]:
        with self.lock:
            rec = self._get(name)
        r = self._request(rec, {"op": "read", "handler": handler, "param": param})
        return self._handler_result(handler, r)

    def write_handler(self, name: str, handler: str, value: str) -> dict[str, Any]:
        with self.lock:
            rec = self._get(name)
        r = self._request(rec, {"op": "write", "handler": handler, "value": value})
        return self._handler_result(handler, r)

    @staticmethod
    def _handler_result(handler: str, r: dict[str, Any]) -> dict[str, Any]:
        if not r.get("ok"):
            msgs = list(r.get("messages") or [r.get("error", "handler error")])
            raise ApiError(422, msgs[0] if msgs else "handler error", msgs[1:], control_code=r.get("code"))
        out: dict[str, Any] = {"handler": handler, "code": r.get("code")}
        if "value" in r:
            out["value"] = r["value"]
        msgs = r.get("messages") or []
        if len(msgs) > 1:
            out["warnings"] = msgs[1:]
        return out

    def logs(self, name: str, tail: int | None = None, max_bytes: int = 1 << 20) -> str:
        with self.lock:
            rec = self._get(name)
            path = rec.log_path
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except FileNotFoundError:
            return ""
        text = data.decode("utf-8", "replace")
        if tail is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail:]) if tail > 0 else ""
        return text

    def _daemon_event(self, what: str, **info: Any) -> None:
        e = {"time": time.time(), "event": what}
        e.update(info)
        self.events.append(e)
