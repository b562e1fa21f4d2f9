"""Tokenizer for the Click language.

Besides tokens it tracks the current file name and line number (for
``FILE:LINE`` landmarks), honours ``# N "file"`` line directives, and reads
configuration strings (the raw text between balanced parentheses).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from clickos.core.confparse import unquote

# Token kinds.  Single-character tokens use the character itself as their kind;
# every other kind is a longer string, so the two can never be confused.
IDENT = "identifier"
VARIABLE = "variable"
ARROW = "->"
ARROW2 = "=>"
COLON2 = "::"
BAR2 = "||"
DOTS = "..."
ELEMENTCLASS = "elementclass"
REQUIRE = "require"
PROVIDE = "provide"
DEFINE = "define"
EOF = "end of file"

_KEYWORDS = {"elementclass": ELEMENTCLASS, "require": REQUIRE, "provide": PROVIDE, "define": DEFINE}
_PAIRS = {"->": ARROW, "=>": ARROW2, "::": COLON2, "||": BAR2}

_SPACE_RE = re.compile(r"[ \t\n\v\f\r]+")
_WORD_RE = re.compile(r"[A-Za-z0-9_@]+(?:/[A-Za-z0-9_@]+)*")
_VAR_RE = re.compile(r"[A-Za-z0-9_]*")
_NEWLINE_RE = re.compile(r"[\n\r]")
_CONFIG_SPECIAL_RE = re.compile(r"[()\n\r#/'\"\\]")
_ANGLE_SPECIAL_RE = re.compile(r"[\n\r/>]")
_DIGITS_RE = re.compile(r"[0-9]+")
_QUOTE_SPECIAL_RE = {"'": re.compile(r"[\n\r\\']"), '"': re.compile(r'[\n\r\\"]')}

Reporter = Callable[[str], None]


class Lexeme:
    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        self.text = text

    def __repr__(self) -> str:
        return f"Lexeme({self.kind!r}, {self.text!r})"


EOF_LEXEME = Lexeme(EOF, "")


def is_multichar_kind(kind: str) -> bool:
    """True for identifiers, variables, keywords and multi-character operators."""
    return len(kind) > 1 and kind != EOF


def describe_kind(kind: str) -> str:
    """How an expected token kind is named in messages ("expected ...")."""
    if kind == IDENT:
        return "identifier"
    if kind == VARIABLE:
        return "variable"
    if kind == EOF:
        return "'\\000'"
    if len(kind) > 1:
        return f"'{kind}'"
    if 32 <= ord(kind) < 127:
        return f"'{kind}'"
    return f"'\\{ord(kind):03d}'"


def count_newlines(text: str) -> int:
    """Line breaks in ``text``; CR, LF and CRLF each count once."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def landmark_string(filename: str, lineno: int) -> str:
    lineno %= 1 << 32  # Click keeps line numbers unsigned
    if not lineno:
        return filename
    if filename and (filename[-1] == ":" or filename[-1].isspace()):
        return f"{filename}{lineno}"
    return f"{filename}:{lineno}"


class Tokenizer:
    """Position in one source text, plus its current file name and line."""

    __slots__ = ("text", "end", "pos", "filename", "original_filename", "lineno")

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.end = len(text)
        self.pos = 0
        self.filename = filename or "config"
        self.original_filename = self.filename
        self.lineno = 1

    def landmark(self) -> str:
        return landmark_string(self.filename, self.lineno)

    def save(self) -> tuple[str, int, int]:
        return self.filename, self.lineno, self.pos

    def restore(self, state: tuple[str, int, int]) -> None:
        self.filename, self.lineno, self.pos = state

    # -- skipping ---------------------------------------------------------------
    def _skip_line(self, s: int) -> int:
        m = _NEWLINE_RE.search(self.text, s)
        if m is None:
            return self.end
        self.lineno += 1
        i = m.start()
        if self.text[i] == "\r" and i + 1 < self.end and self.text[i + 1] == "\n":
            return i + 2
        return i + 1

    def _skip_slash_star(self, s: int) -> int:
        close = self.text.find("*/", s)
        stop = self.end if close < 0 else close
        self.lineno += count_newlines(self.text[s:stop])
        return self.end if close < 0 else close + 2

    def _skip_backslash_angle(self, s: int) -> int:
        text, end = self.text, self.end
        while True:
            m = _ANGLE_SPECIAL_RE.search(text, s)
            if m is None:
                return end
            s = m.start()
            c = text[s]
            if c == "\n":
                self.lineno += 1
            elif c == "\r":
                if s + 1 < end and text[s + 1] == "\n":
                    s += 1
                self.lineno += 1
            elif c == "/":
                if s + 1 < end:
                    if text[s + 1] == "/":
                        s = self._skip_line(s + 2) - 1
                    elif text[s + 1] == "*":
                        s = self._skip_slash_star(s + 2) - 1
            else:
                return s + 1
            s += 1

    def _skip_quote(self, s: int, endc: str) -> int:
        text, end = self.text, self.end
        special = _QUOTE_SPECIAL_RE[endc]
        while True:
            m = special.search(text, s)
            if m is None:
                return end
            s = m.start()
            c = text[s]
            if c == "\n":
                self.lineno += 1
            elif c == "\r":
                if s + 1 < end and text[s + 1] == "\n":
                    s += 1
                self.lineno += 1
            elif c == "\\":
                # Backslashes only escape inside double quotes.  (Click does not
                # count a line break that a backslash escapes.)
                if endc == '"' and s + 1 < end:
                    if text[s + 1] == "<":
                        s = self._skip_backslash_angle(s + 2) - 1
                    else:
                        s += 1
            else:
                return s + 1
            s += 1

    def _line_directive(self, s: int, report: Reporter) -> int:
        """``text[s]`` is a ``#`` starting a line: apply ``# N "file"`` / ``#line N``.
        Returns the position of the line break ending the directive."""
        text, end = self.text, self.end
        s += 1
        while s < end and text[s] in " \t":
            s += 1
        if s + 4 < end and text.startswith("line", s) and text[s + 4] in " \t":
            s += 5
            while s < end and text[s] in " \t":
                s += 1
        m = _DIGITS_RE.match(text, s)
        if m is None:
            report("unknown preprocessor directive")
            return self._skip_line(s)
        # The line break after the directive will add one.
        self.lineno = (int(m.group()) % (1 << 32)) - 1
        s = m.end()
        while s < end and text[s] in " \t":
            s += 1
        if s < end and text[s] == '"':
            first = s
            s += 1
            while s < end and text[s] not in '"\n\r':
                if text[s] == "\\" and s + 1 < end and text[s + 1] not in "\n\r":
                    s += 1
                s += 1
            # An empty name means "back to the file's real name".
            self.filename = unquote(text[first:s] + '"') or self.original_filename
        m = _NEWLINE_RE.search(text, s)
        s = end if m is None else m.start()
        if s + 1 < end and text[s] == "\r" and text[s + 1] == "\n":
            s += 1
        return s

    # -- tokens -----------------------------------------------------------------
    def next_lexeme(self, report: Reporter) -> Lexeme:
        text, end = self.text, self.end
        s = self.pos
        while True:
            m = _SPACE_RE.match(text, s)
            if m is not None:
                self.lineno += count_newlines(m.group())
                s = m.end()
            if s >= end:
                self.pos = end
                return EOF_LEXEME
            c = text[s]
            if c == "/" and s + 1 < end:
                if text[s + 1] == "/":
                    s = self._skip_line(s + 2)
                    continue
                if text[s + 1] == "*":
                    s = self._skip_slash_star(s + 2)
                    continue
                break
            if c == "#" and (s == 0 or text[s - 1] in "\n\r"):
                s = self._line_directive(s, report)
                continue
            break

        m = _WORD_RE.match(text, s)
        if m is not None:
            self.pos = m.end()
            word = m.group()
            return Lexeme(_KEYWORDS.get(word, IDENT), word)
        if c == "$":
            m = _VAR_RE.match(text, s + 1)
            self.pos = m.end()
            return Lexeme(VARIABLE, m.group())
        if s + 1 < end:
            kind = _PAIRS.get(text[s:s + 2])
            if kind is not None:
                self.pos = s + 2
                return Lexeme(kind, kind)
        if s + 2 < end and text.startswith("...", s):
            self.pos = s + 3
            return Lexeme(DOTS, DOTS)
        self.pos = s + 1
        return Lexeme(c, c)

    def lex_config(self, report: Reporter) -> str:
        """Read a configuration string up to (not including) the unbalanced ``)``.

        Parentheses inside quotes and comments do not count.  Comments stay in
        the text (elements strip them when they split their arguments); line
        directives are removed but their line breaks are kept.
        """
        text, end = self.text, self.end
        s = self.pos
        start = s
        depth = 1
        parts: list[str] = []
        while True:
            m = _CONFIG_SPECIAL_RE.search(text, s)
            if m is None:
                s = end
                break
            s = m.start()
            c = text[s]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if not depth:
                    break
            elif c == "\n":
                self.lineno += 1
            elif c == "\r":
                if s + 1 < end and text[s + 1] == "\n":
                    s += 1
                self.lineno += 1
            elif c == "#":
                if s > 0 and text[s - 1] in "\n\r":
                    parts.append(text[start:s])
                    s = self._line_directive(s, report) - 1
                    start = s + 1
            elif c == "/":
                if s + 1 < end:
                    if text[s + 1] == "/":
                        s = self._skip_line(s + 2) - 1
                    elif text[s + 1] == "*":
                        s = self._skip_slash_star(s + 2) - 1
            elif c == "'" or c == '"':
                s = self._skip_quote(s + 1, c) - 1
            elif c == "\\":
                if s + 1 < end and text[s + 1] == "<":
                    s = self._skip_backslash_angle(s + 2) - 1
            s += 1
            if s >= end:
                s = end
                break
        self.pos = s
        parts.append(text[start:s])
        return "".join(parts)
