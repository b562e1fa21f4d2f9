"""Packet sinks: Discard and Idle."""

from __future__ import annotations

from clickos.core.args import Args
from clickos.core.confparse import parse_bool, parse_unsigned
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON, CHECKBOX
from clickos.core.notifier import Notifier, NotifierSignal, upstream_empty_signal
from clickos.core.task import Task
from clickos.packet.batch import PacketBatch


class Discard(Element):
    """Discard([KEYWORDS])

    Drops every packet it receives.

    In push context, packets are freed as they arrive.  In pull context Discard
    runs a task that pulls packets (up to BURST per run) and frees them, sleeping
    while upstream notifiers say no packet waits.

    Keyword arguments:

    - ACTIVE (boolean): pull context only; whether the task runs.  Default true.
    - BURST (unsigned): pull context only; packets per task run (0 = no limit).
      Default 1.

    Handlers: ``count`` (read) packets discarded; ``reset_counts`` (write) zero
    the count; in pull context also ``active`` (read/write) and task handlers.

    Example: ``FromDevice(0) -> Discard``
    """

    batch_transparent = True
    port_count = "1/0"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.active = True
        self.burst = 1
        self.task: Task | None = None
        self.signal = NotifierSignal.busy()

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.active = a.read("ACTIVE", parse_bool, default=True)
        self.burst = a.read("BURST", parse_unsigned, default=1)
        a.complete()
        if not self.active and self.input_is_push(0):
            raise ConfigError("ACTIVE is meaningless in push context")
        if self.burst == 0:
            self.burst = 1 << 32
        if self.input_is_pull(0):
            self.task = Task(self.run_task, self)

    def initialize(self, errh: ErrorHandler) -> None:
        if self.task is not None:
            self.task.initialize(self, self.active)
            self.signal = upstream_empty_signal(self, 0, self.task)
        pool = self.router.pool
        self._pool = pool

    def push(self, port: int, batch: PacketBatch) -> None:
        idx = batch.idx
        n = len(idx)
        self.count += n
        pool = self._pool
        top = pool.nfree
        pool.free[top: top + n] = idx
        pool.nfree = top + n

    def run_task(self) -> bool:
        b = self.inputs[0].pull(self.burst)
        sent = 0
        if b is not None:
            sent = len(b)
            b.kill()
            self.count += sent
        if self.active and (sent or self.signal.active()):
            assert self.task is not None
            self.task.fast_reschedule()
        return sent != 0

    def add_handlers(self) -> None:
        self.add_read_handler("count", lambda: self.count)

        def reset(value: str, errh: ErrorHandler) -> None:
            self.count = 0

        self.add_write_handler("reset_counts", reset, BUTTON)
        if self.input_is_pull(0) and self.task is not None:
            task = self.task
            self.add_read_handler("active", lambda: self.active, CHECKBOX)

            def write_active(value: str, errh: ErrorHandler) -> None:
                try:
                    self.active = parse_bool(value.strip())
                except ConfigError:
                    raise ConfigError("syntax error") from None
                if self.active:
                    task.reschedule()
                else:
                    task.unschedule()

            self.add_write_handler("active", write_active)
            self.add_task_handlers(task)


class Idle(Element):
    """Idle

    Has any number of inputs and outputs; never emits a packet.

    Packets pushed into Idle are dropped; pulls from it return nothing.  Its
    outputs report an idle "empty" notifier, so pull tasks downstream of Idle
    sleep.  Useful to fill unused ports.

    Example: ``Idle -> q :: Queue -> Discard``
    """

    port_count = "-/-"
    processing = "a/a"
    flow_code = "x/y"  # nothing flows from an input to an output
    flags = "S0"

    def __init__(self) -> None:
        super().__init__()
        self._notifier = Notifier()
        self._notifier.signal = NotifierSignal.idle()

    def notifier(self, isoutput: bool, port: int, kind: str) -> Notifier | None:
        return self._notifier if kind == "empty" else None

    def push(self, port: int, batch: PacketBatch) -> None:
        batch.kill()

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        return None


class Error(Element):
    """Error(...)

    Always fails to initialize, so a configuration containing it never runs.

    Accepts any ports and any configuration.  Tools put it in place of elements
    they could not resolve; the router then reports where the problem is.
    """

    port_count = "-/-"
    processing = "a/a"
    flow_code = "x/y"

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        pass  # any arguments are accepted

    def initialize(self, errh: ErrorHandler) -> None:
        # Fails without a message of its own, as Click's ErrorElement does: the
        # router's "Router could not be initialized!" says enough.
        raise _SilentFailure()


class _SilentFailure(ConfigError):
    def __init__(self) -> None:
        super().__init__("")
