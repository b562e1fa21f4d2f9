"""``clickos demo``: run the shipped demo configuration and report what happened."""

from __future__ import annotations

import argparse
import time
from importlib import resources

from clickos.core.errors import ErrorHandler
from clickos.core.router import Router


def demo_config() -> str:
    return resources.files("clickos").joinpath("conf/demo.click").read_text()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="clickos demo", description=__doc__)
    ap.add_argument("--limit", type=int, default=10_000_000, help="packets to generate")
    ap.add_argument("--burst", type=int, default=256, help="packets per source task run")
    args = ap.parse_args(argv or [])
    errh = ErrorHandler()
    text = demo_config()
    print("clickos demo: the embedded configuration conf/demo.click")
    print("-" * 72)
    print(text.strip())
    print("-" * 72)
    t0 = time.perf_counter()
    router = Router.from_text(text, "demo.click", errh,
                              defines={"LIMIT": str(args.limit), "BURST": str(args.burst)})
    if router is None:
        return 1
    t1 = time.perf_counter()
    router.activate(errh)
    router.master.driver()
    t2 = time.perf_counter()

    def read(name: str) -> str:
        v = router.call_read(name, errh)
        return (v or "").strip()

    rate = float(read("ac.rate") or 0)
    rows = [
        ("src.count", read("src.count"), "packets generated"),
        ("in.count", read("in.count"), "IPv4 packets classified to the main path"),
        ("other.count", read("other.count"), "non-IPv4 packets"),
        ("ac.rate", f"{rate / 1e6:.2f} Mpps", f"{rate * 60 * 8 / 1e9:.2f} Gb/s of 60-byte frames"),
        ("q.drops", read("q.drops"), "copies dropped by the full queue (Tee -> Queue)"),
        ("out.count", read("out.count"), "copies released by RatedUnqueue(1000/s)"),
    ]
    print(f"{'handler':14s} {'value':>14s}  meaning")
    for name, value, meaning in rows:
        print(f"{name:14s} {value:>14s}  {meaning}")
    print(f"\nrouter built in {(t1 - t0) * 1e3:.1f} ms; ran {args.limit} packets in {t2 - t1:.2f} s "
          f"(BURST {args.burst}).")
    router.cleanup()
    return 0
