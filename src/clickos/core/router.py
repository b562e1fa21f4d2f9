"""The Router: one running configuration — its elements, connections and handlers.

Building a router follows Click's order, because Click's tests compare the
resulting error messages: create elements; check port ranges; resolve push and
pull through agnostic ports; check for reused or unused ports; configure every
element (in configure-phase order); add handlers; initialize every element.
Any failure reports ``Router could not be initialized!`` and cleans up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from clickos import CLICK_VERSION
from clickos.core import portspec
from clickos.core.element import (
    CLEANUP_BEFORE_CONFIGURE,
    CLEANUP_CONFIGURE_FAILED,
    CLEANUP_CONFIGURED,
    CLEANUP_INITIALIZE_FAILED,
    CLEANUP_INITIALIZED,
    Element,
)
from clickos.core.errors import ClickError, ConfigError, ContextErrorHandler, ErrorHandler
from clickos.core.handlers import CALM, HandlerTable
from clickos.core.master import Master
from clickos.core.notifier import NotifierSignal, SignalWord
from clickos.core.portspec import AGNOSTIC, PULL, PUSH
from clickos.packet.pool import PacketPool

if TYPE_CHECKING:
    from clickos.lang import FlatConfig

STOP_RUNCOUNT = -(1 << 31)


class Connection(tuple):
    """(from_index, from_port, to_index, to_port) plus a landmark."""

    landmark: str

    def __new__(cls, fe: int, fp: int, te: int, tp: int, landmark: str = "") -> Connection:
        c = super().__new__(cls, (fe, fp, te, tp))
        c.landmark = landmark
        return c


class Router:
    """A configuration's elements and connections, initialized and runnable."""

    def __init__(self, flat: FlatConfig | None = None, master: Master | None = None,
                 pool: PacketPool | None = None) -> None:
        self.flat = flat
        self.master = master or Master()
        self.pool = pool or PacketPool()
        self.elements: list[Element] = []
        self.connections: list[Connection] = []
        self.names: dict[str, Element] = {}
        self.handlers = HandlerTable(self)
        self.runcount = 1
        self.running = False
        self.initialized = False
        self.attachments: dict[str, Any] = {}
        self.schedule_info: dict[str, float] = {}
        self.hotswap_router: Router | None = None
        self.requirements: list[tuple[str, str]] = list(flat.requirements) if flat else []
        self._signal_words: dict[str, list[tuple[SignalWord, int]]] = {}
        self._stage: list[int] = []
        self._conn_in: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self._conn_out: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self.extra_global_handlers: list[Callable[[Router], None]] = []

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, filename: str, errh: ErrorHandler, *,
                  defines: dict[str, str] | None = None, master: Master | None = None,
                  initialize: bool = True, hotswap_router: Router | None = None,
                  extra: Callable[[Router], None] | None = None) -> Router | None:
        """Parse, build and (optionally) initialize a router; None on any error."""
        from clickos.core import registry
        from clickos.lang import parse_config

        reg = registry.load_all()
        flat = parse_config(text, filename, errh=errh, defines=defines, is_primitive=lambda n: n in reg)
        if flat is None:
            return None
        r = cls(flat, master)
        if hotswap_router is not None:
            r.hotswap_router = hotswap_router
        if not r.build(errh):
            return None
        if extra is not None:
            extra(r)
        if initialize and not r.initialize(errh):
            return None
        return r

    def build(self, errh: ErrorHandler) -> bool:
        """Instantiate the elements and record the connections of ``self.flat``."""
        from clickos.core import registry

        assert self.flat is not None
        before = errh.nerrors
        for fe in self.flat.elements:
            cls = registry.lookup(fe.class_name)
            if cls is None:
                errh.error(f"unknown element class '{fe.class_name}'", fe.landmark)
                continue
            self.add_element(cls(), fe.name, fe.config, fe.landmark)
        for c in self.flat.connections:
            self.connections.append(Connection(c.from_index, c.from_port, c.to_index, c.to_port, c.landmark))
        return errh.nerrors == before

    def add_element(self, e: Element, name: str, config: str = "", landmark: str = "") -> Element:
        e.router = self
        e.eindex = len(self.elements)
        e.name = name
        e.config_string = config
        e.landmark = landmark
        self.elements.append(e)
        self.names[name] = e
        if self.flat is not None and e.eindex >= len(self.flat.elements):
            # Elements added by the driver (ControlSocket for -p/-u) are part of the
            # configuration Click reports in flatconfig.
            from clickos.lang import FlatElement

            self.flat.elements.append(FlatElement(name, e.class_name(), config, landmark))
        return e

    def add_connection(self, fe: int, fp: int, te: int, tp: int) -> None:
        self.connections.append(Connection(fe, fp, te, tp))

    # -- lookup ------------------------------------------------------------------------
    def find(self, name: str, context: Element | str | None = None) -> Element | None:
        """Find an element by name, searching outward from a compound context."""
        if isinstance(context, Element):
            ctx = context.name
            slash = ctx.rfind("/")
            prefix = ctx[: slash + 1] if slash >= 0 else ""
        else:
            prefix = context or ""
        while True:
            e = self.names.get(prefix + name)
            if e is not None:
                return e
            if not prefix:
                return None
            slash = prefix.rfind("/", 0, len(prefix) - 1)
            prefix = prefix[: slash + 1] if slash >= 0 else ""

    def element(self, i: int) -> Element | None:
        return self.elements[i] if 0 <= i < len(self.elements) else None

    # -- initialization ------------------------------------------------------------------
    def _lerror(self, errh: ErrorHandler, e: Element, msg: str) -> None:
        errh.error(msg, e.landmark or None)

    def _check_ranges(self, errh: ErrorHandler) -> bool:
        before = errh.nerrors
        nin = [0] * len(self.elements)
        nout = [0] * len(self.elements)
        for fe, fp, te, tp in self.connections:
            nout[fe] = max(nout[fe], fp + 1)
            nin[te] = max(nin[te], tp + 1)
        for i, e in enumerate(self.elements):
            r = portspec.resolve_nports(e.get_port_count(), nin[i], nout[i])
            if r is None:
                self._lerror(errh, e, f"{e.declaration()}: bad port count")
                e.set_nports(0, 0)
            else:
                e.set_nports(*r)
        keep = []
        for c in self.connections:
            fe, fp, te, tp = c
            ok = True
            if fp >= self.elements[fe].noutputs:
                self._lerror(errh, self.elements[fe], f"'{self.elements[fe].declaration()}' has no output {fp}")
                ok = False
            if tp >= self.elements[te].ninputs:
                self._lerror(errh, self.elements[te], f"'{self.elements[te].declaration()}' has no input {tp}")
                ok = False
            if ok:
                keep.append(c)
        self.connections = keep
        return errh.nerrors == before

    def _check_push_pull(self, errh: ErrorHandler) -> bool:
        ins: dict[tuple[int, int], int] = {}
        outs: dict[tuple[int, int], int] = {}
        before = errh.nerrors
        for i, e in enumerate(self.elements):
            pv = portspec.processing_vector(e.get_processing(), e.ninputs, e.noutputs)
            if pv is None:
                self._lerror(errh, e, "bad processing code")
                pv = ([AGNOSTIC] * e.ninputs, [AGNOSTIC] * e.noutputs)
            for p, v in enumerate(pv[0]):
                ins[(i, p)] = v
            for p, v in enumerate(pv[1]):
                outs[(i, p)] = v
        self._declared = (dict(ins), dict(outs))
        conn: list[list[int]] = [list(c[:4]) for c in self.connections]
        nreal = len(conn)
        for i, e in enumerate(self.elements):
            for p in range(e.ninputs):
                if ins[(i, p)] == AGNOSTIC:
                    flow = self.port_flow(e, False, p)
                    for j, f in enumerate(flow):
                        if f and outs[(i, j)] == AGNOSTIC:
                            conn.append([i, j, i, p])
        changed = True
        while changed:
            changed = False
            for k, c in enumerate(conn):
                fe, fp, te, tp = c
                if fe < 0:
                    continue
                pf, pt = outs[(fe, fp)], ins[(te, tp)]
                if pt == AGNOSTIC:
                    if pf != AGNOSTIC:
                        ins[(te, tp)] = pf
                        changed = True
                elif pf == AGNOSTIC:
                    outs[(fe, fp)] = pt
                    changed = True
                elif pf != pt:
                    t1, t2 = ("push", "pull") if pf == PUSH else ("pull", "push")
                    ef, et = self.elements[fe], self.elements[te]
                    if k < nreal:
                        errh.error(f"'{ef.declaration()}' {t1} output {fp} connected to "
                                   f"'{et.declaration()}' {t2} input {tp}")
                    else:
                        errh.error(f"agnostic '{ef.declaration()}' in mixed context: "
                                   f"{t2} input {tp}, {t1} output {fp}")
                    c[0] = -1
        if errh.nerrors != before:
            return False
        for i, e in enumerate(self.elements):
            for p, port in enumerate(e.inputs):
                port.processing = PULL if ins[(i, p)] == PULL else PUSH
            for p, port in enumerate(e.outputs):
                port.processing = PULL if outs[(i, p)] == PULL else PUSH
        return True

    def _check_completeness(self, errh: ErrorHandler) -> bool:
        before = errh.nerrors
        used_in: dict[tuple[int, int], int] = {}
        used_out: dict[tuple[int, int], int] = {}
        for fe, fp, te, tp in set(c[:4] for c in self.connections):
            used_in[(te, tp)] = used_in.get((te, tp), 0) + 1
            used_out[(fe, fp)] = used_out.get((fe, fp), 0) + 1
        # reuse of active ports: inputs first, then outputs (Click's order)
        for (te, tp), n in sorted(used_in.items()):
            e = self.elements[te]
            if n > 1 and e.port_active(False, tp):
                self._lerror(errh, e, f"illegal reuse of '{e.declaration()}' pull input {tp}")
        for (fe, fp), n in sorted(used_out.items()):
            e = self.elements[fe]
            if n > 1 and e.port_active(True, fp):
                self._lerror(errh, e, f"illegal reuse of '{e.declaration()}' push output {fp}")
        for i, e in enumerate(self.elements):
            for p in range(e.ninputs):
                if (i, p) not in used_in:
                    self._lerror(errh, e, f"'{e.declaration()}' input {p} unused")
        for i, e in enumerate(self.elements):
            for p in range(e.noutputs):
                if (i, p) not in used_out:
                    self._lerror(errh, e, f"'{e.declaration()}' output {p} unused")
        return errh.nerrors == before

    def _set_connections(self) -> None:
        self._conn_in.clear()
        self._conn_out.clear()
        for fe, fp, te, tp in (c[:4] for c in self.connections):
            src, dst = self.elements[fe], self.elements[te]
            src.outputs[fp].connect(dst, tp)
            dst.inputs[tp].connect(src, fp)
            self._conn_out.setdefault((fe, fp), []).append((te, tp))
            self._conn_in.setdefault((te, tp), []).append((fe, fp))

    def configure_order(self) -> list[int]:
        return sorted(range(len(self.elements)), key=lambda i: (self.elements[i].configure_phase, i))

    def initialize(self, errh: ErrorHandler) -> bool:
        """Check, configure and initialize every element (Click's Router::initialize)."""
        from clickos.core.confparse import split_args

        if self.initialized:
            errh.error("second attempt to initialize router")
            return False
        order = self.configure_order()
        self._stage = [CLEANUP_BEFORE_CONFIGURE] * len(self.elements)
        all_ok = False
        if self._check_ranges(errh) and self._check_push_pull(errh) and self._check_completeness(errh):
            self._set_connections()
            all_ok = True
        self.runcount = 1
        self.master.register(self)
        if all_ok:
            # Click seeds its random generator from the clock here (one reading).
            self.master.clock.now()
            for i in order:
                e = self.elements[i]
                cerrh = ContextErrorHandler(errh, f"While configuring '{e.declaration()}':", e.landmark or None)
                try:
                    e.configure(split_args(e.config_string), cerrh)
                    ok = cerrh.nerrors == 0
                except ConfigError as ex:
                    for line in str(ex).split("\n"):
                        cerrh.error(line)
                    ok = False
                except ClickError as ex:
                    cerrh.error(str(ex))
                    ok = False
                if ok:
                    self._stage[i] = CLEANUP_CONFIGURED
                else:
                    self._stage[i] = CLEANUP_CONFIGURE_FAILED
                    all_ok = False
        if all_ok:
            from clickos.core import fastpath

            # before any element initializes: elements keep their output ports'
            # push functions from initialize on, and fusion reroutes some ports
            fastpath.build(self)
            self._add_global_handlers()
            for e in self.elements:
                self._add_default_handlers(e)
            for e in self.elements:
                e.add_handlers()
            for i in order:
                e = self.elements[i]
                cerrh = ContextErrorHandler(errh, f"While initializing '{e.declaration()}':", e.landmark or None)
                try:
                    e.initialize(cerrh)
                    ok = cerrh.nerrors == 0
                except ClickError as ex:
                    if str(ex):
                        for line in str(ex).split("\n"):
                            cerrh.error(line)
                    elif e.cast("Error") is None:
                        cerrh.error("unspecified error")
                    ok = False
                if ok:
                    self._stage[i] = CLEANUP_INITIALIZED
                else:
                    self._stage[i] = CLEANUP_INITIALIZE_FAILED
                    all_ok = False
                    break
        if not all_ok:
            errh.error("Router could not be initialized!")
            self.master.kill_router(self)
            self.master.unregister(self)
            for i in reversed(order):
                try:
                    self.elements[i].cleanup(self._stage[i])
                except Exception:  # noqa: BLE001 - cleanup must not mask the real error
                    pass
            self.runcount = 0
            return False
        self.initialized = True
        return True

    def activate(self, errh: ErrorHandler | None = None) -> None:
        """Start running: hand over hot-swap state, then let tasks and timers run."""
        if self.hotswap_router is not None:
            eh = errh or ErrorHandler(echo=False)
            for e in self.elements:
                old = e.hotswap_element()
                if old is not None:
                    try:
                        e.take_state(old, eh)
                    except ClickError as ex:
                        eh.error(str(ex))
            self.hotswap_router = None
        self.running = True

    def cleanup(self) -> None:
        """Stop and clean up every element (router teardown)."""
        self.master.kill_router(self)
        for path in self.attachments.get("fastpaths", ()):
            path.reset()   # stops a kernel compile still running in a child process
        for i in reversed(self.configure_order()):
            stage = self._stage[i] if i < len(self._stage) else CLEANUP_BEFORE_CONFIGURE
            try:
                self.elements[i].cleanup(stage)
            except Exception:  # noqa: BLE001
                pass
        self.master.unregister(self)

    # -- stopping ---------------------------------------------------------------------------
    def adjust_runcount(self, delta: int) -> None:
        self.runcount = max(STOP_RUNCOUNT, min(0x7FFFFFFF, self.runcount + delta))
        if self.runcount <= 0:
            self.master.request_stop()

    def set_runcount(self, rc: int) -> None:
        self.runcount = rc
        if rc <= 0:
            self.master.request_stop()

    def please_stop_driver(self) -> None:
        self.adjust_runcount(-1)

    # -- graph traversal ------------------------------------------------------------------
    def port_flow(self, e: Element, isoutput: bool, port: int) -> list[bool]:
        return portspec.port_flow(e.get_flow_code(), isoutput, port, e.ninputs, e.noutputs)

    def visit(self, first: Element, forward: bool, port: int,
              visitor: Callable[[Element, bool, int], bool]) -> bool:
        """Click's Router::visit: breadth-first over connections and flow codes.

        ``visitor(element, isoutput, port)`` is called on each port reached
        (inputs when going forward, outputs when going upstream); returning False
        stops the walk through that port.
        """
        if not self._conn_in and not self._conn_out and self.connections:
            return False
        conns = self._conn_out if forward else self._conn_in
        seen: set[tuple[int, int]] = set()
        n = first.nports(forward)
        sources = [(first.eindex, p) for p in (range(n) if port < 0 else ([port] if port < n else []))]
        while sources:
            nxt = []
            for sp in sources:
                for cp in sorted(conns.get(sp, ())):
                    if cp in seen:
                        continue
                    seen.add(cp)
                    e = self.elements[cp[0]]
                    if not visitor(e, not forward, cp[1]):
                        continue
                    flow = self.port_flow(e, not forward, cp[1])
                    for p, f in enumerate(flow):
                        if f:
                            nxt.append((cp[0], p))
            sources = nxt
        return True

    def upstream_elements(self, e: Element, port: int = -1) -> list[Element]:
        out: list[Element] = []
        self.visit(e, False, port, lambda x, o, p: (out.append(x) if x not in out else None) or True)
        return out

    def push_path_transparent(self, e: Element, port: int) -> bool:
        """Whether every element downstream of a push output is batch-transparent."""
        ok = [True]

        def visit(x: Element, isoutput: bool, p: int) -> bool:
            if not x.is_batch_transparent():
                ok[0] = False
                return False
            # The push path ends where packets are stored for pulling (a queue):
            # what happens downstream of it does not run within this push.
            return any(o.is_push for o in x.outputs)

        self.visit(e, True, port, visit)
        return ok[0]

    def downstream_elements(self, e: Element, port: int = -1) -> list[Element]:
        out: list[Element] = []
        self.visit(e, True, port, lambda x, o, p: (out.append(x) if x not in out else None) or True)
        return out

    # -- notifier signals ----------------------------------------------------------------
    def new_notifier_signal(self, name: str) -> NotifierSignal:
        words = self._signal_words.setdefault(name, [])
        count = sum(1 for _ in words)
        widx, bit = divmod(count, 32)
        if bit == 0:
            word = SignalWord(f"{name}.{widx}")
        else:
            word = words[-1][0]
        mask = 1 << bit
        words.append((word, mask))
        word.value |= mask
        return NotifierSignal([(word, mask)])

    # -- scheduling info -------------------------------------------------------------------
    def schedule_tickets(self, e: Element) -> int | None:
        """Tickets for ``e``'s tasks from ScheduleInfo (relative to 1024), or None."""
        if not self.schedule_info:
            return None
        parts = e.name.split("/")
        mult = 1.0
        found = False
        for k in range(1, len(parts) + 1):
            key = "/".join(parts[:k])
            if key in self.schedule_info:
                mult *= self.schedule_info[key]
                found = True
        return int(mult * 1024) if found else None

    # -- handlers ----------------------------------------------------------------------------
    def _add_default_handlers(self, e: Element) -> None:
        h = self.handlers
        h.add_read(e, "name", lambda: e.name, CALM)
        h.add_read(e, "class", lambda: e.class_name(), CALM)
        h.add_read(e, "config", lambda: e.config_string, CALM)
        if e.can_live_reconfigure():
            def write_config(value: str, errh: ErrorHandler) -> None:
                from clickos.core.confparse import split_args

                e.live_reconfigure(split_args(value), errh)
                e.config_string = value
            h.add_write(e, "config", write_config)
        h.add_read(e, "ports", lambda: self.ports_string(e), CALM)
        h.add_read(e, "handlers", lambda: self.handlers_string(e), CALM)

    def ports_string(self, e: Element) -> str:
        decl_in, decl_out = getattr(self, "_declared", ({}, {}))
        lines = [f"{e.ninputs} input" + ("" if e.ninputs == 1 else "s")]
        for p, port in enumerate(e.inputs):
            kind = "pull" if port.is_pull else "push"
            ag = "~" if decl_in.get((e.eindex, p)) == AGNOSTIC else ""
            peers = ", ".join(f"{self.elements[fe].name} [{fp}]"
                              for fe, fp, te, tp in (c[:4] for c in self.connections)
                              if te == e.eindex and tp == p)
            lines.append(f"{kind}{ag}\t-\t{peers}")
        lines.append(f"{e.noutputs} output" + ("" if e.noutputs == 1 else "s"))
        for p, port in enumerate(e.outputs):
            kind = "push" if port.is_push else "pull"
            ag = "~" if decl_out.get((e.eindex, p)) == AGNOSTIC else ""
            peers = ", ".join(f"[{tp}] {self.elements[te].name}"
                              for fe, fp, te, tp in (c[:4] for c in self.connections)
                              if fe == e.eindex and fp == p)
            lines.append(f"{kind}{ag}\t-\t{peers}")
        return "\n".join(lines) + "\n"

    def handlers_string(self, e: Element | None) -> str:
        from clickos.core import handlers as hf

        out = []
        # Click lists handlers most recently added first.
        for h in reversed(self.handlers.element_handlers(e)):
            if not h.visible:
                continue
            s = h.name + "\t"
            s += "r" if h.readable else ""
            s += "w" if h.writable else ""
            s += "+" if h.read_param else ""
            s += "%" if h.flags & hf.RAW else ""
            s += "." if h.flags & hf.CALM else ""
            s += "$" if h.flags & hf.EXPENSIVE else ""
            s += "U" if h.flags & hf.UNCOMMON else ""
            s += "D" if h.flags & hf.DEPRECATED else ""
            s += "b" if h.flags & hf.BUTTON else ""
            s += "c" if h.flags & hf.CHECKBOX else ""
            out.append(s)
        return "".join(x + "\n" for x in out)

    def _add_global_handlers(self) -> None:
        from clickos.core import registry

        h = self.handlers
        h.add_read(None, "version", lambda: CLICK_VERSION)
        h.add_read(None, "driver", lambda: "userlevel")
        h.add_read(None, "config", lambda: self.flat.config_string() if self.flat else "")
        h.add_read(None, "flatconfig", lambda: self.flat.unparse() if self.flat else "")
        h.add_read(None, "requirements",
                   lambda: "".join((f"{k} {v}" if v else k) + "\n" for k, v in self.requirements))
        h.add_read(None, "handlers", lambda: self.handlers_string(None))
        h.add_read(None, "list",
                   lambda: f"{len(self.elements)}\n" + "".join(e.name + "\n" for e in self.elements))
        h.add_read(None, "classes", lambda: "".join(n + "\n" for n in registry.class_names()))
        h.add_read(None, "packages", lambda: "")

        def write_stop(value: str, errh: ErrorHandler) -> None:
            n = 1
            try:
                n = int(value.strip()) if value.strip() else 1
            except ValueError:
                pass
            self.adjust_runcount(-n)

        h.add_write(None, "stop", write_stop)
        for fn in self.extra_global_handlers:
            fn(self)

    # -- handler calls by name (used by Script, the CLI and ControlSocket) --------------
    def call_read(self, full: str, errh: ErrorHandler, context: Element | None = None) -> str | None:
        h = self.lookup_handler(full, errh, context, want="read")
        if h is None:
            return None
        param = ""
        if " " in full.strip():
            param = full.strip().split(None, 1)[1]
        return h.call_read(param, errh)

    def lookup_handler(self, full: str, errh: ErrorHandler | None, context: Element | None = None,
                       want: str = "read") -> Any:
        """Find a handler by Click name (``e.h``, ``N.h``, global ``h``); report errors."""
        name = full.strip().split(None, 1)[0] if full.strip() else ""
        dot = name.rfind(".")
        target: Element | None = None
        hname = name
        if dot >= 0:
            ename, hname = name[:dot], name[dot + 1:]
            target = self.find(ename, context) if ename else None
            if target is None and ename.isdigit():
                i = int(ename)
                target = self.elements[i - 1] if 1 <= i <= len(self.elements) else None
            if target is None:
                if errh is not None:
                    errh.error(f"no element named '{ename}'")
                return None
        h = self.handlers.find(target, hname)
        label = f"{target.name}.{hname}" if target is not None else hname
        if h is None or not h.visible:
            if errh is not None:
                errh.error(f"no '{label}' handler")
            return None
        if want == "read" and not h.readable:
            if errh is not None:
                errh.error(f"'{label}' is a write handler")
            return None
        if want == "write" and not h.writable:
            if errh is not None:
                errh.error(f"'{label}' is a read handler")
            return None
        return h
