"""IP routing tables: LinearIPLookup, StaticIPLookup, RadixIPLookup,
DirectIPLookup and RangeIPLookup, on the shared IPRouteTable interface.

All tables answer packets with the same compiled lookup: the routes are
flattened into sorted, disjoint address ranges, each labelled with its most
specific route, and a kernel binary-searches each packet's destination.  The
flattened table is rebuilt lazily after the routes change.  Tables with
non-contiguous masks fall back to a kernel that scans routes in order of
decreasing specificity.  The elements differ in the details Click's versions
show: the order of the ``table`` listing, which handlers exist, and what is
printed when no route matches.
"""

from __future__ import annotations

import numpy as np

from clickos.core.confparse import (
    parse_int,
    parse_ip_address,
    parse_ip_prefix,
    shift_word,
    split_words,
    uncomment,
    unparse_ip,
    unparse_ip_prefix,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON, EXPENSIVE, READ_PARAM
from clickos.elements.ip.common import compute_split_ok, ip_to_int, resolver_of, runs
from clickos.elements.standard.printing import chatter
from clickos.packet.batch import PacketBatch

_complaints: dict[str, int] = {}


class Route:
    """One route: destination prefix, gateway (0 = none) and output port."""

    __slots__ = ("addr", "mask", "gw", "port")

    def __init__(self, addr: int, mask: int, gw: int = 0, port: int = -1) -> None:
        self.addr, self.mask, self.gw, self.port = addr, mask, gw, port

    def same_prefix(self, other: Route) -> bool:
        return self.addr == other.addr and self.mask == other.mask

    def matches(self, other: Route) -> bool:
        """Click's IPRoute::match: same prefix, and same gateway and port unless
        ``self.port`` is negative."""
        return self.same_prefix(other) and (self.port < 0 or (self.gw == other.gw and self.port == other.port))

    def copy(self) -> Route:
        return Route(self.addr, self.mask, self.gw, self.port)

    def unparse(self, tabs: bool = False) -> str:
        tab = "\t" if tabs else " "
        a = unparse_ip_prefix(self.addr, self.mask) + tab
        if tabs and len(a) < 17:
            a += "\t"
        g = (unparse_ip(self.gw) if self.gw else "-") + tab
        if tabs and len(g) < 9:
            g += "\t"
        return a + g + str(self.port)


def parse_route(text: str, remove: bool = False, resolver: object = None) -> Route | None:
    """Click's ``cp_ip_route``: ``ADDR/MASK [GATEWAY] OUTPUT`` (OUTPUT optional when removing)."""
    words = split_words(text)
    if not words:
        return None
    try:
        addr, mask = parse_ip_prefix(words[0], True, resolver)  # type: ignore[arg-type]
    except ConfigError:
        return None
    m = ip_to_int(mask)
    r = Route(ip_to_int(addr) & m, m)
    i = 1
    word = words[i] if i < len(words) else ""
    gw_given = False
    if word == "-":
        gw_given = True
    elif word:
        try:
            r.gw = ip_to_int(parse_ip_address(word, resolver))  # type: ignore[arg-type]
            gw_given = True
        except ConfigError:
            pass
    if gw_given:
        i += 1
        word = words[i] if i < len(words) else ""
    if word:
        try:
            r.port = parse_int(word)
        except ConfigError:
            return None
        i += 1
    elif not remove:
        return None
    if i < len(words):
        return None
    return r


def _contiguous(mask: int) -> bool:
    inv = ~mask & 0xFFFFFFFF
    return (inv & (inv + 1)) == 0


CMD_ADD, CMD_SET, CMD_REMOVE = 0, 1, 2
EEXIST, ENOENT = -17, -2


class IPRouteTable(Element):
    """IPRouteTable

    The interface shared by IP routing table elements.

    Not an element by itself.  Its subclasses take routes as configuration
    arguments, each ``ADDR/MASK [GATEWAY] OUTPUT``, look up each packet's
    destination address annotation with longest-prefix match, replace the
    annotation by the route's GATEWAY when one is given, and emit the packet on
    OUTPUT.  Packets without a route are dropped.

    Handlers (in the subclasses that allow changes): ``add`` (write a route; fails
    if the prefix already has one), ``set`` (write a route, replacing any),
    ``remove`` (write ``ADDR/MASK [GATEWAY OUTPUT]``), ``ctrl`` (write several
    ``add``/``set``/``remove`` lines, applied all or nothing), ``table`` (read),
    ``lookup`` (read with an address parameter: ``PORT [GATEWAY]``).
    """

    register = False
    port_count = "1/-"
    processing = "h"
    no_route_message: str | None = "IPRouteTable"

    def __init__(self) -> None:
        super().__init__()
        self._slots: list[Route | None] = []
        self._dirty = True

    def cast(self, name: str) -> object:
        if name == "IPRouteTable":
            return self
        return super().cast(name)

    # -- the route store (subclasses choose where new routes go) ------------------------------
    def routes(self) -> list[Route]:
        return [r for r in self._slots if r is not None]

    def _find(self, r: Route) -> int:
        for i, x in enumerate(self._slots):
            if x is not None and x.same_prefix(r):
                return i
        return -1

    def _new_slot(self) -> int:
        for i, x in enumerate(self._slots):
            if x is None:
                return i
        self._slots.append(None)
        return len(self._slots) - 1

    def add_route(self, r: Route, allow_replace: bool, old: list[Route]) -> int:
        """Add ``r``; on a same-prefix conflict store the old route in ``old`` and either
        replace it (``allow_replace``) or return EEXIST."""
        i = self._find(r)
        if i >= 0:
            prev = self._slots[i]
            assert prev is not None
            old.append(prev.copy())
            if not allow_replace:
                return EEXIST
            prev.gw, prev.port = r.gw, r.port
        else:
            self._slots[self._new_slot()] = r.copy()
        self._dirty = True
        return 0

    def remove_route(self, r: Route, old: list[Route]) -> int:
        for i, x in enumerate(self._slots):
            if x is not None and r.matches(x):
                old.append(x.copy())
                self._slots[i] = None
                self._dirty = True
                return 0
        return ENOENT

    def flush(self) -> None:
        self._slots = []
        self._dirty = True

    def lookup_route(self, addr: int) -> tuple[int, int]:
        """(port, gateway) of the best route for ``addr``; port -1 when none."""
        best: Route | None = None
        best_len = -1
        for r in self.routes():
            if (addr & r.mask) == r.addr:
                n = bin(r.mask).count("1")
                if n > best_len:
                    best, best_len = r, n
        return (best.port, best.gw) if best is not None else (-1, 0)

    def dump_routes(self) -> str:
        return "".join(r.unparse(True) + "\n" for r in self.routes())

    # -- configuration ---------------------------------------------------------------------------
    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        res = resolver_of(self)
        errors = []
        eexist = 0
        for i, arg in enumerate(conf):
            r = parse_route(arg, False, res)
            if r is None:
                errors.append(f"argument {i + 1} should be 'ADDR/MASK [GATEWAY] OUTPUT'")
            elif r.port < 0 or r.port >= len(self.outputs):
                errors.append(f"argument {i + 1} bad OUTPUT")
            elif self.add_route(r, False, []) == EEXIST:
                eexist += 1
        if errors:
            raise ConfigError("\n".join(errors))
        if eexist:
            errh.warning(f"{eexist} {'routes' if eexist > 1 else 'route'} replaced by later versions")

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k_range = netkernels.range_lookup
        self._k_linear = netkernels.linear_lookup
        self._split_ok = compute_split_ok(self)
        self._dirty = True

    # -- the compiled table ----------------------------------------------------------------------
    def _rebuild(self) -> None:
        routes = self.routes()
        self._ports = np.array([r.port for r in routes] or [0], np.int32)
        self._gws = np.array([r.gw for r in routes] or [0], np.int64)
        if all(_contiguous(r.mask) for r in routes):
            self._linear = False
            # sweep over prefixes sorted by start, outer ones first; nested prefixes
            # override their parents for the ranges they cover
            order = sorted(range(len(routes)), key=lambda k: (routes[k].addr, routes[k].mask))
            starts: list[int] = [0]
            labels: list[int] = [-1]

            def mark(point: int, label: int) -> None:
                if point > 0xFFFFFFFF:
                    return
                if starts[-1] == point:
                    labels[-1] = label
                else:
                    starts.append(point)
                    labels.append(label)

            stack: list[tuple[int, int]] = []
            for k in order:
                r = routes[k]
                lo = r.addr
                while stack and stack[-1][0] < lo:
                    end, _ = stack.pop()
                    mark(end + 1, stack[-1][1] if stack else -1)
                mark(lo, k)
                stack.append((r.addr | (~r.mask & 0xFFFFFFFF), k))
            while stack:
                end, _ = stack.pop()
                mark(end + 1, stack[-1][1] if stack else -1)
            # merge neighbours with the same label
            s2: list[int] = []
            l2: list[int] = []
            for st, lb in zip(starts, labels, strict=True):
                if l2 and l2[-1] == lb:
                    continue
                s2.append(st)
                l2.append(lb)
            self._starts = np.array(s2, np.int64)
            self._labels = np.array(l2, np.int32)
        else:
            self._linear = True
            order = sorted(range(len(routes)), key=lambda k: -bin(routes[k].mask).count("1"))
            self._addrs = np.array([routes[k].addr for k in order], np.int64)
            self._masks = np.array([routes[k].mask for k in order], np.int64)
            self._ports = np.array([routes[k].port for k in order] or [0], np.int32)
            self._gws = np.array([routes[k].gw for k in order] or [0], np.int64)
        self._dirty = False

    def lookup_batch(self, batch: PacketBatch) -> np.ndarray:
        """Output ports for a batch (-1 = no route); gateways go into the annotations."""
        if self._dirty:
            self._rebuild()
        pool = batch.pool
        out = np.empty(len(batch), np.int32)
        if self._linear:
            self._k_linear(pool.anno, batch.idx, self._addrs, self._masks, self._ports, self._gws, out)
        else:
            self._k_range(pool.anno, batch.idx, self._starts, self._labels, self._ports, self._gws, out)
        return out

    def _no_route(self, batch: PacketBatch, start: int, end: int) -> None:
        part = PacketBatch(batch.pool, batch.idx[start:end])
        msg = self.no_route_message
        if msg is not None:
            for s in part.idx.tolist():
                n = _complaints.get(msg, 0) + 1
                _complaints[msg] = n
                if n <= 5:
                    chatter(f"{msg}: no route for {unparse_ip(batch.pool.anno[s, 0:4].tobytes())}")
        part.kill()

    def push(self, port: int, batch: PacketBatch) -> None:
        ports = self.lookup_batch(batch)
        if self._split_ok:
            # routes only name existing outputs, so the rest are the unrouted (-1)
            parts, rest = batch.split_rest(ports, len(self.outputs))
            if rest is not None:
                self._no_route(rest, 0, len(rest))
            for p, part in enumerate(parts):
                if part is not None:
                    self.outputs[p].push(part)
            return
        for p, a, b in runs(ports):
            if p < 0:
                self._no_route(batch, a, b)
            else:
                self.checked_output_push(p, PacketBatch(batch.pool, batch.idx[a:b]))

    # -- handlers ----------------------------------------------------------------------------------
    def run_command(self, command: int, text: str, undo: list[tuple[int, Route]] | None) -> None:
        r = parse_route(text, command == CMD_REMOVE, resolver_of(self))
        if r is None:
            raise ConfigError("expected 'ADDR/MASK [GATEWAY"
                              + (" OUTPUT]'" if command == CMD_REMOVE else "] OUTPUT'"))
        if r.port < (-1 if command == CMD_REMOVE else 0) or r.port >= len(self.outputs):
            raise ConfigError("bad OUTPUT")
        old: list[Route] = []
        if command == CMD_REMOVE:
            rc = self.remove_route(r, old)
        else:
            rc = self.add_route(r, command == CMD_SET, old)
        if rc >= 0 and undo is not None:
            if old and command != CMD_REMOVE:
                undo.append((CMD_SET, old[0]))
            elif command == CMD_REMOVE:
                undo.append((CMD_REMOVE, old[0]))
            else:
                undo.append((CMD_ADD, r))
        if rc == EEXIST:
            raise ConfigError(f"conflict with existing route '{old[0].unparse()}'")
        if rc == ENOENT:
            raise ConfigError(f"route '{r.unparse()}' not found")

    def _ctrl(self, value: str, errh: ErrorHandler) -> None:
        undo: list[tuple[int, Route]] = []
        cmds = {"add": CMD_ADD, "remove": CMD_REMOVE, "set": CMD_SET}
        try:
            for line in uncomment(value).split("\n"):
                first, rest = shift_word(line)
                if not first:
                    continue
                if first not in cmds:
                    raise ConfigError(f"bad command '{first}'")
                self.run_command(cmds[first], rest, undo)
        except ConfigError:
            for cmd, r in reversed(undo):
                if cmd == CMD_REMOVE:
                    self.add_route(r, False, [])
                elif cmd == CMD_ADD:
                    self.remove_route(r, [])
                else:
                    self.add_route(r, True, [])
            raise

    def _lookup_handler(self, param: str) -> str:
        try:
            a = parse_ip_address(param.strip(), resolver_of(self))
        except ConfigError:
            raise ConfigError("expected IP address") from None
        port, gw = self.lookup_route(ip_to_int(a))
        return f"{port} {unparse_ip(gw)}" if gw else str(port)

    def add_handlers(self) -> None:
        self.add_write_handler("add", lambda v, e: self.run_command(CMD_ADD, v, None))
        self.add_write_handler("set", lambda v, e: self.run_command(CMD_SET, v, None))
        self.add_write_handler("remove", lambda v, e: self.run_command(CMD_REMOVE, v, None))
        self.add_write_handler("ctrl", self._ctrl)
        self.add_read_handler("table", self.dump_routes, EXPENSIVE)
        self.add_read_handler("lookup", self._lookup_handler, READ_PARAM)


class LinearIPLookup(IPRouteTable):
    """LinearIPLookup(ADDR1/MASK1 [GW1] OUT1, ADDR2/MASK2 [GW2] OUT2, ...)

    An IP routing table kept as a simple list.

    Expects each packet's destination IP address annotation to be set.  Finds
    the most specific matching route, sets the annotation to the route's gateway
    (if it has one), and emits the packet on the route's output.  Each argument
    is one route: a destination prefix, an optional gateway, and an output port.
    The table listing shows routes in the order they were added (with removed
    routes' places reused).

    Handlers: ``table``, ``lookup`` (read); ``add``, ``set``, ``remove``, ``ctrl``
    (write); see IPRouteTable.

    Example::

        rt :: LinearIPLookup(18.26.4.24/32 0, 18.26.4.255/32 0, 18.26.4.0/32 0,
                             18.26.4/24 1, 0/0 18.26.4.1 1);
    """

    no_route_message = "LinearIPLookup"


class StaticIPLookup(LinearIPLookup):
    """StaticIPLookup(ADDR1/MASK1 [GW1] OUT1, ADDR2/MASK2 [GW2] OUT2, ...)

    An IP routing table that cannot change once the router runs.

    Works like LinearIPLookup, but routes can only be given as configuration
    arguments.

    Handlers: ``table``, ``lookup`` (read).

    Example: ``StaticIPLookup(10.0.0.0/8 0, 0/0 1)``
    """

    def add_route(self, r: Route, allow_replace: bool, old: list[Route]) -> int:
        if self.router is not None and self.router.initialized:
            raise ConfigError("can't add routes dynamically")
        return super().add_route(r, allow_replace, old)

    def remove_route(self, r: Route, old: list[Route]) -> int:
        if self.router is not None and self.router.initialized:
            raise ConfigError("can't remove routes dynamically")
        return super().remove_route(r, old)

    def add_handlers(self) -> None:
        self.add_read_handler("table", self.dump_routes)
        self.add_read_handler("lookup", self._lookup_handler, READ_PARAM)


class RadixIPLookup(IPRouteTable):
    """RadixIPLookup(ADDR1/MASK1 [GW1] OUT1, ADDR2/MASK2 [GW2] OUT2, ...)

    A longest-prefix-match IP routing table for large route sets.

    Expects each packet's destination IP address annotation to be set.  Finds
    the most specific matching route, sets the annotation to the route's gateway
    (if it has one), and emits the packet on the route's output.  Each argument
    is one route: ``ADDR/MASK [GATEWAY] OUTPUT``.

    Handlers: ``table``, ``lookup`` (read); ``add``, ``set``, ``remove``, ``ctrl``,
    ``flush`` (write); see IPRouteTable.

    Example: ``RadixIPLookup(10.0.0.0/8 1, 10.1.0.0/16 10.1.0.1 2, 0/0 0)``
    """

    def __init__(self) -> None:
        super().__init__()
        self._free: list[int] = []

    def _new_slot(self) -> int:
        if self._free:
            return self._free.pop()
        self._slots.append(None)
        return len(self._slots) - 1

    def add_route(self, r: Route, allow_replace: bool, old: list[Route]) -> int:
        i = self._find(r)
        if i >= 0:
            prev = self._slots[i]
            assert prev is not None
            old.append(prev.copy())
            if not allow_replace:
                return EEXIST
        j = self._new_slot()
        self._slots[j] = r.copy()
        if i >= 0:
            self._slots[i] = None
            self._free.append(i)
        self._dirty = True
        return 0

    def remove_route(self, r: Route, old: list[Route]) -> int:
        i = self._find(r)
        if i < 0:
            return ENOENT
        x = self._slots[i]
        assert x is not None
        old.append(x.copy())
        if not r.matches(x):
            return ENOENT
        self._slots[i] = None
        self._free.append(i)
        self._dirty = True
        return 0

    def flush(self) -> None:
        super().flush()
        self._free = []

    def add_handlers(self) -> None:
        super().add_handlers()
        self.add_write_handler("flush", lambda v, e: self.flush(), BUTTON)


def _direct_hash(prefix: int, plen: int) -> int:
    """The bucket DirectIPLookup's route hash table puts a prefix in (its listing order)."""
    m = 0xFFFFFFFF
    h = (prefix ^ (plen << 5) ^ (((prefix >> (plen >> 2)) - plen) & m)) & m
    h = (h ^ (h >> 23) ^ (((h >> 15) * plen) & m) ^ (((prefix >> 17) * 53) & m)) & m
    h = (h - ((prefix >> 3) ^ (((h >> (plen & 31)) * 7) & m) ^ (((h >> 11) * 103) & m))) & m
    return (h ^ (h >> 17)) & 0xFFFF


class DirectIPLookup(RadixIPLookup):
    """DirectIPLookup(ADDR1/MASK1 [GW1] OUT1, ADDR2/MASK2 [GW2] OUT2, ...)

    A fast IP routing table with constant-time lookups.

    Behaves like RadixIPLookup: longest-prefix match on the destination
    annotation, gateway into the annotation, packet to the route's output.
    Packets without a route are dropped silently.

    Handlers: ``table``, ``lookup`` (read); ``add``, ``set``, ``remove``, ``ctrl``,
    ``flush`` (write); see IPRouteTable.

    Example: ``DirectIPLookup(10.0.0.0/8 1, 0/0 0)``
    """

    no_route_message = None

    def __init__(self) -> None:
        super().__init__()
        self._seq: dict[tuple[int, int], int] = {}
        self._next_seq = 0

    def add_route(self, r: Route, allow_replace: bool, old: list[Route]) -> int:
        rc = super().add_route(r, allow_replace, old)
        key = (r.addr, r.mask)
        if rc == 0 and key not in self._seq:
            self._next_seq += 1
            self._seq[key] = self._next_seq if r.mask else -1
        return rc

    def remove_route(self, r: Route, old: list[Route]) -> int:
        rc = super().remove_route(r, old)
        if rc == 0 and r.mask:
            self._seq.pop((r.addr, r.mask), None)
        return rc

    def flush(self) -> None:
        super().flush()
        self._seq = {}

    def dump_routes(self) -> str:
        # Click lists its prefix hash table bucket by bucket, newest entry first
        def key(r: Route) -> tuple[int, int]:
            plen = bin(r.mask).count("1")
            return _direct_hash(r.addr, plen), -self._seq.get((r.addr, r.mask), 0)
        return "".join(r.unparse(True) + "\n" for r in sorted(self.routes(), key=key))


class RangeIPLookup(DirectIPLookup):
    """RangeIPLookup(ADDR1/MASK1 [GW1] OUT1, ADDR2/MASK2 [GW2] OUT2, ...)

    An IP routing table searched as sorted address ranges.

    Behaves like DirectIPLookup; its lookup structure is a sorted list of
    disjoint address ranges, each tagged with its best route, searched by
    bisection.  Packets without a route are dropped silently.

    Handlers: ``table``, ``lookup`` (read); ``add``, ``set``, ``remove``, ``ctrl``,
    ``flush`` (write); see IPRouteTable.

    Example: ``RangeIPLookup(10.0.0.0/8 1, 0/0 0)``
    """
