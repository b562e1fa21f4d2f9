"""FromIPSummaryDump and ToIPSummaryDump: packets to and from IP summary dumps.

The format itself (fields, options, binary records) lives in
:mod:`clickos.io.ipsummary`.
"""

from __future__ import annotations

import random
import socket
import time

from clickos.core.args import Args
from clickos.core.confparse import (
    fixed_point,
    parse_any,
    parse_bool,
    parse_filename,
    parse_string,
    parse_uint8,
    uncomment,
    unparse_real2,
    unparse_timestamp,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON, CHECKBOX
from clickos.core.notifier import Notifier, upstream_empty_signal
from clickos.core.task import Task, Timer
from clickos.elements.analysis.common import (
    EXTRA_LENGTH_ANNO,
    EXTRA_PACKETS_ANNO,
    FIRST_TIMESTAMP_ANNO,
    OutputFile,
    add_file_handlers,
    anno_i64,
    anno_u32,
    builder_to_slot,
    desc_of,
    set_anno_u32,
)
from clickos.elements.standard.printing import chatter
from clickos.io.ipsummary import IP_PROTO_TCP, IP_PROTO_UDP, PacketBuilder, SummaryReader, SummaryWriter
from clickos.io.pcap import TraceFile
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import PacketPool

SAMPLING_SHIFT = 28


def _set_packet_lengths(pool: PacketPool, s: int, extra: int) -> None:
    """Make the IP (and UDP) length fields cover ``length + extra`` bytes."""
    nh = int(pool.nh[s])
    if nh < 0:
        return
    total = int(pool.length[s]) + extra
    d = pool.data[s]
    if ((int(d[nh + 2]) << 8) | int(d[nh + 3])) != (total & 0xFFFF):
        d[nh + 2], d[nh + 3] = (total >> 8) & 0xFF, total & 0xFF
        if d[nh + 9] == IP_PROTO_UDP:
            th = int(pool.th[s]) if pool.th[s] >= 0 else nh + ((int(d[nh]) & 0xF) << 2)
            ulen = total - ((int(d[nh]) & 0xF) << 2)
            d[th + 4], d[th + 5] = (ulen >> 8) & 0xFF, ulen & 0xFF


def _tdiv(a: int, b: int) -> int:
    """Integer division truncating toward zero (as C does)."""
    q = abs(a) // b
    return -q if a < 0 else q


def _wrap_ts(t: int) -> int:
    """``t`` wrapped to the 64-bit timestamp annotation (as Click's arithmetic wraps)."""
    return ((t + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)


_WAIT = -1


class FromIPSummaryDump(Element):
    """FromIPSummaryDump(FILENAME [, KEYWORDS])

    Reads packet descriptions from an IP summary dump and emits packets.

    Each line of the dump (as written by ToIPSummaryDump) becomes one packet
    with the described fields filled in: an IPv4 header (protocol TCP unless
    the dump says otherwise, time-to-live 100), transport headers as far as the
    fields need them, and the timestamp, paint, aggregate and count
    annotations.  Packets are usually shorter than their IP length says; the
    extra length annotation accounts for the difference.  FILENAME ``-`` reads
    standard input; gzip, bzip2 and xz files are decompressed on the fly.

    Keyword arguments:

    - STOP (boolean): stop the driver at the end of the dump.  Default false.
    - ACTIVE (boolean): emit packets at all (see the ``active`` handler).
      Default true.
    - TIMING (boolean): keep the time gaps between packets' timestamps,
      starting with the first packet at once.  Default false.
    - ZERO (boolean): zero packet bytes the dump does not set.  Default true.
    - CHECKSUM (boolean): make packets as long as their IP length and set
      correct IP, TCP, UDP and ICMP checksums.  Default false.
    - PROTO (byte): IP protocol when the dump gives none.  Default 6 (TCP).
    - MULTIPACKET (boolean): emit as many packets as a line's ``count`` field
      says, spreading length and time between them.  Default false.
    - SAMPLE (real between 0 and 1): emit each packet with this probability
      (in 28-bit fixed point; see ``sampling_prob``).  Default 1.
    - FIELDS (text): fields to assume before any ``!data`` line (CONTENTS,
      DEFAULT_FIELDS and DEFAULT_CONTENTS are old names).
    - FLOWID (text): ``SRC SPORT DST DPORT [PROTO]`` for packets whose line
      gives no addresses or ports (DEFAULT_FLOWID is an old name).
    - ALLOW_NONEXISTENT (boolean): a missing or empty file is not an error.
      Default false.
    - DATA (string): read the dump from this text instead of a file.

    In pull context the element is an "empty" notifier: its signal is active
    while it is active and the dump has packets left.

    Handlers: ``active`` (read/write), ``stop`` (write: deactivate and stop the
    driver), ``sampling_prob``, ``encap`` (always ``IP``), ``filename``,
    ``filesize`` (``-`` when unknown), ``filepos``.

    Example::

        FromIPSummaryDump(trace.ipsum, STOP true, CHECKSUM true)
            -> CheckIPHeader -> ToDump(out.pcap, ENCAP IP)
    """

    port_count = "0/1"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.tf = TraceFile()
        self.reader: SummaryReader | None = None
        self.stop = False
        self.active = True
        self.zero = True
        self.timing = False
        self.checksum = False
        self.multipacket = False
        self.allow_nonexistent = False
        self.sampling_prob = 1 << SAMPLING_SHIFT
        self.default_proto = IP_PROTO_TCP
        self.task: Task | None = None
        self.timer: Timer | None = None
        self._notifier = Notifier()
        self._work: int | None = None
        self._mp: tuple[int, int, int] | None = None  # (length per packet, time step, end time)
        self._have_timing = False
        self._timing_offset = 0
        self._eof = False
        self._errh: ErrorHandler | None = None

    # -- configuration -----------------------------------------------------------------
    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        filename = a.read_p("FILENAME", parse_filename, "")
        self.stop = a.read("STOP", parse_bool, False)
        self.active = a.read("ACTIVE", parse_bool, True)
        self.zero = a.read("ZERO", parse_bool, True)
        self.timing = a.read("TIMING", parse_bool, False)
        self.checksum = a.read("CHECKSUM", parse_bool, False)
        prob = a.read("SAMPLE", fixed_point(SAMPLING_SHIFT), 1 << SAMPLING_SHIFT)
        self.default_proto = a.read("PROTO", parse_uint8, IP_PROTO_TCP)
        self.multipacket = a.read("MULTIPACKET", parse_bool, False)
        fields = None
        for kw in ("DEFAULT_CONTENTS", "DEFAULT_FIELDS"):
            fields = a.read(kw, parse_any, fields)
        flowid = a.read("DEFAULT_FLOWID", parse_any, None)
        for kw in ("CONTENTS", "FIELDS"):
            fields = a.read(kw, parse_any, fields)
        flowid = a.read("FLOWID", parse_any, flowid)
        self.allow_nonexistent = a.read("ALLOW_NONEXISTENT", parse_bool, False)
        data = a.read("DATA", parse_string, None)
        a.complete()
        if prob > 1 << SAMPLING_SHIFT:
            errh.warning("SAMPLE probability reduced to 1")
            prob = 1 << SAMPLING_SHIFT
        elif prob == 0:
            errh.warning("SAMPLE probability is 0; emitting no packets")
        self.sampling_prob = prob
        if data is not None and filename:
            raise ConfigError("FILENAME and DATA conflict")
        if data is None and not filename:
            raise ConfigError("FILENAME: required argument missing")
        self.tf = TraceFile(filename, data.encode("latin-1", "replace") if data is not None else None)
        self.tf.landmark_pattern = "%f:%l"
        self.reader = self._make_reader(errh)
        if fields:
            self.reader.set_fields(fields)
        if flowid:
            self.reader.set_flowid(flowid)
        if self.outputs and self.output_is_push(0):
            self.task = Task(self.run_task, self)

    def _make_reader(self, errh: ErrorHandler | None) -> SummaryReader:
        def warn(msg: str, landmark: str) -> None:
            if self._errh is not None:
                self._errh.warning(msg, landmark)
            else:
                chatter(f"{landmark}: warning: {msg}")

        def error(msg: str, landmark: str) -> None:
            if self._errh is not None:
                self._errh.error(msg, landmark)
            else:
                chatter(f"{landmark}: {msg}")

        self._errh = errh
        return SummaryReader(self.tf, default_proto=self.default_proto, zero=self.zero, checksum=self.checksum,
                             warn=warn, error=error, resolver=self.resolve_name)

    def notifier(self, isoutput: bool, port: int, kind: str) -> Notifier | None:
        if kind == "empty" and isoutput and self.outputs and not self.output_is_push(0):
            return self._notifier
        return None

    def initialize(self, errh: ErrorHandler) -> None:
        if self.outputs and not self.output_is_push(0):
            self._notifier.initialize("empty", self.router)
        self.timer = Timer(self.run_timer, self)
        self.timer.initialize(self)
        if self.task is not None:
            self.task.initialize(self, self.active)
        self._errh = errh
        try:
            self.tf.open()
        except FileNotFoundError as ex:
            self._eof = True
            if self.allow_nonexistent:
                return
            raise ConfigError(f"{self.tf.print_filename}: {ex.strerror}") from None
        except OSError as ex:
            self._eof = True
            raise ConfigError(f"{self.tf.print_filename}: {ex.strerror}") from None
        except EOFError:
            self._eof = True
            if not self.allow_nonexistent:
                errh.error("empty file", self.tf.landmark())
            return
        assert self.reader is not None
        self.reader.check_banner()
        self._errh = None

    def cleanup(self, stage: int) -> None:
        self.tf.close()
        if self._work is not None:
            self.router.pool.release1(self._work)
            self._work = None

    # -- reading ------------------------------------------------------------------------
    def _read_packet(self) -> int | None:
        """A new packet slot; None for a line that did not parse or at the end (then
        ``_eof`` is set)."""
        if self._eof or self.reader is None:
            self._eof = True
            return None
        r = self.reader.read()
        if r is False:
            self._eof = True
            self.tf.close()
            return None
        if r is None:
            return None
        assert isinstance(r, PacketBuilder)
        return builder_to_slot(self.router.pool, r)

    def _check_timing(self, s: int) -> bool:
        clock = self.router.master.clock
        now = clock.now_steady()
        ts = int(self.router.pool.ts[s])
        if not self._have_timing:
            self._timing_offset = now - ts
            self._have_timing = True
        t = ts + self._timing_offset
        if now < t:
            assert self.timer is not None
            self.timer.schedule_at(t)
            if self.outputs and not self.output_is_push(0):
                self._notifier.sleep()
            self._work = s
            return False
        self._work = None
        return True

    def _multipacket(self, s: int) -> int:
        """Split off the next packet of a multi-packet record."""
        pool = self.router.pool
        extra = anno_u32(pool, s, EXTRA_PACKETS_ANNO)
        if not extra:
            self._work = None
            self._mp = None
            return s
        count = 1 + extra
        if self._work is None or self._mp is None:
            length = int(pool.length[s])
            each = (length + anno_u32(pool, s, EXTRA_LENGTH_ANNO)) // count
            if each < length:
                each = length
                set_anno_u32(pool, s, EXTRA_LENGTH_ANNO, each * (count - 1))
            end_ts = int(pool.ts[s])
            first = anno_i64(pool, s, FIRST_TIMESTAMP_ANNO)
            step = 0
            if first:
                step = _tdiv(end_ts - first, count - 1)
                pool.ts[s] = first
            self._mp = (each, step, end_ts)
            _set_packet_lengths(pool, s, each - length)
            self._work = s
        each, step, end_ts = self._mp
        q = int(pool.clone(PacketBatch.one(pool, s).idx)[0])
        set_anno_u32(pool, q, EXTRA_PACKETS_ANNO, 0)
        set_anno_u32(pool, q, EXTRA_LENGTH_ANNO, each - int(pool.length[q]))
        set_anno_u32(pool, s, EXTRA_PACKETS_ANNO, count - 2)
        set_anno_u32(pool, s, EXTRA_LENGTH_ANNO, anno_u32(pool, s, EXTRA_LENGTH_ANNO) - each)
        if count == 2:
            pool.ts[s] = end_ts
            _set_packet_lengths(pool, s, anno_u32(pool, s, EXTRA_LENGTH_ANNO))
        else:
            pool.ts[s] += step
        return q

    def _next(self) -> int | None | bool:
        """The next packet slot to emit; None when a line did not parse; ``_WAIT`` while
        TIMING holds a packet back; False at the end of the dump."""
        pool = self.router.pool
        while True:
            s = self._work if self._work is not None else self._read_packet()
            if s is None:
                return False if self._eof else None
            if self.timing and not self._check_timing(s):
                return _WAIT
            if self.multipacket:
                s = self._multipacket(s)
            else:
                self._work = None
            if (self.sampling_prob >= 1 << SAMPLING_SHIFT
                    or random.getrandbits(SAMPLING_SHIFT) < self.sampling_prob):
                return s
            pool.release1(s)

    def run_task(self) -> bool:
        if not self.active:
            return False
        s = self._next()
        if s is False:
            if self.stop:
                self.router.please_stop_driver()
            return False
        if s == _WAIT:
            return False
        if s is not None:
            self.outputs[0].push(PacketBatch.one(self.router.pool, int(s)))
        assert self.task is not None
        self.task.fast_reschedule()
        return True

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        if not self.active:
            return None
        s = self._next()
        if s is False:
            if self.stop:
                self.router.please_stop_driver()
            self._notifier.sleep()
            return None
        if s is None or s == _WAIT:
            return None
        self._notifier.wake()
        return PacketBatch.one(self.router.pool, int(s))

    def run_timer(self, timer: Timer) -> None:
        if self.active:
            if self.outputs and self.output_is_pull(0):
                self._notifier.wake()
            elif self.task is not None:
                self.task.reschedule()

    # -- handlers ------------------------------------------------------------------------
    def add_handlers(self) -> None:
        self.add_read_handler("sampling_prob", lambda: unparse_real2(self.sampling_prob, SAMPLING_SHIFT))
        self.add_read_handler("active", lambda: self.active, CHECKBOX)

        def write_active(value: str, errh: ErrorHandler) -> None:
            try:
                active = parse_bool(uncomment(value))
            except ConfigError:
                raise ConfigError("type mismatch") from None
            self.active = active
            if self.outputs and self.output_is_push(0):
                if active and self.task is not None and not self.task.scheduled:
                    self.task.reschedule()
            else:
                self._notifier.set_active(active, True)

        self.add_write_handler("active", write_active)
        self.add_read_handler("encap", lambda: "IP")

        def write_stop(value: str, errh: ErrorHandler) -> None:
            self.active = False
            self.router.please_stop_driver()

        self.add_write_handler("stop", write_stop, BUTTON)
        add_file_handlers(self, lambda: self.tf)
        if self.task is not None:
            self.add_task_handlers(self.task)


class ToIPSummaryDump(Element):
    """ToIPSummaryDump(FILENAME [, KEYWORDS])

    Writes one line of text (or one binary record) per packet to an IP summary
    dump.

    FILENAME ``-`` means standard output.  The file starts with
    ``!IPSummaryDump 1.3`` and a ``!data`` line naming the fields; each packet
    line then holds the fields in that order, with ``-`` where a field does not
    apply (``sport`` of an ICMP packet, a header cut short).  Packets go on to
    the output, if there is one.

    Keyword arguments:

    - FIELDS (text): space-separated field names.  Default
      ``timestamp ip_src``.  Fields: ``timestamp``/``ntimestamp``, ``ts_sec``,
      ``ts_usec``, ``ts_usec1``, ``first_timestamp``; ``ip_src``, ``ip_dst``,
      ``ip_proto`` (``T``, ``U``, ``I`` or a number), ``ip_len``, ``ip_id``,
      ``ip_tos``, ``ip_dscp``, ``ip_ecn``, ``ip_ttl``, ``ip_hl``, ``ip_sum``,
      ``ip_frag`` (``F`` first fragment, ``f`` later, ``!`` DF, ``.``),
      ``ip_fragoff`` (bytes, ``+`` for MF, ``!`` for DF), ``ip_opt``,
      ``ip_capture_len``; ``sport``, ``dport``; ``tcp_seq``, ``tcp_ack``,
      ``tcp_flags`` (letters ``FSRPAUECN`` or ``.``), ``tcp_off``,
      ``tcp_window``, ``tcp_urp``, ``tcp_opt``, ``tcp_ntopt``, ``tcp_sack``;
      ``udp_len``; ``icmp_type``, ``icmp_code``, ``icmp_type_name``,
      ``icmp_code_name``, ``icmp_flowid``, ``icmp_seq``, ``icmp_nextmtu``;
      ``payload`` (a quoted string), ``payload_len``, ``payload_md5`` (22
      characters), ``payload_md5_hex``; ``count``, ``link``/``paint``,
      ``direction`` (``>``, ``<`` or a number), ``aggregate``, ``wire_len``;
      ``eth_src``, ``eth_dst``, ``eth_type``.  Spaces may replace underscores
      and ``ip_`` may be left off (``src``).  CONTENTS is an old name.
    - HEADER (boolean): write the ``!`` header lines.  Default true.
    - VERBOSE (boolean): also write ``!host`` and ``!runtime`` lines.
      Default false.
    - BANNER (string): write a ``!creator`` line with this text.
    - BINARY (boolean): write binary records after a ``!binary`` line.
      Default false.
    - MULTIPACKET (boolean): write one line for each packet a packet stands for
      (its extra packets annotation plus one), spreading its length and, with
      a first timestamp annotation, its time over them.  Default false.
    - BAD_PACKETS (boolean): before a packet with a broken header, write a
      ``!bad`` line saying what is wrong.  Default false.
    - CAREFUL_TRUNC (boolean): with BAD_PACKETS, also report packets whose data
      plus extra length falls short of their IP length.  Default true.
    - EXTRA_LENGTH (boolean): count the extra length annotation in ``ip_len``
      and ``payload_len``.  Default true.

    Handlers: ``flush`` (write) pushes buffered output to the file.

    Example::

        FromDump(trace.pcap, FORCE_IP true, STOP true)
            -> ToIPSummaryDump(-, FIELDS timestamp src sport dst dport proto)
    """

    port_count = "1/0-1"
    processing = "a/h"
    flags = "S2"

    def __init__(self) -> None:
        super().__init__()
        self.filename = ""
        self.writer: SummaryWriter | None = None
        self.out: OutputFile | None = None
        self.verbose = False
        self.header = True
        self.banner: str | None = None
        self.multipacket = False
        self.active = False
        self.output_count = 0
        self.task: Task | None = None
        self._signal = None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.filename = a.read_mp("FILENAME", parse_filename, "")
        fields = "timestamp ip_src"
        fields = a.read("FIELDS", parse_any, fields)
        fields = a.read("CONTENTS", parse_any, fields)
        fields = a.read("DATA", parse_any, fields, deprecated=True)
        self.verbose = a.read("VERBOSE", parse_bool, False)
        self.header = a.read("HEADER", parse_bool, True)
        self.banner = a.read("BANNER", parse_string, None)
        multipacket = a.read("MULTIPACKET", parse_bool, False)
        bad = a.read("BAD_PACKETS", parse_bool, False)
        careful = a.read("CAREFUL_TRUNC", parse_bool, True)
        extra = a.read("EXTRA_LENGTH", parse_bool, True)
        binary = a.read("BINARY", parse_bool, False)
        a.complete()
        self.writer = SummaryWriter(fields, binary=binary, bad_packets=bad, careful_trunc=careful,
                                    extra_length=extra)
        if self.writer.errors:
            raise ConfigError("\n".join(self.writer.errors))
        self.multipacket = multipacket
        if self.inputs and self.input_is_pull(0):
            self.task = Task(self.run_task, self)

    def is_batch_transparent(self) -> bool:
        # Lines go to this element's own file in packet order either way; standard
        # output may interleave with other elements' output.
        return self.filename not in ("-", "<stdout>")

    def initialize(self, errh: ErrorHandler) -> None:
        try:
            self.out = OutputFile(self.filename)
        except OSError as ex:
            raise ConfigError(f"{self.filename}: {ex.strerror}") from None
        self.filename = self.out.name
        if self.task is not None:
            self.task.initialize(self, True)
            self._signal = upstream_empty_signal(self, 0, self.task)
        self.active = True
        self.output_count = 0
        assert self.writer is not None
        if self.header:
            extra = []
            if self.verbose:
                extra.append(f"!host {socket.gethostname()}\n")
                now = self.router.master.clock.now()
                extra.append(f"!runtime {unparse_timestamp(now)} ({time.ctime(now / 1e9)})\n")
            self.out.write(self.writer.header(self.banner, extra).encode("latin-1", "replace"))

    def cleanup(self, stage: int) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def _write(self, s: int, multipacket: bool) -> None:
        pool = self.router.pool
        extra = anno_u32(pool, s, EXTRA_PACKETS_ANNO)
        if multipacket and extra > 0:
            count = 1 + extra
            length = int(pool.length[s])
            total = length + (anno_u32(pool, s, EXTRA_LENGTH_ANNO) if self.writer.extra_length else 0)  # type: ignore[union-attr]
            total = max(total, count * length)
            end_ts = int(pool.ts[s])
            first = anno_i64(pool, s, FIRST_TIMESTAMP_ANNO)
            step = 0
            if first:
                step = _tdiv(end_ts - first, count - 1)
                pool.ts[s] = first
            set_anno_u32(pool, s, EXTRA_PACKETS_ANNO, 0)
            for i in range(count, 0, -1):
                each = total // i
                set_anno_u32(pool, s, EXTRA_LENGTH_ANNO, each - length)
                total -= each
                self._write(s, False)
                if i == 1:
                    pool.ts[s] = end_ts
                else:
                    pool.ts[s] = _wrap_ts(int(pool.ts[s]) + step)
            return
        w = self.writer
        assert w is not None and self.out is not None
        bad: list[str] | None = [] if w.bad_packets else None
        d = desc_of(pool, s, bad=bad, careful_trunc=w.careful_trunc, force_extra_length=w.extra_length)
        record, badline = w.describe(d)
        if d.prepared:
            set_anno_u32(pool, s, EXTRA_LENGTH_ANNO, d.extra_length)
        if badline:
            self.out.write(w.bad_record(badline))
        self.out.write(record)
        self.output_count += 1

    def push(self, port: int, batch: PacketBatch) -> None:
        if self.active and self.out is not None:
            for s in batch.idx.tolist():
                self._write(s, self.multipacket)
        self.checked_output_push(0, batch)

    def run_task(self) -> bool:
        if not self.active:
            return False
        batch = self.inputs[0].pull(1)
        assert self.task is not None
        if batch is not None:
            if self.out is not None:
                for s in batch.idx.tolist():
                    self._write(s, self.multipacket)
            self.checked_output_push(0, batch)
            self.task.fast_reschedule()
            return True
        if self._signal is not None and self._signal.active():
            self.task.fast_reschedule()
        return False

    def add_handlers(self) -> None:
        if self.task is not None:
            self.add_task_handlers(self.task)

        def flush(value: str, errh: ErrorHandler) -> None:
            if self.out is not None:
                self.out.flush()

        self.add_write_handler("flush", flush)
