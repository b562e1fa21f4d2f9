"""Configuration-string parsing, following Click's ``confparse`` and ``args`` libraries.

This module has two layers.

*String level* -- the ``cp_*`` helpers that manipulate raw configuration text:
:func:`split_args` (``cp_argvec``), :func:`split_words` (``cp_spacevec``),
:func:`shift_word` (``cp_shift_spacevec``), :func:`uncomment`, :func:`unquote`,
:func:`quote`, :func:`is_word`, :func:`is_identifier`, :func:`printable` and friends, and
:func:`expand_references` (``cp_expand``), the ``$`` scanner shared by the language's
variables (:mod:`clickos.lang.variables`) and Script (:mod:`clickos.core.expand`).  This
layer is what the language front end (:mod:`clickos.lang`) may use.

*Value level* -- one ``parse_X(text) -> value`` function per argument type that Click's
``Args`` understands (``IntArg``, ``BoolArg``, ``SecondsArg``, ``BandwidthArg``,
``IPAddressArg``, ``EtherAddressArg``, ``AnnoArg`` ...).  Each returns the parsed value
or raises :class:`~clickos.core.errors.ConfigError` whose message is exactly the text
Click prints after the ``KEYWORD:`` prefix.  Click's parsers mostly fail silently and
let ``Args`` print ``parse error``; we raise ``ConfigError("parse error")`` in those
cases, and the specific texts (``invalid number``, ``out of range, bound 255``,
``overflow, range 0-65535`` ...) where Click reports them.

Representation choices
----------------------
* Text is a Python ``str``; where binary data can occur (quoted strings with ``\\<hex>``
  or octal escapes) each byte is one character in the range U+0000..U+00FF (latin-1).
  :func:`unquote_bytes` / :func:`parse_data` give ``bytes``.
* IPv4 addresses are 4-byte ``bytes`` in network order; prefixes are ``(addr, mask)``
  pairs of such.  IPv6 addresses are 16-byte ``bytes``; IPv6 prefixes are
  ``(addr, prefix_len)``.  Ethernet addresses are 6-byte ``bytes``.
* Timestamps are ``int`` nanoseconds; intervals from :func:`parse_seconds` and friends
  are ``int`` in the requested unit, as Click's ``SecondsArg(d)`` gives ``uint32_t``.
* Bandwidths are ``int`` bytes per second.

Name resolution
---------------
Click lets ``AddressInfo``, ``AnnotationInfo``, ``IPNameInfo`` and friends define names
for addresses, annotations, protocols and ports.  Parsers that accept names take an
optional ``resolver`` -- a callable ``resolver(kind, name)`` returning the value or
``None`` when the name is unknown.  When no resolver is passed, the one installed with
:func:`using_resolver` (``Args`` installs its own while it runs a parser) is used.
Kinds and the values a resolver should return:

=====================  ============================================================
``"ip"``               4 bytes (or an ``int``)                  -- ``T_IP_ADDR``
``"ip_prefix"``        ``(addr, mask)``, 4 bytes (or ints) each -- ``T_IP_PREFIX``
``"ip_gw"``            4 bytes: default gateway of a network device
``"ip6"``              16 bytes                                 -- ``T_IP6_ADDR``
``"ip6_prefix"``       ``(addr16, prefix_len)``                 -- ``T_IP6_PREFIX``
``"ether"``            6 bytes                                  -- ``T_ETHERNET_ADDR``
``"annotation"``       ``int`` encoded as ``size << 16 | offset``
``"ip_proto"``         ``int``
``"icmp_type"``        ``int``
``"icmp_code:<type>"`` ``int``
``"port:<proto>"``     ``int`` (e.g. ``"port:6"`` for TCP)
=====================  ============================================================

The AddressInfo suffixes (``name:ip``, ``name:bcast``, ``name:gw``, ``name:net``,
``name:ip6``, ``name:eth`` ...) are interpreted here, as ``AddressInfo::query_*`` does;
the resolver only ever sees bare names.
"""

from __future__ import annotations

import contextlib
import math
import re
import socket
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from fractions import Fraction
from typing import Any, TypeVar

from clickos.core.errors import ConfigError

__all__ = [
    "ANNOTATIONS", "ANNO_AREA_SIZE", "ICMP_CODES", "ICMP_TYPES", "IP_PROTOCOLS", "KNOWN_PORTS",
    "PARSERS", "PARSE_ERROR", "Resolver",
    "INT_INVALID", "INT_OK", "INT_RANGE", "MAX_EXPANSION_DEPTH",
    "anno_offset", "anno_size", "current_resolver", "expand_references", "is_identifier",
    "is_space", "is_var_char", "is_word", "join_args", "join_words", "parse_or_none",
    "printable", "quote", "shift_word", "skip_comment_space", "skip_space", "split_args",
    "split_words", "take_keyword", "take_string", "take_word", "uncomment", "unquote",
    "unquote_bytes", "using_resolver", "make_anno",
    "parse_any", "parse_anno", "parse_bandwidth", "parse_bandwidth_status", "parse_bool",
    "parse_bounded_int", "parse_byte", "parse_data", "parse_double", "parse_element",
    "parse_ether_address", "parse_filename", "parse_fixed_point", "parse_icmp_code",
    "parse_icmp_type", "parse_int", "parse_int8", "parse_int16", "parse_int64",
    "parse_int_prefix", "parse_integer",
    "parse_ip6_address", "parse_ip6_address_or_prefix", "parse_ip6_prefix", "parse_ip_address",
    "parse_ip_address_list", "parse_ip_address_or_prefix", "parse_ip_port", "parse_ip_prefix",
    "parse_ip_protocol", "parse_keyword", "parse_microseconds", "parse_milliseconds",
    "parse_named_int", "parse_real10", "parse_real10_parts", "parse_saturating_int",
    "parse_seconds", "parse_seconds_as", "parse_seconds_double", "parse_short", "parse_size",
    "parse_string", "parse_tcp_port", "parse_timestamp", "parse_timestamp_signed",
    "parse_udp_port", "parse_uint8", "parse_uint16", "parse_uint64", "parse_unsigned",
    "parse_unsigned_real10", "parse_unsigned_fixed_point", "parse_word",
    "anno_arg", "bounded_int", "fixed_point", "int_arg", "ip_port", "real10", "seconds_as",
    "unparse_bandwidth", "unparse_bool", "unparse_ether", "unparse_interval", "unparse_ip",
    "unparse_ip6", "unparse_ip_prefix", "unparse_microseconds", "unparse_milliseconds",
    "unparse_real2", "unparse_real10", "unparse_timestamp",
    "ip_mask_to_prefix_len", "ip_prefix_mask", "ip6_mask_to_prefix_len", "ip6_prefix_mask",
    "parse_real", "parse_ip", "parse_ether",
]

#: Click's generic message when a parser fails without saying why.
PARSE_ERROR = "parse error"

#: ``resolver(kind, name) -> value | None``; see the module docstring for the kinds.
Resolver = Callable[[str, str], Any]

_SPACE = " \t\n\v\f\r"      # C isspace() in the "C" locale
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


def _fail(message: str = PARSE_ERROR) -> ConfigError:
    return ConfigError(message)


_T = TypeVar("_T")


def parse_or_none(parser: Callable[[str], _T], text: str) -> _T | None:
    """``parser(text)``, or None where it raises :class:`ConfigError`: a parser called the
    way Click calls ``XArg::parse(str, result)`` outside ``Args``, where failure is silent
    and only the boolean result counts (the lexer's ``IntArg().parse(port_text, port)``,
    ``WordArg::parse``, ``StringArg::parse``)."""
    try:
        return parser(text)
    except ConfigError:
        return None


def _isdigit(c: str) -> bool:
    return "0" <= c <= "9"


def _isalpha(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def _isalnum(c: str) -> bool:
    return _isdigit(c) or _isalpha(c)


def _hexval(c: str) -> int:
    """Value of a hex digit, or -1."""
    if "0" <= c <= "9":
        return ord(c) - 48
    if "a" <= c <= "f":
        return ord(c) - 87
    if "A" <= c <= "F":
        return ord(c) - 55
    return -1


def _to_bytes(s: str) -> bytes:
    """Latin-1 characters become single bytes; anything wider is UTF-8 encoded."""
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return b"".join(ch.encode("latin-1") if ord(ch) < 256
                        else ch.encode("utf-8", "surrogatepass") for ch in s)


# ---------------------------------------------------------------------------------------
# Resolver plumbing
# ---------------------------------------------------------------------------------------

_resolver_var: ContextVar[Resolver | None] = ContextVar("clickos_confparse_resolver", default=None)


def current_resolver() -> Resolver | None:
    """The resolver installed by :func:`using_resolver`, if any."""
    return _resolver_var.get()


@contextlib.contextmanager
def using_resolver(resolver: Resolver | None) -> Iterator[None]:
    """Install ``resolver`` as the default for name lookups inside the ``with`` block."""
    token = _resolver_var.set(resolver)
    try:
        yield
    finally:
        _resolver_var.reset(token)


def _pick(resolver: Resolver | None) -> Resolver | None:
    return resolver if resolver is not None else _resolver_var.get()


def _ask(res: Resolver | None, kind: str, name: str) -> Any:
    if res is None or not name:
        return None
    return res(kind, name)


def _as_addr(value: Any, size: int) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
    b = bytes(value)
    return b if len(b) == size else None


# ---------------------------------------------------------------------------------------
# String level: scanning helpers
# ---------------------------------------------------------------------------------------

def _skip_comment(s: str, i: int, end: int) -> int:
    """``s[i:i+2]`` opens a comment; return the index just past it (never past ``end``)."""
    if s[i + 1] == "/":
        # A line comment runs through the newline (\n, \r or \r\n).
        j = i + 2
        while j + 1 < end and s[j] != "\n" and s[j] != "\r":
            j += 1
        if j + 1 < end and s[j] == "\r" and s[j + 1] == "\n":
            j += 1
        return min(j + 1, end)
    j = i + 2
    while j + 2 < end and not (s[j] == "*" and s[j + 1] == "/"):
        j += 1
    return min(j + 2, end)


def _opens_comment(s: str, i: int, end: int) -> bool:
    return s[i] == "/" and i + 1 < end and (s[i + 1] == "/" or s[i + 1] == "*")


def _skip_backslash(s: str, i: int, end: int) -> int:
    """``s[i]`` is a backslash; skip the escape sequence it starts (``\\<...>`` included)."""
    if i + 1 >= end:
        return i + 1
    nxt = s[i + 1]
    if nxt == "<":
        j = i + 2
        while j < end:
            if s[j] == ">":
                return j + 1
            if _opens_comment(s, j, end):
                j = _skip_comment(s, j, end)
            else:
                j += 1
        return end
    if nxt == "\r" and i + 2 < end and s[i + 2] == "\n":
        return i + 3
    return i + 2


def _skip_double_quote(s: str, i: int, end: int) -> int:
    j = i + 1
    while j < end:
        c = s[j]
        if c == "\\":
            j = _skip_backslash(s, j, end)
        elif c == '"':
            return j + 1
        else:
            j += 1
    return end


def _skip_single_quote(s: str, i: int, end: int) -> int:
    j = s.find("'", i + 1, end)
    return end if j < 0 else j + 1


def skip_comment_space(s: str, i: int = 0, end: int | None = None) -> int:
    """Index of the first character at or after ``i`` that is neither space nor inside a
    ``/* */`` or ``//`` comment (``cp_skip_comment_space``)."""
    if end is None:
        end = len(s)
    while i < end:
        c = s[i]
        if c in _SPACE:
            i += 1
        elif c == "/" and _opens_comment(s, i, end):
            i = _skip_comment(s, i, end)
        else:
            break
    return i


def skip_space(s: str, i: int = 0, end: int | None = None) -> int:
    """Index of the first non-space character at or after ``i`` (``cp_skip_space``)."""
    if end is None:
        end = len(s)
    while i < end and s[i] in _SPACE:
        i += 1
    return i


def is_var_char(c: str) -> bool:
    """True for a character of a variable name: an ASCII letter, digit or ``_`` (Click's
    ``isalnum(c) || c == '_'``)."""
    return _isalnum(c) or c == "_"


def _uncomment_from(s: str, i: int, stop_at_comma: bool) -> tuple[str, int]:
    """Shared engine of :func:`uncomment` and :func:`split_args` (Click's
    ``partial_uncomment``): drop leading/trailing space, replace each comment together with
    the space around it by one space, keep quoted text untouched.  Returns the text and the
    index where scanning stopped (a top-level comma, or the end)."""
    end = len(s)
    i = skip_comment_space(s, i, end)
    pieces: list[str] = []
    left = right = i
    after_comment = False
    while i < end:
        c = s[i]
        if c in _SPACE:
            i += 1
        elif c == "/" and _opens_comment(s, i, end):
            i = _skip_comment(s, i, end)
            after_comment = True
        elif c == "," and stop_at_comma:
            break
        else:
            if after_comment:
                pieces.append(s[left:right])
                pieces.append(" ")
                left = i
                after_comment = False
            if c == "'":
                i = _skip_single_quote(s, i, end)
            elif c == '"':
                i = _skip_double_quote(s, i, end)
            elif c == "\\" and i + 1 < end and s[i + 1] == "<":
                i = _skip_backslash(s, i, end)
            else:
                i += 1
            right = i
    pieces.append(s[left:right])
    return "".join(pieces), i


def uncomment(s: str) -> str:
    """Strip leading and trailing space and replace comments (with adjacent space) by a
    single space; quoted text is left alone (``cp_uncomment``).

    ``uncomment("  a /* c */   // c\\n   b  ") == "a b"``, ``uncomment("  a  b  ") == "a  b"``.
    """
    return _uncomment_from(s, 0, False)[0]


def split_args(conf: str) -> list[str]:
    """Split a configuration string at top-level commas (``cp_argvec``).

    Each piece goes through :func:`uncomment`.  Commas inside single or double quotes,
    ``\\<...>`` blocks and comments do not split; Click does *not* treat parentheses,
    brackets or braces specially, and neither do we.  An empty final piece is dropped, so
    ``"" -> []``, ``"a, b," -> ["a", "b"]``, ``" , a" -> ["", "a"]``.
    """
    out: list[str] = []
    n = len(conf)
    pos = 0
    while pos < n:
        arg, pos = _uncomment_from(conf, pos, True)
        if arg or pos < n:
            out.append(arg)
        pos += 1
    return out


def join_args(args: list[str]) -> str:
    """Join arguments with ``", "`` without quoting them (``cp_unargvec``)."""
    return ", ".join(args)


def _skip_word(s: str, i: int, end: int) -> int:
    while i < end:
        c = s[i]
        if c == "/":
            if _opens_comment(s, i, end):
                return i
            i += 1
        elif c == '"':
            i = _skip_double_quote(s, i, end)
        elif c == "'":
            i = _skip_single_quote(s, i, end)
        elif c == "\\":
            i = _skip_backslash(s, i, end) if i + 1 < end and s[i + 1] == "<" else i + 1
        elif c in _SPACE:
            return i
        else:
            i += 1
    return i


def split_words(s: str) -> list[str]:
    """Split at unquoted whitespace, dropping comments (``cp_spacevec``).  Words are
    returned as written (quotes kept): ``split_words("a  b, c") == ["a", "b,", "c"]``."""
    out: list[str] = []
    end = len(s)
    i = skip_comment_space(s, 0, end)
    while i < end:
        j = _skip_word(s, i, end)
        out.append(s[i:j])
        i = skip_comment_space(s, j, end)
    return out


def shift_word(s: str) -> tuple[str, str]:
    """Return the first space-separated word of ``s`` and the rest with its leading
    space and comments removed (``cp_shift_spacevec``).  The word is ``""`` when ``s``
    holds only space and comments."""
    end = len(s)
    i = skip_comment_space(s, 0, end)
    j = _skip_word(s, i, end)
    k = skip_comment_space(s, j, end)
    return s[i:j], s[k:]


def join_words(words: list[str]) -> str:
    """Join words with single spaces (``cp_unspacevec``)."""
    return " ".join(words)


def _expand_backslash(s: str, i: int, end: int, out: list[str]) -> int:
    """Expand the backslash escape at ``s[i]`` into ``out``; return the index after it.

    Understood: ``\\<newline>`` (dropped), ``\\a \\b \\f \\n \\r \\t \\v``, up to three octal
    digits, ``\\x`` followed by any number of hex digits, ``\\<hex digits, spaces and
    comments>`` (binary data, one byte per two digits) and ``\\c`` for any other ``c``.
    A backslash ending the string stands for itself."""
    if i + 1 >= end:
        out.append("\\")
        return end
    c = s[i + 1]
    if c == "\r":
        return i + 3 if i + 2 < end and s[i + 2] == "\n" else i + 2
    if c == "\n":
        return i + 2
    simple = _C_ESCAPES.get(c)
    if simple is not None:
        out.append(simple)
        return i + 2
    if "0" <= c <= "7":
        value = 0
        j = i + 1
        while j < end and j < i + 4 and "0" <= s[j] <= "7":
            value = value * 8 + ord(s[j]) - 48
            j += 1
        out.append(chr(value & 0xFF))
        return j
    if c == "x":
        value = 0
        j = i + 2
        while j < end:
            h = _hexval(s[j])
            if h < 0:
                break
            value = ((value << 4) | h) & 0xFF
            j += 1
        out.append(chr(value))
        return j
    if c == "<":
        value = 0
        ndigits = 0
        j = i + 2
        while j < end:
            ch = s[j]
            if ch == ">":
                return j + 1
            h = _hexval(ch)
            if h >= 0:
                value = value * 16 + h
                ndigits += 1
                if ndigits == 2:
                    out.append(chr(value))
                    value = ndigits = 0
                j += 1
            elif _opens_comment(s, j, end):
                j = _skip_comment(s, j, end)
            else:
                j += 1      # space, or junk that Click also ignores
        return end
    out.append(c)
    return i + 2


_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def unquote(s: str) -> str:
    """Remove one level of quoting (``cp_unquote``).

    The text is first :func:`uncomment`-ed.  ``"..."`` is replaced by its contents with
    backslash escapes expanded (see :func:`_expand_backslash`); ``'...'`` by its literal
    contents; a ``\\<hex>`` block outside quotes is expanded too.  Binary results use
    latin-1 characters."""
    x = uncomment(s)
    end = len(x)
    out: list[str] = []
    start = 0
    quote_char = ""
    i = 0
    while i < end:
        c = x[i]
        if c == '"' or c == "'":
            if not quote_char:
                out.append(x[start:i])
                start = i + 1
                quote_char = c
            elif quote_char == c:
                out.append(x[start:i])
                start = i + 1
                quote_char = ""
        elif c == "\\" and i + 1 < end and (quote_char == '"' or (not quote_char and x[i + 1] == "<")):
            out.append(x[start:i])
            start = _expand_backslash(x, i, end, out)
            i = start
            continue
        i += 1
    if start == 0:
        return x
    out.append(x[start:])
    return "".join(out)


def unquote_bytes(s: str) -> bytes:
    """:func:`unquote`, returning ``bytes``."""
    return _to_bytes(unquote(s))


def quote(s: str | bytes, allow_newlines: bool = False) -> str:
    """Double-quote ``s`` so that :func:`unquote` gives it back (``cp_quote``).

    Backslash, ``"`` and ``$`` are backslash-escaped, tab/CR/newline become ``\\t \\r
    \\n`` (newlines stay literal if ``allow_newlines``), and other control or non-ASCII
    bytes become three-digit octal escapes.  The empty string quotes to ``""``."""
    if isinstance(s, (bytes, bytearray)):
        s = bytes(s).decode("latin-1")
    if not s:
        return '""'
    out = ['"']
    for ch in s:
        if ch in '\\"$':
            out.append("\\" + ch)
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\n":
            out.append("\n" if allow_newlines else "\\n")
        else:
            o = ord(ch)
            if o < 32 or 127 <= o < 256:
                out.append(f"\\{o >> 6}{(o >> 3) & 7}{o & 7}")
            else:
                out.append(ch)
    out.append('"')
    return "".join(out)


def is_space(s: str) -> bool:
    """True if every character of ``s`` is C whitespace (``cp_is_space``; true for "")."""
    return all(c in _SPACE for c in s)


def is_word(s: str) -> bool:
    """True for a nonempty string of printable ASCII other than ``"``, ``'``, ``\\`` and ``,``
    (``cp_is_word``)."""
    if not s:
        return False
    for c in s:
        o = ord(c)
        if o <= 32 or o >= 127 or c in "\"'\\,":
            return False
    return True


def is_identifier(s: str) -> bool:
    """True for a Click identifier: ``[A-Za-z0-9_@/]+`` where ``/`` is neither first nor
    last and never doubled (``cp_is_click_id``)."""
    n = len(s)
    for i, c in enumerate(s):
        if _isalnum(c) or c == "_" or c == "@":
            continue
        if c != "/" or i == 0 or i == n - 1 or s[i + 1] == "/":
            return False
    return n > 0


def printable(s: str) -> str:
    """Click's ``String::printable``: ``^X`` for control characters, octal escapes for
    characters 127-255 (bytes, as configuration text is read as latin-1) and for the
    UTF-8 bytes of any wider character."""
    if all(32 <= ord(c) < 127 for c in s):
        return s
    out = []
    for c in s:
        o = ord(c)
        if 32 <= o < 127:
            out.append(c)
        elif o < 32:
            out.append("^" + chr(o + 64))
        elif o < 256:
            out.append(f"\\{o:03o}")
        else:
            out.extend(f"\\{b:03o}" for b in c.encode("utf-8", "surrogatepass"))
    return "".join(out)


# ---------------------------------------------------------------------------------------
# $ references (cp_expand)
# ---------------------------------------------------------------------------------------

#: ``$`` references nested deeper than this are left as written (Click's ``cp_expand``
#: depth limit); it is also what stops a variable whose value mentions itself.
MAX_EXPANSION_DEPTH = 10

#: ``expander(name, kind, depth) -> str | None``: the value of one reference, or None to
#: leave it as written.  ``kind`` is ``"{"`` for ``${...}``, ``"("`` for ``$(...)`` and
#: ``"a"`` for ``$name``, ``$?``, ``$#`` and ``$$`` (Click's ``VariableExpander``).
Expander = Callable[[str, str, int], "str | None"]


def expand_references(config: str, expander: Expander, expand_quote: bool = False,
                      depth: int = 0) -> str:
    """Replace ``$name``, ``${...}``, ``$(...)``, ``$?``, ``$#`` and ``$$`` in ``config``
    with what ``expander`` gives (Click's ``cp_expand``).

    References inside single quotes and comments stay as written; text substituted
    inside double quotes is backslash-protected, and ``expand_quote`` double-quotes text
    substituted outside quotes.  A ``$`` inside ``${...}`` or ``$(...)`` makes the name
    itself be expanded first (at ``depth + 1``); such a reference that ``expander``
    rejects is kept with its expanded name.  References deeper than
    :data:`MAX_EXPANSION_DEPTH` are not expanded.  As in Click, the input is returned
    unchanged when nothing was accumulated before the tail -- even if a leading
    reference expanded to the empty string."""
    if "$" not in config:
        return config
    end = len(config)
    s = 0
    uninterpolated = 0
    in_quote = ""
    out: list[str] = []
    while s < end:
        c = config[s]
        if c == "\\":
            if s + 1 < end and in_quote == '"':
                s += 1
        elif c == "'" or c == '"':
            if not in_quote:
                in_quote = c
            elif in_quote == c:
                in_quote = ""
        elif c == "/":
            if s + 1 < end and config[s + 1] in "/*" and not in_quote:
                s = skip_comment_space(config, s, end) - 1
        elif c == "$" and s + 1 < end and in_quote != "'" and depth <= MAX_EXPANSION_DEPTH:
            before = s
            nxt = config[s + 1]
            expand_name = False
            if nxt == "{":
                kind = "{"
                s += 2
                start = s
                while s < end and config[s] != "}":
                    if config[s] == "$":
                        expand_name = True
                    s += 1
                if s == end:
                    break
                name = config[start:s]
                s += 1
            elif nxt == "(":
                kind = "("
                level = 1
                nquote = ""
                s += 2
                start = s
                while s < end and level:
                    ch = config[s]
                    if ch == "(":
                        if not nquote:
                            level += 1
                    elif ch == ")":
                        if not nquote:
                            level -= 1
                    elif ch == '"' or ch == "'":
                        if not nquote:
                            nquote = ch
                        elif nquote == ch:
                            nquote = ""
                    elif ch == "\\":
                        if s + 1 < end and nquote != "'":
                            s += 1
                    elif ch == "$":
                        if nquote != "'":
                            expand_name = True
                    s += 1
                if s == start or config[s - 1] != ")":
                    break   # unterminated: the rest is kept as written
                name = config[start:s - 1]
            elif is_var_char(nxt):
                kind = "a"
                s += 1
                start = s
                while s < end and is_var_char(config[s]):
                    s += 1
                name = config[start:s]
            elif nxt in "?#$":
                kind = "a"
                name = nxt
                s += 2
            else:
                s += 1
                continue

            out.append(config[uninterpolated:before])
            if expand_name:
                name = expand_references(name, expander, False, depth + 1)
            text = expander(name, kind, depth)
            uninterpolated = s
            if text is None:
                if expand_name:
                    out.append(config[before:before + 2] + name + config[s - 1])
                else:
                    uninterpolated = before
            elif in_quote == '"' or (expand_quote and not in_quote):
                text = quote(text)[1:-1]
                out.append(text if in_quote == '"' else '"' + text + '"')
            else:
                out.append(text)
            continue
        s += 1
    if not any(out):
        return config
    out.append(config[uninterpolated:])
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Strings, words, keywords
# ---------------------------------------------------------------------------------------

def _string_end(s: str) -> int:
    end = len(s)
    i = 0
    while i < end:
        c = s[i]
        if c in _SPACE:
            break
        if c == '"':
            i = _skip_double_quote(s, i, end)
        elif c == "'":
            i = _skip_single_quote(s, i, end)
        elif c == "\\":
            i = _skip_backslash(s, i, end) if i + 1 < end and s[i + 1] == "<" else i + 1
        else:
            i += 1
    return i


def take_string(text: str) -> tuple[str, str]:
    """Parse a possibly-quoted string from the front of ``text`` and return it unquoted,
    with the unparsed rest (starting at the first unquoted space) (``cp_string`` with a
    rest pointer).  Raises ``parse error`` if ``text`` starts with space or is empty."""
    i = _string_end(text)
    if i == 0:
        raise _fail()
    return unquote(text[:i]), text[i:]


def parse_string(text: str) -> str:
    """A single possibly-quoted string, unquoted (``StringArg``/``cp_string``).  Unquoted
    empty text and unquoted spaces are errors: ``'a b'`` needs quotes."""
    i = _string_end(text)
    if i == 0 or i != len(text):
        raise _fail()
    return unquote(text)


def parse_data(text: str) -> bytes:
    """:func:`parse_string` as ``bytes`` -- for ``DATA`` arguments with ``\\<hex>`` and escapes."""
    return _to_bytes(parse_string(text))


def take_word(text: str) -> tuple[str, str]:
    """Like :func:`take_string`, but the unquoted result must satisfy :func:`is_word`."""
    word, rest = take_string(text)
    if not is_word(word):
        raise _fail()
    return word, rest


def parse_word(text: str) -> str:
    """A single word (``WordArg``/``cp_word``): a string whose unquoted form is a word."""
    word = parse_string(text)
    if not is_word(word):
        raise _fail()
    return word


def _keyword_end(text: str) -> int:
    for i, c in enumerate(text):
        if c in _SPACE:
            return i
        if not (_isalnum(c) or c in "_.:?!"):
            return -1
    return len(text)


def take_keyword(text: str) -> tuple[str, str]:
    """A keyword (``[A-Za-z0-9_.:?!]+``) from the front of ``text`` and the rest with its
    leading space removed (``cp_keyword`` with a rest pointer)."""
    i = _keyword_end(text)
    if i <= 0:
        raise _fail()
    j = i
    while j < len(text) and text[j] in _SPACE:
        j += 1
    return text[:i], text[j:]


def parse_keyword(text: str) -> str:
    """A keyword, ``[A-Za-z0-9_.:?!]+`` with no quotes (``KeywordArg``/``cp_keyword``)."""
    i = _keyword_end(text)
    if i <= 0 or i != len(text):
        raise _fail()
    return text


def parse_any(text: str) -> str:
    """The argument text itself (``AnyArg``)."""
    return text


def parse_element(text: str) -> str:
    """An element reference.  Returns the element name; looking it up (and Click's
    ``does not name an element`` error) happens when the router resolves it.  Quoted names
    are unquoted as ``cp_element`` does; other text is returned unchanged (``ElementArg``
    passes it to ``Router::find`` verbatim)."""
    if not text:
        raise _fail()
    i = _string_end(text)
    if i == len(text):
        return unquote(text)
    return text


def parse_filename(text: str) -> str:
    """A filename (``FilenameArg``): a nonempty string with ``~`` and ``~user`` expanded
    and doubled slashes collapsed."""
    import os
    import pwd

    fn = parse_string(text)
    if not fn:
        raise _fail()
    if fn[0] == "~":
        if len(fn) == 1 or fn[1] == "/":
            home = os.environ.get("HOME")
            if home is not None:
                fn = home + fn[1:]
        else:
            slash = fn.find("/")
            if slash < 0:
                slash = len(fn)
            user = fn[1:slash]
            try:
                fn = pwd.getpwnam(user).pw_dir + fn[slash:]
            except (KeyError, ValueError, UnicodeError, OSError):
                pass
    while "//" in fn:
        fn = fn.replace("//", "/")
    return fn


# ---------------------------------------------------------------------------------------
# Booleans
# ---------------------------------------------------------------------------------------

_BOOLS = {"0": False, "n": False, "f": False, "false": False, "no": False,
          "1": True, "y": True, "t": True, "true": True, "yes": True}


def parse_bool(text: str) -> bool:
    """``BoolArg``: ``0 n f no false`` are false, ``1 y t yes true`` true (exact,
    case-sensitive -- Click accepts nothing else, not even ``on``/``off``)."""
    try:
        return _BOOLS[text]
    except KeyError:
        raise _fail() from None


def unparse_bool(value: bool) -> str:
    """``true`` or ``false``."""
    return "true" if value else "false"


# ---------------------------------------------------------------------------------------
# Integers (IntArg)
# ---------------------------------------------------------------------------------------

def _int_span(text: str, signed: bool, base: int) -> tuple[int, int]:
    """Find the extent of an integer at the start of ``text`` (Click's ``IntArg::span``).

    Returns ``(stop, base)``: ``stop`` is where the number ends (0 if there is none) and
    ``base`` the effective base after looking at ``0x``/``0b``/``0`` prefixes."""
    n = len(text)
    i = 0
    if i < n and ((signed and text[0] == "-") or text[0] == "+"):
        i = 1
    if base in (0, 16) and i + 2 < n and text[i] == "0" and text[i + 1] in "xX":
        i += 2
        base = 16
    elif base == 0 and i + 2 < n and text[i] == "0" and text[i + 1] in "bB":
        i += 2
        base = 2
    elif base == 0 and i < n and text[i] == "0":
        base = 8
    elif base == 0:
        base = 10
    ndig = min(base, 10)
    nlet = max(base - 10, 0)
    first = i
    last = i - 1            # index just past the last digit seen
    while i < n:
        c = text[i]
        if c == "_" and last == i:
            pass            # one underscore may follow a digit
        elif ("0" <= c < chr(48 + ndig)) or ("A" <= c < chr(65 + nlet)) or ("a" <= c < chr(97 + nlet)):
            last = i + 1
        else:
            break
        i += 1
    if i != first:
        return last, base
    if first > 1:
        return first - 1, base   # "0x!" or "+0x": only the leading 0 is a number
    return 0, base


def _int_limits(bits: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _int_value(text: str, stop: int, b: int, bits: int, signed: bool) -> tuple[int, bool]:
    """The value of the integer ``text[:stop]`` found by :func:`_int_span` in base ``b``.
    Returns ``(value, in_range)`` where an out-of-range value is already saturated."""
    magnitude = 0
    nlet = max(b - 10, 0)
    cap = 1 << (bits + 1)
    for c in text[:stop]:
        if magnitude > cap:
            break           # already out of range; skip the rest of a huge number
        if "0" <= c <= "9":
            d = ord(c) - 48
        elif "A" <= c < chr(65 + nlet):
            d = ord(c) - 55
        elif "a" <= c < chr(97 + nlet):
            d = ord(c) - 87
        else:
            continue        # sign, base prefix letters, underscores
        magnitude = magnitude * b + d
    value = -magnitude if (signed and text[0] == "-") else magnitude
    lo, hi = _int_limits(bits, signed)
    if value > hi:
        return hi, False
    if value < lo:
        return lo, False
    return value, True


def _int_core(text: str, bits: int, signed: bool, base: int) -> tuple[int, bool]:
    """Parse a whole-string integer.  Returns ``(value, in_range)`` where an out-of-range
    value is already saturated; raises ``ConfigError("invalid number")`` on bad syntax."""
    stop, b = _int_span(text, signed, base)
    if b < 2 or b > 36 or stop == 0 or stop != len(text):
        raise _fail("invalid number")
    return _int_value(text, stop, b, bits, signed)


#: :func:`parse_int_prefix` statuses (Click's ``cp_errno`` after ``cp_integer``).
INT_OK, INT_RANGE, INT_INVALID = 0, 1, 2


def parse_int_prefix(text: str, i: int = 0, end: int | None = None, base: int = 0,
                     signed: bool = True, bits: int = 32) -> tuple[int, int, int]:
    """Parse the integer at the front of ``text[i:end]`` with :func:`parse_integer`'s
    syntax (Click's ``cp_integer(begin, end, base, &result)``).

    Returns ``(stop, value, status)``: ``stop`` is the index where the number ends
    (``i`` and status :data:`INT_INVALID` when there is none); an out-of-range value is
    saturated and has status :data:`INT_RANGE`, otherwise the status is :data:`INT_OK`."""
    if end is None:
        end = len(text)
    sub = text[i:end]
    stop, b = _int_span(sub, signed, base)
    if b < 2 or b > 36 or stop == 0:
        return i, 0, INT_INVALID
    value, ok = _int_value(sub, stop, b, bits, signed)
    return i + stop, value, (INT_OK if ok else INT_RANGE)


def parse_integer(text: str, bits: int = 32, signed: bool = True, base: int = 0,
                  saturating: bool = False) -> int:
    """``IntArg(base)`` into a ``bits``-bit integer.

    Base 0 means decimal, with ``0x`` (hex), ``0b`` (binary) and leading-``0`` (octal)
    prefixes; single underscores may separate digits (``1_000_000``).  ``+`` is always
    allowed, ``-`` only when ``signed``.  Errors: ``invalid number``; ``out of range, bound
    N`` where N is the violated limit (unless ``saturating``, which clamps silently like
    ``SaturatingIntArg``)."""
    value, ok = _int_core(text, bits, signed, base)
    if not ok and not saturating:
        raise _fail(f"out of range, bound {value}")
    return value


def parse_int(text: str) -> int:
    """A 32-bit signed integer (``int`` with ``IntArg``)."""
    return parse_integer(text, 32, True)


def parse_unsigned(text: str) -> int:
    """A 32-bit unsigned integer (``uint32_t``/``unsigned`` with ``IntArg``)."""
    return parse_integer(text, 32, False)


def parse_int8(text: str) -> int:
    """An ``int8_t``."""
    return parse_integer(text, 8, True)


def parse_uint8(text: str) -> int:
    """A ``uint8_t`` (Click's ``cpByte``)."""
    return parse_integer(text, 8, False)


parse_byte = parse_uint8


def parse_int16(text: str) -> int:
    """An ``int16_t`` (``cpShort``)."""
    return parse_integer(text, 16, True)


parse_short = parse_int16


def parse_uint16(text: str) -> int:
    """A ``uint16_t`` (``cpUnsignedShort``)."""
    return parse_integer(text, 16, False)


def parse_int64(text: str) -> int:
    """An ``int64_t``."""
    return parse_integer(text, 64, True)


def parse_uint64(text: str) -> int:
    """A ``uint64_t``."""
    return parse_integer(text, 64, False)


def parse_size(text: str) -> int:
    """A ``size_t`` (64-bit unsigned, as on Click's usual 64-bit build)."""
    return parse_integer(text, 64, False)


def parse_saturating_int(text: str, bits: int = 32, signed: bool = True, base: int = 0) -> int:
    """``SaturatingIntArg``: like :func:`parse_integer` but clamps instead of failing."""
    return parse_integer(text, bits, signed, base, saturating=True)


def parse_bounded_int(text: str, lo: int, hi: int, bits: int = 32, signed: bool = True,
                      base: int = 0) -> int:
    """``BoundedIntArg(lo, hi)`` reading a ``bits``-bit variable (signed by default, as
    for an ``int``).  The variable's own range is checked first, then ``lo``/``hi``;
    failures say ``out of range, bound <lo or hi>``."""
    value = parse_integer(text, bits, signed, base)
    if value < lo:
        raise _fail(f"out of range, bound {lo}")
    if value > hi:
        raise _fail(f"out of range, bound {hi}")
    return value


def int_arg(bits: int = 32, signed: bool = True, base: int = 0) -> Callable[[str], int]:
    """A one-argument parser for ``IntArg(base)`` into a ``bits``-bit variable."""
    def parser(text: str) -> int:
        return parse_integer(text, bits, signed, base)
    parser.__name__ = f"int_arg_{'s' if signed else 'u'}{bits}_b{base}"
    return parser


def bounded_int(lo: int, hi: int, bits: int = 32, signed: bool = True,
                base: int = 0) -> Callable[[str], int]:
    """A one-argument parser for ``BoundedIntArg(lo, hi)``."""
    def parser(text: str) -> int:
        return parse_bounded_int(text, lo, hi, bits, signed, base)
    parser.__name__ = f"bounded_int_{lo}_{hi}"
    return parser


def _silent_int(text: str, bits: int = 32, signed: bool = True, base: int = 0) -> int | None:
    """IntArg used without an ArgContext: failure of any kind is just ``None``."""
    try:
        value, ok = _int_core(text, bits, signed, base)
    except ConfigError:
        return None
    return value if ok else None


# ---------------------------------------------------------------------------------------
# Real numbers: Click's decimal-string scanners
# ---------------------------------------------------------------------------------------

_EXP_CAP = 10 ** 9  # exponents are clamped here (Click's int exponent would overflow)


def _scan_real(text: str, stop: int, signed: bool, int_digits: int) -> tuple[int, int]:
    """Click's ``preparse_fraction``: find the end of ``[sign] digits [. digits] [e exp]``
    within ``text[:stop]``.  Returns ``(end, int_digits)`` -- ``int_digits`` counts the
    digits before the decimal point, adjusted by the exponent -- or ``(0, _)`` when there
    are no digits."""
    i = 0
    if i < stop and ((signed and text[0] == "-") or text[0] == "+"):
        i = 1
    first = i
    last = i - 1
    seen_point = False
    while i < stop:
        c = text[i]
        if c == "_" and last == i:
            pass
        elif c == "." and not seen_point and (last == i or first == i):
            seen_point = True
        elif "0" <= c <= "9":
            if not seen_point:
                int_digits += 1
            last = i + 1
        else:
            break
        i += 1
    if last == first - 1:
        return 0, int_digits
    if i < stop and text[i] in "eE" and i + 1 != stop:
        e = i
        j = i + (2 if text[i + 1] in "+-" else 1)
        if j < stop and _isdigit(text[j]):
            k = j
            while k < stop and _isdigit(text[k]):
                k += 1
            exponent = int(text[j:k]) if k - j <= 9 else _EXP_CAP
            exponent = min(exponent, _EXP_CAP)
            int_digits += -exponent if text[e + 1] == "-" else exponent
            i = k
        else:
            i = e
    return i, int_digits


def _integer_part(text: str, i: int, end: int, count: int) -> tuple[int, int, bool]:
    """Read ``count`` integer digits starting at ``text[i]`` (non-digits are skipped and the
    mantissa is padded with zeros).  Returns ``(index, value, overflowed)``; the value
    saturates at 2**64-1 like Click's ``parse_integer_portion``."""
    value = 0
    overflow = False
    while count > 0:
        if i >= end or text[i] in "eE":
            if value == 0:
                break       # zeros times ten stay zero
            if count > 25:
                overflow = True
                break
            value *= 10
        elif "0" <= text[i] <= "9":
            value = value * 10 + ord(text[i]) - 48
            i += 1
        else:
            i += 1
            continue
        if value > _U64:
            overflow = True
            break           # saturated: nothing after this can matter
        count -= 1
    if overflow:
        value = _U64
    return i, value, overflow


def _decimal_fraction(text: str, stop: int, signed: bool, exponent_delta: int,
                      frac_digits: int) -> tuple[int, int, bool] | None:
    """Click's ``parse_decimal_fraction`` on ``text[:stop]``: integer part and
    ``frac_digits`` truncated decimal fraction digits, rounded half-up on the next digit.
    Returns ``(ivalue, fvalue, overflowed)`` or ``None`` if ``text[:stop]`` is not a
    number in full."""
    end, int_digits = _scan_real(text, stop, signed, exponent_delta)
    if end == 0 or end != stop:
        return None
    i = 0
    ivalue = 0
    overflow = False
    if int_digits > 0:
        i, ivalue, overflow = _integer_part(text, i, end, int_digits)
        int_digits = 0
    fvalue = 0
    fmax = 1
    for _ in range(frac_digits):
        while True:
            if int_digits < 0:
                digit = 0
                int_digits += 1
            elif i == end or text[i] in "eE":
                digit = 0
            elif "0" <= text[i] <= "9":
                digit = ord(text[i]) - 48
                i += 1
            else:
                i += 1
                continue
            break
        fvalue = fvalue * 10 + digit
        fmax *= 10
    while i != end and text[i] not in "eE" and not _isdigit(text[i]):
        i += 1
    if i != end and "5" <= text[i] <= "9":
        fvalue += 1
        if fvalue == fmax:
            fvalue = 0
            ivalue = (ivalue + 1) & _U64
            if ivalue == 0:
                overflow = True
    return ivalue, fvalue, overflow


def _binary_fraction(text: str, stop: int, signed: bool,
                     exponent_delta: int) -> tuple[int, int, bool] | None:
    """Click's ``parse_fraction`` on ``text[:stop]``: integer part plus a 32-bit binary
    fraction, computed the way Click does (including its rounding quirks).  Returns
    ``(ivalue, fvalue32, overflowed)`` or ``None`` if not a full number."""
    end, int_digits = _scan_real(text, stop, signed, exponent_delta)
    if end == 0 or end != stop:
        return None
    i = 0
    ivalue = 0
    overflow = False
    if int_digits > 0:
        i, ivalue, overflow = _integer_part(text, i, end, int_digits)
        int_digits = 0
    x = i
    while x != end and text[x] not in "eE":
        x += 1
    accum = 0       # fraction scaled by 2**33, built from the last digit backwards
    while x != i:
        x -= 1
        c = text[x]
        if "0" <= c <= "9":
            accum = (accum + ((ord(c) - 48) << 33)) // 10
            int_digits += 1
    while int_digits <= 0 and accum != 0:
        accum //= 10
        int_digits += 1
    accum += 1
    fvalue = (accum >> 1) & _U32
    if accum >= (1 << 33):
        ivalue = (ivalue + 1) & _U64
        if ivalue == 0:
            overflow = True
    return ivalue, fvalue, overflow


# ---------------------------------------------------------------------------------------
# Fixed point (FixedPointArg, DecimalFixedPointArg)
# ---------------------------------------------------------------------------------------

def _fixed_point_raw(text: str, frac_bits: int, signed: bool,
                     exponent_delta: int) -> tuple[int, bool] | None:
    parsed = _binary_fraction(text, len(text), signed, exponent_delta)
    if parsed is None:
        return None
    ivalue, fvalue, overflow = parsed
    if frac_bits >= 32:
        if ivalue == 0 and not overflow:
            return fvalue, True
        return _U32, False
    if frac_bits <= 0:
        rounded = ivalue + (1 if fvalue >= 0x80000000 else 0)
        if not overflow and rounded <= _U32:
            return rounded, True
        return _U32, False
    half = 1 << (31 - frac_bits)
    mf = fvalue + half
    mi = ivalue
    if mf > _U32:
        mf &= _U32
        mi += 1
    if not overflow and mi <= _U64 and mi < (1 << (32 - frac_bits)):
        return ((mi << frac_bits) | (mf >> (32 - frac_bits))) & _U32, True
    return _U32, False


def _s32(x: int) -> int:
    x &= _U32
    return x - (1 << 32) if x & 0x80000000 else x


def parse_unsigned_fixed_point(text: str, frac_bits: int, exponent_delta: int = 0) -> int:
    """``FixedPointArg(frac_bits)`` into a ``uint32_t``: the value times ``2**frac_bits``,
    rounded.  Error: ``out of range, bound <largest value>``."""
    raw = _fixed_point_raw(text, frac_bits, False, exponent_delta)
    if raw is None:
        raise _fail()
    value, ok = raw
    if not ok:
        raise _fail(f"out of range, bound {unparse_real2(value, frac_bits)}")
    return value


def parse_fixed_point(text: str, frac_bits: int, exponent_delta: int = 0) -> int:
    """``FixedPointArg(frac_bits)`` into an ``int32_t`` (signed ``cp_real2``).  Range errors
    report the bound the way Click computes it."""
    raw = _fixed_point_raw(text, frac_bits, True, exponent_delta)
    if raw is None:
        raise _fail()
    x, ok = raw
    negative = text[0] == "-"
    if ok and x > 0x7FFFFFFF + negative:
        ok = False
        x = 0x7FFFFFFF + negative
    result = _s32(-x if negative else x)
    if not ok:
        raise _fail(f"out of range, bound {unparse_real2(result, frac_bits)}")
    return result


def fixed_point(frac_bits: int, signed: bool = False) -> Callable[[str], int]:
    """A one-argument parser for ``FixedPointArg(frac_bits)`` (unsigned by default)."""
    def parser(text: str) -> int:
        if signed:
            return parse_fixed_point(text, frac_bits)
        return parse_unsigned_fixed_point(text, frac_bits)
    parser.__name__ = f"fixed_point_{frac_bits}"
    return parser


_EXP10 = [10 ** k for k in range(10)]


def _real10_raw(text: str, frac_digits: int, signed: bool,
                exponent_delta: int) -> tuple[int, bool] | None:
    parsed = _decimal_fraction(text, len(text), signed, exponent_delta, frac_digits)
    if parsed is None:
        return None
    ivalue, fvalue, overflow = parsed
    total = ivalue * _EXP10[frac_digits] + fvalue
    if overflow or total > _U32:
        return _U32, False
    return total, True


def parse_unsigned_real10(text: str, frac_digits: int, exponent_delta: int = 0) -> int:
    """``DecimalFixedPointArg(frac_digits)`` into a ``uint32_t``: the value times
    ``10**frac_digits``, rounded half-up on the first dropped digit.  Error: ``out of range``."""
    raw = _real10_raw(text, frac_digits, False, exponent_delta)
    if raw is None:
        raise _fail()
    value, ok = raw
    if not ok:
        raise _fail("out of range")
    return value


def parse_real10(text: str, frac_digits: int, exponent_delta: int = 0) -> int:
    """``DecimalFixedPointArg(frac_digits)`` into an ``int32_t``.

    This mirrors Click exactly, including a quirk: a leading ``-`` is accepted but *not*
    applied (Click's signed ``DecimalFixedPointArg`` returns the magnitude)."""
    raw = _real10_raw(text, frac_digits, True, exponent_delta)
    if raw is None:
        raise _fail()
    x, ok = raw
    limit = 0x80000000 if text[0] == "-" else 0x7FFFFFFF
    if not ok or x > limit:
        raise _fail("out of range")
    return x


def parse_real10_parts(text: str, frac_digits: int, exponent_delta: int = 0) -> tuple[int, int]:
    """``DecimalFixedPointArg`` with separate integer and fraction results (unsigned):
    ``"10.5"`` with 4 digits gives ``(10, 5000)``.  Error: ``out of range``."""
    parsed = _decimal_fraction(text, len(text), False, exponent_delta, frac_digits)
    if parsed is None:
        raise _fail()
    ivalue, fvalue, overflow = parsed
    if overflow or ivalue > _U32:
        raise _fail("out of range")
    return ivalue, fvalue


def real10(frac_digits: int, signed: bool = False) -> Callable[[str], int]:
    """A one-argument parser for ``DecimalFixedPointArg(frac_digits)``."""
    def parser(text: str) -> int:
        if signed:
            return parse_real10(text, frac_digits)
        return parse_unsigned_real10(text, frac_digits)
    parser.__name__ = f"real10_{frac_digits}"
    return parser


def unparse_real2(value: int, frac_bits: int) -> str:
    """Shortest decimal text that parses back to the same ``frac_bits`` fixed-point value
    (``cp_unparse_real2``, Knuth's ``print_scaled``; negative values get a ``-``).  Click
    supports up to 28 fraction bits and computes in 32-bit arithmetic; so do we there, and
    use unbounded integers beyond that."""
    if value < 0:
        return "-" + unparse_real2((-value) & _U32, frac_bits)
    value &= _U32
    wrap = _U32 if frac_bits <= 28 else -1
    out = [str(value >> frac_bits)]
    one = 1 << frac_bits
    rest = value & (one - 1)
    if not rest:
        return out[0]
    out.append(".")
    rest = (10 * rest + 5) & wrap
    slack = 10
    rounder = 5
    while rounder < (one >> 1):
        rounder *= 10
    while True:
        if slack > one:
            rest = (rest + (one >> 1) - rounder) & wrap
        out.append(chr(48 + ((rest >> frac_bits) % 10)))
        rest = (10 * (rest & (one - 1))) & wrap
        slack = (slack * 10) & wrap
        if not rest > slack:
            break
    return "".join(out)


def unparse_real10(value: int, frac_digits: int) -> str:
    """``value / 10**frac_digits`` without trailing zeros (``cp_unparse_real10``)."""
    if value < 0:
        return "-" + unparse_real10(-value, frac_digits)
    one = _EXP10[frac_digits]
    ip, fp = divmod(value, one)
    if fp == 0:
        return str(ip)
    return f"{ip}.{fp:0{frac_digits}d}".rstrip("0")


# ---------------------------------------------------------------------------------------
# Doubles (DoubleArg)
# ---------------------------------------------------------------------------------------

_STRTOD = re.compile(
    r"[+-]?(?:"
    r"0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    r"|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?"
    r"|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?"
    r")\Z")
_DBL_MIN = 2.2250738585072014e-308


def _strtod(text: str) -> tuple[float, bool]:
    """Emulate glibc ``strtod`` on a whole string: ``(value, erange)``; raises on junk."""
    if not _STRTOD.match(text):
        raise _fail()
    body = text.lstrip("+-")
    negative = text.startswith("-")
    low = body.lower()
    if low.startswith("nan"):
        return (-math.nan if negative else math.nan), False
    if low.startswith("inf"):
        return (-math.inf if negative else math.inf), False
    is_hex = low.startswith("0x")
    if is_hex:
        try:
            value = float.fromhex(text)
        except OverflowError:
            return (-math.inf if negative else math.inf), True
    else:
        value = float(text)
    if math.isinf(value):
        return value, True
    if value == 0.0 or abs(value) < _DBL_MIN:
        # glibc reports ERANGE when a nonzero input rounds to zero or to an inexact
        # subnormal number.
        mantissa, _, exponent = low[2:].partition("p") if is_hex else low.partition("e")
        if not mantissa.strip("0."):
            return value, False
        if value == 0.0 or len(exponent.lstrip("+-")) > 6:
            return value, True
        exact = _hex_fraction(body) if is_hex else Fraction(body)
        return value, Fraction(abs(value)) != exact
    return value, False


def _hex_fraction(body: str) -> Fraction:
    mant, _, exp = body[2:].lower().partition("p")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac) or "0"
    return Fraction(int(digits, 16)) / (16 ** len(frac)) * Fraction(2) ** int(exp or "0")


def parse_double(text: str) -> float:
    """``DoubleArg``: C ``strtod`` syntax (decimal, hex floats, ``inf``, ``nan``) with no
    leading space and nothing after the number.  Errors: ``out of range, bound <%g>`` on
    overflow, ``underflow, rounded to <%g>`` when a nonzero number rounds to zero."""
    if not text or text[0] in _SPACE:
        raise _fail()
    value, erange = _strtod(text)
    if erange:
        if value == 0:
            raise _fail(f"underflow, rounded to {value:g}")
        raise _fail(f"out of range, bound {value:g}")
    return value


# ---------------------------------------------------------------------------------------
# Units: seconds and bandwidth
# ---------------------------------------------------------------------------------------

# (suffix, power of ten, factor); a suffix may be preceded by one SI prefix character.
_SECONDS_UNITS = (("s", 0, 1), ("sec", 0, 1), ("m", 1, 6), ("min", 1, 6),
                  ("h", 2, 36), ("hr", 2, 36), ("d", 2, 864), ("day", 2, 864))
_SECONDS_PREFIXES = {"m": -3, "u": -6, "n": -9}
_BANDWIDTH_UNITS = (("baud", -3, 125), ("bps", -3, 125), ("b/s", -3, 125),
                    ("Bps", 0, 1), ("B/s", 0, 1))
_BANDWIDTH_PREFIXES = {"k": 3, "K": 3, "M": 6, "G": 9}


def _split_unit(text: str, units: tuple[tuple[str, int, int], ...],
                prefixes: dict[str, int]) -> tuple[int, int, int]:
    """Click's ``UnitArg::parse``: find a unit suffix (first match in table order), an
    optional prefix before it, and trailing space before that.  Returns ``(stop, power,
    factor)`` where ``text[:stop]`` is the number; ``(len, 0, 1)`` without a unit."""
    for suffix, power, factor in units:
        if text.endswith(suffix):
            stop = len(text) - len(suffix)
            if stop > 0 and text[stop - 1] in prefixes:
                power += prefixes[text[stop - 1]]
                stop -= 1
            while stop > 0 and text[stop - 1] in _SPACE:
                stop -= 1
            return stop, power, factor
    return len(text), 0, 1


def _times_factor(ivalue: int, fvalue: int, factor: int) -> tuple[int, bool]:
    """Click's ``multiply_factor``: ``(ivalue + fvalue/2**32) * factor`` rounded, in 32
    bits.  Returns ``(value, ok)``."""
    ivalue &= _U32
    if factor == 1:
        if fvalue & 0x80000000:
            ivalue = (ivalue + 1) & _U32
            return ivalue, ivalue != 0
        return ivalue, True
    fprod = fvalue * factor
    ftoint = fprod >> 32
    if fprod & 0x80000000:
        ftoint += 1
    iprod = ivalue * factor
    total = (iprod & _U32) + ftoint
    ok = (iprod >> 32) == 0 and total <= _U32
    return total & _U32, ok


def _seconds_raw(text: str, frac_digits: int) -> tuple[int, bool]:
    stop, power, factor = _split_unit(text, _SECONDS_UNITS, _SECONDS_PREFIXES)
    parsed = _binary_fraction(text, stop, False, power + frac_digits)
    if parsed is None:
        raise _fail()
    ivalue, fvalue, overflow = parsed
    value, ok = _times_factor(ivalue, fvalue, factor)
    if overflow or ivalue > _U32 or not ok:
        return _U32, False
    return value, True


def parse_seconds_as(text: str, frac_digits: int) -> int:
    """``SecondsArg(frac_digits)`` into a ``uint32_t``: a time measured in units of
    ``10**-frac_digits`` seconds.  Accepts a nonnegative real number with an optional unit
    -- ``s``/``sec`` (default), ``m``/``min``, ``h``/``hr``, ``d``/``day``, and ``ms``,
    ``us``, ``ns`` etc. (SI prefixes ``m u n`` on any unit).  Rounds to nearest the way
    Click does.  Error: ``out of range``."""
    value, ok = _seconds_raw(text, frac_digits)
    if not ok:
        raise _fail("out of range")
    return value


def parse_seconds(text: str) -> int:
    """``SecondsArg()``: whole seconds (``"1.6" -> 2``, ``"1 hr" -> 3600``)."""
    return parse_seconds_as(text, 0)


def parse_milliseconds(text: str) -> int:
    """``SecondsArg(3)``: milliseconds (``"0.5s" -> 500``, ``"10ms" -> 10``)."""
    return parse_seconds_as(text, 3)


def parse_microseconds(text: str) -> int:
    """``SecondsArg(6)``: microseconds (``"2us" -> 2``, ``"1ms" -> 1000``)."""
    return parse_seconds_as(text, 6)


def seconds_as(frac_digits: int) -> Callable[[str], int]:
    """A one-argument parser for ``SecondsArg(frac_digits)``."""
    def parser(text: str) -> int:
        return parse_seconds_as(text, frac_digits)
    parser.__name__ = f"seconds_as_{frac_digits}"
    return parser


def parse_seconds_double(text: str, frac_digits: int = 0) -> float:
    """``SecondsArg`` into a ``double``: a :func:`parse_double` number with a unit,
    scaled to units of ``10**-frac_digits`` seconds.  Never reports range errors."""
    stop, power, factor = _split_unit(text, _SECONDS_UNITS, _SECONDS_PREFIXES)
    number = text[:stop]
    if not number or number[0] in _SPACE:
        raise _fail()
    value, erange = _strtod(number)
    if erange:
        raise _fail()
    if factor != 1:
        value *= factor
    power += frac_digits
    if power != 0:
        value *= math.pow(10, power)
    return value


def parse_bandwidth_status(text: str) -> tuple[int, bool]:
    """``BandwidthArg``: bytes per second, plus whether the text had no unit.

    Units: ``baud``, ``bps``, ``b/s`` (bits per second), ``Bps``, ``B/s`` (bytes per second,
    the default), each optionally prefixed by ``k``/``K``, ``M`` or ``G`` (powers of 1000).
    The flag is true for a nonzero number given without units -- Click's
    ``status_unitless``, on which some elements warn ``no units ..., assuming Bps``.
    Error: ``out of range``."""
    stop, power, factor = _split_unit(text, _BANDWIDTH_UNITS, _BANDWIDTH_PREFIXES)
    parsed = _binary_fraction(text, stop, False, power)
    if parsed is None:
        raise _fail()
    ivalue, fvalue, overflow = parsed
    value, ok = _times_factor(ivalue, fvalue, factor)
    if overflow or ivalue > _U32 or not ok:
        raise _fail("out of range")
    return value, (stop == len(text) and value != 0)


def parse_bandwidth(text: str) -> int:
    """``BandwidthArg``: bytes per second (``"10kbps" -> 1250``, ``"100" -> 100``).
    Like Click's ``Args``, a missing unit is accepted silently; use
    :func:`parse_bandwidth_status` to find out."""
    return parse_bandwidth_status(text)[0]


def unparse_bandwidth(bps: int) -> str:
    """Bytes per second as Click prints it (``BandwidthArg::unparse``)."""
    if bps >= 0x20000000:
        return unparse_real10(bps, 6) + "MBps"
    if bps >= 125000000:
        return unparse_real10(bps * 8, 9) + "Gbps"
    if bps >= 125000:
        return unparse_real10(bps * 8, 6) + "Mbps"
    return unparse_real10(bps * 8, 3) + "kbps"


def unparse_milliseconds(ms: int) -> str:
    """``cp_unparse_milliseconds``: ``"5ms"`` below a second, else seconds like ``"1.5s"``."""
    if 0 < ms < 1000:
        return f"{ms}ms"
    return unparse_real10(ms, 3) + "s"


def unparse_microseconds(us: int) -> str:
    """``cp_unparse_microseconds``: ``"5us"`` below a millisecond, else ``"0.0015s"``."""
    if 0 < us < 1000:
        return f"{us}us"
    return unparse_real10(us, 6) + "s"


def _split_ns(ns: int) -> tuple[int, int]:
    return divmod(ns, 1_000_000_000)


def unparse_timestamp(ns: int) -> str:
    """``Timestamp::unparse`` for a nanosecond timestamp: ``"1.500000"``, ``"-1.001000"``,
    nine fraction digits when microseconds are not exact."""
    sign = ""
    if ns < 0:
        sign = "-"
        ns = -ns
    sec, sub = _split_ns(ns)
    if sub % 1000 == 0:
        return f"{sign}{sec}.{sub // 1000:06d}"
    return f"{sign}{sec}.{sub:09d}"


def unparse_interval(ns: int) -> str:
    """``Timestamp::unparse_interval``: ``"10ms"``, ``"2us"``, ``"5ns"`` below one second,
    otherwise :func:`unparse_timestamp` plus ``"s"``."""
    sec, sub = _split_ns(ns)
    if sec == 0:
        if sub % 1_000_000 == 0:
            return f"{sub // 1_000_000}ms"
        if sub % 1000 == 0:
            return f"{sub // 1000}us"
        return f"{sub}ns"
    return unparse_timestamp(ns) + "s"


# ---------------------------------------------------------------------------------------
# Timestamps (cp_time / TimestampArg)
# ---------------------------------------------------------------------------------------

def parse_timestamp(text: str, signed: bool = False) -> int:
    """``TimestampArg``: a time in seconds (e.g. ``"1189383079.180265331"``, ``"10ms"``,
    same units as :func:`parse_seconds_as`), returned as ``int`` nanoseconds.

    Mirrors ``cp_time``: values saturate instead of failing; seconds are a 32-bit signed
    count (so huge values wrap as in Click); with ``signed`` a leading ``-`` negates only
    the whole-seconds part, exactly as Click's ``make_nsec(-sec, nsec)`` does
    (``"-1.5" -> -0.5 s``)."""
    stop, power, factor = _split_unit(text, _SECONDS_UNITS, _SECONDS_PREFIXES)
    begin = 0
    negative = False
    if signed and stop > 1 and text[0] == "-" and text[1] != "+":
        negative = True
        begin = 1
    body = text[begin:stop]
    parsed = _decimal_fraction(body, len(body), False, power, 9)
    if parsed is None:
        raise _fail()
    ivalue, fvalue, overflow = parsed
    if overflow or ivalue > _U32:
        sec, nsec = _U32, 999_999_999
    else:
        sec, nsec = ivalue, fvalue
    if factor != 1:
        nsec = (nsec * factor) & _U32
        carry = nsec // 1_000_000_000
        nsec -= carry * 1_000_000_000
        sec = (sec * factor + carry) & _U32
    seconds = _s32(-_s32(sec) if negative else sec)
    return seconds * 1_000_000_000 + nsec


def parse_timestamp_signed(text: str) -> int:
    """:func:`parse_timestamp` allowing a leading ``-`` (``TimestampArg(true)``)."""
    return parse_timestamp(text, True)


# ---------------------------------------------------------------------------------------
# IPv4
# ---------------------------------------------------------------------------------------

def _ip4_scan(text: str, i: int, end: int) -> tuple[list[int], int, int]:
    """Dotted-quad scanner (``IPAddressArg::basic_parse``): up to four ``.``-separated
    decimal parts 0..255 from ``text[i:end]``.  Returns ``(parts, nparts, stop)``; missing
    parts are zero."""
    parts = [0, 0, 0, 0]
    d = 0
    while d < 4 and i != end and (d == 0 or text[i] == "."):
        t = i + (1 if d else 0)
        if t == end or not _isdigit(text[t]):
            break
        part = ord(text[t]) - 48
        t += 1
        while t != end and _isdigit(text[t]) and part <= 255:
            part = part * 10 + ord(text[t]) - 48
            t += 1
        if part > 255:
            break
        i = t
        parts[d] = part
        d += 1
    return parts, d, i


def _query_ip_prefix(name: str, res: Resolver | None) -> tuple[bytes, bytes] | None:
    """``AddressInfo::query_ip_prefix``: optional ``:net``/``:ipnet``/``:ip4net`` suffix."""
    colon = name.rfind(":")
    if colon >= 0:
        if name[colon:].lower() not in (":net", ":ipnet", ":ip4net"):
            return None
        name = name[:colon]
    found = _ask(res, "ip_prefix", name)
    if found is None:
        return None
    addr, mask = _as_addr(found[0], 4), _as_addr(found[1], 4)
    if addr is None or mask is None:
        return None
    return addr, mask


def _query_ip(name: str, res: Resolver | None) -> bytes | None:
    """``AddressInfo::query_ip``: a name, with optional ``:ip``, ``:ip4``, ``:bcast`` or
    ``:gw`` suffix."""
    if res is None:
        return None
    colon = name.rfind(":")
    if colon >= 0:
        suffix = name[colon:].lower()
        base = name[:colon]
        if suffix in (":ip", ":ip4"):
            name = base
        elif suffix == ":bcast":
            pr = _query_ip_prefix(base, res)
            if pr is None:
                return None
            a, m = int.from_bytes(pr[0], "big"), int.from_bytes(pr[1], "big")
            return ((a | ~m) & _U32).to_bytes(4, "big")
        elif suffix == ":gw":
            direct = _as_addr(_ask(res, "ip", name), 4)
            if direct is not None:
                return direct
            found = _ask(res, "ip_prefix", base)
            pr = None if found is None else (_as_addr(found[0], 4), _as_addr(found[1], 4))
            if pr is None or pr[0] is None or pr[1] is None:
                return _as_addr(_ask(res, "ip_gw", base), 4)
            a, m = int.from_bytes(pr[0], "big"), int.from_bytes(pr[1], "big")
            return (((a & m) | 1) & _U32).to_bytes(4, "big")
        else:
            return None
    return _as_addr(_ask(res, "ip", name), 4)


def parse_ip_address(text: str, resolver: Resolver | None = None) -> bytes:
    """``IPAddressArg``: dotted quad ``"18.26.4.9"`` (each part decimal 0..255, all four
    required) or an AddressInfo name.  Returns 4 bytes, network order."""
    parts, n, stop = _ip4_scan(text, 0, len(text))
    if n == 4 and stop == len(text):
        return bytes(parts)
    found = _query_ip(text, _pick(resolver))
    if found is None:
        raise _fail()
    return found


def parse_ip_address_list(text: str, resolver: Resolver | None = None) -> list[bytes]:
    """``IPAddressArg`` into ``Vector<IPAddress>``: space-separated addresses."""
    res = _pick(resolver)
    return [parse_ip_address(w, res) for w in split_words(text)]


def ip_prefix_mask(prefix_len: int) -> bytes:
    """The IPv4 netmask with ``prefix_len`` leading one bits."""
    return (((_U32 << (32 - prefix_len)) & _U32) if prefix_len else 0).to_bytes(4, "big")


def ip_mask_to_prefix_len(mask: bytes) -> int:
    """Prefix length of a contiguous netmask, or -1."""
    m = int.from_bytes(mask, "big")
    inv = ~m & _U32
    if inv & (inv + 1):
        return -1
    return 32 - inv.bit_length()


def _ip_prefix_slash(text: str, slash: int, res: Resolver | None) -> tuple[bytes, bytes] | None:
    parts, n, stop = _ip4_scan(text, 0, slash)
    if stop == slash:
        addr = bytes(parts)
    else:
        found = _query_ip(text[:slash], res) if res is not None else None
        if found is None:
            return None
        addr, n = found, 4
    mask_text = text[slash + 1:]
    plen = _silent_int(mask_text, 32, True, 10)
    if plen is not None and 0 <= plen <= 32:
        mask = ip_prefix_mask(plen)
    else:
        try:
            mask = parse_ip_address(mask_text, res)
        except ConfigError:
            return None
    if n < 4:
        m = int.from_bytes(mask, "big")
        if m & ~int.from_bytes(ip_prefix_mask(n * 8), "big") & _U32:
            return None     # the mask covers bits the address left out
    return addr, mask


def parse_ip_prefix(text: str, allow_bare: bool = False,
                    resolver: Resolver | None = None) -> tuple[bytes, bytes]:
    """``IPPrefixArg``: ``addr/len`` or ``addr/mask`` giving ``(addr, mask)``.

    Trailing zero parts may be left off when the mask does not reach them
    (``"18.26.4/24"``, ``"10/8"``); the address need not lie inside the prefix.  AddressInfo
    names work for the address part or the whole prefix.  With ``allow_bare`` a plain
    address is accepted with mask 255.255.255.255 (and wins over a same-named prefix)."""
    res = _pick(resolver)
    slash = text.rfind("/")
    if 0 < slash < len(text) - 1:
        found = _ip_prefix_slash(text, slash, res)
        if found is not None:
            return found
    if allow_bare:
        try:
            return parse_ip_address(text, res), b"\xff\xff\xff\xff"
        except ConfigError:
            pass
    pr = _query_ip_prefix(text, res)
    if pr is None:
        raise _fail()
    return pr


def parse_ip_address_or_prefix(text: str, resolver: Resolver | None = None) -> tuple[bytes, bytes]:
    """``IPPrefixArg(true)`` (``cpIPAddressOrPrefix``): a prefix or a bare address."""
    return parse_ip_prefix(text, True, resolver)


def unparse_ip(addr: bytes | int) -> str:
    """Dotted-quad text of a 4-byte address (or a 32-bit int)."""
    b = _as_addr(addr, 4) or b"\0\0\0\0"
    return ".".join(str(x) for x in b)


def unparse_ip_prefix(addr: bytes | int, mask: bytes | int) -> str:
    """``IPAddress::unparse_with_mask``: ``"18.26.4.0/24"``, or ``addr/mask`` when the mask
    is not a prefix."""
    m = _as_addr(mask, 4) or b"\0\0\0\0"
    plen = ip_mask_to_prefix_len(m)
    return unparse_ip(addr) + "/" + (str(plen) if plen >= 0 else unparse_ip(m))


# ---------------------------------------------------------------------------------------
# IPv6
# ---------------------------------------------------------------------------------------

def _hex_group(g: str) -> int:
    if not 1 <= len(g) <= 4 or any(_hexval(c) < 0 for c in g):
        return -1
    return int(g, 16)


def _ip6_groups(seq: str, res: Resolver | None, allow_v4: bool) -> list[int] | None:
    """Colon-separated hex groups; the last may be an IPv4 address (two groups)."""
    if not seq:
        return []
    items = seq.split(":")
    out: list[int] = []
    for k, g in enumerate(items):
        v = _hex_group(g)
        if v >= 0:
            out.append(v)
            continue
        if not allow_v4 or k != len(items) - 1 or not g:
            return None
        try:
            v4 = parse_ip_address(g, res)
        except ConfigError:
            return None
        out.append((v4[0] << 8) | v4[1])
        out.append((v4[2] << 8) | v4[3])
    return out


def _ip6_literal(text: str, res: Resolver | None) -> bytes | None:
    """RFC 2373 text forms accepted by ``IP6AddressArg::basic_parse``: eight groups, or
    fewer with one ``::``; an IPv4 address (or IPv4 name) may stand for the last two."""
    cc = text.find("::")
    if cc < 0:
        groups = _ip6_groups(text, res, True)
        if groups is None or len(groups) != 8:
            return None
    else:
        head = _ip6_groups(text[:cc], res, False)
        tail_text = text[cc + 2:]
        if head is None or "::" in tail_text or tail_text.startswith(":"):
            return None
        tail = _ip6_groups(tail_text, res, True)
        if tail is None or len(head) + len(tail) > 7:
            return None
        groups = head + [0] * (8 - len(head) - len(tail)) + tail
    return b"".join(g.to_bytes(2, "big") for g in groups)


def _query_ip6(name: str, res: Resolver | None) -> bytes | None:
    colon = name.rfind(":")
    if colon >= 0:
        if name[colon:].lower() != ":ip6":
            return None
        name = name[:colon]
    return _as_addr(_ask(res, "ip6", name), 16)


def parse_ip6_address(text: str, resolver: Resolver | None = None) -> bytes:
    """``IP6AddressArg``: ``"1080::8:800:200C:417a"``, ``"::13.1.68.3"``,
    ``"::ffff:129.144.52.38"`` or an AddressInfo name.  Returns 16 bytes."""
    res = _pick(resolver)
    found = _ip6_literal(text, res)
    if found is None:
        found = _query_ip6(text, res)
    if found is None:
        raise _fail()
    return found


def ip6_prefix_mask(prefix_len: int) -> bytes:
    """The IPv6 mask with ``prefix_len`` leading one bits."""
    full = (1 << 128) - 1
    return (((full << (128 - prefix_len)) & full) if prefix_len else 0).to_bytes(16, "big")


def ip6_mask_to_prefix_len(mask: bytes) -> int:
    """Prefix length of a contiguous IPv6 mask, or -1."""
    m = int.from_bytes(mask, "big")
    inv = ~m & ((1 << 128) - 1)
    if inv & (inv + 1):
        return -1
    return 128 - inv.bit_length()


def _query_ip6_prefix(name: str, res: Resolver | None) -> tuple[bytes, int] | None:
    colon = name.rfind(":")
    if colon >= 0:
        if name[colon:].lower() != ":ip6net":
            return None
        name = name[:colon]
    found = _ask(res, "ip6_prefix", name)
    if found is None:
        return None
    addr = _as_addr(found[0], 16)
    return None if addr is None else (addr, int(found[1]))


def parse_ip6_prefix(text: str, allow_bare: bool = False,
                     resolver: Resolver | None = None) -> tuple[bytes, int]:
    """``IP6PrefixArg``: ``addr/len`` (0..128) or ``addr/mask`` with a contiguous mask,
    giving ``(addr16, prefix_len)``.  With ``allow_bare`` a plain address gets length 128.
    AddressInfo prefix names are accepted too."""
    res = _pick(resolver)
    slash = text.rfind("/")
    if 0 < slash < len(text) - 1:
        try:
            addr = parse_ip6_address(text[:slash], res)
        except ConfigError:
            addr = None
        if addr is not None:
            mask_text = text[slash + 1:]
            plen = _silent_int(mask_text, 32, True, 10)
            if plen is not None and 0 <= plen <= 128:
                return addr, plen
            try:
                plen = ip6_mask_to_prefix_len(parse_ip6_address(mask_text, res))
            except ConfigError:
                plen = -1
            if plen >= 0:
                return addr, plen
            raise _fail()
    if allow_bare:
        try:
            return parse_ip6_address(text, res), 128
        except ConfigError:
            pass
    pr = _query_ip6_prefix(text, res)
    if pr is None:
        raise _fail()
    return pr


def parse_ip6_address_or_prefix(text: str, resolver: Resolver | None = None) -> tuple[bytes, int]:
    """``IP6PrefixArg(true)``: an IPv6 prefix or a bare address (length 128)."""
    return parse_ip6_prefix(text, True, resolver)


def unparse_ip6(addr: bytes) -> str:
    """RFC 5952 text, as ``IP6Address::unparse`` prints it (``::a.b.c.d`` and
    ``::ffff:a.b.c.d`` for IPv4-compatible and -mapped addresses)."""
    a = bytes(addr)
    w = [int.from_bytes(a[k:k + 2], "big") for k in range(0, 16, 2)]
    if w[:4] == [0, 0, 0, 0]:
        if w[4:] == [0, 0, 0, 0]:
            return "::"
        if w[4:6] == [0, 0]:
            return "::" + unparse_ip(a[12:])
        if w[4:6] == [0, 0xFFFF]:
            return "::ffff:" + unparse_ip(a[12:])
    best_pos, best_len, run_start = 0, 0, 0
    for p in range(8):
        if w[p] != 0:
            run_start = p + 1
        elif p + 1 - run_start > best_len:
            best_pos, best_len = run_start, p + 1 - run_start
    out = []
    p = 0
    while p < 8:
        if p == best_pos and best_len > 1:
            p += best_len - 1
            out.append("::" if p == 7 else ":")
        else:
            out.append(f"{w[p]:x}" if p == 0 else f":{w[p]:x}")
        p += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Ethernet
# ---------------------------------------------------------------------------------------

def _ether_literal(text: str) -> bytes | None:
    """Six groups of one or two hex digits separated consistently by ``-`` or ``:``."""
    data = [0] * 6
    d = p = 0
    sep = ""
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        h = _hexval(c)
        if h < 0:
            if not sep and c in "-:":
                sep = c
            if c == sep and p in (1, 2) and d < 5:
                p = 0
                d += 1
                i += 1
                continue
            break
        if p == 2:
            break
        data[d] = ((data[d] << 4) if p else 0) + h
        p += 1
        i += 1
    if i == n and p != 0 and d == 5:
        return bytes(data)
    return None


def parse_ether_address(text: str, resolver: Resolver | None = None) -> bytes:
    """``EtherAddressArg``: ``"00-15-58-2D-FB-8F"`` or ``"0:15:58:2d:fb:8f"`` (groups of one
    or two hex digits, one separator kind) or an AddressInfo name (optionally suffixed
    ``:eth``, ``:ether`` or ``:ethernet``).  Returns 6 bytes."""
    found = _ether_literal(text)
    if found is not None:
        return found
    name = text
    colon = name.rfind(":")
    if colon >= 0:
        if name[colon:].lower() not in (":eth", ":ether", ":ethernet"):
            raise _fail()
        name = name[:colon]
    found = _as_addr(_ask(_pick(resolver), "ether", name), 6)
    if found is None:
        raise _fail()
    return found


def unparse_ether(addr: bytes, sep: str = "-") -> str:
    """``EtherAddress::unparse`` (``00-15-58-2D-FB-8F``); ``sep=":"`` for ``unparse_colon``."""
    return sep.join(f"{b:02X}" for b in bytes(addr))


# ---------------------------------------------------------------------------------------
# Annotations
# ---------------------------------------------------------------------------------------

#: Size of Click's packet annotation area (``Packet::anno_size``).
ANNO_AREA_SIZE = 48

#: Predefined annotation names (``packet_anno.hh``, 64-bit build): name -> (offset, size).
ANNOTATIONS: dict[str, tuple[int, int]] = {
    "AGGREGATE": (20, 4),
    "DST_IP": (0, 4),
    "DST_IP6": (0, 16),
    "EXTRA_LENGTH": (28, 4),
    "EXTRA_PACKETS": (24, 4),
    "FIRST_TIMESTAMP": (32, 8),
    "FIX_IP_SRC": (19, 1),
    "FWD_RATE": (20, 4),
    "GRID_ROUTE_CB": (27, 1),
    "ICMP_PARAMPROB": (17, 1),
    "IPREASSEMBLER": (28, 4),
    "IPSEC_SA_DATA_REFERENCE": (40, 8),
    "IPSEC_SPI": (32, 4),
    "MISC_IP": (20, 4),
    "PACKET_NUMBER": (32, 4),
    "PAINT": (16, 1),
    "PERFCTR": (40, 8),
    "REV_RATE": (24, 4),
    "SEQUENCE_NUMBER": (36, 4),
    "VLAN": (20, 2),
    "VLAN_TCI": (20, 2),
    "WIFI_EXTRA": (16, 24),
}


def make_anno(offset: int, size: int) -> int:
    """``MAKE_ANNOTATIONINFO``: ``size << 16 | offset``."""
    return (size << 16) | offset


def anno_offset(info: int) -> int:
    """``ANNOTATIONINFO_OFFSET``."""
    return info & 0xFFFF


def anno_size(info: int) -> int:
    """``ANNOTATIONINFO_SIZE``."""
    return info >> 16


def parse_anno(text: str, size: int = 0, resolver: Resolver | None = None) -> int:
    """``AnnoArg(size)``: an annotation name (``PAINT``, ``DST_IP`` ...; AnnotationInfo
    names via the resolver) or a byte offset.

    With ``size > 0`` the annotation must have that size (or be a bare offset) and fit in
    the annotation area; the *offset* is returned.  With ``size <= 0`` the encoded value
    ``size << 16 | offset`` is returned (see :func:`anno_offset`/:func:`anno_size`)."""
    info = _ask(_pick(resolver), "annotation", text)
    if info is None and text in ANNOTATIONS:
        info = make_anno(*ANNOTATIONS[text])
    if info is None:
        info = _silent_int(text, 32, True)
    if info is None:
        raise _fail()
    info = _s32(int(info))
    if size > 0:
        if anno_size(info) and anno_size(info) != size:
            raise _fail()
        if anno_offset(info) + size > ANNO_AREA_SIZE:
            raise _fail()
        return anno_offset(info)
    if anno_offset(info) >= ANNO_AREA_SIZE:
        raise _fail()
    return info


def anno_arg(size: int) -> Callable[[str], int]:
    """A one-argument parser for ``AnnoArg(size)``."""
    def parser(text: str) -> int:
        return parse_anno(text, size)
    parser.__name__ = f"anno_arg_{size}"
    return parser


# ---------------------------------------------------------------------------------------
# IP protocols, ICMP types, ports (IPNameInfo)
# ---------------------------------------------------------------------------------------

#: IPNameInfo's protocol names.  256/258/259 are Click's pseudo-protocols.
IP_PROTOCOLS: dict[str, int] = {
    "dccp": 33, "gre": 47, "icmp": 1, "igmp": 2, "ipip": 4, "payload": 259, "sctp": 132,
    "tcp": 6, "tcpudp": 256, "transp": 258, "udp": 17,
}

#: IPNameInfo's ICMP type names.
ICMP_TYPES: dict[str, int] = {
    "echo": 8, "echo-reply": 0, "inforeq": 15, "inforeq-reply": 16, "maskreq": 17,
    "maskreq-reply": 18, "parameterproblem": 12, "redirect": 5, "routeradvert": 9,
    "routersolicit": 10, "sourcequench": 4, "timeexceeded": 11, "timestamp": 13,
    "timestamp-reply": 14, "unreachable": 3,
}

#: IPNameInfo's ICMP code names, by ICMP type.
ICMP_CODES: dict[int, dict[str, int]] = {
    3: {"filterprohibited": 13, "host": 1, "hostprecedence": 14, "hostprohibited": 10,
        "hostunknown": 7, "isolated": 8, "needfrag": 4, "net": 0, "netprohibited": 9,
        "netunknown": 6, "port": 3, "precedencecutoff": 15, "protocol": 2,
        "srcroutefail": 5, "toshost": 12, "tosnet": 11},
    5: {"host": 1, "net": 0, "toshost": 3, "tosnet": 2},
    11: {"reassembly": 1, "transit": 0},
    12: {"erroratptr": 0, "length": 2, "missingopt": 1},
}

#: IPNameInfo's built-in TCP/UDP port names (the fallback when /etc/services lacks one).
KNOWN_PORTS: dict[str, int] = {
    "auth": 113, "bootpc": 68, "bootps": 67, "chargen": 19, "daytime": 13, "discard": 9,
    "dns": 53, "domain": 53, "echo": 7, "finger": 79, "ftp": 21, "ftp-data": 20,
    "https": 443, "imap3": 220, "imaps": 993, "irc": 194, "netbios-dgm": 138,
    "netbios-ns": 137, "netbios-ssn": 139, "nntp": 119, "ntp": 123, "pop3": 110,
    "pop3s": 995, "pptp": 1723, "rip": 520, "route": 520, "smtp": 25, "snmp": 161,
    "snmp-trap": 162, "ssh": 22, "sunrpc": 111, "telnet": 23, "tftp": 69, "www": 80,
}

_SERVICE_PROTOS = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp"}
_SYSTEM_ERRORS = (OSError, ValueError, UnicodeError, TypeError, OverflowError)


def _system_protocol(name: str) -> int | None:
    if _silent_int(name) is not None:
        return None
    try:
        return socket.getprotobyname(name)
    except _SYSTEM_ERRORS:
        return None


def _system_port(name: str, proto: int) -> int | None:
    pname = _SERVICE_PROTOS.get(proto)
    if pname is None or _silent_int(name) is not None:
        return None
    try:
        return socket.getservbyname(name, pname)
    except _SYSTEM_ERRORS:
        return None


def parse_named_int(text: str, kind: str, table: dict[str, int] | None = None,
                    resolver: Resolver | None = None) -> int:
    """``NamedIntArg``: a name known to the resolver under ``kind`` or in ``table``,
    otherwise an ``int`` (with IntArg's ``invalid number``/``out of range`` errors)."""
    value = _ask(_pick(resolver), kind, text)
    if value is None and table is not None:
        value = table.get(text)
    if value is not None:
        return int(value)
    return parse_integer(text, 32, True)


def parse_ip_protocol(text: str, resolver: Resolver | None = None) -> int:
    """``NamedIntArg(NameInfo::T_IP_PROTO)``: ``tcp``, ``udp``, ``icmp``... (IPNameInfo's
    table, then the system protocol database) or a number."""
    res = _pick(resolver)
    value = _ask(res, "ip_proto", text)
    if value is None:
        value = IP_PROTOCOLS.get(text)
    if value is None:
        value = _system_protocol(text)
    if value is not None:
        return int(value)
    return parse_integer(text, 32, True)


def parse_icmp_type(text: str, resolver: Resolver | None = None) -> int:
    """``NamedIntArg(NameInfo::T_ICMP_TYPE)``: ``echo``, ``unreachable``... or a number."""
    return parse_named_int(text, "icmp_type", ICMP_TYPES, resolver)


def parse_icmp_code(text: str, icmp_type: int, resolver: Resolver | None = None) -> int:
    """``NamedIntArg(NameInfo::T_ICMP_CODE + type)``: e.g. ``port`` for type 3."""
    return parse_named_int(text, f"icmp_code:{icmp_type}", ICMP_CODES.get(icmp_type), resolver)


def parse_ip_port(text: str, proto: int, resolver: Resolver | None = None) -> int:
    """``IPPortArg(proto)``: a port number or a service name for IP protocol ``proto``
    (IPNameInfo's table, then the system services database).  Errors: ``parse error``;
    ``overflow, range 0-65535`` for numbers above 65535."""
    value = _ask(_pick(resolver), f"port:{proto}", text)
    if value is None and proto in (6, 17):
        value = KNOWN_PORTS.get(text)
    if value is None:
        value = _system_port(text, proto)
    if value is None:
        value = _silent_int(text, 32, False)
    if value is None:
        raise _fail()
    if int(value) > 0xFFFF:
        raise _fail("overflow, range 0-65535")
    return int(value)


def parse_tcp_port(text: str, resolver: Resolver | None = None) -> int:
    """``IPPortArg(IP_PROTO_TCP)``."""
    return parse_ip_port(text, 6, resolver)


def parse_udp_port(text: str, resolver: Resolver | None = None) -> int:
    """``IPPortArg(IP_PROTO_UDP)``."""
    return parse_ip_port(text, 17, resolver)


def ip_port(proto: int) -> Callable[[str], int]:
    """A one-argument parser for ``IPPortArg(proto)``."""
    def parser(text: str) -> int:
        return parse_ip_port(text, proto)
    parser.__name__ = f"ip_port_{proto}"
    return parser


#: Every single-argument parser, by Click-ish type name (used by tests and by code that
#: picks a parser from a type description).
PARSERS: dict[str, Callable[[str], Any]] = {
    "any": parse_any,
    "string": parse_string,
    "data": parse_data,
    "word": parse_word,
    "keyword": parse_keyword,
    "element": parse_element,
    "filename": parse_filename,
    "bool": parse_bool,
    "int": parse_int,
    "unsigned": parse_unsigned,
    "int8": parse_int8,
    "uint8": parse_uint8,
    "int16": parse_int16,
    "uint16": parse_uint16,
    "int64": parse_int64,
    "uint64": parse_uint64,
    "size": parse_size,
    "double": parse_double,
    "real2_16": fixed_point(16),
    "sreal2_16": fixed_point(16, signed=True),
    "real10_3": real10(3),
    "sreal10_3": real10(3, signed=True),
    "seconds": parse_seconds,
    "msec": parse_milliseconds,
    "usec": parse_microseconds,
    "seconds_double": parse_seconds_double,
    "timestamp": parse_timestamp,
    "timestamp_signed": parse_timestamp_signed,
    "bandwidth": parse_bandwidth,
    "ip_addr": parse_ip_address,
    "ip_addr_list": parse_ip_address_list,
    "ip_prefix": parse_ip_prefix,
    "ip_addr_or_prefix": parse_ip_address_or_prefix,
    "ip6_addr": parse_ip6_address,
    "ip6_prefix": parse_ip6_prefix,
    "ip6_addr_or_prefix": parse_ip6_address_or_prefix,
    "ether_addr": parse_ether_address,
    "anno": parse_anno,
    "anno1": anno_arg(1),
    "ip_proto": parse_ip_protocol,
    "icmp_type": parse_icmp_type,
    "tcp_port": parse_tcp_port,
    "udp_port": parse_udp_port,
}


# Short names used across the element library (the long names mirror Click's Arg classes).
parse_real = parse_double
parse_ip = parse_ip_address
parse_ether = parse_ether_address
