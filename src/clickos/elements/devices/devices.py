"""FromDevice and ToDevice: ClickOS's network interfaces, bound at run time.

The configuration names a device (``FromDevice(0)``); what the device is --
a pcap file, generated traffic, a sink -- comes from the bindings described in
:mod:`clickos.elements.devices.binding` (``DEV0=pcap:in.pcap`` on the command
line, and so on).
"""

from __future__ import annotations

from clickos.core.args import Args
from clickos.core.confparse import parse_any, parse_bool, parse_int, parse_string
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON, CHECKBOX
from clickos.core.notifier import NotifierSignal, upstream_empty_signal
from clickos.core.task import Task, Timer
from clickos.elements.devices.binding import (
    EndOfInput,
    RxBackend,
    SinkTx,
    TxBackend,
    binding_spec,
    parse_binding,
)
from clickos.packet import kernels
from clickos.packet.batch import PacketBatch

DEFAULT_BURST = 256
# Click keywords that configure a real interface; accepted (and ignored) so
# that configurations written for Click's userlevel FromDevice/ToDevice load.
_IGNORED_KEYWORDS = ("PROMISC", "SNIFFER", "SNAPLEN", "FORCE_IP", "METHOD", "CAPTURE", "BPF_FILTER",
                     "OUTBOUND", "HEADROOM", "ENCAP", "TIMESTAMP", "QUIET", "ALLOW_NONEXISTENT",
                     "IQUEUE", "DEBUG", "QUEUE", "N_QUEUES", "THREADOFFSET", "MAXTHREADS", "PAUSE")


class _Stats:
    """Packet and byte counts, and the steady-clock times rates are taken over."""

    __slots__ = ("count", "bytes", "t_first", "t_last", "base_count", "base_bytes")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = self.bytes = 0
        self.t_first = self.t_last = 0
        self.base_count = self.base_bytes = 0

    def elapsed_ns(self) -> int:
        return max(self.t_last - self.t_first, 0)

    def rate(self) -> float:
        """Packets per second between ``t_first`` and ``t_last``."""
        ns = self.elapsed_ns()
        return (self.count - self.base_count) * 1e9 / ns if ns else 0.0

    def bit_rate(self) -> float:
        ns = self.elapsed_ns()
        return (self.bytes - self.base_bytes) * 8e9 / ns if ns else 0.0


def _add_stats_handlers(e: Element, st: _Stats) -> None:
    e.add_read_handler("count", lambda: st.count)
    e.add_read_handler("byte_count", lambda: st.bytes)
    e.add_read_handler("rate", lambda: f"{st.rate():.1f}")
    e.add_read_handler("bit_rate", lambda: f"{st.bit_rate():.1f}")
    e.add_read_handler("elapsed", lambda: f"{st.elapsed_ns() / 1e9:.6f}")

    def reset(value: str, errh: ErrorHandler) -> None:
        st.reset()

    e.add_write_handler("reset_counts", reset, BUTTON)


class FromDevice(Element):
    """FromDevice(DEVNAME [, KEYWORDS])

    Receives packets from network device DEVNAME (in ClickOS, the interface
    number: ``FromDevice(0)``).

    The device is bound when the router starts: the configuration variable
    ``DEV<DEVNAME>_RX`` or ``DEV<DEVNAME>`` (``click conf.click
    DEV0=pcap:in.pcap``, or ``define($DEV0 ...)``), else the environment
    variable ``CLICKOS_DEV<DEVNAME>``, says what it is:

    - ``pcap:FILE``: the packets of a libpcap file, with their recorded
      timestamps (as FromDump);
    - ``gen:KEY=VALUE,...``: generated traffic from memory, for instance
      ``gen:udp,len=64,flows=1024,count=1000000``;
    - ``idle`` (or no binding at all): nothing.

    Each task run emits up to BURST packets as one batch, each with its MAC
    header annotation and packet type (host, broadcast, multicast) set.  When
    every finite source of the router (pcap files, counted generators) has
    ended and the packets it sent have left the router, the driver stops.  See
    ``clickos.elements.devices.binding`` for the binding syntax.

    Keyword arguments:

    - BURST (integer): packets per task run.  Default 256 (a ``burst=``
      option of the binding takes precedence).
    - ACTIVE (boolean): emit packets at all.  Default true.

    Click's interface keywords (PROMISC, SNIFFER, SNAPLEN, METHOD, ...) are
    accepted and ignored.

    Handlers: ``count``, ``byte_count``, ``rate`` and ``bit_rate`` (packets and
    bits per second from the first batch -- after the binding's ``warmup``
    packets -- to the last), ``elapsed``, ``reset_counts``, ``active``
    (read/write), ``device`` (the binding), task handlers.

    Example: ``FromDevice(0) -> EtherMirror -> ToDevice(0)``
    """

    port_count = "0/1"
    processing = "h"
    flags = "S1"

    def __init__(self) -> None:
        super().__init__()
        self.devname = ""
        self.burst = DEFAULT_BURST
        self.active = True
        self.backend: RxBackend = RxBackend()
        self.source = ""
        self.stats = _Stats()
        self.task: Task | None = None
        self._end: EndOfInput | None = None
        self._warmup = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.devname = a.read_mp("DEVNAME", parse_string)
        self.burst = a.read("BURST", parse_int, DEFAULT_BURST)
        self.active = a.read("ACTIVE", parse_bool, True)
        for k in _IGNORED_KEYWORDS:
            a.read(k, parse_any, None)
        a.complete()
        if self.burst < 1:
            raise ConfigError("BURST must be >= 1")
        spec, self.source = binding_spec(self, self.devname, True)
        if spec is not None:
            b = parse_binding(spec, True, self.resolve_name, shared=not self.source.endswith("_RX"))
            assert isinstance(b, RxBackend)
            self.backend = b
            if b.burst is not None:
                self.burst = b.burst
            self._warmup = getattr(getattr(b, "options", None), "warmup", 0)
        self.task = Task(self.run_task, self)

    def initialize(self, errh: ErrorHandler) -> None:
        self.backend.open(self)
        if self.backend.finite and self.backend.stop:
            self._end = EndOfInput.get(self)
            self._end.add_source()
        assert self.task is not None
        self.task.initialize(self, self.active)
        task = self.task
        self._timer = Timer(lambda _t: task.reschedule(), self)
        self._timer.initialize(self)
        self._push0 = self.outputs[0].push
        self._clock = self.router.master.clock
        self._sum_lengths = kernels.sum_lengths

    def cleanup(self, stage: int) -> None:
        self.backend.close()

    def run_task(self) -> bool:
        if not self.active:
            return False
        backend = self.backend
        batch = backend.recv(self.burst)
        if batch is not None:
            st = self.stats
            n = len(batch)
            nbytes = backend.last_bytes
            if nbytes < 0:
                nbytes = self._sum_lengths(batch.pool.length, batch.idx)
            if st.count <= self._warmup and st.count + n > self._warmup:
                st.t_first = self._clock.now_steady()
                st.base_count, st.base_bytes = st.count, st.bytes
            st.count += n
            st.bytes += nbytes
            self._push0(batch)
            st.t_last = self._clock.now_steady()
        if backend.exhausted:
            self._finish()
            return batch is not None
        assert self.task is not None
        if backend.wake_at:
            self._timer.schedule_at(backend.wake_at)
        else:
            self.task.fast_reschedule()
        return batch is not None

    def _finish(self) -> None:
        end, self._end = self._end, None
        if end is not None:
            end.source_done()

    def add_handlers(self) -> None:
        _add_stats_handlers(self, self.stats)
        self.add_read_handler("device", lambda: self._describe())
        self.add_read_handler("active", lambda: self.active, CHECKBOX)

        def write_active(value: str, errh: ErrorHandler) -> None:
            try:
                self.active = parse_bool(value.strip())
            except ConfigError:
                raise ConfigError("active parameter must be boolean") from None
            if self.task is not None:
                if self.active and not self.backend.exhausted:
                    self.task.reschedule()
                elif not self.active:
                    self.task.unschedule()

        self.add_write_handler("active", write_active, CHECKBOX)
        if self.task is not None:
            self.add_task_handlers(self.task)

    def _describe(self) -> str:
        where = f" (from {self.source})" if self.source else " (unbound)"
        return self.backend.description + where


class ToDevice(Element):
    """ToDevice(DEVNAME [, KEYWORDS])

    Sends packets to network device DEVNAME (in ClickOS, the interface number:
    ``ToDevice(1)``).

    The device is bound when the router starts, like FromDevice's: the
    variable ``DEV<DEVNAME>_TX`` or ``DEV<DEVNAME>`` (or the environment
    variable ``CLICKOS_DEV<DEVNAME>``) says what it is:

    - ``pcap:FILE`` (or ``pcap:INFILE,out=FILE`` when the same binding also
      serves FromDevice): write a libpcap file, as ToDump with ENCAP ETHER;
    - ``sink``, ``idle`` or no binding at all: count and drop.

    ToDevice is agnostic.  Pushed packets go out at once; in pull context (for
    instance after a Queue) a task pulls up to BURST packets per run, sleeping
    while the upstream notifiers say nothing waits.

    Keyword arguments:

    - BURST (integer): packets per pull in pull context.  Default 256.

    Click's interface keywords are accepted and ignored.

    Handlers: ``count``, ``byte_count``, ``rate`` and ``bit_rate`` (from the
    first packet to the last), ``elapsed``, ``reset_counts``, ``device``;
    in pull context task handlers.

    Example: ``FromDevice(0) -> Queue -> ToDevice(1)``
    """

    port_count = "1/0"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.devname = ""
        self.burst = DEFAULT_BURST
        self.backend: TxBackend = TxBackend()
        self.source = ""
        self.stats = _Stats()
        self.task: Task | None = None
        self.signal = NotifierSignal.busy()

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.devname = a.read_mp("DEVNAME", parse_string)
        self.burst = a.read("BURST", parse_int, DEFAULT_BURST)
        for k in _IGNORED_KEYWORDS:
            a.read(k, parse_any, None)
        a.complete()
        if self.burst < 1:
            raise ConfigError("BURST must be >= 1")
        spec, self.source = binding_spec(self, self.devname, False)
        if spec is not None:
            b = parse_binding(spec, False, self.resolve_name, shared=not self.source.endswith("_TX"))
            assert isinstance(b, TxBackend)
            self._check_clobber(spec, b)
            self.backend = b
        else:
            self.backend = SinkTx("sink")
        if self.input_is_pull(0):
            self.task = Task(self.run_task, self)

    def _check_clobber(self, spec: str, b: TxBackend) -> None:
        """Refuse to write the pcap file this device's FromDevice reads."""
        if getattr(b, "filename", None) is not None:
            rx_spec, _ = binding_spec(self, self.devname, True)
            reads = any(isinstance(e, FromDevice) and e.devname == self.devname for e in self.router.elements)
            rx = parse_binding(rx_spec, True, shared=True) if reads and rx_spec is not None else None
            if rx is not None and getattr(rx, "filename", None) == getattr(b, "filename", None):
                raise ConfigError(f"device {self.devname}: '{spec}' would be both read and written; "
                                  f"add ',out=FILE' or bind DEV{self.devname}_TX")

    def initialize(self, errh: ErrorHandler) -> None:
        self.backend.open(self)
        self._send = self.backend.send
        # a backend that sends and sums lengths in one step (the sink)
        self._send_sum = getattr(self.backend, "send_sum", None)
        self._clock = self.router.master.clock
        self._sum_lengths = kernels.sum_lengths
        if self.task is not None:
            self.task.initialize(self, True)
            self.signal = upstream_empty_signal(self, 0, self.task)

    def cleanup(self, stage: int) -> None:
        self.backend.close()

    def push(self, port: int, batch: PacketBatch) -> None:
        st = self.stats
        now = self._clock.now_steady()
        n = len(batch)
        send_sum = self._send_sum
        if send_sum is not None:
            nbytes = send_sum(batch)
        else:
            nbytes = self._sum_lengths(batch.pool.length, batch.idx)
        if not st.count:
            st.t_first = now
            st.base_count = n
            st.base_bytes = nbytes
        st.t_last = now
        st.count += n
        st.bytes += nbytes
        if send_sum is None:
            self._send(batch)

    def run_task(self) -> bool:
        batch = self.inputs[0].pull(self.burst)
        if batch is not None:
            self.push(0, batch)
        if batch is not None or self.signal.active():
            assert self.task is not None
            self.task.fast_reschedule()
        return batch is not None

    def add_handlers(self) -> None:
        _add_stats_handlers(self, self.stats)
        self.add_read_handler("device", lambda: self.backend.description
                              + (f" (from {self.source})" if self.source else " (unbound)"))
        if self.task is not None:
            self.add_task_handlers(self.task)
