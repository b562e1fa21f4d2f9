"""Handlers: the named read/write entry points of elements and of the router.

A read handler returns a value (str, int, bool, float...), which is formatted
as Click formats it (booleans as true/false).  A write handler takes the value
string and an ErrorHandler; it raises ConfigError (or reports to errh) on bad
input.  ``call_read``/``call_write`` turn those into Click's conventions: errors
reported through the ErrorHandler and a negative return code.
"""

from __future__ import annotations

import errno
import fnmatch
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from clickos.core.errors import ClickError, ConfigError, ErrorHandler, SilentErrorHandler

if TYPE_CHECKING:
    from clickos.core.element import Element
    from clickos.core.router import Router

# Handler flags (Click's Handler::f_*).
READ_PARAM = 1 << 2
RAW = 1 << 3
CALM = 1 << 4
EXPENSIVE = 1 << 5
BUTTON = 1 << 6
CHECKBOX = 1 << 7
UNCOMMON = 1 << 8
DEPRECATED = 1 << 9
NONEXCLUSIVE = 1 << 10
PRIVATE = 1 << 11


def format_value(v: Any) -> str:
    """Format a read handler's value as Click prints it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes):
        return v.decode("latin-1")
    return str(v)


class Handler:
    """One handler; read and write halves may both be present."""

    __slots__ = ("name", "element", "read", "write", "flags", "read_flags", "write_flags")

    def __init__(self, name: str, element: Element | None) -> None:
        self.name = name
        self.element = element
        self.read: Callable[..., Any] | None = None
        self.write: Callable[[str, ErrorHandler], Any] | None = None
        self.flags = 0
        self.read_flags = 0
        self.write_flags = 0

    @property
    def readable(self) -> bool:
        return self.read is not None

    @property
    def writable(self) -> bool:
        return self.write is not None

    @property
    def read_param(self) -> bool:
        return bool(self.read_flags & READ_PARAM)

    @property
    def raw(self) -> bool:
        return bool(self.flags & RAW)

    @property
    def visible(self) -> bool:
        return not (self.flags & PRIVATE)

    def full_name(self) -> str:
        if self.element is None:
            return self.name
        return f"{self.element.name}.{self.name}"

    def call_read(self, param: str = "", errh: ErrorHandler | None = None) -> str:
        assert self.read is not None
        try:
            if self.read_flags & READ_PARAM:
                v = self.read(param)
            else:
                v = self.read()
        except ClickError as e:
            (errh or SilentErrorHandler()).error(str(e))
            return ""
        return format_value(v)

    def call_write(self, value: str, errh: ErrorHandler | None = None) -> int:
        """Returns 0 on success, a negative errno-style code on failure."""
        assert self.write is not None
        errh = errh or SilentErrorHandler()
        before = errh.nerrors
        try:
            r = self.write(value, errh)
        except ConfigError as e:
            errh.error(str(e))
            return -errno.EINVAL
        except ClickError as e:
            errh.error(str(e))
            return -errno.EINVAL
        finally:
            if self.element is not None and getattr(self.element, "_fast_paths", None):
                from clickos.core.fastpath import element_changed

                element_changed(self.element)
        if isinstance(r, int) and not isinstance(r, bool) and r < 0:
            return r
        return -errno.EINVAL if errh.nerrors > before else 0


class HandlerTable:
    """All handlers of one router: per element, plus global ones (element None)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._table: dict[int, dict[str, Handler]] = {}

    def _get(self, element: Element | None, name: str) -> Handler:
        key = -1 if element is None else id(element)
        d = self._table.setdefault(key, {})
        h = d.get(name)
        if h is None:
            h = d[name] = Handler(name, element)
        return h

    def add_read(self, element: Element | None, name: str, fn: Callable[..., Any], flags: int = 0) -> None:
        h = self._get(element, name)
        h.read = fn
        h.read_flags = flags
        h.flags = (h.flags & ~(RAW | CALM | EXPENSIVE | UNCOMMON | DEPRECATED | PRIVATE)) | (
            flags & ~READ_PARAM) | (h.write_flags & (RAW | PRIVATE))

    def add_write(self, element: Element | None, name: str, fn: Callable[[str, ErrorHandler], Any],
                  flags: int = 0) -> None:
        h = self._get(element, name)
        h.write = fn
        h.write_flags = flags
        h.flags |= flags

    def remove(self, element: Element | None, name: str) -> None:
        key = -1 if element is None else id(element)
        self._table.get(key, {}).pop(name, None)

    def find(self, element: Element | None, name: str) -> Handler | None:
        """The handler, if any.  As in Click, an element with a writable ``*`` handler
        is asked to create a missing handler (its write gets the name) before giving up."""
        key = -1 if element is None else id(element)
        d = self._table.get(key)
        if d is None:
            return None
        h = d.get(name)
        if h is None and element is not None and name != "*":
            star = d.get("*")
            if star is not None and star.write is not None \
                    and star.call_write(name, SilentErrorHandler()) >= 0:
                h = d.get(name)
        return h

    def element_handlers(self, element: Element | None) -> list[Handler]:
        key = -1 if element is None else id(element)
        return list(self._table.get(key, {}).values())

    # -- convenience builders ------------------------------------------------------
    def add_data(self, element: Element, name: str, obj: Any, attr: str, kind: str = "int",
                 writable: bool = True) -> None:
        def read() -> Any:
            return getattr(obj, attr)

        self.add_read(element, name, read)
        if writable:
            from clickos.core import confparse as cp  # local: keeps this module's import light

            parsers: dict[str, Callable[[str], Any]] = {
                "int": cp.parse_int, "uint": cp.parse_unsigned, "bool": cp.parse_bool,
                "double": cp.parse_double, "string": lambda s: s.strip(), "seconds": cp.parse_seconds,
            }
            parse = parsers[kind]

            def write(value: str, errh: ErrorHandler) -> None:
                setattr(obj, attr, parse(value.strip()))

            self.add_write(element, name, write)

    def add_task_handlers(self, element: Element, task: Any, prefix: str = "") -> None:
        self.add_read(element, prefix + "scheduled", lambda: task.scheduled)
        self.add_read(element, prefix + "tickets", lambda: task.tickets)

        def write_tickets(value: str, errh: ErrorHandler) -> None:
            try:
                n = int(value.strip())
            except ValueError:
                raise ConfigError("syntax error") from None
            if n < 1:
                errh.warning("tickets pinned at 1")
                n = 1
            elif n > 1 << 15:
                errh.warning(f"tickets pinned at {1 << 15}")
                n = 1 << 15
            task.set_tickets(n)

        self.add_write(element, prefix + "tickets", write_tickets)

    # -- lookup by Click's handler names ---------------------------------------------
    def resolve(self, full: str) -> tuple[Element | None, str] | None:
        """Split ``elem.handler`` / ``N.handler`` / ``handler`` into (element, name).

        The element part may itself contain dots and slashes; the longest element
        name that exists wins, as in Click's HandlerCall.
        """
        r = self.router
        dot = full.rfind(".")
        while dot > 0:
            ename, hname = full[:dot], full[dot + 1:]
            e = r.find(ename)
            if e is None and ename.isdigit():
                i = int(ename)
                e = r.elements[i - 1] if 1 <= i <= len(r.elements) else None
                if i == 0:
                    return None, hname
            if e is not None:
                return e, hname
            dot = full.rfind(".", 0, dot)
        if "." in full:
            return None
        return None, full

    def glob_elements(self, pattern: str) -> list[Element]:
        return [e for e in self.router.elements if fnmatch.fnmatchcase(e.name, pattern)]
