"""The native halves of :mod:`clickos.vm.pages` (numba, cached on disk).

They run without the interpreter, so that no Python object (and no page of
the heap) is written between copying a region and mapping the copy over it, or
between finding a page equal to the snapshot and dropping it.  Everything they
write (the text of ``/proc/self/maps``, pagemap entries, the table of
mappings) is in scratch memory outside the snapshot.

Linux only; the libc functions are resolved by name when the code is loaded.
"""

from __future__ import annotations

import mmap

import numba as nb
import numpy as np
from numba import types

_i64, _ip, _ic = types.int64, types.intp, types.intc
_read = types.ExternalFunction("read", _ip(_ic, _ip, _ip))
_pread = types.ExternalFunction("pread", _ip(_ic, _ip, _ip, _i64))
_pwrite = types.ExternalFunction("pwrite", _ip(_ic, _ip, _ip, _i64))
_ftruncate = types.ExternalFunction("ftruncate", _ic(_ic, _i64))
_mmap = types.ExternalFunction("mmap", _ip(_ip, _ip, _ic, _ic, _ic, _i64))
_madvise = types.ExternalFunction("madvise", _ic(_ip, _ip, _ic))
_memcmp = types.ExternalFunction("memcmp", _ic(_ip, _ip, _ip))
_memcpy = types.ExternalFunction("memcpy", _ip(_ip, _ip, _ip))
_sigmask = types.ExternalFunction("pthread_sigmask", _ic(_ic, _ip, _ip))

PAGE = mmap.PAGESIZE
SHIFT = PAGE.bit_length() - 1
CHUNK = 1024                        # pagemap entries read at a time
MAP_FIXED_PRIVATE = mmap.MAP_PRIVATE | 0x10
MADV_DONTNEED = 4
MADV_POPULATE_READ = 22             # Linux 5.14; ignored where unknown
# kinds of mapping (parse_maps)
K_PRIVATE_RW = 1                    # "rw?p"
K_FILE = 2                          # backed by a file: copy every page, not only those present
K_SKIP = 4                          # never snapshot (stack, kernel's, devices, VmFlags below)
K_OURS = 8                          # a mapping of the snapshot file
K_TAKEN = 16                        # taken into this snapshot
MAX_FILE_MAPPING = 64 << 20

_MEMFD = tuple(b"clickos-snapshot")
_HEAP = tuple(b"[heap]")
_ANON = tuple(b"[anon:")
_DEV = tuple(b"/dev/")
_MEMFD_PREFIX = tuple(b"/memfd:")
_VMFLAGS = tuple(b"VmFlags:")
# VmFlags of mappings not to touch: wipe-on-fork, don't-copy, I/O, PFN map,
# locked, stack guard, hugetlb
_SKIP_FLAGS = (b"wf", b"dc", b"io", b"pf", b"lo", b"gd", b"ht")
_SKIP_A = tuple(f[0] for f in _SKIP_FLAGS)
_SKIP_B = tuple(f[1] for f in _SKIP_FLAGS)


@nb.njit(cache=True, nogil=True)
def _at(text, i, n, pat):  # pragma: no cover - native
    if i + len(pat) > n:
        return False
    for k in range(len(pat)):
        if text[i + k] != pat[k]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _hex(text, i, n):  # pragma: no cover - native
    v = 0
    while i < n:
        c = text[i]
        if 48 <= c <= 57:
            v = v * 16 + (c - 48)
        elif 97 <= c <= 102:
            v = v * 16 + (c - 87)
        else:
            break
        i += 1
    return v, i


@nb.njit(cache=True, nogil=True)
def read_text(fd, text):  # pragma: no cover - native
    """Read the whole of ``fd`` (from offset 0) into ``text``; -1 if it does not fit."""
    n = 0
    cap = text.shape[0]
    addr = text.ctypes.data
    while n < cap:
        r = _pread(fd, addr + n, cap - n, n)
        if r < 0:
            return -1
        if r == 0:
            return n
        n += r
    return -1


@nb.njit(cache=True, nogil=True)
def parse_maps(text, n, rows):  # pragma: no cover - native
    """The mappings listed in ``/proc/self/maps`` or ``smaps`` text: rows of
    (start, end, file offset, prot, kind).  Returns how many, or -1."""
    nr = 0
    i = 0
    while i < n:
        c = text[i]
        eol = i
        while eol < n and text[eol] != 10:
            eol += 1
        if (48 <= c <= 57) or (97 <= c <= 102):
            if nr >= rows.shape[0]:
                return -1
            start, i = _hex(text, i, eol)
            end, i = _hex(text, i + 1, eol)
            i += 1
            if i + 5 > eol:
                return -1
            r, w, x, p = text[i], text[i + 1], text[i + 2], text[i + 3]
            off, i = _hex(text, i + 5, eol)
            for _ in range(2):            # device, inode
                while i < eol and text[i] == 32:
                    i += 1
                while i < eol and text[i] != 32:
                    i += 1
            while i < eol and text[i] == 32:
                i += 1
            kind = 0
            if r == 114 and w == 119 and p == 112:
                kind |= K_PRIVATE_RW
            if i < eol:
                if text[i] == 47:                           # "/..."
                    if _at(text, i, eol, _DEV) or _at(text, i, eol, _MEMFD_PREFIX):
                        kind |= K_SKIP
                    else:
                        kind |= K_FILE
                elif text[i] == 91:                         # "[...]"
                    if not (_at(text, i, eol, _HEAP) or _at(text, i, eol, _ANON)):
                        kind |= K_SKIP
                for k in range(i, eol - len(_MEMFD) + 1):
                    if _at(text, k, eol, _MEMFD):
                        kind |= K_OURS
                        break
            prot = (1 if r == 114 else 0) | (2 if w == 119 else 0) | (4 if x == 120 else 0)
            rows[nr, 0] = start
            rows[nr, 1] = end
            rows[nr, 2] = off
            rows[nr, 3] = prot
            rows[nr, 4] = kind
            nr += 1
        elif nr > 0 and _at(text, i, eol, _VMFLAGS):
            k = i + len(_VMFLAGS)
            while k + 1 < eol:
                if text[k] != 32 and text[k + 1] != 32:
                    for f in range(len(_SKIP_A)):
                        if text[k] == _SKIP_A[f] and text[k + 1] == _SKIP_B[f]:
                            rows[nr - 1, 4] |= K_SKIP
                    k += 2
                else:
                    k += 1
        i = eol + 1
    return nr


@nb.njit(cache=True, nogil=True)
def _write_all(fd, addr, n, off):  # pragma: no cover - native
    while n > 0:
        w = _pwrite(fd, addr, n, off)
        if w <= 0:
            return False
        addr += w
        off += w
        n -= w
    return True


@nb.njit(cache=True, nogil=True)
def take(smaps_fd, pmfd, memfd, text, ents, rows, have, limit):  # pragma: no cover - native
    """Snapshot every private writable mapping into ``memfd`` and map it there.

    Reads ``/proc/self/smaps`` (``smaps_fd``), gives each mapping taken a
    place in the file (``rows[:, 2]``, kind ``K_TAKEN``), copies its pages (all
    of a file-backed one, the present ones of an anonymous one; ``have`` marks
    the file pages written) and maps the file privately over it.  Returns
    (mappings converted, file size, rows), or (-1, 0, 0) with nothing
    changed (also when the file would be larger than ``limit``)."""
    n = read_text(smaps_fd, text)
    if n < 0:
        return -1, 0, 0
    nr = parse_maps(text, n, rows)
    if nr < 0:
        return -1, 0, 0
    size = 0
    for r in range(nr):
        # (a private writable mapping of a big file would be copied whole: left alone)
        if rows[r, 4] & K_FILE and rows[r, 1] - rows[r, 0] > MAX_FILE_MAPPING:
            continue
        if rows[r, 4] & (K_PRIVATE_RW | K_SKIP) == K_PRIVATE_RW:
            rows[r, 4] |= K_TAKEN
            rows[r, 2] = size
            size += rows[r, 1] - rows[r, 0]
    if size == 0 or size > limit or (size >> SHIFT) > have.shape[0] or _ftruncate(memfd, size) != 0:
        return -1, 0, 0
    buf = ents.ctypes.data
    done = 0
    for r in range(nr):
        if not rows[r, 4] & K_TAKEN:
            continue
        start = rows[r, 0]
        end = rows[r, 1]
        off = rows[r, 2]
        ok = True
        if rows[r, 4] & K_FILE:
            ok = _write_all(memfd, start, end - start, off)
            have[off >> SHIFT: (off + end - start) >> SHIFT] = 1
        else:
            npages = (end - start) >> SHIFT
            p = 0
            while p < npages and ok:
                k = min(CHUNK, npages - p)
                if _pread(pmfd, buf, k * 8, ((start >> SHIFT) + p) * 8) != k * 8:
                    ok = False
                    break
                i = 0
                while i < k:
                    if (ents[i] >> np.uint64(62)) == np.uint64(0):    # neither present nor swapped
                        i += 1
                        continue
                    j = i + 1
                    while j < k and (ents[j] >> np.uint64(62)) != np.uint64(0):
                        j += 1
                    a = start + (p + i) * PAGE
                    if not _write_all(memfd, a, (j - i) * PAGE, off + (a - start)):
                        ok = False
                        break
                    f = (off + (a - start)) >> SHIFT
                    have[f: f + j - i] = 1
                    i = j
                p += k
        if ok:
            ok = _mmap(start, end - start, rows[r, 3], MAP_FIXED_PRIVATE, memfd, off) == start
        if ok:
            done += 1
            # map what was there again (read-only, shared), so that children
            # inherit the page table entries instead of faulting each page in
            first = off >> SHIFT
            last = (off + end - start) >> SHIFT
            i = first
            while i < last:
                if not have[i]:
                    i += 1
                    continue
                j = i + 1
                while j < last and have[j]:
                    j += 1
                _madvise(start + ((i - first) << SHIFT), (j - i) << SHIFT, MADV_POPULATE_READ)
                i = j
        else:
            rows[r, 4] &= ~K_TAKEN
    return done, size, nr


# -- the interpreter's type attribute cache -------------------------------------------------------
#
# CPython 3.11 caches type attribute lookups in 4096 entries (version tag,
# name, value) in the interpreter state: each miss rewrites an entry and moves
# two names' reference counts (the cache holds a reference to its names), so
# an instance's boot leaves the cache's pages and a hundred or so pages of
# strings elsewhere copied.  Putting back the snapshot's entries makes all of
# them equal to the snapshot again (pages.TypeCache).

_ENTRY = 24                         # struct type_cache_entry: u32 version (+pad), name, value


@nb.njit(cache=True, nogil=True)
def pin_names(tcache, pinned, ents):  # pragma: no cover - native
    """Take a reference to the name of every entry of the type cache
    (``tcache``: its words, three an entry) for good, and list them, sorted,
    in ``pinned`` (one more slot than entries; the last one is kept as given:
    None's address).  Returns the number of entries."""
    n = tcache.shape[0] // 3
    if n + 1 > pinned.shape[0]:
        return 0
    buf = ents.ctypes.data
    for i in range(n):
        name = tcache[3 * i + 1]
        _memcpy(buf, name, 8)
        ents[0] += np.uint64(1)
        _memcpy(name, buf, 8)
        pinned[i] = name
    pinned[: n + 1].sort()
    return n


@nb.njit(cache=True, nogil=True)
def restore_types(tcache, pinned, view, rows, nr, have, ents):  # pragma: no cover - native
    """Put back the snapshot's entries of the type cache where they differ now;
    returns how many.

    An entry is only put back if its name is pinned (``pin_names``: alive
    for good) and if the cache's reference to the name there now is not its
    last (dropping it must not free anything): then the name there loses a
    reference and the snapshot's name gains one, as a cache miss would have
    done.  The entry stays correct: its value is only used while its type's
    version tag is the one in the entry, and tags are never given twice, so a
    type changed since (or a new type) never matches it."""
    n = tcache.shape[0] // 3
    if n == 0:
        return 0
    addr = tcache.ctypes.data
    size = n * _ENTRY
    fo = -1
    for r in range(nr):
        if (rows[r, 4] & (K_OURS | K_PRIVATE_RW) == (K_OURS | K_PRIVATE_RW)
                and rows[r, 0] <= addr and addr + size <= rows[r, 1]):
            fo = rows[r, 2] + (addr - rows[r, 0])
    if fo < 0:
        return 0
    for pg in range(fo >> SHIFT, ((fo + size - 1) >> SHIFT) + 1):
        if pg >= have.shape[0] or not have[pg]:
            return 0
    buf = ents.ctypes.data
    npin = pinned.shape[0]
    done = 0
    for i in range(n):
        _memcpy(buf, view + fo + i * _ENTRY, _ENTRY)         # the snapshot's entry: ents[0:3]
        if ents[0] == tcache[3 * i] and ents[1] == tcache[3 * i + 1] and ents[2] == tcache[3 * i + 2]:
            continue
        old = ents[1]
        now = tcache[3 * i + 1]
        k = np.searchsorted(pinned, old)
        if k >= npin or pinned[k] != old:
            continue
        _memcpy(buf + 24, now, 8)                            # its reference count: ents[3]
        if ents[3] <= np.uint64(1) or ents[3] >= np.uint64(1 << 62):
            continue
        ents[3] -= np.uint64(1)
        _memcpy(now, buf + 24, 8)
        _memcpy(buf + 24, old, 8)
        ents[3] += np.uint64(1)
        _memcpy(old, buf + 24, 8)
        tcache[3 * i] = ents[0]
        tcache[3 * i + 1] = old
        tcache[3 * i + 2] = ents[2]
        done += 1
    return done


@nb.njit(cache=True, nogil=True)
def reshare(maps_fd, pmfd, view, view_len, text, ents, rows, have, sigs, scratch, scratch_len,
            unmap, tcache, pinned):  # pragma: no cover - native
    """Drop this process's copies of snapshot pages that equal the file again.

    Only mappings of the snapshot file as ``/proc/self/maps`` lists them now
    are looked at, and only pages that are anonymous (copied), whose file page
    exists (``have``) and whose bytes are equal to it; with ``unmap``, the
    file's pages mapped here are let go too (they stay in the page cache,
    shared, and are mapped again when touched).  Signals are blocked
    meanwhile (``sigs``: room for two signal sets), so that no handler writes
    memory between a comparison and the drop.  The scratch memory is dropped
    at the end, and so are the pages of the file's view.  First, the type
    cache's entries are put back as in the snapshot (``restore_types``;
    ``tcache`` empty: not).  Returns the number of pages dropped, or -1."""
    for k in range(16):
        sigs[k] = -1
    if scratch_len > 0:
        _sigmask(0, sigs.ctypes.data, sigs.ctypes.data + 128)         # SIG_BLOCK, all
    n = read_text(maps_fd, text)
    nr = parse_maps(text, n, rows) if n >= 0 else -1
    if nr > 0:
        restore_types(tcache, pinned, view, rows, nr, have, ents)
    buf = ents.ctypes.data
    nhave = have.shape[0]
    dropped = 0
    for r in range(max(nr, 0)):
        if rows[r, 4] & (K_OURS | K_PRIVATE_RW) != (K_OURS | K_PRIVATE_RW):
            continue
        start = rows[r, 0]
        end = rows[r, 1]
        off = rows[r, 2]
        npages = (end - start) >> SHIFT
        p = 0
        while p < npages:
            k = min(CHUNK, npages - p)
            if _pread(pmfd, buf, k * 8, ((start >> SHIFT) + p) * 8) != k * 8:
                break
            run = -1
            for i in range(k + 1):
                same = False
                # present (bit 63), not swapped (62), anonymous (61 clear): a copy
                if i < k and (ents[i] >> np.uint64(61)) == np.uint64(4):
                    a = start + (p + i) * PAGE
                    fo = off + (a - start)
                    if (fo >> SHIFT) < nhave and have[fo >> SHIFT]:
                        same = _memcmp(a, view + fo, PAGE) == 0
                elif i < k and unmap and (ents[i] >> np.uint64(61)) == np.uint64(5):
                    same = True                                     # the file's page, mapped
                if same:
                    if run < 0:
                        run = i
                elif run >= 0:
                    if _madvise(start + (p + run) * PAGE, (i - run) * PAGE, MADV_DONTNEED) == 0:
                        dropped += i - run
                    run = -1
            p += k
    if scratch_len > 0:
        _sigmask(2, sigs.ctypes.data + 128, 0)                       # SIG_SETMASK, as it was
        _madvise(scratch, scratch_len, MADV_DONTNEED)
        _madvise(view, view_len, MADV_DONTNEED)   # what comparing mapped of the file: let it go
    return dropped if nr >= 0 else -1


# -- the fork server ---------------------------------------------------------------------------
#
# The zygote's last act in Python is to call serve(): it takes the snapshot
# there, and from then on answers the daemon without running any Python, so
# that its memory stays byte for byte the snapshot and every instance starts
# from the same pages (the snapshot file's, shared by all).  A child returns
# from serve() into the very Python frame that called it.

_poll = types.ExternalFunction("poll", _ic(_ip, _ip, _ic))
_recvmsg = types.ExternalFunction("recvmsg", _ip(_ic, _ip, _ic))
_send = types.ExternalFunction("send", _ip(_ic, _ip, _ip, _ic))
_fork = types.ExternalFunction("fork", _ic())
_waitpid = types.ExternalFunction("waitpid", _ic(_ic, _ip, _ic))
_close = types.ExternalFunction("close", _ic(_ic))
_signalfd = types.ExternalFunction("signalfd", _ic(_ic, _ip, _ic))
_readfd = types.ExternalFunction("read", _ip(_ic, _ip, _ip))

SERVE_CHILD = 1           # returned in a new child: the request is in the message area
SERVE_QUIT = 2            # the daemon said quit, or went away
SERVE_NO_SNAPSHOT = 3     # nothing could be taken: memory untouched, serve in Python
SERVE_FORK_FAILED = 4

# layout of the server's scratch memory (bytes)
_MSGHDR, _IOV, _CMSG, _POLL, _STATUS = 0, 64, 128, 256, 320
_SET_ALL, _SET_OLD, _SET_CHLD = 384, 512, 640
_REPLY, _SIGINFO, PIDS, _MSG = 768, 1024, 2048, 1 << 16
MSG = _MSG
MSG_CAP = 1 << 16
PIDS_CAP = (_MSG - PIDS) // 4
SERVE_SCRATCH = _MSG + MSG_CAP
_FORK = tuple(b'{"op":"fork"')
_QUIT = tuple(b'{"op":"quit"')
_ID = tuple(b'"id":')
_FORKED = tuple(b'{"op":"forked","id":')
_PID = tuple(b',"pid":')
_EXIT = tuple(b'{"op":"exit","pid":')
_STAT = tuple(b',"status":')


@nb.njit(cache=True, nogil=False)
def _put(b, at, pat):  # pragma: no cover - native
    for k in range(len(pat)):
        b[at + k] = pat[k]
    return at + len(pat)


@nb.njit(cache=True, nogil=False)
def _put_int(b, at, v):  # pragma: no cover - native
    if v < 0:
        b[at] = 45
        at += 1
        v = -v
    n = 1
    t = v
    while t >= 10:
        t //= 10
        n += 1
    for k in range(n - 1, -1, -1):
        b[at + k] = 48 + v % 10
        v //= 10
    return at + n


@nb.njit(cache=True, nogil=False)
def _send_exit(sock, b, pid, status):  # pragma: no cover - native
    at = _put(b, _REPLY, _EXIT)
    at = _put_int(b, at, pid)
    at = _put(b, at, _STAT)
    at = _put_int(b, at, status)
    b[at] = 125
    _send(sock, b.ctypes.data + _REPLY, at + 1 - _REPLY, 0x4000)  # MSG_NOSIGNAL


@nb.njit(cache=True, nogil=False)
def _reap(sock, b, d, npids):  # pragma: no cover - native
    base = b.ctypes.data
    pids = PIDS // 4
    while True:
        pid = _waitpid(-1, base + _STATUS, 1)                      # WNOHANG
        if pid <= 0:
            return npids
        for k in range(npids):
            if d[pids + k] == pid:
                npids -= 1
                d[pids + k] = d[pids + npids]
                break
        _send_exit(sock, b, pid, d[_STATUS // 4])


@nb.njit(cache=True, nogil=False)
def serve(smaps_fd, pmfd, memfd, text, ents, rows, have, view_size,
          sock, b, q, d, tcache, pinned, hello_len):  # pragma: no cover - native
    """Take the snapshot, say hello, then fork on request until told to quit.

    ``b``/``q``/``d`` are byte, int64 and int32 views of the server's scratch
    (``SERVE_SCRATCH`` bytes; the hello message in the message area,
    ``hello_len`` bytes).  Returns (SERVE_*, message length, first two
    descriptors); in the zygote, ``q[0]`` is then the number of children
    still running, their pids in the pid table (``d[PIDS:]``).  Right before
    the snapshot, the type cache's names are pinned (``pin_names``; ``tcache``
    empty: none)."""
    if hello_len < 0:                                              # compile/load only
        return SERVE_NO_SNAPSHOT, 0, -1, -1
    base = b.ctypes.data
    # No signal is handled while serving (a C handler would write memory, and
    # a lost write during the copy would lose a signal); child exits come
    # through a signalfd.
    for k in range(16):
        q[_SET_ALL // 8 + k] = -1
        q[_SET_CHLD // 8 + k] = 0
    q[_SET_CHLD // 8] = 1 << 16                                    # SIGCHLD (17)
    _sigmask(0, base + _SET_ALL, base + _SET_OLD)                  # SIG_BLOCK
    pin_names(tcache, pinned, ents)
    done, size, _nr = take(smaps_fd, pmfd, memfd, text, ents, rows, have, view_size)
    _close(memfd)
    _close(smaps_fd)
    _close(pmfd)
    if done <= 0:
        _sigmask(2, base + _SET_OLD, 0)
        return SERVE_NO_SNAPSHOT, 0, -1, -1
    sfd = _signalfd(-1, base + _SET_CHLD, 0o4000 | 0o2000000)      # SFD_NONBLOCK | SFD_CLOEXEC
    _send(sock, base + _MSG, hello_len, 0x4000)
    npids = 0
    pids = PIDS // 4
    npids = _reap(sock, b, d, npids)
    while True:
        d[_POLL // 4] = sock
        d[_POLL // 4 + 1] = 1                                      # POLLIN (events; revents = 0)
        d[_POLL // 4 + 2] = sfd
        d[_POLL // 4 + 3] = 1
        # (without a signalfd, look for exits ten times a second)
        if _poll(base + _POLL, 2 if sfd >= 0 else 1, -1 if sfd >= 0 else 100) < 0:
            continue
        if sfd < 0:
            npids = _reap(sock, b, d, npids)
        elif (d[_POLL // 4 + 3] >> 16) != 0:
            while _readfd(sfd, base + _SIGINFO, 1024) > 0:
                pass
            npids = _reap(sock, b, d, npids)
        if (d[_POLL // 4 + 1] >> 16) == 0:
            continue
        q[_MSGHDR // 8] = 0
        q[_MSGHDR // 8 + 1] = 0
        q[_MSGHDR // 8 + 2] = base + _IOV
        q[_MSGHDR // 8 + 3] = 1
        q[_MSGHDR // 8 + 4] = base + _CMSG
        q[_MSGHDR // 8 + 5] = 128
        q[_MSGHDR // 8 + 6] = 0
        q[_IOV // 8] = base + _MSG
        q[_IOV // 8 + 1] = MSG_CAP
        n = _recvmsg(sock, base + _MSGHDR, 0)
        if n <= 0:
            if n < 0:
                continue
            _sigmask(2, base + _SET_OLD, 0)                        # SIG_SETMASK
            if sfd >= 0:
                _close(sfd)
            q[0] = npids
            return SERVE_QUIT, 0, -1, -1
        # descriptors passed with it (SOL_SOCKET, SCM_RIGHTS)
        nfds = 0
        fd0 = -1
        fd1 = -1
        if q[_MSGHDR // 8 + 5] >= 16 and d[_CMSG // 4 + 2] == 1 and d[_CMSG // 4 + 3] == 1:
            nfds = (q[_CMSG // 8] - 16) // 4
            if nfds > 0:
                fd0 = d[_CMSG // 4 + 4]
            if nfds > 1:
                fd1 = d[_CMSG // 4 + 5]
        if _at(b, _MSG, _MSG + n, _QUIT):
            for k in range(nfds):
                _close(d[_CMSG // 4 + 4 + k])
            _sigmask(2, base + _SET_OLD, 0)
            if sfd >= 0:
                _close(sfd)
            q[0] = npids
            return SERVE_QUIT, 0, -1, -1
        if not (_at(b, _MSG, _MSG + n, _FORK) and nfds > 0):
            for k in range(nfds):
                _close(d[_CMSG // 4 + 4 + k])
            continue
        for k in range(2, nfds):
            _close(d[_CMSG // 4 + 4 + k])
        pid = _fork()
        if pid == 0:
            _close(sock)
            if sfd >= 0:
                _close(sfd)
            _sigmask(2, base + _SET_OLD, 0)
            return SERVE_CHILD, n, fd0, fd1
        _close(fd0)
        if fd1 >= 0:
            _close(fd1)
        if pid < 0:
            _sigmask(2, base + _SET_OLD, 0)
            if sfd >= 0:
                _close(sfd)
            q[0] = npids
            return SERVE_FORK_FAILED, 0, -1, -1
        if npids < PIDS_CAP:           # (beyond that, shutdown leaves them to PDEATHSIG)
            d[pids + npids] = pid
            npids += 1
        # the request's id, echoed
        at = _put(b, _REPLY, _FORKED)
        i = _MSG
        end = _MSG + n
        while i < end and not _at(b, i, end, _ID):
            i += 1
        i += len(_ID)
        if i < end and (b[i] == 45 or 48 <= b[i] <= 57):
            while i < end and (b[i] == 45 or 48 <= b[i] <= 57):
                b[at] = b[i]
                at += 1
                i += 1
        else:
            at = _put(b, at, (110, 117, 108, 108))                  # null
        at = _put(b, at, _PID)
        at = _put_int(b, at, pid)
        b[at] = 125
        _send(sock, base + _REPLY, at + 1 - _REPLY, 0x4000)


# -- practising a boot elsewhere -----------------------------------------------------------------

MADV_POPULATE_WRITE = 23            # Linux 5.14


@nb.njit(cache=True, nogil=True)
def copied(maps_fd, pmfd, text, ents, rows, runs):  # pragma: no cover - native
    """The pages of the snapshot this process has copied, as runs
    ``runs[i] = (start, pages)``; returns how many runs (at most ``len(runs)``)."""
    n = read_text(maps_fd, text)
    nr = parse_maps(text, n, rows) if n >= 0 else -1
    buf = ents.ctypes.data
    nruns = 0
    for r in range(max(nr, 0)):
        if rows[r, 4] & (K_OURS | K_PRIVATE_RW) != (K_OURS | K_PRIVATE_RW):
            continue
        start = rows[r, 0]
        npages = (rows[r, 1] - start) >> SHIFT
        p = 0
        while p < npages:
            k = min(CHUNK, npages - p)
            if _pread(pmfd, buf, k * 8, ((start >> SHIFT) + p) * 8) != k * 8:
                break
            i = 0
            while i < k:
                if (ents[i] >> np.uint64(61)) != np.uint64(4):
                    i += 1
                    continue
                j = i + 1
                while j < k and (ents[j] >> np.uint64(61)) == np.uint64(4):
                    j += 1
                a = start + (p + i) * PAGE
                if nruns > 0 and runs[nruns - 1, 0] + runs[nruns - 1, 1] * PAGE == a:
                    runs[nruns - 1, 1] += j - i
                elif nruns < runs.shape[0]:
                    runs[nruns, 0] = a
                    runs[nruns, 1] = j - i
                    nruns += 1
                i = j
            p += k
    return nruns


@nb.njit(cache=True, nogil=True)
def prefault(runs, n):  # pragma: no cover - native
    """Copy (without changing) the pages of ``runs[:n]``: write faults taken now.
    Returns the number of pages, or -1 if the kernel cannot (before 5.14)."""
    total = 0
    for i in range(n):
        if _madvise(runs[i, 0], runs[i, 1] * PAGE, MADV_POPULATE_WRITE) != 0:
            if total == 0 and i == 0:
                return -1
            continue
        total += runs[i, 1]
    return total
