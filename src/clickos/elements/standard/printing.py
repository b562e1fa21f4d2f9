"""Print and Message: debugging output, and messages at configuration time.

Also holds the small text helpers other element modules share: ``chatter``
(Click's ``click_chatter``: one line on standard error) and the Timestamp
formatters ``format_timestamp`` / ``format_interval``.
"""

from __future__ import annotations

import sys

from clickos.core.args import Args
from clickos.core.confparse import (
    parse_bool,
    parse_int,
    parse_keyword,
    parse_string,
    parse_word,
    unparse_interval,
    unparse_timestamp,
)
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM, CHECKBOX
from clickos.elements.standard.basic import bool_writer
from clickos.packet.batch import PacketBatch
from clickos.packet.pool import ANNO_SIZE, PacketPool


def chatter(text: str) -> None:
    """Write one diagnostic line to standard error, as Click's click_chatter does.

    A trailing newline is added unless the text already ends with one.
    """
    err = sys.stderr
    err.write(text if text.endswith("\n") else text + "\n")
    err.flush()


# Timestamp text as Click writes it (``SEC.USEC``; ``500ms``-style intervals).
format_timestamp = unparse_timestamp
format_interval = unparse_interval


_CONTENTS = {"NONE": 0, "HEX": 1, "ASCII": 2}


def _hex_groups(data: bytes) -> str:
    h = data.hex()
    return " ".join(h[i: i + 8] for i in range(0, len(h), 8))


def _ascii_groups(data: bytes) -> str:
    chars = "".join(chr(b) if 32 <= b <= 126 else "." for b in data)
    return "".join(" " + chars[i: i + 8] for i in range(0, len(chars), 8))


class Print(Element):
    """Print([LABEL, MAXLENGTH, KEYWORDS])

    Prints a line for each packet, showing its length and leading bytes.

    Each packet passes through unchanged, after a line is written to standard
    error: the LABEL (followed by a colon) if there is one, the packet length
    right-aligned in four columns, then ``|`` and up to MAXLENGTH bytes of the
    packet.  Hex output groups bytes four at a time; ASCII output groups eight
    characters at a time and shows unprintable bytes as dots.

    Keyword arguments:

    - LABEL (string): text printed first.  Default empty.
    - MAXLENGTH (integer): how many data bytes to show; negative shows the whole
      packet.  Default 24.
    - CONTENTS (word): ``NONE`` (no data), ``HEX`` (default) or ``ASCII``; a
      boolean works too (true = HEX).
    - TIMESTAMP (boolean): also print the timestamp annotation.  Default false.
    - PRINTANNO (boolean): also print the 48 annotation bytes in hex.  Default false.
    - HEADROOM (boolean): also print ``(hHEADROOM tTAILROOM)``.  Default false.
    - ACTIVE (boolean): print nothing while false.  Default true.

    Handlers: ``active`` (read/write) turns printing on and off.

    Example: ``... -> Print(in, 32, CONTENTS ASCII) -> ...``
    """

    port_count = "1/1"
    processing = "a"

    def __init__(self) -> None:
        super().__init__()
        self.label = ""
        self.maxlength = 24
        self.contents = 1
        self.timestamp = False
        self.print_anno = False
        self.headroom = False
        self.active = True

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        label = a.read_p("LABEL", parse_string, default="")
        maxlength = a.read_p("MAXLENGTH", parse_int, default=24)
        length = a.read("LENGTH", parse_int, default=None, deprecated=True)
        nbytes = a.read("NBYTES", parse_int, default=None, deprecated=True)
        contents = a.read("CONTENTS", parse_word, default="HEX")
        timestamp = a.read("TIMESTAMP", parse_bool, default=False)
        print_anno = a.read("PRINTANNO", parse_bool, default=False)
        active = a.read("ACTIVE", parse_bool, default=True)
        headroom = a.read("HEADROOM", parse_bool, default=False)
        for w in a.warnings:  # "LENGTH: warning: argument deprecated"
            errh.message(w)
            errh.nwarnings += 1
        a.complete()
        if length is not None:
            maxlength = length
        if nbytes is not None:
            maxlength = nbytes
        try:
            mode = 1 if parse_bool(contents) else 0
        except ConfigError:
            word = contents.upper()
            if word not in _CONTENTS:
                raise ConfigError(
                    f"bad contents value '{word}'; should be 'NONE', 'HEX', or 'ASCII'") from None
            mode = _CONTENTS[word]
        self.label = label
        self.maxlength = maxlength
        self.contents = mode
        self.timestamp = timestamp
        self.print_anno = print_anno
        self.active = active
        self.headroom = headroom

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def add_handlers(self) -> None:
        self.add_read_handler("active", lambda: self.active, CHECKBOX | CALM)

        self.add_write_handler("active", bool_writer(self, "active"), CHECKBOX | CALM)

    def line(self, pool: PacketPool, slot: int) -> str:
        """The text Print writes for the packet in ``slot``."""
        length = int(pool.length[slot])
        nbytes = self.maxlength if self.contents else 0
        if nbytes < 0 or length < nbytes:
            nbytes = length
        parts: list[str] = []
        sep = ""
        if self.label:
            parts.append(self.label)
            sep = ": "
        if self.timestamp:
            parts.append(sep + format_timestamp(int(pool.ts[slot])))
            sep = ": "
        parts.append(f"{sep}{length:4d}")
        off = int(pool.off[slot])
        if self.headroom:
            parts.append(f" (h{off} t{pool.slot_size - off - length})")
        if self.print_anno:
            parts.append(" | " + pool.anno[slot, :ANNO_SIZE].tobytes().hex())
        if nbytes:
            data = pool.data[slot, off: off + nbytes].tobytes()
            parts.append(" | " + (_hex_groups(data) if self.contents == 1 else _ascii_groups(data)))
        return "".join(parts)

    def simple_action(self, batch: PacketBatch) -> PacketBatch | None:
        if self.active:
            pool = batch.pool
            for slot in batch.idx.tolist():
                chatter(self.line(pool, slot))
        return batch


class Message(Element):
    """Message(MESSAGE [, TYPE])

    Reports a message while the router is being configured.

    Message has no ports; it exists to document a configuration.  When the
    element is configured it reports MESSAGE through the configuration error
    handler, so the text appears after a ``While configuring ...`` line.  TYPE
    is ``MESSAGE`` (the default: a plain message), ``WARNING`` or ``ERROR``.
    An ERROR message makes the router fail to initialize; as in Click, so does
    a WARNING (it is reported, then configuration fails with an unspecified
    error).

    Example: ``Message("This configuration is obsolete.", WARNING)``
    """

    port_count = "0/0"
    processing = "a"

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        message = a.read_mp("MESSAGE", parse_string)
        kind = a.read_p("TYPE", parse_keyword, default="MESSAGE")
        a.complete()
        if kind == "MESSAGE":
            errh.message(message)
        elif kind == "WARNING":
            errh.warning(message)
            errh.error("unspecified error")
        elif kind == "ERROR":
            errh.error(message)
        else:
            raise ConfigError("unrecognized message type")
