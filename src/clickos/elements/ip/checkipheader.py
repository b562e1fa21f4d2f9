"""IP header annotation elements: CheckIPHeader, CheckIPHeader2, MarkIPHeader,
StripIPHeader, UnstripIPHeader, StripToNetworkHeader and IPInputCombo."""

from __future__ import annotations

from typing import Any

import numpy as np

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bool,
    parse_int,
    parse_ip_address_list,
    parse_ip_prefix,
    parse_unsigned,
    split_words,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.elements.ip.common import (
    compute_split_ok,
    ip_to_int,
    runs,
)
from clickos.elements.standard.printing import chatter
from clickos.packet.batch import PacketBatch

IP_REASONS = ("tiny packet", "bad IP version", "bad IP header length", "bad IP length",
              "bad IP checksum", "bad source address")


def parse_interfaces(text: str) -> tuple[list[bytes], list[bytes]]:
    """CheckIPHeader's INTERFACES: (bad source addresses, good destinations)."""
    bad: list[bytes] = []
    good: list[bytes] = []
    for w in split_words(text):
        addr, mask = parse_ip_prefix(w, True)
        a, m = ip_to_int(addr), ip_to_int(mask)
        bad.append((((a & m) | (~m & 0xFFFFFFFF)) & 0xFFFFFFFF).to_bytes(4, "big"))
        good.append(addr)
    bad += [b"\0\0\0\0", b"\xff\xff\xff\xff"]
    return bad, good


def parse_old_badsrc(text: str) -> list[bytes]:
    """The deprecated positional BADSRC: a list that also rejects 0.0.0.0 and 255.255.255.255."""
    return parse_ip_address_list(text) + [b"\0\0\0\0", b"\xff\xff\xff\xff"]


def _as_u32_array(addrs: list[bytes]) -> np.ndarray:
    return np.array([ip_to_int(a) for a in addrs], np.int64)


class _Checker(Element):
    """Shared batch plumbing for header checkers with an optional error output.

    Subclasses implement ``_verdicts(batch) -> (out, nbad)`` where ``out[i]`` is 0
    for good packets and 1 + reason otherwise, and ``_report(reason)`` for the
    per-drop side effects.
    """

    register = False
    port_count = "1/1-2"
    processing = "a/ah"
    batch_transparent = True

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)

    def _verdicts(self, batch: PacketBatch) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def _report(self, reason: int) -> None:
        raise NotImplementedError

    def _bad(self, batch: PacketBatch, out: np.ndarray, start: int, end: int) -> None:
        if end - start > 1 and len(self.outputs) == 2 and not self._split_ok:
            # report and emit one at a time, as Click interleaves them
            for i in range(start, end):
                self._report(int(out[i]) - 1)
                self.outputs[1].push(PacketBatch(batch.pool, batch.idx[i: i + 1]))
            return
        for r in out[start:end].tolist():
            self._report(r - 1)
        part = PacketBatch(batch.pool, batch.idx[start:end])
        if len(self.outputs) == 2:
            self.outputs[1].push(part)
        else:
            part.kill()

    def push(self, port: int, batch: PacketBatch) -> None:
        out, nbad = self._verdicts(batch)
        if nbad == 0:
            self.outputs[0].push(batch)
            return
        self._dispatch(batch, out)

    def _dispatch(self, batch: PacketBatch, out: np.ndarray) -> None:
        """Send a batch with some bad packets (``out`` = verdicts, owned by the caller)."""
        if self._split_ok:
            bad = out != 0
            for r in out[bad].tolist():
                self._report(r - 1)
            badb = PacketBatch(batch.pool, batch.idx[bad])
            good = batch.take(~bad)
            if good is not None:
                self.outputs[0].push(good)
            if len(self.outputs) == 2:
                self.outputs[1].push(badb)
            else:
                badb.kill()
            return
        for port_, start, end in runs(np.minimum(out, 1)):
            if port_ == 0:
                self.outputs[0].push(PacketBatch(batch.pool, batch.idx[start:end]))
            else:
                self._bad(batch, out, start, end)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        out, nbad = self._verdicts(batch)
        if nbad == 0:
            return batch
        bad = out != 0
        self._bad(PacketBatch(batch.pool, batch.idx[bad]), out[bad], 0, nbad)
        return batch.take(~bad)


class CheckIPHeader(_Checker):
    """CheckIPHeader([OFFSET, KEYWORDS])

    Checks that packets carry a well-formed IP header.

    The IP header starts OFFSET bytes into each packet (default 0).  A packet is
    good when it is long enough, has version 4, a header length of at least 20
    bytes, a total length that fits both the header and the packet, a correct
    header checksum, and an acceptable source address (see below).  Good packets
    get their IP header annotations and destination address annotation set, lose
    any bytes past the IP total length (such as Ethernet padding), and leave on
    output 0.  Bad packets go to output 1 if it is connected, and are dropped
    otherwise.  The first bad packet is reported on standard error.

    Source addresses are checked (RFC 1812 5.3.7) when INTERFACES, BADSRC or
    GOODDST is given: a source listed in BADSRC is bad unless the destination is
    listed in GOODDST.

    Keyword arguments:

    - OFFSET (unsigned): where the IP header starts.  Default 0.
    - CHECKSUM (boolean): verify header checksums.  Default true.
    - INTERFACES (list of IP/MASK): this router's interface addresses; sets BADSRC
      to their broadcast addresses plus 0.0.0.0 and 255.255.255.255, and GOODDST to
      the addresses themselves.
    - BADSRC, GOODDST (lists of IP addresses): see above.
    - VERBOSE (boolean): report every bad packet, not just the first.
    - DETAILS (boolean): count bad packets by reason (``drop_details`` handler).

    The old form CheckIPHeader(BADSRC, OFFSET) is still understood; its BADSRC list
    also rejects 0.0.0.0 and 255.255.255.255.

    Handlers: ``drops`` (read); ``drop_details`` (read, with DETAILS: one
    "COUNT<tab>REASON" line per reason).

    Example: ``FromDevice(eth0) -> Strip(14) -> CheckIPHeader -> ...``
    """

    flags = "A"
    default_checksum = True

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0
        self.bad_src: list[bytes] = []
        self.good_dst: list[bytes] = []
        self.checksum = self.default_checksum
        self.verbose = False
        self.drops = 0
        self.reason_drops: list[int] | None = None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        conf = list(conf)
        a = Args(context=self).bind(conf)
        bad_src: list[bytes] = []
        good_dst: list[bytes] = []
        ifs = a.read("INTERFACES", parse_interfaces)
        if ifs is not None:
            bad_src, good_dst = ifs
        bad_src = a.read("BADSRC", parse_ip_address_list, bad_src)
        good_dst = a.read("GOODDST", parse_ip_address_list, good_dst)
        offset = a.read("OFFSET", parse_unsigned, 0)
        verbose = a.read("VERBOSE", parse_bool, False)
        details = a.read("DETAILS", parse_bool, False)
        checksum = a.read("CHECKSUM", parse_bool, self.default_checksum)
        rest = a.consume()
        if len(rest) == 0:
            pass
        else:
            try:
                single = parse_int(rest[0]) if len(rest) == 1 else None
            except ConfigError:
                single = None
            if single is not None:
                offset = single
            else:
                b = Args(rest, self)
                bad_src = b.read("BADSRC", parse_old_badsrc, bad_src)
                offset = b.read("OFFSET", parse_unsigned, offset)
                b.complete()
        self.offset, self.bad_src, self.good_dst = offset, bad_src, good_dst
        self.checksum, self.verbose = checksum, verbose
        self.reason_drops = [0] * len(IP_REASONS) if details else None

    def fast_step(self) -> Any:
        from clickos.packet import fusegen

        if self.bad_src or type(self).push is not CheckIPHeader.push:
            return None   # source address lists: the element's own kernel
        return fusegen.check_ip(self.offset, self.checksum)

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        super().initialize(errh)
        self._k = netkernels.check_ip_header
        self._bad_arr = _as_u32_array(self.bad_src)
        self._good_arr = _as_u32_array(self.good_dst)
        self._out = np.zeros(256, np.int32)
        self._push0 = self.outputs[0].push

    def _verdicts(self, batch: PacketBatch) -> tuple[np.ndarray, int]:
        pool = batch.pool
        n = len(batch)
        if len(self._out) < n:
            self._out = np.zeros(n, np.int32)
        out = self._out[:n]
        nbad = self._k(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.anno, batch.idx,
                       self.offset, self.checksum, self._bad_arr, self._good_arr, out)
        return out.copy() if nbad else out, nbad

    def push(self, port: int, batch: PacketBatch) -> None:
        # the common case in one Python frame: one kernel call, all packets good
        pool = batch.pool
        idx = batch.idx
        out = self._out
        if len(out) < len(idx):
            out = self._out = np.zeros(len(idx), np.int32)
        if self._k(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.anno, idx,
                   self.offset, self.checksum, self._bad_arr, self._good_arr, out) == 0:
            self._push0(batch)
            return
        self._dispatch(batch, out[:len(idx)].copy())

    def _report(self, reason: int) -> None:
        if self.drops == 0 or self.verbose:
            chatter(f"{self.name}: IP header check failed: {IP_REASONS[reason]}")
        self.drops += 1
        if self.reason_drops is not None:
            self.reason_drops[reason] += 1

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)
        if self.reason_drops is not None:
            rd = self.reason_drops
            self.add_read_handler("drop_details", lambda: "".join(
                f"{rd[i]}\t{IP_REASONS[i]}\n" for i in range(len(IP_REASONS))))


class CheckIPHeader2(CheckIPHeader):
    """CheckIPHeader2([OFFSET, KEYWORDS])

    Checks IP headers like CheckIPHeader, but skips the checksum by default.

    Identical to CheckIPHeader except that CHECKSUM defaults to false.

    Example: ``... -> CheckIPHeader2(14) -> ...``
    """

    default_checksum = False


class MarkIPHeader(Element):
    """MarkIPHeader([OFFSET])

    Sets the IP header annotations.

    The IP header is taken to start OFFSET bytes into the packet (default 0); the
    transport header follows it according to its header length field.  Nothing
    is checked, no length is adjusted and the destination annotation is not set;
    use CheckIPHeader for that.

    Example: ``... -> MarkIPHeader(14) -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        offset = a.read_p("OFFSET", parse_int, 0)
        a.complete()
        self.offset = offset

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.mark_ip_header

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        self._k(pool.data, pool.off, pool.nh, pool.th, batch.idx, self.offset)
        return batch


class StripIPHeader(Element):
    """StripIPHeader()

    Removes the outermost IP header.

    Strips everything up to the transport header annotation, which CheckIPHeader
    or MarkIPHeader set.  The header annotations are left as they were, so they
    point into the removed bytes; follow with CheckIPHeader or MarkIPHeader to
    handle an inner IP header.

    Example: ``... -> CheckIPHeader -> StripIPHeader -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        idx = batch.idx
        th = pool.th[idx]
        n = np.where(th >= 0, th - pool.off[idx], 0)
        n = np.clip(n, 0, pool.length[idx])
        pool.off[idx] += n
        pool.length[idx] -= n
        return batch


class UnstripIPHeader(Element):
    """UnstripIPHeader()

    Puts a stripped IP header back.

    If the IP header annotation points before the start of the packet data (as
    after StripIPHeader), the data is extended back to it; otherwise the packet
    is unchanged.

    Example: ``... -> StripIPHeader -> ... -> UnstripIPHeader -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        idx = batch.idx
        nh = pool.nh[idx]
        back = np.where((nh >= 0) & (nh < pool.off[idx]), pool.off[idx] - nh, 0)
        pool.off[idx] -= back
        pool.length[idx] += back
        return batch


class StripToNetworkHeader(Element):
    """StripToNetworkHeader()

    Makes each packet start at its network header.

    Bytes before the network header annotation are removed; if the annotation
    points before the data (a stripped header), the data is extended back to it.
    Packets without a network header annotation pass unchanged.

    Example: ``... -> CheckIPHeader(14) -> StripToNetworkHeader -> ...``
    """

    port_count = "1/1"
    processing = "a"
    batch_transparent = True

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        pool = batch.pool
        idx = batch.idx
        nh = pool.nh[idx]
        has = nh >= 0
        delta = np.where(has, nh - pool.off[idx], 0)
        delta = np.minimum(delta, pool.length[idx])
        pool.off[idx] += delta
        pool.length[idx] -= delta
        return batch


class IPInputCombo(Element):
    """IPInputCombo(COLOR [, BADSRC, KEYWORDS])

    Does the usual IP router input steps in one element.

    Equivalent to ``Paint(COLOR) -> Strip(14) -> CheckIPHeader(BADSRC) ->
    GetIPAddress(16)``: paints the packet, removes its Ethernet header, checks the
    IP header (bad packets are dropped, the first one reported), and sets the
    destination address annotation.

    Keyword arguments: INTERFACES, BADSRC, GOODDST, as for CheckIPHeader.

    Handlers: ``drops`` (read).

    Example: ``FromDevice(eth0) -> c :: Classifier(...) -> IPInputCombo(0) -> ...``
    """

    port_count = "1/1"
    processing = "a"
    flags = "A"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.color = 0
        self.bad_src: list[bytes] = []
        self.good_dst: list[bytes] = []
        self.drops = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        color = a.read_mp("COLOR", parse_int)
        bad_src = a.read_p("BADSRC", parse_old_badsrc, [])
        ifs = a.read("INTERFACES", parse_interfaces)
        good_dst: list[bytes] = []
        if ifs is not None:
            bad_src, good_dst = ifs
        bad_src = a.read("BADSRC", parse_ip_address_list, bad_src)
        good_dst = a.read("GOODDST", parse_ip_address_list, good_dst)
        a.complete()
        self.color, self.bad_src, self.good_dst = color, bad_src, good_dst

    def initialize(self, errh: ErrorHandler) -> None:
        from clickos.packet import netkernels

        self._k = netkernels.ip_input_combo
        self._bad_arr = _as_u32_array(self.bad_src)
        self._good_arr = _as_u32_array(self.good_dst)
        self._out = np.zeros(256, np.int32)

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        # one kernel: Paint, Strip(14) and CheckIPHeader
        pool = batch.pool
        idx = batch.idx
        n = len(idx)
        if len(self._out) < n:
            self._out = np.zeros(n, np.int32)
        out = self._out[:n]
        nbad = self._k(pool.data, pool.off, pool.length, pool.nh, pool.th, pool.anno, idx, self.color & 0xFF,
                       self._bad_arr, self._good_arr, out)
        if nbad == 0:
            return batch
        if self.drops == 0:
            chatter("IP checksum failed")
        self.drops += nbad
        return batch.kill_where(out != 0)

    def add_handlers(self) -> None:
        self.add_read_handler("drops", lambda: self.drops)
