"""``clickos fuzz``: push random and mutated packets through every IP element.

    clickos fuzz [--packets N] [--seed S] [--elements REGEX] [--jobs J] [--json] [--list]

N packets (default 1,000,000) go through each element configuration; the run
fails (exit status 1) on any exception or broken pool invariant.  Without
``--json`` a table is printed; with it, the last line of output is one JSON
object with per-element figures and totals.  Progress goes to standard error.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
import time

from clickos.fuzz.runner import TargetResult, run, select_targets


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clickos fuzz", description="fuzz every IP-layer element with random and "
                                "mutated packets; exit 1 on any exception or pool invariant failure")
    p.add_argument("--packets", type=int, default=1_000_000, help="packets per element configuration "
                   "(default 1000000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1); the same seed replays the "
                   "same packets")
    p.add_argument("--elements", metavar="REGEX", default=None, help="only configurations whose label matches")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--list", action="store_true", help="list the configurations and exit")
    p.add_argument("--quiet", action="store_true", help="no progress lines on standard error")
    return p


def _fmt_out(out: list[int]) -> str:
    return "/".join(str(x) for x in out) if out else "-"


def _row(r: TargetResult) -> str:
    status = "ok" if r.ok else ("CRASH" if r.crashed else "SETUP" if r.setup_error else "FAIL")
    pps = r.pushed / r.seconds if r.seconds > 0 else 0.0
    return (f"{status:5s} {r.pushed:>9d} {r.dropped:>9d} {r.exceptions:>4d} {r.invariant_failures:>4d} "
            f"{r.seconds:>8.1f} {pps:>9.0f}  {r.label}  out {_fmt_out(r.out)}")


def _report_failures(results: list[TargetResult], seed: int, packets: int) -> list[str]:
    lines = []
    for r in results:
        if r.setup_error:
            lines.append(f"== {r.label}: setup failed: {r.setup_error}")
        if r.crashed:
            lines.append(f"== {r.label}: CRASH: {r.crashed}")
            lines.append(f"   reproduce: clickos fuzz --seed {seed} --packets {packets} "
                         f"--elements '^{_regex_escape(r.label)}$'")
        for f in r.failures:
            again = f" (and {f.count - 1} more batches alike)" if f.count > 1 else ""
            lines.append(f"== {r.label}: {f.kind} in batch {f.batch} (size {f.batch_size}, input {f.input_port}, "
                         f"batch seed {f.batch_seed}){again}: {f.message}")
            if f.traceback:
                lines.append(f.traceback.rstrip())
            if f.isolated:
                lines.append(f"   isolation: {f.isolated}")
            if f.packet:
                lines.append(f"   packet: {json.dumps(f.packet)}")
            lines.append(f"   reproduce: clickos fuzz --seed {seed} --packets {packets} "
                         f"--elements '^{_regex_escape(r.label)}$'")
    return lines


def _regex_escape(s: str) -> str:
    """``s`` as a regular expression, in single quotes for a POSIX shell."""
    out = "".join("\\" + c if c in ".^$*+?{}[]\\|()" else c for c in s)
    return out.replace("'", "'\\''")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # a crash in compiled code (a numba kernel writing out of bounds) still shows
    # where it happened
    if not faulthandler.is_enabled():
        try:
            faulthandler.enable()
        except (ValueError, OSError, AttributeError):  # standard error without a file descriptor
            pass
    targets = select_targets(args.elements)
    if args.list:
        for t in targets:
            print(t.label)
        return 0
    if not targets:
        print(f"clickos fuzz: no configuration matches {args.elements!r}", file=sys.stderr)
        return 1
    if args.packets < 1:
        print("clickos fuzz: --packets must be positive", file=sys.stderr)
        return 1

    def progress(r: TargetResult) -> None:
        if not args.quiet:
            print(_row(r), file=sys.stderr, flush=True)

    if not args.quiet:
        print(f"clickos fuzz: {len(targets)} configurations x {args.packets} packets, seed {args.seed}, "
              f"{args.jobs} job(s)", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    results = run(targets, args.packets, args.seed, jobs=args.jobs, on_result=progress)
    wall = time.perf_counter() - t0
    total = sum(r.pushed for r in results)
    nexc = sum(r.exceptions for r in results)
    ninv = sum(r.invariant_failures for r in results)
    nsetup = sum(1 for r in results if r.setup_error)
    ncrash = sum(1 for r in results if r.crashed)
    ok = nexc == 0 and ninv == 0 and nsetup == 0 and ncrash == 0
    totals = {"configurations": len(results), "packets": total, "exceptions": nexc, "invariant_failures": ninv,
              "setup_errors": nsetup, "crashes": ncrash, "wall_seconds": round(wall, 2),
              "packets_per_second": round(total / wall) if wall > 0 else 0,
              "cpu_seconds": round(sum(r.seconds for r in results), 2), "seed": args.seed,
              "packets_per_element": args.packets, "jobs": args.jobs, "ok": ok}
    if args.json:
        for line in _report_failures(results, args.seed, args.packets):
            print(line, file=sys.stderr)
        print(json.dumps({"elements": [r.to_json() for r in results], "totals": totals}))
    else:
        print(f"{'':5s} {'pushed':>9s} {'dropped':>9s} {'exc':>4s} {'inv':>4s} {'seconds':>8s} {'pkts/s':>9s}  "
              "configuration  out per port")
        for r in results:
            print(_row(r))
        for line in _report_failures(results, args.seed, args.packets):
            print(line)
        print(f"total: {len(results)} configurations, {total} packets, {nexc} exceptions, {ninv} invariant "
              f"failures, {ncrash} crashes, {nsetup} setup errors; wall {wall:.1f} s, "
              f"{total / wall if wall else 0:.0f} packets/s"
              f" ({args.jobs} job(s))")
    return 0 if ok else 1
