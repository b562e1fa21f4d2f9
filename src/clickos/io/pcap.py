"""Trace files: a buffered reader for text and binary traces, and libpcap files.

``TraceFile`` reads a file (or standard input, or a string given in the
configuration) the way Click's FromFile does: lines ending in ``\\n``, ``\\r`` or
``\\r\\n``, exact-size binary reads, the position in the (uncompressed) stream,
and transparent gzip/bzip2/xz decompression of regular files.

The pcap part covers the classic libpcap format that tcpdump and Wireshark read
and write:

- magic ``a1b2c3d4`` (microsecond timestamps), ``a1b23c4d`` (nanosecond
  timestamps) and Alexey Kuznetsov's "modified" ``a1b2cd34`` (8 extra bytes per
  record header), in either byte order;
- version 2.x headers, including the caplen/len swap of files older than 2.3;
- any link type; :func:`find_ip_header` locates the IP header for the common
  ones (raw IP, Ethernet with 802.1Q, Linux cooked, BSD loopback, PPP, Cisco
  HDLC, ATM/LLC, FDDI, 802.11 with Prism or radiotap headers).

``PcapWriter`` writes native-byte-order files with a microsecond or nanosecond
magic, which ``tcpdump -r``, Wireshark and scapy's ``rdpcap`` read.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import struct
import sys
from collections.abc import Iterator
from typing import BinaryIO

__all__ = [
    "DLT_EN10MB", "DLT_NULL", "DLT_RAW", "PCAP_MAGIC", "PCAP_MAGIC_NANO", "PcapError", "PcapReader",
    "PcapRecord", "PcapWriter", "TraceFile", "find_ip_header", "parse_dlt", "unparse_dlt",
]

PCAP_MAGIC = 0xA1B2C3D4
PCAP_MAGIC_NANO = 0xA1B23C4D
PCAP_MAGIC_MODIFIED = 0xA1B2CD34
PCAP_VERSION_MAJOR = 2
PCAP_VERSION_MINOR = 4

# Link types (tcpdump's DLT_ numbers).
DLT_NULL = 0
DLT_EN10MB = 1
DLT_PPP = 9
DLT_FDDI = 10
DLT_HOST_RAW = 12          # raw IP on some BSDs; treated as DLT_RAW
DLT_PPP_HDLC = 50
DLT_ATM_RFC1483 = 100
DLT_RAW = 101
DLT_C_HDLC = 104
DLT_IEEE802_11 = 105
DLT_LINUX_SLL = 113
DLT_PRISM_HEADER = 119
DLT_AIRONET_HEADER = 120
DLT_SUNATM = 123
DLT_IEEE802_11_RADIO = 127

# Names accepted by ToDump's ENCAP and printed by FromDump's "encap" handler; the
# first name given for a number is the one printed.
_DLT_NAMES: list[tuple[str, int]] = [
    ("NULL", DLT_NULL), ("IP", DLT_RAW), ("ETHER", DLT_EN10MB), ("FDDI", DLT_FDDI),
    ("ATM", DLT_ATM_RFC1483), ("RFC1483", DLT_ATM_RFC1483), ("ATM_RFC1483", DLT_ATM_RFC1483),
    ("802_11", DLT_IEEE802_11), ("802.11", DLT_IEEE802_11), ("802_11_RADIO", DLT_IEEE802_11_RADIO),
    ("802.11_RADIO", DLT_IEEE802_11_RADIO), ("SLL", DLT_LINUX_SLL), ("AIRONET", DLT_AIRONET_HEADER),
    ("HDLC", DLT_C_HDLC), ("PPP_HDLC", DLT_PPP_HDLC), ("PPP", DLT_PPP), ("SUNATM", DLT_SUNATM),
    ("PRISM", DLT_PRISM_HEADER),
]

# Link types whose IP header find_ip_header can locate.
FORCE_IP_DLTS = frozenset({
    DLT_RAW, DLT_HOST_RAW, DLT_EN10MB, DLT_SUNATM, DLT_FDDI, DLT_ATM_RFC1483, DLT_LINUX_SLL,
    DLT_C_HDLC, DLT_IEEE802_11, DLT_PRISM_HEADER, DLT_PPP_HDLC, DLT_PPP, DLT_NULL,
    DLT_IEEE802_11_RADIO,
})


class PcapError(Exception):
    """A malformed or unsupported pcap file."""


def parse_dlt(text: str) -> int:
    """A link type from its name (``ETHER``, ``IP``, ...) or ``#N``; -1 if unknown."""
    for name, dlt in _DLT_NAMES:
        if text == name:
            return dlt
    if len(text) >= 2 and text[0] == "#" and text[1:].isdigit():
        n = int(text[1:])
        if n < 0x7FFFFFFF:
            return n
    return -1


def unparse_dlt(dlt: int) -> str:
    """The name of a link type, ``#N`` for unnamed ones, ``<none>`` for negative ones."""
    for name, d in _DLT_NAMES:
        if d == dlt:
            return name
    if dlt < 0:
        return "<none>"
    return f"#{dlt}"


def canonical_dlt(dlt: int) -> int:
    return DLT_RAW if dlt == DLT_HOST_RAW else dlt


# ---------------------------------------------------------------------------------------
# Finding the IP header
# ---------------------------------------------------------------------------------------

def _u16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def _is_ip_ethertype(v: int) -> bool:
    return v == 0x0800 or v == 0x86DD


def _after_type(b: bytes, t: int) -> int:
    """IP header offset after an Ethernet type field at ``t`` (one 802.1Q tag allowed)."""
    n = len(b)
    if t + 2 > n:
        return -1
    v = _u16(b, t)
    if _is_ip_ethertype(v):
        return t + 2
    if v == 0x8100 and t + 6 <= n and _is_ip_ethertype(_u16(b, t + 4)):
        return t + 6
    return -1


def _ether(b: bytes, i: int, depth: int = 0) -> int:
    return _after_type(b, i + 12) if i + 14 <= len(b) else -1


def _llc(b: bytes, i: int, depth: int) -> int:
    """IP header offset behind an LLC header at ``i`` (RFC 1483 style), or -1."""
    n = len(b)
    if i + 8 <= n and b[i: i + 6] == b"\xaa\xaa\x03\x00\x00\x00" and _is_ip_ethertype(_u16(b, i + 6)):
        return i + 8
    if i + 4 <= n and b[i] == 0x06 and b[i + 1] == 0x06:
        return i + 4
    if i + 8 <= n and b[i] == 0xAA and b[i + 1] == 0xAA and depth < 4:
        org = (b[i + 3] << 16) | (b[i + 4] << 8) | b[i + 5]
        if org in (0x000000, 0x0000F8):        # bridged Ethernet: the SNAP type is the frame's
            return _after_type(b, i + 6)
        if org == 0x0080C2:                    # RFC 2684 bridged frames
            pid = _u16(b, i + 6)
            if pid in (0x0001, 0x0007):
                return _ether(b, i + 8, depth + 1)
            if pid in (0x0004, 0x000A):
                return _fddi(b, i + 9, depth + 1)
    return -1


def _fddi(b: bytes, i: int, depth: int = 0) -> int:
    # frame control, two 6-byte addresses, then LLC/SNAP (which must fit)
    if i + 13 + 8 > len(b) or (b[i] & 0x38) != 0x10:
        return -1
    return _llc(b, i + 13, depth)


def _wifi(b: bytes, i: int) -> int:
    if i + 24 <= len(b) and (b[i] & 0x0C) == 0x08:
        return _llc(b, i + (30 if (b[i + 1] & 3) == 3 else 24), 0)
    return -1


def find_ip_header(data: bytes, dlt: int) -> int:
    """Offset of the IP (v4 or v6) header in a captured frame of link type ``dlt``,
    or -1 when the frame does not carry IP or the link type is not understood.

    The header itself is not checked here (see :func:`ip_header_ok`)."""
    n = len(data)
    if dlt in (DLT_RAW, DLT_HOST_RAW):
        return 0
    if dlt == DLT_EN10MB:
        return _ether(data, 0)
    if dlt == DLT_FDDI:
        return _fddi(data, 0)
    if dlt == DLT_SUNATM:
        return _llc(data, 4, 0)
    if dlt == DLT_ATM_RFC1483:
        return _llc(data, 0, 0)
    if dlt == DLT_LINUX_SLL:
        return 16 if n >= 16 and _is_ip_ethertype(_u16(data, 14)) else -1
    if dlt == DLT_C_HDLC:
        return 4 if n >= 4 and _is_ip_ethertype(_u16(data, 2)) else -1
    if dlt == DLT_PPP_HDLC:
        if n < 4:
            return -1
        if data[0] == 0xFF:
            return 4 if data[2] == 0 and data[3] in (0x21, 0x57) else -1
        if data[0] in (0x0F, 0x8F):
            return 4 if _is_ip_ethertype(_u16(data, 2)) else -1
        return -1
    if dlt == DLT_PPP:
        i = 2 if n >= 2 and data[0] == 0xFF and data[1] == 0x03 else 0
        if i + 2 > n:
            return -1
        if data[i] in (0x21, 0x57):
            return i + 1
        if data[i] == 0 and data[i + 1] in (0x21, 0x57):
            return i + 2
        return -1
    if dlt == DLT_PRISM_HEADER:
        return _wifi(data, 144)
    if dlt == DLT_IEEE802_11:
        return _wifi(data, 0)
    if dlt == DLT_IEEE802_11_RADIO:
        if n >= 4:
            hl = data[2] | (data[3] << 8)
            if hl >= 8:
                return _wifi(data, hl)
        return -1
    if dlt == DLT_NULL:
        if n < 4:
            return -1
        family = data[0] | (data[1] << 8)
        if family == 0:
            family = (data[2] << 8) | data[3]
        return 4 if family in (2, 24, 28, 30) else -1
    return -1


def ip_header_ok(data: bytes, off: int) -> int:
    """Length of a usable IP header at ``off`` (IPv4: its header length; IPv6: 40), or 0."""
    n = len(data)
    if off < 0 or off >= n:
        return 0
    v = data[off] >> 4
    if v == 4:
        hl = (data[off] & 0xF) << 2
        return hl if hl >= 20 and off + hl <= n else 0
    if v == 6:
        return 40 if off + 40 <= n else 0
    return 0


# ---------------------------------------------------------------------------------------
# Buffered trace reading
# ---------------------------------------------------------------------------------------

_CHUNK = 1 << 16


def _compression(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return ""


class TraceFile:
    """A trace being read: lines, exact-size reads and the stream position.

    ``filename`` ``"-"`` (or empty) reads standard input; ``data`` (when not None)
    supplies the contents directly and the name prints as ``<data>``.
    ``open()`` raises ``OSError`` (with the system's message) when the file
    cannot be opened and ``EOFError`` when it is empty.
    """

    def __init__(self, filename: str = "", data: bytes | None = None) -> None:
        self.filename = filename
        self.data = data
        self.lineno = 0
        self.landmark_pattern = "%f"
        self._f: BinaryIO | None = None
        self._buf = b""
        self._pos = 0
        self._base = 0           # stream offset of _buf[0]
        self._eof = False
        self._compressed = False
        self._open = False

    # -- naming -------------------------------------------------------------------------
    @property
    def print_filename(self) -> str:
        if self.data is not None:
            return "<data>"
        if not self.filename or self.filename == "-":
            return "<stdin>"
        return self.filename

    def landmark(self) -> str:
        out = []
        pat = self.landmark_pattern
        i = 0
        while i < len(pat):
            if pat[i] == "%" and i + 1 < len(pat) and pat[i + 1] in "fl%":
                c = pat[i + 1]
                out.append(self.print_filename if c == "f" else str(self.lineno) if c == "l" else "%")
                i += 2
            else:
                out.append(pat[i])
                i += 1
        return "".join(out)

    # -- opening and closing ---------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return self._open

    def open(self, allow_empty: bool = False) -> None:
        """Open the trace and read its first chunk; decompress transparently."""
        self._buf, self._pos, self._base, self._eof = b"", 0, 0, False
        if self.data is not None:
            self._buf = self.data
            self._eof = True
            self._open = True
            return
        if not self.filename or self.filename == "-":
            self._f = sys.stdin.buffer
        else:
            self._f = open(self.filename, "rb")  # noqa: SIM115 - closed in close()
        self._open = True
        self._fill(1)
        if not self._buf:
            self.close()
            raise EOFError("empty file")
        kind = "" if self._f is sys.stdin.buffer else _compression(self._buf)
        if kind:
            raw = self._f
            raw.seek(0)
            opener = {"gzip": gzip.GzipFile, "bzip2": bz2.BZ2File, "xz": lzma.LZMAFile}[kind]
            self._f = opener(fileobj=raw)  # type: ignore[assignment]
            self._raw = raw
            self._compressed = True
            self._buf, self._pos, self._base, self._eof = b"", 0, 0, False
            self._fill(1)

    def close(self) -> None:
        f = self._f
        self._f = None
        self._open = False
        if f is not None and f is not sys.stdin.buffer:
            try:
                f.close()
            except OSError:
                pass
            raw = getattr(self, "_raw", None)
            if raw is not None:
                raw.close()
                self._raw = None

    # -- buffering ----------------------------------------------------------------------
    def _fill(self, need: int) -> bool:
        """Make at least ``need`` bytes available after the read position, if possible."""
        while len(self._buf) - self._pos < need and not self._eof:
            if self._f is None:
                self._eof = True
                break
            try:
                chunk = self._f.read(max(_CHUNK, need))
            except (OSError, EOFError):
                chunk = b""
            if not chunk:
                self._eof = True
                break
            if self._pos:
                self._base += self._pos
                self._buf = self._buf[self._pos:] + chunk
                self._pos = 0
            else:
                self._buf += chunk
        return len(self._buf) - self._pos >= need

    @property
    def file_pos(self) -> int:
        """Position in the (uncompressed) stream."""
        return self._base + self._pos

    def file_size(self) -> int | None:
        """Size of a regular, uncompressed file; None otherwise."""
        if self.data is not None:
            return len(self.data)
        if self._compressed or self._f is None or self._f is sys.stdin.buffer:
            return None
        try:
            st = os.fstat(self._f.fileno())
        except (OSError, ValueError):
            return None
        import stat

        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def seek(self, pos: int) -> None:
        """Move to stream offset ``pos``; raises ValueError when out of range."""
        if self._base <= pos <= self._base + len(self._buf):
            self._pos = pos - self._base
            return
        size = self.file_size()
        if size is not None and pos > size:
            raise ValueError("FILEPOS out of range")
        if self._f is not None and not self._compressed and self._f is not sys.stdin.buffer:
            self._f.seek(pos)
            self._buf, self._pos, self._base, self._eof = b"", 0, pos, False
            return
        if pos < self._base:
            raise ValueError("cannot seek backwards in this file")
        while self._base + len(self._buf) < pos and self._fill(len(self._buf) - self._pos + _CHUNK):
            pass
        self._pos = min(pos - self._base, len(self._buf))

    # -- reading ------------------------------------------------------------------------
    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the stream)."""
        self._fill(n)
        b = self._buf[self._pos: self._pos + n]
        self._pos += len(b)
        return b

    def skip(self, n: int) -> None:
        if self._fill(n):
            self._pos += n
        else:
            self._pos = len(self._buf)

    def read_line(self) -> bytes | None:
        """The next line, with its terminator (LF, CR or CR LF); None at the end."""
        rel = 0                      # how far past the read position has been searched
        while True:
            buf, start = self._buf, self._pos
            k_n = buf.find(b"\n", start + rel)
            k_r = buf.find(b"\r", start + rel, k_n if k_n >= 0 else len(buf))
            end = -1
            if k_r >= 0:
                if k_r + 1 < len(buf):
                    end = k_r + 2 if buf[k_r + 1] == 0x0A else k_r + 1
                elif self._eof:
                    end = k_r + 1
                else:
                    rel = k_r - start
            elif k_n >= 0:
                end = k_n + 1
            else:
                rel = len(buf) - start
            if end < 0:
                if self._eof:
                    if start >= len(buf):
                        return None
                    end = len(buf)
                else:
                    self._fill(len(buf) - start + 1)
                    continue
            self._pos = end
            self.lineno += 1
            return buf[start:end]

    def peek_line(self) -> bytes | None:
        pos, lineno = self._pos, self.lineno
        base = self._base
        line = self.read_line()
        self._pos = pos - (self._base - base)
        self.lineno = lineno
        return line


# ---------------------------------------------------------------------------------------
# pcap reading and writing
# ---------------------------------------------------------------------------------------

class PcapRecord:
    """One captured packet: timestamp (ns), captured bytes, original wire length and
    the stream offset of its record header."""

    __slots__ = ("ts", "data", "wire_len", "filepos")

    def __init__(self, ts: int, data: bytes, wire_len: int, filepos: int) -> None:
        self.ts = ts
        self.data = data
        self.wire_len = wire_len
        self.filepos = filepos


class PcapReader:
    """Reads a pcap file through a :class:`TraceFile`.

    ``read_header()`` checks the file header (raising :class:`PcapError` with
    Click's wording); ``next_header()`` then returns ``(ts_ns, caplen, len,
    skip)`` for each record, after which the caller either ``take(caplen)``s the
    packet bytes or ``drop(caplen + skip)``s them."""

    def __init__(self, tf: TraceFile) -> None:
        self.tf = tf
        self.swapped = False
        self.nano = False
        self.extra_hdr = 0
        self.version = (2, 4)
        self.snaplen = 0
        self.linktype = DLT_EN10MB

    def read_header(self) -> None:
        h = self.tf.read(24)
        if len(h) < 24:
            raise PcapError("not a tcpdump file (too short)")
        for order in ("<", ">"):
            magic = struct.unpack(order + "I", h[:4])[0]
            if magic in (PCAP_MAGIC, PCAP_MAGIC_NANO, PCAP_MAGIC_MODIFIED):
                break
        else:
            raise PcapError("not a tcpdump file (bad magic number)")
        self.order = order
        self.swapped = order != ("<" if sys.byteorder == "little" else ">")
        major, minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(order + "HHiIII", h[4:24])
        self.nano = magic == PCAP_MAGIC_NANO
        self.extra_hdr = 8 if magic == PCAP_MAGIC_MODIFIED else 0
        if major != PCAP_VERSION_MAJOR:
            raise PcapError(f"unknown major version {major}")
        self.version = (major, minor)
        self.snaplen = snaplen
        self.linktype = canonical_dlt(linktype)
        self._hdr = struct.Struct(order + "IIII")

    def next_header(self) -> tuple[int, int, int, int] | None:
        h = self.tf.read(16)
        if len(h) < 16:
            return None
        sec, sub, caplen, length = self._hdr.unpack(h)
        minor = self.version[1]
        if not (minor > 3 or (minor == 3 and caplen <= length)):
            caplen, length = length, caplen
        if caplen > 65535 and caplen > self.snaplen:
            raise PcapError("bad packet header; giving up")
        skip = 0
        if caplen > length:
            skip = caplen - length
            caplen = length
        if self.extra_hdr:
            self.tf.skip(self.extra_hdr)
        if sec & 0x80000000:
            sec -= 1 << 32
        ts = sec * 1_000_000_000 + (sub if self.nano else sub * 1000)
        return ts, caplen, length, skip

    def __iter__(self) -> Iterator[PcapRecord]:
        while True:
            pos = self.tf.file_pos
            hdr = self.next_header()
            if hdr is None:
                return
            ts, caplen, length, skip = hdr
            data = self.tf.read(caplen)
            if len(data) < caplen:
                return
            self.tf.skip(skip)
            yield PcapRecord(ts, data, length, pos)


def read_pcap(path: str) -> tuple[int, list[PcapRecord]]:
    """Every record of a pcap file, with its link type (a convenience for tests and tools)."""
    tf = TraceFile(path)
    tf.open()
    try:
        r = PcapReader(tf)
        r.read_header()
        return r.linktype, list(r)
    finally:
        tf.close()


class PcapWriter:
    """Writes a pcap file: header at construction, then one record per ``write``.

    ``out`` is a binary stream; ``nano`` selects the nanosecond magic; records are
    cut to ``snaplen`` bytes (0 means no limit, stored as 0xFFFFFFFF as Click does)
    while keeping the wire length.
    """

    def __init__(self, out: BinaryIO, linktype: int = DLT_EN10MB, snaplen: int = 2000,
                 nano: bool = False, write_header: bool = True) -> None:
        self.out = out
        self.linktype = linktype
        self.snaplen = snaplen if snaplen else 0xFFFFFFFF
        self.nano = nano
        self._rec = struct.Struct("=IIII")
        if write_header:
            out.write(struct.pack("=IHHiIII", PCAP_MAGIC_NANO if nano else PCAP_MAGIC, PCAP_VERSION_MAJOR,
                                  PCAP_VERSION_MINOR, 0, 0, self.snaplen & 0xFFFFFFFF, linktype))

    def record(self, ts_ns: int, data: bytes | memoryview, wire_len: int | None = None) -> bytes:
        """The bytes of one record (header plus captured data)."""
        sec, sub = divmod(ts_ns, 1_000_000_000)
        if not self.nano:
            sub //= 1000
        n = len(data)
        wl = n if wire_len is None else wire_len
        if n > self.snaplen:
            data = data[: self.snaplen]
            n = self.snaplen
        return self._rec.pack(sec & 0xFFFFFFFF, sub, n, wl & 0xFFFFFFFF) + bytes(data)

    def write(self, ts_ns: int, data: bytes | memoryview, wire_len: int | None = None) -> None:
        self.out.write(self.record(ts_ns, data, wire_len))
