"""Paint annotations and output-choosing switches.

Paint, PaintSwitch, CheckPaint, PaintTee, Switch, StaticSwitch, InputSwitch,
RoundRobinSwitch, RandomSwitch, StrideSwitch.  Each works on a whole batch:
the per-packet output port is computed as an array and the batch is split
with ``PacketBatch.split`` when nothing downstream can see the packets' order
across outputs, and otherwise pushed in order-preserving runs.
"""

from __future__ import annotations

import errno
import struct
from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import anno_arg, parse_int, parse_uint8
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import NONEXCLUSIVE
from clickos.elements.standard.basic import compute_split_ok, int_writer, push_copies, push_ports
from clickos.elements.standard.info import click_random
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import PAINT_ANNO_OFFSET


class Paint(Element):
    """Paint(COLOR [, ANNO])

    Sets each packet's paint annotation to COLOR.

    COLOR is an integer 0..255.  By default the PAINT annotation is set; ANNO
    names any other one-byte annotation (by name or byte offset).

    Handlers: ``color`` (read/write) the color to paint.

    Example: ``... -> Paint(2) -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.color = 0
        self.anno = PAINT_ANNO_OFFSET

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        color = a.read_mp("COLOR", parse_uint8)
        anno = a.read_p("ANNO", anno_arg(1), default=PAINT_ANNO_OFFSET)
        a.complete()
        self.color, self.anno = color, anno

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def add_handlers(self) -> None:
        self.add_read_handler("color", lambda: self.color)
        self.add_write_handler("color", int_writer(self, "color", 0, 255, "expected uint8_t"))

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        batch.pool.anno[batch.idx, self.anno] = self.color
        return batch

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.paint(self.anno, self.color)


class PaintTee(Element):
    """PaintTee(COLOR [, ANNO])

    Sends every packet out of output 0, and a copy of each packet painted COLOR
    out of output 1.

    Routers use it to send ICMP redirects: a packet about to leave by the
    interface it came in on (its paint, set by Paint on input, equals that
    interface's number) is copied towards an ICMPError(..., redirect, host).
    ANNO selects a one-byte annotation other than PAINT.

    Handlers: ``color`` (read/write).

    Example::

        FromDevice(0) -> Paint(0) -> ... -> rt;
        rt[0] -> pt :: PaintTee(0) -> ... -> ToDevice(0);
        pt[1] -> ICMPError(10.0.0.1, redirect, host) -> rt;
    """

    port_count = "1/2"
    processing = "a/ah"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.color = 0
        self.anno = PAINT_ANNO_OFFSET

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        color = a.read_mp("COLOR", parse_uint8)
        anno = a.read_p("ANNO", anno_arg(1), default=PAINT_ANNO_OFFSET)
        a.complete()
        self.color, self.anno = color, anno

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet.kernels import anno_equal

        # one copy per batch is only right when nothing downstream of the copies
        # can tell they were not interleaved with the originals
        self._split_ok = compute_split_ok(self)
        self._k = anno_equal
        self._painted = np.zeros(256, np.bool_)

    def add_handlers(self) -> None:
        self.add_read_handler("color", lambda: self.color)
        self.add_write_handler("color", int_writer(self, "color", 0, 255, "expected uint8_t"))

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.punt_painted(self.anno, self.color)

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        idx = batch.idx
        if len(self._painted) < len(idx):
            self._painted = np.zeros(len(idx), np.bool_)
        # a kernel: on a router's forwarding path this runs for every batch
        if self._k(batch.pool.anno, idx, self.anno, self.color, self._painted) == 0:
            return batch
        painted = self._painted[:len(idx)].copy()
        if self._split_ok or self.outputs[0].is_pull:
            # as Click does per packet: the copy goes out before the original
            self.outputs[1].push(PacketBatch(batch.pool, batch.idx[painted]).clone())
            return batch
        # packet by packet: copy, then the original, in order
        pool = batch.pool
        for i, s in enumerate(batch.idx.tolist()):
            if painted[i]:
                self.outputs[1].push(PacketBatch.one(pool, s).clone())
            self.outputs[0].push(PacketBatch.one(pool, s))
        return None


class PaintSwitch(Element):
    """PaintSwitch([ANNO])

    Sends each packet out of the output its paint annotation names.

    A packet with paint K leaves on output K, or is dropped when there is no
    output K.  Paint 255 is special: the packet is copied to every output.  So
    PaintSwitch can have up to 255 outputs.  ANNO selects a one-byte
    annotation other than PAINT.

    Example: ``... -> ps :: PaintSwitch; ps[0] -> a; ps[1] -> b``
    """

    port_count = "1/-"
    processing = "h"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.anno = PAINT_ANNO_OFFSET

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.anno = a.read_p("ANNO", anno_arg(1), default=PAINT_ANNO_OFFSET)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)
        self._all = list(range(self.noutputs))

    def push(self, port: int, batch: PacketBatch) -> None:
        ports = batch.pool.anno[batch.idx, self.anno].astype(np.int32)
        everywhere = ports == 255
        if not everywhere.any():
            push_ports(self, batch, ports)
        elif everywhere.all():
            push_copies(self, batch, self._all)
        else:
            # Copies to every output interleave with single sends: keep packet order.
            pool, idx = batch.pool, batch.idx
            cuts = np.flatnonzero(everywhere[1:] != everywhere[:-1]) + 1
            start = 0
            for end in cuts.tolist() + [len(ports)]:
                sub = PacketBatch(pool, idx[start:end])
                if everywhere[start]:
                    push_copies(self, sub, self._all)
                else:
                    push_ports(self, sub, ports[start:end])
                start = end


class CheckPaint(Element):
    """CheckPaint(COLOR [, ANNO])

    Lets through packets painted COLOR; diverts or drops the others.

    Packets whose paint annotation equals COLOR leave on output 0.  Others leave
    on output 1 if it exists and are dropped otherwise.  ANNO selects a
    one-byte annotation other than PAINT.

    Handlers: ``color`` (read/write) the expected color.

    Example: ``... -> CheckPaint(1) -> ...``
    """

    port_count = "1/1-2"
    processing = "a/ah"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.color = 0
        self.anno = PAINT_ANNO_OFFSET

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        color = a.read_mp("COLOR", parse_uint8)
        anno = a.read_p("ANNO", anno_arg(1), default=PAINT_ANNO_OFFSET)
        a.complete()
        self.color, self.anno = color, anno

    def add_handlers(self) -> None:
        self.add_read_handler("color", lambda: self.color)
        self.add_write_handler("color", int_writer(self, "color", 0, 255, "expected uint8_t"))

    def _split(self, batch: PacketBatch) -> tuple[PacketBatch | None, PacketBatch | None]:
        bad = batch.pool.anno[batch.idx, self.anno] != self.color
        if not bad.any():
            return batch, None
        if bad.all():
            return None, batch
        return batch.take(~bad), batch.take(bad)

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)

    def push(self, port: int, batch: PacketBatch) -> None:
        bad = batch.pool.anno[batch.idx, self.anno] != self.color
        push_ports(self, batch, bad.astype(np.int32))

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        good, bad = self._split(batch)
        if bad is not None:
            self.checked_output_push(1, bad)
        return good


class _SettableSwitch(Element):
    """Shared parts of Switch and InputSwitch: a port number with a ``switch`` handler."""

    register = False
    _what = "output"

    def __init__(self) -> None:
        super().__init__()
        self.port = 0

    def _limit(self) -> int:
        return self.noutputs

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        port = a.read_p("OUTPUT", parse_int, default=0)
        a.complete()
        if port >= self._limit():
            raise ConfigError(f"{self._what} must be < {self._limit()}")
        self.port = port

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def add_handlers(self) -> None:
        def write(value: str, errh: ErrorHandler) -> None:
            try:
                v = parse_int(value.strip())
            except ConfigError:
                raise ConfigError(f"{self.class_name()} {self._what} must be integer") from None
            self.port = -1 if v >= self._limit() else v

        self.add_read_handler("switch", lambda: self.port)
        self.add_write_handler("switch", write, NONEXCLUSIVE)
        self.add_read_handler("config", lambda: self.port)  # not CALM, as in Click


class Switch(_SettableSwitch):
    """Switch([OUTPUT])

    Sends every packet out of one output, chosen at run time.

    All packets leave on output OUTPUT (default 0); a negative OUTPUT drops
    them.  Switch may have any number of outputs.  The ``switch`` write
    handler changes OUTPUT; a value past the last output means drop.

    Handlers: ``switch`` (read/write) the current OUTPUT.

    Example: ``... -> s :: Switch(0) -> a; s[1] -> b`` and write ``s.switch 1``.
    """

    port_count = "1/-"
    processing = "h"
    batch_transparent = True

    def push(self, port: int, batch: PacketBatch) -> None:
        self.checked_output_push(self.port, batch)

    def llrpc(self, command: int, data: bytearray) -> int:
        """Click's GET_SWITCH / SET_SWITCH low-level calls (a native-endian int)."""
        from clickos.control.backend import CLICK_LLRPC_GET_SWITCH, CLICK_LLRPC_SET_SWITCH

        if command == CLICK_LLRPC_SET_SWITCH:
            if len(data) < 4:
                return -errno.EINVAL
            (v,) = struct.unpack("=i", bytes(data[:4]))
            if v >= self.noutputs:
                return -errno.EINVAL
            self.port = v
            return 0
        if command == CLICK_LLRPC_GET_SWITCH:
            data[:] = struct.pack("=i", self.port)
            return 0
        return -errno.EINVAL


class InputSwitch(_SettableSwitch):
    """InputSwitch([INPUT])

    Accepts packets from one input, chosen at run time, and drops the rest.

    Packets arriving on input INPUT (default 0) go out the single output;
    packets on other inputs are dropped, as are all packets when INPUT is
    negative.  The ``switch`` write handler changes INPUT.

    Handlers: ``switch`` (read/write) the current INPUT.

    Example: ``a -> [0]is :: InputSwitch(1); b -> [1]is; is -> Discard``
    """

    port_count = "-/1"
    processing = "h"
    batch_transparent = True
    _what = "input"

    def _limit(self) -> int:
        return self.ninputs

    def push(self, port: int, batch: PacketBatch) -> None:
        if port == self.port:
            self.outputs[0].push(batch)
        else:
            batch.kill()


class StaticSwitch(Element):
    """StaticSwitch(OUTPUT)

    Sends every packet out of one fixed output.

    All packets leave on output OUTPUT.  A negative OUTPUT, or one past the last
    output, drops every packet.  Unlike Switch, OUTPUT cannot change at run
    time.

    Example: ``... -> StaticSwitch(1) -> ...``
    """

    port_count = "1/-"
    processing = "h"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.port = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        port = a.read_mp("OUTPUT", parse_int)
        a.complete()
        self.port = -1 if port >= self.noutputs else port

    def push(self, port: int, batch: PacketBatch) -> None:
        if self.port < 0:
            batch.kill()
        else:
            self.outputs[self.port].push(batch)


class RoundRobinSwitch(Element):
    """RoundRobinSwitch

    Sends packets to its outputs in turn.

    The first packet goes out output 0, the next out output 1, and so on,
    wrapping around after the last output.

    Example: ``... -> rr :: RoundRobinSwitch; rr[0] -> a; rr[1] -> b``
    """

    port_count = "1/1-"
    processing = "h"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.next = 0

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)

    def push(self, port: int, batch: PacketBatch) -> None:
        n = self.noutputs
        k = len(batch)
        first = self.next
        self.next = (first + k) % n
        if k == 1:
            self.outputs[first].push(batch)
            return
        push_ports(self, batch, ((np.arange(k) + first) % n).astype(np.int32))


class RandomSwitch(Element):
    """RandomSwitch

    Sends each packet out of an output chosen at random.

    Every output is equally likely.  RandomSeed makes the choices repeatable.

    Example: ``... -> rs :: RandomSwitch; rs[0] -> a; rs[1] -> b``
    """

    port_count = "1/1-"
    processing = "h"
    batch_transparent = True

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)

    def push(self, port: int, batch: PacketBatch) -> None:
        ports = click_random().integers(0, self.noutputs, size=len(batch), dtype=np.int32)
        push_ports(self, batch, ports)


STRIDE1 = 1 << 16
MAX_TICKETS = 1 << 15


class StrideSwitch(Element):
    """StrideSwitch(TICKETS0, ..., TICKETS<N-1>)

    Shares packets among its outputs by stride scheduling.

    Output I holds TICKETSI tickets; over time each output receives a share of
    the packets proportional to its tickets.  Each arriving packet goes to the
    output whose pass value is lowest (initially, ties favour lower-numbered
    outputs); that output's pass then advances by its stride, 65536 divided by
    its tickets.  An
    output with zero tickets receives nothing; with no tickets at all packets
    are dropped.  There must be one argument per output; tickets are at most
    32768.

    Handlers: ``ticketsI`` (read/write) the tickets of output I; ``config``
    (read) all tickets.

    Example: ``... -> ss :: StrideSwitch(1, 2); ss[0] -> a; ss[1] -> b``
    """

    port_count = "1/1-"
    processing = "h"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.tickets: list[int] = []
        self.stride: list[int] = []
        self.pass_: list[int] = []
        self.order: list[int] = []  # outputs with tickets, in scheduling order
        self._first = True

    @staticmethod
    def _gt(a: int, b: int) -> bool:
        """Pass ``a`` is after pass ``b`` in wrapping 32-bit arithmetic (Click's PASS_GT)."""
        d = (a - b) & 0xFFFFFFFF
        return 0 < d < 0x80000000

    def _insert(self, i: int) -> None:
        """Put output ``i`` before the first scheduled output whose pass is not before its own."""
        p = self.pass_[i]
        order = self.order
        k = 0
        while k < len(order) and self._gt(p, self.pass_[order[k]]):
            k += 1
        order.insert(k, i)

    def _set(self, i: int, t: int) -> None:
        self.tickets[i] = t
        self.stride[i] = STRIDE1 // t if t else 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        n = self.noutputs
        if len(conf) != n:
            raise ConfigError(f"need {n} arguments, one per output port")
        if self._first:
            self.tickets = [-1] * n
            self.stride = [0] * n
            self.pass_ = [0] * n
        for i, arg in enumerate(conf):
            try:
                v = parse_int(arg)
            except ConfigError:
                errh.error(f"argument {i} should be number of tickets (integer)")
                continue
            if v < 0:
                errh.error(f"argument {i} (number of tickets) must be >= 0")
                continue
            if v > MAX_TICKETS:
                errh.warning(f"input {i}'s tickets reduced to {MAX_TICKETS}")
                v = MAX_TICKETS
            self._set(i, v)
            if self._first:
                self.pass_[i] += self.stride[i]
        self._first = False
        self.order = []
        for i in range(n - 1, -1, -1):
            if self.tickets[i] > 0:
                self._insert(i)

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def set_tickets(self, port: int, t: int, errh: ErrorHandler) -> None:
        """Change one output's tickets, as the ``ticketsN`` write handler does."""
        if not 0 <= port < len(self.tickets):
            raise ConfigError(f"port {port} out of range")
        if t < 0:
            raise ConfigError("number of tickets must be >= 0")
        if t > MAX_TICKETS:
            errh.warning(f"port {port}'s tickets reduced to {MAX_TICKETS}")
            t = MAX_TICKETS
        old = self.tickets[port]
        self._set(port, t)
        if t == 0 and old != 0:
            if port in self.order:
                self.order.remove(port)
        elif t != 0 and old == 0:
            self.pass_[port] = (self.pass_[self.order[0]] + self.stride[port]) if self.order else 0
            self._insert(port)

    def add_handlers(self) -> None:
        for i in range(len(self.tickets)):
            def write(value: str, errh: ErrorHandler, i: int = i) -> None:
                try:
                    t = parse_int(value.strip())
                except ConfigError:
                    raise ConfigError("tickets value must be integer") from None
                self.set_tickets(i, t, errh)

            self.add_read_handler(f"tickets{i}", lambda i=i: self.tickets[i])
            self.add_write_handler(f"tickets{i}", write)
        self.add_read_handler("config", lambda: ", ".join(str(t) for t in self.tickets))

    def _next_port(self) -> int:
        order = self.order
        i = order.pop(0)
        self.pass_[i] = (self.pass_[i] + self.stride[i]) & 0xFFFFFFFF
        self._insert(i)
        return i

    def push(self, port: int, batch: PacketBatch) -> None:
        if not self.order:
            batch.kill()
            return
        if len(batch) == 1:
            self.outputs[self._next_port()].push(batch)
            return
        ports = np.fromiter((self._next_port() for _ in range(len(batch))), np.int32, len(batch))
        push_ports(self, batch, ports)
