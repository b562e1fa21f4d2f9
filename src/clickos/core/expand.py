"""Script's text machinery: ``$`` expansions, handler calls by name, and the
built-in functions (``add``, ``sprintf``, ``eq`` ...) that Script offers as
read handlers with parameters.

Three pieces, used by :mod:`clickos.elements.standard.script` and usable by any
element that wants Script-style text:

``expand(text, lookup)``
    Replaces ``$name``, ``${name}``, ``$?``, ``$#``, ``$$`` and ``$(...)``
    references.  ``lookup(name, kind)`` supplies the value (``kind`` is ``"("``
    for ``$(...)``, ``"{"`` for ``${...}`` and ``"a"`` otherwise) or returns
    None to leave the reference as written.  Nothing is expanded inside single
    quotes; inside double quotes the inserted text is escaped so that the quotes
    still parse; ``expand_quote`` wraps unquoted insertions in double quotes.
    The text inside ``$(...)`` and ``${...}`` is itself expanded first.

``resolve_call(text, context, write, errh)``
    Finds the handler named by the first word of ``text`` the way Click's
    HandlerCall does -- ``elem.h`` relative to the caller's compound, then a
    handler of the calling element itself, then a global handler -- and binds the
    rest of the text as its parameter.  Errors use Click's wording (``no 'x'
    read handler``, ``no element named 'e'``, ``read handler 'h' does not take
    parameters``).

``FUNCTIONS``
    ``name -> fn(param, context)``; each returns the result text or raises
    :class:`~clickos.core.errors.ConfigError` with Click's message.

A handler function may carry a ``with_errh`` attribute: ``fn.with_errh(param,
errh) -> str`` (reads) or ``fn.with_errh(value, errh) -> int`` (writes).  Calls
made through :class:`BoundCall` use it, so Script-to-Script calls report every
message on the caller's ErrorHandler and see the raw status of a write.
"""

from __future__ import annotations

import math
import os
import random as _random
import signal as _signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from clickos.core.confparse import (
    _int_core,
    expand_references,
    parse_bool,
    parse_double,
    parse_filename,
    parse_string,
    parse_timestamp,
    quote,
    shift_word,
    unparse_timestamp,
    unquote,
)
from clickos.core.errors import ClickError, ConfigError, ErrorHandler, SilentErrorHandler

if TYPE_CHECKING:
    from clickos.core.element import Element
    from clickos.core.handlers import Handler

__all__ = [
    "BoundCall", "FUNCTIONS", "SIGNALS", "expand", "format_double", "parse_double_or_none",
    "parse_int_or_none", "parse_signal", "parse_time_ns", "resolve_call",
]

_SPACE = " \t\n\v\f\r"
_I64_MIN = -(1 << 63)
_U64 = (1 << 64) - 1

# Signal names a Script understands (TYPE SIGNAL and the kill function).
SIGNALS: dict[str, int] = {}
for _name in ("ABRT", "ALRM", "HUP", "INT", "IO", "PIPE", "QUIT", "TERM", "TSTP", "USR1", "USR2"):
    _num = getattr(_signal, "SIG" + _name, None)
    if _num is not None:
        SIGNALS[_name] = int(_num)


# ---------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------

def parse_int_or_none(text: str, bits: int = 64, signed: bool = True) -> int | None:
    """Click's ``IntArg().parse`` used silently: the value, or None when ``text`` is not
    an integer or does not fit."""
    try:
        value, ok = _int_core(text, bits, signed, 0)
    except ConfigError:
        return None
    return value if ok else None


def parse_double_or_none(text: str) -> float | None:
    """Click's ``DoubleArg().parse`` used silently (C ``strtod`` syntax)."""
    try:
        return parse_double(text)
    except ConfigError:
        return None


def _parse_bool_or_none(text: str) -> bool | None:
    try:
        return parse_bool(text)
    except ConfigError:
        return None


def format_double(x: float) -> str:
    """A double as Click's ``String(double)`` prints it (``%.12g``, ``-nan`` for a NaN
    with the sign bit set)."""
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return f"{x:.12g}"


def _wrap64(x: int) -> int:
    x &= _U64
    return x - (1 << 64) if x >> 63 else x


def _to_int64(x: float) -> int:
    """C's ``(int64_t) x`` on x86-64: out-of-range values become INT64_MIN."""
    if math.isnan(x) or math.isinf(x) or not (-9.3e18 < x < 9.3e18):
        return _I64_MIN
    v = int(x)
    return v if _I64_MIN <= v < (1 << 63) else _I64_MIN


def _c_div(a: float, b: float) -> float:
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return -math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def parse_time_ns(text: str) -> int | None:
    """Click's ``cp_time``: seconds with an optional unit, as nanoseconds; None if bad."""
    try:
        return parse_timestamp(text)
    except ConfigError:
        return None


def parse_signal(text: str) -> int | None:
    """A signal name (``INT``, ``USR1`` ...) or number, as Script accepts them."""
    if text in SIGNALS:
        return SIGNALS[text]
    return parse_int_or_none(text, 32, True)


# ---------------------------------------------------------------------------------------
# $ expansion
# ---------------------------------------------------------------------------------------

Lookup = Callable[[str, str], "str | None"]


def expand(config: str, lookup: Lookup, expand_quote: bool = False, depth: int = 0) -> str:
    """Replace ``$`` references in ``config`` (Click's ``cp_expand``, shared with the
    language's variables as :func:`~clickos.core.confparse.expand_references`); see the
    module docstring.  As in Click, a text whose expansions all produce nothing is
    returned unchanged."""
    return expand_references(config, lambda name, kind, _depth: lookup(name, kind),
                             expand_quote, depth)


# ---------------------------------------------------------------------------------------
# Handler calls by name
# ---------------------------------------------------------------------------------------

def _handler_label(element: Element | None, hname: str) -> str:
    return hname if element is None else f"{element.name}.{hname}"


class BoundCall:
    """A handler found by :func:`resolve_call`, with its parameter (Click's
    HandlerCall after ``initialize``)."""

    __slots__ = ("element", "handler", "value")

    def __init__(self, element: Element | None, handler: Handler, value: str) -> None:
        self.element = element
        self.handler = handler
        self.value = value

    @property
    def name(self) -> str:
        """The handler's full name, ``elem.h`` or ``h``."""
        return _handler_label(self.element, self.handler.name)

    def unparse(self) -> str:
        """The call as text: the full handler name, then the parameter if any."""
        return f"{self.name} {self.value}" if self.value else self.name

    def call_read(self, errh: ErrorHandler) -> str:
        """Call the read half; errors go to ``errh`` and give ``""``."""
        fn = self.handler.read
        direct = getattr(fn, "with_errh", None)
        if direct is not None:
            return direct(self.value, errh)
        return self.handler.call_read(self.value, errh)

    def call_write(self, errh: ErrorHandler) -> int:
        """Call the write half; returns the handler's status (negative on failure)."""
        fn = self.handler.write
        direct = getattr(fn, "with_errh", None)
        if direct is not None:
            return direct(self.value, errh)
        return self.handler.call_write(self.value, errh)


def resolve_call(text: str, context: Element, write: bool, errh: ErrorHandler | None,
                 unquote_param: bool = False) -> BoundCall | None:
    """Resolve ``HANDLER [PARAM]`` for a read (``write=False``) or write call from
    ``context``'s point of view; report problems to ``errh`` and return None."""
    errh = errh if errh is not None else SilentErrorHandler()
    word, value = shift_word(text)
    try:
        name = parse_string(word) if word else ""
    except ConfigError:
        name = ""
    if not name:
        errh.error("syntax error")
        return None
    router = context.router
    table = router.handlers
    dot = name.find(".")
    element: Element | None = None
    found = False
    hname = name
    if dot == 0:
        found, hname = True, name[1:]
    elif dot == len(name) - 1:
        errh.error("syntax error")
        return None
    elif dot > 0:
        e = router.find(name[:dot], context)
        if e is not None:
            element, found, hname = e, True, name[dot + 1:]
    if not found:
        if context.eindex >= 0 and table.find(context, name) is not None:
            element = context
        elif dot < 0 or table.find(None, name) is not None:
            element = None
        else:
            errh.error(f"no element named '{name[:dot]}'")
            return None
        hname = name
    if unquote_param:
        value = unquote(value)
    h = table.find(element, hname)
    label = _handler_label(element, hname)
    if h is None or (write and not h.writable):
        errh.error(f"no '{label}' {'write' if write else 'read'} handler")
        return None
    if not write and not h.readable:
        errh.error(f"no '{label}' read handler")
        return None
    if value and not write and not h.read_param:
        errh.error(f"read handler '{label}' does not take parameters")
        return None
    return BoundCall(element, h, value)


# ---------------------------------------------------------------------------------------
# Built-in functions
# ---------------------------------------------------------------------------------------

Function = Callable[[str, Any], str]
_ADD, _SUB, _MIN, _MAX, _MUL, _DIV, _IDIV = range(7)


def _arith(op: int) -> Function:
    def fn(param: str, context: Any = None) -> str:
        accum = 0 if op in (_ADD, _SUB) else 1
        daccum = float(accum)
        use_double = op in (_DIV, _IDIV)
        first = True
        rest = param
        while True:
            word, rest = shift_word(rest)
            if not word and all(c in _SPACE for c in rest):
                break
            iv = None if use_double else parse_int_or_none(word)
            if iv is None and not use_double:
                use_double = True
                daccum = float(accum)
            if use_double:
                dv = parse_double_or_none(word)
                if dv is None:
                    raise ConfigError("expected list of numbers")
                if first:
                    daccum = dv
                elif op == _ADD:
                    daccum += dv
                elif op == _SUB:
                    daccum -= dv
                elif op == _MIN:
                    daccum = daccum if daccum < dv else dv
                elif op == _MAX:
                    daccum = daccum if daccum > dv else dv
                elif op == _MUL:
                    daccum *= dv
                else:
                    daccum = _c_div(daccum, dv)
            else:
                assert iv is not None
                if first:
                    accum = iv
                elif op == _ADD:
                    accum = _wrap64(accum + iv)
                elif op == _SUB:
                    accum = _wrap64(accum - iv)
                elif op == _MIN:
                    accum = min(accum, iv)
                elif op == _MAX:
                    accum = max(accum, iv)
                elif op == _MUL:
                    accum = _wrap64(accum * iv)
            first = False
        if op == _IDIV:
            return str(_to_int64(daccum))
        return format_double(daccum) if use_double else str(accum)
    return fn


def _two_words(param: str) -> tuple[str, str]:
    a, rest = shift_word(param)
    b, rest = shift_word(rest)
    if rest or not a or not b:
        raise ConfigError("expected two numbers")
    return a, b


def _c_mod(a: int, b: int) -> int:
    if b == 0:
        raise ConfigError("division by zero")
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _modrem(is_mod: bool) -> Function:
    def fn(param: str, context: Any = None) -> str:
        a, b = _two_words(param)
        ia, ib = parse_int_or_none(a), parse_int_or_none(b)
        if ia is None or ib is None:
            da, db = parse_double_or_none(a), parse_double_or_none(b)
            if is_mod or da is None or db is None:
                raise ConfigError("expected two numbers")
            if db == 0 or math.isinf(da):
                return "-nan"
            return format_double(math.fmod(da, db))
        return str(_wrap64(_c_mod(ia, ib)))
    return fn


def _negabs(is_neg: bool) -> Function:
    def fn(param: str, context: Any = None) -> str:
        x = parse_int_or_none(param)
        if x is None:
            dx = parse_double_or_none(param)
            if dx is None:
                raise ConfigError("expected one number")
            return format_double(-dx if is_neg else abs(dx))
        return str(_wrap64(-x if (is_neg or x < 0) else x))
    return fn


_LT, _EQ, _GT, _GE, _NE, _LE = range(6)


def _compare(what: int) -> Function:
    def fn(param: str, context: Any = None) -> str:
        astr, rest = shift_word(param)
        bstr, rest = shift_word(rest)
        if rest or not astr or not bstr:
            raise ConfigError("expected two numbers")
        ia, ib = parse_int_or_none(astr), parse_int_or_none(bstr)
        cmp: int
        if ia is not None and ib is not None:
            cmp = _LT if ia < ib else _EQ if ia == ib else _GT
        else:
            da, db = parse_double_or_none(astr), parse_double_or_none(bstr)
            if da is not None and db is not None:
                cmp = _LT if da < db else _EQ if da == db else _GT
            else:
                ua = unquote(astr).encode("latin-1", "replace")
                ub = unquote(bstr).encode("latin-1", "replace")
                cmp = _LT if ua < ub else _EQ if ua == ub else _GT
        result = what == cmp or (what >= _GE and what != cmp + 3)
        return "true" if result else "false"
    return fn


def _bool_word(word: str) -> bool:
    b = _parse_bool_or_none(word)
    if b is None:
        raise ConfigError("syntax error")
    return b


def _fn_not(param: str, context: Any = None) -> str:
    return "false" if _bool_word(param) else "true"


def _logic(is_and: bool, negate: bool) -> Function:
    def fn(param: str, context: Any = None) -> str:
        zero = is_and
        value = zero
        rest = param
        while value == zero and rest:
            word, rest = shift_word(rest)
            x = _bool_word(word)
            value = (value and x) if is_and else (value or x)
        if negate:
            value = not value
        return "true" if value else "false"
    return fn


def _fn_if(param: str, context: Any = None) -> str:
    word, rest = shift_word(param)
    cond = _bool_word(word)
    if cond:
        return shift_word(rest)[0]
    _, rest = shift_word(rest)
    return shift_word(rest)[0]


def _fn_in(param: str, context: Any = None) -> str:
    word, rest = shift_word(param)
    word = unquote(word)
    answer = False
    while word and rest and not answer:
        other, rest = shift_word(rest)
        answer = word == unquote(other)
    return "true" if answer else "false"


def _fn_first(param: str, context: Any = None) -> str:
    return shift_word(param)[0]


def _fn_now(param: str, context: Any = None) -> str:
    if context is not None and getattr(context, "router", None) is not None:
        ns = context.router.master.clock.now()
    else:
        import time

        ns = time.time_ns()
    return unparse_timestamp(ns)


def _fn_random(param: str, context: Any = None) -> str:
    if not param:
        return str(_random.randrange(0, 1 << 31))
    from clickos.core.args import Args
    from clickos.core.confparse import parse_unsigned

    a = Args(context=context).push_back_words(param)
    n1 = a.read_mp("N1", parse_unsigned)
    n2 = a.read_mp("N2", parse_unsigned)
    have_n2 = a.read_status
    a.complete()
    if (have_n2 and n2 < n1) or (not have_n2 and n1 == 0):
        raise ConfigError("bad N")
    if have_n2:
        return str(_random.randint(n1, n2))
    return str(_random.randint(0, n1 - 1))


def _byte_order(kind: str) -> Function:
    def fn(param: str, context: Any = None) -> str:
        x = parse_int_or_none(param, 32, True)
        if x is None:
            raise ConfigError("syntax error")
        if kind == "s":     # 16 bits, swapped (little-endian host)
            v = x & 0xFFFF
            return str(((v & 0xFF) << 8) | (v >> 8))
        v = x & 0xFFFFFFFF
        return str(int.from_bytes(v.to_bytes(4, "little"), "big"))
    return fn


def _fn_length(param: str, context: Any = None) -> str:
    return str(len(param))


def _fn_unquote(param: str, context: Any = None) -> str:
    return unquote(param)


def _cat(quoted: bool) -> Function:
    def fn(param: str, context: Any = None) -> str:
        try:
            filename = parse_filename(param)
        except ConfigError:
            raise ConfigError("bad FILE") from None
        try:
            if filename == "-":
                import sys

                data = sys.stdin.buffer.read()
            else:
                with open(filename, "rb") as f:
                    data = f.read()
        except OSError as e:
            raise ConfigError(f"{filename}: {e.strerror}") from None
        text = data.decode("latin-1")
        return quote(text) if quoted else text
    return fn


def _fn_kill(param: str, context: Any = None) -> str:
    word, rest = shift_word(param)
    signo = parse_signal(word) if word else None
    if signo is None or signo < 0 or signo > 32:
        raise ConfigError("bad SIGNO")
    while rest:
        pidtext, rest = shift_word(rest)
        pid = parse_int_or_none(pidtext, 32, True)
        if pid is None:
            raise ConfigError("bad PID")
        try:
            os.kill(pid, signo)
        except OSError as e:
            raise ConfigError(f"kill({pid}, {signo}): {e.strerror}") from None
    return ""


def _handler_test(write: bool) -> Function:
    def fn(param: str, context: Any = None) -> str:
        rest = param
        while True:
            word, rest = shift_word(rest)
            if not word:
                break
            if context is None or resolve_call(word, context, write, None) is None:
                return "false"
        return "true"
    return fn


# -- sprintf ------------------------------------------------------------------------------

def _format_int(value: int, base: int, conv: str, flags: str, width: int, precision: int,
                signed: bool) -> str:
    """Format one integer as Click's own printf does (which differs from C for ``%#o``)."""
    negative = signed and value < 0
    mag = -value if negative else value
    digits = {8: "%o", 16: "%x", 10: "%d"}[base] % mag
    if conv == "X":
        digits = digits.upper()
    alt = "#" in flags
    if alt and base == 16 and digits == "0":
        alt = False
    if precision >= 0:
        digits = digits.rjust(precision, "0")
    elif "0" in flags:
        fw = width
        if alt and base == 16:
            fw -= 2
        if negative or "+" in flags or " " in flags:
            fw -= 1
        digits = digits.rjust(fw, "0")
    if alt and base == 8 and (len(digits) < 2 or digits[1] != "0"):
        digits = "0" + digits
    elif alt and base == 16:
        digits = ("0X" if conv == "X" else "0x") + digits
    if negative:
        digits = "-" + digits
    elif "+" in flags:
        digits = "+" + digits
    elif " " in flags:
        digits = " " + digits
    return _pad(digits, flags, width)


def _pad(text: str, flags: str, width: int) -> str:
    if len(text) >= width:
        return text
    if "-" in flags:
        return text + " " * (width - len(text))
    return ("0" if "0" in flags else " ") * (width - len(text)) + text


def _fn_sprintf(param: str, context: Any = None) -> str:
    fmt_word, args = shift_word(param)
    fmt = unquote(fmt_word)
    out: list[str] = []
    i, end = 0, len(fmt)
    while True:
        pct = fmt.find("%", i)
        if pct < 0:
            break
        out.append(fmt[i:pct])
        j = pct + 1
        flags = ""
        while j < end and fmt[j] in "0#- +":
            flags += fmt[j]
            j += 1
        if j < end and fmt[j] == "*":
            raise ConfigError("syntax error")   # Click accepts no '*' widths here
        width = 0
        while j < end and fmt[j].isdigit():
            width = width * 10 + ord(fmt[j]) - 48
            j += 1
        precision = -1
        if j < end and fmt[j] == ".":
            j += 1
            if j < end and fmt[j] == "*":
                raise ConfigError("syntax error")
            if j < end and fmt[j].isdigit():
                precision = 0
                while j < end and fmt[j].isdigit():
                    precision = precision * 10 + ord(fmt[j]) - 48
                    j += 1
        size = ""
        while j < end and fmt[j] in "hlLq":
            c = fmt[j]
            if c == "h":
                size = "h"
            elif c == "l":
                size = "q" if size == "l" else "l"
            else:
                size = "q"
            j += 1
        conv = fmt[j] if j < end else ""
        if conv in ("o", "x", "X", "u"):
            word, args = shift_word(args)
            v = parse_int_or_none(word, 64, False)
            if v is None:
                raise ConfigError("syntax error")
            if size == "h":
                v &= 0xFFFF
            base = 8 if conv == "o" else 16 if conv in "xX" else 10
            out.append(_format_int(v, base, conv, flags, width, precision, False))
        elif conv in ("d", "i"):
            word, args = shift_word(args)
            v = parse_int_or_none(word, 64, True)
            if v is None:
                raise ConfigError("syntax error")
            if size == "h":
                v &= 0xFFFF
                v = v - 0x10000 if v & 0x8000 else v
            out.append(_format_int(v, 10, conv, flags, width, precision, True))
        elif conv == "%":
            out.append(_pad("%", flags, width))
        elif conv == "s":
            word, args = shift_word(args)
            try:
                text = parse_string(word)
            except ConfigError:
                raise ConfigError("syntax error") from None
            nul = text.find("\0")
            if nul >= 0:
                text = text[:nul]
            if precision >= 0:
                text = text[:precision]
            out.append(_pad(text, flags, width))
        else:
            raise ConfigError("syntax error")
        i = j + 1
    if args:
        raise ConfigError("syntax error")
    out.append(fmt[i:])
    return "".join(out)


FUNCTIONS: dict[str, Function] = {
    "add": _arith(_ADD), "sub": _arith(_SUB), "min": _arith(_MIN), "max": _arith(_MAX),
    "mul": _arith(_MUL), "div": _arith(_DIV), "idiv": _arith(_IDIV),
    "mod": _modrem(True), "rem": _modrem(False),
    "neg": _negabs(True), "abs": _negabs(False),
    "eq": _compare(_EQ), "ne": _compare(_NE), "gt": _compare(_GT), "ge": _compare(_GE),
    "lt": _compare(_LT), "le": _compare(_LE),
    "not": _fn_not, "sprintf": _fn_sprintf, "first": _fn_first, "random": _fn_random,
    "and": _logic(True, False), "or": _logic(False, False),
    "nand": _logic(True, True), "nor": _logic(False, True),
    "if": _fn_if, "in": _fn_in, "now": _fn_now,
    "readable": _handler_test(False), "writable": _handler_test(True),
    "length": _fn_length, "unquote": _fn_unquote,
    "htons": _byte_order("s"), "htonl": _byte_order("l"),
    "ntohs": _byte_order("s"), "ntohl": _byte_order("l"),
    "cat": _cat(False), "catq": _cat(True), "kill": _fn_kill,
}

#: Functions that take no parameter (plain read handlers).
NO_PARAM = frozenset({"now"})
#: Functions hidden from handler listings and remote control, as in Click.
PRIVATE = frozenset({"cat", "catq", "kill"})


def call_function(name: str, param: str, context: Any, errh: ErrorHandler) -> str | None:
    """Run function ``name``; report a failure to ``errh`` and return None."""
    try:
        return FUNCTIONS[name](param, context)
    except ClickError as e:
        for line in str(e).split("\n"):
            errh.error(line)
        return None
