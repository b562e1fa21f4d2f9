"""IPEncap: wrap packets in a fixed IP header."""

from __future__ import annotations

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bool,
    parse_int,
    parse_ip_address,
    parse_ip_protocol,
    parse_keyword,
    parse_uint8,
    unparse_ip,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM
from clickos.elements.ip.common import (
    IP_DF,
    ensure_headroom,
    reconfigure_keyword,
    resolver_of,
)
from clickos.packet.batch import PacketBatch


class IPEncap(Element):
    """IPEncap(PROTO, SRC, DST, KEYWORDS)

    Wraps each packet in an IP header.

    The new 20-byte header has protocol PROTO (a number or a name such as
    ``tcp``, ``udp``, ``ipip``), source SRC and destination DST, a length
    covering the whole packet, and an ID that counts up from 0.  The packet's
    destination annotation is set to DST.  If DST is ``DST_ANNO``, the destination
    is taken from the packet's destination annotation instead.  Typical uses are
    IP-in-IP tunnels and building test traffic; StripIPHeader undoes it.

    Keyword arguments:

    - TTL (byte): time to live.  Default 250.
    - TOS (byte): type of service; excludes DSCP, ECT and CE.  Default 0.
    - DSCP (0-63): differentiated services code point.  Default 0.
    - ECT (boolean or 2): mark ECN-capable (ECT(1) for true, ECT(2) for 2).
    - CE (boolean): mark Congestion Experienced.
    - DF (boolean): set the Don't Fragment flag.  Default false.

    Handlers: ``src``, ``dst`` (read/write).

    Example: ``IPEncap(4, 18.26.4.24, 140.247.60.147)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.proto = 0
        self.src = b"\0" * 4
        self.dst: bytes | None = b"\0" * 4
        self._hdr = np.zeros(20, np.uint8)
        self._id = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        proto = a.read_mp("PROTO", parse_ip_protocol)
        src = a.read_mp("SRC", parse_ip_address)
        dst_text = a.read_mp("DST")
        tos = a.read("TOS", parse_int, -1)
        ttl = a.read("TTL", parse_uint8, 250)
        dscp = a.read("DSCP", parse_int, -1)
        ect_text = a.read("ECT", parse_keyword)
        ce = a.read("CE", parse_bool, False)
        df = a.read("DF", parse_bool, False)
        a.complete()
        if proto < 0 or proto > 255:
            raise ConfigError("bad IP protocol")
        if dst_text == "DST_ANNO":
            dst = None
        else:
            try:
                dst = parse_ip_address(dst_text, resolver_of(self))
            except ConfigError:
                raise ConfigError("DST argument should be IP address or 'DST_ANNO'") from None
        ect = 0
        if ect_text:
            try:
                ect = 1 if parse_bool(ect_text) else 0
            except ConfigError:
                if ect_text != "2":
                    raise ConfigError(f"bad ECT value '{ect_text}'") from None
                ect = 2
        if tos >= 0 and dscp >= 0:
            raise ConfigError("cannot set both TOS and DSCP")
        if tos >= 0 and (ect or ce):
            raise ConfigError("cannot set both TOS and ECN bits")
        if tos >= 256 or tos < -1:
            raise ConfigError("TOS too large; max 255")
        if dscp >= 63 or dscp < -1:
            raise ConfigError("DSCP too large; max 63")
        if ect and ce:
            raise ConfigError("can set at most one ECN option")
        tosv = tos if tos >= 0 else (dscp << 2 if dscp >= 0 else 0)
        if ect:
            tosv |= 1 if ect == 1 else 2
        if ce:
            tosv |= 3
        hdr = bytearray(20)
        hdr[0] = 0x45
        hdr[1] = tosv
        if df:
            hdr[6:8] = IP_DF.to_bytes(2, "big")
        hdr[8] = ttl
        hdr[9] = proto
        hdr[12:16] = src
        hdr[16:20] = dst if dst is not None else b"\0" * 4
        self.proto, self.src, self.dst = proto, src, dst
        self._hdr = np.frombuffer(bytes(hdr), np.uint8).copy()

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.ip_encap
        self._id = 0

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        ensure_headroom(pool, batch.idx, 20)
        self._id = self._k(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.anno, batch.idx,
                           self._hdr, self.dst is None, self._id) & 0xFFFF
        return batch

    def add_handlers(self) -> None:
        self.add_read_handler("src", lambda: unparse_ip(self.src), CALM)
        self.add_write_handler("src", lambda v, e: reconfigure_keyword(self, "1 SRC", v, e))
        self.add_read_handler("dst", lambda: "DST_ANNO" if self.dst is None else unparse_ip(self.dst), CALM)
        self.add_write_handler("dst", lambda v, e: reconfigure_keyword(self, "2 DST", v, e))

