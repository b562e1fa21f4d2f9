"""Per-instance isolation: namespaces, cgroups, rlimits, credentials, no_new_privs.

An instance runs in a process forked from the zygote.  Before it runs any of
its configuration it is fenced in, in this order:

1. ``prepare`` (right after the fork, possibly long before the instance is
   assigned, for pre-forked processes): die with the zygote
   (``PR_SET_PDEATHSIG``), own network, UTS, IPC and mount namespaces
   (``unshare``; mounts made private so nothing propagates back), loopback up.
2. ``enter`` (once the instance's limits are known): join its cgroups (memory,
   CPU and pids limits, made by the daemon through :mod:`clickos.vm.cgroup`),
   set rlimits (open files, core dumps, CPU seconds, and the data segment when
   there is no memory cgroup), set the host name.
3. ``drop_privileges`` (after the router is built, so elements that need
   privileges can open what they need, as Click's privileged configure phase
   allows): switch to an unprivileged user id of its own, so instances cannot
   signal, trace or read one another, then ``PR_SET_NO_NEW_PRIVS`` and
   ``PR_SET_DUMPABLE 0``.

Python 3.11 has no ``os.unshare``, so the system calls go through ctypes.
Every step reports what it could not do instead of failing: the host decides
what is available, and the daemon shows it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import resource
import signal
import socket
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

from clickos.vm import cgroup

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
NAMESPACE_FLAGS = {"net": CLONE_NEWNET, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "mnt": CLONE_NEWNS}
DEFAULT_NAMESPACES = ("net", "uts", "ipc", "mnt")

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_THP_DISABLE = 41
PR_SET_MEMORY_MERGE = 67

MS_REC = 0x4000
MS_PRIVATE = 1 << 18

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc: Any = None


# The C functions instances call.  Looked up (and so cached in the CDLL
# object) when it is made, in the zygote: the first lookup of each in every
# instance would make a function object there, and grow the CDLL's dict.
_LIBC_FUNCTIONS = ("prctl", "unshare", "mount", "malloc_trim")


def libc() -> Any:
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        for name in _LIBC_FUNCTIONS:
            with contextlib.suppress(AttributeError):
                getattr(lib, name)
        _libc = lib
    return _libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> None:
    """prctl(2), raising OSError on failure."""
    _check(libc().prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4),
                        ctypes.c_ulong(arg5)), "prctl")


def unshare(flags: int) -> None:
    """unshare(2)."""
    _check(libc().unshare(flags), "unshare")


def set_process_name(name: str) -> None:
    """The name ``ps`` and ``top`` show (15 bytes at most)."""
    buf = _NAME_BUFFER()
    buf.value = name.encode()[:15]
    libc().prctl(PR_SET_NAME, buf, 0, 0, 0)


# One array type for every name, made once (here, in the zygote) and kept:
# ctypes holds array types only weakly, so an instance would make its own
# (a type, its dict and descriptors) for each name it sets.
_NAME_BUFFER = ctypes.c_char * 16


def disable_thp() -> None:
    """Stop transparent huge pages for this process and its children: a copy-on-write
    fault would otherwise copy 2 MiB where 4 KiB would do."""
    with contextlib.suppress(OSError):
        prctl(PR_SET_THP_DISABLE, 1)


def memory_merge() -> bool:
    """Let the kernel's same-page merging (KSM) share this process's identical
    anonymous pages, and its children's (Linux 6.4+; KSM must be running)."""
    try:
        prctl(PR_SET_MEMORY_MERGE, 1)
        return True
    except OSError:
        return False


def die_with_parent() -> None:
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def make_mounts_private() -> None:
    _check(libc().mount(b"none", b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None), "mount")


def loopback_up() -> None:
    """Bring ``lo`` up in a fresh network namespace (SIOCSIFFLAGS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = _IFREQ_FLAGS.pack(b"lo", 0)
        flags = _IFREQ_FLAGS.unpack(fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, _IFREQ_FLAGS.pack(b"lo", flags | IFF_UP))


# struct ifreq with ifr_flags; compiled here (in the zygote), not into the
# struct module's cache by every instance
_IFREQ_FLAGS = struct.Struct("16sH14x")


def parse_size(text: str | int | float) -> int:
    """``64M``, ``1.5G``, ``512k``, ``4096`` (bytes; binary multiples) -> bytes."""
    if isinstance(text, int | float):
        return int(text)
    s = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = 1
    for suffix, m in (("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40)):
        if s.endswith(suffix):
            s, mult = s[:-1], m
            break
    try:
        value = float(s)
    except ValueError:
        raise ValueError(f"bad size '{text}'") from None
    if value < 0:
        raise ValueError(f"bad size '{text}'")
    return int(value * mult)


@dataclass
class Limits:
    """What an instance may use.  None means "no limit"."""

    memory_bytes: int | None = None     # memory cgroup (RLIMIT_DATA headroom without one)
    cpu_percent: float | None = None    # CPU cgroup quota, percent of one CPU
    pids: int | None = None             # pids cgroup: processes and threads
    nofile: int = 256                   # RLIMIT_NOFILE
    cpu_seconds: int | None = None      # RLIMIT_CPU: SIGXCPU at this many CPU seconds

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Limits:
        """From the API's ``limits`` object: ``memory`` ("64M" or bytes), ``cpu``
        (percent), ``pids``, ``nofile``, ``cpu_seconds``.  Raises ValueError."""
        d = dict(d or {})
        lim = cls()
        if d.get("memory") is not None:
            lim.memory_bytes = parse_size(d.pop("memory"))
            if lim.memory_bytes < (4 << 20):
                raise ValueError("memory limit must be at least 4M")
        else:
            d.pop("memory", None)
        if d.get("cpu") is not None:
            lim.cpu_percent = float(d.pop("cpu"))
            if not 1 <= lim.cpu_percent <= 100 * (os.cpu_count() or 1):
                raise ValueError("cpu must be a percentage of one CPU, from 1")
        else:
            d.pop("cpu", None)
        for key in ("pids", "nofile", "cpu_seconds"):
            v = d.pop(key, None)
            if v is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{key} must be a positive integer")
            setattr(lim, key, v)
        if d:
            raise ValueError(f"unknown limit(s): {', '.join(sorted(d))}")
        return lim

    def to_json(self) -> dict[str, Any]:
        return {"memory": self.memory_bytes, "cpu": self.cpu_percent, "pids": self.pids,
                "nofile": self.nofile, "cpu_seconds": self.cpu_seconds}


@dataclass
class SandboxSpec:
    """Everything the child needs to fence itself in (sent by the daemon, as JSON)."""

    name: str
    limits: dict[str, Any] = field(default_factory=dict)
    cgroup_procs: list[str] = field(default_factory=list)
    memory_cgroup: bool = False
    uid: int | None = None
    gid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SandboxSpec:
        return cls(**d)


def prepare(namespaces: tuple[str, ...] | list[str] = DEFAULT_NAMESPACES,
            cgroup_procs: list[str] | None = None) -> list[str]:
    """Step 1 (right after fork): join the process's cgroups (first, so that all
    its memory is charged there), then namespaces.  Returns the isolation
    actually obtained (``cgroup``, ``net``, ``uts``, ...)."""
    got: list[str] = []
    with contextlib.suppress(OSError):
        die_with_parent()
    if cgroup_procs and not cgroup.join(cgroup_procs):
        got.append("cgroup")
    flags = 0
    for ns in namespaces:
        flags |= NAMESPACE_FLAGS.get(ns, 0)
    if flags:
        try:
            unshare(flags)
            got.extend(ns for ns in namespaces if ns in NAMESPACE_FLAGS)
        except OSError:
            # one at a time: take whatever the host allows
            for ns in namespaces:
                try:
                    unshare(NAMESPACE_FLAGS[ns])
                    got.append(ns)
                except (OSError, KeyError):
                    pass
    if "mnt" in got:
        try:
            make_mounts_private()
        except OSError:
            got.remove("mnt")
    if "net" in got:
        with contextlib.suppress(OSError):
            loopback_up()
    return got


def enter(spec: SandboxSpec) -> list[str]:
    """Step 2: cgroups, rlimits, host name.  Returns problems (empty when all went well)."""
    problems = cgroup.join(spec.cgroup_procs)
    lim = spec.limits
    try:
        n = int(lim.get("nofile") or 256)
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    except (OSError, ValueError) as e:
        problems.append(f"RLIMIT_NOFILE: {e}")
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if lim.get("cpu_seconds"):
        s = int(lim["cpu_seconds"])
        # the soft limit sends SIGXCPU (which kills: its default action); the hard one SIGKILL
        used = resource.getrusage(resource.RUSAGE_SELF)
        base = int(used.ru_utime + used.ru_stime)
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (base + s, base + s + 1))
        except (OSError, ValueError) as e:
            problems.append(f"RLIMIT_CPU: {e}")
    if lim.get("memory") and not spec.memory_cgroup:
        # No memory cgroup: cap the data segment instead, counted from what the
        # process already maps (the zygote's heap is in there).
        try:
            data_kb = 0
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmData:"):
                        data_kb = int(line.split()[1])
            cap = data_kb * 1024 + int(lim["memory"])
            resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
        except (OSError, ValueError) as e:
            problems.append(f"RLIMIT_DATA: {e}")
    with contextlib.suppress(OSError):
        socket.sethostname(spec.name[:64])
    return problems


def drop_privileges(spec: SandboxSpec) -> list[str]:
    """Step 3: own unprivileged user id, no new privileges, not dumpable."""
    problems: list[str] = []
    if spec.uid is not None and os.geteuid() == 0:
        gid = spec.gid if spec.gid is not None else spec.uid
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(spec.uid, spec.uid, spec.uid)
        except OSError as e:
            problems.append(f"setuid: {e.strerror}")
    try:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError as e:
        problems.append(f"no_new_privs: {e.strerror}")
    with contextlib.suppress(OSError):
        prctl(PR_SET_DUMPABLE, 0)
    # credential changes clear the parent-death signal: set it again
    with contextlib.suppress(OSError):
        die_with_parent()
    return problems


class KsmControl:
    """Kernel same-page merging, for ``clickos daemon --ksm``.

    Instances forked from one zygote touch the same objects in the same way,
    so most of the pages they copy on write end up identical; KSM finds them
    and shares them again.  Starting ``ksmd`` is a host-wide setting: it is
    changed only when asked, and put back as it was on :meth:`restore`.
    """

    PATH = "/sys/kernel/mm/ksm"

    def __init__(self) -> None:
        self.saved: dict[str, str] = {}

    def _read(self, name: str) -> str:
        with open(os.path.join(self.PATH, name)) as f:
            return f.read().strip()

    def _write(self, name: str, value: str) -> None:
        with open(os.path.join(self.PATH, name), "w") as f:
            f.write(value)

    @property
    def available(self) -> bool:
        return os.path.exists(os.path.join(self.PATH, "run"))

    def enable(self, pages_to_scan: int | None = None) -> str | None:
        """Start ksmd (and set its scan rate); returns a problem, or None."""
        try:
            if self._read("run") != "1":
                self.saved["run"] = self._read("run")
                self._write("run", "1")
            if pages_to_scan is not None:
                old = self._read("pages_to_scan")
                if old != str(pages_to_scan):
                    self.saved.setdefault("pages_to_scan", old)
                    self._write("pages_to_scan", str(pages_to_scan))
        except OSError as e:
            return f"ksm: {e.strerror}"
        return None

    def stats(self) -> dict[str, int]:
        out = {}
        for name in ("pages_shared", "pages_sharing", "full_scans", "pages_to_scan", "run"):
            with contextlib.suppress(OSError, ValueError):
                out[name] = int(self._read(name))
        return out

    def restore(self) -> None:
        for name in ("pages_to_scan", "run"):
            if name in self.saved:
                with contextlib.suppress(OSError):
                    self._write(name, self.saved.pop(name))
