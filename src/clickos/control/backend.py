"""The ControlSocket handler backend over a running :class:`~clickos.core.router.Router`.

:class:`RouterBackend` answers the protocol's READ, WRITE, CHECK and LLRPC
requests by finding and calling handlers, and turns what happens into Click's
reply codes and texts:

- Handler names: ``element.handler`` (the element part is everything before
  the *first* dot), ``N.handler`` with N counting elements from 1, and a bare
  ``handler`` (or ``.handler``, ``0.handler``) for the router's global
  handlers.  Handlers flagged PRIVATE do not exist as far as clients can tell.
- Errors a handler reports through its ErrorHandler (or raises) come back as
  detail lines under the summary line, with their landmarks, just as they
  would print on standard error.

LLRPCs ("low-level RPCs") are binary calls into an element.  A client names
them ``element#HEX``, HEX being the command number in Click's portable
encoding (direction bits 0x80000000 = data in, 0x40000000 = data out,
0x20000000 = no data; data size in bits 16-27; 0x4000 = flat, 0x8000 = safe).
Only flat commands with a size can cross a socket.  An element supports them
by defining ``llrpc(self, command: int, data: bytearray) -> int``: ``command``
is in the portable encoding (the ``CLICK_LLRPC_*`` constants here), ``data``
holds the input bytes (zeroes when the command takes none) and is updated in
place with the output; the result is 0 or a negative errno value.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from clickos.control.protocol import (
    CSERR_HANDLER_ERROR,
    CSERR_LLRPC_ERROR,
    CSERR_NO_ROUTER,
    CSERR_NO_SUCH_ELEMENT,
    CSERR_NO_SUCH_HANDLER,
    CSERR_OK,
    CSERR_OK_HANDLER_WARNING,
    CSERR_PERMISSION,
    CSERR_SYNTAX,
    CSERR_UNIMPLEMENTED,
    CSERR_UNSPECIFIED,
    HandlerBackend,
    Reply,
)
from clickos.core.errors import ClickError, ErrorHandler

if TYPE_CHECKING:
    from clickos.core.element import Element
    from clickos.core.handlers import Handler
    from clickos.core.router import Router

__all__ = [
    "CLICK_LLRPC_GET_COUNT", "CLICK_LLRPC_GET_RATE", "CLICK_LLRPC_GET_SWITCH",
    "CLICK_LLRPC_MAP_IPADDRESS", "CLICK_LLRPC_SET_SWITCH", "LLRPC_FLAT", "LLRPC_IN",
    "LLRPC_OUT", "LLRPC_SAFE", "LLRPC_VOID", "ReplyErrorHandler", "RouterBackend",
    "llrpc_number", "llrpc_size",
]

# -- LLRPC numbering (portable encoding) ---------------------------------------------------
LLRPC_VOID = 0x20000000
LLRPC_OUT = 0x40000000
LLRPC_IN = 0x80000000
LLRPC_SAFE = 0x00008000
LLRPC_FLAT = 0x00004000
_LLRPC_BASE = 0x0FFFFFFF


def llrpc_number(n: int, size: int = 0, *, data_in: bool = False, data_out: bool = False,
                 safe: bool = False, flat: bool = False) -> int:
    """Build a portable LLRPC command number from its parts."""
    direction = (LLRPC_IN if data_in else 0) | (LLRPC_OUT if data_out else 0)
    if not direction:
        direction = LLRPC_VOID
    return (direction | (LLRPC_SAFE if safe else 0) | (LLRPC_FLAT if flat else 0)
            | ((size & 0xFFF) << 16) | (n & 0x3FFF))


def llrpc_size(command: int) -> int:
    """How many data bytes an LLRPC command carries."""
    return (command >> 16) & 0xFFF


CLICK_LLRPC_GET_RATE = llrpc_number(1, 4, data_in=True, data_out=True, safe=True, flat=True)
CLICK_LLRPC_GET_COUNT = llrpc_number(3, 4, data_in=True, data_out=True, safe=True, flat=True)
CLICK_LLRPC_GET_SWITCH = llrpc_number(5, 4, data_out=True, safe=True, flat=True)
CLICK_LLRPC_SET_SWITCH = llrpc_number(6, 4, data_in=True, flat=True)
CLICK_LLRPC_MAP_IPADDRESS = llrpc_number(7, 4, data_in=True, data_out=True, flat=True)


class ReplyErrorHandler(ErrorHandler):
    """Collects a handler's messages, one entry per line, for a reply.

    Nothing is printed.  Lines carry their landmarks exactly as the default
    ErrorHandler would print them.
    """

    def __init__(self) -> None:
        super().__init__(echo=False)

    def _emit(self, text: str) -> None:
        parts = text.split("\n")
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()
        self.lines.extend(parts)


def _data(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _canonical(name: str) -> str:
    """Drop the empty or ``0`` element part that also names a global handler."""
    if name.startswith("."):
        return name[1:]
    if name.startswith("0."):
        return name[2:]
    return name


def _element_index(text: str) -> int | None:
    """An element number as Click's IntArg reads it (decimal, 0x.., 0b.., 0..)."""
    from clickos.core.confparse import parse_int

    try:
        return parse_int(text)
    except (ClickError, ValueError):
        return None


class RouterBackend(HandlerBackend):
    """Handler calls against one router, with a ControlSocket's options.

    ``router`` may be None (every request then gets 540).  ``read_only``
    refuses writes and LLRPCs (530).  ``proxy`` names an element whose
    handlers stand in for everything: a request for ``E.H`` calls the proxy's
    handler literally named ``E.H``, and LLRPCs go to the proxy's
    ``proxy_llrpc(spec, command, data)`` if it has one.
    """

    def __init__(self, router: Router | None, *, read_only: bool = False,
                 proxy: Element | None = None) -> None:
        self.router = router
        self.read_only = read_only
        self.proxy = proxy

    # -- name resolution ------------------------------------------------------------
    def resolve(self, name: str) -> tuple[Element | None, Handler] | Reply:
        """Find the handler a client means by ``name``, or the error reply."""
        router = self.router
        if router is None:
            return Reply.one(CSERR_NO_ROUTER, "No router installed")
        canonical = _canonical(name)
        if self.proxy is not None:
            h = router.handlers.find(self.proxy, canonical)
            if h is None or not h.visible:
                return Reply.one(CSERR_NO_SUCH_HANDLER, f"No proxied handler named '{name}'")
            return self.proxy, h
        element: Element | None = None
        hname = canonical
        dot = canonical.find(".")
        if dot >= 0:
            ename, hname = canonical[:dot], canonical[dot + 1:]
            element = router.find(ename)
            if element is None:
                i = _element_index(ename)
                if i is not None and 1 <= i <= len(router.elements):
                    element = router.elements[i - 1]
            if element is None:
                return Reply.one(CSERR_NO_SUCH_ELEMENT, f"No element named '{ename}'")
        h = router.handlers.find(element, hname)
        if h is None or not h.visible:
            return Reply.one(CSERR_NO_SUCH_HANDLER, f"No handler named '{name}'")
        return element, h

    # -- the four requests ------------------------------------------------------------
    def read(self, name: str, param: str) -> Reply:
        """READ: call the handler, reply 200 plus its data, or 590 with its errors."""
        found = self.resolve(name)
        if isinstance(found, Reply):
            return found
        element, h = found
        if not h.readable:
            return Reply.one(CSERR_PERMISSION, f"Handler '{name}' write-only")
        errh = ReplyErrorHandler()
        value = ""
        if param and not h.read_param:
            full = f"{element.name}.{h.name}" if element is not None else h.name
            errh.error(f"read handler '{full}' does not take parameters")
        else:
            try:
                value = h.call_read(param, errh)
            except Exception as exc:  # noqa: BLE001 - a broken handler must not kill the router
                errh.error(str(exc) or type(exc).__name__)
        if errh.nerrors:
            return Reply.with_details(CSERR_UNSPECIFIED, f"Read handler '{name}' error", errh.lines)
        return Reply.one(CSERR_OK, f"Read handler '{name}' OK", _data(value))

    def write(self, name: str, value: str) -> Reply:
        """WRITE: call the handler; 200, 220 with warnings, or 520 with errors."""
        found = self.resolve(name)
        if isinstance(found, Reply):
            return found
        _element, h = found
        if not h.writable:
            return Reply.one(CSERR_PERMISSION, f"Handler '{name}' read-only")
        if self.read_only:
            return Reply.one(CSERR_PERMISSION, f"Permission denied for '{name}'")
        errh = ReplyErrorHandler()
        try:
            result = h.call_write(value, errh)
        except Exception as exc:  # noqa: BLE001
            errh.error(str(exc) or type(exc).__name__)
            result = -errno.EINVAL
        if errh.nerrors or result < 0:
            code, summary = CSERR_HANDLER_ERROR, f"Write handler '{name}' error"
        elif errh.nwarnings:
            code, summary = CSERR_OK_HANDLER_WARNING, f"Write handler '{name}' OK with warnings"
        else:
            code, summary = CSERR_OK, f"Write handler '{name}' OK"
        return Reply.with_details(code, summary, errh.lines)

    def check(self, name: str, write: bool) -> Reply:
        """CHECKREAD/CHECKWRITE: 200 if the handler can be used that way."""
        found = self.resolve(name)
        if isinstance(found, Reply):
            return found
        _element, h = found
        ok = h.writable if write else h.readable
        if write and ok and self.read_only:
            return Reply.one(CSERR_PERMISSION, f"Permission denied for '{name}'")
        if ok:
            kind = "Write" if write else "Read"
            return Reply.one(CSERR_OK, f"{kind} handler '{name}' OK")
        return Reply.one(CSERR_NO_SUCH_HANDLER,
                         f"Handler '{name}' not writable" if write else f"Handler '{name}' not readable")

    def llrpc(self, spec: str, data: bytes) -> Reply:
        """LLRPC: call ``element#HEX`` with ``data``; 200 plus output data, or an error."""
        hash_at = spec.find("#")
        command = _parse_hex32(spec[hash_at + 1:]) if hash_at >= 0 else None
        if command is None:
            return Reply.one(CSERR_SYNTAX, f"Syntax error in LLRPC name '{spec}'")
        found = self.resolve(spec[:hash_at] + ".name")
        if isinstance(found, Reply):
            return found
        element, _h = found
        size = llrpc_size(command)
        if not size or not command & (LLRPC_IN | LLRPC_OUT) or not command & LLRPC_FLAT:
            return Reply.one(CSERR_UNIMPLEMENTED, f"Cannot call LLRPC '{spec}' remotely")
        if self.read_only:
            return Reply.one(CSERR_PERMISSION, f"Permission denied for '{spec}'")
        if command & LLRPC_IN:
            if len(data) != size:
                return Reply.one(CSERR_LLRPC_ERROR, f"LLRPC '{spec}' requires {size} bytes input data")
            buf = bytearray(data)
        else:
            buf = bytearray(size)
        errh = ReplyErrorHandler()
        retval = self._call_llrpc(element, spec, command, buf, errh)
        if retval < 0:
            return Reply.with_details(
                CSERR_LLRPC_ERROR, f"LLRPC '{spec}' error: {os.strerror(-retval)}", errh.lines)
        if errh.nerrors:
            return Reply.with_details(CSERR_LLRPC_ERROR, f"LLRPC '{spec}' error", errh.lines)
        out = bytes(buf) if command & LLRPC_OUT else b""
        return Reply.with_details(CSERR_OK, f"LLRPC '{spec}' OK", errh.lines, out)

    def _call_llrpc(self, element: Element | None, spec: str, command: int, buf: bytearray,
                    errh: ErrorHandler) -> int:
        target: Any = element
        if self.proxy is not None:
            fn = getattr(self.proxy, "proxy_llrpc", None)
            args: tuple[Any, ...] = (spec, command, buf)
        else:
            fn = getattr(target, "llrpc", None)
            args = (command, buf)
        if fn is None:
            return -errno.EINVAL
        try:
            r = fn(*args)
        except ClickError as exc:
            errh.error(str(exc))
            return 0
        except Exception as exc:  # noqa: BLE001
            errh.error(str(exc) or type(exc).__name__)
            return 0
        return int(r) if isinstance(r, int) else 0


def _parse_hex32(text: str) -> int | None:
    """A 32-bit unsigned hexadecimal number (an optional ``0x`` allowed), else None."""
    from clickos.core.confparse import parse_integer

    try:
        return parse_integer(text, 32, False, 16)
    except (ClickError, ValueError):
        return None
