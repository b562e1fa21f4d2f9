"""Traffic shaping: Shaper, BandwidthShaper, RatedSplitter, BandwidthRatedSplitter
and DelayShaper.

The shapers are pull elements paced by a GapRate; the splitters are push
elements that divert traffic above a token-bucket rate to output 1.  Both keep
Click's integer arithmetic (see clickos.core.rates) so packet counts match.
"""

from __future__ import annotations

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bandwidth,
    parse_timestamp,
    parse_unsigned,
    unparse_bandwidth,
    unparse_interval,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM, NONEXCLUSIVE
from clickos.core.notifier import SEARCH_CONTINUE_WAKE, Notifier, NotifierSignal, upstream_empty_signal
from clickos.core.rates import BANDWIDTH_THRESH, GapRate, TokenBucket, jiffies
from clickos.core.task import Timer
from clickos.elements.standard.queues import EMPTY, add_keyword_write_handler
from clickos.elements.standard.unqueue import (
    _is_unset_timestamp,
    configure_token_bucket,
    schedule_at_wall,
    timer_adjustment,
)
from clickos.packet.batch import PacketBatch


class Shaper(Element):
    """Shaper(RATE)

    Pull element that lets at most RATE packets per second through.

    Each pull on output 0 is passed upstream only if the rate allows a packet
    now; otherwise it returns nothing.  The output is therefore only as smooth
    as the pulls it receives: many evenly spaced pulls give a steady RATE.
    Pulls on the optional output 1 get a packet from upstream exactly when
    output 0 would have refused one, so output 1 carries unshaped traffic
    (useful, for example, to sample packets in pull context).

    Handlers: ``rate`` (read/write), ``reset`` (write: restart the rate
    accounting).

    Example::

        src -> Queue -> Shaper(10)
          => ( [0] -> Print -> [0]; [1] -> [1] )
          => RoundRobinSched -> sink;
    """

    port_count = "1/1-2"
    processing = "l"
    is_bandwidth = False

    def __init__(self) -> None:
        super().__init__()
        self.gap = GapRate()

    def can_live_reconfigure(self) -> bool:
        return True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        rate = a.read_mp("RATE", parse_bandwidth if self.is_bandwidth else parse_unsigned, 0)
        a.complete()
        clock = self.router.master.clock
        if not self.gap.set_rate(rate, clock.now):
            errh.error(f"rate too large; lowered to {GapRate.MAX_RATE}")

    def _now(self) -> int:
        return self.router.master.clock.now()

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        gap = self.gap
        inp = self.inputs[0]
        if max == 1:
            need = gap.need_update(self._now())
            if port == 0:
                if need:
                    b = inp.pull(1)
                    if b is not None:
                        gap.update()
                    return b
                return None
            return inp.pull(1) if not need else None
        got: list[np.ndarray] = []
        for _ in range(max):
            need = gap.need_update(self._now())
            if port == 0:
                if not need:
                    break
                b = inp.pull(1)
                if b is None:
                    break
                gap.update()
            else:
                if need:
                    break
                b = inp.pull(1)
                if b is None:
                    break
            got.append(b.idx)
        if not got:
            return None
        return PacketBatch(self.router.pool, np.concatenate(got) if len(got) > 1 else got[0])

    def rate_string(self) -> str:
        return unparse_bandwidth(self.gap.rate) if self.is_bandwidth else str(self.gap.rate)

    def add_handlers(self) -> None:
        self.add_read_handler("rate", self.rate_string)
        add_keyword_write_handler(self, "rate", "0 RATE")
        self.add_read_handler("config", self.rate_string)  # not CALM: the rate can change

        def reset(value: str, errh: ErrorHandler) -> None:
            self.gap.reset()

        self.add_write_handler("reset", reset)


class BandwidthShaper(Shaper):
    """BandwidthShaper(RATE)

    Pull element that shapes traffic to at most RATE bytes per second.

    Like Shaper, but RATE is a bandwidth (such as "1Mbps" or "20000Bps") and
    each packet counts for its length in bytes.  Given many evenly spaced pulls
    it emits traffic at RATE with little burstiness.  Pulls on either output
    are treated alike.

    Handlers: ``rate`` (read/write), ``reset`` (write).

    Example: ``src -> Queue -> BandwidthShaper(1Mbps) -> ToDevice(eth0)``
    """

    is_bandwidth = True

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        gap = self.gap
        got: list[np.ndarray] = []
        for _ in range(max):
            if not gap.need_update(self._now()):
                break
            b = self.inputs[0].pull(1)
            if b is None:
                break
            gap.update_with(b.byte_count())
            got.append(b.idx)
        if not got:
            return None
        return PacketBatch(self.router.pool, np.concatenate(got) if len(got) > 1 else got[0])


class RatedSplitter(Element):
    """RatedSplitter(RATE, [KEYWORDS])

    Splits a packet stream at a given rate.

    Pushes incoming packets to output 0 at up to RATE packets per second, and
    any packets above that rate to output 1 (dropping them if output 1 is
    absent).  Unlike a meter, RATE packets per second still leave on output 0
    when the input rate is higher.  A token bucket holding 20 ms of tokens
    enforces the rate; BURST_DURATION or BURST_SIZE changes its capacity.

    Keyword arguments:

    - RATE (unsigned): packets per second.
    - BURST_DURATION (time): bucket capacity as RATE times this duration.
    - BURST_SIZE (unsigned): bucket capacity in packets.

    Handlers: ``rate`` (read/write).

    Example: sample a stream at 2000 packets per second::

        rs :: RatedSplitter(2000);
        rs [0] -> t :: Tee -> out; t [1] -> sampled;
        rs [1] -> out;
    """

    port_count = "1/1-2"
    processing = "h"
    is_bandwidth = False

    def __init__(self) -> None:
        super().__init__()
        self.tb = TokenBucket()

    def can_live_reconfigure(self) -> bool:
        return True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        configure_token_bucket(self, self.tb, conf, self.is_bandwidth)

    def initialize(self, errh: ErrorHandler) -> None:
        clock = self.router.master.clock
        self.tb.now_ticks = lambda: jiffies(clock.now())

    def push(self, port: int, batch: PacketBatch) -> None:
        tb = self.tb
        n = len(batch)
        if n == 1:
            tb.refill()
            if tb.remove_if(1):
                self.outputs[0].push(batch)
            else:
                self.checked_output_push(1, batch)
            return
        # A batch arrives at one instant: refill once, then admit what the tokens allow.
        tb.refill()
        scaled, ok = tb.rate_.scale(1)
        k = min(n, tb.tokens // scaled) if ok and scaled else 0
        if k:
            tb.counter.tokens -= k * scaled
            self.outputs[0].push(batch if k == n else PacketBatch(batch.pool, batch.idx[:k]))
        if k < n:
            self.checked_output_push(1, PacketBatch(batch.pool, batch.idx[k:]))

    def rate_string(self) -> str:
        r = self.tb.rate()
        return unparse_bandwidth(r) if self.is_bandwidth else str(r)

    def add_handlers(self) -> None:
        self.add_read_handler("rate", self.rate_string)
        add_keyword_write_handler(self, "rate", "0 RATE")
        self.add_read_handler("config", self.rate_string)  # not CALM: the rate can change


class BandwidthRatedSplitter(RatedSplitter):
    """BandwidthRatedSplitter(RATE, [KEYWORDS])

    Splits a packet stream at a given bandwidth.

    Pushes incoming packets to output 0 while they stay within RATE (a
    bandwidth such as "384kbps"), and the excess to output 1 (dropped if output
    1 is absent).  The token bucket counts bytes and keeps a reserve of 131072
    bytes: a packet goes to output 0 whenever the bucket holds at least the
    reserve, and its length is then taken out.

    Keyword arguments:

    - RATE (bandwidth).
    - BURST_DURATION (time): bucket capacity as RATE times this duration
      (default 20 ms).
    - BURST_BYTES (unsigned): bucket capacity in bytes.

    Handlers: ``rate`` (read/write).

    Example: ``src -> s :: BandwidthRatedSplitter(1Mbps) -> dst; s [1] -> Discard``
    """

    is_bandwidth = True

    def push(self, port: int, batch: PacketBatch) -> None:
        tb = self.tb
        tb.refill()
        lengths = batch.lengths().tolist() if len(batch) > 1 else [batch.byte_count()]
        ok = np.zeros(len(lengths), bool)
        for i, length in enumerate(lengths):
            if tb.contains(BANDWIDTH_THRESH):
                tb.remove(length)
                ok[i] = True
        if ok.all():
            self.outputs[0].push(batch)
        elif not ok.any():
            self.checked_output_push(1, batch)
        else:
            self.outputs[0].push(PacketBatch(batch.pool, batch.idx[ok]))
            self.checked_output_push(1, PacketBatch(batch.pool, batch.idx[~ok]))


class DelayShaper(Element):
    """DelayShaper(DELAY)

    Pull element that delays packets by at least DELAY.

    Pulls packets from its input and returns each one no earlier than DELAY
    seconds after its timestamp annotation (packets without one are stamped
    with the current time when pulled).  On output the timestamp is set to the
    current time.  DelayShaper holds at most one packet; pulls before it is
    due return nothing.  It provides an "empty" notifier that is on only while
    a packet is due or may arrive, so pull tasks downstream sleep while it
    waits (its timer wakes them).

    Handlers: ``delay`` (read/write).

    Example: ``src -> SetTimestamp -> Queue -> DelayShaper(0.05s) -> sink``
    """

    port_count = "1/1"
    processing = "l"

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0
        self.p: int | None = None
        self.note = Notifier(SEARCH_CONTINUE_WAKE)
        self.upstream = NotifierSignal.busy()
        self.timer = Timer(lambda _t: self.note.set_active(True), self)

    def notifier(self, isoutput: bool, port: int, kind: str) -> Notifier | None:
        return self.note if kind == EMPTY else None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.note.initialize(EMPTY, self.router)
        a = Args(conf, self)
        self.delay = a.read_mp("DELAY", parse_timestamp, 0)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        self.timer.initialize(self)
        # Upstream activity marks our signal active without waking our listeners;
        # those listeners were also registered upstream by the two-pass search.
        self.upstream = upstream_empty_signal(self, 0, lambda _n: self.note.signal.set_active(True))

    def cleanup(self, stage: int) -> None:
        if self.p is not None:
            self.router.pool.release1(self.p)
            self.p = None

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        pool = self.router.pool
        clock = self.router.master.clock
        if self.p is None:
            b = self.inputs[0].pull(1)
            if b is not None:
                s = int(b.idx[0])
                if _is_unset_timestamp(int(pool.ts[s])):
                    pool.ts[s] = clock.now()
                pool.ts[s] += self.delay
                self.p = s
        if self.p is not None:
            now = clock.now()
            ts = int(pool.ts[self.p])
            if ts <= now:
                s, self.p = self.p, None
                pool.ts[s] = now
                return PacketBatch.one(pool, s)
            expiry = ts - timer_adjustment(self)
            if expiry <= now:
                self.note.set_active(True)
            else:
                schedule_at_wall(self, self.timer, expiry)
                self.note.sleep()
        elif not self.upstream.active():
            self.note.sleep()
        return None

    def add_handlers(self) -> None:
        self.add_read_handler("delay", lambda: unparse_interval(self.delay), CALM)

        def write_delay(value: str, errh: ErrorHandler) -> None:
            try:
                self.delay = parse_timestamp(value.strip())
            except ConfigError:
                raise ConfigError("delay must be a timestamp") from None

        self.add_write_handler("delay", write_delay, NONEXCLUSIVE)
