"""Fused push paths (core/fastpath.py, packet/fusegen.py): a fused run of
elements must do exactly what the elements do one by one -- same bytes, same
annotations, same outputs, same counters -- on good packets and on garbage."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from scapy.all import ICMP, IP, TCP, UDP, Ether, IPOption, raw

from clickos.core import fastpath, registry
from clickos.core.element import Element
from clickos.core.errors import ErrorHandler
from clickos.core.router import Router
from clickos.packet.batch import PacketBatch


class Src(Element):
    port_count = "0/1"
    processing = "h"

    def send(self, frames: list[bytes], batch: int = 64, mark: bool = False) -> None:
        """With ``mark``, packets also get varied packet types, paints and Fix IP
        Source annotations (the same for the same frame index)."""
        pool = self.router.pool
        for k in range(0, len(frames), batch):
            slots = []
            for i, f in enumerate(frames[k:k + batch], start=k):
                s = pool.new_packet(f)
                if mark:
                    pool.ptype[s] = (i * 7) % 5
                    pool.anno[s, 16] = (i * 3) % 4 == 0
                    pool.anno[s, 19] = i % 11 == 0
                slots.append(s)
            self.outputs[0].push(PacketBatch(pool, np.array(slots, np.int32)))


class Sink(Element):
    port_count = "1/0"
    processing = "h"

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple] = []

    def push(self, port: int, batch: PacketBatch) -> None:
        pool = batch.pool
        for s in batch.idx.tolist():
            o, n = int(pool.off[s]), int(pool.length[s])
            self.got.append((pool.data[s, o:o + n].tobytes(), pool.anno[s].tobytes(),
                             int(pool.mac[s]) - o, int(pool.nh[s]) - o, int(pool.th[s]) - o))
        batch.kill()


def build(chain: list[tuple[str, str]], outputs: dict[int, int] | None = None) -> Router:
    """src -> e0 -> e1 -> ... -> out; ``outputs`` {element index: its second
    output's sink} adds sinks ``x{i}`` on output 1 of those elements."""
    reg = registry.load_all()
    r = Router()
    r.add_element(Src(), "src", "")
    for i, (cls, cfg) in enumerate(chain):
        r.add_element(reg[cls](), f"e{i}", cfg)
    r.add_element(Sink(), "out", "")
    n = len(chain)
    r.add_connection(0, 0, 1, 0)
    for i in range(n - 1):
        r.add_connection(1 + i, 0, 2 + i, 0)
    r.add_connection(n, 0, n + 1, 0)
    for i in (outputs or {}):
        r.add_element(Sink(), f"x{i}", "")
        r.add_connection(1 + i, 1, len(r.elements) - 1, 0)
    errh = ErrorHandler(echo=False)
    assert r.initialize(errh), errh.lines
    return r


def run_both(chain: list[tuple[str, str]], frames: list[bytes], monkeypatch: pytest.MonkeyPatch,
             outputs: dict[int, int] | None = None, mark: bool = False) -> tuple[Router, Router]:
    monkeypatch.setenv("CLICKOS_FASTPATH", "0")
    plain = build(chain, outputs)
    monkeypatch.setenv("CLICKOS_FASTPATH", "1")
    fused = build(chain, outputs)
    paths = fastpath.fast_paths(fused)
    assert len(paths) == 1 and len(paths[0].elements) == len(chain)
    assert paths[0].compile_now(fused.pool)
    for r in (plain, fused):
        r.find("src").send(frames, mark=mark)
    return plain, fused


def sinks(r: Router) -> dict[str, list[tuple]]:
    return {e.name: e.got for e in r.elements if isinstance(e, Sink)}


# -- traffic: good frames of every kind, and garbage ----------------------------------------------

def corpus(seed: int = 1, n: int = 1500) -> list[bytes]:
    rng = random.Random(seed)
    base = [
        raw(Ether() / IP(src="192.0.2.1", dst="198.51.100.7", ttl=64) / UDP(sport=1, dport=5000) / (b"x" * 18)),
        raw(Ether() / IP(src="192.0.2.1", dst="198.51.100.7", ttl=1) / UDP(dport=5000)),
        raw(Ether() / IP(src="192.0.2.1", dst="198.51.100.7", ttl=2) / TCP(dport=5000) / b"data"),
        raw(Ether() / IP(src="192.0.2.9", dst="224.0.0.5", ttl=1) / UDP(dport=5000)),
        raw(Ether() / IP(dst="203.0.113.1", options=[IPOption(b"\x07\x07\x04" + b"\0" * 4)]) / UDP(dport=5000)),
        raw(Ether() / IP(dst="203.0.113.1", options=[IPOption(b"\x07\x07\x02" + b"\0" * 4)]) / UDP(dport=5000)),
        raw(Ether() / IP(dst="203.0.113.1", flags="MF", frag=0) / UDP(dport=5000) / (b"y" * 40)),
        raw(Ether() / IP(dst="203.0.113.1", frag=3) / (b"z" * 30)),
        raw(Ether() / IP(dst="203.0.113.1") / ICMP()),
        raw(Ether() / IP(dst="203.0.113.1", flags="DF") / UDP(dport=5000) / (b"d" * 60)),
        raw(Ether(type=0x86DD) / (b"\x60" + b"\0" * 39)),
        b"\x01\x02",
    ]
    frames = list(base)
    while len(frames) < n:
        f = bytearray(rng.choice(base))
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            what = rng.random()
            if what < 0.5 and f:
                f[rng.randrange(len(f))] ^= 1 << rng.randrange(8)
            elif what < 0.7:
                f = f[: rng.randrange(len(f) + 1)]
            elif what < 0.8 and len(f) > 14:
                f[14] = (f[14] & 0xF0) | rng.randrange(16)        # IHL
            elif what < 0.9 and len(f) > 17:
                f[16:18] = rng.randrange(65536).to_bytes(2, "big")  # total length
            else:
                f += bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        frames.append(bytes(f))
    return frames


FILTER = "allow udp && dst port 5000, allow tcp && dst port 5000, deny all"
CHAINS = {
    "firewall": [("Classifier", "12/0800"), ("Strip", "14"), ("CheckIPHeader", ""),
                 ("IPFilter", FILTER), ("DecIPTTL", ""), ("Unstrip", "14"), ("EtherMirror", "")],
    "router": [("Strip", "14"), ("CheckIPHeader", ""), ("DecIPTTL", "")],
    "no-checksum": [("Strip", "14"), ("CheckIPHeader2", ""), ("DecIPTTL", "MULTICAST false"),
                    ("Paint", "3, ANNO 20")],
    "rewrite": [("Paint", "7"), ("EtherRewrite", "1:2:3:4:5:6, 7:8:9:a:b:c"), ("Strip", "20"),
                ("Unstrip", "20")],
    "offset": [("CheckIPHeader", "OFFSET 14"), ("IPClassifier", "udp or (tcp and dst port 5000)"), ("EtherMirror", "")],
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_fused_path_equals_elements(name: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    plain, fused = run_both(CHAINS[name], corpus(), monkeypatch)
    a, b = sinks(plain), sinks(fused)
    assert sum(len(v) for v in a.values()) > 0
    assert a == b
    for e in plain.elements:
        for h in ("drops", "count"):
            ha, hb = plain.handlers.find(e, h), fused.handlers.find(fused.find(e.name), h)
            if ha is not None:
                assert ha.call_read() == hb.call_read(), (e.name, h)
    assert plain.pool.in_use == fused.pool.in_use == 0
    capsys.readouterr()


def test_punted_packets_reach_error_outputs(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    chain = [("Strip", "14"), ("CheckIPHeader", ""), ("DecIPTTL", ""), ("Paint", "1")]
    plain, fused = run_both(chain, corpus(2, 600), monkeypatch, outputs={1: 1, 2: 1})
    a, b = sinks(plain), sinks(fused)
    assert a == b
    assert len(a["x1"]) > 0 and len(a["x2"]) > 0 and len(a["out"]) > 0   # bad headers, expired TTLs
    capsys.readouterr()


def test_router_output_path(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The iprouter's per-interface output path, fused whole: broadcasts, redirect
    copies, packets with options, Fix IP Source, expired TTLs and packets to
    fragment all leave it for their element."""
    chain = [("Strip", "14"), ("CheckIPHeader", ""), ("DropBroadcasts", ""), ("PaintTee", "1"),
             ("IPGWOptions", "192.0.2.1"), ("FixIPSrc", "192.0.2.1"), ("DecIPTTL", ""), ("IPFragmenter", "40")]
    plain, fused = run_both(chain, corpus(3, 1500), monkeypatch, outputs={2: 1, 3: 1, 4: 1, 6: 1, 7: 1},
                            mark=True)
    a, b = sinks(plain), sinks(fused)
    assert a == b
    assert all(len(v) > 0 for v in a.values()), {k: len(v) for k, v in a.items()}
    for name in ("e2", "e4", "e6", "e7"):
        for h in ("drops", "fragments"):
            ha = plain.handlers.find(plain.find(name), h)
            if ha is not None:
                assert ha.call_read() == fused.handlers.find(fused.find(name), h).call_read()
    assert plain.pool.in_use == fused.pool.in_use == 0
    capsys.readouterr()


def test_handler_write_changes_the_fused_path(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = [("Paint", "2"), ("EtherRewrite", "1:1:1:1:1:1, 2:2:2:2:2:2")]
    frame = raw(Ether() / IP() / UDP())
    plain, fused = run_both(chain, [frame] * 40, monkeypatch)
    assert sinks(plain) == sinks(fused)
    path = fastpath.fast_paths(fused)[0]
    h = fused.handlers.find(fused.find("e1"), "src")
    assert h.call_write("9:9:9:9:9:9", ErrorHandler(echo=False)) == 0
    assert path.kernel is None          # back to the ordinary path until warm again
    fused.find("out").got.clear()
    fused.find("src").send([frame] * 3)
    # (Click's "src" handler rewrites the first positional argument, DST: see test_ethernet)
    got = fused.find("out").got
    assert len(got) == 3 and all(g[0][0:6] == b"\x09" * 6 for g in got)


def warm_up(r: Router, frame: bytes, timeout: float = 120) -> int:
    """Send batches until the router's fast path has a kernel or gave up; returns
    the packets sent."""
    path = fastpath.fast_paths(r)[0]
    src = r.find("src")
    sent = 0
    deadline = time.monotonic() + timeout
    while path.kernel is None and time.monotonic() < deadline and not path.failed:
        src.send([frame] * fastpath.HOT_SIZE, batch=fastpath.HOT_SIZE)
        sent += fastpath.HOT_SIZE
        if path._compile is not None:
            time.sleep(0.05)
    return sent


def test_path_warms_up_and_compiles_in_the_background(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # an empty cache: the kernel is compiled by a child process while packets flow
    monkeypatch.setenv("CLICKOS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CLICKOS_FASTPATH", "1")
    r = build([("Strip", "14"), ("CheckIPHeader", ""), ("Unstrip", "14")])
    path = fastpath.fast_paths(r)[0]
    frame = raw(Ether() / IP() / UDP() / (b"w" * 20))
    sent = warm_up(r, frame)
    assert path.kernel is not None and not path.failed
    assert list(tmp_path.glob("fastpath/fp_*.ok"))     # the next process loads it at once
    r.find("src").send([frame] * 100, batch=100)
    got = r.find("out").got
    assert len(got) == sent + 100 and all(g[0] == frame for g in got)


def test_a_kernel_that_does_not_compile_leaves_the_ordinary_path(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path) -> None:
    from clickos.packet import fusegen

    monkeypatch.setenv("CLICKOS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CLICKOS_FASTPATH", "1")
    real = fusegen.kernel_source
    monkeypatch.setattr(fusegen, "kernel_source",
                        lambda steps: (real(steps)[0].replace("npunt = 0", "npunt = undefined_name"), 0))
    r = build([("Strip", "14"), ("CheckIPHeader", ""), ("Unstrip", "14")])
    frame = raw(Ether() / IP() / UDP())
    sent = warm_up(r, frame)
    path = fastpath.fast_paths(r)[0]
    assert path.failed and path.kernel is None
    r.find("src").send([frame] * 10)
    assert len(r.find("out").got) == sent + 10


def test_disabled_and_unfusable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKOS_FASTPATH", "0")
    assert fastpath.fast_paths(build(CHAINS["router"])) == []
    monkeypatch.setenv("CLICKOS_FASTPATH", "1")
    # source address lists keep CheckIPHeader on its own kernel: no run of two
    r = build([("Strip", "14"), ("CheckIPHeader", "BADSRC 192.0.2.1"), ("Null", ""), ("DecIPTTL", "")])
    assert fastpath.fast_paths(r) == []


def test_no_compiler_child_when_forbidden(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """CLICKOS_COMPILE_CHILD=0 (sandboxed instances): no child process; without a
    kernel compiled before, the path stays on the ordinary elements."""
    import subprocess

    monkeypatch.setenv("CLICKOS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CLICKOS_FASTPATH", "1")
    monkeypatch.setenv("CLICKOS_COMPILE_CHILD", "0")

    def no_popen(*a: object, **k: object) -> None:
        raise AssertionError("a compiler process was started")

    monkeypatch.setattr(subprocess, "Popen", no_popen)
    r = build([("Strip", "14"), ("CheckIPHeader", ""), ("Unstrip", "14")])
    frame = raw(Ether() / IP() / UDP())
    sent = warm_up(r, frame, timeout=10)
    path = fastpath.fast_paths(r)[0]
    assert path.failed and path.kernel is None
    assert len(r.find("out").got) == sent


@pytest.mark.parametrize("name", ["firewall", "router", "rewrite"])
def test_good_packets_take_the_fused_kernel(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Good traffic is not punted: a fused path that punted everything would still
    give the right packets, only slowly."""
    monkeypatch.setenv("CLICKOS_FASTPATH", "1")
    r = build(CHAINS[name])
    path = fastpath.fast_paths(r)[0]
    assert path.compile_now(r.pool)
    frame = raw(Ether() / IP(src="192.0.2.1", dst="198.51.100.7") / UDP(sport=9, dport=5000) / (b"g" * 30))
    pool = r.pool
    idx = np.array([pool.new_packet(frame) for _ in range(50)], np.int32)
    verdict = np.zeros(50, np.int32)
    punted = path.kernel(pool.data, pool.off, pool.length, pool.mac, pool.nh, pool.th, pool.anno, pool.ptype,
                         idx, verdict, *path._arrays)
    assert punted == 0 and (verdict == len(path.elements)).all()
