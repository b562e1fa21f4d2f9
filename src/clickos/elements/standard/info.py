"""Information elements: AlignmentInfo, AddressInfo, PortInfo, ScheduleInfo, RandomSeed.

These have no ports.  They record facts for other elements (and for the
configuration parser) while the router is configured; they configure early
(Click's CONFIGURE_PHASE_FIRST / CONFIGURE_PHASE_INFO).

The random generator shared by the random elements (``click_random``) lives
here too, since RandomSeed is what seeds it.
"""

from __future__ import annotations

import random
import re
import secrets
from typing import TYPE_CHECKING, Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import parse_int, parse_unsigned, parse_unsigned_fixed_point, split_words
from clickos.core.element import CONFIGURE_PHASE_FIRST, CONFIGURE_PHASE_INFO, Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM

if TYPE_CHECKING:
    from clickos.core.router import Router

# -- the shared random generator --------------------------------------------------------

_rng: np.random.Generator = np.random.default_rng()


def click_random() -> np.random.Generator:
    """The generator used by RandomSwitch and other randomized elements."""
    return _rng


def click_srandom(seed: int | None) -> None:
    """Seed the shared generator (and Python's ``random``); None picks a fresh random seed."""
    global _rng
    if seed is None:
        seed = secrets.randbits(32)
    _rng = np.random.default_rng(seed)
    random.seed(seed)


def _context_prefix(e: Element) -> str:
    """The compound-element prefix of ``e``'s name: ``a/b/`` for ``a/b/c``."""
    slash = e.name.rfind("/")
    return e.name[: slash + 1] if slash >= 0 else ""


def _words(text: str, comments: bool = False) -> list[str]:
    """Space-separated words of an argument; with ``comments``, ``#`` starts a comment."""
    out = []
    for w in split_words(text):
        if comments and w.startswith("#"):
            break
        out.append(w)
    return out


# -- AlignmentInfo ----------------------------------------------------------------------

class AlignmentInfo(Element):
    """AlignmentInfo(ELEMENT [MODULUS OFFSET ...], ...)

    Records how packets arriving at given elements are aligned in memory.

    Each argument is ``ELEMENT MODULUS0 OFFSET0 MODULUS1 OFFSET1 ...``: packets
    arriving on ELEMENT's input N start OFFSETN bytes past a MODULUSN-byte
    boundary.  Names that match no element are ignored.  Several AlignmentInfo
    elements pool their facts; contradicting facts about one element are
    reported (the router still runs).  click-align inserts this element;
    Classifier consults it.

    Example: ``AlignmentInfo(c 4 2)``
    """

    port_count = "0/0"
    configure_phase = CONFIGURE_PHASE_INFO

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        # Click reports these problems but still lets the router run.
        report = errh.message
        table: dict[int, list[tuple[int, int]]] = self.router.attachments.setdefault("AlignmentInfo", {})
        for i, arg in enumerate(conf):
            parts = _words(arg)
            if not parts:
                errh.warning(f"empty configuration argument {i}")
                continue
            e = self.router.find(parts[0], self)
            if e is None:
                continue
            if len(parts) % 2 != 1:
                report("expected 'ELEMENTNAME CHUNK OFFSET [CHUNK OFFSET...]'")
            info: list[tuple[int, int]] = []
            for j in range(1, len(parts) - 1, 2):
                c = o = -1
                try:
                    c = parse_int(parts[j])
                except ConfigError:
                    report("expected CHUNK")
                try:
                    o = parse_int(parts[j + 1])
                except ConfigError:
                    report("expected OFFSET")
                info.append((c, o))
            old = table.get(e.eindex)
            table[e.eindex] = info
            if old is not None and old != info:
                report(f"conflicting AlignmentInfo for '{parts[0]}'")


def alignment_query(e: Element, port: int) -> tuple[int, int] | None:
    """(modulus, offset) that AlignmentInfo promises for ``e``'s input ``port``, if any."""
    table = e.router.attachments.get("AlignmentInfo") if e.router is not None else None
    if not table:
        return None
    info = table.get(e.eindex)
    if info is None or port >= len(info):
        return None
    return info[port]


# -- AddressInfo / PortInfo: named constants visible to argument parsing --------------
#
# Definitions go to router.attachments["NameInfo"][kind][prefix + name], where kind
# is what confparse's parsers ask Element.resolve_name for: "ip" (4 bytes),
# "ip_prefix" ((addr, mask)), "ip6" (16 bytes), "ip6_prefix" ((addr, prefix_len)),
# "ether" (6 bytes), "port:6" / "port:17" (TCP / UDP port numbers).

def define_name(router: Router, kind: str, prefix: str, name: str, value: Any) -> None:
    """Record ``prefix + name`` as a name of ``kind`` for ``Element.resolve_name``."""
    db: dict[str, dict[str, Any]] = router.attachments.setdefault("NameInfo", {})
    db.setdefault(kind, {})[prefix + name] = value


def _try(parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except (ConfigError, ValueError):
        return None


class AddressInfo(Element):
    """AddressInfo(NAME ADDRESS [ADDRESS...], ...)

    Gives names to IP addresses, IP prefixes and Ethernet addresses.

    Each argument is ``NAME ADDRESS...``; afterwards other elements' arguments
    may say NAME where an address is expected.  One name can stand for an IPv4
    address, an IPv4 prefix, an IPv6 address or prefix, and an Ethernet address
    at once; the context picks which.  A suffix forces a kind: ``NAME:ip``,
    ``NAME:ipnet``, ``NAME:eth``, ``NAME:ip6``, ``NAME:ip6net``; for a prefix
    ``NAME:bcast`` is its broadcast address and ``NAME:gw`` its lowest host
    address.  A prefix with host bits, such as ``10.0.0.1/24``, defines both the
    address 10.0.0.1 and the network 10.0.0.1/24; where an address is wanted
    the address wins.

    Names defined inside a compound element are visible only inside it.

    Example: ``AddressInfo(router0 10.0.0.1/24 00:01:02:03:04:05)``
    """

    port_count = "0/0"
    configure_phase = CONFIGURE_PHASE_FIRST

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        from clickos.core import confparse as cp

        prefix = _context_prefix(self)
        with cp.using_resolver(self.resolve_name):
            for arg in conf:
                parts = _words(arg)
                if not parts:
                    continue
                if len(parts) < 2:
                    errh.error("expected 'NAME [ADDRS]'")
                name = parts[0]
                seen: set[str] = set()
                for word in parts[1:]:
                    found: dict[str, Any] = {}
                    eth = _try(cp.parse_ether_address, word)
                    if eth is not None:
                        found["ether"] = eth
                    ip = _try(cp.parse_ip_address, word)
                    if ip is not None:
                        found["ip"] = ip
                    else:
                        pfx = _try(cp.parse_ip_prefix, word)
                        if pfx is not None:
                            found["ip_prefix"] = pfx
                            addr, mask = pfx
                            if int.from_bytes(addr, "big") & ~int.from_bytes(mask, "big") & 0xFFFFFFFF:
                                found["ip"] = addr
                    ip6 = _try(cp.parse_ip6_address, word)
                    if ip6 is not None:
                        found["ip6"] = ip6
                    else:
                        p6 = _try(cp.parse_ip6_prefix, word)
                        if p6 is not None:
                            found["ip6_prefix"] = p6
                            addr6, plen = p6
                            host = int.from_bytes(addr6, "big") & ((1 << (128 - plen)) - 1)
                            if host:
                                found["ip6"] = addr6
                    if not found:
                        errh.error(f"'{word}' is not a recognizable address")
                        continue
                    one = len(found) == 1
                    for kind, value in found.items():
                        if one or kind not in seen:
                            define_name(self.router, kind, prefix, name, value)
                    seen.update(found)


class PortInfo(Element):
    """PortInfo(NAME PORT[/PROTOCOL], ...)

    Gives names to TCP and UDP port numbers.

    Each argument is ``NAME PORT[/PROTOCOL]``; afterwards other elements'
    arguments may use NAME for the port.  Without a protocol the name applies to
    both TCP and UDP.  Further names may follow the port, and ``#`` starts a
    comment, so lines of ``/etc/services`` work as arguments.  Names defined
    inside a compound element are visible only inside it.

    Example: ``PortInfo(ssh 22, http 80/tcp)``
    """

    port_count = "0/0"
    configure_phase = CONFIGURE_PHASE_FIRST

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        from clickos.core import confparse as cp

        prefix = _context_prefix(self)
        for arg in conf:
            words = _words(arg, comments=True)
            if not words:
                continue
            port_text = words[1] if len(words) > 1 else ""
            m = re.match(r"(0[xX][0-9a-fA-F]+|\d+)", port_text)
            rest = port_text[m.end():] if m else port_text
            if not m or (rest and not rest.startswith("/")):
                errh.error("expected 'NAME PORT/PROTO'")
                continue
            try:
                port = parse_unsigned(m.group(1))
            except ConfigError:
                errh.error("expected 'NAME PORT/PROTO'")
                continue
            if rest == "/tcp":
                protos = [6]
            elif rest == "/udp":
                protos = [17]
            elif rest:
                try:
                    protos = [cp.parse_ip_protocol(rest[1:], self.resolve_name)]
                except ConfigError:
                    continue
            else:
                protos = [6, 17]
            for n in [words[0]] + words[2:]:
                for proto in protos:
                    define_name(self.router, f"port:{proto}", prefix, n, port)


# -- ScheduleInfo -----------------------------------------------------------------------

FRAC_BITS = 10


class ScheduleInfo(Element):
    """ScheduleInfo(ELEMENT PARAM, ...)

    Sets how often elements' tasks run relative to one another.

    Each argument is ``ELEMENT PARAM`` where PARAM is a real number (default
    1): a task of an element with PARAM 2 runs twice as often as one with
    PARAM 1.  A ScheduleInfo inside a compound element names that compound's
    components; a PARAM given to a compound element from outside scales all its
    components' parameters.  Parameters become task tickets (1024 per unit).

    Example: ``ScheduleInfo(fast 4, slow 0.5)``
    """

    port_count = "0/0"
    configure_phase = CONFIGURE_PHASE_INFO

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        prefix = _context_prefix(self)
        for arg in conf:
            parts = _words(arg)
            if not parts:
                continue
            fixed = None
            if len(parts) == 2:
                try:
                    fixed = parse_unsigned_fixed_point(parts[1], FRAC_BITS)
                except ConfigError:
                    fixed = None
            if fixed is None:
                errh.message("expected 'ELEMENTNAME PARAM'")  # reported; not fatal in Click
                continue
            self.router.schedule_info[prefix + parts[0]] = fixed / (1 << FRAC_BITS)


# -- RandomSeed -------------------------------------------------------------------------

class RandomSeed(Element):
    """RandomSeed([SEED])

    Seeds the random number generator.

    With SEED (an unsigned integer), random choices made by elements such as
    RandomSwitch become repeatable; without it the generator gets a fresh,
    unpredictable seed.

    Handlers: ``seed`` (read/write) the seed; writing an empty value picks a
    fresh random seed.

    Example: ``RandomSeed(1)``
    """

    port_count = "0/0"
    configure_phase = CONFIGURE_PHASE_FIRST

    def __init__(self) -> None:
        super().__init__()
        self.seed_text = ""

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        seed = a.read_p("SEED", parse_unsigned, default=None)
        a.complete()
        self.seed_text = "" if seed is None else str(seed)
        click_srandom(None if seed is None else seed & 0xFFFFFFFF)

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def add_handlers(self) -> None:
        self.add_read_handler("seed", lambda: self.seed_text, CALM)

        def write(value: str, errh: ErrorHandler) -> None:
            self.configure([value.strip()] if value.strip() else [], errh)

        self.add_write_handler("seed", write)
