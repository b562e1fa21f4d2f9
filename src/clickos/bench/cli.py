"""``clickos bench``: throughput benchmarks, side by side with Click's C++ driver.

- ``bench run CONFIG [--click PATH]``: run CONFIG with our driver (and with
  Click's ``click`` binary when given) and print each ``ac.rate`` (packets/s).
- ``bench core [--click PATH]``: the core issue's configuration — a 60-byte
  Ethernet/IPv4/UDP frame from InfiniteSource through Counter and
  AverageCounter to Discard — at BURST 256 and BURST 1.
- ``bench paths [--click PATH]``: the middlebox issue's two element paths at
  BURST 256, the IP router path (``Strip(14) -> CheckIPHeader -> DecIPTTL``)
  and the firewall chain (``Classifier(12/0800) -> Strip(14) -> CheckIPHeader
  -> IPFilter(allow udp && dst port 5000, deny all) -> DecIPTTL -> Unstrip(14)
  -> EtherMirror``), fed the same 60-byte UDP frame (destination port 5000).

Rates are medians of ``--repeat`` runs, measured in the same invocation, and
reported as ratios against Click when Click is given (the machine is shared:
only same-run ratios mean much).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

FRAME60 = ("02000000000202000000000108004500002e0000000040111489c6336401cb00710104d2"
           "1388001a0000000000000000000000000000000000000000")




# The middlebox issue's paths; the source and the AverageCounter around them are
# the same as in the core benchmark.
PATHS = {
    "router": "Strip(14) -> CheckIPHeader -> DecIPTTL",
    "firewall": ("Classifier(12/0800) -> Strip(14) -> CheckIPHeader\n"
                 "  -> IPFilter(allow udp && dst port 5000, deny all) -> DecIPTTL -> Unstrip(14) -> EtherMirror"),
}


def path_config(path: str, limit: int, burst: int = 256) -> str:
    return (f"InfiniteSource(DATA \\<{FRAME60}>, LIMIT {limit}, STOP true, BURST {burst})\n"
            f"  -> {path}\n  -> ac :: AverageCounter -> Discard;\n")


def core_config(burst: int, limit: int) -> str:
    return path_config("c :: Counter", limit, burst)


def _ours() -> list[str]:
    return [sys.executable, "-m", "clickos.cli", "run"]


def measure(cmd: list[str], path: str, handler: str = "ac.rate", timeout: float = 600) -> float:
    """Run a driver on ``path`` and return the value of ``handler`` as a float."""
    out = subprocess.run(cmd + [path, "-h", handler], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} {path} failed: {out.stderr.strip()[-500:]}")
    return float(out.stdout.strip().splitlines()[-1])


def compare(path: str, click: str | None, repeat: int) -> dict[str, float | None]:
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(measure(_ours(), path))
        if click:
            theirs.append(measure([click], path))
    res: dict[str, float | None] = {"ours_pps": statistics.median(ours),
                                    "click_pps": statistics.median(theirs) if theirs else None}
    res["ratio"] = (res["ours_pps"] / res["click_pps"]) if res["click_pps"] else None  # type: ignore[operator]
    return res


def _print_row(label: str, r: dict[str, float | None]) -> None:
    ours = r["ours_pps"] or 0.0
    line = f"{label:28s} clickos {ours / 1e6:8.2f} Mpps"
    if r["click_pps"]:
        line += f"   click {r['click_pps'] / 1e6:8.2f} Mpps   ratio {r['ratio']:.2f}x"
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    # -- instances (vm helper): `clickos bench boot` parses its own options ----------------
    args_in = sys.argv[1:] if argv is None else argv
    if args_in and args_in[0] == "boot":
        from clickos.bench.boot import main as boot_main

        return boot_main(args_in[1:])
    # -- end instances ------------------------------------------------------------------------
    # -- middleboxes (middlebox helper): `clickos bench middleboxes` parses its own options ----
    if args_in and args_in[0] == "middleboxes":
        from clickos.bench.middleboxes import main as middleboxes_main

        return middleboxes_main(args_in[1:])
    # -- end middleboxes ----------------------------------------------------------------------
    ap = argparse.ArgumentParser(prog="clickos bench")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("boot", help="instance boot time and idle memory (clickos bench boot --help)")  # vm helper
    sub.add_parser("middleboxes", help="the nine middleboxes on generated traffic (--help)")  # middlebox helper
    r = sub.add_parser("run", help="measure ac.rate of a configuration")
    r.add_argument("config")
    r.add_argument("--click", help="path of Click's userlevel click binary, to compare")
    r.add_argument("--repeat", type=int, default=3)
    r.add_argument("--json", action="store_true")
    c = sub.add_parser("core", help="the core benchmark at BURST 256 and BURST 1")
    c.add_argument("--click", help="path of Click's userlevel click binary, to compare")
    c.add_argument("--repeat", type=int, default=3)
    c.add_argument("--limit", type=int, default=20_000_000)
    c.add_argument("--limit1", type=int, default=3_000_000, help="LIMIT for the BURST 1 run")
    c.add_argument("--json", action="store_true")
    pth = sub.add_parser("paths", help="the IP router path and the firewall chain at BURST 256")
    pth.add_argument("--click", help="path of Click's userlevel click binary, to compare")
    pth.add_argument("--repeat", type=int, default=3)
    pth.add_argument("--limit", type=int, default=20_000_000)
    pth.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    click = args.click or os.environ.get("CLICK_BIN")
    if args.cmd == "run":
        res = compare(args.config, click, args.repeat)
        if args.json:
            print(json.dumps(res))
        else:
            _print_row(os.path.basename(args.config), res)
        return 0
    results = {}
    if args.cmd == "paths":
        with tempfile.TemporaryDirectory() as d:
            for name, path in PATHS.items():
                fn = os.path.join(d, f"{name}.click")
                with open(fn, "w") as f:
                    f.write(path_config(path, args.limit))
                res = compare(fn, click, args.repeat)
                results[name] = res
                if not args.json:
                    _print_row(f"{name} path (BURST 256)", res)
        if args.json:
            print(json.dumps(results))
        return 0
    with tempfile.TemporaryDirectory() as d:
        for burst, limit in ((256, args.limit), (1, args.limit1)):
            path = os.path.join(d, f"core-burst{burst}.click")
            with open(path, "w") as f:
                f.write(core_config(burst, limit))
            res = compare(path, click, args.repeat)
            results[f"burst{burst}"] = res
            if not args.json:
                _print_row(f"core BURST {burst} (LIMIT {limit})", res)
    if args.json:
        print(json.dumps(results))
    return 0
