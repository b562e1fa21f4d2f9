"""ICMPPingRewriter (NAT for ICMP echo) and ICMPRewriter (NAT for ICMP errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import parse_bool, split_words, unparse_ip
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import DEPRECATED
from clickos.elements.ip.common import update_cksum
from clickos.elements.tcpudp.rewriterbase import (
    GET_ENTRY_REPLY,
    IP_PROTO_DCCP,
    IP_PROTO_ICMP,
    IP_PROTO_TCP,
    IP_PROTO_UDP,
    MAPID_DEFAULT,
    RW_ADDMAP,
    Entry,
    FlowID,
    IPRewriterBase,
    _int_arg,
    inc16,
    read_annos,
)
from clickos.packet import flowtable as ft
from clickos.packet.batch import PacketBatch

if TYPE_CHECKING:
    from clickos.packet.pool import PacketPool

ICMP_ECHOREPLY, ICMP_UNREACH, ICMP_SOURCEQUENCH, ICMP_REDIRECT, ICMP_ECHO = 0, 3, 4, 5, 8
ICMP_TIMXCEED, ICMP_PARAMPROB = 11, 12


class ICMPPingRewriter(IPRewriterBase):
    """ICMPPingRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    Rewrites ICMP echo requests and replies (NAT for ping).

    Each echo request without a mapping is handled by its input's INPUTSPEC
    (see IPRewriter).  Patterns here read ``SADDR DADDR IDENT FOUTPUT
    ROUTPUT``: the new source and destination addresses and the new echo
    identifier, usually a range such as ``0-65535`` (``#`` for sequential
    choice).  A mapping changes requests (SRC, DST, ID) into (SRC', DST', ID')
    and replies (DST', SRC', ID') back into (DST, SRC, ID).  Echo replies
    without a mapping are dropped unless their input is ``pass``; so are
    non-echo packets.  The IP and ICMP checksums are patched.

    Keyword arguments: ``TIMEOUT`` (default 5 minutes), ``GUARANTEE``
    (default 5 seconds), ``REAP_INTERVAL``, ``MAPPING_CAPACITY``, ``DST_ANNO``
    (default true) and ``REPLY_ANNO``, as for IPRewriter.

    Handlers: ``table`` (read) the mappings, as ``(SRC, DST, ID) => (SRC',
    DST', ID') [...]``; plus IPRewriter's ``table_size``, ``mapping_failures``,
    ``size``, ``capacity``, ``clear``, ``patterns`` and ``patternN``.

    Example::

        ICMPPingRewriter(pattern 2.0.0.2 - 0-65535 0 1, drop)
    """

    kind = ft.KIND_PING

    def configure_keywords(self, conf: list[str], errh: ErrorHandler) -> list[str]:
        a = Args(None, self).bind(conf)
        self.annos = read_annos(a)
        conf = a.consume()
        self.timeouts = [300 * 1000, 5 * 1000]
        return conf

    def packet_flowid(self, pool: PacketPool, s: int) -> tuple[int, FlowID, int]:
        data = pool.data[s]
        ip = int(pool.nh[s])
        t = int(pool.th[s])
        if t < ip:
            t = ip + ((int(data[ip]) & 15) << 2)
        sa = int.from_bytes(data[ip + 12: ip + 16].tobytes(), "big")
        da = int.from_bytes(data[ip + 16: ip + 20].tobytes(), "big")
        ident = (int(data[t + 4]) << 8) | int(data[t + 5])
        echo = int(data[t]) == ICMP_ECHO
        return IP_PROTO_ICMP, (sa, ident if echo else inc16(ident), da, inc16(ident) if echo else ident), 0

    def handle_miss(self, port: int, pool: PacketPool, s: int) -> tuple[int, int]:
        proto, flow, mapid = self.packet_flowid(pool, s)
        result, rewritten = self.specs[port].rewrite_flowid(flow, mapid)
        e = -1
        if result == RW_ADDMAP:
            rewritten = (rewritten[0], rewritten[1], rewritten[2], inc16(rewritten[1]))
            e = self.add_flow(proto, flow, rewritten, port, mapid)
        if e < 0:
            return -1, (result if result >= 0 else -1)
        if self.annos & 2:
            self.table.F[e >> 1, ft.C_RANNO] = int(pool.anno[s, self.annos >> 2])
        return e, -1

    def new_flow(self, proto: int, flow: FlowID, rewritten: FlowID, port: int, mapid: int) -> int:
        f = super().new_flow(proto, flow, rewritten, port, mapid)
        self.table.F[f, ft.C_L4D] = update_cksum(0, flow[1], rewritten[1])
        return f

    def add_flow(self, proto: int, flow: FlowID, rewritten: FlowID, port: int, mapid: int) -> int:
        if inc16(flow[1]) != flow[3] or inc16(rewritten[1]) != rewritten[3]:
            return -1
        return self.store_flow(self.new_flow(IP_PROTO_ICMP, flow, rewritten, port, mapid), port)

    def get_entry(self, proto: int, flow: FlowID, port: int) -> Entry | None:
        if proto != IP_PROTO_ICMP:
            return None
        echo = port != GET_ENTRY_REPLY
        ident = flow[1]
        key = (flow[0], ident if echo else inc16(ident), flow[2], inc16(ident) if echo else ident)
        e = self.map_lookup(key)
        if e < 0 and 0 <= port < len(self.specs):
            result, rewritten = self.specs[port].rewrite_flowid(key, MAPID_DEFAULT)
            if result == RW_ADDMAP:
                rewritten = (rewritten[0], rewritten[1], rewritten[2], inc16(rewritten[1]))
                e = self.add_flow(IP_PROTO_ICMP, key, rewritten, port, MAPID_DEFAULT)
        return Entry(self, e) if e >= 0 else None

    def unparse_entry(self, e: int, now: int) -> str:
        t = self.table
        a = t.key(e)
        r = t.rewritten(e)
        return (f"({unparse_ip(a[0])}, {unparse_ip(a[2])}, {a[1]}) => "
                f"({unparse_ip(r[0])}, {unparse_ip(r[2])}, {r[1]})" + self.unparse_ports(e, now))

    def add_handlers(self) -> None:
        self.add_read_handler("table", lambda: self.table_text())
        self.add_read_handler("mappings", lambda: self.table_text(), DEPRECATED)
        self.add_rewriter_handlers(True)


def _g16(buf: np.ndarray, i: int) -> int:
    return (int(buf[i]) << 8) | int(buf[i + 1])


def _p16(buf: np.ndarray, i: int, v: int) -> None:
    buf[i] = (v >> 8) & 0xFF
    buf[i + 1] = v & 0xFF


def _update_many(csum: int, old: list[int], new: list[int]) -> int:
    for o, n in zip(old, new, strict=False):
        csum = update_cksum(csum, o, n)
    return csum


class ICMPRewriter(Element):
    """ICMPRewriter(MAPS [, KEYWORDS])

    Rewrites ICMP error messages to match rewritten flows.

    An ICMP error (destination unreachable, time exceeded, parameter problem,
    source quench, redirect) quotes the header of the packet that caused it.
    When that packet went through a rewriter, the error refers to the
    rewritten addresses and ports.  ICMPRewriter looks the quoted flow up, as a
    reply, in the rewriters listed in MAPS (a space-separated list of
    IPRewriter, TCPRewriter, UDPRewriter, IPAddrRewriter, ICMPPingRewriter...
    elements); if one has a mapping, the error's destination (when it was the
    rewritten address) and the quoted header are translated back, all
    checksums are patched, and the packet leaves on output 0.  Other packets
    are dropped; non-ICMP packets too.

    A map may be written ``NAME:OFFSET``: matching packets then leave on
    output OFFSET plus the output of the mapping found.

    Keyword arguments:

    - ``DST_ANNO`` (boolean): set the destination address annotation when the
      destination changes.  Default true.
    - ``REPLY_ANNO`` (annotation): copy the mapping's reply annotation onto
      errors about reply-direction packets.

    Example::

        rw :: IPRewriter(pattern 21.0.0.1 1024-65535# - - 0 1, drop);
        icmp_errors -> ICMPRewriter(rw) -> ...
    """

    port_count = "1/1-"
    processing = "h"

    def __init__(self) -> None:
        super().__init__()
        self.maps: list[tuple[IPRewriterBase, int]] = []
        self.annos = 1

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        arg = a.read_mp("MAPS", None)
        dst = a.read("DST_ANNO", parse_bool, True)
        from clickos.core.confparse import anno_arg

        reply = a.read("REPLY_ANNO", anno_arg(1), None)
        a.complete()
        self.annos = (1 if dst else 0) + (2 + (reply << 2) if reply is not None else 0)
        maps = []
        for word in split_words(arg or ""):
            name = word
            offset = -1
            colon = word.find(":")
            if colon >= 0:
                v = _int_arg(word[colon + 1:])
                if v is None:
                    errh.error(f"{word} not an IP rewriter")
                    continue
                offset = v
                name = word[:colon]
            e = self.router.find(name, self)
            if e is None:
                errh.error(f"{word} not an IP rewriter")
                continue
            if offset >= 0 and offset + e.noutputs > self.noutputs:
                n = self.noutputs
                errh.error(f"{word} port offset requires more than {n} {'output' if n == 1 else 'outputs'}")
                continue
            rw = e.cast("IPRewriterBase")
            if rw is None:
                errh.error(f"{word} not an IP rewriter")
                continue
            maps.append((rw, offset))
        if not maps and not errh.nerrors:
            raise ConfigError("no IP rewriters supplied")
        self.maps = maps

    def push(self, port: int, batch: PacketBatch) -> None:
        pool = batch.pool
        for s in batch.idx.tolist():
            one = PacketBatch.one(pool, s)
            ip = int(pool.nh[s])
            end = int(pool.off[s]) + int(pool.length[s])
            if ip < 0 or ip + 20 > end or int(pool.data[s, ip + 9]) != IP_PROTO_ICMP:
                one.kill()
                continue
            out = self._handle(pool, s, ip, end)
            self.checked_output_push(out, one)

    def _handle(self, pool: PacketPool, s: int, ip: int, end: int) -> int:
        buf = pool.data[s]
        t = int(pool.th[s])
        if t < ip:
            t = ip + ((int(buf[ip]) & 15) << 2)
        if t + 8 + 20 > end:
            return -1
        typ = int(buf[t])
        if typ not in (ICMP_UNREACH, ICMP_TIMXCEED, ICMP_PARAMPROB, ICMP_SOURCEQUENCH, ICMP_REDIRECT):
            return -1
        enc = t + 8
        hl = (int(buf[enc]) & 15) << 2
        if (int(buf[enc]) >> 4) != 4 or hl < 20:
            return -1
        etr = enc + hl
        enc_p = int(buf[enc + 9])
        esrc = int.from_bytes(buf[enc + 12: enc + 16].tobytes(), "big")
        edst = int.from_bytes(buf[enc + 16: enc + 20].tobytes(), "big")
        firstfrag = (_g16(buf, enc + 6) & 0x1FFF) == 0
        sport = dport = 0
        use_transp = False
        if enc_p in (IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_DCCP):
            if etr + 8 <= end and firstfrag:
                sport, dport = _g16(buf, etr + 2), _g16(buf, etr)
                use_transp = True
        elif enc_p == IP_PROTO_ICMP:
            if etr + 6 <= end and firstfrag and int(buf[etr]) == ICMP_ECHO:
                sport = _g16(buf, etr + 4)
                use_transp = True
        search = (edst, sport, esrc, dport)
        entry = None
        offset = -1
        for rw, off in self.maps:
            entry = rw.get_entry(enc_p, search, GET_ENTRY_REPLY)
            if entry is not None:
                offset = off
                break
        if entry is None:
            return -1
        new = entry.rewritten_flowid()

        if int.from_bytes(buf[ip + 16: ip + 20].tobytes(), "big") == search[2]:
            old = [_g16(buf, ip + 16), _g16(buf, ip + 18)]
            buf[ip + 16: ip + 20] = list(new[2].to_bytes(4, "big"))
            _p16(buf, ip + 10, _update_many(_g16(buf, ip + 10), old, [_g16(buf, ip + 16), _g16(buf, ip + 18)]))
            if self.annos & 1:
                pool.anno[s, 0:4] = list(new[2].to_bytes(4, "big"))
        if entry.direction and (self.annos & 2):
            pool.anno[s, self.annos >> 2] = entry.reply_anno

        old_hw = [_g16(buf, enc + 10)] + [_g16(buf, enc + 12 + 2 * i) for i in range(4)]
        buf[enc + 12: enc + 16] = list(new[2].to_bytes(4, "big"))
        buf[enc + 16: enc + 20] = list(new[0].to_bytes(4, "big"))
        new_hw = [0] + [_g16(buf, enc + 12 + 2 * i) for i in range(4)]
        _p16(buf, enc + 10, _update_many(_g16(buf, enc + 10), old_hw[1:5], new_hw[1:5]))
        new_hw[0] = _g16(buf, enc + 10)

        if use_transp:
            if enc_p in (IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_DCCP):
                old_hw += [_g16(buf, etr), _g16(buf, etr + 2)]
                _p16(buf, etr, new[3])
                _p16(buf, etr + 2, new[1])
                new_hw += [new[3], new[1]]
                csum_at = -1
                if enc_p == IP_PROTO_TCP and etr + 18 <= end:
                    csum_at = etr + 16
                elif enc_p == IP_PROTO_UDP and etr + 8 <= end and _g16(buf, etr + 6) != 0:
                    csum_at = etr + 6
                if csum_at >= 0:
                    old_hw.append(_g16(buf, csum_at))
                    _p16(buf, csum_at, _update_many(_g16(buf, csum_at), old_hw[1:], new_hw[1:]))
                    new_hw.append(_g16(buf, csum_at))
            else:
                old_hw.append(_g16(buf, etr + 4))
                _p16(buf, etr + 4, new[3])
                new_hw.append(new[3])
                old_hw.append(_g16(buf, etr + 2))
                c = update_cksum(_g16(buf, etr + 2), old_hw[-2], new_hw[-1])
                if c == 0 and not any(buf[etr:end]):
                    c = 0xFFFF
                _p16(buf, etr + 2, c)
                new_hw.append(c)

        _p16(buf, t + 2, _update_many(_g16(buf, t + 2), old_hw, new_hw))
        return offset + entry.output if offset >= 0 else 0
