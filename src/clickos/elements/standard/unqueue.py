"""Pull-to-push converters: Unqueue, RatedUnqueue, BandwidthRatedUnqueue,
DelayUnqueue and LinkUnqueue.

Each runs a task that pulls from its input and pushes to its output.  The task
listens to the upstream "empty" notifiers, so it sleeps while no packet waits;
the rated ones also sleep on a timer until their token bucket refills.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bandwidth,
    parse_bool,
    parse_int,
    parse_milliseconds,
    parse_timestamp,
    parse_unsigned,
    unparse_bandwidth,
    unparse_interval,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON, CALM, CHECKBOX, UNCOMMON
from clickos.core.notifier import NotifierSignal, upstream_empty_signal
from clickos.core.rates import BANDWIDTH_THRESH, U32, TokenBucket, jiffies, ticks_to_ns
from clickos.core.task import Task, Timer
from clickos.elements.standard.queues import Storage, add_keyword_write_handler
from clickos.packet.batch import PacketBatch

EXTRA_LENGTH_ANNO_OFFSET = 28
NSEC = 1_000_000_000


def timer_adjustment(element: Element) -> int:
    """Click's Timer::adjustment(): how early a timer may fire (0 in simulated time)."""
    return 0 if element.router.master.clock.simulated else 500_000


def schedule_at_wall(element: Element, timer: Timer, when_ns: int) -> None:
    """Schedule ``timer`` for a wall-clock time (Click's Timer::schedule_at)."""
    clock = element.router.master.clock
    # Click converts with two clock readings (steady, then wall); in simulated
    # time each reading advances the clock by 1 ns, which Click's timings show.
    steady = clock.now_steady()
    timer.schedule_at(when_ns + steady - clock.now())


def _task_timer(task: Task, owner: Element) -> Timer:
    """A timer that reschedules ``task`` when it fires (Click's Timer(Task *))."""
    return Timer(lambda _t: task.reschedule(), owner)


def _bool_write(fn):  # noqa: ANN001, ANN202 - small local decorator
    def write(value: str, errh: ErrorHandler) -> None:
        try:
            v = parse_bool(value.strip())
        except ConfigError:
            raise ConfigError("syntax error") from None
        fn(v)
    return write


class Unqueue(Element):
    """Unqueue([BURST, KEYWORDS])

    Pulls packets whenever they are available and pushes them out.

    Each time its task runs, Unqueue pulls up to BURST packets (default 1) from
    its input and pushes them to its output.  A negative BURST means pull until
    nothing comes back.  The task sleeps while the upstream notifiers say no
    packet is waiting.

    Keyword arguments:

    - ACTIVE (boolean): if false, Unqueue does nothing.  Default true.
    - LIMIT (integer): if nonnegative, pull at most LIMIT packets in total.
      Default -1 (no limit).
    - BURST (integer): packets per task run.

    Handlers: ``count`` (read) packets pulled so far; ``reset`` (write) zero the
    count, which may let a LIMITed Unqueue pull LIMIT more; ``active``,
    ``limit``, ``burst`` (read/write); task handlers (``scheduled`` ...).

    Example: ``InfiniteSource -> Queue -> Unqueue(BURST 8) -> Discard``
    """

    port_count = "1/1"
    processing = "l/h"

    def __init__(self) -> None:
        super().__init__()
        self.burst = 1
        self.limit = -1
        self.active = True
        self.count = 0
        self.task = Task(self.run_task, self)
        self.signal = NotifierSignal.busy()

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.burst = a.read_p("BURST", parse_int, 1)
        self.active = a.read("ACTIVE", parse_bool, True)
        self.limit = a.read("LIMIT", parse_int, -1)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        self.count = 0
        self.task.initialize(self, self.active)
        self.signal = upstream_empty_signal(self, 0, self.task)
        if self.burst < 0:
            self.burst = 0x7FFFFFFF
        elif self.burst == 0:
            errh.warning("BURST size 0, no packets will be pulled")

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        """Hot-swap: keep counting from the old Unqueue's count (and LIMIT budget)."""
        if isinstance(old, Unqueue):
            self.count = old.count

    def run_task(self) -> bool:
        if not self.active:
            return False
        worked = 0
        limit = self.burst
        if self.limit >= 0 and self.count + limit >= self.limit:
            limit = self.limit - self.count
            if limit <= 0:
                return False
        inp = self.inputs[0]
        out = self.outputs[0]
        while worked < limit and self.active:
            b = inp.pull(limit - worked)
            if b is not None:
                n = len(b)
                worked += n
                self.count += n
                out.push(b)
            elif not self.signal.active():
                return worked > 0
            else:
                break
        self.task.fast_reschedule()
        return worked > 0

    def _after_write(self) -> None:
        t = self.task
        if (self.active and not t.scheduled
                and (self.limit < 0 or self.count < self.limit)):
            t.reschedule()

    def add_handlers(self) -> None:
        self.add_read_handler("active", lambda: self.active, CHECKBOX)
        self.add_read_handler("count", lambda: self.count)
        self.add_read_handler("burst", lambda: self.burst)
        self.add_read_handler("limit", lambda: self.limit)

        def set_active(v: bool) -> None:
            self.active = v
            self._after_write()

        def int_writer(attr: str):  # noqa: ANN202
            def write(value: str, errh: ErrorHandler) -> None:
                try:
                    v = parse_int(value.strip())
                except ConfigError:
                    raise ConfigError("syntax error") from None
                if attr == "burst" and v < 0:
                    v = 0x7FFFFFFF
                setattr(self, attr, v)
                self._after_write()
            return write

        def reset(value: str, errh: ErrorHandler) -> None:
            self.count = 0
            self._after_write()

        self.add_write_handler("active", _bool_write(set_active), CHECKBOX)
        self.add_write_handler("reset", reset, BUTTON)
        self.add_write_handler("reset_counts", reset, BUTTON | UNCOMMON)
        self.add_write_handler("burst", int_writer("burst"))
        self.add_write_handler("limit", int_writer("limit"))
        self.add_task_handlers(self.task)


def configure_token_bucket(element: Element, tb: TokenBucket, conf: list[str],
                           is_bandwidth: bool) -> None:
    """Parse RATE / BURST_DURATION / BURST_SIZE (BURST_BYTES) into ``tb``.

    Shared by the rated unqueues and splitters.  The bucket holds BURST_SIZE
    tokens, or RATE * BURST_DURATION (default 20 ms) worth; bandwidth buckets
    get BANDWIDTH_THRESH extra bytes, since they send while that much is left.
    """
    a = Args(conf, element)
    r = a.read_mp("RATE", parse_bandwidth if is_bandwidth else parse_unsigned, 0)
    dur_msec = a.read("BURST_DURATION", parse_milliseconds, 20)
    dur_specified = a.read_status
    tokens = a.read("BURST_BYTES" if is_bandwidth else "BURST_SIZE", parse_unsigned, 0)
    tokens_specified = a.read_status
    a.complete()
    if dur_specified and tokens_specified:
        raise ConfigError("cannot specify both BURST_DURATION and BURST_SIZE")
    if not tokens_specified:
        t = (r * dur_msec) // 1000
        tokens = U32 if t > U32 else t
    if is_bandwidth:
        new = (tokens + BANDWIDTH_THRESH) & U32
        tokens = new if tokens < new else U32
    tb.assign(r, tokens if tokens else 1)


class RatedUnqueue(Element):
    """RatedUnqueue(RATE, [KEYWORDS])

    Pulls packets at a given rate and pushes them out.

    Pulls at most RATE packets per second from its input and pushes them to its
    output.  The rate is enforced with a token bucket that can hold 20 ms of
    tokens unless BURST_DURATION or BURST_SIZE says otherwise; while the bucket
    is empty the task sleeps on a timer, and while the upstream notifiers say
    nothing waits it sleeps until they wake it.

    Keyword arguments:

    - RATE (unsigned): packets per second.
    - BURST_DURATION (time): bucket capacity as RATE times this duration.
    - BURST_SIZE (unsigned): bucket capacity in packets.  At most one of
      BURST_DURATION and BURST_SIZE may be given.

    Handlers: ``rate`` (read/write), ``active`` (read/write), ``calls`` (read:
    task statistics), task handlers.

    Example: ``InfiniteSource -> Queue(10) -> RatedUnqueue(100) -> Discard``
    """

    port_count = "1/1"
    processing = "l/h"
    is_bandwidth = False

    def __init__(self) -> None:
        super().__init__()
        self.tb = TokenBucket()
        self.task = Task(self.run_task, self)
        self.timer = _task_timer(self.task, self)
        self.signal = NotifierSignal.busy()
        self.runs = self.pushes = self.failed_pulls = self.empty_runs = 0
        self.active = True

    def can_live_reconfigure(self) -> bool:
        return True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        configure_token_bucket(self, self.tb, conf, self.is_bandwidth)

    def initialize(self, errh: ErrorHandler) -> None:
        clock = self.router.master.clock
        self.tb.now_ticks = lambda: jiffies(clock.now())
        self.task.initialize(self, True)
        self.signal = upstream_empty_signal(self, 0, self.task)
        self.timer.initialize(self)

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        """Hot-swap: carry over the task statistics shown by ``calls``."""
        if isinstance(old, RatedUnqueue):
            self.runs, self.pushes = old.runs, old.pushes
            self.failed_pulls, self.empty_runs = old.failed_pulls, old.empty_runs

    def _want(self) -> int:
        return 1

    def run_task(self) -> bool:
        worked = False
        self.runs += 1
        if not self.active:
            return False
        tb = self.tb
        tb.refill()
        want = self._want()
        if tb.contains(want):
            b = self.inputs[0].pull(1)
            if b is not None:
                tb.remove(b.byte_count() if self.is_bandwidth else 1)
                self.outputs[0].push(b)
                self.pushes += 1
                worked = True
            else:
                self.failed_pulls += 1
                if not self.signal.active():
                    return False
        else:
            self.timer.schedule_after(ticks_to_ns(tb.time_until_contains(want)))
            self.empty_runs += 1
            return False
        self.task.fast_reschedule()
        if not worked:
            self.empty_runs += 1
        return worked

    def rate_string(self) -> str:
        r = self.tb.rate()
        return unparse_bandwidth(r) if self.is_bandwidth else str(r)

    def add_handlers(self) -> None:
        self.add_read_handler("calls", lambda: (
            f"{self.runs} calls to run_task()\n{self.empty_runs} empty runs\n"
            f"{self.pushes} pushes\n{self.failed_pulls} failed pulls\n"))
        self.add_read_handler("rate", self.rate_string)
        add_keyword_write_handler(self, "rate", "0 RATE")
        self.add_read_handler("active", lambda: self.active, CHECKBOX)

        def set_active(v: bool) -> None:
            self.active = v

        self.add_write_handler("active", _bool_write(set_active), CHECKBOX)
        self.add_task_handlers(self.task)
        self.add_read_handler("config", self.rate_string)  # not CALM: the rate can change


class BandwidthRatedUnqueue(RatedUnqueue):
    """BandwidthRatedUnqueue(RATE, [KEYWORDS])

    Pulls packets at a given bandwidth and pushes them out.

    Like RatedUnqueue, but RATE is a bandwidth (such as "384kbps" or
    "2000Bps") and tokens are bytes.  The bucket keeps a reserve of 131072
    bytes on top of its burst capacity; a packet may be pulled whenever the
    bucket holds at least the reserve, and its length is then taken out, so
    the long-run output matches RATE.

    Keyword arguments:

    - RATE (bandwidth).
    - BURST_DURATION (time): bucket capacity as RATE times this duration
      (default 20 ms).
    - BURST_BYTES (unsigned): bucket capacity in bytes.

    Handlers: ``rate`` (read/write), ``active`` (read/write), ``calls``, task
    handlers.

    Example: ``src -> Queue -> BandwidthRatedUnqueue(1Mbps) -> dst``
    """

    is_bandwidth = True

    def _want(self) -> int:
        return BANDWIDTH_THRESH


def _is_unset_timestamp(ns: int) -> bool:
    """Click checks ``timestamp_anno().sec() == 0`` to see if a timestamp is unset."""
    return ns // NSEC == 0


class DelayUnqueue(Element):
    """DelayUnqueue(DELAY)

    Pull-to-push converter that holds each packet for a while.

    Pulls packets from its input and pushes each out no earlier than DELAY
    seconds after its timestamp annotation (packets without a timestamp are
    stamped with the current time first).  The packet's timestamp becomes the
    time it was due.  DelayUnqueue holds one packet at a time, sleeping on a
    timer until it is due and listening to upstream notifiers while nothing
    waits.

    Handlers: ``delay`` (read/write), task handlers.

    Example: ``src -> Queue -> DelayUnqueue(0.2s) -> dst``
    """

    port_count = "1/1"
    processing = "l/h"

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0
        self.p: int | None = None
        self.task = Task(self.run_task, self)
        self.timer = _task_timer(self.task, self)
        self.signal = NotifierSignal.busy()

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.delay = a.read_mp("DELAY", parse_timestamp, 0)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        self.task.initialize(self, True)
        self.timer.initialize(self)
        self.signal = upstream_empty_signal(self, 0, self.task)

    def cleanup(self, stage: int) -> None:
        if self.p is not None:
            self.router.pool.release1(self.p)
            self.p = None

    def run_task(self) -> bool:
        worked = False
        pool = self.router.pool
        clock = self.router.master.clock
        while True:
            if self.p is None:
                b = self.inputs[0].pull(1)
                if b is not None:
                    s = int(b.idx[0])
                    if _is_unset_timestamp(int(pool.ts[s])):
                        pool.ts[s] = clock.now()
                    pool.ts[s] += self.delay
                    self.p = s
            if self.p is None:
                if not self.signal.active():
                    return worked
                break
            now = clock.now()
            ts = int(pool.ts[self.p])
            if ts <= now:
                s, self.p = self.p, None
                self.outputs[0].push(PacketBatch.one(pool, s))
                worked = True
                continue
            if ts - timer_adjustment(self) > now:
                schedule_at_wall(self, self.timer, ts - timer_adjustment(self))
                return False
            break
        self.task.fast_reschedule()
        return worked

    def add_handlers(self) -> None:
        self.add_read_handler("delay", lambda: unparse_interval(self.delay))

        def write_delay(value: str, errh: ErrorHandler) -> None:
            try:
                self.delay = parse_timestamp(value.strip(), True)
            except ConfigError:
                raise ConfigError("expected time in seconds") from None

        self.add_write_handler("delay", write_delay)
        self.add_task_handlers(self.task)


class LinkUnqueue(Storage):
    """LinkUnqueue(LATENCY, BANDWIDTH)

    Emulates a serial link: pull-to-push with latency and bandwidth.

    Pulls packets from its input and pushes them out as if they had crossed a
    link of the given LATENCY (a time) and BANDWIDTH (such as "384kbps").  Each
    packet takes LATENCY plus its transmission time (length, including the
    extra-length annotation, over BANDWIDTH), and waits behind the packets
    ahead of it on the link.  LinkUnqueue pulls only while the link has room,
    so put a Queue in front of it to model the link's queue.  Timestamps of
    emitted packets are set to their arrival times.

    Handlers: ``latency``, ``bandwidth`` (read/write; writing resets the link),
    ``size`` (read: packets on the link), ``reset`` (write: drop them), task
    handlers.

    Example: ``src -> Queue -> LinkUnqueue(5ms, 1Mbps) -> dst``
    """

    port_count = "1/1"
    processing = "l/h"

    def __init__(self) -> None:
        super().__init__()
        self.latency = 0
        self.bandwidth = 0  # in units of 100 bytes per second
        self.link: deque[int] = deque()
        self.back_to_back = False
        self.task = Task(self.run_task, self)
        self.timer = _task_timer(self.task, self)
        self.signal = NotifierSignal.busy()

    def cast(self, name: str) -> Element | None:
        if name == "Storage":
            return self
        return super().cast(name)

    def size(self) -> int:
        return len(self.link)

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        latency = a.read_mp("LATENCY", parse_timestamp, 0)
        bw = a.read_mp("BANDWIDTH", parse_bandwidth, 0)
        a.complete()
        if bw < 100:
            raise ConfigError("bandwidth too small, minimum 100Bps")
        self.latency = latency
        self.bandwidth = bw // 100

    def initialize(self, errh: ErrorHandler) -> None:
        self.task.initialize(self, True)
        self.timer.initialize(self)
        self.signal = upstream_empty_signal(self, 0, self.task)
        self.capacity = 0x7FFFFFFF
        self.back_to_back = False

    def cleanup(self, stage: int) -> None:
        if self.link:
            self.router.pool.release(np.array(self.link, np.int32))
            self.link.clear()

    def _delay_by_bandwidth(self, s: int, start: int) -> None:
        pool = self.router.pool
        extra = int(pool.anno[s, EXTRA_LENGTH_ANNO_OFFSET: EXTRA_LENGTH_ANNO_OFFSET + 4].view(np.uint32)[0])
        length = (int(pool.length[s]) + extra) & U32
        delay_us = ((length * 10000) & U32) // self.bandwidth
        pool.ts[s] = start + delay_us * 1000

    def run_task(self) -> bool:
        worked = False
        pool = self.router.pool
        clock = self.router.master.clock
        now = clock.now()
        now_delayed = now + self.latency
        link = self.link
        while not link or int(pool.ts[link[-1]]) <= now_delayed:
            b = self.inputs[0].pull(1)
            if b is None:
                self.back_to_back = False
                break
            s = int(b.idx[0])
            if link:
                self._delay_by_bandwidth(s, int(pool.ts[link[-1]]) if self.back_to_back else now_delayed)
            else:
                self._delay_by_bandwidth(s, now_delayed)
            link.append(s)
            worked = self.back_to_back = True
        while link and int(pool.ts[link[0]]) <= now:
            s = link.popleft()
            self.outputs[0].push(PacketBatch.one(pool, s))
            worked = True
        if link:
            expiry = int(pool.ts[link[0]])
            if self.signal.active():
                expiry2 = int(pool.ts[link[-1]]) - self.latency
                if expiry2 < expiry:
                    expiry = expiry2
            expiry -= timer_adjustment(self)
            if expiry <= now:
                self.task.fast_reschedule()
            else:
                schedule_at_wall(self, self.timer, expiry)
        elif self.signal.active():
            self.task.fast_reschedule()
        return worked

    def _full_reset(self) -> None:
        self.cleanup(0)
        self.timer.unschedule()
        self.task.reschedule()

    def add_handlers(self) -> None:
        self.add_read_handler("latency", lambda: unparse_interval(self.latency), CALM)
        self.add_read_handler("bandwidth", lambda: self.bandwidth * 100, CALM)
        self.add_read_handler("size", lambda: len(self.link))

        def reset(value: str, errh: ErrorHandler) -> None:
            self._full_reset()

        def write_latency(value: str, errh: ErrorHandler) -> None:
            try:
                self.latency = parse_timestamp(value.strip())
            except ConfigError:
                raise ConfigError("latency must be a timestamp") from None
            self._full_reset()

        def write_bandwidth(value: str, errh: ErrorHandler) -> None:
            try:
                bw = parse_bandwidth(value.strip())
            except ConfigError:
                raise ConfigError("invalid bandwidth") from None
            if bw < 100:
                raise ConfigError("bandwidth too small, minimum 100Bps")
            self.bandwidth = bw // 100
            self._full_reset()

        self.add_write_handler("reset", reset, BUTTON)
        self.add_write_handler("latency", write_latency)
        self.add_write_handler("bandwidth", write_bandwidth)
        self.add_task_handlers(self.task)
