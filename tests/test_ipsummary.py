"""The IP summary dump format: fields, options, reading and writing."""

from __future__ import annotations

import pytest
from conftest import build
from conftest import run as _run_only

from clickos.io.ipsummary import (
    PacketDesc,
    SummaryReader,
    SummaryWriter,
    find_reader,
    find_writer,
    md5_text_digest,
    parse_ip_opt,
    parse_tcp_opt,
    unparse_ip_opt,
    unparse_tcp_opt,
)
from clickos.io.pcap import TraceFile


def run(text: str, **kw):  # noqa: ANN201
    """Run a configuration to the end, then clean up (closing output files)."""
    res = _run_only(text, **kw)
    res.router.cleanup()
    return res


def _reader(text: str, **kw) -> SummaryReader:
    tf = TraceFile(data=text.encode())
    tf.landmark_pattern = "%f:%l"
    tf.open()
    msgs: list[str] = []
    r = SummaryReader(tf, warn=lambda m, lm: msgs.append(f"{lm}: warning: {m}"),
                      error=lambda m, lm: msgs.append(f"{lm}: {m}"), **kw)
    r.messages = msgs  # type: ignore[attr-defined]
    r.check_banner()
    return r


def _lines(r: SummaryReader, fields: str) -> list[str]:
    w = SummaryWriter(fields)
    out = []
    while (b := r.read()) is not False:
        if b is None:
            continue
        d = PacketDesc(b.data, b.mac - b.off if b.mac >= 0 else -1, b.nh - b.off if b.nh >= 0 else -1,
                       b.th - b.off if b.th >= 0 else -1, ts=b.ts, paint=b.paint, aggregate=b.aggregate,
                       extra_packets=b.extra_packets, extra_length=b.extra_length)
        out.append(w.describe(d)[0].decode().rstrip("\n"))
    return out


def test_field_names() -> None:
    assert find_reader("src").name == "ip_src"
    assert find_writer("ts").name == "timestamp"
    assert find_writer("tcp seq").name == "tcp_seq"
    assert find_reader("payload_md5") is None and find_writer("payload_md5") is not None
    assert find_writer("nonsense") is None


@pytest.mark.parametrize("text", [
    "rr{2.3.4.5}+3", "rr{}+1", "ssrr{128.4.45.60,128.4.49.61^1.1.1.1,2.2.2.2}", "ts{1,10000,!45}+2",
    "ts.ip{1.0.0.1=!8320,1.0.0.2=8321^}++5", "ts{1,10000,!45}+2;rr{}+1", "99=1:2:3;lsrr{1.2.3.4^}",
])
def test_ip_options_round_trip(text: str) -> None:
    assert unparse_ip_opt(parse_ip_opt(text)) == text


def test_ip_option_details() -> None:
    assert parse_ip_opt(".") is None
    assert parse_ip_opt("nop;nop;eol") == b"\x01\x01\x00"
    assert unparse_ip_opt(b"\x01\x01\x00") == "."
    assert unparse_ip_opt(b"\x07\x09") == "?"
    with pytest.raises(ValueError):
        parse_ip_opt("bogus")
    assert unparse_ip_opt(parse_ip_opt("ts.preip{1.0.0.1=1^1.0.0.3,1.0.0.4=?}+1")) == \
        "ts.preip{1.0.0.1=1^1.0.0.3,1.0.0.4,0.0.0.0}"


@pytest.mark.parametrize("text", ["mss1460", "wscale10", "sackok", "sack1-2;sack5-9", "ts669063908:38382731",
                                  "mss1460;sackok;99=0:5:10"])
def test_tcp_options_round_trip(text: str) -> None:
    assert unparse_tcp_opt(parse_tcp_opt(text)) == text


def test_md5_text_digest() -> None:
    assert md5_text_digest(b"") == "u3bJz@iaYsq6aMaMSJVq_b"
    assert md5_text_digest(b"hi there\n") == "sy@Uze03MHB84qQruJ_zma"


def test_reader_writer_fields() -> None:
    r = _reader("!data src sport dst dport proto tcp_flags payload\n"
                "18.26.4.44 30 10.0.0.4 40 T SA \"hi\"\n"
                "1.2.3.4 - 5.6.7.8 - U - -\n"
                "\n"
                "junk junk junk\n")
    lines = _lines(r, "src sport dst dport proto tcp_flags payload ip_len payload_len")
    assert lines == ['18.26.4.44 30 10.0.0.4 40 T SA "hi" 42 2',
                     '1.2.3.4 0 5.6.7.8 0 U - "" 28 0']
    assert r.messages == ["<data>:5: packet parse error"]  # type: ignore[attr-defined]


def test_reader_banner_and_unknown_fields() -> None:
    r = _reader("hello\n!data bogus ip_ttl\n- 5\n")
    assert _lines(r, "ip_ttl") == ["5"]
    assert r.messages == ["<data>:0: warning: missing banner line; is this an IP summary dump?",  # type: ignore
                          "<data>:1: no '!data' provided",
                          "<data>:2: warning: unknown content type 'bogus'"]


def test_writer_errors() -> None:
    assert SummaryWriter("bogus").errors == ["unknown content type 'bogus'", "no contents specified"]
    assert SummaryWriter("payload", binary=True).errors == ["cannot use field payload with BINARY"]
    assert SummaryWriter("src ts").header() == "!IPSummaryDump 1.3\n!data ip_src timestamp\n"


def test_elements_text_and_binary(tmp_path) -> None:
    dump = tmp_path / "in"
    dump.write_text("!data timestamp src sport dst dport proto ip_opt tcp_opt count\n"
                    "1.5 1.0.0.1 10 2.0.0.2 20 T rr{2.3.4.5}+1 mss1400 1\n"
                    "2.25 1.0.0.1 10 2.0.0.2 20 U . . 3\n")
    binf = tmp_path / "bin"
    run(f"FromIPSummaryDump({dump}, STOP true) -> ToIPSummaryDump({binf}, BINARY true, "
        "FIELDS timestamp src sport dst dport proto ip_opt tcp_opt count)")
    assert b"!binary\n" in binf.read_bytes()
    out = tmp_path / "out"
    run(f"FromIPSummaryDump({binf}, STOP true) -> ToIPSummaryDump({out}, "
        "FIELDS timestamp src sport dst dport proto ip_opt tcp_opt count)")
    assert out.read_text().splitlines()[2:] == [
        "1.500000 1.0.0.1 10 2.0.0.2 20 T rr{2.3.4.5}+1 mss1400 1",
        "2.250000 1.0.0.1 10 2.0.0.2 20 U . - 3"]


def test_multipacket_and_checksum(tmp_path) -> None:
    dump = tmp_path / "in"
    dump.write_text("!data timestamp first_timestamp count ip_len src dst\n"
                    "2.0 1.0 3 300 1.0.0.1 2.0.0.2\n")
    out = tmp_path / "out"
    run(f"FromIPSummaryDump({dump}, STOP true, MULTIPACKET true) "
        f"-> ToIPSummaryDump({out}, FIELDS timestamp count ip_len wire_len)")
    assert out.read_text().splitlines()[2:] == ["1.000000 1 100 40", "1.500000 1 100 40", "2.000000 1 100 40"]
    run(f"FromIPSummaryDump({dump}, STOP true, CHECKSUM true) -> CheckIPHeader "
        f"-> ToIPSummaryDump({out}, FIELDS count ip_len wire_len)")
    assert out.read_text().splitlines()[2:] == ["3 300 300"]


def test_fromipsummarydump_config_errors(tmp_path) -> None:
    r = build("FromIPSummaryDump(STOP true) -> Discard")
    assert "FILENAME: required argument missing" in r.errors
    r = build(f"FromIPSummaryDump({tmp_path}/x, DATA \"!data src\") -> Discard")
    assert "FILENAME and DATA conflict" in r.errors
    r = build("Idle -> ToIPSummaryDump(-, FIELDS bogus)")
    assert "unknown content type 'bogus'" in r.errors
    r = run("f :: FromIPSummaryDump(DATA \"!data src\n1.2.3.4\", STOP true) -> c :: Counter -> Discard")
    assert r.read("c.count") == "1" and r.read("f.encap") == "IP" and r.read("f.filename") == "<data>"
