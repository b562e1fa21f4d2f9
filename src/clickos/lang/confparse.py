"""Low-level helpers for Click configuration strings.

These follow the rules in click(5) for comments, quoting and backslash
escapes.  They work on Python ``str`` positions and never raise on malformed
input: an unterminated quote or comment simply runs to the end of the string,
which is what Click does.

Functions that take ``(text, i, end)`` return a new position; they never move
past ``end`` (Click's pointer code can overshoot by one on a trailing ``//``;
every caller only compares against ``end``, so clamping changes nothing).
"""

from __future__ import annotations

SPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_DIGITS = frozenset("0123456789")
_KEYWORD_EXTRA = frozenset("_.:?!")


def is_alnum(c: str) -> bool:
    """ASCII-only ``isalnum`` (Python's str.isalnum accepts all of Unicode)."""
    return c in _WORD_CHARS and c != "_"


def is_var_char(c: str) -> bool:
    return c in _WORD_CHARS


def is_digit(c: str) -> bool:
    return c in _DIGITS


def skip_space(text: str, i: int, end: int) -> int:
    while i < end and text[i] in SPACE:
        i += 1
    return i


def _skip_comment(text: str, i: int, end: int) -> int:
    """``text[i:i+2]`` is ``//`` or ``/*``; return the position after the comment."""
    if text[i + 1] == "/":
        i += 2
        while i + 1 < end and text[i] not in "\n\r":
            i += 1
        if i + 1 < end and text[i] == "\r" and text[i + 1] == "\n":
            i += 1
        return min(i + 1, end)
    close = text.find("*/", i + 2, end)
    if close < 0:
        return end
    return close + 2


def skip_comment_space(text: str, i: int, end: int) -> int:
    """Skip white space and comments."""
    while i < end:
        c = text[i]
        if c in SPACE:
            i += 1
        elif c == "/" and i + 1 < end and text[i + 1] in "/*":
            i = _skip_comment(text, i, end)
        else:
            break
    return i


def _skip_backslash(text: str, i: int, end: int) -> int:
    """``text[i]`` is a backslash; skip the escape (``\\<...>`` may hold comments)."""
    if i + 1 >= end:
        return i + 1
    nxt = text[i + 1]
    if nxt == "<":
        i += 2
        while i < end:
            c = text[i]
            if c == ">":
                return i + 1
            if c == "/" and i + 1 < end and text[i + 1] in "/*":
                i = _skip_comment(text, i, end)
            else:
                i += 1
        return i
    if nxt == "\r" and i + 2 < end and text[i + 2] == "\n":
        return i + 3
    return i + 2


def skip_double_quote(text: str, i: int, end: int) -> int:
    """``text[i]`` is ``"``; return the position after the closing quote (or ``end``)."""
    i += 1
    while i < end:
        c = text[i]
        if c == "\\":
            i = _skip_backslash(text, i, end)
        elif c == '"':
            return i + 1
        else:
            i += 1
    return end


def skip_single_quote(text: str, i: int, end: int) -> int:
    close = text.find("'", i + 1, end)
    return end if close < 0 else close + 1


def _uncomment_from(text: str, i: int, stop_at_comma: bool) -> tuple[str, int]:
    """Strip leading/trailing space, turn comments (and the space around them) into
    one space; optionally stop at the first unquoted comma.  Returns the text and
    the position where scanning stopped."""
    end = len(text)
    i = skip_comment_space(text, i, end)
    parts: list[str] = []
    left = right = i
    closed = False
    while i < end:
        c = text[i]
        if c in SPACE:
            i += 1
        elif c == "/" and i + 1 < end and text[i + 1] in "/*":
            i = _skip_comment(text, i, end)
            closed = True
        elif c == "," and stop_at_comma:
            break
        else:
            if closed:
                parts.append(text[left:right])
                parts.append(" ")
                left = i
                closed = False
            if c == "'":
                i = skip_single_quote(text, i, end)
            elif c == '"':
                i = skip_double_quote(text, i, end)
            elif c == "\\" and i + 1 < end and text[i + 1] == "<":
                i = _skip_backslash(text, i, end)
            else:
                i += 1
            right = i
    if parts:
        parts.append(text[left:right])
        return "".join(parts), i
    return text[left:right], i


def uncomment(text: str) -> str:
    return _uncomment_from(text, 0, False)[0]


def split_args(text: str) -> list[str]:
    """Split a configuration string at unquoted commas (Click's ``cp_argvec``).

    Each argument is uncommented; an empty last argument is dropped.
    """
    out: list[str] = []
    n = len(text)
    pos = 0
    while pos < n:
        arg, pos = _uncomment_from(text, pos, True)
        if arg or pos < n:
            out.append(arg)
        pos += 1
    return out


def _skip_space_item(text: str, i: int, end: int) -> int:
    while i < end:
        c = text[i]
        if c == "/":
            if i + 1 < end and text[i + 1] in "/*":
                return i
            i += 1
        elif c == '"':
            i = skip_double_quote(text, i, end)
        elif c == "'":
            i = skip_single_quote(text, i, end)
        elif c == "\\":
            if i + 1 < end and text[i + 1] == "<":
                i = _skip_backslash(text, i, end)
            else:
                i += 1
        elif c in " \f\n\r\t\v":
            return i
        else:
            i += 1
    return i


def split_words(text: str) -> list[str]:
    """Split at unquoted white space (Click's ``cp_spacevec``)."""
    out: list[str] = []
    end = len(text)
    i = skip_comment_space(text, 0, end)
    while i < end:
        j = _skip_space_item(text, i, end)
        out.append(text[i:j])
        i = skip_comment_space(text, j, end)
    return out


def shift_word(text: str) -> tuple[str, str]:
    """Return the first space-separated item of ``text`` and the rest (``cp_shift_spacevec``)."""
    end = len(text)
    start = skip_comment_space(text, 0, end)
    stop = _skip_space_item(text, start, end)
    rest = skip_comment_space(text, stop, end)
    return text[start:stop], text[rest:]


def _hexval(c: str) -> int:
    if "0" <= c <= "9":
        return ord(c) - 48
    if "A" <= c <= "F":
        return ord(c) - 55
    if "a" <= c <= "f":
        return ord(c) - 87
    return -1


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _process_backslash(text: str, i: int, end: int, out: list[str]) -> int:
    """Expand the backslash escape at ``text[i]`` into ``out``; return the next position."""
    if i == end - 1:
        out.append("\\")
        return end
    c = text[i + 1]
    if c == "\r":
        return i + 3 if i + 2 < end and text[i + 2] == "\n" else i + 2
    if c == "\n":
        return i + 2
    if c in _SIMPLE_ESCAPES:
        out.append(_SIMPLE_ESCAPES[c])
        return i + 2
    if "0" <= c <= "7":
        value = 0
        j = i + 1
        while j < end and "0" <= text[j] <= "7" and j - i - 1 < 3:
            value = value * 8 + ord(text[j]) - 48
            j += 1
        out.append(chr(value & 0xFF))
        return j
    if c == "x":
        value = 0
        j = i + 2
        while j < end and _hexval(text[j]) >= 0:
            value = (value * 16 + _hexval(text[j])) & 0xFF
            j += 1
        out.append(chr(value))
        return j
    if c == "<":
        value = 0
        ndigits = 0
        j = i + 2
        while j < end:
            d = text[j]
            if d == ">":
                return j + 1
            h = _hexval(d)
            if h >= 0:
                value = value * 16 + h
                ndigits += 1
                if ndigits == 2:
                    out.append(chr(value))
                    value = ndigits = 0
                j += 1
            elif d == "/" and j + 1 < end and text[j + 1] in "/*":
                j = _skip_comment(text, j, end)
            else:
                j += 1  # spaces (and junk) are ignored
        return end
    out.append(c)
    return i + 2


def unquote(text: str) -> str:
    """Remove one level of quoting (Click's ``cp_unquote``)."""
    x = uncomment(text)
    end = len(x)
    out: list[str] = []
    start = 0
    quote = ""
    i = 0
    while i < end:
        c = x[i]
        if c in "\"'":
            if not quote:
                out.append(x[start:i])
                start = i + 1
                quote = c
            elif quote == c:
                out.append(x[start:i])
                start = i + 1
                quote = ""
        elif c == "\\" and i + 1 < end and (quote == '"' or (not quote and x[i + 1] == "<")):
            out.append(x[start:i])
            start = _process_backslash(x, i, end, out)
            i = start
            continue
        i += 1
    if start == 0:
        return x
    out.append(x[start:])
    return "".join(out)


def quote(text: str, allow_newlines: bool = False) -> str:
    """Return a double-quoted form of ``text`` that :func:`unquote` turns back into ``text``.

    Control characters and characters 127-255 become octal escapes, as Click
    does for bytes (configuration files are read as Latin-1, one character per
    byte).  Characters beyond U+00FF cannot come from a file and are kept.
    """
    out = ['"']
    for c in text:
        if c in '\\"$':
            out.append("\\" + c)
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif c == "\n":
            out.append("\n" if allow_newlines else "\\n")
        elif ord(c) < 32 or 127 <= ord(c) < 256:
            out.append(f"\\{ord(c):03o}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def parse_string(text: str) -> str | None:
    """Parse one possibly-quoted string that must fill ``text`` (``cp_string``)."""
    end = len(text)
    i = 0
    while i < end:
        c = text[i]
        if c in " \f\n\r\t\v":
            break
        if c == '"':
            i = skip_double_quote(text, i, end)
        elif c == "'":
            i = skip_single_quote(text, i, end)
        elif c == "\\" and i + 1 < end and text[i + 1] == "<":
            i = _skip_backslash(text, i, end)
        else:
            i += 1
    if i == 0 or i != end:
        return None
    return unquote(text)


def is_word(text: str) -> bool:
    """Nonempty printable ASCII with no quotes, backslashes or commas."""
    if not text:
        return False
    for c in text:
        if c in "\"'\\," or ord(c) <= 32 or ord(c) >= 127:
            return False
    return True


def parse_word(text: str) -> str | None:
    s = parse_string(text)
    if s is None or not is_word(s):
        return None
    return s


def parse_keyword(text: str) -> tuple[str, str] | None:
    """Split ``KEYWORD rest``; keywords are ``[A-Za-z0-9_.:?!]+`` (``cp_keyword``)."""
    end = len(text)
    i = 0
    while i < end:
        c = text[i]
        if c in " \f\n\r\t\v":
            break
        if not (is_alnum(c) or c in _KEYWORD_EXTRA):
            return None
        i += 1
    if i == 0:
        return None
    keyword = text[:i]
    while i < end and text[i] in SPACE:
        i += 1
    return keyword, text[i:]


def printable(text: str) -> str:
    """Click's ``String::printable``: ``^X`` for control characters, octal escapes
    for characters 127-255 (bytes, as text is read as Latin-1) and for the UTF-8
    bytes of anything beyond."""
    if all(32 <= ord(c) < 127 for c in text):
        return text
    out = []
    for c in text:
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


INT_OK, INT_RANGE, INT_INVALID = 0, 1, 2


def parse_int_prefix(text: str, i: int, end: int, base: int = 0, signed: bool = True,
                     bits: int = 32) -> tuple[int, int, int]:
    """Parse an integer at ``text[i:end]`` like Click's ``IntArg``.

    Base 0 means decimal, with ``0x`` (hex), ``0b`` (binary) and leading ``0``
    (octal) prefixes; underscores may separate digits.  Returns ``(stop,
    value, status)``: ``stop`` is where parsing stopped (``i`` if nothing
    parsed), ``value`` saturates on overflow (status ``INT_RANGE``).
    """
    s = i
    if s < end and ((signed and text[s] == "-") or text[s] == "+"):
        s += 1
    b = base
    if (b in (0, 16)) and s + 2 < end and text[s] == "0" and text[s + 1] in "xX":
        s += 2
        b = 16
    elif b == 0 and s + 2 < end and text[s] == "0" and text[s + 1] in "bB":
        s += 2
        b = 2
    elif b == 0 and s < end and text[s] == "0":
        b = 8
    elif b == 0:
        b = 10
    if b < 2 or b > 36:
        return i, 0, INT_INVALID
    first = s
    last = s - 1
    while s < end:
        c = text[s]
        if c == "_" and last == s:
            pass
        else:
            d = _digit_value(c)
            if d < 0 or d >= b:
                break
            last = s + 1
        s += 1
    if s != first:
        stop = last
    elif first > i + 1:
        stop = first - 1  # "0x!" parses as the initial "0"
    else:
        return i, 0, INT_INVALID
    value = 0
    for c in text[i:stop]:
        d = _digit_value(c)
        if 0 <= d < b:
            value = value * b + d
    negative = signed and text[i] == "-"
    limit = 1 << (bits - 1 if signed else bits)
    if value >= limit + (1 if negative else 0):
        if signed:
            return stop, (-limit if negative else limit - 1), INT_RANGE
        return stop, limit - 1, INT_RANGE
    return stop, (-value if negative else value), INT_OK


def _digit_value(c: str) -> int:
    if "0" <= c <= "9":
        return ord(c) - 48
    if "a" <= c <= "z":
        return ord(c) - 87
    if "A" <= c <= "Z":
        return ord(c) - 55
    return -1


def parse_int(text: str) -> int | None:
    """Parse a whole string as a 32-bit signed integer; None if invalid or out of range."""
    stop, value, status = parse_int_prefix(text, 0, len(text))
    if status != INT_OK or stop != len(text):
        return None
    return value
