"""In-memory traffic for FromDevice: a ring of prebuilt frames copied into the pool.

A generator is described by options (see :class:`GenOptions`): protocol, frame
length, how many distinct flows, the address and port ranges the flows cover,
the payload.  At initialization every flow gets one template frame, built with
numpy for all flows at once (headers, IP and transport checksums); while the
router runs, a numba kernel copies the next BURST templates, round robin, into
fresh pool slots.  So generating costs one kernel call per batch, the same as
InfiniteSource, whatever the number of flows.

Flow ``i`` (0 <= i < flows) uses

- source address ``src + i % srcs``,
- destination address ``dst + (i // srcs) % dsts``,
- source port ``sport + (i // (srcs * dsts)) % (65536 - sport)``,

so flows are distinct as long as ``flows <= srcs * dsts * (65536 - sport)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from clickos.packet.pool import BROADCAST, HOST, MULTICAST

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)

PROTOS = {"udp": 17, "tcp": 6, "icmp": 1, "arp": 0}
# Smallest frame each protocol allows (Ethernet + IP + transport headers).
MIN_LENGTH = {"udp": 42, "tcp": 54, "icmp": 42, "arp": 42}
TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}
MAX_TEMPLATE_BYTES = 256 << 20


@dataclass
class GenOptions:
    """What a ``gen:`` binding generates (field names are the option names)."""

    proto: str = "udp"
    len: int = 64
    count: int = -1
    flows: int = 1
    src: bytes = bytes((10, 0, 0, 2))
    srcs: int = 1
    dst: bytes = bytes((10, 0, 1, 2))
    dsts: int = 1
    sport: int = 1024
    dport: int = 80
    smac: bytes = bytes((2, 0, 0, 0, 0, 2))
    dmac: bytes = bytes((2, 0, 0, 0, 0, 1))
    ttl: int = 64
    tcpflags: str = "A"
    payload: str = "zero"        # zero | random
    inject: bytes = b""           # bytes written into the payload of some flows
    inject_every: int = 0         # every Nth flow gets ``inject`` (0 = none)
    seed: int = 1
    warmup: int = 0               # packets left out of the rate measurement


def _ip_int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _put16(frames: np.ndarray, at: int, values: np.ndarray | int) -> None:
    v = np.asarray(values, np.int64)
    frames[:, at] = (v >> 8) & 0xFF
    frames[:, at + 1] = v & 0xFF


def _put32(frames: np.ndarray, at: int, values: np.ndarray | int) -> None:
    v = np.asarray(values, np.int64)
    for k in range(4):
        frames[:, at + k] = (v >> (24 - 8 * k)) & 0xFF


def _word_sum(rows: np.ndarray) -> np.ndarray:
    """Sum of big-endian 16-bit words of each row (an odd last byte is padded)."""
    if rows.shape[1] % 2:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], 1), np.uint8)], axis=1)
    w = rows.astype(np.uint32)
    return (w[:, 0::2] << 8 | w[:, 1::2]).sum(axis=1, dtype=np.uint64)


def _fold(total: np.ndarray) -> np.ndarray:
    t = total.astype(np.uint64)
    for _ in range(4):
        t = (t & 0xFFFF) + (t >> 16)
    return (~t) & 0xFFFF


def build_templates(o: GenOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames [flows, len] uint8, lengths int32, packet types uint8) for ``o``."""
    n, length = o.flows, o.len
    if o.proto not in PROTOS:
        raise ValueError(f"unknown protocol '{o.proto}' (udp, tcp, icmp or arp)")
    if length < MIN_LENGTH[o.proto]:
        raise ValueError(f"{o.proto} frames need at least {MIN_LENGTH[o.proto]} bytes")
    if n < 1:
        raise ValueError("flows must be at least 1")
    if n * length > MAX_TEMPLATE_BYTES:
        raise ValueError("flows * len is too large")
    i = np.arange(n, dtype=np.int64)
    src = (_ip_int(o.src) + i % max(o.srcs, 1)) & 0xFFFFFFFF
    dst = (_ip_int(o.dst) + (i // max(o.srcs, 1)) % max(o.dsts, 1)) & 0xFFFFFFFF
    span = max(65536 - o.sport, 1)
    sport = o.sport + (i // (max(o.srcs, 1) * max(o.dsts, 1))) % span
    f = np.zeros((n, length), np.uint8)
    rng = np.random.default_rng(o.seed)
    f[:, 0:6] = np.frombuffer(o.dmac, np.uint8)
    f[:, 6:12] = np.frombuffer(o.smac, np.uint8)
    if o.proto == "arp":
        f[:, 0:6] = 0xFF
        _put16(f, 12, 0x0806)
        _put16(f, 14, 1)
        _put16(f, 16, 0x0800)
        f[:, 18] = 6
        f[:, 19] = 4
        _put16(f, 20, 1)
        f[:, 22:28] = np.frombuffer(o.smac, np.uint8)
        _put32(f, 28, src)
        _put32(f, 38, dst)
    else:
        proto = PROTOS[o.proto]
        hl = {"udp": 8, "tcp": 20, "icmp": 8}[o.proto]
        paylen = length - 34 - hl
        if paylen > 0:
            if o.payload == "random":
                f[:, 34 + hl:] = rng.integers(0, 256, (n, paylen), dtype=np.uint8)
            elif o.payload != "zero":
                raise ValueError(f"unknown payload '{o.payload}' (zero or random)")
            if o.inject and o.inject_every > 0:
                k = len(o.inject)
                if k > paylen:
                    raise ValueError("inject string longer than the payload")
                rows = np.arange(0, n, o.inject_every)
                at = rng.integers(0, paylen - k + 1, len(rows))
                pat = np.frombuffer(o.inject, np.uint8)
                for r, a in zip(rows.tolist(), at.tolist(), strict=True):
                    f[r, 34 + hl + a: 34 + hl + a + k] = pat
        _put16(f, 12, 0x0800)
        f[:, 14] = 0x45
        _put16(f, 16, length - 14)
        _put16(f, 18, i & 0xFFFF)
        f[:, 22] = o.ttl
        f[:, 23] = proto
        _put32(f, 26, src)
        _put32(f, 30, dst)
        _put16(f, 24, _fold(_word_sum(f[:, 14:34])))
        if o.proto == "icmp":
            f[:, 34] = 8
            _put16(f, 38, i & 0xFFFF)
            _put16(f, 40, 1)
            _put16(f, 36, _fold(_word_sum(f[:, 34:])))
        else:
            _put16(f, 34, sport)
            _put16(f, 36, o.dport)
            seglen = length - 34
            if o.proto == "udp":
                _put16(f, 38, seglen)
                at = 40
            else:
                _put32(f, 38, (i * 7919) & 0xFFFFFFFF)
                f[:, 46] = 5 << 4
                f[:, 47] = sum(TCP_FLAGS[c] for c in o.tcpflags.upper() if c in TCP_FLAGS)
                _put16(f, 48, 0xFFFF)
                at = 50
            pseudo = _word_sum(f[:, 26:34]) + np.uint64(proto + seglen)
            c = _fold(pseudo + _word_sum(f[:, 34:]))
            if o.proto == "udp":
                c = np.where(c == 0, 0xFFFF, c)
            _put16(f, at, c)
    lengths = np.full(n, length, np.int32)
    dm = f[:, 0]
    ptypes = np.where((f[:, 0:6] == 0xFF).all(axis=1), BROADCAST,
                      np.where(dm & 1, MULTICAST, HOST)).astype(np.uint8)
    return f, lengths, ptypes


def pack_templates(frames: np.ndarray) -> np.ndarray:
    """The frames as rows of uint64 words (zero padded), ready for :func:`gen_fill`."""
    n, length = frames.shape
    width = (length + 7) // 8 * 8
    padded = np.zeros((n, width), np.uint8)
    padded[:, :length] = frames
    return padded.view(np.uint64).copy()


@_jit
def gen_fill(free: np.ndarray, nfree: int, n: int, data64: np.ndarray, off: np.ndarray,
             length: np.ndarray, ts: np.ndarray, anno64: np.ndarray, mac: np.ndarray, nh: np.ndarray,
             th: np.ndarray, ptype: np.ndarray, out: np.ndarray, tmpl64: np.ndarray, tlen: np.ndarray,
             tptype: np.ndarray, start: int, headroom: int, tstamp: int) -> int:
    """Pop ``n`` slots and copy templates ``start, start+1, ...`` (cyclically) into
    them, with a fresh header; returns their total length in bytes (the caller
    lowers ``nfree`` by ``n``).  ``headroom`` must be a multiple of 8."""
    w0 = headroom >> 3
    nt = tmpl64.shape[0]
    nw = tmpl64.shape[1]
    na = anno64.shape[1]
    k = start
    total = 0
    for i in range(n):
        # an unsigned slot number spares numba's negative-index fix-ups; the row
        # views let the copies compile to straight loops
        s = np.uintp(free[nfree - 1 - i])
        out[i] = s
        off[s] = headroom
        length[s] = tlen[k]
        total += tlen[k]
        ts[s] = tstamp
        arow = anno64[s]
        for a in range(na):
            arow[a] = 0
        mac[s] = headroom
        nh[s] = -1
        th[s] = -1
        ptype[s] = tptype[k]
        drow = data64[s, w0:w0 + nw]
        trow = tmpl64[k]
        for w in range(nw):
            drow[w] = trow[w]
        k += 1
        if k == nt:
            k = 0
    return total
