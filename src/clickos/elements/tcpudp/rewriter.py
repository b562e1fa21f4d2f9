"""TCPRewriter, UDPRewriter and IPRewriter: network address and port translation.

The shared machinery (input specs, patterns, the flow table, expiry and
handlers) lives in :mod:`clickos.elements.tcpudp.rewriterbase`; this module
adds each element's keywords, timeouts and connection-state rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clickos.core.args import Args
from clickos.core.confparse import parse_seconds
from clickos.core.errors import ErrorHandler
from clickos.core.handlers import DEPRECATED
from clickos.elements.tcpudp.rewriterbase import (
    HZ,
    IP_PROTO_TCP,
    IP_PROTO_UDP,
    MAPID_DEFAULT,
    MAPID_IPREWRITER_UDP,
    RW_ADDMAP,
    Entry,
    FlowID,
    IPRewriterBase,
    read_annos,
    unparse_flow,
)
from clickos.packet import flowtable as ft

if TYPE_CHECKING:
    from clickos.packet.pool import PacketPool


class TCPRewriter(IPRewriterBase):
    """TCPRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    Rewrites TCP flows' addresses, ports and sequence numbers.

    Works like IPRewriter (see there for the INPUTSPECs and the mapping table)
    but only handles TCP; other packets, later fragments and packets too short
    for ports are dropped, or sent on by a ``pass`` input.  In addition,
    another element may ask a mapping to add a delta to one direction's
    sequence numbers from a given sequence number on; acknowledgements and
    SACK blocks of the other direction are adjusted to match.  FTPPortMapper
    uses this when it rewrites FTP PORT commands.

    Keyword arguments:

    - ``TCP_TIMEOUT``/``TIMEOUT`` (time): expiry of connections that carried
      data both ways; default 24 hours.
    - ``TCP_DONE_TIMEOUT`` (time): expiry of connections closed by FIN or RST
      in both directions; default 4 minutes.
    - ``TCP_NODATA_TIMEOUT`` (time): expiry of other connections; default 5
      minutes.
    - ``TCP_GUARANTEE``/``GUARANTEE`` (time): a mapping lasts at least this
      long after each packet; new flows are refused while the table is full of
      guaranteed mappings.  Default 5 seconds.
    - ``REAP_INTERVAL`` (time): how often expired mappings are removed; default
      15 minutes.
    - ``MAPPING_CAPACITY`` (integer or element): the most mappings held, or
      another rewriter whose capacity this one shares.
    - ``DST_ANNO`` (boolean): set the destination address annotation to the
      new destination; default true.
    - ``REPLY_ANNO`` (annotation): remember this one-byte annotation of the
      packet that created a mapping and put it on reply packets.

    Handlers: ``table`` (read) the mappings; ``lookup`` (read with parameter
    ``SADDR SPORT DADDR DPORT``) the rewritten flow, if mapped;
    ``table_size``, ``mapping_failures``, ``size``, ``capacity`` (read/write),
    ``clear`` (write), ``patterns`` and ``patternN`` (read/write) as for
    IPRewriter.

    Example::

        TCPRewriter(pattern 1.0.0.1 1024-65535 - - 0 1, drop)
    """

    kind = ft.KIND_TCP

    def __init__(self) -> None:
        super().__init__()
        self.tcp_data_timeout = 86400 * HZ
        self.tcp_done_timeout = 240 * HZ

    def configure_keywords(self, conf: list[str], errh: ErrorHandler) -> list[str]:
        a = Args(None, self).bind(conf)
        t0 = a.read("TCP_NODATA_TIMEOUT", parse_seconds, None)
        t1 = a.read("TCP_GUARANTEE", parse_seconds, None)
        data = a.read("TIMEOUT", parse_seconds, None)
        data = a.read("TCP_TIMEOUT", parse_seconds, data)
        done = a.read("TCP_DONE_TIMEOUT", parse_seconds, None)
        self.annos = read_annos(a)
        conf = a.consume()
        self.timeouts = [300 * HZ if t0 is None else t0 * HZ, 5 * HZ if t1 is None else t1 * HZ]
        self.tcp_data_timeout = (86400 if data is None else data) * HZ
        self.tcp_done_timeout = (240 if done is None else done) * HZ
        return conf

    def _set_params(self) -> None:
        super()._set_params()
        self.P[ft.P_TCP_DATA] = self.tcp_data_timeout
        self.P[ft.P_TCP_DONE] = self.tcp_done_timeout

    def tcp_flow_timeout(self, f: int) -> int:
        tf = int(self.table.F[f, ft.C_TFLAGS])
        if tf & 3 == 3:
            return self.tcp_done_timeout
        if tf & 12 == 12:
            return self.tcp_data_timeout
        return self.timeouts[0]

    def best_effort_expiry(self, f: int) -> int:
        return int(self.table.F[f, ft.C_EXPIRY]) + self.tcp_flow_timeout(f) - self.timeouts[1]

    def add_flow(self, proto: int, flow: FlowID, rewritten: FlowID, port: int, mapid: int) -> int:
        return self.store_flow(self.new_flow(IP_PROTO_TCP, flow, rewritten, port, mapid), port)

    def unparse_entry(self, e: int, now: int) -> str:
        t = self.table
        text = f"{unparse_flow(t.key(e)[:4])} => {unparse_flow(t.rewritten(e))}"
        dl = self.deltas.get(e >> 1)
        if dl is not None:
            d = dl.head_delta(e & 1)
            if d:
                text += f" seq {'+' if d > 0 else ''}{d}"
        return text + self.unparse_ports(e, now)

    def update_seqno_delta(self, entry: Entry, trigger: int, delta: int) -> bool:
        """Add ``delta`` to the sequence numbers of ``entry``'s direction from
        ``trigger`` on (FTPPortMapper's request)."""
        from clickos.elements.tcpudp.rewriterbase import SeqDeltas

        f = entry.flow
        dl = self.deltas.get(f)
        if dl is None:
            dl = self.deltas[f] = SeqDeltas()
        ok = dl.update(entry.direction, trigger, delta)
        self.table.F[f, ft.C_HASDT] = 1
        return ok

    def add_handlers(self) -> None:
        self.add_read_handler("table", lambda: self.table_text())
        self.add_read_handler("mappings", lambda: self.table_text(), DEPRECATED)
        self.add_lookup_handler("lookup")
        self.add_rewriter_handlers(True)


class UDPRewriter(IPRewriterBase):
    """UDPRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    Rewrites UDP (and TCP and DCCP) packets' addresses and ports.

    Works like IPRewriter (see there for the INPUTSPECs and the mapping table),
    but every flow follows UDP's rules whatever its protocol: the mapping table
    is keyed by addresses and ports alone, and a flow counts as *streaming*
    once it carried at least three packets with at least one in each direction.
    Packets that are not UDP, TCP or DCCP, later fragments, and packets too
    short for ports are dropped, or sent on by a ``pass`` input.

    Keyword arguments:

    - ``TIMEOUT``/``UDP_TIMEOUT`` (time): expiry of idle mappings; default 5 minutes.
    - ``STREAMING_TIMEOUT``/``UDP_STREAMING_TIMEOUT`` (time): expiry of
      streaming flows; defaults to TIMEOUT.
    - ``GUARANTEE``/``UDP_GUARANTEE`` (time): a mapping lasts at least this long
      after each packet; default 5 seconds.
    - ``REAP_INTERVAL``, ``MAPPING_CAPACITY``, ``DST_ANNO``, ``REPLY_ANNO``: as
      for IPRewriter.

    Handlers: ``table`` (read) the mappings, plus IPRewriter's ``table_size``,
    ``mapping_failures``, ``size``, ``capacity``, ``clear``, ``patterns`` and
    ``patternN``.

    Example::

        UDPRewriter(pattern 1.0.0.1 1024-65535# - - 0 1, drop, TIMEOUT 60)
    """

    kind = ft.KIND_UDP

    def __init__(self) -> None:
        super().__init__()
        self.streaming_timeout = 300 * HZ

    def configure_keywords(self, conf: list[str], errh: ErrorHandler) -> list[str]:
        a = Args(None, self).bind(conf)
        self.annos = read_annos(a)
        t0 = a.read("UDP_TIMEOUT", parse_seconds, None)
        t0 = a.read("TIMEOUT", parse_seconds, t0)
        st = a.read("UDP_STREAMING_TIMEOUT", parse_seconds, None)
        st = a.read("STREAMING_TIMEOUT", parse_seconds, st)
        t1 = a.read("UDP_GUARANTEE", parse_seconds, None)
        conf = a.consume()
        self.timeouts = [(300 if t0 is None else t0) * HZ, 5 * HZ if t1 is None else t1 * HZ]
        self.streaming_timeout = self.timeouts[0] if st is None else st * HZ
        return conf

    def _set_params(self) -> None:
        super()._set_params()
        self.P[ft.P_UDP_STREAM] = self.streaming_timeout

    def best_effort_expiry(self, f: int) -> int:
        F = self.table.F
        streaming = int(F[f, ft.C_TFLAGS]) > 6
        t = self.streaming_timeout if streaming else self.timeouts[0]
        return int(F[f, ft.C_EXPIRY]) + t - self.timeouts[1]

    def add_handlers(self) -> None:
        self.add_read_handler("table", lambda: self.table_text())
        self.add_read_handler("mappings", lambda: self.table_text(), DEPRECATED)
        self.add_rewriter_handlers(True)


class IPRewriter(TCPRewriter):
    """IPRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    Rewrites TCP and UDP packets' addresses and ports (a NAPT).

    IPRewriter keeps a *mapping table*, indexed by flow identifier (source
    address and port, destination address and port; TCP and UDP flows are kept
    apart).  A packet whose flow has a mapping is rewritten to the mapping's
    new identifier, its checksums are patched, and it leaves on the mapping's
    output.  Other packets are handled by the INPUTSPEC of their input port
    (one argument per input):

    - ``drop`` or ``discard``: drop them.
    - ``pass OUTPUT`` (also ``passthrough``, ``nochange``): send them to OUTPUT
      unchanged; no mapping is made.
    - ``keep FOUTPUT ROUTPUT``: map the flow to itself: the packet leaves
      unchanged on FOUTPUT, and replies leave unchanged on ROUTPUT.
    - ``pattern SADDR SPORT DADDR DPORT FOUTPUT ROUTPUT``: rewrite the fields
      the pattern gives (``-`` keeps a field).  SPORT may be a range ``L-H``: a
      port is chosen so that the new mapping collides with no other, keeping
      the packet's own source port when it is in range and free; a trailing
      ``#`` allocates ports sequentially instead, ``?`` picks them at random.
      SADDR may similarly be a range ``A-B`` or a prefix.  Two mappings are
      made: the flow to its rewritten form (output FOUTPUT), and the reversed
      rewritten flow back to the reversed original (output ROUTPUT), so replies
      are translated back.
    - ``pattern NAME FOUTPUT ROUTPUT``: a pattern named by IPRewriterPatterns.
    - ``ELEMENT``: a mapper element such as RoundRobinIPMapper chooses.

    Non-TCP/UDP packets, later fragments and packets too short for ports are
    dropped unless their input is ``pass``.  Input packets need their IP header
    annotation.

    Mappings expire: TCP ones as in TCPRewriter, UDP ones as in UDPRewriter.
    Each mapping is *guaranteed* for a while after every packet; when the table
    is full (MAPPING_CAPACITY), a new flow evicts the best-effort mapping that
    expires first, or is refused if there is none.

    Keyword arguments: TCPRewriter's (``TCP_TIMEOUT``, ``TCP_DONE_TIMEOUT``,
    ``TCP_NODATA_TIMEOUT``, ``TCP_GUARANTEE``), ``UDP_TIMEOUT`` (default 5
    minutes), ``UDP_STREAMING_TIMEOUT`` (default UDP_TIMEOUT),
    ``UDP_GUARANTEE`` (default 5 seconds), ``REAP_INTERVAL`` (default 15
    minutes), ``MAPPING_CAPACITY`` (a number, or another rewriter to share its
    capacity with), ``DST_ANNO`` (set the destination address annotation;
    default true) and ``REPLY_ANNO`` (a one-byte annotation copied from a
    flow's first packet onto its replies).

    Handlers:

    - ``tcp_table``, ``udp_table`` (read): the mappings, one per line, as
      ``(SA, SP, DA, DP) => (SA', SP', DA', DP') [FOUT ROUT] iINPUT expSECONDS``
      with the mapping's own output starred.
    - ``tcp_lookup`` (read with parameter ``SADDR SPORT DADDR DPORT``): the
      rewritten TCP flow, or nothing.
    - ``table_size``: number of mappings made by this element's inputs;
      ``mapping_failures``: new flows that could not be mapped; ``size``:
      flows in the (possibly shared) table; ``capacity`` (read/write): its
      capacity; ``clear`` (write): remove every mapping.
    - ``patterns``, ``patternN`` (read; patternN also write): the input specs,
      with how many live mappings each made.  Writing a pattern replaces
      input N's spec and removes its mappings.

    Example::

        rw :: IPRewriter(pattern 1.0.0.1 1024-65535 - - 0 1, drop);
        inside -> [0] rw [0] -> outside;
        outside -> [1] rw [1] -> inside;
    """

    kind = ft.KIND_IP

    def __init__(self) -> None:
        super().__init__()
        self.udp_timeouts = [300 * HZ, 5 * HZ]
        self.udp_streaming_timeout = 300 * HZ

    def configure_keywords(self, conf: list[str], errh: ErrorHandler) -> list[str]:
        a = Args(None, self).bind(conf)
        t0 = a.read("UDP_TIMEOUT", parse_seconds, None)
        st = a.read("UDP_STREAMING_TIMEOUT", parse_seconds, None)
        t1 = a.read("UDP_GUARANTEE", parse_seconds, None)
        conf = a.consume()
        self.udp_timeouts = [(300 if t0 is None else t0) * HZ, (5 if t1 is None else t1) * HZ]
        self.udp_streaming_timeout = self.udp_timeouts[0] if st is None else st * HZ
        return super().configure_keywords(conf, errh)

    def _set_params(self) -> None:
        super()._set_params()
        P = self.P
        P[ft.P_UDP_T0] = self.udp_timeouts[0]
        P[ft.P_UDP_T1] = self.udp_timeouts[1]
        P[ft.P_UDP_STREAM] = self.udp_streaming_timeout

    def flow_timeouts(self, proto: int) -> list[int]:
        return self.timeouts if proto == IP_PROTO_TCP else self.udp_timeouts

    def best_effort_expiry(self, f: int) -> int:
        F = self.table.F
        if int(F[f, ft.C_PROTO]) == IP_PROTO_TCP:
            return super().best_effort_expiry(f)
        t = self.udp_streaming_timeout if int(F[f, ft.C_TFLAGS]) > 6 else self.udp_timeouts[0]
        return int(F[f, ft.C_EXPIRY]) + t - self.udp_timeouts[1]

    def add_flow(self, proto: int, flow: FlowID, rewritten: FlowID, port: int, mapid: int) -> int:
        if proto == IP_PROTO_TCP:
            return super().add_flow(proto, flow, rewritten, port, mapid)
        return self.store_flow(self.new_flow(proto, flow, rewritten, port, mapid), port)

    def packet_flowid(self, pool: PacketPool, s: int) -> tuple[int, FlowID, int]:
        proto, flow, _ = super().packet_flowid(pool, s)
        return proto, flow, (MAPID_IPREWRITER_UDP if proto == IP_PROTO_UDP else MAPID_DEFAULT)

    def get_entry(self, proto: int, flow: FlowID, port: int) -> Entry | None:
        if proto == IP_PROTO_TCP:
            return super().get_entry(proto, flow, port)
        if proto != IP_PROTO_UDP:
            return None
        e = self.map_lookup(flow, MAPID_IPREWRITER_UDP)
        if e < 0 and 0 <= port < len(self.specs):
            result, rewritten = self.specs[port].rewrite_flowid(flow, MAPID_IPREWRITER_UDP)
            if result == RW_ADDMAP:
                e = self.add_flow(0, flow, rewritten, port, MAPID_IPREWRITER_UDP)
        return Entry(self, e) if e >= 0 else None

    def add_handlers(self) -> None:
        self.add_read_handler("tcp_table", lambda: self.table_text(MAPID_DEFAULT))
        self.add_read_handler("udp_table", lambda: self.table_text(MAPID_IPREWRITER_UDP))
        self.add_read_handler("tcp_mappings", lambda: self.table_text(MAPID_DEFAULT), DEPRECATED)
        self.add_read_handler("udp_mappings", lambda: self.table_text(MAPID_IPREWRITER_UDP), DEPRECATED)
        self.add_lookup_handler("tcp_lookup")
        self.add_rewriter_handlers(True)
