"""Helpers shared by the Ethernet, IP, ICMP and TCP/UDP element families.

- Internet checksum arithmetic on ``bytes`` (for elements that build packets
  one at a time in Python); the batch kernels live in
  :mod:`clickos.packet.netkernels`.
- Packet-pool helpers: making room in front of packets, copying annotations,
  creating new packets with header annotations.
- Click's standard "keyword" handlers: read one configuration argument, or
  reconfigure the element with one argument changed.
- Data handlers for IP and Ethernet address attributes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    join_args,
    parse_bool,
    parse_ether_address,
    parse_int,
    parse_ip_address,
    split_args,
    unparse_ether,
    unparse_ip,
)
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.packet.batch import Packet, PacketBatch
from clickos.packet.pool import PacketPool

if TYPE_CHECKING:
    from clickos.core.element import Element

# Annotation offsets (Click's packet_anno.hh).
DST_IP_ANNO = 0
PAINT_ANNO = 16
ICMP_PARAMPROB_ANNO = 17
FIX_IP_SRC_ANNO = 19
VLAN_TCI_ANNO = 20
AGGREGATE_ANNO = 20

# IP protocol numbers and a few header constants.
IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP = 1, 6, 17
IP_DF, IP_MF, IP_OFFMASK = 0x4000, 0x2000, 0x1FFF
IPOPT_EOL, IPOPT_NOP, IPOPT_RR, IPOPT_TS, IPOPT_LSRR, IPOPT_SSRR = 0, 1, 7, 68, 131, 137


# -- checksums ---------------------------------------------------------------------------------

def csum_sum(data: bytes | bytearray | memoryview) -> int:
    """The folded 16-bit one's complement sum of ``data`` (big-endian words)."""
    b = bytes(data)
    if len(b) & 1:
        b += b"\0"
    total = int(np.frombuffer(b, ">u2").sum(dtype=np.uint64)) if b else 0
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def in_cksum(data: bytes | bytearray | memoryview) -> int:
    """Click's ``click_in_cksum``: the Internet checksum of ``data`` as a 16-bit int."""
    return ~csum_sum(data) & 0xFFFF


def update_cksum(old_sum: int, old_hw: int, new_hw: int) -> int:
    """Incremental checksum update after a 16-bit word changed (RFC 1624)."""
    t = (~old_sum & 0xFFFF) + (~old_hw & 0xFFFF) + (new_hw & 0xFFFF)
    t = (t & 0xFFFF) + (t >> 16)
    return ~(t + (t >> 16)) & 0xFFFF


def pseudo_cksum(partial: int, iph: bytes, proto: int, tlen: int) -> int:
    """Finish a TCP/UDP checksum with the pseudo-header of IP header ``iph``.

    ``partial`` is ``in_cksum`` of the transport bytes.  A source-route option's
    final hop stands in for the destination, as in Click.
    """
    dst = iph[16:20]
    hl = (iph[0] & 0xF) << 2
    o = 20
    while o < hl:
        t = iph[o]
        if t == IPOPT_NOP:
            o += 1
            continue
        if t == IPOPT_EOL or o + 1 >= hl or iph[o + 1] < 2 or o + iph[o + 1] > hl:
            break
        if t in (IPOPT_SSRR, IPOPT_LSRR) and iph[o + 1] >= 7:
            dst = iph[o + iph[o + 1] - 4: o + iph[o + 1]]
            break
        o += iph[o + 1]
    c = (~partial & 0xFFFF) + csum_sum(iph[12:16] + dst) + (tlen & 0xFFFF) + proto
    c = (c & 0xFFFF) + (c >> 16)
    return ~(c + (c >> 16)) & 0xFFFF


def ip_to_int(addr: bytes) -> int:
    return int.from_bytes(addr, "big")


def int_to_ip(v: int) -> bytes:
    return (v & 0xFFFFFFFF).to_bytes(4, "big")


def is_multicast(addr: bytes) -> bool:
    return (addr[0] & 0xF0) == 0xE0


# -- packets -----------------------------------------------------------------------------------

def ensure_headroom(pool: PacketPool, idx: np.ndarray, n: int) -> None:
    """Make sure every packet in ``idx`` has at least ``n`` bytes of headroom.

    Packets without it are moved towards the end of their slot (header
    annotations move with them).  May widen the pool, so callers read
    ``pool.data`` afterwards.
    """
    low = pool.off[idx] < n
    if low.any():
        for s in idx[low].tolist():
            p = Packet(pool, s)
            p.push(n)
            p.pull(n)
    end = pool.off[idx].astype(np.int64) + pool.length[idx]
    if len(end) and int(end.max()) > pool.slot_size:
        pool.ensure_slot_size(int(end.max()))


def copy_annotations(pool: PacketPool, dst: int, src: int) -> None:
    """Click's ``copy_annotations``: user annotations, timestamp and packet type."""
    pool.anno[dst] = pool.anno[src]
    pool.ts[dst] = pool.ts[src]
    pool.ptype[dst] = pool.ptype[src]


def new_packet(pool: PacketPool, payload: bytes, headroom: int | None = None) -> Packet:
    """A fresh packet holding ``payload`` (annotations cleared)."""
    return Packet(pool, pool.new_packet(payload, headroom))


def set_ip_header(p: Packet, rel: int, hlen: int) -> None:
    """Click's ``set_ip_header``: network header at ``rel``, transport header ``hlen`` later."""
    p.set_network_header(rel)
    p.set_transport_header(rel + hlen)


def network_bytes(p: Packet) -> bytes:
    """The packet's bytes from its network header to the end."""
    nh = int(p.pool.nh[p.slot])
    end = p.offset + p.length
    return p.pool.data[p.slot, nh:end].tobytes() if nh < end else b""


def one_batch(pool: PacketPool, slots: list[int]) -> PacketBatch | None:
    return PacketBatch(pool, np.array(slots, np.int32)) if slots else None


def runs(ports: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs of equal values in ``ports`` as (port, start, end) triples."""
    n = len(ports)
    if n == 0:
        return []
    if n == 1 or (ports == ports[0]).all():
        return [(int(ports[0]), 0, n)]
    cuts = np.flatnonzero(ports[1:] != ports[:-1]) + 1
    bounds = [0] + cuts.tolist() + [n]
    return [(int(ports[bounds[k]]), bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)]


def push_runs(element: Element, batch: PacketBatch, ports: np.ndarray, single: bool = False) -> None:
    """Push ``batch`` out, keeping the packet order across outputs.

    Packets are pushed in maximal runs going to the same port, so the effects
    downstream happen in the same order as with one packet at a time.  Ports out
    of range (or -1) kill their packets.  With ``single`` (for elements that turn
    one packet into several), packets go out one at a time unless everything
    downstream is batch-transparent, so each travels the whole path before the
    next, as in Click.
    """
    n = len(ports)
    if n == 0:
        return
    if single and n > 1 and not getattr(element, "_split_ok", False):
        for i in range(n):
            element.checked_output_push(int(ports[i]), PacketBatch(batch.pool, batch.idx[i: i + 1]))
        return
    if n == 1 or (ports == ports[0]).all():
        element.checked_output_push(int(ports[0]), batch)
        return
    cuts = np.flatnonzero(ports[1:] != ports[:-1]) + 1
    start = 0
    for end in list(cuts.tolist()) + [n]:
        element.checked_output_push(int(ports[start]), PacketBatch(batch.pool, batch.idx[start:end]))
        start = end


def split_push(element: Element, batch: PacketBatch, ports: np.ndarray) -> None:
    """Push the packets of ``batch`` to the outputs named by ``ports``.

    When every output's downstream is batch-transparent the batch is split per
    port; otherwise packets go out in order-preserving runs (:func:`push_runs`).
    Packets for a missing output are killed.
    """
    nout = len(element.outputs)
    if getattr(element, "_split_ok", False):
        parts, rest = batch.split_rest(ports, nout)
        if rest is not None:
            rest.kill()
        for port, part in enumerate(parts):
            if part is not None:
                element.outputs[port].push(part)
    else:
        push_runs(element, batch, ports)


def compute_split_ok(element: Element) -> bool:
    """Whether all push outputs of ``element`` lead only to batch-transparent elements."""
    router = element.router
    for i, port in enumerate(element.outputs):
        if port.is_push and not router.push_path_transparent(element, i):
            return False
    return True


# -- AddressInfo names -------------------------------------------------------------------------

def resolver_of(element: Element) -> Any:
    """The element's name resolver (AddressInfo and friends), if the core provides one."""
    fn = getattr(element, "resolve_name", None)
    return fn if callable(fn) else None


# -- keyword handlers (Click's read_keyword_handler / reconfigure_keyword_handler) ---------------

_KEYWORD_ARG = re.compile(r"[A-Za-z_][A-Za-z0-9_:.?!]*\s+\S")


def _split_spec(spec: str) -> tuple[int, str]:
    if len(spec) > 2 and spec[0].isdigit() and spec[1] == " ":
        return int(spec[0]), spec[2:]
    return -1, spec


def _find_keyword(conf: list[str], argno: int, keyword: str) -> tuple[str | None, bool]:
    """Remove ``keyword`` arguments from ``conf`` and report (value, found_positional)."""
    a = Args(context=None).bind(conf)
    value = a.read(keyword, None)
    found = a.read_status
    a.strip()
    if not found and 0 <= argno < len(conf):
        if not _KEYWORD_ARG.match(conf[argno]):
            return conf[argno], True
    return (value if found else None), False


def configuration(element: Element) -> str:
    """The element's configuration as its ``config`` read handler reports it (Click's
    ``Element::configuration``), falling back to the configuration string."""
    router = getattr(element, "router", None)
    h = router.handlers.find(element, "config") if router is not None else None
    if h is not None and h.readable:
        return h.call_read()
    return element.config_string


def read_keyword(element: Element, spec: str) -> str:
    """The current value of configuration argument ``spec`` ("KEY" or "N KEY")."""
    argno, keyword = _split_spec(spec)
    conf = split_args(configuration(element))
    value, _ = _find_keyword(conf, argno, keyword)
    return value or ""


def reconfigure_keyword(element: Element, spec: str, value: str, errh: ErrorHandler) -> None:
    """Reconfigure ``element`` with argument ``spec`` set to ``value``."""
    argno, keyword = _split_spec(spec)
    conf = split_args(configuration(element))
    _, positional = _find_keyword(conf, argno, keyword)
    value = value.strip()
    if positional:
        conf[argno] = value
    else:
        conf.append(f"{keyword} {value}")
    new_config = join_args(conf)
    element.live_reconfigure(list(conf), errh)
    element.config_string = new_config


def add_keyword_handlers(element: Element, name: str, spec: str, read: bool = True,
                         write: bool = True, flags: int = 0) -> None:
    """Read/write handlers named ``name`` over configuration argument ``spec``."""
    if read:
        element.add_read_handler(name, lambda: read_keyword(element, spec), flags)
    if write:
        element.add_write_handler(name, lambda v, errh: reconfigure_keyword(element, spec, v, errh))


# -- data handlers -----------------------------------------------------------------------------

def add_ip_handler(element: Element, name: str, obj: Any, attr: str, write: bool = True,
                   flags: int = 0, as_int: bool = False) -> None:
    """Read (and write) an attribute holding an IP address (4 bytes, or an int)."""
    element.add_read_handler(name, lambda: unparse_ip(getattr(obj, attr)), flags)
    if write:
        res = resolver_of(element)

        def w(value: str, errh: ErrorHandler) -> None:
            try:
                a = parse_ip_address(value.strip(), res)
            except ConfigError:
                raise ConfigError("expected IP address") from None
            setattr(obj, attr, ip_to_int(a) if as_int else a)
        element.add_write_handler(name, w)


def add_ether_handler(element: Element, name: str, obj: Any, attr: str, write: bool = True,
                      after: Callable[[], None] | None = None) -> None:
    """Read (and write) an attribute holding a 6-byte Ethernet address."""
    element.add_read_handler(name, lambda: unparse_ether(getattr(obj, attr)))
    if write:
        res = resolver_of(element)

        def w(value: str, errh: ErrorHandler) -> None:
            try:
                setattr(obj, attr, parse_ether_address(value.strip(), res))
            except ConfigError:
                raise ConfigError("expected Ethernet address") from None
            if after is not None:
                after()
        element.add_write_handler(name, w)


def add_int_handler(element: Element, name: str, obj: Any, attr: str, write: bool = True,
                    lo: int | None = None, hi: int | None = None, what: str = "integer",
                    flags: int = 0, after: Callable[[], None] | None = None) -> None:
    """Read (and write) an integer attribute, with Click's data-handler messages."""
    element.add_read_handler(name, lambda: getattr(obj, attr), flags)
    if write:
        def w(value: str, errh: ErrorHandler) -> None:
            try:
                v = parse_int(value.strip())
            except ConfigError:
                v = None
            if v is None or (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ConfigError(f"expected {what}")
            setattr(obj, attr, v)
            if after is not None:
                after()
        element.add_write_handler(name, w, flags)


def add_bool_handler(element: Element, name: str, obj: Any, attr: str, flags: int = 0) -> None:
    """Read/write a boolean attribute."""
    element.add_read_handler(name, lambda: bool(getattr(obj, attr)), flags)

    def w(value: str, errh: ErrorHandler) -> None:
        try:
            setattr(obj, attr, parse_bool(value.strip()))
        except ConfigError:
            raise ConfigError("expected boolean") from None
    element.add_write_handler(name, w, flags)


def migrate_packet(old: PacketPool, slot: int, new: PacketPool) -> int:
    """Copy a packet held by an element of an old router into ``new`` (hot-swap).

    Returns the slot in ``new`` (the same slot when both pools are one).  The old
    slot is released.
    """
    if old is new:
        return slot
    o, n = int(old.off[slot]), int(old.length[slot])
    if o + n + 64 > new.slot_size:
        new.ensure_slot_size(o + n)
    s = new.alloc1(n)
    new.data[s, o: o + n] = old.data[slot, o: o + n]
    new.off[s] = o
    new.anno[s] = old.anno[slot]
    new.ts[s] = old.ts[slot]
    new.ptype[s] = old.ptype[slot]
    new.mac[s] = old.mac[slot]
    new.nh[s] = old.nh[slot]
    new.th[s] = old.th[slot]
    old.release1(slot)
    return s
