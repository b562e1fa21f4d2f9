"""Helpers shared by the trace elements: packet annotations used by the analysis
elements, moving dump-built packets into the pool, describing pool packets for
ToIPSummaryDump, output files, and the ``filename``/``filesize``/``filepos``
handlers of file readers."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from clickos.io.ipsummary import (
    AGGREGATE_ANNO,
    DST_IP_ANNO,
    EXTRA_LENGTH_ANNO,
    EXTRA_PACKETS_ANNO,
    FIRST_TIMESTAMP_ANNO,
    PAINT_ANNO,
    PacketBuilder,
    PacketDesc,
)
from clickos.packet.pool import PacketPool

if TYPE_CHECKING:
    from clickos.core.element import Element
    from clickos.io.pcap import TraceFile

__all__ = [
    "AGGREGATE_ANNO", "EXTRA_LENGTH_ANNO", "EXTRA_PACKETS_ANNO", "FIRST_TIMESTAMP_ANNO", "PAINT_ANNO",
    "add_file_handlers", "anno_i64", "anno_u32", "builder_to_slot", "desc_of", "open_output",
    "set_anno_i64", "set_anno_u32", "OutputFile",
]


def anno_u32(pool: PacketPool, slot: int, off: int) -> int:
    """The native-endian 32-bit annotation at byte ``off`` of one packet."""
    return int(pool.anno.view(np.uint32)[slot, off >> 2])


def set_anno_u32(pool: PacketPool, slot: int, off: int, v: int) -> None:
    pool.anno.view(np.uint32)[slot, off >> 2] = v & 0xFFFFFFFF


def anno_i64(pool: PacketPool, slot: int, off: int) -> int:
    """The native-endian signed 64-bit annotation at byte ``off`` (FIRST_TIMESTAMP: ns)."""
    return int(pool.anno.view(np.int64)[slot, off >> 3])


def set_anno_i64(pool: PacketPool, slot: int, off: int, v: int) -> None:
    pool.anno.view(np.int64)[slot, off >> 3] = v


def builder_to_slot(pool: PacketPool, b: PacketBuilder) -> int:
    """Copy a packet built from a dump line into a new pool slot; returns the slot."""
    data = bytes(b.buf[b.off: b.end])
    s = pool.new_packet(data)
    base = int(pool.off[s]) - b.off
    for arr, v in ((pool.mac, b.mac), (pool.nh, b.nh), (pool.th, b.th)):
        arr[s] = v + base if v >= 0 else -1
    pool.ts[s] = b.ts
    a = pool.anno[s]
    a[PAINT_ANNO] = b.paint & 0xFF
    set_anno_u32(pool, s, AGGREGATE_ANNO, b.aggregate)
    set_anno_u32(pool, s, EXTRA_PACKETS_ANNO, b.extra_packets)
    set_anno_u32(pool, s, EXTRA_LENGTH_ANNO, b.extra_length)
    if b.first_ts:
        set_anno_i64(pool, s, FIRST_TIMESTAMP_ANNO, b.first_ts)
    if b.is_ip and b.nh >= 0:
        dst = bytes(b.buf[b.nh + 16: b.nh + 20])
        if len(dst) == 4:
            a[DST_IP_ANNO: DST_IP_ANNO + 4] = np.frombuffer(dst, np.uint8)
    return s


def desc_of(pool: PacketPool, slot: int, *, bad: list[str] | None = None, careful_trunc: bool = True,
            force_extra_length: bool = True) -> PacketDesc:
    """A :class:`PacketDesc` for a pool packet (header offsets relative to its data)."""
    off = int(pool.off[slot])
    n = int(pool.length[slot])
    data = pool.data[slot, off: off + n].tobytes()

    def rel(v: int) -> int:
        # header annotations outside the packet data count as unset (Click would
        # read whatever the buffer holds there)
        return v - off if off <= v <= off + n else -1

    return PacketDesc(
        data, rel(int(pool.mac[slot])), rel(int(pool.nh[slot])), rel(int(pool.th[slot])),
        ts=int(pool.ts[slot]), first_ts=anno_i64(pool, slot, FIRST_TIMESTAMP_ANNO),
        extra_packets=anno_u32(pool, slot, EXTRA_PACKETS_ANNO), paint=int(pool.anno[slot, PAINT_ANNO]),
        aggregate=anno_u32(pool, slot, AGGREGATE_ANNO), extra_length=anno_u32(pool, slot, EXTRA_LENGTH_ANNO),
        bad=bad, careful_trunc=careful_trunc, force_extra_length=force_extra_length)


class OutputFile:
    """A binary output: a file opened for writing, or standard output for ``-``."""

    def __init__(self, filename: str) -> None:
        self.is_stdout = filename == "-"
        if self.is_stdout:
            self.name = "<stdout>"
            self.f: BinaryIO | None = None
        else:
            self.name = filename
            self.f = open(filename, "wb")  # noqa: SIM115 - closed in close()

    def write(self, data: bytes) -> None:
        if self.is_stdout:
            out = sys.stdout
            try:
                out.flush()
                out.buffer.write(data)
            except (AttributeError, ValueError, OSError):
                out.write(data.decode("latin-1"))
        elif self.f is not None:
            self.f.write(data)

    def flush(self) -> None:
        try:
            if self.is_stdout:
                sys.stdout.flush()
                buf = getattr(sys.stdout, "buffer", None)
                if buf is not None:
                    buf.flush()
            elif self.f is not None:
                self.f.flush()
        except (ValueError, OSError):
            pass

    def close(self) -> None:
        self.flush()
        if self.f is not None:
            try:
                self.f.close()
            except OSError:
                pass
            self.f = None


def open_output(filename: str) -> OutputFile:
    """Open ``filename`` for writing (``-`` is standard output); raises OSError."""
    return OutputFile(filename)


def add_file_handlers(e: Element, tf_getter: Any, filepos_writable: bool = False) -> None:
    """``filename``, ``filesize`` and ``filepos`` handlers over a :class:`TraceFile`."""
    from clickos.core.errors import ConfigError

    def tf() -> TraceFile:
        return tf_getter()

    e.add_read_handler("filename", lambda: tf().print_filename)

    def size() -> str:
        n = tf().file_size() if tf().initialized else None
        return "-" if n is None else str(n)

    e.add_read_handler("filesize", size)
    e.add_read_handler("filepos", lambda: str(tf().file_pos))
    if filepos_writable:
        from clickos.core.confparse import parse_integer, uncomment

        def write(value: str, errh: Any) -> None:
            try:
                pos = parse_integer(uncomment(value), 64, False)
            except ConfigError:
                raise ConfigError("argument must be file offset") from None
            try:
                tf().seek(pos)
            except ValueError as ex:
                raise ConfigError(str(ex)) from None

        e.add_write_handler("filepos", write)
