"""ICMP and TCP/UDP elements.  Packets are built with scapy."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.all import ICMP, IP, TCP, UDP, IPOption, raw

from clickos.core import registry
from clickos.core.element import Element
from clickos.core.errors import ErrorHandler
from clickos.core.router import Router
from clickos.packet.batch import PacketBatch


class Src(Element):
    port_count = "0/1"
    processing = "h"

    def send(self, packets: list[bytes], ip: bool = True, anno: dict[int, int] | None = None,
             ptype: int = 0) -> None:
        pool = self.router.pool
        slots = []
        for data in packets:
            s = pool.new_packet(bytes(data))
            if ip:
                o = int(pool.off[s])
                pool.nh[s] = o
                pool.th[s] = o + ((data[0] & 0xF) << 2)
            for k, v in (anno or {}).items():
                pool.anno[s, k] = v
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

    def push(self, port: int, batch: PacketBatch) -> None:
        for p in batch:
            self.got.append(p.data)
            self.annos.append(p.anno_bytes(0, 48))
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


def valid(pkt: bytes) -> bool:
    """Whether scapy agrees with every checksum in ``pkt``."""
    p = IP(pkt)
    again = IP(pkt)
    for layer in (again, again.payload):
        if hasattr(layer, "chksum"):
            del layer.chksum
    return raw(IP(raw(again))) == raw(p)


# -- ICMP -----------------------------------------------------------------------------------------------


def test_checkicmpheader(capsys):
    r = chain("CheckICMPHeader", "DETAILS true", 2)
    good = raw(IP(src="1.0.0.1", dst="2.0.0.2") / ICMP(type=8) / b"ping")
    bad_sum = bytearray(good)
    bad_sum[22] ^= 0xFF
    short_err = raw(IP(src="1.0.0.1", dst="2.0.0.2") / ICMP(type=3, code=1) / b"abc")
    tstamp_wrong = raw(IP(src="1.0.0.1", dst="2.0.0.2") / ICMP(type=13) / b"abc")
    not_icmp = raw(IP() / UDP())
    r.find("src").send([good, bytes(bad_sum), short_err, tstamp_wrong, not_icmp])
    assert r.find("out0").got == [good]
    assert len(r.find("out1").got) == 4
    assert handler(r, "e", "drop_details") == "1\tnot ICMP\n2\tbad packet length\n1\tbad ICMP checksum\n"
    assert capsys.readouterr().err == "e :: CheckICMPHeader: ICMP header check failed: bad ICMP checksum\n"


def test_icmperror_basic_and_suppressed():
    r = chain("ICMPError", "9.9.9.9, unreachable, port")
    orig = raw(IP(src="1.0.0.1", dst="2.0.0.2", ttl=3) / UDP(sport=5, dport=7) / (b"z" * 600))
    r.find("src").send([orig])
    err = IP(r.find("out0").got[0])
    assert (err.src, err.dst, err.ttl, err[ICMP].type, err[ICMP].code) == ("9.9.9.9", "1.0.0.1", 200, 3, 3)
    assert len(r.find("out0").got[0]) == 576
    assert raw(err[ICMP].payload)[:28] == orig[:28]
    assert valid(r.find("out0").got[0])
    annos = r.find("out0").annos[0]
    assert annos[:4] == bytes([1, 0, 0, 1]) and annos[19] == 1
    suppressed = [
        raw(IP(src="1.0.0.1", dst="2.0.0.2") / ICMP(type=3)),          # an ICMP error
        raw(IP(src="1.0.0.1", dst="255.255.255.255") / UDP()),        # broadcast destination
        raw(IP(src="127.0.0.1", dst="2.0.0.2") / UDP()),              # bad source
        raw(IP(src="1.0.0.1", dst="2.0.0.2", frag=3, proto=17) / b"12345678"),  # later fragment
    ]
    r.find("src").send(suppressed)
    r.find("src").send([orig], ptype=1)                               # link broadcast
    r.find("src").send([orig], ip=False)                              # no IP header
    assert len(r.find("out0").got) == 1


def test_icmperror_types_and_source_route():
    r = chain("ICMPError", "9.9.9.9, parameterproblem")
    pkt = raw(IP(src="1.0.0.1", dst="2.0.0.2") / UDP())
    r.find("src").send([pkt], anno={17: 9})
    assert IP(r.find("out0").got[0])[ICMP].ptr == 9
    r = chain("ICMPError", "9.9.9.9, redirect, host")
    r.find("src").send([pkt], anno={0: 7, 1: 7, 2: 7, 3: 7})
    assert IP(r.find("out0").got[0])[ICMP].gw == "7.7.7.7"
    r = chain("ICMPError", "9.9.9.9, 3, 4, PMTU 1400")
    r.find("src").send([pkt])
    assert IP(r.find("out0").got[0])[ICMP].nexthopmtu == 1400
    r = chain("ICMPError", "9.9.9.9, timeexceeded, SET_FIX_ANNO false")
    opt = IPOption(b"\x89\x0f\x0c" + bytes([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]))
    sr = raw(IP(src="1.0.0.1", dst="2.0.0.2", options=[opt]) / UDP())
    r.find("src").send([sr])
    out = r.find("out0").got[0]
    assert out[20:32] == bytes([0x89, 0x0b, 0x04, 2, 2, 2, 2, 1, 1, 1, 1, 0])
    assert r.find("out0").annos[0][19] == 0 and valid(out)
    for bad in ("9.9.9.9, echo", "9.9.9.9, unreachable, nonsense", "9.9.9.9, 300", "9.9.9.9"):
        build([("e", "ICMPError", bad)], [], ok=False)


def test_icmppingresponder():
    r = chain("ICMPPingResponder", "", 2)
    ping = raw(IP(src="1.0.0.1", dst="2.0.0.2", ttl=7, flags="DF") / ICMP(type=8, id=3, seq=4) / b"hello")
    r.find("src").send([ping, raw(IP() / UDP())], anno={16: 5})
    reply = IP(r.find("out0").got[0])
    assert (reply.src, reply.dst, reply.ttl, reply.flags, reply[ICMP].type) == ("2.0.0.2", "1.0.0.1", 255, 0, 0)
    assert (reply[ICMP].id, reply[ICMP].seq, raw(reply[ICMP].payload)) == (3, 4, b"hello")
    assert valid(r.find("out0").got[0])
    assert r.find("out0").annos[0][16] == 0 and r.find("out0").annos[0][:4] == bytes([1, 0, 0, 1])
    assert len(r.find("out1").got) == 1


def test_icmppingencap():
    r = chain("ICMPPingEncap", "1.0.0.1, 2.0.0.2, IDENTIFIER 9")
    r.find("src").send([b"abc", b"defg"], ip=False)
    a, b = (IP(x) for x in r.find("out0").got)
    assert (a[ICMP].type, a[ICMP].id, a[ICMP].seq, b[ICMP].seq, a.id, a.ttl) == (8, 9, 1, 2, 1, 255)
    assert all(valid(x) for x in r.find("out0").got)
    assert handler(r, "e", "dst", "3.3.3.3") == 0 and handler(r, "e", "dst") == "3.3.3.3"
    assert handler(r, "e", "src", "x") < 0


# -- TCP and UDP --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, layer", [("CheckTCPHeader", TCP), ("CheckUDPHeader", UDP)])
def test_check_transport(cls, layer, capsys):
    r = chain(cls, "VERBOSE true, DETAILS true", 2)
    good = raw(IP(src="1.0.0.1", dst="2.0.0.2") / layer() / b"data")
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    other = raw(IP(src="1.0.0.1", dst="2.0.0.2") / (UDP() if layer is TCP else TCP()))
    truncated = good[:-3]
    r.find("src").send([good, bytes(bad), other, truncated])
    assert r.find("out0").got == [good]
    assert len(r.find("out1").got) == 3
    assert handler(r, "e", "drops") == "3"
    name = "TCP" if layer is TCP else "UDP"
    assert f"1\tnot {name}\n1\tbad packet length\n1\tbad {name} checksum\n" == handler(r, "e", "drop_details")
    assert capsys.readouterr().err.count("header check failed") == 3


def test_udp_zero_checksum_accepted_and_source_route_pseudoheader():
    r = chain("CheckUDPHeader")
    pkt = bytearray(raw(IP(src="1.0.0.1", dst="2.0.0.2") / UDP() / b"data"))
    pkt[26:28] = b"\0\0"
    r.find("src").send([bytes(pkt)])
    assert len(r.find("out0").got) == 1
    opt = IPOption(b"\x83\x07\x04" + bytes([5, 5, 5, 5]))
    r = build([("src", Src, ""), ("s", "SetUDPChecksum", ""), ("c", "CheckUDPHeader", ""), ("a", Sink, "")],
              [("src", 0, "s", 0), ("s", 0, "c", 0), ("c", 0, "a", 0)])
    routed = raw(IP(src="1.0.0.1", dst="2.0.0.2", options=[opt]) / UDP() / b"data")
    r.find("src").send([routed])
    assert len(r.find("a").got) == 1


def test_set_checksums(capsys):
    tcp = bytearray(raw(IP(src="1.0.0.1", dst="2.0.0.2") / TCP() / b"data"))
    tcp[36:38] = b"\0\0"
    r = chain("SetTCPChecksum")
    r.find("src").send([bytes(tcp), bytes(tcp[:30])])
    assert len(r.find("out0").got) == 1 and valid(r.find("out0").got[0])
    assert "SetTCPChecksum: bad lengths" in capsys.readouterr().err
    udp = bytearray(raw(IP(src="1.0.0.1", dst="2.0.0.2") / UDP() / b"data"))
    udp[26:28] = b"\0\0"
    frag = raw(IP(src="1.0.0.1", dst="2.0.0.2", flags="MF") / UDP() / b"data")
    r = chain("SetUDPChecksum", "", 2)
    r.find("src").send([bytes(udp), frag])
    assert valid(r.find("out0").got[0]) and r.find("out1").got == [frag]
    r = chain("SetTCPChecksum", "true")
    fix = bytearray(raw(IP(src="1.0.0.1", dst="2.0.0.2") / TCP(dataofs=2)))
    r.find("src").send([bytes(fix)])
    assert IP(r.find("out0").got[0])[TCP].dataofs == 5


def test_udpipencap():
    r = chain("UDPIPEncap", "1.0.0.1, 1234, 2.0.0.2, dns")
    r.find("src").send([b"hello", b"world"], ip=False)
    a, b = (IP(x) for x in r.find("out0").got)
    assert (a.src, a.dst, a[UDP].sport, a[UDP].dport, a.ttl, a.id, b.id) == ("1.0.0.1", "2.0.0.2", 1234, 53,
                                                                            250, 0, 1)
    assert all(valid(x) for x in r.find("out0").got)
    assert r.find("out0").annos[0][:4] == bytes([2, 0, 0, 2])
    assert handler(r, "e", "dport") == "53"
    assert handler(r, "e", "dport", "99") == 0 and handler(r, "e", "dport") == "99"
    r = chain("UDPIPEncap", "1.0.0.1, 1, DST_ANNO, 2, false")
    r.find("src").send([b"x"], ip=False, anno={0: 4, 1: 4, 2: 4, 3: 4})
    p = IP(r.find("out0").got[0])
    assert p.dst == "4.4.4.4" and p[UDP].chksum == 0
    for bad in ("1.0.0.1, 70000, 2.0.0.2, 1", "1.0.0.1, 1, nowhere, 1"):
        build([("e", "UDPIPEncap", bad)], [], ok=False)


def test_icmpipencap():
    r = chain("ICMPIPEncap", "1.0.0.1, 2.0.0.2, timestamp, IDENTIFIER 3")
    r.find("src").send([b"abc"], ip=False)
    p = IP(r.find("out0").got[0])
    assert (p[ICMP].type, p[ICMP].id, p[ICMP].seq, len(r.find("out0").got[0])) == (13, 3, 1, 43)
    assert valid(r.find("out0").got[0])
    r = chain("ICMPIPEncap", "1.0.0.1, 2.0.0.2, unreachable, host")
    r.find("src").send([b"abc"], ip=False)
    p = IP(r.find("out0").got[0])
    assert (p[ICMP].type, p[ICMP].code, len(r.find("out0").got[0])) == (3, 1, 31)
    build([("e", "ICMPIPEncap", "1.0.0.1, 2.0.0.2, 3, bogus")], [], ok=False)
