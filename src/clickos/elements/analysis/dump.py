"""FromDump and ToDump: packets from and to libpcap ("tcpdump -w") files.

The file format is handled by :mod:`clickos.io.pcap`.
"""

from __future__ import annotations

import bz2
import gzip
import random
from typing import Any, BinaryIO

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    fixed_point,
    parse_any,
    parse_bool,
    parse_filename,
    parse_timestamp,
    parse_uint64,
    parse_unsigned,
    parse_word,
    split_words,
    uncomment,
    unparse_real2,
)
from clickos.core.element import CONFIGURE_PHASE_DEFAULT, Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlercall import HandlerCall
from clickos.core.handlers import BUTTON, CHECKBOX
from clickos.core.notifier import Notifier, upstream_empty_signal
from clickos.core.task import Task, Timer
from clickos.elements.analysis.common import (
    EXTRA_LENGTH_ANNO,
    OutputFile,
    add_file_handlers,
    anno_u32,
    set_anno_u32,
)
from clickos.elements.standard.printing import chatter
from clickos.io.pcap import (
    DLT_EN10MB,
    DLT_RAW,
    FORCE_IP_DLTS,
    PcapError,
    PcapReader,
    PcapWriter,
    TraceFile,
    find_ip_header,
    ip_header_ok,
    parse_dlt,
    unparse_dlt,
)
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import DST_IP_ANNO_OFFSET

SAMPLING_SHIFT = 28


class FromDump(Element):
    """FromDump(FILENAME [, KEYWORDS])

    Reads packets from a libpcap file (as written by ``tcpdump -w``, Wireshark
    or ToDump) and emits them.

    Files with microsecond or nanosecond timestamps, either byte order, and
    gzip, bzip2 or xz compression are understood.  Each packet gets its
    recorded timestamp, its MAC header annotation at the start of its data,
    and an extra length annotation for bytes the capture cut off.

    Keyword arguments:

    - STOP (boolean): stop the driver when the file (or the END time) is
      reached.  Default false.
    - TIMING (boolean): keep the time gaps between packets; the first goes out
      at once.  Also the second positional argument.  Default false.
    - ACTIVE (boolean): emit packets at all.  Default true.
    - SAMPLE (real between 0 and 1): emit each packet with this probability.
    - FORCE_IP (boolean): emit only IP packets, with their IP header annotation
      set; others go to output 1 (or are dropped).  Always on for raw IP files.
      Default false.
    - START, END (absolute times); START_AFTER, END_AFTER (relative to the
      first packet); INTERVAL (relative to START): the part of the trace to
      emit.  At most one start and one end.
    - END_CALL: write handler to call when the end is reached (default
      ``NAME.active false``, or ``NAME.stop`` with STOP).
    - FILEPOS (file offset): start reading at this position.
    - MMAP (boolean): accepted for compatibility; reading is buffered.

    In pull context the element is an "empty" notifier, active while it has
    packets to give.

    Handlers: ``count``, ``reset_counts``, ``active`` (read/write), ``stop``,
    ``sampling_prob``, ``encap`` (the link type: ``ETHER``, ``IP``, ...),
    ``filename``, ``filesize``, ``filepos`` (read/write), ``packet_filepos``
    (file position of the last packet read), ``extend_interval`` (write: move
    the end later and reactivate), ``reset_timing``.

    Example::

        FromDump(capture.pcap, STOP true, FORCE_IP true) -> IPPrint -> Discard
    """

    port_count = "0/1-2"
    processing = "a/ah"

    def __init__(self) -> None:
        super().__init__()
        self.tf = TraceFile()
        self.reader: PcapReader | None = None
        self.timing = False
        self.stop = False
        self.active = True
        self.force_ip = False
        self.sampling_prob = 1 << SAMPLING_SHIFT
        self.first_time = self.last_time = 0
        self.have_first_time = self.have_last_time = False
        self.first_relative = self.last_relative = self.last_interval = False
        self.have_any_times = False
        self.end_h: HandlerCall | None = None
        self.linktype = DLT_EN10MB
        self.count = 0
        self.packet_filepos = 0
        self.task: Task | None = None
        self.timer: Timer | None = None
        self._notifier = Notifier()
        self._packet: int | None = None
        self._timing_offset = 0
        self._coalesce = False

    def declaration(self) -> str:
        d = super().declaration()
        return f"{d}({self.tf.print_filename})" if self.tf.initialized else d

    # -- configuration ----------------------------------------------------------------
    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        a.read("MMAP", parse_bool, False)
        filename = a.read_mp("FILENAME", parse_filename, "")
        self.timing = a.read_p("TIMING", parse_bool, False)
        self.stop = a.read("STOP", parse_bool, False)
        self.active = a.read("ACTIVE", parse_bool, True)
        prob = a.read("SAMPLE", fixed_point(SAMPLING_SHIFT), 1 << SAMPLING_SHIFT)
        self.force_ip = a.read("FORCE_IP", parse_bool, False)
        first = a.read("START", parse_timestamp, 0)
        first_off = a.read("START_AFTER", parse_timestamp, 0)
        last = a.read("END", parse_timestamp, 0)
        last_off = a.read("END_AFTER", parse_timestamp, 0)
        interval = a.read("INTERVAL", parse_timestamp, 0)
        end_call = a.read("END_CALL", parse_any, None)
        filepos = a.read("FILEPOS", parse_uint64, 0)
        a.complete()
        if prob > 1 << SAMPLING_SHIFT:
            errh.warning("SAMPLE probability reduced to 1")
            prob = 1 << SAMPLING_SHIFT
        elif prob == 0:
            errh.warning("SAMPLE probability is 0; emitting no packets")
        self.sampling_prob = prob
        self.have_first_time = self.have_last_time = True
        self.first_relative = self.last_relative = self.last_interval = False
        if bool(first) + bool(first_off) > 1:
            raise ConfigError("START and START_AFTER are mutually exclusive")
        if first:
            self.first_time = first
        elif first_off:
            self.first_time, self.first_relative = first_off, True
        else:
            self.have_first_time, self.first_relative = False, True
        if bool(last) + bool(last_off) + bool(interval) > 1:
            raise ConfigError("END, END_AFTER, and INTERVAL are mutually exclusive")
        if last:
            self.last_time = last
        elif last_off:
            self.last_time, self.last_relative = last_off, True
        elif interval:
            self.last_time, self.last_interval = interval, True
        else:
            self.have_last_time = False
        if self.stop and end_call:
            raise ConfigError("END_CALL and STOP are mutually exclusive")
        if end_call:
            self.end_h = HandlerCall(end_call)
        elif self.stop:
            self.end_h = HandlerCall(self.name + ".stop")
        elif self.have_last_time:
            self.end_h = HandlerCall(self.name + ".active false")
        self.have_any_times = False
        self.packet_filepos = filepos
        self.tf = TraceFile(filename)
        if self.outputs and self.output_is_push(0):
            self.task = Task(self.run_task, self)

    def notifier(self, isoutput: bool, port: int, kind: str) -> Notifier | None:
        if kind == "empty" and isoutput and port == 0 and self.outputs and not self.output_is_push(0):
            return self._notifier
        return None

    def initialize(self, errh: ErrorHandler) -> None:
        if self.outputs and not self.output_is_push(0):
            self._notifier.initialize("empty", self.router)
        if self.end_h is not None:
            self.end_h.initialize_write(self, errh)
        if self.task is not None:
            self.task.initialize(self, self.active)
        self.timer = Timer(self.run_timer, self)
        self.timer.initialize(self)
        try:
            self.tf.open()
        except OSError as ex:
            raise ConfigError(f"{self.tf.print_filename}: {ex.strerror}") from None
        except EOFError:
            raise ConfigError(f"{self.tf.print_filename}: empty file") from None
        self.reader = PcapReader(self.tf)
        try:
            self.reader.read_header()
        except PcapError as ex:
            raise ConfigError(f"{self.tf.print_filename}: {ex}") from None
        self.linktype = self.reader.linktype
        if self.force_ip:
            if self.linktype not in FORCE_IP_DLTS:
                raise ConfigError(f"{self.tf.print_filename}: unknown linktype {self.linktype}; "
                                  "can't force IP packets")
        elif self.linktype == DLT_RAW:
            self.force_ip = True
        if self.packet_filepos:
            try:
                self.tf.seek(self.packet_filepos)
            except ValueError as ex:
                raise ConfigError(str(ex)) from None
            self.packet_filepos = 0
        self._coalesce = (self.task is not None and not self.timing and not self.router.master.clock.simulated
                          and self.router.push_path_transparent(self, 0)
                          and (len(self.outputs) < 2 or self.router.push_path_transparent(self, 1)))

    def cleanup(self, stage: int) -> None:
        self.tf.close()
        if self._packet is not None:
            self.router.pool.release1(self._packet)
            self._packet = None

    # -- reading --------------------------------------------------------------------------
    def _prepare_times(self, ts: int) -> None:
        if self.first_relative:
            self.first_time += ts
        if self.last_relative:
            self.last_time += ts
        elif self.last_interval:
            self.last_time += self.first_time
        if self.timing:
            self._timing_offset = self.router.master.clock.now_steady() - ts
        self.have_any_times = True

    def _read_packet(self) -> bool:
        """Read the next packet into ``_packet`` (None if skipped); False at the end."""
        assert self.reader is not None and self._packet is None
        if not self.tf.initialized:
            return False
        self.packet_filepos = self.tf.file_pos
        try:
            hdr = self.reader.next_header()
        except PcapError as ex:
            chatter(f"{self.tf.print_filename}: {ex}")
            return False
        if hdr is None:
            return False
        ts, caplen, length, skip = hdr
        if not self.have_any_times:
            self._prepare_times(ts)
        if self.have_first_time:
            if ts < self.first_time:
                self.tf.skip(caplen + skip)
                return True
            self.have_first_time = False
        while self.have_last_time and ts >= self.last_time:
            self.have_last_time = False
            if self.end_h is not None:
                self.end_h.call_write()
            if not self.active:
                self.tf.skip(caplen + skip)
                return False
        if self.sampling_prob < 1 << SAMPLING_SHIFT and random.getrandbits(SAMPLING_SHIFT) >= self.sampling_prob:
            self.tf.skip(caplen + skip)
            return True
        data = self.tf.read(caplen)
        if len(data) < caplen:
            return False
        self.tf.skip(skip)
        pool = self.router.pool
        s = pool.new_packet(data)
        pool.ts[s] = ts
        set_anno_u32(pool, s, EXTRA_LENGTH_ANNO, length - caplen)
        pool.mac[s] = pool.off[s]
        self._packet = s
        return True

    def _force_ip(self, s: int) -> bool:
        pool = self.router.pool
        off, n = int(pool.off[s]), int(pool.length[s])
        data = pool.data[s, off: off + n].tobytes()
        ip = find_ip_header(data, self.linktype)
        hl = ip_header_ok(data, ip)
        if not hl:
            return False
        pool.nh[s] = off + ip
        pool.th[s] = off + ip + hl
        if data[ip] >> 4 == 4:
            pool.anno[s, DST_IP_ANNO_OFFSET: DST_IP_ANNO_OFFSET + 4] = np.frombuffer(data[ip + 16: ip + 20], np.uint8)
        return True

    def _check_timing(self, s: int) -> bool:
        now = self.router.master.clock.now_steady()
        t = int(self.router.pool.ts[s]) + self._timing_offset
        if now < t:
            assert self.timer is not None
            self.timer.schedule_at(t)
            if self.outputs and self.output_is_pull(0):
                self._notifier.sleep()
            return False
        return True

    def _end(self) -> None:
        if self.end_h is not None:
            self.end_h.call_write()

    def run_task(self) -> bool:
        if not self.active:
            return False
        pool = self.router.pool
        assert self.task is not None
        if self._coalesce:
            return self._run_batch()
        retries = 0
        while True:
            if self._packet is None and not self._read_packet():
                self._end()
                return False
            s = self._packet
            if s is not None and self.timing and not self._check_timing(s):
                return False
            if s is not None and self.force_ip and not self._force_ip(s):
                self._packet = None
                self.checked_output_push(1, PacketBatch.one(pool, s))
                s = None
            retries += 1
            if s is not None or retries >= 16:
                break
        self.task.fast_reschedule()
        if s is None:
            return False
        self._packet = None
        self.count += 1
        self.outputs[0].push(PacketBatch.one(pool, s))
        return True

    def _run_batch(self) -> bool:
        """Several packets per run, when nothing downstream can tell the difference."""
        pool = self.router.pool
        assert self.task is not None
        budget = max(1, self.router.master.fire_budget)
        good: list[int] = []
        more = True
        for _ in range(min(budget, 256)):
            if self._packet is None and not self._read_packet():
                more = False
                break
            s = self._packet
            self._packet = None
            if s is None:
                continue
            if self.force_ip and not self._force_ip(s):
                if good:
                    self.outputs[0].push(PacketBatch(pool, np.array(good, np.int32)))
                    self.count += len(good)
                    good = []
                self.checked_output_push(1, PacketBatch.one(pool, s))
                continue
            good.append(s)
            if not self.active:
                break
        if good:
            self.count += len(good)
            self.router.master.fires_used = max(1, min(len(good), budget))
            self.outputs[0].push(PacketBatch(pool, np.array(good, np.int32)))
        if not more:
            self._end()
            return bool(good)
        self.task.fast_reschedule()
        return True

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        if not self.active:
            self._notifier.sleep()
            return None
        pool = self.router.pool
        more = True
        if self._packet is None:
            more = self._read_packet()
        s = self._packet
        if s is not None and self.timing and not self._check_timing(s):
            return None
        if s is not None and self.force_ip and not self._force_ip(s):
            self._packet = None
            self.checked_output_push(1, PacketBatch.one(pool, s))
            s = None
        self._notifier.set_active(more, True)
        if not more:
            self._end()
        if s is None:
            return None
        self._packet = None
        self.count += 1
        return PacketBatch.one(pool, s)

    def run_timer(self, timer: Timer) -> None:
        if self.active:
            if self.task is not None:
                self.task.reschedule()
            else:
                self._notifier.wake()

    def set_active(self, active: bool) -> None:
        self.active = active
        if active:
            if self.task is not None:
                if not self.task.scheduled:
                    self.task.reschedule()
            else:
                self._notifier.wake()

    # -- handlers ---------------------------------------------------------------------------
    def add_handlers(self) -> None:
        add_file_handlers(self, lambda: self.tf, filepos_writable=True)
        self.add_read_handler("sampling_prob", lambda: unparse_real2(self.sampling_prob, SAMPLING_SHIFT))
        self.add_read_handler("active", lambda: self.active, CHECKBOX)

        def write_active(value: str, errh: ErrorHandler) -> None:
            try:
                self.set_active(parse_bool(uncomment(value)))
            except ConfigError:
                raise ConfigError("type mismatch") from None

        self.add_write_handler("active", write_active)
        self.add_read_handler("encap", lambda: unparse_dlt(self.linktype))

        def write_stop(value: str, errh: ErrorHandler) -> None:
            self.set_active(False)
            self.router.please_stop_driver()

        self.add_write_handler("stop", write_stop, BUTTON)
        self.add_read_handler("packet_filepos", lambda: self.packet_filepos)

        def extend(value: str, errh: ErrorHandler) -> None:
            try:
                t = parse_timestamp(uncomment(value))
            except ConfigError:
                raise ConfigError("'extend_interval' takes a time interval") from None
            self.last_time += t
            if self.end_h is not None:
                self.have_last_time = True
                self.set_active(True)

        self.add_write_handler("extend_interval", extend)
        self.add_read_handler("count", lambda: self.count)

        def reset_counts(value: str, errh: ErrorHandler) -> None:
            self.count = 0

        self.add_write_handler("reset_counts", reset_counts, BUTTON)

        def reset_timing(value: str, errh: ErrorHandler) -> None:
            self.first_relative = self.last_relative = self.last_interval = False
            self.have_any_times = False

        self.add_write_handler("reset_timing", reset_timing, BUTTON)
        if self.task is not None:
            self.add_task_handlers(self.task)


class ToDump(Element):
    """ToDump(FILENAME [, SNAPLEN, ENCAP, KEYWORDS])

    Writes packets to a libpcap file that tcpdump, Wireshark and FromDump read.

    FILENAME ``-`` is standard output; a name ending in ``.gz`` or ``.bz2`` is
    compressed.  At most SNAPLEN bytes of each packet are stored (default 2000;
    0 means all), along with its full length.  ENCAP names the link type of the
    packets' first header: ``ETHER`` (the default), ``IP`` (raw IP), ``NULL``,
    ``SLL``, ``PPP``, ``HDLC``, ``FDDI``, ``ATM``, ``802_11``, ``PRISM``,
    ``SUNATM``, ``AIRONET``, ``802_11_RADIO``, ``PPP_HDLC`` or ``#N``.
    Packets pass through to the output if there is one; with a pull input and
    no output, ToDump pulls them itself.

    Keyword arguments:

    - SNAPLEN (unsigned), ENCAP (word): as above.
    - USE_ENCAP_FROM (element names): take the link type from these elements'
      ``encap`` handlers (they must agree); instead of ENCAP.
    - EXTRA_LENGTH (boolean): count the extra length annotation in the stored
      packet length.  Default true.
    - UNBUFFERED (boolean): write each packet out at once.  Default false.
    - NANO (boolean): store nanosecond timestamps (magic ``a1b23c4d``).
      Default true.

    Packets without a timestamp are stamped with the current time.

    Handlers: ``count`` (packets written), ``reset_counts``, ``filename``.

    Example: ``FromDevice(eth0) -> ToDump(capture.pcap, SNAPLEN 96)``
    """

    port_count = "1/0-1"
    flags = "S2"
    configure_phase = CONFIGURE_PHASE_DEFAULT + 100

    def __init__(self) -> None:
        super().__init__()
        self.filename = ""
        self.snaplen = 2000
        self.linktype = DLT_EN10MB
        self.extra_length = True
        self.unbuffered = False
        self.nano = True
        self.use_encap_from: list[Element] = []
        self.count = 0
        self.active = False
        self.out: Any = None
        self.writer: PcapWriter | None = None
        self.task: Task | None = None
        self._signal: Any = None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        self.filename = a.read_mp("FILENAME", parse_filename, "")
        self.snaplen = a.read_p("SNAPLEN", parse_unsigned, 2000)
        encap = a.read_p("ENCAP", parse_word, None)
        use_from = a.read("USE_ENCAP_FROM", parse_any, None)
        self.extra_length = a.read("EXTRA_LENGTH", parse_bool, True)
        self.unbuffered = a.read("UNBUFFERED", parse_bool, False)
        self.nano = a.read("NANO", parse_bool, True)
        a.complete()
        if self.snaplen == 0:
            self.snaplen = 0xFFFFFFFF
        if use_from is not None and encap is not None:
            raise ConfigError("specify at most one of 'ENCAP' and 'USE_ENCAP_FROM'")
        self.use_encap_from = []
        if use_from is not None:
            words = split_words(use_from)
            if not words:
                raise ConfigError("element names missing after 'USE_ENCAP_FROM'")
            for w in words:
                e = self.router.find(w, self)
                if e is None:
                    raise ConfigError(f"no element named '{w}'")
                self.use_encap_from.append(e)
        elif encap is None:
            self.linktype = DLT_EN10MB
        else:
            self.linktype = parse_dlt(encap)
            if self.linktype < 0:
                raise ConfigError("bad encapsulation type")
        if self.inputs and self.input_is_pull(0) and not self.outputs:
            self.task = Task(self.run_task, self)

    def initialize(self, errh: ErrorHandler) -> None:
        if self.use_encap_from:
            types = []
            for e in self.use_encap_from:
                h = self.router.handlers.find(e, "encap")
                if h is None or not h.readable:
                    raise ConfigError(f"'{e.name}' has no 'encap' read handler")
                types.append(uncomment(str(h.call_read("", ErrorHandler(echo=False)))))
            self.linktype = -1
            for e, t in zip(self.use_encap_from, types, strict=True):
                dlt = parse_dlt(t)
                if dlt < 0:
                    raise ConfigError(f"'{e.name}.encap' did not return a valid encapsulation type")
                if self.linktype >= 0 and dlt != self.linktype:
                    lines = ["source encapsulation types disagree:"]
                    lines += [f"  {x.declaration()} has {y}" for x, y in zip(self.use_encap_from, types, strict=True)]
                    raise ConfigError("\n".join(lines))
                self.linktype = dlt
        try:
            self.out = self._open()
        except OSError as ex:
            raise ConfigError(f"{self.filename}: {ex.strerror}") from None
        if self.filename == "-":
            self.filename = "<stdout>"
        self.writer = PcapWriter(self._raw_stream(), self.linktype, self.snaplen, self.nano, write_header=False)
        header = PcapWriter(_Collect(), self.linktype, self.snaplen, self.nano)
        self._write_bytes(header.out.data)  # type: ignore[attr-defined]
        self._flush()
        if self.task is not None:
            self.task.initialize(self, True)
            self._signal = upstream_empty_signal(self, 0, self.task)
        self.active = True

    def is_batch_transparent(self) -> bool:
        # Writing records to its own file is the same packet by packet or in a batch;
        # standard output may interleave with other elements' output.
        return self.filename not in ("-", "<stdout>")

    def _open(self) -> Any:
        fn = self.filename
        if fn == "-":
            return OutputFile("-")
        if fn.endswith(".gz"):
            return gzip.open(fn, "wb")
        if fn.endswith(".bz2"):
            return bz2.open(fn, "wb")
        return open(fn, "wb", buffering=0 if self.unbuffered else -1)  # noqa: SIM115 - closed in cleanup

    def _raw_stream(self) -> BinaryIO:
        return self.out  # type: ignore[no-any-return]

    def _write_bytes(self, data: bytes) -> None:
        self.out.write(data)

    def _flush(self) -> None:
        out = self.out
        if isinstance(out, OutputFile):
            if self.unbuffered:
                out.flush()
        elif out is not None:
            try:
                out.flush()
            except (OSError, ValueError):
                pass

    def cleanup(self, stage: int) -> None:
        out, self.out = self.out, None
        if out is not None:
            try:
                if isinstance(out, OutputFile):
                    out.close()
                else:
                    out.close()
            except OSError:
                pass

    def _write(self, batch: PacketBatch) -> None:
        pool = batch.pool
        w = self.writer
        assert w is not None
        parts = []
        now = 0
        for s in batch.idx.tolist():
            ts = int(pool.ts[s])
            if not ts:
                now = now or self.router.master.clock.now()
                ts = now
            off, n = int(pool.off[s]), int(pool.length[s])
            wire = n + (anno_u32(pool, s, EXTRA_LENGTH_ANNO) if self.extra_length else 0)
            parts.append(w.record(ts, pool.data[s, off: off + min(n, self.snaplen)], wire))
        try:
            self._write_bytes(b"".join(parts))
            if self.unbuffered:
                self._flush()
            self.count += len(parts)
        except OSError as ex:
            self.active = False
            chatter(f"ToDump({self.filename}): {ex.strerror}")

    def push(self, port: int, batch: PacketBatch) -> None:
        if self.active:
            self._write(batch)
        self.checked_output_push(0, batch)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is not None and self.active:
            self._write(batch)
        return batch

    def run_task(self) -> bool:
        if not self.active:
            return False
        assert self.task is not None
        batch = self.inputs[0].pull(1)
        if batch is not None:
            self._write(batch)
            batch.kill()
        elif not (self._signal is not None and self._signal.active()):
            return False
        self.task.fast_reschedule()
        return batch is not None

    def add_handlers(self) -> None:
        self.add_read_handler("filename", lambda: self.filename)
        self.add_read_handler("count", lambda: self.count)

        def reset(value: str, errh: ErrorHandler) -> None:
            self.count = 0

        self.add_write_handler("reset_counts", reset, BUTTON)
        if self.task is not None:
            self.add_task_handlers(self.task)


class _Collect:
    """A write-only sink that keeps what is written (for the file header)."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)
