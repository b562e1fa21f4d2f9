"""Ethernet and ARP elements.  Frames are built with scapy."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.all import ARP, IP, TCP, Dot1Q, Ether, raw

from clickos.core import registry
from clickos.core.element import Element
from clickos.core.errors import ErrorHandler
from clickos.core.router import Router
from clickos.packet.batch import PacketBatch


class Src(Element):
    port_count = "0/1"
    processing = "h"

    def send(self, packets: list[bytes], dst: bytes | None = None, vlan: int | None = None,
             nh: int | None = None) -> None:
        pool = self.router.pool
        slots = []
        for data in packets:
            s = pool.new_packet(bytes(data))
            if dst is not None:
                pool.anno[s, 0:4] = np.frombuffer(dst, np.uint8)
            if vlan is not None:
                pool.anno[s, 20:22] = np.frombuffer(vlan.to_bytes(2, "big"), np.uint8)
            if nh is not None:
                pool.nh[s] = pool.off[s] + nh
            slots.append(s)
        self.outputs[0].push(PacketBatch(pool, np.array(slots, np.int32)))


class Sink(Element):
    port_count = "1/0"
    processing = "h"

    def __init__(self) -> None:
        super().__init__()
        self.got: list[bytes] = []
        self.annos: list[bytes] = []
        self.ptype: list[int] = []
        self.mac: list[int | None] = []
        self.nh: list[int | None] = []

    def push(self, port: int, batch: PacketBatch) -> None:
        for p in batch:
            self.got.append(p.data)
            self.annos.append(p.anno_bytes(0, 48))
            self.ptype.append(p.packet_type)
            self.mac.append(p.mac_header_offset)
            self.nh.append(p.network_header_offset)
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
    return r


def chain(cls: str, cfg: str = "", nout: int = 1) -> Router:
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


A = "02:00:00:00:00:0a"
B = "02:00:00:00:00:0b"


def test_etherencap_and_handlers():
    r = chain("EtherEncap", f"0x0800, {A}, {B}")
    r.find("src").send([b"payload", b"x"])
    got = [Ether(x) for x in r.find("out0").got]
    assert (got[0].src, got[0].dst, got[0].type, raw(got[0].payload)) == (A, B, 0x800, b"payload")
    assert r.find("out0").mac == [0, 0] and r.find("out0").nh == [14, 14]
    assert handler(r, "e", "ethertype") == "2048"
    assert handler(r, "e", "ethertype", "0x86dd") == 0
    assert handler(r, "e", "ethertype") == "34525"
    assert handler(r, "e", "src") == "02-00-00-00-00-0A"
    assert handler(r, "e", "dst", "bogus") < 0
    r.find("src").send([b"y"])
    assert Ether(r.find("out0").got[-1]).type == 0x86DD
    for bad in ("0x10000, 1:1:1:1:1:1, 2:2:2:2:2:2", "0x800, 1:1:1:1:1, 2:2:2:2:2:2", "0x800"):
        build([("e", "EtherEncap", bad)], [], ok=False)


def test_ethermirror_and_rewrite():
    frame = raw(Ether(src=A, dst=B) / b"data")
    r = chain("EtherMirror")
    r.find("src").send([frame])
    assert Ether(r.find("out0").got[0]).src == B and Ether(r.find("out0").got[0]).dst == A
    r = chain("EtherRewrite", "1:1:1:1:1:1, 2:2:2:2:2:2")
    r.find("src").send([frame])
    e = Ether(r.find("out0").got[0])
    assert (e.src, e.dst, raw(e.payload)) == ("01:01:01:01:01:01", "02:02:02:02:02:02", b"data")
    # Click's handler spec for "src" names positional argument 1, which is DST: kept
    assert handler(r, "e", "src", "3:3:3:3:3:3") == 0 and handler(r, "e", "dst") == "03-03-03-03-03-03"


def test_etherrewrite_kernel_any_alignment():
    """The kernel writes aligned headers as two words and others byte by byte:
    both give the same bytes, at the MAC header or the data start, up to the
    slot's end; the bytes around the header are left alone."""
    from clickos.packet import netkernels
    from clickos.packet.pool import PacketPool

    pool = PacketPool(8)
    idx = np.arange(6, dtype=np.int32)
    pool.data[:] = 0xEE
    pool.off[idx] = [128, 129, 130, 131, 136, pool.slot_size - 12]
    pool.mac[idx] = -1
    pool.mac[4] = 140
    for hdr in (np.arange(1, 13, dtype=np.uint8), np.full(12, 0xFF, np.uint8)):
        h8, h4 = int(hdr[:8].view(np.int64)[0]), int(hdr[8:].view(np.int32)[0])
        netkernels.ether_rewrite(pool.data, pool.off, pool.mac, idx, hdr, h8, h4)
        for s in idx.tolist():
            o = int(pool.mac[s]) if pool.mac[s] >= 0 else int(pool.off[s])
            assert bytes(pool.data[s, o:o + 12]) == hdr.tobytes()
            assert pool.data[s, o - 1] == 0xEE and (o + 12 == pool.slot_size or pool.data[s, o + 12] == 0xEE)


def test_hostetherfilter_types():
    r = chain("HostEtherFilter", f"{A}, true", 2)
    frames = [raw(Ether(src=B, dst=A)), raw(Ether(src=B, dst="ff:ff:ff:ff:ff:ff")),
              raw(Ether(src=B, dst="01:00:5e:00:00:01")), raw(Ether(src=B, dst="02:09:09:09:09:09")),
              raw(Ether(src=A, dst=B))]
    r.find("src").send(frames)
    assert r.find("out0").got == frames[:3]
    assert r.find("out0").ptype == [0, 1, 2]
    assert r.find("out1").got == frames[3:]
    r = chain("HostEtherFilter", f"{A}, DROP_OTHER false, OFFSET 2")
    r.find("src").send([b"zz" + frames[3]])
    assert r.find("out0").ptype == [3]
    assert handler(r, "e", "ether") == "02-00-00-00-00-0A"


def test_markmacheader():
    r = chain("MarkMACHeader", "2, 14")
    r.find("src").send([b"x" * 40])
    assert r.find("out0").mac == [2] and r.find("out0").nh == [16]


def test_vlan_encap_decap_strip():
    r = chain("EtherVLANEncap", f"0x0800, {A}, {B}, 5, 3")
    r.find("src").send([b"abcd"])
    e = Ether(r.find("out0").got[0])
    assert e.type == 0x8100 and e[Dot1Q].vlan == 5 and e[Dot1Q].prio == 3 and e[Dot1Q].type == 0x800
    r = chain("EtherVLANEncap", f"0x0800, {A}, {B}, ANNO, NATIVE_VLAN 1")
    r.find("src").send([b"abcd"], vlan=1)
    r.find("src").send([b"abcd"], vlan=0x2002)
    plain, tagged = (Ether(x) for x in r.find("out0").got)
    assert plain.type == 0x800 and tagged[Dot1Q].vlan == 2 and tagged[Dot1Q].prio == 1
    r = build([("src", Src, ""), ("v", "VLANEncap", "VLAN_ID 9, VLAN_PCP 1"), ("d", "VLANDecap", ""),
               ("a", Sink, "")], [("src", 0, "v", 0), ("v", 0, "d", 0), ("d", 0, "a", 0)])
    frame = raw(Ether(src=A, dst=B) / b"data")
    r.find("src").send([frame])
    assert r.find("a").got == [frame]
    assert r.find("a").annos[0][20:22] == (9 | (1 << 13)).to_bytes(2, "big")
    r = chain("StripEtherVLANHeader", "-1", 2)
    tagged = raw(Ether(src=A, dst=B) / Dot1Q(vlan=12) / b"IPDATA")
    r.find("src").send([tagged, frame])
    assert r.find("out0").got == [b"IPDATA"] and r.find("out0").annos[0][20:22] == b"\x00\x0c"
    assert r.find("out1").got == [frame]
    r = chain("SetVLANAnno", "VLAN_ID 7, VLAN_PCP 2")
    r.find("src").send([b"x"])
    assert r.find("out0").annos[0][20:22] == (7 | (2 << 13)).to_bytes(2, "big")
    assert handler(r, "e", "vlan_tci") == str(7 | (2 << 13))
    build([("e", "VLANEncap", "VLAN_ID 5000")], [], ok=False)
    build([("e", "StripEtherVLANHeader", "5000")], [], ok=False)


# -- ARP ---------------------------------------------------------------------------------------------------


def arp_request(tpa: str, spa: str = "10.0.0.1", sha: str = B) -> bytes:
    return raw(Ether(src=sha, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=sha, psrc=spa, pdst=tpa))


def test_arpresponder_replies_and_handlers():
    r = chain("ARPResponder", f"10.0.0.0/24 {A}, 10.0.0.5 02:00:00:00:00:05", 2)
    short = arp_request("10.0.0.7")[:30]
    reply_req = raw(Ether() / ARP(op=2, pdst="10.0.0.7"))
    r.find("src").send([arp_request("10.0.0.7"), arp_request("10.0.0.5"), arp_request("11.0.0.1"), short,
                        reply_req], vlan=3)
    replies = [Ether(x) for x in r.find("out0").got]
    assert [(p[ARP].op, p[ARP].psrc, p[ARP].hwsrc, p.dst) for p in replies] == [
        (2, "10.0.0.7", A, B), (2, "10.0.0.5", "02:00:00:00:00:05", B)]
    assert r.find("out0").annos[0][20:22] == b"\x00\x03" and r.find("out0").nh == [14, 14]
    assert len(r.find("out1").got) == 3
    lookup = r.handlers.find(r.find("e"), "lookup")
    assert lookup.call_read("10.0.0.5") == "02-00-00-00-00-05"
    assert lookup.call_read("10.0.0.9") == "02-00-00-00-00-0A"
    assert lookup.call_read("12.0.0.1") == ""
    assert handler(r, "e", "table") == "10.0.0.5/32 02-00-00-00-00-05\n10.0.0.0/24 02-00-00-00-00-0A\n"
    assert handler(r, "e", "add", "12.0.0.0/8 1:1:1:1:1:1") == 0
    assert handler(r, "e", "remove", "10.0.0.0/24") == 0
    assert handler(r, "e", "remove", "10.0.0.0/24") < 0
    assert handler(r, "e", "add", "1:1:1:1:1:1") < 0
    assert lookup.call_read("12.3.4.5") == "01-01-01-01-01-01"
    for bad in ("10.0.0.1", "1:1:1:1:1:1 2:2:2:2:2:2 1.2.3.4", "junk 1:1:1:1:1:1"):
        build([("e", "ARPResponder", bad)], [], ok=False)


def querier(cfg: str) -> Router:
    els = [("src", Src, ""), ("resp", Src, ""), ("q", "ARPQuerier", cfg), ("ip", Sink, ""), ("arp", Sink, "")]
    return build(els, [("src", 0, "q", 0), ("resp", 0, "q", 1), ("q", 0, "ip", 0), ("q", 1, "arp", 0)])


def test_arpquerier_query_then_reply_releases_packets():
    r = querier(f"10.0.0.1/24, {A}")
    ip = raw(IP(src="10.0.0.1", dst="10.0.0.9") / TCP())
    r.find("src").send([ip, ip, ip], dst=bytes([10, 0, 0, 9]))
    queries = [Ether(x) for x in r.find("arp").got]
    assert len(queries) == 1
    q = queries[0]
    assert (q.dst, q[ARP].op, q[ARP].pdst, q[ARP].psrc, q[ARP].hwsrc) == (
        "ff:ff:ff:ff:ff:ff", 1, "10.0.0.9", "10.0.0.1", A)
    assert r.find("ip").got == [] and handler(r, "q", "length") == "3"
    reply = raw(Ether(dst=A, src=B) / ARP(op=2, hwsrc=B, psrc="10.0.0.9", hwdst=A, pdst="10.0.0.1"))
    r.find("resp").send([reply])
    out = [Ether(x) for x in r.find("ip").got]
    assert len(out) == 3 and all(p.dst == B and p.src == A and p.type == 0x800 for p in out)
    assert raw(out[0].payload) == ip
    r.find("src").send([ip], dst=bytes([10, 0, 0, 9]))
    assert len(r.find("ip").got) == 4
    assert handler(r, "q", "stats") == "0 packets killed\n1 ARP queries sent\n"
    assert handler(r, "q", "responses") == "1"
    assert handler(r, "q", "table").startswith("10.0.0.9 1 02-00-00-00-00-0B ")


def test_arpquerier_special_destinations(capsys):
    r = querier(f"10.0.0.1/24, {A}")
    ip = raw(IP(src="10.0.0.1", dst="224.1.2.3") / TCP())
    r.find("src").send([ip], dst=bytes([224, 1, 2, 3]))
    r.find("src").send([ip], dst=bytes([10, 0, 0, 255]))
    r.find("src").send([ip], dst=bytes([255, 255, 255, 255]))
    r.find("src").send([ip], dst=bytes([0, 0, 0, 0]))
    dsts = [Ether(x).dst for x in r.find("ip").got]
    assert dsts == ["01:00:5e:01:02:03", "ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:ff"]
    assert "would query for 0.0.0.0" in capsys.readouterr().err
    assert handler(r, "q", "drops") == "1"


def test_arpquerier_capacities_and_handlers():
    r = querier(f"10.0.0.1, {A}, ENTRY_PACKET_CAPACITY 2")
    ip = raw(IP() / TCP())
    r.find("src").send([ip] * 5, dst=bytes([10, 0, 0, 9]))
    assert handler(r, "q", "stats") == "3 packets killed\n1 ARP queries sent\n"
    assert handler(r, "q", "insert", "10.0.0.7 2:2:2:2:2:2") == 0
    assert handler(r, "q", "insert", "10.0.0.7") < 0
    r.find("src").send([ip], dst=bytes([10, 0, 0, 7]))
    assert Ether(r.find("ip").got[-1]).dst == "02:02:02:02:02:02"
    assert handler(r, "q", "delete", "10.0.0.7") == 0
    assert handler(r, "q", "count") == "2"
    assert handler(r, "q", "ipaddr") == "10.0.0.1"
    assert handler(r, "q", "ipaddr", "10.0.0.2") == 0 and handler(r, "q", "ipaddr") == "10.0.0.2"
    assert handler(r, "q", "clear", "") == 0
    assert handler(r, "q", "count") == "0" and handler(r, "q", "length") == "0"
    r2 = querier(f"10.0.0.1, {A}, CAPACITY 4")
    r2.find("src").send([ip] * 9, dst=bytes([10, 0, 0, 9]))
    assert int(handler(r2, "q", "length")) <= 4


def test_arpquerier_shared_table_and_config_errors():
    els = [("t", "ARPTable", "TIMEOUT 10s"), ("src", Src, ""), ("resp", Src, ""),
           ("q", "ARPQuerier", f"10.0.0.1, {A}, TABLE t"), ("ip", Sink, "")]
    r = build(els, [("src", 0, "q", 0), ("resp", 0, "q", 1), ("q", 0, "ip", 0)])
    assert handler(r, "t", "insert", "10.0.0.3 2:0:0:0:0:3") == 0
    r.find("src").send([raw(IP() / TCP())], dst=bytes([10, 0, 0, 3]))
    assert Ether(r.find("ip").got[0]).dst == "02:00:00:00:00:03"
    assert handler(r, "t", "count") == "1"
    for bad in ("10.0.0.1", f"10.0.0.1, {A}, TABLE nothere", f"10.0.0.1, {A}, CAPACITY_SLIM_FACTOR 0"):
        build([("q", "ARPQuerier", bad)], [], ok=False)


@pytest.mark.parametrize("frame, text", [
    (ARP(op=1, psrc="1.0.0.1", pdst="1.0.0.2"), "arp who-has 1.0.0.2 tell 1.0.0.1"),
    (ARP(op=1, psrc="1.0.0.1", pdst="1.0.0.2", hwdst=B), "arp who-has 1.0.0.2 (02-00-00-00-00-0B) tell 1.0.0.1"),
    (ARP(op=2, psrc="1.0.0.1", hwsrc=A), "arp reply 1.0.0.1 is-at 02-00-00-00-00-0A"),
    (ARP(op=3, hwsrc=A, hwdst=B), "rarp who-is 02-00-00-00-00-0B tell 02-00-00-00-00-0A"),
    (ARP(op=7), "arp-#7"),
])
def test_arpprint(frame, text, capsys):
    r = chain("ARPPrint", "lab, TIMESTAMP false")
    r.find("src").send([raw(frame)], nh=0)
    r.find("src").send([raw(frame)])  # no network header: not printed
    r.find("src").send([b"\0\1"], nh=0)
    assert capsys.readouterr().err == f"lab: {text}\nlab: truncated-arp (2)\n"
