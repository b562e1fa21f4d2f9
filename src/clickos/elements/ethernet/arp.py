"""ARP: ARPTable, ARPQuerier, ARPResponder and ARPPrint."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bool,
    parse_ether_address,
    parse_filename,
    parse_ip_address,
    parse_ip_prefix,
    parse_string,
    parse_timestamp,
    parse_unsigned,
    split_words,
    unparse_ether,
    unparse_ip,
    unparse_ip_prefix,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import READ_PARAM
from clickos.core.task import Timer
from clickos.elements.ip.common import (
    VLAN_TCI_ANNO,
    add_ip_handler,
    compute_split_ok,
    ip_to_int,
    migrate_packet,
    resolver_of,
    split_push,
)
from clickos.elements.standard.printing import chatter, format_timestamp
from clickos.packet.batch import Packet, PacketBatch

ETHERTYPE_IP, ETHERTYPE_ARP, ETHERTYPE_TRAIL = 0x0800, 0x0806, 0x1000
ARPHRD_ETHER = 1
ARPOP_REQUEST, ARPOP_REPLY, ARPOP_REVREQUEST, ARPOP_REVREPLY = 1, 2, 3, 4
ARPOP_INVREQUEST, ARPOP_INVREPLY = 8, 9
BROADCAST_ETH = b"\xff" * 6
HZ = 1000  # ARP timing runs in milliseconds ("jiffies"), as in user-level Click
EAGAIN, ENOMEM = -11, -12


def _jiffies(element: Element) -> int:
    return element.router.master.clock.now() // 1_000_000


def _to_jiffies(ns: int) -> int:
    """Click's Timestamp-to-jiffies conversion; huge timeouts mean "never"."""
    if ns // 1_000_000_000 >= 0xFFFFFFFF // HZ:
        return 0
    return ns // 1_000_000


class _Entry:
    __slots__ = ("ip", "eth", "known", "polls", "live_at", "polled_at", "queue")

    def __init__(self, ip: int, now: int) -> None:
        self.ip = ip
        self.eth = BROADCAST_ETH
        self.known = False
        self.polls = 0
        self.live_at = now
        self.polled_at = now - HZ
        self.queue: list[int] = []

    def expired(self, now: int, timeout: int) -> bool:
        return timeout != 0 and self.live_at + timeout < now

    def is_known(self, now: int, timeout: int) -> bool:
        return self.known and not self.expired(now, timeout)

    def allow_poll(self, now: int) -> bool:
        return now >= self.polled_at + (HZ * 2 if self.polls >= 10 else HZ // 10)

    def mark_poll(self, now: int) -> None:
        self.polled_at = now
        if self.polls < 255:
            self.polls += 1


class ARPTable(Element):
    """ARPTable(KEYWORDS)

    Stores IP-to-Ethernet address mappings for ARP.

    An information element with no ports.  ARPQuerier normally keeps a private
    table; a separate ARPTable lets several ARPQueriers share one (see
    ARPQuerier's TABLE argument).  Besides mappings, the table holds the IP
    packets waiting for an answer.

    Keyword arguments:

    - CAPACITY (unsigned): most packets held at once; 0 means no limit.  Default 2048.
    - ENTRY_CAPACITY (unsigned): most entries; 0 means no limit (the default).
    - ENTRY_PACKET_CAPACITY (unsigned): most packets held for one entry; 0 (the
      default) means no limit.
    - CAPACITY_SLIM_FACTOR (unsigned): when CAPACITY is exceeded, 1/FACTOR of the
      held packets are dropped.  Default 2.
    - TIMEOUT (time): how long an entry stays valid.  Default 5 minutes; 0 means
      forever.

    Handlers: ``table`` (read: one line per entry giving the IP address, 1 if
    valid, the Ethernet address, and the time since the last update), ``drops``,
    ``count`` (entries), ``length`` (held packets) (read); ``insert`` ("IP ETH"),
    ``delete`` ("IP"), ``clear`` (write).

    Example: ``arpt :: ARPTable(TIMEOUT 10s); ... ARPQuerier(..., TABLE arpt)``
    """

    port_count = "0/0"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.capacity = 2048
        self.entry_capacity = 0
        self.entry_packet_capacity = 0
        self.slim_factor = 2
        self.timeout_j = 300 * HZ
        self.table: dict[int, _Entry] = {}
        self.age: list[_Entry] = []
        self.entry_count = 0
        self.packet_count = 0
        self.drops = 0
        self._timer: Timer | None = None
        # bumped whenever an entry is added, removed or changes in a way the
        # ARPQuerier fast path looks at (see fast_arrays)
        self.version = 0
        self._fast: tuple[int, tuple[np.ndarray, ...]] | None = None

    # -- configuration -----------------------------------------------------------------
    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        capacity = a.read("CAPACITY", parse_unsigned, self.capacity)
        entry_capacity = a.read("ENTRY_CAPACITY", parse_unsigned, self.entry_capacity)
        epc = a.read("ENTRY_PACKET_CAPACITY", parse_unsigned, self.entry_packet_capacity)
        slim = a.read("CAPACITY_SLIM_FACTOR", parse_unsigned, self.slim_factor)
        timeout = a.read("TIMEOUT", parse_timestamp, 300 * 1_000_000_000)
        a.complete()
        self.setup(capacity, entry_capacity, epc, slim, timeout)

    def setup(self, capacity: int, entry_capacity: int, entry_packet_capacity: int, slim_factor: int,
              timeout_ns: int) -> None:
        """Apply a configuration (used by ARPQuerier for its private table too)."""
        if slim_factor == 0:
            raise ConfigError("CAPACITY_SLIM_FACTOR cannot be zero")
        self.capacity = capacity
        self.entry_capacity = entry_capacity
        self.entry_packet_capacity = entry_packet_capacity
        self.slim_factor = slim_factor
        self.timeout_j = _to_jiffies(timeout_ns)
        if self.timeout_j:
            if self._timer is None:
                self._timer = Timer(self._run_timer, self)
                self._timer.initialize(self)
            self._timer.schedule_after_sec(self.timeout_j // HZ)

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def cleanup(self, stage: int) -> None:
        self.clear()
        if self._timer is not None:
            self._timer.unschedule()

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        t = old.cast("ARPTable")
        if not isinstance(t, ARPTable):
            return
        if self.table:
            errh.error("late take_state")
            return
        pool, opool = self.router.pool, t.router.pool
        for e in t.age:
            e.queue = [migrate_packet(opool, s, pool) for s in e.queue]
        self.table, t.table = t.table, {}
        self.age, t.age = t.age, []
        self.version += 1
        t.version += 1
        self.entry_count, self.packet_count, self.drops = t.entry_count, t.packet_count, t.drops
        t.entry_count = t.packet_count = 0

    # -- table operations ----------------------------------------------------------------
    def now(self) -> int:
        return _jiffies(self)

    def clear(self) -> None:
        """Delete every entry, dropping the packets they hold."""
        pool = self.router.pool if self.router is not None else None
        for e in self.age:
            for s in e.queue:
                if pool is not None:
                    pool.release1(s)
                self.drops += 1
        self.table.clear()
        self.age.clear()
        self.entry_count = self.packet_count = 0
        self.version += 1

    def _kill_queue_head(self, e: _Entry, n: int) -> None:
        pool = self.router.pool
        for s in e.queue[:n]:
            pool.release1(s)
        del e.queue[:n]
        self.packet_count -= n
        self.drops += n

    def slim(self, now: int) -> None:
        """Expire old entries and drop held packets beyond the capacities."""
        age = self.age
        while age and (age[0].expired(now, self.timeout_j)
                       or (self.entry_capacity and self.entry_count > self.entry_capacity)):
            e = age.pop(0)
            self.table.pop(e.ip, None)
            self.version += 1
            self._kill_queue_head(e, len(e.queue))
            self.entry_count -= 1
        if self.capacity and self.packet_count > self.capacity:
            target = self.capacity - self.capacity // self.slim_factor
            if target == 0:
                target = 1
            for e in list(age):
                if self.packet_count <= target:
                    break
                n = min(len(e.queue), self.packet_count - target)
                self._kill_queue_head(e, n)

    def _run_timer(self, timer: Timer) -> None:
        self.slim(self.now())
        if self.timeout_j:
            timer.schedule_after_sec(self.timeout_j // HZ + 1)

    def _ensure(self, ip: int, now: int) -> _Entry:
        e = self.table.get(ip)
        if e is None:
            self.entry_count += 1
            if self.entry_capacity and self.entry_count > self.entry_capacity:
                self.slim(now)
            e = _Entry(ip, now)
            self.table[ip] = e
            self.age.append(e)
            self.version += 1
        return e

    def lookup(self, ip: int, poll_timeout_j: int) -> tuple[int, bytes]:
        """(r, eth): r < 0 unknown; 0 known; 1 known but due for a renewal poll."""
        e = self.table.get(ip)
        if e is None:
            return -1, BROADCAST_ETH
        now = self.now()
        if not e.is_known(now, self.timeout_j):
            return -1, BROADCAST_ETH
        if poll_timeout_j and now >= e.live_at + poll_timeout_j and e.allow_poll(now):
            e.mark_poll(now)
            self.version += 1
            return 1, e.eth
        return 0, e.eth

    def lookup_eth(self, ip: int) -> bytes:
        return self.lookup(ip, 0)[1]

    def reverse_lookup(self, eth: bytes) -> int:
        for e in self.table.values():
            if e.eth == eth:
                return e.ip
        return 0

    def insert(self, ip: int, eth: bytes, take: bool = False) -> list[int]:
        """Record a mapping.  With ``take``, the packets waiting for it are removed from
        the table and returned; otherwise they stay held."""
        now = self.now()
        e = self._ensure(ip, now)
        e.eth = eth
        e.known = eth != BROADCAST_ETH
        e.live_at = now
        e.polls = 0
        e.polled_at = now - HZ
        self.version += 1
        self.age.remove(e)
        self.age.append(e)
        if not take:
            return []
        held, e.queue = e.queue, []
        self.packet_count -= len(held)
        return held

    def append_query(self, ip: int, slot: int) -> int:
        """Hold packet ``slot`` until ``ip`` is resolved.

        Returns EAGAIN when the address is known after all, ENOMEM when the packet
        cannot be held (the caller drops it), 1 when a query should be sent, else 0.
        """
        now = self.now()
        e = self._ensure(ip, now)
        if e.is_known(now, self.timeout_j):
            return EAGAIN
        if self.timeout_j:
            # keep the entry just short of expiring while packets still want it
            floor = now - self.timeout_j
            if e.live_at < floor:
                e.live_at = floor
                self.version += 1
                i = self.age.index(e)
                j = i + 1
                while j < len(self.age) and self.age[j].live_at < e.live_at:
                    j += 1
                if j != i + 1:
                    self.age.insert(j, e)
                    del self.age[i]
        if self.entry_packet_capacity and len(e.queue) >= self.entry_packet_capacity:
            self.drops += 1
            return ENOMEM
        self.packet_count += 1
        if self.capacity and self.packet_count > self.capacity:
            self.slim(now)
        e.queue.append(slot)
        if e.allow_poll(now):
            e.mark_poll(now)
            self.version += 1
            return 1
        return 0

    def fast_arrays(self) -> tuple[np.ndarray, ...]:
        """The table as arrays for ``netkernels.arp_encap_resolved``: (hash keys,
        hash values, Ethernet addresses, (live_at, known, polled_at, polls) rows).
        Rebuilt only after the table changed."""
        fast = self._fast
        if fast is not None and fast[0] == self.version:
            return fast[1]
        entries = list(self.table.values())
        m = len(entries)
        size = 4
        while size < 2 * m:
            size *= 2
        mask = size - 1
        hkeys = np.full(size, -1, np.int64)
        hvals = np.zeros(size, np.int32)
        eths = np.zeros((max(m, 1), 6), np.uint8)
        ent = np.zeros((max(m, 1), 4), np.int64)
        for i, e in enumerate(entries):
            h = ((e.ip * 0x45D9F3B) >> 16) & mask  # netkernels.arp_hash_slot
            while hkeys[h] >= 0:
                h = (h + 1) & mask
            hkeys[h] = e.ip
            hvals[h] = i
            eths[i] = np.frombuffer(e.eth, np.uint8)
            ent[i] = (e.live_at, 1 if e.known else 0, e.polled_at, e.polls)
        arrays = (hkeys, hvals, eths, ent)
        self._fast = (self.version, arrays)
        return arrays

    def table_text(self) -> str:
        now = self.now()
        lines = []
        for e in self.age:
            ok = 1 if e.is_known(now, self.timeout_j) else 0
            lines.append(f"{unparse_ip(e.ip)} {ok} {unparse_ether(e.eth)} "
                         f"{format_timestamp((now - e.live_at) * 1_000_000)}\n")
        return "".join(lines)

    # -- handlers ------------------------------------------------------------------------
    def write_insert(self, value: str, errh: ErrorHandler) -> None:
        a = Args(context=self).push_back_words(value)
        ip = a.read_mp("IP", parse_ip_address)
        eth = a.read_mp("ETH", parse_ether_address)
        a.complete()
        self.insert(ip_to_int(ip), eth)

    def write_delete(self, value: str, errh: ErrorHandler) -> None:
        a = Args(context=self).push_back_words(value)
        ip = a.read_mp("IP", parse_ip_address)
        a.complete()
        self.insert(ip_to_int(ip), BROADCAST_ETH)

    def add_handlers(self) -> None:
        self.add_read_handler("table", self.table_text)
        self.add_read_handler("drops", lambda: self.drops)
        self.add_read_handler("count", lambda: self.entry_count)
        self.add_read_handler("length", lambda: self.packet_count)
        self.add_write_handler("insert", self.write_insert)
        self.add_write_handler("delete", self.write_delete)
        self.add_write_handler("clear", lambda v, e: self.clear())


def _prefix_arg(text: str) -> tuple[bytes, bytes]:
    return parse_ip_prefix(text, True)


class ARPQuerier(Element):
    """ARPQuerier(IP, ETH, KEYWORDS)
    ARPQuerier(NAME, KEYWORDS)

    Wraps IP packets in Ethernet headers, finding destinations with ARP.

    IP is this host's IP address (optionally with a prefix, which gives the
    default BROADCAST address) and ETH its Ethernet address; in the one-argument
    form NAME is an AddressInfo name standing for both.

    IP packets arrive on input 0 with their destination IP annotations set.  When
    the destination's Ethernet address is known, the packet leaves on output 0
    with an Ethernet header.  Otherwise it is held and an ARP query is sent (on
    output 1 if there are two outputs, else on output 0); ARP replies, Ethernet
    header included, arrive on input 1, and release the packets waiting for that
    address.  Queries for one address are rate-limited to ten a second (one every
    two seconds after ten unanswered ones).

    Packets for 0.0.0.0 are dropped; those for 255.255.255.255 or the BROADCAST
    address go to FF-FF-FF-FF-FF-FF; multicast destinations map to
    01-00-5E-xx-yy-zz (the low 23 bits of the group address).

    Keyword arguments:

    - TABLE (element): an ARPTable to use instead of a private one; the capacity
      and timeout arguments are then ignored.
    - CAPACITY, ENTRY_CAPACITY, ENTRY_PACKET_CAPACITY, CAPACITY_SLIM_FACTOR,
      TIMEOUT: as for ARPTable.
    - POLL_TIMEOUT (time): once an entry is this old, refresh it with a poll
      while using it; 0 means never.  Default one minute.
    - BROADCAST (IP address): the local broadcast address.
    - BROADCAST_POLL (boolean): send refresh polls to the broadcast address
      rather than the known Ethernet address.  Default false.

    Queries copy the timestamp and VLAN annotations of the packet that caused them.

    Handlers: ``ipaddr``, ``broadcast`` (read/write); ``table``, ``stats``,
    ``queries``, ``responses``, ``drops``, ``count``, ``length`` (read);
    ``insert``, ``delete``, ``clear`` (write).

    Example::

        c :: Classifier(12/0806 20/0002, 12/0800, ...);
        a :: ARPQuerier(18.26.4.24, 00:00:C0:AE:67:EF);
        c[0] -> [1]a;  c[1] -> ... -> [0]a;  a -> ToDevice(eth0);
    """

    port_count = "2/1-2"
    processing = "h"
    flow_code = "xy/x"
    flags = "L2"

    def __init__(self) -> None:
        super().__init__()
        self.arpt: ARPTable | None = None
        self.my_arpt = False
        self.my_ip = 0
        self.my_en = b"\0" * 6
        self.my_bcast = 0
        self.poll_timeout_j = 60 * HZ
        self.broadcast_poll = False
        self.queries = 0
        self.drops = 0
        self.responses = 0
        self._zero_warned = False

    def cast(self, name: str) -> Any:
        if name == "ARPTable":
            return self.arpt
        return super().cast(name)

    # -- configuration -----------------------------------------------------------------
    def _read_common(self, conf: list[str], live: bool) -> tuple[dict[str, Any], list[str]]:
        a = Args(context=self).bind(conf)
        got: dict[str, Any] = {}
        for key, parser in (("CAPACITY", parse_unsigned), ("ENTRY_CAPACITY", parse_unsigned),
                            ("ENTRY_PACKET_CAPACITY", parse_unsigned),
                            ("CAPACITY_SLIM_FACTOR", parse_unsigned), ("TIMEOUT", parse_timestamp),
                            ("BROADCAST", parse_ip_address)):
            v = a.read(key, parser)
            if a.read_status:
                got[key] = v
        if live:
            a.read("TABLE")
        else:
            got["TABLE"] = a.read("TABLE", self._table_arg)
        got["POLL_TIMEOUT"] = a.read("POLL_TIMEOUT", parse_timestamp)
        got["BROADCAST_POLL"] = a.read("BROADCAST_POLL", parse_bool)
        rest = a.consume()
        if len(rest) == 1:
            rest.append(rest[0])
        b = Args(rest, self)
        ip, mask = b.read_mp("IP", _prefix_arg, (b"\0" * 4, b"\0" * 4))
        en = b.read_mp("ETH", parse_ether_address, b"\0" * 6)
        b.complete()
        my_ip = ip_to_int(ip)
        if "BROADCAST" in got:
            bcast = ip_to_int(got["BROADCAST"])
        else:
            bcast = my_ip | (~ip_to_int(mask) & 0xFFFFFFFF)
            if bcast == my_ip:
                bcast = 0xFFFFFFFF
        got["ip"], got["en"], got["bcast"] = my_ip, en, bcast
        return got, rest

    def _table_arg(self, text: str) -> ARPTable:
        e = self.router.find(text, self)
        if e is None:
            raise ConfigError("does not name an element")
        t = e.cast("ARPTable")
        if t is None:
            raise ConfigError("element type mismatch, expected ARPTable")
        return t

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        got, _ = self._read_common(list(conf), False)
        if got.get("TABLE") is not None:
            self.arpt = got["TABLE"]
            self.my_arpt = False
        else:
            t = ARPTable()
            t.router = self.router
            t.name = self.name
            t.eindex = -1
            t.setup(got.get("CAPACITY", 2048), got.get("ENTRY_CAPACITY", 0),
                    got.get("ENTRY_PACKET_CAPACITY", 0), got.get("CAPACITY_SLIM_FACTOR", 2),
                    got.get("TIMEOUT", 300 * 1_000_000_000))
            self.arpt = t
            self.my_arpt = True
        self.my_ip, self.my_en, self.my_bcast = got["ip"], got["en"], got["bcast"]
        self.broadcast_poll = bool(got["BROADCAST_POLL"]) if got["BROADCAST_POLL"] is not None else False
        pt = got["POLL_TIMEOUT"]
        self.poll_timeout_j = _to_jiffies(pt) if pt is not None else 60 * HZ

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        got, _ = self._read_common(list(conf), True)
        if "CAPACITY_SLIM_FACTOR" in got and not got["CAPACITY_SLIM_FACTOR"]:
            raise ConfigError("CAPACITY_SLIM_FACTOR cannot be zero")
        t = self.arpt
        assert t is not None
        if (got["ip"] != self.my_ip or got["en"] != self.my_en) and self.my_arpt:
            t.clear()
        self.my_ip, self.my_en, self.my_bcast = got["ip"], got["en"], got["bcast"]
        if self.my_arpt:
            if "CAPACITY" in got:
                t.capacity = got["CAPACITY"]
            if "ENTRY_CAPACITY" in got:
                t.entry_capacity = got["ENTRY_CAPACITY"]
            if "ENTRY_PACKET_CAPACITY" in got:
                t.entry_packet_capacity = got["ENTRY_PACKET_CAPACITY"]
            if "CAPACITY_SLIM_FACTOR" in got:
                t.slim_factor = got["CAPACITY_SLIM_FACTOR"]
            if "TIMEOUT" in got:
                t.timeout_j = _to_jiffies(got["TIMEOUT"])
        if got["BROADCAST_POLL"] is not None:
            self.broadcast_poll = bool(got["BROADCAST_POLL"])
        if got["POLL_TIMEOUT"] is not None:
            self.poll_timeout_j = _to_jiffies(got["POLL_TIMEOUT"])

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self.queries = self.drops = self.responses = 0
        self._split_ok = compute_split_ok(self)
        self._fast_k = netkernels.arp_encap_resolved
        self._info = np.zeros(2, np.int64)
        self._en_src = b""
        self._en_arr = np.zeros(6, np.uint8)

    def cleanup(self, stage: int) -> None:
        if self.my_arpt and self.arpt is not None:
            self.arpt.cleanup(stage)

    def take_state(self, old: Element, errh: ErrorHandler) -> None:
        q = old.cast("ARPQuerier")
        if not isinstance(q, ARPQuerier) or (q.my_ip, q.my_en, q.my_bcast) != (
                self.my_ip, self.my_en, self.my_bcast):
            return
        if self.my_arpt and q.my_arpt and self.arpt is not None and q.arpt is not None:
            self.arpt.take_state(q.arpt, errh)
        self.queries, self.drops, self.responses = q.queries, q.drops, q.responses

    # -- packets -------------------------------------------------------------------------
    def _flush(self, out: list[int]) -> None:
        if not out:
            return
        pool = self.router.pool
        if len(out) > 1 and not self._split_ok:
            # one at a time, so each travels the whole path before the next (as in Click)
            slots = list(out)
            out.clear()
            for s in slots:
                self.outputs[0].push(PacketBatch.one(pool, s))
            return
        batch = PacketBatch(pool, np.array(out, np.int32))
        out.clear()
        self.outputs[0].push(batch)

    def _send_query_for(self, slot: int, dhost_valid: bool, out: list[int]) -> None:
        self._flush(out)
        pool = self.router.pool
        o = int(pool.off[slot])
        if dhost_valid and not self.broadcast_poll:
            dst = pool.data[slot, o: o + 6].tobytes()
        else:
            dst = BROADCAST_ETH
        want = pool.anno[slot, 0:4].tobytes()
        frame = (dst + self.my_en + ETHERTYPE_ARP.to_bytes(2, "big")
                 + bytes((0, ARPHRD_ETHER, 8, 0, 6, 4, 0, ARPOP_REQUEST))
                 + self.my_en + self.my_ip.to_bytes(4, "big") + b"\0" * 6 + want)
        q = pool.new_packet(frame)
        qo = int(pool.off[q])
        pool.mac[q] = qo
        pool.nh[q] = qo + 14
        pool.ts[q] = pool.ts[slot]
        pool.anno[q, VLAN_TCI_ANNO: VLAN_TCI_ANNO + 2] = pool.anno[slot, VLAN_TCI_ANNO: VLAN_TCI_ANNO + 2]
        self.queries += 1
        self.outputs[-1].push(PacketBatch.one(pool, q))

    def _handle_ip(self, slot: int, response: bool, out: list[int]) -> None:
        pool = self.router.pool
        if not self.my_ip:
            pool.release1(slot)
            self.drops += 1
            return
        if not response:
            p = Packet(pool, slot)
            p.push(14)
            o = int(pool.off[slot])
            pool.mac[slot] = o
            pool.nh[slot] = o + 14
            pool.data[slot, o + 12] = 0x08
            pool.data[slot, o + 13] = 0x00
        t = self.arpt
        assert t is not None
        dst = ip_to_int(pool.anno[slot, 0:4].tobytes())
        while True:
            o = int(pool.off[slot])
            r, eth = t.lookup(dst, self.poll_timeout_j)
            if r >= 0:
                pool.data[slot, o: o + 6] = np.frombuffer(eth, np.uint8)
                if r > 0:
                    self._send_query_for(slot, True, out)
            elif dst == 0xFFFFFFFF or dst == self.my_bcast:
                pool.data[slot, o: o + 6] = 0xFF
            elif (dst >> 28) == 0xE:
                pool.data[slot, o: o + 6] = np.frombuffer(
                    bytes((0x01, 0x00, 0x5E, (dst >> 16) & 0x7F, (dst >> 8) & 0xFF, dst & 0xFF)), np.uint8)
            elif dst == 0:
                if not self._zero_warned:
                    chatter(f"{self.declaration()}: would query for 0.0.0.0; "
                            "missing dest IP addr annotation?")
                    self._zero_warned = True
                self.drops += 1
                pool.release1(slot)
                return
            else:
                r = t.append_query(dst, slot)
                if r == EAGAIN:
                    continue
                if r < 0:
                    pool.release1(slot)
                elif r > 0:
                    self._send_query_for(slot, False, out)
                return
            break
        o = int(pool.off[slot])
        pool.data[slot, o + 6: o + 12] = np.frombuffer(self.my_en, np.uint8)
        out.append(slot)

    def _handle_response(self, slot: int) -> None:
        pool = self.router.pool
        if int(pool.length[slot]) < 42:
            return
        self.responses += 1
        o = int(pool.off[slot])
        f = pool.data[slot, o: o + 42].tobytes()
        sha = f[22:28]
        if (int.from_bytes(f[12:14], "big") == ETHERTYPE_ARP and int.from_bytes(f[14:16], "big") == ARPHRD_ETHER
                and int.from_bytes(f[16:18], "big") == ETHERTYPE_IP
                and int.from_bytes(f[20:22], "big") == ARPOP_REPLY and not sha[0] & 1):
            assert self.arpt is not None
            held = self.arpt.insert(ip_to_int(f[28:32]), sha, True)
            out: list[int] = []
            for s in held:
                self._handle_ip(s, True, out)
            self._flush(out)

    def _push_fast(self, batch: PacketBatch) -> None:
        """Input 0: one kernel call encapsulates every packet whose next hop is
        resolved (or broadcast/multicast); the first packet that needs more (a
        query, a poll, a drop) takes the per-packet path, then the kernel goes
        on from the next one.  Packets leave in order."""
        pool = batch.pool
        idx = batch.idx
        n = len(idx)
        t = self.arpt
        assert t is not None
        if self._en_src is not self.my_en:
            self._en_arr = np.frombuffer(self.my_en, np.uint8).copy()
            self._en_src = self.my_en
        clock = self.router.master.clock
        sim = clock.simulated
        info = self._info
        k = self._fast_k
        out: list[int] = []
        start = 0
        while True:
            hkeys, hvals, eths, ent = t.fast_arrays()
            # in simulated time every clock reading counts, as in Click: the kernel
            # makes one per lookup that finds an entry, and they are taken here
            now = clock.peek(False) if sim else clock.now()
            done = k(pool.data, pool.off, pool.length, pool.mac, pool.nh, pool.anno, idx, start,
                     hkeys, hvals, eths, ent, now, 1 if sim else 0, t.timeout_j, self.poll_timeout_j,
                     HZ, self._en_arr, self.my_bcast, info)
            if sim:
                for _ in range(int(info[0])):
                    clock.now()
            if start == 0 and done == n:
                if n == 1 or self._split_ok:
                    self.outputs[0].push(batch)
                else:
                    for s in idx.tolist():
                        self.outputs[0].push(PacketBatch.one(pool, s))
                return
            out.extend(idx[start: start + done].tolist())
            start += done
            if start < n:
                self._handle_ip(int(idx[start]), False, out)
                start += 1
            if start >= n:
                break
        self._flush(out)

    def push(self, port: int, batch: PacketBatch) -> None:
        if port == 0:
            if self.my_ip:
                self._push_fast(batch)
                return
            out: list[int] = []
            for s in batch.idx.tolist():
                self._handle_ip(s, False, out)
            self._flush(out)
        else:
            pool = batch.pool
            for s in batch.idx.tolist():
                self._handle_response(s)
                pool.release1(s)

    # -- handlers ------------------------------------------------------------------------
    def _stats(self) -> str:
        assert self.arpt is not None
        return f"{self.drops + self.arpt.drops} packets killed\n{self.queries} ARP queries sent\n"

    def _clear(self, value: str, errh: ErrorHandler) -> None:
        self.queries = self.drops = self.responses = 0
        assert self.arpt is not None
        self.arpt.clear()

    def add_handlers(self) -> None:
        t = self.arpt
        assert t is not None
        self.add_read_handler("table", lambda: t.table_text())
        self.add_read_handler("stats", self._stats)
        self.add_read_handler("count", lambda: t.entry_count)
        self.add_read_handler("length", lambda: t.packet_count)
        self.add_read_handler("queries", lambda: self.queries)
        self.add_read_handler("responses", lambda: self.responses)
        self.add_read_handler("drops", lambda: self.drops)
        add_ip_handler(self, "broadcast", self, "my_bcast", as_int=True)
        add_ip_handler(self, "ipaddr", self, "my_ip", as_int=True)
        self.add_write_handler("insert", lambda v, e: t.write_insert(v, e))
        self.add_write_handler("delete", lambda v, e: t.write_delete(v, e))
        self.add_write_handler("clear", self._clear)


# -- ARPResponder ---------------------------------------------------------------------------------

class _ArpEntry:
    __slots__ = ("dst", "mask", "ena")

    def __init__(self, dst: int, mask: int, ena: bytes) -> None:
        self.dst, self.mask, self.ena = dst, mask, ena


def _entry_order(entries: list[_ArpEntry]) -> Any:
    def cmp(a: int, b: int) -> int:
        ea, eb = entries[a], entries[b]
        if ea.dst == eb.dst and ea.mask == eb.mask:
            return b - a  # the later entry wins
        if (ea.dst & eb.mask) == eb.dst:
            return -1
        if (eb.dst & ea.mask) == ea.dst:
            return 1
        return a - b
    return functools.cmp_to_key(cmp)


class ARPResponder(Element):
    """ARPResponder(IP/MASK [IP/MASK...] ETH, IP2/MASK2 ETH2, ...)

    Answers ARP queries for configured addresses.

    Input packets should be ARP requests, Ethernet header included.  When the
    requested IP address lies in one of the configured IP/MASK networks, an ARP
    reply giving the corresponding Ethernet address leaves on output 0 (and the
    request is dropped); otherwise the request goes to output 1, if present.  This
    serves both a host's own addresses and proxy ARP.  Each argument lists one or
    more networks (or plain addresses) and one Ethernet address; AddressInfo names
    may stand for both (``NAME:ipnet`` selects a name's network).  The most
    specific matching network wins.  Replies copy the VLAN annotation of the query.

    Handlers: ``table`` (read: one "IP/MASK ETH" line per entry); ``lookup``
    (read with an IP address parameter: the Ethernet address or nothing);
    ``add`` (write "IP/MASK [IP/MASK...] ETH"); ``remove`` (write "IP/MASK").

    Example: ``ARPResponder(18.26.4.24 18.26.7.0/24 00-00-C0-AE-67-EF)``
    """

    port_count = "1/1-2"
    processing = "a/ah"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[_ArpEntry] = []

    def _add(self, v: list[_ArpEntry], arg: str) -> str | None:
        """Parse one argument into ``v``; returns an error message or None."""
        res = resolver_of(self)
        words = split_words(arg)
        start = len(v)
        ena: bytes | None = None
        for w in words:
            try:
                addr, mask = parse_ip_prefix(w, True, res)
                m = ip_to_int(mask)
                v.append(_ArpEntry(ip_to_int(addr) & m, m, b""))
                continue
            except ConfigError:
                pass
            try:
                e = parse_ether_address(w, res)
            except ConfigError:
                del v[start:]
                return "expected IP/MASK ETH"
            if ena is not None:
                del v[start:]
                return "more than one ETH"
            ena = e
        if ena is None:
            for w in words:
                try:
                    ena = parse_ether_address(w, res)
                    break
                except ConfigError:
                    pass
        if len(v) == start:
            return "missing IP/MASK"
        if ena is None:
            del v[start:]
            return "missing ETH"
        for e in v[start:]:
            e.ena = ena
        return None

    @staticmethod
    def _normalize(v: list[_ArpEntry], errh: ErrorHandler | None) -> list[_ArpEntry]:
        order = sorted(range(len(v)), key=_entry_order(v))
        out: list[_ArpEntry] = []
        for i in order:
            e = v[i]
            if not out or out[-1].dst != e.dst or out[-1].mask != e.mask:
                out.append(e)
            elif errh is not None:
                errh.warning(f"multiple entries for {unparse_ip_prefix(e.dst, e.mask)}")
        return out

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        v: list[_ArpEntry] = []
        errors = []
        for i, arg in enumerate(conf):
            msg = self._add(v, arg)
            if msg is not None:
                errors.append(f"argument {i}: {msg}")
        if errors:
            raise ConfigError("\n".join(errors))
        self.entries = self._normalize(v, errh)

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)

    def lookup(self, addr: int) -> bytes | None:
        for e in self.entries:
            if (addr & e.mask) == e.dst:
                return e.ena
        return None

    def _run(self, batch: PacketBatch) -> np.ndarray:
        """Replace answered queries by replies (in place in the batch); returns ports."""
        pool = batch.pool
        ports = np.ones(len(batch), np.int32)
        idx = batch.idx
        for i, s in enumerate(idx.tolist()):
            if int(pool.length[s]) < 42:
                continue
            o = int(pool.off[s])
            f = pool.data[s, o: o + 42].tobytes()
            if (f[12:14] != b"\x08\x06" or f[14:16] != b"\x00\x01" or f[16:18] != b"\x08\x00"
                    or f[20:22] != b"\x00\x01"):
                continue
            ena = self.lookup(ip_to_int(f[38:42]))
            if ena is None:
                continue
            q = make_arp_response(pool, f[22:28], f[28:32], ena, f[38:42])
            pool.anno[q, VLAN_TCI_ANNO: VLAN_TCI_ANNO + 2] = pool.anno[s, VLAN_TCI_ANNO: VLAN_TCI_ANNO + 2]
            pool.release1(s)
            idx[i] = q
            ports[i] = 0
        return ports

    def push(self, port: int, batch: PacketBatch) -> None:
        batch = PacketBatch(batch.pool, batch.idx.copy())
        split_push(self, batch, self._run(batch))

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        batch = PacketBatch(batch.pool, batch.idx.copy())
        ports = self._run(batch)
        bad = ports != 0
        if bad.any():
            self.checked_output_push(1, PacketBatch(batch.pool, batch.idx[bad]))
            return batch.take(~bad)
        return batch

    # -- handlers ------------------------------------------------------------------------
    def _table(self) -> str:
        return "".join(f"{unparse_ip_prefix(e.dst, e.mask)} {unparse_ether(e.ena)}\n" for e in self.entries)

    def _lookup_handler(self, param: str) -> str:
        try:
            a = parse_ip_address(param.strip(), resolver_of(self))
        except ConfigError:
            raise ConfigError("expected IP address") from None
        ena = self.lookup(ip_to_int(a))
        return unparse_ether(ena) if ena is not None else ""

    def _add_handler(self, value: str, errh: ErrorHandler) -> None:
        v = list(self.entries)
        msg = self._add(v, value)
        if msg is not None:
            raise ConfigError(msg)
        self.entries = self._normalize(v, None)

    def _remove_handler(self, value: str, errh: ErrorHandler) -> None:
        try:
            addr, mask = parse_ip_prefix(value.strip(), True, resolver_of(self))
        except ConfigError:
            raise ConfigError("expected IP/MASK") from None
        m = ip_to_int(mask)
        a = ip_to_int(addr) & m
        for i, e in enumerate(self.entries):
            if e.dst == a and e.mask == m:
                del self.entries[i]
                return
        raise ConfigError(f"{unparse_ip_prefix(a, m)} not found")

    def add_handlers(self) -> None:
        self.add_read_handler("table", self._table)
        self.add_read_handler("lookup", self._lookup_handler, READ_PARAM)
        self.add_write_handler("add", self._add_handler)
        self.add_write_handler("remove", self._remove_handler)


def make_arp_response(pool: Any, target_eth: bytes, target_ip: bytes, src_eth: bytes, src_ip: bytes) -> int:
    """A new ARP reply frame telling ``target`` that ``src_ip`` is at ``src_eth``."""
    frame = (target_eth + src_eth + ETHERTYPE_ARP.to_bytes(2, "big")
             + bytes((0, ARPHRD_ETHER, 8, 0, 6, 4, 0, ARPOP_REPLY))
             + src_eth + src_ip + target_eth + target_ip)
    q = pool.new_packet(frame)
    o = int(pool.off[q])
    pool.mac[q] = o
    pool.nh[q] = o + 14
    return q


# -- ARPPrint ---------------------------------------------------------------------------------------

class ARPPrint(Element):
    """ARPPrint([LABEL, KEYWORDS])

    Prints ARP packets in a tcpdump-like format.

    Each packet with a network header annotation (the ARP header) produces one
    line on standard error, preceded by LABEL and a colon; the packet passes on
    unchanged.  Lines look like ``arp who-has 1.0.0.1 tell 1.0.0.2`` or
    ``arp reply 1.0.0.1 is-at 02-00-00-00-00-01``.

    Keyword arguments:

    - TIMESTAMP (boolean): print the packet's timestamp first.  Default true.
    - ETHER (boolean): print the Ethernet source and destination.  Default false.
    - OUTFILE (filename): write lines to this file instead of standard error.
    - ACTIVE (boolean): print nothing while false.  Default true.

    Handlers: ``active`` (read/write).

    Example: ``... -> ARPPrint(arp, ETHER true) -> ...``
    """

    port_count = "1/1"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.label = ""
        self.print_timestamp = True
        self.print_ether = False
        self.active = True
        self.outfilename = ""
        self._outfile: Any = None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        label = a.read_p("LABEL", parse_string, "")
        ts = a.read("TIMESTAMP", parse_bool, True)
        ether = a.read("ETHER", parse_bool, False)
        active = a.read("ACTIVE", parse_bool, True)
        outfile = a.read("OUTFILE", parse_filename, "")
        a.complete()
        self.label, self.print_timestamp, self.print_ether = label, ts, ether
        self.active, self.outfilename = active, outfile

    def initialize(self, errh: ErrorHandler) -> None:
        if self.outfilename:
            try:
                self._outfile = open(self.outfilename, "w")  # noqa: SIM115 - kept open while running
            except OSError as e:
                raise ConfigError(f"{self.outfilename}: {e.strerror}") from None

    def cleanup(self, stage: int) -> None:
        if self._outfile is not None:
            self._outfile.close()
            self._outfile = None

    def line(self, pool: Any, s: int) -> str | None:
        """The text printed for the packet in slot ``s`` (None prints nothing)."""
        nh = int(pool.nh[s])
        if nh < 0:
            return None
        parts = []
        if self.label:
            parts.append(self.label + ": ")
        if self.print_timestamp:
            parts.append(format_timestamp(int(pool.ts[s])) + ": ")
        end = int(pool.off[s]) + int(pool.length[s])
        if self.print_ether:
            x = int(pool.mac[s]) if pool.mac[s] >= 0 else int(pool.off[s])
            if x + 14 <= nh and x + 14 <= end:
                e = pool.data[s, x: x + 12].tobytes()
                parts.append(f"{unparse_ether(e[6:12])} > {unparse_ether(e[0:6])}: ")
        nlen = end - nh
        if nlen < 8:
            parts.append(f"truncated-arp ({nlen})")
            return "".join(parts)
        h = pool.data[s, nh: nh + 8].tobytes()
        hrd, pro = int.from_bytes(h[0:2], "big"), int.from_bytes(h[2:4], "big")
        hln, pln, op = h[4], h[5], int.from_bytes(h[6:8], "big")
        if (pro != ETHERTYPE_IP and pro != ETHERTYPE_TRAIL) or pln != 4 or hln == 0:
            # Click builds this text but never prints it
            return None
        body = pool.data[s, nh + 8: nh + 28].tobytes().ljust(20, b"\0")
        sha, spa, tha, tpa = body[0:6], body[6:10], body[10:16], body[16:20]
        if pro == ETHERTYPE_TRAIL:
            parts.append("trailer-")
        if op == ARPOP_REQUEST:
            parts.append(f"arp who-has {unparse_ip(tpa)}")
            if any(pool.data[s, nh + 18: nh + 18 + hln]):
                parts.append(f" ({unparse_ether(tha)})")
            parts.append(f" tell {unparse_ip(spa)}")
        elif op == ARPOP_REPLY:
            parts.append(f"arp reply {unparse_ip(spa)} is-at {unparse_ether(sha)}")
        elif op == ARPOP_REVREQUEST:
            parts.append(f"rarp who-is {unparse_ether(tha)} tell {unparse_ether(sha)}")
        elif op == ARPOP_REVREPLY:
            parts.append(f"rarp reply {unparse_ether(tha)} at {unparse_ip(tpa)}")
        elif op == ARPOP_INVREQUEST:
            parts.append(f"invarp who-is {unparse_ether(tha)} tell {unparse_ether(sha)}")
        elif op == ARPOP_INVREPLY:
            parts.append(f"invarp reply {unparse_ether(tha)} at {unparse_ip(tpa)}")
        else:
            parts.append(f"arp-#{op}")
        if hrd != ARPHRD_ETHER:
            parts.append(f"hardware #{hrd}")
        return "".join(parts)

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        if self.active:
            pool = batch.pool
            for s in batch.idx.tolist():
                text = self.line(pool, s)
                if text is None:
                    continue
                if self._outfile is not None:
                    self._outfile.write(text + "\n")
                else:
                    chatter(text)
        return batch

    def add_handlers(self) -> None:
        from clickos.elements.ip.common import add_bool_handler

        add_bool_handler(self, "active", self, "active")

