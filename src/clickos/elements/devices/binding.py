"""Run-time bindings of FromDevice/ToDevice to packet sources and sinks.

ClickOS configurations name their interfaces by number: ``FromDevice(0)``,
``ToDevice(1)``.  What a device number stands for is decided when the router
is built, not in the configuration.  For device NAME (``0``, ``1``, ``eth0``)
the binding is the first of:

1. the configuration variable ``DEV<NAME>_RX`` (for FromDevice) or
   ``DEV<NAME>_TX`` (for ToDevice), then ``DEV<NAME>`` -- set them on the
   command line (``click router.click DEV0=pcap:in.pcap DEV1=pcap:out.pcap``,
   the driver's NAME=VALUE option) or with ``define($DEV0 ...)`` in the
   configuration;
2. the environment variables ``CLICKOS_DEV<NAME>_RX``/``_TX``, then
   ``CLICKOS_DEV<NAME>``;
3. nothing: an unbound FromDevice emits no packets, an unbound ToDevice drops
   what it gets (counting it).

Characters of NAME other than letters, digits and ``_`` become ``_`` in the
variable names (``vif1.0`` -> ``DEVvif1_0``).

A binding is ``SCHEME:ARGUMENTS``, the arguments separated by commas, each
``KEY=VALUE`` or a bare word:

``pcap:FILE[,out=OUTFILE][,timing][,nano][,snaplen=N][,stop=BOOL]``
    FromDevice reads FILE like FromDump (gzip/bzip2/xz too, recorded
    timestamps kept; with ``timing``, at the pace they were recorded, all
    ``timing`` captures of the router sharing one origin so that captures of
    several interfaces replay in their original order); ToDevice writes a libpcap file like ToDump (ENCAP
    ETHER) to OUTFILE if given, else to FILE.  A bare file name (anything with
    a ``.`` or ``/`` and no scheme) means ``pcap:``.  When a device is both
    read and written, give ``out=`` (or separate ``_RX``/``_TX`` variables).

``gen:[KEY=VALUE,...]``
    FromDevice only: generated traffic from memory (see
    :mod:`clickos.elements.devices.generator`).  Keys: ``proto`` (udp, tcp,
    icmp, arp), ``len`` (frame bytes, default 64), ``count`` (default -1:
    endless), ``flows``, ``src``/``srcs``, ``dst``/``dsts``, ``sport``,
    ``dport``, ``smac``, ``dmac``, ``ttl``, ``tcpflags``, ``payload`` (zero,
    random), ``inject`` and ``inject_every`` (write a string into every Nth
    flow's payload), ``seed``, ``burst`` (packets per batch), ``warmup``
    (packets left out of the ``rate`` handler), ``stop``.  Addresses may be
    AddressInfo names.

``sink`` (or ``discard``)
    ToDevice only: count and drop.

``idle`` (or ``none``)
    FromDevice: no packets; ToDevice: drop.

A finite source (a pcap file, a generator with ``count``) that reaches its
end stops the router once every finite source has ended and the packets still
in flight have drained: when no packet has left the router for 10 ms and no
element's task is scheduled (a queue's puller still working keeps the router
running; packets parked for good, such as those an ARPQuerier holds for an
unanswered query, do not) -- unless its binding says ``stop=false``.

Other schemes can be added with :func:`register_scheme`; a later issue binds
devices to real interfaces and shared-memory rings this way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from clickos.core.confparse import parse_bool, parse_ether_address, parse_int, parse_ip_address, unquote
from clickos.core.errors import ConfigError
from clickos.core.task import Task, Timer
from clickos.elements.devices.generator import GenOptions, build_templates, gen_fill, pack_templates
from clickos.io.pcap import DLT_EN10MB, PcapError, PcapReader, PcapWriter, TraceFile
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import BROADCAST, HOST, MULTICAST

if TYPE_CHECKING:
    from clickos.core.element import Element

__all__ = [
    "GenRx", "IdleRx", "PcapRx", "PcapTx", "RxBackend", "SinkTx", "TxBackend", "binding_spec",
    "parse_binding", "register_scheme", "variable_names",
]


# -- backends --------------------------------------------------------------------------------

class RxBackend:
    """Where FromDevice's packets come from."""

    description = "idle"
    finite = False        # reaches an end (then ``exhausted`` becomes true)
    stop = True           # stop the router at the end (see module docstring)
    burst: int | None = None
    # total bytes of the batch ``recv`` last returned, when it knows them (else -1)
    last_bytes = -1

    def __init__(self) -> None:
        self.exhausted = False
        # set by ``recv`` when the next packet is due later (steady-clock ns)
        self.wake_at = 0

    def open(self, element: Element) -> None:
        """Prepare to deliver packets into ``element.router.pool``; raise ConfigError."""

    def recv(self, n: int) -> PacketBatch | None:
        """Up to ``n`` packets (None if none now); sets ``exhausted`` at the end."""
        return None

    def close(self) -> None:
        """Release files and memory."""


class TxBackend:
    """Where ToDevice's packets go."""

    description = "sink"

    def open(self, element: Element) -> None:
        """Prepare to accept packets; raise ConfigError."""

    def send(self, batch: PacketBatch) -> None:
        """Transmit ``batch``; the backend owns (and frees) its packets."""
        batch.kill()

    def close(self) -> None:
        """Flush and release."""


class IdleRx(RxBackend):
    """A device that never receives anything."""


class SinkTx(TxBackend):
    """Counts (in ToDevice) and drops."""

    def __init__(self, description: str = "sink") -> None:
        self.description = description

    def open(self, element: Element) -> None:
        from clickos.packet import kernels

        self._pool = element.router.pool
        self._release_sum = kernels.release_sum

    def send(self, batch: PacketBatch) -> None:
        pool = self._pool
        idx = batch.idx
        top = pool.nfree
        pool.free[top: top + len(idx)] = idx
        pool.nfree = top + len(idx)

    def send_sum(self, batch: PacketBatch) -> int:
        """``send``, returning the packets' total length (one kernel call for both)."""
        pool = self._pool
        idx = batch.idx
        nbytes = self._release_sum(pool.free, pool.nfree, idx, pool.length)
        pool.nfree += idx.shape[0]
        return nbytes


def _packet_type(dst_mac: bytes) -> int:
    if dst_mac == b"\xff" * 6:
        return BROADCAST
    return MULTICAST if dst_mac and dst_mac[0] & 1 else HOST


class _TimeBase:
    """The shared origin of a router's ``timing`` pcap sources: the earliest
    first timestamp of their files is replayed when the first of them runs, so
    captures of several interfaces keep their relative order."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.start: int | None = None
        self.members: list[PcapRx] = []

    @classmethod
    def get(cls, element: Element) -> _TimeBase:
        att = element.router.attachments
        tb = att.get("clickos.devices.TimeBase")
        if tb is None:
            tb = att["clickos.devices.TimeBase"] = cls()
        return tb  # type: ignore[no-any-return]


class PcapRx(RxBackend):
    """Reads a libpcap file, as FromDump does (recorded timestamps kept).

    With ``timing``, packets leave at the pace they were recorded (relative to
    the earliest packet of all the router's ``timing`` captures)."""

    finite = True

    def __init__(self, filename: str, stop: bool = True, timing: bool = False) -> None:
        super().__init__()
        self.filename = filename
        self.stop = stop
        self.timing = timing
        self.description = f"pcap:{filename}" + (",timing" if timing else "")
        self.tf = TraceFile(filename)
        self.reader: PcapReader | None = None
        self._pending: tuple[int, bytes] | None = None

    def open(self, element: Element) -> None:
        self.pool = element.router.pool
        self.clock = element.router.master.clock
        try:
            self.tf.open()
        except OSError as ex:
            raise ConfigError(f"{self.filename}: {ex.strerror}") from None
        except EOFError:
            raise ConfigError(f"{self.filename}: empty file") from None
        self.reader = PcapReader(self.tf)
        try:
            self.reader.read_header()
        except PcapError as ex:
            raise ConfigError(f"{self.filename}: {ex}") from None
        if self.timing:
            self.timebase = _TimeBase.get(element)
            self.timebase.members.append(self)
            first = self._read()
            if first is not None:
                tb = self.timebase
                tb.first = first[0] if tb.first is None else min(tb.first, first[0])

    def _read(self) -> tuple[int, bytes] | None:
        """The next record (timestamp, bytes), kept as pending; None at the end."""
        if self._pending is None and not self.exhausted:
            assert self.reader is not None
            try:
                hdr = self.reader.next_header()
            except PcapError:
                hdr = None
            if hdr is not None:
                ts, caplen, _wire, skip = hdr
                data = self.tf.read(caplen)
                if len(data) == caplen:
                    self.tf.skip(skip)
                    self._pending = (ts, data)
            if self._pending is None:
                self.exhausted = True
        return self._pending

    def recv(self, n: int) -> PacketBatch | None:
        if self.reader is None:
            return None
        pool = self.pool
        slots: list[int] = []
        self.wake_at = 0
        now = 0
        while len(slots) < n:
            rec = self._read()
            if rec is None:
                break
            ts, data = rec
            if self.timing:
                tb = self.timebase
                now = now or self.clock.now_steady()
                if tb.start is None:
                    tb.start = now
                due = tb.start + ts - (tb.first or ts)
                if due > now:
                    self.wake_at = due
                    break
                # an earlier packet of another capture goes first (this task runs again soon)
                if any(o._pending is not None and o._pending[0] < ts for o in tb.members if o is not self):
                    break
            self._pending = None
            s = pool.new_packet(data)
            pool.ts[s] = ts
            pool.mac[s] = pool.off[s]
            pool.ptype[s] = _packet_type(data[:6])
            slots.append(s)
        if self.timing:
            self._read()  # others compare against our next packet
        return PacketBatch(pool, np.array(slots, np.int32)) if slots else None

    def close(self) -> None:
        self.tf.close()


class PcapTx(TxBackend):
    """Writes a libpcap file (Ethernet link type), as ToDump does."""

    def __init__(self, filename: str, nano: bool = False, snaplen: int = 2000) -> None:
        self.filename = filename
        self.nano = nano
        self.snaplen = snaplen
        self.description = f"pcap:{filename}"
        self.out: BinaryIO | None = None
        self.writer: PcapWriter | None = None

    def open(self, element: Element) -> None:
        self.element = element
        try:
            self.out = open(self.filename, "wb")  # noqa: SIM115 - closed in close()
        except OSError as ex:
            raise ConfigError(f"{self.filename}: {ex.strerror}") from None
        self.writer = PcapWriter(self.out, DLT_EN10MB, self.snaplen, self.nano)

    def send(self, batch: PacketBatch) -> None:
        w, out = self.writer, self.out
        if w is not None and out is not None:
            pool = batch.pool
            now = 0
            parts = []
            for s in batch.idx.tolist():
                ts = int(pool.ts[s])
                if not ts:
                    now = now or self.element.router.master.clock.now()
                    ts = now
                o, n = int(pool.off[s]), int(pool.length[s])
                parts.append(w.record(ts, pool.data[s, o: o + n], n))
            out.write(b"".join(parts))
        batch.kill()

    def close(self) -> None:
        out, self.out = self.out, None
        if out is not None:
            out.close()


class GenRx(RxBackend):
    """Generated traffic from memory (see :mod:`clickos.elements.devices.generator`)."""

    def __init__(self, options: GenOptions, description: str, stop: bool = True,
                 burst: int | None = None) -> None:
        super().__init__()
        self.options = options
        self.description = description
        self.finite = options.count >= 0
        self.stop = stop
        self.burst = burst
        self.sent = 0
        self._next = 0

    def open(self, element: Element) -> None:
        try:
            frames, lengths, ptypes = build_templates(self.options)
        except ValueError as ex:
            raise ConfigError(f"{self.description}: {ex}") from None
        self.pool = pool = element.router.pool
        pool.ensure_slot_size(frames.shape[1])
        self.tmpl64 = pack_templates(frames)
        self.tlen = lengths
        self.tptype = ptypes
        self.clock = element.router.master.clock

    def recv(self, n: int) -> PacketBatch | None:
        count = self.options.count
        if count >= 0:
            n = min(n, count - self.sent)
            if n <= 0:
                self.exhausted = True
                return None
        pool = self.pool
        if n > pool.nfree:
            pool._grow(max(n, pool.nslots))
        out = np.empty(n, np.int32)
        self.last_bytes = gen_fill(pool.free, pool.nfree, n, pool.data64, pool.off, pool.length, pool.ts,
                                   pool.anno64, pool.mac, pool.nh, pool.th, pool.ptype, out, self.tmpl64,
                                   self.tlen, self.tptype, self._next, pool.headroom, self.clock.now())
        pool.nfree -= n
        self._next = (self._next + n) % len(self.tlen)
        self.sent += n
        if count >= 0 and self.sent >= count:
            self.exhausted = True
        return PacketBatch(pool, out)


# -- parsing ---------------------------------------------------------------------------------

RxFactory = Callable[[str, dict[str, str], list[str], Any], RxBackend]
TxFactory = Callable[[str, dict[str, str], list[str], Any], TxBackend]
_SCHEMES: dict[str, tuple[RxFactory | None, TxFactory | None]] = {}


def register_scheme(name: str, rx: RxFactory | None, tx: TxFactory | None) -> None:
    """Add a binding scheme.  Each factory gets (spec, KEY=VALUE options, bare
    words, resolver) and returns a backend, or raises ConfigError."""
    _SCHEMES[name] = (rx, tx)


def _split(rest: str) -> tuple[dict[str, str], list[str]]:
    opts: dict[str, str] = {}
    words: list[str] = []
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
            opts[k.strip().lower()] = v.strip()
        else:
            words.append(part)
    return opts, words


def _flag(opts: dict[str, str], key: str, default: bool) -> bool:
    if key not in opts:
        return default
    try:
        return parse_bool(opts.pop(key))
    except ConfigError:
        raise ConfigError(f"bad value for '{key}' (want true or false)") from None


def _no_extra(spec: str, opts: dict[str, str], words: list[str]) -> None:
    extra = [*opts, *words]
    if extra:
        raise ConfigError(f"{spec}: unknown option '{extra[0]}'")


def _pcap_rx(spec: str, opts: dict[str, str], words: list[str], resolver: Any) -> RxBackend:
    if not words:
        raise ConfigError(f"{spec}: missing file name")
    filename = words.pop(0)
    stop = _flag(opts, "stop", True)
    for k in ("out", "snaplen"):
        opts.pop(k, None)
    timing = "timing" in words
    words = [w for w in words if w not in ("nano", "timing")]
    _no_extra(spec, opts, words)
    return PcapRx(filename, stop, timing)


def _pcap_tx(spec: str, opts: dict[str, str], words: list[str], resolver: Any) -> TxBackend:
    if not words:
        raise ConfigError(f"{spec}: missing file name")
    filename = words.pop(0)
    filename = opts.pop("out", filename)
    nano = "nano" in words
    words = [w for w in words if w not in ("nano", "timing")]
    snaplen = 2000
    if "snaplen" in opts:
        try:
            snaplen = parse_int(opts.pop("snaplen"))
        except ConfigError:
            raise ConfigError(f"{spec}: bad snaplen") from None
    opts.pop("stop", None)
    _no_extra(spec, opts, words)
    return PcapTx(filename, nano, snaplen)


_INT_KEYS = {"len", "count", "flows", "srcs", "dsts", "sport", "dport", "ttl", "inject_every", "seed", "warmup"}


def _gen_rx(spec: str, opts: dict[str, str], words: list[str], resolver: Any) -> RxBackend:
    o = GenOptions()
    stop = _flag(opts, "stop", True)
    burst = None
    if "burst" in opts:
        try:
            burst = parse_int(opts.pop("burst"))
        except ConfigError:
            raise ConfigError(f"{spec}: bad burst") from None
        if burst < 1:
            raise ConfigError(f"{spec}: burst must be >= 1")
    for w in list(words):
        if w.lower() in ("udp", "tcp", "icmp", "arp"):
            o.proto = w.lower()
            words.remove(w)
    known = {f.name for f in fields(GenOptions)}
    for k, v in list(opts.items()):
        if k not in known:
            continue
        try:
            if k in _INT_KEYS:
                val: Any = parse_int(v)
            elif k in ("src", "dst"):
                val = parse_ip_address(v, resolver)
            elif k in ("smac", "dmac"):
                val = parse_ether_address(v, resolver)
            elif k == "inject":
                val = unquote(v).encode("latin-1")
            else:
                val = v.lower()
        except ConfigError:
            raise ConfigError(f"{spec}: bad value for '{k}'") from None
        setattr(o, k, val)
        del opts[k]
    _no_extra(spec, opts, words)
    if o.proto not in ("udp", "tcp", "icmp", "arp"):
        raise ConfigError(f"{spec}: unknown protocol '{o.proto}'")
    return GenRx(o, spec, stop, burst)


def _idle_rx(spec: str, opts: dict[str, str], words: list[str], resolver: Any) -> RxBackend:
    _no_extra(spec, opts, words)
    return IdleRx()


def _sink_tx(spec: str, opts: dict[str, str], words: list[str], resolver: Any) -> TxBackend:
    _no_extra(spec, opts, words)
    return SinkTx(spec)


register_scheme("pcap", _pcap_rx, _pcap_tx)
register_scheme("gen", _gen_rx, None)
register_scheme("sink", None, _sink_tx)
register_scheme("discard", None, _sink_tx)
register_scheme("idle", _idle_rx, _sink_tx)
register_scheme("none", _idle_rx, _sink_tx)


def parse_binding(spec: str, rx: bool, resolver: Any = None, shared: bool = False) -> RxBackend | TxBackend:
    """The backend a binding string describes, for receiving (``rx``) or sending.

    ``shared`` says the binding names the whole device (``DEV0`` rather than
    ``DEV0_RX``): then a one-way scheme leaves the other direction idle (a
    ``gen:`` device drops what ToDevice sends it; a ``sink`` device receives
    nothing) instead of being an error."""
    spec = unquote(spec.strip())
    if ":" in spec:
        scheme, rest = spec.split(":", 1)
    else:
        scheme, rest = spec, ""
    scheme = scheme.strip().lower()
    if scheme not in _SCHEMES:
        if "." in spec or "/" in spec:
            scheme, rest = "pcap", spec
        else:
            raise ConfigError(f"unknown device binding '{spec}' (use pcap:FILE, gen:..., sink or idle)")
    factories = _SCHEMES[scheme]
    factory = factories[0] if rx else factories[1]
    if factory is None and shared:
        return IdleRx() if rx else SinkTx(f"sink (the device is {spec})")
    if factory is None:
        what = "FromDevice" if rx else "ToDevice"
        raise ConfigError(f"'{scheme}:' bindings cannot be used by {what}")
    opts, words = _split(rest)
    return factory(spec, opts, words, resolver)


def variable_names(devname: str, rx: bool) -> list[str]:
    """The variables consulted for device ``devname``, most specific first."""
    base = "DEV" + re.sub(r"[^A-Za-z0-9_]", "_", devname)
    return [base + ("_RX" if rx else "_TX"), base]


def binding_spec(element: Element, devname: str, rx: bool) -> tuple[str | None, str]:
    """(binding string or None, where it came from) for ``element``'s device."""
    names = variable_names(devname, rx)
    flat = element.router.flat if element.router is not None else None
    variables: dict[str, str] = getattr(flat, "variables", {}) or {}
    for n in names:
        if n in variables:
            return variables[n], f"${n}"
    for n in names:
        v = os.environ.get("CLICKOS_" + n)
        if v is not None:
            return v, f"CLICKOS_{n}"
    return None, ""


# -- stopping at the end of finite sources ------------------------------------------------------

DRAIN_CHECK_NS = 10_000_000


class EndOfInput:
    """Per router: stops it when every finite, stopping source has ended and the
    packets still held in the router stop draining (see the module docstring)."""

    def __init__(self, element: Element) -> None:
        self.router = element.router
        self.pending = 0
        self.timer = Timer(self._check, element)
        self.timer.initialize(element)
        self._last = -1
        self.stopped = False

    @classmethod
    def get(cls, element: Element) -> EndOfInput:
        att = element.router.attachments
        eoi = att.get("clickos.devices.EndOfInput")
        if eoi is None:
            eoi = att["clickos.devices.EndOfInput"] = cls(element)
        return eoi  # type: ignore[no-any-return]

    def add_source(self) -> None:
        self.pending += 1

    def source_done(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self._last = self.router.pool.in_use
            if self._last == 0:
                self._stop()
            else:
                self.timer.schedule_after(DRAIN_CHECK_NS)

    def _busy(self) -> bool:
        """Whether some element's task is still scheduled (a pull loop emptying
        a queue through a shaper, say): its packets may leave yet."""
        for e in self.router.elements:
            task = getattr(e, "task", None)
            if isinstance(task, Task) and task.scheduled and e.class_name() != "FromDevice":
                return True
        return False

    def _check(self, _timer: Timer) -> None:
        in_use = self.router.pool.in_use
        if in_use == 0 or (in_use >= self._last and not self._busy()):
            self._stop()
        else:
            self._last = in_use
            self.timer.schedule_after(DRAIN_CHECK_NS)

    def _stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.router.adjust_runcount(-1)
