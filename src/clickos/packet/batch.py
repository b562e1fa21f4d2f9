"""PacketBatch (a set of slots in one pool) and Packet (a view of one slot).

Elements receive and emit batches.  Work that is per packet and cheap runs over
the whole batch with numpy/numba; work that is inherently per packet in Python
(printing, handler calls) iterates ``Packet`` views, which cost one small object
each and copy nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from clickos.packet.pool import DST_IP_ANNO_OFFSET, PAINT_ANNO_OFFSET, PacketPool


class PacketBatch:
    """An ordered set of packets, given by slot numbers in ``pool``."""

    __slots__ = ("pool", "idx")

    def __init__(self, pool: PacketPool, idx: np.ndarray) -> None:
        self.pool = pool
        self.idx = idx

    @classmethod
    def one(cls, pool: PacketPool, slot: int) -> PacketBatch:
        return cls(pool, np.array([slot], np.int32))

    def __len__(self) -> int:
        return len(self.idx)

    def __iter__(self) -> Iterator[Packet]:
        pool = self.pool
        for s in self.idx.tolist():
            yield Packet(pool, s)

    def packet(self, i: int) -> Packet:
        return Packet(self.pool, int(self.idx[i]))

    # -- set operations ------------------------------------------------------------
    def take(self, sel: np.ndarray) -> PacketBatch | None:
        """The sub-batch selected by a boolean mask or an index array (None if empty)."""
        idx = self.idx[sel]
        return PacketBatch(self.pool, idx) if len(idx) else None

    def split(self, ports: np.ndarray, nports: int) -> list[PacketBatch | None]:
        """Split by a per-packet output port array; keeps packet order within each port.

        Ports outside [0, nports) are dropped from the result (the caller decides
        whether that is a kill; :meth:`split_rest` also returns them).
        """
        return self.split_rest(ports, nports)[0]

    def split_rest(self, ports: np.ndarray, nports: int) -> tuple[list[PacketBatch | None], PacketBatch | None]:
        """:meth:`split`, plus the batch of packets whose port is out of range (or None).

        One kernel pass groups the slots into a fresh array whose parts are
        views (downstream may keep them); when every packet goes to the same
        port the batch itself is returned for it, uncopied.
        """
        from clickos.packet.kernels import split_ports

        out: list[PacketBatch | None] = [None] * nports
        n = len(self.idx)
        if n == 0:
            return out, None
        sel = np.empty(n, self.idx.dtype)
        bounds = np.empty(nports + 2, np.int64)
        common = split_ports(self.idx, ports, nports, sel, bounds)
        if common >= 0:
            out[common] = self
            return out, None
        b = bounds.tolist()
        pool = self.pool
        for p in range(nports):
            if b[p + 1] > b[p]:
                out[p] = PacketBatch(pool, sel[b[p]:b[p + 1]])
        rest = PacketBatch(pool, sel[b[nports]:]) if b[nports] < n else None
        return out, rest

    def kill(self) -> None:
        """Free every packet of the batch."""
        self.pool.release(self.idx)

    def kill_where(self, mask: np.ndarray) -> PacketBatch | None:
        """Free the packets where ``mask`` is true; return the rest (None if empty)."""
        dead = self.idx[mask]
        if len(dead):
            self.pool.release(dead)
        keep = self.idx[~mask]
        return PacketBatch(self.pool, keep) if len(keep) else None

    def clone(self) -> PacketBatch:
        return PacketBatch(self.pool, self.pool.clone(self.idx))

    def lengths(self) -> np.ndarray:
        return self.pool.length[self.idx]

    def byte_count(self) -> int:
        if len(self.idx) == 1:
            return int(self.pool.length[self.idx[0]])
        return int(self.pool.length[self.idx].sum())

    @staticmethod
    def concat(batches: list[PacketBatch]) -> PacketBatch | None:
        batches = [b for b in batches if b is not None and len(b)]
        if not batches:
            return None
        if len(batches) == 1:
            return batches[0]
        return PacketBatch(batches[0].pool, np.concatenate([b.idx for b in batches]))


class Packet:
    """A view of one packet: its bytes and annotations, read and written in place.

    Method names follow Click's Packet: ``push``/``pull`` move the front of the
    data (into headroom / stripping), ``put``/``take`` move the end.
    """

    __slots__ = ("pool", "slot")

    def __init__(self, pool: PacketPool, slot: int) -> None:
        self.pool = pool
        self.slot = slot

    # -- data --------------------------------------------------------------------------
    @property
    def length(self) -> int:
        return int(self.pool.length[self.slot])

    @property
    def offset(self) -> int:
        return int(self.pool.off[self.slot])

    @property
    def headroom(self) -> int:
        return int(self.pool.off[self.slot])

    @property
    def tailroom(self) -> int:
        return self.pool.slot_size - self.offset - self.length

    def buffer(self) -> np.ndarray:
        """A writable uint8 view of the packet's bytes."""
        o = int(self.pool.off[self.slot])
        return self.pool.data[self.slot, o: o + int(self.pool.length[self.slot])]

    @property
    def data(self) -> bytes:
        return self.buffer().tobytes()

    def set_data(self, payload: bytes) -> None:
        """Replace the packet's bytes (keeping its data offset)."""
        n = len(payload)
        if self.offset + n > self.pool.slot_size:
            self.pool.ensure_slot_size(self.offset + n)
        o = self.offset
        self.pool.data[self.slot, o: o + n] = np.frombuffer(payload, np.uint8)
        self.pool.length[self.slot] = n

    def push(self, n: int) -> None:
        """Prepend ``n`` bytes of headroom to the data (contents unspecified)."""
        if n > self.offset:
            # No headroom left: shift the packet right inside its slot.
            need = n - self.offset + self.pool.headroom
            self._shift(need)
        self.pool.off[self.slot] -= n
        self.pool.length[self.slot] += n

    def pull(self, n: int) -> None:
        """Strip ``n`` bytes from the front."""
        n = min(n, self.length)
        self.pool.off[self.slot] += n
        self.pool.length[self.slot] -= n

    def put(self, n: int) -> None:
        """Append ``n`` zero bytes at the end."""
        end = self.offset + self.length
        if end + n > self.pool.slot_size:
            self.pool.ensure_slot_size(end + n)
        self.pool.data[self.slot, end: end + n] = 0
        self.pool.length[self.slot] += n

    def take(self, n: int) -> None:
        """Remove ``n`` bytes from the end."""
        self.pool.length[self.slot] -= min(n, self.length)

    def _shift(self, by: int) -> None:
        o, n = self.offset, self.length
        if o + by + n > self.pool.slot_size:
            self.pool.ensure_slot_size(o + by + n)
        row = self.pool.data[self.slot]
        row[o + by: o + by + n] = row[o: o + n].copy()
        self.pool.off[self.slot] = o + by
        for arr in (self.pool.mac, self.pool.nh, self.pool.th):
            if arr[self.slot] >= 0:
                arr[self.slot] += by

    # -- annotations --------------------------------------------------------------------
    @property
    def timestamp_ns(self) -> int:
        return int(self.pool.ts[self.slot])

    @timestamp_ns.setter
    def timestamp_ns(self, v: int) -> None:
        self.pool.ts[self.slot] = v

    @property
    def paint(self) -> int:
        return int(self.pool.anno[self.slot, PAINT_ANNO_OFFSET])

    @paint.setter
    def paint(self, v: int) -> None:
        self.pool.anno[self.slot, PAINT_ANNO_OFFSET] = v

    @property
    def dst_ip(self) -> bytes:
        return self.pool.anno[self.slot, DST_IP_ANNO_OFFSET: DST_IP_ANNO_OFFSET + 4].tobytes()

    @dst_ip.setter
    def dst_ip(self, v: bytes) -> None:
        self.pool.anno[self.slot, DST_IP_ANNO_OFFSET: DST_IP_ANNO_OFFSET + 4] = np.frombuffer(v, np.uint8)

    def anno_u8(self, off: int) -> int:
        return int(self.pool.anno[self.slot, off])

    def set_anno_u8(self, off: int, v: int) -> None:
        self.pool.anno[self.slot, off] = v & 0xFF

    def anno_bytes(self, off: int, size: int) -> bytes:
        return self.pool.anno[self.slot, off: off + size].tobytes()

    def set_anno_bytes(self, off: int, v: bytes) -> None:
        self.pool.anno[self.slot, off: off + len(v)] = np.frombuffer(v, np.uint8)

    def anno_u32(self, off: int) -> int:
        return struct.unpack("<I", self.anno_bytes(off, 4))[0]

    def set_anno_u32(self, off: int, v: int) -> None:
        self.set_anno_bytes(off, struct.pack("<I", v & 0xFFFFFFFF))

    # header offsets, relative to the current data start (None when unset)
    def _rel(self, arr: np.ndarray) -> int | None:
        v = int(arr[self.slot])
        return None if v < 0 else v - self.offset

    def _set_rel(self, arr: np.ndarray, rel: int | None) -> None:
        arr[self.slot] = -1 if rel is None else self.offset + rel

    @property
    def network_header_offset(self) -> int | None:
        return self._rel(self.pool.nh)

    def set_network_header(self, rel: int | None) -> None:
        self._set_rel(self.pool.nh, rel)

    @property
    def transport_header_offset(self) -> int | None:
        return self._rel(self.pool.th)

    def set_transport_header(self, rel: int | None) -> None:
        self._set_rel(self.pool.th, rel)

    @property
    def mac_header_offset(self) -> int | None:
        return self._rel(self.pool.mac)

    def set_mac_header(self, rel: int | None) -> None:
        self._set_rel(self.pool.mac, rel)

    @property
    def packet_type(self) -> int:
        return int(self.pool.ptype[self.slot])

    @packet_type.setter
    def packet_type(self, v: int) -> None:
        self.pool.ptype[self.slot] = v

    def kill(self) -> None:
        self.pool.release1(self.slot)

    def clone(self) -> Packet:
        return Packet(self.pool, int(self.pool.clone(np.array([self.slot], np.int32))[0]))

    def as_batch(self) -> PacketBatch:
        return PacketBatch.one(self.pool, self.slot)
