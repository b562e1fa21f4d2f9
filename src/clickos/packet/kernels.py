"""numba kernels over the packet pool.

Imported lazily (inside ``initialize`` of the elements that use them) so a
router without fast paths does not pay numba's import and compile time.  Every
kernel is compiled with ``cache=True``: the first run on a machine compiles and
stores machine code next to this file; later processes load it in milliseconds.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def alloc_fill(free: np.ndarray, nfree: int, n: int, data64: np.ndarray, off: np.ndarray,
               length: np.ndarray, ts: np.ndarray, anno64: np.ndarray, mac: np.ndarray, nh: np.ndarray,
               th: np.ndarray, ptype: np.ndarray, out: np.ndarray, tmpl64: np.ndarray, tlen: int,
               headroom: int, tstamp: int) -> int:
    """Pop ``n`` slots, give each a fresh copy of a template packet; returns new nfree.

    ``data64``/``anno64``/``tmpl64`` are uint64 views, so the copy moves 8 bytes
    a step; ``headroom`` must be a multiple of 8.
    """
    w0 = headroom >> 3
    nw = tmpl64.shape[0]
    na = anno64.shape[1]
    for i in range(n):
        # an unsigned slot number spares numba's negative-index fix-ups; the row
        # views let the copies compile to straight loops
        s = np.uintp(free[nfree - 1 - i])
        out[i] = s
        off[s] = headroom
        length[s] = tlen
        ts[s] = tstamp
        arow = anno64[s]
        for k in range(na):
            arow[k] = 0
        mac[s] = -1
        nh[s] = -1
        th[s] = -1
        ptype[s] = 0
        drow = data64[s, w0:w0 + nw]
        for k in range(nw):
            drow[k] = tmpl64[k]
    return nfree - n


@_jit
def sum_lengths(length: np.ndarray, idx: np.ndarray) -> int:
    t = 0
    for i in range(idx.shape[0]):
        t += length[idx[i]]
    return t


@_jit
def release(free: np.ndarray, nfree: int, idx: np.ndarray) -> int:
    for i in range(idx.shape[0]):
        free[nfree + i] = idx[i]
    return nfree + idx.shape[0]


@_jit
def release_sum(free: np.ndarray, nfree: int, idx: np.ndarray, length: np.ndarray) -> int:
    """``release`` and ``sum_lengths`` in one call: returns the packets' total
    length; the caller raises ``nfree`` by ``len(idx)``."""
    t = 0
    for i in range(idx.shape[0]):
        s = np.uintp(idx[i])
        free[nfree + i] = s
        t += length[s]
    return t


@_jit
def clone_slots(free: np.ndarray, nfree: int, idx: np.ndarray, out: np.ndarray, data: np.ndarray, off: np.ndarray,
                length: np.ndarray, ts: np.ndarray, anno64: np.ndarray, mac: np.ndarray, nh: np.ndarray,
                th: np.ndarray, ptype: np.ndarray) -> int:
    """Copy packets into fresh slots popped from the free stack; returns the new nfree.

    Copies the used part of each slot (headroom and data, not the unused tail) and
    every annotation.
    """
    for i in range(idx.shape[0]):
        s = idx[i]
        d = free[nfree - 1 - i]
        out[i] = d
        end = off[s] + length[s]
        for j in range(end):
            data[d, j] = data[s, j]
        off[d] = off[s]
        length[d] = length[s]
        ts[d] = ts[s]
        for k in range(anno64.shape[1]):
            anno64[d, k] = anno64[s, k]
        mac[d] = mac[s]
        nh[d] = nh[s]
        th[d] = th[s]
        ptype[d] = ptype[s]
    return nfree - idx.shape[0]


@_jit
def group_by_port(idx: np.ndarray, ports: np.ndarray, n: int, nout: int, sel: np.ndarray,
                  starts: np.ndarray) -> None:
    """Stable grouping of ``idx[:n]`` by ``ports[:n]`` in one kernel call.

    ``sel`` receives the slots of port 0, then port 1, ..., then those of ports
    outside [0, nout); ``starts[p]:starts[p + 1]`` is port ``p``'s range
    (``starts`` has nout + 2 entries, the last range being the dropped slots).
    """
    for p in range(nout + 2):
        starts[p] = 0
    for i in range(n):
        p = ports[i]
        if p < 0 or p >= nout:
            p = nout
        starts[p + 1] += 1
    for p in range(nout + 1):
        starts[p + 1] += starts[p]
    for i in range(n):
        p = ports[i]
        if p < 0 or p >= nout:
            p = nout
        sel[starts[p]] = idx[i]
        starts[p] += 1
    # each starts[p] is now port p's end, i.e. port p + 1's start: shift back
    for p in range(nout, 0, -1):
        starts[p] = starts[p - 1]
    starts[0] = 0


@_jit
def split_ports(idx: np.ndarray, ports: np.ndarray, nports: int, sel: np.ndarray, bounds: np.ndarray) -> int:
    """:func:`group_by_port`, unless every packet goes to the same port in
    ``[0, nports)``: that port is returned and ``sel``/``bounds`` are left
    untouched.  Otherwise returns -1 with the grouping done (``bounds`` has
    ``nports + 2`` entries)."""
    n = idx.shape[0]
    if n == 0:
        return -1
    p0 = ports[0]
    same = p0 >= 0 and p0 < nports
    for i in range(1, n):
        if ports[i] != p0:
            same = False
            break
    if same:
        return p0
    group_by_port(idx, ports, n, nports, sel, bounds)
    return -1


@_jit
def anno_equal(anno: np.ndarray, idx: np.ndarray, col: int, value: int, out: np.ndarray) -> int:
    """``out[i]`` = whether packet i's annotation byte ``col`` is ``value``;
    returns how many are."""
    n = 0
    for i in range(idx.shape[0]):
        e = anno[idx[i], col] == value
        out[i] = e
        n += e
    return n


def warm() -> None:
    """Compile (or load from cache) every kernel once, e.g. in a zygote."""
    free = np.arange(8, dtype=np.int32)
    d = np.zeros((8, 32), np.uint64)
    z32 = np.zeros(8, np.int32)
    out = np.zeros(2, np.int32)
    alloc_fill(free, 8, 2, d, z32.copy(), z32.copy(), np.zeros(8, np.int64), np.zeros((8, 6), np.uint64),
               z32.copy(), z32.copy(), z32.copy(), np.zeros(8, np.uint8), out, np.zeros(2, np.uint64), 16, 8, 0)
    sum_lengths(z32, out)
    release(free, 6, out)
    release_sum(free, 6, out, z32)
    split_ports(out, out, 2, out.copy(), np.zeros(4, np.int64))
    anno_equal(np.zeros((8, 48), np.uint8), out, 16, 1, np.zeros(2, np.bool_))
    split_ports(out, out.astype(np.int64), 2, out.copy(), np.zeros(4, np.int64))
