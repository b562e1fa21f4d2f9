"""The packet fuzzer (clickos.fuzz): a bounded run over every IP element
configuration, proof that the runner catches exceptions, leaks, double frees
and packets outside their slots, determinism, and regression packets for the
crashes the full million-packet run found."""

from __future__ import annotations

import json
import os
import signal
import struct

import numpy as np
import pytest

from clickos.core import registry
from clickos.core.element import Element
from clickos.elements.analysis.common import set_anno_i64, set_anno_u32
from clickos.fuzz import cli as fuzz_cli
from clickos.fuzz.packets import CATEGORY_WEIGHTS, PacketGenerator, build_bank, checksum, ip_header, tcp_segment
from clickos.fuzz.runner import Harness, Runner, TargetResult, check_pool, run, select_targets
from clickos.fuzz.targets import TEST_IP_FUZZ_ELEMENTS, Target, all_targets
from clickos.io.ipsummary import EXTRA_PACKETS_ANNO, FIRST_TIMESTAMP_ANNO
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import PacketPool

SEED = 7
PACKETS = 2000      # per configuration in the bounded run (the full run: clickos fuzz)


def _describe(r: TargetResult) -> str:
    out = [f"{r.label}: {r.setup_error}"]
    for f in r.failures:
        out.append(f"{f.kind} x{f.count}: {f.message}\n{f.traceback}\n{f.isolated}\n{f.packet}")
    return "\n".join(out)


@pytest.fixture(scope="module")
def runner() -> Runner:
    return Runner(SEED)


# -- the bounded run ---------------------------------------------------------------------------------------

def test_every_configuration_survives_a_bounded_run(runner: Runner) -> None:
    bad = []
    for t in all_targets():
        r = runner.run_target(t, PACKETS)
        assert r.pushed == PACKETS
        if not r.ok:
            bad.append(_describe(r))
    assert not bad, "\n\n".join(bad)


def test_the_targets_cover_the_ip_elements() -> None:
    labels = [t.label for t in all_targets()]
    assert len(labels) == len(set(labels))
    configs = " ".join(t.config for t in all_targets())
    for cls, cfg in TEST_IP_FUZZ_ELEMENTS:
        assert f"e :: {cls}({cfg});" in configs
    for cls in ("IPFilter", "IPClassifier", "IPRewriter", "TCPRewriter", "UDPRewriter", "IPAddrRewriter",
                "IPAddrPairRewriter", "ICMPPingRewriter", "ICMPRewriter", "RoundRobinIPMapper", "HashSwitch",
                "RandomSample", "AggregateIPFlows", "AggregateCounter", "IPRateMonitor", "TimeFilter",
                "AdjustTimestamp", "StringMatcher", "RegexMatcher", "IPOutputCombo", "ARPQuerier", "FTPPortMapper",
                "ToIPSummaryDump", "ToDump", "StaticIPLookup", "IPRewriterPatterns"):
        assert f"{cls}(" in configs, cls
    # every element class whose name says it handles IP/ICMP/TCP/UDP is fuzzed
    for name in registry.class_names():
        if any(k in name for k in ("IP", "ICMP", "TCP", "UDP")) and not name.startswith("From"):
            assert f"{name}(" in configs, name


# -- the generator ------------------------------------------------------------------------------------------

def test_generator_stays_inside_slots_and_mixes_categories() -> None:
    bank = build_bank(SEED)
    gen = PacketGenerator(SEED, bank=bank)
    pool = PacketPool()
    cats = np.zeros(len(CATEGORY_WEIGHTS), np.int64)
    lengths = []
    for b in range(40):
        gen.set_profile(("ip", "ether", "arp")[b % 3])
        idx = pool.alloc(256)
        kinds = gen.fill(pool, idx, b, 10**18)
        cats += np.bincount(kinds, minlength=len(cats))
        off, ln = pool.off[idx], pool.length[idx]
        assert (off >= 0).all() and (ln >= 0).all() and (off + ln <= pool.slot_size).all()
        lengths += ln.tolist()
        pool.release(idx)
    assert (cats > 0).all()
    assert min(lengths) == 0 and max(lengths) > pool.slot_size - pool.headroom - 200
    # the same seed gives the same bytes
    a, b = pool.alloc(50), None
    gen.fill(pool, a, 99, 5)
    first = [pool.data[s, pool.off[s]: pool.off[s] + pool.length[s]].tobytes() for s in a]
    b = pool.alloc(50)
    gen.fill(pool, b, 99, 5)
    assert first == [pool.data[s, pool.off[s]: pool.off[s] + pool.length[s]].tobytes() for s in b]


def test_template_builders_make_valid_headers() -> None:
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    seg = tcp_segment(src, dst, 1024, 80, flags=0x02, payload=b"hello")
    h = ip_header(src, dst, 6, len(seg), options=b"\x07\x07\x04" + bytes(4))
    assert h[0] == 0x47 and checksum(h) == 0
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(seg))
    assert checksum(pseudo + seg) == 0


# -- the runner catches what it should -------------------------------------------------------------------------

class _Raiser(Element):
    """Raises on long packets (stands for an element with a bug)."""

    port_count = "1/1"
    processing = "h"

    def push(self, port: int, batch: PacketBatch) -> None:
        if (batch.pool.length[batch.idx] > 1000).any():
            raise ValueError("fuzz test: long packet")
        self.outputs[0].push(batch)


class _Leaker(Element):
    """Forgets one packet of each batch of more than ten."""

    port_count = "1/1"
    processing = "h"

    def push(self, port: int, batch: PacketBatch) -> None:
        if len(batch) > 10:
            batch = PacketBatch(batch.pool, batch.idx[1:])
        self.outputs[0].push(batch)


class _DoubleFreer(Element):
    """Frees a packet and still passes it on."""

    port_count = "1/1"
    processing = "h"

    def push(self, port: int, batch: PacketBatch) -> None:
        if len(batch) > 10:
            batch.pool.release1(int(batch.idx[0]))
        self.outputs[0].push(batch)


class _Stretcher(Element):
    """Makes a packet longer than its slot."""

    port_count = "1/1"
    processing = "h"

    def push(self, port: int, batch: PacketBatch) -> None:
        if len(batch) > 10:
            batch.pool.length[batch.idx[0]] = batch.pool.slot_size + 1
        self.outputs[0].push(batch)


class _Killer(Element):
    """Kills its own process on a long packet (stands for a crash in compiled code)."""

    port_count = "1/1"
    processing = "h"

    def push(self, port: int, batch: PacketBatch) -> None:
        if (batch.pool.length[batch.idx] > 1000).any():
            os.kill(os.getpid(), signal.SIGKILL)
        self.outputs[0].push(batch)


@pytest.fixture()
def fake_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = registry.load_all()
    for cls in (_Raiser, _Leaker, _DoubleFreer, _Stretcher, _Killer):
        monkeypatch.setitem(reg, cls.__name__, cls)


def _run_fake(cls: str, packets: int = 3000) -> TargetResult:
    return Runner(SEED).run_target(Target(f"{cls}()", f"e :: {cls};"), packets)


def test_runner_catches_exceptions_and_isolates_the_packet(fake_elements: None) -> None:
    r = _run_fake("_Raiser")
    assert not r.ok and r.exceptions > 0 and r.pushed == 3000
    f = r.failures[0]
    assert f.kind == "exception" and "fuzz test: long packet" in f.message and "_Raiser" not in f.message
    assert "ValueError" in f.traceback and "test_fuzz_packets.py" in f.traceback
    assert f.packet is not None and f.packet["length"] > 1000 and "pushed by itself, raises" in f.isolated
    assert f.count == r.exceptions   # one signature, counted


def test_runner_detects_a_leaked_slot(fake_elements: None) -> None:
    r = _run_fake("_Leaker")
    assert not r.ok and r.invariant_failures > 0 and r.exceptions == 0
    assert "slot leak" in r.failures[0].message


def test_runner_detects_a_double_free(fake_elements: None) -> None:
    r = _run_fake("_DoubleFreer")
    assert not r.ok
    # seen after the batch as a slot twice on the free stack, or, when every slot
    # was free already, as the free stack overflowing during the second free
    assert all("double free" in f.message or "freed twice" in f.message for f in r.failures)


def test_runner_detects_a_packet_outside_its_slot(fake_elements: None) -> None:
    r = _run_fake("_Stretcher")
    assert not r.ok and "outside its slot" in r.failures[0].message


def test_parallel_jobs_survive_a_crashing_worker(fake_elements: None) -> None:
    targets = [Target("_Killer()", "e :: _Killer;", cost=5), Target("Null()", "e :: Null;"),
               Target("Null() #2", "e :: Null;"), Target("_Raiser()", "e :: _Raiser;")]
    results = run(targets, 1500, SEED, jobs=2)
    assert [r.label for r in results] == [t.label for t in targets]
    killer, null, null2, raiser = results
    assert killer.crashed == "the worker process died (killed by signal 9)" and not killer.ok
    assert null.ok and null2.ok and null.out == [1500] and null2.out == [1500]
    assert raiser.exceptions > 0 and not raiser.crashed


def test_check_pool_accounts_for_held_slots() -> None:
    pool = PacketPool()
    held = pool.alloc(3).astype(np.int64)
    assert check_pool(pool, held) == []
    assert "slot leak" in check_pool(pool, held[:2])[0]
    pool.release(held[:1].astype(np.int32))
    assert "free" in " ".join(check_pool(pool, held))


def test_cli_fails_on_an_exception_and_prints_json(fake_elements: None, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import clickos.fuzz.runner as runner_mod

    monkeypatch.setattr(runner_mod, "all_targets", lambda: [Target("_Raiser()", "e :: _Raiser;"),
                                                             Target("Null()", "e :: Null;")])
    assert fuzz_cli.main(["--packets", "1500", "--seed", "3", "--json", "--quiet"]) == 1
    out = capsys.readouterr()
    doc = json.loads(out.out.strip().splitlines()[-1])
    assert doc["totals"]["packets"] == 3000 and doc["totals"]["exceptions"] > 0 and not doc["totals"]["ok"]
    by = {e["label"]: e for e in doc["elements"]}
    assert not by["_Raiser()"]["ok"] and by["Null()"]["ok"] and by["Null()"]["out"] == [1500]
    assert "reproduce: clickos fuzz --seed 3" in out.err
    assert fuzz_cli.main(["--packets", "300", "--elements", "^Null", "--quiet"]) == 0
    assert "0 exceptions" in capsys.readouterr().out


# -- determinism ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", [r"^IPRewriter\(pattern 1\.0\.0\.1 1024-1030\?", r"^RandomSample\(0\.5\)",
                                     r"^ARPQuerier\(1\.0", r"^AggregateIPFlows\(ICMP", r"^IPReassembler\(\)$"])
def test_same_seed_same_counts(pattern: str) -> None:
    (t,) = select_targets(pattern)
    a = Runner(SEED).run_target(t, 2500)
    b = Runner(SEED).run_target(t, 2500)
    c = Runner(SEED + 1).run_target(t, 2500)
    assert a.ok and b.ok and c.ok
    assert (a.out, a.dropped, a.held, a.categories) == (b.out, b.dropped, b.held, b.categories)
    assert (a.out, a.categories) != (c.out, c.categories)


# -- regression packets for the crashes the million-packet run found -------------------------------------------

def _push_one(h: Harness, data: bytes, *, off: int | None = None, nh: int | None = None, th: int | None = None,
              mac: int | None = None, ts: int = 0, port: int = 0) -> int:
    """Push one packet (header offsets relative to its data start); return the slot."""
    pool = h.pool
    s = pool.new_packet(data, off)
    o = int(pool.off[s])
    if nh is not None:
        pool.nh[s] = o + nh
    if th is not None:
        pool.th[s] = o + th
    if mac is not None:
        pool.mac[s] = o + mac
    pool.ts[s] = ts
    h.push(port, PacketBatch.one(pool, s))
    return s


def _harness(tmp_path: object, config: str) -> Harness:
    return Harness(Target("t", config), str(tmp_path))


def _ok(h: Harness) -> None:
    assert h.violations() == []
    assert check_pool(h.pool, np.zeros(0, np.int64)) == []


def test_regression_iprate_monitor_header_past_the_slot(tmp_path: object) -> None:
    h = _harness(tmp_path, "e :: IPRateMonitor(PACKETS, 0.5, 256, 600);")
    slot_size = h.pool.slot_size
    _push_one(h, bytes.fromhex("4500002a"), off=slot_size - 4, nh=0)          # header runs past the slot
    _push_one(h, bytes.fromhex("4500001c") + bytes(24), off=0, nh=slot_size - 10)
    assert [s.count for s in h.sinks] == [2, 0]
    _ok(h)


def test_regression_ipfragmenter_network_header_before_data(tmp_path: object) -> None:
    h = _harness(tmp_path, "e :: IPFragmenter(68, HEADROOM 0);")
    seg = bytes(280)
    pkt = ip_header(bytes([1, 0, 0, 1]), bytes([2, 0, 0, 2]), 17, len(seg)) + seg
    pool = h.pool
    s = pool.new_packet(pkt)
    o = int(pool.off[s])
    pool.nh[s] = o
    pool.off[s] = o + 100             # the data starts 100 bytes into the IP packet
    pool.length[s] = len(pkt) - 100
    h.push(0, PacketBatch.one(pool, s))
    assert h.sinks[0].count > 1
    _ok(h)


def test_regression_ipsummarydump_short_headers(tmp_path: object) -> None:
    fields = "ip_src ip_frag sport payload_len payload eth_type ip_opt tcp_flags"
    h = _harness(tmp_path, f"e :: ToIPSummaryDump({{tmp}}/x.txt, FIELDS {fields}, BAD_PACKETS true);")
    _push_one(h, bytes.fromhex("4c0b07a1e2ecbd"), nh=0, th=48)                # 7 bytes, IHL 12
    _push_one(h, bytes.fromhex("4503001c00074000"), nh=0, th=20)              # 8 bytes
    _push_one(h, bytes(30), mac=186, nh=200, th=220)                          # headers past the end
    assert h.sinks[0].count == 3
    _ok(h)


def test_regression_ipsummarydump_multipacket_timestamp_overflow(tmp_path: object) -> None:
    h = _harness(tmp_path, "e :: ToIPSummaryDump({tmp}/x.txt, FIELDS timestamp count, MULTIPACKET true);")
    pool = h.pool
    s = pool.new_packet(ip_header(bytes(4), bytes(4), 17, 0))
    pool.nh[s] = pool.off[s]
    pool.ts[s] = (1 << 62)
    set_anno_u32(pool, s, EXTRA_PACKETS_ANNO, 2)
    set_anno_i64(pool, s, FIRST_TIMESTAMP_ANNO, -(1 << 62))
    h.push(0, PacketBatch.one(pool, s))
    assert h.sinks[0].count == 1
    _ok(h)


def test_regression_aggregateipflows_transport_header_past_the_end(tmp_path: object) -> None:
    h = _harness(tmp_path, "e :: AggregateIPFlows;")
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    seg = tcp_segment(src, dst, 1024, 80, flags=0x11)
    pkt = ip_header(src, dst, 6, len(seg)) + seg
    _push_one(h, pkt, nh=0, th=20, ts=10**18)
    _push_one(h, pkt, nh=0, th=h.pool.slot_size, ts=10**18 + 1)             # same flow, wild th
    assert h.sinks[0].count == 2
    _ok(h)
