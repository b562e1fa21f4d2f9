"""Keeping instances' memory shared with the zygote.

An instance is a fork of the zygote, so every page of the zygote is shared
with it until one of the two writes to it.  CPython writes all the time: each
reference taken or dropped writes the object's count, each call writes the
code object (warm-up and specialisation counters), each new object goes into
a free block of some pool.  A fresh instance, booting one router and then
sitting idle, copies about a thousand of the zygote's pages that way, and
about half of them end up, byte for byte, as they were in the zygote (a count
went up and down again; an object was made and freed).  Two things here keep
that down without the kernel's same-page merging:

:func:`fill_pools`
    In the zygote, just before it is frozen: fill every partly used pymalloc
    pool (and drain the tuple and float free lists) with ballast objects the
    zygote keeps, so that what an instance allocates goes into fresh pools,
    densely, instead of into holes spread over hundreds of shared pages.

:class:`Snapshot`
    The zygote copies its writable private memory into a sealed memfd and
    maps that file, privately, over the very same addresses (one native
    routine per region, so nothing can write between the copy and the
    ``mmap``).  The process sees the same bytes at the same addresses, but its
    memory is now a private mapping of a file; the pages the zygote and its
    instances have not written are the file's page cache, shared by all.  When
    a process has copied a page (written to it) and the page's bytes are equal
    to the file's again, :meth:`Snapshot.reshare` drops the copy with
    ``madvise(MADV_DONTNEED)``, which for a private file mapping means "read
    the file again": the process keeps seeing the same bytes, from the shared
    page.  The comparison and the ``madvise`` of a page happen in one native
    routine, with signals blocked, in a single-threaded process, so nothing can
    write to the page in between; and only pages still mapped from the
    snapshot file (checked against ``/proc/self/maps`` right before) are
    considered.  The file is sealed (no writes, no resizing), so its contents
    never change; the zygote closes its descriptor once mapped, so instances
    never hold it.

Both are best effort: if anything is missing (``memfd_create``, pagemap,
numba), the zygote runs as before.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import mmap
import os
import signal
from typing import Any

import numpy as np

PAGE = mmap.PAGESIZE
_SHIFT = PAGE.bit_length() - 1
_CHUNK = 1024                     # pagemap entries read at a time
_MEMFD_NAME = "clickos-snapshot"
_PROT = {"r": mmap.PROT_READ, "w": mmap.PROT_WRITE, "x": mmap.PROT_EXEC}
# Mappings never copied: the stack (grows down), the kernel's, and any that
# must not be inherited as they are (VmFlags: wipe-on-fork "wf", don't-copy
# "dc", I/O and PFN maps "io"/"pf", locked "lo").
_SKIP_NAMES = ("[stack", "[vvar", "[vdso", "[vsyscall", "[uprobes", "/dev/", "/memfd:")
_SKIP_FLAGS = {"wf", "dc", "io", "pf", "lo", "gd", "ht"}

_native: Any = None


def _load_native() -> Any:
    """Compile (or load from numba's cache) the two native routines."""
    global _native
    if _native is not None:
        return _native
    import numba as nb
    from numba import types

    i64, ip, ic = types.int64, types.intp, types.intc
    pread = types.ExternalFunction("pread", ip(ic, ip, ip, i64))
    pwrite = types.ExternalFunction("pwrite", ip(ic, ip, ip, i64))
    mmap_ = types.ExternalFunction("mmap", ip(ip, ip, ic, ic, ic, i64))
    madvise = types.ExternalFunction("madvise", ic(ip, ip, ic))
    memcmp = types.ExternalFunction("memcmp", ic(ip, ip, ip))
    page, shift, chunk = PAGE, _SHIFT, _CHUNK
    map_fixed_private = mmap.MAP_PRIVATE | 0x10  # MAP_FIXED
    dontneed = 4                                  # MADV_DONTNEED

    @nb.njit(cache=True, nogil=True)
    def write_all(fd, addr, n, off):  # pragma: no cover - native
        while n > 0:
            w = pwrite(fd, addr, n, off)
            if w <= 0:
                return False
            addr += w
            off += w
            n -= w
        return True

    @nb.njit(cache=True, nogil=True)
    def capture(regions, fd, pmfd, scratch, have):  # pragma: no cover - native
        """Copy each region's pages into ``fd`` at its offset, then map the file
        privately over it.  ``regions`` rows: start, end, file offset, prot,
        whole (copy every page, not only those present: file-backed data).
        ``have[file page]`` is set for each page written to the file (the rest
        are holes); ``scratch[chunk + r]`` gets 1 for each region converted.
        Both arrays must lie outside the regions.  Returns how many regions."""
        buf = scratch.ctypes.data
        done = 0
        for r in range(regions.shape[0]):
            start = regions[r, 0]
            end = regions[r, 1]
            off = regions[r, 2]
            ok = True
            if regions[r, 4]:
                ok = write_all(fd, start, end - start, off)
                have[off >> shift: (off + end - start) >> shift] = 1
            else:
                npages = (end - start) >> shift
                p = 0
                while p < npages and ok:
                    k = min(chunk, npages - p)
                    if pread(pmfd, buf, k * 8, ((start >> shift) + p) * 8) != k * 8:
                        ok = False
                        break
                    i = 0
                    while i < k:
                        if (scratch[i] >> np.uint64(62)) == np.uint64(0):  # neither present nor swapped
                            i += 1
                            continue
                        j = i + 1
                        while j < k and (scratch[j] >> np.uint64(62)) != np.uint64(0):
                            j += 1
                        a = start + (p + i) * page
                        if not write_all(fd, a, (j - i) * page, off + (a - start)):
                            ok = False
                            break
                        f = (off + (a - start)) >> shift
                        have[f: f + j - i] = 1
                        i = j
                    p += k
            if ok:
                ok = mmap_(start, end - start, regions[r, 3], map_fixed_private, fd, off) == start
            scratch[chunk + r] = 1 if ok else 0
            if ok:
                done += 1
        return done

    @nb.njit(cache=True, nogil=True)
    def reshare(regions, pmfd, view, scratch, have):  # pragma: no cover - native
        """For each page of ``regions`` (rows: start, end, file offset) that this
        process has copied and that equals the file's page, drop the copy.
        ``have`` says which file pages exist (comparing with a hole would fill
        it).  Returns the number of pages dropped."""
        buf = scratch.ctypes.data
        nhave = have.shape[0]
        dropped = 0
        for r in range(regions.shape[0]):
            start = regions[r, 0]
            end = regions[r, 1]
            off = regions[r, 2]
            npages = (end - start) >> shift
            p = 0
            while p < npages:
                k = min(chunk, npages - p)
                if pread(pmfd, buf, k * 8, ((start >> shift) + p) * 8) != k * 8:
                    break
                run = -1
                for i in range(k + 1):
                    same = False
                    # present (bit 63), not swapped (62), anonymous (61 clear): a copy
                    if i < k and (scratch[i] >> np.uint64(61)) == np.uint64(4):
                        a = start + (p + i) * page
                        fo = off + (a - start)
                        if (fo >> shift) < nhave and have[fo >> shift]:
                            same = memcmp(a, view + fo, page) == 0
                    if same:
                        if run < 0:
                            run = i
                    elif run >= 0:
                        if madvise(start + (p + run) * page, (i - run) * page, dontneed) == 0:
                            dropped += i - run
                        run = -1
                p += k
        return dropped

    _native = (capture, reshare)
    return _native


def _blocked() -> contextlib.AbstractContextManager[Any]:
    """Block every signal: no C signal handler may write memory during a native pass."""

    @contextlib.contextmanager
    def cm() -> Any:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    return cm()


def _private_writable() -> list[tuple[int, int, int, bool]]:
    """(start, end, prot, file-backed) of the mappings a snapshot takes."""
    out = []
    cur: list[Any] | None = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else ""
                lo, hi = (int(x, 16) for x in head.split("-"))
                perms = parts[1]
                ok = (perms[:2] == "rw" and perms[3] == "p" and not name.startswith(_SKIP_NAMES))
                prot = sum(_PROT[c] for c in perms[:3] if c in _PROT)
                cur = [lo, hi, prot, bool(name) and not name.startswith("["), ok]
                out.append(cur)
            elif head == "VmFlags:" and cur is not None:
                if _SKIP_FLAGS.intersection(line.split()[1:]):
                    cur[4] = False
    return [(lo, hi, prot, filed) for lo, hi, prot, filed, ok in out if ok]


class Snapshot:
    """The zygote's writable memory as a sealed, privately mapped file."""

    def __init__(self, view: int, size: int, native: Any, have: np.ndarray) -> None:
        self.view = view                # read-only shared mapping of the whole file
        self.size = size
        self.have = have                # per file page: 1 if written (else a hole)
        self._capture, self._reshare = native
        self._scratch = np.zeros(_CHUNK, np.uint64)
        self.pages_dropped = 0

    @classmethod
    def take(cls) -> Snapshot | None:
        """Snapshot this process's writable private memory; None if not possible."""
        if not (hasattr(os, "memfd_create") and os.path.exists("/proc/self/pagemap")):
            return None
        try:
            native = _load_native()
        except Exception:  # noqa: BLE001 - no numba: no snapshot
            return None
        # What the native routine writes must not be in the memory it copies:
        # a shared mapping is never taken.
        scratch = mmap.mmap(-1, 1 << 20)
        try:
            return cls._take(native, scratch)
        finally:
            scratch.close()

    @classmethod
    def _take(cls, native: Any, scratch: mmap.mmap) -> Snapshot | None:
        s64 = np.frombuffer(scratch, np.uint64, _CHUNK)
        done_at = np.frombuffer(scratch, np.uint64, offset=_CHUNK * 8)
        # compile (or load) the routines before listing the mappings: that allocates
        empty = np.zeros((0, 5), np.int64)
        native[0](empty, -1, -1, done_at, np.zeros(0, np.uint8))
        native[1](np.zeros((0, 3), np.int64), -1, 0, s64, np.zeros(0, np.uint8))
        fd = pmfd = -1
        have_map = None
        try:
            fd = os.memfd_create(_MEMFD_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            pmfd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
            regions = _private_writable()
            if not regions or len(regions) > len(done_at) - _CHUNK:
                return None
            rows = np.zeros((len(regions), 5), np.int64)
            size = 0
            for i, (lo, hi, prot, filed) in enumerate(regions):
                rows[i] = (lo, hi, size, prot, int(filed))
                size += hi - lo
            npages = size >> _SHIFT
            have_map = mmap.mmap(-1, max(npages, 1))
            have = np.frombuffer(have_map, np.uint8, npages)
            os.ftruncate(fd, size)
            with _blocked():
                done = native[0](rows, fd, pmfd, done_at, have)
            if done == 0:
                return None
            with contextlib.suppress(OSError, AttributeError):
                import fcntl

                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
                            | fcntl.F_SEAL_SEAL)
            view = _map_view(fd, size)
            if view is None:
                return None
            return cls(view, size, native, have.copy())
        finally:
            if fd >= 0:
                os.close(fd)
            if pmfd >= 0:
                os.close(pmfd)
            if have_map is not None:
                del have
                have_map.close()

    def regions(self) -> np.ndarray:
        """The mappings of the snapshot file as they are now: rows (start, end, offset)."""
        rows = []
        with open("/proc/self/maps") as f:
            text = f.read()
        i = text.find(_MEMFD_NAME)
        while i >= 0:
            bol = text.rfind("\n", 0, i) + 1
            parts = text[bol:i].split()
            if len(parts) >= 3 and parts[1] in ("rw-p", "rwxp"):
                lo, hi = parts[0].split("-")
                rows.append((int(lo, 16), int(hi, 16), int(parts[2], 16)))
            i = text.find(_MEMFD_NAME, i + len(_MEMFD_NAME))
        return np.array(rows, np.int64).reshape(-1, 3)

    def reshare(self) -> int:
        """Drop this process's copies of pages that equal the snapshot again;
        returns how many pages were dropped."""
        try:
            rows = self.regions()
            pmfd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return 0
        try:
            with _blocked():
                n = self._reshare(rows, pmfd, self.view, self._scratch, self.have)
        finally:
            os.close(pmfd)
        self.pages_dropped += n
        return n


def _map_view(fd: int, size: int) -> int | None:
    from clickos.vm import sandbox

    libc = sandbox.libc()
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        return None
    return int(addr)


# -- pools ------------------------------------------------------------------------------------

_POOL_SIZE = 1 << 14          # CPython 3.10+ on 64-bit: 16 KiB pools
_POOL_OVERHEAD = 48
_BALLAST: collections.deque[Any] = collections.deque()


class _PoolHeader(ctypes.Structure):
    _fields_ = [("count", ctypes.c_uint), ("_pad", ctypes.c_uint), ("freeblock", ctypes.c_void_p),
                ("nextpool", ctypes.c_void_p), ("prevpool", ctypes.c_void_p), ("arenaindex", ctypes.c_uint),
                ("szidx", ctypes.c_uint), ("nextoffset", ctypes.c_uint), ("maxnextoffset", ctypes.c_uint)]


def fill_pools() -> int:
    """Fill the partly used pymalloc pools (and the tuple and float free lists)
    with objects kept for good, so that objects made after a fork go into
    fresh pools.  Returns how many objects that took (0 if the allocator does
    not look like the one this knows)."""
    import sys

    if (sys.implementation.name != "cpython" or sys.version_info[:2] not in ((3, 10), (3, 11), (3, 12))
            or sys.getallocatedblocks() == 0):  # not pymalloc (PYTHONMALLOC=malloc)
        return 0
    hdr = _PoolHeader()
    haddr = ctypes.addressof(hdr)
    memmove = ctypes.memmove
    keep = _BALLAST.append
    n = 0

    def fresh(o: Any, szidx: int, size: int) -> bool:
        # a pool just taken into use: few blocks handed out (the object and the
        # loop's own temporaries), bump pointer near the start
        pool = id(o) & ~(_POOL_SIZE - 1)
        memmove(haddr, pool, ctypes.sizeof(hdr))
        if hdr.szidx != szidx:
            raise LookupError(szidx)
        return hdr.count <= 8 and hdr.nextoffset <= _POOL_OVERHEAD + 10 * size

    makers: list[tuple[int, Any]] = []
    for k in range(1, 21):  # tuples first: their free lists hold blocks of shared pools
        makers.append(((40 + 8 * k + 15) // 16 * 16, lambda k=k: tuple([None] * k)))
    makers.append((16, object))
    makers.append((32, lambda: 1.5 * len(_BALLAST)))
    for size in range(48, 513, 16):
        makers.append((size, lambda size=size: b"x" * (size - 33)))
    try:
        for size, make in makers:
            szidx = size // 16 - 1
            for _ in range(1 << 20):
                o = make()
                if fresh(o, szidx, size):
                    break
                keep(o)
                n += 1
    except LookupError:
        _BALLAST.clear()
        return 0
    return n
