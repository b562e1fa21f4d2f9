"""The packet pool and batches: allocation, growth, headroom, views."""

import numpy as np

from clickos.packet.batch import Packet, PacketBatch
from clickos.packet.pool import PacketPool


def test_alloc_release_roundtrip():
    pool = PacketPool(nslots=8)
    idx = pool.alloc(5, length=10)
    assert len(set(idx.tolist())) == 5
    assert pool.in_use == 5
    assert (pool.length[idx] == 10).all()
    assert (pool.off[idx] == pool.headroom).all()
    pool.release(idx)
    assert pool.in_use == 0


def test_pool_grows_and_keeps_contents():
    pool = PacketPool(nslots=4)
    s = pool.new_packet(b"hello")
    more = pool.alloc(10)
    assert pool.nslots >= 11
    assert Packet(pool, s).data == b"hello"
    assert s not in more.tolist()


def test_alloc_resets_annotations():
    pool = PacketPool(nslots=2)
    s = pool.alloc1()
    p = Packet(pool, s)
    p.paint = 7
    p.set_network_header(0)
    pool.release1(s)
    s2 = pool.alloc1()
    assert s2 == s
    q = Packet(pool, s2)
    assert q.paint == 0 and q.network_header_offset is None


def test_push_pull_put_take():
    pool = PacketPool(nslots=2)
    p = Packet(pool, pool.new_packet(b"abcdef"))
    p.pull(2)
    assert p.data == b"cdef"
    p.push(2)
    assert p.data == b"abcdef"  # headroom bytes are still there
    p.put(2)
    assert p.data == b"abcdef\0\0"
    p.take(3)
    assert p.data == b"abcde"


def test_push_beyond_headroom_shifts():
    pool = PacketPool(nslots=2, headroom=8)
    p = Packet(pool, pool.new_packet(b"xyz"))
    p.set_network_header(0)
    p.push(20)
    assert p.length == 23 and p.data.endswith(b"xyz")
    assert p.network_header_offset == 20


def test_large_packet_widens_slots():
    pool = PacketPool(nslots=2)
    big = bytes(range(256)) * 40
    s = pool.new_packet(big)
    assert Packet(pool, s).data == big


def test_batch_split_and_take():
    pool = PacketPool(nslots=8)
    b = PacketBatch(pool, pool.alloc(6))
    ports = np.array([0, 1, 0, 2, 1, 0])
    parts = b.split(ports, 3)
    assert [len(x) for x in parts] == [3, 2, 1]
    assert parts[0].idx.tolist() == b.idx[[0, 2, 5]].tolist()
    assert b.take(np.zeros(6, bool)) is None


def test_clone_copies_data_and_annotations():
    pool = PacketPool(nslots=4)
    p = Packet(pool, pool.new_packet(b"data"))
    p.paint = 3
    c = p.clone()
    assert c.slot != p.slot and c.data == b"data" and c.paint == 3
    c.buffer()[0] = ord("D")
    assert p.data == b"data"
