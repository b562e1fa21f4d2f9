"""Notifiers: how pull tasks learn that packets wait upstream, and push sources
learn that space is free downstream, so that idle tasks sleep instead of spin.

A signal is one bit in a router-owned 32-bit word; words are named
``empty.0``, ``full.0`` ... as in Click, and ``NotifierSignal.unparse`` prints
the same ``name/mask:value*`` text that Click's NotifierDebug prints.  A
derived signal (e.g. a scheduler's view of all its queues) is the OR of several
bits; it is active when any of them is set.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clickos.core.element import Element
    from clickos.core.router import Router

EMPTY = "empty"
FULL = "full"

SEARCH_STOP, SEARCH_CONTINUE, SEARCH_CONTINUE_WAKE = 0, 1, 2


_word_order = itertools.count()


class SignalWord:
    """A 32-bit word of signal bits, shared by up to 32 notifiers.

    ``order`` is the creation order; a derived signal lists its words in that
    order (Click sorts them by address, which follows creation for a name).
    """

    __slots__ = ("value", "name", "order")

    def __init__(self, name: str) -> None:
        self.value = 0
        self.name = name
        self.order = next(_word_order)


class NotifierSignal:
    """A set of (word, mask) bits, or one of the special signals.

    Special kinds: "busy" (always active), "idle" (never), "overderived"
    (always active: too complex to track), "uninitialized".
    """

    __slots__ = ("parts", "kind")

    def __init__(self, parts: list[tuple[SignalWord, int]] | None = None, kind: str = "") -> None:
        self.parts = parts or []
        self.kind = kind if parts is None else ""

    @classmethod
    def busy(cls) -> NotifierSignal:
        return cls(None, "busy")

    @classmethod
    def idle(cls) -> NotifierSignal:
        return cls(None, "idle")

    @classmethod
    def uninitialized(cls) -> NotifierSignal:
        return cls(None, "uninitialized")

    def active(self) -> bool:
        if self.kind:
            return self.kind in ("busy", "overderived")
        for w, m in self.parts:
            if w.value & m:
                return True
        return False

    __bool__ = active

    def is_busy(self) -> bool:
        return self.kind == "busy"

    def is_idle(self) -> bool:
        return self.kind == "idle"

    def initialized(self) -> bool:
        return self.kind != "uninitialized"

    def set_active(self, on: bool) -> None:
        for w, m in self.parts:
            w.value = (w.value | m) if on else (w.value & ~m)

    def __iadd__(self, x: NotifierSignal) -> NotifierSignal:
        # Mirrors Click's NotifierSignal::operator+=: busy wins, idle is neutral.
        if self.kind == "idle" or (x.kind == "busy" and self.kind != "busy") or not x.initialized():
            self.parts, self.kind = list(x.parts), x.kind
        elif self.kind == "busy" or not self.initialized() or x.kind == "idle":
            pass
        elif x.kind == "overderived" or self.kind == "overderived":
            self.parts, self.kind = [], "overderived"
        else:
            for w, m in x.parts:
                for i, (w2, m2) in enumerate(self.parts):
                    if w2 is w:
                        self.parts[i] = (w2, m2 | m)
                        break
                    if w2.order > w.order:
                        self.parts.insert(i, (w, m))
                        break
                else:
                    self.parts.append((w, m))
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NotifierSignal):
            return NotImplemented
        return self.kind == other.kind and [(id(w), m) for w, m in self.parts] == [
            (id(w), m) for w, m in other.parts]

    __hash__ = None  # type: ignore[assignment]

    def unparse(self, router: Router | None = None) -> str:
        if self.kind:
            return {"busy": "busy*", "idle": "idle", "overderived": "overderived*",
                    "uninitialized": "uninitialized"}[self.kind]
        out = []
        for w, m in self.parts:
            v = w.value & m
            out.append(f"{w.name}/{m:x}:{v:x}" + ("*" if v else ""))
        return "+".join(out)


class Notifier:
    """A notifier: owns one signal bit and wakes listener tasks when it turns on."""

    def __init__(self, search_op: int = SEARCH_STOP) -> None:
        self.signal = NotifierSignal.uninitialized()
        self.search_op = search_op
        self.listeners: list[Any] = []
        self.callbacks: list[Any] = []

    def initialize(self, name: str, router: Router) -> None:
        if not self.signal.initialized():
            self.signal = router.new_notifier_signal(name)

    def active(self) -> bool:
        return self.signal.active()

    def add_listener(self, task: Any) -> None:
        if task not in self.listeners:
            self.listeners.append(task)

    def remove_listener(self, task: Any) -> None:
        if task in self.listeners:
            self.listeners.remove(task)

    def add_activate_callback(self, cb: Any) -> None:
        self.callbacks.append(cb)

    def set_active(self, on: bool, wake: bool = True) -> None:
        was = self.signal.active()
        self.signal.set_active(on)
        if on and wake and not was:
            self.wake()

    def wake(self) -> None:
        for t in self.listeners:
            t.reschedule()
        for cb in self.callbacks:
            cb(self)

    def sleep(self) -> None:
        self.set_active(False)

    def unparse(self, router: Router | None = None) -> str:
        lines = [self.signal.unparse(router)]
        for t in self.listeners:
            e = t.element
            decl = f"[{e.declaration()}] " if e is not None else ""
            lines.append(f"task {decl}{'scheduled' if t.scheduled else 'unscheduled'}")
        return "\n".join(lines) + "\n"


def _search(router: Router, element: Element, port: int, forward: bool, kind: str,
            listener: Any) -> NotifierSignal:
    """Walk the graph from ``element``'s port, collecting notifiers of ``kind``."""
    found: list[Notifier] = []
    sig = NotifierSignal.idle()
    need_pass2 = False

    def visit(e: Element, isoutput: bool, p: int, pass2: bool) -> bool:
        nonlocal sig, need_pass2
        n = e.notifier(isoutput, p, kind)
        if n is not None:
            if n not in found:
                found.append(n)
            if not n.signal.initialized():
                n.initialize(kind, router)
            sig += n.signal
            if n.search_op == SEARCH_CONTINUE_WAKE and not pass2:
                need_pass2 = True
                return False
            return n.search_op != SEARCH_STOP
        if p >= 0:
            if e.port_active(isoutput, p):
                sig = NotifierSignal.busy()
                return False
            flow = router.port_flow(e, isoutput, p)
            if not any(flow) and e.flag_value("S") != 0:
                sig = NotifierSignal.busy()
                return False
        return True

    ok = router.visit(element, forward, port, lambda e, o, p: visit(e, o, p, False))
    # As in Click, the signal is the first pass's; a second pass (past notifiers
    # that ask for it, like DelayShaper's) only registers the listener further on.
    result = NotifierSignal(list(sig.parts)) if not sig.kind else NotifierSignal(None, sig.kind)
    if ok and result != NotifierSignal.busy() and need_pass2:
        ok = router.visit(element, forward, port, lambda e, o, p: visit(e, o, p, True))
    if not ok or result.kind == "busy":
        return NotifierSignal.busy()
    if listener is not None:
        for n in found:
            if callable(listener) and not hasattr(listener, "reschedule"):
                n.add_activate_callback(listener)
            else:
                n.add_listener(listener)
    return result


def upstream_empty_signal(element: Element, port: int, listener: Any = None) -> NotifierSignal:
    """The signal that is active when some packet may be waiting upstream of an input."""
    return _search(element.router, element, port, False, EMPTY, listener)


def downstream_full_signal(element: Element, port: int, listener: Any = None) -> NotifierSignal:
    """The signal that is active when the queues downstream of an output have room."""
    return _search(element.router, element, port, True, FULL, listener)
