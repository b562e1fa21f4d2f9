"""IPAddrRewriter and IPAddrPairRewriter: Basic NAT (addresses only, no ports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clickos.core.args import Args
from clickos.core.confparse import unparse_ip
from clickos.core.errors import ErrorHandler
from clickos.core.handlers import DEPRECATED
from clickos.elements.tcpudp.rewriterbase import (
    MAPID_DEFAULT,
    RW_ADDMAP,
    Entry,
    FlowID,
    IPRewriterBase,
    read_annos,
)
from clickos.packet import flowtable as ft

if TYPE_CHECKING:
    from clickos.packet.pool import PacketPool


class IPAddrRewriter(IPRewriterBase):
    """IPAddrRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    Rewrites packets' source addresses (Basic NAT).

    Like IPRewriter, but a mapping concerns a source address only: ports are
    left alone and any IP packet qualifies.  A packet whose source address has
    a mapping gets the mapped source address; a packet whose destination
    address is a mapped address (a reply) gets the original address back as
    its destination.  Patterns may only change the source address, which is
    usually a range (``1.0.0.1-1.0.0.254``, ``1.0.0.0/24``, with an optional
    ``#`` for sequential allocation): ``pattern SADDR - FOUTPUT ROUTPUT``.
    IP, TCP and UDP checksums are patched.  Mappings last 2 hours by default.

    Keyword arguments: ``TIMEOUT``, ``GUARANTEE``, ``REAP_INTERVAL``,
    ``MAPPING_CAPACITY`` as for IPRewriter, and ``REPLY_ANNO``.  The
    destination address annotation of reply packets is always set.

    Handlers: ``table`` (read) the mappings, as ``SADDR => NEWSADDR [...]``;
    plus ``table_size``, ``mapping_failures``, ``size``, ``capacity``,
    ``clear``, ``patterns`` and ``patternN`` as for IPRewriter.

    Example::

        IPAddrRewriter(pattern 18.26.4.0/24# - 0 1, drop)
    """

    kind = ft.KIND_ADDR
    default_timeout = 7200

    def configure_keywords(self, conf: list[str], errh: ErrorHandler) -> list[str]:
        a = Args(None, self).bind(conf)
        self.annos = read_annos(a, with_dst=False)
        conf = a.consume()
        self.timeouts = [7200 * 1000, 5 * 1000]
        return conf

    def packet_flowid(self, pool: PacketPool, s: int) -> tuple[int, FlowID, int]:
        data = pool.data[s]
        ip = int(pool.nh[s])
        sa = int.from_bytes(data[ip + 12: ip + 16].tobytes(), "big")
        return int(data[ip + 9]), (sa, 0, 0, 0), 0

    def add_flow(self, proto: int, flow: FlowID, rewritten: FlowID, port: int, mapid: int) -> int:
        if rewritten[1] or rewritten[3] or rewritten[2]:
            return -1
        return self.store_flow(self.new_flow(0, flow, rewritten, port, mapid), port)

    def get_entry(self, proto: int, flow: FlowID, port: int) -> Entry | None:
        key = (flow[0], 0, 0, 0)
        e = self.map_lookup(key)
        if e < 0:
            e = self.map_lookup((0, 0, flow[2], 0))
        if e < 0 and 0 <= port < len(self.specs):
            result, rewritten = self.specs[port].rewrite_flowid(key, MAPID_DEFAULT)
            if result == RW_ADDMAP:
                e = self.add_flow(0, key, rewritten, port, MAPID_DEFAULT)
        return Entry(self, e) if e >= 0 else None

    def unparse_entry(self, e: int, now: int) -> str:
        t = self.table
        return f"{unparse_ip(t.key(e)[0])} => {unparse_ip(t.key(e ^ 1)[2])}" + self.unparse_ports(e, now)

    def add_handlers(self) -> None:
        self.add_read_handler("table", lambda: self.table_text())
        self.add_read_handler("mappings", lambda: self.table_text(), DEPRECATED)
        self.add_rewriter_handlers(True)


class IPAddrPairRewriter(IPRewriterBase):
    """IPAddrPairRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    Rewrites packets' source and destination addresses, per address pair.

    Like IPRewriter, but flows are identified by (source address, destination
    address) alone and patterns may not change ports: ``pattern SADDR DADDR
    FOUTPUT ROUTPUT`` (either may be ``-``; SADDR may be a range).  Replies,
    from the new destination to the new source, are rewritten back.  IP, TCP
    and UDP checksums are patched; any IP packet qualifies.  Mappings last 2
    hours by default.

    Keyword arguments: ``TIMEOUT``, ``GUARANTEE``, ``REAP_INTERVAL``,
    ``MAPPING_CAPACITY`` as for IPRewriter, and ``REPLY_ANNO``.  The
    destination address annotation is always set.

    Handlers: ``table`` (read) the mappings, as ``(SA, DA) => (SA', DA')
    [...]``; plus IPRewriter's ``table_size``, ``mapping_failures``, ``size``,
    ``capacity``, ``clear``, ``patterns`` and ``patternN``.

    Example::

        IPAddrPairRewriter(pattern 3.0.0.1-3.0.0.255# - 0 0)
    """

    kind = ft.KIND_PAIR
    default_timeout = 7200

    def configure_keywords(self, conf: list[str], errh: ErrorHandler) -> list[str]:
        a = Args(None, self).bind(conf)
        self.annos = read_annos(a, with_dst=False)
        conf = a.consume()
        self.timeouts = [7200 * 1000, 5 * 1000]
        return conf

    def packet_flowid(self, pool: PacketPool, s: int) -> tuple[int, FlowID, int]:
        data = pool.data[s]
        ip = int(pool.nh[s])
        sa = int.from_bytes(data[ip + 12: ip + 16].tobytes(), "big")
        da = int.from_bytes(data[ip + 16: ip + 20].tobytes(), "big")
        return int(data[ip + 9]), (sa, 0, da, 0), 0

    def add_flow(self, proto: int, flow: FlowID, rewritten: FlowID, port: int, mapid: int) -> int:
        if rewritten[1] or rewritten[3]:
            return -1
        return self.store_flow(self.new_flow(0, flow, rewritten, port, mapid), port)

    def get_entry(self, proto: int, flow: FlowID, port: int) -> Entry | None:
        key = (flow[0], 0, flow[2], 0)
        e = self.map_lookup(key)
        if e < 0 and 0 <= port < len(self.specs):
            result, rewritten = self.specs[port].rewrite_flowid(key, MAPID_DEFAULT)
            if result == RW_ADDMAP:
                e = self.add_flow(0, key, rewritten, port, MAPID_DEFAULT)
        return Entry(self, e) if e >= 0 else None

    def unparse_entry(self, e: int, now: int) -> str:
        t = self.table
        a = t.key(e)
        b = t.key(e ^ 1)
        return (f"({unparse_ip(a[0])}, {unparse_ip(a[2])}) => ({unparse_ip(b[2])}, {unparse_ip(b[0])})"
                + self.unparse_ports(e, now))

    def add_handlers(self) -> None:
        self.add_read_handler("table", lambda: self.table_text())
        self.add_read_handler("mappings", lambda: self.table_text(), DEPRECATED)
        self.add_rewriter_handlers(True)
