"""The rewriter family: IPRewriter, TCPRewriter, UDPRewriter, IPAddrRewriter,
IPAddrPairRewriter, ICMPPingRewriter, ICMPRewriter, RoundRobinIPMapper,
FTPPortMapper, plus the flow table they share, HashSwitch and RandomSample."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scapy.all import ICMP, IP, TCP, UDP, IPerror, Raw, TCPerror, raw

from clickos.core import registry
from clickos.core.clock import Clock
from clickos.core.element import Element
from clickos.core.errors import ErrorHandler
from clickos.core.master import Master
from clickos.core.router import Router
from clickos.elements.tcpudp.rewriterbase import IPRewriterPattern, SeqDeltas
from clickos.packet import flowtable as ft
from clickos.packet.batch import PacketBatch


class _Src(Element):
    port_count = "0/-"
    processing = "h"

    def send(self, packets: list[bytes], port: int = 0, paint: int | None = None, annotate: bool = True) -> None:
        pool = self.router.pool
        slots = []
        for data in packets:
            s = pool.new_packet(bytes(data))
            o = int(pool.off[s])
            if annotate:
                pool.nh[s] = o
                pool.th[s] = o + ((data[0] & 15) << 2) if data else o
            if paint is not None:
                pool.anno[s, 16] = paint
            slots.append(s)
        self.outputs[port].push(PacketBatch(pool, np.array(slots, np.int32)))


class _Sink(Element):
    port_count = "1/0"
    processing = "h"

    def __init__(self) -> None:
        super().__init__()
        self.got: list[bytes] = []
        self.paint: list[int] = []
        self.dst: list[bytes] = []

    def push(self, port: int, batch: PacketBatch) -> None:
        for p in batch:
            self.got.append(p.data)
            self.paint.append(p.paint)
            self.dst.append(p.dst_ip)
        batch.kill()


class Net:
    """A rewriter between a multi-output source and one sink per output."""

    def __init__(self, cls: str, config: str, nin: int, nout: int, extra: list[tuple[str, str, str]] = (),
                 simtime: bool = True, front: str | None = None) -> None:
        reg = registry.load_all()
        clock = Clock()
        if simtime:
            clock.set_simulation()
        self.router = r = Router(master=Master(clock))
        self.src = r.add_element(_Src(), "src")
        extras = [r.add_element(reg[c](), name, cfg) for name, c, cfg in extra]
        self.rw = r.add_element(reg[cls](), "rw", config)
        self.sinks = [r.add_element(_Sink(), f"s{i}") for i in range(nout)]
        for e in extras:
            if e.name == front:
                r.add_connection(self.src.eindex, 0, e.eindex, 0)
                r.add_connection(e.eindex, 0, self.rw.eindex, 0)
            elif e.port_count != "0/0":
                idle = r.add_element(reg["Idle"](), e.name + "_idle")
                r.add_connection(idle.eindex, 0, e.eindex, 0)
                r.add_connection(e.eindex, 0, idle.eindex, 0)
        for i in range(nin):
            if not (i == 0 and front):
                r.add_connection(self.src.eindex, i, self.rw.eindex, i)
        for i, s in enumerate(self.sinks):
            r.add_connection(self.rw.eindex, i, s.eindex, 0)
        self.errh = ErrorHandler(echo=False)
        self.ok = r.initialize(self.errh)

    def send(self, packets: list[bytes], port: int = 0, **kw: object) -> None:
        self.src.send(packets, port, **kw)  # type: ignore[arg-type]

    def read(self, h: str, param: str = "") -> str:
        return self.router.handlers.find(self.rw, h).call_read(param)

    def write(self, h: str, value: str) -> int:
        return self.router.handlers.find(self.rw, h).call_write(value, self.errh)

    def advance(self, seconds: float) -> None:
        self.router.master.clock.jump_steady(self.router.master.clock.now_steady() + int(seconds * 1e9))

    def take(self, i: int) -> list[bytes]:
        got = self.sinks[i].got
        self.sinks[i].got = []
        return got


def valid(pkt: bytes) -> IP:
    """Parse ``pkt`` and check its IP and transport checksums."""
    p = IP(pkt)
    q = IP(raw(p.copy().__class__(pkt)))
    fresh = IP(pkt)
    del fresh.chksum
    if fresh.payload and hasattr(fresh.payload, "chksum") and not isinstance(fresh.payload, Raw):
        if not (isinstance(fresh.payload, UDP) and fresh.payload.chksum == 0):
            del fresh.payload.chksum
    rebuilt = IP(raw(fresh))
    assert rebuilt.chksum == p.chksum, "IP checksum"
    if hasattr(p.payload, "chksum") and not isinstance(p.payload, Raw):
        assert rebuilt.payload.chksum == p.payload.chksum, "transport checksum"
    return q


def tcp(src: str, sport: int, dst: str, dport: int, **kw: object) -> bytes:
    return raw(IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, **kw) / Raw(b"hello"))


def udp(src: str, sport: int, dst: str, dport: int) -> bytes:
    return raw(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(b"data"))


# -- IPRewriter ---------------------------------------------------------------------------------------

def test_iprewriter_napt_both_ways() -> None:
    n = Net("IPRewriter", "pattern 1.0.0.1 1024-65535# - - 0 1, drop", 2, 2)
    assert n.ok, n.errh.lines
    n.send([tcp("18.26.4.44", 30, "10.0.0.4", 40), tcp("18.26.4.44", 30, "10.0.0.4", 40),
            tcp("18.26.4.44", 20, "10.0.0.8", 80), udp("18.26.4.44", 30, "10.0.0.4", 40)])
    out = [valid(p) for p in n.take(0)]
    assert [(p.src, p.sport, p.dst, p.dport) for p in out] == [
        ("1.0.0.1", 1024, "10.0.0.4", 40), ("1.0.0.1", 1024, "10.0.0.4", 40),
        ("1.0.0.1", 1025, "10.0.0.8", 80), ("1.0.0.1", 1026, "10.0.0.4", 40)]
    assert n.sinks[0].dst[-1] == bytes([10, 0, 0, 4])
    n.send([tcp("10.0.0.4", 40, "1.0.0.1", 1024), tcp("10.0.0.8", 80, "1.0.0.1", 1026),
            udp("10.0.0.4", 40, "1.0.0.1", 1026)], port=1)
    back = [valid(p) for p in n.take(1)]
    assert [(p.src, p.sport, p.dst, p.dport, p.proto) for p in back] == [
        ("10.0.0.4", 40, "18.26.4.44", 30, 6), ("10.0.0.4", 40, "18.26.4.44", 30, 17)]
    assert n.read("table_size") == "3"
    table = n.read("tcp_table").splitlines()
    assert "(18.26.4.44, 30, 10.0.0.4, 40) => (1.0.0.1, 1024, 10.0.0.4, 40) [*0 1] i0 exp86400" in table
    assert n.read("tcp_lookup", "18.26.4.44 20 10.0.0.8 80") == "1.0.0.1 1025 10.0.0.8 80"
    assert n.read("tcp_lookup", "1.2.3.4 1 1.2.3.4 2") == ""
    assert n.read("patterns") == "1.0.0.1 1024-65535 - - [3]\n<drop>\n"


def test_batches_match_single_packets() -> None:
    rng = random.Random(5)
    flows = [(f"10.0.{rng.randrange(3)}.{rng.randrange(5)}", rng.randrange(1, 5), "9.9.9.9", 80)
             for _ in range(60)]
    pkts = [tcp(*f) if i % 3 else udp(*f) for i, f in enumerate(flows)]
    a = Net("IPRewriter", "pattern 1.0.0.1 1024-1100# - - 0 1, drop", 2, 2)
    b = Net("IPRewriter", "pattern 1.0.0.1 1024-1100# - - 0 1, drop", 2, 2)
    a.send(pkts)
    for p in pkts:
        b.send([p])
    assert a.take(0) == b.take(0)
    assert a.read("tcp_table") == b.read("tcp_table")


def test_pass_keep_and_nonflow_packets() -> None:
    n = Net("IPRewriter", "pass 1, keep 0 1", 2, 2)
    assert n.ok, n.errh.lines
    icmp = raw(IP(src="1.1.1.1", dst="2.2.2.2") / ICMP())
    n.send([icmp, tcp("1.1.1.1", 5, "2.2.2.2", 6)], port=0)
    assert n.take(1) == [icmp, tcp("1.1.1.1", 5, "2.2.2.2", 6)]
    n.send([icmp, tcp("3.3.3.3", 5, "2.2.2.2", 6)], port=1)
    assert n.take(0) == [tcp("3.3.3.3", 5, "2.2.2.2", 6)]
    n.send([tcp("2.2.2.2", 6, "3.3.3.3", 5)], port=0)
    assert n.take(1) == [tcp("2.2.2.2", 6, "3.3.3.3", 5)]


def test_capacity_guarantee_and_admission() -> None:
    n = Net("IPRewriter", "pattern 2.0.0.1 1024-65535# - - 0 1, drop, MAPPING_CAPACITY 2", 2, 2)
    for i in range(3):
        n.send([tcp(f"1.0.0.{i + 1}", 10, "2.0.0.2", 20)])
        n.advance(0.1)
    # two guaranteed flows fill the table: the third is refused
    assert len(n.take(0)) == 2
    assert n.read("mapping_failures") == "1" and n.read("size") == "2"
    n.advance(6)  # guarantees run out: the oldest best-effort flow is evicted
    n.send([tcp("1.0.0.9", 10, "2.0.0.2", 20)])
    assert len(n.take(0)) == 1
    n.send([tcp("2.0.0.2", 20, "2.0.0.1", 1024)], port=1)
    assert n.take(1) == []
    assert n.write("capacity", "1") == 0 and n.read("size") == "1"
    assert n.write("clear", "") == 0 and n.read("size") == "0"


def test_shared_capacity_and_pattern_write() -> None:
    n = Net("UDPRewriter", "pattern 1.0.0.2 1024-2000# - - 0 1, drop, MAPPING_CAPACITY other", 2, 2,
            extra=[("other", "UDPRewriter", "drop, MAPPING_CAPACITY 5")])
    assert n.ok, n.errh.lines
    n.send([udp("5.5.5.5", 1, "6.6.6.6", 2)])
    assert n.read("size") == "1"
    assert n.router.handlers.find(n.router.find("other"), "size").call_read() == "1"
    assert n.write("pattern0", "pattern 1.0.0.4 1024-65534# - - 0 1") == 0
    assert n.read("patterns") == "1.0.0.4 1024-65534 - -\n<drop>\n"
    assert n.read("size") == "0"


def test_udprewriter_streaming_and_same_port() -> None:
    n = Net("UDPRewriter", "pattern 1.0.0.2 1024-65534 - - 0 1, drop, GUARANTEE 0", 2, 2)
    n.send([udp("10.0.0.1", 1024, "1.0.0.2", 20), udp("10.0.0.2", 1024, "1.0.0.2", 30),
            udp("10.0.0.3", 1024, "1.0.0.2", 20)])
    ports = [UDP(p[20:]).sport for p in n.take(0)]
    assert ports[:2] == [1024, 1024] and ports[2] != 1024  # the packet's own port is preferred
    f = n.rw.table.lookup(0x0A000001, 1024, 0x01000002, 20)
    assert f >= 0
    n.send([udp("1.0.0.2", 20, "1.0.0.2", 1024)], port=1)
    n.send([udp("10.0.0.1", 1024, "1.0.0.2", 20)])
    assert n.rw.table.F[f >> 1, ft.C_TFLAGS] > 6  # streaming


def test_tcp_connection_state_timeouts() -> None:
    n = Net("TCPRewriter", "keep 0 1, keep 1 0, TCP_GUARANTEE 0, TCP_DONE_TIMEOUT 7", 2, 2)
    n.send([tcp("1.1.1.1", 1, "2.2.2.2", 2, flags="F")])
    n.send([tcp("2.2.2.2", 2, "1.1.1.1", 1, flags="FA")], port=1)
    line = n.read("table").splitlines()[0]
    assert line.endswith("exp7"), line


# -- the address rewriters -------------------------------------------------------------------------------

def test_ipaddrrewriter() -> None:
    n = Net("IPAddrRewriter", "pattern 3.0.0.1-3.0.0.255# - 0 0", 1, 1)
    assert n.ok, n.errh.lines
    n.send([tcp("1.0.0.1", 1, "9.9.9.9", 2), udp("1.0.0.2", 1, "9.9.9.8", 2),
            raw(IP(src="1.0.0.1", dst="9.9.9.7") / ICMP()), tcp("9.9.9.6", 5, "3.0.0.1", 6)])
    out = [valid(p) for p in n.take(0)]
    assert [(p.src, p.dst) for p in out] == [("3.0.0.1", "9.9.9.9"), ("3.0.0.2", "9.9.9.8"),
                                             ("3.0.0.1", "9.9.9.7"), ("9.9.9.6", "1.0.0.1")]
    assert n.read("table").splitlines()[0].startswith(("1.0.0.", "0.0.0.0"))


def test_ipaddrpairrewriter() -> None:
    n = Net("IPAddrPairRewriter", "pattern 3.0.0.1-3.0.0.255# - 0 0", 1, 1)
    n.send([udp("1.0.0.1", 1, "9.9.9.9", 2), udp("1.0.0.2", 1, "9.9.9.8", 2),
            udp("1.0.0.1", 1, "9.9.9.9", 2), udp("1.0.0.1", 1, "9.9.9.7", 2),
            udp("9.9.9.6", 1, "3.0.0.1", 2), udp("9.9.9.7", 1, "3.0.0.3", 2)])
    out = [valid(p) for p in n.take(0)]
    assert [(p.src, p.dst) for p in out] == [
        ("3.0.0.1", "9.9.9.9"), ("3.0.0.2", "9.9.9.8"), ("3.0.0.1", "9.9.9.9"),
        ("3.0.0.3", "9.9.9.7"), ("3.0.0.4", "3.0.0.1"), ("9.9.9.7", "1.0.0.1")]


# -- ICMP -------------------------------------------------------------------------------------------------

def test_icmppingrewriter_and_icmprewriter() -> None:
    n = Net("ICMPPingRewriter", "pattern 2.0.0.2 - 0-65535# 0 1, drop", 2, 2)
    req = raw(IP(src="1.0.0.1", dst="5.0.0.5") / ICMP(type=8, id=10230, seq=1))
    n.send([req])
    out = valid(n.take(0)[0])
    assert (out.src, out[ICMP].id, out[ICMP].seq) == ("2.0.0.2", 0, 1)
    reply = raw(IP(src="5.0.0.5", dst="2.0.0.2") / ICMP(type=0, id=0, seq=1))
    n.send([reply, raw(IP(src="5.0.0.5", dst="2.0.0.2") / ICMP(type=0, id=77))], port=1)
    back = n.take(1)
    assert len(back) == 1
    b = valid(back[0])
    assert (b.dst, b[ICMP].id) == ("1.0.0.1", 10230)
    assert "(1.0.0.1, 5.0.0.5, 10230) => (2.0.0.2, 5.0.0.5, 0)" in n.read("table")


def test_icmprewriter_translates_errors() -> None:
    reg = registry.load_all()
    r = Router(master=Master(Clock()))
    src = r.add_element(_Src(), "src")
    rw = r.add_element(reg["IPRewriter"](), "rw", "pattern 21.0.0.1 1024-65535# - - 0 0")
    ir = r.add_element(reg["ICMPRewriter"](), "ir", "rw")
    s0, s1 = r.add_element(_Sink(), "s0"), r.add_element(_Sink(), "s1")
    r.add_connection(src.eindex, 0, rw.eindex, 0)
    r.add_connection(rw.eindex, 0, s0.eindex, 0)
    r.add_connection(src.eindex, 1, ir.eindex, 0)
    r.add_connection(ir.eindex, 0, s1.eindex, 0)
    assert r.initialize(ErrorHandler(echo=False))
    orig = tcp("18.26.4.44", 20, "10.0.0.8", 80)
    src.send([orig])
    rewritten = s0.got[0]
    err = raw(IP(src="19.19.19.19", dst="21.0.0.1") / ICMP(type=11, code=0) / rewritten[:28])
    src.send([err, raw(IP(src="1.1.1.1", dst="2.2.2.2") / ICMP(type=8)), b"\x45\x00"], port=1)
    assert len(s1.got) == 1
    e = IP(s1.got[0])
    assert e.dst == "18.26.4.44"
    assert (e[IPerror].src, e[TCPerror].sport) == ("18.26.4.44", 20)
    fresh = IP(s1.got[0])
    del fresh.chksum
    del fresh[ICMP].chksum
    assert IP(raw(fresh))[ICMP].chksum == e[ICMP].chksum


# -- mappers and patterns ---------------------------------------------------------------------------------

def test_roundrobin_mapper() -> None:
    n = Net("IPRewriter", "r", 1, 3, extra=[("r", "RoundRobinIPMapper", "- - - - 0 0, - - - - 1 0, - - - - 2 0")])
    assert n.ok, n.errh.lines
    for dst in ("1.0.0.2", "1.0.0.3", "1.0.0.2", "1.0.0.4"):
        n.send([udp("1.0.0.1", 1, dst, 2)])
    assert [len(n.sinks[i].got) for i in range(3)] == [2, 1, 1]


def test_pattern_parsing() -> None:
    ctx = Router()
    e = ctx.add_element(Element(), "x")
    p = IPRewriterPattern.parse("1.0.0.0/24# 5.5.5.5".split(), e)
    assert (p.saddr, p.variation_top, p.sequential) == (0x01000001, 253, True)
    assert p.unparse() == "1.0.0.1-1.0.0.254 5.5.5.5"
    assert IPRewriterPattern.parse("1.0.0.1 1024-2000? - 80".split(), e).unparse() == "1.0.0.1 1024-2000 - 80"
    for bad, msg in (("1.0.0.1 1x - -", "bad source port"), ("x - - -", "bad source address"),
                     ("- 5 y -", "bad destination address"), ("- 5 - 70000", "bad destination port"),
                     ("a b c d e", "syntax error"), ("nosuch", "no such pattern 'nosuch'")):
        with pytest.raises(Exception, match=msg):
            IPRewriterPattern.parse(bad.split(), e)


def test_config_errors() -> None:
    n = Net("IPRewriter", "pattern 1.0.0.1 1x - - 0 1, frob, pass 9", 3, 2)
    assert not n.ok
    assert n.errh.lines[-3:] == ["  input spec 0: bad source port", "  input spec 1: unknown specification",
                                 "  input spec 2: output port out of range"] or any(
        "input spec 2: output port out of range" in x for x in n.errh.lines)


# -- TCP sequence deltas and FTPPortMapper ------------------------------------------------------------------

def test_seq_deltas() -> None:
    d = SeqDeltas()
    assert d.update(0, 100, 5)
    assert d.new_seq(0, 99) == 99 and d.new_seq(0, 100) == 105
    assert d.new_ack(1, 105) == 100 and d.new_ack(1, 50) == 50
    assert d.update(0, 200, -3)
    assert d.new_seq(0, 250) == 252 and d.new_seq(0, 150) == 155


def test_ftpportmapper() -> None:
    n = Net("TCPRewriter", "pattern 1.0.0.1 1024-65535# - - 0 0", 1, 1,
            extra=[("ftp", "FTPPortMapper", "rw, rw, 0")], front="ftp")
    assert n.ok, n.errh.lines

    def seg(seq: int, ack: int, load: bytes, fwd: bool = True, **kw: object) -> bytes:
        if fwd:
            return raw(IP(src="200.200.200.200", dst="2.0.0.2") / TCP(sport=30, dport=21, seq=seq, ack=ack, **kw)
                       / Raw(load))
        return raw(IP(src="2.0.0.2", dst="1.0.0.1") / TCP(sport=21, dport=1024, seq=seq, ack=ack, **kw))

    n.send([seg(0, 0, b"x"), seg(1, 0, b"PORT 200,200,200,200,200,200\n"), seg(30, 0, b"fubar\n")])
    out = [valid(p) for p in n.take(0)]
    assert bytes(out[1][Raw].load) == b"PORT 1,0,0,1,4,1\n"
    assert [p.seq for p in out] == [0, 1, 18]
    n.send([seg(0, 18, b"", False), seg(0, 0, b"", False, options=[("SAck", (1, 18))])])
    back = [valid(p) for p in n.take(0)]
    assert back[0].ack == 30 and back[1][TCP].options[0] == ("SAck", (1, 30))
    assert " seq -12 " in n.read("table")


# -- robustness ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,config,nin", [
    ("IPRewriter", "pattern 1.0.0.1 1024-65535 - - 0 1, pattern 2.0.0.1 - - - 1 0", 2),
    ("UDPRewriter", "pattern 1.0.0.1 1024-1030# - - 0 1, keep 1 0, MAPPING_CAPACITY 20", 2),
    ("TCPRewriter", "keep 0 1, pass 1", 2),
    ("IPAddrRewriter", "pattern 3.0.0.0/24 - 0 1, drop", 2),
    ("IPAddrPairRewriter", "pattern 3.0.0.1-3.0.0.9 - 0 1, keep 1 0", 2),
    ("ICMPPingRewriter", "pattern 2.0.0.2 - 0-65535 0 1, pass 0", 2),
    ("ICMPRewriter", "other", 1),
])
def test_fuzz_never_raises(cls: str, config: str, nin: int) -> None:
    extra = [("other", "IPRewriter", "pattern 1.0.0.1 1024-65535 - - 0 0")] if cls == "ICMPRewriter" else []
    n = Net(cls, config, nin, 2, extra=extra)
    assert n.ok, n.errh.lines
    rng = random.Random(11)
    good = [tcp("1.1.1.1", 1, "2.2.2.2", 2), udp("1.1.1.2", 3, "2.2.2.2", 4),
            raw(IP(src="1.1.1.3", dst="2.2.2.2") / ICMP(type=8, id=5)),
            raw(IP(src="2.2.2.2", dst="1.1.1.3", frag=20, flags=1) / Raw(b"x" * 20)),
            raw(IP(src="1.1.1.1", dst="2.2.2.2", ihl=15) / Raw(b"\x01" * 60)),
            raw(IP(src="9.9.9.9", dst="1.0.0.1") / ICMP(type=3) / raw(IP(src="1.0.0.1", dst="5.5.5.5")
                                                                     / UDP(sport=1024, dport=53))[:28])]
    for round_ in range(6):
        batch = []
        for _ in range(120):
            k = rng.random()
            if k < 0.3:
                batch.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 70))))
            else:
                m = bytearray(rng.choice(good))
                for _ in range(rng.randrange(0, 4)):
                    m[rng.randrange(len(m))] = rng.randrange(256)
                if rng.random() < 0.3:
                    m = m[: rng.randrange(0, len(m) + 1)]
                batch.append(bytes(m))
        n.send(batch, port=round_ % nin, annotate=round_ != 3)
        n.advance(rng.random() * 10)
    if cls != "ICMPRewriter":
        n.read("size")
        n.read("table" if cls != "IPRewriter" else "tcp_table")


# -- the flow table -----------------------------------------------------------------------------------------

def test_flow_table_against_dict() -> None:
    t = ft.FlowTable(4)
    rng = random.Random(2)
    model: dict[tuple[int, int], int] = {}
    flows: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {}
    for _ in range(3000):
        if flows and rng.random() < 0.4:
            f = rng.choice(list(flows))
            for e, k in ((2 * f, flows[f][0]), (2 * f + 1, flows[f][1])):
                if model.get(k) == e:
                    del model[k]
            t.release(f)
            del flows[f]
        else:
            k0 = ft.make_key(rng.randrange(8), rng.randrange(4), rng.randrange(8), rng.randrange(4))
            k1 = ft.make_key(rng.randrange(8), rng.randrange(4), rng.randrange(8), rng.randrange(4), 1)
            f = t.new_flow(k0, k1)
            flows[f] = (k0, k1)
            for e, k in ((2 * f, k0), (2 * f + 1, k1)):
                t.index(e)
                model[k] = e
        if rng.random() < 0.05:
            for k, e in model.items():
                assert int(ft.index_lookup(t.slots, t.K, np.uint64(k[0]), np.uint64(k[1]))) == e
    assert sorted(t.entries()) == sorted(model.values())



def _random_napt_case(rng: np.random.Generator, kind: int) -> tuple:
    """A flow table and a batch of packets, most of them of the table's flows, with
    random lengths, header offsets, protocols, fragments, TCP flags, checksums."""
    t = ft.FlowTable(8)
    addrs, ports = rng.integers(1, 2**32, 5), rng.integers(0, 65536, 5)
    keys: set[tuple[int, int]] = set()
    for _ in range(int(rng.integers(1, 30))):
        mapid = int(rng.integers(0, 2)) if kind == ft.KIND_IP else 0
        sa, da = int(rng.choice(addrs)), int(rng.choice(addrs))
        sp, dp = int(rng.choice(ports)), int(rng.choice(ports))
        k0 = ft.make_key(sa, sp, da, dp, mapid)
        k1 = ft.make_key(int(rng.choice(addrs)), int(rng.choice(ports)), sa, sp, mapid)
        if k0 in keys or k1 in keys or k0 == k1:
            continue
        keys |= {k0, k1}
        f = t.new_flow(k0, k1)
        t.index(2 * f)
        t.index(2 * f + 1)
        for c, hi in ((ft.C_IPD, 65536), (ft.C_L4D, 65536), (ft.C_TFLAGS, 16), (ft.C_OUT0, 4), (ft.C_OUT1, 4),
                      (ft.C_RANNO, 256), (ft.C_GUAR, 2), (ft.C_EXPIRY, 1000), (ft.C_STAMP, 1000)):
            t.F[f, c] = rng.integers(0, hi)
        t.F[f, ft.C_HASDT] = rng.random() < 0.05
    npk, row = int(rng.integers(1, 90)), 120
    data = rng.integers(0, 256, (npk + 2, row), dtype=np.uint8)
    anno = rng.integers(0, 256, (npk + 2, 48), dtype=np.uint8)
    off, length = np.zeros(npk + 2, np.int32), np.zeros(npk + 2, np.int32)
    nh, th = np.full(npk + 2, -1, np.int32), np.full(npk + 2, -1, np.int32)
    idx = rng.permutation(npk + 2)[:npk].astype(np.int32)
    for s in idx.tolist():
        o = int(rng.integers(0, 20))
        ip = o + int(rng.choice([0, 14]))
        ihl = 5 if rng.random() < 0.85 else int(rng.integers(5, 8))
        tl = int(rng.choice([8, 12, 18, 20, 40]))
        off[s], length[s] = o, min(ip + 4 * ihl + tl + int(rng.integers(0, 30)), row - o + (rng.random() < 0.03))
        nh[s] = ip if rng.random() > 0.02 else -1
        th[s] = ip + 4 * ihl if rng.random() < 0.7 else -1
        proto = int(rng.choice([6, 6, 17, 17, 33, 1]))
        data[s, ip], data[s, ip + 9] = 0x40 | ihl, proto
        if rng.random() < 0.9:
            data[s, ip + 6:ip + 8] = 0
        data[s, ip + 2:ip + 4] = divmod(4 * ihl + tl + int(rng.integers(0, 2)) * 20, 256)
        t4 = ip + 4 * ihl
        if rng.random() < 0.85:
            e = int(rng.integers(0, 2 * t.top))
            k0, k1 = int(t.K[e, 0]), int(t.K[e, 1])
            if kind == ft.KIND_IP and proto in (6, 17):
                data[s, ip + 9] = 17 if k1 >> 32 else 6
            data[s, ip + 12:ip + 20] = np.frombuffer(k0.to_bytes(8, "big"), np.uint8)
            data[s, t4:t4 + 4] = np.frombuffer((k1 & 0xFFFFFFFF).to_bytes(4, "big"), np.uint8)
        if rng.random() < 0.3:
            data[s, t4 + 6:t4 + 8] = 0
        data[s, t4 + 12] = int(rng.integers(5, 16)) << 4
        data[s, t4 + 13] = int(rng.choice([0x10, 0x18, 0x02, 0x12, 0x11, 0x01, 0x04]))
    return t, (data, off, length, nh, th, anno, idx)


def test_napt_kernel_matches_generic() -> None:
    """rewrite_batch's loop for the NAPT rewriters does what the general one does,
    packet for packet, including where it stops for Python and its port grouping."""
    rng = np.random.default_rng(7)
    for _ in range(150):
        kind = int(rng.choice([ft.KIND_IP, ft.KIND_TCP, ft.KIND_UDP]))
        t, pk = _random_napt_case(rng, kind)
        W0 = ft.new_workspace(4, 100)
        W0[ft.P_KIND] = kind
        W0[ft.P_ANNOS] = rng.choice([0, 1, 2 + (5 << 2), 3 + (7 << 2)])
        for p in (ft.P_T0, ft.P_T1, ft.P_TCP_DATA, ft.P_TCP_DONE, ft.P_UDP_T0, ft.P_UDP_T1, ft.P_UDP_STREAM):
            W0[p] = rng.choice([0, 0, 1000, 300000])
        pass_out, miss_out = int(rng.choice([-1, 0, 3])), int(rng.choice([-2, -2, -1, 2]))
        forced = {k: int(rng.integers(-3, 2 * t.top)) for k in range(len(pk[6]))}
        results = []
        for fast in (True, False):
            data, off, length, nh, th, anno, idx = (a.copy() for a in pk)
            K, F, slots, W = t.K.copy(), t.F.copy(), t.slots.copy(), W0.copy()
            out = np.zeros(len(idx), np.int64)
            k, force, stamp, stops = 0, -1, 100, []
            while True:
                if fast:
                    ret = ft.rewrite_batch(data, off, length, nh, th, anno, idx, K, F, slots, W, np.zeros(0, np.int32),
                                           1234, stamp, k, force, pass_out, miss_out)
                    k, stamp = int(W[ft.P_RET_K]), int(W[ft.P_STAMP])
                    status = {ft.RET_MISS: ft.ST_MISS, ft.RET_SEQFIX: ft.ST_SEQFIX}.get(ret, ft.ST_DONE)
                    out = W[W[ft.P_OUT]:W[ft.P_OUT] + len(idx)]
                else:
                    k, status, stamp = ft._rewrite_generic(data, off, length, nh, th, anno, idx, out, K, F, slots, W,
                                                           1234, stamp, k, force, pass_out, miss_out)
                if status == ft.ST_DONE:
                    break
                stops.append((status, k, int(W[ft.P_RET_ENTRY]) if status == ft.ST_SEQFIX else -1))
                force = -1
                if status == ft.ST_SEQFIX:
                    k += 1
                elif forced[k] >= 0:
                    force = forced[k]
                else:
                    out[k] = forced[k] + 1
                    k += 1
            results.append((data, anno, out.copy(), F, stamp, stops))
        for a, b in zip(*results, strict=True):
            assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
    # the grouping by port rewrite_batch does for mixed batches
    t, (data, off, length, nh, th, anno, idx) = _random_napt_case(rng, ft.KIND_IP)
    W = ft.new_workspace(4, 100)
    sel = np.empty(len(idx), np.int32)
    ret = ft.rewrite_batch(data, off, length, nh, th, anno, idx, t.K, t.F, t.slots, W, sel, 1, 1, 0, -1, -1, -1)
    ports = W[W[ft.P_OUT]:W[ft.P_OUT] + len(idx)]
    if ret == -2:
        grouped, starts = np.empty_like(sel), np.zeros(6, np.int64)
        ft.group_by_port(idx, ports, len(idx), 4, grouped, starts)
        assert np.array_equal(sel, grouped)
        assert np.array_equal(W[ft.W_STARTS:ft.W_STARTS + 6], starts)
    else:
        assert (ports == ret).all()

# -- HashSwitch and RandomSample ----------------------------------------------------------------------------

def test_hashswitch_and_randomsample() -> None:
    n = Net("HashSwitch", "16, 4", 1, 3)
    pkts = [udp("1.1.1.1", 1, f"10.0.0.{i}", 2) for i in range(30)]
    n.send(pkts)
    for i, p in enumerate(pkts):
        want = sum(p[16:20]) % 3
        assert p in n.sinks[want].got, i
    n.send([b"\x45"])
    assert n.sinks[0].got[-1] == b"\x45"
    m = Net("RandomSample", "0.25", 1, 2)
    m.send([udp("1.1.1.1", 1, "2.2.2.2", 2)] * 2000)
    kept = len(m.sinks[0].got)
    assert 350 < kept < 650 and kept + len(m.sinks[1].got) == 2000
    assert m.read("drops") == str(2000 - kept)
    assert m.read("config") == "SAMPLE 0.25, ACTIVE true"
    assert m.write("drop_prob", "1") == 0 and m.read("sampling_prob") == "0"
    assert m.write("sampling_prob", "2") < 0
