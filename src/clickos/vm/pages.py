"""Keeping instances' memory shared with the zygote.

An instance is a fork of the zygote, so every page of the zygote is shared
with it until one of the two writes to it.  CPython writes all the time: each
reference taken or dropped writes the object's count, each call writes the
code object (reference count, warm-up and specialisation counters), each new
object goes into a free block of some pool, each attribute-cache miss writes
the cache and two names' counts.  Booting one router and sitting idle, an
instance used to copy ~1200 of the zygote's pages that way (4.9 MiB), about
half of which ended up byte for byte as they were (a count went up and came
down again).  What keeps that down, without the kernel's same-page merging:

:func:`fill_pools`, :func:`fill_malloc`, :func:`fill_numpy`
    In the zygote, before the snapshot: fill every partly used pymalloc pool
    (and drain the tuple and float free lists), take glibc's free heap chunks
    and empty numpy's caches of small blocks, with ballast the zygote keeps;
    what an instance allocates then goes into fresh pools and the top of the
    heap, densely, not into holes spread over hundreds of shared pages.

:func:`compact_code`
    The code objects an instance runs (found by profiling a practice boot,
    ``instance.hot_code``) are copied next to one another, those an idle
    instance has written (``instance.written_code``) first, in the order they
    run, and their functions given the copies: a boot's few hundred code
    objects, each written when run, then sit on a few dozen pages instead of
    hundreds.

:class:`TypeCache`
    The interpreter's type attribute cache: every miss in an instance writes
    an entry and two names' reference counts, copying the cache's pages and
    those of strings all over the heap.  Its names are pinned in the zygote
    right before the snapshot, and :meth:`Snapshot.reshare` first puts the
    snapshot's entries back (``pagesnative.restore_types``), which makes all
    of those pages equal to the snapshot again.

:class:`Snapshot`
    The zygote copies its writable private memory into a memfd and maps that
    file, privately, over the very same addresses (``pagesnative.take``: one
    native routine, so that nothing writes between the copy and the
    ``mmap``).  The process sees the same bytes at the same addresses, but its
    memory is now a private mapping of a file; pages no process has written
    are the file's page cache, shared by all.  The zygote takes the snapshot
    inside its fork server (``pagesnative.serve``) and from then on runs no
    Python: its memory stays the snapshot, every instance starts from exactly
    the file's pages, and nothing the zygote does between forks leaves an
    instance with copies.  When an instance has copied a page and the page's
    bytes equal the file's again, :meth:`Snapshot.reshare` drops the copy with
    ``madvise(MADV_DONTNEED)``, which for a private file mapping means "read
    the file again": same bytes, now from the shared page.  An idle instance
    (``unmap``) also lets go of the file's pages it has mapped: thousands
    since the fork, each counting a share in its PSS, where it uses a few
    dozen, which it maps again when it touches them.  The comparison
    and the ``madvise`` happen in one native routine with signals blocked, in
    a single-threaded process, so nothing writes to the page in between; only
    pages still mapped from the snapshot file (checked against
    ``/proc/self/maps`` in that routine) are considered; the file is written
    only by the capture, then its only writable descriptor is closed, and its
    view is mapped through a read-only one, so its contents never change.

:func:`practise`
    A pre-forked process takes the copy-on-write faults of a boot ahead of
    time by copying, unchanged, the pages a practice boot in a throwaway child
    copied: the boot that follows is as fast as if practised in place, and
    leaves nothing of the practice behind.

All of it is best effort: without ``memfd_create``, ``/proc/self/pagemap``
or numba the zygote forks from Python as before.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import mmap
import os
import signal
from collections.abc import Callable
from typing import Any

import numpy as np

_MEMFD_NAME = "clickos-snapshot"
_TEXT = 4 << 20                   # room for the text of /proc/self/smaps
_ROWS = 8192                      # mappings at most
_HAVE = 1 << 22                   # file pages at most (16 GiB of snapshot)

current: Snapshot | None = None   # the zygote's, inherited by every instance


class _Scratch:
    """Memory the native routines write: text, pagemap entries, mapping table."""

    def __init__(self, shared: bool) -> None:
        from clickos.vm import pagesnative as pn

        flags = (mmap.MAP_SHARED if shared else mmap.MAP_PRIVATE) | mmap.MAP_ANONYMOUS
        rows_at = _TEXT + pn.CHUNK * 8
        self.size = rows_at + _ROWS * 5 * 8 + 256
        self.map = mmap.mmap(-1, self.size, flags=flags)
        self.text = np.frombuffer(self.map, np.uint8, _TEXT)
        self.ents = np.frombuffer(self.map, np.uint64, pn.CHUNK, offset=_TEXT)
        self.rows = np.frombuffer(self.map, np.int64, _ROWS * 5, offset=rows_at).reshape(_ROWS, 5)
        self.sigs = np.frombuffer(self.map, np.int64, 32, offset=rows_at + _ROWS * 5 * 8)
        self.addr = self.text.ctypes.data

    def close(self) -> None:
        del self.text, self.ents, self.rows, self.sigs
        self.map.close()


class Capture:
    """What taking a snapshot needs, made beforehand (see :func:`prepare`):
    ``/proc/self/smaps`` and ``pagemap``, the file, and scratch memory that is
    shared (so never taken).  The native code closes the descriptors."""

    def __init__(self, smaps_fd: int, pagemap_fd: int, memfd: int) -> None:
        self.smaps_fd, self.pagemap_fd, self.memfd = smaps_fd, pagemap_fd, memfd
        self.scratch = _Scratch(shared=True)

    def release(self) -> None:
        """After the capture (in every process): unmap the scratch."""
        self.scratch.close()


class Snapshot:
    """The zygote's writable memory as a privately mapped file (see the module
    docstring).  Made by :func:`prepare` before the memory is taken, so that
    the processes that continue from the moment it is taken have it."""

    def __init__(self, view: int, view_size: int, have: mmap.mmap) -> None:
        self.view = view                  # the whole file, read-only, shared
        self.view_size = view_size
        self._have_map = have             # per file page: 1 if written (else a hole)
        self.have = np.frombuffer(have, np.uint8)
        self._pid = -1
        self._maps_fd = self._pagemap_fd = -1
        self._scratch: _Scratch | None = None
        self.pages_dropped = 0

    def attach(self) -> None:
        """Open this process's ``/proc`` files and scratch memory.  An instance
        calls this right after the fork, before dropping privileges: ``pagemap``
        cannot be opened again once the process is not dumpable."""
        if self._pid == os.getpid():
            return
        for fd in (self._maps_fd, self._pagemap_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)     # the parent's: about the parent's memory
        self._maps_fd = self._pagemap_fd = -1
        self._pid = os.getpid()
        try:
            self._maps_fd = os.open("/proc/self/maps", os.O_RDONLY | os.O_CLOEXEC)
            self._pagemap_fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        if self._scratch is None:
            # private: each process writes its own (and drops it after each pass)
            self._scratch = _Scratch(shared=False)

    def reshare(self, unmap: bool = False) -> int:
        """Drop this process's copies of pages that equal the snapshot again
        (and with ``unmap`` its mappings of the snapshot's own pages: see
        ``pagesnative.reshare``); returns how many pages were dropped."""
        from clickos.vm import pagesnative as pn

        self.attach()
        sc = self._scratch
        if self._pagemap_fd < 0 or sc is None:
            return 0
        n = pn.reshare(self._maps_fd, self._pagemap_fd, self.view, self.view_size, sc.text, sc.ents, sc.rows,
                       self.have, sc.sigs, sc.addr, sc.size, unmap, type_cache.words, type_cache.pinned)
        if n > 0:
            self.pages_dropped += n
        return max(n, 0)


def _map_view(fd: int, size: int) -> int:
    """mmap(fd) read-only and shared, ``size`` bytes (more than the file has yet)."""
    from clickos.vm import sandbox

    mm = sandbox.libc().mmap
    mm.restype = ctypes.c_void_p
    mm.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    addr = mm(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), "mmap")
    return int(addr)


@contextlib.contextmanager
def _signals_blocked() -> Any:
    """No C signal handler may write memory during a native pass."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


_ALL_SIGNALS = signal.valid_signals()


def load_native() -> bool:
    """Compile, or load from numba's cache, every native routine (see
    ``pagesnative``) with the argument types they are used with; False if
    they cannot be had (no numba)."""
    try:
        from clickos.vm import pagesnative as pn
    except Exception:  # noqa: BLE001 - no numba: no snapshot
        return False
    sc = _Scratch(shared=True)
    try:
        none8 = np.zeros(0, np.uint8)
        runs = np.zeros((0, 2), np.int64)
        pn.parse_maps(sc.text, 0, sc.rows)
        pn.take(-1, -1, -1, sc.text[:0], sc.ents, sc.rows[:0], none8, 0)
        none64 = np.zeros(0, np.uint64)
        pn.reshare(-1, -1, 0, 0, sc.text[:0], sc.ents, sc.rows[:0], none8, sc.sigs, 0, 0, False, none64, none64)
        pn.copied(-1, -1, sc.text[:0], sc.ents, sc.rows[:0], runs)
        pn.prefault(runs, 0)
        srv = np.zeros(64, np.uint8)
        pn.serve(-1, -1, -1, sc.text[:0], sc.ents, sc.rows[:0], none8, 0, -1, srv, srv.view(np.int64),
                 srv.view(np.int32), none64, none64, -1)
        pn.pin_names(none64, none64, sc.ents)
    finally:
        sc.close()
    return True


def prepare() -> tuple[Snapshot, Capture] | None:
    """Everything a snapshot needs, before taking it; None if not possible here.

    The snapshot itself is taken by native code: :func:`take` here, or the
    zygote's fork server (``pagesnative.serve``)."""
    if not (hasattr(os, "memfd_create") and os.path.exists("/proc/self/pagemap")):
        return None
    fds: list[int] = []
    try:
        if not load_native():
            return None
        # room for the file: twice what is writable and private now
        writable = 0
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 2)
                if parts[1][:2] == "rw" and parts[1][3] == "p":
                    lo, hi = parts[0].split("-")
                    writable += int(hi, 16) - int(lo, 16)
        size = min(2 * writable + (256 << 20), _HAVE * mmap.PAGESIZE)
        memfd = os.memfd_create(_MEMFD_NAME, os.MFD_CLOEXEC)
        fds.append(memfd)
        # the view through a read-only descriptor: no process can make it writable
        ro = os.open(f"/proc/self/fd/{memfd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            view = _map_view(ro, size)
        finally:
            os.close(ro)
        have = mmap.mmap(-1, _HAVE, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        fds.append(os.open("/proc/self/smaps", os.O_RDONLY | os.O_CLOEXEC))
        fds.append(os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC))
        cap = Capture(fds[1], fds[2], memfd)
        return Snapshot(view, size, have), cap
    except (OSError, ValueError):
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        return None


def take() -> Snapshot | None:
    """Take a snapshot of this process here and now (the zygote's fork server
    takes its own); None if not possible."""
    prep = prepare()
    if prep is None:
        return None
    snap, cap = prep
    from clickos.vm import pagesnative as pn

    sc = cap.scratch
    try:
        with _signals_blocked():
            done, _size, _nr = pn.take(cap.smaps_fd, cap.pagemap_fd, cap.memfd, sc.text, sc.ents, sc.rows,
                                       snap.have, snap.view_size)
    finally:
        for fd in (cap.smaps_fd, cap.pagemap_fd, cap.memfd):
            os.close(fd)
        cap.release()
    return snap if done > 0 else None


def practise(run: Callable[[], object]) -> int:
    """Take, ahead of time, the copy-on-write faults that ``run()`` would take.

    Without a snapshot, this runs ``run()`` here.  With one, ``run()`` runs in
    a throwaway child, which then lists the pages it copied; this process
    copies the same pages, unchanged (``MADV_POPULATE_WRITE``): a boot that
    follows finds them already private, as if it had been practised here, but
    nothing of the practice is left behind (its objects, its specialisation
    counters), so that the pages the boot leaves as they were can go back to
    the snapshot afterwards.  Returns the number of pages copied."""
    snap = current
    if snap is None:
        run()
        return 0
    from clickos.vm import pagesnative as pn

    cap = 4096
    shared = mmap.mmap(-1, (cap + 1) * 16, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    try:
        runs = np.frombuffer(shared, np.int64).reshape(-1, 2)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            rc = 1
            try:
                from clickos.vm import sandbox

                with contextlib.suppress(OSError):
                    sandbox.die_with_parent()
                if os.getppid() != parent:
                    os._exit(rc)
                run()
                snap.attach()
                sc = snap._scratch
                if sc is not None and snap._pagemap_fd >= 0:
                    runs[0, 0] = pn.copied(snap._maps_fd, snap._pagemap_fd, sc.text, sc.ents, sc.rows, runs[1:])
                    rc = 0
            finally:
                os._exit(rc)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            return 0
        n = pn.prefault(runs[1:], int(runs[0, 0]))
        del runs
        return max(n, 0)
    finally:
        with contextlib.suppress(BufferError):
            shared.close()


def attach() -> None:
    """In a new instance, right after the fork (see :meth:`Snapshot.attach`)."""
    if current is not None:
        current.attach()


def reshare(unmap: bool = False) -> int:
    """Hand back this process's unchanged copies (see :meth:`Snapshot.reshare`)."""
    return current.reshare(unmap) if current is not None else 0


# -- the type attribute cache ----------------------------------------------------------------------

_MCACHE_ENTRIES = 4096            # CPython 3.11: 1 << MCACHE_SIZE_EXP entries of 24 bytes


class TypeCache:
    """The interpreter's type attribute cache, as words (``words``: three an
    entry; empty where it is not known), and the names the zygote pinned in
    it before its snapshot (``pinned``, sorted).  See
    ``pagesnative.restore_types``: an instance puts the snapshot's entries
    back before handing pages back."""

    def __init__(self) -> None:
        self.words = np.zeros(0, np.uint64)
        self.pinned = np.zeros(0, np.uint64)

    def locate(self) -> bool:
        """Find the cache in this process (CPython 3.11 only); True if found.

        Each lookup of a name on a type puts an entry (version, name, value)
        into slot ``(version ^ (address of name >> 3)) % 4096``: looking up
        fresh names and finding them in the interpreter's memory gives the
        table's start, which every probe must agree on."""
        import sys

        if self.words.shape[0]:
            return True
        if (sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11)
                or hasattr(sys, "gettotalrefcount")):   # (a debug build counts references elsewhere too)
            return False
        try:
            runtime = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
        except (ValueError, AttributeError):
            return False
        region = None
        with open("/proc/self/maps") as f:
            for line in f:
                lo, hi = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
                if lo <= runtime < hi:
                    region = (lo, hi)
        if region is None:
            return False
        lo, hi = region
        size = _MCACHE_ENTRIES * 24

        class Probe:
            pass

        bases = set()
        names = [f"_clickos_probe_{k}_{id(Probe)}" for k in range(4)]
        for name in names:
            getattr(Probe, name, None)
            mem = ctypes.string_at(lo, hi - lo)
            key = id(name).to_bytes(8, "little")
            found = set()
            at = mem.find(key)
            while at >= 0:
                if at % 8 == 0 and at >= 8:
                    version = int.from_bytes(mem[at - 8: at - 4], "little")
                    slot = (version ^ (id(name) >> 3)) % _MCACHE_ENTRIES
                    found.add(lo + at - 8 - slot * 24)
                at = mem.find(key, at + 1)
            if len(found) != 1:
                return False
            bases |= found
        base = bases.pop() if len(bases) == 1 else 0
        if not base or base < lo or base + size > hi:
            return False
        words = np.ctypeslib.as_array((ctypes.c_uint64 * (3 * _MCACHE_ENTRIES)).from_address(base))
        # every entry names a str or None
        kinds = {id(str), id(type(None))}
        if not all(name and ctypes.c_void_p.from_address(int(name) + 8).value in kinds for name in words[1::3]):
            return False
        self.words = words
        self.pinned = np.zeros(_MCACHE_ENTRIES + 1, np.uint64)
        self.pinned[-1] = id(None)
        return True


type_cache = TypeCache()


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


def _heap() -> tuple[Any, int]:
    """glibc, and where the top chunk of its main heap starts (0: unknown)."""
    from clickos.vm import sandbox

    try:
        libc = sandbox.libc()
        info = libc.mallinfo2
    except (AttributeError, OSError):
        return None, 0

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost")]

    info.restype = _Mallinfo2
    libc.sbrk.restype = ctypes.c_void_p
    libc.sbrk.argtypes = [ctypes.c_ssize_t]
    return libc, max((libc.sbrk(0) or 0) - info().keepcost, 0)


def fill_malloc(limit: int = 200_000) -> int:
    """Take, and keep, the free chunks of glibc's main heap, so that what a
    child allocates with ``malloc`` comes from the top of the heap, densely,
    instead of from holes spread over shared pages.  Returns how many chunks
    that took (0 where this is not glibc)."""
    libc, top = _heap()
    if not top:
        return 0
    malloc, free = libc.malloc, libc.free
    malloc.restype = ctypes.c_void_p
    malloc.argtypes = [ctypes.c_size_t]
    free.argtypes = [ctypes.c_void_p]
    kept = np.zeros(limit, np.uint64)   # (large: mmapped and lazily zeroed, not on the heap)
    n = 0
    sizes = [1 << k for k in range(16, 10, -1)] + list(range(1024 - 16, 15, -16))
    for size in sizes:
        while n < limit:
            p = malloc(size)
            if not p:
                break
            if p >= top:
                free(p)
                break
            kept[n] = p
            n += 1
    _MALLOC_BALLAST.append(kept)
    return n


_NPY_DIMS, _NPY_DATA = 32, 16           # PyArrayObject_fields: dimensions, data
_NPY_CACHED_DIMS, _NPY_CACHED_DATA = 7, 1024    # (numpy's NBUCKETS_DIM 16: 2 * ndim < 16)


def fill_numpy() -> int:
    """Empty numpy's caches of freed small blocks (shapes and strides of up to
    seven dimensions, data under 1 KiB), keeping what they held.

    numpy hands such blocks out again before asking ``malloc``; a child's new
    arrays would then write blocks spread over the shared heap.  Run right
    after :func:`fill_malloc`: a block below the top of the heap can then only
    have come from a cache, and the first one from the top says the cache is
    empty (that one is kept too: freed, it would go back into the cache).
    Returns how many blocks came from the caches."""
    _libc, top = _heap()
    if not top:
        return 0
    keep = _BALLAST.append
    voidp = ctypes.c_void_p.from_address
    n = 0
    for nd in range(1, _NPY_CACHED_DIMS + 1):
        for _ in range(1 << 10):
            a = np.empty((1,) * nd, np.uint8)
            keep(a)
            if (voidp(id(a) + _NPY_DIMS).value or top) >= top:
                break
            n += 1
    for size in range(1, _NPY_CACHED_DATA):
        for _ in range(1 << 10):
            a = np.empty(size, np.uint8)
            keep(a)
            if (voidp(id(a) + _NPY_DATA).value or top) >= top:
                break
            n += 1
    return n


_MALLOC_BALLAST: list[Any] = []


def _fresh_str(s: str) -> str:
    """An equal string that is a new object (not the interned one)."""
    return ("." + s)[1:]


def compact_code(hot: list[Any], fresh_names: set[int] | frozenset[int] = frozenset()) -> int:
    """Copy the code objects in ``hot`` (the ones an instance runs, in the
    order it runs them) next to one another and give their functions, and
    the code objects they are nested in, the copies.

    Code nested in other code and in ``fresh_names`` (ids: the closures and
    lambdas an instance makes) also gets copies of its name and qualified
    name, made one after the other: each function made from it takes a
    reference to both, which would otherwise copy the pages of strings
    spread all over the heap.

    Running a function writes its code object (reference count, warm-up and
    specialisation counters), so each code object an instance runs costs it a
    copied page; spread over the modules they came from, a boot's few hundred
    code objects sit on as many pages, copied they fit on a few dozen.  The
    copies are new and unspecialised: warm them up again afterwards.  Returns
    how many code objects were copied."""
    import gc
    import types

    code_t = types.CodeType
    wanted = {id(c) for c in hot}
    nested = {id(k) for c in hot for k in c.co_consts if type(k) is code_t}
    for c in hot:
        # what replace() reads, and c caches: made now, not among the copies
        for attr in ("co_code", "co_varnames", "co_cellvars", "co_freevars"):
            getattr(c, attr)
    names: dict[int, tuple[str, str]] = {}
    for c in hot:
        if id(c) in nested and id(c) in fresh_names and c.co_name and c.co_qualname:
            names[id(c)] = (_fresh_str(c.co_name), _fresh_str(c.co_qualname))
    # (full size now: growing it would free and take heap blocks among the copies)
    new: dict[int, Any] = dict.fromkeys(wanted)

    def copy(c: Any) -> Any:
        # nested code first (the parent's copy must make the copies), then c
        done = new[id(c)]
        if done is None:
            consts = c.co_consts
            if any(type(k) is code_t and id(k) in wanted for k in consts):
                consts = tuple(copy(k) if type(k) is code_t and id(k) in wanted else k for k in consts)
            if id(c) in names:
                name, qualname = names[id(c)]
                done = c.replace(co_consts=consts, co_name=name, co_qualname=qualname)
            else:
                done = c.replace(co_consts=consts)
            new[id(c)] = done
        return done

    # in order, into fresh memory (pools and heap): the copies lie in that order
    fill_pools()
    fill_malloc()
    for c in hot:
        copy(c)
    by_code: dict[int, list[types.FunctionType]] = collections.defaultdict(list)
    for o in gc.get_objects():
        if type(o) is types.FunctionType and id(o.__code__) in wanted:
            by_code[id(o.__code__)].append(o)
    for cid, fs in by_code.items():
        for f in fs:
            f.__code__ = new[cid]
    return sum(1 for v in new.values() if v is not None)
