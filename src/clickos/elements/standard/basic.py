"""Basic transfer elements: Null, PushNull, PullNull, Tee, PullTee, Hub, Bypass.

Also the small handler helpers shared by the other modules of this family
(``bool_writer``, ``int_writer``): write handlers over an attribute that
report Click's data-handler error texts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        _check_arms(self, conf)

    def push(self, port: int, batch: PacketBatch) -> None:
        outs = self.outputs
        last = len(outs) - 1
        for i in range(last):
            outs[i].push(batch.clone())
        outs[last].push(batch)


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
                outs[i].push(batch.clone())
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

    def push(self, port: int, batch: PacketBatch) -> None:
        targets = [o for i, o in enumerate(self.outputs) if i != port]
        if not targets:
            batch.kill()
            return
        for o in targets[:-1]:
            o.push(batch.clone())
        targets[-1].push(batch)


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


__all__ = ["Null", "PushNull", "PullNull", "Tee", "PullTee", "Hub", "Bypass", "bool_writer", "int_writer"]
