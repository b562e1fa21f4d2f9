"""Counter and AverageCounter: count packets and bytes, measure rates."""

from __future__ import annotations

from clickos.core.args import Args
from clickos.core.confparse import parse_any, parse_double
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.ewma import RateEWMA, unparse_real2
from clickos.core.handlercall import HandlerCall
from clickos.core.handlers import BUTTON, UNCOMMON
from clickos.packet.batch import PacketBatch

UNSET = (1 << 64) - 1


def _split_call(text: str, what: str) -> tuple[int, HandlerCall]:
    words = text.strip().split(None, 1)
    try:
        n = int(words[0], 0) if words else -1
        if n < 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{what} type mismatch") from None
    return n, HandlerCall(words[1] if len(words) > 1 else "")


class Counter(Element):
    """Counter([KEYWORDS])

    Counts the packets and bytes that pass through it, and their rates.

    Packets pass unchanged from input to output.  COUNT_CALL and
    BYTE_COUNT_CALL fire a write handler once when the packet (or byte) count
    reaches a value.

    Keyword arguments:

    - COUNT_CALL "N HANDLER [VALUE]": call HANDLER when the count reaches N.
    - BYTE_COUNT_CALL "N HANDLER [VALUE]": call HANDLER once at least N bytes passed.

    Handlers: ``count``, ``byte_count`` (read); ``rate``, ``byte_rate``,
    ``bit_rate`` (read, moving averages per second); ``reset``/``reset_counts``
    (write); ``count_call``, ``byte_count_call`` (write: new trigger and call).

    Example: ``FromDevice(0) -> c :: Counter -> Discard``, then read ``c.count``.
    """

    port_count = "1/1"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.byte_count = 0
        self.count_trigger = UNSET
        self.byte_trigger = UNSET
        self.count_h: HandlerCall | None = None
        self.byte_h: HandlerCall | None = None
        self.count_triggered = False
        self.byte_triggered = False

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        cc = a.read("COUNT_CALL", parse_any, default=None)
        bc = a.read("BYTE_COUNT_CALL", parse_any, default=None)
        a.complete()
        if cc is not None:
            self.count_trigger, self.count_h = _split_call(cc, "COUNT_CALL")
        if bc is not None:
            self.byte_trigger, self.byte_h = _split_call(bc, "BYTE_COUNT_CALL")

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import kernels

        self._sum = kernels.sum_lengths
        if self.count_h:
            self.count_h.initialize_write(self, errh)
        if self.byte_h:
            self.byte_h.initialize_write(self, errh)
        clock = self.router.master.clock
        self.rate = RateEWMA(4, 10, clock.recent)
        self.byte_rate = RateEWMA(4, 4, clock.recent)
        self.reset()
        self._triggers = self.count_h is not None or self.byte_h is not None
        self._length = self.router.pool.length

    def reset(self) -> None:
        self.count = self.byte_count = 0
        self.count_triggered = self.byte_triggered = False

    def is_batch_transparent(self) -> bool:
        return not (self.count_h or self.byte_h)

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        if isinstance(old, Counter):
            self.count, self.byte_count = old.count, old.byte_count
            self.rate, self.byte_rate = old.rate, old.byte_rate

    def _count_batch(self, batch: PacketBatch) -> None:
        idx = batch.idx
        n = len(idx)
        if n == 1:
            nbytes = int(self.router.pool.length[idx[0]])
        else:
            nbytes = self._sum(self.router.pool.length, idx)
        self.count += n
        self.byte_count += nbytes
        self.rate.update(n)
        self.byte_rate.update(nbytes)

    def push(self, port: int, batch: PacketBatch) -> None:
        if self._triggers:
            for b in self._process_with_triggers(batch):
                self.outputs[0].push(b)
            return
        self._count_batch(batch)
        self.outputs[0].push(batch)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        if self._triggers:
            parts = self._process_with_triggers(batch)
            return PacketBatch.concat(parts)
        self._count_batch(batch)
        return batch

    def _process_with_triggers(self, batch: PacketBatch) -> list[PacketBatch]:
        """One packet at a time, so a trigger fires exactly after its packet is counted
        (and, in push context, before that packet goes downstream)."""
        out = []
        for p in batch:
            one = p.as_batch()
            self._count_batch(one)
            if self.count == self.count_trigger and not self.count_triggered:
                self.count_triggered = True
                if self.count_h:
                    self.count_h.call_write()
            if self.byte_count >= self.byte_trigger and not self.byte_triggered:
                self.byte_triggered = True
                if self.byte_h:
                    self.byte_h.call_write()
            out.append(one)
        return out

    def add_handlers(self) -> None:
        self.add_read_handler("count", lambda: self.count)
        self.add_read_handler("byte_count", lambda: self.byte_count)

        def rate() -> str:
            self.rate.update(0)
            return self.rate.unparse_rate()

        def byte_rate() -> str:
            self.byte_rate.update(0)
            return self.byte_rate.unparse_rate()

        def bit_rate() -> str:
            self.byte_rate.update(0)
            br = self.byte_rate
            if br.scale >= 3:
                return unparse_real2(br.avg * 1000, br.scale - 3)
            return unparse_real2(br.avg * 1000 * 8, br.scale)

        self.add_read_handler("rate", rate)
        self.add_read_handler("bit_rate", bit_rate)
        self.add_read_handler("byte_rate", byte_rate)
        self.add_write_handler("reset", lambda v, e: self.reset(), BUTTON)
        self.add_write_handler("reset_counts", lambda v, e: self.reset(), BUTTON | UNCOMMON)
        self.add_read_handler("count_call",
                              lambda: str(self.count_trigger) if self.count_h else "")

        def write_call(which: str):  # noqa: ANN202
            def write(value: str, errh: ErrorHandler) -> None:
                words = value.strip().split(None, 1)
                try:
                    n = int(words[0], 0)
                except (ValueError, IndexError):
                    raise ConfigError(f"'{which}' first word should be unsigned (count)") from None
                h = HandlerCall(words[1] if len(words) > 1 else "")
                if h:
                    h.initialize_write(self, errh)
                if which == "count_call":
                    self.count_trigger, self.count_h, self.count_triggered = n, h, False
                else:
                    self.byte_trigger, self.byte_h, self.byte_triggered = n, h, False
                self._triggers = bool(self.count_h) or bool(self.byte_h)
            return write

        self.add_write_handler("count_call", write_call("count_call"))
        self.add_write_handler("byte_count_call", write_call("byte_count_call"))


class AverageCounter(Element):
    """AverageCounter([IGNORE])

    Measures the average packet and byte rate since the first packet.

    Counts packets and bytes, remembering when the first and the latest packet
    passed; the rate is the count divided by that interval.  Packets in the first
    IGNORE seconds are not counted (the interval starts IGNORE seconds later).

    Handlers: ``count``, ``byte_count``, ``rate`` (packets/s), ``byte_rate``
    (read); ``reset`` (write).

    Example: ``InfiniteSource(BURST 256, LIMIT 1000000, STOP true) -> ac :: AverageCounter -> Discard``,
    then ``click -h ac.rate``.
    """

    batch_transparent = True
    port_count = "1/1"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.ignore_ns = 0
        self.count = 0
        self.byte_count = 0
        self.first = 0
        self.last = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        ignore = a.read_p("IGNORE", parse_double, default=0.0)
        a.complete()
        self.ignore_ns = int(ignore * 1e9)

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import kernels

        self._sum = kernels.sum_lengths
        self._clock = self.router.master.clock
        self.reset()

    def reset(self) -> None:
        self.count = self.byte_count = 0
        self.first = self.last = 0

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        if isinstance(old, AverageCounter):
            self.count, self.byte_count = old.count, old.byte_count
            self.first, self.last = old.first, old.last

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        now = self._clock.now_steady()
        if self.first == 0:
            self.first = now
        if now - self.first >= self.ignore_ns:
            idx = batch.idx
            self.count += len(idx)
            self.byte_count += (int(self.router.pool.length[idx[0]]) if len(idx) == 1
                                else self._sum(self.router.pool.length, idx))
        self.last = now
        return batch

    def push(self, port: int, batch: PacketBatch) -> None:
        self.outputs[0].push(self.simple_action(batch))

    def _rate(self, count: int) -> str:
        # Click measures in jiffies (ms) and never divides by less than one.
        d = self.last - self.first - self.ignore_ns
        if d < 1_000_000:
            d = 1_000_000
        return f"{count * 1e9 / d:.12g}"

    def add_handlers(self) -> None:
        self.add_read_handler("count", lambda: self.count)
        self.add_read_handler("byte_count", lambda: self.byte_count)
        self.add_read_handler("rate", lambda: self._rate(self.count))
        self.add_read_handler("byte_rate", lambda: self._rate(self.byte_count))
        self.add_write_handler("reset", lambda v, e: self.reset(), BUTTON)
