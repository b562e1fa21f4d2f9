"""Elements that change packet length, alignment, timestamps or bytes.

Strip, Unstrip, Truncate, Pad, Resize, Align, SetTimestamp,
SetTimestampDelta, Clipboard.  Length changes are vectorised updates of the
pool's per-slot ``off``/``length`` arrays over the batch's slots.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bool,
    parse_int,
    parse_timestamp,
    parse_unsigned,
    parse_word,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON
from clickos.elements.standard.basic import int_writer
from clickos.elements.standard.printing import chatter, format_timestamp
from clickos.packet.batch import Packet, PacketBatch
from clickos.packet.pool import PacketPool

EXTRA_LENGTH_ANNO_OFFSET = 28
FIRST_TIMESTAMP_ANNO_OFFSET = 32


# -- annotation helpers -----------------------------------------------------------------

def anno_u32(pool: PacketPool, idx: np.ndarray, off: int) -> np.ndarray:
    """The native-endian 32-bit annotation at byte ``off`` (a multiple of 4) of each slot."""
    return pool.anno.view(np.uint32)[idx, off >> 2].astype(np.int64)


def set_anno_u32(pool: PacketPool, idx: np.ndarray, off: int, values: np.ndarray | int) -> None:
    pool.anno.view(np.uint32)[idx, off >> 2] = np.asarray(values, np.int64) & 0xFFFFFFFF


def anno_i64(pool: PacketPool, idx: np.ndarray, off: int) -> np.ndarray:
    """The native-endian signed 64-bit annotation at byte ``off`` (a multiple of 8), e.g.
    FIRST_TIMESTAMP in nanoseconds."""
    return pool.anno.view(np.int64)[idx, off >> 3].copy()


def set_anno_i64(pool: PacketPool, idx: np.ndarray, off: int, values: np.ndarray | int) -> None:
    pool.anno.view(np.int64)[idx, off >> 3] = values


class _Kernels:
    """numba kernels for the length changes, compiled (or loaded from cache) on first use."""

    def __init__(self) -> None:
        import numba as nb

        jit = nb.njit(cache=True, nogil=True, boundscheck=False)

        @jit
        def pull(off, length, idx, n, short):  # noqa: ANN001, ANN202
            ns = 0
            for k in range(idx.shape[0]):
                s = idx[k]
                L = length[s]
                a = n
                if L < n:
                    short[ns] = L
                    ns += 1
                    a = L
                off[s] += a
                length[s] = L - a
            return ns

        @jit
        def push(off, length, idx, n, left):  # noqa: ANN001, ANN202
            nl = 0
            for k in range(idx.shape[0]):
                s = idx[k]
                if off[s] >= n:
                    off[s] -= n
                    length[s] += n
                else:
                    left[nl] = s
                    nl += 1
            return nl

        @jit
        def take(length, idx, n, short):  # noqa: ANN001, ANN202
            ns = 0
            for k in range(idx.shape[0]):
                s = idx[k]
                L = length[s]
                if L < n:
                    short[ns] = L
                    ns += 1
                    length[s] = 0
                else:
                    length[s] = L - n
            return ns

        @jit
        def truncate(length, anno32, idx, n, col):  # noqa: ANN001, ANN202
            for k in range(idx.shape[0]):
                s = idx[k]
                L = length[s]
                if L > n:
                    if col >= 0:
                        anno32[s, col] += L - n
                    length[s] = n

        @jit
        def put(data, off, length, idx, amt, zero):  # noqa: ANN001, ANN202
            for k in range(idx.shape[0]):
                s = idx[k]
                a = amt[k]
                if a <= 0:
                    continue
                end = off[s] + length[s]
                if zero:
                    for j in range(end, end + a):
                        data[s, j] = 0
                length[s] += a

        @jit
        def pad(data, off, length, anno32, idx, nbytes, zero, col):  # noqa: ANN001, ANN202
            # First check that every padded packet fits its slot; if not, change
            # nothing and return the end offset needed.
            need = 0
            for k in range(idx.shape[0]):
                s = idx[k]
                L = length[s]
                a = (nbytes - L if L < nbytes else 0) if nbytes else anno32[s, col]
                if off[s] + L + a > need:
                    need = off[s] + L + a
            if need > data.shape[1]:
                return need
            for k in range(idx.shape[0]):
                s = idx[k]
                L = length[s]
                a = (nbytes - L if L < nbytes else 0) if nbytes else anno32[s, col]
                if a > 0:
                    if zero:
                        end = off[s] + L
                        for j in range(end, end + a):
                            data[s, j] = 0
                    length[s] = L + a
                anno32[s, col] = 0
            return 0

        self.pull, self.push, self.take, self.truncate, self.put = pull, push, take, truncate, put
        self.pad = pad


_kernels: _Kernels | None = None


def kernels() -> _Kernels:
    global _kernels
    if _kernels is None:
        _kernels = _Kernels()
    return _kernels


# -- length helpers -----------------------------------------------------------------------

def pull_front(batch: PacketBatch, n: int, *, complain: bool = True) -> None:
    """Strip ``n`` bytes off the front of every packet (all of a shorter packet).

    With ``complain``, a packet shorter than ``n`` gets Click's
    ``Packet::pull N > length L`` diagnostic, as Click's Packet::pull prints.
    """
    pool, idx = batch.pool, batch.idx
    short = np.empty(len(idx), np.int32)
    ns = kernels().pull(pool.off, pool.length, idx, n, short)
    if ns and complain:
        for L in short[:ns].tolist():
            chatter(f"Packet::pull {n} > length {L}")


def push_front(batch: PacketBatch, n: int) -> None:
    """Prepend ``n`` bytes to every packet (their contents are whatever the slot held)."""
    pool, idx = batch.pool, batch.idx
    left = np.empty(len(idx), np.int32)
    nl = kernels().push(pool.off, pool.length, idx, n, left)
    for s in left[:nl].tolist():
        Packet(pool, s).push(n)


def take_back(batch: PacketBatch, n: int, *, complain: bool = True) -> None:
    """Remove ``n`` bytes from the end of every packet (all of a shorter packet)."""
    pool, idx = batch.pool, batch.idx
    short = np.empty(len(idx), np.int32)
    ns = kernels().take(pool.length, idx, n, short)
    if ns and complain:
        for L in short[:ns].tolist():
            chatter(f"Packet::take {n} > length {L}")


def put_back(batch: PacketBatch, amounts: np.ndarray | int, zero: bool = True) -> None:
    """Append ``amounts`` bytes (per packet, or one number) to the end of every packet."""
    pool, idx = batch.pool, batch.idx
    amt = np.ascontiguousarray(np.broadcast_to(np.asarray(amounts, np.int64), (len(idx),)))
    if not amt.any():
        return
    need = int((pool.off[idx] + pool.length[idx] + amt).max())
    if need > pool.slot_size:
        pool.ensure_slot_size(need)
    kernels().put(pool.data, pool.off, pool.length, idx, amt, zero)


# -- Strip / Unstrip / Truncate / Pad / Resize ------------------------------------------

class Strip(Element):
    """Strip(LENGTH)

    Removes LENGTH bytes from the front of each packet.

    A packet shorter than LENGTH loses all its bytes.  The bytes stay in the
    buffer, so a later Unstrip can put them back.

    Example: ``Strip(14)`` removes an Ethernet header.
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.nbytes = a.read_mp("LENGTH", parse_unsigned)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        self._k = kernels().pull
        self._short = np.empty(256, np.int32)

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.strip(self.nbytes)

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool, idx = batch.pool, batch.idx
        short = self._short
        if len(short) < len(idx):
            short = self._short = np.empty(len(idx), np.int32)
        ns = self._k(pool.off, pool.length, idx, self.nbytes, short)
        if ns:
            for L in short[:ns].tolist():
                chatter(f"Packet::pull {self.nbytes} > length {L}")
        return batch


class Unstrip(Element):
    """Unstrip(LENGTH)

    Puts LENGTH bytes back onto the front of each packet.

    The bytes are those in front of the packet data in its buffer: usually the
    ones an earlier Strip removed.

    Example: ``Strip(14) -> CheckIPHeader -> Unstrip(14)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.nbytes = a.read_mp("LENGTH", parse_unsigned)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        self._k = kernels().push
        self._left = np.empty(256, np.int32)

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.unstrip(self.nbytes)

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool, idx = batch.pool, batch.idx
        left = self._left
        if len(left) < len(idx):
            left = self._left = np.empty(len(idx), np.int32)
        nl = self._k(pool.off, pool.length, idx, self.nbytes, left)
        if nl:
            for s in left[:nl].tolist():
                Packet(pool, s).push(self.nbytes)
        return batch


class Truncate(Element):
    """Truncate(LENGTH [, KEYWORDS])

    Shortens packets to at most LENGTH bytes.

    Bytes past LENGTH are removed from the end of longer packets; shorter
    packets pass unchanged.

    Keyword arguments:

    - EXTRA_LENGTH (boolean): add the number of removed bytes to the packet's
      extra length annotation, so Pad can restore the length.  Default true.

    Handlers: ``nbytes`` (read/write) LENGTH.

    Example: ``Truncate(64)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0
        self.extra_anno = True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        nbytes = a.read_mp("LENGTH", parse_unsigned)
        extra = a.read("EXTRA_LENGTH", parse_bool, default=True)
        a.complete()
        self.nbytes, self.extra_anno = nbytes, extra

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def add_handlers(self) -> None:
        self.add_read_handler("nbytes", lambda: self.nbytes)
        self.add_write_handler("nbytes", int_writer(self, "nbytes", 0, 0xFFFFFFFF))

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool = batch.pool
        col = EXTRA_LENGTH_ANNO_OFFSET >> 2 if self.extra_anno else -1
        kernels().truncate(pool.length, pool.anno.view(np.uint32), batch.idx, self.nbytes, col)
        return batch


class Pad(Element):
    """Pad([LENGTH, KEYWORDS])

    Lengthens packets to at least LENGTH bytes.

    Shorter packets get bytes added at the end.  Without LENGTH (or with 0),
    each packet is lengthened by its extra length annotation instead, undoing
    an earlier Truncate.  Every packet leaves with extra length annotation 0.

    Keyword arguments:

    - ZERO (boolean): fill the added bytes with zeros; if false they are left
      as the buffer held them.  Default true.

    Example: ``Pad(60)`` brings Ethernet frames up to the minimum length.
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0
        self.zero = True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        nbytes = a.read_p("LENGTH", parse_unsigned, default=0)
        zero = a.read("ZERO", parse_bool, default=True)
        a.complete()
        self.nbytes, self.zero = nbytes, zero

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool, idx = batch.pool, batch.idx
        pad = kernels().pad
        col = EXTRA_LENGTH_ANNO_OFFSET >> 2
        need = pad(pool.data, pool.off, pool.length, pool.anno.view(np.uint32), idx, self.nbytes, self.zero, col)
        if need:
            pool.ensure_slot_size(need)
            pad(pool.data, pool.off, pool.length, pool.anno.view(np.uint32), idx, self.nbytes, self.zero, col)
        return batch


class Resize(Element):
    """Resize([HEAD, TAIL])

    Adds or removes bytes at both ends of each packet.

    HEAD bytes are added in front and TAIL bytes at the end; a negative number
    removes that many bytes instead (at most the whole packet).  Added bytes
    are not initialised.  Both default to 0.

    Handlers: ``head``, ``tail`` (read/write).

    Example: ``Resize(-14, 4)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True
    flags = "S0"

    def __init__(self) -> None:
        super().__init__()
        self.head = 0
        self.tail = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        head = a.read_p("HEAD", parse_int, default=0)
        tail = a.read_p("TAIL", parse_int, default=0)
        a.complete()
        self.head, self.tail = head, tail

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def add_handlers(self) -> None:
        self.add_read_handler("head", lambda: self.head)
        self.add_write_handler("head", int_writer(self, "head"))
        self.add_read_handler("tail", lambda: self.tail)
        self.add_write_handler("tail", int_writer(self, "tail"))

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        if self.head > 0:
            push_front(batch, self.head)
        elif self.head < 0:
            pull_front(batch, -self.head, complain=False)
        if self.tail > 0:
            put_back(batch, self.tail, zero=False)
        elif self.tail < 0:
            take_back(batch, -self.tail, complain=False)
        return batch


class Align(Element):
    """Align(MODULUS, OFFSET)

    Moves packet data so it starts at a given memory alignment.

    After Align, each packet's first byte lies OFFSET bytes past a MODULUS-byte
    boundary in memory; packets not already aligned so are moved within their
    buffer.  MODULUS must be 2, 4 or 8, and OFFSET less than MODULUS.

    Example: ``Align(4, 2)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0
        self.mask = 3

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        modulus = a.read_mp("MODULUS", parse_unsigned)
        offset = a.read_mp("OFFSET", parse_int)
        a.complete()
        if modulus not in (2, 4, 8):
            raise ConfigError("MODULUS must be 2, 4, or 8")
        if offset >= modulus:
            raise ConfigError("OFFSET must be smaller than MODULUS")
        self.offset, self.mask = offset, modulus - 1

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool, idx = batch.pool, batch.idx
        base = pool.data.ctypes.data
        addr = base + idx.astype(np.int64) * pool.slot_size + pool.off[idx]
        delta = (self.offset - (addr & self.mask)) & self.mask
        move = delta != 0
        if move.any():
            for s, d in zip(idx[move].tolist(), delta[move].tolist(), strict=True):
                shift_data(pool, s, d, self.mask + 1)
        return batch


def shift_data(pool: PacketPool, slot: int, delta: int, modulus: int) -> None:
    """Move a packet's bytes ``delta`` later in its slot (or ``modulus - delta`` earlier)."""
    off, ln = int(pool.off[slot]), int(pool.length[slot])
    if off + ln + delta > pool.slot_size:
        if off >= modulus - delta:
            delta -= modulus
        else:
            pool.ensure_slot_size(off + ln + delta)
    row = pool.data[slot]
    row[off + delta: off + delta + ln] = row[off: off + ln].copy()
    pool.off[slot] = off + delta
    for arr in (pool.mac, pool.nh, pool.th):
        if arr[slot] >= 0:
            arr[slot] += delta


# -- timestamps ------------------------------------------------------------------------

def _now_each(e: Element, n: int) -> int | np.ndarray:
    """The current time read once per packet (as Click does; in simulated time each
    reading advances the clock), as one value or an array of ``n``."""
    clock = e.router.master.clock
    if n == 1:
        return clock.now()
    return np.fromiter((clock.now() for _ in range(n)), np.int64, n)


class SetTimestamp(Element):
    """SetTimestamp([TIMESTAMP, KEYWORDS])

    Stores a time in each packet's timestamp annotation.

    With TIMESTAMP (seconds since the epoch, e.g. ``1000.5``) every packet gets
    that time; without it, the current time when the packet passes.

    Keyword arguments:

    - FIRST (boolean): set the "first timestamp" annotation instead of the
      timestamp annotation.  Default false.

    Example: ``FromDevice(eth0) -> SetTimestamp -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.when: int | None = None
        self.first = False

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        when = a.read_p("TIMESTAMP", parse_timestamp, default=None)
        first = a.read("FIRST", parse_bool, default=False)
        delta = a.read("DELTA", parse_bool, default=False)
        a.complete()
        if delta:
            raise ConfigError("SetTimestamp(DELTA) is deprecated, use SetTimestampDelta(TYPE FIRST)")
        self.when = None if when is None or when < 0 else when
        self.first = first

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        t: int | np.ndarray
        if self.when is not None:
            t = self.when
        else:
            t = _now_each(self, len(batch))
        if self.first:
            set_anno_i64(batch.pool, batch.idx, FIRST_TIMESTAMP_ANNO_OFFSET, t)
        else:
            batch.pool.ts[batch.idx] = t
        return batch


class SetTimestampDelta(Element):
    """SetTimestampDelta([KEYWORDS])

    Replaces nonzero packet timestamps with time differences.

    Packets whose timestamp annotation is zero pass unchanged.

    Keyword arguments:

    - TYPE: ``RANGE`` (default) makes each timestamp relative to the first
      nonzero timestamp seen; ``NOW`` replaces it with the time elapsed since
      it; ``FIRST`` subtracts the packet's "first timestamp" annotation.

    Handlers: ``first`` (read) the first nonzero timestamp seen; ``reset``
    (write) forgets it, so the next nonzero timestamp becomes the new base.

    Example: ``FromDump(f.pcap) -> SetTimestampDelta -> Print(TIMESTAMP true) -> Discard``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.kind = 0
        self.first = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        kind = a.read("TYPE", parse_word, default="RANGE")
        a.complete()
        kinds = {"RANGE": 0, "NOW": 1, "FIRST": 2}
        if kind not in kinds:
            raise ConfigError("bad TYPE")
        self.kind = kinds[kind]

    def add_handlers(self) -> None:
        self.add_read_handler("first", lambda: format_timestamp(self.first) + "\n")

        def reset(value: str, errh: ErrorHandler) -> None:
            self.first = 0

        self.add_write_handler("reset", reset, BUTTON)

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool, idx = batch.pool, batch.idx
        ts = pool.ts[idx]
        nz = ts != 0
        if not nz.any():
            return batch
        sel = idx[nz]
        if self.kind == 0:
            if self.first == 0:
                self.first = int(ts[nz][0])
            pool.ts[sel] = ts[nz] - self.first
        elif self.kind == 1:
            pool.ts[sel] = _now_each(self, len(sel)) - ts[nz]
        else:
            pool.ts[sel] = ts[nz] - anno_i64(pool, sel, FIRST_TIMESTAMP_ANNO_OFFSET)
        return batch


# -- Clipboard -------------------------------------------------------------------------

class Clipboard(Element):
    """Clipboard(RANGE_1, ..., RANGE_N)

    Copies bytes from packets on one path into packets on another.

    Each RANGE is ``OFFSET/LENGTH``.  A packet arriving on input 0 has the bytes
    of every range copied onto the clipboard, then leaves unchanged on output 0.
    A packet arriving on input 1 has the clipboard's bytes written back at the
    same ranges, then leaves on output 1; a packet too short for some range is
    left unchanged.  Each input/output pair works in push or pull context.
    Before any packet passed input 0 the clipboard holds zeros.

    Example: ``c :: Clipboard(0/6); a -> [0]c[0] -> ...; b -> [1]c[1] -> ...``
    copies the first six bytes of the packets on path a into those on path b.
    """

    port_count = "2/2"
    processing = "a"
    batch_transparent = True
    flow_code = "#/#"
    flags = "S0"

    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[tuple[int, int]] = []
        self.clip = b""
        self.min_length = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        ranges = []
        for i, arg in enumerate(conf):
            slash = arg.find("/")
            if slash <= 0 or slash >= len(arg) - 1:
                raise ConfigError(f"range {i}: expected '/' between offset and length")
            try:
                off = parse_unsigned(arg[:slash])
            except ConfigError as ex:
                raise ConfigError(f"OFFSET: {ex}\nrange {i}: invalid offset or length") from None
            try:
                ln = parse_unsigned(arg[slash + 1:])
            except ConfigError as ex:
                raise ConfigError(f"LENGTH: {ex}\nrange {i}: invalid offset or length") from None
            ranges.append((off, ln))
        self.ranges = ranges
        size = sum(n for _, n in ranges)
        if len(self.clip) != size:
            self.clip = bytes(size)
        self.min_length = max((o + n for o, n in ranges), default=0)

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def _copy(self, batch: PacketBatch) -> None:
        # Copying packet after packet leaves the last packet's bytes on the clipboard.
        pool = batch.pool
        s = int(batch.idx[-1])
        base = int(pool.off[s])
        need = base + self.min_length
        if need > pool.slot_size:
            pool.ensure_slot_size(need)
        row = pool.data[s]
        self.clip = b"".join(row[base + o: base + o + n].tobytes() for o, n in self.ranges)

    def _paste(self, batch: PacketBatch) -> None:
        pool, idx = batch.pool, batch.idx
        ok = idx[pool.length[idx] >= self.min_length]
        if not len(ok):
            return
        offs = pool.off[ok]
        pos = 0
        clip = np.frombuffer(self.clip, np.uint8)
        for o, n in self.ranges:
            if n:
                cols = (offs + o)[:, None] + np.arange(n)[None, :]
                pool.data[ok[:, None], cols] = clip[pos: pos + n]
            pos += n

    def push(self, port: int, batch: PacketBatch) -> None:
        if port == 0:
            self._copy(batch)
        else:
            self._paste(batch)
        self.outputs[port].push(batch)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[port].pull(max)
        if batch is None:
            return None
        if port == 0:
            self._copy(batch)
        else:
            self._paste(batch)
        return batch
