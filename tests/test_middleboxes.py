"""The nine ClickOS middleboxes end to end, on pcap files built with scapy.

Each test writes one input capture per interface, runs the middlebox's shipped
configuration with ``DEVn=pcap:in_n.pcap,out=out_n.pcap`` bindings until its
inputs are exhausted, and checks what came out of each interface: addresses,
ports, TTLs, checksums, and which packets were dropped.
"""

from __future__ import annotations

import os

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw
from scapy.utils import rdpcap, wrpcap

from clickos import middleboxes
from clickos.core.errors import ErrorHandler
from clickos.core.master import Master
from clickos.core.router import Router

# The addressing plan the configurations share.
IF0_MAC, IF0_IP = "02:00:00:00:00:01", "10.0.0.1"
IF1_MAC, IF1_IP = "02:00:00:00:01:01", "10.0.1.1"
HOST0_MAC, HOST0_IP = "02:00:00:00:00:02", "10.0.0.2"


class Result:
    """What a run left behind: frames out of each interface, and the router."""

    def __init__(self, router: Router, out: dict[int, list[Packet]]) -> None:
        self.router = router
        self.out = out

    def read(self, handler: str) -> str:
        v = self.router.call_read(handler, ErrorHandler(echo=False))
        assert v is not None, handler
        return v.strip()

    def write(self, handler: str, value: str) -> None:
        ename, hname = handler.rsplit(".", 1)
        h = self.router.handlers.find(self.router.find(ename), hname)
        h.call_write(value, ErrorHandler(echo=False))


def run_middlebox(name: str, tmp: str, inputs: dict[int, list[Packet]], devices: tuple[int, ...] = (0, 1),
                  defines: dict[str, str] | None = None) -> Result:
    """Run middlebox ``name`` with a pcap per device; returns the frames written per device."""
    defs = dict(defines or {})
    for d in devices:
        inp = os.path.join(tmp, f"in{d}.pcap")
        wrpcap(inp, inputs.get(d, []), linktype=1)
        defs[f"DEV{d}"] = f"pcap:{inp},out={os.path.join(tmp, f'out{d}.pcap')}"
    mb = middleboxes.get(name)
    errh = ErrorHandler(echo=False)
    r = Router.from_text(mb.text(), mb.path, errh, defines=defs, master=Master())
    assert r is not None, errh.text()
    r.activate(errh)
    try:
        r.master.driver()
    finally:
        r.master.close()
        r.cleanup()
    out = {}
    for d in devices:
        path = os.path.join(tmp, f"out{d}.pcap")
        out[d] = list(rdpcap(path)) if os.path.exists(path) and os.path.getsize(path) > 24 else []
    return Result(r, out)


def ip_checksum_ok(p: Packet) -> bool:
    ip = p[IP]
    fresh = IP(bytes(ip))
    want = fresh.chksum
    del fresh.chksum
    return IP(bytes(fresh)).chksum == want


def l4_checksum_ok(p: Packet) -> bool:
    for layer in (UDP, TCP, ICMP):
        if layer in p:
            raw = IP(bytes(p[IP]))
            want = raw[layer].chksum
            del raw[layer].chksum
            return IP(bytes(raw))[layer].chksum == want
    return True


def udp(src: str, dst: str, sport: int = 1234, dport: int = 53, ttl: int = 64, payload: bytes = b"x" * 18,
        smac: str = HOST0_MAC, dmac: str = IF0_MAC) -> Packet:
    return Ether(src=smac, dst=dmac) / IP(src=src, dst=dst, ttl=ttl) / UDP(sport=sport, dport=dport) / Raw(payload)


def tcp(src: str, dst: str, sport: int, dport: int, flags: str = "S", smac: str = HOST0_MAC,
        dmac: str = IF0_MAC) -> Packet:
    return Ether(src=smac, dst=dmac) / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags)


@pytest.fixture
def tmp(tmp_path: os.PathLike) -> str:
    return str(tmp_path)


# -- the list and the files ----------------------------------------------------------------------

def test_every_middlebox_has_a_configuration() -> None:
    assert [m.name for m in middleboxes.MIDDLEBOXES] == [
        "wire", "ethermirror", "iprouter", "firewall", "nat", "loadbalancer", "flowmonitor", "ids", "shaper"]
    for m in middleboxes.MIDDLEBOXES:
        text = m.text()
        assert "FromDevice(0)" in text and "ToDevice(" in text, m.name


def test_ids_pattern_file_is_current() -> None:
    path = os.path.join(middleboxes.CONF_DIR, middleboxes.IDS_PATTERN_FILE)
    with open(path, encoding="utf-8") as f:
        assert f.read() == middleboxes.ids_pattern_config()
    pats = middleboxes.ids_patterns()
    assert len(pats) == len(set(pats)) == 1000


# -- wire and ethermirror -------------------------------------------------------------------------

def test_wire_copies_frames_unchanged(tmp: str) -> None:
    frames = [udp(HOST0_IP, "10.0.1.9", sport=1000 + i) for i in range(300)]
    frames.append(Ether(src=HOST0_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.7"))
    res = run_middlebox("wire", tmp, {0: frames})
    assert [bytes(p) for p in res.out[1]] == [bytes(p) for p in frames]
    assert res.out[0] == []


def test_ethermirror_swaps_addresses(tmp: str) -> None:
    frames = [udp(HOST0_IP, "10.0.1.9", smac=f"02:00:00:00:00:{i:02x}", dmac="02:aa:bb:cc:dd:ee")
              for i in range(1, 6)]
    res = run_middlebox("ethermirror", tmp, {0: frames}, devices=(0,))
    assert len(res.out[0]) == 5
    for sent, got in zip(frames, res.out[0], strict=True):
        assert got.src == sent.dst and got.dst == sent.src
        assert bytes(got)[12:] == bytes(sent)[12:]


# -- iprouter --------------------------------------------------------------------------------------

def arp_reply(ip: str, mac: str, to_ip: str, to_mac: str) -> Packet:
    return Ether(src=mac, dst=to_mac) / ARP(op=2, hwsrc=mac, psrc=ip, hwdst=to_mac, pdst=to_ip)


def ip_frames(frames: list[Packet]) -> list[Packet]:
    return [p for p in frames if IP in p]


def test_iprouter_answers_arp(tmp: str) -> None:
    req = Ether(src=HOST0_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=HOST0_MAC, psrc=HOST0_IP, pdst=IF0_IP)
    other = Ether(src=HOST0_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=HOST0_MAC, psrc=HOST0_IP,
                                                               pdst="10.0.0.77")
    res = run_middlebox("iprouter", tmp, {0: [req, other]})
    assert len(res.out[0]) == 1 and res.out[1] == []
    rep = res.out[0][0]
    assert rep.dst == HOST0_MAC and rep.src == IF0_MAC
    assert rep[ARP].op == 2 and rep[ARP].hwsrc == IF0_MAC and rep[ARP].psrc == IF0_IP
    assert rep[ARP].pdst == HOST0_IP and rep[ARP].hwdst == HOST0_MAC


def test_iprouter_forwards_with_arp_ttl_and_checksums(tmp: str) -> None:
    host1_mac = "02:00:00:00:01:05"
    fwd = [udp(HOST0_IP, "10.0.1.5", sport=2000 + i, ttl=64 - i) for i in range(3)]
    res = run_middlebox("iprouter", tmp, {0: fwd, 1: [arp_reply("10.0.1.5", host1_mac, IF1_IP, IF1_MAC)]})
    out = ip_frames(res.out[1])
    assert len(out) == 3
    for sent, got in zip(fwd, out, strict=True):
        assert got.src == IF1_MAC and got.dst == host1_mac
        assert got[IP].ttl == sent[IP].ttl - 1
        assert got[IP].src == HOST0_IP and got[IP].dst == "10.0.1.5"
        assert got[UDP].sport == sent[UDP].sport and bytes(got[UDP].payload) == bytes(sent[UDP].payload)
        assert ip_checksum_ok(got) and l4_checksum_ok(got)
    # anything else the router sent on interface 1 is an ARP query for 10.0.1.5
    for p in res.out[1]:
        if IP not in p:
            assert p[ARP].op == 1 and p[ARP].pdst == "10.0.1.5" and p[ARP].psrc == IF1_IP
    assert res.out[0] == []


def test_iprouter_queries_arp_for_the_next_hop(tmp: str) -> None:
    res = run_middlebox("iprouter", tmp, {0: [udp(HOST0_IP, "192.168.7.7")]})
    assert len(res.out[1]) == 1
    q = res.out[1][0]
    assert q.dst == "ff:ff:ff:ff:ff:ff" and q.src == IF1_MAC
    assert q[ARP].op == 1 and q[ARP].pdst == "10.0.1.2" and q[ARP].psrc == IF1_IP and q[ARP].hwsrc == IF1_MAC


def test_iprouter_icmp_errors_and_drops(tmp: str) -> None:
    learn = arp_reply(HOST0_IP, HOST0_MAC, IF0_IP, IF0_MAC)
    expired = udp(HOST0_IP, "10.0.1.5", sport=7001, ttl=1)
    unreachable = udp(HOST0_IP, "172.16.0.1", sport=7002)
    bad_checksum = Ether(bytes(udp(HOST0_IP, "10.0.1.5", sport=7003)))
    bad_checksum[IP].chksum ^= 0x1111
    too_big_df = Ether(src=HOST0_MAC, dst=IF0_MAC) / IP(src=HOST0_IP, dst="10.0.1.5", flags="DF") / \
        UDP(sport=7004, dport=9) / Raw(b"z" * 1600)
    ping = Ether(src=HOST0_MAC, dst=IF0_MAC) / IP(src=HOST0_IP, dst=IF0_IP) / ICMP(id=77, seq=3) / Raw(b"hello")
    res = run_middlebox("iprouter", tmp, {0: [learn, expired, unreachable, bad_checksum, too_big_df, ping]})
    # nothing was forwarded: the TTL-1 packet expired, the others never qualified
    assert ip_frames(res.out[1]) == []
    replies = ip_frames(res.out[0])
    assert all(p.dst == HOST0_MAC and p.src == IF0_MAC for p in replies)
    assert all(p[IP].src == IF0_IP and p[IP].dst == HOST0_IP for p in replies)
    assert all(ip_checksum_ok(p) and l4_checksum_ok(p) for p in replies)
    kinds = {(p[ICMP].type, p[ICMP].code): p for p in replies}
    assert set(kinds) == {(11, 0), (3, 0), (3, 4), (0, 0)}, kinds
    assert kinds[(11, 0)][IPerror].dst == "10.0.1.5" and kinds[(11, 0)][UDP].sport == 7001
    assert kinds[(3, 0)][IPerror].dst == "172.16.0.1"
    assert kinds[(3, 4)].nexthopmtu == 1500
    echo = kinds[(0, 0)]
    assert echo[ICMP].id == 77 and echo[ICMP].seq == 3 and bytes(echo[ICMP].payload) == b"hello"


def test_iprouter_fragments_large_packets(tmp: str) -> None:
    big = Ether(src=HOST0_MAC, dst=IF0_MAC) / IP(src=HOST0_IP, dst="10.0.1.5", id=99) / \
        UDP(sport=5, dport=9) / Raw(bytes(range(256)) * 8)
    host1_mac = "02:00:00:00:01:05"
    res = run_middlebox("iprouter", tmp, {0: [big], 1: [arp_reply("10.0.1.5", host1_mac, IF1_IP, IF1_MAC)]})
    frags = ip_frames(res.out[1])
    assert len(frags) == 2
    assert all(len(p[IP]) <= 1500 and ip_checksum_ok(p) and p[IP].id == 99 for p in frags)
    assert frags[0][IP].flags.MF and not frags[1][IP].flags.MF
    data = b"".join(bytes(p[IP].payload) for p in sorted(frags, key=lambda p: p[IP].frag))
    assert data == bytes(big[IP].payload)


# -- flowmonitor -----------------------------------------------------------------------------------

def test_flowmonitor_counts_flows_and_passes_traffic(tmp: str) -> None:
    a = [udp(HOST0_IP, "10.0.1.9", sport=1111) for _ in range(3)]
    b = [tcp("10.0.1.9", HOST0_IP, 80, 2222, flags="A") for _ in range(2)]
    back = [udp("10.0.1.9", HOST0_IP, sport=53, dport=1111)]      # reply: same flow as a
    icmp = [Ether(src=HOST0_MAC, dst=IF0_MAC) / IP(src=HOST0_IP, dst="10.0.1.9") / ICMP()]
    frames = a + b + back + icmp
    res = run_middlebox("flowmonitor", tmp, {0: frames})
    assert [bytes(p) for p in res.out[1]] == [bytes(p) for p in frames]
    dump = os.path.join(tmp, "flows.txt")
    res.write("pkts.write_text_file", dump)
    with open(dump) as f:
        counts = sorted(int(line.split()[1]) for line in f if line[0].isdigit())
    assert counts == [2, 4]
    assert res.read("other.count") == "1"
    assert res.read("rate.count") == str(len(frames) - 1)


# -- ids ---------------------------------------------------------------------------------------------

def test_ids_drops_and_logs_signatures(tmp: str) -> None:
    pats = middleboxes.ids_patterns()
    clean = [udp(HOST0_IP, "10.0.1.9", sport=100 + i, payload=b"nothing to see here %d" % i) for i in range(20)]
    bad = [udp(HOST0_IP, "10.0.1.9", sport=200 + i, payload=b"GET " + pats[i * 97] + b" HTTP/1.0")
           for i in range(8)]
    frames = [p for pair in zip(clean, bad + [None] * 12, strict=True) for p in pair if p is not None]
    res = run_middlebox("ids", tmp, {0: frames}, devices=(0, 1, 2))
    assert [bytes(p) for p in res.out[1]] == [bytes(p) for p in frames if p in clean]
    assert [bytes(p) for p in res.out[2]] == [bytes(p) for p in frames if p in bad]
    assert res.read("alerts.count") == "8"


# -- shaper --------------------------------------------------------------------------------------------

def test_shaper_holds_rate_and_drops_overflow(tmp: str) -> None:
    frames = [udp(HOST0_IP, "10.0.1.9", sport=i, payload=b"p" * 958) for i in range(200)]  # 1000-byte frames
    res = run_middlebox("shaper", tmp, {0: frames}, defines={"RATE": "8Mbps", "CAPACITY": "40"})
    assert len(res.out[1]) == 40
    assert [bytes(p) for p in res.out[1]] == [bytes(p) for p in frames[:40]]
    assert res.read("q.drops") == "160"
    assert float(res.read("ToDevice@4.bit_rate")) == pytest.approx(8e6, rel=0.05)
