"""Flow tables for the rewriter elements: open-addressing hash maps over numpy arrays.

A :class:`FlowTable` stores *flows*.  Flow ``f`` owns two *entries*, ``2f``
(the forward direction) and ``2f+1`` (the reply direction).  Each entry has a
key, the flow identifier a packet must carry to use it::

    K[e, 0] = saddr << 32 | daddr          (uint64, addresses in network order)
    K[e, 1] = mapid << 32 | sport << 16 | dport

``mapid`` separates maps that share one table (IPRewriter keeps TCP and UDP
flows apart this way).  The forward entry's key is the flow as it arrives; the
reply entry's key is the rewritten flow, reversed.  Rewriting a packet that
matched entry ``e`` means giving it the reverse of the *other* entry's key.

The hash index ``slots`` maps keys to entries with linear probing; deletion
shifts later entries back, so there are no tombstones.  Everything a packet
needs on the fast path sits in two arrays, ``K`` and the per-flow integer table
``F`` (see the ``C_*`` column numbers), so :func:`rewrite_batch` can look up
and rewrite a whole batch in one call.  The rewriter element keeps the
kernel's parameters, its results and the batch's output ports in one int64
*workspace* array (see the ``P_*`` constants and :func:`new_workspace`),
because every array argument adds to the cost of calling a numba kernel.

Expiry bookkeeping follows Click's rewriters: each flow is either
*guaranteed* (it may not be evicted before its expiry) or *best effort*.
Click keeps the two groups in heaps; here they are columns of ``F``, and the
rare operations that need the earliest-expiring flow (admission control when a
table is full, garbage collection, shrinking the capacity) scan the table with
a compiled loop.  A :class:`FlowHeap` is the set of tables that share one
capacity (``MAPPING_CAPACITY other_rewriter``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from clickos.packet.kernels import group_by_port  # noqa: F401 - used here and by the rewriters
from clickos.packet.netkernels import get16, put16, update_cksum

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)

# -- per-flow columns of F --------------------------------------------------------------------
C_EXPIRY = 0     # expiry time (jiffies, ms)
C_STAMP = 1      # order of the last expiry change (breaks ties between equal expiries)
C_IPD = 2        # IP header checksum delta
C_L4D = 3        # transport checksum delta
C_GUAR = 4       # 1 if guaranteed
C_TFLAGS = 5     # TCP/UDP connection state bits
C_RANNO = 6      # reply annotation value
C_HASDT = 7      # 1 if the TCP flow has sequence number deltas (handled in Python)
C_PROTO = 8      # IP protocol the flow was made for (0 = any)
C_OWNER = 9      # input port (input spec) that created the flow
C_LIVE = 10      # 1 while the flow exists
C_OUT0 = 11      # output of the forward entry
C_OUT1 = 12      # output of the reply entry
NCOLS = 13

# -- rewriter kinds ---------------------------------------------------------------------------
KIND_IP = 0       # IPRewriter: TCP flows (map 0, TCP timeouts) and UDP flows (map 1)
KIND_TCP = 1      # TCPRewriter: TCP only
KIND_UDP = 2      # UDPRewriter: TCP, UDP and DCCP, UDP-style state
KIND_ADDR = 3     # IPAddrRewriter: source address only
KIND_PAIR = 4     # IPAddrPairRewriter: address pairs
KIND_PING = 5     # ICMPPingRewriter: echo identifiers

# -- the workspace of rewrite_batch ----------------------------------------------------------
# Parameters, set when the element is configured:
P_KIND = 0
P_ANNOS = 1       # bit 0: set dst IP anno; bit 1: set reply anno; >> 2: its offset
P_T0 = 2          # best-effort timeout (TCP: no-data timeout)
P_T1 = 3          # guarantee (0 = none)
P_TCP_DATA = 4
P_TCP_DONE = 5
P_UDP_T0 = 6      # IPRewriter's UDP timeouts
P_UDP_T1 = 7
P_UDP_STREAM = 8  # streaming timeout (UDPRewriter: for all flows; IPRewriter: UDP)
P_NOUT = 9        # number of outputs (group_by_port's)
P_OUT = 10        # where the output ports begin: after the P_NOUT + 2 group starts
# Results of a call:
P_STAMP = 11      # the next stamp value
P_RET_K = 12      # where the kernel stopped
P_RET_ENTRY = 13  # with RET_SEQFIX, the entry applied to the packet
NPARAMS = 14
W_STARTS = NPARAMS  # where group_by_port's starts are

# rewrite_batch's return value when it stopped for Python (otherwise the batch's
# common output, -1 if all packets were dropped, or -2 if they go to several)
RET_MISS = -3     # a miss at W[P_RET_K] to resolve (the packet is untouched)
RET_SEQFIX = -4   # the packet at W[P_RET_K] was rewritten; fix its sequence numbers

ST_DONE, ST_MISS, ST_SEQFIX = 0, 1, 2

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def make_key(saddr: int, sport: int, daddr: int, dport: int, mapid: int = 0) -> tuple[int, int]:
    """The (K0, K1) key of a flow identifier (addresses as 32-bit ints, ports as
    16-bit ints in network byte order)."""
    return ((saddr & 0xFFFFFFFF) << 32) | (daddr & 0xFFFFFFFF), \
        ((mapid & 0xFFFFFFFF) << 32) | ((sport & 0xFFFF) << 16) | (dport & 0xFFFF)


def split_key(k0: int, k1: int) -> tuple[int, int, int, int, int]:
    """(saddr, sport, daddr, dport, mapid) of a key."""
    return (k0 >> 32) & 0xFFFFFFFF, (k1 >> 16) & 0xFFFF, k0 & 0xFFFFFFFF, k1 & 0xFFFF, k1 >> 32


# -- output split -----------------------------------------------------------------------------


# -- hash index kernels ----------------------------------------------------------------------


@_jit
def _hash(k0: np.uint64, k1: np.uint64, mask: int) -> int:
    h = k0 * np.uint64(0x9E3779B97F4A7C15)
    h ^= k1 * np.uint64(0xC2B2AE3D27D4EB4F) + np.uint64(0x165667B19E3779F9)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@_jit
def index_lookup(slots: np.ndarray, K: np.ndarray, k0: np.uint64, k1: np.uint64) -> int:
    """The entry with key (k0, k1), or -1."""
    mask = slots.shape[0] - 1
    i = _hash(k0, k1, mask)
    while True:
        e = slots[i]
        if e < 0:
            return -1
        if K[e, 0] == k0 and K[e, 1] == k1:
            return e
        i = (i + 1) & mask


@_jit
def index_set(slots: np.ndarray, K: np.ndarray, e: int) -> int:
    """Map entry ``e``'s key to ``e``; returns the entry it replaced, or -1."""
    mask = slots.shape[0] - 1
    k0 = K[e, 0]
    k1 = K[e, 1]
    i = _hash(k0, k1, mask)
    while True:
        x = slots[i]
        if x < 0:
            slots[i] = e
            return -1
        if K[x, 0] == k0 and K[x, 1] == k1:
            slots[i] = e
            return x
        i = (i + 1) & mask


@_jit
def index_erase(slots: np.ndarray, K: np.ndarray, e: int) -> bool:
    """Remove entry ``e``'s key if it currently maps to ``e``."""
    mask = slots.shape[0] - 1
    k0 = K[e, 0]
    k1 = K[e, 1]
    i = _hash(k0, k1, mask)
    while True:
        x = slots[i]
        if x < 0:
            return False
        if K[x, 0] == k0 and K[x, 1] == k1:
            if x != e:
                return False
            break
        i = (i + 1) & mask
    # backward-shift deletion: move later members of the probe run into the hole
    j = i
    while True:
        j = (j + 1) & mask
        y = slots[j]
        if y < 0:
            break
        h = _hash(K[y, 0], K[y, 1], mask)
        if i <= j:
            stays = i < h <= j
        else:
            stays = h > i or h <= j
        if stays:
            continue
        slots[i] = y
        i = j
    slots[i] = -1
    return True


@_jit
def index_rebuild(slots: np.ndarray, K: np.ndarray, entries: np.ndarray) -> None:
    """Insert ``entries`` (in order) into an empty ``slots`` array."""
    for k in range(entries.shape[0]):
        index_set(slots, K, entries[k])


@_jit
def probe_free(slots: np.ndarray, K: np.ndarray, k0: np.uint64, k1: np.uint64, base: int, start: int,
               top: int, napt: bool) -> int:
    """Search ``top + 1`` variations from ``start`` (wrapping) for one whose key is
    unused: the key is (k0, k1) with its destination port (``napt``) or destination
    address replaced by ``base + variation``.  Returns the variation or -1."""
    val = start
    for _ in range(top + 1):
        if napt:
            kk0 = k0
            kk1 = (k1 & np.uint64(0xFFFFFFFFFFFF0000)) | np.uint64((base + val) & 0xFFFF)
        else:
            kk0 = (k0 & np.uint64(0xFFFFFFFF00000000)) | np.uint64((base + val) & 0xFFFFFFFF)
            kk1 = k1
        if index_lookup(slots, K, kk0, kk1) < 0:
            return val
        val = 0 if val == top else val + 1
    return -1


@_jit
def earliest(F: np.ndarray, n: int, guaranteed: int) -> int:
    """The live flow in rows [0, n) of the given class with the smallest (expiry,
    stamp), or -1."""
    best = -1
    bexp = 0
    bst = 0
    for f in range(n):
        if F[f, C_LIVE] == 0 or F[f, C_GUAR] != guaranteed:
            continue
        ex = F[f, C_EXPIRY]
        st = F[f, C_STAMP]
        if best < 0 or ex < bexp or (ex == bexp and st < bst):
            best = f
            bexp = ex
            bst = st
    return best


# -- the batch kernel ------------------------------------------------------------------------


@intrinsic
def _store_be(typingctx: Any, data: Any, s: Any, i: Any, v: Any, nbytes: Any) -> Any:
    """``data[s, i:i + nbytes] = v`` in network byte order, as one unaligned store.

    numba writes ``data[s, i] = ...`` byte by byte, and LLVM does not merge the
    bytes of a rewritten address back into one store.  There is no wraparound
    or bounds check: callers pass validated, non-negative ``s`` and ``i``.
    ``nbytes`` must be a literal 2, 4 or 8.
    """
    if not isinstance(nbytes, types.IntegerLiteral) or nbytes.literal_value not in (2, 4, 8):
        return None
    width = 8 * nbytes.literal_value
    sig = types.void(data, s, i, v, nbytes)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        inds = [context.cast(builder, args[k], signature.args[k], types.intp) for k in (1, 2)]
        ptr = cgutils.get_item_pointer2(context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
                                        cgutils.unpack_tuple(builder, ary.strides), aryty.layout, inds)
        ity = ir.IntType(width)
        val = context.cast(builder, args[3], signature.args[3], types.int64)
        if width < 64:
            val = builder.trunc(val, ity)
        builder.store(builder.bswap(val), builder.bitcast(ptr, ity.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


@_jit
def _update(data: np.ndarray, s: int, at: int, direction: int, delta: int) -> None:
    """Click's update_csum: fold a precomputed delta into the checksum at ``at``."""
    if delta != 0:
        d = delta if direction else (~delta) & 0xFFFF
        put16(data, s, at, update_cksum(get16(data, s, at), 0, d))


@_jit
def _inc16(v: int) -> int:
    """Add one to a 16-bit field as stored in memory on a little-endian host (Click
    derives ICMP echo flow ports this way)."""
    raw = ((v & 0xFF) << 8) | (v >> 8)
    raw = (raw + 1) & 0xFFFF
    return ((raw & 0xFF) << 8) | (raw >> 8)


# Packets of one call are processed in chunks: phase 1 validates and looks up a
# chunk's packets, phase 2 rewrites them in order.  Phase 1's lookups do not
# depend on each other, so the CPU overlaps their cache misses (the index and
# the keys are too big for L1).  A call that stops on a miss has looked up the
# rest of its chunk for nothing (the table changes before it resumes), so
# the first chunk of a resumed call (they come in runs while new flows
# arrive) is short.
_CHUNK = 64
_CHUNK_RESUMED = 4


@_jit
def _rewrite_generic(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
                     th: np.ndarray, anno: np.ndarray, idx: np.ndarray, out: np.ndarray,
                     K: np.ndarray, F: np.ndarray, slots: np.ndarray, W: np.ndarray, now: int,
                     stamp: int, k: int, force: int, pass_out: int, miss_out: int) -> tuple[int, int, int]:
    """rewrite_batch's loop for any kind of rewriter, writing the ports to ``out``:
    the one for the kinds other than the NAPT ones (and for slot rows of 32 KiB or
    more); returns (where it stopped, ST_*, next stamp)."""
    kind = W[P_KIND]
    annos = W[P_ANNOS]
    rowlen = data.shape[1]
    n = idx.shape[0]
    status = ST_DONE
    while k < n:
        s = idx[k]
        start = np.int64(off[s])
        end = start + length[s]
        ip = np.int64(nh[s])
        if ip < 0 or ip < start or ip + 20 > end or end > rowlen:
            out[k] = pass_out
            k += 1
            continue
        proto = np.int64(data[s, ip + 9])
        firstfrag = (get16(data, s, ip + 6) & 0x1FFF) == 0
        t = np.int64(th[s])
        if t < ip:
            t = ip + ((np.int64(data[s, ip]) & 15) << 2)
        tlen = end - t
        saddr = np.uint64((get16(data, s, ip + 12) << 16) | get16(data, s, ip + 14))
        daddr = np.uint64((get16(data, s, ip + 16) << 16) | get16(data, s, ip + 18))
        k0 = (saddr << np.uint64(32)) | daddr
        k1 = np.uint64(0)
        alt0 = np.uint64(0)
        echo = False
        napt = kind == KIND_IP or kind == KIND_TCP or kind == KIND_UDP
        if napt:
            if kind == KIND_IP:
                ok = proto == 6 or proto == 17
            elif kind == KIND_TCP:
                ok = proto == 6
            else:
                ok = proto == 6 or proto == 17 or proto == 33
            if not ok or not firstfrag or tlen < 8:
                out[k] = pass_out
                k += 1
                continue
            mapid = np.uint64(1) if (kind == KIND_IP and proto == 17) else np.uint64(0)
            k1 = (mapid << np.uint64(32)) | np.uint64((get16(data, s, t) << 16) | get16(data, s, t + 2))
        elif kind == KIND_ADDR:
            k0 = saddr << np.uint64(32)
            alt0 = daddr
        elif kind == KIND_PAIR:
            pass
        else:  # KIND_PING
            if proto != 1 or not firstfrag or tlen < 6:
                out[k] = pass_out
                k += 1
                continue
            typ = data[s, t]
            if typ != 8 and typ != 0:
                out[k] = pass_out
                k += 1
                continue
            echo = typ == 8
            ident = get16(data, s, t + 4)
            if echo:
                k1 = np.uint64((ident << 16) | _inc16(ident))
            else:
                k1 = np.uint64((_inc16(ident) << 16) | ident)

        if force >= 0:
            e = force
            force = -1
        else:
            e = index_lookup(slots, K, k0, k1)
            if e < 0 and kind == KIND_ADDR:
                e = index_lookup(slots, K, alt0, np.uint64(0))
        if e < 0:
            if kind == KIND_PING and not echo:
                out[k] = pass_out
                k += 1
                continue
            if miss_out == -2:
                status = ST_MISS
                break
            out[k] = miss_out
            k += 1
            continue

        f = e >> 1
        d = e & 1
        r = e ^ 1
        rsaddr = np.int64(K[r, 0] >> np.uint64(32))
        rdaddr = np.int64(K[r, 0] & np.uint64(0xFFFFFFFF))
        rsport = np.int64((K[r, 1] >> np.uint64(16)) & np.uint64(0xFFFF))
        rdport = np.int64(K[r, 1] & np.uint64(0xFFFF))

        # IP header
        if kind == KIND_ADDR:
            if d == 0:
                put16(data, s, ip + 12, rdaddr >> 16)
                put16(data, s, ip + 14, rdaddr & 0xFFFF)
            else:
                put16(data, s, ip + 16, rsaddr >> 16)
                put16(data, s, ip + 18, rsaddr & 0xFFFF)
                if annos & 1:
                    for b in range(4):
                        anno[s, b] = (rsaddr >> (24 - 8 * b)) & 0xFF
                if annos & 2:
                    anno[s, annos >> 2] = F[f, C_RANNO]
        else:
            put16(data, s, ip + 12, rdaddr >> 16)
            put16(data, s, ip + 14, rdaddr & 0xFFFF)
            put16(data, s, ip + 16, rsaddr >> 16)
            put16(data, s, ip + 18, rsaddr & 0xFFFF)
            if annos & 1:
                for b in range(4):
                    anno[s, b] = (rsaddr >> (24 - 8 * b)) & 0xFF
            if d == 1 and (annos & 2):
                anno[s, annos >> 2] = F[f, C_RANNO]
        _update(data, s, ip + 10, d, F[f, C_IPD])

        l4d = F[f, C_L4D]
        udp_style = kind == KIND_UDP or (kind == KIND_IP and proto == 17)
        if napt and not udp_style:
            # TCP flow
            if firstfrag and tlen >= 18:
                put16(data, s, t, rdport)
                put16(data, s, t + 2, rsport)
                _update(data, s, t + 16, d, l4d)
                off4 = np.int64(data[s, t + 12] >> 4)
                ihl = np.int64(data[s, ip]) & 15
                payload = ((ihl + off4) << 2) < get16(data, s, ip + 2)
                flags = data[s, t + 13]
                tf = F[f, C_TFLAGS]
                if flags & 0x04:
                    tf |= 3
                elif flags & 0x01:
                    tf |= 1 << d
                elif (flags & 0x02) or payload:
                    tf &= ~(1 << d)
                if payload:
                    tf |= 4 << d
                F[f, C_TFLAGS] = tf
            tf = F[f, C_TFLAGS]
            if W[P_T1] != 0:
                F[f, C_GUAR] = 1
                F[f, C_EXPIRY] = now + W[P_T1]
            else:
                F[f, C_GUAR] = 0
                if (tf & 3) == 3:
                    F[f, C_EXPIRY] = now + W[P_TCP_DONE]
                elif (tf & 12) == 12:
                    F[f, C_EXPIRY] = now + W[P_TCP_DATA]
                else:
                    F[f, C_EXPIRY] = now + W[P_T0]
        elif napt:
            # UDP-style flow (UDPRewriter, or IPRewriter's UDP)
            put16(data, s, t, rdport)
            put16(data, s, t + 2, rsport)
            if proto == 6:
                if tlen >= 18:
                    _update(data, s, t + 16, d, l4d)
            elif proto == 17:
                if get16(data, s, t + 6) != 0:
                    _update(data, s, t + 6, d, l4d)
            tf = F[f, C_TFLAGS]
            if d:
                tf |= 1
            if tf < 6:
                tf += 2
            F[f, C_TFLAGS] = tf
            if kind == KIND_IP:
                t1 = W[P_UDP_T1]
                t0 = W[P_UDP_T0]
            else:
                t1 = W[P_T1]
                t0 = W[P_T0]
            if t1 != 0:
                F[f, C_GUAR] = 1
                F[f, C_EXPIRY] = now + t1
            else:
                F[f, C_GUAR] = 0
                F[f, C_EXPIRY] = now + (W[P_UDP_STREAM] if tf > 6 else t0)
        else:
            if kind == KIND_PING:
                if firstfrag:
                    put16(data, s, t + 4, rsport if d else rdport)
                    _update(data, s, t + 2, d, l4d)
                    if get16(data, s, t + 2) == 0:
                        allzero = True
                        for b in range(t, end):
                            if data[s, b] != 0:
                                allzero = False
                                break
                        if allzero:
                            put16(data, s, t + 2, 0xFFFF)
            elif firstfrag:
                if proto == 6 and tlen >= 18:
                    _update(data, s, t + 16, d, l4d)
                elif proto == 17 and tlen >= 8 and get16(data, s, t + 6) != 0:
                    _update(data, s, t + 6, d, l4d)
            if W[P_T1] != 0:
                F[f, C_GUAR] = 1
                F[f, C_EXPIRY] = now + W[P_T1]
            else:
                F[f, C_GUAR] = 0
                F[f, C_EXPIRY] = now + W[P_T0]
        F[f, C_STAMP] = stamp
        stamp += 1
        out[k] = F[f, C_OUT0 + d]
        k += 1
        if F[f, C_HASDT] != 0:
            k -= 1
            status = ST_SEQFIX
            W[P_RET_ENTRY] = e
            break
    return k, status, stamp


@_jit
def rewrite_batch(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
                  th: np.ndarray, anno: np.ndarray, idx: np.ndarray, K: np.ndarray, F: np.ndarray,
                  slots: np.ndarray, W: np.ndarray, sel: np.ndarray, now: int, stamp: int, start: int,
                  force: int, pass_out: int, miss_out: int) -> int:
    """Look up and rewrite packets ``idx[start:]`` in order, writing each one's output
    port (-1 = drop) to the workspace ``W`` (from ``W[P_OUT]``).

    ``now`` is the time in jiffies, ``stamp`` the next stamp value (the one after
    the last is left in ``W[P_STAMP]``), ``force`` an entry to use for the first
    packet instead of a lookup (-1 = look up), ``pass_out`` the output of packets
    the rewriter cannot handle and ``miss_out`` that of packets of unknown flows
    (-1 = drop, or -2 to stop and let Python decide).

    Returns RET_MISS or RET_SEQFIX when it stops early on a packet that needs
    Python (its index in ``W[P_RET_K]``): a miss, or a TCP flow with sequence
    number deltas (the packet is rewritten and expiry updated; Python then
    fixes its sequence numbers and resumes at the next packet).  Otherwise all
    packets have their port: it returns the batch's common output port, or -2
    if the ports differ, after grouping the batch by port into ``sel`` (as
    group_by_port, ``W_STARTS`` holding the starts) when ``sel`` can hold it.

    The loop for TCPRewriter, UDPRewriter and IPRewriter (with slot rows shorter
    than 32 KiB) is written out here rather than in a function of its own: numba
    takes a reference to each array argument of a function for the length of
    the call, and in a function this size they are not optimized away, so
    every extra function level costs two atomic operations per array.
    """
    n = idx.shape[0]
    o = max(W[P_OUT], 0)   # the ports are W[o:o + n] (a view would cost reference counting)
    if W.shape[0] - o < n:
        raise ValueError("rewrite_batch: workspace too small for the batch")
    k = max(start, 0)
    kind = W[P_KIND]
    if not (kind == KIND_IP or kind == KIND_TCP or kind == KIND_UDP) or data.shape[1] > 0x7FFF:
        k, status, stamp = _rewrite_generic(data, off, length, nh, th, anno, idx, W[o:o + n], K, F, slots,
                                            W, now, stamp, k, force, pass_out, miss_out)
    else:
        annos = W[P_ANNOS]
        # loop invariants in locals: W is written in the loop, so LLVM would reload them
        t1 = W[P_T1]
        exp_t0 = now + W[P_T0]
        exp_t1 = now + t1
        exp_data = now + W[P_TCP_DATA]
        exp_done = now + W[P_TCP_DONE]
        if kind == KIND_IP:
            ut1 = W[P_UDP_T1]
            ut0 = W[P_UDP_T0]
        else:
            ut1 = t1
            ut0 = W[P_T0]
        exp_ut0 = now + ut0
        exp_ut1 = now + ut1
        exp_stream = now + W[P_UDP_STREAM]
        take_udp = kind != KIND_TCP
        take_dccp = kind == KIND_UDP
        udp_map = kind == KIND_IP      # IPRewriter keeps UDP flows in map 1
        all_udp = kind == KIND_UDP     # UDPRewriter treats TCP flows UDP-style too
        set_dst = (annos & 1) != 0
        set_reply = (annos & 2) != 0
        ranno_at = annos >> 2
        rowlen = data.shape[1]
        mask = slots.shape[0] - 1
        status = ST_DONE
        lim = k + (_CHUNK if k == 0 and force < 0 else _CHUNK_RESUMED)
        while k < n:
            cend = min(lim, n)
            lim = cend + _CHUNK
            # phase 1: validate and look up
            for j in range(k, cend):
                # slot numbers as unsigned: indexing with them then needs no wraparound code
                s = np.uint32(idx[j])
                begin = np.int64(off[s])
                end = begin + length[s]
                ip = np.int64(nh[s])
                if ip < 0 or ip < begin or ip + 20 > end or end > rowlen:
                    W[o + j] = -2
                    continue
                proto = np.int64(data[s, ip + 9])
                ok = proto == 6 or (take_udp and (proto == 17 or (take_dccp and proto == 33)))
                t = np.int64(th[s])
                if t < ip:
                    t = ip + ((np.int64(data[s, ip]) & 15) << 2)
                if not ok or (get16(data, s, ip + 6) & 0x1FFF) != 0 or end - t < 8:
                    W[o + j] = -2
                    continue
                # What phase 2 needs: the entry (bits 0-30), whether the transport
                # header reaches its TCP checksum (bit 31), and the IP and transport
                # header offsets (bits 32-47, 48-62).  Decoded, they are known to be
                # non-negative, so indexing with them needs no wraparound code.
                info = (ip << 32) | (t << 48) | (np.int64(end - t >= 18) << 31)
                if force >= 0:
                    W[o + j] = info | force
                    force = -1
                    continue
                k0 = np.uint64((get16(data, s, ip + 12) << 48) | (get16(data, s, ip + 14) << 32)
                               | (get16(data, s, ip + 16) << 16) | get16(data, s, ip + 18))
                k1 = np.uint64((get16(data, s, t) << 16) | get16(data, s, t + 2))
                if udp_map and proto == 17:
                    k1 |= np.uint64(1) << np.uint64(32)
                h = _hash(k0, k1, mask)
                while True:
                    e = np.int64(slots[h])
                    if e < 0 or (K[e, 0] == k0 and K[e, 1] == k1):
                        break
                    h = (h + 1) & mask
                W[o + j] = (info | e) if e >= 0 else -1
            # phase 2: rewrite, in order
            j = k
            while j < cend:
                e = W[o + j]
                if e < 0:
                    if e == -2:
                        W[o + j] = pass_out
                    elif miss_out == -2:
                        status = ST_MISS
                        break
                    else:
                        W[o + j] = miss_out
                    j += 1
                    continue
                s = np.uint32(idx[j])
                ip = (e >> 32) & 0xFFFF
                t = (e >> 48) & 0x7FFF
                csum = (e >> 31) & 1
                e &= 0x7FFFFFFF
                proto = np.int64(data[s, ip + 9])
                f = e >> 1
                d = e & 1
                rk0 = np.int64(K[e ^ 1, 0])
                rk1 = np.int64(K[e ^ 1, 1])
                rsaddr = (rk0 >> 32) & 0xFFFFFFFF
                # source and destination address: the reply key's, swapped
                _store_be(data, s, ip + 12, (rk0 << 32) | rsaddr, 8)
                if set_dst:
                    _store_be(anno, s, 0, rsaddr, 4)
                if d == 1 and set_reply:
                    anno[s, ranno_at] = F[f, C_RANNO]
                _update(data, s, ip + 10, d, F[f, C_IPD])
                l4d = F[f, C_L4D]
                # source and destination port: the reply key's, swapped
                ports = ((rk1 & 0xFFFF) << 16) | ((rk1 >> 16) & 0xFFFF)
                if proto == 6 and not all_udp:
                    # TCP flow
                    if csum:
                        _store_be(data, s, t, ports, 4)
                        _update(data, s, t + 16, d, l4d)
                        off4 = np.int64(data[s, t + 12] >> 4)
                        ihl = np.int64(data[s, ip]) & 15
                        payload = ((ihl + off4) << 2) < get16(data, s, ip + 2)
                        flags = data[s, t + 13]
                        tf = F[f, C_TFLAGS]
                        if flags & 0x04:
                            tf |= 3
                        elif flags & 0x01:
                            tf |= 1 << d
                        elif (flags & 0x02) or payload:
                            tf &= ~(1 << d)
                        if payload:
                            tf |= 4 << d
                        F[f, C_TFLAGS] = tf
                    else:
                        tf = F[f, C_TFLAGS]
                    if t1 != 0:
                        F[f, C_GUAR] = 1
                        F[f, C_EXPIRY] = exp_t1
                    else:
                        F[f, C_GUAR] = 0
                        if (tf & 3) == 3:
                            F[f, C_EXPIRY] = exp_done
                        elif (tf & 12) == 12:
                            F[f, C_EXPIRY] = exp_data
                        else:
                            F[f, C_EXPIRY] = exp_t0
                else:
                    # UDP-style flow (UDPRewriter, or IPRewriter's UDP)
                    _store_be(data, s, t, ports, 4)
                    if proto == 6:
                        if csum:
                            _update(data, s, t + 16, d, l4d)
                    elif proto == 17:
                        if get16(data, s, t + 6) != 0:
                            _update(data, s, t + 6, d, l4d)
                    tf = F[f, C_TFLAGS]
                    if d:
                        tf |= 1
                    if tf < 6:
                        tf += 2
                    F[f, C_TFLAGS] = tf
                    if ut1 != 0:
                        F[f, C_GUAR] = 1
                        F[f, C_EXPIRY] = exp_ut1
                    else:
                        F[f, C_GUAR] = 0
                        F[f, C_EXPIRY] = exp_stream if tf > 6 else exp_ut0
                F[f, C_STAMP] = stamp
                stamp += 1
                W[o + j] = F[f, C_OUT0 + d]
                if F[f, C_HASDT] != 0:
                    status = ST_SEQFIX
                    W[P_RET_ENTRY] = e
                    break
                j += 1
            k = j
            if status != ST_DONE:
                break
    W[P_STAMP] = stamp
    W[P_RET_K] = k
    if status == ST_MISS:
        return RET_MISS
    if status == ST_SEQFIX:
        return RET_SEQFIX
    common = -2
    if n > 0:
        common = W[o]
        for i in range(o + 1, o + n):
            if W[i] != common:
                common = -2
                break
    if common == -2 and n > 0 and sel.shape[0] >= n:
        nout = W[P_NOUT]
        group_by_port(idx, W[o:o + n], n, nout, sel, W[W_STARTS:W_STARTS + nout + 2])
    return common


# -- Python-side tables -----------------------------------------------------------------------


class FlowTable:
    """The flows of one rewriter element (see the module docstring)."""

    def __init__(self, capacity: int = 64) -> None:
        cap = 1
        while cap < capacity:
            cap *= 2
        self.K = np.zeros((2 * cap, 2), np.uint64)
        self.F = np.zeros((cap, NCOLS), np.int64)
        self.slots = np.full(4 * cap, -1, np.int32)
        self.free: list[int] = list(range(cap - 1, -1, -1))
        self.nlive = 0
        self.top = 0          # rows [0, top) have been used
        self.nkeys = 0        # entries currently in the index
        self.on_destroy: Callable[[int], None] | None = None
        self.heap: FlowHeap | None = None

    # -- capacity ----------------------------------------------------------------------
    def _grow(self) -> None:
        cap = len(self.F)
        K = np.zeros((4 * cap, 2), np.uint64)
        K[: 2 * cap] = self.K
        F = np.zeros((2 * cap, NCOLS), np.int64)
        F[:cap] = self.F
        self.K, self.F = K, F
        self.free.extend(range(2 * cap - 1, cap - 1, -1))
        self._rehash(len(self.slots) * 2)

    def _rehash(self, size: int) -> None:
        live = self.slots[self.slots >= 0].astype(np.int64)
        self.slots = np.full(size, -1, np.int32)
        if len(live):
            index_rebuild(self.slots, self.K, live)

    # -- flows -------------------------------------------------------------------------
    def new_flow(self, key0: tuple[int, int], key1: tuple[int, int]) -> int:
        """Allocate a flow with the given entry keys (nothing is indexed yet)."""
        if not self.free:
            self._grow()
        f = self.free.pop()
        self.F[f] = 0
        self.F[f, C_LIVE] = 1
        self.K[2 * f] = key0
        self.K[2 * f + 1] = key1
        self.nlive += 1
        self.top = max(self.top, f + 1)
        return f

    def release(self, f: int) -> None:
        """Unindex both entries of flow ``f`` (if they are the indexed ones) and free it."""
        for e in (2 * f, 2 * f + 1):
            if index_erase(self.slots, self.K, e):
                self.nkeys -= 1
        self.F[f] = 0
        self.nlive -= 1
        self.free.append(f)

    def index(self, e: int) -> int:
        """Index entry ``e``; returns the entry it displaced, or -1."""
        if 2 * (self.nkeys + 1) > len(self.slots):
            self._rehash(len(self.slots) * 2)
        old = index_set(self.slots, self.K, e)
        if old < 0:
            self.nkeys += 1
        return int(old)

    def lookup(self, saddr: int, sport: int, daddr: int, dport: int, mapid: int = 0) -> int:
        """The entry for a flow identifier, or -1."""
        k0, k1 = make_key(saddr, sport, daddr, dport, mapid)
        return int(index_lookup(self.slots, self.K, np.uint64(k0), np.uint64(k1)))

    def key(self, e: int) -> tuple[int, int, int, int, int]:
        """(saddr, sport, daddr, dport, mapid) of entry ``e``."""
        return split_key(int(self.K[e, 0]), int(self.K[e, 1]))

    def rewritten(self, e: int) -> tuple[int, int, int, int]:
        """The flow identifier a packet matching entry ``e`` is rewritten to."""
        sa, sp, da, dp, _ = self.key(e ^ 1)
        return da, dp, sa, sp

    def entries(self) -> Iterator[int]:
        """Indexed entries in hash order (the order of Click's table listings)."""
        for x in self.slots.tolist():
            if x >= 0:
                yield x

    def live_flows(self) -> np.ndarray:
        return np.flatnonzero(self.F[: self.top, C_LIVE])

    # -- the fast path ------------------------------------------------------------------
    def run(self, pool: Any, idx: np.ndarray, W: np.ndarray, sel: np.ndarray, now: int, stamp: int,
            start: int = 0, force: int = -1, pass_out: int = -1, miss_out: int = -2) -> int:
        """rewrite_batch on this table (see there)."""
        return int(rewrite_batch(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.anno, idx,
                                 self.K, self.F, self.slots, W, sel, now, stamp, start, force, pass_out,
                                 miss_out))


class FlowHeap:
    """The flows of all tables sharing one capacity, as Click's IPRewriterHeap.

    ``members`` are the rewriter elements using it; each has ``table`` (a
    FlowTable) and ``best_effort_expiry(f)`` and ``destroy_flow(f)`` methods.
    """

    def __init__(self) -> None:
        self.capacity = 0x7FFFFFFF
        self.members: list[Any] = []
        self.stamp = 1

    def size(self) -> int:
        return sum(m.table.nlive for m in self.members)

    def earliest(self, guaranteed: int) -> tuple[Any, int] | None:
        """The (member, flow) that expires first in one class."""
        best: tuple[Any, int] | None = None
        bkey = (0, 0)
        for m in self.members:
            t = m.table
            f = int(earliest(t.F, t.top, guaranteed))
            if f < 0:
                continue
            key = (int(t.F[f, C_EXPIRY]), int(t.F[f, C_STAMP]))
            if best is None or key < bkey:
                best, bkey = (m, f), key
        return best

    def shift_best_effort(self, now: int) -> None:
        """Flows whose guarantee has run out become best effort (with a later expiry)."""
        for m in self.members:
            t = m.table
            F = t.F
            top = t.top
            expired = np.flatnonzero((F[:top, C_LIVE] != 0) & (F[:top, C_GUAR] != 0)
                                     & (F[:top, C_EXPIRY] <= now))
            if len(expired) == 0:
                continue
            order = np.lexsort((F[expired, C_STAMP], F[expired, C_EXPIRY]))
            for f in expired[order].tolist():
                F[f, C_EXPIRY] = m.best_effort_expiry(f)
                F[f, C_GUAR] = 0
                F[f, C_STAMP] = self.stamp
                self.stamp += 1

    def shrink_for_new_flow(self, owner: Any, f: int, now: int) -> bool:
        """The set is one flow over capacity after adding ``f``: evict the
        earliest-expiring best-effort flow, or ``f`` itself if all others are
        guaranteed (admission control).  True if ``f`` was the one evicted."""
        self.shift_best_effort(now)
        victim = self.earliest(0)
        if victim is None:
            victim = (owner, f)
        victim[0].destroy_flow(victim[1])
        return victim == (owner, f)

    def shrink(self, now: int, clear_all: bool = False) -> None:
        """Drop expired flows, then the earliest-expiring ones until within capacity."""
        self.shift_best_effort(now)
        while True:
            v = self.earliest(0)
            if v is None or int(v[0].table.F[v[1], C_EXPIRY]) > now:
                break
            v[0].destroy_flow(v[1])
        cap = 0 if clear_all else self.capacity
        while self.size() > cap:
            v = self.earliest(0) or self.earliest(1)
            if v is None:
                break
            v[0].destroy_flow(v[1])


def new_workspace(nout: int, size: int, params: np.ndarray | None = None) -> np.ndarray:
    """A workspace for rewrite_batch: parameters (copied from ``params``, the
    parameter part of an older workspace), ``nout`` outputs' group starts, and
    output ports for batches of up to ``size`` packets."""
    W = np.zeros(W_STARTS + nout + 2 + size, np.int64)
    if params is not None:
        W[:NPARAMS] = params[:NPARAMS]
    W[P_NOUT] = nout
    W[P_OUT] = W_STARTS + nout + 2
    return W


def warm() -> None:
    """Compile (or load from cache) the kernels once."""
    t = FlowTable(4)
    f = t.new_flow(make_key(1, 2, 3, 4), make_key(3, 4, 5, 6))
    t.index(2 * f)
    t.index(2 * f + 1)
    t.lookup(1, 2, 3, 4)
    probe_free(t.slots, t.K, np.uint64(1), np.uint64(2), 1024, 0, 3, True)
    t._rehash(len(t.slots) * 2)
    t.release(f)
    earliest(t.F, t.top, 0)
    data = np.zeros((2, 64), np.uint8)
    z = np.zeros(2, np.int32)
    pool = type("Pool", (), {"data": data, "off": z, "length": z, "nh": z - 1, "th": z - 1,
                             "anno": np.zeros((2, 48), np.uint8)})()
    t.run(pool, np.zeros(1, np.int32), new_workspace(1, 1), np.zeros(1, np.int32), 0, 1)
