"""``clickos daemon`` and ``clickos vm …``: the command line for instances.

``clickos daemon`` runs the daemon in the foreground (``--detach`` to run it in
the background with a pid file; ``clickos daemon stop`` stops it).

``clickos vm`` talks to a running daemon over its Unix socket (``--socket``,
or ``$CLICKOS_SOCKET``, default ``/run/clickos/clickos.sock``)::

    clickos vm create NAME (-f FILE | -e EXPR) [--memory 64M] [--cpu 50] [--pids 32]
                           [--restart on-failure] [--wait first-packet]
    clickos vm list | show NAME | logs NAME [-n LINES]
    clickos vm install NAME (-f FILE | -e EXPR)
    clickos vm start NAME | stop NAME | destroy NAME
    clickos vm read NAME HANDLER [PARAM] | write NAME HANDLER [VALUE...]
    clickos vm info

Output is a readable table or text; ``--json`` prints the daemon's JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from clickos.vm.client import ApiError, Client, default_socket

DEFAULT_RUN_DIR = "/run/clickos"


# -- formatting ------------------------------------------------------------------------------
def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}M"


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [len(h) for h in header]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(header)).rstrip()]
    for r in rows:
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines)


def _exit_text(e: dict[str, Any] | None) -> str:
    if not e:
        return "-"
    return str(e.get("reason") or ("signal " + str(e.get("signal")) if e.get("signal") else f"code {e.get('code')}"))


def format_list(items: list[dict[str, Any]]) -> str:
    rows = []
    for it in items:
        mem = it.get("memory") or {}
        rows.append([it["name"], it["state"], str(it.get("pid") or "-"), _dur(it.get("uptime_s")),
                     str(it.get("restarts", 0)), _mib(mem.get("pss_bytes")), _exit_text(it.get("last_exit"))])
    return _table(rows, ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "PSS", "LAST EXIT"])


def format_show(it: dict[str, Any]) -> str:
    mem = it.get("memory") or {}
    lim = it.get("limits") or {}
    lines = [
        f"name:        {it['name']}",
        f"state:       {it['state']}" + (f" (restart in {it['restart_in_s']}s)" if it.get("restart_in_s") else ""),
        f"pid:         {it.get('pid') or '-'}",
        f"uptime:      {_dur(it.get('uptime_s'))}",
        f"restarts:    {it.get('restarts', 0)} (policy {it.get('restart', {}).get('policy', 'no')})",
        f"memory:      PSS {_mib(mem.get('pss_bytes'))}, private {_mib(mem.get('uss_bytes'))}, "
        f"RSS {_mib(mem.get('rss_bytes'))}" if mem else "memory:      -",
        "limits:      " + ", ".join(f"{k} {(_mib(v) if k == 'memory' else v)}" for k, v in lim.items()
                                    if v is not None),
        f"isolation:   {', '.join(it.get('isolation') or []) or '-'}",
        f"control:     {it.get('control_socket') or '-'}",
        f"log:         {it.get('log') or '-'}",
        f"last exit:   {_exit_text(it.get('last_exit'))}",
    ]
    if it.get("problems"):
        lines.append("problems:    " + "; ".join(it["problems"]))
    boot = it.get("boot")
    if boot:
        parts = [f"{k.removesuffix('_ms')} {v:.2f}ms" for k, v in boot.items() if isinstance(v, int | float)]
        lines.append(f"boot:        {boot.get('source', '')}: " + ", ".join(parts))
    if it.get("cgroup"):
        lines.append("cgroup:      " + ", ".join(f"{k} {v}" for k, v in it["cgroup"].items()))
    if it.get("responsive") is False:
        lines.append("responsive:  NO (did not answer)")
    els = it.get("elements")
    if els:
        rows = [[e["name"], e["class"], str(e.get("count", "")), str(e.get("packets", ""))] for e in els]
        lines.append("")
        lines.append(_table(rows, ["ELEMENT", "CLASS", "COUNT", "PACKETS"]))
    ev = it.get("events") or []
    if ev:
        lines.append("")
        lines.append("events:")
        for e in ev[-10:]:
            extra = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("time", "event", "errors"))
            stamp = time.strftime("%H:%M:%S", time.localtime(e["time"]))
            lines.append(f"  {stamp}  {e['event']}" + (f" ({extra})" if extra else ""))
    return "\n".join(lines)


# -- clickos vm --------------------------------------------------------------------------------
def _config_arg(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-f", "--file", help="configuration file ('-' for standard input)")
    g.add_argument("-e", "--expression", help="configuration text")


def _read_config(args: argparse.Namespace) -> tuple[str, str]:
    if args.expression is not None:
        return args.expression, "config"
    if args.file == "-":
        return sys.stdin.read(), "<stdin>"
    with open(args.file, encoding="latin-1") as f:
        return f.read(), args.file


def _vm_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    common.add_argument("--socket", default=argparse.SUPPRESS, help="daemon socket")
    ap = argparse.ArgumentParser(prog="clickos vm", parents=[common],
                                 description="manage router instances through the clickos daemon")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", parents=[common], help="create and start an instance")
    c.add_argument("name")
    _config_arg(c)
    c.add_argument("--memory", help="memory limit, e.g. 64M")
    c.add_argument("--cpu", type=float, help="CPU limit, percent of one CPU")
    c.add_argument("--pids", type=int, help="process/thread limit")
    c.add_argument("--nofile", type=int, help="open file limit")
    c.add_argument("--cpu-seconds", type=int, help="CPU time limit (seconds)")
    c.add_argument("--restart", choices=["no", "on-failure", "always"], default="no")
    c.add_argument("--max-restarts", type=int)
    c.add_argument("--wait", choices=["none", "ready", "first-packet"], default="ready")
    c.add_argument("--no-start", action="store_true", help="create without starting")
    c.add_argument("--stats", action="store_true", help="count packets into every element")
    sub.add_parser("list", parents=[common], help="list instances")
    sub.add_parser("info", parents=[common], help="daemon status")
    for name, text in (("show", "show an instance"), ("start", "start an instance"), ("stop", "stop an instance"),
                       ("destroy", "stop and remove an instance")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("name")
        if name == "start":
            p.add_argument("--wait", choices=["none", "ready", "first-packet"], default="ready")
    i = sub.add_parser("install", parents=[common], help="hot-swap a new configuration in")
    i.add_argument("name")
    _config_arg(i)
    r = sub.add_parser("read", parents=[common], help="call a read handler")
    r.add_argument("name")
    r.add_argument("handler")
    r.add_argument("param", nargs="*")
    w = sub.add_parser("write", parents=[common], help="call a write handler")
    w.add_argument("name")
    w.add_argument("handler")
    w.add_argument("value", nargs="*")
    lg = sub.add_parser("logs", parents=[common], help="print an instance's log")
    lg.add_argument("name")
    lg.add_argument("-n", "--lines", type=int, help="only the last LINES lines")
    return ap


def vm_main(argv: list[str]) -> int:
    args = _vm_parser().parse_args(argv)
    as_json = getattr(args, "json", False)
    client = Client(getattr(args, "socket", None) or default_socket())

    def out(obj: Any, text: str | None = None) -> None:
        if as_json or text is None:
            print(json.dumps(obj, indent=2))
        else:
            print(text)

    try:
        cmd = args.cmd
        if cmd == "create":
            config, fname = _read_config(args)
            limits = {k: v for k, v in (("memory", args.memory), ("cpu", args.cpu), ("pids", args.pids),
                                        ("nofile", args.nofile), ("cpu_seconds", args.cpu_seconds))
                      if v is not None}
            restart: dict[str, Any] = {"policy": args.restart}
            if args.max_restarts is not None:
                restart["max_restarts"] = args.max_restarts
            r = client.create(args.name, config, limits=limits or None, restart=restart, wait=args.wait,
                              start=not args.no_start, stats=args.stats, filename=fname)
            timing = r.get("timing") or {}
            extra = ", ".join(f"{k.removesuffix('_ms').replace('_', ' ')} in {timing[k]:.2f} ms"
                              for k in ("ready_ms", "first_packet_ms") if k in timing)
            out(r, f"{r['name']}: {r['state']}, pid {r.get('pid') or '-'}" + (f" ({extra})" if extra else ""))
        elif cmd == "list":
            items = client.list()
            out(items, format_list(items) if items else "no instances")
        elif cmd == "info":
            info = client.info()
            cg = info.get("cgroups") or {}
            text = (f"clickos daemon {info['version']}, pid {info['pid']}, up {_dur(info['uptime_s'])}\n"
                    f"zygote pid {info['zygote']['pid']} (warmed in {info['zygote']['warm_seconds']}s)\n"
                    f"instances {info['instances']} {info['states']}, pool {info['pool']}\n"
                    f"cgroups v{cg.get('version')}: {', '.join(cg.get('controllers') or []) or 'none'}"
                    + (f" ({'; '.join(cg['problems'])})" if cg.get("problems") else "") + "\n"
                    f"namespaces: {', '.join(info['namespaces'])}\nsocket {info['socket']}")
            out(info, text)
        elif cmd == "show":
            it = client.show(args.name)
            out(it, format_show(it))
        elif cmd == "start":
            r = client.start(args.name, args.wait)
            out(r, f"{r['name']}: {r['state']}, pid {r.get('pid') or '-'}")
        elif cmd == "stop":
            r = client.stop(args.name)
            out(r, f"{r['name']}: {r['state']}")
        elif cmd == "destroy":
            client.destroy(args.name)
            out({"name": args.name, "destroyed": True}, f"{args.name}: destroyed")
        elif cmd == "install":
            config, fname = _read_config(args)
            r = client.install(args.name, config, fname)
            for line in r.get("warnings") or []:
                print(line, file=sys.stderr)
            out(r, f"{r['name']}: configuration installed")
        elif cmd == "read":
            r = client.read_full(args.name, args.handler, " ".join(args.param))
            value = r.get("value", "")
            out(r, value[:-1] if value.endswith("\n") else value)
        elif cmd == "write":
            r = client.write(args.name, args.handler, " ".join(args.value))
            for line in r.get("warnings") or []:
                print(line, file=sys.stderr)
            if as_json:
                out(r)
        elif cmd == "logs":
            text = client.logs(args.name, args.lines)
            if as_json:
                out({"name": args.name, "log": text})
            else:
                sys.stdout.write(text)
        return 0
    except ApiError as e:
        if as_json:
            print(json.dumps(e.body or {"error": {"status": e.status, "message": e.message}}, indent=2))
        else:
            print(f"clickos vm: {e.message}", file=sys.stderr)
            for line in e.details:
                print(line, file=sys.stderr)
        return 1
    except (FileNotFoundError, ConnectionRefusedError) as e:
        print(f"clickos vm: cannot reach the daemon at {client.socket_path}: {e.strerror}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"clickos vm: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()


# -- clickos daemon ------------------------------------------------------------------------------
def _daemon_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="clickos daemon", description="run the clickos instance daemon")
    ap.add_argument("action", nargs="?", choices=["run", "stop", "status"], default="run")
    ap.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="state directory (sockets, logs)")
    ap.add_argument("--socket", help="API socket path (default RUN_DIR/clickos.sock)")
    ap.add_argument("--pid-file", help="pid file (default RUN_DIR/clickos.pid with --detach)")
    ap.add_argument("--detach", action="store_true", help="run in the background")
    ap.add_argument("--prefork", type=int, default=2, help="pre-forked warm processes kept ready")
    ap.add_argument("--prefork-warm", type=int, default=1,
                    help="practice boots each pre-forked process runs (faster boots, more memory)")
    ap.add_argument("--no-cgroups", action="store_true", help="do not use cgroups")
    ap.add_argument("--namespaces", default="net,uts,ipc,mnt", help="namespaces for instances ('' for none)")
    ap.add_argument("--uid-base", default="200000", help="instances run as UID-BASE+n ('none': keep ours)")
    ap.add_argument("--no-control-sockets", action="store_true",
                    help="do not give each instance a Click ControlSocket")
    ap.add_argument("--fault-elements", action="store_true", help="register the Fault* test elements")
    ap.add_argument("--ksm", action="store_true",
                    help="share identical pages across instances (starts the kernel's ksmd while running)")
    ap.add_argument("--ksm-pages-to-scan", type=int, default=2000, help="ksmd's scan rate, pages per 20 ms")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="instances do not hand back the pages they copied from the zygote and left unchanged")
    ap.add_argument("--stop-grace", type=float, default=2.0, help="seconds between SIGTERM and SIGKILL")
    ap.add_argument("--verbose", action="store_true", help="log every API request")
    return ap


def _config_from(args: argparse.Namespace) -> Any:
    from clickos.vm.daemon import DaemonConfig

    uid_base = None if str(args.uid_base).lower() in ("none", "off", "") else int(args.uid_base)
    return DaemonConfig(run_dir=args.run_dir, socket_path=args.socket, prefork=max(0, args.prefork),
                        prefork_warm=max(0, args.prefork_warm),
                        namespaces=tuple(n for n in args.namespaces.split(",") if n), cgroups=not args.no_cgroups,
                        uid_base=uid_base, control_sockets=not args.no_control_sockets,
                        fault_elements=args.fault_elements, stop_grace=args.stop_grace, ksm=args.ksm,
                        ksm_pages_to_scan=args.ksm_pages_to_scan, snapshot=not args.no_snapshot)


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def daemon_main(argv: list[str]) -> int:
    args = _daemon_parser().parse_args(argv)
    pid_file = args.pid_file or (os.path.join(args.run_dir, "clickos.pid") if args.detach or args.action != "run"
                                 else None)
    if args.action in ("stop", "status"):
        pid = _read_pid(pid_file) if pid_file else None
        alive = False
        if pid:
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
        if args.action == "status":
            print(f"clickos daemon: {'running, pid ' + str(pid) if alive else 'not running'}")
            return 0 if alive else 1
        if not alive:
            print("clickos daemon: not running", file=sys.stderr)
            return 1
        os.kill(pid, signal.SIGTERM)  # type: ignore[arg-type]
        for _ in range(600):
            try:
                os.kill(pid, 0)  # type: ignore[arg-type]
            except ProcessLookupError:
                return 0
            time.sleep(0.05)
        print("clickos daemon: still running after 30 s", file=sys.stderr)
        return 1
    cfg = _config_from(args)
    ready_w = -1
    if args.detach:
        os.makedirs(cfg.run_dir, mode=0o700, exist_ok=True)
        r, ready_w = os.pipe()
        if os.fork() > 0:
            os.close(ready_w)
            with os.fdopen(r, "rb") as f:
                status = f.read()
            if status.startswith(b"ok"):
                print(f"clickos daemon: running, socket {cfg.api_socket}")
                return 0
            print(f"clickos daemon: failed to start: {status.decode(errors='replace')[3:]}", file=sys.stderr)
            return 1
        os.close(r)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        log = os.open(os.path.join(cfg.run_dir, "daemon.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(devnull)
        os.close(log)
    return run_daemon(cfg, pid_file, ready_w, verbose=args.verbose)


def run_daemon(cfg: Any, pid_file: str | None = None, ready_fd: int = -1, verbose: bool = False) -> int:
    """Run a daemon until SIGTERM or SIGINT; clean up everything on the way out."""
    from clickos.vm import api
    from clickos.vm.daemon import Daemon

    stop = threading.Event()
    # request threads hand work to the supervisor thread and back: switch sooner
    sys.setswitchinterval(0.0005)

    def on_signal(signo: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    def tell(status: str) -> None:
        # the --detach parent waits for this (and for the pipe to close)
        nonlocal ready_fd
        if ready_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(ready_fd, status.encode())
            os.close(ready_fd)
            ready_fd = -1

    daemon = Daemon(cfg)
    server = None
    try:
        try:
            daemon.start()
            server, _thread = api.serve(daemon, cfg.api_socket, verbose)
        except Exception as e:
            tell(f"no {e}")
            print(f"clickos daemon: {e}", file=sys.stderr)
            return 1
        if pid_file:
            with open(pid_file, "w") as f:
                f.write(f"{os.getpid()}\n")
        cg = daemon.cgroups.describe() if daemon.cgroups else {}
        print(f"clickos daemon: pid {os.getpid()}, socket {cfg.api_socket}, zygote {daemon.zygote_pid}, "
              f"cgroups v{cg.get('version')} {','.join(cg.get('controllers') or []) or 'none'}", flush=True)
        tell("ok")
        while not stop.wait(0.5):
            pass
        print("clickos daemon: stopping", flush=True)
        return 0
    finally:
        tell("no stopped")
        if server is not None:
            server.shutdown()
            server.server_close()
        daemon.close()
        if pid_file:
            with contextlib.suppress(OSError):
                os.unlink(pid_file)
