"""IP elements: header checks, TTL, checksums, encapsulation, printing,
fragmentation and reassembly, route lookup.  Packets are built with scapy."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.all import ICMP, IP, TCP, UDP, Ether, IPOption, raw

from clickos.core import registry
from clickos.core.element import Element
from clickos.core.errors import ErrorHandler
from clickos.core.router import Router
from clickos.fuzz.targets import TEST_IP_FUZZ_ELEMENTS
from clickos.packet.batch import PacketBatch

# -- a tiny harness: inject packets, collect what comes out -------------------------------------


class Src(Element):
    port_count = "0/1"
    processing = "h"

    def send(self, packets: list[bytes], nh: int | None = None, dst: bytes | None = None,
             ts: int = 0, ptype: int = 0, paint: int | None = None) -> None:
        pool = self.router.pool
        slots = []
        for data in packets:
            s = pool.new_packet(bytes(data))
            if nh is not None:
                o = int(pool.off[s])
                pool.nh[s] = o + nh
                pool.th[s] = o + nh + ((data[nh] & 0xF) << 2)
            if dst is not None:
                pool.anno[s, 0:4] = np.frombuffer(dst, np.uint8)
            if paint is not None:
                pool.anno[s, 16] = paint
            pool.ts[s] = ts
            pool.ptype[s] = ptype
            slots.append(s)
        self.outputs[0].push(PacketBatch(pool, np.array(slots, np.int32)))


class Sink(Element):
    port_count = "1/0"
    processing = "h"

    def __init__(self) -> None:
        super().__init__()
        self.got: list[bytes] = []
        self.annos: list[bytes] = []
        self.nh: list[int | None] = []
        self.th: list[int | None] = []
        self.ts: list[int] = []

    def push(self, port: int, batch: PacketBatch) -> None:
        for p in batch:
            self.got.append(p.data)
            self.annos.append(p.anno_bytes(0, 48))
            self.nh.append(p.network_header_offset)
            self.th.append(p.transport_header_offset)
            self.ts.append(p.timestamp_ns)
        batch.kill()


def build(elements: list[tuple[str, object, str]], conns: list[tuple[str, int, str, int]],
          ok: bool = True) -> Router:
    reg = registry.load_all()
    r = Router()
    for name, cls, cfg in elements:
        klass = reg[cls] if isinstance(cls, str) else cls
        r.add_element(klass(), name, cfg)
    names = [e[0] for e in elements]
    for a, ap, b, bp in conns:
        r.add_connection(names.index(a), ap, names.index(b), bp)
    errh = ErrorHandler(echo=False)
    assert r.initialize(errh) == ok, errh.lines
    r.errh = errh  # type: ignore[attr-defined]
    return r


def chain(cls: str, cfg: str = "", nout: int = 1) -> Router:
    """src -> ELEMENT -> out0 (and -> out1 when nout is 2)."""
    els = [("src", Src, ""), ("e", cls, cfg), ("out0", Sink, "")]
    conns = [("src", 0, "e", 0), ("e", 0, "out0", 0)]
    if nout == 2:
        els.append(("out1", Sink, ""))
        conns.append(("e", 1, "out1", 0))
    return build(els, conns)


def handler(r: Router, ename: str, hname: str, value: str | None = None) -> str | int:
    h = r.handlers.find(r.find(ename), hname)
    assert h is not None, hname
    if value is None:
        return h.call_read()
    return h.call_write(value, ErrorHandler(echo=False))


def tcp_packet(**kw: object) -> bytes:
    return raw(IP(src="10.0.0.1", dst="10.0.0.2", **kw) / TCP(sport=20, dport=80) / b"payload!")


# -- CheckIPHeader --------------------------------------------------------------------------------


def test_checkipheader_good_sets_annotations_and_trims():
    r = chain("CheckIPHeader", "", 2)
    pkt = tcp_packet()
    r.find("src").send([pkt + b"\0\0pad"])
    out = r.find("out0")
    assert out.got == [pkt]
    assert out.annos[0][:4] == bytes([10, 0, 0, 2])
    assert out.nh == [0] and out.th == [20]
    assert r.find("out1").got == []


@pytest.mark.parametrize("data, reason", [
    (b"\x45\x00", "tiny packet"),
    (b"\x55" + tcp_packet()[1:], "bad IP version"),
    (b"\x43" + tcp_packet()[1:], "bad IP header length"),
    (tcp_packet()[:2] + b"\x0f\xff" + tcp_packet()[4:], "bad IP length"),
    (tcp_packet()[:10] + b"\x12\x34" + tcp_packet()[12:], "bad IP checksum"),
    (raw(IP(src="255.255.255.255", dst="10.0.0.2") / UDP()), "bad source address"),
])
def test_checkipheader_bad(data, reason, capsys):
    r = chain("CheckIPHeader", "INTERFACES 10.0.0.1/24, DETAILS true", 2)
    r.find("src").send([data, data])
    assert r.find("out0").got == []
    assert r.find("out1").got == [data, data]
    assert handler(r, "e", "drops") == "2"
    assert f"2\t{reason}" in handler(r, "e", "drop_details")
    err = capsys.readouterr().err
    assert err.count(f"e: IP header check failed: {reason}") == 1


def test_checkipheader_without_error_output_drops_and_offset():
    r = chain("CheckIPHeader", "OFFSET 14")
    good = b"E" * 14 + tcp_packet()
    pool = r.pool
    before = pool.in_use
    r.find("src").send([good, b"short"])
    assert r.find("out0").got == [good]
    assert pool.in_use == before  # bad packet freed, good one consumed by the sink
    assert r.find("out0").nh == [14]


def test_checkipheader_checksum_off_and_checkipheader2():
    bad = tcp_packet()[:10] + b"\x12\x34" + tcp_packet()[12:]
    for cls, cfg in (("CheckIPHeader", "CHECKSUM false"), ("CheckIPHeader2", "")):
        r = chain(cls, cfg)
        r.find("src").send([bad])
        assert r.find("out0").got == [bad]


def test_checkipheader_old_syntax_and_gooddst():
    r = chain("CheckIPHeader", "BADSRC 10.0.0.1, GOODDST 10.0.0.9", 2)
    r.find("src").send([tcp_packet(), raw(IP(src="10.0.0.1", dst="10.0.0.9") / UDP())])
    assert len(r.find("out1").got) == 1 and len(r.find("out0").got) == 1
    # as in Click, the old positional BADSRC form is rejected ("too many arguments")
    build([("e", "CheckIPHeader", "10.0.0.1")], [], ok=False)


def test_checkipheader_config_errors():
    build([("e", "CheckIPHeader", "OFFSET x")], [], ok=False)


def test_markipheader_strip_unstrip_striptonet():
    pkt = b"\xaa" * 14 + tcp_packet()
    r = build([("src", Src, ""), ("m", "MarkIPHeader", "14"), ("s", "StripIPHeader", ""), ("a", Sink, "")],
              [("src", 0, "m", 0), ("m", 0, "s", 0), ("s", 0, "a", 0)])
    r.find("src").send([pkt])
    assert r.find("a").got == [pkt[34:]]
    r2 = build([("src", Src, ""), ("m", "MarkIPHeader", "14"), ("s", "StripIPHeader", ""),
                ("u", "UnstripIPHeader", ""), ("t", "StripToNetworkHeader", ""), ("a", Sink, "")],
               [("src", 0, "m", 0), ("m", 0, "s", 0), ("s", 0, "u", 0), ("u", 0, "t", 0), ("t", 0, "a", 0)])
    r2.find("src").send([pkt])
    assert r2.find("a").got == [pkt[14:]]
    r3 = chain("StripToNetworkHeader")
    r3.find("src").send([pkt])  # no network header: unchanged
    assert r3.find("out0").got == [pkt]


# -- DecIPTTL, checksums, DSCP, ECN ----------------------------------------------------------------------


def test_decipttl_decrements_and_diverts():
    r = chain("DecIPTTL", "", 2)
    alive, dying = tcp_packet(ttl=64), tcp_packet(ttl=1)
    r.find("src").send([alive, dying], nh=0)
    out = IP(r.find("out0").got[0])
    assert out.ttl == 63
    del out.chksum
    assert raw(IP(r.find("out0").got[0])) == raw(IP(raw(out)))  # checksum is right
    assert r.find("out1").got == [dying]
    assert handler(r, "e", "drops") == "1"
    handler(r, "e", "active", "false")
    r.find("src").send([dying], nh=0)
    assert r.find("out0").got[-1] == dying


def test_decipttl_multicast_and_bad_checksum_kept_bad():
    r = chain("DecIPTTL", "MULTICAST false")
    mc = raw(IP(src="10.0.0.1", dst="224.0.0.5", ttl=1) / UDP())
    r.find("src").send([mc], nh=0)
    assert r.find("out0").got == [mc]
    bad = bytearray(tcp_packet(ttl=9))
    bad[10] ^= 0xFF
    r2 = chain("DecIPTTL")
    r2.find("src").send([bytes(bad)], nh=0)
    from clickos.elements.ip.common import in_cksum
    assert in_cksum(r2.find("out0").got[0][:20]) != 0  # incremental update keeps it wrong


def test_setipchecksum_and_drops(capsys):
    r = chain("SetIPChecksum")
    broken = bytearray(tcp_packet())
    broken[10:12] = b"\0\0"
    r.find("src").send([bytes(broken), b"\x45\x00\x00"])
    assert r.find("out0").got == [tcp_packet()]
    assert handler(r, "e", "drops") == "1"
    assert "SetIPChecksum: bad input packet" in capsys.readouterr().err


def test_setipdscp_and_handler():
    r = chain("SetIPDSCP", "46")
    r.find("src").send([tcp_packet(tos=3)], nh=0)
    p = IP(r.find("out0").got[0])
    assert p.tos == (46 << 2) | 3
    chk = p.chksum
    del p.chksum
    assert IP(raw(p)).chksum == chk
    assert handler(r, "e", "dscp") == "46"
    assert handler(r, "e", "dscp", "10") == 0
    assert handler(r, "e", "dscp") == "10"
    assert handler(r, "e", "dscp", "99") < 0
    build([("e", "SetIPDSCP", "64")], [], ok=False)


def test_markipce():
    r = chain("MarkIPCE")
    r.find("src").send([tcp_packet(tos=1), tcp_packet(tos=0), tcp_packet(tos=3)], nh=0)
    got = [IP(x) for x in r.find("out0").got]
    assert [g.tos & 3 for g in got] == [3, 3]
    r2 = chain("MarkIPCE", "true")
    r2.find("src").send([tcp_packet(tos=0)], nh=0)
    assert IP(r2.find("out0").got[0]).tos == 3


# -- addresses and annotations --------------------------------------------------------------------------


def test_get_set_store_fix_ip_address():
    pkt = tcp_packet()
    r = chain("GetIPAddress", "12")
    r.find("src").send([pkt])
    assert r.find("out0").annos[0][:4] == bytes([10, 0, 0, 1])
    r = chain("GetIPAddress", "IP dst, ANNO 4")
    r.find("src").send([pkt], nh=0)
    assert r.find("out0").annos[0][4:8] == bytes([10, 0, 0, 2])
    r = chain("SetIPAddress", "1.2.3.4")
    r.find("src").send([pkt])
    assert r.find("out0").annos[0][:4] == bytes([1, 2, 3, 4])
    assert handler(r, "e", "addr") == "1.2.3.4"
    assert handler(r, "e", "addr", "nonsense") < 0
    r = chain("StoreIPAddress", "9.9.9.9, dst", 2)
    r.find("src").send([pkt], nh=0)
    out = IP(r.find("out0").got[0])
    assert out.dst == "9.9.9.9"
    for layer in (out, out[TCP]):
        del layer.chksum
    assert raw(IP(raw(out))) == r.find("out0").got[0]
    r = chain("StoreIPAddress", "4", 2)  # annotation form; zero annotation -> no change
    r.find("src").send([b"\x01" * 3], dst=b"\1\2\3\4")
    assert r.find("out1").got == [b"\x01" * 3]
    r = chain("FixIPSrc", "7.7.7.7")
    pool = r.pool
    r.find("src").send([pkt], nh=0)
    assert r.find("out0").got == [pkt]
    s = pool.new_packet(pkt)
    pool.nh[s] = pool.off[s]
    pool.anno[s, 19] = 1
    r.find("e").push(0, PacketBatch.one(pool, s))
    fixed = IP(r.find("out0").got[-1])
    assert fixed.src == "7.7.7.7" and r.find("out0").annos[-1][19] == 0
    build([("e", "GetIPAddress", "16, IP src")], [], ok=False)


def test_dropbroadcasts(capsys):
    r = chain("DropBroadcasts", "", 2)
    r.find("src").send([b"a"], ptype=1)
    r.find("src").send([b"b"], ptype=0)
    r.find("src").send([b"c"], ptype=2)
    assert r.find("out0").got == [b"b"] and r.find("out1").got == [b"a", b"c"]
    assert handler(r, "e", "drops") == "2"
    assert capsys.readouterr().err.count("DropBroadcasts: dropped a packet") == 1


# -- encapsulation ---------------------------------------------------------------------------------------


def test_ipencap():
    r = chain("IPEncap", "udp, 1.0.0.1, 2.0.0.2, TTL 9, DSCP 5, DF true")
    r.find("src").send([b"hello", b"world!"])
    a, b = (IP(x) for x in r.find("out0").got)
    assert (a.src, a.dst, a.ttl, a.proto, a.tos, a.flags) == ("1.0.0.1", "2.0.0.2", 9, 17, 20, 2)
    assert (a.id, b.id, a.len, b.len) == (0, 1, 25, 26)
    for p in (a, b):
        chk = p.chksum
        del p.chksum
        assert IP(raw(p)).chksum == chk
    assert r.find("out0").annos[0][:4] == bytes([2, 0, 0, 2])
    r = chain("IPEncap", "4, 1.0.0.1, DST_ANNO")
    r.find("src").send([b"x" * 100], dst=b"\x09\x09\x09\x09")
    assert IP(r.find("out0").got[0]).dst == "9.9.9.9"
    assert handler(r, "e", "dst") == "DST_ANNO"
    assert handler(r, "e", "src", "5.5.5.5") == 0
    assert handler(r, "e", "src") == "5.5.5.5"
    for bad in ("300, 1.0.0.1, 2.0.0.2", "tcp, 1.0.0.1, nowhere", "tcp, 1.0.0.1, 2.0.0.2, TOS 1, DSCP 1"):
        build([("e", "IPEncap", bad)], [], ok=False)


def test_encap_without_headroom_shifts_packet():
    r = chain("IPEncap", "tcp, 1.0.0.1, 2.0.0.2")
    pool = r.pool
    s = pool.new_packet(b"abc", headroom=0)
    r.find("e").push(0, PacketBatch.one(pool, s))
    assert r.find("out0").got[0][20:] == b"abc"


# -- IPPrint -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pkt, text", [
    (IP(src="1.0.0.1", dst="2.0.0.2") / TCP(sport=1, dport=2, flags="SA", seq=5, ack=9, window=7),
     "1.0.0.1.1 > 2.0.0.2.2: S 5:6(1,40,40) ack 9 win 7"),
    (IP(src="1.0.0.1", dst="2.0.0.2") / UDP(sport=53, dport=99) / b"abc", "1.0.0.1.53 > 2.0.0.2.99: udp 11"),
    (IP(src="1.0.0.1", dst="2.0.0.2") / ICMP(type=8, id=0x1234, seq=3), "1.0.0.1 > 2.0.0.2: icmp echo (4660, 3)"),
    (IP(src="1.0.0.1", dst="2.0.0.2") / ICMP(type=3, code=3) / IP(src="2.0.0.2", dst="3.0.0.3") / UDP(dport=77),
     "1.0.0.1 > 2.0.0.2: icmp 3.0.0.3 unreachable port udp/77"),
    (IP(src="1.0.0.1", dst="2.0.0.2") / ICMP(type=11, code=0), "1.0.0.1 > 2.0.0.2: icmp timeexceeded transit"),
    (IP(src="1.0.0.1", dst="2.0.0.2", proto=51), "1.0.0.1 > 2.0.0.2: ip-proto-51"),
    (IP(src="1.0.0.1", dst="2.0.0.2", flags="MF", id=7) / UDP(), "1.0.0.1.53 > 2.0.0.2.53: udp 8 (frag 7:8@0+)"),
    (IP(src="1.0.0.1", dst="2.0.0.2", frag=2, id=7, proto=17) / b"abcdefgh", "1.0.0.1 > 2.0.0.2: udp (frag 7:8@16)"),
])
def test_ipprint_lines(pkt, text, capsys):
    r = chain("IPPrint", "lab, TIMESTAMP false")
    r.find("src").send([raw(pkt)], nh=0)
    assert capsys.readouterr().err == f"lab: {text}\n"


def test_ipprint_contents_and_truncated(capsys):
    r = chain("IPPrint", "TIMESTAMP false, PAYLOAD ascii, TTL true, ID true")
    pkt = raw(IP(src="1.0.0.1", dst="2.0.0.2", ttl=5, id=9) / UDP(sport=1, dport=2) / b"hello world")
    r.find("src").send([pkt, b"\x45\x00"], nh=0)
    err = capsys.readouterr().err
    assert err == ("id 9 ttl 5 1.0.0.1.1 > 2.0.0.2.2: udp 19\n  hello wo rld\ntruncated-ip\n")
    r2 = chain("IPPrint")
    r2.find("src").send([pkt])  # no IP header annotation: silent
    assert capsys.readouterr().err == ""
    build([("e", "IPPrint", "CONTENTS maybe")], [], ok=False)


# -- fragmentation and reassembly ---------------------------------------------------------------------------


def frag_chain() -> Router:
    return build([("src", Src, ""), ("f", "IPFragmenter", "64"), ("r", "IPReassembler", ""),
                  ("out0", Sink, ""), ("df", Sink, "")],
                 [("src", 0, "f", 0), ("f", 0, "r", 0), ("r", 0, "out0", 0), ("f", 1, "df", 0)])


def test_ipfragmenter_and_reassembler_roundtrip():
    r = frag_chain()
    big = raw(IP(src="1.0.0.1", dst="2.0.0.2", id=77) / UDP(sport=1, dport=2) / (b"0123456789" * 20))
    r.find("src").send([big, tcp_packet()], nh=0)
    assert r.find("out0").got == [big, tcp_packet()]
    assert handler(r, "f", "fragments") == str((len(big) - 20 + 39) // 40)
    assert "good reassemblies:   1" in handler(r, "r", "dump")


def test_ipfragmenter_fragments_and_df(capsys):
    r = chain("IPFragmenter", "44", 2)
    big = raw(IP(src="1.0.0.1", dst="2.0.0.2", id=5, options=[IPOption(b"\x83\x07\x04\x01\x02\x03\x04")])
              / UDP() / (b"x" * 60))
    dfp = raw(IP(src="1.0.0.1", dst="2.0.0.2", flags="DF") / UDP() / (b"x" * 60))
    r.find("src").send([big, dfp], nh=0)
    frags = [IP(x) for x in r.find("out0").got]
    assert all(len(raw(f)) <= 44 for f in frags)
    assert frags[0].ihl == 7 and frags[1].ihl == 7  # the copied LSRR option travels along
    assert [f.frag for f in frags] == [0, 2, 4, 6, 8] and frags[-1].flags == 0
    assert b"".join(raw(f)[28:] for f in frags) == big[28:]
    assert r.find("out1").got == [dfp]
    assert "IPFragmenter(44) DF 1.0.0.1 2.0.0.2 len=" in capsys.readouterr().err
    build([("e", "IPFragmenter", "4")], [], ok=False)


def test_ipreassembler_bad_and_out_of_order():
    r = chain("IPReassembler", "", 2)
    big = IP(src="1.0.0.1", dst="2.0.0.2", id=9) / UDP(sport=1, dport=2) / (b"abcdefgh" * 10)
    from scapy.all import fragment
    frags = [raw(f) for f in fragment(big, fragsize=24)]
    bad = raw(IP(src="1.0.0.1", dst="2.0.0.2", id=10, flags="MF", proto=17) / b"abc")  # odd middle length
    r.find("src").send(list(reversed(frags)) + [bad], nh=0, ts=5_000_000_000)
    assert r.find("out0").got == [raw(IP(raw(big)))]
    assert "bad fragments seen:  1" in handler(r, "e", "dump")


def test_ipreassembler_times_out_incomplete():
    r = chain("IPReassembler", "", 2)
    big = IP(src="1.0.0.1", dst="2.0.0.2", id=9) / UDP(sport=1, dport=2) / (b"abcdefgh" * 10)
    from scapy.all import fragment
    frags = [raw(f) for f in fragment(big, fragsize=24)]
    r.find("src").send(frags[:1], nh=0, ts=1_000_000_000)
    other = raw(IP(src="1.0.0.1", dst="2.0.0.2", id=99, flags="MF", proto=17) / b"abcdefgh")
    r.find("src").send([other], nh=0, ts=100_000_000_000)
    assert len(r.find("out1").got) == 1
    assert r.find("out1").got[0][:20] == frags[0][:20]


# -- route lookup ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ["LinearIPLookup", "StaticIPLookup", "RadixIPLookup", "DirectIPLookup",
                                 "RangeIPLookup"])
def test_lookup_elements(cls):
    els = [("src", Src, ""), ("rt", cls, "10.0.0.0/8 0, 10.1.0.0/16 10.1.0.1 1, 0/0 9.9.9.9 2"),
           ("a", Sink, ""), ("b", Sink, ""), ("c", Sink, "")]
    r = build(els, [("src", 0, "rt", 0), ("rt", 0, "a", 0), ("rt", 1, "b", 0), ("rt", 2, "c", 0)])
    for d in ("10.2.3.4", "10.1.9.9", "11.0.0.1"):
        r.find("src").send([b"p"], dst=bytes(int(x) for x in d.split(".")))
    assert [len(r.find(n).got) for n in "abc"] == [1, 1, 1]
    assert r.find("b").annos[0][:4] == bytes([10, 1, 0, 1])
    assert r.find("c").annos[0][:4] == bytes([9, 9, 9, 9])
    h = r.handlers.find(r.find("rt"), "lookup")
    assert h.call_read("10.1.2.3") == "1 10.1.0.1"
    assert h.call_read("10.5.5.5") == "0"
    if cls != "StaticIPLookup":
        assert handler(r, "rt", "add", "10.1.2.0/24 2") == 0
        assert h.call_read("10.1.2.3") == "2"
        assert handler(r, "rt", "add", "10.1.2.0/24 1") < 0
        assert handler(r, "rt", "set", "10.1.2.0/24 1") == 0
        assert handler(r, "rt", "remove", "10.1.2.0/24") == 0
        assert handler(r, "rt", "remove", "10.1.2.0/24") < 0
        assert handler(r, "rt", "ctrl", "add 12.0.0.0/8 1\nbogus") < 0
        assert h.call_read("12.0.0.1") == "2 9.9.9.9"  # rolled back
        assert handler(r, "rt", "ctrl", "add 12.0.0.0/8 1\nremove 0.0.0.0/0") == 0
        assert h.call_read("13.0.0.1") == "-1"
        r.find("src").send([b"q"], dst=b"\x0d\0\0\1")
        assert [len(r.find(n).got) for n in "abc"] == [1, 1, 1]
    assert "10.0.0.0/8" in handler(r, "rt", "table")


def test_lookup_config_errors_and_noncontiguous_mask():
    build([("src", Src, ""), ("rt", "RadixIPLookup", "10.0.0.0/8 5"), ("a", Sink, "")],
          [("src", 0, "rt", 0), ("rt", 0, "a", 0)], ok=False)
    r = build([("src", Src, ""), ("rt", "LinearIPLookup", "10.0.0.0/255.0.255.0 1, 0/0 0"),
               ("a", Sink, ""), ("b", Sink, "")],
              [("src", 0, "rt", 0), ("rt", 0, "a", 0), ("rt", 1, "b", 0)])
    r.find("src").send([b"x"], dst=bytes([10, 7, 0, 7]))
    r.find("src").send([b"y"], dst=bytes([10, 7, 1, 7]))
    assert r.find("b").got == [b"x"] and r.find("a").got == [b"y"]


def test_ip_options_gateway():
    r = chain("IPGWOptions", "9.9.9.9", 2)
    rr = raw(IP(src="1.0.0.1", dst="2.0.0.2", options=[IPOption(b"\x07\x07\x04\x00\x00\x00\x00")]) / UDP())
    badlen = raw(IP(src="1.0.0.1", dst="2.0.0.2", options=[IPOption(b"\x07\x20\x04\x00\x00\x00\x00")]) / UDP())
    r.find("src").send([rr, badlen, tcp_packet()], nh=0)
    out = r.find("out0").got
    assert out[0][23:27] == bytes([9, 9, 9, 9]) and out[0][22] == 8
    assert out[1] == tcp_packet()
    assert r.find("out1").got == [badlen] and r.find("out1").annos[0][17] == 21


def test_ipinputcombo_and_ipoutputcombo(capsys):
    frame = raw(Ether() / IP(src="1.0.0.1", dst="2.0.0.2") / UDP())
    r = chain("IPInputCombo", "7")
    r.find("src").send([frame, frame[:20]])
    assert r.find("out0").got == [frame[14:]]
    assert r.find("out0").annos[0][16] == 7 and handler(r, "e", "drops") == "1"
    els = [("src", Src, ""), ("o", "IPOutputCombo", "1, 9.9.9.9, 60")] + [(f"o{i}", Sink, "") for i in range(5)]
    r = build(els, [("src", 0, "o", 0)] + [("o", i, f"o{i}", 0) for i in range(5)])
    r.find("src").send([tcp_packet(ttl=5), tcp_packet(ttl=1), raw(IP(ttl=9) / (b"x" * 50))], nh=0, paint=1)
    assert [len(r.find(f"o{i}").got) for i in range(5)] == [1, 3, 0, 1, 1]
    assert IP(r.find("o0").got[0]).ttl == 4


# -- garbage in: nothing raises ------------------------------------------------------------------------------

# the element configurations of the packet fuzzer (clickos fuzz), which pushes
# millions of packets through them; here a few dozen each, in every test run
FUZZ_ELEMENTS = list(TEST_IP_FUZZ_ELEMENTS)


@pytest.mark.parametrize("cls, cfg", FUZZ_ELEMENTS)
def test_garbage_never_raises(cls, cfg, capsys):
    """Random bytes, truncated headers, wild header annotations and packets at the
    very end of their slot: every element copes (drops, passes or errors out)."""
    import random

    rng = random.Random(hash((cls, cfg)) & 0xFFFF)
    r = build([("src", Src, ""), ("e", cls, cfg), ("a", Sink, "")], [("src", 0, "e", 0), ("e", 0, "a", 0)])
    pool = r.pool
    for _ in range(60):
        n = rng.choice([0, 1, 5, 14, 19, 20, 21, 28, 40, 60, 100, 300])
        data = bytes(rng.getrandbits(8) for _ in range(n))
        if n >= 20 and rng.random() < 0.7:
            data = bytes([0x40 | rng.randint(0, 15)]) + data[1:]
        s = pool.new_packet(data, rng.choice([None, 0, 10]))
        if rng.random() < 0.2:
            o = pool.slot_size - n
            pool.data[s, o: o + n] = np.frombuffer(data, np.uint8)
            pool.off[s] = o
        o = int(pool.off[s])
        if rng.random() < 0.7:
            pool.nh[s] = o + rng.choice([0, 0, 2, n, -5, n + 3])
            pool.th[s] = -1 if rng.random() < 0.1 else pool.nh[s] + rng.choice([20, 24, 0, 60, 200])
        if rng.random() < 0.3:
            pool.mac[s] = o + rng.choice([0, -14, n])
        pool.anno[s] = np.frombuffer(bytes(rng.getrandbits(8) for _ in range(48)), np.uint8)
        pool.ptype[s] = rng.randint(0, 4)
        pool.ts[s] = rng.choice([0, 10**9, 10**11])
        r.find("e").push(0, PacketBatch.one(pool, s))
    capsys.readouterr()
