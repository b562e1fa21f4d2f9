"""InfiniteSource: the packet generator used by most tests and benchmarks."""

from __future__ import annotations

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import parse_any, parse_bool, parse_int, parse_string
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlercall import HandlerCall
from clickos.core.handlers import BUTTON, CALM, CHECKBOX, DEPRECATED, RAW
from clickos.core.notifier import Notifier, NotifierSignal, downstream_full_signal
from clickos.core.task import Task
from clickos.packet.batch import PacketBatch

DEFAULT_DATA = "Random bullshit in a packet, at least 64 bytes long. Well, now it is."


class InfiniteSource(Element):
    """InfiniteSource([DATA, LIMIT, BURST, ACTIVE, KEYWORDS])

    Generates copies of one packet, as fast as it is allowed to.

    In push context a task emits BURST packets per run (each a fresh copy of
    DATA, timestamped) until LIMIT packets have been sent; it sleeps while the
    queues downstream report full.  In pull context each pull returns one packet.
    When the limit is reached it calls END_CALL, or stops the driver when STOP
    is true.

    BURST 1 (the default) keeps Click's exact interleaving with other tasks; a
    larger BURST sends the packets of one run as one batch.

    Keyword arguments:

    - DATA (string): packet contents.  Default is a 68-byte text.
    - LENGTH (integer): packet length; DATA is repeated or cut to fit.
    - LIMIT (integer): total packets to send; -1 means no limit.  Default -1.
    - BURST (integer >= 1): packets per task run.  Default 1.
    - ACTIVE (boolean): whether to send at all.  Default true.
    - STOP (boolean): stop the driver at LIMIT.  Default false.
    - END_CALL (handler call): write handler to call at LIMIT.
    - TIMESTAMP (boolean): set each packet's timestamp annotation.  Default true.

    Handlers: ``count`` (read), ``reset`` (write), and read/write ``data``,
    ``limit``, ``burst``, ``active``, ``length``; task handlers in push context.

    Example: ``InfiniteSource(LIMIT 5, STOP true) -> Print(ok) -> Discard``
    """

    port_count = "0/1"
    processing = "a"
    flags = "S1"

    def __init__(self) -> None:
        super().__init__()
        self.data = DEFAULT_DATA
        self.datasize = -1
        self.limit = -1
        self.burst = 1
        self.active = True
        self.stop = False
        self.timestamp = True
        self.count = 0
        self.end_h: HandlerCall | None = None
        self.task: Task | None = None
        self._nonfull = NotifierSignal.busy()
        self._empty_note = Notifier()
        self._payload = b""
        self._tmpl64 = np.zeros(0, np.uint64)

    # -- configuration ---------------------------------------------------------------
    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.data = a.read_p("DATA", parse_string, default=DEFAULT_DATA)
        self.limit = a.read_p("LIMIT", parse_int, default=-1)
        self.burst = a.read_p("BURST", parse_int, default=1)
        self.active = a.read_p("ACTIVE", parse_bool, default=True)
        self.timestamp = a.read("TIMESTAMP", parse_bool, default=True)
        length = a.read("LENGTH", parse_int, default=None)
        datasize = a.read("DATASIZE", parse_int, default=None)
        self.stop = a.read("STOP", parse_bool, default=False)
        end_call = a.read("END_CALL", parse_any, default=None)
        a.complete()
        self.datasize = length if length is not None else (datasize if datasize is not None else -1)
        if self.burst < 1:
            raise ConfigError("burst size must be >= 1")
        if self.stop and end_call:
            raise ConfigError("END_CALL and STOP are mutually exclusive")
        self.end_h = HandlerCall(end_call) if end_call else (HandlerCall("stop") if self.stop else None)
        self._empty_note.initialize("empty", self.router)
        self._setup_packet()
        # Created here, not in initialize, so add_handlers (which runs between the
        # two, as in Click) can attach the task handlers.
        if self.task is None and self.outputs and self.output_is_push(0):
            self.task = Task(self.run_task, self)

    def _setup_packet(self) -> None:
        raw = self.data.encode("latin-1") if isinstance(self.data, str) else bytes(self.data)
        if self.datasize >= 0:
            if self.datasize <= len(raw):
                raw = raw[: self.datasize]
            else:
                rep = raw or b"\0"
                raw = (rep * (self.datasize // len(rep) + 1))[: self.datasize]
        self._payload = raw
        self._tlen = len(raw)
        self.router.pool.ensure_slot_size(len(raw))
        padded = raw + b"\0" * (-len(raw) % 8)
        self._tmpl64 = np.frombuffer(padded, np.uint64).copy() if padded else np.zeros(0, np.uint64)

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import kernels

        self._k_alloc = kernels.alloc_fill
        if self.task is not None:
            self.task.initialize(self, True)
            self._nonfull = downstream_full_signal(self, 0, self.task)
        if self.end_h is not None:
            self.end_h.initialize_write(self, errh)
        self._push0 = self.outputs[0].push
        self._coalesce = (self.task is not None and self.burst == 1
                          and not self.router.master.clock.simulated
                          and self.router.push_path_transparent(self, 0))

    def cleanup(self, stage: int) -> None:
        pass

    def notifier(self, isoutput: bool, port: int, kind: str) -> Notifier | None:
        return self._empty_note if kind == "empty" else None

    # -- packets ---------------------------------------------------------------------
    def _make(self, n: int) -> PacketBatch:
        pool = self.router.pool
        if n > pool.nfree:
            pool._grow(max(n, pool.nslots))
        clock = self.router.master.clock
        ts = clock.now() if self.timestamp else 0
        # a fresh index array each batch: downstream elements may keep the batch
        out = np.empty(n, np.int32)
        pool.nfree = self._k_alloc(pool.free, pool.nfree, n, pool.data64, pool.off,
                                   pool.length, pool.ts, pool.anno64, pool.mac, pool.nh,
                                   pool.th, pool.ptype, out, self._tmpl64, self._tlen,
                                   pool.headroom, ts)
        return PacketBatch(pool, out)

    def run_task(self) -> bool:
        if not self.active or not self._nonfull.active():
            return False
        n = self.burst
        limit = self.limit
        coalesce = n == 1 and self._coalesce
        if coalesce:
            # Alone on the scheduler and feeding only batch-transparent elements:
            # the next fire_budget fires would each push one packet with nothing
            # in between, so push them as one batch (see Master.run_tasks).
            n = self.router.master.fire_budget
        if limit >= 0 and self.count + n >= limit:
            n = 0 if self.count > limit else limit - self.count
        if coalesce and n > 1:
            self.router.master.fires_used = n
        if n > 0:
            self.count += n
            self._push0(self._make(n))
            self.task.fast_reschedule()  # type: ignore[union-attr]
            return True
        if self.end_h is not None and limit >= 0 and self.count >= limit:
            self.end_h.call_write()
        return False

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        if not self.active:
            if self._empty_note.active():
                self._empty_note.sleep()
            return None
        if self.limit >= 0 and self.count >= self.limit:
            if self.end_h is not None:
                self.end_h.call_write()
            if self._empty_note.active():
                self._empty_note.sleep()
            return None
        n = 1 if self.limit < 0 else min(1, self.limit - self.count)
        self.count += n
        return self._make(n)

    # -- handlers --------------------------------------------------------------------
    def _changed(self) -> None:
        if self.active and (self.limit < 0 or self.count < self.limit):
            if self.outputs and self.output_is_push(0) and self.task is not None and not self.task.scheduled:
                self.task.reschedule()
            if self.outputs and self.output_is_pull(0) and not self._empty_note.active():
                self._empty_note.set_active(True)

    def add_handlers(self) -> None:
        def setter(attr: str, parse, msg: str, check=lambda v: True, after=None):  # noqa: ANN001, ANN202
            def write(value: str, errh: ErrorHandler) -> None:
                try:
                    v = parse(value.strip())
                except ConfigError:
                    raise ConfigError(msg) from None
                if not check(v):
                    raise ConfigError(msg)
                setattr(self, attr, v)
                if after:
                    after()
                self._changed()
            return write

        self.add_read_handler("data", lambda: self.data, RAW | CALM)
        self.add_write_handler("data", lambda v, e: (setattr(self, "data", v), self._setup_packet(),
                                                      self._changed()) and None, RAW)
        self.add_read_handler("limit", lambda: self.limit, CALM)
        self.add_write_handler("limit", setter("limit", parse_int, "limit parameter must be integer"))
        self.add_read_handler("burst", lambda: self.burst, CALM)
        burst_w = setter("burst", parse_int, "burstsize parameter must be integer >= 1", lambda v: v >= 1)
        self.add_write_handler("burst", burst_w)
        self.add_read_handler("active", lambda: self.active, CHECKBOX)
        self.add_write_handler("active", setter("active", parse_bool, "active parameter must be boolean"))
        self.add_read_handler("count", lambda: self.count)

        def reset(value: str, errh: ErrorHandler) -> None:
            self.count = 0
            self._changed()

        self.add_write_handler("reset", reset, BUTTON)
        self.add_read_handler("length", lambda: self.datasize, CALM)
        length_w = setter("datasize", parse_int, "length must be integer", after=self._setup_packet)
        self.add_write_handler("length", length_w)
        self.add_read_handler("burstsize", lambda: self.burst, CALM | DEPRECATED)
        self.add_write_handler("burstsize", burst_w)
        self.add_read_handler("datasize", lambda: self.datasize, CALM | DEPRECATED)
        self.add_write_handler("datasize", length_w)
        if self.task is not None:
            self.add_task_handlers(self.task)

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        count = self.count
        self.configure(conf, errh)
        self.count = count
        self._changed()
