"""Click's IP summary dump format ("ipsumdump"): one packet per line, chosen fields.

A dump starts with ``!`` header lines and then has one line per packet::

    !IPSummaryDump 1.3
    !data timestamp ip_src sport ip_dst dport ip_proto
    996033261.451094 192.150.187.37 22 192.168.1.100 2943 T

``!data`` (or its old name ``!contents``) names the fields; a field that does
not apply to a packet is written ``-``.  Other header lines: ``!proto P``
(protocol for packets whose line gives none), ``!flowid SRC SPORT DST DPORT
[PROTO]`` (addresses and ports for such packets), ``!aggregate N``, ``!binary``
(the rest of the file is binary records, see below) and ``!bad MESSAGE``
(written before a packet whose headers were broken).  ``#`` lines are comments.

Field names may use spaces for underscores; a name without an underscore also
matches ``ip_NAME`` (``src`` is ``ip_src``).  See :data:`FIELD_NAMES` for the
list and :func:`find_reader` / :func:`find_writer` for lookups.

This module holds everything that does not depend on a router:

- the fields: parsing a text value into a packet (:class:`PacketBuilder`) and
  describing a packet as text or binary (:class:`PacketDesc`);
- IP and TCP option syntax (``rr{1.0.0.1}+2``, ``mss1460;sackok``);
- :class:`SummaryReader`, which turns a dump (text or binary) into packets, and
  :class:`SummaryWriter`, which turns packets into dump lines.

Binary format: after the ``!binary`` line, each record is a 4-byte big-endian
word (high bit set for a text "metadata" record such as ``!bad``, the rest the
record length including that word) followed by the fields in ``!data`` order,
each in network byte order: 1, 2, 4 or 8 bytes for numbers (timestamps are
seconds then microseconds; ``ntimestamp`` seconds then nanoseconds), 4 for
addresses, 6 for Ethernet addresses, 16 for MD5 digests, and a length byte
followed by that many bytes for options.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

from clickos.core.confparse import (
    ICMP_CODES,
    ICMP_TYPES,
    _int_core,
    _int_span,
    parse_ether_address,
    parse_icmp_code,
    parse_icmp_type,
    parse_integer,
    parse_ip_address,
    parse_string,
    parse_timestamp,
    quote,
    split_words,
    unparse_ether,
    unparse_timestamp,
    unquote,
)
from clickos.core.errors import ConfigError

MAJOR_VERSION = 1
MINOR_VERSION = 3

# Annotation offsets (as in Click's packet_anno.hh); 32-bit values are native-endian
# and FIRST_TIMESTAMP holds signed 64-bit nanoseconds.
DST_IP_ANNO = 0
PAINT_ANNO = 16
AGGREGATE_ANNO = 20
EXTRA_PACKETS_ANNO = 24
EXTRA_LENGTH_ANNO = 28
FIRST_TIMESTAMP_ANNO = 32

# Binary sizes of fields.
B_0, B_1, B_2, B_4, B_6PTR, B_8, B_16 = 0, 1, 2, 4, 6, 8, 16
B_4NET = 4 + 256
B_SPECIAL = 4 + 512
B_NOTALLOWED = -1

# Order in which FromIPSummaryDump applies fields to a packet (lower first).
ORDER_ANNO, ORDER_LINK, ORDER_NET, ORDER_TRANSP, ORDER_PAYLOAD = 100, 200, 300, 400, 500

IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_DCCP, IP_PROTO_UDPLITE = 1, 6, 17, 33, 136
IP_PROTO_TCP_OR_UDP = 256
MISSING_IP, MISSING_ETHERNET = 0, 260
IP_DF, IP_MF, IP_OFFMASK = 0x4000, 0x2000, 0x1FFF

_U32 = 0xFFFFFFFF
_TCP_FLAG_CHARS = "FSRPAUECN"
# Letters accepted for TCP flags on input: bit index per character (W and Y are old CWR,
# X old ECE).
_TCP_FLAG_BITS = {"F": 0, "S": 1, "R": 2, "P": 3, "A": 4, "U": 5, "E": 6, "C": 7, "N": 8,
                  "W": 7, "X": 6, "Y": 7}
_ECN_NAMES = {0: "no", 1: "ect1", 2: "ect2", 3: "ce"}
# ICMP types whose header carries an identifier and sequence number.
_ICMP_HAVE_FLOW = frozenset({0, 8, 13, 14, 15, 16})
_ICMP_TYPE_NAME = {v: k for k, v in sorted(ICMP_TYPES.items(), reverse=True)}
_ICMP_CODE_NAME = {t: {v: k for k, v in sorted(names.items(), reverse=True)} for t, names in ICMP_CODES.items()}


def _icmp_header_len(icmp_type: int) -> int:
    """Length of the ICMP header for a type (Click's ``click_icmp_hl``)."""
    return 20 if icmp_type in (13, 14) else 8


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

def scan_uint(s: str, i: int, base: int = 0) -> tuple[int | None, int]:
    """An unsigned integer at ``s[i:]`` (Click's ``cp_integer``): ``(value, end)``, or
    ``(None, i)`` when there is none.  Values too large saturate at 2**32-1."""
    tail = s[i:]
    stop, b = _int_span(tail, False, base)
    if stop == 0 or b < 2 or b > 36:
        return None, i
    try:
        value, _ok = _int_core(tail[:stop], 32, False, b if base else 0)
    except ConfigError:
        return None, i
    return value, i + stop


def parse_uint(text: str, bits: int = 32, base: int = 0) -> int | None:
    """Click's ``IntArg().parse`` into an unsigned value; None on failure."""
    try:
        return parse_integer(text, bits, False, base)
    except (ConfigError, ValueError):
        return None


def md5_text_digest(data: bytes) -> str:
    """An MD5 digest as 22 characters from ``[a-zA-Z0-9_@]`` (Click's text digest)."""
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@"
    digest = hashlib.md5(data).digest()
    out = []
    for bit in range(0, 128, 6):
        k = bit >> 3
        val = digest[k] >> (bit & 7)
        if bit + 8 > (k + 1) * 8 and k < 15:
            val += digest[k + 1] << (8 - (bit & 7))
        out.append(chars[val & 0x3F])
    return "".join(out)


def _dotted(b: bytes | bytearray, i: int) -> str:
    return f"{b[i]}.{b[i + 1]}.{b[i + 2]}.{b[i + 3]}"


def _be32(b: bytes | bytearray, i: int) -> int:
    return (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]


# ---------------------------------------------------------------------------------------
# IP and TCP options
# ---------------------------------------------------------------------------------------

# What an option mask covers.
OPT_PADDING, OPT_ROUTE_MSS, OPT_TS_WSCALE, OPT_SACK, OPT_TIMESTAMP, OPT_UNKNOWN = 1, 2, 4, 8, 16, 32
OPT_ALL = 0xFFFFFFFF
OPT_ALL_NOPAD = 0xFFFFFFFE
TCPOPT_NTALL = 0xFFFFFFEE          # all but padding and timestamps

_IPOPT_CLASS = {0: OPT_PADDING, 1: OPT_PADDING, 7: OPT_ROUTE_MSS, 68: OPT_TS_WSCALE, 131: OPT_ROUTE_MSS,
                137: OPT_ROUTE_MSS}
_TCPOPT_CLASS = {0: OPT_PADDING, 1: OPT_PADDING, 2: OPT_ROUTE_MSS, 3: OPT_TS_WSCALE, 4: OPT_SACK, 5: OPT_SACK,
                 8: OPT_TIMESTAMP}


def unparse_ip_opt(opt: bytes, mask: int = OPT_ALL_NOPAD) -> str:
    """IP options as text: ``rr{1.0.0.1}+2``, ``ssrr{a,b^c}``, ``ts.ip{a=1}``, ``98=1:2``;
    ``;`` separates options, ``.`` means none, ``?`` a malformed option."""
    out: list[str] = []
    i, n = 0, len(opt)
    while i < n:
        t = opt[i]
        if t == 0:
            if mask & OPT_PADDING:
                out.append("eol")
            break
        if t == 1:
            if mask & OPT_PADDING:
                out.append("nop")
            i += 1
            continue
        olen = opt[i + 1] if i + 1 < n else 0
        if t in (7, 131, 137):
            if i + olen > n or olen < 3 or (i + 2 < n and opt[i + 2] < 4) or i + 2 >= n:
                return "?"
            if not mask & OPT_ROUTE_MSS:
                i += olen
                continue
            ptr = i + opt[i + 2] - 1
            end = i + olen
            o = i + 3
            parts = []
            sep = ""
            while o + 4 <= end:
                if o == ptr:
                    if t == 7:
                        break
                    sep = "^"
                parts.append(sep + _dotted(opt, o))
                sep = ","
                o += 4
            text = {7: "rr", 131: "lsrr", 137: "ssrr"}[t] + "{" + "".join(parts)
            if o == end and o == ptr and t != 7:
                text += "^"
            text += "}"
            if o + 4 <= end and o == ptr and t == 7:
                text += f"+{(end - o) // 4}"
            out.append(text)
            i = end
            continue
        if t == 68:
            if i + olen > n or olen < 4 or i + 3 >= n or opt[i + 2] < 5:
                return "?"
            end = i + olen
            ptr = i + opt[i + 2] - 1
            flag = opt[i + 3] & 0xF
            size = 8 if 1 <= flag <= 3 else 4
            text = "ts" + {0: "", 1: ".ip", 3: ".preip"}.get(flag, f".{flag}") + "{"
            o = i + 4
            sep = ""
            while o + size <= end:
                if o == ptr:
                    if flag != 3:
                        break
                    sep = "^"
                piece = sep
                if flag != 0:
                    piece += _dotted(opt, o) + "="
                    o += 4
                if flag == 3 and o > ptr:
                    piece = piece[:-1]
                else:
                    # with an unknown flag (4-15) the entries are 4 bytes but an
                    # address is read too, so the last timestamp may lie past the
                    # option (Click reads on into the packet); past the end of the
                    # options, its bytes read as zero here
                    v = _be32(opt, o) if o + 4 <= n else int.from_bytes(bytes(opt[o: o + 4]).ljust(4, b"\0"), "big")
                    piece += ("!" if v & 0x80000000 else "") + str(v & 0x7FFFFFFF)
                text += piece
                sep = ","
                o += 4
            if o == end and o == ptr:
                text += "^"
            text += "}"
            if o + size <= end and o == ptr:
                text += f"+{(end - o) // size}"
            if opt[i + 3] & 0xF0:
                text += f"++{opt[i + 3] >> 4}"
            out.append(text)
            i = end
            continue
        if i + olen > n or olen < 2:
            return "?"
        if not mask & OPT_UNKNOWN:
            i += olen
            continue
        text = str(t)
        if olen > 2:
            text += "=" + ":".join(str(x) for x in opt[i + 2: i + olen])
        out.append(text)
        i += olen
    return ";".join(out) if out else "."


def unparse_tcp_opt(opt: bytes, mask: int = OPT_ALL_NOPAD) -> str:
    """TCP options as text: ``mss1460``, ``wscale7``, ``sackok``, ``sack1-2``,
    ``ts1:2``, ``99=0:5``; separators and ``.``/``?`` as for IP options."""
    out: list[str] = []
    i, n = 0, len(opt)
    while i < n:
        t = opt[i]
        if t == 0:
            if mask & OPT_PADDING:
                out.append("eol")
            break
        if t == 1:
            if mask & OPT_PADDING:
                out.append("nop")
            i += 1
            continue
        olen = opt[i + 1] if i + 1 < n else 0
        fixed = {2: 4, 3: 3, 4: 2, 8: 10}.get(t)
        if fixed is not None:
            if i + olen > n or olen != fixed:
                return "?"
            if not mask & _TCPOPT_CLASS[t]:
                i += olen
                continue
            if t == 2:
                out.append(f"mss{(opt[i + 2] << 8) | opt[i + 3]}")
            elif t == 3:
                out.append(f"wscale{opt[i + 2]}")
            elif t == 4:
                out.append("sackok")
            else:
                out.append(f"ts{_be32(opt, i + 2)}:{_be32(opt, i + 6)}")
            i += olen
            continue
        if t == 5:
            if i + olen > n or olen % 8 != 2:
                return "?"
            if not mask & OPT_SACK:
                i += olen
                continue
            for o in range(i + 2, i + olen, 8):
                out.append(f"sack{_be32(opt, o)}-{_be32(opt, o + 4)}")
            i += olen
            continue
        if i + olen > n or olen < 2:
            return "?"
        if not mask & OPT_UNKNOWN:
            i += olen
            continue
        text = str(t)
        if olen > 2:
            text += "=" + ":".join(str(x) for x in opt[i + 2: i + olen])
        out.append(text)
        i += olen
    return ";".join(out) if out else "."


def binary_opt(opt: bytes, classes: dict[int, int], mask: int) -> bytes:
    """Options in the binary dump format: a length byte, then the options the mask
    selects (all of them, as stored, for OPT_ALL).

    (Click writes the raw options and then the selected ones again for OPT_ALL,
    which its own reader cannot parse back; we write the documented single
    field.)"""
    if mask == OPT_ALL:
        return bytes([len(opt) & 0xFF]) + opt[:255]
    kept = bytearray()
    i, n = 0, len(opt)
    while i < n:
        t = opt[i]
        if t in (0, 1):
            if mask & OPT_PADDING:
                kept.append(t)
            if t == 0:
                break
            i += 1
            continue
        if i + 1 >= n or opt[i + 1] < 2 or i + opt[i + 1] > n:
            break
        if mask & classes.get(t, OPT_UNKNOWN):
            kept += opt[i: i + opt[i + 1]]
        i += opt[i + 1]
    return bytes([len(kept) & 0xFF]) + bytes(kept)


class _Bad(Exception):
    pass


def _octets(s: str, i: int) -> tuple[bytes, int]:
    """A dotted quad at ``s[i:]`` (each part checked), or raise _Bad."""
    out = bytearray()
    for k in range(4):
        v, j = scan_uint(s, i, 10)
        if v is None or v > 255:
            raise _Bad
        out.append(v)
        if k < 3:
            if j >= len(s) or s[j] != ".":
                raise _Bad
            j += 1
        i = j
    return bytes(out), i


def parse_ip_opt(text: str) -> bytes | None:
    """IP options from their text form (see :func:`unparse_ip_opt`; ``eol`` and ``nop``
    are also accepted).  None for ``.``; raises ValueError when malformed."""
    if not text or text == ".":
        return None
    if text == "-":
        raise ValueError("missing")
    s, end = text, len(text)
    out = bytearray()
    i = 0
    try:
        while True:
            if i + 3 < end and s.startswith("rr{", i):
                out.append(7)
                i = _route(s, i + 3, out)
            elif i + 5 < end and s.startswith("ssrr{", i):
                out.append(137)
                i = _route(s, i + 5, out)
            elif i + 5 < end and s.startswith("lsrr{", i):
                out.append(131)
                i = _route(s, i + 5, out)
            elif i + 3 < end and (s.startswith("ts{", i) or s.startswith("ts.", i)):
                i = _timestamp_opt(s, i, out)
            elif i < end and s[i].isdigit():
                v, i = scan_uint(s, i, 0)
                if v is None or v >= 256:
                    raise _Bad
                out.append(v)
                i = _opt_data(s, i, out)
            elif i + 3 <= end and s.startswith("nop", i):
                out.append(1)
                i += 3
            elif i + 3 <= end and s.startswith("eol", i) and (i + 3 == end or s[i + 3] != ","):
                out.append(0)
                i += 3
            else:
                raise _Bad
            if i >= end:
                while len(out) > 40 and out[0] == 1:
                    del out[0]
                if len(out) > 40:
                    raise _Bad
                return bytes(out)
            if s[i] not in ",;":
                raise _Bad
            i += 1
    except _Bad:
        raise ValueError("bad IP option") from None


def _opt_data(s: str, i: int, out: bytearray) -> int:
    """``=a:b:c`` data bytes after an option number (adds the length byte)."""
    end = len(s)
    if i + 1 < end and s[i] == "=" and s[i + 1].isdigit():
        pos0 = len(out)
        out.append(0)
        while True:
            v, i = scan_uint(s, i + 1, 0)
            if v is None or v >= 256:
                raise _Bad
            out.append(v)
            if not (i + 1 < end and s[i] == ":" and s[i + 1].isdigit()):
                break
        if len(out) > pos0 + 254:
            raise _Bad
        out[pos0] = len(out) - pos0 + 1
    return i


def _route(s: str, i: int, out: bytearray) -> int:
    end = len(s)
    start = len(out) - 1
    pointer = -1
    out += b"\0\0"
    while True:
        if i < end and s[i] == "^" and pointer < 0:
            pointer = len(out) - start + 1
            i += 1
        if i >= end or not s[i].isdigit():
            break
        addr, i = _octets(s, i)
        out += addr
        if i < end and s[i] == ",":
            i += 1
    if i >= end or s[i] != "}":
        raise _Bad
    out[start + 2] = pointer if pointer >= 0 else len(out) - start + 1
    if i + 2 < end and s[i + 1] == "+" and s[i + 2].isdigit():
        v, i = scan_uint(s, i + 2, 10)
        if v is not None and v < 64:
            out += b"\0" * (v * 4)
    else:
        i += 1
    if len(out) - start > 255:
        raise _Bad
    out[start + 1] = len(out) - start
    return i


def _timestamp_opt(s: str, i: int, out: bytearray) -> int:
    end = len(s)
    start = len(out)
    out += bytes([68, 0, 0, 0])
    flag = -1
    if s[i + 2] == ".":
        if i + 6 < end and s.startswith("ip{", i + 3):
            flag, i = 1, i + 6
        elif i + 9 < end and s.startswith("preip{", i + 3):
            flag, i = 3, i + 9
        elif s[i + 3].isdigit():
            v, j = scan_uint(s, i + 3, 0)
            if v is None or v > 15 or j >= end or s[j] != "{":
                raise _Bad
            flag, i = v, j + 1
        else:
            raise _Bad
    else:
        i += 3
    pointer = -1
    while True:
        if i < end and s[i] == "^" and pointer < 0:
            pointer = len(out) - start + 1
            i += 1
        if i >= end or not (s[i].isdigit() or s[i] == "!"):
            break
        entry = i
        while True:                      # one entry; may restart once as "address=value"
            if flag in (1, 3, -2):
                addr, i = _octets(s, i)
                out += addr
                if pointer >= 0 and flag == -2:
                    flag = 3
                if i + 1 < end and s[i] == "=":
                    if s[i + 1].isdigit() or s[i + 1] == "!":
                        i += 1
                    elif s[i + 1] == "?" and pointer >= 0:
                        out += b"\0\0\0\0"
                        i += 2
                        break
                    else:
                        raise _Bad
                elif pointer >= 0:
                    out += b"\0\0\0\0"
                    break
                else:
                    raise _Bad
            top = 0
            if i < end and s[i] == "!":
                top = 0x80000000
                i += 1
            if i >= end or not s[i].isdigit():
                raise _Bad
            v, i = scan_uint(s, i, 0)
            if v is None:
                raise _Bad
            if i < end and s[i] == "." and flag == -1:
                flag = -2
                i = entry
                continue
            if flag == -1:
                flag = 0
            out += struct.pack(">I", (v | top) & _U32)
            break
        if i < end and s[i] == ",":
            i += 1
    if i < end:
        if s[i] != "}":
            raise _Bad
        i += 1
    if flag == -2:
        flag = 1
    out[start + 2] = pointer if pointer >= 0 else len(out) - start + 1
    if i + 1 < end and s[i] == "+" and s[i + 1].isdigit():
        v, j = scan_uint(s, i + 1, 0)
        if v is not None:
            i = j
            if v < 64:
                out += b"\0" * (v * (8 if flag in (1, 3) else 4))
    overflow = 0
    if i + 2 < end and s[i] == "+" and s[i + 1] == "+" and s[i + 2].isdigit():
        v, j = scan_uint(s, i + 2, 0)
        if v is not None:
            i = j
            if v < 16:
                overflow = v
    out[start + 3] = ((overflow << 4) | (flag & 0xF)) & 0xFF
    if len(out) - start > 255:
        raise _Bad
    out[start + 1] = len(out) - start
    return i


def parse_tcp_opt(text: str, mask: int = OPT_ALL) -> bytes | None:
    """TCP options from text (see :func:`unparse_tcp_opt`); ``mask`` limits the kinds
    accepted.  None for ``.``; raises ValueError when malformed."""
    if not text or text == ".":
        return None
    if text == "-":
        raise ValueError("missing")
    s, end = text, len(text)
    out = bytearray()
    i = 0
    try:
        while True:
            if i + 3 < end and s.startswith("mss", i) and mask & OPT_ROUTE_MSS:
                v, i = scan_uint(s, i + 3, 0)
                if v is None or v > 0xFFFF:
                    raise _Bad
                out += bytes([2, 4, v >> 8, v & 0xFF])
            elif i + 6 < end and s.startswith("wscale", i) and mask & OPT_TS_WSCALE:
                v, i = scan_uint(s, i + 6, 0)
                if v is None or v > 255:
                    raise _Bad
                out += bytes([3, 3, v])
            elif i + 6 <= end and s.startswith("sackok", i) and mask & OPT_SACK:
                out += b"\x04\x02"
                i += 6
            elif i + 4 < end and s.startswith("sack", i) and mask & OPT_SACK:
                pos = len(out)
                out += b"\x05\x00"
                i += 4
                while True:
                    a, t = scan_uint(s, i, 0)
                    if t >= end or s[t] not in ":-":
                        raise _Bad
                    b, t2 = scan_uint(s, t + 1, 0)
                    out += struct.pack(">II", (a or 0) & _U32, (b or 0) & _U32)
                    if a is None or b is None:
                        raise _Bad
                    i = t2
                    if i + 5 >= end or not s.startswith(",sack", i):
                        break
                    i += 5
                out[pos + 1] = (len(out) - pos) & 0xFF
            elif i + 2 < end and s.startswith("ts", i) and mask & OPT_TIMESTAMP:
                a, t = scan_uint(s, i + 2, 0)
                if t >= end or s[t] != ":":
                    raise _Bad
                b, t2 = scan_uint(s, t + 1, 0)
                if not out:
                    out += b"\x01\x01"
                out += b"\x08\x0a" + struct.pack(">II", (a or 0) & _U32, (b or 0) & _U32)
                if a is None or b is None:
                    raise _Bad
                i = t2
            elif i < end and s[i].isdigit() and mask & OPT_UNKNOWN:
                v, i = scan_uint(s, i, 0)
                if v is None or v >= 256:
                    raise _Bad
                out.append(v)
                i = _opt_data(s, i, out)
            elif i + 3 <= end and s.startswith("nop", i) and mask & OPT_PADDING:
                out.append(1)
                i += 3
            elif (i + 3 <= end and s.startswith("eol", i) and mask & OPT_PADDING
                  and (i + 3 == end or s[i + 3] != ",")):
                out.append(0)
                i += 3
            else:
                raise _Bad
            if i >= end or s[i].isspace():
                while len(out) > 40 and out[0] == 1:
                    del out[0]
                if len(out) > 40:
                    raise _Bad
                return bytes(out)
            if s[i] not in ",;":
                raise _Bad
            i += 1
    except _Bad:
        raise ValueError("bad TCP option") from None


# ---------------------------------------------------------------------------------------
# Building packets from dump fields
# ---------------------------------------------------------------------------------------

class PacketBuilder:
    """A packet under construction from one dump line.

    Memory works like a Click packet buffer: ``buf`` has headroom before the data
    (``off``) and tailroom after it (``end``); bytes beyond the end keep what was
    written there, so growing the packet later exposes them.  Header positions
    ``mac``/``nh``/``th`` are absolute indexes into ``buf`` (-1 when unset).
    """

    __slots__ = ("buf", "off", "end", "mac", "nh", "th", "is_ip", "have_icmp_type", "have_icmp_code",
                 "have_ip_hl", "have_tcp_hl", "default_proto", "flowid", "minor_version", "want_len",
                 "ts", "first_ts", "extra_packets", "paint", "aggregate", "extra_length", "scratch")

    HEADROOM = 16

    def __init__(self, default_proto: int = IP_PROTO_TCP,
                 flowid: tuple[bytes, int, bytes, int] | None = None,
                 minor_version: int = MINOR_VERSION) -> None:
        self.buf = bytearray(self.HEADROOM + 1024)
        self.off = self.end = self.HEADROOM
        self.mac = self.nh = self.th = -1
        self.is_ip = True
        self.have_icmp_type = self.have_icmp_code = self.have_ip_hl = self.have_tcp_hl = False
        self.default_proto = default_proto
        self.flowid = flowid
        self.minor_version = minor_version
        self.want_len = 0
        self.ts = 0
        self.first_ts = 0
        self.extra_packets = 0
        self.paint = 0
        self.aggregate = 0
        self.extra_length = 0
        self.scratch: Any = None

    # -- memory -------------------------------------------------------------------------
    @property
    def length(self) -> int:
        return self.end - self.off

    @property
    def data(self) -> bytes:
        return bytes(self.buf[self.off: self.end])

    def put(self, n: int) -> None:
        if n <= 0:
            return
        need = self.end + n
        if need > len(self.buf):
            self.buf += bytes(need - len(self.buf) + 512)
        self.end = need

    def take(self, n: int) -> None:
        self.end = max(self.off, self.end - max(n, 0))

    def push_mac_header(self, n: int) -> None:
        if self.off < n:
            grow = n - self.off + self.HEADROOM
            self.buf[0:0] = bytes(grow)
            self.off += grow
            self.end += grow
            for a in ("mac", "nh", "th"):
                if getattr(self, a) >= 0:
                    setattr(self, a, getattr(self, a) + grow)
        self.off -= n
        self.mac = self.off
        self.nh = self.off + n

    def set_network_header(self, nh: int, hlen: int) -> None:
        self.nh = nh
        self.th = nh + hlen

    def g16(self, i: int) -> int:
        return (self.buf[i] << 8) | self.buf[i + 1]

    def s16(self, i: int, v: int) -> None:
        self.buf[i] = (v >> 8) & 0xFF
        self.buf[i + 1] = v & 0xFF

    def s32(self, i: int, v: int) -> None:
        self.buf[i: i + 4] = (v & _U32).to_bytes(4, "big")

    @property
    def network_length(self) -> int:
        return self.end - self.nh

    @property
    def transport_length(self) -> int:
        return self.end - self.th

    def ip_first_frag(self) -> bool:
        return (self.g16(self.nh + 6) & IP_OFFMASK) == 0

    # -- headers ------------------------------------------------------------------------
    def make_ip(self, ip_p: int = 0) -> bool:
        """Make sure an IP header exists; False if the packet is not IP or (when
        ``ip_p``) the header names another protocol."""
        if not self.is_ip:
            return False
        if self.nh < 0 or self.network_length < 20:
            if self.nh < 0:
                self.set_network_header(self.off, 0)
            if self.network_length < 20:
                self.put(20 - self.network_length)
                self.set_network_header(self.nh, 20)
                b, h = self.buf, self.nh
                b[h] = 0x45
                b[h + 2: h + 4] = b"\0\0"
                b[h + 6: h + 8] = b"\0\0"
                b[h + 8] = 100
                b[h + 9] = self.default_proto & 0xFF
                if self.flowid is not None:
                    b[h + 12: h + 16] = self.flowid[0]
                    b[h + 16: h + 20] = self.flowid[2]
        p = self.buf[self.nh + 9]
        return not ip_p or not p or p == ip_p

    def make_transp(self) -> bool:
        """Make sure a first fragment has its transport header (as much as fits)."""
        if not self.ip_first_frag():
            return False
        if self.th < 0 or self.transport_length >= 8:
            return True
        proto = self.buf[self.nh + 9]
        hlen = {IP_PROTO_TCP: 20, IP_PROTO_UDP: 8, IP_PROTO_UDPLITE: 8, IP_PROTO_DCCP: 12,
                IP_PROTO_ICMP: 8}.get(proto)
        if hlen is None:
            return True
        th_rel = self.th - self.off
        if self.want_len > 0 and self.want_len < th_rel + hlen:
            hlen = self.want_len - th_rel
        if self.transport_length < hlen:
            xlen = max(hlen, 4)
            self.put(xlen - self.transport_length)
            if proto == IP_PROTO_TCP and hlen >= 13:
                self.buf[self.th + 12] = (self.buf[self.th + 12] & 0x0F) | 0x50
            if self.flowid is not None:
                self.s16(self.th, self.flowid[1])
                self.s16(self.th + 2, self.flowid[3])
            if xlen > hlen:
                self.take(xlen - hlen)
        return True


# -- text parsers (value or None) ---------------------------------------------------------

def _num_parser(btype: int) -> Callable[[str, Any], int | None]:
    def parse(s: str, b: Any) -> int | None:
        v = parse_uint(s, 64 if btype == B_8 else 32)
        if v is None:
            return None
        if (btype == B_1 and v > 255) or (btype == B_2 and v > 65535):
            return None
        return v
    return parse


def _parse_time(s: str, b: Any) -> int | None:
    try:
        return parse_timestamp(s)
    except (ConfigError, ValueError):
        return None


def _parse_link(s: str, b: Any) -> int | None:
    if s == ">":
        return 0
    if s == "<":
        return 1
    return parse_uint(s)


def _res(b: Any) -> Any:
    """The name resolver reachable from a builder (through its reader) or a reader."""
    r = getattr(b, "resolver", None)
    if r is None:
        r = getattr(getattr(b, "scratch", None), "resolver", None)
    return r


def _parse_ip(s: str, b: Any) -> bytes | None:
    try:
        return parse_ip_address(s, _res(b))
    except (ConfigError, ValueError):
        return None


def _parse_frag(s: str, b: PacketBuilder) -> int | None:
    if len(s) == 1 and s in ".!Ff":
        return {".": 0, "!": IP_DF, "F": IP_MF, "f": 100}[s]
    v, i = scan_uint(s, 0, 0)
    v = v or 0
    if b.minor_version > 0:
        v >>= 3
    while i < len(s) and s[i] in "!+":
        v |= IP_DF if s[i] == "!" else IP_MF
        i += 1
    return v & 0xFFFF if i == len(s) and s else None


def _parse_proto(s: str, b: Any) -> int | None:
    if s in ("T", "U", "I"):
        return {"T": IP_PROTO_TCP, "U": IP_PROTO_UDP, "I": IP_PROTO_ICMP}[s]
    v = parse_uint(s)
    return v if v is not None and v < 256 else None


def _parse_ecn(s: str, b: Any) -> int | None:
    if len(s) == 1 and "0" <= s <= "3":
        return int(s)
    return {"no": 0, "-": 0, "ect1": 1, "ECT(1)": 1, "ect2": 2, "ECT(0)": 2, "ce": 3, "CE": 3}.get(s)


def _parse_ip_opt(s: str, b: Any) -> Any:
    try:
        return ("opt", parse_ip_opt(s))
    except ValueError:
        return None


def _tcp_opt_parser(mask: int) -> Callable[[str, Any], Any]:
    def parse(s: str, b: Any) -> Any:
        try:
            return ("opt", parse_tcp_opt(s, mask))
        except ValueError:
            return None
    return parse


def _parse_tcp_flags(s: str, b: Any) -> int | None:
    if s == ".":
        return 0
    if not s:
        return None
    if s[0].isdigit():
        v = parse_uint(s)
        return v if v is not None and v < 0x1000 else None
    v = 0
    for c in s:
        bit = _TCP_FLAG_BITS.get(c)
        if bit is None:
            return None
        v |= 1 << bit
    return v


def _parse_icmp_type(s: str, b: Any) -> int | None:
    try:
        v = parse_icmp_type(s, _res(b))
    except (ConfigError, ValueError):
        return None
    return v if 0 <= v < 256 else None


def _parse_icmp_code(s: str, b: PacketBuilder) -> int | None:
    try:
        if b.have_icmp_type and b.th >= 0:
            v = parse_icmp_code(s, b.buf[b.th], _res(b))
        else:
            v = parse_integer(s, 32, False)
    except (ConfigError, ValueError):
        return None
    return v if 0 <= v < 256 else None


def _parse_ether(s: str, b: Any) -> bytes | None:
    try:
        return parse_ether_address(s, _res(b))
    except (ConfigError, ValueError):
        return None


def _parse_eth_type(s: str, b: Any) -> int | None:
    v = parse_uint(s, 32, 16)
    return v if v is not None and v < 65536 else None


def _parse_payload(s: str, b: Any) -> Any:
    try:
        return ("payload", parse_string(s).encode("latin-1", "replace"))
    except (ConfigError, ValueError):
        return None


# -- binary readers: (data, pos) -> (value or None, new pos) ------------------------------------

def _inb_fixed(btype: int) -> Callable[[bytes, int], tuple[Any, int]]:
    size = {B_0: 0, B_1: 1, B_2: 2, B_4: 4, B_4NET: 4, B_6PTR: 6, B_8: 8, B_16: 16}[btype]

    def inb(data: bytes, i: int) -> tuple[Any, int]:
        if i + size > len(data):
            return None, len(data)
        chunk = data[i: i + size]
        if btype in (B_4NET, B_6PTR):
            return bytes(chunk), i + size
        return int.from_bytes(chunk, "big") if size else 0, i + size
    return inb


def _inb_utime(data: bytes, i: int) -> tuple[Any, int]:
    if i + 8 > len(data):
        return None, len(data)
    sec, usec = struct.unpack_from(">II", data, i)
    return sec * 1_000_000_000 + usec * 1000, i + 8


def _inb_ntime(data: bytes, i: int) -> tuple[Any, int]:
    if i + 8 > len(data):
        return None, len(data)
    sec, nsec = struct.unpack_from(">II", data, i)
    return sec * 1_000_000_000 + nsec, i + 8


def _inb_opt(data: bytes, i: int) -> tuple[Any, int]:
    if i < len(data) and i + data[i] + 1 <= len(data):
        n = data[i]
        return ("opt", bytes(data[i + 1: i + 1 + n])), i + 1 + n
    return None, len(data)


# -- injectors ----------------------------------------------------------------------------

def _inject_anno(kind: str) -> Callable[[PacketBuilder, Any], None]:
    def inject(b: PacketBuilder, v: Any) -> None:
        if kind == "ts":
            b.ts = v
        elif kind == "sec":
            b.ts = (v - (1 << 32) if v & 0x80000000 else v) * 1_000_000_000 + b.ts % 1_000_000_000
        elif kind == "usec":
            b.ts = (b.ts // 1_000_000_000) * 1_000_000_000 + (v % 1_000_000) * 1000
        elif kind == "usec1":
            b.ts = (v // 1_000_000) * 1_000_000_000 + (v % 1_000_000) * 1000
        elif kind == "first_ts":
            b.first_ts = v
        elif kind == "count":
            b.extra_packets = (v - 1 if v else 0) & _U32
        elif kind == "paint":
            b.paint = v & 0xFF
        elif kind == "aggregate":
            b.aggregate = v & _U32
        elif kind == "wire_len":
            b.want_len = v
    return inject


def _inject_link(kind: str) -> Callable[[PacketBuilder, Any], None]:
    def inject(b: PacketBuilder, v: Any) -> None:
        if b.mac < 0:
            b.push_mac_header(14)
            b.s16(b.mac + 12, 0x0800)
        m = b.mac
        if kind == "src":
            b.buf[m + 6: m + 12] = v
        elif kind == "dst":
            b.buf[m: m + 6] = v
        else:
            b.s16(m + 12, v)
            if v not in (0x0800, 0x86DD):
                b.is_ip = False
    return inject


def _inject_ip(kind: str) -> Callable[[PacketBuilder, Any], None]:
    def inject(b: PacketBuilder, v: Any) -> None:
        if not b.make_ip(0):
            return
        h = b.nh
        buf = b.buf
        if kind == "src":
            buf[h + 12: h + 16] = v
        elif kind == "dst":
            buf[h + 16: h + 20] = v
        elif kind == "tos":
            buf[h + 1] = v & 0xFF
        elif kind == "dscp":
            buf[h + 1] = (buf[h + 1] & 0x03) | ((v << 2) & 0xFC)
        elif kind == "ecn":
            buf[h + 1] = (buf[h + 1] & 0xFC) | (v & 0x03)
        elif kind == "ttl":
            buf[h + 8] = v & 0xFF
        elif kind == "frag":
            b.s16(h + 6, v)
        elif kind == "id":
            b.s16(h + 4, v)
        elif kind == "sum":
            b.s16(h + 10, v)
        elif kind == "proto":
            buf[h + 9] = v & 0xFF
        elif kind == "opt":
            b.have_ip_hl = True
            opt = v[1]
            if opt is None:
                return
            ip_hl = (20 + len(opt) + 3) & ~3
            if b.network_length < ip_hl:
                b.put(ip_hl - b.network_length)
            if ip_hl > (buf[h] & 0xF) << 2:
                b.set_network_header(h, ip_hl)
                buf[h] = (buf[h] & 0xF0) | (ip_hl >> 2)
            buf[h + 20: h + 20 + len(opt)] = opt
            buf[h + 20 + len(opt): h + ip_hl] = bytes(ip_hl - 20 - len(opt))
        elif kind == "hl":
            b.have_ip_hl = True
            want = (v + 3) & ~3
            cur = (buf[h] & 0xF) << 2
            if want > cur:
                more = want - cur
                b.put(more)
                b.set_network_header(h, want)
                buf[b.th - more: b.th] = bytes(more)
            buf[h] = (buf[h] & 0xF0) | ((want >> 2) & 0xF)
        elif kind == "len":
            b.want_len = (h - b.off) + v
    return inject


def _has_ports(p: int) -> bool:
    return p in (IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_DCCP, IP_PROTO_UDPLITE)


def _inject_port(which: int) -> Callable[[PacketBuilder, Any], None]:
    def inject(b: PacketBuilder, v: Any) -> None:
        if not b.make_ip(0) or not b.make_transp():
            return
        p = b.buf[b.nh + 9]
        if p and not _has_ports(p):
            return
        b.s16(b.th + which, v)
    return inject


def _inject_tcp(kind: str) -> Callable[[PacketBuilder, Any], None]:
    def inject(b: PacketBuilder, v: Any) -> None:
        if not b.make_ip(IP_PROTO_TCP) or not b.make_transp():
            return
        t = b.th
        buf = b.buf
        if kind == "seq":
            b.s32(t + 4, v)
        elif kind == "ack":
            b.s32(t + 8, v)
        elif kind == "flags":
            buf[t + 13] = v & 0xFF
            buf[t + 12] = (buf[t + 12] & 0xF0) | ((v >> 8) & 0x0F)
        elif kind == "off":
            want = (v + 3) & ~3
            cur = (buf[t + 12] >> 4) << 2
            if want > cur:
                more = want - cur
                b.put(more)
                buf = b.buf
                buf[t + want - more: t + want] = bytes(more)
            buf[t + 12] = (buf[t + 12] & 0x0F) | (((want >> 2) & 0xF) << 4)
        elif kind == "window":
            b.s16(t + 14, v)
        elif kind == "urp":
            b.s16(t + 18, v)
        elif kind == "opt":
            b.have_tcp_hl = True
            opt = v[1]
            if not opt:
                return
            th_off = (20 + len(opt) + 3) & ~3
            if b.transport_length < th_off:
                b.put(th_off - b.transport_length)
                buf = b.buf
            if th_off > (buf[t + 12] >> 4) << 2:
                buf[t + 12] = (buf[t + 12] & 0x0F) | ((th_off >> 2) << 4)
            buf[t + 20: t + 20 + len(opt)] = opt
            buf[t + 20 + len(opt): t + th_off] = bytes(th_off - 20 - len(opt))
    return inject


def _inject_udp_len(b: PacketBuilder, v: Any) -> None:
    if not b.make_ip(0) or not b.make_transp():
        return
    p = b.buf[b.nh + 9]
    if p and p not in (IP_PROTO_UDP, IP_PROTO_UDPLITE):
        return
    if b.transport_length < 8:
        b.put(8 - b.transport_length)
    b.s16(b.th + 4, v)


def _inject_icmp(kind: str) -> Callable[[PacketBuilder, Any], None]:
    def inject(b: PacketBuilder, v: Any) -> None:
        if not b.make_ip(IP_PROTO_ICMP) or not b.make_transp():
            return
        if b.transport_length < 8:
            b.put(8 - b.transport_length)
        t = b.th
        buf = b.buf
        if kind == "type":
            buf[t] = v & 0xFF
            b.have_icmp_type = True
            need = _icmp_header_len(v)
            if b.transport_length < need:
                b.put(need - b.transport_length)
        elif kind == "code":
            buf[t + 1] = v & 0xFF
            b.have_icmp_code = True
        elif kind in ("flowid", "seq"):
            if not b.have_icmp_type or buf[t] in _ICMP_HAVE_FLOW:
                b.s16(t + (4 if kind == "flowid" else 6), v)
        elif kind == "nextmtu":
            if (not b.have_icmp_type or buf[t] == 3) and (not b.have_icmp_code or buf[t + 1] == 4):
                b.s16(t + 6, v)
    return inject


def _payload_info(buf: bytes | bytearray, off: int, end: int, nh: int, th: int, has_ip: bool,
                  tailpad: int) -> tuple[int, int]:
    """(offset from data start, length) of the payload: after the TCP/UDP header of a
    first fragment, after the IP header otherwise; the whole packet without IP."""
    if not has_ip:
        return 0, end - off - tailpad
    n = len(buf)

    def byte(i: int) -> int:
        # Click reads these header bytes unchecked (past a short packet's end it
        # reads whatever the buffer holds); here bytes past the end read as zero
        return buf[i] if i < n else 0

    ip_len = (byte(nh + 2) << 8) | byte(nh + 3)
    if th < 0:
        th = nh + ((buf[nh] & 0xF) << 2)
    poff = th
    if ((byte(nh + 6) << 8) | byte(nh + 7)) & IP_OFFMASK == 0:
        proto = byte(nh + 9)
        if proto == IP_PROTO_TCP:
            thl = (buf[th + 12] >> 4) << 2 if end - th - tailpad >= 13 else 0
            poff += thl if thl >= 20 else 20
        elif proto in (IP_PROTO_UDP, IP_PROTO_UDPLITE):
            poff += 8
    return poff - off, (ip_len - (poff - nh)) & _U32


def _account_payload_len(b: PacketBuilder, poff: int, plen: int) -> None:
    """Stretch the headers (with EOL options) when the IP length asks for more header
    than a plain 20-byte IP and TCP header give, as Click does."""
    if not b.is_ip or b.nh < 0 or (b.g16(b.nh + 2) == 0 and b.want_len == 0):
        b.want_len = poff + plen
        return
    buf = b.buf
    h = b.nh
    ip_len = (b.g16(h + 2) or b.want_len) + (h - b.off)
    delta = ip_len - (poff + plen)
    if (delta > 0 and b.ip_first_frag() and buf[h + 9] == IP_PROTO_TCP and not b.have_tcp_hl
            and b.th >= 0 and (buf[b.th + 12] >> 4) == 5):
        th_delta = min(delta - (delta & 3), 40)
        b.put(th_delta)
        buf = b.buf
        tx = b.th + 20
        buf[tx + th_delta: b.end] = buf[tx: b.end - th_delta]
        buf[tx: tx + th_delta] = bytes(th_delta)
        buf[b.th + 12] = (buf[b.th + 12] & 0x0F) | (((20 + th_delta) >> 2) << 4)
        delta -= th_delta
    if delta > 0 and not b.have_ip_hl and (buf[h] & 0xF) == 5:
        ip_delta = min(delta - (delta & 3), 40)
        b.put(ip_delta)
        buf = b.buf
        nx = h + 20
        buf[nx + ip_delta: b.end] = buf[nx: b.end - ip_delta]
        buf[nx: nx + ip_delta] = bytes(ip_delta)
        buf[h] = (buf[h] & 0xF0) | ((20 + ip_delta) >> 2)
        b.set_network_header(h, 20 + ip_delta)


def _inject_payload(kind: str) -> Callable[[PacketBuilder, Any], None]:
    def inject(b: PacketBuilder, v: Any) -> None:
        if b.make_ip(0):
            b.make_transp()
        has_ip = b.is_ip and b.nh >= 0
        poff, _plen = _payload_info(b.buf, b.off, b.end, b.nh, b.th, has_ip, 0)
        if kind == "payload":
            data = v[1]
            if not data:
                return
            _account_payload_len(b, poff, len(data))
            # The payload goes where it would have started before the headers were
            # stretched (as in Click), so stretched TCP options may be overwritten.
            if b.length - poff < len(data):
                b.put(len(data) - (b.length - poff))
            start = b.off + poff
            b.buf[start: start + len(data)] = data
        else:
            _account_payload_len(b, poff, v)
    return inject


def _inject_nothing(b: PacketBuilder, v: Any) -> None:
    pass


# ---------------------------------------------------------------------------------------
# Describing packets
# ---------------------------------------------------------------------------------------

class PacketDesc:
    """A packet being summarized: its bytes, header positions and annotations.

    ``nh``/``th``/``mac`` are offsets from the data start (-1 when unset).
    After :meth:`prepare`, ``iph``/``tcph``/``udph``/``icmph`` say which headers
    are usable, ``tailpad`` counts bytes past the IP length, and ``extra_length``
    may have been adjusted (the caller writes it back to the packet)."""

    __slots__ = ("data", "length", "mac", "nh", "th", "ts", "first_ts", "extra_packets", "paint",
                 "aggregate", "extra_length", "tailpad", "iph", "tcph", "udph", "icmph", "bad",
                 "careful_trunc", "force_extra_length", "prepared", "resolver")

    def __init__(self, data: bytes, mac: int = -1, nh: int = -1, th: int = -1, *, ts: int = 0,
                 first_ts: int = 0, extra_packets: int = 0, paint: int = 0, aggregate: int = 0,
                 extra_length: int = 0, bad: list[str] | None = None, careful_trunc: bool = True,
                 force_extra_length: bool = True) -> None:
        self.data = data
        self.length = len(data)
        self.mac, self.nh, self.th = mac, nh, th
        self.ts, self.first_ts = ts, first_ts
        self.extra_packets, self.paint, self.aggregate = extra_packets, paint, aggregate
        self.extra_length = extra_length
        self.tailpad = 0
        self.iph = self.tcph = self.udph = self.icmph = False
        self.bad = bad
        self.careful_trunc = careful_trunc
        self.force_extra_length = force_extra_length
        self.prepared = False
        self.resolver = None

    def g16(self, i: int) -> int:
        d = self.data
        return (d[i] << 8) | d[i + 1]

    @property
    def network_length(self) -> int:
        return self.length - self.nh - self.tailpad

    @property
    def transport_length(self) -> int:
        return self.length - self.th - self.tailpad

    def _bad(self, msg: str) -> None:
        if self.bad is not None and not self.bad:
            self.bad.append(f"!bad {msg}\n")

    def prepare(self) -> None:
        """Check the IP and transport headers (Click's ``ip_prepare``)."""
        if self.prepared:
            return
        self.prepared = True
        d = self.data
        n = self.length
        self.iph = self.nh >= 0
        if self.iph:
            nl = n - self.nh
            if nl < 4:
                self._bad("truncated IP header")
                self.iph = False
            elif d[self.nh] >> 4 != 4:
                self._bad(f"IP version {d[self.nh] >> 4}")
                self.iph = False
            elif d[self.nh] & 0xF < 5:
                self._bad(f"IP header length {d[self.nh] & 0xF}")
                self.iph = False
            elif self.g16(self.nh + 2) < (d[self.nh] & 0xF) << 2:
                self._bad(f"IP length {self.g16(self.nh + 2)}")
                self.iph = False
            else:
                ip_len = self.g16(self.nh + 2)
                if nl > ip_len:
                    self.extra_length = (self.extra_length + nl - ip_len) & _U32
                    self.tailpad = nl - ip_len
                elif self.careful_trunc and nl + self.extra_length < ip_len:
                    self._bad(f"truncated IP missing {ip_len - nl - self.extra_length}")
        has_th = self.th >= 0
        if self.iph:
            hl = (d[self.nh] & 0xF) << 2
            proto = d[self.nh + 9] if n > self.nh + 9 else -1
            # (the fragment offset is read only when the header is all there)
            usable = has_th and self.network_length > hl and (self.g16(self.nh + 6) & IP_OFFMASK) == 0
            self.tcph = usable and proto == IP_PROTO_TCP
            if self.tcph and self.transport_length > 12 and (d[self.th + 12] >> 4) < 5:
                self._bad(f"TCP header length {d[self.th + 12] >> 4}")
                self.tcph = False
            self.udph = usable and proto == IP_PROTO_UDP
            self.icmph = usable and proto == IP_PROTO_ICMP
        if self.iph and self.extra_length > 0:
            full = self.network_length + self.extra_length
            if self.g16(self.nh + 2) != 0xFFFF or full <= 0xFFFF:
                self.extra_length = 0
            else:
                self.extra_length = full - 0xFFFF

    def missing(self, proto: int, need: int) -> None:
        """Record why a field is missing (for BAD_PACKETS), as Click's field_missing."""
        if self.bad is None or self.bad:
            return
        names = {IP_PROTO_TCP: "TCP", IP_PROTO_UDP: "UDP", IP_PROTO_ICMP: "ICMP", IP_PROTO_TCP_OR_UDP: "TCP/UDP"}
        if proto == MISSING_ETHERNET:
            self._bad("Ethernet header")
        elif not self.iph:
            self._bad("no IP header")
        elif proto == MISSING_IP:
            self._bad("truncated IP header capture")
        else:
            d = self.data
            if self.network_length > 9:
                p = d[self.nh + 9]
                if (0 < proto < 256 and p != proto) or (proto == IP_PROTO_TCP_OR_UDP and p not in (6, 17)):
                    return
            name = names.get(proto, "?")
            if self.g16(self.nh + 6) & IP_OFFMASK:
                self._bad(f"fragmented {name} header")
            elif self.transport_length + self.extra_length >= need:
                self._bad(f"truncated {name} header capture")
            else:
                self._bad(f"truncated {name} header")


def _x_anno(kind: str) -> Callable[[PacketDesc], Any]:
    def extract(d: PacketDesc) -> Any:
        if kind == "ts":
            return d.ts
        if kind == "sec":
            return (d.ts // 1_000_000_000) & _U32
        if kind == "usec":
            return (d.ts % 1_000_000_000) // 1000
        if kind == "usec1":
            return (d.ts // 1_000_000_000) * 1_000_000 + (d.ts % 1_000_000_000) // 1000
        if kind == "first_ts":
            return d.first_ts
        if kind == "count":
            return (1 + d.extra_packets) & _U32
        if kind == "paint":
            return d.paint
        if kind == "aggregate":
            return d.aggregate
        if kind == "wire_len":
            return d.length
        return None
    return extract


def _x_link(kind: str) -> Callable[[PacketDesc], Any]:
    def extract(d: PacketDesc) -> Any:
        if d.mac < 0:
            mac = 0 if d.nh < 0 or d.nh > 0 else -1
        else:
            mac = d.mac
        network = d.length if d.nh < 0 else d.nh
        if mac < 0 or mac + 14 != network:
            d.missing(MISSING_ETHERNET, 0)
            return None
        b = d.data
        if kind == "src":
            return bytes(b[mac + 6: mac + 12])
        if kind == "dst":
            return bytes(b[mac: mac + 6])
        return (b[mac + 12] << 8) | b[mac + 13]
    return extract


def _x_ip(kind: str) -> Callable[[PacketDesc], Any]:
    need = {"src": 16, "dst": 20, "tos": 2, "dscp": 2, "ecn": 2, "ttl": 9, "frag": 8, "fragoff": 8,
            "id": 6, "sum": 12, "proto": 10, "hl": 1}.get(kind, 0)

    def extract(d: PacketDesc) -> Any:
        b = d.data
        h = d.nh
        if kind == "len":
            v = d.g16(h + 2) if d.iph else d.length - d.tailpad
            if d.force_extra_length:
                v += d.extra_length
            return v & _U32
        if kind == "capture_len":
            allow = d.network_length if d.iph else d.length - d.tailpad
            ln = d.g16(h + 2) if d.iph else allow
            return min(ln, allow)
        if kind == "opt":
            if not d.iph:
                d.missing(MISSING_IP, 20)
                return None
            hl = (b[h] & 0xF) << 2
            if hl > 20 and d.network_length < hl:
                d.missing(MISSING_IP, hl)
                return None
            return ("opt", bytes(b[h + 20: h + hl]) if hl > 20 else None)
        if not d.iph or d.network_length < need:
            d.missing(MISSING_IP, need)
            return None
        if kind == "src":
            return bytes(b[h + 12: h + 16])
        if kind == "dst":
            return bytes(b[h + 16: h + 20])
        if kind == "tos":
            return b[h + 1]
        if kind == "dscp":
            return b[h + 1] >> 2
        if kind == "ecn":
            return b[h + 1] & 3
        if kind == "ttl":
            return b[h + 8]
        if kind == "frag":
            off = d.g16(h + 6)
            if off & (IP_MF | IP_OFFMASK):
                return ord("F") if off & IP_OFFMASK == 0 else ord("f")
            return ord("!") if off & IP_DF else ord(".")
        if kind == "fragoff":
            return d.g16(h + 6)
        if kind == "id":
            return d.g16(h + 4)
        if kind == "sum":
            return d.g16(h + 10)
        if kind == "proto":
            return b[h + 9]
        if kind == "hl":
            return (b[h] & 0xF) << 2
        return None
    return extract


def _x_port(which: int) -> Callable[[PacketDesc], Any]:
    def extract(d: PacketDesc) -> Any:
        b = d.data
        h = d.nh
        if (d.iph and d.th >= 0 and d.network_length > (b[h] & 0xF) << 2 and d.g16(h + 6) & IP_OFFMASK == 0
                and _has_ports(b[h + 9]) and d.transport_length >= which + 2):
            return d.g16(d.th + which)
        d.missing(IP_PROTO_TCP_OR_UDP, which + 2)
        return None
    return extract


def _x_tcp(kind: str) -> Callable[[PacketDesc], Any]:
    need = {"seq": 8, "ack": 12, "flags": 14, "off": 13, "window": 16, "urp": 20}.get(kind, 0)

    def extract(d: PacketDesc) -> Any:
        b = d.data
        t = d.th
        tl = d.transport_length if d.tcph else 0
        if kind in ("opt", "ntopt", "sack"):
            if not d.tcph or tl < 13:
                d.missing(IP_PROTO_TCP, tl + 1)
                return None
            off = (b[t + 12] >> 4) << 2
            if kind != "opt" and (off <= 20 or (off == 32 and tl >= 24 and b[t + 20: t + 24] == b"\x01\x01\x08\x0a")):
                return ("opt", None)
            if off > 20 and tl < off:
                d.missing(IP_PROTO_TCP, tl + 1)
                return None
            return ("opt", bytes(b[t + 20: t + off]) if off > 20 else None)
        if not d.tcph or tl < need:
            d.missing(IP_PROTO_TCP, need)
            return None
        if kind == "seq":
            return _be32(b, t + 4)
        if kind == "ack":
            return _be32(b, t + 8)
        if kind == "flags":
            return b[t + 13] | ((b[t + 12] & 0x0F) << 8)
        if kind == "off":
            return (b[t + 12] >> 4) << 2
        if kind == "window":
            return d.g16(t + 14)
        return d.g16(t + 18)
    return extract


def _x_udp_len(d: PacketDesc) -> Any:
    if not d.udph or d.transport_length < 6:
        d.missing(IP_PROTO_UDP, 6)
        return None
    return d.g16(d.th + 4)


def _x_icmp(kind: str) -> Callable[[PacketDesc], Any]:
    def extract(d: PacketDesc) -> Any:
        b = d.data
        t = d.th
        tl = d.transport_length if d.icmph else 0
        if kind in ("type", "type_name"):
            if not d.icmph or tl < 1:
                d.missing(IP_PROTO_ICMP, 1)
                return None
            return b[t]
        if kind in ("code", "code_name"):
            if not d.icmph or tl < 2:
                d.missing(IP_PROTO_ICMP, 2)
                return None
            return b[t + 1]
        if kind in ("flowid", "seq"):
            if not d.icmph or tl < 1:
                d.missing(IP_PROTO_ICMP, 1)
                return None
            if b[t] not in _ICMP_HAVE_FLOW:
                return None
            need = 6 if kind == "flowid" else 8
            if tl < need:
                d.missing(IP_PROTO_ICMP, need)
                return None
            return d.g16(t + need - 2)
        if not d.icmph or tl < 2:
            d.missing(IP_PROTO_ICMP, 2)
            return None
        if b[t] != 3 or b[t + 1] != 4:
            return None
        if tl < 8:
            d.missing(IP_PROTO_ICMP, 8)
            return None
        return d.g16(t + 6)
    return extract


def _x_payload(kind: str) -> Callable[[PacketDesc], Any]:
    def extract(d: PacketDesc) -> Any:
        off, ln = _payload_info(d.data, 0, d.length, d.nh, d.th, d.iph, d.tailpad)
        if kind == "len":
            if not d.iph or d.force_extra_length:
                ln += d.extra_length
            return ln & _U32
        if ln == 0 or off < d.length:
            if off + ln > d.length - d.tailpad:
                ln = max(d.length - d.tailpad - off, 0)
            return ("payload", bytes(d.data[off: off + ln]))
        return None
    return extract


# -- text output ---------------------------------------------------------------------------

def _outa_num(d: PacketDesc, v: Any) -> str:
    return str(v)


def _outa_time(d: PacketDesc, v: Any) -> str:
    return unparse_timestamp(v)


def _outa_direction(d: PacketDesc, v: Any) -> str:
    return ">" if v == 0 else "<" if v == 1 else str(v)


def _outa_ip(d: PacketDesc, v: Any) -> str:
    return _dotted(v, 0)


def _outa_frag(d: PacketDesc, v: Any) -> str:
    return chr(v)


def _outa_fragoff(d: PacketDesc, v: Any) -> str:
    return f"{(v & IP_OFFMASK) << 3}" + ("+" if v & IP_MF else "") + ("!" if v & IP_DF else "")


def _outa_proto(d: PacketDesc, v: Any) -> str:
    return {IP_PROTO_TCP: "T", IP_PROTO_UDP: "U", IP_PROTO_ICMP: "I"}.get(v, str(v))


def _outa_ecn(d: PacketDesc, v: Any) -> str:
    return _ECN_NAMES[v & 3]


def _outa_ipopt(d: PacketDesc, v: Any) -> str:
    return "." if not v[1] else unparse_ip_opt(v[1])


def _tcp_opt_outa(mask: int) -> Callable[[PacketDesc, Any], str]:
    def outa(d: PacketDesc, v: Any) -> str:
        return "." if not v[1] else unparse_tcp_opt(v[1], mask)
    return outa


def _outa_tcp_flags(d: PacketDesc, v: Any) -> str:
    if v == 0x18:
        return "PA"
    if v == 0x10:
        return "A"
    if v == 0:
        return "."
    return "".join(c for k, c in enumerate(_TCP_FLAG_CHARS) if v & (1 << k))


def _outa_icmp_type_name(d: PacketDesc, v: Any) -> str:
    return _ICMP_TYPE_NAME.get(v, str(v))


def _outa_icmp_code_name(d: PacketDesc, v: Any) -> str:
    t = d.data[d.th]
    return _ICMP_CODE_NAME.get(t, {}).get(v, str(v))


def _outa_ether(d: PacketDesc, v: Any) -> str:
    return unparse_ether(v)


def _outa_eth_type(d: PacketDesc, v: Any) -> str:
    return f"{v:04X}"


def _outa_payload(d: PacketDesc, v: Any) -> str:
    return quote(v[1].decode("latin-1"))


def _outa_md5(d: PacketDesc, v: Any) -> str:
    return md5_text_digest(v[1])


def _outa_md5_hex(d: PacketDesc, v: Any) -> str:
    return hashlib.md5(v[1]).hexdigest()


# -- binary output: (desc, value or None) -> bytes ----------------------------------------------

def _outb_fixed(btype: int) -> Callable[[PacketDesc, Any], bytes]:
    size = {B_0: 0, B_1: 1, B_2: 2, B_4: 4, B_8: 8}.get(btype, 0)

    def outb(d: PacketDesc, v: Any) -> bytes:
        if btype in (B_4NET, B_6PTR):
            n = 4 if btype == B_4NET else 6
            return bytes(v) if v is not None else bytes(n)
        return ((v or 0) & ((1 << (8 * size)) - 1)).to_bytes(size, "big") if size else b""
    return outb


def _outb_utime(d: PacketDesc, v: Any) -> bytes:
    v = v or 0
    sec, sub = divmod(v, 1_000_000_000)
    return struct.pack(">II", sec & _U32, sub // 1000)


def _outb_ntime(d: PacketDesc, v: Any) -> bytes:
    v = v or 0
    sec, sub = divmod(v, 1_000_000_000)
    return struct.pack(">II", sec & _U32, sub)


def _opt_outb(classes: dict[int, int], mask: int) -> Callable[[PacketDesc, Any], bytes]:
    def outb(d: PacketDesc, v: Any) -> bytes:
        if v is None or not v[1]:
            return b"\0"
        return binary_opt(v[1], classes, mask)
    return outb


def _outb_md5(d: PacketDesc, v: Any) -> bytes:
    return hashlib.md5(v[1] if v is not None else b"").digest()


# ---------------------------------------------------------------------------------------
# The field tables
# ---------------------------------------------------------------------------------------

class FieldReader:
    """How a field goes into a packet: text parser, binary reader, injector, order."""

    __slots__ = ("name", "btype", "order", "ina", "inb", "inject")

    def __init__(self, name: str, btype: int, order: int, ina: Callable[[str, Any], Any],
                 inb: Callable[[bytes, int], tuple[Any, int]] | None,
                 inject: Callable[[PacketBuilder, Any], None] | None) -> None:
        self.name, self.btype, self.order = name, btype, order
        self.ina, self.inb, self.inject = ina, inb, inject


class FieldWriter:
    """How a field comes out of a packet: extractor, text and binary formatters."""

    __slots__ = ("name", "btype", "prepare", "extract", "outa", "outb")

    def __init__(self, name: str, btype: int, prepare: bool, extract: Callable[[PacketDesc], Any],
                 outa: Callable[[PacketDesc, Any], str], outb: Callable[[PacketDesc, Any], bytes] | None) -> None:
        self.name, self.btype, self.prepare = name, btype, prepare
        self.extract, self.outa, self.outb = extract, outa, outb


READERS: dict[str, FieldReader] = {}
WRITERS: dict[str, FieldWriter] = {}
SYNONYMS: dict[str, str] = {}


def _field(name: str, btype: int, order: int | None, ina: Callable[[str, Any], Any] | None,
           inject: Callable[[PacketBuilder, Any], None] | None, extract: Callable[[PacketDesc], Any],
           outa: Callable[[PacketDesc, Any], str], *, prepare: bool = True,
           inb: Callable[[bytes, int], tuple[Any, int]] | None = None,
           outb: Callable[[PacketDesc, Any], bytes] | None = None) -> None:
    if btype in (B_0, B_1, B_2, B_4, B_4NET, B_6PTR, B_8, B_16):
        inb = inb or _inb_fixed(btype)
        outb = outb or (_outb_fixed(btype) if btype != B_16 else None)
    if ina is not None and order is not None:
        READERS[name] = FieldReader(name, btype, order, ina, inb, inject)
    WRITERS[name] = FieldWriter(name, btype, prepare, extract, outa, outb)


def _register() -> None:
    num = _num_parser
    # annotations
    _field("timestamp", B_8, ORDER_ANNO, _parse_time, _inject_anno("ts"), _x_anno("ts"), _outa_time,
           prepare=False, inb=_inb_utime, outb=_outb_utime)
    _field("ntimestamp", B_8, ORDER_ANNO, _parse_time, _inject_anno("ts"), _x_anno("ts"), _outa_time,
           prepare=False, inb=_inb_ntime, outb=_outb_ntime)
    _field("ts_sec", B_4, ORDER_ANNO, num(B_4), _inject_anno("sec"), _x_anno("sec"), _outa_num, prepare=False)
    _field("ts_usec", B_4, ORDER_ANNO, num(B_4), _inject_anno("usec"), _x_anno("usec"), _outa_num, prepare=False)
    _field("ts_usec1", B_8, ORDER_ANNO, num(B_8), _inject_anno("usec1"), _x_anno("usec1"), _outa_num,
           prepare=False)
    _field("first_timestamp", B_8, ORDER_ANNO, _parse_time, _inject_anno("first_ts"), _x_anno("first_ts"),
           _outa_time, prepare=False, inb=_inb_utime, outb=_outb_utime)
    _field("first_ntimestamp", B_8, ORDER_ANNO, _parse_time, _inject_anno("first_ts"), _x_anno("first_ts"),
           _outa_time, prepare=False, inb=_inb_ntime, outb=_outb_ntime)
    _field("count", B_4, ORDER_ANNO, num(B_4), _inject_anno("count"), _x_anno("count"), _outa_num,
           prepare=False)
    _field("link", B_1, ORDER_ANNO, _parse_link, _inject_anno("paint"), _x_anno("paint"), _outa_num,
           prepare=False)
    _field("paint", B_1, ORDER_ANNO, _parse_link, _inject_anno("paint"), _x_anno("paint"), _outa_num,
           prepare=False)
    _field("direction", B_1, ORDER_ANNO, _parse_link, _inject_anno("paint"), _x_anno("paint"),
           _outa_direction, prepare=False)
    _field("aggregate", B_4, ORDER_ANNO, num(B_4), _inject_anno("aggregate"), _x_anno("aggregate"), _outa_num,
           prepare=False)
    _field("wire_len", B_4, ORDER_ANNO, num(B_4), _inject_anno("wire_len"), _x_anno("wire_len"), _outa_num,
           prepare=False)
    # link layer
    _field("eth_src", B_6PTR, ORDER_LINK, _parse_ether, _inject_link("src"), _x_link("src"), _outa_ether,
           prepare=False)
    _field("eth_dst", B_6PTR, ORDER_LINK, _parse_ether, _inject_link("dst"), _x_link("dst"), _outa_ether,
           prepare=False)
    _field("eth_type", B_2, ORDER_LINK, _parse_eth_type, _inject_link("type"), _x_link("type"),
           _outa_eth_type, prepare=False)
    # IP
    _field("ip_src", B_4NET, ORDER_NET, _parse_ip, _inject_ip("src"), _x_ip("src"), _outa_ip)
    _field("ip_dst", B_4NET, ORDER_NET, _parse_ip, _inject_ip("dst"), _x_ip("dst"), _outa_ip)
    _field("ip_tos", B_1, ORDER_NET, num(B_1), _inject_ip("tos"), _x_ip("tos"), _outa_num)
    _field("ip_dscp", B_1, ORDER_NET, num(B_1), _inject_ip("dscp"), _x_ip("dscp"), _outa_num)
    _field("ip_ecn", B_1, ORDER_NET, _parse_ecn, _inject_ip("ecn"), _x_ip("ecn"), _outa_ecn)
    _field("ip_ttl", B_1, ORDER_NET, num(B_1), _inject_ip("ttl"), _x_ip("ttl"), _outa_num)
    _field("ip_frag", B_1, ORDER_NET - 2, _parse_frag, _inject_ip("frag"), _x_ip("frag"), _outa_frag)
    _field("ip_fragoff", B_2, ORDER_NET - 1, _parse_frag, _inject_ip("frag"), _x_ip("fragoff"), _outa_fragoff)
    _field("ip_id", B_2, ORDER_NET, num(B_2), _inject_ip("id"), _x_ip("id"), _outa_num)
    _field("ip_sum", B_2, ORDER_NET + 2, num(B_2), _inject_ip("sum"), _x_ip("sum"), _outa_num)
    _field("ip_proto", B_1, ORDER_NET, _parse_proto, _inject_ip("proto"), _x_ip("proto"), _outa_proto)
    _field("ip_hl", B_1, ORDER_NET - 1, num(B_1), _inject_ip("hl"), _x_ip("hl"), _outa_num)
    _field("ip_len", B_4, ORDER_NET + 1, num(B_4), _inject_ip("len"), _x_ip("len"), _outa_num)
    _field("ip_capture_len", B_4, ORDER_PAYLOAD + 2, num(B_4), _inject_nothing, _x_ip("capture_len"), _outa_num)
    _field("ip_opt", B_SPECIAL, ORDER_NET, _parse_ip_opt, _inject_ip("opt"), _x_ip("opt"), _outa_ipopt,
           inb=_inb_opt, outb=_opt_outb(_IPOPT_CLASS, OPT_ALL))
    _field("sport", B_2, ORDER_TRANSP, num(B_2), _inject_port(0), _x_port(0), _outa_num)
    _field("dport", B_2, ORDER_TRANSP, num(B_2), _inject_port(2), _x_port(2), _outa_num)
    # TCP
    _field("tcp_seq", B_4, ORDER_TRANSP, num(B_4), _inject_tcp("seq"), _x_tcp("seq"), _outa_num)
    _field("tcp_ack", B_4, ORDER_TRANSP, num(B_4), _inject_tcp("ack"), _x_tcp("ack"), _outa_num)
    _field("tcp_off", B_1, ORDER_TRANSP - 1, num(B_1), _inject_tcp("off"), _x_tcp("off"), _outa_num)
    _field("tcp_flags", B_1, ORDER_TRANSP, _parse_tcp_flags, _inject_tcp("flags"), _x_tcp("flags"),
           _outa_tcp_flags)
    _field("tcp_window", B_2, ORDER_TRANSP, num(B_2), _inject_tcp("window"), _x_tcp("window"), _outa_num)
    _field("tcp_urp", B_2, ORDER_TRANSP, num(B_2), _inject_tcp("urp"), _x_tcp("urp"), _outa_num)
    _field("tcp_opt", B_SPECIAL, ORDER_TRANSP + 3, _tcp_opt_parser(OPT_ALL), _inject_tcp("opt"), _x_tcp("opt"),
           _tcp_opt_outa(OPT_ALL_NOPAD), inb=_inb_opt, outb=_opt_outb(_TCPOPT_CLASS, OPT_ALL))
    _field("tcp_ntopt", B_SPECIAL, ORDER_TRANSP + 2, _tcp_opt_parser(TCPOPT_NTALL), _inject_tcp("opt"),
           _x_tcp("ntopt"), _tcp_opt_outa(TCPOPT_NTALL), inb=_inb_opt, outb=_opt_outb(_TCPOPT_CLASS, TCPOPT_NTALL))
    _field("tcp_sack", B_SPECIAL, ORDER_TRANSP + 1, _tcp_opt_parser(OPT_SACK), _inject_tcp("opt"),
           _x_tcp("sack"), _tcp_opt_outa(OPT_SACK), inb=_inb_opt, outb=_opt_outb(_TCPOPT_CLASS, OPT_SACK))
    # UDP, ICMP
    _field("udp_len", B_4, ORDER_TRANSP, num(B_4), _inject_udp_len, _x_udp_len, _outa_num)
    _field("icmp_type", B_1, ORDER_TRANSP, _parse_icmp_type, _inject_icmp("type"), _x_icmp("type"), _outa_num)
    _field("icmp_code", B_1, ORDER_TRANSP + 1, _parse_icmp_code, _inject_icmp("code"), _x_icmp("code"),
           _outa_num)
    _field("icmp_type_name", B_1, ORDER_TRANSP, _parse_icmp_type, _inject_icmp("type"), _x_icmp("type_name"),
           _outa_icmp_type_name)
    _field("icmp_code_name", B_1, ORDER_TRANSP + 1, _parse_icmp_code, _inject_icmp("code"),
           _x_icmp("code_name"), _outa_icmp_code_name)
    _field("icmp_flowid", B_2, ORDER_TRANSP + 2, num(B_2), _inject_icmp("flowid"), _x_icmp("flowid"), _outa_num)
    _field("icmp_seq", B_2, ORDER_TRANSP + 2, num(B_2), _inject_icmp("seq"), _x_icmp("seq"), _outa_num)
    _field("icmp_nextmtu", B_2, ORDER_TRANSP + 2, num(B_2), _inject_icmp("nextmtu"), _x_icmp("nextmtu"),
           _outa_num)
    # payload
    _field("payload_len", B_4, ORDER_PAYLOAD + 1, num(B_4), _inject_payload("len"), _x_payload("len"), _outa_num)
    _field("payload", B_NOTALLOWED, ORDER_PAYLOAD, _parse_payload, _inject_payload("payload"),
           _x_payload("data"), _outa_payload)
    _field("payload_md5", B_16, None, None, None, _x_payload("data"), _outa_md5, outb=_outb_md5)
    _field("payload_md5_hex", B_16, None, None, None, _x_payload("data"), _outa_md5_hex, outb=_outb_md5)
    SYNONYMS.update({
        "utimestamp": "timestamp", "ts": "utimestamp", "sec": "ts_sec", "usec": "ts_usec", "usec1": "ts_usec1",
        "first_utimestamp": "first_timestamp", "first_ts": "first_utimestamp", "pkt_count": "count",
        "packet_count": "count", "agg": "aggregate", "wire_length": "wire_len",
        "ether_src": "eth_src", "ether_dst": "eth_dst", "ether_type": "eth_type",
        "length": "ip_len", "ip_p": "ip_proto",
        "tcp_seqno": "tcp_seq", "tcp_ackno": "tcp_ack", "tcp_win": "tcp_window",
        "payload_length": "payload_len",
    })


_register()

#: Every field name a dump may use (synonyms not included).
FIELD_NAMES: tuple[str, ...] = tuple(WRITERS)

NULL_READER = FieldReader("none", B_0, ORDER_ANNO, lambda s, b: 0, _inb_fixed(B_0), None)


def _find(table: dict[str, Any], name: str, depth: int = 0) -> Any:
    if depth > 8:
        return None
    if name in SYNONYMS:
        return _find(table, SYNONYMS[name], depth + 1)
    if name in table:
        return table[name]
    if " " in name:
        return _find(table, name.replace(" ", "_", 1), depth + 1)
    if "_" not in name:
        return _find(table, "ip_" + name, depth + 1)
    return None


def find_reader(name: str) -> FieldReader | None:
    """The reader for a field name (synonyms, spaces and ``ip_`` shorthand allowed)."""
    return _find(READERS, name)


def find_writer(name: str) -> FieldWriter | None:
    """The writer for a field name (synonyms, spaces and ``ip_`` shorthand allowed)."""
    return _find(WRITERS, name)


# ---------------------------------------------------------------------------------------
# Reading dumps
# ---------------------------------------------------------------------------------------

def split_fields(line: str, n: int) -> list[str]:
    """The first ``n`` whitespace-separated words of a dump line (double-quoted strings
    stay whole); missing words are empty."""
    out: list[str] = []
    i, end = 0, len(line)
    while len(out) < n:
        start = i
        while i < end and not line[i].isspace():
            if line[i] == '"':
                i += 1
                while i < end and line[i] != '"':
                    i += 2 if line[i] == "\\" else 1
                i = min(i + 1, end)
            else:
                i += 1
        out.append(line[start:i])
        while i < end and line[i].isspace():
            i += 1
    return out


def set_checksums(b: PacketBuilder) -> None:
    """Fill in the IP checksum and (for first fragments) the TCP, UDP or ICMP one."""
    from clickos.elements.ip.common import in_cksum, pseudo_cksum

    buf, h = b.buf, b.nh
    hl = (buf[h] & 0xF) << 2
    buf[h + 10: h + 12] = b"\0\0"
    b.s16(h + 10, in_cksum(bytes(buf[h: h + hl])))
    if b.g16(h + 6) & (IP_MF | IP_OFFMASK):
        return
    proto = buf[h + 9]
    t = b.th
    if t < 0:
        return
    tlen = b.end - t
    if proto == IP_PROTO_TCP and tlen >= 18:
        buf[t + 16: t + 18] = b"\0\0"
        b.s16(t + 16, pseudo_cksum(in_cksum(bytes(buf[t: b.end])), bytes(buf[h: h + hl]), proto, tlen))
    elif proto == IP_PROTO_UDP and tlen >= 8:
        buf[t + 6: t + 8] = b"\0\0"
        b.s16(t + 6, pseudo_cksum(in_cksum(bytes(buf[t: b.end])), bytes(buf[h: h + hl]), proto, tlen))
    elif proto == IP_PROTO_ICMP and tlen >= 4:
        buf[t + 2: t + 4] = b"\0\0"
        b.s16(t + 2, in_cksum(bytes(buf[t: b.end])))


class SummaryReader:
    """Turns the lines (or binary records) of a dump into :class:`PacketBuilder` s.

    ``warn(message)`` and ``error(message)`` receive problems, already prefixed
    with the ``FILE:LINE`` landmark by the caller's choice (they get the bare
    message and the landmark separately).  ``resolver`` looks up AddressInfo
    names for addresses."""

    def __init__(self, tf: Any, *, default_proto: int = IP_PROTO_TCP, zero: bool = True,
                 checksum: bool = False, warn: Callable[[str, str], None] | None = None,
                 error: Callable[[str, str], None] | None = None, resolver: Any = None) -> None:
        self.tf = tf
        self.default_proto = default_proto
        self.zero = zero
        self.checksum = checksum
        self.fields: list[FieldReader] = []
        self.field_order: list[int] = []
        self.flowid: tuple[bytes, int, bytes, int] | None = None
        self.aggregate: int | None = None
        self.binary = False
        self.minor_version = MINOR_VERSION
        self.format_complaint = False
        self._warn = warn or (lambda m, lm: None)
        self._error = error or (lambda m, lm: None)
        self.resolver = resolver

    def warn(self, msg: str) -> None:
        self._warn(msg, self.tf.landmark())

    def error(self, msg: str) -> None:
        self._error(msg, self.tf.landmark())

    # -- header lines ---------------------------------------------------------------------
    def check_banner(self) -> None:
        """Look at the first line: take the version from ``!IPSummaryDump``, or warn when
        the file does not look like a dump."""
        line = self.tf.peek_line()
        if line is None:
            return
        text = line.decode("latin-1")
        if text.startswith("!IPSummaryDump"):
            words = text[14:].split()
            if words:
                try:
                    major, minor = (int(x) for x in words[0].split(".", 1))
                    self.minor_version = minor
                    if major != MAJOR_VERSION or minor > MINOR_VERSION:
                        self.warn(f"unexpected IPSummaryDump version {major}.{minor}")
                        self.minor_version = MINOR_VERSION
                except ValueError:
                    pass
            self.tf.read_line()
        elif not any(text.startswith(p) for p in ("!creator", "!data", "!contents", "!proto", "!flowid")):
            if not self.fields:
                self.warn("missing banner line; is this an IP summary dump?")

    def set_fields(self, text: str, skip_bang: bool = True) -> None:
        """Handle ``!data FIELD...`` (or a FIELDS argument)."""
        self.fields = []
        for k, word in enumerate(split_words(text)):
            name = unquote(word)
            if k == 0 and skip_bang and name in ("!data", "!contents"):
                continue
            f = find_reader(name)
            if f is None:
                self.warn(f"unknown content type '{name}'")
                f = NULL_READER
            elif f.inject is None:
                self.warn(f"content type '{name}' ignored on input")
                f = NULL_READER
            self.fields.append(f)
        if not self.fields:
            self.error("no contents specified")
        self.field_order = sorted(range(len(self.fields)), key=lambda k: (self.fields[k].order, k))

    def set_proto(self, text: str, what: str) -> None:
        words = split_words(text)
        if len(words) != 2:
            self.error(f"bad {what}")
            return
        w = words[1]
        from clickos.core.confparse import parse_ip_protocol

        try:
            p = parse_ip_protocol(w, self.resolver)
            if 0 <= p < 256:
                self.default_proto = p
                return
        except (ConfigError, ValueError):
            pass
        if w in ("T", "U", "I"):
            self.default_proto = {"T": IP_PROTO_TCP, "U": IP_PROTO_UDP, "I": IP_PROTO_ICMP}[w]
        else:
            self.error(f"bad protocol in {what}")

    def set_flowid(self, text: str) -> None:
        words = split_words(text)
        if words and words[0].startswith("!"):
            words = words[1:]
        ok = len(words) >= 4
        src = dst = b"\0\0\0\0"
        sport = dport = 0
        if ok:
            src = b"\0\0\0\0" if words[0] == "-" else (_parse_ip(words[0], self) or b"")
            dst = b"\0\0\0\0" if words[2] == "-" else (_parse_ip(words[2], self) or b"")
            sp = 0 if words[1] == "-" else parse_uint(words[1])
            dp = 0 if words[3] == "-" else parse_uint(words[3])
            ok = len(src) == 4 and len(dst) == 4 and sp is not None and dp is not None and sp < 65536 and dp < 65536
            sport, dport = sp or 0, dp or 0
        if not ok:
            self.error("bad !flowid specification")
            self.flowid = None
            return
        if len(words) >= 5:
            self.set_proto("! " + words[4], "!flowid")
        self.flowid = (src, sport, dst, dport)

    def set_aggregate(self, text: str) -> None:
        words = split_words(text)
        v = parse_uint(words[1]) if len(words) == 2 else None
        if v is None:
            self.error("bad !aggregate specification")
            self.aggregate = None
        else:
            self.aggregate = v

    def _bang(self, text: str) -> None:
        for word, fn in (("!data", lambda: self.set_fields(text)), ("!contents", lambda: self.set_fields(text)),
                         ("!flowid", lambda: self.set_flowid(text)),
                         ("!proto", lambda: self.set_proto(text, "!proto")),
                         ("!aggregate", lambda: self.set_aggregate(text)), ("!binary", self._set_binary)):
            n = len(word)
            if text.startswith(word) and len(text) > n and text[n].isspace():
                fn()
                return

    def _set_binary(self) -> None:
        self.binary = True
        self.tf.landmark_pattern = "%f:record %l"
        self.tf.lineno = 1

    # -- records ----------------------------------------------------------------------------
    def _next_record(self) -> tuple[bytes | str, bool] | None:
        """The next data record: (text line or binary bytes, is_binary); None at the end."""
        tf = self.tf
        while True:
            if self.binary:
                head = tf.read(4)
                if len(head) < 4:
                    return None
                word = struct.unpack(">I", head)[0]
                rlen = word & 0x7FFFFFFF
                if rlen < 4:
                    self.error("binary record too short")
                    return None
                body = tf.read(rlen - 4)
                if len(body) < rlen - 4:
                    return None
                tf.lineno += 1
                if not word & 0x80000000:
                    return body, True
                text = body.rstrip(b"\0").decode("latin-1")
            else:
                raw = tf.read_line()
                if raw is None:
                    return None
                text = raw.decode("latin-1")
            if not text or text[0] not in "!#":
                if not text:
                    continue
                return text, False
            if text[0] == "!":
                self._bang(text)

    def read(self) -> PacketBuilder | None | bool:
        """The next packet; False at the end of the dump; None for a line that did not
        parse (already reported)."""
        rec = self._next_record()
        if rec is None:
            return False
        data, binary = rec
        b = PacketBuilder(self.default_proto, self.flowid, self.minor_version)
        b.scratch = self
        nfields = 0
        fields = self.fields
        if binary:
            assert isinstance(data, bytes)
            values: list[Any] = []
            i = 0
            for f in fields:
                if f.inb is None:
                    values.append(None)
                    i = len(data)
                else:
                    v, i = f.inb(data, i)
                    values.append(v)
            for k in self.field_order:
                f = fields[k]
                v = values[k]
                if v is None or f.inject is None:
                    continue
                f.inject(b, v)
                nfields += 1
        else:
            assert isinstance(data, str)
            words = split_fields(data, len(fields))
            for k in self.field_order:
                f = fields[k]
                w = words[k]
                if not w or w == "-" or f.inject is None:
                    continue
                v = f.ina(w, b)
                if v is None:
                    continue
                f.inject(b, v)
                nfields += 1
        if not nfields:
            if not self.format_complaint and (binary or data.strip()):
                self.error("no '!data' provided" if not fields else "packet parse error")
                self.format_complaint = True
            return None
        self.finish(b)
        return b

    def finish(self, b: PacketBuilder) -> None:
        """Fill in the lengths (and checksums) a dump line left unspecified."""
        if b.flowid is not None:
            b.make_ip(0)
        if b.is_ip and b.nh >= 0:
            b.make_transp()
            h = b.nh
            buf = b.buf
            ip_len = b.g16(h + 2)
            if not ip_len:
                ip_len = b.want_len
                if ip_len >= h - b.off:
                    ip_len -= h - b.off
                if ip_len > 0xFFFF:
                    ip_len = 0xFFFF
                elif ip_len == 0:
                    ip_len = b.network_length
                b.s16(h + 2, ip_len)
            if buf[h + 9] == IP_PROTO_UDP and b.ip_first_frag() and b.th >= 0 and b.g16(b.th + 4) == 0:
                b.s16(b.th + 4, (ip_len - ((buf[h] & 0xF) << 2)) & 0xFFFF)
            if self.checksum:
                xlen = ip_len - b.network_length if ip_len > b.network_length else 0
                if xlen:
                    b.put(xlen)
                    if self.zero:
                        b.buf[b.end - xlen: b.end] = bytes(xlen)
                set_checksums(b)
        if b.want_len > b.length:
            b.extra_length = b.want_len - b.length


# ---------------------------------------------------------------------------------------
# Writing dumps
# ---------------------------------------------------------------------------------------

class SummaryWriter:
    """Formats packets as dump lines (or binary records) for a list of fields."""

    def __init__(self, fields: str, *, binary: bool = False, bad_packets: bool = False,
                 careful_trunc: bool = True, extra_length: bool = True) -> None:
        self.writers: list[FieldWriter] = []
        self.errors: list[str] = []
        for word in split_words(fields):
            name = unquote(word)
            w = find_writer(name)
            if w is None:
                self.errors.append(f"unknown content type '{name}'")
                continue
            if binary and (w.btype < 0 or w.outb is None):
                self.errors.append(f"cannot use field {name} with BINARY")
            self.writers.append(w)
        if not self.writers:
            self.errors.append("no contents specified")
        self.binary = binary
        self.bad_packets = bad_packets
        self.careful_trunc = careful_trunc
        self.extra_length = extra_length
        self.needs_prepare = any(w.prepare for w in self.writers)

    def header(self, banner: str | None = None, verbose_lines: list[str] | None = None) -> str:
        out = [f"!IPSummaryDump {MAJOR_VERSION}.{MINOR_VERSION}\n"]
        if banner:
            out.append(f"!creator {quote(banner)}\n")
        out.extend(verbose_lines or [])
        names = [("timestamp" if w.name == "ntimestamp" and not self.binary else w.name) for w in self.writers]
        out.append("!data " + " ".join(names) + "\n")
        if self.binary:
            out.append("!binary\n")
        return "".join(out)

    def describe(self, d: PacketDesc) -> tuple[bytes, str | None]:
        """One packet's record and, with BAD_PACKETS, its ``!bad`` line."""
        if self.needs_prepare:
            d.prepare()
        if self.binary:
            parts = [b""]
            for w in self.writers:
                v = w.extract(d)
                parts.append(w.outb(d, v) if w.outb is not None else b"")
            body = b"".join(parts)
            record = struct.pack(">I", len(body) + 4) + body
        else:
            texts = []
            for w in self.writers:
                v = w.extract(d)
                texts.append("-" if v is None else w.outa(d, v))
            record = (" ".join(texts) + "\n").encode("latin-1", "replace")
        bad = d.bad[0] if d.bad else None
        return record, bad

    def bad_record(self, text: str) -> bytes:
        data = text.encode("latin-1", "replace")
        if self.binary:
            return struct.pack(">I", ((len(data) + 4) | 0x80000000) & _U32) + data
        return data
