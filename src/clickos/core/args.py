"""Click's ``Args`` argument parser, for element ``configure`` methods.

An element writes::

    a = Args(conf, self)
    self.capacity = a.read_p("CAPACITY", parse_unsigned, 1000)
    self.limit = a.read("LIMIT", parse_int, -1)
    a.complete()

Each ``read*`` call returns the parsed value at once (or ``default`` when the argument
is absent or fails to parse); problems are collected and :meth:`Args.complete` (or
:meth:`~Args.consume` / :meth:`~Args.execute`) raises one :class:`ArgsError`
(a :class:`~clickos.core.errors.ConfigError`) whose message is every error line joined
with ``"\\n"``, in the order Click prints them.  ``err.errors`` holds the lines.

Matching rules (Click's ``Args::find``)
---------------------------------------
* An argument *has a keyword* when it starts with ``[A-Za-z_][A-Za-z0-9_:.?!]*``
  followed by whitespace and more text: ``"LIMIT 5"`` has keyword ``LIMIT`` and value
  ``5``.  Case is not restricted; matching a requested keyword is exact.
* ``read(KEY)`` takes every argument with keyword ``KEY`` and uses the last one.
* Positional reads (``read_p``/``read_mp``) take the first argument not yet consumed
  positionally, provided it has no keyword (a *mandatory* positional read takes it even if
  it looks like one) and no keyword argument has been consumed before it.  A positional
  read also accepts its keyword; if both are present, a keyword given after the positional
  argument wins.
* An empty argument counts as absent.
* :meth:`complete` reports each unmatched keyword argument as ``"KEY: unknown argument"``
  and any unmatched positional argument as ``"too many arguments"``.

Messages are Click's: ``KEY: required argument missing``, ``KEY: parse error``,
``KEY: invalid number``, ``KEY: out of range, bound 255``, ``FOO: unknown argument``,
``too many arguments``, ``KEY: keywords must start with a letter or underscore`` and the
warning ``KEY: warning: argument deprecated``.

Parsers are plain callables ``parser(text) -> value`` that raise ``ConfigError`` (see
:mod:`clickos.core.confparse`); ``None`` means "the raw text" (Click's ``AnyArg``).  A
``ValueError`` from a parser is reported as ``parse error``.  While a parser runs, the
Args' resolver (``resolver=`` or the context's ``resolve_name(kind, name)`` method) is
installed for AddressInfo-style name lookups.

If an :class:`~clickos.core.errors.ErrorHandler` is given, each message is also passed to
it as it happens (as Click does); the exception then has ``reported = True`` so callers
do not print it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from clickos.core.confparse import Resolver, split_args, split_words, using_resolver
from clickos.core.errors import ConfigError, ErrorHandler

__all__ = ["Args", "ArgsError"]

T = TypeVar("T")
Parser = Callable[[str], Any]

_SPACE = " \t\n\v\f\r"


class ArgsError(ConfigError):
    """Configuration arguments failed to parse.

    ``err.errors`` holds one entry per message line; ``str(err)`` / ``err.message`` is
    ``"\\n".join(err.errors)``.  ``err.warnings`` holds warnings issued along the way;
    ``err.reported`` is true when the messages were already given to an ErrorHandler."""

    def __init__(self, errors: list[str], warnings: list[str] | None = None,
                 reported: bool = False) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)
        self.warnings = list(warnings or [])
        self.reported = reported


def _keyword_length(arg: str) -> int:
    """Length of the keyword ``arg`` starts with, or 0 if it is positional
    (Click's ``Args::reset_from``)."""
    n = len(arg)
    if n == 0:
        return 0
    c = arg[0]
    if not (("a" <= c <= "z") or ("A" <= c <= "Z") or c == "_"):
        return 0
    i = 1
    while i < n:
        c = arg[i]
        if ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or c in "_:.?!":
            i += 1
        else:
            break
    j = i
    while j < n and arg[j] in _SPACE:
        j += 1
    if j == i or j == n:
        return 0
    return i


def _context_resolver(context: Any) -> Resolver | None:
    fn = getattr(context, "resolve_name", None)
    return fn if callable(fn) else None


class Args:
    """Click's ``Args``: read positional and keyword arguments, then ``complete()``.

    ``conf`` is a list of arguments as made by :func:`~clickos.core.confparse.split_args`
    (it is copied; use :meth:`bind` to share a list) or a whole configuration string.
    ``context`` is the element being configured (kept as ``self.context``).

    Flags for :meth:`read_flags`: ``Args.MANDATORY``, ``Args.POSITIONAL``,
    ``Args.DEPRECATED``, ``Args.FIRSTMATCH`` (Click's ``mandatory``, ``positional``,
    ``deprecated``, ``firstmatch``)."""

    MANDATORY = 1
    POSITIONAL = 2
    DEPRECATED = 4
    FIRSTMATCH = 8

    def __init__(self, conf: list[str] | str | None = None, context: Any = None,
                 errh: ErrorHandler | None = None, *, resolver: Resolver | None = None) -> None:
        self.context = context
        self.errh = errh
        self.resolver = resolver if resolver is not None else _context_resolver(context)
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self._status = True
        self._read_status = False
        self._keyword: str | None = None
        self._conf: list[str] = []
        self._kwpos: list[int] = []
        if conf is not None:
            self._conf = split_args(conf) if isinstance(conf, str) else list(conf)
            self._reset_from(0)

    # -- argument list ----------------------------------------------------------------
    def _reset_from(self, start: int) -> None:
        del self._kwpos[start:]
        self._kwpos.extend(_keyword_length(a) for a in self._conf[start:])

    def bind(self, conf: list[str]) -> Args:
        """Parse ``conf`` itself rather than a copy; :meth:`strip`/:meth:`consume` edit it."""
        self._conf = conf
        self._reset_from(0)
        return self

    def push_back(self, arg: str) -> Args:
        """Append one argument."""
        self._conf.append(arg)
        self._reset_from(len(self._conf) - 1)
        return self

    def push_back_args(self, text: str) -> Args:
        """Append the comma-separated arguments of ``text``."""
        start = len(self._conf)
        self._conf.extend(split_args(text))
        self._reset_from(start)
        return self

    def push_back_words(self, text: str) -> Args:
        """Append the space-separated words of ``text``."""
        start = len(self._conf)
        self._conf.extend(split_words(text))
        self._reset_from(start)
        return self

    def extend(self, args: Iterable[str]) -> Args:
        """Append several arguments."""
        start = len(self._conf)
        self._conf.extend(args)
        self._reset_from(start)
        return self

    def reset(self) -> Args:
        """Forget which arguments were matched (results already returned are unaffected)."""
        self._reset_from(0)
        return self

    def clear(self) -> Args:
        """Remove all arguments."""
        del self._conf[:]
        self._kwpos.clear()
        return self

    def strip(self) -> Args:
        """Remove the arguments matched so far."""
        keep = [i for i, k in enumerate(self._kwpos) if k >= 0]
        self._conf[:] = [self._conf[i] for i in keep]
        self._kwpos = [self._kwpos[i] for i in keep]
        return self

    @property
    def conf(self) -> list[str]:
        """The argument list (after :meth:`strip`/:meth:`consume`: the unmatched ones)."""
        return self._conf

    def empty(self) -> bool:
        """True if there are no arguments."""
        return not self._conf

    # -- status -----------------------------------------------------------------------
    @property
    def status(self) -> bool:
        """False once any read failed or any error was reported."""
        return self._status and not self.errors

    @property
    def read_status(self) -> bool:
        """Whether the last read found its argument and parsed it (for ``read_all``: at
        least one matched and all parsed).  Click's ``read_status()``."""
        return self._read_status

    # -- messages ---------------------------------------------------------------------
    def _prefixed(self, message: str) -> str:
        if not self._keyword:
            return message
        return "\n".join(f"{self._keyword}: {line}" for line in message.split("\n"))

    def error(self, message: str) -> None:
        """Report an error about the current argument (prefixed ``KEY: `` during a read)."""
        text = self._prefixed(message)
        self.errors.extend(text.split("\n"))
        self._read_status = False
        if self.errh is not None:
            self.errh.error(text)

    def warning(self, message: str) -> None:
        """Report a warning; during a read it prints as ``KEY: warning: message``."""
        if self._keyword:
            text = self._prefixed("warning: " + message)
            self.warnings.append(text)
            if self.errh is not None:
                self.errh.message(text)
                self.errh.nwarnings += 1
        else:
            self.warnings.append("warning: " + message)
            if self.errh is not None:
                self.errh.warning(message)

    def message(self, message: str) -> None:
        """Pass an informational message to the ErrorHandler, if any."""
        if self.errh is not None:
            self.errh.message(self._prefixed(message))

    # -- the matcher ------------------------------------------------------------------
    def _find(self, keyword: str, flags: int) -> str | None:
        """Locate the argument for ``keyword`` and mark it used (Click's ``Args::find``).

        ``_kwpos[i]`` is the keyword length of unmatched keyword arguments, 0 for unmatched
        positional ones, -1 once taken positionally and -2 once taken by keyword."""
        self._keyword = keyword
        self._read_status = True
        if keyword and "0" <= keyword[0] <= "9":
            self.error("keywords must start with a letter or underscore")
        kwpos = self._kwpos
        conf = self._conf
        klen = len(keyword)
        got = -1
        got_kwpos = -1
        position = -1
        for i in range(len(kwpos)):
            k = kwpos[i]
            if position == -1 and k != -1:
                position = i if k >= 0 else -2
            if k == klen and conf[i].startswith(keyword):
                got = i
                got_kwpos = k
                kwpos[i] = -2
                if flags & self.FIRSTMATCH:
                    break

        if (flags & self.POSITIONAL and position >= 0 and kwpos[position] >= 0
                and ((got < 0 and flags & self.MANDATORY) or kwpos[position] == 0)
                and (not flags & self.FIRSTMATCH or got < 0 or position < got)):
            kwpos[position] = -1
            if flags & self.FIRSTMATCH and position < got:
                kwpos[got] = klen           # leave that keyword for a later read
            if flags & self.FIRSTMATCH or got < position:
                got = position
                got_kwpos = 0

        if got < 0:
            if flags & self.MANDATORY:
                self.error("required argument missing")
                self._status = False
            self._read_status = False
            return None
        if flags & self.DEPRECATED:
            self.warning("argument deprecated")
        arg = conf[got]
        if got_kwpos:
            j = got_kwpos
            while j < len(arg) and arg[j] in _SPACE:
                j += 1
            return arg[j:]
        return arg

    def _run(self, parser: Parser | None, text: str) -> tuple[bool, Any]:
        if parser is None:
            return True, text
        message = ""
        try:
            if self.resolver is not None:
                with using_resolver(self.resolver):
                    return True, parser(text)
            return True, parser(text)
        except ConfigError as err:
            message = err.message or "parse error"
        except ValueError:
            message = "parse error"
        # Click prints a parser's own message always, but its generic "parse error"
        # only if nothing was reported for this read yet.
        if message != "parse error" or self._read_status:
            self.error(message)
        self._read_status = False
        self._status = False
        return False, None

    # -- reads ------------------------------------------------------------------------
    def read_flags(self, keyword: str, flags: int, parser: Parser | None = None,
                   default: Any = None) -> Any:
        """Read ``keyword`` with explicit Click flags; return the value or ``default``."""
        try:
            text = self._find(keyword, flags)
            if not text:
                return default
            ok, value = self._run(parser, text)
            return value if ok else default
        finally:
            self._keyword = None

    def read(self, keyword: str, parser: Parser | None = None, default: Any = None, *,
             mandatory: bool = False, positional: bool = False, deprecated: bool = False) -> Any:
        """Optional keyword argument (Click's ``read``); ``default`` if absent or bad."""
        flags = ((self.MANDATORY if mandatory else 0) | (self.POSITIONAL if positional else 0)
                 | (self.DEPRECATED if deprecated else 0))
        return self.read_flags(keyword, flags, parser, default)

    def read_m(self, keyword: str, parser: Parser | None = None, default: Any = None, *,
               deprecated: bool = False) -> Any:
        """Mandatory keyword argument (``read_m``)."""
        return self.read(keyword, parser, default, mandatory=True, deprecated=deprecated)

    def read_p(self, keyword: str, parser: Parser | None = None, default: Any = None, *,
               deprecated: bool = False) -> Any:
        """Optional positional argument, also accepted by keyword (``read_p``)."""
        return self.read(keyword, parser, default, positional=True, deprecated=deprecated)

    def read_mp(self, keyword: str, parser: Parser | None = None, default: Any = None, *,
                deprecated: bool = False) -> Any:
        """Mandatory positional argument, also accepted by keyword (``read_mp``)."""
        return self.read(keyword, parser, default, mandatory=True, positional=True,
                         deprecated=deprecated)

    # Click's read_or_set sets the variable to the default when the argument is absent;
    # since reads here return values, it is the same as read().
    read_or_set = read

    def read_or_set_p(self, keyword: str, parser: Parser | None = None, default: Any = None) -> Any:
        """``read_or_set_p``: positional read with a default."""
        return self.read_p(keyword, parser, default)

    # Click's read_with family passes the text to a parser object; same thing here.
    read_with = read
    read_m_with = read_m
    read_p_with = read_p
    read_mp_with = read_mp

    def read_all(self, keyword: str, parser: Parser | None = None, *, mandatory: bool = False,
                 positional: bool = False, deprecated: bool = False) -> list[Any]:
        """Every argument with ``keyword``, in order (Click's ``read_all``).  Values that
        fail to parse are reported and left out.  ``read_status`` is true iff at least one
        matched and all parsed."""
        flags = (self.FIRSTMATCH | (self.MANDATORY if mandatory else 0)
                 | (self.POSITIONAL if positional else 0) | (self.DEPRECATED if deprecated else 0))
        results: list[Any] = []
        state = -1
        try:
            while True:
                text = self._find(keyword, flags)
                if not text:
                    break
                ok, value = self._run(parser, text)
                if ok:
                    results.append(value)
                state = 1 if (state != 0 and self._read_status) else 0
                flags &= ~self.MANDATORY
        finally:
            self._keyword = None
        self._read_status = state == 1
        return results

    read_all_with = read_all

    # -- finishing --------------------------------------------------------------------
    def _raise_if_failed(self) -> None:
        if not self.status:
            errors = self.errors or ["parse error"]
            raise ArgsError(errors, self.warnings, reported=self.errh is not None)

    def execute(self) -> None:
        """Raise :class:`ArgsError` if anything failed so far."""
        self._raise_if_failed()

    def consume(self) -> list[str]:
        """Remove the matched arguments, raise if anything failed, and return the
        arguments that are left (Click's ``consume``)."""
        self.strip()
        self._raise_if_failed()
        return self._conf

    def complete(self) -> None:
        """Check that every argument was used, then raise if anything failed
        (Click's ``complete``): ``KEY: unknown argument`` for each unused keyword argument,
        then ``too many arguments`` if positional arguments were left over."""
        extra_positional = False
        for i, k in enumerate(self._kwpos):
            if k == 0:
                extra_positional = True
                self._status = False
            elif k > 0:
                self._keyword = None
                self.error(f"{self._conf[i][:k]}: unknown argument")
                self._status = False
        if extra_positional:
            self._keyword = None
            self.error("too many arguments")
        self._raise_if_failed()

    def __repr__(self) -> str:
        return f"<Args {self._conf!r} status={self.status}>"
