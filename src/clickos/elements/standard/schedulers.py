"""Pull schedulers: RoundRobinSched, PrioSched, StrideSched, TimeSortedSched, and the
PullSwitch / SimplePullSwitch input selectors (plus the notifier-less
SimpleRoundRobinSched and SimplePrioSched).

A pull of ``max`` packets is answered as a sequence of single-packet pulls
would be, so the order in which inputs are served is Click's; the packets are
returned together as one batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import parse_bool, parse_int
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CHECKBOX
from clickos.core.notifier import SEARCH_CONTINUE_WAKE, Notifier, NotifierSignal, upstream_empty_signal
from clickos.elements.standard.queues import EMPTY
from clickos.packet.batch import PacketBatch

STRIDE1 = 1 << 16
MAX_TICKETS = 1 << 15
U32 = 0xFFFFFFFF


def _batch(e: Element, parts: list[np.ndarray]) -> PacketBatch | None:
    if not parts:
        return None
    return PacketBatch(e.router.pool, parts[0] if len(parts) == 1 else np.concatenate(parts))


class RoundRobinSched(Element):
    """RoundRobinSched

    Pulls from its inputs in round-robin order.

    Each pull on the output tries the inputs in turn, starting with the one
    after the input that last produced a packet, until one produces a packet.
    Inputs whose upstream notifiers say they are empty are skipped without
    being pulled.  Any number of inputs, one output.

    Example::

        q1 :: Queue -> [0] rr :: RoundRobinSched;
        q2 :: Queue -> [1] rr;
        rr -> Unqueue -> Discard;
    """

    port_count = "-/1"
    processing = "l"
    flags = "S0"
    use_signals = True

    def __init__(self) -> None:
        super().__init__()
        self.next = 0
        self.signals: list[NotifierSignal] = []

    def initialize(self, errh: ErrorHandler) -> None:
        if self.use_signals:
            self.signals = [upstream_empty_signal(self, i) for i in range(self.ninputs)]
        else:
            self.signals = [NotifierSignal.busy() for _ in range(self.ninputs)]

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        n = self.ninputs
        if n == 0:
            return None
        inputs, signals = self.inputs, self.signals
        if n == 1:
            # One input: every pull goes there, so a batch pull is the same as many pulls.
            return inputs[0].pull(max) if signals[0].active() else None
        i = self.next
        if max == 1:
            for _ in range(n):
                b = inputs[i].pull(1) if signals[i].active() else None
                i += 1
                if i >= n:
                    i = 0
                if b is not None:
                    self.next = i
                    return b
            return None
        got: list[np.ndarray] = []
        total = 0
        fails = 0
        while total < max and fails < n:
            b = inputs[i].pull(1) if signals[i].active() else None
            i += 1
            if i >= n:
                i = 0
            if b is not None:
                got.append(b.idx)
                total += 1
                fails = 0
                self.next = i
            else:
                fails += 1
        return _batch(self, got)


class SimpleRoundRobinSched(RoundRobinSched):
    """SimpleRoundRobinSched

    Pulls from its inputs in round-robin order, without notification.

    Like RoundRobinSched, but pulls every input in turn whether or not its
    upstream reports packets waiting.

    Example: ``q1 -> [0] s :: SimpleRoundRobinSched -> sink; q2 -> [1] s``
    """

    use_signals = False


class PrioSched(Element):
    """PrioSched

    Pulls from its inputs in strict priority order.

    Each pull on the output tries input 0 first, then input 1, and so on,
    returning the first packet found; a lower-numbered input that always has
    packets starves the others.  Inputs whose upstream notifiers say they are
    empty are skipped.  Any number of inputs, one output.

    Example::

        urgent :: Queue -> [0] p :: PrioSched;
        bulk :: Queue -> [1] p;
        p -> Unqueue -> Discard;
    """

    port_count = "-/1"
    processing = "l"
    flags = "S0"
    use_signals = True

    def __init__(self) -> None:
        super().__init__()
        self.signals: list[NotifierSignal] = []

    def initialize(self, errh: ErrorHandler) -> None:
        if self.use_signals:
            self.signals = [upstream_empty_signal(self, i) for i in range(self.ninputs)]
        else:
            self.signals = [NotifierSignal.busy() for _ in range(self.ninputs)]

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        inputs, signals = self.inputs, self.signals
        if max == 1:
            for i in range(len(inputs)):
                if signals[i].active():
                    b = inputs[i].pull(1)
                    if b is not None:
                        return b
            return None
        got: list[np.ndarray] = []
        remaining = max
        while remaining > 0:
            for i in range(len(inputs)):
                if signals[i].active():
                    b = inputs[i].pull(remaining)
                    if b is not None:
                        got.append(b.idx)
                        remaining -= len(b)
                        break
            else:
                break
        return _batch(self, got)


class SimplePrioSched(PrioSched):
    """SimplePrioSched

    Pulls from its inputs in strict priority order, without notification.

    Like PrioSched, but tries every input in order whether or not its upstream
    reports packets waiting.

    Example: ``hi -> [0] s :: SimplePrioSched -> sink; lo -> [1] s``
    """

    use_signals = False


def _pass_gt(a: int, b: int) -> bool:
    d = (a - b) & U32
    return 0 < d < 0x80000000


class _Client:
    __slots__ = ("port", "pass_", "stride", "tickets", "signal")

    def __init__(self, port: int) -> None:
        self.port = port
        self.pass_ = 0
        self.stride = 0
        self.tickets = -1
        self.signal = NotifierSignal.busy()

    def set_tickets(self, t: int) -> None:
        self.tickets = t
        self.stride = STRIDE1 // t if t else 0

    def do_stride(self) -> None:
        self.pass_ = (self.pass_ + self.stride) & U32


def _insert(lst: list[_Client], c: _Client) -> None:
    """Insert ``c`` before the first client whose pass is not smaller than its own."""
    for j, other in enumerate(lst):
        if not _pass_gt(c.pass_, other.pass_):
            lst.insert(j, c)
            return
    lst.append(c)


class StrideSched(Element):
    """StrideSched(TICKETS0, ..., TICKETSn-1)

    Pulls from its inputs by stride scheduling.

    Input i gets TICKETSi tickets; over time it is served in proportion to
    its tickets.  Each pull on the output tries the inputs in stride order
    until one produces a packet; an input that produced nothing is not tried
    again during that pull.  Inputs with 0 tickets are never pulled.  Inputs
    whose upstream notifiers say they are empty are skipped.  There must be
    exactly one argument per input.

    Handlers: ``ticketsI`` (read/write) for each input I; ``config`` (read).

    Example: ``a -> [0] s :: StrideSched(3, 1) -> sink; b -> [1] s``
    (input 0 gets three quarters of the pulls).
    """

    port_count = "1-/1"
    processing = "l"
    flags = "S0"

    def __init__(self) -> None:
        super().__init__()
        self.clients: list[_Client] = []
        self.order: list[_Client] = []

    def can_live_reconfigure(self) -> bool:
        return True

    def nclients(self) -> int:
        return self.ninputs if self.input_is_pull(0) else self.noutputs

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        n = self.nclients()
        if len(conf) != n:
            kind = "input" if self.processing == "l" else "output"
            raise ConfigError(f"need {n} arguments, one per {kind} port")
        first = not self.clients
        if first:
            self.clients = [_Client(i) for i in range(n)]
        bad = False
        for i, arg in enumerate(conf):
            try:
                v = parse_int(arg)
            except ConfigError:
                errh.error(f"argument {i} should be number of tickets (integer)")
                bad = True
                continue
            if v < 0:
                errh.error(f"argument {i} (number of tickets) must be >= 0")
                bad = True
                continue
            if v > MAX_TICKETS:
                errh.warning(f"input {i}'s tickets reduced to {MAX_TICKETS}")
                v = MAX_TICKETS
            c = self.clients[i]
            c.set_tickets(v)
            if first:
                c.do_stride()
        # inserted in reverse so that ties are served in port order
        self.order = []
        for c in reversed(self.clients):
            if c.tickets > 0:
                _insert(self.order, c)
        if bad:
            return  # the errors were reported to errh, which fails the configuration

    def initialize(self, errh: ErrorHandler) -> None:
        if self.input_is_pull(0):
            for c in self.clients:
                c.signal = upstream_empty_signal(self, c.port)

    def _pull1(self) -> PacketBatch | None:
        order = self.order
        b = None
        k = 0
        for c in order:
            if b is not None:
                break
            if c.signal.active():
                b = self.inputs[c.port].pull(1)
            c.do_stride()
            k += 1
        stridden = order[:k]
        rest = order[k:]
        for c in stridden:
            _insert(rest, c)
        self.order = rest
        return b

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        if max == 1:
            return self._pull1()
        got: list[np.ndarray] = []
        for _ in range(max):
            b = self._pull1()
            if b is None:
                break
            got.append(b.idx)
        return _batch(self, got)

    def tickets(self, port: int) -> int:
        return self.clients[port].tickets if 0 <= port < len(self.clients) else -1

    def set_tickets(self, port: int, tickets: int, errh: ErrorHandler) -> None:
        if not 0 <= port < len(self.clients):
            raise ConfigError(f"port {port} out of range")
        if tickets < 0:
            raise ConfigError("number of tickets must be >= 0")
        if tickets > MAX_TICKETS:
            errh.warning(f"port {port}'s tickets reduced to {MAX_TICKETS}")
            tickets = MAX_TICKETS
        c = self.clients[port]
        old = c.tickets
        c.set_tickets(tickets)
        if tickets == 0 and old != 0:
            if c in self.order:
                self.order.remove(c)
        elif tickets != 0 and old == 0:
            c.pass_ = ((self.order[0].pass_ + c.stride) & U32) if self.order else 0
            _insert(self.order, c)

    def add_handlers(self) -> None:
        for i in range(len(self.clients)):
            def read(i: int = i) -> int:
                return self.tickets(i)

            def write(value: str, errh: ErrorHandler, i: int = i) -> None:
                try:
                    t = parse_int(value.strip())
                except ConfigError:
                    raise ConfigError("tickets value must be integer") from None
                self.set_tickets(i, t, errh)

            self.add_read_handler(f"tickets{i}", read)
            self.add_write_handler(f"tickets{i}", write)
        self.add_read_handler("config", lambda: ", ".join(str(c.tickets) for c in self.clients))


# -- Click's binary heap (smallest first), whose tie order TimeSortedSched's output shows.

def _heap_push(heap: list[Any], key: Any) -> None:
    i = len(heap) - 1
    while i > 0:
        parent = (i - 1) // 2
        if not key(heap[i]) < key(heap[parent]):
            break
        heap[i], heap[parent] = heap[parent], heap[i]
        i = parent


def _heap_pop(heap: list[Any], key: Any) -> Any:
    top = heap[0]
    last = heap.pop()
    if heap:
        heap[0] = last
        i, size = 0, len(heap)
        while True:
            smallest, trial = i, 2 * i + 1
            if trial < size and key(heap[trial]) < key(heap[smallest]):
                smallest = trial
            if trial + 1 < size and key(heap[trial + 1]) < key(heap[smallest]):
                smallest = trial + 1
            if smallest == i:
                break
            heap[i], heap[smallest] = heap[smallest], heap[i]
            i = smallest
    return top


class TimeSortedSched(Element):
    """TimeSortedSched([KEYWORDS])

    Merges sorted packet streams by timestamp.

    Answers each pull with the packet having the earliest timestamp among the
    packets buffered from its inputs.  Each input stream should already be in
    timestamp order; the ``well_ordered`` handler reports false if the output
    came out of order anyway.  Inputs are pulled only while their upstream
    notifiers say packets may wait, and TimeSortedSched itself provides an
    "empty" notifier that is on while any input may have packets.

    Keyword arguments:

    - STOP (boolean): stop the driver once no packets are buffered and no
      upstream notifier is active.  Default false.
    - BUFFER (integer >= 1): packets buffered per input.  Default 1; larger
      values absorb small reorderings in the inputs.

    Handlers: ``well_ordered`` (read).

    Example::

        tss :: TimeSortedSched(STOP true);
        FromDump(a.pcap) -> [0] tss;
        FromDump(b.pcap) -> [1] tss;
        tss -> ToDump(merged.pcap);
    """

    port_count = "-/1"
    processing = "l"
    flags = "S0"

    def __init__(self) -> None:
        super().__init__()
        self.note = Notifier(SEARCH_CONTINUE_WAKE)
        self.stop = False
        self.buffer = 1
        self.well_ordered = True
        self.last_emission = 0
        self.heap: list[tuple[int, int]] = []  # (slot, input)
        self.signals: list[NotifierSignal] = []
        self.space: list[int] = []
        self.ready: list[int] = []
        self.nready = 0

    def notifier(self, isoutput: bool, port: int, kind: str) -> Notifier | None:
        return self.note if kind == EMPTY else None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.note.initialize(EMPTY, self.router)
        a = Args(conf, self)
        self.stop = a.read("STOP", parse_bool, False)
        self.buffer = a.read("BUFFER", parse_int, 1)
        a.complete()
        if self.buffer <= 0:
            raise ConfigError("BUFFER must be at least 1")

    def initialize(self, errh: ErrorHandler) -> None:
        n = self.ninputs
        dep = lambda _n: self.note.signal.set_active(True)  # noqa: E731
        self.signals = [upstream_empty_signal(self, i, dep) for i in range(n)]
        self.space = [self.buffer] * n
        self.ready = list(range(n))
        self.nready = n

    def cleanup(self, stage: int) -> None:
        if self.heap:
            self.router.pool.release(np.array([s for s, _ in self.heap], np.int32))
            self.heap = []

    def _pull1(self) -> PacketBatch | None:
        pool = self.router.pool
        ts = pool.ts
        heap = self.heap
        key = lambda e: int(ts[e[0]])  # noqa: E731
        signals_on = False
        for rpos in range(self.nready - 1, -1, -1):
            i = self.ready[rpos]
            if self.signals[i].active():
                signals_on = True
                while True:
                    b = self.inputs[i].pull(1)
                    if b is None:
                        break
                    heap.append((int(b.idx[0]), i))
                    _heap_push(heap, key)
                    self.space[i] -= 1
                    if not self.space[i]:
                        self.ready[rpos] = self.ready[self.nready - 1]
                        self.nready -= 1
                        break
        self.note.signal.set_active(bool(heap) or signals_on)
        if heap:
            slot, i = heap[0]
            t = int(ts[slot])
            if t:
                if self.last_emission and t < self.last_emission:
                    self.well_ordered = False
                self.last_emission = t
            self.space[i] += 1
            if self.space[i] == 1:
                if self.nready < len(self.ready):
                    self.ready[self.nready] = i
                else:
                    self.ready.append(i)
                self.nready += 1
            _heap_pop(heap, key)
            return PacketBatch.one(pool, slot)
        if self.stop and not signals_on:
            self.router.please_stop_driver()
        return None

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        if max == 1:
            return self._pull1()
        got: list[np.ndarray] = []
        for _ in range(max):
            b = self._pull1()
            if b is None:
                break
            got.append(b.idx)
        return _batch(self, got)

    def add_handlers(self) -> None:
        self.add_read_handler("well_ordered", lambda: self.well_ordered, CHECKBOX)


class SimplePullSwitch(Element):
    """SimplePullSwitch([INPUT])

    Forwards pulls to one selectable input, without notification.

    Each pull on the output is passed to input INPUT (default 0); a negative or
    out-of-range INPUT makes every pull return nothing.  Any number of inputs.
    SimplePullSwitch provides no notifier of its own, so pullers downstream see
    the combined signal of all its inputs.

    Handlers: ``switch`` (read/write) the selected input; ``config`` (read).

    Example: ``a -> [0] s :: SimplePullSwitch(1) -> sink; b -> [1] s``
    """

    port_count = "-/1"
    processing = "l"

    def __init__(self) -> None:
        super().__init__()
        self.input_ = 0

    def can_live_reconfigure(self) -> bool:
        return True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        k = a.read_p("INPUT", parse_int, 0)
        a.complete()
        self.set_input(k)

    def set_input(self, k: int) -> None:
        self.input_ = -1 if k < 0 or k >= self.ninputs else k

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        if self.input_ < 0:
            return None
        return self.inputs[self.input_].pull(max)

    def add_handlers(self) -> None:
        self.add_read_handler("switch", lambda: self.input_)

        def write(value: str, errh: ErrorHandler) -> None:
            try:
                k = parse_int(value.strip())
            except ConfigError:
                raise ConfigError("syntax error") from None
            self.set_input(k)

        self.add_write_handler("switch", write)
        self.add_read_handler("config", lambda: self.input_)


class PullSwitch(SimplePullSwitch):
    """PullSwitch([INPUT])

    Forwards pulls to one selectable input, with notification.

    Each pull on the output is passed to input INPUT (default 0); a negative
    INPUT makes every pull return nothing.  Unlike SimplePullSwitch, PullSwitch
    has its own "empty" notifier that follows the *selected* input only, so a
    puller downstream sleeps while that input is dormant even if others have
    packets, and wakes when the selection changes to a busy input.

    Handlers: ``switch`` (read/write); ``config`` (read).

    Example: ``q1 -> [0] ps :: PullSwitch(0) -> Unqueue -> sink; q2 -> [1] ps``
    """

    def __init__(self) -> None:
        super().__init__()
        self.note = Notifier()
        self.signals: list[NotifierSignal] = []

    def cast(self, name: str) -> Any:
        if name == "SimplePullSwitch":
            return self
        return super().cast(name)

    def notifier(self, isoutput: bool, port: int, kind: str) -> Notifier | None:
        return self.note if kind == EMPTY else None

    def _wake_callback(self, _n: Notifier) -> None:
        k = self.input_
        if k >= 0 and not self.note.active() and self.signals[k].active():
            self.note.set_active(True)

    def initialize(self, errh: ErrorHandler) -> None:
        self.note.initialize(EMPTY, self.router)
        self.note.signal.set_active(self.input_ >= 0)
        self.signals = [upstream_empty_signal(self, i, self._wake_callback) for i in range(self.ninputs)]

    def set_input(self, k: int) -> None:
        self.input_ = -1 if k < 0 or k >= self.ninputs else k
        if not self.note.signal.initialized() or not self.signals:
            return  # called from configure
        if self.input_ < 0:
            self.note.signal.set_active(False)
        elif self.signals[self.input_].active():
            self.note.set_active(True)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        k = self.input_
        sig = self.note.signal
        if k < 0:
            sig.set_active(False)
            return None
        b = self.inputs[k].pull(max)
        if b is not None:
            sig.set_active(True)
            return b
        if not self.signals[k].active():
            sig.set_active(False)
        return None
