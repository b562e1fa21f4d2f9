"""Basic transfer elements: Null, PushNull, PullNull, Tee, PullTee, Hub, Bypass.

Also helpers shared by the other modules of this family: ``bool_writer`` and
``int_writer`` (write handlers over an attribute, with Click's data-handler
error texts), ``push_ports``/``push_copies`` (send a batch out by per-packet
port, or copied to several outputs, keeping Click's packet order unless
``compute_split_ok`` says nothing downstream can tell), and ``clone_batch``
(packet copies made by a numba kernel).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import parse_bool, parse_int, parse_unsigned
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.packet.batch import PacketBatch

WriteFn = Callable[[str, ErrorHandler], None]


def bool_writer(obj: Any, attr: str, after: Callable[[], None] | None = None) -> WriteFn:
    """A write handler that parses a boolean into ``obj.attr`` ("expected boolean" on error)."""

    def write(value: str, errh: ErrorHandler) -> None:
        try:
            v = parse_bool(value.strip())
        except ConfigError:
            raise ConfigError("expected boolean") from None
        setattr(obj, attr, v)
        if after is not None:
            after()

    return write


def int_writer(obj: Any, attr: str, lo: int | None = None, hi: int | None = None,
               message: str = "expected integer", after: Callable[[], None] | None = None) -> WriteFn:
    """A write handler that parses an integer in [lo, hi] into ``obj.attr``."""

    def write(value: str, errh: ErrorHandler) -> None:
        try:
            v = parse_int(value.strip())
        except ConfigError:
            raise ConfigError(message) from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(message)
        setattr(obj, attr, v)
        if after is not None:
            after()

    return write


def compute_split_ok(e: Element) -> bool:
    """Whether everything downstream of ``e``'s push outputs is batch-transparent.

    Then a batch may be split by output port and the parts pushed one after the
    other: nothing downstream can tell the packets' order across outputs.
    Otherwise elements keep Click's packet-at-a-time order (``push_ports``).
    """
    router = e.router
    return all(not port.is_push or router.push_path_transparent(e, i) for i, port in enumerate(e.outputs))


def push_ports(e: Element, batch: PacketBatch, ports: np.ndarray) -> None:
    """Push each packet of ``batch`` out of output ``ports[i]``; other ports drop it.

    With ``e._split_ok`` (see ``compute_split_ok``) the batch is split by port;
    otherwise it goes out in maximal runs of one port, in packet order.
    """
    outs = e.outputs
    nout = len(outs)
    n = len(ports)
    p0 = int(ports[0])
    if n == 1 or bool((ports == p0).all()):
        if 0 <= p0 < nout:
            outs[p0].push(batch)
        else:
            batch.kill()
        return
    if getattr(e, "_split_ok", False):
        parts, rest = batch.split_rest(ports, nout)
        if rest is not None:
            rest.kill()
        for p, sub in enumerate(parts):
            if sub is not None:
                outs[p].push(sub)
        return
    cuts = np.flatnonzero(ports[1:] != ports[:-1]) + 1
    start = 0
    pool, idx = batch.pool, batch.idx
    for end in cuts.tolist() + [n]:
        e.checked_output_push(int(ports[start]), PacketBatch(pool, idx[start:end]))
        start = end


def clone_batch(batch: PacketBatch) -> PacketBatch:
    """Copies of the packets of ``batch`` in fresh slots (see PacketPool.clone)."""
    return batch.clone()


def push_copies(e: Element, batch: PacketBatch, targets: list[int]) -> None:
    """Send a copy of every packet out of each output in ``targets`` (the original last).

    Copies of one packet go out before the next packet's, as in Click, unless
    the batch may be split (``e._split_ok``): then each output gets one batch.
    """
    outs = e.outputs
    if not targets:
        batch.kill()
        return
    if len(batch) == 1 or getattr(e, "_split_ok", False):
        for t in targets[:-1]:
            outs[t].push(clone_batch(batch))
        outs[targets[-1]].push(batch)
        return
    for p in batch:
        one = p.as_batch()
        for t in targets[:-1]:
            outs[t].push(clone_batch(one))
        outs[targets[-1]].push(one)


class Null(Element):
    """Null

    Passes packets through unchanged.

    Null has one input and one output, both agnostic: it works in push and in
    pull paths, and does nothing to the packets.

    Example: ``FromDevice(eth0) -> Null -> Discard``
    """

    port_count = "1/1"
    processing = "a"
    flags = "S0"
    batch_transparent = True

    def push(self, port: int, batch: PacketBatch) -> None:
        self.outputs[0].push(batch)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        return self.inputs[0].pull(max)


class PushNull(Null):
    """PushNull

    Passes packets through unchanged; push-only version of Null.

    Example: ``... -> PushNull -> ...``
    """

    processing = "h"


class PullNull(Null):
    """PullNull

    Passes packets through unchanged; pull-only version of Null.

    Example: ``q :: Queue -> PullNull -> Unqueue -> ...``
    """

    processing = "l"


def _check_arms(e: Element, conf: list[str]) -> None:
    a = Args(conf, e)
    n = a.read_p("N", parse_unsigned, default=e.noutputs)
    a.complete()
    if n != e.noutputs:
        raise ConfigError(f"{e.noutputs} outputs implies {e.noutputs} arms")


class Tee(Element):
    """Tee([N])

    Sends a copy of every packet out of each output.

    Tee has one push input and any number of outputs.  Each incoming packet is
    copied once per extra output; the copies go out outputs 0, 1, ... in order
    and the original goes out the last output.  The optional N says how many
    outputs the configuration must use.

    Example: ``... -> t :: Tee -> ToDump(a.pcap); t[1] -> Discard``
    """

    port_count = "1/1-"
    processing = "h"
    batch_transparent = True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        _check_arms(self, conf)

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)
        self._targets = list(range(self.noutputs))

    def push(self, port: int, batch: PacketBatch) -> None:
        push_copies(self, batch, self._targets)


class PullTee(Element):
    """PullTee([N])

    Copies pulled packets to push outputs.

    PullTee's input and first output are pull; the other outputs are push.
    Whenever a packet is pulled through output 0, a copy of it is pushed out
    of each other output (1, 2, ... in order) before the packet is returned.
    The optional N says how many outputs the configuration must use.

    Example: ``q :: Queue -> t :: PullTee -> Unqueue -> ...; t[1] -> Discard``
    """

    port_count = "1/1-"
    processing = "l/lh"

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        _check_arms(self, conf)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is not None:
            outs = self.outputs
            for i in range(1, len(outs)):
                outs[i].push(clone_batch(batch))
        return batch


class Hub(Element):
    """Hub

    Copies each packet to every output except the one numbered like its input.

    Hub has as many outputs as inputs, all push.  A packet arriving on input N
    is sent (as copies) out of every output but N, in increasing order, like a
    repeating hub; with a single port the packet is dropped.

    Example: ``h :: Hub; a -> [0]h[0] -> a2; b -> [1]h[1] -> b2``
    """

    port_count = "-/="
    processing = "h"
    flow_code = "#/[^#]"
    batch_transparent = True

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)
        n = self.noutputs
        self._targets = [[i for i in range(n) if i != port] for port in range(self.ninputs)]

    def push(self, port: int, batch: PacketBatch) -> None:
        push_copies(self, batch, self._targets[port])


class Bypass(Element):
    """Bypass([ACTIVE, KEYWORDS])

    Switches a packet stream onto an optional detour.

    Normally Bypass passes packets from input 0 to output 0, like Null.  While
    ACTIVE is true a push Bypass sends what arrives on input 0 out of output 1
    instead, and a pull Bypass answers pulls on output 0 by pulling input 1.
    The optional second input (push) or second output (pull) joins the detour
    back to the main path: push packets arriving on input 1 leave by output 0,
    and pulls on output 1 are passed to input 0.  A typical use:

        src -> b :: Bypass -> sink;  b[1] -> Print(debug) -> [1]b;

    Write ``true`` to ``b.active`` to send the traffic through the Print.

    Click's Bypass rewires its neighbours so that it costs nothing; this one
    stays in the path (one call per batch) and behaves the same otherwise.

    Keyword arguments:

    - ACTIVE (boolean): start on the detour.  Default false.
    - INLINE (boolean): accepted for compatibility (this Bypass is always inline).

    Handlers: ``active`` (read/write) whether the detour is in use.

    Example: ``... -> b :: Bypass(true) -> ...; b[1] -> Counter -> [1]b``
    """

    port_count = "1-2/1-2"
    processing = "a"
    flow_code = "xy/[xy]x"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.active = False
        self.inline = False

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.active = a.read_p("ACTIVE", parse_bool, default=False)
        self.inline = a.read("INLINE", parse_bool, default=False)
        a.complete()

    def add_handlers(self) -> None:
        self.add_read_handler("active", lambda: self.active)

        def write(value: str, errh: ErrorHandler) -> None:
            try:
                self.active = parse_bool(value.strip())
            except ConfigError:
                raise ConfigError("syntax error") from None

        self.add_write_handler("active", write)

    def push(self, port: int, batch: PacketBatch) -> None:
        outs = self.outputs
        if self.active and port == 0 and len(outs) > 1:
            outs[1].push(batch)
        else:
            outs[0].push(batch)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        ins = self.inputs
        if self.active and port == 0 and len(ins) > 1:
            return ins[1].pull(max)
        return ins[0].pull(max)


__all__ = ["Null", "PushNull", "PullNull", "Tee", "PullTee", "Hub", "Bypass", "bool_writer", "int_writer",
           "compute_split_ok", "push_ports", "push_copies", "clone_batch"]
