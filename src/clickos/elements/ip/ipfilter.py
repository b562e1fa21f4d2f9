"""IPFilter and IPClassifier: tcpdump-like packet classification.

A configuration is compiled in three stages:

1. **Parsing.**  Each pattern's text is split into words and parsed by a
   recursive-descent parser for the expression grammar (``or``/``||``,
   ``and``/``&&``/juxtaposition, ``not``/``!``, parentheses and ``?:``).  Each
   primitive test (``src host 1.2.3.4``, ``tcp port > 1023``, ``ip[9] = 6``...)
   is checked and turned into one or more *word tests*: "the 32-bit word at
   virtual offset OFF, ANDed with MASK, equals VALUE".  The result is an
   expression tree whose leaves are word tests.

2. **Code generation.**  The trees of all patterns are turned into one decision
   graph, continuation style: a leaf becomes a step whose yes/no branches lead to
   whatever follows success and failure of that leaf.  Negation swaps the two
   continuations; a negation that comes from an operator such as ``!=`` also
   flips the step's *short* flag, so that a packet too short for the test keeps
   failing (``tcp port != 80`` does not match a packet without ports, while
   ``not tcp port 80`` does).  A pattern that compiles to no test at all (say
   ``ip proto transp``) drops every packet that reaches it, as in Click.

3. **Optimization.**  Steps with empty masks are removed; every branch is then
   threaded past steps whose outcome is already known along that branch.  The
   knowledge at a step is kept as a few alternative sets of facts (one per
   group of incoming paths), so a step can be skipped even when it is reached
   in different ways, as long as every way leads to the same place.  Facts
   record the bytes each earlier test proved and how much of the packet is known
   to exist, so tests are never skipped when a short packet could behave
   differently.  Identical steps are merged and unreachable ones dropped.

The final program runs in one numba kernel per batch
(:func:`clickos.packet.filterkernels.ipfilter_match`), which yields an output
port per packet; the batch is then split by port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clickos.core.confparse import (
    ICMP_TYPES,
    IP_PROTOCOLS,
    KNOWN_PORTS,
    _ask,
    _system_port,
    _system_protocol,
    join_args,
    parse_ether_address,
    parse_int,
    parse_ip_address,
    parse_ip_prefix,
    parse_unsigned,
    split_args,
    unquote,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM
from clickos.packet.batch import PacketBatch

# -- constants (the numbering follows Click's, since field types encode positions) --------

TYPE_NONE, TYPE_TYPE, TYPE_SYNTAX, TYPE_INT = 0, 1, 2, 3
TYPE_HOST, TYPE_PROTO, TYPE_IPFRAG, TYPE_PORT, TYPE_TCPOPT, TYPE_ETHER = 10, 11, 12, 13, 14, 15
TYPE_NET, TYPE_IPUNFRAG, TYPE_IPECT, TYPE_IPCE = 30, 31, 32, 33
TYPE_FIELD = 0x40000000
PROTO_SHIFT, OFFSET_SHIFT = 21, 5
PROTO_MASK = 0x1FF << PROTO_SHIFT
OFFSET_MASK = 0xFFFF << OFFSET_SHIFT
LENGTH_MASK = 0x1F


def _field(proto: int, bit_offset: int, nbits: int) -> int:
    return TYPE_FIELD | (proto << PROTO_SHIFT) | (bit_offset << OFFSET_SHIFT) | (nbits - 1)


FIELD_CSUM = _field(0, 80, 16)
FIELD_IPLEN = _field(0, 16, 16)
FIELD_ID = _field(0, 32, 16)
FIELD_VERSION = _field(0, 0, 4)
FIELD_HL = _field(0, 4, 4)
FIELD_TOS = _field(0, 8, 8)
FIELD_DSCP = _field(0, 8, 6)
FIELD_TTL = _field(0, 64, 8)
FIELD_TCP_WIN = _field(6, 112, 16)
FIELD_ICMP_TYPE = _field(1, 0, 8)

UNKNOWN = -1000
SD_SRC, SD_DST, SD_AND, SD_OR = 1, 2, 3, 4
OP_EQ, OP_GT, OP_LT = 0, 1, 2
IP_PROTO_ICMP, IP_PROTO_IGMP, IP_PROTO_IPIP, IP_PROTO_TCP, IP_PROTO_UDP = 1, 2, 4, 6, 17
IP_PROTO_DCCP, IP_PROTO_TCP_OR_UDP, IP_PROTO_TRANSP = 33, 256, 258

OFFSET_MAC, OFFSET_NET, OFFSET_TRANSP = 0, 256, 512

#: Jump target meaning "drop the packet" (Click's j_never).
J_DROP = -2147483647
DROP_OUTPUT = 2147483647

_TYPE_WORDS: dict[str, int] = {
    "ce": TYPE_IPCE, "dest": TYPE_SYNTAX, "dscp": FIELD_DSCP, "dst": TYPE_SYNTAX,
    "ect": TYPE_IPECT, "ether": TYPE_SYNTAX, "frag": TYPE_IPFRAG, "hl": FIELD_HL,
    "host": TYPE_HOST, "id": FIELD_ID, "ip": TYPE_SYNTAX, "len": FIELD_IPLEN, "net": TYPE_NET,
    "not": TYPE_SYNTAX, "opt": TYPE_TCPOPT, "port": TYPE_PORT, "proto": TYPE_PROTO,
    "src": TYPE_SYNTAX, "tos": FIELD_TOS, "ttl": FIELD_TTL, "type": FIELD_ICMP_TYPE,
    "unfrag": TYPE_IPUNFRAG, "vers": FIELD_VERSION, "win": FIELD_TCP_WIN,
}

_TCP_FLAGS: dict[str, int] = {"ack": 0x10, "fin": 0x01, "psh": 0x08, "rst": 0x04, "syn": 0x02, "urg": 0x20}

# what each name database means as a data type (protocol, TCP port, UDP port, TCP option,
# ICMP type)
_DB_TYPES = (TYPE_PROTO, TYPE_PORT, TYPE_PORT, TYPE_TCPOPT, FIELD_ICMP_TYPE)


class _FilterError(Exception):
    """Internal: a parse problem already reported."""


# -- words ----------------------------------------------------------------------------------

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./@_:")


def split_filter_words(text: str) -> list[str]:
    """Split a pattern into words: runs of letters, digits and ``-./@_:``; the
    operators ``&& || == != <= >=``; and single punctuation characters.  Trailing
    white space yields a final empty word, as in Click."""
    words: list[str] = []
    n = len(text)
    i = 0
    while i < n:
        while i < n and text[i] in " \t\n\r\v\f":
            i += 1
        if i >= n:
            words.append("")
            break
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c in "&|" and nxt == c:
            words.append(c * 2)
            i += 2
        elif c in "<>!=" and nxt == "=":
            words.append(c + "=")
            i += 2
        elif c in "&|<>!=()[],;?":
            words.append(c)
            i += 1
        else:
            j = i
            while j < n and text[j] in _WORD_CHARS:
                j += 1
            if j == i:
                j += 1
            words.append(text[i:j])
            i = j
    return words


def _unparse_transp_proto(proto: int) -> str:
    names = {UNKNOWN: "", IP_PROTO_ICMP: "icmp", IP_PROTO_IGMP: "igmp", IP_PROTO_IPIP: "ipip",
             IP_PROTO_TCP: "tcp", IP_PROTO_UDP: "udp", IP_PROTO_TCP_OR_UDP: "tcpudp",
             IP_PROTO_TRANSP: "transp"}
    return names.get(proto, f"ip proto {proto}")


def _unparse_type(srcdst: int, typ: int) -> str:
    out = {SD_SRC: "src ", SD_DST: "dst ", SD_OR: "src or dst ", SD_AND: "src and dst "}.get(srcdst, "")
    simple = {TYPE_NONE: "<none>", TYPE_HOST: "ip host", TYPE_PROTO: "proto", TYPE_ETHER: "ether host",
              TYPE_IPFRAG: "ip frag", TYPE_PORT: "port", TYPE_TCPOPT: "tcp opt", TYPE_NET: "ip net",
              TYPE_IPUNFRAG: "ip unfrag", TYPE_IPECT: "ip ect", TYPE_IPCE: "ip ce"}
    fields = {FIELD_IPLEN: "ip len", FIELD_ID: "ip id", FIELD_VERSION: "ip vers", FIELD_HL: "ip hl",
              FIELD_TOS: "ip tos", FIELD_DSCP: "ip dscp", FIELD_TTL: "ip ttl", FIELD_TCP_WIN: "tcp win",
              FIELD_ICMP_TYPE: "icmp type"}
    if typ in simple:
        return out + simple[typ]
    if typ & TYPE_FIELD:
        if typ in fields:
            return out + fields[typ]
        proto = (typ & PROTO_MASK) >> PROTO_SHIFT
        return out + (_unparse_transp_proto(proto) if proto else "ip") + "[...]"
    return out + f"<unknown type {typ}>"


def _unparse_word(typ: int, proto: int, word: str) -> str:
    tn = _unparse_type(0, typ)
    tr = _unparse_transp_proto(proto)
    if tn:
        tn += " "
    if tr or (word and tn):
        tr += " "
    return tn + tr + word


def _bit_length32(x: int) -> int:
    return (x & 0xFFFFFFFF).bit_length()


def _bswap32(x: int) -> int:
    return int.from_bytes((x & 0xFFFFFFFF).to_bytes(4, "little"), "big")


# -- expression trees -----------------------------------------------------------------------
# Nodes: ("test", offset, value, mask) | ("and", [..]) | ("or", [..]) | ("tern", [..])
#        | ("not", node, flip_short).  None is an empty subtree (no tests): combiners
#        leave empty children out, as Click does.

Node = tuple


def _test(offset: int, value: int, mask: int) -> Node:
    return ("test", offset, value & mask & 0xFFFFFFFF, mask & 0xFFFFFFFF)


def _combine(kind: str, children: list[Node | None]) -> Node | None:
    kids = [c for c in children if c is not None]
    if not kids:
        return None
    if len(kids) == 1 and kind != "tern":
        return kids[0]
    return (kind, kids)


def _negate(node: Node | None, flip_short: bool = False) -> Node | None:
    return None if node is None else ("not", node, flip_short)


# -- primitives -----------------------------------------------------------------------------

@dataclass
class _Prim:
    """One primitive test while it is being parsed and checked."""

    type: int = 0
    data: int = 0
    op: int = OP_EQ
    op_negated: bool = False
    srcdst: int = 0
    transp_proto: int = UNKNOWN
    u: int = 0                      # numeric value (uint32)
    addr: bytes = b""               # IP (4) or Ethernet (6) address
    mask: int = 0                   # numeric mask, or big-endian IP mask for hosts
    mask_addr: bytes = b""          # Ethernet mask

    def describe(self) -> str:
        return _unparse_type(self.srcdst, self.type)

    def op_text(self) -> str:
        if self.op == OP_GT:
            return "<=" if self.op_negated else ">"
        if self.op == OP_LT:
            return ">=" if self.op_negated else "<"
        return "!=" if self.op_negated else "="


@dataclass
class _Mask:
    kind: int = 0          # 0, TYPE_INT, TYPE_HOST or TYPE_ETHER
    value: int = 0
    addr: bytes = b""


class _PatternParser:
    """Parses one pattern's words into an expression tree, reporting errors through
    ``report(kind, message)``."""

    def __init__(self, words: list[str], owner: _ProgramBuilder) -> None:
        self.words = words
        self.b = owner
        self.prev = _Prim()

    # -- errors --------------------------------------------------------------------------
    def error(self, msg: str) -> None:
        self.b.report_error(msg)

    def warning(self, msg: str) -> None:
        self.b.report_warning(msg)

    def at(self, pos: int) -> str:
        return self.words[pos] if 0 <= pos < len(self.words) else ""

    # -- grammar -------------------------------------------------------------------------
    def parse_expr(self, pos: int, depth: int = 0) -> tuple[int, Node | None]:
        if depth > 200:
            self.error("expression too deeply nested")
            raise _FilterError
        parts: list[Node | None] = []
        pos, node = self.parse_orexpr(pos, depth)
        parts.append(node)
        while pos < len(self.words) and self.words[pos] == "?":
            pos += 1
            start = pos
            pos, node = self.parse_expr(pos, depth + 1)
            parts.append(node)
            if pos == start or pos >= len(self.words) or self.words[pos] != ":":
                self.error("missing ':' in ternary expression")
                break
            pos += 1
            pos, node = self.parse_orexpr(pos, depth)
            parts.append(node)
        return pos, _combine("tern", parts)

    def parse_orexpr(self, pos: int, depth: int) -> tuple[int, Node | None]:
        parts: list[Node | None] = []
        pos, node = self.parse_term(pos, depth)
        parts.append(node)
        while pos < len(self.words) and self.words[pos] in ("or", "||"):
            pos += 1
            pos, node = self.parse_term(pos, depth)
            parts.append(node)
        return pos, _combine("or", parts)

    def parse_term(self, pos: int, depth: int) -> tuple[int, Node | None]:
        parts: list[Node | None] = []
        explicit = True
        while True:
            start = pos
            pos, node = self.parse_factor(pos, False, depth)
            if pos == start:
                if explicit:
                    self.error("missing expression")
                break
            parts.append(node)
            if pos < len(self.words) and self.words[pos] in ("and", "&&"):
                pos += 1
                explicit = True
            else:
                explicit = False
        return pos, _combine("and", parts)

    def parse_factor(self, pos: int, negated: bool, depth: int) -> tuple[int, Node | None]:
        w = self.at(pos) if pos < len(self.words) else None
        if w in ("not", "!"):
            pos += 1
            start = pos
            pos, node = self.parse_factor(pos, not negated, depth + 1)
            if pos == start:
                self.error(f"missing expression after '{w}'")
            return pos, node
        if w == "(":
            pos += 1
            start = pos
            pos, node = self.parse_expr(pos, depth + 1)
            if pos == start:
                self.error("missing expression after '('")
            if pos < len(self.words) and self.words[pos] == ")":
                pos += 1
            elif pos != start:
                self.error("missing ')'")
            return pos, (_negate(node) if negated else node)
        return self.parse_test(pos, negated)

    # -- primitives ----------------------------------------------------------------------
    def parse_test(self, pos: int, negated: bool) -> tuple[int, Node | None]:
        words = self.words
        if pos >= len(words):
            return pos, None
        first = words[pos]
        if first in (")", "||", "or", "?", ":"):
            return pos, None
        if first == "true":
            node = _test(0, 0, 0)
            return pos + 1, (_negate(node) if negated else node)
        if first == "false":
            node = _test(0, 0, 0)
            return pos + 1, (node if negated else _negate(node))

        first_pos = pos
        prim = _Prim()
        header = ""
        while pos < len(words):
            wd = words[pos]
            wt, wdata = self.b.lookup(wd, 0, UNKNOWN, report=False)
            if wt == TYPE_TYPE:
                self.set_type(prim, wdata)
                if (wdata & TYPE_FIELD) and (wdata & PROTO_MASK):
                    self.set_transp_proto(prim, (wdata & PROTO_MASK) >> PROTO_SHIFT)
            elif wt == TYPE_PROTO:
                self.set_transp_proto(prim, wdata)
            elif wt != -1:
                break
            elif wd == "src":
                if pos < len(words) - 2 and words[pos + 2] in ("dst", "dest"):
                    if words[pos + 1] in ("and", "&&"):
                        self.set_srcdst(prim, SD_AND)
                        pos += 2
                    elif words[pos + 1] in ("or", "||"):
                        self.set_srcdst(prim, SD_OR)
                        pos += 2
                    else:
                        self.set_srcdst(prim, SD_SRC)
                else:
                    self.set_srcdst(prim, SD_SRC)
            elif wd in ("dst", "dest"):
                self.set_srcdst(prim, SD_DST)
            elif wd in ("ip", "ether"):
                if header:
                    break
                header = wd[0]
            elif wd in ("not", "!"):
                negated = not negated
            else:
                break
            pos += 1

        if pos != first_pos:
            self.prev = _Prim()
        if self.prev.data == TYPE_ETHER:
            header = "e"

        def peek(p: int) -> str:
            return "" if p >= len(words) - 1 else words[p]

        wd = peek(pos)
        if wd == "[" and pos > first_pos and prim.type == TYPE_NONE:
            pos = self.parse_brackets(prim, pos)
            wd = peek(pos)

        mask = _Mask()
        if wd == "&" and pos < len(words) - 1:
            mtext = words[pos + 1]
            try:
                mask = _Mask(TYPE_INT, parse_unsigned(mtext))
            except ConfigError:
                if header != "e":
                    try:
                        mask = _Mask(TYPE_HOST, int.from_bytes(self.b.ip(mtext), "big"))
                    except ConfigError:
                        pass
                if not mask.kind and header != "i":
                    try:
                        mask = _Mask(TYPE_ETHER, 0, self.b.ether(mtext))
                    except ConfigError:
                        pass
            if mask.kind:
                pos += 2
            if mask.kind and mask.kind != TYPE_ETHER and not mask.value:
                self.error("zero mask ignored")
                mask = _Mask()
            wd = peek(pos)

        pos += 1
        if wd in ("=", "=="):
            pass
        elif wd == "!=":
            prim.op_negated = True
        elif wd == ">":
            prim.op = OP_GT
        elif wd == "<":
            prim.op = OP_LT
        elif wd == ">=":
            prim.op = OP_LT
            prim.op_negated = True
        elif wd == "<=":
            prim.op = OP_GT
            prim.op_negated = True
        else:
            pos -= 1

        if pos < len(words):
            wd = words[pos]
            wt, wdata = self.b.lookup(wd, prim.type, prim.transp_proto, report=True)
            pos += 1
            if wt == -2:
                prim.type = -2
            elif wt not in (-1, TYPE_TYPE):
                prim.data = wt
                prim.u = wdata & 0xFFFFFFFF
            else:
                ival = self.b.int_value(wd)
                if ival is not None:
                    prim.data = TYPE_INT
                    prim.u = ival & 0xFFFFFFFF
                else:
                    self.parse_address_data(prim, wd, header, pos)
                    if prim.data == -1:
                        prim.data = TYPE_NONE
                        if prim.op != OP_EQ or prim.op_negated:
                            self.error(f"dangling operator near '{wd}'")
                        pos -= 1
                    elif prim.data == -2:  # "ADDR mask MASK" consumed two more words
                        prim.data = TYPE_NET
                        pos += 2

        if pos == first_pos:
            self.error(f"empty term near '{wd}'")
            return pos, None

        if not self.check(prim, header, mask):
            return pos, None
        node = self.compile(prim)
        self.prev = prim
        return pos, (_negate(node) if negated else node)

    def parse_address_data(self, prim: _Prim, wd: str, header: str, pos: int) -> None:
        """Address-valued data; sets ``prim.data`` to -1 if ``wd`` is no address."""
        words = self.words
        b = self.b
        if header != "e":
            try:
                prim.addr = b.ip(wd)
            except ConfigError:
                prim.addr = b""
            if prim.addr:
                if pos < len(words) - 1 and words[pos] == "mask":
                    try:
                        prim.mask = int.from_bytes(b.ip(words[pos + 1]), "big")
                        prim.data = -2
                        return
                    except ConfigError:
                        pass
                if prim.type == TYPE_NET:
                    try:
                        a, m = b.prefix_of(wd)
                        prim.addr, prim.mask = a, int.from_bytes(m, "big")
                        prim.data = TYPE_NET
                        return
                    except ConfigError:
                        pass
                prim.data = TYPE_HOST
                return
            try:
                a, m = b.prefix_of(wd)
                prim.addr, prim.mask = a, int.from_bytes(m, "big")
                prim.data = TYPE_NET
                return
            except ConfigError:
                pass
        if header != "i":
            try:
                prim.addr = b.ether(wd)
                prim.data = TYPE_ETHER
                return
            except ConfigError:
                pass
        prim.data = -1

    def parse_brackets(self, prim: _Prim, pos: int) -> int:
        words = self.words
        first_pos = pos + 1
        pos += 1
        combo = ""
        while pos < len(words) and words[pos] != "]":
            combo += words[pos]
            pos += 1
        if pos >= len(words):
            self.error("missing ']'")
            return first_pos
        pos += 1
        fieldpos: int | None = None
        length: int | None = 1
        colon = combo.find(":")
        comma = combo.find(",")
        b = self.b
        if 0 <= colon < len(combo) - 1:
            fieldpos, length = b.int_value(combo[:colon]), b.int_value(combo[colon + 1:])
        elif 0 <= comma < len(combo) - 1:
            fieldpos, end = b.int_value(combo[:comma]), b.int_value(combo[comma + 1:])
            length = None if fieldpos is None or end is None else end - fieldpos + 1
        else:
            fieldpos = b.int_value(combo)
        if fieldpos is None or length is None:
            self.error("syntax error after '[', expected '[POS]' or '[POS:LEN]'")
            return pos
        fbits, lbits = fieldpos * 8, length * 8
        if lbits < 1 or lbits > 32:
            self.error("LEN in '[POS:LEN]' out of range, should be between 1 and 4")
        elif (fbits & ~31) != ((fbits + lbits - 1) & ~31):
            self.error(f"field [{fieldpos}:{length}] does not fit in a single word")
        elif fbits < 0 or fbits > 0xFFFF:
            self.error("syntax error after '[', expected '[POS]' or '[POS:LEN]'")
        else:
            transp = 0 if prim.transp_proto == UNKNOWN else prim.transp_proto
            self.set_type(prim, TYPE_FIELD | ((transp & 0x1FF) << PROTO_SHIFT)
                          | (fbits << OFFSET_SHIFT) | (lbits - 1))
        return pos

    def set_type(self, prim: _Prim, t: int) -> None:
        if prim.type:
            self.error("type specified twice")
        prim.type = t

    def set_srcdst(self, prim: _Prim, sd: int) -> None:
        if prim.srcdst:
            self.error("'src' or 'dst' specified twice")
        prim.srcdst = sd

    def set_transp_proto(self, prim: _Prim, proto: int) -> None:
        if prim.transp_proto != UNKNOWN and prim.transp_proto != proto:
            self.error("transport protocol specified twice")
        prim.transp_proto = proto

    # -- checking ------------------------------------------------------------------------
    def set_mask(self, prim: _Prim, full: int, shift: int, provided: int) -> bool:
        data = prim.u & 0xFFFFFFFF
        this_mask = provided if provided else full
        if (this_mask & full) != this_mask:
            self.error(f"'{prim.describe()}': mask out of range, bound 0x{full:X}")
            return False
        if prim.op in (OP_GT, OP_LT):
            if (prim.op == OP_LT and (data == 0 or data > this_mask)) or (prim.op == OP_GT and data >= this_mask):
                will_be = (not prim.op_negated) if (prim.op == OP_LT and data > this_mask) else prim.op_negated
                self.warning(f"relation '{prim.op_text()} {data}' is always {'true' if will_be else 'false'} "
                             f"(range 0-{this_mask})")
                prim.u = prim.mask = 0
                prim.op_negated = not will_be
                prim.op = OP_EQ
                return True
            if prim.op == OP_LT:
                prim.u = (prim.u - 1) & 0xFFFFFFFF
                prim.op_negated = not prim.op_negated
                prim.op = OP_GT
            low = (1 << shift) - 1
            prim.u = ((prim.u << shift) | low) & 0xFFFFFFFF
            prim.mask = ((this_mask << shift) | low) & 0xFFFFFFFF
            if (prim.u & prim.mask) != prim.u:
                full_u = ((full << shift) | low) & 0xFFFFFFFF
                missing = (prim.u & prim.mask) ^ (prim.u & full_u)
                add = 0xFFFFFFFF >> (33 - _bit_length32(missing)) if missing else 0xFFFFFFFF
                prim.u = (prim.u | add) & prim.mask
            return True
        if data > full:
            self.error(f"'{prim.describe()}': out of range, bound {full}")
            return False
        prim.u = (data << shift) & 0xFFFFFFFF
        prim.mask = (this_mask << shift) & 0xFFFFFFFF
        return True

    def type_error(self, prim: _Prim, msg: str) -> bool:
        self.error(f"'{prim.describe()}': {msg}")
        return False

    def check(self, prim: _Prim, header: str, mask: _Mask) -> bool:
        prev = self.prev
        old_srcdst = prim.srcdst
        if prim.type < 0:
            return False
        if not prim.type:
            while True:
                d = prim.data
                if d in (TYPE_HOST, TYPE_NET, TYPE_TCPOPT, TYPE_ETHER):
                    prim.type = d
                    if not prim.srcdst:
                        prim.srcdst = prev.srcdst
                elif d == TYPE_PROTO:
                    prim.type = TYPE_PROTO
                elif d == TYPE_PORT:
                    prim.type = TYPE_PORT
                    if not prim.srcdst:
                        prim.srcdst = prev.srcdst
                    if prim.transp_proto == UNKNOWN:
                        prim.transp_proto = prev.transp_proto
                elif d == TYPE_INT:
                    if not (prev.type & TYPE_FIELD) and prev.type not in (TYPE_PROTO, TYPE_PORT):
                        self.error("specify header field or 'port'")
                        return False
                    prim.data = prev.type
                    continue
                elif d == TYPE_NONE:
                    if prim.transp_proto != UNKNOWN:
                        prim.type = TYPE_PROTO
                    else:
                        self.error("partial directive")
                        return False
                elif d & TYPE_FIELD:
                    prim.type = d
                    if (d & PROTO_MASK) and prim.transp_proto == UNKNOWN:
                        prim.transp_proto = (d & PROTO_MASK) >> PROTO_SHIFT
                else:
                    self.error(f"unknown type '{_unparse_type(0, d)}'")
                    return False
                break

        if not header:
            header = "e" if prim.data == TYPE_ETHER else "i"
        if header == "e" and prim.type == TYPE_HOST:
            prim.type = TYPE_ETHER

        t = prim.type
        if t in (TYPE_HOST, TYPE_NET):
            if header != "i" or prim.data != t:
                return self.type_error(prim, "address missing")
            if prim.op != OP_EQ:
                return self.type_error(prim, "operator not supported")
            if t == TYPE_HOST:
                prim.mask = 0xFFFFFFFF
            prim.type = TYPE_HOST
            if mask.kind and mask.kind not in (TYPE_INT, TYPE_HOST):
                return self.type_error(prim, "bad mask")
            if mask.kind == TYPE_INT:
                prim.mask = _bswap32(mask.value)   # an integer mask is taken in host byte order
            elif mask.kind == TYPE_HOST:
                prim.mask = mask.value
        elif t == TYPE_ETHER:
            if header != "e" or prim.data != TYPE_ETHER:
                return self.type_error(prim, "address missing")
            if prim.op != OP_EQ:
                return self.type_error(prim, "operator not supported")
            prim.mask_addr = b"\xff" * 6
            if mask.kind and mask.kind != TYPE_ETHER:
                return self.type_error(prim, "bad mask")
            if mask.kind:
                prim.mask_addr = mask.addr
        elif t == TYPE_PROTO:
            if header != "i":
                return self.type_error(prim, "ip only")
            if prim.data in (TYPE_INT, TYPE_PROTO):
                if prim.transp_proto != UNKNOWN and prim.transp_proto != _s32(prim.u):
                    return self.type_error(prim, "specified twice")
                prim.data = TYPE_NONE
            else:
                prim.u = prim.transp_proto & 0xFFFFFFFF
            prim.transp_proto = UNKNOWN
            if prim.data != TYPE_NONE or _s32(prim.u) == UNKNOWN:
                return self.type_error(prim, "value missing")
            if _s32(prim.u) >= 256:
                if prim.op != OP_EQ or mask.kind:
                    self.error(f"'{_unparse_transp_proto(_s32(prim.u))}': operator or mask not supported")
                    return False
                prim.mask = 0xFF
            elif mask.kind and mask.kind != TYPE_INT:
                return self.type_error(prim, "bad mask")
            elif not self.set_mask(prim, 0xFF, 0, mask.value if mask.kind else 0):
                return False
            if prim.op == OP_EQ and prim.mask == 0xFF and not prim.op_negated:
                prim.transp_proto = _s32(prim.u)
        elif t == TYPE_PORT:
            if header != "i":
                return self.type_error(prim, "ip only")
            if prim.data == TYPE_INT:
                prim.data = TYPE_PORT
            if prim.data != TYPE_PORT:
                return self.type_error(prim, "value missing")
            if prim.transp_proto == UNKNOWN:
                prim.transp_proto = IP_PROTO_TCP_OR_UDP
            elif prim.transp_proto not in (IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_TCP_OR_UDP, IP_PROTO_DCCP):
                self.error(f"'port': bad protocol {prim.transp_proto}")
                return False
            elif mask.kind and mask.kind != TYPE_INT:
                return self.type_error(prim, "bad mask")
            if not self.set_mask(prim, 0xFFFF, 0, mask.value if mask.kind else 0):
                return False
        elif t == TYPE_TCPOPT:
            if header != "i":
                return self.type_error(prim, "ip only")
            if prim.data == TYPE_INT:
                prim.data = TYPE_TCPOPT
            if prim.data != TYPE_TCPOPT:
                return self.type_error(prim, "value missing")
            if prim.transp_proto == UNKNOWN:
                prim.transp_proto = IP_PROTO_TCP
            elif prim.transp_proto != IP_PROTO_TCP:
                self.error(f"'tcp opt': bad protocol {prim.transp_proto}")
                return False
            if prim.op != OP_EQ or prim.op_negated or mask.kind:
                return self.type_error(prim, "operator or mask not supported")
            if _s32(prim.u) < 0 or _s32(prim.u) > 255:
                self.error(f"'tcp opt': value {_s32(prim.u)} out of range")
                return False
            prim.mask = prim.u
        elif t == TYPE_IPECT:
            if header != "i":
                return self.type_error(prim, "ip only")
            if prim.data not in (TYPE_NONE, TYPE_INT):
                return self.type_error(prim, "value missing")
            if prim.data == TYPE_NONE:
                prim.mask = 3
                prim.u = 0
                prim.op_negated = True
            elif mask.kind and mask.kind != TYPE_INT:
                return self.type_error(prim, "bad mask")
            if not self.set_mask(prim, 0x3, 0, mask.value if mask.kind else 0):
                return False
            prim.type = FIELD_TOS
        elif t == TYPE_IPCE:
            if header != "i":
                return self.type_error(prim, "ip only")
            if prim.data != TYPE_NONE or mask.kind:
                return self.type_error(prim, "value not supported")
            prim.mask = 3
            prim.u = 3
            prim.type = FIELD_TOS
        elif t in (TYPE_IPFRAG, TYPE_IPUNFRAG):
            if header != "i":
                return self.type_error(prim, "ip only")
            if prim.data != TYPE_NONE or mask.kind:
                return self.type_error(prim, "value not supported")
            if t == TYPE_IPUNFRAG:
                prim.op_negated = True
                prim.type = TYPE_IPFRAG
            prim.mask = 1
        elif t & TYPE_FIELD:
            if header != "i":
                return self.type_error(prim, "ip only")
            if prim.data != TYPE_INT and prim.data != t:
                return self.type_error(prim, "value missing")
            if mask.kind and mask.kind not in (TYPE_INT, t):
                return self.type_error(prim, "bad mask")
            nbits = (t & LENGTH_MASK) + 1
            xmask = 0xFFFFFFFF if nbits == 32 else (1 << nbits) - 1
            if not self.set_mask(prim, xmask, 0, mask.value if mask.kind else 0):
                return False

        if prim.type in (TYPE_HOST, TYPE_PORT, TYPE_ETHER):
            if prim.srcdst == 0:
                prim.srcdst = SD_OR
        elif old_srcdst:
            self.warning(f"'{prim.describe()}': 'src' or 'dst' ignored")
        return True

    # -- compiling -------------------------------------------------------------------------
    @staticmethod
    def compare(prim: _Prim, offset: int, shift: int, op_negate: bool, u: int | None = None,
                mask: int | None = None) -> Node | None:
        """The tests for ``(word >> shift) & mask  OP  u`` (EQ or GT)."""
        m = prim.mask if mask is None else mask
        v = (prim.u if u is None else u) & m
        if prim.op == OP_EQ:
            node: Node | None = _test(offset, v << shift, m << shift)
            if prim.op_negated and op_negate:
                node = _negate(node, True)
            return node
        # Greater-than, a bit range at a time: while the top bit of the value is 0,
        # "some higher masked bit is set" wins outright (OR); while it is 1, those bits
        # must all be set (AND) before lower bits decide.
        steps: list[tuple[Node | None, bool]] = []
        while v < m:
            high = v > (m >> 1)
            x = (~(v + 1) & m) if high else v
            fdb = _bit_length32(x) if x else 33
            if fdb == 33:
                upper = m
            else:
                upper = m & ~((1 << (fdb % 32)) - 1) & 0xFFFFFFFF
            upper_u = upper if high else 0
            t: Node | None = _test(offset, upper_u << shift, upper << shift)
            if not high:
                t = _negate(t, True)
            steps.append((t, high))
            m &= ~upper
            v &= m
        if not steps:
            node = None
        else:
            node = steps[-1][0]
            for t, high in reversed(steps[:-1]):
                node = _combine("and" if high else "or", [t, node])
        if prim.op_negated and op_negate:
            node = _negate(node, True)
        return node

    def compile(self, prim: _Prim) -> Node | None:
        parts: list[Node | None] = []
        tp = prim.transp_proto
        if tp != UNKNOWN:
            if tp == IP_PROTO_TCP_OR_UDP:
                parts.append(_combine("or", [_test(OFFSET_NET + 8, IP_PROTO_TCP << 16, 0xFF0000),
                                             _test(OFFSET_NET + 8, IP_PROTO_UDP << 16, 0xFF0000)]))
            elif tp < 256:
                parts.append(_test(OFFSET_NET + 8, (tp & 0xFF) << 16, 0xFF0000))
        t = prim.type
        if t in (TYPE_PORT, TYPE_TCPOPT) or ((t & TYPE_FIELD) and (t & PROTO_MASK)):
            parts.append(_test(OFFSET_NET + 4, 0, 0x1FFF))

        def srcdst(src: Node | None, dst: Node | None) -> Node | None:
            chosen: list[Node | None] = []
            if prim.srcdst in (SD_SRC, SD_AND, SD_OR):
                chosen.append(src)
            if prim.srcdst in (SD_DST, SD_AND, SD_OR):
                chosen.append(dst)
            node = _combine("or" if prim.srcdst == SD_OR else "and", chosen)
            return _negate(node, True) if prim.op_negated else node

        if t == TYPE_HOST:
            a = int.from_bytes(prim.addr, "big")
            parts.append(srcdst(_test(OFFSET_NET + 12, a, prim.mask), _test(OFFSET_NET + 16, a, prim.mask)))
        elif t == TYPE_ETHER:
            a, m = prim.addr + b"\0\0", prim.mask_addr + b"\0\0"

            def be(bs: bytes) -> int:
                return int.from_bytes(bs, "big")

            src = _combine("and", [_test(OFFSET_MAC + 8, be(a[0:4]), be(m[0:4])),
                                   _test(OFFSET_MAC + 12, be(a[4:6] + b"\0\0"), be(m[4:6] + b"\0\0"))])
            dst = _combine("and", [_test(OFFSET_MAC, be(b"\0\0" + a[0:2]), be(b"\0\0" + m[0:2])),
                                   _test(OFFSET_MAC + 4, be(a[2:6]), be(m[2:6]))])
            parts.append(srcdst(src, dst))
        elif t == TYPE_PROTO:
            if prim.transp_proto < 256:
                parts.append(self.compare(prim, OFFSET_NET + 8, 16, True))
        elif t == TYPE_IPFRAG:
            node: Node | None = _test(OFFSET_NET + 4, 0, 0x3FFF)
            if not prim.op_negated:
                node = _negate(node, True)
            parts.append(node)
        elif t == TYPE_PORT:
            parts.append(srcdst(self.compare(prim, OFFSET_TRANSP, 16, False),
                                self.compare(prim, OFFSET_TRANSP, 0, False)))
        elif t == TYPE_TCPOPT:
            parts.append(_test(OFFSET_TRANSP + 12, prim.u << 16, prim.mask << 16))
        elif t & TYPE_FIELD:
            bit_off = (t & OFFSET_MASK) >> OFFSET_SHIFT
            nbits = (t & LENGTH_MASK) + 1
            word_off = (bit_off >> 3) & ~3
            base = OFFSET_TRANSP if t & PROTO_MASK else OFFSET_NET
            parts.append(self.compare(prim, base + word_off, 32 - ((bit_off & 0x1F) + nbits), True))
        return _combine("and", parts)


def _s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


# -- decision graphs ------------------------------------------------------------------------

@dataclass
class Step:
    """One decision step: ``(word at offset) & mask == value``, with jump targets.

    Targets > 0 name steps; targets <= 0 are outputs ``-target``; ``J_DROP`` drops.
    A step whose masked bytes lie past the packet's (virtual) end goes to ``yes``
    if ``short`` is set, else to ``no``.  ``more`` holds further values: the step
    then succeeds if the masked word equals any of them (a compressed chain such
    as ``port 80 or port 443 or ...``).
    """

    offset: int
    mask: int
    value: int
    yes: int
    no: int
    short: bool = False
    more: tuple[int, ...] = ()

    def values(self) -> tuple[int, ...]:
        return (self.value,) + self.more

    def need(self) -> int:
        """Virtual packet length this step needs (0 for an empty mask)."""
        m = self.mask
        if not m:
            return 0
        if m & 0xFF:
            return self.offset + 4
        if m & 0xFF00:
            return self.offset + 3
        if m & 0xFF0000:
            return self.offset + 2
        return self.offset + 1

    def target(self, outcome: bool) -> int:
        return self.yes if outcome else self.no


Fact = tuple[int, int, int, bool, bool, bool]  # offset, mask, value, short, outcome, proven



_MAX_NEGATIVE_FACTS = 24


class _Facts:
    """What is known on one group of paths: test outcomes (oldest first) and a
    guaranteed packet length.  Only the most recent failed tests are remembered,
    which keeps large configurations quick to compile; passed tests (protocols,
    fragment checks...) are all kept."""

    __slots__ = ("facts", "known")

    def __init__(self, facts: tuple[Fact, ...], known: int) -> None:
        self.facts = facts
        self.known = known

    def add(self, s: Step, outcome: bool) -> _Facts:
        # the branch proves the bytes were there unless a short packet could take it too
        proven = s.need() <= self.known or outcome != s.short
        known = max(self.known, s.need()) if proven else self.known
        fact = (s.offset, s.mask, s.value, s.short, outcome, proven)
        facts = self.facts
        if fact in facts:
            return _Facts(facts, known)
        if not outcome and sum(1 for f in facts if not f[4]) >= _MAX_NEGATIVE_FACTS:
            drop = next(i for i, f in enumerate(facts) if not f[4])
            facts = facts[:drop] + facts[drop + 1:]
        return _Facts(facts + (fact,), known)

    def common(self, other: _Facts) -> _Facts:
        theirs = set(other.facts)
        return _Facts(tuple(f for f in self.facts if f in theirs), min(self.known, other.known))

    def decide(self, s: Step) -> bool | None:
        """The outcome of ``s`` if these facts settle it."""
        if not s.mask:
            return True
        sneed = s.need()
        for off, mask, val, short, outcome, proven in reversed(self.facts):
            if off != s.offset:
                continue
            if (mask, val, short) == (s.mask, s.value, s.short):
                return outcome
            implied = _implied(mask, val, outcome, s)
            if implied is None:
                continue
            if proven:
                if sneed <= self.known or implied == s.short:
                    return implied
            elif implied == s.short and _need(off, mask) <= sneed:
                # if the earlier test was short, so is this one (and it takes its
                # short branch, which is the implied outcome anyway)
                return implied
        return None


def _need(offset: int, mask: int) -> int:
    return Step(offset, mask, 0, 0, 0).need()


def _implied(mask: int, val: int, outcome: bool, s: Step) -> bool | None:
    """What "word & mask == val" having been ``outcome`` says about step ``s``."""
    if outcome:
        if (s.mask & ~mask) == 0 and (val & s.mask) == s.value:
            return True
        if (val ^ s.value) & mask & s.mask:
            return False
    else:
        if (mask & ~s.mask) == 0 and (s.value & mask) == val:
            return False
        if mask == s.mask and (mask & (mask - 1)) == 0 and val != s.value:
            return True
    return None


_MAX_ALTERNATIVES = 4
_MAX_FOLLOW = 32


def _merge_alternatives(alts: list[_Facts]) -> list[_Facts]:
    if len(alts) <= _MAX_ALTERNATIVES:
        return alts
    keep = alts[: _MAX_ALTERNATIVES - 1]
    merged = alts[_MAX_ALTERNATIVES - 1]
    for a in alts[_MAX_ALTERNATIVES:]:
        merged = merged.common(a)
    return keep + [merged]


@dataclass
class FilterProgram:
    """A compiled IPFilter program: steps (step 0 is the entry) or one output for all."""

    steps: list[Step] = field(default_factory=list)
    output_everything: int = -1   # >= 0: no tests; every packet goes there (DROP_OUTPUT drops)
    safe_length: int = 0

    def unparse(self) -> str:
        """The listing printed by the ``program`` handler (one line per value of a
        multi-value step, numbered consecutively, as Click lists them)."""
        first = []
        n = 0
        for st in self.steps:
            first.append(n)
            n += 1 + len(st.more)

        def jump(j: int) -> str:
            if j == J_DROP:
                return "[X]"
            if j <= 0:
                return f"[{-j}]"
            return f"step {first[j]}"

        lines = []
        for i, st in enumerate(self.steps):
            vals = st.values()
            for k, v in enumerate(vals):
                num = first[i] + k
                no = f"step {num + 1}" if k + 1 < len(vals) else jump(st.no)
                text = (f"{' ' if num < 10 else ''}{num} {st.offset:3d}/{v:08x}%{st.mask:08x}"
                        f"  yes->{jump(st.yes)}  no->{no}")
                if st.short:
                    text += "  short->yes"
                lines.append(text)
        if not self.steps:
            lines.append(f"all->[{self.output_everything}]")
        lines.append(f"safe length {self.safe_length}")
        lines.append("alignment offset 0")
        return "\n".join(lines) + "\n"

    def array(self) -> np.ndarray:
        """The program as the kernel's int64 table (see
        :func:`clickos.packet.filterkernels.ipfilter_match`): one row per step, then
        the extra values of multi-value steps.  Each test reads only the bytes its
        mask covers (one, two or all four).  A program without steps becomes one
        empty-mask step leading to its output."""
        if not self.steps:
            e = self.output_everything
            j = J_DROP if e == DROP_OUTPUT or e < 0 else -e
            return np.array([[1, 0, 1, 0, j, j, 0, 0, 0, 1, 0]], np.int64)
        rows = []
        extra: list[int] = []
        n = len(self.steps)
        for st in self.steps:
            o, m = st.offset, st.mask
            lanes = [b for b in range(4) if (m >> (24 - 8 * b)) & 0xFF]
            lo, hi = (lanes[0], lanes[-1]) if lanes else (0, 0)
            width = 1 if hi == lo else (2 if hi == lo + 1 else 4)
            if width == 4:
                lo = 0
            shift = 8 * (4 - lo - width)
            fmask = (1 << (8 * width)) - 1
            if o >= OFFSET_TRANSP:
                base, rel = 2, o - OFFSET_TRANSP
            elif o >= OFFSET_NET:
                base, rel = 1, o - OFFSET_NET
            else:
                base, rel = 0, o - 2
            vals = [(v >> shift) & fmask for v in st.values()]
            start = n + len(extra)
            if len(vals) > 1:
                extra.extend(vals)
            rows.append([base, rel + lo, width, st.need(), st.yes, st.no, int(st.short),
                         (m >> shift) & fmask, vals[0], len(vals), start if len(vals) > 1 else 0])
        for v in extra:
            rows.append([v] + [0] * 10)
        return np.array(rows, np.int64)

    def used_outputs(self, noutputs: int) -> list[bool]:
        used = [False] * noutputs
        if 0 <= self.output_everything < noutputs:
            used[self.output_everything] = True
        for s in self.steps:
            for j in (s.yes, s.no):
                if j <= 0 and j != J_DROP and -j < noutputs:
                    used[-j] = True
        return used

    def match_bytes(self, net: bytes, nhl: int | None = None, mac: bytes = b"") -> int:
        """Reference (slow) classification of one packet given by its network bytes;
        returns the output, or -1 for drop.  ``mac`` holds the 14 bytes before the
        network header when Ethernet tests matter."""
        if self.output_everything >= 0:
            return -1 if self.output_everything == DROP_OUTPUT else self.output_everything
        if nhl is None:
            nhl = (net[0] & 15) * 4 if net else 20
        plen = len(net) - nhl + OFFSET_TRANSP if len(net) > nhl else len(net) + OFFSET_NET
        macbuf = mac[-14:].rjust(14, b"\0")

        def byte(o: int) -> int:
            if o >= OFFSET_TRANSP:
                i = nhl + o - OFFSET_TRANSP
                return net[i] if 0 <= i < len(net) else 0
            if o >= OFFSET_NET:
                i = o - OFFSET_NET
                return net[i] if 0 <= i < len(net) else 0
            i = o - 2
            if i < 14:
                return macbuf[i] if i >= 0 else 0
            return net[i - 14] if i - 14 < len(net) else 0

        pos = 0
        while True:
            s = self.steps[pos]
            if s.need() > plen:
                ok = s.short
            else:
                word = (byte(s.offset) << 24) | (byte(s.offset + 1) << 16) | (byte(s.offset + 2) << 8) \
                    | byte(s.offset + 3)
                ok = (word & s.mask) in s.values()
            nxt = s.target(ok)
            if nxt <= 0:
                return -1 if nxt == J_DROP else -nxt
            pos = nxt


class _ProgramBuilder:
    """Turns pattern texts into a FilterProgram, collecting Click's messages."""

    def __init__(self, context: Element | None, errh: ErrorHandler | None) -> None:
        self.context = context
        self.errh = errh
        self.prefix = ""
        self.nerrors = 0
        self.resolver = getattr(context, "resolve_name", None) if context is not None else None

    # -- messages ----------------------------------------------------------------------------
    def report_error(self, msg: str) -> None:
        self.nerrors += 1
        if self.errh is not None:
            self.errh.error(self.prefix + msg)

    def report_warning(self, msg: str) -> None:
        if self.errh is not None:
            self.errh.message(self.prefix + "warning: " + msg)
            self.errh.nwarnings += 1

    # -- values ------------------------------------------------------------------------------
    def ip(self, text: str) -> bytes:
        return parse_ip_address(text, self.resolver)

    def prefix_of(self, text: str) -> tuple[bytes, bytes]:
        return parse_ip_prefix(text, False, self.resolver)

    def ether(self, text: str) -> bytes:
        return parse_ether_address(text, self.resolver)

    @staticmethod
    def int_value(text: str) -> int | None:
        try:
            return parse_int(text)
        except (ConfigError, ValueError):
            return None

    def _query(self, kind: str, name: str, table: dict[str, int] | None = None) -> int | None:
        v = _ask(self.resolver, kind, name)
        if v is None and table is not None:
            v = table.get(name)
        try:
            return None if v is None else int(v)
        except (TypeError, ValueError):
            return None

    def lookup(self, word: str, typ: int, proto: int, report: bool) -> tuple[int, int]:
        """Classify ``word`` as a type keyword or a named value (Click's IPFilter::lookup).

        Returns (-1, 0) if unknown, (-2, 0) after reporting an ambiguous or meaningless
        name, (TYPE_TYPE, type) for keywords, or (data type, value)."""
        if typ in (0, TYPE_TYPE) and word in _TYPE_WORDS:
            t = _TYPE_WORDS[word]
            return (-1, 0) if t == TYPE_SYNTAX else (TYPE_TYPE, t)
        if not word:
            return -1, 0
        vals: list[int | None] = [None] * 5
        v = self._query("ip_proto", word, IP_PROTOCOLS)
        vals[0] = v if v is not None else _system_protocol(word)
        for i, p in ((1, 6), (2, 17)):
            v = self._query(f"port:{p}", word, KNOWN_PORTS)
            vals[i] = v if v is not None else _system_port(word, p)
        vals[3] = self._query("tcp_opt", word, _TCP_FLAGS)
        vals[4] = self._query("icmp_type", word, ICMP_TYPES)
        got = [v is not None for v in vals]
        if not any(got):
            return -1, 0
        tcpish = proto in (UNKNOWN, IP_PROTO_TCP, IP_PROTO_TCP_OR_UDP)
        tgot = [
            got[0] and typ in (0, TYPE_PROTO),
            got[1] and typ in (0, TYPE_PORT) and tcpish,
            got[2] and typ in (0, TYPE_PORT) and proto in (UNKNOWN, IP_PROTO_UDP, IP_PROTO_TCP_OR_UDP),
            got[3] and typ in (0, TYPE_TCPOPT) and tcpish,
            got[4] and typ in (0, FIELD_ICMP_TYPE) and proto in (UNKNOWN, IP_PROTO_ICMP),
        ]
        if tgot[1] and tgot[2] and vals[1] == vals[2]:
            tgot[2] = False
        if sum(tgot) == 1:
            i = tgot.index(True)
            return _DB_TYPES[i], int(vals[i])  # type: ignore[arg-type]
        if report:
            tries = ", ".join(f"'{_unparse_word(_DB_TYPES[i], proto, word)}'" for i in range(5) if got[i])
            what = "ambiguous" if sum(tgot) > 1 else "meaningless"
            self.report_error(f"'{_unparse_word(typ, proto, word)}' is {what}; try {tries}")
        return -2, 0

    # -- whole configurations --------------------------------------------------------------
    def parse_patterns(self, conf: list[str], noutputs: int) -> list[tuple[int, Node | None]]:
        """(output, tree) per pattern; output -1 drops.  Errors are reported."""
        out: list[tuple[int, Node | None]] = []
        for argno, text in enumerate(conf):
            self.prefix = ""
            words = split_filter_words(unquote(text))
            if not words:
                self.report_error(f"empty pattern {argno}")
                continue
            self.prefix = f"pattern {argno}: "
            slot = -1
            w0 = words[0]
            if w0 == "allow":
                slot = 0
                if noutputs == 0:
                    self.report_error("'allow' is meaningless, element has zero outputs")
            elif w0 in ("deny", "drop"):
                pass
            else:
                v = self.int_value(w0)
                if v is None:
                    self.report_error(f"unknown slot ID '{w0}'")
                elif v < 0 or v >= noutputs:
                    self.report_error(f"slot '{v}' out of range")
                else:
                    slot = v
            if len(words) == 1 or (len(words) == 2 and words[1] in ("-", "any", "all")):
                tree: Node | None = _test(0, 0, 0)
            else:
                parser = _PatternParser(words, self)
                try:
                    pos, tree = parser.parse_expr(1)
                    if pos < len(words):
                        self.report_error(f"garbage after expression at '{words[pos]}'")
                except (_FilterError, RecursionError):
                    tree = None
                    if not self.nerrors:
                        self.report_error("expression too complex")
            out.append((slot, tree))
        self.prefix = ""
        return out


def _generate(patterns: list[tuple[int, Node | None]]) -> tuple[list[Step], int]:
    """Code generation: steps (1-based; index 0 unused) and the entry target."""
    steps: list[Step] = [Step(0, 0, 0, 0, 0)]

    def emit(node: Node, yes: int, no: int, flip: bool) -> int:
        kind = node[0]
        if kind == "test":
            steps.append(Step(node[1], node[3], node[2], yes, no, flip))
            return len(steps) - 1
        if kind == "and":
            t = yes
            for child in reversed(node[1]):
                t = emit(child, t, no, flip)
            return t
        if kind == "or":
            t = no
            for child in reversed(node[1]):
                t = emit(child, yes, t, flip)
            return t
        if kind == "not":
            return emit(node[1], no, yes, flip ^ node[2])
        # "tern": c0 ? c1 : (c2 ? c3 : ...); a lone trailing pair acts as "and"
        kids = node[1]
        return emit_tern(kids, yes, no, flip)

    def emit_tern(kids: list[Node], yes: int, no: int, flip: bool) -> int:
        if len(kids) == 1:
            return emit(kids[0], yes, no, flip)
        if len(kids) == 2:
            after = emit(kids[1], yes, no, flip)
            return emit(kids[0], after, no, flip)
        other = emit_tern(kids[2:], yes, no, flip)
        then = emit(kids[1], yes, no, flip)
        return emit(kids[0], then, other, flip)

    nxt = J_DROP
    for slot, tree in reversed(patterns):
        if tree is None:
            nxt = J_DROP
            continue
        nxt = emit(tree, J_DROP if slot < 0 else -slot, nxt, False)
    return steps, nxt


def _single_bit(mask: int) -> bool:
    return mask != 0 and (mask & (mask - 1)) == 0


def _flip(s: Step) -> None:
    """Turn a single-bit test into its complement (same meaning, branches swapped)."""
    s.value ^= s.mask
    s.yes, s.no = s.no, s.yes
    s.short = not s.short


def _compatible(b: Step, a: Step, consider_short: bool) -> bool:
    """Whether some packet can pass both tests (and, with ``consider_short``,
    whether ``b``'s short behaviour can stand in for ``a``'s).  This follows
    Click's rule, including its treatment of short packets, so that programs
    (and thus the outputs of truncated packets) come out the same."""
    if not a.mask or not b.mask:
        return True
    if a.offset != b.offset:
        return False
    if consider_short and a.short != b.short and b.need() < a.need():
        return False
    common = a.mask & b.mask
    return (a.value & common) == (b.value & common)


def _or_pair(a: Step, b: Step) -> bool:
    """``a no-> b`` where the two tests differ in one value bit and agree otherwise:
    together they test the word with that bit ignored."""
    diff = a.value ^ b.value
    if not (a.offset and a.offset == b.offset and a.mask and b.mask == a.mask
            and (a.short or not b.short) and a.yes == b.yes and _single_bit(diff)):
        return False
    merged = Step(a.offset, a.mask & ~diff, a.value & ~diff, 0, 0)
    return merged.need() == a.need()


def _combine_words(steps: list[Step], order: list[int]) -> None:
    """Merge neighbouring tests on the same word, as Click's optimizer does:
    ``A yes-> B`` with a common no branch becomes one test with both masks, and
    ``A no-> B`` testing values one bit apart becomes one test ignoring that bit.
    Single-bit tests are complemented where that lines the branches up."""
    for s in reversed(order):
        a = steps[s]
        for _ in range(64):
            if a.no > 0:
                c = steps[a.no]
                if _compatible(c, a, False) and _single_bit(a.mask):
                    _flip(a)
                elif _or_pair(a, c):
                    bit = a.value ^ c.value
                    a.value &= ~bit
                    a.mask &= ~bit
                    a.no = c.no
                    continue
            if a.yes <= 0:
                break
            b = steps[a.yes]
            if a.no == b.yes and _single_bit(b.mask):
                _flip(b)
            if a.no == b.no and _compatible(b, a, True):
                a.yes = b.yes
                if not a.mask:
                    a.offset = b.offset
                a.value = (a.value & a.mask) | (b.value & b.mask)
                a.mask |= b.mask
                continue
            break


def _sort_key(st: Step) -> tuple[int, int, int]:
    # the IP protocol byte sorts before the fragment field, as in Click
    off = OFFSET_NET + 3 if st.offset == OFFSET_NET + 8 else st.offset
    return (off, st.mask, st.value)


def _bubble_sort(steps: list[Step], nodes: list[int]) -> None:
    """Put chains of tests into a canonical order: where ``A`` branches to ``B``
    (B's only predecessor) and both share their other branch, the two tests form
    an "and" or an "or" and may run in either order; sort them by offset, mask
    and value, as Click does."""
    preds: dict[int, int] = {}
    for i in nodes:
        for j in (steps[i].yes, steps[i].no):
            if j > 0:
                preds[j] = preds.get(j, 0) + 1
    for _ in range(64):
        swapped = False
        for i in nodes:
            a = steps[i]
            if not a.mask:
                continue
            for k in (True, False):
                j = a.target(k)
                if j <= 0 or preds.get(j) != 1:
                    continue
                b = steps[j]
                if not b.mask or a.target(not k) != b.target(not k):
                    continue
                if _sort_key(a) > _sort_key(b):
                    a.offset, b.offset = b.offset, a.offset
                    a.mask, b.mask = b.mask, a.mask
                    a.value, b.value = b.value, a.value
                    a.short, b.short = b.short, a.short
                    swapped = True
                    break
        if not swapped:
            return


def _optimize(steps: list[Step], entry: int, combine: bool = True) -> FilterProgram:
    """Thread branches past decided steps, merge duplicates, drop dead steps.

    With ``combine``, neighbouring tests of one word are merged the way Click merges
    them; like Click's, that merge can change the outcome for packets that end in the
    middle of such a word (they then follow the merged test's short branch)."""
    prog = FilterProgram()
    n = len(steps)
    # creation order puts every step after the steps it jumps to: reverse it to
    # get an order in which jumps only go forward
    order = list(range(n - 1, 0, -1))
    # empty-mask steps and steps whose branches agree are transparent
    resolved: dict[int, int] = {}

    def skip(t: int) -> int:
        seen = 0
        while t > 0 and seen < n:
            r = resolved.get(t)
            if r is not None:
                return r
            st = steps[t]
            if st.mask == 0:
                t = st.yes
            elif st.yes == st.no:
                t = st.yes
            else:
                break
            seen += 1
        return t

    for s in order:
        st = steps[s]
        st.yes, st.no = skip(st.yes), skip(st.no)
    entry = skip(entry)
    if combine:
        _bubble_sort(steps, order)

    incoming: dict[int, list[_Facts]] = {}
    if entry > 0:
        incoming[entry] = [_Facts((), 0)]
    for s in order:
        alts = incoming.get(s)
        if alts is None:
            continue  # unreachable
        alts = _merge_alternatives(alts)
        st = steps[s]
        for outcome in (True, False):
            t0 = st.target(outcome)
            paths: list[list[tuple[int, _Facts]]] = []
            for a in alts:
                if a.decide(st) == (not outcome):
                    continue  # no packet with these facts takes this branch
                f = a.add(st, outcome)
                path = [(t0, f)]
                t = t0
                for _ in range(_MAX_FOLLOW):
                    if t <= 0:
                        break
                    d = f.decide(steps[t])
                    if d is None:
                        break
                    f = f.add(steps[t], d)
                    t = steps[t].target(d)
                    path.append((t, f))
                paths.append(path)
            if not paths:
                continue
            # the furthest node that every path goes through
            where = [{node: f for node, f in p} for p in paths]
            dest = t0
            for node, _ in reversed(paths[0]):
                if all(node in w for w in where[1:]):
                    dest = node
                    break
            if outcome:
                st.yes = dest
            else:
                st.no = dest
            if dest > 0:
                incoming.setdefault(dest, []).extend(w[dest] for w in where)
        if st.yes == st.no:
            # both branches agree: predecessors will still jump here; make it a pass-through
            st.mask = 0
            st.value = 0

    if combine:
        _combine_words(steps, order)

    # Final clean-up, targets before their predecessors: pass-through steps and steps
    # whose branches agree are replaced by their target; identical steps are merged.
    alias: dict[int, int] = {}

    def res(t: int) -> int:
        while t > 0 and t in alias:
            t = alias[t]
        return t

    canon: dict[tuple[int, int, int, bool, int, int], int] = {}
    for s in reversed(order):
        st = steps[s]
        if st.mask == 0:
            alias[s] = res(st.yes)
            continue
        st.yes, st.no = res(st.yes), res(st.no)
        if st.yes == st.no:
            alias[s] = st.yes
            continue
        key = (st.offset, st.mask, st.value, st.short, st.yes, st.no)
        if key in canon:
            alias[s] = canon[key]
        else:
            canon[key] = s
    entry = res(entry)
    if entry <= 0:
        prog.output_everything = DROP_OUTPUT if entry == J_DROP else -entry
        return prog
    reach: set[int] = set()
    stack = [entry]
    while stack:
        s = stack.pop()
        if s in reach:
            continue
        reach.add(s)
        for j in (steps[s].yes, steps[s].no):
            if j > 0 and j not in reach:
                stack.append(j)
    live = [s for s in order if s in reach]
    # the entry is the first live step in jump order (nothing jumps to it)
    number = {s: i for i, s in enumerate(live)}

    def renum(j: int) -> int:
        return number[j] if j > 0 else j

    final = [Step(steps[s].offset, steps[s].mask, steps[s].value, renum(steps[s].yes),
                  renum(steps[s].no), steps[s].short) for s in live]
    if combine:
        _bubble_sort(final, list(range(len(final))))
    prog.steps = _compress(final)
    prog.safe_length = max(s.need() for s in prog.steps)
    return prog


_MIN_SORTED = 7


def _compress(steps: list[Step]) -> list[Step]:
    """Fold chains ``A no-> B no-> C ...`` of tests of the same word and mask with a
    common yes branch (each later one reached only from its predecessor) into one
    multi-value step.  Long value lists are sorted so the kernel can bisect them."""
    incoming = [0] * len(steps)
    incoming[0] = 1
    for st in steps:
        for j in (st.yes, st.no):
            if j > 0:
                incoming[j] += 1
    absorbed = [False] * len(steps)
    groups: list[tuple[int, Step]] = []
    for i, st in enumerate(steps):
        if absorbed[i]:
            continue
        vals = [st.value]
        no = st.no
        while no > 0 and incoming[no] == 1 and steps[no].yes == st.yes and \
                steps[no].offset == st.offset and steps[no].mask == st.mask and not absorbed[no]:
            vals.append(steps[no].value)
            absorbed[no] = True
            no = steps[no].no
        if len(vals) >= _MIN_SORTED:
            vals.sort()
        groups.append((i, Step(st.offset, st.mask, vals[0], st.yes, no, st.short, tuple(vals[1:]))))
    index = {old: new for new, (old, _) in enumerate(groups)}

    def renum(j: int) -> int:
        return index[j] if j > 0 else j

    return [Step(g.offset, g.mask, g.value, renum(g.yes), renum(g.no), g.short, g.more) for _, g in groups]


def compile_filter(conf: list[str], noutputs: int, context: Element | None = None,
                   errh: ErrorHandler | None = None) -> tuple[FilterProgram | None, int]:
    """Compile IPFilter arguments (``ACTION PATTERN`` each) into a program.

    Returns (program, number of errors); the program is None if there were errors.
    Messages go to ``errh`` prefixed ``pattern N: ``, as Click prints them.
    """
    b = _ProgramBuilder(context, errh)
    patterns = b.parse_patterns(conf, noutputs)
    if b.nerrors:
        return None, b.nerrors
    steps, entry = _generate(patterns)
    return _optimize(steps, entry), 0


# -- the elements -------------------------------------------------------------------------------

_kernel: Any = None
# after this many batches of at least _HOT_SIZE packets, an IPFilter compiles a
# kernel specialized for its program
_HOT_BATCHES = 64
_HOT_SIZE = 32


def _get_kernel() -> Any:
    global _kernel
    if _kernel is None:
        from clickos.packet.filterkernels import ipfilter_match

        _kernel = ipfilter_match
    return _kernel


class IPFilter(Element):
    """IPFilter(ACTION_1 PATTERN_1, ..., ACTION_N PATTERN_N)

    Filters IP packets with tcpdump-like patterns.

    Each argument pairs an ACTION with a PATTERN (see IPClassifier for the
    pattern language).  A packet is handled by the first argument whose
    PATTERN it matches: ACTION ``allow`` sends it to output 0, a number sends
    it to that output, and ``deny`` or ``drop`` discards it.  Packets matching
    no pattern are dropped.  IPFilter has any number of outputs; input packets
    need their IP header annotation (CheckIPHeader or MarkIPHeader sets it),
    and transport tests need the transport header annotation.

    Every IPFilter has an equivalent IPClassifier and the other way around;
    use whichever reads better.

    Handlers: ``program`` (read) prints the compiled decision program.  Each
    step ANDs a 32-bit word of the packet with a mask, compares it to a
    value, and goes on to another step or to an output (``[X]`` = drop).
    Offsets count from the MAC header (0-255, two bytes early), the network
    header (256-511) or the transport header (512 and up).

    Example::

        IPFilter(allow src 10.0.0.0/8 && tcp dst port www,
                 1 icmp type echo,
                 deny all)
    """

    port_count = "1/-"
    processing = "h"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.prog = FilterProgram(output_everything=DROP_OUTPUT)
        self._table = self.prog.array()
        self._out = np.zeros(256, np.int64)
        self._split_ok = False
        self._everything = DROP_OUTPUT
        self._kernel: Any = None
        self._hot = 0

    def _pattern_args(self, conf: list[str], errh: ErrorHandler) -> list[str] | None:
        return conf

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        args = self._pattern_args(conf, errh)
        if args is None:
            return
        prog, nerr = compile_filter(args, self.noutputs, self, errh)
        if prog is None:
            if not nerr:
                raise ConfigError("bad pattern")
            return
        self._install(prog)
        self._after_configure(errh)

    def _after_configure(self, errh: ErrorHandler) -> None:
        pass

    def _install(self, prog: FilterProgram) -> None:
        self.prog = prog
        self._table = prog.array()
        e = prog.output_everything
        self._everything = -1 if e < 0 else (DROP_OUTPUT if e >= self.noutputs else e)
        if self._everything < 0 and self.router is not None and self.router.initialized:
            self._kernel = _get_kernel()
        self._hot = 0

    def can_live_reconfigure(self) -> bool:
        return True

    def fast_step(self) -> Any:
        """Output 0's packets go on through a fused path; the others are punted."""
        from clickos.packet import fusegen
        from clickos.packet.filterkernels import MAX_SPECIALIZED_STEPS, P_NVALUES

        if type(self).push is not IPFilter.push:
            return None
        if self._everything == 0:
            return fusegen.Step([])
        if self._everything >= 0 or not 0 < np.count_nonzero(self._table[:, P_NVALUES]) <= MAX_SPECIALIZED_STEPS:
            return None
        return fusegen.ipfilter(self._table)

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.elements.standard.basic import compute_split_ok

        self._split_ok = compute_split_ok(self)
        self._kernel = _get_kernel()

    def add_handlers(self) -> None:
        self.add_read_handler("program", lambda: self.prog.unparse(), CALM)

    def _specialize(self) -> None:
        """Busy with large batches: switch to a kernel compiled for this program."""
        import os

        if os.environ.get("CLICKOS_IPFILTER_SPECIALIZE", "1") == "0":
            return
        from clickos.packet.filterkernels import specialize

        kernel = specialize(self._table)
        if kernel is not None:
            self._kernel = kernel

    def classify(self, batch: PacketBatch) -> np.ndarray:
        """The output port of each packet of ``batch`` (-1 = drop)."""
        n = len(batch)
        out = np.empty(n, np.int64)
        pool = batch.pool
        _get_kernel()(pool.data, pool.off, pool.length, pool.mac, pool.nh, pool.th, batch.idx,
                      self._table, out)
        return out

    def push(self, port: int, batch: PacketBatch) -> None:
        everything = self._everything
        outs = self.outputs
        if everything >= 0:
            if everything < len(outs):
                outs[everything].push(batch)
            else:
                batch.kill()
            return
        idx = batch.idx
        out = self._out
        if len(idx) > len(out):
            out = self._out = np.zeros(2 * len(idx), np.int64)
        pool = batch.pool
        if self._hot < _HOT_BATCHES and len(idx) >= _HOT_SIZE:
            self._hot += 1
            if self._hot == _HOT_BATCHES:
                self._specialize()
        common = self._kernel(pool.data, pool.off, pool.length, pool.mac, pool.nh, pool.th, idx,
                              self._table, out)
        if common >= 0:
            if common < len(outs):
                outs[common].push(batch)
            else:
                batch.kill()
        elif common == -1:
            batch.kill()
        else:
            _push_split(self, batch, out[: len(idx)].copy())


def _push_split(e: Element, batch: PacketBatch, ports: np.ndarray) -> None:
    """Send each packet to ``ports[i]`` (others dropped), splitting or in order-keeping runs."""
    outs = e.outputs
    nout = len(outs)
    pool, idx = batch.pool, batch.idx
    dead = (ports < 0) | (ports >= nout)
    if getattr(e, "_split_ok", False):
        if dead.any():
            pool.release(idx[dead])
        for p in range(nout):
            sel = idx[ports == p]
            if len(sel):
                outs[p].push(PacketBatch(pool, sel))
        return
    n = len(ports)
    cuts = np.flatnonzero(ports[1:] != ports[:-1]) + 1
    start = 0
    for end in cuts.tolist() + [n]:
        p = int(ports[start])
        part = PacketBatch(pool, idx[start:end])
        if 0 <= p < nout:
            outs[p].push(part)
        else:
            part.kill()
        start = end


class IPClassifier(IPFilter):
    """IPClassifier(PATTERN_1, ..., PATTERN_N)

    Classifies IP packets with tcpdump-like patterns.

    There is one output per pattern; a packet leaves on the output of the
    first pattern it matches and is dropped if it matches none.  Input
    packets need their IP header annotation (and, for transport tests, their
    transport header annotation).

    Primitives:

    - ``ip proto PROTO`` (or just ``tcp``, ``udp``, ``icmp``, a number...):
      the IP protocol; ``tcpudp`` means TCP or UDP.
    - ``[SRCORDST] host ADDR``: source and/or destination address, where
      SRCORDST is ``src``, ``dst``, ``src or dst`` (the default) or
      ``src and dst``.
    - ``[SRCORDST] net NET``: the same against a prefix, ``ADDR/LEN`` or
      ``ADDR mask MASK``.
    - ``[SRCORDST] [tcp|udp] port PORT``: TCP/UDP ports (names or numbers).
    - ``ip vers``, ``ip hl``, ``ip id``, ``ip tos``, ``ip dscp``, ``ip ttl``,
      ``ip len`` VALUE: IP header fields; ``ip ect`` and ``ip ce``: ECN bits.
    - ``ip frag`` / ``ip unfrag``: fragments (more-fragments bit or nonzero
      offset), or not.
    - ``tcp opt FLAG``: a TCP flag (``syn``, ``fin``, ``ack``, ``rst``, ``psh``,
      ``urg``) is set; ``tcp win VALUE``: the TCP window field.
    - ``icmp type TYPE``: the ICMP type (name or number).
    - ``ip[POS:LEN] VALUE``, ``transp[POS:LEN] VALUE``, ``tcp[...]``...: LEN
      (1-4, default 1) bytes at POS in the IP or transport header.
    - ``[SRCORDST] ether host ETH``: Ethernet addresses (needs the MAC header
      annotation).
    - ``true``, ``false``; a whole pattern ``-``, ``any`` or ``all`` matches
      everything.

    Primitives combine with ``and``/``&&`` (or just juxtaposition),
    ``or``/``||``, ``not``/``!``, parentheses and ``C ? A : B`` (with spaces
    around the colon).  Values may follow ``==``/``=``, ``!=`` and, for
    numbers, ``<``, ``>``, ``<=``, ``>=``; most primitives accept a mask,
    ``DIRECTIVE & MASK [OP] VALUE``.  ``port != 80`` only matches packets that
    have ports (unlike ``not port 80``).  Port, ICMP type, TCP option and
    transport field tests only match first fragments.  Qualifiers carry over
    (``src port 80 or 81``), and names come from AddressInfo and friends.

    Handlers: ``program`` (read) the compiled decision program; ``patternN``
    (read/write) pattern N.

    Example::

        IPClassifier(10.0.0.0/24 and syn, dst tcp port 8000 or 8080, tcp, -)
    """

    def _pattern_args(self, conf: list[str], errh: ErrorHandler) -> list[str] | None:
        if len(conf) != self.noutputs:
            raise ConfigError(f"need {self.noutputs} arguments, one per output port")
        return [f"{i} {c}" for i, c in enumerate(conf)]

    def _after_configure(self, errh: ErrorHandler) -> None:
        if not self.router.initialized:
            for i, used in enumerate(self.prog.used_outputs(self.noutputs)):
                if not used:
                    errh.warning(f"output {i} matches no packets")

    def add_handlers(self) -> None:
        super().add_handlers()
        for i in range(self.noutputs):
            self.add_read_handler(f"pattern{i}", lambda i=i: self._pattern(i))
            self.add_write_handler(f"pattern{i}", lambda v, errh, i=i: self._set_pattern(i, v, errh))

    def _pattern(self, i: int) -> str:
        conf = split_args(self.config_string)
        return conf[i] if i < len(conf) else ""

    def _set_pattern(self, i: int, value: str, errh: ErrorHandler) -> None:
        conf = split_args(self.config_string)
        while len(conf) <= i:
            conf.append("")
        conf[i] = value.strip()
        self.configure(list(conf), errh)
        self.config_string = join_args(conf)


__all__ = ["IPClassifier", "IPFilter", "FilterProgram", "Step", "compile_filter", "split_filter_words"]
