"""The machinery shared by the rewriter elements (Click's "nat" family).

- :class:`IPRewriterPattern`: ``SADDR SPORT DADDR DPORT`` patterns with address
  or port ranges, and the search for a free source address/port.
- :class:`IPRewriterInput`: one INPUTSPEC (``drop``, ``pass``, ``keep``,
  ``pattern``, or a mapper element).
- :class:`IPMapper`: the interface of mapper elements such as RoundRobinIPMapper.
- :class:`IPRewriterBase`: the element base: configuration, the flow table
  (:class:`clickos.packet.flowtable.FlowTable`), capacity sharing, expiry,
  garbage collection, handlers, and the push path, where one numba kernel
  looks up and rewrites a whole batch and only packets of new flows come back
  to Python.
- :class:`IPRewriterPatterns`: the element that names shared patterns.
- TCP sequence-number deltas (:class:`SeqDeltas`), used by TCPRewriter flows
  that FTPPortMapper has edited.

Flow identifiers are tuples ``(saddr, sport, daddr, dport)`` of ints; ports are
16-bit values in network byte order, as they read from the packet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import TYPE_CHECKING, Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bool,
    parse_int,
    parse_ip_address,
    parse_ip_prefix,
    parse_seconds,
    split_words,
    unparse_ip,
)
from clickos.core.element import CONFIGURE_PHASE_DEFAULT, CONFIGURE_PHASE_INFO, Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import DEPRECATED, READ_PARAM
from clickos.core.task import Timer
from clickos.elements.ip.common import update_cksum
from clickos.packet import flowtable as ft
from clickos.packet.batch import PacketBatch

if TYPE_CHECKING:
    from clickos.packet.pool import PacketPool

FlowID = tuple[int, int, int, int]

RW_DROP, RW_ADDMAP = -1, -2
I_DROP, I_NOCHANGE, I_KEEP, I_PATTERN, I_MAPPER = range(5)
MAPID_DEFAULT, MAPID_IPREWRITER_UDP = 0, 1
GET_ENTRY_CHECK, GET_ENTRY_REPLY = -1, -2

CONFIGURE_PHASE_PATTERNS = CONFIGURE_PHASE_INFO
CONFIGURE_PHASE_REWRITER = CONFIGURE_PHASE_DEFAULT
CONFIGURE_PHASE_MAPPER = CONFIGURE_PHASE_REWRITER - 1

HZ = 1000
IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_DCCP = 1, 6, 17, 33


def reverse(flow: FlowID) -> FlowID:
    return flow[2], flow[3], flow[0], flow[1]


def unparse_flow(flow: FlowID) -> str:
    return f"({unparse_ip(flow[0])}, {flow[1]}, {unparse_ip(flow[2])}, {flow[3]})"


def inc16(v: int) -> int:
    """Add one to a 16-bit network-order field as a little-endian host stores it
    (how Click derives the two "ports" of an ICMP echo flow)."""
    raw = ((v & 0xFF) << 8) | (v >> 8)
    raw = (raw + 1) & 0xFFFF
    return ((raw & 0xFF) << 8) | (raw >> 8)


def _words16(flow: FlowID) -> list[int]:
    sa, sp, da, dp = flow
    return [sa >> 16, sa & 0xFFFF, da >> 16, da & 0xFFFF, sp, dp]


def checksum_deltas(flow: FlowID, rewritten: FlowID) -> tuple[int, int]:
    """The IP header and transport checksum deltas of a rewrite (as Click's
    IPRewriterFlow computes them)."""
    a, b = _words16(flow), _words16(rewritten)
    ipd = 0
    for i in range(4):
        ipd = update_cksum(ipd, a[i], b[i])
    l4d = ipd
    for i in range(4, 6):
        l4d = update_cksum(l4d, a[i], b[i])
    return ipd, l4d


# -- click_random ------------------------------------------------------------------------------

class _Random:
    """``click_random()``: the C library's ``random()`` when it is available, so that
    a seeded run (``RandomSeed``) picks the same ports as Click; otherwise Python's."""

    def __init__(self) -> None:
        self.libc: Any = None
        try:
            name = ctypes.util.find_library("c")
            lib = ctypes.CDLL(name) if name else None
            if lib is not None and hasattr(lib, "random"):
                lib.random.restype = ctypes.c_long
                self.libc = lib
        except OSError:
            self.libc = None
        self.seed_seen: Any = None
        self.router_seen = 0

    def _sync_seed(self, force: bool = False) -> None:
        # follow RandomSeed: reseed the C generator whenever the shared seed changes
        try:
            from clickos.elements.standard import info
        except ImportError:
            return
        cur = getattr(info, "_rng", None)
        if force or cur is not self.seed_seen:
            self.seed_seen = cur
            try:
                seed = int(cur.bit_generator.seed_seq.entropy)  # type: ignore[union-attr]
            except (AttributeError, TypeError, ValueError):
                seed = None
            if seed is not None and self.libc is not None:
                self.libc.srandom(ctypes.c_uint(seed & 0xFFFFFFFF))

    def router_started(self, router: Any) -> None:
        """Reseed at the start of each router, from the process's (or RandomSeed's)
        seed, as Click reseeds when a router initializes."""
        if id(router) != self.router_seen:
            self.router_seen = id(router)
            self._sync_seed(force=True)

    def raw(self) -> int:
        self._sync_seed()
        if self.libc is not None:
            return int(self.libc.random()) & 0x7FFFFFFF
        import random

        return random.getrandbits(31)

    def between(self, low: int, high: int) -> int:
        """A number in [low, high], drawn the way Click's click_random(low, high) does."""
        if low > high:
            return low
        rmax = 0x7FFFFFFF
        span = high - low
        if span > rmax:
            while True:
                r = ((self.raw() << 17) ^ (self.raw() >> 14)) & 0xFFFFFFFF
                if r <= span:
                    return r + low
        if high == low + 1:
            return low + ((self.raw() >> 14) & 1)
        count = (rmax + 1) // (span + 1)
        top = count * (span + 1)
        while True:
            r = self.raw()
            if r < top:
                return r // count + low


click_random = _Random()


# -- patterns ----------------------------------------------------------------------------------

def _int_arg(text: str) -> int | None:
    try:
        return parse_int(text)
    except (ConfigError, ValueError):
        return None


class IPRewriterPattern:
    """One rewriting pattern: fields to overwrite, and an optional range for the
    source address (Basic NAT) or source port (NAPT)."""

    def __init__(self, saddr: int, sport: int, daddr: int, dport: int, is_napt: bool,
                 sequential: bool, same_first: bool, variation: int) -> None:
        self.saddr = saddr
        self.sport = sport
        self.daddr = daddr
        self.dport = dport
        self.is_napt = is_napt
        self.sequential = sequential
        self.same_first = same_first
        self.variation_top = variation
        self.next_variation = 0

    # -- parsing --------------------------------------------------------------------------
    @staticmethod
    def _marks(text: str) -> tuple[str, bool | None, bool | None]:
        """Strip a trailing ``#`` (sequential) or ``?`` (random) mark."""
        if text.endswith("#"):
            return text[:-1], True, False
        if text.endswith("?"):
            return text[:-1], None, False
        return text, None, None

    @classmethod
    def parse(cls, words: list[str], context: Element) -> IPRewriterPattern:
        """Parse ``SADDR [SPORT] DADDR [DPORT]`` (or one pattern name); raises
        ConfigError with Click's message."""
        res = getattr(context, "resolve_name", None)
        if len(words) < 1 or len(words) > 4:
            raise ConfigError("syntax error")
        if len(words) == 1:
            pat = res("iprewriter_pattern", words[0]) if res else None
            if isinstance(pat, IPRewriterPattern):
                return pat
            raise ConfigError(f"no such pattern '{words[0]}'")

        state = {"sequential": False, "same_first": True, "variation": 0}

        def marks(text: str) -> str:
            body, seq, same = cls._marks(text)
            if seq is not None:
                state["sequential"] = seq
            if same is not None:
                state["same_first"] = same
            return body

        def ip(text: str) -> int | None:
            try:
                return int.from_bytes(parse_ip_address(text, res), "big")
            except ConfigError:
                return None

        def addr_range(text: str) -> int | None:
            saved = dict(state)
            body = marks(text)
            dash = body.find("-")
            if dash >= 0:
                a, b = ip(body[:dash]), ip(body[dash + 1:])
                if a is not None and b is not None and b >= a:
                    state["variation"] = b - a
                    return a
            else:
                try:
                    ab, mb = parse_ip_prefix(body, True, res)
                except ConfigError:
                    ab, mb = None, None
                if ab is not None and mb is not None:
                    a, m = int.from_bytes(ab, "big"), int.from_bytes(mb, "big")
                    inv = ~m & 0xFFFFFFFF
                    if a and m and not (inv & (inv + 1)):
                        if m == 0xFFFFFFFF:
                            state["variation"] = 0
                        elif m == 0xFFFFFFFE:
                            a &= m
                            state["variation"] = 1
                        else:
                            a = (a & m) | 1
                            state["variation"] = (inv - 2) & 0xFFFFFFFF
                        return a
            state.update(saved)
            return None

        def port_range(text: str) -> int | None:
            saved = dict(state)
            body = marks(text)
            dash = body.find("-")
            lo = _int_arg(body[:dash] if dash >= 0 else body)
            hi = _int_arg(body[dash + 1:]) if dash >= 0 else None
            if lo is not None and hi is not None and lo >= 0 and lo <= hi < 65536:
                state["variation"] = hi - lo
                return lo
            state.update(saved)
            return None

        n = len(words)
        saddr = sport = daddr = dport = 0
        i = 0
        w = words[i]
        if w != "-":
            v = ip(w)
            if v is None:
                v = addr_range(w)
            if v is None:
                raise ConfigError("bad source address")
            saddr = v
        if n >= 3:
            i = 2 if n == 3 else 1
            w = words[i]
            if w != "-":
                v = _int_arg(w)
                if v is None or not 0 < v < 65536:
                    v = port_range(w)
                if v is None:
                    raise ConfigError("bad source port")
                sport = v
            i = 0 if n == 3 else 1
        i += 1
        w = words[i]
        if w != "-":
            v = ip(w)
            if v is None:
                raise ConfigError("bad destination address")
            daddr = v
        if n == 4:
            i += 1
            w = words[i]
            if w != "-":
                v = _int_arg(w)
                if v is None or not 0 < v < 65536:
                    raise ConfigError("bad destination port")
                dport = v
        return cls(saddr, sport, daddr, dport, n >= 3, bool(state["sequential"]),
                   bool(state["same_first"]), int(state["variation"]))

    # -- using -----------------------------------------------------------------------------
    def rewrite_flowid(self, flow: FlowID, table: ft.FlowTable, mapid: int) -> tuple[int, FlowID]:
        """(RW_ADDMAP, new flow) or (RW_DROP, flow) when no free variation is left.
        ``table``/``mapid`` is the reply map the new flow must not collide with."""
        sa, sp, da, dp = flow
        if self.saddr:
            sa = self.saddr
        if self.sport:
            sp = self.sport
        if self.daddr:
            da = self.daddr
        if self.dport:
            dp = self.dport
        top = self.variation_top
        if not top:
            return RW_ADDMAP, (sa, sp, da, dp)
        # candidate reply keys: (da, dp, X, sp) for NAPT (X = our address, vary dport),
        # or (da, dp, X, sp) with X varying for Basic NAT
        base = self.sport if self.is_napt else self.saddr
        val = (flow[1] - base) & 0xFFFFFFFF
        if self.same_first and val <= top:
            k0, k1 = ft.make_key(da, dp, sa, flow[1], mapid)
            if ft.index_lookup(table.slots, table.K, np.uint64(k0), np.uint64(k1)) < 0:
                if self.is_napt:
                    sp = flow[1]
                self.next_variation = val + 1
                return RW_ADDMAP, (sa, sp, da, dp)
        if self.sequential:
            val = 0 if self.next_variation > top else self.next_variation
        else:
            val = click_random.between(0, top)
        found = _probe(table, da, dp, sa, sp, mapid, base, val, top, self.is_napt)
        if found < 0:
            return RW_DROP, flow
        if self.is_napt:
            sp = (base + found) & 0xFFFF
        else:
            sa = (base + found) & 0xFFFFFFFF
        self.next_variation = found + 1
        return RW_ADDMAP, (sa, sp, da, dp)

    def unparse(self) -> str:
        out = []
        if not self.is_napt and self.variation_top:
            out.append(f"{unparse_ip(self.saddr)}-{unparse_ip((self.saddr + self.variation_top) & 0xFFFFFFFF)}")
        elif self.saddr:
            out.append(unparse_ip(self.saddr))
        else:
            out.append("-")
        if self.is_napt:
            if not self.sport:
                out.append("-")
            elif self.variation_top:
                out.append(f"{self.sport}-{self.sport + self.variation_top}")
            else:
                out.append(str(self.sport))
        out.append(unparse_ip(self.daddr) if self.daddr else "-")
        if self.is_napt:
            out.append(str(self.dport) if self.dport else "-")
        return " ".join(out)


def _probe(table: ft.FlowTable, da: int, dp: int, sa: int, sp: int, mapid: int, base: int,
           start: int, top: int, napt: bool) -> int:
    """The first variation from ``start`` (wrapping) whose reply key is unused, or -1."""
    k0, k1 = ft.make_key(da, dp, sa, sp, mapid)
    return int(ft.probe_free(table.slots, table.K, np.uint64(k0), np.uint64(k1), base, start, top, napt))


# -- input specs --------------------------------------------------------------------------------

class IPMapper:
    """Interface of mapper elements (RoundRobinIPMapper...): they choose how new
    flows are rewritten for a rewriter input whose INPUTSPEC names them."""

    def notify_rewriter(self, user: IPRewriterBase, spec: IPRewriterInput, errh: ErrorHandler) -> None:
        """Called at initialization by each rewriter input using this mapper."""

    def rewrite_flowid(self, spec: IPRewriterInput, flow: FlowID, mapid: int) -> tuple[int, FlowID]:
        """(RW_ADDMAP, new flow), (output, flow) or (RW_DROP, flow)."""
        return RW_DROP, flow


class IPRewriterInput:
    """One INPUTSPEC and its counters."""

    def __init__(self, owner: Element | None = None, owner_input: int = 0) -> None:
        self.owner = owner
        self.owner_input = owner_input
        self.kind = I_DROP
        self.foutput = -1
        self.routput = -1
        self.reply_element: Any = owner
        self.count = 0
        self.failures = 0
        self.pattern: IPRewriterPattern | None = None
        self.mapper: IPMapper | None = None

    def rewrite_flowid(self, flow: FlowID, mapid: int = MAPID_DEFAULT) -> tuple[int, FlowID]:
        kind = self.kind
        if kind == I_NOCHANGE:
            return self.foutput, flow
        if kind == I_KEEP:
            return RW_ADDMAP, flow
        if kind == I_PATTERN:
            assert self.pattern is not None
            result = self.pattern.rewrite_flowid(flow, self.reply_element.table, mapid)
        elif kind == I_MAPPER:
            assert self.mapper is not None
            result = self.mapper.rewrite_flowid(self, flow, mapid)
        else:
            return RW_DROP, flow
        if result[0] == RW_DROP:
            self.failures += 1
        return result

    def unparse(self) -> str:
        if self.kind == I_PATTERN and self.pattern is not None:
            text = self.pattern.unparse()
        else:
            text = {I_DROP: "<drop>", I_NOCHANGE: "<nochange>", I_KEEP: "<keep>",
                    I_MAPPER: "<mapper>"}.get(self.kind, "<drop>")
        if self.count:
            text += f" [{self.count}]"
        return text + "\n"


def parse_ports(words: list[str], spec: IPRewriterInput) -> None:
    """``FOUTPUT ROUTPUT`` into ``spec``."""
    f = _int_arg(words[0]) if len(words) == 2 else None
    if f is None:
        raise ConfigError("bad forward port")
    spec.foutput = f
    r = _int_arg(words[1])
    if r is None:
        raise ConfigError("bad reply port")
    spec.routput = r


def parse_pattern_with_ports(text: str, spec: IPRewriterInput, context: Element) -> None:
    """``PATTERN... FOUTPUT ROUTPUT`` into ``spec``."""
    words = split_words(text)
    if len(words) <= 2:
        raise ConfigError("syntax error")
    spec.pattern = IPRewriterPattern.parse(words[:-2], context)
    parse_ports(words[-2:], spec)


# -- TCP sequence number deltas -------------------------------------------------------------------

def _seq_geq(a: int, b: int) -> bool:
    return ((a - b) & 0xFFFFFFFF) < 0x80000000


class _Transition:
    __slots__ = ("delta", "trigger", "has")

    def __init__(self) -> None:
        self.delta = [0, 0]
        self.trigger = [0, 0]
        self.has = [False, False]


class SeqDeltas:
    """The sequence-number changes of one TCP flow, newest first.

    For each direction, a transition says "from sequence number TRIGGER on, add
    DELTA"; a transition without a trigger gives the delta for everything
    older.  Acknowledgements in the other direction are adjusted back.
    """

    def __init__(self) -> None:
        self.chain: list[_Transition] = []

    def _truncate_after(self, i: int) -> None:
        del self.chain[i + 1:]

    def update(self, d: int, trigger: int, delta: int) -> bool:
        """Add ``delta`` for direction ``d`` from ``trigger`` on (Click's
        update_seqno_delta); False if out of order."""
        chain = self.chain
        o = 1 - d
        head = chain[0] if chain else None
        if head is not None and head.has[d] and not _seq_geq(trigger, head.trigger[d]):
            return False
        if head is None or (trigger != head.trigger[d] if head.has[d] else head.delta[d] != 0):
            new = _Transition()
            chain.insert(0, new)
            # the other direction's history moves down one node
            for i in range(len(chain) - 1):
                cur, nxt = chain[i], chain[i + 1]
                cur.delta[o] = nxt.delta[o]
                cur.trigger[o] = nxt.trigger[o]
                if nxt.has[o]:
                    cur.has[o] = True
                else:
                    cur.has[o] = False
                    break
            head = new
        head.trigger[d] = trigger & 0xFFFFFFFF
        older = chain[1] if len(chain) > 1 else None
        head.delta[d] = ((older.delta[d] if older is not None else 0) + delta)
        head.has[d] = True
        # forget transitions a gigabyte behind this one
        i = 1
        while i < len(chain) and chain[i].has[d] and not _seq_geq(trigger, chain[i].trigger[d] + (1 << 30)):
            i += 1
        if i < len(chain) and chain[i].has[d]:
            chain[i].has[d] = False
            if not chain[i].has[0] and not chain[i].has[1]:
                self._truncate_after(i)
        return True

    def new_seq(self, d: int, seq: int) -> int:
        for t in self.chain:
            if t.has[d] and not _seq_geq(seq, t.trigger[d]):
                continue
            return (seq + t.delta[d]) & 0xFFFFFFFF
        return seq

    def new_ack(self, d: int, ack: int) -> int:
        o = 1 - d
        for t in self.chain:
            if t.has[o] and not _seq_geq((ack - t.delta[o]) & 0xFFFFFFFF, t.trigger[o]):
                continue
            return (ack - t.delta[o]) & 0xFFFFFFFF
        return ack

    def head_delta(self, d: int) -> int:
        return self.chain[0].delta[d] if self.chain else 0

    def fix_packet(self, buf: np.ndarray, t: int, tlen: int, d: int) -> None:
        """Adjust the sequence, acknowledgement and SACK numbers of the TCP header
        at ``buf[t:]`` (``tlen`` transport bytes) sent in direction ``d``."""
        if not self.chain or tlen < 18:
            return
        th_off = (int(buf[t + 12]) >> 4) << 2
        if tlen < th_off:
            return
        head = self.chain[0]
        seq = _get32(buf, t + 4)
        if head.has[d] and _seq_geq(seq, head.trigger[d] + (1 << 30)):
            head.has[d] = False
            if not head.has[0] and not head.has[1]:
                self._truncate_after(0)
        o = 1 - d
        if head.delta[d] or head.has[d]:
            new = self.new_seq(d, seq)
            _replace32(buf, t + 4, t + 16, new)
        if head.delta[o] or head.has[o]:
            new = self.new_ack(d, _get32(buf, t + 8))
            _replace32(buf, t + 8, t + 16, new)
            if th_off > 32 or (th_off == 32 and bytes(buf[t + 20: t + 24]) != b"\x01\x01\x08\x0a"):
                self._fix_sack(buf, t, tlen, d)

    def _fix_sack(self, buf: np.ndarray, t: int, tlen: int, d: int) -> None:
        end = t + min(tlen, (int(buf[t + 12]) >> 4) << 2)
        begin = t + 20
        o = begin
        delta = 0
        while o < end:
            kind = int(buf[o])
            if kind == 0:
                break
            if kind == 1:
                o += 1
                continue
            if o + 1 >= end:
                break
            olen = int(buf[o + 1])
            if kind == 5:
                if o + olen > end or olen % 8 != 2:
                    break
                sack_end = o + olen
                cs = begin + ((o + 2 - begin) & ~1)
                for h in range(cs, sack_end, 2):
                    delta += ~_get16(buf, h) & 0xFFFF
                for b in range(o + 2, sack_end, 8):
                    _put32(buf, b, self.new_ack(d, _get32(buf, b)))
                    _put32(buf, b + 4, self.new_ack(d, _get32(buf, b + 4)))
                for h in range(cs, sack_end, 2):
                    delta += _get16(buf, h)
                o = sack_end
                continue
            if olen < 2:
                break
            o += olen
        if delta:
            s = (~_get16(buf, t + 16) & 0xFFFF) + delta
            while s >> 16:
                s = (s & 0xFFFF) + (s >> 16)
            _put16(buf, t + 16, ~s & 0xFFFF)


def _get16(buf: np.ndarray, i: int) -> int:
    if i + 1 >= len(buf):
        return (int(buf[i]) << 8) if i < len(buf) else 0
    return (int(buf[i]) << 8) | int(buf[i + 1])


def _put16(buf: np.ndarray, i: int, v: int) -> None:
    if i < len(buf):
        buf[i] = (v >> 8) & 0xFF
    if i + 1 < len(buf):
        buf[i + 1] = v & 0xFF


def _get32(buf: np.ndarray, i: int) -> int:
    return (_get16(buf, i) << 16) | _get16(buf, i + 2)


def _put32(buf: np.ndarray, i: int, v: int) -> None:
    _put16(buf, i, (v >> 16) & 0xFFFF)
    _put16(buf, i + 2, v & 0xFFFF)


def _replace32(buf: np.ndarray, at: int, csum_at: int, new: int) -> None:
    old = _get32(buf, at)
    c = _get16(buf, csum_at)
    c = update_cksum(c, old >> 16, new >> 16)
    c = update_cksum(c, old & 0xFFFF, new & 0xFFFF)
    _put16(buf, csum_at, c)
    _put32(buf, at, new)


# -- entries: what get_entry returns ---------------------------------------------------------------

class Entry:
    """A reference to one direction of a flow, for ICMPRewriter and FTPPortMapper."""

    __slots__ = ("rw", "e")

    def __init__(self, rw: IPRewriterBase, e: int) -> None:
        self.rw = rw
        self.e = e

    @property
    def flow(self) -> int:
        return self.e >> 1

    @property
    def direction(self) -> int:
        return self.e & 1

    @property
    def output(self) -> int:
        return int(self.rw.table.F[self.flow, ft.C_OUT0 + self.direction])

    def flowid(self) -> FlowID:
        return self.rw.table.key(self.e)[:4]

    def rewritten_flowid(self) -> FlowID:
        return self.rw.table.rewritten(self.e)

    @property
    def reply_anno(self) -> int:
        return int(self.rw.table.F[self.flow, ft.C_RANNO])

    def set_reply_anno(self, v: int) -> None:
        self.rw.table.F[self.flow, ft.C_RANNO] = v & 0xFF


# -- the element base ---------------------------------------------------------------------------------

class IPRewriterBase(Element):
    """Base of the IPRewriter family (see the module docstring); not an element itself.

    Subclasses set ``kind`` (a ``flowtable.KIND_*``), parse their own keywords in
    ``configure_keywords`` and implement ``packet_flowid``/``add_flow``/
    ``best_effort_expiry``/``unparse_entry`` where they differ.
    """

    register = False
    port_count = "1-/1-"
    processing = "h"
    configure_phase = CONFIGURE_PHASE_REWRITER
    kind = ft.KIND_TCP
    default_timeout = 300

    def __init__(self) -> None:
        super().__init__()
        self.table = ft.FlowTable()
        self.table.heap = None
        self.heap = ft.FlowHeap()
        self.heap.members.append(self)
        self.specs: list[IPRewriterInput] = []
        self.timeouts = [self.default_timeout * HZ, 5 * HZ]
        self.gc_interval = 15 * 60
        self.annos = 1
        # the kernel's workspace (parameters, results, output ports; see
        # flowtable.new_workspace), sized for the outputs at initialization
        self.P = np.zeros(ft.NPARAMS, np.int64)   # then a view of the workspace
        self._resize_workspace(256)
        self._starts = np.zeros(8, np.int64)
        # whether the last batch went to several outputs: then the next call
        # lets the kernel group the batch by port (see push)
        self._mixed = False
        self._nosel = np.zeros(0, np.int32)
        self.deltas: dict[int, SeqDeltas] = {}
        self._split_ok = False
        self._gc_timer: Timer | None = None

    # -- configuration ------------------------------------------------------------------------
    def configure_keywords(self, conf: list[str], errh: ErrorHandler) -> list[str]:
        """Read the subclass's keywords; returns the remaining arguments."""
        return conf

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        conf = self.configure_keywords(list(conf), errh)
        a = Args(None, self).bind(conf)
        cap_word = a.read("CAPACITY", None, None)
        cap_word = a.read("MAPPING_CAPACITY", None, cap_word)
        t0 = a.read("TIMEOUT", parse_seconds, None)
        t1 = a.read("GUARANTEE", parse_seconds, None)
        gc = a.read("REAP_INTERVAL", parse_seconds, None)
        gc = a.read("REAP_TIME", parse_seconds, gc, deprecated=True)
        conf = a.consume()
        if t0 is not None:
            self.timeouts[0] = t0 * HZ
        if t1 is not None:
            self.timeouts[1] = t1 * HZ
        if gc is not None:
            self.gc_interval = gc
        if cap_word:
            cap = _int_arg(cap_word)
            if cap is not None:
                self.heap.capacity = cap
            else:
                other = self.router.find(cap_word, self)
                other = other.cast("IPRewriterBase") if other is not None else None
                if other is None:
                    raise ConfigError("bad MAPPING_CAPACITY")
                self.heap.members.remove(self)
                self.heap = other.heap
                self.heap.members.append(self)
        if len(conf) != self.ninputs:
            raise ConfigError(f"need {self.ninputs} arguments, one per input port")
        specs = []
        ok = True
        for i, text in enumerate(conf):
            spec = IPRewriterInput(self, i)
            try:
                self.parse_input_spec(text, spec, i)
            except ConfigError as e:
                errh.error(f"input spec {i}: {e}")
                ok = False
            specs.append(spec)
        if ok:
            self.specs = specs
        self._set_params()

    def parse_input_spec(self, text: str, spec: IPRewriterInput, i: int) -> None:
        words = split_words(text)
        if not words:
            raise ConfigError("empty argument")
        word = words[0]
        rest = text.strip()[len(word):].strip()
        spec.kind = I_DROP
        spec.reply_element = self
        if word in ("pass", "passthrough", "nochange"):
            out = 0
            if rest:
                v = _int_arg(rest)
                if v is None:
                    raise ConfigError("syntax error, expected 'nochange [OUTPUT]'")
                out = v
            if not 0 <= out < self.noutputs:
                raise ConfigError("output port out of range")
            spec.kind = I_NOCHANGE
            spec.foutput = out
        elif word == "keep":
            parse_ports(split_words(rest), spec)
            self._check_ports(spec)
            spec.kind = I_KEEP
        elif word in ("drop", "discard"):
            if rest:
                raise ConfigError(f"syntax error, expected '{word}'")
        elif word in ("pattern", "xpattern"):
            parse_pattern_with_ports(rest, spec, self)
            self._check_ports(spec)
            spec.kind = I_PATTERN
        else:
            e = self.router.find(word, self) if self.router is not None else None
            if e is None:
                raise ConfigError("unknown specification")
            if rest:
                raise ConfigError("syntax error, expected element name")
            if not isinstance(e, IPMapper):
                raise ConfigError("element is not an IPMapper")
            spec.kind = I_MAPPER
            spec.mapper = e

    def _check_ports(self, spec: IPRewriterInput) -> None:
        if not (0 <= spec.foutput < self.noutputs and 0 <= spec.routput < spec.reply_element.noutputs):
            raise ConfigError("output port out of range")

    def _set_params(self) -> None:
        P = self.P
        P[ft.P_KIND] = self.kind
        P[ft.P_ANNOS] = self.annos
        P[ft.P_T0] = self.timeouts[0]
        P[ft.P_T1] = self.timeouts[1]

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.elements.standard.basic import compute_split_ok

        click_random.router_started(self.router)
        for i, spec in enumerate(self.specs):
            if spec.kind == I_MAPPER and spec.mapper is not None:
                spec.mapper.notify_rewriter(self, spec, _PrefixErrh(errh, f"input spec {i}: "))
        self._split_ok = compute_split_ok(self)
        self._resize_workspace(256)
        self._gc_timer = Timer(self._gc, self)
        self._gc_timer.initialize(self)
        if self.gc_interval:
            self._gc_timer.schedule_after_sec(self.gc_interval)
        self._set_params()

    def cleanup(self, stage: int) -> None:
        if self in self.heap.members:
            for f in self.table.live_flows().tolist():
                self.destroy_flow(int(f))

    def _gc(self, timer: Timer) -> None:
        self.heap.shrink(self.jiffies())
        if self.gc_interval:
            timer.reschedule_after(self.gc_interval * 1_000_000_000)

    def jiffies(self) -> int:
        return self.router.master.clock.now() // 1_000_000

    # -- flows -----------------------------------------------------------------------------------
    def relevant_timeout(self, timeouts: list[int]) -> int:
        return timeouts[1] if timeouts[1] else timeouts[0]

    def flow_timeouts(self, proto: int) -> list[int]:
        """The (best effort, guarantee) pair that applies to new flows of ``proto``."""
        return self.timeouts

    def best_effort_expiry(self, f: int) -> int:
        F = self.table.F
        return int(F[f, ft.C_EXPIRY]) + self.timeouts[0] - self.timeouts[1]

    def new_flow(self, proto: int, flow: FlowID, rewritten: FlowID, port: int, mapid: int) -> int:
        """Allocate a flow (not yet stored); returns its index."""
        spec = self.specs[port]
        t = self.table
        f = t.new_flow(ft.make_key(*flow, mapid), ft.make_key(*reverse(rewritten), mapid))
        ipd, l4d = checksum_deltas(flow, rewritten)
        timeouts = self.flow_timeouts(proto)
        F = t.F
        F[f, ft.C_IPD] = ipd
        F[f, ft.C_L4D] = l4d
        F[f, ft.C_PROTO] = proto
        F[f, ft.C_OWNER] = port
        F[f, ft.C_OUT0] = spec.foutput
        F[f, ft.C_OUT1] = spec.routput
        F[f, ft.C_GUAR] = 1 if timeouts[1] else 0
        F[f, ft.C_EXPIRY] = self.jiffies() + self.relevant_timeout(timeouts)
        F[f, ft.C_STAMP] = self.heap.stamp
        self.heap.stamp += 1
        return f

    def add_flow(self, proto: int, flow: FlowID, rewritten: FlowID, port: int, mapid: int) -> int:
        """Create and store a flow; returns its forward entry or -1."""
        return self.store_flow(self.new_flow(proto, flow, rewritten, port, mapid), port)

    def store_flow(self, f: int, port: int) -> int:
        spec = self.specs[port]
        t = self.table
        F = t.F
        reply = spec.reply_element
        if not (0 <= F[f, ft.C_OUT0] < self.noutputs and 0 <= F[f, ft.C_OUT1] < reply.noutputs):
            t.release(f)
            return -1
        t.index(2 * f)
        old = t.index(2 * f + 1)
        if old >= 0 and old >> 1 != f:
            self.destroy_flow(old >> 1)
        spec.count += 1
        heap = self.heap
        if heap.size() > heap.capacity:
            if heap.shrink_for_new_flow(self, f, self.jiffies()):
                spec.failures += 1
                return -1
        return 2 * f

    def destroy_flow(self, f: int) -> None:
        t = self.table
        owner = int(t.F[f, ft.C_OWNER])
        if 0 <= owner < len(self.specs):
            self.specs[owner].count -= 1
        self.deltas.pop(f, None)
        t.release(f)

    # -- lookups for other elements ------------------------------------------------------------------
    def map_lookup(self, flow: FlowID, mapid: int = 0) -> int:
        return self.table.lookup(*flow, mapid)

    def get_entry(self, proto: int, flow: FlowID, port: int) -> Entry | None:
        """Click's get_entry: the entry for ``flow``; with a valid input ``port``,
        create it by that input's rule if missing."""
        e = self.map_lookup(flow)
        if e >= 0 and proto:
            fp = int(self.table.F[e >> 1, ft.C_PROTO])
            if fp and fp != proto:
                return None
        if e < 0 and 0 <= port < len(self.specs):
            result, rewritten = self.specs[port].rewrite_flowid(flow, MAPID_DEFAULT)
            if result == RW_ADDMAP:
                e = self.add_flow(proto, flow, rewritten, port, MAPID_DEFAULT)
        return Entry(self, e) if e >= 0 else None

    # -- packets -----------------------------------------------------------------------------------
    def packet_flowid(self, pool: PacketPool, s: int) -> tuple[int, FlowID, int]:
        """(protocol, flow identifier, map id) Click uses for a new flow from this packet."""
        data = pool.data[s]
        ip = int(pool.nh[s])
        t = int(pool.th[s])
        if t < ip:
            t = ip + ((int(data[ip]) & 15) << 2)
        proto = int(data[ip + 9])
        sa = int.from_bytes(data[ip + 12: ip + 16].tobytes(), "big")
        da = int.from_bytes(data[ip + 16: ip + 20].tobytes(), "big")
        sp = (int(data[t]) << 8) | int(data[t + 1])
        dp = (int(data[t + 2]) << 8) | int(data[t + 3])
        return proto, (sa, sp, da, dp), 0

    def handle_miss(self, port: int, pool: PacketPool, s: int) -> tuple[int, int]:
        """A packet of an unknown flow: (entry to apply, or -1, and the output if none)."""
        proto, flow, mapid = self.packet_flowid(pool, s)
        spec = self.specs[port]
        result, rewritten = spec.rewrite_flowid(flow, mapid)
        e = -1
        if result == RW_ADDMAP:
            e = self.add_flow(proto, flow, rewritten, port, mapid)
        if e < 0:
            return -1, (result if result >= 0 else -1)
        if self.annos & 2:
            self.table.F[e >> 1, ft.C_RANNO] = int(pool.anno[s, self.annos >> 2])
        return e, -1

    def fix_sequence(self, pool: PacketPool, s: int, e: int) -> None:
        dl = self.deltas.get(e >> 1)
        if dl is None:
            return
        ip = int(pool.nh[s])
        t = int(pool.th[s])
        data = pool.data[s]
        if t < ip:
            t = ip + ((int(data[ip]) & 15) << 2)
        end = int(pool.off[s]) + int(pool.length[s])
        dl.fix_packet(data[:end], t, end - t, e & 1)

    def _resize_workspace(self, size: int) -> np.ndarray:
        """A workspace for batches of up to ``size`` packets, keeping the parameters."""
        nout = len(self.outputs)
        W = self._W = ft.new_workspace(nout, size, self.P)
        self.P = W[:ft.NPARAMS]
        # (numpy indexing and slicing cost ~100 ns a time: keep what push needs)
        self._out0 = int(W[ft.P_OUT])
        self._wsize = size
        self._group_starts = W[ft.W_STARTS:ft.W_STARTS + nout + 2]
        return W

    def push(self, port: int, batch: PacketBatch) -> None:
        idx = batch.idx
        n = len(idx)
        W = self._W
        if n > self._wsize:
            W = self._resize_workspace(2 * n)
        out0 = self._out0
        spec = self.specs[port]
        kind = spec.kind
        pass_out = spec.foutput if kind == I_NOCHANGE else -1
        miss_out = pass_out if kind == I_NOCHANGE or kind == I_DROP else -2
        now = self.jiffies()
        pool = batch.pool
        heap = self.heap
        table = self.table
        # When the last batch went to several outputs, this one probably does too:
        # give the kernel a fresh array to group it into, which saves a kernel
        # call.  (The parts are views of it, so downstream may keep them.)
        sel = np.empty(n, idx.dtype) if self._mixed else self._nosel
        # the kernel is called directly, not through table.run: this is the hot path
        ret = ft.rewrite_batch(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.anno, idx,
                               table.K, table.F, table.slots, W, sel, now, heap.stamp, 0, -1,
                               pass_out, miss_out)
        heap.stamp = int(W[ft.P_STAMP])
        while ret < -2:
            # stopped on a packet that needs Python; the table may change (grow)
            k = int(W[ft.P_RET_K])
            s = int(idx[k])
            force = -1
            if ret == ft.RET_MISS:
                e, result = self.handle_miss(port, pool, s)
                if e >= 0:
                    force = e
                    start = k
                else:
                    W[out0 + k] = result
                    start = k + 1
            else:
                self.fix_sequence(pool, s, int(W[ft.P_RET_ENTRY]))
                start = k + 1
            ret = ft.rewrite_batch(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.anno, idx,
                                   table.K, table.F, table.slots, W, sel, now, heap.stamp, start, force,
                                   pass_out, miss_out)
            heap.stamp = int(W[ft.P_STAMP])
        if ret >= -1:
            self._mixed = False
            if 0 <= ret < len(self.outputs):
                self.outputs[ret].push(batch)
            else:
                batch.kill()
        elif len(sel) >= n > 0:
            self._push_groups(pool, sel, self._group_starts.tolist())
        else:
            self._mixed = self._split_ok
            self._emit(batch, W[out0:out0 + n], mixed=True)

    def _push_groups(self, pool: PacketPool, sel: np.ndarray, bounds: list[int]) -> None:
        """Push the parts of a batch grouped by port into ``sel`` (group_by_port's
        layout, with starts ``bounds``); release the packets of no output."""
        outs = self.outputs
        nout = len(outs)
        for p in range(nout):
            a, b = bounds[p], bounds[p + 1]
            if b > a:
                outs[p].push(PacketBatch(pool, sel[a:b]))
        if bounds[nout] < len(sel):
            pool.release(sel[bounds[nout]:])

    def _emit(self, batch: PacketBatch, ports: np.ndarray, mixed: bool = False) -> None:
        """Push each packet out of output ``ports[i]``; ``ports`` may be part of the
        reused workspace (it is read in full before any push, or copied)."""
        outs = self.outputs
        nout = len(outs)
        n = len(ports)
        if not mixed:
            p0 = int(ports[0])
            if n == 1 or (ports == p0).all():
                if 0 <= p0 < nout:
                    outs[p0].push(batch)
                else:
                    batch.kill()
                return
        pool, idx = batch.pool, batch.idx
        if self._split_ok:
            # One kernel pass groups the slots by port into one fresh array (the
            # parts are views of it, so downstream may keep them).
            starts = self._starts
            if len(starts) < nout + 2:
                starts = self._starts = np.zeros(nout + 2, np.int64)
            sel = np.empty(n, idx.dtype)
            ft.group_by_port(idx, ports, n, nout, sel, starts)
            self._push_groups(pool, sel, starts[:nout + 2].tolist())
            return
        cuts = np.flatnonzero(ports[1:] != ports[:-1]) + 1
        heads = ports[np.concatenate(([0], cuts))].tolist()
        start = 0
        for p, end in zip(heads, cuts.tolist() + [n], strict=True):
            part = PacketBatch(pool, idx[start:end].copy())
            if 0 <= p < nout:
                outs[p].push(part)
            else:
                part.kill()
            start = end

    # -- handlers ------------------------------------------------------------------------------------
    def unparse_ports(self, e: int, now: int) -> str:
        F = self.table.F
        f, d = e >> 1, e & 1
        spec_i = int(F[f, ft.C_OWNER])
        spec = self.specs[spec_i] if spec_i < len(self.specs) else None
        reply = spec.reply_element if spec is not None else self
        other = "" if reply is self else f"{self.name}:"
        rother = "" if reply is self else f"{getattr(reply, 'name', '')}:"
        first = "*" if d == 0 else other
        second = "*" if d == 1 else rother
        expiry = int(F[f, ft.C_EXPIRY])
        if F[f, ft.C_GUAR]:
            expiry = self.best_effort_expiry(f)
        secs = ((expiry + HZ // 2 - now) & 0xFFFFFFFF) // HZ
        return f" [{first}{int(F[f, ft.C_OUT0])} {second}{int(F[f, ft.C_OUT1])}] i{spec_i} exp{secs}"

    def unparse_entry(self, e: int, now: int) -> str:
        t = self.table
        return f"{unparse_flow(t.key(e)[:4])} => {unparse_flow(t.rewritten(e))}" + self.unparse_ports(e, now)

    def table_text(self, mapid: int | None = None) -> str:
        now = self.jiffies()
        lines = []
        for e in self.table.entries():
            if mapid is not None and self.table.key(e)[4] != mapid:
                continue
            lines.append(self.unparse_entry(e, now) + "\n")
        return "".join(lines)

    def add_rewriter_handlers(self, writable_patterns: bool = True) -> None:
        self.add_read_handler("table_size", lambda: sum(s.count for s in self.specs))
        self.add_read_handler("nmappings", lambda: sum(s.count for s in self.specs), DEPRECATED)
        self.add_read_handler("mapping_failures", lambda: sum(s.failures for s in self.specs))
        self.add_read_handler("patterns", lambda: "".join(s.unparse() for s in self.specs))
        self.add_read_handler("size", lambda: self.heap.size())
        self.add_read_handler("capacity", lambda: self.heap.capacity)
        self.add_write_handler("capacity", self._write_capacity)
        self.add_write_handler("clear", lambda v, errh: self.heap.shrink(self.jiffies(), True))
        for i in range(self.ninputs):
            self.add_read_handler(f"pattern{i}", lambda i=i: self.specs[i].unparse() if i < len(self.specs) else "")
            if writable_patterns:
                self.add_write_handler(f"pattern{i}", lambda v, errh, i=i: self._write_pattern(i, v, errh))

    def _write_capacity(self, value: str, errh: ErrorHandler) -> None:
        a = Args(None, self).push_back_words(value)
        cap = a.read_mp("CAPACITY", parse_int)
        a.complete()
        self.heap.capacity = cap
        self.heap.shrink(self.jiffies())

    def _write_pattern(self, i: int, value: str, errh: ErrorHandler) -> None:
        spec = IPRewriterInput(self, i)
        try:
            self.parse_input_spec(value, spec, i)
        except ConfigError as e:
            errh.error(f"input spec {i}: {e}")
            return
        old = self.specs[i]
        for f in self.table.live_flows().tolist():
            if int(self.table.F[f, ft.C_OWNER]) == i:
                self.destroy_flow(int(f))
        spec.count = old.count  # zero once its flows are gone
        self.specs[i] = spec
        if spec.kind == I_MAPPER and spec.mapper is not None:
            spec.mapper.notify_rewriter(self, spec, errh)

    def add_lookup_handler(self, name: str, mapid: int = 0) -> None:
        """A read handler taking ``SADDR SPORT DADDR DPORT`` and printing the rewritten flow."""
        def lookup(param: str) -> str:
            a = Args(None, self).push_back_words(param)
            from clickos.core.confparse import parse_tcp_port

            sa = a.read_mp("SADDR", parse_ip_address)
            sp = a.read_mp("SPORT", parse_tcp_port)
            da = a.read_mp("DADDR", parse_ip_address)
            dp = a.read_mp("DPORT", parse_tcp_port)
            a.complete()
            flow = (int.from_bytes(sa, "big"), sp, int.from_bytes(da, "big"), dp)
            e = self.table.lookup(*flow, mapid)
            if e < 0:
                return ""
            r = self.table.rewritten(e)
            return f"{unparse_ip(r[0])} {r[1]} {unparse_ip(r[2])} {r[3]}"

        self.add_read_handler(name, lookup, READ_PARAM)


class _PrefixErrh:
    """Forwards errors and warnings with a prefix (Click's PrefixErrorHandler)."""

    def __init__(self, errh: ErrorHandler, prefix: str) -> None:
        self.errh = errh
        self.prefix = prefix

    def error(self, msg: str) -> int:
        return self.errh.error(self.prefix + msg)

    def warning(self, msg: str) -> int:
        self.errh.message(self.prefix + "warning: " + msg)
        self.errh.nwarnings += 1
        return 0


def read_annos(a: Args, dst_default: bool = True, with_dst: bool = True) -> int:
    """Read DST_ANNO and REPLY_ANNO; returns Click's packed ``_annos`` value."""
    from clickos.core.confparse import anno_arg

    dst = a.read("DST_ANNO", parse_bool, dst_default) if with_dst else True
    reply = a.read("REPLY_ANNO", anno_arg(1), None)
    return (1 if dst else 0) + (2 + (reply << 2) if reply is not None else 0)


class IPRewriterPatterns(Element):
    """IPRewriterPatterns(NAME PATTERN, ...)

    Names rewriting patterns for IPRewriter and its relatives.

    Each argument is a name followed by a pattern, ``NAME SADDR SPORT DADDR
    DPORT`` (see IPRewriter).  A rewriter INPUTSPEC ``pattern NAME FOUTPUT
    ROUTPUT`` then uses the named pattern; every user shares it, including its
    state for sequential port allocation.  Names must be distinct across all
    IPRewriterPatterns elements of a configuration.

    Example::

        IPRewriterPatterns(to_world 1.0.0.1 1024-65535 - -)
        rw :: IPRewriter(pattern to_world 0 1, drop)
    """

    port_count = "0/0"
    configure_phase = CONFIGURE_PHASE_PATTERNS

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        names = self.router.attachments.setdefault("NameInfo", {}).setdefault("iprewriter_pattern", {})
        slash = self.name.rfind("/")
        prefix = self.name[: slash + 1] if slash >= 0 else ""
        for text in conf:
            words = split_words(text)
            if not words:
                continue
            name = words[0]
            if self.resolve_name("iprewriter_pattern", name) is not None:
                errh.error(f"pattern '{name}' already defined")
                continue
            try:
                pat = IPRewriterPattern.parse(words[1:], self)
            except ConfigError as e:
                errh.error(str(e))
                continue
            names[prefix + name] = pat
