"""Behaviour of the standard elements: basic transfer, switches, Print/Message,
packet modification, information elements, and the timed sources."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build, run

from clickos.core import confparse as cp
from clickos.core.errors import ErrorHandler
from clickos.elements.standard.info import alignment_query
from clickos.elements.standard.printing import format_interval, format_timestamp


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [x for x in capsys.readouterr().err.split("\n") if x]


def write(r, name: str, value: str = "") -> int:  # noqa: ANN001
    h = r.router.lookup_handler(name, r.errh, want="write")
    assert h is not None, r.errors
    return h.call_write(value, r.errh)


# -- basic transfer ------------------------------------------------------------------------

def test_nulls_pass_packets() -> None:
    r = run("InfiniteSource(LIMIT 5, STOP true) -> Null -> PushNull -> c :: Counter -> Discard")
    assert r.read("c.count") == "5"
    r = run("InfiniteSource(LIMIT 5, STOP true) -> q :: Queue -> PullNull -> Null -> d :: Discard")
    assert int(r.read("d.count")) + int(r.read("q.length")) == 5


@pytest.mark.parametrize("burst", [1, 4])
def test_tee_copies_to_every_output(burst: int) -> None:
    r = run(f"InfiniteSource(LIMIT 8, BURST {burst}, STOP true) -> t :: Tee(3) -> a :: Counter -> Discard;"
            "t[1] -> b :: Counter -> Discard; t[2] -> c :: Counter -> Discard")
    assert r.read("a.count") == r.read("b.count") == r.read("c.count") == "8"
    assert r.router.pool.in_use == 0


def test_tee_order_is_per_packet(capsys: pytest.CaptureFixture[str]) -> None:
    run('InfiniteSource(\\<01>, LIMIT 2, BURST 2, STOP true) -> t :: Tee -> Print(a) -> Discard;'
        't[1] -> Print(b) -> Discard')
    assert lines(capsys) == ["a:    1 | 01", "b:    1 | 01"] * 2


def test_tee_arms_mismatch() -> None:
    r = build("Idle -> t :: Tee(3) -> Discard; t[1] -> Discard")
    assert r.router is None
    assert "2 outputs implies 2 arms" in r.errors


def test_pulltee_pushes_copies() -> None:
    r = run("InfiniteSource(LIMIT 6, STOP true) -> Queue -> t :: PullTee -> d :: Discard;"
            "t[1] -> c :: Counter -> Discard")
    assert r.read("c.count") == r.read("d.count")


def test_hub_skips_input_port() -> None:
    r = run("InfiniteSource(LIMIT 3, STOP true) -> [1]h :: Hub;"
            "Idle -> [0]h[0] -> a :: Counter -> Discard; Idle -> [2]h[2] -> c :: Counter -> Discard;"
            "h[1] -> b :: Counter -> Discard")
    assert (r.read("a.count"), r.read("b.count"), r.read("c.count")) == ("3", "0", "3")


def test_hub_single_port_drops() -> None:
    r = run("InfiniteSource(LIMIT 3, STOP true) -> h :: Hub -> Discard")
    assert r.router.pool.in_use == 0


BYPASS_PUSH = """InfiniteSource(\\<11>, LIMIT 4, STOP true)
-> Counter(COUNT_CALL 3 b.active true) -> b :: Bypass -> Print(A) -> Discard;
b[1] -> Print(B) -> [1]b;"""

BYPASS_PULL = """InfiniteSource(\\<11>, LIMIT 4, STOP true) -> PullNull
-> Counter(COUNT_CALL 3 b.active true) -> b :: Bypass -> Print(C) -> Discard;
b[1] -> Print(D) -> [1]b;"""


def test_bypass_push_and_pull(capsys: pytest.CaptureFixture[str]) -> None:
    run(BYPASS_PUSH, simtime=True)
    assert [x[0] for x in lines(capsys)] == list("AABABA")
    run(BYPASS_PULL, simtime=True)
    assert [x[0] for x in lines(capsys)] == list("CCCDC")


def test_bypass_active_handler() -> None:
    r = build("Idle -> b :: Bypass(true) -> Discard; b[1] -> Discard")
    assert r.read("b.active") == "true"
    assert write(r, "b.active", "false") == 0
    assert r.read("b.active") == "false"
    assert write(r, "b.active", "maybe") < 0


# -- paint and switches ----------------------------------------------------------------------

def test_paint_and_paintswitch() -> None:
    r = run("InfiniteSource(LIMIT 4, BURST 4, STOP true) -> Paint(2) -> ps :: PaintSwitch;"
            "ps[0] -> a :: Counter -> Discard; ps[1] -> b :: Counter -> Discard;"
            "ps[2] -> c :: Counter -> Discard")
    assert (r.read("a.count"), r.read("b.count"), r.read("c.count")) == ("0", "0", "4")


def test_paintswitch_255_copies_and_missing_port_drops() -> None:
    r = run("InfiniteSource(LIMIT 3, STOP true) -> Paint(255) -> ps :: PaintSwitch;"
            "ps[0] -> a :: Counter -> Discard; ps[1] -> b :: Counter -> Discard")
    assert r.read("a.count") == r.read("b.count") == "3"
    r = run("InfiniteSource(LIMIT 3, STOP true) -> Paint(9) -> ps :: PaintSwitch -> Discard")
    assert r.router.pool.in_use == 0


def test_paint_anno_and_checkpaint() -> None:
    r = run("InfiniteSource(LIMIT 5, STOP true) -> Paint(7, ANNO 17) -> cp :: CheckPaint(7, 17)"
            "-> a :: Counter -> Discard; cp[1] -> b :: Counter -> Discard")
    assert (r.read("a.count"), r.read("b.count")) == ("5", "0")
    r = run("InfiniteSource(LIMIT 5, STOP true) -> Paint(7) -> cp :: CheckPaint(6)"
            "-> a :: Counter -> Discard; cp[1] -> b :: Counter -> Discard")
    assert (r.read("a.count"), r.read("b.count")) == ("0", "5")
    assert r.read("cp.color") == "6"
    assert write(r, "cp.color", "300") < 0


def test_painttee_copies_painted_packets() -> None:
    # two sources, painted 1 and 2, into one PaintTee(2): every packet on output 0,
    # copies of the paint-2 ones on output 1, and no slot leaked
    r = run("InfiniteSource(LIMIT 4, BURST 4, STOP true) -> Paint(1) -> pt :: PaintTee(2)"
            "-> a :: Counter -> Discard; pt[1] -> b :: Counter -> Discard;"
            "InfiniteSource(LIMIT 3, BURST 3, STOP true) -> Paint(2) -> pt")
    assert (r.read("a.count"), r.read("b.count")) == ("7", "3")
    assert r.router.pool.in_use == 0
    assert r.read("pt.color") == "2" and write(r, "pt.color", "256") < 0
    # the copy is a copy: marking it leaves the original alone
    r = run("InfiniteSource(LIMIT 2, STOP true) -> Paint(5, ANNO 20) -> pt :: PaintTee(5, ANNO 20)"
            "-> cp :: CheckPaint(5, 20) -> a :: Counter -> Discard; cp[1] -> x :: Counter -> Discard;"
            "pt[1] -> Paint(9, ANNO 20) -> b :: Counter -> Discard")
    assert (r.read("a.count"), r.read("x.count"), r.read("b.count")) == ("2", "0", "2")


def test_paint_errors() -> None:
    r = build("Idle -> Paint(300) -> Discard; Idle -> Paint(1, FOO) -> Discard")
    assert "COLOR: out of range, bound 255" in r.errors
    assert "ANNO: parse error" in r.errors


def test_switch_handler() -> None:
    r = build("Idle -> s :: Switch(1) -> Discard; s[1] -> Discard")
    assert r.read("s.switch") == "1"
    assert write(r, "s.switch", "5") == 0
    assert r.read("s.switch") == "-1"
    assert write(r, "s.switch", "x") < 0
    assert "Switch output must be integer" in r.errors
    r = build("Idle -> Switch(3) -> Discard")
    assert "output must be < 1" in r.errors


def test_switch_routes_and_drops() -> None:
    r = run("InfiniteSource(LIMIT 4, STOP true) -> s :: Switch(1) -> a :: Counter -> Discard;"
            "s[1] -> b :: Counter -> Discard")
    assert (r.read("a.count"), r.read("b.count")) == ("0", "4")
    r = run("InfiniteSource(LIMIT 4, STOP true) -> s :: Switch(-1) -> a :: Counter -> Discard")
    assert r.read("a.count") == "0" and r.router.pool.in_use == 0


def test_static_and_input_switch() -> None:
    r = run("InfiniteSource(LIMIT 4, STOP true) -> s :: StaticSwitch(1) -> a :: Counter -> Discard;"
            "s[1] -> b :: Counter -> Discard")
    assert (r.read("a.count"), r.read("b.count")) == ("0", "4")
    r = run("InfiniteSource(LIMIT 4, STOP true) -> [1]s :: InputSwitch(1) -> a :: Counter -> Discard;"
            "Idle -> s")
    assert r.read("a.count") == "4"
    r = run("InfiniteSource(LIMIT 4, STOP true) -> [1]s :: InputSwitch(0) -> a :: Counter -> Discard;"
            "Idle -> s")
    assert r.read("a.count") == "0"
    assert "input must be < 2" in build("Idle -> s :: InputSwitch(2) -> Discard; Idle -> [1]s").errors


@pytest.mark.parametrize("burst", [1, 7])
def test_round_robin_switch(burst: int) -> None:
    r = run(f"InfiniteSource(LIMIT 14, BURST {burst}, STOP true) -> rr :: RoundRobinSwitch;"
            "rr[0] -> a :: Counter -> Discard; rr[1] -> b :: Counter -> Discard")
    assert r.read("a.count") == r.read("b.count") == "7"


def test_round_robin_order(capsys: pytest.CaptureFixture[str]) -> None:
    run("InfiniteSource(\\<01>, LIMIT 4, BURST 4, STOP true) -> rr :: RoundRobinSwitch;"
        "rr[0] -> Print(a) -> Discard; rr[1] -> Print(b) -> Discard")
    assert [x[0] for x in lines(capsys)] == list("abab")


def test_random_switch_is_seeded() -> None:
    cfg = ("RandomSeed(42); InfiniteSource(LIMIT 200, BURST 10, STOP true) -> rs :: RandomSwitch;"
           "rs[0] -> a :: Counter -> Discard; rs[1] -> b :: Counter -> Discard")
    r1, r2 = run(cfg), run(cfg)
    a, b = int(r1.read("a.count")), int(r1.read("b.count"))
    assert a + b == 200 and 50 < a < 150
    assert r2.read("a.count") == str(a)


@pytest.mark.parametrize("burst", [1, 12])
def test_stride_switch_shares(burst: int) -> None:
    r = run(f"InfiniteSource(LIMIT 60, BURST {burst}, STOP true) -> ss :: StrideSwitch(1, 2, 3);"
            "ss[0] -> a :: Counter -> Discard; ss[1] -> b :: Counter -> Discard;"
            "ss[2] -> c :: Counter -> Discard")
    assert (r.read("a.count"), r.read("b.count"), r.read("c.count")) == ("10", "20", "30")
    assert r.read("ss.config") == "1, 2, 3"
    assert write(r, "ss.tickets0", "0") == 0
    assert r.read("ss.tickets0") == "0"


def test_stride_switch_errors() -> None:
    r = build("Idle -> StrideSwitch(1, 2) -> Discard")
    assert "need 1 arguments, one per output port" in r.errors
    r = build("Idle -> ss :: StrideSwitch(1, 40000) -> Discard; ss[1] -> Discard")
    assert "warning: input 1's tickets reduced to 32768" in r.errors


# -- Print and Message -------------------------------------------------------------------------

def test_print_formats(capsys: pytest.CaptureFixture[str]) -> None:
    run('InfiniteSource(LIMIT 1, STOP true) -> Print("hello world", 4) -> Print(x, CONTENTS ascii)'
        '-> Print(y, CONTENTS false) -> Print -> Print(MAXLENGTH -1, CONTENTS ASCII)'
        '-> Print(CONTENTS NONE) -> Discard')
    assert lines(capsys) == [
        "hello world:   69 | 52616e64",
        "x:   69 |  Random b ullshit  in a pac",
        "y:   69",
        "  69 | 52616e64 6f6d2062 756c6c73 68697420 696e2061 20706163",
        "  69 |  Random b ullshit  in a pac ket, at  least 64  bytes l ong. Wel l, now i t is.",
        "  69",
    ]


def test_print_timestamp_anno_headroom(capsys: pytest.CaptureFixture[str]) -> None:
    run("InfiniteSource(\\<ff00>, LIMIT 1, STOP true) -> SetTimestamp(12.5) -> Paint(3)"
        "-> Print(t, TIMESTAMP true, PRINTANNO true, HEADROOM true) -> Discard")
    (line,) = lines(capsys)
    anno = "00" * 16 + "03" + "00" * 31
    assert line.startswith("t: 12.500000:    2 (h")
    assert line.endswith(f" | {anno} | ff00")


def test_print_active_handler(capsys: pytest.CaptureFixture[str]) -> None:
    r = build("Idle -> p :: Print(ACTIVE false) -> Discard")
    assert r.read("p.active") == "false"
    assert write(r, "p.active", "true") == 0
    assert write(r, "p.active", "bogus") < 0
    assert "expected boolean" in r.errors
    run("InfiniteSource(LIMIT 2, STOP true) -> Print(ACTIVE false) -> Discard")
    assert lines(capsys) == []


def test_print_bad_contents() -> None:
    r = build("Idle -> Print(CONTENTS foo) -> Discard")
    assert "bad contents value 'FOO'; should be 'NONE', 'HEX', or 'ASCII'" in r.errors


def test_message_types() -> None:
    r = build('m :: Message("hello\\nworld")')
    assert r.router is not None
    assert r.errors.split("\n") == ["config:1: While configuring 'm :: Message':", "  hello", "  world"]
    r = build('m :: Message(careful, WARNING)')
    assert r.router is None
    assert "  warning: careful\n  unspecified error" in r.errors
    r = build('m :: Message(bad, ERROR)')
    assert r.router is None and "  bad" in r.errors
    r = build('m :: Message(x, message)')
    assert "unrecognized message type" in r.errors


# -- modification ------------------------------------------------------------------------------

def test_strip_unstrip_truncate_pad(capsys: pytest.CaptureFixture[str]) -> None:
    run("InfiniteSource(\\<0102030405060708>, LIMIT 1, STOP true) -> Strip(2) -> Print"
        "-> Unstrip(1) -> Print -> Truncate(3) -> Print -> Pad -> Print -> Pad(10) -> Print"
        "-> Strip(20) -> Print -> Discard")
    assert lines(capsys) == [
        "   6 | 03040506 0708",
        "   7 | 02030405 060708",
        "   3 | 020304",
        "   7 | 02030400 000000",
        "  10 | 02030400 00000000 0000",
        "Packet::pull 20 > length 10",
        "   0",
    ]


def test_truncate_extra_length_and_handler(capsys: pytest.CaptureFixture[str]) -> None:
    r = run("InfiniteSource(\\<01020304>, LIMIT 1, STOP true) -> t :: Truncate(1, EXTRA_LENGTH false)"
            "-> Pad -> Print -> Discard")
    assert lines(capsys) == ["   1 | 01"]
    assert r.read("t.nbytes") == "1"
    assert write(r, "t.nbytes", "3") == 0 and r.read("t.nbytes") == "3"


def test_pad_batch_and_unstrip_without_headroom() -> None:
    r = run("InfiniteSource(\\<01>, LIMIT 8, BURST 8, STOP true) -> Pad(100) -> Unstrip(500)"
            "-> c :: Counter -> Discard")
    assert r.read("c.byte_count") == str(8 * 600)


def test_resize(capsys: pytest.CaptureFixture[str]) -> None:
    r = run("InfiniteSource(\\<0102030405>, LIMIT 1, STOP true) -> r :: Resize(-1, -2) -> Print"
            "-> Resize(TAIL 1) -> Print(CONTENTS NONE) -> Resize(-10) -> Print -> Discard")
    assert lines(capsys) == ["   2 | 0203", "   3", "   0"]
    assert (r.read("r.head"), r.read("r.tail")) == ("-1", "-2")


def test_align() -> None:
    r = run("InfiniteSource(LIMIT 3, BURST 3, STOP true) -> Strip(1) -> Align(4, 2) -> c :: Counter -> Discard")
    assert r.read("c.count") == "3"
    assert "MODULUS must be 2, 4, or 8" in build("Idle -> Align(3, 1) -> Discard").errors
    assert "OFFSET must be smaller than MODULUS" in build("Idle -> Align(4, 5) -> Discard").errors


def test_align_moves_data() -> None:
    from clickos.elements.standard.modify import Align
    from clickos.packet.batch import PacketBatch
    from clickos.packet.pool import PacketPool

    pool = PacketPool(16)
    slots = [pool.new_packet(b"abcdefg") for _ in range(3)]
    pool.off[slots[1]] += 1
    pool.length[slots[1]] -= 1
    a = Align()
    a.offset, a.mask = 2, 3
    a.simple_action(PacketBatch(pool, np.array(slots, np.int32)))
    base = pool.data.ctypes.data
    for s in slots:
        assert (base + s * pool.slot_size + int(pool.off[s])) % 4 == 2
    assert pool.data[slots[1], pool.off[slots[1]]: pool.off[slots[1]] + 6].tobytes() == b"bcdefg"


def test_set_timestamp_and_delta(capsys: pytest.CaptureFixture[str]) -> None:
    r = run("InfiniteSource(LIMIT 3, STOP true) -> SetTimestamp(5.25) -> SetTimestamp(1, FIRST true)"
            "-> d :: SetTimestampDelta(TYPE FIRST) -> Print(TIMESTAMP true, CONTENTS NONE)"
            "-> s :: SetTimestampDelta -> Print(TIMESTAMP true, CONTENTS NONE) -> Discard")
    assert lines(capsys) == ["4.250000:   69", "0.000000:   69"] * 3
    assert r.read("s.first") == "4.250000"
    assert write(r, "s.reset") == 0
    assert r.read("s.first") == "0.000000"
    assert "SetTimestamp(DELTA) is deprecated" in build("Idle -> SetTimestamp(DELTA true) -> Discard").errors
    assert "bad TYPE" in build("Idle -> SetTimestampDelta(TYPE x) -> Discard").errors


def test_set_timestamp_now_reads_clock_per_packet(capsys: pytest.CaptureFixture[str]) -> None:
    run("InfiniteSource(LIMIT 4, BURST 4, STOP true) -> SetTimestamp"
        "-> Print(TIMESTAMP true, CONTENTS NONE) -> Discard", simtime=True)
    stamps = [x.split(":")[0] for x in lines(capsys)]
    assert len(stamps) == 4 and stamps == sorted(set(stamps))


CLIPBOARD = """clipboard :: Clipboard(0/1, 2/1, 9/1);
TimedSource(0.0019, "Simplistic", LIMIT 1) -> [0]clipboard[0] -> Discard();
TimedSource(0.0029, "Dance tour", LIMIT 1) -> [0]clipboard;
TimedSource(0.0039, "Ionize tub", LIMIT 1) -> [0]clipboard;
TimedSource(0.001, ".a. is a .at,", LIMIT 4, STOP true) -> [1]clipboard[1]
-> Print(CONTENTS ASCII) -> Discard();"""


def test_clipboard(capsys: pytest.CaptureFixture[str]) -> None:
    run(CLIPBOARD, simtime=True)
    assert lines(capsys) == ["  13 |  .a. is a  .at,", "  13 |  Sam is a  cat,",
                             "  13 |  Dan is a  rat,", "  13 |  Ian is a  bat,"]


def test_clipboard_errors() -> None:
    r = build("c :: Clipboard(0/1, x/2); Idle -> c -> Discard; Idle -> [1]c[1] -> Discard")
    assert "OFFSET: invalid number\n  range 1: invalid offset or length" in r.errors
    r = build("c :: Clipboard(3); Idle -> c -> Discard; Idle -> [1]c[1] -> Discard")
    assert "range 0: expected '/' between offset and length" in r.errors


def test_clipboard_short_packets_untouched(capsys: pytest.CaptureFixture[str]) -> None:
    run("c :: Clipboard(4/2); InfiniteSource(\\<0102030405060708>, LIMIT 1) -> c -> Discard;"
        "TimedSource(0.01, \\<aabb>, LIMIT 1) -> [1]c[1] -> Print -> Discard;"
        "TimedSource(0.02, \\<aabbccddeeff>, LIMIT 1, STOP true) -> [1]c;", simtime=True)
    assert lines(capsys) == ["   2 | aabb", "   6 | aabbccdd 0506"]


# -- information elements ----------------------------------------------------------------------

def test_alignment_info() -> None:
    r = build("AlignmentInfo(c 4 2 8 1); Idle -> c :: Counter -> Discard")
    c = r.router.find("c")
    assert alignment_query(c, 0) == (4, 2)
    assert alignment_query(c, 1) == (8, 1)
    assert alignment_query(c, 2) is None
    r = build("AlignmentInfo(c 4 2); AlignmentInfo(c 4 1); Idle -> c :: Counter -> Discard")
    assert "conflicting AlignmentInfo for 'c'" in r.errors
    assert r.router is not None  # reported, but (as in Click) not fatal


def test_address_info_names() -> None:
    r = build("AddressInfo(a 10.0.0.1/24 00:01:02:03:04:05, b 1.2.3.4); Idle -> c :: Counter -> Discard;"
              "comp :: { AddressInfo(z 9.9.9.9); input -> x :: Counter -> output }; Idle -> comp -> Discard")
    c = r.router.find("c")
    x = r.router.find("comp/x")
    assert c.resolve_name("ip", "a") == bytes([10, 0, 0, 1])
    assert c.resolve_name("ip_prefix", "a") == (bytes([10, 0, 0, 1]), bytes([255, 255, 255, 0]))
    assert c.resolve_name("ether", "a") == bytes(range(6))
    assert cp.parse_ip_address("b", c.resolve_name) == bytes([1, 2, 3, 4])
    assert cp.parse_ip_address("a:bcast", c.resolve_name) == bytes([10, 0, 0, 255])
    assert x.resolve_name("ip", "z") == bytes([9] * 4)
    assert x.resolve_name("ip", "b") == bytes([1, 2, 3, 4])
    assert c.resolve_name("ip", "z") is None
    r = build("AddressInfo(d foo)")
    assert "'foo' is not a recognizable address" in r.errors


def test_port_info_names() -> None:
    r = build("PortInfo(web 80/tcp, dns 53, alt 8080/udp alt2 # comment); Idle -> c :: Counter -> Discard")
    c = r.router.find("c")
    assert c.resolve_name("port:6", "web") == 80
    assert c.resolve_name("port:17", "web") is None
    assert c.resolve_name("port:6", "dns") == c.resolve_name("port:17", "dns") == 53
    assert c.resolve_name("port:17", "alt2") == 8080
    assert "expected 'NAME PORT/PROTO'" in build("PortInfo(x y)").errors


def test_schedule_info_sets_tickets() -> None:
    r = build("ScheduleInfo(s 2, q 0.5); s :: InfiniteSource -> Discard;"
              "c :: { ScheduleInfo(i 0.5); i :: InfiniteSource -> output }; c -> Discard;"
              "ScheduleInfo(c 4)")
    assert r.router.schedule_info["s"] == 2.0
    assert r.read("s.tickets") == "2048"
    assert r.read("c/i.tickets") == "2048"


def test_random_seed_handler() -> None:
    r = build("r :: RandomSeed(7)")
    assert r.read("r.seed") == "7"
    assert write(r, "r.seed", "9") == 0
    assert r.read("r.seed") == "9"
    assert write(r, "r.seed", "") == 0


# -- timed sources ------------------------------------------------------------------------------

def test_rated_source_limit_and_handlers() -> None:
    r = run("s :: RatedSource(RATE 1000, LIMIT 20, STOP true) -> c :: Counter -> Discard", simtime=True)
    assert r.read("c.count") == "20"
    assert r.read("s.count") == "20"
    assert r.read("s.rate") == "1000"
    assert r.read("s.limit") == "20"
    assert write(r, "s.rate", "50") == 0 and r.read("s.rate") == "50"
    assert write(r, "s.limit", "-5") == 0 and r.read("s.limit") == "-1"


def test_rated_source_pace() -> None:
    r = run("RatedSource(RATE 10, LIMIT 5, STOP true) -> t :: Print(CONTENTS NONE, TIMESTAMP true,"
            "ACTIVE false) -> c :: Counter -> Discard", simtime=True)
    # two packets at once (the bucket holds 2), then one per 100 ms
    now = r.router.master.clock.now()
    assert 0.29e9 < now - 1_000_000_000 * 1_000_000_000 < 0.5e9


def test_rated_source_length_and_pull() -> None:
    r = run('RatedSource(DATA "ab", LENGTH 5, RATE 1000, LIMIT 4, STOP true) -> q :: Queue'
            '-> c :: Counter -> Discard', simtime=True)
    assert int(r.read("c.byte_count")) == 5 * int(r.read("c.count"))
    r = run("r :: RatedSource(RATE 1000, LIMIT 3) -> c :: Counter -> Discard; DriverManager(wait 0.1s, stop)",
            simtime=True)
    assert r.read("c.count") == "3"


def test_timed_source_and_sink() -> None:
    r = run("t :: TimedSource(0.05, LIMIT 10) -> c :: Counter -> q :: Queue -> TimedSink(0.1);"
            "DriverManager(wait 0.42s, stop)", simtime=True)
    assert r.read("c.count") == "8"
    assert r.read("q.length") == "4"
    assert r.read("t.interval") == "50ms"
    assert write(r, "t.interval", "0") < 0
    assert write(r, "t.interval", "2") == 0 and r.read("t.interval") == "2.000000s"


def test_timed_source_stop_and_data(capsys: pytest.CaptureFixture[str]) -> None:
    r = run('t :: TimedSource(0.001, "hi", LIMIT 2, STOP true) -> Print(CONTENTS ASCII) -> Discard', simtime=True)
    assert lines(capsys) == ["   2 |  hi"] * 2
    assert r.read("t.data") == "hi"
    assert r.read("t.count") == "2"
    assert r.read("t.headroom") == "28"


def test_time_formats() -> None:
    assert format_timestamp(1_500_000_000) == "1.500000"
    assert format_timestamp(1_000_000_001) == "1.000000001"
    assert format_interval(500_000_000) == "500ms"
    assert format_interval(100_000) == "100us"
    assert format_interval(150) == "150ns"
    assert format_interval(2_000_000_000) == "2.000000s"


def test_handler_errors_reported() -> None:
    eh = ErrorHandler(echo=False)
    r = build("Idle -> p :: Paint(1) -> Discard")
    h = r.router.lookup_handler("p.color", eh, want="write")
    assert h.call_write("256", eh) < 0
    assert "expected uint8_t" in eh.text()
