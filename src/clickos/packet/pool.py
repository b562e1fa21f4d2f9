"""The packet buffer pool: fixed-size slots in one 2-D array, with headroom.

Every packet of a router lives in one slot of a pool.  The pool keeps, per
slot, the packet's data offset and length and Click's annotations, so a batch
is nothing more than an array of slot numbers: splitting a batch by output port
or passing it down a chain copies no packet data and no annotations.  (The
design notes suggest per-batch annotation arrays; per-slot arrays give the same
vectorised access with no gather/scatter when batches split and merge.)

Headroom in front of each packet lets ``Unstrip``/``EtherEncap`` prepend headers
in place, as Click's ``Packet::push`` does.
"""

from __future__ import annotations

import numpy as np

# Click's annotation area is 48 bytes; offsets below follow include/click/packet_anno.hh
# so that elements taking an ANNO argument address the same bytes as in Click.
ANNO_SIZE = 48
DST_IP_ANNO_OFFSET = 0
PAINT_ANNO_OFFSET = 16
DEFAULT_HEADROOM = 128
# Not a power of two on purpose: with 2048-byte slots every packet's header falls in
# the same few L1 cache sets, and a batch of 256 evicts itself (33 cache lines per
# slot spreads them over all sets; measured 3-5% faster on the core and IP paths).
DEFAULT_SLOT_SIZE = 2112
# Initial slots: the pool doubles whenever it runs out, so a busy router reaches
# its working set after a few batches, while an idle one (many instances per
# host) keeps a few kilobytes of metadata instead of ~130 KiB.
DEFAULT_SLOTS = 256

# Packet types (Click's Packet::PacketType), kept in pool.ptype.
HOST, BROADCAST, MULTICAST, OTHERHOST, OUTGOING, LOOPBACK, FASTROUTE = 0, 1, 2, 3, 4, 5, 6


class PacketPool:
    """Slots of packet memory with per-slot metadata and a free stack.

    Arrays (all indexed by slot number):

    - ``data[slot, :]``  the bytes; a packet occupies ``data[slot, off:off+length]``
    - ``off``, ``length``  data offset and length (int32)
    - ``ts``  timestamp annotation in nanoseconds (int64; 0 = unset)
    - ``anno[slot, :48]``  Click's user annotation bytes (dst IP, paint, ...)
    - ``mac``, ``nh``, ``th``  MAC/network/transport header offsets within the slot (-1 = unset)
    - ``ptype``  packet type annotation
    - ``data64``, ``anno64``  uint64 views of ``data`` and ``anno`` (kernels that
      copy whole packets move 8 bytes a step; kept here so a batch does not pay
      ~120 ns per view)

    The pool grows (doubling) when it runs out of slots; slot numbers stay valid,
    array objects do not, so code must read ``pool.data`` etc. afresh each batch.
    """

    def __init__(self, nslots: int = DEFAULT_SLOTS, slot_size: int = DEFAULT_SLOT_SIZE,
                 headroom: int = DEFAULT_HEADROOM) -> None:
        self.slot_size = slot_size
        self.headroom = headroom
        self.nslots = 0
        self.data = np.zeros((0, slot_size), np.uint8)
        self.off = np.zeros(0, np.int32)
        self.length = np.zeros(0, np.int32)
        self.ts = np.zeros(0, np.int64)
        self.anno = np.zeros((0, ANNO_SIZE), np.uint8)
        self.mac = np.zeros(0, np.int32)
        self.nh = np.zeros(0, np.int32)
        self.th = np.zeros(0, np.int32)
        self.ptype = np.zeros(0, np.uint8)
        self.free = np.zeros(0, np.int32)
        self.nfree = 0
        self.data64 = self.data.view(np.uint64)
        self.anno64 = self.anno.view(np.uint64)
        self._grow(nslots)

    # -- capacity ---------------------------------------------------------------------
    def _grow(self, add: int) -> None:
        old, new = self.nslots, self.nslots + add

        def extend(a: np.ndarray, fill: int = 0) -> np.ndarray:
            # np.zeros is calloc'd: untouched slots cost no memory (forked instances
            # would otherwise each dirty megabytes of zero-filled pool).
            b = np.zeros((new,) + a.shape[1:], a.dtype) if fill == 0 else np.full((new,) + a.shape[1:], fill, a.dtype)
            b[:old] = a
            return b

        self.data = extend(self.data)
        self.off = extend(self.off)
        self.length = extend(self.length)
        self.ts = extend(self.ts)
        self.anno = extend(self.anno)
        self.mac = extend(self.mac, -1)
        self.nh = extend(self.nh, -1)
        self.th = extend(self.th, -1)
        self.ptype = extend(self.ptype)
        free = np.zeros(new, np.int32)
        # New slots go below the existing free ones so recently freed (cache-warm)
        # slots are reused first.
        fresh = np.arange(new - 1, old - 1, -1, dtype=np.int32)
        free[len(fresh): len(fresh) + self.nfree] = self.free[: self.nfree]
        free[: len(fresh)] = fresh
        self.free = free
        self.nfree += len(fresh)
        self.nslots = new
        self._views()

    def _views(self) -> None:
        """Refresh the derived views after ``data`` or ``anno`` was replaced."""
        self.data64 = self.data.view(np.uint64)
        self.anno64 = self.anno.view(np.uint64)

    def ensure_slot_size(self, nbytes: int) -> None:
        """Widen every slot so a packet of ``nbytes`` fits after the headroom."""
        need = nbytes + self.headroom + 64
        if need <= self.slot_size:
            return
        size = self.slot_size
        while size < need:
            size *= 2
        data = np.zeros((self.nslots, size), np.uint8)
        data[:, : self.slot_size] = self.data
        self.data = data
        self.slot_size = size
        self._views()

    @property
    def in_use(self) -> int:
        return self.nslots - self.nfree

    # -- allocation -------------------------------------------------------------------
    def alloc(self, n: int, length: int = 0) -> np.ndarray:
        """Take ``n`` slots, reset their metadata, and return their numbers."""
        if n > self.nfree:
            self._grow(max(n - self.nfree, self.nslots))
        top = self.nfree
        idx = self.free[top - n: top].copy()
        self.nfree = top - n
        self.off[idx] = self.headroom
        self.length[idx] = length
        self.ts[idx] = 0
        self.anno[idx] = 0
        self.mac[idx] = -1
        self.nh[idx] = -1
        self.th[idx] = -1
        self.ptype[idx] = 0
        return idx

    def alloc1(self, length: int = 0) -> int:
        """Take one slot (scalar fast path for one-packet-at-a-time sources)."""
        if self.nfree == 0:
            self._grow(self.nslots)
        self.nfree -= 1
        s = int(self.free[self.nfree])
        self.off[s] = self.headroom
        self.length[s] = length
        self.ts[s] = 0
        self.anno[s] = 0
        self.mac[s] = -1
        self.nh[s] = -1
        self.th[s] = -1
        self.ptype[s] = 0
        return s

    def release(self, idx: np.ndarray) -> None:
        """Return slots to the free stack."""
        n = len(idx)
        top = self.nfree
        self.free[top: top + n] = idx
        self.nfree = top + n

    def release1(self, slot: int) -> None:
        self.free[self.nfree] = slot
        self.nfree += 1

    def clone(self, idx: np.ndarray) -> np.ndarray:
        """Copy packets (data and annotations) into new slots; returns the new slots.

        Click shares data between clones; we copy, which for the small packets of a
        software router costs less than tracking shared buffers.  One kernel call
        copies the whole batch (kernels are imported here, lazily, so the pool
        itself does not need numba).
        """
        from clickos.packet.kernels import clone_slots

        n = len(idx)
        if n > self.nfree:
            self._grow(max(n, self.nslots))
        out = np.empty(n, np.int32)
        self.nfree = clone_slots(self.free, self.nfree, np.asarray(idx, np.int32), out, self.data, self.off,
                                 self.length, self.ts, self.anno64, self.mac, self.nh, self.th,
                                 self.ptype)
        return out

    def new_packet(self, payload: bytes, headroom: int | None = None) -> int:
        """Allocate one slot holding ``payload``; returns the slot number."""
        n = len(payload)
        if n + self.headroom + 64 > self.slot_size:
            self.ensure_slot_size(n)
        s = self.alloc1(n)
        if headroom is not None:
            self.off[s] = headroom
        o = int(self.off[s])
        if n:
            self.data[s, o: o + n] = np.frombuffer(payload, np.uint8)
        return s
