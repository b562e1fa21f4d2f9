"""Timed packet sources and sinks: RatedSource, TimedSource, TimedSink."""

from __future__ import annotations

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bandwidth,
    parse_bool,
    parse_data,
    parse_int,
    parse_timestamp,
    parse_unsigned,
    unparse_interval,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON, CALM, CHECKBOX, DEPRECATED, RAW
from clickos.core.rates import TokenBucket, jiffies, ticks_to_ns
from clickos.core.task import Task, Timer
from clickos.elements.standard.basic import int_writer
from clickos.packet.batch import PacketBatch

DEFAULT_DATA = b"Random bullshit in a packet, at least 64 bytes long. Well, now it is."
DEFAULT_HEADROOM = 28  # Click's Packet::default_headroom at user level
NO_LIMIT = -1


def _syntax_bool(value: str, message: str = "syntax error") -> bool:
    try:
        return parse_bool(value.strip())
    except ConfigError:
        raise ConfigError(message) from None


def _syntax_int(value: str, message: str = "syntax error") -> int:
    try:
        return parse_int(value.strip())
    except ConfigError:
        raise ConfigError(message) from None


class RatedSource(Element):
    """RatedSource([DATA, RATE, LIMIT, ACTIVE, KEYWORDS])

    Generates copies of one packet at a fixed rate.

    Emits packets holding DATA, at most RATE per second, out of its single
    output; it stops after LIMIT packets (a negative LIMIT means never) and
    sends nothing while ACTIVE is false.  Pushing, it sends at most one packet
    per task run; pulled, each pull returns a packet if the rate allows.  The
    rate is enforced by a token bucket holding two packets' worth of tokens (or
    RATE/100 for rates of 200 and above), so a burst of that size can leave at
    once.  Each packet is timestamped.

    Keyword arguments:

    - DATA (string): packet contents.  Default is a 68-byte text.
    - LENGTH (integer): packet length; DATA is repeated or cut to fit.
    - RATE (unsigned): packets per second.  Default 10.
    - BANDWIDTH (bandwidth): sets RATE from a byte rate and the packet length.
    - LIMIT (integer): total packets to send.  Default -1 (no limit).
    - ACTIVE (boolean): whether to send.  Default true.
    - STOP (boolean): stop the driver once LIMIT packets are sent.  Default false.

    Handlers: ``count`` (read) packets sent; ``reset`` (write) zero the count
    and start again; ``data``, ``length``, ``rate``, ``limit``, ``active``
    (read/write) the parameters.

    Example: ``RatedSource(\\<0800>, 10, 1000) -> Queue -> ...``
    """

    port_count = "0/1"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.data = DEFAULT_DATA
        self.datasize = -1
        self.limit = NO_LIMIT
        self.active = True
        self.stop = False
        self.count = 0
        self.payload = DEFAULT_DATA
        self.tb = TokenBucket(now_ticks=self._jiffies)
        self.task = Task(self.run_task, self)
        self.timer: Timer | None = None

    def _jiffies(self) -> int:
        return jiffies(self.router.master.clock.now())

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        data = a.read_p("DATA", parse_data, default=DEFAULT_DATA)
        rate = a.read_p("RATE", parse_unsigned, default=10)
        limit = a.read_p("LIMIT", parse_int, default=-1)
        active = a.read_p("ACTIVE", parse_bool, default=True)
        length = a.read("LENGTH", parse_int, default=None)
        datasize = a.read("DATASIZE", parse_int, default=None)
        stop = a.read("STOP", parse_bool, default=False)
        bandwidth = a.read("BANDWIDTH", parse_bandwidth, default=0)
        a.complete()
        self.data = data
        self.datasize = datasize if datasize is not None else (length if length is not None else -1)
        if bandwidth > 0:
            size = len(data) if self.datasize < 0 else self.datasize
            rate = bandwidth // size if size else 0
        burst = 2 if rate < 200 else rate // 100
        if bandwidth > 0 and burst < 2 * self.datasize:
            burst = 2 * self.datasize
        self.tb.assign(rate, burst)
        self.limit = limit if limit >= 0 else NO_LIMIT
        self.active = active
        self.stop = stop
        self._setup_packet()

    def _setup_packet(self) -> None:
        data, n = self.data, self.datasize
        if n < 0:
            self.payload = data
        elif n <= len(data):
            self.payload = data[:n]
        else:
            rep = data or b"\0"
            self.payload = (rep * (n // len(rep) + 1))[:n]
        self.router.pool.ensure_slot_size(len(self.payload))

    def initialize(self, errh: ErrorHandler) -> None:
        self.count = 0
        if self.output_is_push(0):
            self.task.initialize(self, True)
        self.tb.set(1)
        self.timer = Timer(self._wake, self)
        self.timer.initialize(self)

    def _wake(self, timer: Timer) -> None:
        self.task.reschedule()

    def _make(self) -> PacketBatch:
        pool = self.router.pool
        slot = pool.new_packet(self.payload)
        pool.ts[slot] = self.router.master.clock.now()
        return PacketBatch.one(pool, slot)

    def _limited(self) -> bool:
        if self.limit != NO_LIMIT and self.count >= self.limit:
            if self.stop:
                self.router.please_stop_driver()
            return True
        return False

    def run_task(self) -> bool:
        if not self.active or self._limited():
            return False
        self.tb.refill()
        if self.tb.remove_if(1):
            batch = self._make()
            self.outputs[0].push(batch)
            self.count += 1
            self.task.fast_reschedule()
            return True
        assert self.timer is not None
        self.timer.schedule_after(ticks_to_ns(self.tb.time_until_contains(1)))
        return False

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        if not self.active or self._limited():
            return None
        self.tb.refill()
        if self.tb.remove_if(1):
            self.count += 1
            return self._make()
        return None

    def _restart(self) -> None:
        if self.output_is_push(0) and not self.task.scheduled and self.active:
            self.tb.set(1)
            self.task.reschedule()

    def add_handlers(self) -> None:
        def write_data(value: str, errh: ErrorHandler) -> None:
            self.data = value.encode("latin-1", "replace")
            self.payload = self.data
            self.router.pool.ensure_slot_size(len(self.payload))

        def write_rate(value: str, errh: ErrorHandler) -> None:
            try:
                rate = parse_unsigned(value.strip())
            except ConfigError:
                raise ConfigError("syntax error") from None
            self.tb.assign_adjust(rate, 2 if rate < 200 else rate // 100)

        def write_limit(value: str, errh: ErrorHandler) -> None:
            limit = _syntax_int(value)
            self.limit = limit if limit >= 0 else NO_LIMIT

        def write_active(value: str, errh: ErrorHandler) -> None:
            self.active = _syntax_bool(value)
            self._restart()

        def write_reset(value: str, errh: ErrorHandler) -> None:
            self.count = 0
            self.tb.set(1)
            if self.output_is_push(0) and not self.task.scheduled and self.active:
                self.task.reschedule()

        def write_length(value: str, errh: ErrorHandler) -> None:
            self.datasize = _syntax_int(value)
            self._setup_packet()

        self.add_read_handler("data", lambda: self.data.decode("latin-1"), CALM)
        self.add_write_handler("data", write_data, RAW)
        self.add_read_handler("rate", lambda: self.tb.rate())
        self.add_write_handler("rate", write_rate)
        self.add_read_handler("limit", lambda: self.limit, CALM)
        self.add_write_handler("limit", write_limit)
        self.add_read_handler("active", lambda: self.active, CHECKBOX)
        self.add_write_handler("active", write_active)
        self.add_read_handler("count", lambda: self.count)
        self.add_write_handler("reset", write_reset, BUTTON)
        self.add_read_handler("length", lambda: self.datasize)
        self.add_write_handler("length", write_length)
        self.add_read_handler("datasize", lambda: self.datasize, DEPRECATED)
        self.add_write_handler("datasize", write_length)
        if self.output_is_push(0):
            self.add_task_handlers(self.task)


class TimedSource(Element):
    """TimedSource([INTERVAL, DATA, KEYWORDS])

    Pushes a copy of one packet every INTERVAL seconds.

    Each packet holds DATA and is timestamped when sent.  INTERVAL defaults to
    0.5 seconds; the default DATA is a 68-byte text.

    Keyword arguments:

    - DATA (string): packet contents.
    - INTERVAL (time): time between packets.
    - LIMIT (integer): stop after this many packets; negative means never.
      Default -1.
    - ACTIVE (boolean): whether to send.  Default true.
    - STOP (boolean): stop the driver once LIMIT packets are sent.  Default false.
    - HEADROOM (unsigned): headroom of the packets made.  Default 28.

    Handlers: ``data``, ``interval``, ``limit``, ``active``, ``headroom``
    (read/write); ``count`` (read); ``reset`` (write) zero the count and restart.

    Example: ``TimedSource(INTERVAL 0.333) -> Print -> Discard``
    """

    port_count = "0/1"
    processing = "h"

    def __init__(self) -> None:
        super().__init__()
        self.interval = 500_000_000
        self.data = DEFAULT_DATA
        self.limit = -1
        self.count = 0
        self.active = True
        self.stop = False
        self.headroom = DEFAULT_HEADROOM
        self.timer: Timer | None = None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        interval = a.read_p("INTERVAL", parse_timestamp, default=self.interval)
        data = a.read_p("DATA", parse_data, default=DEFAULT_DATA)
        limit = a.read("LIMIT", parse_int, default=self.limit)
        active = a.read("ACTIVE", parse_bool, default=self.active)
        stop = a.read("STOP", parse_bool, default=self.stop)
        headroom = a.read("HEADROOM", parse_unsigned, default=self.headroom)
        a.complete()
        self.interval, self.data, self.limit = interval, data, limit
        self.active, self.stop, self.headroom = active, stop, headroom
        self.router.pool.ensure_slot_size(len(self.data) + self.headroom)

    def initialize(self, errh: ErrorHandler) -> None:
        self.timer = Timer(self.run_timer, self)
        self.timer.initialize(self)
        if self.active:
            self.timer.schedule_after(self.interval)

    def run_timer(self, timer: Timer) -> None:
        if not self.active:
            return
        if self.limit < 0 or self.count < self.limit:
            pool = self.router.pool
            slot = pool.new_packet(self.data, self.headroom)
            pool.ts[slot] = self.router.master.clock.now()
            self.outputs[0].push(PacketBatch.one(pool, slot))
            self.count += 1
            timer.reschedule_after(self.interval)
        elif self.stop:
            self.router.please_stop_driver()

    def _kick(self) -> None:
        if self.timer is not None and not self.timer.scheduled and self.active:
            self.timer.schedule_now()

    def add_handlers(self) -> None:
        def write_data(value: str, errh: ErrorHandler) -> None:
            self.data = value.encode("latin-1", "replace")
            self.router.pool.ensure_slot_size(len(self.data) + self.headroom)

        def write_headroom(value: str, errh: ErrorHandler) -> None:
            try:
                self.headroom = parse_unsigned(value.strip())
            except ConfigError:
                raise ConfigError("bad headroom") from None
            self.router.pool.ensure_slot_size(len(self.data) + self.headroom)

        def write_interval(value: str, errh: ErrorHandler) -> None:
            try:
                interval = parse_timestamp(value.strip())
            except ConfigError:
                interval = 0
            if not interval:
                raise ConfigError("bad interval")
            self.interval = interval

        def write_active(value: str, errh: ErrorHandler) -> None:
            self.active = _syntax_bool(value, "bad active")
            self._kick()

        def write_reset(value: str, errh: ErrorHandler) -> None:
            self.count = 0
            self._kick()

        self.add_read_handler("data", lambda: self.data.decode("latin-1"), CALM)
        self.add_write_handler("data", write_data, RAW)
        self.add_read_handler("limit", lambda: self.limit, CALM)
        self.add_write_handler("limit", int_writer(self, "limit"), CALM)
        self.add_read_handler("interval", lambda: unparse_interval(self.interval), CALM)
        self.add_write_handler("interval", write_interval)
        self.add_read_handler("active", lambda: self.active, CALM | CHECKBOX)
        self.add_write_handler("active", write_active)
        self.add_read_handler("count", lambda: self.count)
        self.add_read_handler("headroom", lambda: self.headroom, CALM)
        self.add_write_handler("headroom", write_headroom)
        self.add_write_handler("reset", write_reset, BUTTON)


class TimedSink(Element):
    """TimedSink([INTERVAL])

    Pulls one packet every INTERVAL seconds and drops it.

    INTERVAL defaults to 0.5 seconds.

    Handlers: ``interval`` (read/write).

    Example: ``... -> Queue -> TimedSink(0.01)``
    """

    port_count = "1/0"
    processing = "l"

    def __init__(self) -> None:
        super().__init__()
        self.interval = 500_000_000
        self.timer: Timer | None = None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.interval = a.read_p("INTERVAL", parse_timestamp, default=500_000_000)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        self.timer = Timer(self.run_timer, self)
        self.timer.initialize(self)
        self.timer.schedule_after(self.interval)

    def run_timer(self, timer: Timer) -> None:
        batch = self.inputs[0].pull(1)
        if batch is not None:
            batch.kill()
        timer.reschedule_after(self.interval)

    def add_handlers(self) -> None:
        def write_interval(value: str, errh: ErrorHandler) -> None:
            try:
                interval = parse_timestamp(value.strip())
            except ConfigError:
                interval = 0
            if not interval:
                raise ConfigError("bad interval")
            self.interval = interval

        self.add_read_handler("interval", lambda: unparse_interval(self.interval), CALM)
        self.add_write_handler("interval", write_interval)
