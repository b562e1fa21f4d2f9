"""RandomSample: passes each packet with a given probability."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import parse_bool, parse_unsigned_fixed_point, uncomment, unparse_real2
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM
from clickos.elements.standard.info import click_random
from clickos.packet.batch import PacketBatch

SHIFT = 28
ONE = 1 << SHIFT


def _prob(text: str) -> int:
    return parse_unsigned_fixed_point(text, SHIFT)


class RandomSample(Element):
    """RandomSample([P, KEYWORDS])

    Samples packets with probability P.

    Each packet goes to output 0 with probability P; the others are dropped,
    or emitted on output 1 if there is one.  Without P, give SAMPLE or DROP.

    Keyword arguments:

    - ``SAMPLE`` (probability): the sampling probability, like P.
    - ``DROP`` (probability): the probability of dropping; the same as a
      sampling probability of 1 minus it.
    - ``ACTIVE`` (boolean): when false, every packet goes to output 0.
      Default true.

    Handlers: ``sampling_prob`` and ``drop_prob`` (read/write) the
    probabilities; ``active`` (read/write); ``drops`` (read) how many packets
    were not sampled; ``config`` (read).

    Example: ``... -> RandomSample(0.1) -> ToDump(sample.pcap)``
    """

    port_count = "1/1-2"
    processing = "a/ah"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.prob = ONE
        self.active = True
        self.drops = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        p = a.read_p("P", _prob, None)
        sample = a.read("SAMPLE", _prob, None)
        drop = a.read("DROP", _prob, None)
        active = a.read("ACTIVE", parse_bool, True)
        a.complete()
        prob = ONE if p is None else p
        if sample is not None:
            prob = sample
        if sample is not None and drop is not None:
            raise ConfigError("give at most one of SAMPLE and DROP")
        if drop is not None:
            prob = ONE - drop
        if prob > ONE or prob < 0:
            raise ConfigError("sampling probability must be between 0 and 1")
        self.prob, self.active = prob, active

    def initialize(self, errh: ErrorHandler) -> None:
        self.drops = 0

    def _split(self, batch: PacketBatch) -> tuple[PacketBatch | None, PacketBatch | None]:
        if not self.active or self.prob >= ONE:
            return batch, None
        r = click_random().integers(0, ONE, size=len(batch), dtype=np.int64)
        keep = r < self.prob
        nkeep = int(keep.sum())
        if nkeep == len(batch):
            return batch, None
        self.drops += len(batch) - nkeep
        if nkeep == 0:
            return None, batch
        return batch.take(keep), batch.take(~keep)

    def push(self, port: int, batch: PacketBatch) -> None:
        keep, rest = self._split(batch)
        if keep is not None:
            self.outputs[0].push(keep)
        if rest is not None:
            self.checked_output_push(1, rest)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        keep, rest = self._split(batch)
        if rest is not None:
            self.checked_output_push(1, rest)
        return keep

    def add_handlers(self) -> None:
        def writer(drop: bool) -> Callable[[str, ErrorHandler], None]:
            def w(value: str, errh: ErrorHandler) -> None:
                try:
                    p = _prob(uncomment(value).strip())
                except ConfigError:
                    p = -1
                if p < 0 or p > ONE:
                    raise ConfigError("Must be given a number between 0.0 and 1.0")
                self.prob = ONE - p if drop else p
            return w

        self.add_read_handler("sampling_prob", lambda: unparse_real2(self.prob, SHIFT))
        self.add_write_handler("sampling_prob", writer(False))
        self.add_read_handler("drop_prob", lambda: unparse_real2(ONE - self.prob, SHIFT))
        self.add_write_handler("drop_prob", writer(True))
        self.add_data_handlers("active", self, "active", "bool")
        self.add_read_handler("drops", lambda: self.drops)
        self.add_read_handler("config", lambda: f"SAMPLE {unparse_real2(self.prob, SHIFT)}, "
                              f"ACTIVE {'true' if self.active else 'false'}", CALM)
