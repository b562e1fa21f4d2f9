"""Classifier: pattern parsing, the compiled decision program, and the batch kernel
checked against a slow reference matcher written straight from the pattern rules."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickos.elements.standard.classifier import (
    DROP_PORT,
    compile_patterns,
    parse_patterns,
    run_program,
)
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import PacketPool

# -- the reference: Click's pattern semantics, byte by byte ---------------------------------


def _nib(c: str) -> tuple[int, int]:
    return (0, 0) if c == "?" else (int(c, 16), 0xF)


def ref_clause(clause: str, data: bytes) -> bool:
    off_text, _, rest = clause.partition("/")
    value, _, mask = rest.partition("%")
    off = int(off_text)
    for i in range(len(value) // 2):
        hv, hm = _nib(value[2 * i])
        lv, lm = _nib(value[2 * i + 1])
        v, m = hv << 4 | lv, hm << 4 | lm
        if mask:
            mhv, mhm = _nib(mask[2 * i])
            mlv, mlm = _nib(mask[2 * i + 1])
            m &= (mhv << 4 | mlv) & (mhm << 4 | mlm)
        if m == 0:
            continue
        if off + i >= len(data) or (data[off + i] & m) != (v & m):
            return False
    return True


def ref_match(patterns: list[str], data: bytes) -> int:
    for p, pat in enumerate(patterns):
        if pat.strip() == "-":
            return p
        ok = True
        for word in pat.split():
            neg = word.startswith("!")
            if ref_clause(word.lstrip("!"), data) == neg:
                ok = False
                break
        if ok:
            return p
    return DROP_PORT


def classify(patterns: list[str], packets: list[bytes], align: int = 0) -> list[int]:
    pats, errors = parse_patterns(patterns, align)
    assert not errors, errors
    prog = compile_patterns(pats, align)
    pool = PacketPool(64)
    slots = np.array([pool.new_packet(p) for p in packets], np.int32)
    out = run_program(prog, PacketBatch(pool, slots)).tolist()
    assert out == [prog.match_bytes(p) for p in packets]
    return out


# -- program text (checked against Click's own output) -------------------------------------

PROGRAMS = {
    "1/01, -": """ 0   0/00010000%00ff0000  yes->[0]  no->[1]
safe length 2
alignment offset 0
""",
    "-": "all->[0]\nsafe length 0\nalignment offset 0\n",
    "12/0806 20/0001, 12/0806 20/0002, 12/0800, -": """\
 0  12/08060000%ffff0000  yes->step 1  no->step 3
 1  20/00010000%ffff0000  yes->[0]  no->step 2
 2  20/00020000%ffff0000  yes->[1]  no->[3]
 3  12/08000000%ffff0000  yes->[2]  no->[3]
safe length 22
alignment offset 0
""",
    "!12/0800, 14/45": """\
 0  12/08000000%ffff0000  yes->step 1  no->[0]
 1  12/00004500%0000ff00  yes->[1]  no->[X]
safe length 15
alignment offset 0
""",
    "12/0?0?%f0ff, 1/?1, 0/01 0/02": """\
 0  12/00000000%f0f00000  yes->[0]  no->step 1
 1   0/00010000%000f0000  yes->[1]  no->[X]
safe length 14
alignment offset 0
""",
}


@pytest.mark.parametrize("patterns", list(PROGRAMS))
def test_program_text(patterns: str) -> None:
    n = len(patterns.split(","))
    conns = "".join(f" c[{k}] -> i;" for k in range(1, n))
    r = build(f"i :: Idle -> c :: Classifier({patterns}) -> i;{conns}")
    assert r.router is not None, r.errors
    assert r.router.call_read("c.program", r.errh) == PROGRAMS[patterns]


def test_program_with_alignment() -> None:
    r = build("AlignmentInfo(c 4 2); i :: Idle -> c :: Classifier(12/0800, 13/01020304, -) -> i;"
              "c[1] -> i; c[2] -> i")
    assert r.router.call_read("c.program", r.errh) == """\
 0  10/00000800%0000ffff  yes->[0]  no->step 1
 1  10/00000001%000000ff  yes->step 2  no->[2]
 2  14/02030400%ffffff00  yes->[1]  no->[2]
safe length 17
alignment offset 2
"""
    assert classify(["12/0800", "13/01020304", "-"],
                    [bytes(12) + b"\x08\x00", bytes(13) + bytes([1, 2, 3, 4]), b"x"], align=2) == [0, 1, 2]


def test_unused_output_warnings() -> None:
    r = build("i :: Idle -> c :: Classifier(12/0800, -, 12/0806) -> i; c[1] -> i; c[2] -> i")
    assert "warning: output 2 matches no packets" in r.errors
    r = build("i :: Idle -> c :: Classifier(12/0800 12/0806, 12/08) -> i; c[1] -> i")
    assert "warning: output 0 matches no packets" in r.errors


def test_parse_errors() -> None:
    pats = ["x", "1/1", "2/123", "3/12%1", "4/1234%12", "5/", "1/12%3456", "1 / 12", "! 3/12  !4/34",
            "3/12 x", "3/zz"]
    _, errors = parse_patterns(pats)
    assert errors == [
        "pattern 0: expected a digit",
        "pattern 1: value has less than 2 hex digits",
        "pattern 2: value has odd number of hex digits",
        "pattern 3: mask has too few hex digits",
        "pattern 4: mask has too few hex digits",
        "pattern 5: value has less than 2 hex digits",
        "pattern 6: mask has too many hex digits",
        "pattern 7: expected '/'",
        "pattern 9: expected a digit",
        "pattern 10: value has less than 2 hex digits",
        "pattern 10: expected a digit",
    ]
    r = build("i :: Idle -> c :: Classifier(1/1, -) -> i; c[1] -> i")
    assert r.router is None and "pattern 0: value has less than 2 hex digits" in r.errors
    r = build("i :: Idle -> c :: Classifier(-, -) -> i")
    assert "need 1 arguments, one per output port" in r.errors


# -- matching -----------------------------------------------------------------------------

def test_short_packets() -> None:
    # a clause past the end fails, so its negation holds; empty masks need no bytes
    assert classify(["4/01", "!4/01 10/00%00"], [b"\0\0\0\0\1", b"\0\0", b""]) == [0, 1, 1]
    assert classify(["0/0102"], [b"\1", b"\1\2"]) == [DROP_PORT, 0]


def test_everything_and_nothing() -> None:
    assert classify(["-"], [b"", b"abc"]) == [0, 0]
    assert classify(["0/01 0/02"], [b"\1", b"\2"]) == [DROP_PORT, DROP_PORT]
    assert classify(["", "-"], [b"abc"]) == [0]


def test_element_splits_batch() -> None:
    r = run("InfiniteSource(\\<0800>, LIMIT 6, BURST 3, STOP true) -> c :: Classifier(0/0806, 0/08, -);"
            "c[0] -> a :: Counter -> Discard; c[1] -> b :: Counter -> Discard; c[2] -> x :: Counter -> Discard")
    assert (r.read("a.count"), r.read("b.count"), r.read("x.count")) == ("0", "6", "0")


def test_element_drops_unmatched(capsys: pytest.CaptureFixture[str]) -> None:
    r = run("InfiniteSource(\\<01>, LIMIT 2, STOP true) -> Classifier(0/02) -> Print -> Discard")
    assert capsys.readouterr().err == ""
    assert r.router.pool.in_use == 0


def test_empty_program_matches_all(capsys: pytest.CaptureFixture[str]) -> None:
    run("InfiniteSource(LIMIT 1, STOP true) -> Classifier(-) -> Print(A) -> Discard", simtime=True)
    assert capsys.readouterr().err.startswith("A:")


HEX = "0123456789abcdef?"


@st.composite
def clauses(draw: st.DrawFn) -> str:
    off = draw(st.integers(0, 14))
    n = draw(st.integers(1, 5))
    value = "".join(draw(st.sampled_from(HEX)) for _ in range(2 * n))
    text = f"{off}/{value}"
    if draw(st.booleans()):
        text += "%" + "".join(draw(st.sampled_from(HEX)) for _ in range(2 * n))
    if draw(st.integers(0, 3)) == 0:
        text = "!" + text
    return text


@st.composite
def pattern_lists(draw: st.DrawFn) -> list[str]:
    pats = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 6)) == 0:
            pats.append("-")
        else:
            pats.append(" ".join(draw(st.lists(clauses(), min_size=1, max_size=4))))
    return pats


@st.composite
def packet_lists(draw: st.DrawFn, patterns: list[str]) -> list[bytes]:
    # bias packet bytes towards the values the patterns test, so matches happen
    values = [0, 0xFF]
    for pat in patterns:
        for word in pat.split():
            if "/" in word:
                v = word.lstrip("!").split("/")[1].split("%")[0].replace("?", "0")
                values.extend(bytes.fromhex(v))
    byte = st.one_of(st.sampled_from(values), st.integers(0, 255))
    return draw(st.lists(st.lists(byte, max_size=24).map(bytes), min_size=1, max_size=12))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_program_agrees_with_reference(data: st.DataObject) -> None:
    patterns = data.draw(pattern_lists())
    packets = data.draw(packet_lists(patterns))
    align = data.draw(st.sampled_from([0, 0, 1, 2, 3]))
    assert classify(patterns, packets, align) == [ref_match(patterns, p) for p in packets]


def test_ip_like_patterns() -> None:
    pats = ["12/0800 23/06 !20/0000%3fff", "12/0800 23/11", "12/0806 20/0001", "12/0806 20/0002", "-"]
    tcp = bytes(12) + b"\x08\x00" + bytes(9) + b"\x06" + bytes(10)
    frag = bytes(12) + b"\x08\x00" + bytes(6) + b"\x00\x05" + b"\x00\x06" + bytes(10)
    udp = bytes(12) + b"\x08\x00" + bytes(9) + b"\x11"
    arpq = bytes(12) + b"\x08\x06" + bytes(6) + b"\x00\x01"
    arpr = bytes(12) + b"\x08\x06" + bytes(6) + b"\x00\x02"
    pkts = [tcp, frag, udp, arpq, arpr, b"short"]
    assert classify(pats, pkts) == [ref_match(pats, p) for p in pkts] == [4, 0, 1, 2, 3, 4]
