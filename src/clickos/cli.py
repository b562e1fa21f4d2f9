"""Command-line entry points: ``clickos …`` and the Click-compatible ``click``,
``click-flatten`` and ``click-buildtool``.

Thin on purpose: it parses arguments and calls the layers below.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from clickos import CLICK_VERSION, __version__
from clickos.core.errors import ErrorHandler
from clickos.driver import Driver, DriverOptions

_DEFINE = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*=")


class UsageError(Exception):
    pass


def _parse_click_args(argv: list[str], prog: str) -> DriverOptions:
    """Click's option syntax: short options with attached or separate values,
    long options with ``=`` or a separate value, and ``NAME=VALUE`` defines."""
    opts = DriverOptions()
    takes = {
        "-f": "file", "--file": "file", "-e": "expr", "--expression": "expr",
        "-h": "handler", "--handler": "handler", "-x": "exit", "--exit-handler": "exit",
        "-o": "output", "--output": "output", "-p": "port", "--port": "port",
        "-u": "unix", "--unix-socket": "unix", "-C": "clickpath", "--clickpath": "clickpath",
        "-j": "threads", "--threads": "threads",
    }
    flags = {"-q": "quit", "--quit": "quit", "-R": "reconf", "--allow-reconfigure": "reconf",
             "-t": "time", "--time": "time", "-w": "nowarn", "--no-warnings": "nowarn"}
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        key = val = None
        if a.startswith("--") and a != "--":
            name, eq, v = a.partition("=")
            if name in ("--simtime", "--simulation-time"):
                opts.simtime = float(v) if eq else 0.0
                continue
            if name == "--version":
                print(f"click (Click) {CLICK_VERSION}  [clickos {__version__}]")
                raise SystemExit(0)
            if name == "--help":
                print(f"Usage: {prog} [OPTION]... [ROUTERFILE]\n"
                      "  -f, --file FILE  -e, --expression EXPR  -h, --handler ELEMENT.H\n"
                      "  -x, --exit-handler ELEMENT.H  -o, --output FILE  -q, --quit\n"
                      "  -p, --port PORT  -u, --unix-socket FILE  -R, --allow-reconfigure\n"
                      "  --simtime  -t, --time  -w, --no-warnings  NAME=VALUE")
                raise SystemExit(0)
            if name in flags:
                key = flags[name]
            elif name in takes:
                key = takes[name]
                if eq:
                    val = v
                elif i < len(argv):
                    val = argv[i]
                    i += 1
                else:
                    raise UsageError(f"'{name}' requires a value")
            else:
                raise UsageError(f"unrecognized option '{name}'")
        elif a.startswith("-") and len(a) > 1:
            short = a[:2]
            if short in flags:
                key = flags[short]
                if len(a) > 2:  # bundled flags such as -qo-
                    argv = argv[:i] + ["-" + a[2:]] + argv[i:]
            elif short in takes:
                key = takes[short]
                if len(a) > 2:
                    val = a[2:]
                elif i < len(argv):
                    val = argv[i]
                    i += 1
                else:
                    raise UsageError(f"'{short}' requires a value")
            else:
                raise UsageError(f"unrecognized option '{a}'")
        elif _DEFINE.match(a):
            n, _, v = a.partition("=")
            opts.defines[n] = v
            continue
        else:
            if opts.file is not None or opts.expr is not None:
                raise UsageError("router configuration specified twice")
            opts.file = a
            continue
        if key == "file":
            if opts.file is not None or opts.expr is not None:
                raise UsageError("router configuration specified twice")
            opts.file = val
        elif key == "expr":
            if opts.file is not None or opts.expr is not None:
                raise UsageError("router configuration specified twice")
            opts.expr = val
        elif key == "handler":
            opts.handlers.append(val or "")
        elif key == "exit":
            opts.exit_handler = val
        elif key == "output":
            opts.output = val
        elif key == "port":
            opts.ports.append(val or "")
        elif key == "unix":
            opts.unix_sockets.append(val or "")
        elif key == "quit":
            opts.quit = True
        elif key == "reconf":
            opts.allow_reconfigure = True
        elif key == "time":
            opts.report_time = True
        elif key == "nowarn":
            opts.warnings = False
    return opts


def click_main(argv: list[str] | None = None) -> int:
    """The ``click`` program."""
    argv = sys.argv[1:] if argv is None else argv
    errh = ErrorHandler()
    try:
        opts = _parse_click_args(argv, "click")
    except UsageError as e:
        errh.error(f"click: {e}")
        return 1
    rc = Driver(opts, errh).run()
    sys.stdout.flush()
    return rc


def click_flatten_main(argv: list[str] | None = None) -> int:
    """The ``click-flatten`` tool: print a configuration with compounds expanded."""
    from clickos.lang import parse_config

    argv = sys.argv[1:] if argv is None else argv
    errh = ErrorHandler()
    file = expr = output = None
    defines: dict[str, str] = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        value: str | None = None
        for short, long_ in (("-e", "--expression"), ("-f", "--file"), ("-o", "--output")):
            if a in (short, long_):
                if i >= len(argv):
                    errh.error(f"click-flatten: '{a}' requires a value")
                    return 1
                value = argv[i]
                i += 1
            elif a.startswith(long_ + "="):
                value = a[len(long_) + 1:]
            elif a.startswith(short) and len(a) > 2 and not a.startswith("--"):
                value = a[2:]
            else:
                continue
            if short == "-e":
                expr = value
            elif short == "-f":
                file = value
            else:
                output = value
            break
        if value is not None:
            continue
        if _DEFINE.match(a):
            n, _, v = a.partition("=")
            defines[n] = v
        elif a.startswith("-") and a != "-":
            errh.error(f"click-flatten: unrecognized option '{a}'")
            return 1
        else:
            file = a
    if expr is not None:
        text, fname = expr, "config"
    elif file is None or file == "-":
        text, fname = sys.stdin.read(), "<stdin>"
    else:
        try:
            with open(file, encoding="latin-1") as f:
                text, fname = f.read(), file
        except OSError as e:
            errh.error(f"{file}: {e.strerror}")
            return 1
    flat = parse_config(text, fname, errh=errh, defines=defines, expand_globals=False)
    if flat is None:
        return 1
    out = flat.unparse_tool() if hasattr(flat, "unparse_tool") else flat.unparse()
    if output and output != "-":
        with open(output, "w") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    return 0


def click_buildtool_main(argv: list[str] | None = None) -> int:
    """``click-buildtool provides NAME…``: exit 0 iff every named element exists."""
    from clickos.core import registry

    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: click-buildtool provides NAME...", file=sys.stderr)
        return 1
    cmd, rest = argv[0], argv[1:]
    if cmd == "provides":
        reg = registry.load_all()
        extras = {"userlevel", "int64", "nanotimestamp", "stride", "false"} - {"false"}
        ok = all(n in reg or n in extras for n in rest)
        return 0 if ok else 1
    if cmd == "--version":
        print(f"click-buildtool (Click) {CLICK_VERSION}")
        return 0
    print(f"click-buildtool: unknown command '{cmd}'", file=sys.stderr)
    return 1


# -- clickos ------------------------------------------------------------------------------

def _cmd_run(argv: list[str]) -> int:
    return click_main(argv)


def _cmd_flatten(argv: list[str]) -> int:
    return click_flatten_main(argv)


def _cmd_check(argv: list[str]) -> int:
    """Parse and initialize without running; prints nothing on success."""
    return click_main(["-q"] + argv)


def _cmd_elements(argv: list[str]) -> int:
    from clickos.core import registry

    for name, cls in registry.load_all().items():
        doc = (cls.__doc__ or "").strip().splitlines()
        summary = next((ln.strip() for ln in doc[1:] if ln.strip()), doc[0] if doc else "")
        print(f"{name:24s} {summary}")
    return 0


def _cmd_doc(argv: list[str]) -> int:
    import inspect

    from clickos.core import registry

    if not argv:
        print("usage: clickos doc ELEMENT", file=sys.stderr)
        return 1
    cls = registry.lookup(argv[0])
    if cls is None:
        print(f"clickos doc: no element class '{argv[0]}'", file=sys.stderr)
        return 1
    print(inspect.cleandoc(cls.__doc__ or f"{argv[0]}: no documentation"))
    return 0


def _cmd_demo(argv: list[str]) -> int:
    from clickos.demo import main as demo_main

    return demo_main(argv)


def _cmd_bench(argv: list[str]) -> int:
    from clickos.bench.cli import main as bench_main

    return bench_main(argv)


# -- instances (vm helper): `clickos daemon`, `clickos vm ...` --------------------------------
def _cmd_daemon(argv: list[str]) -> int:
    from clickos.vm.cli import daemon_main

    return daemon_main(argv)


def _cmd_vm(argv: list[str]) -> int:
    from clickos.vm.cli import vm_main

    return vm_main(argv)
# -- end instances ----------------------------------------------------------------------------


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "run": (_cmd_run, "run a configuration (Click's driver options)"),
    "flatten": (_cmd_flatten, "print a configuration with compound elements expanded"),
    "check": (_cmd_check, "parse and initialize a configuration without running it"),
    "elements": (_cmd_elements, "list the element classes"),
    "doc": (_cmd_doc, "print an element's manual"),
    "demo": (_cmd_demo, "run the shipped demo configuration on generated traffic"),
    "bench": (_cmd_bench, "benchmarks (bench run CONFIG, bench click ...)"),
    "fuzz": (lambda argv: __import__("clickos.fuzz.cli", fromlist=["main"]).main(argv), "fuzz every IP element"),
    "daemon": (_cmd_daemon, "run the instance daemon (REST API on a Unix socket)"),  # vm helper
    "vm": (_cmd_vm, "create, list, reconfigure, stop and destroy instances"),  # vm helper
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: clickos COMMAND [ARGS...]\n\ncommands:")
        for name, (_, help_) in COMMANDS.items():
            print(f"  {name:10s} {help_}")
        return 0 if argv else 1
    if argv[0] == "--version":
        print(f"clickos {__version__} (Click {CLICK_VERSION} compatible)")
        return 0
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        print(f"clickos: unknown command '{argv[0]}'", file=sys.stderr)
        return 1
    return cmd[0](argv[1:])


def _entry(fn: Callable[[], int]) -> None:
    raise SystemExit(fn())


if __name__ == "__main__":
    raise SystemExit(main())
