"""HashSwitch: chooses outputs by a hash of packet bytes."""

from __future__ import annotations

from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import parse_int
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.elements.standard.basic import compute_split_ok, push_ports
from clickos.packet.batch import PacketBatch


class HashSwitch(Element):
    """HashSwitch(OFFSET, LENGTH)

    Sends each packet to an output chosen by a hash of some of its bytes.

    The hash is the sum of the LENGTH bytes starting at byte OFFSET of the
    packet data, folded onto the outputs (with 2, 4 or 8 outputs the sum's
    high and low nibbles are mixed first).  Packets shorter than OFFSET +
    LENGTH go to output 0.  Packets of one flow thus stay on one output, which
    suits stochastic fair queueing or spreading load.

    Example: spread IP packets over two outputs by destination address::

        ... -> hs :: HashSwitch(16, 4);
        hs[0] -> ...;  hs[1] -> ...;
    """

    port_count = "1/1-"
    processing = "h"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0
        self.length = 1
        self._out = np.zeros(256, np.int64)
        self._kernel: Any = None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        offset = a.read_mp("OFFSET", parse_int)
        length = a.read_mp("LENGTH", parse_int)
        a.complete()
        if length == 0:
            raise ConfigError("length must be > 0")
        self.offset, self.length = offset, length

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet.filterkernels import hash_switch

        self._split_ok = compute_split_ok(self)
        self._kernel = hash_switch

    def ports(self, batch: PacketBatch) -> np.ndarray:
        """The output each packet of ``batch`` goes to."""
        from clickos.packet.filterkernels import hash_switch

        out = np.zeros(len(batch), np.int64)
        pool = batch.pool
        hash_switch(pool.data, pool.off, pool.length, batch.idx, self.offset, self.length,
                    self.noutputs, out)
        return out

    def push(self, port: int, batch: PacketBatch) -> None:
        idx = batch.idx
        n = len(idx)
        out = self._out
        if n > len(out):
            out = self._out = np.zeros(2 * n, np.int64)
        pool = batch.pool
        common = self._kernel(pool.data, pool.off, pool.length, idx, self.offset, self.length,
                              self.noutputs, out)
        if common >= 0:
            self.outputs[common].push(batch)
        else:
            push_ports(self, batch, out[:n].copy())
