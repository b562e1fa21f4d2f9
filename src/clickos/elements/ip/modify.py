"""Elements that change IP headers or annotations: DecIPTTL, SetIPChecksum,
SetIPDSCP, MarkIPCE, FixIPSrc, GetIPAddress, SetIPAddress, StoreIPAddress,
DropBroadcasts, IPGWOptions and IPOutputCombo."""

from __future__ import annotations

from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    anno_arg,
    parse_bool,
    parse_int,
    parse_ip_address,
    parse_ip_address_list,
    parse_unsigned,
    parse_word,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM, CHECKBOX
from clickos.elements.ip.checkipheader import _Checker
from clickos.elements.ip.common import (
    FIX_IP_SRC_ANNO,
    ICMP_PARAMPROB_ANNO,
    IPOPT_EOL,
    IPOPT_NOP,
    IPOPT_RR,
    IPOPT_TS,
    PAINT_ANNO,
    add_bool_handler,
    add_ip_handler,
    add_keyword_handlers,
    compute_split_ok,
    in_cksum,
    push_runs,
)
from clickos.elements.standard.printing import chatter
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import BROADCAST, MULTICAST


class DecIPTTL(_Checker):
    """DecIPTTL([KEYWORDS])

    Decrements IP time-to-live fields and diverts expired packets.

    Input packets need IP header annotations.  A packet whose TTL is 1 or less
    goes to output 1 (or is dropped if there is none), usually towards an
    ICMPError element.  Other packets have their TTL decremented, their checksum
    updated incrementally (RFC 1624), and leave on output 0.

    Keyword arguments:

    - ACTIVE (boolean): when false, packets pass untouched.  Default true.
    - MULTICAST (boolean): when false, multicast packets pass untouched.  Default true.

    Handlers: ``drops`` (read), ``active`` (read/write).

    Example::

        ... -> CheckIPHeader -> dt :: DecIPTTL -> ...
        dt[1] -> ICMPError(18.26.4.24, timeexceeded) -> ...
    """

    def __init__(self) -> None:
        super().__init__()
        self.active = True
        self.multicast = True
        self.drops = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        active = a.read("ACTIVE", parse_bool, True)
        multicast = a.read("MULTICAST", parse_bool, True)
        a.complete()
        self.active, self.multicast = active, multicast

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.dec_ttl(self.multicast) if self.active else fusegen.Step([])

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        super().initialize(errh)
        self._k = netkernels.dec_ip_ttl
        self._out = np.zeros(256, np.int32)
        self._push0 = self.outputs[0].push

    def _verdicts(self, batch: PacketBatch) -> tuple[np.ndarray, int]:
        out = np.zeros(len(batch), np.int32)
        if not self.active:
            return out, 0
        pool = batch.pool
        n = self._k(pool.data, pool.nh, batch.idx, self.multicast, out)
        return out, n

    def push(self, port: int, batch: PacketBatch) -> None:
        # the common case in one Python frame: one kernel call, nothing expired
        if not self.active:
            self._push0(batch)
            return
        idx = batch.idx
        out = self._out
        if len(out) < len(idx):
            out = self._out = np.zeros(len(idx), np.int32)
        if self._k(batch.pool.data, batch.pool.nh, idx, self.multicast, out) == 0:
            self._push0(batch)
            return
        self._dispatch(batch, out[:len(idx)].copy())

    def _report(self, reason: int) -> None:
        self.drops += 1

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)
        add_bool_handler(self, "active", self, "active", CHECKBOX)


class SetIPChecksum(Element):
    """SetIPChecksum()

    Computes and stores IP header checksums.

    The IP header is found at the network header annotation (or the start of the
    data).  Packets too short to hold the header they claim are dropped, the
    first one with a message.  Elements that change headers, such as DecIPTTL,
    usually update checksums themselves, so this is seldom needed.

    Handlers: ``drops`` (read).

    Example: ``... -> StoreIPAddress(dst) -> SetIPChecksum -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.drops = 0

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.set_ip_checksum

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool = batch.pool
        out = np.zeros(len(batch), np.int32)
        nbad = self._k(pool.data, pool.off, pool.length, pool.nh, batch.idx, out)
        if nbad == 0:
            return batch
        if self.drops == 0:
            chatter("SetIPChecksum: bad input packet")
        self.drops += nbad
        return batch.kill_where(out != 0)

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)


class SetIPDSCP(Element):
    """SetIPDSCP(DSCP)

    Sets the Differentiated Services Code Point of IP packets.

    The DSCP (0-63) is the upper six bits of the TOS byte; the ECN bits are kept.
    The header checksum is updated incrementally.  Input packets need IP header
    annotations.

    Handlers: ``dscp`` (read/write).

    Example: ``SetIPDSCP(46)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.dscp = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        dscp = a.read_mp("DSCP", parse_unsigned)
        a.complete()
        if dscp > 0x3F:
            raise ConfigError("diffserv code point out of range")
        self.dscp = dscp << 2

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.set_ip_dscp

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        self._k(pool.data, pool.nh, batch.idx, self.dscp)
        return batch

    def add_handlers(self) -> None:
        add_keyword_handlers(self, "dscp", "0 DSCP", flags=CALM)


class MarkIPCE(Element):
    """MarkIPCE([FORCE])

    Marks IP packets Congestion Experienced.

    Sets the ECN field of each packet to 3 (CE), updating the checksum.  Packets
    that are not ECN-capable (ECN field 0) are dropped unless FORCE is true.

    Handlers: ``drops`` (read).

    Example: ``... -> MarkIPCE -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.force = False
        self.drops = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.force = a.read_p("FORCE", parse_bool, False)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.mark_ip_ce

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        pool = batch.pool
        out = np.zeros(len(batch), np.int32)
        # Click does not count these drops in the drops handler; neither do we.
        if self._k(pool.data, pool.nh, batch.idx, self.force, out):
            return batch.kill_where(out != 0)
        return batch

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)


class FixIPSrc(Element):
    """FixIPSrc(IPADDR)

    Sets the IP source address of packets that ask for it.

    Packets whose Fix IP Source annotation is set (ICMPError sets it) get source
    address IPADDR and a fresh header checksum; the annotation is cleared.  Other
    packets pass unchanged.

    Example: ``... -> FixIPSrc(18.26.4.24) -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.my_ip = b"\0" * 4

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.my_ip = a.read_mp("IPADDR", parse_ip_address)
        a.complete()

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.fix_ip_src

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        self._k(pool.data, pool.nh, pool.anno, batch.idx, FIX_IP_SRC_ANNO, int.from_bytes(self.my_ip, "big"))
        return batch

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.punt_anno_set(FIX_IP_SRC_ANNO)


class GetIPAddress(Element):
    """GetIPAddress(OFFSET [, ANNO, KEYWORDS])

    Copies an IP address from the packet into an annotation.

    Copies the four bytes at OFFSET (usually 16, the IP destination field) into
    the destination IP address annotation, or into the annotation named by ANNO.
    Instead of OFFSET, the keyword IP may be ``src`` or ``dst`` to copy that field
    of the packet's IP header (IP header annotations needed).

    Example: ``... -> GetIPAddress(16) -> LinearIPLookup(...)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.offset = -1
        self.anno = 0
        self.ip_field = ""

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        offset = a.read_p("OFFSET", parse_int, -1)
        anno = a.read_p("ANNO", anno_arg(4), 0)
        ip_word = a.read("IP", parse_word, "")
        a.complete()
        if (offset >= 0 and ip_word) or (offset < 0 and not ip_word):
            raise ConfigError("set one of OFFSET, IP")
        if ip_word and ip_word not in ("src", "dst"):
            raise ConfigError("bad IP")
        self.offset, self.anno, self.ip_field = offset, anno, ip_word

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        idx = batch.idx
        if self.offset >= 0:
            base = pool.off[idx].astype(np.int64) + self.offset
        else:
            base = pool.nh[idx].astype(np.int64) + (12 if self.ip_field == "src" else 16)
        base = np.clip(base, 0, pool.slot_size - 4)
        for k in range(4):
            pool.anno[idx, self.anno + k] = pool.data[idx, base + k]
        return batch


class SetIPAddress(Element):
    """SetIPAddress(IPADDR [, ANNO])

    Sets the destination IP address annotation.

    Every packet's destination address annotation (or the 4-byte annotation named
    by ANNO) becomes IPADDR.

    Handlers: ``addr`` (read/write).

    Example: ``... -> SetIPAddress(10.0.0.1) -> ARPQuerier(...)``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.ip = b"\0" * 4
        self.anno = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        ip = a.read_mp("IPADDR", parse_ip_address)
        anno = a.read("ANNO", anno_arg(4), 0)
        a.complete()
        self.ip, self.anno = ip, anno

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        batch.pool.anno[batch.idx, self.anno: self.anno + 4] = np.frombuffer(self.ip, np.uint8)
        return batch

    def add_handlers(self) -> None:
        add_ip_handler(self, "addr", self, "ip")


class StoreIPAddress(_Checker):
    """StoreIPAddress(OFFSET)
    StoreIPAddress(ADDR, OFFSET)

    Writes an IP address into packet data.

    The one-argument form writes the destination IP address annotation at byte
    OFFSET, unless the annotation is zero.  The two-argument form writes ADDR
    (which may be zero).  OFFSET may also be ``src`` or ``dst``: the address then
    replaces the IP header's source or destination field, and the IP checksum
    (and a TCP or UDP checksum, where present) is updated incrementally.  With a
    numeric OFFSET no checksum is touched; follow with SetIPChecksum (and
    SetTCPChecksum/SetUDPChecksum) as needed.

    Packets too short for OFFSET go to output 1, or are dropped.

    Example: ``StoreIPAddress(10.0.0.1, dst)``
    """

    def __init__(self) -> None:
        super().__init__()
        self.use_address = False
        self.address = b"\0" * 4
        self.offset = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        use_address = len(conf) > 1
        a = Args(conf, self)
        address = b"\0" * 4
        if use_address:
            address = a.read_mp("ADDR", parse_ip_address)
        word = a.read_mp("OFFSET", parse_word)
        a.complete()
        w = word.lower()
        if w == "src":
            offset = -12
        elif w == "dst":
            offset = -16
        else:
            try:
                offset = parse_int(word)
            except ConfigError:
                offset = -1
            if offset < 0:
                raise ConfigError("type mismatch: OFFSET requires integer")
        self.use_address, self.address, self.offset = use_address, address, offset

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        super().initialize(errh)
        self._k = netkernels.store_ip_address

    def _verdicts(self, batch: PacketBatch) -> tuple[np.ndarray, int]:
        pool = batch.pool
        out = np.zeros(len(batch), np.int32)
        self._k(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.anno, batch.idx, self.offset,
                self.use_address, int.from_bytes(self.address, "big"), out)
        return out, int(np.count_nonzero(out))

    def _report(self, reason: int) -> None:
        pass


class DropBroadcasts(_Checker):
    """DropBroadcasts()

    Drops packets that arrived as link-level broadcasts or multicasts.

    Looks at the packet type annotation (set by FromDevice or HostEtherFilter);
    BROADCAST and MULTICAST packets are dropped (or sent to output 1, if it
    exists), the first one with a message.  IP routers must not forward such
    packets.

    Handlers: ``drops`` (read).

    Example: ``FromDevice(eth0) -> DropBroadcasts -> ...``
    """

    def __init__(self) -> None:
        super().__init__()
        self.drops = 0

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        super().initialize(errh)
        self._k = netkernels.ptype_verdicts
        self._out = np.zeros(256, np.int32)

    def _verdicts(self, batch: PacketBatch) -> tuple[np.ndarray, int]:
        n = len(batch)
        if len(self._out) < n:
            self._out = np.zeros(n, np.int32)
        out = self._out[:n]
        nbad = self._k(batch.pool.ptype, batch.idx, BROADCAST, MULTICAST, out)
        return (out.copy() if nbad else out), nbad

    def _report(self, reason: int) -> None:
        if self.drops == 0:
            chatter("DropBroadcasts: dropped a packet")
        self.drops += 1

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.punt_ptypes(BROADCAST, MULTICAST)

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)


def _timestamp_ms(element: Element) -> bytes:
    """Milliseconds since midnight UT, as the IP timestamp option wants."""
    ns = element.router.master.clock.now()
    sec, sub = divmod(ns, 1_000_000_000)
    return (((sec % 86400) * 1000 + sub // 1_000_000) & 0xFFFFFFFF).to_bytes(4, "big")


def process_gw_options(h: bytearray, my_ip: bytes, my_addrs: list[bytes], ms: bytes) -> tuple[bool, int]:
    """Record Route and Timestamp processing on IP header ``h`` (changed in place).

    Returns (changed, error_offset); error_offset >= 0 points at the bad byte.
    """
    hlen = len(h)
    changed = False
    oi = 20
    while oi < hlen:
        t = h[oi]
        if t == IPOPT_NOP:
            oi += 1
            continue
        if t == IPOPT_EOL:
            break
        xlen = h[oi + 1] if oi + 1 < hlen else 0
        if xlen < 2 or oi + xlen > hlen:
            return changed, oi + 1
        if t == IPOPT_RR:
            p = h[oi + 2] - 1
            if 3 <= p and p + 4 <= xlen:
                h[oi + p: oi + p + 4] = my_ip
                h[oi + 2] += 4
                changed = True
            elif p != xlen:
                return changed, oi + 2
        elif t == IPOPT_TS:
            p = h[oi + 2] - 1
            oflw, flg = h[oi + 3] >> 4, h[oi + 3] & 0xF
            overflowed = False
            if p < 4:
                return changed, oi + 2
            if flg == 0:
                if p + 4 <= xlen:
                    h[oi + p: oi + p + 4] = ms
                    h[oi + 2] += 4
                    changed = True
                else:
                    overflowed = True
            elif flg == 1:
                if p + 8 <= xlen:
                    h[oi + p: oi + p + 4] = my_ip
                    h[oi + p + 4: oi + p + 8] = ms
                    h[oi + 2] += 8
                    changed = True
                else:
                    overflowed = True
            elif flg == 3 and p + 8 <= xlen:
                if bytes(h[oi + p: oi + p + 4]) in my_addrs:
                    h[oi + p + 4: oi + p + 8] = ms
                    h[oi + 2] += 8
                    changed = True
            else:
                return changed, oi + 3
            if overflowed:
                if oflw < 15:
                    h[oi + 3] = ((oflw + 1) << 4) | flg
                    changed = True
                else:
                    return changed, oi + 3
        oi += xlen
    return changed, -1


class IPGWOptions(_Checker):
    """IPGWOptions(MYADDR [, OTHERADDRS])

    Processes the IP options every router must handle.

    Fills in Record Route and Timestamp options (source routes are left alone),
    using MYADDR, the address of the outgoing interface, and recomputes the header
    checksum when it changes something.  OTHERADDRS lists the router's other
    addresses, for prespecified timestamps.  Packets with malformed options go to
    output 1 (typically an ICMPError for a parameter problem) with their ICMP
    parameter problem annotation pointing at the bad byte.

    Handlers: ``drops`` (read).

    Example: ``... -> gw :: IPGWOptions(18.26.4.24) -> ...; gw[1] -> ICMPError(18.26.4.24, parameterproblem)``
    """

    def __init__(self) -> None:
        super().__init__()
        self.preferred = b"\0" * 4
        self.my_addrs: list[bytes] = []
        self.drops = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        preferred = a.read_mp("MYADDR", parse_ip_address)
        others = a.read_p("OTHERADDRS", parse_ip_address_list, [])
        a.complete()
        self.preferred, self.my_addrs = preferred, others + [preferred]

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        super().initialize(errh)
        self._k = netkernels.ip_options_todo
        self._out = np.zeros(256, np.int32)

    def _verdicts(self, batch: PacketBatch) -> tuple[np.ndarray, int]:
        pool = batch.pool
        idx = batch.idx
        n = len(idx)
        if len(self._out) < n:
            self._out = np.zeros(n, np.int32)
        todo_mask = self._out[:n]
        # the common case, decided by one kernel: no packet has IP options
        if self._k(pool.data, pool.nh, idx, todo_mask) == 0:
            return todo_mask, 0
        todo = np.flatnonzero(todo_mask)
        out = np.zeros(n, np.int32)
        nbad = 0
        for i in todo.tolist():
            s = int(idx[i])
            ip = int(pool.nh[s])
            hlen = (int(pool.data[s, ip]) & 0xF) << 2
            h = bytearray(pool.data[s, ip: ip + hlen].tobytes())
            changed, err = process_gw_options(h, self.preferred, self.my_addrs, _timestamp_ms(self))
            if err >= 0:
                pool.data[s, ip: ip + hlen] = np.frombuffer(bytes(h), np.uint8)
                pool.anno[s, ICMP_PARAMPROB_ANNO] = err & 0xFF
                out[i] = 1
                nbad += 1
            elif changed:
                h[10:12] = b"\0\0"
                h[10:12] = in_cksum(h).to_bytes(2, "big")
                pool.data[s, ip: ip + hlen] = np.frombuffer(bytes(h), np.uint8)
        return out, nbad

    def _report(self, reason: int) -> None:
        self.drops += 1

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.punt_ip_options()

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)


class IPOutputCombo(Element):
    """IPOutputCombo(COLOR, IPADDR, MTU)

    Does the usual IP router output steps in one element.

    Equivalent to ``DropBroadcasts -> PaintTee(COLOR) -> IPGWOptions(IPADDR) ->
    FixIPSrc(IPADDR) -> DecIPTTL -> CheckLength(MTU)``.  Output 0 carries normal
    packets; output 1 gets copies of packets painted COLOR (for ICMP redirects);
    output 2 packets with bad options; output 3 packets whose TTL expired; output
    4 packets longer than MTU (for a fragmenter).  Link-level broadcasts are
    dropped.

    Example: ``rt[0] -> IPOutputCombo(1, 18.26.4.24, 1500) -> ...``
    """

    port_count = "1/5"
    processing = "h"

    def __init__(self) -> None:
        super().__init__()
        self.color = 0
        self.my_ip = b"\0" * 4
        self.mtu = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        color = a.read_mp("COLOR", parse_int)
        my_ip = a.read_mp("IPADDR", parse_ip_address)
        mtu = a.read_mp("MTU", parse_unsigned)
        a.complete()
        self.color, self.my_ip, self.mtu = color, my_ip, mtu

    def push(self, port: int, batch: PacketBatch) -> None:
        pool = batch.pool
        ports: list[int] = []
        slots: list[int] = []
        for s in batch.idx.tolist():
            if pool.ptype[s] in (BROADCAST, MULTICAST):
                pool.release1(s)
                continue
            if pool.anno[s, PAINT_ANNO] == (self.color & 0xFF):
                ports.append(1)
                slots.append(int(pool.clone(np.array([s], np.int32))[0]))
            ip = int(pool.nh[s])
            row = pool.data[s]
            if ip < 0 or ip + 20 > int(pool.off[s]) + int(pool.length[s]):
                pool.release1(s)  # not an IP packet (Click requires one)
                continue
            hlen = (int(row[ip]) & 0xF) << 2
            do_cksum = False
            if hlen > 20:
                h = bytearray(row[ip: ip + hlen].tobytes())
                changed, err = process_gw_options(h, self.my_ip, [self.my_ip], _timestamp_ms(self))
                row[ip: ip + hlen] = np.frombuffer(bytes(h), np.uint8)
                if err >= 0:
                    pool.anno[s, ICMP_PARAMPROB_ANNO] = err & 0xFF
                    ports.append(2)
                    slots.append(s)
                    continue
                do_cksum = changed
            if pool.anno[s, FIX_IP_SRC_ANNO]:
                pool.anno[s, FIX_IP_SRC_ANNO] = 0
                row[ip + 12: ip + 16] = np.frombuffer(self.my_ip, np.uint8)
                do_cksum = True
            if do_cksum:
                # Click sums from the packet data start here, not the IP header
                o = int(pool.off[s])
                row[ip + 10: ip + 12] = 0
                row[ip + 10: ip + 12] = np.frombuffer(in_cksum(row[o: o + hlen]).to_bytes(2, "big"), np.uint8)
            if row[ip + 8] <= 1:
                ports.append(3)
                slots.append(s)
                continue
            row[ip + 8] -= 1
            t = (~((int(row[ip + 10]) << 8) | int(row[ip + 11])) & 0xFFFF) + 0xFEFF
            v = ~(t + (t >> 16)) & 0xFFFF
            row[ip + 10], row[ip + 11] = v >> 8, v & 0xFF
            ports.append(4 if int(pool.length[s]) > self.mtu else 0)
            slots.append(s)
        if slots:
            push_runs(self, PacketBatch(pool, np.array(slots, np.int32)), np.array(ports, np.int32), single=True)

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)
