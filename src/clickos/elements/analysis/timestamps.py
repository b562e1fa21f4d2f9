"""AdjustTimestamp and TimeFilter: shifting and selecting packets by timestamp."""

from __future__ import annotations

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_any,
    parse_bool,
    parse_timestamp,
    parse_timestamp_signed,
    uncomment,
    unparse_interval,
    unparse_timestamp,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.expand import expand
from clickos.core.handlercall import HandlerCall
from clickos.elements.analysis.common import FIRST_TIMESTAMP_ANNO
from clickos.elements.ip.common import push_runs
from clickos.packet.batch import PacketBatch

_MAX_TIME = (1 << 31) - 1        # Click's Timestamp::max_seconds
_NS = 1_000_000_000


class AdjustTimestamp(Element):
    """AdjustTimestamp(TIME [, KEYWORDS])

    Adds TIME (which may be negative, e.g. ``-1`` or ``+1.5``) to each packet's
    timestamp annotation.

    A zero timestamp means "no timestamp" and stays zero unless ALL is true.

    Keyword arguments:

    - FIRST (boolean): change the "first timestamp" annotation instead of the
      timestamp annotation.  Default false.
    - ALL (boolean): adjust zero timestamps too.  Default false.

    Handlers: ``time`` (read/write) is TIME.

    Example: ``FromDump(f.pcap) -> AdjustTimestamp(-3600) -> ToDump(g.pcap)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.delta = 0
        self.first = False
        self.all = False

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.delta = a.read_p("TIME", parse_timestamp_signed, 0)
        self.first = a.read("FIRST", parse_bool, False)
        self.all = a.read("ALL", parse_bool, False)
        a.complete()

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool, idx = batch.pool, batch.idx
        if self.first:
            view = pool.anno.view(np.int64)
            col = FIRST_TIMESTAMP_ANNO >> 3
            ts = view[idx, col]
            view[idx, col] = ts + self.delta if self.all else np.where(ts != 0, ts + self.delta, 0)
        else:
            ts = pool.ts[idx]
            pool.ts[idx] = ts + self.delta if self.all else np.where(ts != 0, ts + self.delta, 0)
        return batch

    def add_handlers(self) -> None:
        self.add_read_handler("time", lambda: unparse_interval(self.delta))

        def write(value: str, errh: ErrorHandler) -> None:
            try:
                self.delta = parse_timestamp_signed(uncomment(value))
            except ConfigError:
                raise ConfigError("expected time") from None

        self.add_write_handler("time", write)


class TimeFilter(Element):
    """TimeFilter(KEYWORDS)

    Passes packets whose timestamps lie in a time range; others go to output 1
    (or are dropped when it is not connected).

    The range runs from a start time (inclusive) to an end time (exclusive).
    Either end may be absolute, relative to the first packet's timestamp, or
    relative to the moment the router started.

    Keyword arguments (at most one start and one end):

    - START: absolute start time (seconds since the epoch).  Also the first
      positional argument.
    - START_AFTER: start this long after the first packet's timestamp.
    - START_DELAY: start this long after initialization.
    - END: absolute end time.  Also the second positional argument.
    - END_AFTER: end this long after the first packet's timestamp.
    - END_DELAY: end this long after initialization.
    - INTERVAL: end this long after the start.
    - STOP (boolean): stop the driver at the first packet past the end.
    - END_CALL: write handler to call at the first packet past the end; ``$t``
      in its value is that packet's timestamp.  The handler may extend the
      range (e.g. with ``extend_interval``), which lets the packet through.

    Handlers: ``start`` and ``end`` (read/write) the current bounds;
    ``interval`` (read/write) end minus start, writing it moves the end;
    ``extend_interval`` (write) moves the end later by the given time.

    Example: ``FromDump(f.pcap) -> TimeFilter(START_AFTER 10, INTERVAL 60) -> ...``
    """

    port_count = "1/1-2"
    processing = "a/ah"

    def __init__(self) -> None:
        super().__init__()
        self.first = 0
        self.last = _MAX_TIME * _NS
        self.first_relative = self.first_init_relative = False
        self.last_relative = self.last_init_relative = self.last_interval = False
        self.ready = False
        self.last_h: HandlerCall | None = None
        self.last_h_ready = False

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        first = a.read_p("START", parse_timestamp, 0)
        last = a.read_p("END", parse_timestamp, 0)
        first_init = a.read("START_DELAY", parse_timestamp, 0)
        last_init = a.read("END_DELAY", parse_timestamp, 0)
        first_delta = a.read("START_AFTER", parse_timestamp, 0)
        last_delta = a.read("END_AFTER", parse_timestamp, 0)
        interval = a.read("INTERVAL", parse_timestamp, 0)
        stop = a.read("STOP", parse_bool, False)
        end_call = a.read("END_CALL", parse_any, None)
        a.complete()
        self.first_relative = self.first_init_relative = False
        self.last_relative = self.last_init_relative = self.last_interval = False
        if bool(first) + bool(first_delta) + bool(first_init) > 1:
            raise ConfigError("START, START_AFTER, and START_DELAY are mutually exclusive")
        if first:
            self.first = first
        elif first_init:
            self.first, self.first_init_relative = first_init, True
        else:
            self.first, self.first_relative = first_delta, True
        if bool(last) + bool(last_delta) + bool(last_init) + bool(interval) > 1:
            raise ConfigError("END, END_AFTER, END_DELAY, and INTERVAL are mutually exclusive")
        if last:
            self.last = last
        elif last_delta:
            self.last, self.last_relative = last_delta, True
        elif last_init:
            self.last, self.last_init_relative = last_init, True
        elif interval:
            self.last, self.last_interval = interval, True
        else:
            self.last = _MAX_TIME * _NS
        if end_call and stop:
            raise ConfigError("END_CALL and STOP are mutually exclusive")
        self.last_h = HandlerCall(end_call) if end_call else HandlerCall("stop true") if stop else None
        self.ready = False

    def initialize(self, errh: ErrorHandler) -> None:
        if self.last_h is not None:
            self.last_h.initialize_write(self, errh)
        if self.first_init_relative or self.last_init_relative:
            now = self.router.master.clock.now()
            if self.first_init_relative:
                self.first += now
            if self.last_init_relative:
                self.last += now
        self.last_h_ready = self.last_h is not None

    def _first_packet(self, ts: int) -> None:
        if self.first_relative:
            self.first += ts
        if self.last_relative:
            self.last += ts
        elif self.last_interval:
            self.last += self.first
        self.ready = True

    def _past_end(self, ts: int) -> bool:
        """Whether a packet at ``ts`` lies past the end, after calling END_CALL."""
        h = self.last_h
        if ts >= self.last and h is not None and self.last_h_ready:
            text = unparse_timestamp(ts)

            def lookup(name: str, kind: str) -> str | None:
                return text if name == "t" and kind != "(" else None

            while True:
                prev = self.last
                self.last_h_ready = False
                h.call_write(value=expand(h.value, lookup))
                if not (ts >= self.last and self.last_h_ready and self.last > prev):
                    break
        return ts >= self.last

    def _verdicts(self, batch: PacketBatch) -> np.ndarray:
        ts = batch.pool.ts[batch.idx]
        if not self.ready:
            self._first_packet(int(ts[0]))
        ports = np.where(ts < self.first, 1, 0)
        late = (ts >= self.last) & (ports == 0)
        if late.any():
            if self.last_h is None:
                ports[late] = 1
            else:
                for i in np.flatnonzero(ports == 0).tolist():
                    t = int(ts[i])
                    if t >= self.last and self._past_end(t):
                        ports[i] = 1
        return ports

    def push(self, port: int, batch: PacketBatch) -> None:
        ports = self._verdicts(batch)
        if not ports.any():
            self.outputs[0].push(batch)
            return
        if len(self.outputs) < 2:
            ports = np.where(ports == 1, -1, 0)
        push_runs(self, batch, ports)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        ports = self._verdicts(batch)
        if not ports.any():
            return batch
        bad = PacketBatch(batch.pool, batch.idx[ports == 1])
        self.checked_output_push(1, bad)
        return batch.take(ports == 0)

    def add_handlers(self) -> None:
        self.add_read_handler("start", lambda: unparse_timestamp(self.first))
        self.add_read_handler("end", lambda: unparse_timestamp(self.last))
        self.add_read_handler("interval", lambda: unparse_timestamp(self.last - self.first))

        def time_writer(which: str):  # noqa: ANN202
            def write(value: str, errh: ErrorHandler) -> None:
                try:
                    t = parse_timestamp(uncomment(value))
                except ConfigError:
                    raise ConfigError("expected time") from None
                if which == "start":
                    if not self.ready:
                        self._first_packet(t)
                    self.first = t
                elif which == "end":
                    self.last = t
                    self.last_relative = self.last_init_relative = self.last_interval = False
                    self.last_h_ready = True
                elif which == "interval":
                    self.last = self.first + t
                    self.last_h_ready = True
                else:
                    self.last += t
                    self.last_h_ready = True
            return write

        for name in ("start", "end", "interval", "extend_interval"):
            self.add_write_handler(name, time_writer(name))
