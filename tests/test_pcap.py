"""pcap files: our reader and writer against scapy (and tcpdump when installed),
plus FromDump/ToDump in routers."""

from __future__ import annotations

import gzip
import io
import shutil
import struct
import subprocess

import pytest
from conftest import build
from conftest import run as _run_only
from scapy.all import ICMP, IP, TCP, UDP, Dot1Q, Ether, Raw, rdpcap, wrpcap

from clickos.io.pcap import (
    DLT_EN10MB,
    DLT_LINUX_SLL,
    DLT_NULL,
    DLT_RAW,
    PCAP_MAGIC_NANO,
    PcapError,
    PcapReader,
    PcapWriter,
    TraceFile,
    find_ip_header,
    parse_dlt,
    read_pcap,
    unparse_dlt,
)


def run(text: str, **kw):  # noqa: ANN201
    """Run a configuration to the end, then clean up (closing output files)."""
    res = _run_only(text, **kw)
    res.router.cleanup()
    return res


def _frames() -> list:
    pk = [
        Ether(src="00:01:02:03:04:05", dst="0a:0b:0c:0d:0e:0f") / IP(src="1.2.3.4", dst="5.6.7.8")
        / TCP(sport=80, dport=1234, flags="SA") / Raw(b"hello"),
        Ether() / Dot1Q(vlan=7) / IP(src="9.9.9.9", dst="8.8.8.8") / UDP(sport=53, dport=99) / Raw(b"x" * 30),
        Ether(type=0x0806) / Raw(b"arp" * 10),
    ]
    for i, p in enumerate(pk):
        p.time = 1000 + i * 0.25
    return pk


def test_dlt_names() -> None:
    assert parse_dlt("ETHER") == DLT_EN10MB and parse_dlt("IP") == DLT_RAW and parse_dlt("#147") == 147
    assert parse_dlt("bogus") == -1
    assert unparse_dlt(DLT_RAW) == "IP" and unparse_dlt(147) == "#147" and unparse_dlt(-1) == "<none>"


@pytest.mark.parametrize("nano", [False, True])
def test_read_scapy_files(tmp_path, nano: bool) -> None:
    f = tmp_path / "s.pcap"
    wrpcap(str(f), _frames(), nano=nano)
    dlt, recs = read_pcap(str(f))
    assert dlt == DLT_EN10MB and len(recs) == 3
    assert recs[0].ts == 1000 * 10**9 and recs[1].ts == 1000 * 10**9 + 250_000_000
    assert recs[0].data == bytes(_frames()[0]) and recs[0].wire_len == len(recs[0].data)
    assert find_ip_header(recs[0].data, dlt) == 14
    assert find_ip_header(recs[1].data, dlt) == 18        # through the VLAN tag
    assert find_ip_header(recs[2].data, dlt) == -1


@pytest.mark.parametrize("nano", [False, True])
def test_write_read_back_with_scapy(tmp_path, nano: bool) -> None:
    f = tmp_path / "w.pcap"
    frames = [bytes(p) for p in _frames()]
    with open(f, "wb") as out:
        w = PcapWriter(out, DLT_EN10MB, snaplen=40, nano=nano)
        for i, b in enumerate(frames):
            w.write(5 * 10**9 + i * 1_000_001, b)
    pk = rdpcap(str(f))
    assert len(pk) == 3
    assert bytes(pk[0]) == frames[0][:40] and pk[0].wirelen == len(frames[0])
    assert float(pk[1].time) == pytest.approx(5.001000001 if nano else 5.001, abs=1e-10)
    if shutil.which("tcpdump"):
        r = subprocess.run(["tcpdump", "-nn", "-r", str(f)], capture_output=True, text=True)
        assert r.returncode == 0 and "1.2.3.4.80 > 5.6.7.8.1234" in r.stdout


def test_swapped_and_modified_headers() -> None:
    rec = b"\x45" + b"\0" * 19
    big = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, DLT_RAW) + struct.pack(">IIII", 7, 5, 20, 20) + rec
    tf = TraceFile(data=big)
    tf.open()
    r = PcapReader(tf)
    r.read_header()
    (one,) = list(r)
    assert r.linktype == DLT_RAW and one.ts == 7 * 10**9 + 5000 and one.data == rec
    mod = (struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, DLT_RAW)
           + struct.pack("<IIII", 1, 0, 20, 60) + b"\0" * 8 + rec)
    tf = TraceFile(data=mod)
    tf.open()
    r = PcapReader(tf)
    r.read_header()
    (one,) = list(r)
    assert one.data == rec and one.wire_len == 60
    tf = TraceFile(data=b"not a pcap file at all!!")
    tf.open()
    with pytest.raises(PcapError, match="bad magic"):
        PcapReader(tf).read_header()


def test_link_types() -> None:
    iph = bytes(IP(src="1.1.1.1", dst="2.2.2.2") / UDP())
    assert find_ip_header(b"\x02\0\0\0" + iph, DLT_NULL) == 4
    sll = b"\0\0\0\1\0\6" + b"\0" * 8 + b"\x08\x00"
    assert find_ip_header(sll + iph, DLT_LINUX_SLL) == 16
    assert find_ip_header(iph, DLT_RAW) == 0


def test_tracefile_lines_and_gzip(tmp_path) -> None:
    tf = TraceFile(data=b"a\nb\r\nc\rd")
    tf.open()
    lines = []
    while (line := tf.read_line()) is not None:
        lines.append(line)
    assert lines == [b"a\n", b"b\r\n", b"c\r", b"d"] and tf.lineno == 4
    f = tmp_path / "x.gz"
    f.write_bytes(gzip.compress(b"one\ntwo\n" * 20000))
    tf = TraceFile(str(f))
    tf.open()
    assert tf.peek_line() == b"one\n" and tf.read_line() == b"one\n"
    n = 1
    while tf.read_line() is not None:
        n += 1
    assert n == 40000 and tf.file_size() is None and tf.file_pos == 8 * 20000
    with pytest.raises(EOFError):
        (tmp_path / "empty").write_bytes(b"")
        TraceFile(str(tmp_path / "empty")).open()


def test_writer_header_fields() -> None:
    out = io.BytesIO()
    PcapWriter(out, DLT_RAW, snaplen=0, nano=True)
    magic, major, minor, _z, _s, snap, dlt = struct.unpack("=IHHiIII", out.getvalue())
    assert (magic, major, minor, snap, dlt) == (PCAP_MAGIC_NANO, 2, 4, 0xFFFFFFFF, DLT_RAW)


def test_fromdump_todump_roundtrip(tmp_path) -> None:
    src = tmp_path / "in.pcap"
    wrpcap(str(src), _frames())
    out = tmp_path / "out.pcap"
    r = run(f"""f :: FromDump({src}, STOP true, FORCE_IP true) -> c :: Counter -> ToDump({out}, ENCAP ETHER);
               f[1] -> c1 :: Counter -> Discard;""")
    assert r.read("c.count") == "2" and r.read("c1.count") == "1"
    assert r.read("f.encap") == "ETHER" and r.read("f.count") == "2"
    pk = rdpcap(str(out))
    assert [p[IP].src for p in pk] == ["1.2.3.4", "9.9.9.9"]
    assert float(pk[1].time) == pytest.approx(1000.25)


def test_fromdump_raw_forces_ip_and_times(tmp_path) -> None:
    f = tmp_path / "raw.pcap"
    pk = [IP(src=f"10.0.0.{i}", dst="10.0.1.1") / ICMP() for i in range(1, 6)]
    for i, p in enumerate(pk):
        p.time = 50 + i
    wrpcap(str(f), pk, linktype=DLT_RAW)
    out = tmp_path / "o.ipsum"
    run(f"FromDump({f}, STOP true, START_AFTER 1, END_AFTER 3) -> ToIPSummaryDump({out}, FIELDS timestamp src)")
    lines = [x for x in out.read_text().splitlines() if not x.startswith("!")]
    assert lines == ["51.000000 10.0.0.2", "52.000000 10.0.0.3"]


def test_fromdump_errors(tmp_path) -> None:
    r = build(f"FromDump({tmp_path}/nope.pcap) -> Discard")
    assert r.router is None and "No such file or directory" in r.errors
    (tmp_path / "bad").write_bytes(b"x" * 40)
    r = build(f"FromDump({tmp_path}/bad) -> Discard")
    assert "not a tcpdump file (bad magic number)" in r.errors
    r = build(f"FromDump({tmp_path}/bad, END 5, INTERVAL 3) -> Discard")
    assert "END, END_AFTER, and INTERVAL are mutually exclusive" in r.errors
    r = build(f"Idle -> ToDump({tmp_path}/x, ENCAP FOO)")
    assert "bad encapsulation type" in r.errors
