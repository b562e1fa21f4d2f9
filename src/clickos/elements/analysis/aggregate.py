"""AggregateIPFlows (flow numbers for TCP/UDP packets) and AggregateCounter
(packet or byte counts per aggregate annotation)."""

from __future__ import annotations

import struct
import sys
from typing import Any, TextIO

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_any,
    parse_bool,
    parse_filename,
    parse_integer,
    parse_seconds,
    parse_string,
    parse_uint64,
    parse_unsigned,
    shift_word,
    uncomment,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlercall import HandlerCall
from clickos.core.handlers import BUTTON, CHECKBOX, RAW
from clickos.elements.analysis.common import (
    AGGREGATE_ANNO,
    EXTRA_LENGTH_ANNO,
    EXTRA_PACKETS_ANNO,
    PAINT_ANNO,
    anno_u32,
    set_anno_u32,
)
from clickos.elements.ip.common import push_runs
from clickos.elements.standard.printing import chatter
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import PacketPool

_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1
_NS = 1_000_000_000


# ---------------------------------------------------------------------------------------
# AggregateCounter
# ---------------------------------------------------------------------------------------

class _Node:
    __slots__ = ("agg", "count", "c0", "c1")

    def __init__(self, agg: int = 0, count: int = 0) -> None:
        self.agg, self.count = agg, count
        self.c0: _Node | None = None
        self.c1: _Node | None = None


def _ffs_msb(x: int) -> int:
    """Position of the highest set bit counting from the top (1..32), 0 for none."""
    return 33 - x.bit_length() if x else 0


class _Trie:
    """The radix tree AggregateCounter keeps its counts in.  Only its shape matters
    here: ``reaggregate_counts`` counts every node, including the empty inner ones,
    so the histogram it makes depends on it."""

    def __init__(self) -> None:
        self.root = _Node()

    def _split(self, a: int, n: _Node) -> _Node:
        swivel = _ffs_msb(a ^ n.agg)
        bit = (a >> (32 - swivel)) & 1
        mask = 0 if swivel == 1 else (_U32 << (33 - swivel)) & _U32
        new, old = _Node(a), _Node(n.agg, n.count)
        old.c0, old.c1 = n.c0, n.c1
        down = (new, old) if bit == 0 else (old, new)
        n.agg = down[0].agg & mask
        if down[0].agg == n.agg:
            n.count, down[0].count = down[0].count, 0
        else:
            n.count = 0
        n.c0, n.c1 = down
        return n if n.agg == a else new

    def find(self, a: int) -> _Node:
        n = self.root
        while True:
            if n.agg == a:
                return n
            if n.c0 is None or n.c1 is None:
                n = self._split(a, n)
            else:
                swivel = _ffs_msb(n.c0.agg ^ n.c1.agg)
                if _ffs_msb(a ^ n.agg) < swivel:
                    n = self._split(a, n)
                elif a & (1 << (32 - swivel)):
                    n = n.c1
                else:
                    n = n.c0

    def preorder(self) -> list[_Node]:
        out: list[_Node] = []
        stack = [self.root]
        while stack:
            n = stack.pop()
            out.append(n)
            if n.c0 is not None and n.c1 is not None:
                stack.append(n.c1)
                stack.append(n.c0)
        return out


class _Counts:
    """AggregateCounter's counters: entries in order of creation (``K[e, 0]`` the
    aggregate, ``C[e]`` its count) with a hash index, plus the scalar state the
    batch kernel updates (``P``, see :func:`clickos.packet.aggkernels.aggcount_batch`)."""

    def __init__(self, nparams: int, capacity: int = 256) -> None:
        self.K = np.zeros((capacity, 2), np.uint64)
        self.C = np.zeros(capacity, np.int64)
        self.slots = np.full(4 * capacity, -1, np.int32)
        self.D = np.full(capacity, -1, np.int32)     # direct index of small aggregates
        self.P = np.zeros(nparams, np.int64)

    def grow(self, agg: int = -1) -> None:
        """Make room for one more entry, and for ``agg`` in the direct index."""
        from clickos.packet.flowtable import index_rebuild

        n = int(self.P[_C_N])
        if n >= len(self.C) or 2 * (n + 1) > len(self.slots):
            cap = len(self.C)
            self.K = np.concatenate([self.K, np.zeros_like(self.K)])
            self.C = np.concatenate([self.C, np.zeros_like(self.C)])
            self.slots = np.full(8 * cap, -1, np.int32)
            index_rebuild(self.slots, self.K, np.arange(n, dtype=np.int64))
        if len(self.D) <= agg < _DENSE_MAX:
            size = len(self.D)
            while size <= agg:
                size *= 2
            self.D = np.full(size, -1, np.int32)
            keys = self.K[:n, 0].astype(np.int64)
            small = keys < size
            self.D[keys[small]] = np.flatnonzero(small)

    def reset(self) -> None:
        self.slots.fill(-1)
        self.D.fill(-1)
        self.P[_C_N] = 0

    def find(self, agg: int) -> int:
        from clickos.packet.flowtable import index_lookup

        return int(index_lookup(self.slots, self.K, np.uint64(agg), np.uint64(0)))

    def insert(self, agg: int, count: int = 0) -> int:
        from clickos.packet.flowtable import index_set

        self.grow(agg)
        e = int(self.P[_C_N])
        self.K[e, 0] = agg
        self.K[e, 1] = 0
        self.C[e] = count
        index_set(self.slots, self.K, e)
        if agg < len(self.D):
            self.D[agg] = e
        self.P[_C_N] = e + 1
        return e

    def items(self) -> list[tuple[int, int]]:
        n = int(self.P[_C_N])
        return list(zip(self.K[:n, 0].tolist(), self.C[:n].tolist(), strict=True))


# parameter slots of clickos.packet.aggkernels (not imported here: it loads numba)
_C_N, _C_NNZ, _C_TOTAL, _C_NPARAMS = 3, 4, 5, 13
_DENSE_MAX = 1 << 16
_G_NCOLS = 4


def _parse_call(text: str, bits: int) -> tuple[int, HandlerCall]:
    first, rest = shift_word(text)
    n = parse_integer(first, bits, False)
    return n, HandlerCall(rest)


class AggregateCounter(Element):
    """AggregateCounter([KEYWORDS])

    Counts packets (or bytes) per value of the aggregate annotation.

    Each aggregate value seen gets its own counter; the ``write_text_file``
    family of handlers dumps them.  A frozen counter only updates counters that
    already exist and ignores new aggregates.  An optional second input is
    always frozen.  With two outputs (in push), counted packets leave on output
    0 and the others on output 1.

    Keyword arguments:

    - BYTES (boolean): count bytes instead of packets.  Default false.
    - IP_BYTES (boolean): with BYTES, leave out link-level header bytes.
      Default false.
    - MULTIPACKET (boolean): a packet counts as 1 plus its extra packets
      annotation.  Default true.
    - EXTRA_LENGTH (boolean): with BYTES, add the extra length annotation.
      Default true.
    - AGGREGATE_STOP, AGGREGATE_FREEZE (unsigned N): stop the driver, or freeze,
      once N distinct aggregates have been seen.
    - AGGREGATE_CALL (``N HANDLER [VALUE]``): call a write handler then.
    - COUNT_STOP, COUNT_FREEZE (unsigned N): stop or freeze once the total
      count reaches N.
    - COUNT_CALL (``N HANDLER [VALUE]``): call a write handler then.
      (At most one of each group of three.)
    - BANNER (string): text written at the top of dumps.

    Handlers:

    - ``write_text_file`` / ``write_ascii_file`` (write, filename or ``-``):
      text lines ``AGGREGATE COUNT`` in increasing aggregate order, after
      ``!IPAggregate 1.0``, the banner and ``!num_nonzero N``;
      ``write_ip_file`` prints aggregates as IP addresses; ``write_pdf_file``
      prints each count divided by the total; ``write_file`` writes 8-byte
      native-endian records after a ``!packed_le``/``!packed_be`` line.
    - ``freeze``, ``active`` (read/write booleans); ``stop`` (write: deactivate
      and stop the driver); ``clear`` (write: forget all counts).
    - ``reaggregate_counts`` (also ``counts_pdf``): replace the counters by a
      histogram: for each count value, how many counters had it.
    - ``banner`` (read/write), ``aggregate_call``, ``count_call``
      (read/write, ``N HANDLER [VALUE]``), ``count`` (total), ``nagg``
      (nonzero counters).

    Example::

        FromDump(trace.pcap, FORCE_IP true, STOP true) -> AggregateIPFlows
            -> c :: AggregateCounter -> Discard;
        DriverManager(wait, write c.write_text_file flows.txt)
    """

    port_count = "1-2/1-2"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.bytes = self.ip_bytes = False
        self.use_packet_count = self.use_extra_length = True
        self.banner = ""
        self._c = _Counts(_C_NPARAMS)
        self.call_nnz = _U32
        self.call_count = _U64
        self.call_nnz_h: HandlerCall | None = None
        self.call_count_h: HandlerCall | None = None
        self.frozen = False
        self.active = True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.bytes = a.read("BYTES", parse_bool, False)
        self.ip_bytes = a.read("IP_BYTES", parse_bool, False)
        self.use_packet_count = a.read("MULTIPACKET", parse_bool, True)
        self.use_extra_length = a.read("EXTRA_LENGTH", parse_bool, True)
        freeze_nnz = a.read("AGGREGATE_FREEZE", parse_unsigned, None)
        freeze_count = a.read("COUNT_FREEZE", parse_uint64, None)
        stop_nnz = a.read("AGGREGATE_STOP", parse_unsigned, None)
        stop_count = a.read("COUNT_STOP", parse_uint64, None)
        call_nnz = a.read("AGGREGATE_CALL", parse_any, None)
        call_count = a.read("COUNT_CALL", parse_any, None)
        self.banner = a.read("BANNER", parse_string, "")
        a.complete()
        if (freeze_nnz is not None) + (stop_nnz is not None) + bool(call_nnz) > 1:
            raise ConfigError("'AGGREGATE_FREEZE', 'AGGREGATE_STOP', and 'AGGREGATE_CALL' are mutually exclusive")
        self.call_nnz, self.call_nnz_h = _U32, None
        if freeze_nnz is not None:
            self.call_nnz, self.call_nnz_h = freeze_nnz, HandlerCall(self.name + ".freeze true")
        elif stop_nnz is not None:
            self.call_nnz, self.call_nnz_h = stop_nnz, HandlerCall(self.name + ".stop")
        elif call_nnz:
            try:
                self.call_nnz, self.call_nnz_h = _parse_call(call_nnz, 32)
            except ConfigError:
                raise ConfigError("AGGREGATE_CALL first word should be unsigned (number of aggregates)") from None
        if (freeze_count is not None) + (stop_count is not None) + bool(call_count) > 1:
            raise ConfigError("'COUNT_FREEZE', 'COUNT_STOP', and 'COUNT_CALL' are mutually exclusive")
        self.call_count, self.call_count_h = _U64, None
        if freeze_count is not None:
            self.call_count, self.call_count_h = freeze_count, HandlerCall(self.name + ".freeze true")
        elif stop_count is not None:
            self.call_count, self.call_count_h = stop_count, HandlerCall(self.name + ".stop")
        elif call_count:
            try:
                self.call_count, self.call_count_h = _parse_call(call_count, 64)
            except ConfigError:
                raise ConfigError("COUNT_CALL first word should be unsigned (count)") from None

    def initialize(self, errh: ErrorHandler) -> None:
        for h in (self.call_nnz_h, self.call_count_h):
            if h is not None:
                h.initialize_write(self, errh)
        from clickos.packet import aggkernels as ak

        assert (ak.C_N, ak.C_NNZ, ak.C_TOTAL, ak.C_NPARAMS, ak.C_CALL_NNZ, ak.C_CALL_COUNT, ak.C_FROZEN) \
            == (_C_N, _C_NNZ, _C_TOTAL, _C_NPARAMS, 6, 7, 8) and ak.DENSE_MAX == _DENSE_MAX
        self._kernel = ak.aggcount_batch
        self._ok = np.ones(256, np.int64)
        P = self._c.P
        P[ak.C_MODE] = (self.bytes | self.ip_bytes << 1 | self.use_packet_count << 2
                        | self.use_extra_length << 3)
        P[ak.C_AGG_OFF] = AGGREGATE_ANNO
        P[ak.C_XP_OFF] = EXTRA_PACKETS_ANNO
        P[ak.C_XL_OFF] = EXTRA_LENGTH_ANNO
        self.clear()
        self.frozen = False
        self.active = True

    @property
    def call_nnz(self) -> int:
        return self._call_nnz

    @call_nnz.setter
    def call_nnz(self, v: int) -> None:
        self._call_nnz = v
        self._c.P[6] = v             # aggkernels.C_CALL_NNZ

    @property
    def call_count(self) -> int:
        return self._call_count

    @call_count.setter
    def call_count(self, v: int) -> None:
        self._call_count = v
        self._c.P[7] = min(v, (1 << 63) - 1)   # aggkernels.C_CALL_COUNT

    @property
    def counts(self) -> dict[int, int]:
        """The counters, aggregate -> count, in order of creation."""
        return dict(self._c.items())

    @property
    def num_nonzero(self) -> int:
        return int(self._c.P[_C_NNZ])

    @num_nonzero.setter
    def num_nonzero(self, v: int) -> None:
        self._c.P[_C_NNZ] = v

    @property
    def total(self) -> int:
        return int(self._c.P[_C_TOTAL])

    @total.setter
    def total(self, v: int) -> None:
        self._c.P[_C_TOTAL] = v

    def clear(self) -> None:
        self._c.reset()
        self._c.insert(0, 0)
        self.num_nonzero = 0
        self.total = 0

    # -- counting -------------------------------------------------------------------------
    def _amount(self, pool: PacketPool, s: int) -> int:
        if not self.bytes:
            return 1 + (anno_u32(pool, s, EXTRA_PACKETS_ANNO) if self.use_packet_count else 0)
        amount = int(pool.length[s]) + (anno_u32(pool, s, EXTRA_LENGTH_ANNO) if self.use_extra_length else 0)
        if self.ip_bytes and pool.nh[s] >= 0:
            amount -= int(pool.nh[s]) - int(pool.off[s])
        return amount & _U32

    def update(self, pool: PacketPool, s: int, frozen: bool) -> bool:
        """Count one packet; False when it was not counted (inactive, or frozen and new)."""
        while True:
            if not self.active:
                return False
            agg = anno_u32(pool, s, AGGREGATE_ANNO)
            c = self._c
            e = c.find(agg)
            if e < 0:
                if frozen:
                    return False
                e = c.insert(agg)
                cur = 0
            else:
                cur = int(c.C[e])
                if frozen and not cur:
                    return False
            amount = self._amount(pool, s)
            if amount and not cur:
                if self.num_nonzero >= self.call_nnz:
                    self.call_nnz = _U32
                    if self.call_nnz_h is not None:
                        self.call_nnz_h.call_write()
                    frozen = frozen or self.frozen
                    continue
                self.num_nonzero += 1
            c.C[e] = (cur + amount) & _U32
            self.total += amount
            if self.total >= self.call_count:
                self.call_count = _U64
                if self.call_count_h is not None:
                    self.call_count_h.call_write()
            return True

    def _count(self, batch: PacketBatch, port: int, scratch: bool = False) -> np.ndarray:
        """Count a batch; per packet, 0 if it was counted and 1 if not (with
        ``scratch``, the result is in a reused buffer and only partly filled)."""
        pool = batch.pool
        idx = batch.idx
        n = len(idx)
        if scratch:
            ok = self._ok
            if len(ok) < n:
                ok = self._ok = np.ones(n, np.int64)
            ok = ok[:n]
        else:
            ok = np.ones(n, np.int64)
        c = self._c
        P = c.P
        k = 0
        while k < n and self.active:
            frozen = self.frozen or port == 1
            P[0] = k
            P[8] = frozen
            if self._kernel(pool.off, pool.length, pool.nh, pool.anno, idx, ok, c.K, c.C, c.slots, c.D, P):
                return ok
            k = int(P[1])
            status = int(P[2])
            if status == 0:
                break
            if status == 3:
                c.grow(anno_u32(pool, int(idx[k]), AGGREGATE_ANNO))
                continue
            ok[k] = 0 if self.update(pool, int(idx[k]), frozen) else 1
            k += 1
        return ok

    def push(self, port: int, batch: PacketBatch) -> None:
        if len(self.outputs) == 1:
            if self.active:
                self._count(batch, port, True)
            self.outputs[0].push(batch)
            return
        push_runs(self, batch, self._count(batch, port))

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0 if len(self.inputs) == 1 else port].pull(max)
        if batch is not None and self.active:
            self._count(batch, port, True)
        return batch

    def reaggregate_counts(self) -> None:
        """Replace the counts by their histogram (counting every node of the tree)."""
        trie = _Trie()
        for agg, count in self.counts.items():
            trie.find(agg).count = count
        self.clear()
        table = self._c
        hist: dict[int, int] = {0: 0}
        for node in trie.preorder():
            c = node.count
            cur = hist.get(c, 0)
            if not cur:
                self.num_nonzero += 1
            hist[c] = cur + 1
            self.total += 1
        for c, v in hist.items():
            e = table.find(c)
            if e < 0:
                table.insert(c, v)
            else:
                table.C[e] = v

    # -- output ---------------------------------------------------------------------------
    def write_file(self, where: str, fmt: str) -> None:
        try:
            f: Any = sys.stdout if where == "-" else open(where, "wb" if fmt == "binary" else "w")  # noqa: SIM115
        except OSError as ex:
            raise ConfigError(f"{where}: {ex.strerror}") from None
        try:
            self._write(f, fmt)
        finally:
            if f is not sys.stdout:
                f.close()

    def _write(self, f: TextIO | Any, fmt: str) -> None:
        head = ["!IPAggregate 1.0\n", self.banner]
        if self.banner and not self.banner.endswith("\n"):
            head.append("\n")
        head.append(f"!num_nonzero {self.num_nonzero}\n")
        if fmt == "binary":
            head.append("!packed_le\n" if sys.byteorder == "little" else "!packed_be\n")
        elif fmt == "ip":
            head.append("!ip\n")
        items = [(a, c) for a, c in sorted(self.counts.items()) if c > 0]
        if fmt == "binary":
            body = b"".join(struct.pack("=II", a, c) for a, c in items)
            data = "".join(head).encode("latin-1") + body
            if f is sys.stdout:
                sys.stdout.flush()
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            else:
                f.write(data)
            return
        if fmt == "ip":
            lines = [f"{a >> 24 & 255}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255} {c}\n" for a, c in items]
        elif fmt == "pdf":
            lines = [f"{a} {c / self.total if self.total else float('nan'):.12g}\n" for a, c in items]
        else:
            lines = [f"{a} {c}\n" for a, c in items]
        f.write("".join(head) + "".join(lines))
        if f is sys.stdout:
            f.flush()

    def add_handlers(self) -> None:
        def file_writer(fmt: str):  # noqa: ANN202
            def write(value: str, errh: ErrorHandler) -> None:
                try:
                    fn = parse_filename(uncomment(value))
                except ConfigError:
                    raise ConfigError("argument should be filename") from None
                self.write_file(fn, fmt)
            return write

        for name, fmt in (("write_text_file", "text"), ("write_ascii_file", "text"), ("write_file", "binary"),
                          ("write_ip_file", "ip"), ("write_pdf_file", "pdf")):
            self.add_write_handler(name, file_writer(fmt))

        def bool_attr(attr: str):  # noqa: ANN202
            def write(value: str, errh: ErrorHandler) -> None:
                try:
                    setattr(self, attr, parse_bool(uncomment(value)))
                except ConfigError:
                    raise ConfigError("type mismatch") from None
            return write

        self.add_read_handler("freeze", lambda: self.frozen, CHECKBOX)
        self.add_write_handler("freeze", bool_attr("frozen"))
        self.add_read_handler("active", lambda: self.active, CHECKBOX)
        self.add_write_handler("active", bool_attr("active"))

        def stop(value: str, errh: ErrorHandler) -> None:
            self.active = False
            self.router.please_stop_driver()

        self.add_write_handler("stop", stop, BUTTON)
        self.add_write_handler("reaggregate_counts", lambda v, e: self.reaggregate_counts())
        self.add_write_handler("counts_pdf", lambda v, e: self.reaggregate_counts())
        self.add_read_handler("banner", lambda: self.banner)

        def write_banner(value: str, errh: ErrorHandler) -> None:
            if value and not value.endswith("\n"):
                value += "\n"
            elif value == "\n":
                value = ""
            self.banner = value

        self.add_write_handler("banner", write_banner, RAW)
        self.add_write_handler("clear", lambda v, e: self.clear())

        def call_reader(which: str):  # noqa: ANN202
            def read() -> str:
                n, h = (self.call_nnz, self.call_nnz_h) if which == "aggregate" else (self.call_count,
                                                                                     self.call_count_h)
                if n == (_U32 if which == "aggregate" else _U64) or h is None:
                    return ""
                return f"{n} {h.unparse()}"
            return read

        def call_writer(which: str):  # noqa: ANN202
            def write(value: str, errh: ErrorHandler) -> None:
                text = uncomment(value)
                bits = 32 if which == "aggregate" else 64
                n = _U32 if bits == 32 else _U64
                h = None
                if text:
                    try:
                        n, h = _parse_call(text, bits)
                    except ConfigError:
                        raise ConfigError(f"argument to '{which}_call' should be 'N HANDLER [VALUE]'") from None
                    h.initialize_write(self, errh)
                if which == "aggregate":
                    self.call_nnz = n
                    self.call_nnz_h = h or self.call_nnz_h
                else:
                    self.call_count = n
                    self.call_count_h = h or self.call_count_h
            return write

        for which in ("aggregate", "count"):
            self.add_read_handler(f"{which}_call", call_reader(which))
            self.add_write_handler(f"{which}_call", call_writer(which))
        self.add_read_handler("count", lambda: self.total)
        self.add_read_handler("nagg", lambda: self.num_nonzero)


# ---------------------------------------------------------------------------------------
# AggregateIPFlows
# ---------------------------------------------------------------------------------------

class _FlowTable:
    """The flows of one AggregateIPFlows as numpy arrays, for the batch kernel: row
    ``f`` has key ``K[f]`` (see :func:`clickos.packet.aggkernels.aggflows_batch`)
    and state ``G[f]``; ``slots`` is the hash index over the keys."""

    def __init__(self, capacity: int = 256) -> None:
        self.K = np.zeros((capacity, 2), np.uint64)
        self.G = np.zeros((capacity, _G_NCOLS), np.int64)
        self.slots = np.full(4 * capacity, -1, np.int32)
        self.free: list[int] = list(range(capacity - 1, -1, -1))

    def add(self, mapid: int, key: tuple[int, int], ports: int) -> int:
        from clickos.packet.flowtable import index_rebuild, index_set

        if not self.free:
            cap = len(self.G)
            self.K = np.concatenate([self.K, np.zeros_like(self.K)])
            self.G = np.concatenate([self.G, np.zeros_like(self.G)])
            self.free = list(range(2 * cap - 1, cap - 1, -1))
            live = self.slots[self.slots >= 0].astype(np.int64)
            self.slots = np.full(8 * cap, -1, np.int32)
            index_rebuild(self.slots, self.K, live)
        f = self.free.pop()
        self.K[f, 0] = (key[0] << 32) | key[1]
        self.K[f, 1] = (mapid << 32) | ports
        self.G[f] = 0
        index_set(self.slots, self.K, f)
        return f

    def remove(self, f: int) -> None:
        from clickos.packet.flowtable import index_erase

        index_erase(self.slots, self.K, f)
        self.free.append(f)


class _Flow:
    """One flow; the state the batch kernel uses lives in its row of the table."""

    __slots__ = ("ports", "tab", "row", "first_ts", "filepos", "packets")

    def __init__(self, tab: _FlowTable, row: int, ports: int, aggregate: int) -> None:
        self.ports = ports
        self.tab = tab
        self.row = row
        self.aggregate = aggregate
        self.first_ts = 0
        self.filepos = 0
        self.packets = [0, 0]

    def _get(col: int):  # noqa: ANN202, N805
        def get(self: _Flow) -> int:
            return int(self.tab.G[self.row, col])

        def put(self: _Flow, v: int) -> None:
            self.tab.G[self.row, col] = int(v)
        return property(get, put)

    aggregate = _get(0)
    reverse = _get(1)
    last_ts = _get(2)
    over = _get(3)
    del _get


class _HostPair:
    __slots__ = ("flows", "frags")

    def __init__(self) -> None:
        self.flows: list[_Flow] = []        # most recently used first
        self.frags: list[int] = []          # held fragment slots, oldest first


_EMIT, _DROP, _NONE = 0, 1, 2
_ICMP_ERRORS = (3, 4, 5, 11, 12)


def _sec(ts: int) -> int:
    return ts // _NS


def _s32(x: int) -> int:
    x &= _U32
    return x - (1 << 32) if x & 0x80000000 else x


class AggregateIPFlows(Element):
    """AggregateIPFlows([KEYWORDS])

    Numbers TCP and UDP flows: sets each packet's aggregate annotation to its
    flow's number and its paint annotation to its direction.

    A flow is identified by its addresses and ports; replies belong to the same
    flow.  Flows are numbered 1, 2, ... in order of first appearance; the
    first packet's direction is paint 0 and replies get paint 1.  A flow that
    has been idle longer than its timeout (or a closed TCP flow that sees a
    new SYN) starts over with a new number.  Packets that are not TCP or UDP,
    or too short to show their ports, leave on output 1 (or are dropped).

    With FRAGMENTS, later IP fragments get the annotations of their first
    fragment: they are held until it arrives (or until FRAGMENT_TIMEOUT seconds
    of packet time pass, when they go to output 1).  This can reorder packets
    between different address pairs.  Held fragments stay in the element when
    the input ends; write ``clear`` to flush them.

    Keyword arguments:

    - TCP_TIMEOUT: idle timeout of TCP flows, seconds.  Default 86400.
    - TCP_DONE_TIMEOUT: timeout of TCP flows that saw FIN both ways (or RST).
      Default 30.
    - UDP_TIMEOUT: idle timeout of UDP flows.  Default 60.
    - FRAGMENT_TIMEOUT: how long fragments are held.  Default 30.
    - REAP: how often (in packet time) old flows are forgotten.  Default 1200.
    - ICMP (boolean): give ICMP errors the annotations of the flow of the packet
      they quote, with paint 2 or 3.  Default false.
    - FRAGMENTS (boolean): handle fragments as above; push only.  Default true
      in push context, false in pull.
    - TRACEINFO (filename): write an XML record of each flow when it ends.
    - SOURCE (element): its ``filename`` and ``packet_filepos`` handlers are
      recorded in the TRACEINFO file.

    Handlers: ``clear`` (write) forgets every flow and flushes held fragments.

    Example::

        FromDump(trace.pcap, STOP true, FORCE_IP true) -> af :: AggregateIPFlows
            -> AggregateCounter -> Discard;
        DriverManager(wait, write af.clear)
    """

    port_count = "1/1-2"
    processing = "a/ah"

    def __init__(self) -> None:
        super().__init__()
        self.tcp_timeout = 24 * 3600
        self.tcp_done_timeout = 30
        self.udp_timeout = 60
        self.fragment_timeout = 30
        self.gc_interval = 20 * 60
        self.handle_icmp = False
        self.fragments = 2
        self.traceinfo_name = ""
        self.source: str | None = None
        self.tcp_map: dict[tuple[int, int], _HostPair] = {}
        self.udp_map: dict[tuple[int, int], _HostPair] = {}
        self.next = 1
        self.active_sec = 0
        self.gc_sec = 0
        self.timestamp_warning = False
        self.smallest_timeout = 30
        self._trace: TextIO | None = None
        self._source_e: Element | None = None
        self._out: list[tuple[int, int]] = []
        self._tab = _FlowTable()
        self._held = 0                      # fragments held in all host pairs
        self._P: np.ndarray | None = None   # batch kernel parameters (None: no fast path)

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.tcp_timeout = a.read("TCP_TIMEOUT", parse_unsigned, 24 * 3600)
        self.tcp_done_timeout = a.read("TCP_DONE_TIMEOUT", parse_unsigned, 30)
        self.udp_timeout = a.read("UDP_TIMEOUT", parse_seconds, 60)
        self.fragment_timeout = a.read("FRAGMENT_TIMEOUT", parse_seconds, 30)
        self.gc_interval = a.read("REAP", parse_seconds, 20 * 60)
        self.handle_icmp = a.read("ICMP", parse_bool, False)
        self.traceinfo_name = a.read("TRACEINFO", parse_filename, "")
        self.source = a.read("SOURCE", parse_any, None)
        fragments = a.read("FRAGMENTS", parse_bool, None)
        a.complete()
        self.smallest_timeout = min(self.tcp_timeout, self.tcp_done_timeout, self.udp_timeout)
        self.fragments = 2 if fragments is None else int(fragments)
        if self.source is not None:
            e = self.router.find(self.source, self)
            if e is None:
                raise ConfigError(f"SOURCE: no element named '{self.source}'")
            self._source_e = e

    def initialize(self, errh: ErrorHandler) -> None:
        self.next = 1
        self.active_sec = self.gc_sec = 0
        self.timestamp_warning = False
        if self.traceinfo_name:
            try:
                self._trace = sys.stdout if self.traceinfo_name == "-" else open(self.traceinfo_name, "w")  # noqa: SIM115
            except OSError as ex:
                raise ConfigError(f"{self.traceinfo_name}: {ex.strerror}") from None
            attrs = ""
            if self._source_e is not None:
                fn = self._call_read(self._source_e, "filename")
                if fn:
                    attrs = f" file='{fn}'"
            self._trace.write(f"<?xml version='1.0' standalone='yes'?>\n<trace{attrs}>\n")
            self._trace.flush()
        input_pull = bool(self.inputs) and self.input_is_pull(0)
        if self.fragments == 2:
            self.fragments = 0 if input_pull else 1
        elif self.fragments == 1 and input_pull:
            raise ConfigError("'FRAGMENTS true' is incompatible with pull; run this element in a push context")
        self._P = None
        if self._trace is None and sys.byteorder == "little":
            from clickos.packet import aggkernels as ak

            assert ak.G_NCOLS == _G_NCOLS and (ak.G_AGG, ak.G_REV, ak.G_LAST, ak.G_OVER) == (0, 1, 2, 3)
            P = np.zeros(ak.F_NPARAMS, np.int64)
            P[ak.F_SMALLEST] = self.smallest_timeout
            P[ak.F_TCP_TO] = self.tcp_timeout
            P[ak.F_TCP_DONE_TO] = self.tcp_done_timeout
            P[ak.F_UDP_TO] = self.udp_timeout
            P[ak.F_ICMP] = int(self.handle_icmp)
            P[ak.F_AGG_OFF] = AGGREGATE_ANNO
            P[ak.F_PAINT_OFF] = PAINT_ANNO
            self._P = P
            self._kernel = ak.aggflows_batch

    def _call_read(self, e: Element, name: str) -> str:
        h = self.router.handlers.find(e, name)
        if h is None or not h.readable:
            return ""
        try:
            return str(h.call_read("", ErrorHandler(echo=False))).strip()
        except Exception:  # noqa: BLE001 - a missing or failing handler is not an error here
            return ""

    def cleanup(self, stage: int) -> None:
        for m in (self.tcp_map, self.udp_map):
            for key, hp in m.items():
                for s in hp.frags:
                    self.router.pool.release1(s)
                hp.frags = []
                for f in hp.flows:
                    self._flow_done(key, f)
                    self._tab.remove(f.row)
                hp.flows = []
        self._held = 0
        if self._trace is not None:
            if self._trace is not sys.stdout:
                self._trace.write("</trace>\n")
                self._trace.close()
            else:
                self._trace.flush()
            self._trace = None

    # -- helpers -----------------------------------------------------------------------------
    def _flow_done(self, key: tuple[int, int], f: _Flow) -> None:
        t = self._trace
        if t is None:
            return
        a, b = key
        src, dst = (b, a) if f.reverse else (a, b)
        ports_be = struct.unpack(">I", struct.pack("<I", f.ports))[0]
        sport = (ports_be >> (0 if f.reverse else 16)) & 0xFFFF
        dport = (ports_be >> (16 if f.reverse else 0)) & 0xFFFF

        def ip(v: int) -> str:
            return ".".join(str(x) for x in struct.pack("<I", v))

        def stamp(ns: int) -> str:
            sec, sub = divmod(ns, _NS)
            return f"{sec}.{sub:09d}"

        dur = f.last_ts - f.first_ts
        t.write(f"<flow aggregate='{f.aggregate}' src='{ip(src)}' sport='{sport}' dst='{ip(dst)}' "
                f"dport='{dport}' begin='{stamp(f.first_ts)}' duration='{stamp(dur)}'")
        if f.filepos:
            t.write(f" filepos='{f.filepos}'")
        t.write(f">\n  <stream dir='0' packets='{f.packets[0]}' /><stream dir='1' packets='{f.packets[1]}' />\n"
                "</flow>\n")

    def _new_flow_stats(self, pool: PacketPool, s: int, f: _Flow) -> None:
        f.first_ts = int(pool.ts[s])
        f.filepos = 0
        if self._source_e is not None:
            v = self._call_read(self._source_e, "packet_filepos")
            if v.isdigit():
                f.filepos = int(v) & _U32

    def _header(self, pool: PacketPool, s: int) -> int:
        """Absolute offset of the IP header that identifies the flow: the quoted header
        of an ICMP error handled as such, else the packet's own."""
        nh = int(pool.nh[s])
        d = pool.data[s]
        if d[nh + 9] == 1:
            th = int(pool.th[s])
            return th + 8
        return nh

    def _emit_hook(self, pool: PacketPool, s: int, h: int, f: _Flow) -> None:
        f.last_ts = int(pool.ts[s])
        d = pool.data[s]
        paint = int(pool.anno[s, PAINT_ANNO])
        end = int(pool.off[s]) + int(pool.length[s])
        if (d[h + 9] == 6 and ((int(d[h + 6]) << 8 | int(d[h + 7])) & 0x1FFF) == 0 and pool.th[s] >= 0
                and end - int(pool.th[s]) >= 14 and paint < 2):
            flags = int(d[int(pool.th[s]) + 13])
            if flags & 0x04:
                f.over = 3
            elif flags & 0x01:
                f.over |= 1 << paint
            elif flags & 0x02:
                f.over = 0
        if self._trace is not None and paint < 2:
            f.packets[paint] += 1

    def _emit_fragment_head(self, pool: PacketPool, hp: _HostPair) -> None:
        head = hp.frags.pop(0)
        self._held -= 1
        h = self._header(pool, head)
        d = pool.data
        ip_id = bytes(d[head, h + 4: h + 6])
        agg = anno_u32(pool, head, AGGREGATE_ANNO)
        if agg:
            for q in hp.frags:
                hq = self._header(pool, q)
                if bytes(d[q, hq + 4: hq + 6]) == ip_id:
                    set_anno_u32(pool, q, AGGREGATE_ANNO, agg)
                    pool.anno[q, PAINT_ANNO] = pool.anno[head, PAINT_ANNO]
        else:
            for q in hp.frags:
                hq = self._header(pool, q)
                if bytes(d[q, hq + 4: hq + 6]) == ip_id and anno_u32(pool, q, AGGREGATE_ANNO):
                    agg = anno_u32(pool, q, AGGREGATE_ANNO)
                    set_anno_u32(pool, head, AGGREGATE_ANNO, agg)
                    pool.anno[head, PAINT_ANNO] = pool.anno[q, PAINT_ANNO]
                    break
            else:
                pool.release1(head)
                return
        for k, f in enumerate(hp.flows):
            if f.aggregate == agg:
                hp.flows.insert(0, hp.flows.pop(k))
                self._emit_hook(pool, head, h, f)
                break
        self._out.append((0, head))

    def _is_frag(self, pool: PacketPool, s: int, h: int) -> bool:
        d = pool.data[s]
        return ((int(d[h + 6]) << 8 | int(d[h + 7])) & 0x3FFF) != 0

    def _flush_old_fragments(self, pool: PacketPool, hp: _HostPair) -> None:
        limit = self.active_sec - self.fragment_timeout
        while hp.frags:
            head = hp.frags[0]
            if _sec(int(pool.ts[head])) < limit or not self._is_frag(pool, head, self._header(pool, head)):
                self._emit_fragment_head(pool, hp)
            else:
                break

    def _reap_map(self, m: dict[tuple[int, int], _HostPair], timeout: int, done_timeout: int) -> None:
        pool = self.router.pool
        timeout = self.active_sec - timeout
        done_timeout = self.active_sec - done_timeout
        for key, hp in m.items():
            self._flush_old_fragments(pool, hp)
            if hp.frags:
                continue
            keep = []
            for f in hp.flows:
                if _s32(_sec(f.last_ts) - (done_timeout if f.over == 3 else timeout)) < 0:
                    self._flow_done(key, f)
                    self._tab.remove(f.row)
                else:
                    keep.append(f)
            hp.flows = keep

    def reap(self) -> None:
        if self.gc_sec:
            self._reap_map(self.tcp_map, self.tcp_timeout, self.tcp_done_timeout)
            self._reap_map(self.udp_map, self.udp_timeout, self.udp_timeout)
        self.gc_sec = self.active_sec + self.gc_interval

    def _find_flow(self, m: dict[tuple[int, int], _HostPair], key: tuple[int, int], hp: _HostPair, ports: int,
                   flipped: bool, pool: PacketPool, s: int) -> _Flow:
        psec = _sec(int(pool.ts[s]))
        for k, f in enumerate(hp.flows):
            if f.ports != ports:
                continue
            age = psec - _sec(f.last_ts)
            timeout = self.udp_timeout if m is self.udp_map else (
                self.tcp_done_timeout if f.over == 3 else self.tcp_timeout)
            d = pool.data[s]
            nh = int(pool.nh[s])
            th = int(pool.th[s])
            # (a transport header annotation whose flags byte lies outside the packet
            # shows no SYN; Click would read the buffer there unchecked)
            syn = (d[nh + 9] == 6 and 0 <= th and th + 13 < int(pool.off[s]) + int(pool.length[s])
                   and (int(d[th + 13]) & 0x02) != 0)
            if (age > self.smallest_timeout and age > timeout) or (f.over == 3 and syn):
                self._flow_done(key, f)
                f.aggregate = self.next
                self.next += 1
                f.reverse = flipped
                f.over = 0
                f.packets = [0, 0]
                if self._trace is not None:
                    self._new_flow_stats(pool, s, f)
            hp.flows.insert(0, hp.flows.pop(k))
            return f
        f = _Flow(self._tab, self._tab.add(0 if m is self.tcp_map else 1, key, ports), ports, self.next)
        if self._trace is not None:
            self._new_flow_stats(pool, s, f)
        f.reverse = flipped
        hp.flows.insert(0, f)
        self.next += 1
        return f

    def _handle(self, pool: PacketPool, s: int) -> int:
        if not pool.ts[s]:
            if not self.timestamp_warning:
                chatter(f"{self.declaration()}: warning: packet received without timestamp")
                self.timestamp_warning = True
            pool.ts[s] = self.router.master.clock.now()
        nh = int(pool.nh[s])
        if nh < 0:
            return _DROP
        d = pool.data[s]
        end = int(pool.off[s]) + int(pool.length[s])
        h = nh
        paint = 0
        if (nh + 20 <= end and d[nh + 9] == 1 and ((int(d[nh + 6]) << 8 | int(d[nh + 7])) & 0x1FFF) == 0
                and self.handle_icmp):
            th = int(pool.th[s])
            ok = False
            if th >= 0 and th + 8 < end and d[th] in _ICMP_ERRORS:
                eh = (int(d[th + 8]) & 0xF) << 2
                ok = end - th >= 8 + eh and eh >= 20
            if not ok:
                return _DROP
            h = th + 8
            paint = 2
        if h + 20 > end or d[h + 9] not in (6, 17):
            return _DROP
        src = int.from_bytes(bytes(d[h + 12: h + 16]), "little")
        dst = int.from_bytes(bytes(d[h + 16: h + 20]), "little")
        if src == 0 and dst == 0:
            return _DROP
        m = self.tcp_map if d[h + 9] == 6 else self.udp_map
        key = (dst, src) if src > dst else (src, dst)
        if key[0] != src:
            paint ^= 1
        hp = m.get(key)
        if hp is None:
            hp = m[key] = _HostPair()
        f: _Flow | None = None
        first_frag = ((int(d[h + 6]) << 8 | int(d[h + 7])) & 0x1FFF) == 0
        if first_frag:
            up = h + ((int(d[h]) & 0xF) << 2)
            if up + 4 > end:
                return _DROP
            ports = int.from_bytes(bytes(d[up: up + 4]), "little")
            if key[0] == key[1] and _s32((ports << 16) - ports) < 0:
                paint ^= 1
            if paint & 1:
                ports = ((ports >> 16) & 0xFFFF) | ((ports << 16) & _U32)
            f = self._find_flow(m, key, hp, ports, bool(paint & 1), pool, s)
            if f.reverse:
                paint ^= 1
            set_anno_u32(pool, s, AGGREGATE_ANNO, f.aggregate)
        else:
            set_anno_u32(pool, s, AGGREGATE_ANNO, 0)
        pool.anno[s, PAINT_ANNO] = paint
        if (self.fragments and self._is_frag(pool, s, h)) or hp.frags:
            hp.frags.append(s)
            self._held += 1
            self.active_sec = _sec(int(pool.ts[s]))
            self._flush_old_fragments(pool, hp)
            return _NONE
        if f is None:
            return _DROP
        self.active_sec = _sec(int(pool.ts[s]))
        self._emit_hook(pool, s, h, f)
        return _EMIT

    def _process(self, pool: PacketPool, s: int) -> None:
        action = self._handle(pool, s)
        if self.active_sec >= self.gc_sec:
            self.reap()
        if action == _EMIT:
            self._out.append((0, s))
        elif action == _DROP:
            self._out.append((1, s))

    def _flush_out(self, pool: PacketPool) -> None:
        if not self._out:
            return
        out, self._out = self._out, []
        idx = np.array([s for _, s in out], np.int32)
        ports = np.array([p if p == 0 or len(self.outputs) > 1 else -1 for p, _ in out], np.int64)
        push_runs(self, PacketBatch(pool, idx), ports)

    def push(self, port: int, batch: PacketBatch) -> None:
        pool = batch.pool
        P = self._P
        if P is None:
            for s in batch.idx.tolist():
                self._process(pool, s)
            self._flush_out(pool)
            return
        # Batch fast path: the kernel handles known flows and non-TCP/UDP packets;
        # everything else (new flows, timeouts, fragments, ICMP errors, reaps) runs
        # the per-packet code below, in packet order.
        idx = batch.idx
        n = len(idx)
        ports = np.empty(n, np.int64)
        segs: list[tuple[np.ndarray, np.ndarray]] = []
        kernel = self._kernel
        k = 0
        while k < n:
            if not self._held:
                P[0] = k
                P[3] = self.active_sec
                P[4] = self.gc_sec
                tab = self._tab
                if kernel(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.ts, pool.anno, idx, ports,
                          tab.K, tab.G, tab.slots, P) and not segs:
                    self.active_sec = int(P[3])
                    self.outputs[0].push(batch)
                    return
                self.active_sec = int(P[3])
                k2 = int(P[1])
                if k2 == n and not segs:
                    if len(self.outputs) == 1 and ports.any():
                        ports[ports == 1] = -1
                    push_runs(self, batch, ports)
                    return
                if k2 > k:
                    segs.append((idx[k:k2], ports[k:k2]))
                k = k2
                status = int(P[2])
                if status == 0:
                    break
                if status == 2:
                    self.reap()
                    self._move_out(segs)
                    continue
            self._process(pool, int(idx[k]))
            k += 1
            self._move_out(segs)
        if segs:
            pidx = np.concatenate([a for a, _ in segs])
            pports = np.concatenate([b for _, b in segs])
            if len(self.outputs) == 1:
                pports[pports == 1] = -1
            push_runs(self, PacketBatch(pool, pidx), pports)

    def _move_out(self, segs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if self._out:
            out, self._out = self._out, []
            segs.append((np.array([s for _, s in out], np.int32), np.array([p for p, _ in out], np.int64)))

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(1)
        pool = self.router.pool
        if batch is None:
            if self.active_sec >= self.gc_sec:
                self.reap()
        else:
            for s in batch.idx.tolist():
                self._process(pool, s)
        out, self._out = self._out, []
        keep = [s for p, s in out if p == 0]
        for p, s in out:
            if p == 1:
                self.checked_output_push(1, PacketBatch.one(pool, s))
        return PacketBatch(pool, np.array(keep, np.int32)) if keep else None

    def add_handlers(self) -> None:
        def clear(value: str, errh: ErrorHandler) -> None:
            saved = self.active_sec, self.gc_sec
            self.active_sec = self.gc_sec = 0x7FFFFFFF
            self.reap()
            self.active_sec, self.gc_sec = saved
            self._flush_out(self.router.pool)

        self.add_write_handler("clear", clear)
