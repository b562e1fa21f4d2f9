"""IPPrint: tcpdump-style lines for IP packets."""

from __future__ import annotations

from typing import Any

from clickos.core.args import Args
from clickos.core.confparse import (
    ICMP_CODES,
    ICMP_TYPES,
    IP_PROTOCOLS,
    parse_bool,
    parse_filename,
    parse_int,
    parse_string,
    parse_word,
    unparse_ip,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM, CHECKBOX
from clickos.elements.ip.common import AGGREGATE_ANNO, IP_MF, IP_OFFMASK, PAINT_ANNO, add_bool_handler
from clickos.elements.standard.printing import chatter, format_timestamp
from clickos.packet.batch import PacketBatch

_PROTO_NAMES = {v: k for k, v in sorted(IP_PROTOCOLS.items(), reverse=True) if v < 256}
_ICMP_TYPE_NAMES = {v: k for k, v in sorted(ICMP_TYPES.items(), reverse=True)}
_ICMP_CODE_NAMES = {t: {v: k for k, v in sorted(codes.items(), reverse=True)} for t, codes in ICMP_CODES.items()}

TH_FIN, TH_SYN, TH_RST, TH_PUSH, TH_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def proto_name(p: int, prepend: bool) -> str:
    """A protocol's name, or its number (``protocol N`` when ``prepend``)."""
    if p in _PROTO_NAMES:
        return _PROTO_NAMES[p]
    return f"protocol {p}" if prepend else str(p)


def icmp_code_name(icmp_type: int, code: int) -> str | None:
    return _ICMP_CODE_NAMES.get(icmp_type, {}).get(code)


def _u16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def _u32(b: bytes, i: int) -> int:
    return int.from_bytes(b[i: i + 4], "big")


class IPPrint(Element):
    """IPPrint([LABEL, KEYWORDS])

    Prints IP packets in a tcpdump-like format.

    Packets need IP header annotations (place IPPrint after CheckIPHeader or
    similar); packets without them pass silently.  Each packet produces a line on
    standard error: LABEL, the timestamp, then the addresses, ports and a summary
    of the TCP, UDP or ICMP header, fragment information, and optionally the
    packet's bytes.  Packets pass on unchanged.

    Keyword arguments:

    - CONTENTS (``NONE``, ``HEX`` or ``ASCII``): also print the packet data.
      Default NONE.
    - PAYLOAD (same values): print only the transport payload instead.
    - MAXLENGTH (integer): most data bytes printed; -1 for all.  Default 1500.
    - ID, TTL, TOS, LENGTH (boolean): print those IP header fields.  Default false.
    - TIMESTAMP (boolean): print the timestamp.  Default true.
    - AGGREGATE, PAINT (boolean): print those annotations.  Default false.
    - SWAP (boolean): print ICMP echo identifiers and sequence numbers as
      network-order numbers.  Default true.
    - OUTFILE (filename): write to this file instead of standard error.
    - ACTIVE (boolean): print nothing while false.  Default true.

    Handlers: ``active`` (read/write).

    Example: ``... -> CheckIPHeader -> IPPrint(in, TTL true) -> ...``
    """

    port_count = "1/1"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.label = ""
        self.bytes = 1500
        self.contents = 0
        self.payload = False
        self.swap = True
        self.active = True
        self.print_id = self.print_ttl = self.print_tos = self.print_len = False
        self.print_timestamp = True
        self.print_paint = self.print_aggregate = False
        self.outfilename = ""
        self._outfile: Any = None

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        label = a.read_p("LABEL", parse_string, "")
        contents = a.read("CONTENTS", parse_word, "no")
        payload = a.read("PAYLOAD", parse_word, "no")
        nbytes = a.read("MAXLENGTH", parse_int, 1500)
        nbytes = a.read("NBYTES", parse_int, nbytes)
        print_id = a.read("ID", parse_bool, False)
        print_time = a.read("TIMESTAMP", parse_bool, True)
        print_paint = a.read("PAINT", parse_bool, False)
        print_tos = a.read("TOS", parse_bool, False)
        print_ttl = a.read("TTL", parse_bool, False)
        swap = a.read("SWAP", parse_bool, True)
        print_len = a.read("LENGTH", parse_bool, False)
        print_aggregate = a.read("AGGREGATE", parse_bool, False)
        active = a.read("ACTIVE", parse_bool, True)
        outfile = a.read("OUTFILE", parse_filename, "")
        a.read("CHANNEL", parse_word)
        a.complete()
        try:
            mode = 1 if parse_bool(contents) else 0
        except ConfigError:
            word = contents.upper()
            modes = {"NONE": 0, "HEX": 1, "ASCII": 2}
            if word not in modes:
                raise ConfigError(
                    f"bad contents value '{word}'; should be 'NONE', 'HEX', or 'ASCII'") from None
            mode = modes[word]
        pword = payload.upper()
        if pword in ("NO", "FALSE"):
            pmode = 0
        elif pword in ("YES", "TRUE", "HEX"):
            pmode = 1
        elif pword == "ASCII":
            pmode = 2
        else:
            raise ConfigError(f"bad payload value '{contents}'; should be 'false', 'hex', or 'ascii'")
        is_payload = False
        if pmode > 0 and mode > 0:
            raise ConfigError("specify at most one of PAYLOAD and CONTENTS")
        if pmode > 0:
            mode, is_payload = pmode, True
        self.label, self.bytes, self.contents, self.payload = label, nbytes, mode, is_payload
        self.swap, self.active, self.outfilename = swap, active, outfile
        self.print_id, self.print_ttl, self.print_tos, self.print_len = print_id, print_ttl, print_tos, print_len
        self.print_timestamp, self.print_paint, self.print_aggregate = print_time, print_paint, print_aggregate

    def initialize(self, errh: ErrorHandler) -> None:
        if self.outfilename:
            try:
                self._outfile = open(self.outfilename, "w")  # noqa: SIM115 - kept open while running
            except OSError as e:
                raise ConfigError(f"{self.outfilename}: {e.strerror}") from None

    def cleanup(self, stage: int) -> None:
        if self._outfile is not None:
            self._outfile.close()
            self._outfile = None

    # -- formatting ------------------------------------------------------------------------
    @staticmethod
    def _pair(iph: bytes) -> str:
        return f"{unparse_ip(iph[12:16])} > {unparse_ip(iph[16:20])}"

    def _tcp(self, iph: bytes, t: bytes, tl: int, plen: int, firstfrag: bool) -> str:
        if tl < 4 or not firstfrag:
            return self._pair(iph) + (": truncated-tcp" if firstfrag else ": tcp")
        text = (f"{unparse_ip(iph[12:16])}.{_u16(t, 0)} > {unparse_ip(iph[16:20])}.{_u16(t, 2)}: ")
        if tl < 14:
            return text + "truncated-tcp"
        ip_len = _u16(iph, 2)
        seqlen = ip_len - ((iph[0] & 0xF) << 2) - ((t[12] >> 4) << 2)
        fl = t[13]
        flags = ""
        if fl & TH_SYN:
            flags += "S"
            seqlen += 1
        if fl & TH_FIN:
            flags += "F"
            seqlen += 1
        if fl & TH_RST:
            flags += "R"
        if fl & TH_PUSH:
            flags += "P"
        if not fl & (TH_SYN | TH_FIN | TH_RST | TH_PUSH):
            flags += "."
        seq = _u32(t, 4)
        text += f"{flags} {seq}:{(seq + seqlen) & 0xFFFFFFFF}({seqlen},{plen},{ip_len})"
        if fl & TH_ACK:
            text += f" ack {_u32(t, 8)}"
        if tl < 16:
            return text + "truncated-tcp"
        return text + f" win {_u16(t, 14)}"

    def _udp(self, iph: bytes, t: bytes, tl: int, firstfrag: bool) -> str:
        if tl < 4 or not firstfrag:
            return self._pair(iph) + (": truncated-udp" if firstfrag else ": udp")
        text = f"{unparse_ip(iph[12:16])}.{_u16(t, 0)} > {unparse_ip(iph[16:20])}.{_u16(t, 2)}: "
        if tl < 8:
            return text + "truncated-udp"
        return text + f"udp {_u16(t, 4)}"

    def _icmp(self, iph: bytes, t: bytes, tl: int, firstfrag: bool) -> str:
        text = self._pair(iph) + ": "
        if not firstfrag:
            return text + "icmp"
        if tl < 2:
            return text + "truncated-icmp"
        ty, code = t[0], t[1]
        if ty in (0, 8):
            text += "icmp echo-reply " if ty == 0 else "icmp echo "
            if tl < 8:
                return text + "truncated-icmp"
            ident, seq = _u16(t, 4), _u16(t, 6)
            if not self.swap:
                ident = ((ident & 0xFF) << 8) | (ident >> 8)
                seq = ((seq & 0xFF) << 8) | (seq >> 8)
            return text + f"({ident}, {seq})"
        if ty == 3:
            cname = icmp_code_name(3, code) or f"code {code}"
            elen = tl - 8
            if elen < 20:
                return text + f"icmp unreachable {cname} truncated-icmp"
            e = t[8:]
            text += f"icmp {unparse_ip(e[16:20])} unreachable {cname}"
            if code == 2:
                text += " " + proto_name(e[9], False)
            elif code == 3:
                text += " " + proto_name(e[9], True)
                ehl = (e[0] & 0xF) << 2
                if elen - ehl < 4:
                    return text + "truncated-icmp"
                text += f"/{_u16(e, ehl + 2)}"
            elif code == 4:
                mtu = _u16(t, 6)
                if mtu:
                    text += f" (mtu {mtu})"
            return text
        text += "icmp "
        tname = _ICMP_TYPE_NAMES.get(ty)
        text += tname if tname else f"type {ty}"
        cname = icmp_code_name(ty, code)
        if cname:
            text += " " + cname
        elif code:
            text += f" code {code}"
        return text

    def line(self, pool: Any, s: int) -> str | None:
        """The text printed for the packet in slot ``s`` (None if it has no IP header)."""
        nh = int(pool.nh[s])
        if nh < 0:
            return None
        parts = []
        if self.label:
            parts.append(self.label + ": ")
        if self.print_timestamp:
            parts.append(format_timestamp(int(pool.ts[s])) + ": ")
        if self.print_aggregate:
            parts.append("#" + str(int.from_bytes(pool.anno[s, AGGREGATE_ANNO: AGGREGATE_ANNO + 4].tobytes(),
                                                   "little")))
        if self.print_paint:
            parts.append(("." if self.print_aggregate else "paint ") + str(int(pool.anno[s, PAINT_ANNO])))
        if self.print_aggregate or self.print_paint:
            parts.append(": ")
        off, length = int(pool.off[s]), int(pool.length[s])
        end = off + length
        if end - nh < 20:
            parts.append("truncated-ip")
            return "".join(parts)
        row = pool.data[s]
        iph = row[nh: nh + 60].tobytes()
        hl = (iph[0] & 0xF) << 2
        ip_len = _u16(iph, 2)
        payload_len = ip_len - hl
        th = int(pool.th[s]) if pool.th[s] >= 0 else nh + hl
        tl = min(end - th, payload_len)
        t = row[th: th + 100].tobytes() if th >= 0 else b""
        t = t.ljust(100, b"\0")
        ip_off = _u16(iph, 6)
        firstfrag = (ip_off & IP_OFFMASK) == 0
        if self.print_id:
            parts.append(f"id {_u16(iph, 4)} ")
        if self.print_ttl:
            parts.append(f"ttl {iph[8]} ")
        if self.print_tos:
            parts.append(f"tos {iph[1]} ")
        if self.print_len:
            parts.append(f"length {ip_len} ")
        proto = iph[9]
        if proto == 6:
            parts.append(self._tcp(iph, t, tl, length, firstfrag))
        elif proto == 17:
            parts.append(self._udp(iph, t, tl, firstfrag))
        elif proto == 1:
            parts.append(self._icmp(iph, t, tl, firstfrag))
        else:
            parts.append(self._pair(iph) + f": ip-proto-{proto}")
        if ip_off & (IP_MF | IP_OFFMASK):
            parts.append(f" (frag {_u16(iph, 4)}:{payload_len}@{(ip_off & IP_OFFMASK) << 3}"
                         f"{'+' if ip_off & IP_MF else ''})")
        if self.contents > 0:
            if self.payload:
                if firstfrag and proto == 6:
                    start = th + ((t[12] >> 4) << 2)
                elif firstfrag and proto == 17:
                    start = th + 8
                else:
                    start = th
            else:
                start = off
            n = self.bytes
            if start >= end:
                n = 0
            elif n < 0 or end - start < n:
                n = end - start
            data = row[start: start + n].tobytes() if n > 0 else b""
            out = []
            if self.contents == 1:
                for i, b in enumerate(data):
                    if i % 24 == 0:
                        out.append("\n  ")
                    elif i % 4 == 0:
                        out.append(" ")
                    out.append(f"{b:02x}")
            else:
                for i, b in enumerate(data):
                    if i % 48 == 0:
                        out.append("\n  ")
                    elif i % 8 == 0:
                        out.append(" ")
                    out.append(chr(b) if 32 <= b <= 126 else ".")
            parts.append("".join(out))
        return "".join(parts)

    def simple_action(self, batch: PacketBatch) -> PacketBatch:
        if self.active:
            pool = batch.pool
            for s in batch.idx.tolist():
                text = self.line(pool, s)
                if text is None:
                    continue
                if self._outfile is not None:
                    self._outfile.write(text + "\n")
                else:
                    chatter(text)
        return batch

    def add_handlers(self) -> None:
        add_bool_handler(self, "active", self, "active", CHECKBOX | CALM)
