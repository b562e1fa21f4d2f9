"""Control groups for instances: memory, CPU and pids limits, on cgroup v1 or v2.

The daemon makes one cgroup per instance run, below a base group of its own
(``clickos-<daemon pid>``) that sits inside the cgroup the daemon itself was
started in, so the host's accounting of the daemon still covers its instances.
On cgroup v1 each controller has its own hierarchy (``/sys/fs/cgroup/memory``,
``…/pids``, ``…/cpu``); on v2 there is one tree and the controllers must be
enabled in the parents' ``cgroup.subtree_control``.

Whatever the host does not offer is reported by :meth:`CgroupManager.describe`
and simply not enforced; :mod:`clickos.vm.sandbox` falls back to rlimits where
it can.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass, field

CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _mountinfo() -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, super options) of each mount."""
    out = []
    try:
        lines = _read("/proc/self/mountinfo").splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        parts = left.split()
        rparts = right.split()
        if len(parts) < 5 or len(rparts) < 3:
            continue
        out.append((parts[4], rparts[0], rparts[2]))
    return out


def _own_cgroups() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    own: dict[str, str] = {}
    try:
        lines = _read("/proc/self/cgroup").splitlines()
    except OSError:
        return own
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        if not ctrls:
            own[""] = path
        for c in ctrls.split(","):
            own[c] = path
    return own


@dataclass
class CgroupSet:
    """One instance's cgroup directories, by controller."""

    name: str
    dirs: dict[str, str] = field(default_factory=dict)
    version: int = 1

    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid into to join (deduplicated)."""
        seen: list[str] = []
        for d in self.dirs.values():
            p = os.path.join(d, "cgroup.procs")
            if p not in seen:
                seen.append(p)
        return seen

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "dirs": dict(self.dirs), "version": self.version}


def join(procs_files: list[str], pid: int = 0) -> list[str]:
    """Move process ``pid`` (0: the caller) into each cgroup; returns the errors."""
    errors = []
    who = str(pid or os.getpid())
    for p in procs_files:
        try:
            _write(p, who)
        except OSError as e:
            errors.append(f"{p}: {e.strerror}")
    return errors


class CgroupManager:
    """Finds the usable controllers and makes, reads and removes instance cgroups."""

    def __init__(self, *, enabled: bool = True, tag: str | None = None) -> None:
        self.version = 0
        self.base: dict[str, str] = {}      # controller -> base directory (ours)
        self.problems: list[str] = []
        self.tag = tag or f"clickos-{os.getpid()}"
        if enabled:
            self._setup()
        else:
            self.problems.append("cgroups disabled")

    # -- discovery ------------------------------------------------------------------
    def _setup(self) -> None:
        mounts = _mountinfo()
        own = _own_cgroups()
        v1: dict[str, str] = {}
        v2_root = None
        for point, fstype, opts in mounts:
            if fstype == "cgroup":
                for c in CONTROLLERS:
                    if c in opts.split(",") and c not in v1:
                        v1[c] = point
            elif fstype == "cgroup2" and v2_root is None:
                v2_root = point
        if v1:
            self.version = 1
            for c, point in v1.items():
                parent = os.path.join(point, own.get(c, "/").lstrip("/"))
                self._remove_stale(parent)
                base = os.path.join(parent, self.tag)
                try:
                    os.makedirs(base, exist_ok=True)
                except OSError as e:
                    self.problems.append(f"{c}: cannot create {base}: {e.strerror}")
                    continue
                self.base[c] = base
            for c in CONTROLLERS:
                if c not in v1:
                    self.problems.append(f"{c}: controller not mounted")
            if "memory" in self.base:
                with contextlib.suppress(OSError):
                    _write(os.path.join(self.base["memory"], "memory.use_hierarchy"), "1")
            return
        if v2_root is not None:
            self._setup_v2(v2_root, own.get("", "/"))
            return
        self.problems.append("no cgroup filesystem mounted")

    def _setup_v2(self, root: str, own_path: str) -> None:
        try:
            available = _read(os.path.join(root, "cgroup.controllers")).split()
        except OSError as e:
            self.problems.append(f"cgroup2: {e.strerror}")
            return
        parent = os.path.join(root, own_path.lstrip("/"))
        self._remove_stale(parent)
        base = os.path.join(parent, self.tag)
        try:
            os.makedirs(base, exist_ok=True)
        except OSError as e:
            self.problems.append(f"cgroup2: cannot create {base}: {e.strerror}")
            return
        self.version = 2
        wanted = [c for c in CONTROLLERS if c in available]
        for c in CONTROLLERS:
            if c not in available:
                self.problems.append(f"{c}: not available in cgroup2")
        ok = []
        for c in wanted:
            try:
                # the parent must delegate the controller to us, then we to our children
                _write(os.path.join(parent, "cgroup.subtree_control"), f"+{c}")
                _write(os.path.join(base, "cgroup.subtree_control"), f"+{c}")
                ok.append(c)
            except OSError as e:
                self.problems.append(f"{c}: cannot enable in cgroup2 ({e.strerror})")
        for c in ok:
            self.base[c] = base
        if not ok:
            self.base[""] = base  # a tree without controllers still groups processes

    def _remove_stale(self, parent: str) -> None:
        """Remove base groups left by daemons that died without cleaning up
        (``clickos-PID`` whose PID is gone)."""
        try:
            entries = os.listdir(parent)
        except OSError:
            return
        for e in entries:
            if not e.startswith("clickos-") or e == self.tag:
                continue
            pid = e.removeprefix("clickos-")
            if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
                continue
            base = os.path.join(parent, e)
            with contextlib.suppress(OSError):
                for child in os.listdir(base):
                    d = os.path.join(base, child)
                    if os.path.isdir(d):
                        self.remove(CgroupSet(child, {"x": d}, self.version), timeout=0.5)
                os.rmdir(base)

    @property
    def available(self) -> list[str]:
        return [c for c in CONTROLLERS if c in self.base]

    def describe(self) -> dict[str, object]:
        return {"version": self.version, "controllers": self.available, "base": dict(self.base),
                "problems": list(self.problems)}

    # -- per instance -------------------------------------------------------------
    def create(self, name: str, *, memory_bytes: int | None = None, cpu_percent: float | None = None,
               pids: int | None = None) -> CgroupSet:
        """Make the instance's cgroups and write its limits (an existing one is reused)."""
        cg = CgroupSet(name, version=self.version)
        for c, base in self.base.items():
            d = os.path.join(base, name)
            with contextlib.suppress(FileExistsError):
                os.mkdir(d)
            cg.dirs[c] = d
        try:
            self.set_limits(cg, memory_bytes=memory_bytes, cpu_percent=cpu_percent, pids=pids)
        except OSError:
            self.remove(cg)
            raise
        return cg

    def set_limits(self, cg: CgroupSet, *, memory_bytes: int | None = None, cpu_percent: float | None = None,
                   pids: int | None = None) -> None:
        """Write limits into existing cgroups (processes may already be in them)."""
        if memory_bytes is not None and "memory" in cg.dirs:
            d = cg.dirs["memory"]
            if self.version == 1:
                _write(os.path.join(d, "memory.limit_in_bytes"), str(memory_bytes))
                with contextlib.suppress(OSError):
                    _write(os.path.join(d, "memory.memsw.limit_in_bytes"), str(memory_bytes))
            else:
                _write(os.path.join(d, "memory.max"), str(memory_bytes))
                with contextlib.suppress(OSError):
                    _write(os.path.join(d, "memory.swap.max"), "0")
        if pids is not None and "pids" in cg.dirs:
            _write(os.path.join(cg.dirs["pids"], "pids.max"), str(pids))
        if cpu_percent is not None and "cpu" in cg.dirs:
            quota = max(1000, int(CPU_PERIOD_US * cpu_percent / 100.0))
            d = cg.dirs["cpu"]
            if self.version == 1:
                _write(os.path.join(d, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
                _write(os.path.join(d, "cpu.cfs_quota_us"), str(quota))
            else:
                _write(os.path.join(d, "cpu.max"), f"{quota} {CPU_PERIOD_US}")

    def stats(self, cg: CgroupSet) -> dict[str, int]:
        """Counters telling whether a limit was hit (missing ones are left out)."""
        out: dict[str, int] = {}
        d = cg.dirs.get("memory")
        if d:
            if self.version == 1:
                for key, fname in (("memory_bytes", "memory.usage_in_bytes"),
                                   ("memory_peak_bytes", "memory.max_usage_in_bytes"),
                                   ("memory_limit_hits", "memory.failcnt")):
                    with contextlib.suppress(OSError, ValueError):
                        out[key] = int(_read(os.path.join(d, fname)))
                with contextlib.suppress(OSError, ValueError):
                    for line in _read(os.path.join(d, "memory.oom_control")).splitlines():
                        k, _, v = line.partition(" ")
                        if k == "oom_kill":
                            out["oom_kills"] = int(v)
            else:
                with contextlib.suppress(OSError, ValueError):
                    out["memory_bytes"] = int(_read(os.path.join(d, "memory.current")))
                with contextlib.suppress(OSError, ValueError):
                    out["memory_peak_bytes"] = int(_read(os.path.join(d, "memory.peak")))
                with contextlib.suppress(OSError, ValueError):
                    for line in _read(os.path.join(d, "memory.events")).splitlines():
                        k, _, v = line.partition(" ")
                        if k == "max":
                            out["memory_limit_hits"] = int(v)
                        elif k == "oom_kill":
                            out["oom_kills"] = int(v)
        d = cg.dirs.get("pids")
        if d:
            with contextlib.suppress(OSError, ValueError):
                out["pids"] = int(_read(os.path.join(d, "pids.current")))
            with contextlib.suppress(OSError, ValueError):
                for line in _read(os.path.join(d, "pids.events")).splitlines():
                    k, _, v = line.partition(" ")
                    if k == "max":
                        out["pids_limit_hits"] = int(v)
        d = cg.dirs.get("cpu")
        if d:
            with contextlib.suppress(OSError, ValueError):
                for line in _read(os.path.join(d, "cpu.stat")).splitlines():
                    k, _, v = line.partition(" ")
                    if k in ("nr_throttled", "throttled_time", "throttled_usec"):
                        out["cpu_" + k] = int(v)
        return out

    def procs(self, cg: CgroupSet) -> list[int]:
        """Every process still in the instance's cgroups."""
        pids: set[int] = set()
        for p in cg.procs_files():
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in _read(p).split())
        return sorted(pids)

    def kill_all(self, cg: CgroupSet, timeout: float = 2.0) -> None:
        """SIGKILL whatever is left in the cgroups (an instance's stray children)."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.procs(cg)
            if not left:
                return
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                return
            time.sleep(0.002)

    def remove(self, cg: CgroupSet, timeout: float = 2.0) -> bool:
        """Kill stragglers and remove the instance's cgroup directories."""
        self.kill_all(cg, timeout)
        ok = True
        for d in set(cg.dirs.values()):
            deadline = time.monotonic() + timeout
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    # EBUSY while the kernel finishes tearing down exited tasks
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        ok = False
                        break
                    time.sleep(0.002)
        return ok

    def close(self) -> None:
        """Remove our base groups (and anything left below them)."""
        for base in set(self.base.values()):
            try:
                children = [e for e in os.listdir(base) if os.path.isdir(os.path.join(base, e))]
            except OSError:
                children = []
            for child in children:
                self.remove(CgroupSet(child, {"x": os.path.join(base, child)}, self.version))
            for _ in range(200):
                try:
                    os.rmdir(base)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)
        self.base.clear()
