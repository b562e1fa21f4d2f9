"""The userlevel driver: what Click's ``click`` program does, as a function.

Reads a configuration (file, ``-e`` expression or stdin), builds and
initializes the router, optionally prints the flattened configuration, runs the
driver loop, then calls ``-h`` read handlers and the ``-x`` exit handler.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from clickos.core.clock import Clock
from clickos.core.errors import ErrorHandler
from clickos.core.master import Master
from clickos.core.router import STOP_RUNCOUNT, Router


@dataclass
class DriverOptions:
    file: str | None = None
    expr: str | None = None
    handlers: list[str] = field(default_factory=list)
    exit_handler: str | None = None
    quit: bool = False
    output: str | None = None
    simtime: float | None = None
    defines: dict[str, str] = field(default_factory=dict)
    ports: list[str] = field(default_factory=list)
    unix_sockets: list[str] = field(default_factory=list)
    allow_reconfigure: bool = False
    report_time: bool = False
    warnings: bool = True


def read_config_text(opts: DriverOptions, errh: ErrorHandler) -> tuple[str, str] | None:
    """(text, filename-for-landmarks) as Click names them; None after an error."""
    if opts.expr is not None:
        return opts.expr, "config"
    if opts.file is None or opts.file == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(opts.file, encoding="latin-1") as f:
            return f.read(), opts.file
    except OSError as e:
        errh.error(f"{opts.file}: {e.strerror}")
        return None


def _call_read_handler(router: Router, e, hname: str, print_name: bool, errh: ErrorHandler) -> int:
    h = router.handlers.find(e, hname)
    full = f"{e.name}.{hname}" if e is not None else hname
    if h is None or not h.visible:
        errh.error(f"no '{full}' handler")
        return -1
    if not h.readable:
        errh.error(f"'{full}' is a write handler")
        return -1
    out = sys.stdout
    if print_name:
        out.write(f"{full}:\n")
    result = h.call_read("", errh)
    if not h.raw and result and not result.endswith("\n"):
        result += "\n"
    out.write(result)
    if print_name:
        out.write("\n")
    # No flush: like Click's stdio, stdout reaches a pipe or file at exit, after
    # any error messages on stderr.
    return 0


def call_read_handlers(router: Router, names: list[str], errh: ErrorHandler) -> int:
    before = errh.nerrors
    print_names = len(names) > 1
    for spec in names:
        dot = spec.find(".")
        if dot < 0:
            _call_read_handler(router, None, spec, print_names, errh)
            continue
        # The element part may contain dots only if such an element exists.
        dot = spec.rfind(".")
        ename, hname = spec[:dot], spec[dot + 1:]
        e = router.find(ename)
        if e is not None:
            _call_read_handler(router, e, hname, print_names, errh)
            continue
        is_pattern = any(c in ename for c in "?*[")
        matches = []
        any_match = False
        for x in router.elements:
            if (fnmatch.fnmatchcase(x.name, ename) if is_pattern else x.cast(ename) is not None):
                any_match = True
                h = router.handlers.find(x, hname)
                if h is not None and h.readable:
                    matches.append(x)
        if not any_match:
            errh.error(f"no element matching '{ename}'" if is_pattern else f"no element '{ename}'")
            continue
        for x in matches:
            _call_read_handler(router, x, hname, True, errh)
    return 0 if errh.nerrors == before else -1


class Driver:
    """Holds the running router, so hot-swap (``hotconfig``) can replace it."""

    def __init__(self, opts: DriverOptions, errh: ErrorHandler) -> None:
        self.opts = opts
        self.errh = errh
        clock = Clock()
        if opts.simtime is not None:
            clock.set_simulation(int(opts.simtime * 1e9) if opts.simtime else 10**18)
        self.master = Master(clock)
        self.router: Router | None = None
        self.running = False

    def _extra_handlers(self, router: Router) -> None:
        h = router.handlers
        clock = self.master.clock
        h.add_read(None, "timewarp", lambda: ("simulation" if clock.simulated else
                                             (repr(clock.speed) if clock.speed != 1.0 else "1")))
        if not clock.simulated:
            def write_timewarp(value: str, errh: ErrorHandler) -> None:
                from clickos.core.confparse import parse_double

                clock.set_speed(parse_double(value.strip()))
            h.add_write(None, "timewarp", write_timewarp)
        if self.opts.allow_reconfigure:
            from clickos.core.handlers import NONEXCLUSIVE, RAW

            h.add_write(None, "hotconfig", self._hotconfig, RAW | NONEXCLUSIVE)

    def _add_control_sockets(self, router: Router, hotswap: bool = False) -> None:
        from clickos.core import registry

        cls = registry.lookup("ControlSocket")
        if cls is None:
            return
        # A hot-swapped router's sockets adopt the running ones (take_state); as
        # in Click they are configured to retry quietly rather than fail to bind.
        retries = ", RETRIES 1, RETRY_WARNINGS false" if hotswap else ""
        n = 0
        for port in self.opts.ports:
            name = "click_driver@@ControlSocket" + (f"@{n}" if n else "")
            router.add_element(cls(), name, f"TCP, {port}{retries}", "click")
            n += 1
        for path in self.opts.unix_sockets:
            name = "click_driver@@ControlSocket" + (f"@{n}" if n else "")
            router.add_element(cls(), name, f"UNIX, {path}{retries}", "click")
            n += 1

    def parse(self, text: str, filename: str, hotswap: Router | None = None) -> Router | None:
        def extra(r: Router) -> None:
            self._add_control_sockets(r)
            r.extra_global_handlers.append(self._extra_handlers)

        return Router.from_text(text, filename, self.errh, defines=self.opts.defines, master=self.master,
                                hotswap_router=hotswap, extra=extra)

    def _hotconfig(self, value: str, errh: ErrorHandler) -> int:
        """The ``hotconfig`` write handler: build the new router now, swap it in
        from a task once the handler (and the ControlSocket command calling it)
        has returned, as Click does.  Errors go to ``errh``; -EINVAL on failure."""
        import errno

        from clickos.core.task import Task

        assert self.router is not None

        def extra(r: Router) -> None:
            self._add_control_sockets(r, hotswap=True)
            r.extra_global_handlers.append(self._extra_handlers)

        new = Router.from_text(value, "config", errh, defines=self.opts.defines, master=self.master,
                               hotswap_router=self.router, extra=extra)
        if new is None:
            return -errno.EINVAL
        # Registered and initialized, the new router keeps the driver alive (as in
        # Click) even if the old one stops before the swap task runs.
        new.pending_activation = True  # type: ignore[attr-defined]
        pending = getattr(self, "_hotswap_pending", None)
        if pending is not None:
            pending.cleanup()
        self._hotswap_pending: Router | None = new
        task = getattr(self, "_hotswap_task", None)
        if task is None:
            task = self._hotswap_task = Task(self._hotswap)
            task.master = self.master
        task.reschedule()
        return 0

    def _hotswap(self) -> bool:
        new, self._hotswap_pending = self._hotswap_pending, None
        if new is None:
            return False
        old = self.router
        new.pending_activation = False  # type: ignore[attr-defined]
        new.activate(self.errh)
        self.router = new
        if old is not None:
            old.cleanup()
        return True

    def run(self) -> int:
        opts, errh = self.opts, self.errh
        got = read_config_text(opts, errh)
        if got is None:
            return 1
        text, filename = got
        # Installed before the router initializes, so that elements which catch
        # signals themselves (Script TYPE SIGNAL) replace these, as in Click.
        signal.signal(signal.SIGINT, self._stop_signal)
        signal.signal(signal.SIGTERM, self._stop_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        router = self.parse(text, filename)
        if router is None:
            return 1
        self.router = router
        exit_value = 0
        if opts.output:
            s = router.handlers.find(None, "flatconfig").call_read()
            if opts.output == "-":
                sys.stdout.write(s)
                sys.stdout.flush()
            else:
                try:
                    with open(opts.output, "w") as f:
                        f.write(s)
                except OSError as e:
                    errh.error(f"{opts.output}: {e.strerror}")
                    exit_value = 1
        t0 = time.monotonic()
        ru0 = os.times()
        if not opts.quit and router.elements:
            self.running = True
            try:
                router.activate(errh)
                self.master.driver()
            finally:
                self.running = False
        elif not opts.quit and opts.warnings:
            where = "config" if opts.expr is not None else (opts.file or "<stdin>")
            errh.warning(f"{where}: configuration has no elements, exiting")
        if opts.report_time:
            ru1 = os.times()
            wall = time.monotonic() - t0
            print(f"{ru1.user - ru0.user:.3f}u {ru1.system - ru0.system:.3f}s "
                  f"{int(wall // 60)}:{wall % 60:05.2f}")
        router = self.router
        if opts.handlers and call_read_handlers(router, opts.handlers, errh) < 0:
            exit_value = 1
        if opts.exit_handler:
            before = errh.nerrors
            h = router.lookup_handler(opts.exit_handler, errh, want="read")
            s = h.call_read("", errh).strip() if h is not None else ""
            if errh.nerrors != before:
                exit_value = -1 & 0xFF
            else:
                try:
                    exit_value = int(s, 0)
                except ValueError:
                    if s in ("true", "false"):
                        exit_value = 0 if s == "true" else 1
                    else:
                        errh.error("exit handler value should be integer")
                        exit_value = 255
        sys.stdout.flush()
        # Click cleans up after the -h and -x handlers: sockets close, files flush.
        router.cleanup()
        self.master.close()
        return exit_value

    def _stop_signal(self, signo: int, _frame: object) -> None:
        if not self.running or self.router is None:
            signal.signal(signo, signal.SIG_DFL)
            os.kill(os.getpid(), signo)
            return
        self.router.set_runcount(STOP_RUNCOUNT)
