"""IPRateMonitor: packet or byte rates per IP address prefix, refined where busy."""

from __future__ import annotations

import random

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    fixed_point,
    parse_bool,
    parse_int,
    parse_ip_address,
    parse_unsigned,
    parse_word,
    split_args,
    unparse_real2,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import PacketPool

STABILITY, SCALE = 5, 10
JIFFY_HZ = 1000
EPOCH_SHIFT = 3                       # an epoch is 8 jiffies
EPOCH_FREQ = JIFFY_HZ >> EPOCH_SHIFT  # epochs per second
FWD_RATE_ANNO, REV_RATE_ANNO = 20, 24
MEMMAX_MIN = 100
COUNTER_SIZE = 40                     # bytes charged per counter (as Click's struct)
STATS_SIZE = 2080                     # bytes charged per 256-entry table


class _Rates:
    """Two moving averages (forward, reverse) of amounts per epoch."""

    __slots__ = ("epoch", "cur", "avg")

    def __init__(self, epoch: int, other: _Rates | None = None) -> None:
        if other is not None:
            self.epoch, self.cur, self.avg = other.epoch, list(other.cur), list(other.avg)
        else:
            self.epoch, self.cur, self.avg = epoch, [0, 0], [0, 0]

    @staticmethod
    def _fold(avg: int, x: int) -> int:
        xs = (x << SCALE) + (1 << (STABILITY - 1))
        if xs < avg:
            return avg - ((avg - xs) >> STABILITY)
        return avg + ((xs - avg) >> STABILITY)

    def update(self, now: int, delta: int, which: int = 0) -> None:
        if now != self.epoch:
            gap = (now - self.epoch - 1) & 0xFFFFFFFF
            for i in (0, 1):
                a = self._fold(self.avg[i], self.cur[i])
                for _ in range(min(gap, 64)):
                    a = self._fold(a, 0)
                self.avg[i] = 0 if gap > 64 else a
                self.cur[i] = 0
            self.epoch = now
        self.cur[which] += delta


class _Counter:
    __slots__ = ("rates", "next_level", "anno_this")

    def __init__(self, rates: _Rates) -> None:
        self.rates = rates
        self.next_level: _Stats | None = None
        self.anno_this = 0


class _Stats:
    __slots__ = ("parent", "counter")

    def __init__(self) -> None:
        self.parent: _Counter | None = None
        self.counter: list[_Counter | None] = [None] * 256


class IPRateMonitor(Element):
    """IPRateMonitor(TYPE, RATIO, THRESH [, MEMORY, ANNO])

    Measures traffic rates to and from IP addresses, at finer prefixes where
    traffic is heavy.

    Rates are kept per first address byte (``18``); when a prefix's rate in
    either direction reaches THRESH per second it is split into its 256
    sub-prefixes (``18.26``), and so on down to single addresses.  Packets on
    input 0 count for their source address (forward rate), packets on input 1
    for their destination (reverse rate); packets leave on the output with the
    input's number.  Idle branches are folded back about once a second, and
    when MEMORY is exceeded.

    Arguments:

    - TYPE: ``PACKETS`` or ``BYTES`` (IP length).
    - RATIO (real between 0 and 1): the fraction of packets that update rates.
      THRESH is given as if RATIO were 1.
    - THRESH (integer): rate, per second, at which a prefix is split.
    - MEMORY (kilobytes): memory limit (at least 100; 0, the default, means
      none).
    - ANNO (boolean): store each packet's forward and reverse rates (of its
      most specific prefix) in its FWD_RATE and REV_RATE annotations (bytes
      20 and 24).  Default true.

    Handlers: ``look`` (read: epochs since reset, then one line per active
    prefix with its forward and reverse rates, sub-prefixes indented),
    ``thresh``, ``mem`` (bytes used), ``memmax`` (read/write, write in KB),
    ``reset`` (write: forget all rates), ``anno_level`` (write ``ADDR LEVEL
    SECONDS``: stop splitting the prefix of ADDR at LEVEL 0-3 for that long).

    Example: ``IPRateMonitor(PACKETS, 0.5, 256, 600)``
    """

    port_count = "1-2/1-2"
    processing = "a"
    flow_code = "#/#"

    def __init__(self) -> None:
        super().__init__()
        self.count_packets = True
        self.anno = True
        self.thresh = 1
        self.memmax = 0
        self.ratio = 1 << 16
        self.base = _Stats()
        self.agelist: list[_Stats] = []
        self.alloced = 0
        self.resettime = 0
        self._prev_fold = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        what = a.read_mp("TYPE", parse_word, "")
        ratio = a.read_mp("RATIO", fixed_point(16), 1 << 16)
        thresh = a.read_mp("THRESH", parse_int, 1)
        memmax = a.read_p("MEMORY", parse_unsigned, 0)
        self.anno = a.read_p("ANNO", parse_bool, True)
        a.complete()
        if what.upper() == "PACKETS":
            self.count_packets = True
        elif what.upper() == "BYTES":
            self.count_packets = False
        else:
            raise ConfigError('monitor type should be "PACKETS" or "BYTES"')
        if memmax and memmax < MEMMAX_MIN:
            memmax = MEMMAX_MIN
        self.memmax = memmax * 1024
        if ratio > 0x10000:
            raise ConfigError("ratio must be between 0 and 1")
        self.ratio = ratio
        self.thresh = (thresh * ratio) >> 16

    def _epoch(self) -> int:
        return (self.router.master.clock.now() * JIFFY_HZ // 1_000_000_000 >> EPOCH_SHIFT) & 0xFFFFFFFF

    def initialize(self, errh: ErrorHandler) -> None:
        self.resettime = self._epoch()
        self._prev_fold = self.resettime
        self.base = _Stats()
        self.agelist = [self.base]
        self.alloced = STATS_SIZE

    # -- the tables ---------------------------------------------------------------------
    def _make_counter(self, s: _Stats, index: int, rates: _Rates | None) -> _Counter | None:
        if self.memmax and self.alloced + COUNTER_SIZE > self.memmax:
            return None
        c = _Counter(_Rates(self._epoch(), rates))
        s.counter[index] = c
        self.alloced += COUNTER_SIZE
        return c

    def _delete(self, s: _Stats) -> None:
        """Free a table and everything below it."""
        for i, c in enumerate(s.counter):
            if c is not None:
                if c.next_level is not None:
                    self._delete(c.next_level)
                s.counter[i] = None
                self.alloced -= COUNTER_SIZE
        if s in self.agelist:
            self.agelist.remove(s)
        if s.parent is not None:
            s.parent.next_level = None
        self.alloced -= STATS_SIZE

    def _fold(self, thresh: int) -> None:
        memmax = self.memmax or int(self.alloced * 0.9)
        order = list(self.agelist)
        if random.getrandbits(1) == 0:
            order.reverse()
        now = self._epoch()
        for s in order:
            if s.parent is None or s not in self.agelist:
                continue
            r = s.parent.rates
            r.update(now, 0)
            if r.avg[0] < thresh and r.avg[1] < thresh:
                self._delete(s)
                if self.alloced < memmax:
                    break

    def _update(self, addr: int, val: int, pool: PacketPool, slot: int, forward: bool, update_ewma: bool) -> None:
        s = self.base
        c: _Counter | None = None
        now = self._epoch()
        shift = 24
        while shift >= 0:
            byte = (addr >> shift) & 255
            c = s.counter[byte]
            if c is None:
                c = self._make_counter(s, byte, None)
                if c is None:
                    return
            if update_ewma:
                c.rates.update(now, val, 0 if forward else 1)
            if c.next_level is None:
                break
            s = c.next_level
            shift -= 8
        assert c is not None
        fwd = (c.rates.avg[0] * EPOCH_FREQ) >> SCALE
        rev = (c.rates.avg[1] * EPOCH_FREQ) >> SCALE
        if self.anno:
            view = pool.anno.view(np.int32)
            view[slot, FWD_RATE_ANNO >> 2] = fwd
            view[slot, REV_RATE_ANNO >> 2] = rev
        if (c.anno_this < now and (fwd >= self.thresh or rev >= self.thresh) and shift > 0
                and (not self.memmax or self.alloced + COUNTER_SIZE + STATS_SIZE <= self.memmax)):
            nxt = _Stats()
            self.alloced += STATS_SIZE
            if self._make_counter(nxt, (addr >> (shift - 8)) & 255, c.rates) is None:
                self.alloced -= STATS_SIZE
                return
            nxt.parent = c
            c.next_level = nxt
            self.agelist.append(nxt)
        if now - self._prev_fold >= EPOCH_FREQ:
            self._fold(self.thresh)
            self._prev_fold = now

    def _packets(self, batch: PacketBatch, forward: bool) -> None:
        pool = batch.pool
        limit = pool.slot_size - 20
        for s in batch.idx.tolist():
            nh = int(pool.nh[s])
            if nh < 0 or nh > limit:
                # no IP header annotation, or one whose header would lie past the
                # end of the buffer (Click reads it unchecked): not counted
                continue
            d = pool.data[s]
            val = 1 if self.count_packets else (int(d[nh + 2]) << 8) | int(d[nh + 3])
            o = nh + (12 if forward else 16)
            addr = (int(d[o]) << 24) | (int(d[o + 1]) << 16) | (int(d[o + 2]) << 8) | int(d[o + 3])
            ewma = self.ratio >= 0x10000 or random.getrandbits(16) <= self.ratio
            self._update(addr, val, pool, s, forward, ewma)

    def push(self, port: int, batch: PacketBatch) -> None:
        self._packets(batch, port == 0)
        self.outputs[port].push(batch)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[port].pull(max)
        if batch is not None:
            self._packets(batch, port == 0)
        return batch

    # -- handlers ---------------------------------------------------------------------------
    def _print(self, s: _Stats, prefix: str, now: int) -> str:
        out = []
        for i, c in enumerate(s.counter):
            if c is None or not (c.rates.avg[0] > 0 or c.rates.avg[1] > 0):
                continue
            ip = f"{prefix}.{i}" if prefix else str(i)
            c.rates.update(now, 0)
            out.append(f"{ip}\t{unparse_real2(c.rates.avg[0] * EPOCH_FREQ, SCALE)}\t"
                       f"{unparse_real2(c.rates.avg[1] * EPOCH_FREQ, SCALE)}\n")
            if c.next_level is not None:
                out.append(self._print(c.next_level, "\t" + ip, now))
        return "".join(out)

    def add_handlers(self) -> None:
        self.add_read_handler("thresh", lambda: self.thresh)

        def look() -> str:
            now = self._epoch()
            return f"{(now - self.resettime) & 0xFFFFFFFF}\n" + self._print(self.base, "", now)

        self.add_read_handler("look", look)
        self.add_read_handler("mem", lambda: self.alloced)
        self.add_read_handler("memmax", lambda: self.memmax)

        def reset(value: str, errh: ErrorHandler) -> None:
            for i, c in enumerate(self.base.counter):
                if c is not None:
                    if c.next_level is not None:
                        self._delete(c.next_level)
                    self.base.counter[i] = None
                    self.alloced -= COUNTER_SIZE
            self.resettime = self._epoch()

        self.add_write_handler("reset", reset, BUTTON)

        def memmax(value: str, errh: ErrorHandler) -> None:
            args = split_args(value)
            if len(args) != 1:
                raise ConfigError("expecting 1 integer")
            try:
                kb = parse_int(args[0])
            except ConfigError:
                raise ConfigError("not an integer") from None
            if kb and kb < MEMMAX_MIN:
                kb = MEMMAX_MIN
            self.memmax = kb * 1024
            thresh = self.thresh
            step = max(1, int(self.thresh / 5.0))
            while self.memmax and self.alloced > self.memmax and len(self.agelist) > 1:
                self._fold(thresh)
                thresh += step

        self.add_write_handler("memmax", memmax)

        def anno_level(value: str, errh: ErrorHandler) -> None:
            args = split_args(value)
            if len(args) != 3:
                raise ConfigError("expecting 3 arguments")
            try:
                addr = int.from_bytes(parse_ip_address(args[0], self.resolve_name), "big")
            except ConfigError:
                raise ConfigError("not an IP address") from None
            try:
                level = parse_int(args[1])
                ok = 0 <= level < 4
            except ConfigError:
                ok = False
            if not ok:
                raise ConfigError("2nd argument specifies a level, between 0 and 3, to annotate")
            try:
                when = parse_int(args[2])
                ok = when >= 1
            except ConfigError:
                ok = False
            if not ok:
                raise ConfigError("3rd argument specifies when this rule expires, must be > 0")
            when = when * EPOCH_FREQ + self._epoch()
            s = self.base
            for shift in (24, 16, 8, 0):
                c = s.counter[(addr >> shift) & 255]
                if c is None:
                    return
                if level == 0:
                    c.anno_this = when
                    if c.next_level is not None:
                        self._delete(c.next_level)
                    return
                if c.next_level is None:
                    return
                s = c.next_level
                level -= 1

        self.add_write_handler("anno_level", anno_level)
