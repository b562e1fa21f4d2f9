"""numba kernels for the Ethernet, IP, ICMP and TCP/UDP elements.

Every kernel works on one batch: it takes the pool's arrays (``data``, ``off``,
``length``, header offsets ``mac``/``nh``/``th``, ``anno``) and the batch's
slot numbers ``idx``, does the per-packet work in one compiled loop, and
writes a per-packet verdict (an output port, or 0 = good / 1+reason = bad)
into an ``out`` array the caller then uses with ``PacketBatch.split``.

Conventions:

- Header offsets are absolute positions inside a slot (-1 = unset), as in
  :mod:`clickos.packet.pool`.
- Multi-byte header fields are read and written in network byte order, byte by
  byte, so the kernels do not depend on the host's endianness or alignment.
- Checksums are Internet checksums computed over big-endian 16-bit words; the
  one's complement sum does not depend on the word byte order, so the values
  match what Click computes on little-endian hosts.
- Callers make sure packets have enough headroom before a kernel prepends a
  header (see ``ensure_headroom`` in ``clickos.elements.ip.common``).

Imported lazily from the elements' ``initialize`` methods; compiled with
``cache=True`` so later processes load machine code from disk.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)
# Small helpers called from kernels are inlined into them (numba IR inlining):
# a real call passing the pool arrays costs reference-count updates per call,
# which made a 20-byte checksum cost ~30 ns instead of ~3.
_inline = nb.njit(cache=True, nogil=True, boundscheck=False, inline="always")

# Drop reasons of CheckIPHeader, in Click's order (verdict = 1 + reason).
IP_TINY, IP_BAD_VERSION, IP_BAD_HLEN, IP_BAD_LEN, IP_BAD_CKSUM, IP_BAD_SADDR = range(6)


# -- checksum helpers ------------------------------------------------------------------------


@_inline
def csum_add(data: np.ndarray, s: int, start: int, n: int) -> int:
    """Unfolded sum of the big-endian 16-bit words of ``data[s, start:start+n]``.

    An odd trailing byte counts as the high byte of a final word (it is zero-padded).
    """
    total = 0
    i = start
    end = start + n - 1
    while i < end:
        total += (np.int64(data[s, i]) << 8) | np.int64(data[s, i + 1])
        i += 2
    if n & 1:
        total += np.int64(data[s, start + n - 1]) << 8
    return total


@_inline
def csum_fold(total: int) -> int:
    """Fold a sum of 16-bit words to 16 bits with end-around carries."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


@_inline
def in_cksum(data: np.ndarray, s: int, start: int, n: int) -> int:
    """The Internet checksum (complemented folded sum) of ``n`` bytes."""
    return (~csum_fold(csum_add(data, s, start, n))) & 0xFFFF


@_inline
def get16(data: np.ndarray, s: int, i: int) -> int:
    return (np.int64(data[s, i]) << 8) | np.int64(data[s, i + 1])


@_inline
def put16(data: np.ndarray, s: int, i: int, v: int) -> None:
    data[s, i] = (v >> 8) & 0xFF
    data[s, i + 1] = v & 0xFF


@_inline
def get32(data: np.ndarray, s: int, i: int) -> int:
    return ((np.int64(data[s, i]) << 24) | (np.int64(data[s, i + 1]) << 16)
            | (np.int64(data[s, i + 2]) << 8) | np.int64(data[s, i + 3]))


@_inline
def put32(data: np.ndarray, s: int, i: int, v: int) -> None:
    data[s, i] = (v >> 24) & 0xFF
    data[s, i + 1] = (v >> 16) & 0xFF
    data[s, i + 2] = (v >> 8) & 0xFF
    data[s, i + 3] = v & 0xFF


@_inline
def update_cksum(old_sum: int, old_hw: int, new_hw: int) -> int:
    """RFC 1624 incremental update: ~(~sum + ~old + new), as Click computes it."""
    t = ((~old_sum) & 0xFFFF) + ((~old_hw) & 0xFFFF) + (new_hw & 0xFFFF)
    t = (t & 0xFFFF) + (t >> 16)
    return (~(t + (t >> 16))) & 0xFFFF


@_inline
def pseudo_cksum(data: np.ndarray, s: int, ip: int, proto: int, tlen: int, partial: int) -> int:
    """Complete a transport checksum with the IP pseudo-header.

    ``partial`` is the (complemented) checksum of the transport bytes.  When the
    IP header carries a source-route option, the route's final hop is the
    destination used, as Click does.
    """
    hl = (data[s, ip] & 0xF) << 2
    dst_at = ip + 16
    if hl > 20:
        o = ip + 20
        end = min(ip + hl, data.shape[1])
        while o < end:
            t = data[s, o]
            if t == 1:
                o += 1
                continue
            if t == 0:
                break
            if o + 1 >= end:
                break
            ol = np.int64(data[s, o + 1])
            if ol < 2 or o + ol > end:
                break
            if (t == 137 or t == 131) and ol >= 7:
                dst_at = o + ol - 4
                break
            o += ol
    c = (~partial) & 0xFFFF
    c += get16(data, s, ip + 12) + get16(data, s, ip + 14)
    c += get16(data, s, dst_at) + get16(data, s, dst_at + 2)
    c += (tlen & 0xFFFF) + proto
    c = (c & 0xFFFF) + (c >> 16)
    return (~(c + (c >> 16))) & 0xFFFF


# -- IP header checks ------------------------------------------------------------------------


@_jit
def check_ip_header(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
                    th: np.ndarray, anno: np.ndarray, idx: np.ndarray, offset: int, checksum: bool,
                    bad_src: np.ndarray, good_dst: np.ndarray, out: np.ndarray) -> int:
    """CheckIPHeader over a batch.  ``out[i]`` = 0 for a good packet (whose IP header
    annotations, length and destination annotation are then set) or 1 + reason.
    Returns the number of bad packets.

    Reads the pool through a flat view; the header checksum adds native 16-bit
    words when the header starts at an even address (the folded one's
    complement sum is 0xFFFF in either byte order), else big-endian byte pairs.
    """
    nbad = 0
    ncol = data.shape[1]
    flat = data.reshape(-1)
    f16 = flat.view(np.uint16)
    nsrc = bad_src.shape[0]
    for i in range(idx.shape[0]):
        s = np.int64(idx[i])
        plen = np.int64(length[s]) - offset
        ip = np.int64(off[s]) + offset
        a = s * ncol + ip
        v = -1
        if plen < 20:
            v = IP_TINY
        else:
            b0 = np.int64(flat[a])
            hlen = (b0 & 0xF) << 2
            iplen = (np.int64(flat[a + 2]) << 8) | np.int64(flat[a + 3])
            if (b0 >> 4) != 4:
                v = IP_BAD_VERSION
            elif hlen < 20:
                v = IP_BAD_HLEN
            elif iplen > plen or iplen < hlen:
                v = IP_BAD_LEN
            else:
                if checksum:
                    t = np.int64(0)
                    if (a & 1) == 0:
                        # the 20-byte header unrolled (LLVM then schedules the loads freely)
                        w = a >> 1
                        t = (np.int64(f16[w]) + np.int64(f16[w + 1]) + np.int64(f16[w + 2]) + np.int64(f16[w + 3])
                             + np.int64(f16[w + 4]) + np.int64(f16[w + 5]) + np.int64(f16[w + 6])
                             + np.int64(f16[w + 7]) + np.int64(f16[w + 8]) + np.int64(f16[w + 9]))
                        for k in range(10, hlen >> 1):
                            t += np.int64(f16[w + k])
                    else:
                        for k in range(0, hlen, 2):
                            t += (np.int64(flat[a + k]) << 8) | np.int64(flat[a + k + 1])
                    t = (t & 0xFFFF) + (t >> 16)
                    t = (t & 0xFFFF) + (t >> 16)
                    if t != 0xFFFF:
                        v = IP_BAD_CKSUM
                if v < 0 and nsrc:
                    src = ((np.int64(flat[a + 12]) << 24) | (np.int64(flat[a + 13]) << 16)
                           | (np.int64(flat[a + 14]) << 8) | np.int64(flat[a + 15]))
                    dst = ((np.int64(flat[a + 16]) << 24) | (np.int64(flat[a + 17]) << 16)
                           | (np.int64(flat[a + 18]) << 8) | np.int64(flat[a + 19]))
                    bad = False
                    for k in range(nsrc):
                        if bad_src[k] == src:
                            bad = True
                            break
                    if bad:
                        for k in range(good_dst.shape[0]):
                            if good_dst[k] == dst:
                                bad = False
                                break
                    if bad:
                        v = IP_BAD_SADDR
                if v < 0:
                    nh[s] = ip
                    th[s] = ip + hlen
                    if plen > iplen:
                        length[s] -= plen - iplen
                    anno[s, 0] = flat[a + 16]
                    anno[s, 1] = flat[a + 17]
                    anno[s, 2] = flat[a + 18]
                    anno[s, 3] = flat[a + 19]
        if v >= 0:
            out[i] = 1 + v
            nbad += 1
        else:
            out[i] = 0
    return nbad


@_jit
def mark_ip_header(data: np.ndarray, off: np.ndarray, nh: np.ndarray, th: np.ndarray,
                   idx: np.ndarray, offset: int) -> None:
    """MarkIPHeader: network header at ``offset``, transport header after its IHL."""
    for i in range(idx.shape[0]):
        s = idx[i]
        ip = np.int64(off[s]) + offset
        nh[s] = ip
        if 0 <= ip < data.shape[1]:
            th[s] = ip + (np.int64(data[s, ip] & 0xF) << 2)
        else:
            th[s] = ip


@_jit
def dec_ip_ttl(data: np.ndarray, nh: np.ndarray, idx: np.ndarray, multicast: bool,
               out: np.ndarray) -> int:
    """DecIPTTL: ``out[i]`` = 1 for expired packets, else 0 (TTL decremented and the
    checksum updated incrementally, unless a multicast packet is exempt)."""
    nexp = 0
    for i in range(idx.shape[0]):
        s = idx[i]
        ip = np.int64(nh[s])
        out[i] = 0
        if ip < 0 or ip + 20 > data.shape[1]:
            continue
        if not multicast and (data[s, ip + 16] & 0xF0) == 0xE0:
            continue
        if data[s, ip + 8] <= 1:
            out[i] = 1
            nexp += 1
            continue
        data[s, ip + 8] -= 1
        t = ((~get16(data, s, ip + 10)) & 0xFFFF) + 0xFEFF
        put16(data, s, ip + 10, (~(t + (t >> 16))) & 0xFFFF)
    return nexp


@_jit
def set_ip_checksum(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
                    idx: np.ndarray, out: np.ndarray) -> int:
    """SetIPChecksum: recompute header checksums; ``out[i]`` = 1 for unusable packets."""
    nbad = 0
    for i in range(idx.shape[0]):
        s = idx[i]
        ip = nh[s] if nh[s] >= 0 else np.int64(off[s])
        plen = np.int64(off[s]) + length[s] - ip
        hlen = np.int64(data[s, ip] & 0xF) << 2 if plen >= 1 else 0
        if plen >= 20 and hlen >= 20 and hlen <= plen:
            put16(data, s, ip + 10, 0)
            put16(data, s, ip + 10, in_cksum(data, s, ip, hlen))
            out[i] = 0
        else:
            out[i] = 1
            nbad += 1
    return nbad


@_jit
def set_ip_dscp(data: np.ndarray, nh: np.ndarray, idx: np.ndarray, dscp: int) -> None:
    """SetIPDSCP: replace the DSCP bits of the TOS byte, updating the checksum."""
    for i in range(idx.shape[0]):
        s = idx[i]
        ip = np.int64(nh[s])
        if ip < 0 or ip + 20 > data.shape[1]:
            continue
        old = get16(data, s, ip)
        data[s, ip + 1] = (data[s, ip + 1] & 3) | dscp
        put16(data, s, ip + 10, update_cksum(get16(data, s, ip + 10), old, get16(data, s, ip)))


@_jit
def mark_ip_ce(data: np.ndarray, nh: np.ndarray, idx: np.ndarray, force: bool, out: np.ndarray) -> int:
    """MarkIPCE: set ECN to CE; ``out[i]`` = 1 for non-ECT packets that must be dropped."""
    nbad = 0
    for i in range(idx.shape[0]):
        s = idx[i]
        ip = np.int64(nh[s])
        out[i] = 0
        if ip < 0 or ip + 20 > data.shape[1]:
            continue
        ecn = data[s, ip + 1] & 3
        if ecn == 0 and not force:
            out[i] = 1
            nbad += 1
        elif ecn != 3:
            old = get16(data, s, ip)
            data[s, ip + 1] |= 3
            put16(data, s, ip + 10, update_cksum(get16(data, s, ip + 10), old, get16(data, s, ip)))
    return nbad


@_jit
def store_ip_address(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
                     th: np.ndarray, anno: np.ndarray, idx: np.ndarray, offset: int, use_addr: bool,
                     addr: int, out: np.ndarray) -> None:
    """StoreIPAddress.  ``offset`` >= 0 is a byte offset; -12/-16 mean the IP source or
    destination field (with incremental IP and TCP/UDP checksum updates).
    ``out[i]`` = 1 for packets that go to the error output."""
    for i in range(idx.shape[0]):
        s = idx[i]
        a = addr
        if not use_addr:
            a = ((np.int64(anno[s, 0]) << 24) | (np.int64(anno[s, 1]) << 16)
                 | (np.int64(anno[s, 2]) << 8) | np.int64(anno[s, 3]))
        out[i] = 0
        if (a != 0 or use_addr) and offset >= 0 and offset + 4 <= length[s]:
            put32(data, s, np.int64(off[s]) + offset, a)
        elif offset >= -16 and nh[s] >= 0 and th[s] - nh[s] >= 20 and 0 <= nh[s] - offset \
                and nh[s] + 20 <= data.shape[1] and nh[s] - offset + 4 <= data.shape[1]:
            # (Click also takes this path for a numeric OFFSET whose write was skipped,
            # storing at the network header minus OFFSET)
            ip = np.int64(nh[s])
            at = ip - offset
            o = get16(data, s, at) + get16(data, s, at + 2)
            o = (o + (o >> 16)) & 0xFFFF
            put32(data, s, at, a)
            n = get16(data, s, at) + get16(data, s, at + 2)
            n = (n + (n >> 16)) & 0xFFFF
            put16(data, s, ip + 10, update_cksum(get16(data, s, ip + 10), o, n))
            proto = data[s, ip + 9]
            firstfrag = (get16(data, s, ip + 6) & 0x1FFF) == 0
            tlen = np.int64(off[s]) + length[s] - th[s]
            t = th[s]
            if proto == 6 and firstfrag and tlen >= 20:
                put16(data, s, t + 16, update_cksum(get16(data, s, t + 16), o, n))
            if proto == 17 and firstfrag and tlen >= 8 and get16(data, s, t + 6) != 0:
                put16(data, s, t + 6, update_cksum(get16(data, s, t + 6), o, n))
        else:
            out[i] = 1


# -- encapsulation -------------------------------------------------------------------------------


@_jit
def push_header(data: np.ndarray, off: np.ndarray, length: np.ndarray, mac: np.ndarray,
                nh: np.ndarray, idx: np.ndarray, hdr: np.ndarray, mac_len: int) -> None:
    """Prepend ``hdr`` to every packet.  With ``mac_len`` > 0 the new bytes become the
    MAC header and the network header follows ``mac_len`` bytes later (Click's
    ``push_mac_header``)."""
    n = hdr.shape[0]
    for i in range(idx.shape[0]):
        s = idx[i]
        o = off[s] - n
        off[s] = o
        length[s] += n
        for k in range(n):
            data[s, o + k] = hdr[k]
        if mac_len > 0:
            mac[s] = o
            nh[s] = o + mac_len


@_jit
def ether_mirror(data: np.ndarray, off: np.ndarray, idx: np.ndarray) -> None:
    """Swap the Ethernet source and destination addresses."""
    ncol = data.shape[1]
    flat = data.reshape(-1)
    f16 = flat.view(np.uint16)
    for i in range(idx.shape[0]):
        s = np.int64(idx[i])
        o = np.int64(off[s])
        if o + 12 > ncol:
            continue
        a = s * ncol + o
        if (a & 1) == 0:
            w = a >> 1
            t0, t1, t2 = f16[w], f16[w + 1], f16[w + 2]
            f16[w] = f16[w + 3]
            f16[w + 1] = f16[w + 4]
            f16[w + 2] = f16[w + 5]
            f16[w + 3] = t0
            f16[w + 4] = t1
            f16[w + 5] = t2
        else:
            for k in range(6):
                t = flat[a + k]
                flat[a + k] = flat[a + 6 + k]
                flat[a + 6 + k] = t


@_jit
def ether_rewrite(data: np.ndarray, off: np.ndarray, mac: np.ndarray, idx: np.ndarray,
                  hdr: np.ndarray, h8: int, h4: int) -> None:
    """Overwrite the 12 address bytes at the MAC header (or the data start).

    Where the header starts at an 8-byte boundary (the usual case: slots and
    headroom are multiples of 8) it is written as one 64-bit and one 32-bit word:
    ``h8``/``h4`` are ``hdr``'s bytes 0-7 and 8-11 read in the host's byte order, as
    signed Python ints (numpy scalars would cost ~250 ns each to dispatch)."""
    ncol = data.shape[1]
    flat = data.reshape(-1)
    f64 = flat.view(np.uint64)
    f32 = flat.view(np.uint32)
    for i in range(idx.shape[0]):
        s = np.int64(idx[i])
        o = np.int64(mac[s]) if mac[s] >= 0 else np.int64(off[s])
        if o < 0 or o + 12 > ncol:
            continue
        a = s * ncol + o
        if (a & 7) == 0:
            f64[a >> 3] = np.uint64(h8)
            f32[(a >> 2) + 2] = np.uint32(h4 & 0xFFFFFFFF)
        else:
            for k in range(12):
                flat[a + k] = hdr[k]


@_jit
def host_ether_filter(data: np.ndarray, off: np.ndarray, length: np.ndarray, ptype: np.ndarray,
                      idx: np.ndarray, offset: int, addr: np.ndarray, drop_own: bool,
                      drop_other: bool, out: np.ndarray) -> None:
    """HostEtherFilter: set the packet type; ``out[i]`` = 1 for filtered packets."""
    for i in range(idx.shape[0]):
        s = idx[i]
        e = np.int64(off[s]) + offset
        out[i] = 0
        if e + 12 > data.shape[1]:
            continue
        own = True
        for k in range(6):
            if data[s, e + 6 + k] != addr[k]:
                own = False
                break
        if drop_own and own:
            out[i] = 1
            continue
        mine = True
        bcast = True
        for k in range(6):
            if data[s, e + k] != addr[k]:
                mine = False
            if data[s, e + k] != 0xFF:
                bcast = False
        if mine:
            ptype[s] = 0
        elif bcast:
            ptype[s] = 1
        elif data[s, e] & 1:
            ptype[s] = 2
        else:
            ptype[s] = 3
            if drop_other:
                out[i] = 1


@_jit
def ip_encap(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray, th: np.ndarray,
             anno: np.ndarray, idx: np.ndarray, hdr: np.ndarray, use_dst_anno: bool, ip_id: int) -> int:
    """IPEncap: prepend the 20-byte template, fill length, ID (counting from
    ``ip_id``), destination (from the annotation if asked) and checksum.  Returns the
    next ID."""
    for i in range(idx.shape[0]):
        s = idx[i]
        o = np.int64(off[s]) - 20
        off[s] = o
        length[s] += 20
        for k in range(20):
            data[s, o + k] = hdr[k]
        if use_dst_anno:
            for k in range(4):
                data[s, o + 16 + k] = anno[s, k]
        else:
            for k in range(4):
                anno[s, k] = data[s, o + 16 + k]
        put16(data, s, o + 2, length[s] & 0xFFFF)
        put16(data, s, o + 4, ip_id & 0xFFFF)
        ip_id += 1
        put16(data, s, o + 10, 0)
        put16(data, s, o + 10, in_cksum(data, s, o, 20))
        nh[s] = o
        th[s] = o + 20
    return ip_id


@_jit
def udp_ip_encap(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
                 th: np.ndarray, anno: np.ndarray, idx: np.ndarray, saddr: int, daddr: int,
                 sport: int, dport: int, use_dst_anno: bool, cksum: bool, ip_id: int) -> int:
    """UDPIPEncap: prepend IP and UDP headers (TTL 250); returns the next IP ID."""
    for i in range(idx.shape[0]):
        s = idx[i]
        o = np.int64(off[s]) - 28
        off[s] = o
        length[s] += 28
        total = np.int64(length[s])
        data[s, o] = 0x45
        data[s, o + 1] = 0
        put16(data, s, o + 2, total & 0xFFFF)
        put16(data, s, o + 4, ip_id & 0xFFFF)
        ip_id += 1
        put16(data, s, o + 6, 0)
        data[s, o + 8] = 250
        data[s, o + 9] = 17
        put32(data, s, o + 12, saddr)
        if use_dst_anno:
            for k in range(4):
                data[s, o + 16 + k] = anno[s, k]
        else:
            put32(data, s, o + 16, daddr)
            for k in range(4):
                anno[s, k] = data[s, o + 16 + k]
        put16(data, s, o + 10, 0)
        put16(data, s, o + 10, in_cksum(data, s, o, 20))
        nh[s] = o
        th[s] = o + 20
        u = o + 20
        ulen = (total - 20) & 0xFFFF
        put16(data, s, u, sport)
        put16(data, s, u + 2, dport)
        put16(data, s, u + 4, ulen)
        put16(data, s, u + 6, 0)
        if cksum:
            put16(data, s, u + 6, pseudo_cksum(data, s, o, 17, ulen, in_cksum(data, s, u, ulen)))
    return ip_id


# -- transport checks and checksums ---------------------------------------------------------------


@_jit
def check_transport(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
                    th: np.ndarray, idx: np.ndarray, proto: int, out: np.ndarray) -> int:
    """CheckTCPHeader (``proto`` 6) / CheckUDPHeader (17).  ``out[i]`` = 0 good, 1 not
    this protocol, 2 bad length, 3 bad checksum.  Returns the number of bad packets."""
    nbad = 0
    for i in range(idx.shape[0]):
        s = idx[i]
        v = 0
        ip = nh[s]
        end = np.int64(off[s]) + length[s]
        if ip < 0 or ip + 20 > end or data[s, ip + 9] != proto:
            v = 1
        else:
            iph_len = np.int64(data[s, ip] & 0xF) << 2
            t = th[s] if th[s] >= 0 else ip + iph_len
            if proto == 6:
                tl = get16(data, s, ip + 2) - iph_len
                hl = np.int64(data[s, t + 12] >> 4) << 2 if 0 <= t and t + 13 <= end else 0
                if hl < 20 or tl < hl or ip + iph_len + tl > end or t + tl > end:
                    v = 2
                elif pseudo_cksum(data, s, ip, 6, tl, in_cksum(data, s, t, tl)) != 0:
                    v = 3
            else:
                tl = get16(data, s, t + 4) if 0 <= t and t + 8 <= end else 0
                if tl < 8 or ip + iph_len + tl > end or t + tl > end:
                    v = 2
                elif get16(data, s, t + 6) != 0 and \
                        pseudo_cksum(data, s, ip, 17, tl, in_cksum(data, s, t, tl)) != 0:
                    v = 3
        out[i] = v
        if v:
            nbad += 1
    return nbad


@_jit
def check_icmp(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray, th: np.ndarray,
               idx: np.ndarray, out: np.ndarray) -> int:
    """CheckICMPHeader.  ``out[i]`` = 0 good, 1 not ICMP, 2 bad length, 3 bad checksum."""
    nbad = 0
    for i in range(idx.shape[0]):
        s = idx[i]
        v = 0
        ip = nh[s]
        end = np.int64(off[s]) + length[s]
        if ip < 0 or ip + 20 > end or data[s, ip + 9] != 1:
            v = 1
        else:
            t = th[s] if th[s] >= 0 else ip + (np.int64(data[s, ip] & 0xF) << 2)
            n = end - t
            if n < 8 or t < 0:
                v = 2
            else:
                ty = data[s, t]
                if (ty == 3 or ty == 11 or ty == 12 or ty == 4 or ty == 5) and n < 36:
                    v = 2
                elif (ty == 13 or ty == 14) and n != 20:
                    v = 2
                elif (ty == 15 or ty == 16) and n != 8:
                    v = 2
                elif in_cksum(data, s, t, n) != 0:
                    v = 3
        out[i] = v
        if v:
            nbad += 1
    return nbad


@_jit
def set_transport_checksum(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
                           th: np.ndarray, idx: np.ndarray, proto: int, fixoff: bool,
                           out: np.ndarray) -> int:
    """SetTCPChecksum (``proto`` 6) / SetUDPChecksum (17).  ``out[i]`` = 1 for packets
    whose lengths do not allow a checksum."""
    nbad = 0
    for i in range(idx.shape[0]):
        s = idx[i]
        ip = nh[s]
        t = th[s]
        end = np.int64(off[s]) + length[s]
        out[i] = 1
        if ip < 0 or t < 0 or t > end or ip + 20 > end:
            nbad += 1
            continue
        tlen_avail = end - t
        isfrag = (get16(data, s, ip + 6) & 0x3FFF) != 0
        if proto == 6:
            plen = get16(data, s, ip + 2) - (np.int64(data[s, ip] & 0xF) << 2)
            if plen < 20 or plen > tlen_avail:
                nbad += 1
                continue
            if fixoff:
                doff = np.int64(data[s, t + 12] >> 4) << 2
                if doff < 20:
                    data[s, t + 12] = (data[s, t + 12] & 0x0F) | (5 << 4)
                elif doff > plen and not isfrag:
                    data[s, t + 12] = (data[s, t + 12] & 0x0F) | (((plen >> 2) & 0xF) << 4)
            put16(data, s, t + 16, 0)
            put16(data, s, t + 16, pseudo_cksum(data, s, ip, 6, plen, in_cksum(data, s, t, plen)))
        else:
            if isfrag or tlen_avail < 8:
                nbad += 1
                continue
            ulen = get16(data, s, t + 4)
            if tlen_avail < ulen:
                nbad += 1
                continue
            put16(data, s, t + 6, 0)
            put16(data, s, t + 6, pseudo_cksum(data, s, ip, 17, ulen, in_cksum(data, s, t, ulen)))
        out[i] = 0
    return nbad


# -- route lookup ---------------------------------------------------------------------------------


@_jit
def range_lookup(anno: np.ndarray, idx: np.ndarray, starts: np.ndarray, route: np.ndarray,
                 ports: np.ndarray, gws: np.ndarray, out: np.ndarray) -> None:
    """Longest-prefix match through a table of disjoint address ranges.

    ``starts`` (sorted, starting at 0) are range starts; ``route[k]`` is the route
    covering range k (-1 for none), whose port and gateway are ``ports``/``gws``.
    ``out[i]`` is the output port (-1: no route); a nonzero gateway replaces the
    packet's destination annotation.
    """
    nr = starts.shape[0]
    for i in range(idx.shape[0]):
        s = idx[i]
        a = ((np.int64(anno[s, 0]) << 24) | (np.int64(anno[s, 1]) << 16)
             | (np.int64(anno[s, 2]) << 8) | np.int64(anno[s, 3]))
        lo = 0
        hi = nr - 1
        while lo < hi:
            mid = (lo + hi + 1) >> 1
            if starts[mid] <= a:
                lo = mid
            else:
                hi = mid - 1
        r = route[lo]
        if r < 0:
            out[i] = -1
            continue
        out[i] = ports[r]
        g = gws[r]
        if g != 0:
            anno[s, 0] = (g >> 24) & 0xFF
            anno[s, 1] = (g >> 16) & 0xFF
            anno[s, 2] = (g >> 8) & 0xFF
            anno[s, 3] = g & 0xFF


@_jit
def linear_lookup(anno: np.ndarray, idx: np.ndarray, addrs: np.ndarray, masks: np.ndarray,
                  ports: np.ndarray, gws: np.ndarray, out: np.ndarray) -> None:
    """Route lookup by scanning routes in decreasing specificity (for tables with
    non-contiguous masks).  Same outputs as :func:`range_lookup`."""
    for i in range(idx.shape[0]):
        s = idx[i]
        a = ((np.int64(anno[s, 0]) << 24) | (np.int64(anno[s, 1]) << 16)
             | (np.int64(anno[s, 2]) << 8) | np.int64(anno[s, 3]))
        out[i] = -1
        for r in range(addrs.shape[0]):
            if (a & masks[r]) == addrs[r]:
                out[i] = ports[r]
                g = gws[r]
                if g != 0:
                    anno[s, 0] = (g >> 24) & 0xFF
                    anno[s, 1] = (g >> 16) & 0xFF
                    anno[s, 2] = (g >> 8) & 0xFF
                    anno[s, 3] = g & 0xFF
                break


# -- fast paths of the IP router elements ----------------------------------------------------------


@_inline
def arp_hash_slot(key: int, mask: int) -> int:
    """First probe position of IP address ``key`` (0 <= key < 2**32) in an
    open-addressing table of ``mask + 1`` (a power of two) positions."""
    return ((key * 0x45D9F3B) >> 16) & mask


@_jit
def arp_encap_resolved(data: np.ndarray, off: np.ndarray, length: np.ndarray, mac: np.ndarray,
                       nh: np.ndarray, anno: np.ndarray, idx: np.ndarray, start: int,
                       hkeys: np.ndarray, hvals: np.ndarray, eths: np.ndarray, ent: np.ndarray,
                       now_ns: int, step: int, timeout_j: int, poll_timeout_j: int, hz: int,
                       my_en: np.ndarray, bcast: int, info: np.ndarray) -> int:
    """ARPQuerier's fast path over ``idx[start:]``.

    A packet whose destination annotation has a known, unexpired entry that is
    not due for a poll, or that is broadcast or multicast without a known entry,
    gets its Ethernet header (destination, ``my_en``, type 0x0800; MAC and
    network header annotations set).  The loop stops, leaving the packet
    untouched, at the first one that needs the per-packet path (no headroom, an
    address to query, an expired entry or one to poll now, 0.0.0.0) and returns
    how many it handled.  ``hkeys`` (-1 = empty) and ``hvals`` are an
    open-addressing table (see :func:`arp_hash_slot`) of entry numbers; entry
    ``e`` has Ethernet address ``eths[e]`` and ``ent[e]`` = (live_at, known,
    polled_at, polls), times in jiffies of ``hz`` a second.  Like ARPTable's
    lookup, each lookup that finds an entry reads the clock once: the reading
    is ``now_ns + step * reads``; ``info[0]`` returns ``reads``.
    """
    mask = hkeys.shape[0] - 1
    reads = 0
    n = idx.shape[0]
    k = start
    while k < n:
        s = idx[k]
        o = np.int64(off[s]) - 14
        if o < 0:
            break
        dst = ((np.int64(anno[s, 0]) << 24) | (np.int64(anno[s, 1]) << 16)
               | (np.int64(anno[s, 2]) << 8) | np.int64(anno[s, 3]))
        e = -1
        if mask >= 0:
            h = arp_hash_slot(dst, mask)
            while True:
                key = hkeys[h]
                if key == dst:
                    e = hvals[h]
                    break
                if key < 0:
                    break
                h = (h + 1) & mask
        resolved = False
        if e >= 0:
            now_j = (now_ns + step * reads) // 1000000
            la = ent[e, 0]
            if ent[e, 1] != 0 and (timeout_j == 0 or la + timeout_j >= now_j):
                if poll_timeout_j != 0 and now_j >= la + poll_timeout_j:
                    gap = hz * 2 if ent[e, 3] >= 10 else hz // 10
                    if now_j >= ent[e, 2] + gap:
                        break  # a poll is due: the per-packet path sends it
                resolved = True
                for b in range(6):
                    data[s, o + b] = eths[e, b]
        if not resolved:
            if dst == 0xFFFFFFFF or dst == bcast:
                for b in range(6):
                    data[s, o + b] = 0xFF
            elif (dst >> 28) == 0xE:
                data[s, o] = 0x01
                data[s, o + 1] = 0x00
                data[s, o + 2] = 0x5E
                data[s, o + 3] = (dst >> 16) & 0x7F
                data[s, o + 4] = (dst >> 8) & 0xFF
                data[s, o + 5] = dst & 0xFF
            else:
                break
        if e >= 0:
            reads += 1
        for b in range(6):
            data[s, o + 6 + b] = my_en[b]
        data[s, o + 12] = 0x08
        data[s, o + 13] = 0x00
        off[s] = o
        length[s] += 14
        mac[s] = o
        nh[s] = o + 14
        k += 1
    info[0] = reads
    return k - start


@_jit
def ip_input_combo(data: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
                   th: np.ndarray, anno: np.ndarray, idx: np.ndarray, color: int, bad_src: np.ndarray,
                   good_dst: np.ndarray, out: np.ndarray) -> int:
    """IPInputCombo: paint, strip 14 bytes, then :func:`check_ip_header` (offset 0,
    checksum on).  Returns the number of bad packets (``out[i]`` != 0)."""
    for i in range(idx.shape[0]):
        s = idx[i]
        anno[s, 16] = color
        n = min(np.int64(length[s]), 14)
        off[s] += n
        length[s] -= n
    return check_ip_header(data, off, length, nh, th, anno, idx, 0, True, bad_src, good_dst, out)


@_jit
def ip_options_todo(data: np.ndarray, nh: np.ndarray, idx: np.ndarray, out: np.ndarray) -> int:
    """``out[i]`` = 1 for packets whose IP header (at the network header annotation,
    inside the slot) has options; returns their number."""
    cnt = 0
    w = data.shape[1]
    for i in range(idx.shape[0]):
        s = idx[i]
        ip = np.int64(nh[s])
        out[i] = 0
        if ip < 0 or ip >= w:
            continue
        hl = np.int64(data[s, ip] & 0xF) << 2
        if hl > 20 and ip + hl <= w:
            out[i] = 1
            cnt += 1
    return cnt


@_jit
def fix_ip_src(data: np.ndarray, nh: np.ndarray, anno: np.ndarray, idx: np.ndarray, anno_off: int,
               addr: int) -> int:
    """FixIPSrc: packets with the annotation byte at ``anno_off`` set (and an IP
    header in the slot) get source ``addr``, a fresh header checksum and the
    annotation cleared.  Returns the number changed."""
    cnt = 0
    w = data.shape[1]
    for i in range(idx.shape[0]):
        s = idx[i]
        if anno[s, anno_off] == 0:
            continue
        ip = np.int64(nh[s])
        if ip < 0 or ip + 20 > w:
            continue
        anno[s, anno_off] = 0
        put32(data, s, ip + 12, addr)
        hlen = np.int64(data[s, ip] & 0xF) << 2
        if ip + hlen > w:
            hlen = w - ip
        put16(data, s, ip + 10, 0)
        put16(data, s, ip + 10, in_cksum(data, s, ip, hlen))
        cnt += 1
    return cnt


@_jit
def count_too_big(off: np.ndarray, length: np.ndarray, nh: np.ndarray, idx: np.ndarray, mtu: int) -> int:
    """IPFragmenter's test: how many packets have an IP part (network header to
    end, at least 20 bytes) longer than ``mtu``."""
    cnt = 0
    for i in range(idx.shape[0]):
        s = idx[i]
        ip = np.int64(nh[s])
        if ip < 0:
            continue
        netlen = np.int64(off[s]) + length[s] - ip
        if netlen > mtu and netlen >= 20:
            cnt += 1
    return cnt


@_jit
def ptype_verdicts(ptype: np.ndarray, idx: np.ndarray, a: int, b: int, out: np.ndarray) -> int:
    """``out[i]`` = 1 for packets whose packet type is ``a`` or ``b``; returns their number."""
    cnt = 0
    for i in range(idx.shape[0]):
        t = ptype[idx[i]]
        if t == a or t == b:
            out[i] = 1
            cnt += 1
        else:
            out[i] = 0
    return cnt


def warm() -> None:
    """Compile (or load from the cache) every kernel here once, e.g. in a zygote
    before it forks, so routers using these elements start without delay."""
    data = np.zeros((2, 256), np.uint8)
    data[:, 64] = 0x45
    off = np.full(2, 64, np.int32)
    length = np.full(2, 40, np.int32)
    hdr = np.full(2, -1, np.int32)
    anno = np.zeros((2, 48), np.uint8)
    ptype = np.zeros(2, np.uint8)
    idx = np.arange(2, dtype=np.int32)
    out = np.zeros(2, np.int32)
    empty = np.zeros(0, np.int64)
    check_ip_header(data, off, length, hdr.copy(), hdr.copy(), anno, idx, 0, True, empty, empty, out)
    nh, th = off.copy(), off + 20
    mark_ip_header(data, off, nh, th, idx, 0)
    dec_ip_ttl(data, nh, idx, True, out)
    set_ip_checksum(data, off, length, nh, idx, out)
    set_ip_dscp(data, nh, idx, 4)
    mark_ip_ce(data, nh, idx, True, out)
    store_ip_address(data, off, length, nh, th, anno, idx, -16, True, 1, out)
    push_header(data, off.copy(), length.copy(), hdr.copy(), hdr.copy(), idx, np.zeros(14, np.uint8), 14)
    ether_mirror(data, off, idx)
    ether_rewrite(data, off, hdr, idx, np.zeros(12, np.uint8), 0, 0)
    host_ether_filter(data, off, length, ptype, idx, 0, np.zeros(6, np.uint8), False, True, out)
    ip_encap(data, off.copy(), length.copy(), nh.copy(), th.copy(), anno, idx, np.zeros(20, np.uint8), False, 0)
    udp_ip_encap(data, off.copy(), length.copy(), nh.copy(), th.copy(), anno, idx, 1, 2, 3, 4, False, True, 0)
    check_transport(data, off, length, nh, th, idx, 6, out)
    check_icmp(data, off, length, nh, th, idx, out)
    set_transport_checksum(data, off, length, nh, th, idx, 17, False, out)
    starts = np.zeros(1, np.int64)
    labels = np.zeros(1, np.int32)
    ports = np.zeros(1, np.int32)
    range_lookup(anno, idx, starts, labels, ports, starts, out)
    linear_lookup(anno, idx, starts, starts, ports, starts, out)
    hk = np.full(4, -1, np.int64)
    arp_encap_resolved(data, off.copy(), length.copy(), hdr.copy(), hdr.copy(), anno, idx, 0, hk,
                       np.zeros(4, np.int32), np.zeros((1, 6), np.uint8), np.zeros((1, 4), np.int64),
                       0, 0, 0, 0, 1000,
                       np.zeros(6, np.uint8), 0, np.zeros(2, np.int64))
    ip_input_combo(data, off.copy(), length.copy(), hdr.copy(), hdr.copy(), anno, idx, 1, empty, empty, out)
    ip_options_todo(data, nh, idx, out)
    fix_ip_src(data, nh, anno, idx, 19, 1)
    count_too_big(off, length, nh, idx, 1500)
    ptype_verdicts(ptype, idx, 1, 2, out)
