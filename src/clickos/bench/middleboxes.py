"""``clickos bench middleboxes``: throughput of the nine ClickOS middleboxes.

Each middlebox runs its shipped configuration (``clickos/conf/middleboxes``)
with its devices bound to in-memory generators (``gen:``) and sinks: 64-byte
frames (the IDS gets 1500-byte frames with random payloads, since its target
is in Gb/s), BURST 256, one core.  A run warms up for ``--warmup`` seconds
(numba kernels load, flow tables fill, fused paths get their kernels -- the
warm-up lasts until they have), then the counters are reset and the router
runs for ``--duration`` seconds; the rates are those of the
FromDevice elements over that window (frames offered to and processed by the
middlebox; Gb/s counts frame bytes, without preamble and gap).  The shaper
is measured at its output (ToDevice(1)) against its configured rate.
``cpu_mpps`` divides the packets by the CPU time the process used over the
window instead of the elapsed time: on a machine shared with other work it
is the better estimate of what one core sustains.

Every middlebox runs in a fresh Python process (``--one NAME``), so one's
pool, flow tables and garbage do not slow the next.  ``--repeat N`` runs each
N times and reports the median run (the machine may be shared).

``--profile`` adds, per middlebox, each element's exclusive time per packet
(its own work, downstream calls excluded), measured by wrapping every push,
pull and task call (which slows the run; the shares are what count).

``--json`` prints, as its last line,
``{"middleboxes": [{"name": ..., "mpps": ..., "gbps": ...}, ...]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clickos.middleboxes import MIDDLEBOXES, get

TARGET_MPPS = 10.0
TARGET_IDS_GBPS = 2.0
SHAPER_TOLERANCE = 0.01
SHAPER_RATE = "100Mbps"
SHAPER_RATE_BPS = 100_000_000

_IF0_MAC = "02:00:00:00:00:01"
_IF1_MAC = "02:00:00:00:01:01"


@dataclass
class Case:
    """How one middlebox is driven: device bindings, variables, setup handler writes."""

    name: str
    length: int = 64
    defines: dict[str, str] = field(default_factory=dict)
    setup: list[tuple[str, str]] = field(default_factory=list)
    shaped_bps: int = 0   # the shaper: the configured rate its output is held to


def _gen(**kw: Any) -> str:
    opts = {"len": 64, "flows": 1024}
    opts.update(kw)
    words = [str(opts.pop("proto", "udp"))]
    return "gen:" + ",".join(words + [f"{k}={v}" for k, v in opts.items()])


def cases() -> dict[str, Case]:
    """The traffic each middlebox gets in the benchmark."""
    arp = [("i1/arpq.insert", f"10.0.1.{i} 02:00:00:00:02:{i:02x}") for i in range(2, 18)]
    return {c.name: c for c in (
        Case("wire", defines={"DEV0": _gen()}),
        Case("ethermirror", defines={"DEV0": _gen()}),
        # 16 hosts on interface 0 talking to 16 hosts on interface 1, whose
        # Ethernet addresses the router has already learned (ARP table warm).
        Case("iprouter", defines={"DEV0": _gen(src="10.0.0.2", srcs=16, dst="10.0.1.2", dsts=16,
                                               smac="02:00:00:00:00:02", dmac=_IF0_MAC)},
             setup=arp),
        # outbound web connections from 64 inside hosts
        # (each packet a SYN: a flow's first creates its state, the rest match it)
        Case("firewall", defines={"DEV0": _gen(proto="tcp", tcpflags="S", src="10.0.0.2", srcs=64,
                                               dst="203.0.113.10", dport=80, dmac=_IF0_MAC)}),
        # 256 subscribers, 4096 UDP flows, to one server
        Case("nat", defines={"DEV0": _gen(flows=4096, src="100.64.0.1", srcs=256, dst="203.0.113.10",
                                          dport=53, dmac=_IF0_MAC)}),
        # 4096 client connections from 256 addresses to the virtual address
        Case("loadbalancer", defines={"DEV0": _gen(proto="tcp", flows=4096, src="198.18.0.1", srcs=256,
                                                   dst="10.0.0.100", dport=80, dmac=_IF0_MAC)}),
        Case("flowmonitor", defines={"DEV0": _gen(src="10.0.0.2", srcs=32, dst="10.0.1.2", dsts=32)}),
        # 1500-byte frames, random payloads; one flow in 64 carries a signature
        Case("ids", length=1500, defines={"DEV0": _gen(len=1500, flows=256, payload="random",
                                                       inject="/etc/passwd", inject_every=64)}),
        Case("shaper", defines={"DEV0": _gen(), "RATE": SHAPER_RATE}, shaped_bps=SHAPER_RATE_BPS),
    )}


# -- one middlebox, in this process ---------------------------------------------------------------

class _Profiler:
    """Exclusive time per element, from wrapped push/pull/task calls."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = defaultdict(int)
        self._stack = [0]
        self.enabled = True

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.perf_counter_ns
        stack = self._stack
        ns = self.ns

        def timed(*args: Any) -> Any:
            t0 = clock()
            stack.append(0)
            try:
                return fn(*args)
            finally:
                child = stack.pop()
                el = clock() - t0
                ns[name] += el - child
                stack[-1] += el
        return timed

    def instrument(self, router: Any) -> None:
        """Wrap the element methods ports and tasks will bind to (before initialize)."""
        for e in router.elements:
            for meth in ("push", "pull", "run_task"):
                fn = getattr(e, meth, None)
                if fn is not None:
                    setattr(e, meth, self.wrap(e.name, fn))


def run_one(name: str, duration: float = 2.0, warmup: float = 0.5, profile: bool = False) -> dict[str, Any]:
    """Run middlebox ``name`` in this process; returns its measurements."""
    from clickos.core.errors import ErrorHandler
    from clickos.core.master import Master
    from clickos.core.router import Router
    from clickos.core.task import Timer
    from clickos.elements.devices.devices import FromDevice, ToDevice

    mb = get(name)
    case = cases()[name]
    if profile:
        # time elements one by one, not fused paths (core/fastpath.py)
        os.environ["CLICKOS_FASTPATH"] = "0"
    errh = ErrorHandler()
    r = Router.from_text(mb.text(), mb.path, errh, defines=case.defines, master=Master(), initialize=False)
    if r is None:
        raise RuntimeError(f"{name}: configuration failed: {errh.text()}")
    prof = _Profiler() if profile else None
    if prof is not None:
        prof.instrument(r)
    if not r.initialize(errh):
        raise RuntimeError(f"{name}: initialization failed: {errh.text()}")
    for handler, value in case.setup:
        ename, hname = handler.rsplit(".", 1)
        h = r.handlers.find(r.find(ename), hname)
        h.call_write(value, errh)
    sources = [e for e in r.elements if isinstance(e, FromDevice)]
    sinks = [e for e in r.elements if isinstance(e, ToDevice)]
    owner = sources[0]
    state: dict[str, Any] = {}

    from clickos.core.fastpath import fast_paths

    paths = fast_paths(r)
    give_up = time.monotonic() + 120

    def start(_t: Timer) -> None:
        if any(p.kernel is None and not p.failed for p in paths) and time.monotonic() < give_up:
            # fused paths still warming up (their kernels compile in a child
            # process): measure the steady state
            starter.schedule_after_sec(0.1)
            return
        for e in sources + sinks:
            e.stats.reset()
        if prof is not None:
            prof.ns.clear()
        state["t0"] = time.perf_counter()
        state["cpu0"] = time.process_time()
        stopper.schedule_after_sec(duration)

    def stop(_t: Timer) -> None:
        state["t1"] = time.perf_counter()
        state["cpu1"] = time.process_time()
        r.adjust_runcount(-1)

    starter = Timer(start, owner)
    starter.initialize(owner)
    stopper = Timer(stop, owner)
    stopper.initialize(owner)
    r.activate(errh)
    starter.schedule_after_sec(warmup)
    try:
        r.master.driver()
    finally:
        r.master.close()
        r.cleanup()
    wall = state.get("t1", time.perf_counter()) - state.get("t0", 0.0)
    packets = sum(e.stats.count - e.stats.base_count for e in sources)
    pps = sum(e.stats.rate() for e in sources)
    bps = sum(e.stats.bit_rate() for e in sources)
    cpu = state.get("cpu1", 0.0) - state.get("cpu0", 0.0)
    res: dict[str, Any] = {"name": name, "mpps": round(pps / 1e6, 3), "gbps": round(bps / 1e9, 3),
                           "frame_bytes": case.length, "packets": packets, "seconds": round(wall, 3),
                           "cpu_seconds": round(cpu, 3),
                           "cpu_mpps": round(packets / cpu / 1e6, 3) if cpu > 0 else 0.0}
    if case.shaped_bps:
        out = next(e for e in sinks if e.devname == "1")
        res["offered_mpps"] = res["mpps"]
        res["mpps"] = round(out.stats.rate() / 1e6, 4)
        res["gbps"] = round(out.stats.bit_rate() / 1e9, 4)
        res["configured_gbps"] = case.shaped_bps / 1e9
        res["rate_error"] = round(out.stats.bit_rate() / case.shaped_bps - 1, 5)
    if prof is not None and packets:
        res["profile_ns_per_packet"] = {k: round(v / packets, 1)
                                        for k, v in sorted(prof.ns.items(), key=lambda kv: -kv[1])}
    return res


# -- Click's C++ driver, for reference -------------------------------------------------------------

CLICK_LIMIT = 5_000_000
_NO_CLICK = {"ids": "no StringMatcher in Click", "shaper": "a rate, not a speed"}


def click_config(name: str, limit: int = CLICK_LIMIT) -> str | None:
    """The middlebox's configuration for Click's ``click`` (None if it cannot run there).

    Each generated device becomes an InfiniteSource of the generator's first
    frame (one flow: Click has no equivalent of ``gen:``), a MarkMACHeader (as
    a FromDevice sets the MAC header) and an AverageCounter ``ac``; other devices become Idle, ToDevice becomes Discard,
    and the setup handler writes become a Script."""
    import re

    from clickos.elements.devices.binding import GenRx, parse_binding
    from clickos.elements.devices.generator import build_templates

    if name in _NO_CLICK:
        return None
    case = cases()[name]
    prelude = []
    gens: set[str] = set()
    for var, spec in case.defines.items():
        m = re.fullmatch(r"DEV(\d+)", var)
        if not m or not spec.startswith("gen:"):
            continue
        rx = parse_binding(spec, True)
        assert isinstance(rx, GenRx)
        rx.options.flows = 1
        frame = build_templates(rx.options)[0][0].tobytes().hex()
        prelude.append(f"elementclass ClickOSDevice{m.group(1)} {{ InfiniteSource(DATA \\<{frame}>, "
                       f"LIMIT {limit}, BURST 256, STOP true) -> MarkMACHeader -> ac :: AverageCounter -> output }}")
        gens.add(m.group(1))
    text = get(name).text()
    text = re.sub(r"FromDevice\((\d+)\)",
                  lambda m: f"ClickOSDevice{m.group(1)}" if m.group(1) in gens else "Idle", text)
    text = re.sub(r"ToDevice\((\d+)\)", "Discard", text)
    if case.setup:
        text += "\nScript(" + ", ".join(f"write {h} {v}" for h, v in case.setup) + ");\n"
    return "\n".join(prelude) + "\n" + text


def run_click(click: str, name: str) -> dict[str, Any] | None:
    """Packets per second of the middlebox under Click (None when it cannot run there)."""
    import tempfile

    text = click_config(name)
    if text is None:
        return None
    mb = get(name)
    with tempfile.NamedTemporaryFile("w", suffix=".click", dir=os.path.dirname(mb.path), delete=False) as f:
        f.write(text)
    try:
        out = subprocess.run([click, f.name, "-h", "*/ac.rate"], capture_output=True, text=True, timeout=600,
                             cwd=os.path.dirname(mb.path))
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    rates = [float(v) for v in out.stdout.split() if v.replace(".", "", 1).isdigit()]
    pps = sum(rates)
    return {"mpps": round(pps / 1e6, 3), "gbps": round(pps * cases()[name].length * 8 / 1e9, 3)}


# -- all of them ---------------------------------------------------------------------------------

def _child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "clickos.bench.middleboxes", "--one", name,
           "--duration", str(args.duration), "--warmup", str(args.warmup)]
    if args.profile:
        cmd.append("--profile")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration * 10 + 300)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"name": name, "mpps": 0.0, "gbps": 0.0, "error": (out.stderr.strip() or "no output")[-400:]}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (by Gb/s for the shaper and the IDS), with
    every run's Mpps alongside when there are several."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    ok.sort(key=lambda r: (r["gbps"], r["mpps"]))
    res = dict(ok[(len(ok) - 1) // 2])
    if len(runs) > 1:
        res["runs_mpps"] = [r["mpps"] for r in runs if "error" not in r]
    return res


def verdict(res: dict[str, Any]) -> str:
    """Whether a result meets its target, in words."""
    if "error" in res:
        return "ERROR"
    if "rate_error" in res:
        ok = abs(res["rate_error"]) <= SHAPER_TOLERANCE
        return f"{'ok' if ok else 'MISS'} (rate {res['rate_error'] * 100:+.2f}% of {res['configured_gbps']} Gb/s)"
    if res["name"] == "ids":
        ok = res["gbps"] >= TARGET_IDS_GBPS
        return f"{'ok' if ok else 'MISS'} (target {TARGET_IDS_GBPS} Gb/s)"
    ok = res["mpps"] >= TARGET_MPPS
    return f"{'ok' if ok else 'MISS'} (target {TARGET_MPPS} Mpps)"


def _print_row(res: dict[str, Any]) -> None:
    if "error" in res:
        print(f"{res['name']:13s} ERROR: {res['error']}", flush=True)
        return
    cpu = f"{res['cpu_mpps']:7.3f}" if "rate_error" not in res else "      -"
    line = (f"{res['name']:13s} {res['mpps']:9.3f} Mpps {res['gbps']:8.3f} Gb/s {cpu} Mpps/cpu-s "
            f"{res.get('frame_bytes', 64):5d} B   {verdict(res)}")
    c = res.get("click")
    if c:
        line += (f"   click {c['mpps']:.3f} Mpps" if "mpps" in c
                 else f"   click: {c.get('skipped') or c.get('error')}")
    print(line, flush=True)
    prof = res.get("profile_ns_per_packet")
    if prof:
        total = sum(prof.values()) or 1.0
        for k, v in list(prof.items())[:12]:
            print(f"{'':15s}{v:9.1f} ns/pkt {100 * v / total:5.1f}%  {k}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``clickos bench middleboxes``."""
    ap = argparse.ArgumentParser(prog="clickos bench middleboxes",
                                 description="throughput of the nine middleboxes on generated traffic")
    ap.add_argument("names", nargs="*", help="middleboxes to run (default: all nine)")
    ap.add_argument("--duration", type=float, default=2.0, help="measured seconds per middlebox")
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring")
    ap.add_argument("--repeat", type=int, default=1, help="runs per middlebox; the median is reported")
    ap.add_argument("--profile", action="store_true", help="per-element cost (ns per packet)")
    ap.add_argument("--click", help="Click's userlevel click binary: also run the middleboxes there "
                    "(one flow from InfiniteSource; not the IDS or the shaper)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        try:
            res = run_one(args.one, args.duration, args.warmup, args.profile)
        except RuntimeError as ex:
            res = {"name": args.one, "mpps": 0.0, "gbps": 0.0, "error": str(ex)}
        print(json.dumps(res))
        return 0
    names = args.names or [m.name for m in MIDDLEBOXES]
    known = {m.name for m in MIDDLEBOXES}
    bad = [n for n in names if n not in known]
    if bad:
        ap.error(f"unknown middlebox {bad[0]!r} (choose from {', '.join(sorted(known))})")
    if not args.json:
        print(f"{'middlebox':13s} {'rate':>14s} {'bandwidth':>13s} {'per CPU second':>19s} frame   verdict",
              flush=True)
    results = []
    for n in names:
        res = _median([_child(n, args) for _ in range(max(args.repeat, 1))])
        if args.click:
            c = run_click(args.click, n)
            res["click"] = c if c is not None else {"skipped": _NO_CLICK[n]}
        results.append(res)
        if not args.json:
            _print_row(res)
    if args.json:
        print(json.dumps({"middleboxes": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
