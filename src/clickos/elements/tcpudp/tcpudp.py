"""TCP and UDP elements: CheckTCPHeader, CheckUDPHeader, SetTCPChecksum,
SetUDPChecksum and UDPIPEncap."""

from __future__ import annotations

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bool,
    parse_ip_address,
    parse_udp_port,
    unparse_ip,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.elements.ip.checkipheader import _Checker
from clickos.elements.ip.common import ensure_headroom, reconfigure_keyword, resolver_of
from clickos.elements.standard.printing import chatter
from clickos.packet.batch import PacketBatch


class _CheckTransport(_Checker):
    register = False
    proto = 6
    reasons: tuple[str, ...] = ()
    message = ""

    def __init__(self) -> None:
        super().__init__()
        self.verbose = False
        self.drops = 0
        self.reason_drops: list[int] | None = None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        verbose = a.read("VERBOSE", parse_bool, False)
        details = a.read("DETAILS", parse_bool, False)
        a.complete()
        self.verbose = verbose
        self.reason_drops = [0] * 3 if details else None

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        super().initialize(errh)
        self._k = netkernels.check_transport

    def _verdicts(self, batch: PacketBatch) -> tuple[np.ndarray, int]:
        pool = batch.pool
        out = np.zeros(len(batch), np.int32)
        n = self._k(pool.data, pool.off, pool.length, pool.nh, pool.th, batch.idx, self.proto, out)
        return out, n

    def _report(self, reason: int) -> None:
        if self.drops == 0 or self.verbose:
            chatter(self.message.format(decl=self.declaration(), reason=self.reasons[reason]))
        self.drops += 1
        if self.reason_drops is not None:
            self.reason_drops[reason] += 1

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)
        if self.reason_drops is not None:
            rd = self.reason_drops
            self.add_read_handler("drop_details", lambda: "".join(
                f"{rd[i]}\t{self.reasons[i]}\n" for i in range(3)))


class CheckTCPHeader(_CheckTransport):
    """CheckTCPHeader([KEYWORDS])

    Checks the TCP header lengths and checksums of TCP/IP packets.

    Input packets need IP header annotations.  A packet is bad if it is not TCP,
    if its TCP header length is under 20 bytes or longer than the IP payload, if
    the IP length runs past the packet, or if the TCP checksum (pseudo-header
    included) is wrong.  Good packets leave on output 0; bad ones on output 1 if
    connected, else they are dropped.  The first bad packet is reported.

    Keyword arguments:

    - VERBOSE (boolean): report every bad packet.  Default false.
    - DETAILS (boolean): count bad packets by reason (``drop_details``).

    Handlers: ``drops`` (read); ``drop_details`` (read, with DETAILS).

    Example: ``... -> CheckIPHeader -> CheckTCPHeader -> ...``
    """

    proto = 6
    reasons = ("not TCP", "bad packet length", "bad TCP checksum")
    message = "{decl}: TCP header check failed: {reason}"


class CheckUDPHeader(_CheckTransport):
    """CheckUDPHeader([KEYWORDS])

    Checks the UDP header lengths and checksums of UDP/IP packets.

    Input packets need IP header annotations.  A packet is bad if it is not UDP,
    if its UDP length is under 8 or runs past the packet, or if its checksum is
    nonzero and wrong.  Good packets leave on output 0; bad ones on output 1 if
    connected, else they are dropped.  The first bad packet is reported.

    Keyword arguments:

    - VERBOSE (boolean): report every bad packet.  Default false.
    - DETAILS (boolean): count bad packets by reason (``drop_details``).

    Handlers: ``drops`` (read); ``drop_details`` (read, with DETAILS).

    Example: ``... -> CheckIPHeader -> CheckUDPHeader -> ...``
    """

    proto = 17
    reasons = ("not UDP", "bad packet length", "bad UDP checksum")
    message = "UDP header check failed: {reason}"


class SetTCPChecksum(Element):
    """SetTCPChecksum([FIXOFF])

    Computes and stores TCP checksums.

    Input packets must be TCP in IP, with IP header annotations.  The checksum
    covers the TCP segment and the IP pseudo-header.  With FIXOFF true, an
    impossible TCP header length is corrected first.  Packets whose lengths do not
    allow a checksum are dropped with a message.

    Example: ``... -> SetTCPChecksum -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.fixoff = False

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.fixoff = a.read_p("FIXOFF", parse_bool, False)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.set_transport_checksum

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool = batch.pool
        out = np.zeros(len(batch), np.int32)
        nbad = self._k(pool.data, pool.off, pool.length, pool.nh, pool.th, batch.idx, 6, self.fixoff, out)
        if nbad == 0:
            return batch
        for _ in range(nbad):
            chatter("SetTCPChecksum: bad lengths")
        return batch.kill_where(out != 0)


class SetUDPChecksum(_Checker):
    """SetUDPChecksum()

    Computes and stores UDP checksums.

    Input packets must be UDP in IP, with IP header annotations (the protocol is
    not checked).  The checksum covers the UDP datagram and the IP pseudo-header.
    Fragments, and packets shorter than their UDP length, go to output 1, or are
    dropped (the first one with a message) if there is none.

    Example: ``... -> SetUDPChecksum -> ...``
    """

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        super().initialize(errh)
        self._k = netkernels.set_transport_checksum

    def _verdicts(self, batch: PacketBatch) -> tuple[np.ndarray, int]:
        pool = batch.pool
        out = np.zeros(len(batch), np.int32)
        n = self._k(pool.data, pool.off, pool.length, pool.nh, pool.th, batch.idx, 17, False, out)
        return out, n

    def _report(self, reason: int) -> None:
        if len(self.outputs) == 1:
            key = "SetUDPChecksum_message"
            if not self.router.attachments.get(key):
                chatter(f"{self.declaration()}: fragment or short packet")
                self.router.attachments[key] = self


class UDPIPEncap(Element):
    """UDPIPEncap(SRC, SPORT, DST, DPORT [, CHECKSUM])

    Wraps packets in UDP and IP headers.

    Each packet becomes the payload of a UDP datagram from SRC:SPORT to DST:DPORT
    (ports may be numbers or service names) inside an IP packet with TTL 250 and
    an ID counting up from 0.  The UDP checksum is computed when CHECKSUM is true
    (the default).  The destination annotation is set to DST; a DST of
    ``DST_ANNO`` takes the destination from the annotation instead.

    Handlers: ``src``, ``sport``, ``dst``, ``dport`` (read/write).

    Example: ``UDPIPEncap(1.0.0.1, 1234, 2.0.0.2, 1234)``
    """

    port_count = "1/1"
    processing = "a"
    flags = "A"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.saddr = b"\0" * 4
        self.sport = 0
        self.daddr = b"\0" * 4
        self.dport = 0
        self.use_dst_anno = False
        self.cksum = True
        self._id = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        saddr = a.read_mp("SRC", parse_ip_address)
        sport = a.read_mp("SPORT", parse_udp_port)
        dtext = a.read_mp("DST")
        dport = a.read_mp("DPORT", parse_udp_port)
        cksum = a.read_p("CHECKSUM", parse_bool, True)
        a.complete()
        if dtext == "DST_ANNO":
            daddr, use_anno = b"\0" * 4, True
        else:
            try:
                daddr, use_anno = parse_ip_address(dtext, resolver_of(self)), False
            except ConfigError:
                raise ConfigError("bad DST") from None
        self.saddr, self.sport, self.daddr, self.dport = saddr, sport, daddr, dport
        self.use_dst_anno, self.cksum = use_anno, cksum

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.udp_ip_encap

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        ensure_headroom(pool, batch.idx, 28)
        self._id = self._k(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.anno, batch.idx,
                           int.from_bytes(self.saddr, "big"), int.from_bytes(self.daddr, "big"),
                           self.sport, self.dport, self.use_dst_anno, self.cksum, self._id) & 0xFFFF
        return batch

    def add_handlers(self) -> None:
        self.add_read_handler("src", lambda: unparse_ip(self.saddr))
        self.add_write_handler("src", lambda v, e: reconfigure_keyword(self, "0 SRC", v, e))
        self.add_read_handler("sport", lambda: self.sport)
        self.add_write_handler("sport", lambda v, e: reconfigure_keyword(self, "1 SPORT", v, e))
        self.add_read_handler("dst", lambda: unparse_ip(self.daddr))
        self.add_write_handler("dst", lambda v, e: reconfigure_keyword(self, "2 DST", v, e))
        self.add_read_handler("dport", lambda: self.dport)
        self.add_write_handler("dport", lambda v, e: reconfigure_keyword(self, "3 DPORT", v, e))
