"""Random and mutated packets for the fuzzer, written straight into a pool.

Two stages:

1. A *template bank*: a few thousand well-formed frames built here with
   ``struct`` (no scapy): IPv4 carrying TCP (with options, FTP ``PORT``
   commands, HTTP-ish payloads), UDP, ICMP echo and ICMP errors quoting an
   inner packet, IP options (record route, timestamp, source routes, router
   alert, bogus ones), fragment trains, other protocols; each as raw IP, in an
   Ethernet or 802.1Q frame; ARP requests and replies; non-IP Ethernet frames.
   Addresses and ports come from small pools (plus the addresses the fuzz
   configurations use) so that flows recur, replies find mappings and
   fragments find each other.
2. A numba kernel that fills a batch of pool slots from the bank.  Per packet
   it picks a template, optionally re-randomises addresses, ports, IDs and TCP
   flags (recomputing checksums), and then applies one of: nothing (a valid
   packet), 1-3 *mutations* (bit flips, random bytes, truncation at a header
   boundary, IHL < 5 or past the end, total length beyond the buffer or inside
   the header, bad IP or transport checksums, fragment offset/MF, bogus
   options with length 0/1/past the end and wrong record-route pointers,
   TTL 0/1, protocol/version/data-offset/UDP-length/ICMP-type damage),
   truncation at a header boundary, pure random bytes, zero length, or a very
   long packet (up to the whole slot).  It then places the packet in its slot
   (usually after the headroom, sometimes at the very start or the very end of
   the slot) and sets random annotations: network/transport/MAC header offsets
   that are right, unset, past the end or negative; zero, plausible or random
   annotation bytes; packet types; timestamps that mostly advance, sometimes
   zero or wild.

Everything random in a batch derives from one 64-bit seed (the kernel reseeds
numba's generator with it), so the runner can regenerate any batch exactly.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

import numba as nb
import numpy as np

from clickos.packet.pool import ANNO_SIZE, DEFAULT_SLOT_SIZE, PacketPool

# -- template building (plain Python, struct) -------------------------------------------------------

# Addresses the fuzz configurations name (patterns, interfaces, routes), a few
# special ones, and a handful of ordinary hosts.
ADDRESS_POOL: tuple[str, ...] = (
    "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.255", "1.0.0.1", "1.0.0.2", "1.1.1.1",
    "2.2.2.2", "2.0.0.1", "2.0.0.2", "3.0.0.1", "3.0.0.2", "3.0.0.7", "18.26.4.44", "192.0.2.1",
    "198.51.100.7", "203.0.113.9", "255.255.255.255", "0.0.0.0", "224.0.0.5", "239.1.2.3",
    "127.0.0.1", "8.8.8.8",
)
PORT_POOL: tuple[int, ...] = (0, 1, 20, 21, 22, 53, 80, 443, 1024, 1025, 1026, 1027, 5000, 8080, 65535)
ETHER_POOL: tuple[bytes, ...] = (
    b"\xff\xff\xff\xff\xff\xff", b"\x01\x00\x5e\x00\x00\x05", b"\x01\x01\x01\x01\x01\x01",
    b"\x02\x02\x02\x02\x02\x02", b"\x00\x01\x02\x03\x04\x05", b"\x00\x00\x00\x00\x00\x00",
)

# Template groups (the kernel draws a group by the profile's weights, then a template).
G_IP, G_ETHER_IP, G_ARP, G_ETHER_OTHER = range(4)
NGROUPS = 4

# Profiles: weights of the four groups.
PROFILES: dict[str, tuple[float, float, float, float]] = {
    "ip": (0.86, 0.10, 0.02, 0.02),
    "ether": (0.20, 0.50, 0.20, 0.10),
    "arp": (0.05, 0.15, 0.75, 0.05),
}

# Packet categories drawn per packet (cumulative weights below).
CAT_VALID, CAT_MUTATED, CAT_TRUNC, CAT_RANDOM, CAT_LONG, CAT_EMPTY = range(6)
CATEGORY_WEIGHTS: tuple[float, ...] = (0.28, 0.46, 0.09, 0.10, 0.05, 0.02)

# The longest packet made: a default slot.  (Not the pool's current slot size:
# an element that prepends headers to a slot-sized packet widens every slot, and
# chasing the new size would make the next packets longer still.)
MAX_PACKET = DEFAULT_SLOT_SIZE

# Template flag bits
F_KEEP = 1  # do not re-randomise fields (fragments of one datagram must agree)


def _a(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data``."""
    if len(data) & 1:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def ip_header(src: bytes, dst: bytes, proto: int, payload_len: int, *, ttl: int = 64, tos: int = 0,
              ident: int = 0, frag: int = 0, options: bytes = b"") -> bytes:
    """An IPv4 header (options padded with EOL to a word) with a correct checksum."""
    if len(options) % 4:
        options += b"\0" * (4 - len(options) % 4)
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, (ihl * 4 + payload_len) & 0xFFFF, ident & 0xFFFF,
                    frag & 0xFFFF, ttl & 0xFF, proto & 0xFF, 0, src, dst) + options
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:]


def _pseudo(src: bytes, dst: bytes, proto: int, seg: bytes) -> int:
    return checksum(src + dst + struct.pack("!BBH", 0, proto, len(seg) & 0xFFFF) + seg)


def tcp_segment(src: bytes, dst: bytes, sport: int, dport: int, *, seq: int = 0, ack: int = 0, flags: int = 0x10,
                window: int = 8192, options: bytes = b"", payload: bytes = b"", urp: int = 0) -> bytes:
    if len(options) % 4:
        options += b"\x01" * (4 - len(options) % 4)
    doff = 5 + len(options) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, doff << 4, flags & 0xFF,
                    window, 0, urp) + options
    seg = h + payload
    c = _pseudo(src, dst, 6, seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp_datagram(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes = b"", *,
                 zero_checksum: bool = False) -> bytes:
    seg = struct.pack("!HHHH", sport, dport, (8 + len(payload)) & 0xFFFF, 0) + payload
    if zero_checksum:
        return seg
    c = _pseudo(src, dst, 17, seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def icmp_message(icmp_type: int, code: int, rest: bytes, payload: bytes = b"") -> bytes:
    m = struct.pack("!BBH", icmp_type, code, 0) + rest[:4].ljust(4, b"\0") + payload
    return m[:2] + struct.pack("!H", checksum(m)) + m[4:]


def ether_header(dst: bytes, src: bytes, ethertype: int, vlan: int | None = None) -> bytes:
    if vlan is None:
        return dst + src + struct.pack("!H", ethertype)
    return dst + src + struct.pack("!HHH", 0x8100, vlan, ethertype)


def arp_frame(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes, dst: bytes, *, htype: int = 1,
              ptype: int = 0x0800, hlen: int = 6, plen: int = 4) -> bytes:
    return (ether_header(dst, sha, 0x0806)
            + struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + sha + spa + tha + tpa)


@dataclass
class Template:
    """One frame of the bank: its bytes, where its IP header starts (-1: none),
    its group, flags, and the index of the next fragment of its datagram (-1)."""

    data: bytes
    l3: int
    group: int
    flags: int = 0
    next: int = -1


class _Builder:
    """Builds the template bank from one ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.addrs = [_a(a) for a in ADDRESS_POOL]

    # -- pieces ---------------------------------------------------------------------------------
    def addr(self) -> bytes:
        r = self.rng
        if r.random() < 0.85:
            return r.choice(self.addrs)
        return bytes(r.getrandbits(8) for _ in range(4))

    def port(self) -> int:
        r = self.rng
        return r.choice(PORT_POOL) if r.random() < 0.8 else r.randrange(65536)

    def ether(self) -> bytes:
        r = self.rng
        return r.choice(ETHER_POOL) if r.random() < 0.8 else bytes(r.getrandbits(8) for _ in range(6))

    def rand_bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def payload(self, maxlen: int = 200) -> bytes:
        r = self.rng
        k = r.random()
        if k < 0.3:
            return b""
        if k < 0.4:
            a = [r.randrange(256) for _ in range(4)]
            p = r.choice([20, 21, 1024, 5000, r.randrange(65536)])
            return f"PORT {a[0]},{a[1]},{a[2]},{a[3]},{p >> 8},{p & 255}\r\n".encode()
        if k < 0.45:
            return r.choice([b"PORT 300,1,1,1,1,1\r\n", b"PORT 1,2,3\r\n", b"PORT \r\n", b"PORT", b"PORT 1,1,1,1,1,1"])
        if k < 0.55:
            return r.choice([b"GET /index.php HTTP/1.0\r\n\r\n", b"GET /etc/passwd HTTP/1.1\r\n",
                             b"id=1 UNION   SELECT * from users", b"cmd.exe /c dir", b"attack"])
        if k < 0.9:
            return self.rand_bytes(r.randrange(1, maxlen))
        return self.rand_bytes(r.randrange(maxlen, 1460))

    def tcp_options(self) -> bytes:
        r = self.rng
        opts = b""
        for _ in range(r.randrange(0, 4)):
            k = r.randrange(7)
            if k == 0:
                opts += struct.pack("!BBH", 2, 4, r.choice([536, 1460, 0]))          # MSS
            elif k == 1:
                opts += b"\x01\x03\x03" + bytes([r.randrange(15)])                   # NOP, window scale
            elif k == 2:
                opts += b"\x04\x02"                                                  # SACK permitted
            elif k == 3:
                n = r.randrange(1, 4)
                opts += bytes([5, 2 + 8 * n]) + b"".join(struct.pack("!II", r.getrandbits(32), r.getrandbits(32))
                                                         for _ in range(n))        # SACK blocks
            elif k == 4:
                opts += struct.pack("!BBII", 8, 10, r.getrandbits(32), r.getrandbits(32))  # timestamps
            elif k == 5:
                opts += bytes([r.randrange(256), r.choice([0, 1, 2, 40, r.randrange(256)])])  # bogus
            else:
                opts += b"\x01"
        return opts[:40]

    def ip_options(self) -> bytes:
        r = self.rng
        k = r.randrange(9)
        if k == 0:      # record route, some slots used
            n = r.randrange(1, 10)
            used = r.randrange(0, n + 1)
            return bytes([7, 3 + 4 * n, 4 + 4 * used]) + b"".join(self.addr() for _ in range(n))
        if k == 1:      # timestamp, flag 0 / 1 / 3
            flag = r.choice([0, 1, 3])
            per = 4 if flag == 0 else 8
            n = r.randrange(1, 36 // per + 1)
            used = r.randrange(0, n + 1)
            body = b"".join((self.addr() if per == 8 else b"") + struct.pack("!I", r.getrandbits(32))
                            for _ in range(n))
            return bytes([68, 4 + per * n, 5 + per * used, (r.randrange(16) << 4) | flag]) + body
        if k in (2, 3):  # loose / strict source route
            n = r.randrange(1, 9)
            used = r.randrange(0, n + 1)
            return bytes([131 if k == 2 else 137, 3 + 4 * n, 4 + 4 * used]) + b"".join(self.addr() for _ in range(n))
        if k == 4:      # router alert
            return b"\x94\x04\x00\x00"
        if k == 5:      # NOPs then EOL
            return b"\x01" * r.randrange(1, 4) + b"\x00"
        if k == 6:      # security option
            return bytes([130, 11]) + self.rand_bytes(9)
        if k == 7:      # combination
            return b"\x01" + self.ip_options_simple() + b"\x01\x00"
        return bytes([r.randrange(256), r.randrange(256)]) + self.rand_bytes(r.randrange(0, 20))  # junk

    def ip_options_simple(self) -> bytes:
        n = self.rng.randrange(1, 4)
        return bytes([7, 3 + 4 * n, 4]) + bytes(4 * n)

    # -- IP packets -------------------------------------------------------------------------------
    def transport(self, src: bytes, dst: bytes) -> tuple[int, bytes]:
        """(protocol, transport bytes) for one packet."""
        r = self.rng
        k = r.random()
        if k < 0.38:
            flags = r.choice([0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, r.randrange(256)])
            sport = self.port()
            dport = 21 if r.random() < 0.1 else self.port()
            return 6, tcp_segment(src, dst, sport, dport, seq=r.getrandbits(32), ack=r.getrandbits(32),
                                  flags=flags, options=self.tcp_options(), payload=self.payload(),
                                  urp=r.choice([0, 0, 0, r.randrange(65536)]))
        if k < 0.68:
            return 17, udp_datagram(src, dst, self.port(), self.port(), self.payload(),
                                    zero_checksum=r.random() < 0.2)
        if k < 0.8:     # echo request / reply
            t = r.choice([8, 0, 8, 13, 14, 17, 18])
            return 1, icmp_message(t, 0, struct.pack("!HH", r.choice([0, 1, 5, 1024, r.randrange(65536)]),
                                                     r.randrange(65536)), self.payload(64))
        if k < 0.93:    # ICMP error quoting an inner packet
            inner_src, inner_dst = dst, src
            proto, seg = self.transport_simple(inner_src, inner_dst)
            inner = ip_header(inner_src, inner_dst, proto, len(seg), ident=r.randrange(65536)) + seg
            inner = inner[: r.choice([28, 28, 36, 48, len(inner), 20, 24])]
            t, code = r.choice([(3, 0), (3, 1), (3, 3), (3, 4), (11, 0), (11, 1), (12, 0), (5, 1), (4, 0),
                                (r.randrange(256), r.randrange(256))])
            rest = struct.pack("!HH", 0, r.choice([0, 576, 1500])) if t == 3 else (
                bytes([r.randrange(40), 0, 0, 0]) if t == 12 else (self.addr() if t == 5 else b"\0\0\0\0"))
            return 1, icmp_message(t, code, rest, inner)
        proto = r.choice([0, 2, 47, 50, 132, 255, r.randrange(256)])
        return proto, self.rand_bytes(r.randrange(0, 80))

    def transport_simple(self, src: bytes, dst: bytes) -> tuple[int, bytes]:
        r = self.rng
        k = r.random()
        if k < 0.45:
            return 6, tcp_segment(src, dst, self.port(), self.port(), seq=r.getrandbits(32), flags=0x02)
        if k < 0.85:
            return 17, udp_datagram(src, dst, self.port(), self.port(), self.rand_bytes(r.randrange(0, 16)))
        return 1, icmp_message(8, 0, struct.pack("!HH", r.randrange(65536), 1), b"ping")

    def ip_packet(self) -> list[bytes]:
        """One IP packet, or the fragments of one (a list of IP packets)."""
        r = self.rng
        src, dst = self.addr(), self.addr()
        proto, seg = self.transport(src, dst)
        opts = self.ip_options() if r.random() < 0.15 else b""
        ttl = r.choice([64, 64, 255, 1, 2, 0, 128])
        tos = r.choice([0, 0, 0, 1, 2, 3, 0x10, 0xB8, r.randrange(256)])
        ident = r.choice([0, 1, 2, 3, 7, 1000, r.randrange(65536)])
        df = 0x4000 if r.random() < 0.2 else 0
        if r.random() < 0.12 and len(seg) >= 16:
            # fragments: split the transport bytes at multiples of eight
            cuts = sorted({8 * r.randrange(1, max(2, len(seg) // 8)) for _ in range(r.randrange(1, 4))})
            cuts = [c for c in cuts if 0 < c < len(seg)] or [8]
            bounds = [0] + cuts + [len(seg)]
            out = []
            for i in range(len(bounds) - 1):
                a, b = bounds[i], bounds[i + 1]
                mf = 0x2000 if i < len(bounds) - 2 else 0
                piece = seg[a:b]
                out.append(ip_header(src, dst, proto, len(piece), ttl=ttl, tos=tos, ident=ident,
                                     frag=mf | (a >> 3), options=opts if i == 0 else b"") + piece)
            if r.random() < 0.3:
                r.shuffle(out)
            return out
        pkt = ip_header(src, dst, proto, len(seg), ttl=ttl, tos=tos, ident=ident, frag=df, options=opts) + seg
        if r.random() < 0.04:
            pkt += self.rand_bytes(r.randrange(1, 30))   # link-level padding after the IP datagram
        return [pkt]

    # -- frames -----------------------------------------------------------------------------------
    def ether_wrap(self, pkt: bytes) -> tuple[bytes, int]:
        r = self.rng
        if r.random() < 0.15:
            return ether_header(self.ether(), self.ether(), 0x0800, vlan=r.randrange(65536)) + pkt, 18
        return ether_header(self.ether(), self.ether(), 0x0800) + pkt, 14

    def arp(self) -> bytes:
        r = self.rng
        op = r.choice([1, 2, 1, 2, 3, r.randrange(65536)])
        sha, tha = self.ether(), self.ether()
        dst = b"\xff" * 6 if op == 1 else self.ether()
        f = arp_frame(op, sha, self.addr(), tha, self.addr(), dst,
                      htype=1 if r.random() < 0.9 else r.randrange(65536),
                      ptype=0x0800 if r.random() < 0.9 else r.randrange(65536),
                      hlen=6 if r.random() < 0.95 else r.randrange(256),
                      plen=4 if r.random() < 0.95 else r.randrange(256))
        if r.random() < 0.5:
            f += bytes(60 - len(f)) if len(f) < 60 else b""
        return f

    def ether_other(self) -> bytes:
        r = self.rng
        t = r.choice([0x86DD, 0x8847, 0x88CC, 0x0806, 0x0800, 0x8100, r.randrange(65536)])
        return ether_header(self.ether(), self.ether(), t) + self.rand_bytes(r.randrange(0, 120))


@dataclass
class Bank:
    """The template bank as arrays the kernel reads."""

    data: np.ndarray      # (ntemplates, width) uint8
    length: np.ndarray    # int32
    l3: np.ndarray        # int32, -1 = no IP header
    flags: np.ndarray     # int32
    next: np.ndarray      # int32, next fragment of the same datagram or -1
    gstart: np.ndarray    # int32 per group: first template
    gcount: np.ndarray    # int32 per group: how many
    addrs: np.ndarray     # uint32 address pool
    ports: np.ndarray     # int32 port pool

    @property
    def size(self) -> int:
        return len(self.length)


def build_bank(seed: int, size: int = 3000) -> Bank:
    """Build ``size`` (roughly) templates, deterministically from ``seed``."""
    b = _Builder(random.Random(seed))
    groups: list[list[Template]] = [[] for _ in range(NGROUPS)]
    n_ip, n_eth, n_arp = int(size * 0.55), int(size * 0.30), int(size * 0.10)
    n_other = size - n_ip - n_eth - n_arp

    def add_ip(group: int, target: int) -> None:
        while len(groups[group]) < target:
            pkts = b.ip_packet()
            first = len(groups[group])
            for i, p in enumerate(pkts):
                if group == G_ETHER_IP:
                    frame, l3 = b.ether_wrap(p)
                else:
                    frame, l3 = p, 0
                groups[group].append(Template(frame, l3, group, F_KEEP if len(pkts) > 1 else 0,
                                              first + i + 1 if i + 1 < len(pkts) else -1))

    add_ip(G_IP, n_ip)
    add_ip(G_ETHER_IP, n_eth)
    while len(groups[G_ARP]) < n_arp:
        groups[G_ARP].append(Template(b.arp(), -1, G_ARP))
    while len(groups[G_ETHER_OTHER]) < n_other:
        groups[G_ETHER_OTHER].append(Template(b.ether_other(), -1, G_ETHER_OTHER))
    templates: list[Template] = []
    gstart, gcount = [], []
    for g in groups:
        base = len(templates)
        gstart.append(base)
        gcount.append(len(g))
        for t in g:
            if t.next >= 0:
                t.next += base
            templates.append(t)
    width = max(len(t.data) for t in templates)
    data = np.zeros((len(templates), width), np.uint8)
    for i, t in enumerate(templates):
        data[i, : len(t.data)] = np.frombuffer(t.data, np.uint8)
    return Bank(
        data=data,
        length=np.array([len(t.data) for t in templates], np.int32),
        l3=np.array([t.l3 for t in templates], np.int32),
        flags=np.array([t.flags for t in templates], np.int32),
        next=np.array([t.next for t in templates], np.int32),
        gstart=np.array(gstart, np.int32),
        gcount=np.array(gcount, np.int32),
        addrs=np.array([int.from_bytes(_a(a), "big") for a in ADDRESS_POOL], np.uint32),
        ports=np.array(PORT_POOL, np.int32),
    )


# -- the batch kernel ----------------------------------------------------------------------------------

_jit = nb.njit(cache=True, nogil=True, boundscheck=True)


@_jit
def _rint(n: int) -> int:
    """Uniform in [0, n) (0 when n <= 0)."""
    if n <= 0:
        return 0
    return np.random.randint(0, n)


@_jit
def _g16(b: np.ndarray, i: int) -> int:
    return (np.int64(b[i]) << 8) | np.int64(b[i + 1])


@_jit
def _p16(b: np.ndarray, i: int, v: int) -> None:
    b[i] = (v >> 8) & 0xFF
    b[i + 1] = v & 0xFF


@_jit
def _p32(b: np.ndarray, i: int, v: int) -> None:
    b[i] = (v >> 24) & 0xFF
    b[i + 1] = (v >> 16) & 0xFF
    b[i + 2] = (v >> 8) & 0xFF
    b[i + 3] = v & 0xFF


@_jit
def _sum(b: np.ndarray, start: int, n: int) -> int:
    t = 0
    i = start
    while i + 1 < start + n:
        t += (np.int64(b[i]) << 8) | np.int64(b[i + 1])
        i += 2
    if n & 1:
        t += np.int64(b[start + n - 1]) << 8
    return t


@_jit
def _fold(t: int) -> int:
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return t


@_jit
def _fix_ip_cksum(b: np.ndarray, L: int, l3: int) -> None:
    if l3 < 0 or l3 + 20 > L:
        return
    hl = (np.int64(b[l3]) & 0xF) << 2
    if hl < 20 or l3 + hl > L:
        return
    b[l3 + 10] = 0
    b[l3 + 11] = 0
    _p16(b, l3 + 10, (~_fold(_sum(b, l3, hl))) & 0xFFFF)


@_jit
def _fix_l4_cksum(b: np.ndarray, L: int, l3: int) -> None:
    if l3 < 0 or l3 + 20 > L:
        return
    hl = (np.int64(b[l3]) & 0xF) << 2
    if hl < 20:
        return
    th = l3 + hl
    proto = b[l3 + 9]
    tlen = _g16(b, l3 + 2) - hl
    if tlen > L - th:
        tlen = L - th
    if tlen <= 0 or _g16(b, l3 + 6) & 0x3FFF:   # fragments keep their checksum
        return
    if proto == 6 and tlen >= 20:
        at = th + 16
    elif proto == 17 and tlen >= 8:
        at = th + 6
    elif proto == 1 and tlen >= 4:
        at = th + 2
    else:
        return
    b[at] = 0
    b[at + 1] = 0
    t = _sum(b, th, tlen)
    if proto != 1:
        t += _sum(b, l3 + 12, 8) + proto + tlen
    c = (~_fold(t)) & 0xFFFF
    if proto == 17 and c == 0:
        c = 0xFFFF
    _p16(b, at, c)


@_jit
def _randomize_fields(b: np.ndarray, L: int, l3: int, addrs: np.ndarray, ports: np.ndarray) -> None:
    """Re-draw addresses, ports, ID, TTL and TCP flags from the pools."""
    if l3 < 0 or l3 + 20 > L:
        return
    if np.random.random() < 0.6:
        _p32(b, l3 + 12, np.int64(addrs[_rint(len(addrs))]))
    if np.random.random() < 0.6:
        _p32(b, l3 + 16, np.int64(addrs[_rint(len(addrs))]))
    if np.random.random() < 0.3:
        _p16(b, l3 + 4, _rint(8))
    if np.random.random() < 0.1:
        b[l3 + 8] = _rint(3)
    hl = (np.int64(b[l3]) & 0xF) << 2
    th = l3 + hl
    proto = b[l3 + 9]
    if (proto == 6 or proto == 17) and th + 4 <= L and (_g16(b, l3 + 6) & 0x1FFF) == 0:
        if np.random.random() < 0.6:
            _p16(b, th, np.int64(ports[_rint(len(ports))]))
        if np.random.random() < 0.6:
            _p16(b, th + 2, np.int64(ports[_rint(len(ports))]))
        if proto == 6 and th + 14 <= L and np.random.random() < 0.3:
            fl = np.array([0x02, 0x12, 0x10, 0x11, 0x04, 0x18, 0x01, 0x14], np.uint8)
            b[th + 13] = fl[_rint(8)]


@_jit
def _boundary(L: int, l3: int, hl: int) -> int:
    """A length at a header boundary (or one byte either side of it)."""
    th = l3 + hl
    k = _rint(26)
    cuts = np.array([0, 1, l3 - 1, l3, l3 + 1, l3 + 2, l3 + 4, l3 + 8, l3 + 10, l3 + 12, l3 + 16, l3 + 19,
                     l3 + 20, th - 1, th, th + 1, th + 2, th + 4, th + 7, th + 8, th + 12, th + 13, th + 19,
                     th + 20, th + 8 + 20, L - 1])
    v = cuts[k]
    if v < 0:
        v = 0
    if v > L:
        v = L
    return v


@_jit
def _mutate(b: np.ndarray, L: int, l3: int, maxlen: int) -> int:
    """Apply one random mutation to ``b[:L]``; returns the new length."""
    if l3 < 0:
        l3 = 14 if L > 34 and np.random.random() < 0.5 else 0
    ipok = l3 + 20 <= L
    hl = ((np.int64(b[l3]) & 0xF) << 2) if l3 < L else 20
    th = l3 + hl
    op = _rint(19)
    if op == 0 or (not ipok and op < 14):           # bit flip
        if L > 0:
            p = _rint(L)
            b[p] ^= np.uint8(1 << _rint(8))
        return L
    if op == 1:                                      # a few random bytes in the first 64
        for _ in range(1 + _rint(4)):
            if L > 0:
                b[_rint(min(L, 64))] = _rint(256)
        return L
    if op == 2:                                      # IHL anything (0..15: below 5, past the end)
        b[l3] = (b[l3] & 0xF0) | _rint(16)
        return L
    if op == 3:                                      # total length: tiny, inside header, past buffer, random
        k = _rint(7)
        v = 0
        if k == 0:
            v = 0
        elif k == 1:
            v = _rint(20)
        elif k == 2:
            v = hl - 1
        elif k == 3:
            v = L - l3 + 1 + _rint(64)
        elif k == 4:
            v = 65535
        elif k == 5:
            v = L - l3 - 1 - _rint(8)
        else:
            v = _rint(65536)
        _p16(b, l3 + 2, v & 0xFFFF)
        return L
    if op == 4:                                      # bad IP checksum
        b[l3 + 10] ^= np.uint8(1 + _rint(255))
        return L
    if op == 5:                                      # fragment offset / flags
        k = _rint(6)
        if k == 0:
            _p16(b, l3 + 6, 0x2000)
        elif k == 1:
            _p16(b, l3 + 6, _rint(0x2000))
        elif k == 2:
            _p16(b, l3 + 6, 0x2000 | _rint(0x2000))
        elif k == 3:
            _p16(b, l3 + 6, 0x1FFF)
        elif k == 4:
            _p16(b, l3 + 6, 0x6000 | _rint(4))
        else:
            _p16(b, l3 + 6, _rint(65536))
        return L
    if op == 6:                                      # TTL 0 / 1
        b[l3 + 8] = _rint(2)
        return L
    if op == 7:                                      # bogus IP options
        if hl <= 20:
            nhl = 24 + 4 * _rint(10)
            b[l3] = (b[l3] & 0xF0) | (nhl >> 2)
            hl = nhl
        o = l3 + 20
        end = min(l3 + hl, L)
        if o + 3 <= end:
            types = np.array([7, 68, 131, 137, 148, 130, 0, 1, 25, 255], np.int64)
            b[o] = types[_rint(len(types))]
            k = _rint(6)
            if k == 0:
                b[o + 1] = 0
            elif k == 1:
                b[o + 1] = 1
            elif k == 2:
                b[o + 1] = 2
            elif k == 3:
                b[o + 1] = min(255, hl - 20 + 1 + _rint(8))   # past the end of the header
            else:
                b[o + 1] = _rint(256)
            k = _rint(5)
            if k == 0:
                b[o + 2] = 0
            elif k == 1:
                b[o + 2] = 1 + _rint(3)       # pointer inside the option header
            elif k == 2:
                b[o + 2] = 5 + 4 * _rint(3)   # misaligned
            elif k == 3:
                b[o + 2] = 250
            else:
                b[o + 2] = _rint(256)
            if o + 4 <= end and np.random.random() < 0.5:
                b[o + 3] = _rint(256)     # timestamp overflow/flags
        return L
    if op == 8:                                      # protocol
        protos = np.array([0, 1, 6, 17, 47, 4, 41, 255], np.int64)
        b[l3 + 9] = protos[_rint(len(protos))] if np.random.random() < 0.8 else _rint(256)
        return L
    if op == 9:                                      # version
        b[l3] = (b[l3] & 0x0F) | (_rint(16) << 4)
        return L
    if op == 10:                                     # transport checksum
        if th + 18 <= L:
            b[th + 16] ^= np.uint8(1 + _rint(255))
        if th + 8 <= L:
            b[th + 6] ^= np.uint8(1 + _rint(255))
        elif th + 4 <= L:
            b[th + 2] ^= np.uint8(1 + _rint(255))
        return L
    if op == 11:                                     # TCP data offset / UDP length
        if th + 13 <= L:
            b[th + 12] = (_rint(16) << 4) | (b[th + 12] & 0xF)
        if th + 6 <= L:
            lens = np.array([0, 1, 7, 8, 9, 65535], np.int64)
            if np.random.random() < 0.5:
                _p16(b, th + 4, lens[_rint(len(lens))])
        return L
    if op == 12:                                     # ICMP type / code
        if th + 2 <= L:
            types = np.array([0, 3, 4, 5, 8, 11, 12, 13, 14, 17, 18, 255], np.int64)
            b[th] = types[_rint(len(types))]
            b[th + 1] = _rint(16)
        return L
    if op == 13:                                     # address: broadcast, zero, multicast, loopback
        addrs = np.array([0xFFFFFFFF, 0, 0xE0000001, 0x7F000001, 0x0A0000FF], np.int64)
        _p32(b, l3 + 12 + 4 * _rint(2), addrs[_rint(len(addrs))])
        return L
    if op == 14:                                     # truncate at a header boundary
        return _boundary(L, l3, hl)
    if op == 15:                                     # truncate anywhere
        return _rint(L + 1)
    if op == 16:                                     # grow with garbage
        n = L + 1 + _rint(min(200, maxlen - L + 1)) if L < maxlen else L
        for i in range(L, n):
            b[i] = _rint(256)
        return n
    if op == 17:                                     # ethertype (frames)
        if L >= 14:
            types = np.array([0x0800, 0x0806, 0x8100, 0x86DD, 0x0000], np.int64)
            _p16(b, 12, types[_rint(len(types))])
        return L
    # op 18: a run of zero or 0xff bytes somewhere
    if L > 0:
        p = _rint(L)
        v = 0 if np.random.random() < 0.5 else 255
        for i in range(p, min(L, p + 1 + _rint(16))):
            b[i] = v
    return L


@_jit
def fill_batch(seed: int, idx: np.ndarray, data: np.ndarray, off: np.ndarray, length: np.ndarray,
               nh: np.ndarray, th: np.ndarray, mac: np.ndarray, anno: np.ndarray, ptype: np.ndarray,
               ts: np.ndarray, headroom: int, bdata: np.ndarray, blen: np.ndarray, bl3: np.ndarray,
               bflags: np.ndarray, bnext: np.ndarray, gstart: np.ndarray, gcount: np.ndarray,
               gcum: np.ndarray, ccum: np.ndarray, addrs: np.ndarray, ports: np.ndarray,
               ts_base: int, kinds: np.ndarray, max_len: int) -> None:
    """Fill the slots ``idx`` with one batch of fuzz packets (see the module docstring).

    ``gcum``/``ccum`` are cumulative group/category weights; ``kinds[i]``
    receives the category of packet i (for statistics).  Packets are at most
    ``max_len`` bytes (and never longer than a slot).
    """
    np.random.seed(seed)
    slot_size = data.shape[1]
    buf = np.zeros(slot_size + 64, np.uint8)
    maxlen = min(slot_size, max_len)
    train = -1
    for i in range(len(idx)):
        s = idx[i]
        # -- pick a template (continuing a fragment train half of the time)
        if train >= 0:
            t = train
        else:
            r = np.random.random()
            g = 0
            while g < len(gcum) - 1 and r >= gcum[g]:
                g += 1
            if gcount[g] == 0:
                g = 0
            t = gstart[g] + _rint(gcount[g])
        train = -1
        if bnext[t] >= 0 and np.random.random() < 0.6:
            train = bnext[t]
        L = blen[t]
        l3 = bl3[t]
        for k in range(L):
            buf[k] = bdata[t, k]
        if l3 >= 0 and (bflags[t] & 1) == 0 and np.random.random() < 0.7:
            _randomize_fields(buf, L, l3, addrs, ports)
            _fix_ip_cksum(buf, L, l3)
            _fix_l4_cksum(buf, L, l3)
        r = np.random.random()
        cat = 0
        while cat < len(ccum) - 1 and r >= ccum[cat]:
            cat += 1
        kinds[i] = cat
        if cat == 1:                                  # mutated
            for _ in range(1 + _rint(3)):
                L = _mutate(buf, L, l3, maxlen)
            if np.random.random() < 0.35:
                _fix_ip_cksum(buf, L, l3 if l3 >= 0 else 0)
        elif cat == 2:                                # truncated at a header boundary
            ll3 = l3 if l3 >= 0 else 14
            hl = ((np.int64(buf[ll3]) & 0xF) << 2) if ll3 < L else 20
            L = _boundary(L, ll3, hl)
        elif cat == 3:                                # pure random bytes
            r = np.random.random()
            if r < 0.5:
                L = _rint(65)
            elif r < 0.9:
                L = _rint(401)
            else:
                L = _rint(maxlen - headroom + 1)
            for k in range(L):
                buf[k] = _rint(256)
            if L > 0 and np.random.random() < 0.6:
                buf[0] = 0x40 | _rint(16)             # looks like IPv4
            if L >= 14 and np.random.random() < 0.2:
                buf[12] = 8
                buf[13] = 0
            l3 = 0
        elif cat == 4:                                # very long
            n = L + _rint(maxlen - L + 1) if L < maxlen else L
            for k in range(L, n):
                buf[k] = _rint(256)
            L = n
            if l3 >= 0 and l3 + 4 <= L and np.random.random() < 0.6:
                _p16(buf, l3 + 2, min(L - l3, 65535))
                _fix_ip_cksum(buf, L, l3)
        elif cat == 5:                                # empty
            L = 0
        # -- placement in the slot
        if L > slot_size:
            L = slot_size
        if L > slot_size - headroom:
            o = _rint(slot_size - L + 1)
        else:
            r = np.random.random()
            if r < 0.8:
                o = headroom
            elif r < 0.9:
                o = slot_size - L                     # at the very end of the slot
            elif r < 0.95:
                o = 0
            else:
                o = _rint(slot_size - L + 1)
        for k in range(L):
            data[s, o + k] = buf[k]
        off[s] = o
        length[s] = L
        # -- header annotations: right, unset, or wild
        r = np.random.random()
        if l3 < 0:
            l3x = 14 if L >= 14 else 0
        else:
            l3x = l3
        if r < 0.12:
            nh[s] = -1
            th[s] = -1
        elif r < 0.82:
            nh[s] = o + l3x
            if l3x < L:
                th[s] = o + l3x + ((np.int64(buf[l3x]) & 0xF) << 2)
            else:
                th[s] = o + l3x + 20
        else:
            wild = np.array([0, 0, 2, L, -5, L + 3, 14, -100, slot_size - o + 8], np.int64)
            nh[s] = o + wild[_rint(len(wild))]
            if np.random.random() < 0.1:
                th[s] = -1
            else:
                dt = np.array([20, 24, 0, 60, 200, -30, 4], np.int64)
                th[s] = nh[s] + dt[_rint(len(dt))]
        r = np.random.random()
        if l3 >= 14 and r < 0.8:
            mac[s] = o
        elif r < 0.6:
            mac[s] = -1
        else:
            wild = np.array([0, -14, L, -1, L + 20], np.int64)
            mac[s] = o + wild[_rint(len(wild))]
        # -- annotation bytes, packet type, timestamp
        r = np.random.random()
        if r < 0.45:
            for k in range(anno.shape[1]):
                anno[s, k] = 0
        elif r < 0.7:
            for k in range(anno.shape[1]):
                anno[s, k] = 0
            if l3x + 20 <= L:
                for k in range(4):
                    anno[s, k] = buf[l3x + 16 + k]
            anno[s, 16] = _rint(4)                    # paint
        else:
            for k in range(anno.shape[1]):
                anno[s, k] = _rint(256)
        ptype[s] = 0 if np.random.random() < 0.7 else _rint(7)
        r = np.random.random()
        if r < 0.8:
            ts[s] = ts_base + i * 1000
        elif r < 0.9:
            ts[s] = 0
        elif r < 0.99:
            ts[s] = np.random.randint(0, 1 << 50)
        else:
            ts[s] = np.random.randint(-(1 << 40), 1 << 62)


class PacketGenerator:
    """Fills pool slots with fuzz packets drawn from a template bank."""

    def __init__(self, seed: int, profile: str = "ip", bank: Bank | None = None) -> None:
        self.bank = bank if bank is not None else build_bank(seed)
        self.set_profile(profile)
        self.ccum = np.cumsum(np.array(CATEGORY_WEIGHTS, np.float64))
        self.ccum /= self.ccum[-1]
        self.kinds = np.zeros(256, np.int32)

    def set_profile(self, profile: str) -> None:
        w = np.array(PROFILES[profile], np.float64)
        self.profile = profile
        self.gcum = np.cumsum(w) / w.sum()

    def fill(self, pool: PacketPool, idx: np.ndarray, seed: int, ts_base: int) -> np.ndarray:
        """Write one batch into the (already allocated) slots ``idx`` of ``pool``.

        Returns the category of each packet (``CAT_*``).
        """
        b = self.bank
        if len(self.kinds) < len(idx):
            self.kinds = np.zeros(len(idx), np.int32)
        kinds = self.kinds[: len(idx)]
        p = pool
        fill_batch(np.int64(seed & 0x7FFFFFFF), idx, p.data, p.off, p.length, p.nh, p.th, p.mac,
                   p.anno, p.ptype, p.ts, p.headroom, b.data, b.length, b.l3, b.flags, b.next,
                   b.gstart, b.gcount, self.gcum, self.ccum, b.addrs, b.ports, np.int64(ts_base), kinds,
                   MAX_PACKET)
        return kinds.copy()


__all__ = ["ANNO_SIZE", "Bank", "PacketGenerator", "build_bank", "checksum", "ip_header", "tcp_segment",
           "udp_datagram", "icmp_message", "ether_header", "arp_frame", "PROFILES", "CATEGORY_WEIGHTS"]
