"""numba kernels for AggregateIPFlows and AggregateCounter.

Both elements keep their per-key state in numpy arrays indexed by the
open-addressing hash index of :mod:`clickos.packet.flowtable` (``slots`` maps a
``(k0, k1)`` key stored in ``K[e]`` to entry ``e``), so one compiled loop can
handle a whole batch.  A kernel handles the common case only; when a packet
needs the element's Python code (a new flow, a timeout, a fragment, a handler
call...) it stops and reports where (``P[P_RET_K]``) and why
(``P[P_RET_STATUS]``); the element handles that packet in Python and calls
the kernel again from the next one.

Annotations are written in the host's byte order on a little-endian host (the
32-bit aggregate annotation is stored byte by byte, least significant first).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from clickos.packet.flowtable import index_lookup, index_set

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)

# -- shared parameter slots -------------------------------------------------------------------
P_START = 0       # first packet index to process
P_RET_K = 1       # out: where the kernel stopped
P_RET_STATUS = 2  # out: why (ST_*)

ST_DONE, ST_SLOW, ST_REAP, ST_GROW = 0, 1, 2, 3

# -- AggregateIPFlows -------------------------------------------------------------------------
# per-flow columns of G
G_AGG = 0         # aggregate number
G_REV = 1         # 1 if the flow's first packet went from the larger address to the smaller
G_LAST = 2        # timestamp of the last packet (ns)
G_OVER = 3        # TCP FIN/RST bits (3 = done)
G_NCOLS = 4

F_ACTIVE_SEC = 3
F_GC_SEC = 4
F_SMALLEST = 5
F_TCP_TO = 6
F_TCP_DONE_TO = 7
F_UDP_TO = 8
F_ICMP = 9        # handle ICMP errors (those go to Python)
F_AGG_OFF = 10    # byte offset of the aggregate annotation
F_PAINT_OFF = 11  # byte offset of the paint annotation
F_NPARAMS = 12

_NS = 1_000_000_000


@_jit
def _le32(data: np.ndarray, s: int, at: int) -> np.uint64:
    return np.uint64(np.uint32(data[s, at]) | (np.uint32(data[s, at + 1]) << np.uint32(8))
                     | (np.uint32(data[s, at + 2]) << np.uint32(16)) | (np.uint32(data[s, at + 3]) << np.uint32(24)))


@_jit
def aggflows_batch(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray, th: np.ndarray,
                   ts: np.ndarray, anno: np.ndarray, idx: np.ndarray, out: np.ndarray, K: np.ndarray,
                   G: np.ndarray, slots: np.ndarray, P: np.ndarray) -> int:
    """AggregateIPFlows on packets ``idx[P_START:]``: known, live TCP/UDP flows get
    their aggregate and paint annotations (``out[k] = 0``), non-TCP/UDP packets
    ``out[k] = 1``.  Stops with ST_SLOW at a packet Python must handle, or with
    ST_REAP after a packet that makes the element due for a reap.  Returns -1 if
    it processed every packet from index 0 and all went to output 0, else 0.

    A flow's key: ``K[f, 0] = a << 32 | b`` (the two addresses as little-endian
    32-bit values, smaller first), ``K[f, 1] = mapid << 32 | ports`` (mapid 0 for
    TCP, 1 for UDP; ports as a little-endian 32-bit value, swapped when the
    packet goes from b to a)."""
    rowlen = data.shape[1]
    n = idx.shape[0]
    k = P[P_START]
    active_sec = P[F_ACTIVE_SEC]
    gc_sec = P[F_GC_SEC]
    smallest = P[F_SMALLEST]
    aoff = P[F_AGG_OFF]
    poff = P[F_PAINT_OFF]
    status = ST_DONE
    # A flow has timed out when psec - last // NS > max(SMALLEST, its timeout),
    # that is when last < (psec - max(...)) * NS: thresholds per packet time.
    tprev = np.int64(0)
    psec = np.int64(0)
    thr_udp = thr_tcp = thr_done = np.int64(0)
    lim_udp = max(smallest, P[F_UDP_TO])
    lim_tcp = max(smallest, P[F_TCP_TO])
    lim_done = max(smallest, P[F_TCP_DONE_TO])
    while k < n:
        s = idx[k]
        t = ts[s]
        if t == 0:
            status = ST_SLOW
            break
        if t != tprev:
            tprev = t
            psec = t // _NS
            thr_udp = (psec - lim_udp) * _NS
            thr_tcp = (psec - lim_tcp) * _NS
            thr_done = (psec - lim_done) * _NS
        ip = np.int64(nh[s])
        if ip < 0:
            out[k] = 1
        else:
            start = np.int64(off[s])
            end = start + length[s]
            if ip + 20 > end or end > rowlen:
                status = ST_SLOW
                break
            proto = data[s, ip + 9]
            frag = ((np.int64(data[s, ip + 6]) << 8) | np.int64(data[s, ip + 7])) & 0x3FFF
            if proto == 1 and (frag & 0x1FFF) == 0 and P[F_ICMP] != 0:
                status = ST_SLOW
                break
            if proto != 6 and proto != 17:
                out[k] = 1
            else:
                src = _le32(data, s, ip + 12)
                dst = _le32(data, s, ip + 16)
                if frag != 0 or src == dst:
                    status = ST_SLOW
                    break
                up = ip + ((np.int64(data[s, ip]) & 15) << 2)
                if up + 4 > end:
                    status = ST_SLOW
                    break
                ports = _le32(data, s, up)
                paint = 0
                if src < dst:
                    k0 = (src << np.uint64(32)) | dst
                else:
                    k0 = (dst << np.uint64(32)) | src
                    paint = 1
                    ports = ((ports >> np.uint64(16)) & np.uint64(0xFFFF)) \
                        | ((ports << np.uint64(16)) & np.uint64(0xFFFFFFFF))
                mapid = np.uint64(0) if proto == 6 else np.uint64(1)
                e = index_lookup(slots, K, k0, (mapid << np.uint64(32)) | ports)
                if e < 0:
                    status = ST_SLOW
                    break
                tcp = proto == 6
                tho = np.int64(th[s])
                over = G[e, G_OVER]
                if not tcp:
                    thr = thr_udp
                elif over == 3:
                    thr = thr_done
                else:
                    thr = thr_tcp
                if G[e, G_LAST] < thr:
                    status = ST_SLOW
                    break
                if tcp and tho >= 0:
                    if tho + 14 > rowlen:
                        status = ST_SLOW
                        break
                    if over == 3 and (data[s, tho + 13] & 0x02) != 0:
                        status = ST_SLOW
                        break
                if G[e, G_REV] != 0:
                    paint ^= 1
                agg = G[e, G_AGG]
                anno[s, aoff] = agg & 0xFF
                anno[s, aoff + 1] = (agg >> 8) & 0xFF
                anno[s, aoff + 2] = (agg >> 16) & 0xFF
                anno[s, aoff + 3] = (agg >> 24) & 0xFF
                anno[s, poff] = paint
                active_sec = psec
                G[e, G_LAST] = t
                if tcp and tho >= 0 and end - tho >= 14:
                    flags = data[s, tho + 13]
                    if flags & 0x04:
                        G[e, G_OVER] = 3
                    elif flags & 0x01:
                        G[e, G_OVER] = over | (1 << paint)
                    elif flags & 0x02:
                        G[e, G_OVER] = 0
                out[k] = 0
        k += 1
        if active_sec >= gc_sec:
            status = ST_REAP
            break
    P[F_ACTIVE_SEC] = active_sec
    P[P_RET_K] = k
    P[P_RET_STATUS] = status
    if status == ST_DONE and P[P_START] == 0:
        for i in range(n):
            if out[i] != 0:
                return 0
        return -1
    return 0


# -- AggregateCounter -------------------------------------------------------------------------
C_N = 3           # entries in use (in order of creation)
C_NNZ = 4         # nonzero counters
C_TOTAL = 5
C_CALL_NNZ = 6
C_CALL_COUNT = 7
C_FROZEN = 8
C_MODE = 9        # bit 0 BYTES, bit 1 IP_BYTES, bit 2 MULTIPACKET, bit 3 EXTRA_LENGTH
C_AGG_OFF = 10
C_XP_OFF = 11     # extra packets annotation offset
C_XL_OFF = 12     # extra length annotation offset
C_NPARAMS = 13
DENSE_MAX = 1 << 16   # aggregates below this are also indexed directly (D[agg] = entry)


@_jit
def _anno32(anno: np.ndarray, s: int, at: int) -> int:
    return (np.int64(anno[s, at]) | (np.int64(anno[s, at + 1]) << 8) | (np.int64(anno[s, at + 2]) << 16)
            | (np.int64(anno[s, at + 3]) << 24))


@_jit
def aggcount_batch(off: np.ndarray, length: np.ndarray, nh: np.ndarray, anno: np.ndarray, idx: np.ndarray,
                   out: np.ndarray, K: np.ndarray, C: np.ndarray, slots: np.ndarray, D: np.ndarray,
                   P: np.ndarray) -> int:
    """AggregateCounter on packets ``idx[P_START:]``: ``out[k]`` = 0 if counted, 1
    if not (frozen).  Stops with ST_SLOW *before* a packet that would trigger
    AGGREGATE_CALL or COUNT_CALL (its new, zero entry may already exist), or
    with ST_GROW before one that needs a new entry when the table is full.
    Entry ``e``: key ``K[e, 0]`` (``K[e, 1]`` = 0), count ``C[e]``; aggregates
    below ``len(D)`` are found through ``D`` (-1 = none), others through
    ``slots`` (which indexes every entry).  ST_GROW also stops before a new
    aggregate that ``D`` should grow to cover.  Returns -1
    if it counted every packet from index 0, else 0."""
    n = idx.shape[0]
    k = P[P_START]
    mode = P[C_MODE]
    frozen = P[C_FROZEN] != 0
    aoff = P[C_AGG_OFF]
    nent = P[C_N]
    nnz = P[C_NNZ]
    total = P[C_TOTAL]
    call_nnz = P[C_CALL_NNZ]
    call_count = P[C_CALL_COUNT]
    cap = K.shape[0]
    status = ST_DONE
    while k < n:
        s = idx[k]
        agg = _anno32(anno, s, aoff)
        dense = agg < D.shape[0]
        if dense:
            e = np.int64(D[agg])
        else:
            e = index_lookup(slots, K, np.uint64(agg), np.uint64(0))
        if e < 0:
            if frozen:
                out[k] = 1
                k += 1
                continue
            if nent >= cap or 2 * (nent + 1) > slots.shape[0] or (not dense and agg < DENSE_MAX):
                status = ST_GROW
                break
            e = nent
            K[e, 0] = np.uint64(agg)
            K[e, 1] = np.uint64(0)
            C[e] = 0
            index_set(slots, K, e)
            if dense:
                D[agg] = e
            nent += 1
            cur = 0
        else:
            cur = C[e]
            if frozen and cur == 0:
                out[k] = 1
                k += 1
                continue
        if mode & 1:
            amount = np.int64(length[s])
            if mode & 8:
                amount += _anno32(anno, s, P[C_XL_OFF])
            if (mode & 2) and nh[s] >= 0:
                amount -= np.int64(nh[s]) - np.int64(off[s])
            amount &= 0xFFFFFFFF
        else:
            amount = 1
            if mode & 4:
                amount += _anno32(anno, s, P[C_XP_OFF])
        if amount != 0 and cur == 0 and nnz >= call_nnz:
            status = ST_SLOW
            break
        if total + amount >= call_count:
            status = ST_SLOW
            break
        if amount != 0 and cur == 0:
            nnz += 1
        C[e] = (cur + amount) & 0xFFFFFFFF
        total += amount
        out[k] = 0
        k += 1
    P[C_N] = nent
    P[C_NNZ] = nnz
    P[C_TOTAL] = total
    P[P_RET_K] = k
    P[P_RET_STATUS] = status
    if status == ST_DONE and P[P_START] == 0:
        for i in range(n):
            if out[i] != 0:
                return 0
        return -1
    return 0


def warm() -> None:
    """Compile (or load from cache) the kernels once."""
    data = np.zeros((2, 64), np.uint8)
    z = np.zeros(2, np.int32)
    anno = np.zeros((2, 48), np.uint8)
    idx = np.zeros(1, np.int32)
    out = np.zeros(1, np.int64)
    K = np.zeros((4, 2), np.uint64)
    slots = np.full(16, -1, np.int32)
    P = np.zeros(F_NPARAMS, np.int64)
    P[F_GC_SEC] = 1 << 62
    aggflows_batch(data, z, z, z - 1, z - 1, np.zeros(2, np.int64), anno, idx, out, K,
                   np.zeros((4, G_NCOLS), np.int64), slots, P)
    P = np.zeros(C_NPARAMS, np.int64)
    P[C_CALL_NNZ] = P[C_CALL_COUNT] = 1 << 62
    aggcount_batch(z, z, z - 1, anno, idx, out, K, np.zeros(4, np.int64), slots, np.full(4, -1, np.int32), P)
