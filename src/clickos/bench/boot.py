"""``clickos bench boot``: how fast an instance boots, and how small an idle one is.

ClickOS reports about 30 ms to boot a VM and about 5 MB per VM.  This
benchmark starts a daemon (in a subprocess, with a private run directory),
starts ``--running N`` idle instances and checks that every one of them
answers a handler read, then times ``--iterations`` creations of

    InfiniteSource(LIMIT 1, STOP false) -> c :: Counter -> Discard

from the API request (``POST /instances`` with ``"wait": "first-packet"``)
until the instance has forwarded its first packet: the instance tells the
daemon when the first packet has gone through (no polling), and the daemon
answers the request then.  Each timed instance is destroyed before the next
(after ``--interval`` ms), so N stays constant.

Reported: p50, p99 and max of the boot times, and the memory of an idle
instance — PSS (its private pages plus its share of the pages it shares
with the zygote and the other instances) and USS (its private pages) — read
from ``/proc/PID/smaps_rollup``.  Instances start from the zygote's memory
snapshot and hand back the pages they leave unchanged (``clickos.vm.pages``);
``--no-snapshot`` measures without.  With ``--json`` the last line is::

    {"p50_ms": ..., "p99_ms": ..., "max_ms": ..., "idle_pss_mib": ..., "running": N, ...}

At the end the daemon is stopped and the benchmark checks that no process,
cgroup or socket of it is left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from clickos.vm.client import ApiError, Client

BOOT_CONFIG = "InfiniteSource(LIMIT 1, STOP false) -> c :: Counter -> Discard;\n"
IDLE_CONFIG = "c :: Counter; Idle -> c -> Discard;\n"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        if ppid == pid:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def start_daemon(run_dir: str, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    sock = os.path.join(run_dir, "clickos.sock")
    cmd = [sys.executable, "-m", "clickos.cli", "daemon", "--run-dir", run_dir, "--socket", sock,
           "--prefork", str(args.prefork), "--prefork-warm", str(args.prefork_warm), "--namespaces", args.namespaces]
    if args.no_cgroups:
        cmd.append("--no-cgroups")
    if args.no_control_sockets:
        cmd.append("--no-control-sockets")
    if args.ksm:
        cmd += ["--ksm", "--ksm-pages-to-scan", str(args.ksm_pages_to_scan)]
    if args.no_snapshot:
        cmd.append("--no-snapshot")
    out = open(os.path.join(run_dir, "daemon.out"), "wb")  # noqa: SIM115 - lives as long as the daemon
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(os.path.join(run_dir, "daemon.out")) as f:
                raise RuntimeError(f"daemon exited: {f.read()[-2000:]}")
        if os.path.exists(sock):
            try:
                with Client(sock, timeout=5) as c:
                    c.info()
                return proc, sock
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("daemon did not start within 180 s")


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = tempfile.mkdtemp(prefix="clickos-bench-")
    quiet = args.json
    daemon, sock = start_daemon(run_dir, args)
    result: dict[str, Any] = {}
    try:
        c = Client(sock, timeout=120)
        info = c.info()
        zygote = info["zygote"]["pid"]
        result["snapshot"] = info["zygote"].get("snapshot")
        cg = info.get("cgroups") or {}
        result["cgroups"] = {"version": cg.get("version"), "controllers": cg.get("controllers"),
                             "problems": cg.get("problems")}
        result["namespaces"] = info.get("namespaces")
        # -- N idle instances ---------------------------------------------------------------
        t0 = time.monotonic()
        idle = []
        for i in range(args.running):
            name = f"idle-{i:04d}"
            c.create(name, IDLE_CONFIG, limits=_limits(args))
            idle.append(name)
            if (i + 1) % 100 == 0:
                _log(f"  {i + 1} instances running ({time.monotonic() - t0:.1f} s)", quiet)
        result["setup_s"] = round(time.monotonic() - t0, 2)
        # every one answers a handler read
        t1 = time.monotonic()
        answered = sum(1 for name in idle if c.read(name, "c.count").strip() == "0")
        read_s = time.monotonic() - t1
        result["handler_reads_ok"] = answered
        result["handler_read_mean_ms"] = round(read_s / len(idle) * 1000, 3) if idle else None
        # idle memory
        probe = None
        if not idle:
            probe = "idle-probe"
            c.create(probe, IDLE_CONFIG, limits=_limits(args))
        time.sleep(0.3)
        if args.ksm:
            # A page is merged once it has looked the same on two passes of
            # ksmd: wait for three full passes (or give up after --settle seconds).
            t2 = time.monotonic()
            start = (c.info().get("ksm") or {}).get("full_scans", 0)
            while time.monotonic() - t2 < args.settle:
                if (c.info().get("ksm") or {}).get("full_scans", 0) >= start + 3:
                    break
                time.sleep(1)
            result["ksm"] = c.info().get("ksm")
            result["ksm_settle_s"] = round(time.monotonic() - t2, 1)
        mems = [it["memory"] for it in c.list() if it.get("memory") and it["name"].startswith("idle-")]
        result["idle_pss_mib"] = round(statistics.median(m["pss_bytes"] for m in mems) / 2**20, 3) if mems else None
        result["idle_uss_mib"] = round(statistics.median(m["uss_bytes"] for m in mems) / 2**20, 3) if mems else None
        zmem = c.info()["zygote"].get("memory") or {}
        result["zygote_rss_mib"] = round(zmem.get("rss_bytes", 0) / 2**20, 1)
        if probe:
            c.destroy(probe)
        _log(f"  {len(idle)} idle instances: PSS {result['idle_pss_mib']} MiB, private {result['idle_uss_mib']} MiB, "
             f"{answered}/{len(idle)} answered a handler read", quiet)
        # -- timed boots ----------------------------------------------------------------------
        times: list[float] = []
        server_ms: list[float] = []
        sources: dict[str, int] = {}
        steps: dict[str, list[float]] = {}
        for i in range(args.warmup + args.iterations):
            name = f"boot-{i:05d}"
            t = time.perf_counter()
            r = c.create(name, BOOT_CONFIG, wait="first-packet", limits=_limits(args))
            dt = (time.perf_counter() - t) * 1000
            if i >= args.warmup:
                times.append(dt)
                fp = (r.get("timing") or {}).get("first_packet_ms")
                if fp is not None:
                    server_ms.append(fp)
                for k, v in (r.get("timing") or {}).items():
                    steps.setdefault("daemon_" + k, []).append(v)
                if i < args.warmup + args.breakdown:
                    boot = c.show(name).get("boot") or {}
                    src = boot.get("source", "?")
                    sources[src] = sources.get(src, 0) + 1
                    for k, v in boot.items():
                        if isinstance(v, int | float):
                            steps.setdefault(k, []).append(v)
            c.destroy(name)
            if args.interval:
                time.sleep(args.interval / 1000)
        result.update({
            "p50_ms": round(percentile(times, 50), 3), "p99_ms": round(percentile(times, 99), 3),
            "max_ms": round(max(times), 3) if times else None, "mean_ms": round(statistics.fmean(times), 3),
            "daemon_p50_ms": round(percentile(server_ms, 50), 3) if server_ms else None,
            "iterations": len(times), "boot_sources": sources,
            "boot_steps_p50_ms": {k: round(statistics.median(v), 3) for k, v in steps.items()},
        })
        # still everyone answers
        if idle:
            result["handler_reads_ok_after"] = sum(1 for name in idle if c.read(name, "c.count").strip() == "0")
        c.close()
        # -- teardown and leftovers -------------------------------------------------------------
        kids = _children_of(zygote)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    time.sleep(0.2)
    left = [p for p in kids + [zygote] if _alive(p)]
    bases = [b for b in (cg.get("base") or {}).values() if os.path.exists(b)]
    socks = [p for p in (sock, os.path.join(run_dir, "sockets")) if os.path.exists(p)]
    result["teardown"] = {"processes_left": len(left), "cgroups_left": len(bases), "sockets_left": len(socks),
                          "clean": not (left or bases or socks)}
    result["running"] = args.running
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        result["run_dir"] = run_dir
    return result


def _limits(args: argparse.Namespace) -> dict[str, Any] | None:
    lim: dict[str, Any] = {}
    if args.memory:
        lim["memory"] = args.memory
    if args.pids:
        lim["pids"] = args.pids
    return lim or None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="clickos bench boot", description=__doc__.split("\n\n")[0])
    ap.add_argument("--running", type=int, default=0, help="idle instances running during the measurement")
    ap.add_argument("--iterations", type=int, default=200, help="timed boots")
    ap.add_argument("--warmup", type=int, default=10, help="untimed boots first")
    ap.add_argument("--interval", type=float, default=30.0, help="ms between timed boots")
    ap.add_argument("--breakdown", type=int, default=0, help="show where the first K timed boots came from")
    ap.add_argument("--prefork", type=int, default=2, help="daemon's pool of pre-forked processes (0: none)")
    ap.add_argument("--prefork-warm", type=int, default=1, help="practice boots per pre-forked process")
    ap.add_argument("--memory", help="memory limit for every instance (e.g. 64M)")
    ap.add_argument("--pids", type=int, help="pids limit for every instance")
    ap.add_argument("--namespaces", default="net,uts,ipc,mnt")
    ap.add_argument("--no-cgroups", action="store_true")
    ap.add_argument("--no-control-sockets", action="store_true")
    ap.add_argument("--ksm", action="store_true", help="run the daemon with --ksm (kernel same-page merging)")
    ap.add_argument("--ksm-pages-to-scan", type=int, default=2000, help="with --ksm: ksmd's scan rate")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="run the daemon with --no-snapshot (instances keep the pages they copied)")
    ap.add_argument("--settle", type=float, default=300.0,
                    help="with --ksm: longest wait for ksmd to go over the idle instances before measuring")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not (hasattr(os, "pidfd_open") and sys.platform.startswith("linux")):
        print("clickos bench boot: needs Linux", file=sys.stderr)
        return 1
    try:
        res = run(args)
    except (RuntimeError, ApiError, OSError) as e:
        print(f"clickos bench boot: {e}", file=sys.stderr)
        return 1
    if not args.json:
        print(f"instances running      {res['running']}"
              + (f" (set up in {res['setup_s']} s; {res['handler_reads_ok']} answered a handler read, "
                 f"{res['handler_read_mean_ms']} ms each)" if res["running"] else ""))
        print(f"boot to first packet   p50 {res['p50_ms']:.2f} ms   p99 {res['p99_ms']:.2f} ms   "
              f"max {res['max_ms']:.2f} ms   ({res['iterations']} boots; daemon-side p50 {res['daemon_p50_ms']} ms)")
        if res.get("boot_steps_p50_ms"):
            print("boot steps (p50, ms after the daemon took the request): "
                  + ", ".join(f"{k.removesuffix('_ms')} {v}" for k, v in res["boot_steps_p50_ms"].items())
                  + (f"  sources {res['boot_sources']}" if res["boot_sources"] else ""))
        print(f"idle instance memory   PSS {res['idle_pss_mib']} MiB   private {res['idle_uss_mib']} MiB   "
              f"(zygote RSS {res['zygote_rss_mib']} MiB; {'' if res.get('snapshot') else 'no '}snapshot)"
              + (f"   with KSM after {res['ksm_settle_s']} s: {res['ksm']}" if res.get("ksm") else ""))
        cg = res["cgroups"]
        print(f"isolation              cgroups v{cg['version']} {','.join(cg['controllers'] or []) or 'none'}; "
              f"namespaces {','.join(res['namespaces'] or []) or 'none'}")
        print(f"teardown               {'clean' if res['teardown']['clean'] else res['teardown']}")
    keys = ("p50_ms", "p99_ms", "max_ms", "idle_pss_mib", "running", "idle_uss_mib", "mean_ms", "handler_reads_ok",
            "snapshot", "ksm", "teardown")
    if args.json:
        print(json.dumps({k: res.get(k) for k in keys}))
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0 if res["teardown"]["clean"] else 2


if __name__ == "__main__":
    sys.exit(main())
