"""IP fragmentation and reassembly: IPFragmenter and IPReassembler."""

from __future__ import annotations

from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import anno_arg, parse_bool, parse_unsigned, unparse_ip
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.elements.ip.common import (
    IP_DF,
    IP_MF,
    IP_OFFMASK,
    IPOPT_EOL,
    IPOPT_NOP,
    compute_split_ok,
    copy_annotations,
    in_cksum,
    push_runs,
    runs,
)
from clickos.elements.standard.info import click_random
from clickos.elements.standard.printing import chatter
from clickos.packet.batch import PacketBatch


def copied_options(h: bytes) -> bytes:
    """The options of IP header ``h`` that must be copied into every fragment,
    padded with EOL to a multiple of four bytes."""
    out = bytearray()
    i, end = 20, len(h)
    while i < end:
        t = h[i]
        if t == IPOPT_NOP:
            i += 1
            continue
        if t == IPOPT_EOL or i + 1 == end or h[i + 1] < 2 or i + h[i + 1] > end:
            break
        if t & 0x80:
            out += h[i: i + h[i + 1]]
        i += h[i + 1]
    while len(out) & 3:
        out.append(IPOPT_EOL)
    return bytes(out)


class IPFragmenter(Element):
    """IPFragmenter(MTU, [KEYWORDS])

    Fragments IP packets larger than MTU.

    Packets whose IP part (from the network header on) fits in MTU bytes leave on
    output 0 unchanged.  Larger packets are split into fragments, sent in order
    on output 0, each carrying the annotations of the original.  The first
    fragment keeps the original header (and any MAC header before it); later ones
    get a 20-byte header plus the options marked for copying.  A packet with the
    Don't Fragment flag set goes to output 1 instead (typically an ICMPError for
    "needfrag"), unless HONOR_DF is false.  Strip MAC headers first: later
    fragments do not get one.

    Keyword arguments:

    - HONOR_DF (boolean): obey the DF flag.  Default true.  When false, DF packets
      are fragmented too, with a fresh random IP ID.
    - VERBOSE (boolean): report every DF packet, rather than the first five.
    - HEADROOM (unsigned): headroom of the new fragments.

    Handlers: ``drops``, ``fragments`` (read).

    Example: ``... -> fr :: IPFragmenter(1500) -> ...; fr[1] -> ICMPError(18.26.4.24, unreachable, needfrag) -> ...``
    """

    port_count = "1/1-2"
    processing = "h"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.mtu = 0
        self.honor_df = True
        self.verbose = False
        self.headroom: int | None = None
        self.drops = 0
        self.fragments = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        mtu = a.read_mp("MTU", parse_unsigned)
        honor_df = a.read_p("HONOR_DF", parse_bool, True)
        verbose = a.read_p("VERBOSE", parse_bool, False)
        headroom = a.read("HEADROOM", parse_unsigned)
        a.complete()
        if mtu < 8:
            raise ConfigError("MTU must be at least 8")
        self.mtu, self.honor_df, self.verbose, self.headroom = mtu, honor_df, verbose, headroom

    def _fragment(self, s: int, ports: list[int], slots: list[int]) -> None:
        pool = self.router.pool
        row = pool.data[s]
        ip = int(pool.nh[s])
        hlen = (int(row[ip]) & 0xF) << 2
        if hlen < 20 or ip + hlen > int(pool.off[s]) + int(pool.length[s]):
            ports.append(0)  # no usable IP header: pass it on untouched
            slots.append(s)
            return
        first_dlen = (self.mtu - hlen) & ~7
        ip_len = (int(row[ip + 2]) << 8) | int(row[ip + 3])
        in_dlen = ip_len - hlen
        ip_off = (int(row[ip + 6]) << 8) | int(row[ip + 7])
        if (ip_off & IP_DF and self.honor_df) or first_dlen < 8:
            if self.verbose or self.drops < 5:
                chatter(f"IPFragmenter({self.mtu}) DF {unparse_ip(row[ip + 12: ip + 16].tobytes())} "
                        f"{unparse_ip(row[ip + 16: ip + 20].tobytes())} len={int(pool.length[s])}")
            self.drops += 1
            ports.append(1)
            slots.append(s)
            return
        if ip_off & IP_DF:
            ident = int(click_random().integers(0, 1 << 16))
            row[ip + 4], row[ip + 5] = ident >> 8, ident & 0xFF
            ip_off &= ~IP_DF
        had_mf = bool(ip_off & IP_MF)
        ip_off |= IP_MF
        head = bytearray(row[ip: ip + hlen].tobytes())
        head[2:4] = (hlen + first_dlen).to_bytes(2, "big")
        head[6:8] = ip_off.to_bytes(2, "big")
        head[10:12] = b"\0\0"
        head[10:12] = in_cksum(head).to_bytes(2, "big")
        row[ip: ip + hlen] = np.frombuffer(bytes(head), np.uint8)
        th = int(pool.th[s]) if pool.th[s] >= 0 else ip + hlen
        opts = copied_options(bytes(head))
        out_hlen = 20 + len(opts)
        payload = row[th: th + max(in_dlen, 0)].tobytes()
        rest: list[int] = []
        off = first_dlen
        while off < in_dlen:
            out_dlen = (self.mtu - out_hlen) & ~7
            if out_dlen + off > in_dlen:
                out_dlen = in_dlen - off
            h = bytearray(head[:20]) + opts
            h[0] = 0x40 | (out_hlen >> 2)
            foff = (ip_off + (off >> 3)) & 0xFFFF
            if out_dlen + off >= in_dlen and not had_mf:
                foff &= ~IP_MF
            h[6:8] = foff.to_bytes(2, "big")
            h[2:4] = (out_hlen + out_dlen).to_bytes(2, "big")
            h[10:12] = b"\0\0"
            h[10:12] = in_cksum(h).to_bytes(2, "big")
            q = pool.new_packet(bytes(h) + payload[off: off + out_dlen], self.headroom)
            qo = int(pool.off[q])
            pool.nh[q] = qo
            pool.th[q] = qo + out_hlen
            copy_annotations(pool, q, s)
            rest.append(q)
            off += out_dlen
        # the original packet, cut short, is the first fragment
        keep = (ip - int(pool.off[s])) + hlen + first_dlen
        if 0 <= keep < int(pool.length[s]):
            # (as Click's Packet::take, which refuses to take more than the whole
            # packet: with the network header before the data, keep may be < 0)
            pool.length[s] = keep
        ports.append(0)
        slots.append(s)
        self.fragments += 1
        for q in rest:
            ports.append(0)
            slots.append(q)
            self.fragments += 1

    def push(self, port: int, batch: PacketBatch) -> None:
        pool = batch.pool
        idx = batch.idx
        # the common case, decided by one kernel: every packet fits
        if self._k(pool.off, pool.length, pool.nh, idx, self.mtu) == 0:
            self.outputs[0].push(batch)
            return
        nh = pool.nh[idx]
        netlen = pool.off[idx].astype(np.int64) + pool.length[idx] - nh
        big = (netlen > self.mtu) & (nh >= 0) & (netlen >= 20)
        if not big.any():
            self.outputs[0].push(batch)
            return
        ports: list[int] = []
        slots: list[int] = []
        for s, b in zip(idx.tolist(), big.tolist(), strict=True):
            if b:
                self._fragment(s, ports, slots)
            else:
                ports.append(0)
                slots.append(s)
        push_runs(self, PacketBatch(pool, np.array(slots, np.int32)), np.array(ports, np.int32), single=True)

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._split_ok = compute_split_ok(self)
        self._k = netkernels.count_too_big

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        return fusegen.punt_too_big(self.mtu)

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)
        self.add_read_handler("fragments", lambda: self.fragments)


# -- reassembly ---------------------------------------------------------------------------------

IPH_MEM_USED = 40
REAP_TIMEOUT = 30
REAP_INTERVAL = 10
REASM_ANNO = 28


class _Segment:
    """A packet being reassembled: its data so far and which byte ranges arrived."""

    __slots__ = ("prefix", "mac_rel", "ip_rel", "hl", "ip_off", "data", "chunks", "anno", "ptype",
                 "ts", "max_frag", "tail")

    def __init__(self) -> None:
        self.prefix = b""          # bytes from the data start through the IP header
        self.mac_rel: int | None = None
        self.ip_rel = 0            # where the IP header starts within prefix
        self.hl = 20
        self.ip_off = 0            # flags kept for the reassembled header
        self.data = bytearray()
        self.chunks: list[list[int]] = []
        self.anno = np.zeros(48, np.uint8)   # annotations the result will carry
        self.ptype = 0
        self.ts = 0
        self.max_frag = 0
        self.tail = b""            # stale buffer bytes past the data (see _one)

    def add_chunk(self, a: int, b: int) -> None:
        merged: list[list[int]] = []
        for c in sorted(self.chunks + [[a, b]]):
            if merged and c[0] <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], c[1])
            else:
                merged.append(list(c))
        self.chunks = merged

    def complete(self) -> bool:
        return (not (self.ip_off & IP_MF) and len(self.chunks) == 1 and self.chunks[0][0] == 0
                and self.chunks[0][1] == len(self.data))


class IPReassembler(Element):
    """IPReassembler([KEYWORDS])

    Reassembles fragmented IP packets.

    Packets arrive on input 0 with IP header annotations.  Unfragmented packets
    pass straight through.  Fragments are held until the whole packet can be
    rebuilt, which then leaves on output 0 with the MAC header and annotations of
    the first fragment and the timestamp of the last one to arrive.  Fragments of
    a packet that stays incomplete for 30 seconds are dropped, or, if there is an
    output 1, pushed there as one packet holding the data received.  Memory use is
    bounded by HIMEM: beyond it the oldest incomplete packets are discarded until
    usage falls to three quarters of HIMEM.  Malformed fragments are dropped.

    Keyword arguments:

    - HIMEM (unsigned): memory bound in bytes.  Default 256K.
    - MAX_MTU_ANNO (2-byte annotation): receives the size of the largest fragment
      of each reassembled packet.

    Handlers: ``dump`` (read: statistics and the incomplete packets).

    Example: ``... -> CheckIPHeader -> IPReassembler -> ...``
    """

    port_count = "1/1-2"
    processing = "a/ah"

    def __init__(self) -> None:
        super().__init__()
        self.himem = 256 * 1024
        self.lomem = 0
        self.mtu_anno = -1
        self.segs: dict[bytes, _Segment] = {}
        self.mem_used = 0
        self.reap_time = 0
        self.frags_seen = self.good = self.failed = self.bad = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        himem = a.read("HIMEM", parse_unsigned, 256 * 1024)
        mtu_anno = a.read("MAX_MTU_ANNO", anno_arg(2), -1)
        a.complete()
        self.himem, self.mtu_anno = himem, mtu_anno
        self.lomem = (himem >> 2) * 3

    def initialize(self, errh: ErrorHandler) -> None:
        self.mem_used = 0
        self.reap_time = 0
        self._split_ok = compute_split_ok(self)

    def cleanup(self, stage: int) -> None:
        self.segs.clear()

    # -- building packets ------------------------------------------------------------------
    def _emit(self, seg: _Segment, complete: bool) -> int:
        pool = self.router.pool
        h = bytearray(seg.prefix[seg.ip_rel: seg.ip_rel + seg.hl])
        h[6:8] = seg.ip_off.to_bytes(2, "big")
        data = bytearray(seg.data)
        if complete:
            h[2:4] = ((seg.hl + len(data)) & 0xFFFF).to_bytes(2, "big")
            h[10:12] = b"\0\0"
            h[10:12] = in_cksum(h).to_bytes(2, "big")
        else:
            # an incomplete packet is passed on as it was held: the header of the
            # fragment that created it, and in each hole the (offset, end) of the
            # next received range, little-endian, as Click keeps them
            ch = seg.chunks
            for k in range(len(ch) - 1):
                at = ch[k][1]
                data[at: at + 4] = ch[k + 1][0].to_bytes(2, "little") + ch[k + 1][1].to_bytes(2, "little")
        payload = seg.prefix[: seg.ip_rel] + bytes(h) + bytes(data)
        q = pool.new_packet(payload)
        pool.anno[q] = seg.anno
        pool.ptype[q] = seg.ptype
        pool.ts[q] = seg.ts
        o = int(pool.off[q])
        if seg.mac_rel is not None:
            pool.mac[q] = o + seg.mac_rel
        pool.nh[q] = o + seg.ip_rel
        pool.th[q] = o + seg.ip_rel + seg.hl
        if not complete and seg.chunks:
            a, b = seg.chunks[0]
            pool.anno[q, REASM_ANNO: REASM_ANNO + 4] = np.frombuffer(
                a.to_bytes(2, "little") + b.to_bytes(2, "little"), np.uint8)
        if self.mtu_anno >= 0:
            pool.anno[q, self.mtu_anno: self.mtu_anno + 2] = np.frombuffer(
                (seg.max_frag & 0xFFFF).to_bytes(2, "little"), np.uint8)
        return q

    def _drop_seg(self, key: bytes, out: list[tuple[int, int]]) -> None:
        seg = self.segs.pop(key)
        self.mem_used -= IPH_MEM_USED + len(seg.data)
        out.append((1, self._emit(seg, False)))

    def _reap(self, now: int, out: list[tuple[int, int]]) -> None:
        kill_time = now - REAP_TIMEOUT
        for key in [k for k, s in self.segs.items() if s.ts // 1_000_000_000 < kill_time]:
            self._drop_seg(key, out)
        self.reap_time = now + REAP_INTERVAL

    def _reap_overfull(self, now: int, out: list[tuple[int, int]]) -> None:
        for delta in (10, 5, 0):
            for key in list(self.segs):
                s = self.segs[key]
                if not delta or s.ts // 1_000_000_000 < now - delta:
                    self._drop_seg(key, out)
                    self.failed += 1
                    if self.mem_used <= self.lomem:
                        return
        chatter("IPReassembler: cannot free enough memory!")

    def _one(self, s: int, out: list[tuple[int, int]]) -> None:
        pool = self.router.pool
        row = pool.data[s]
        ip = int(pool.nh[s])
        if ip < 0 or ip + 20 > int(pool.off[s]) + int(pool.length[s]):
            out.append((0, s))  # not an IP packet; Click requires one
            return
        ip_off = (int(row[ip + 6]) << 8) | int(row[ip + 7])
        if not ip_off & (IP_MF | IP_OFFMASK):
            out.append((0, s))
            return
        self.frags_seen += 1
        if pool.ts[s] == 0:
            pool.ts[s] = self.router.master.clock.now()
        now = int(pool.ts[s]) // 1_000_000_000
        if now >= self.reap_time:
            self._reap(now, out)
        hl = (int(row[ip]) & 0xF) << 2
        ip_len = (int(row[ip + 2]) << 8) | int(row[ip + 3])
        p_off = (ip_off & IP_OFFMASK) << 3
        p_last = p_off + ip_len - hl
        th = int(pool.th[s]) if pool.th[s] >= 0 else ip + hl
        end = int(pool.off[s]) + int(pool.length[s])
        dlen = end - th
        if (p_last > 0xFFFF or p_last <= p_off or (p_last & 7 and ip_off & IP_MF)
                or dlen < p_last - p_off):
            pool.release1(s)
            self.bad += 1
            return
        if self.mem_used > self.himem:
            self._reap_overfull(now, out)
        key = row[ip + 4: ip + 6].tobytes() + row[ip + 9: ip + 10].tobytes() + row[ip + 12: ip + 20].tobytes()
        netlen = th - ip + p_last - p_off
        seg = self.segs.get(key)
        if seg is None:
            seg = _Segment()
            seg.ip_off = ip_off & ~IP_OFFMASK
            seg.max_frag = netlen if p_off == 0 else 20 + p_last
            seg.data = bytearray(p_last)
            seg.data[p_off:p_last] = row[th: th + p_last - p_off].tobytes()
            if p_off == 0:
                # Click keeps this packet's buffer and grows it in place, so the
                # bytes already past its end show up in holes; keep them too
                seg.tail = row[th + p_last:].tobytes()
            seg.add_chunk(p_off, p_last)
            self._take_header(seg, s, first=p_off == 0)
            self.segs[key] = seg
            self.mem_used += IPH_MEM_USED + p_last
            pool.release1(s)
            return
        seg.max_frag = max(seg.max_frag, netlen)
        if p_last > len(seg.data):
            if not seg.ip_off & IP_MF:
                pool.release1(s)
                return
            grow = p_last - len(seg.data)
            self.mem_used += grow
            fill = seg.tail[:grow]
            seg.tail = seg.tail[grow:]
            seg.data.extend(fill + bytes(grow - len(fill)))
        seg.data[p_off:p_last] = row[th: th + p_last - p_off].tobytes()
        seg.add_chunk(p_off, p_last)
        if p_off == 0:
            old_flags = seg.ip_off
            self._take_header(seg, s, first=True)
            seg.ip_off = old_flags
        if not ip_off & IP_MF:
            seg.ip_off &= ~IP_MF
        if seg.complete():
            self.good += 1
            del self.segs[key]
            self.mem_used -= IPH_MEM_USED + len(seg.data)
            seg.ts = int(pool.ts[s])
            seg.anno[REASM_ANNO: REASM_ANNO + 4] = 0
            out.append((0, self._emit(seg, True)))
        pool.release1(s)

    def _take_header(self, seg: _Segment, s: int, first: bool) -> None:
        """Remember the header (and annotations) the reassembled packet will carry."""
        pool = self.router.pool
        o = int(pool.off[s])
        ip = int(pool.nh[s])
        row = pool.data[s]
        if first:
            th = int(pool.th[s]) if pool.th[s] >= 0 else ip + ((int(row[ip]) & 0xF) << 2)
            start = min(o, ip)
            seg.prefix = row[start: th].tobytes()
            seg.ip_rel = ip - start
            seg.hl = th - ip
            seg.mac_rel = int(pool.mac[s]) - start if pool.mac[s] >= 0 else None
            seg.anno = pool.anno[s].copy()
            seg.ptype = int(pool.ptype[s])
            seg.ts = int(pool.ts[s])
        else:
            # Click starts such a packet from scratch: no annotations, no timestamp
            seg.prefix = row[ip: ip + 20].tobytes()
            seg.ip_rel = 0
            seg.hl = 20
            seg.mac_rel = None

    def _run(self, batch: PacketBatch) -> tuple[list[int], list[int]]:
        out: list[tuple[int, int]] = []
        for s in batch.idx.tolist():
            self._one(s, out)
        return [p for p, _ in out], [s for _, s in out]

    def push(self, port: int, batch: PacketBatch) -> None:
        ports, slots = self._run(batch)
        if slots:
            push_runs(self, PacketBatch(batch.pool, np.array(slots, np.int32)), np.array(ports, np.int32),
                      single=True)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        ports, slots = self._run(batch)
        if not slots:
            return None
        arr = np.array(slots, np.int32)
        good: list[int] = []
        for p, a, b in runs(np.array(ports, np.int32)):
            if p == 0:
                good += arr[a:b].tolist()
            else:
                self.checked_output_push(1, PacketBatch(batch.pool, arr[a:b]))
        return PacketBatch(batch.pool, np.array(good, np.int32)) if good else None

    def _dump(self) -> str:
        lines = [f"frags seen total:    {self.frags_seen}", f"good reassemblies:   {self.good}",
                 f"failed reassemblies: {self.failed}", f"bad fragments seen:  {self.bad}",
                 "cached chunk data:"]
        for key, seg in self.segs.items():
            chunks = "".join(f" ({a},{b})" for a, b in seg.chunks)
            h = seg.prefix[seg.ip_rel:]
            whole = h[:seg.hl] + bytes(seg.data)
            at = (h[0] & 0xF) << 2
            ports = whole[at: at + 4].ljust(4, b"\0")
            lines.append(f" ({unparse_ip(key[3:7])}, {int.from_bytes(ports[0:2], 'big')}, "
                         f"{unparse_ip(key[7:11])}, {int.from_bytes(ports[2:4], 'big')}) "
                         f"{int.from_bytes(key[0:2], 'big')}{chunks}")
        return "\n".join(lines) + "\n"

    def add_handlers(self) -> None:
        self.add_read_handler("dump", self._dump)
