"""StringMatcher and RegexMatcher: divert packets whose bytes match patterns.

Both compile their patterns into one Hyperscan database (block mode) and scan
each packet of a batch in one Python loop; a match callback marks the packet.
Hyperscan comes from the ``hyperscan`` package on PyPI.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clickos.core.confparse import quote, split_args, unquote
from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import BUTTON
from clickos.elements.ip.common import push_runs
from clickos.packet.batch import PacketBatch

try:  # pragma: no cover - exercised only where the package is missing
    import hyperscan as _hs
except ImportError:  # pragma: no cover
    _hs = None


def _pattern_bytes(arg: str) -> bytes:
    """One configuration argument as pattern bytes: quotes and backslash escapes
    (``"\\x00"``, ``\\<0d 0a>``) are removed, other text is taken as written."""
    return unquote(arg).encode("latin-1", "replace")


class _Matcher(Element):
    """Shared machinery: pattern list, Hyperscan database, per-packet scan."""

    register = False
    port_count = "1/1-2"
    processing = "a/ah"
    literal = True
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.patterns: list[bytes] = []
        self.matches = 0
        self._db: Any = None
        self._marks = bytearray()

    # -- patterns -------------------------------------------------------------------------
    def _compile(self, patterns: list[bytes]) -> Any:
        """A Hyperscan database for ``patterns`` (None when there are none); raises
        ConfigError with Hyperscan's message for a bad pattern."""
        if _hs is None:
            raise ConfigError("the 'hyperscan' Python package is not installed")
        if not patterns:
            return None
        db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        flags = _hs.HS_FLAG_SINGLEMATCH
        if not self.literal:
            flags |= _hs.HS_FLAG_DOTALL
        try:
            db.compile(expressions=patterns, ids=list(range(len(patterns))), elements=len(patterns),
                       flags=flags, literal=self.literal)
        except _hs.error as ex:  # type: ignore[attr-defined]
            raise ConfigError(f"bad pattern: {ex}") from None
        return db

    def set_patterns(self, args: list[str]) -> None:
        patterns = [_pattern_bytes(a) for a in args if a != ""]
        if self.literal and any(not p for p in patterns):
            raise ConfigError("empty pattern")
        db = self._compile(patterns)
        self.patterns, self._db = patterns, db

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.set_patterns(conf)

    # -- scanning -------------------------------------------------------------------------
    def _mark(self, pid: int, start: int, end: int, flags: int, ctx: Any) -> None:
        self._marks[ctx] = 1

    def matched(self, batch: PacketBatch) -> np.ndarray:
        """A boolean array: which packets of ``batch`` contain a pattern."""
        n = len(batch)
        db = self._db
        if db is None:
            return np.zeros(n, bool)
        pool = batch.pool
        idx = batch.idx
        width = pool.slot_size
        flat = memoryview(pool.data.reshape(-1))
        starts = (idx.astype(np.int64) * width + pool.off[idx]).tolist()
        ends = (np.asarray(starts, np.int64) + pool.length[idx]).tolist()
        self._marks = marks = bytearray(n)
        scan = db.scan
        cb = self._mark
        for k in range(n):
            scan(flat[starts[k]: ends[k]], match_event_handler=cb, context=k)
        return np.frombuffer(marks, np.uint8).astype(bool)

    def push(self, port: int, batch: PacketBatch) -> None:
        hit = self.matched(batch)
        nhit = int(hit.sum())
        if not nhit:
            self.outputs[0].push(batch)
            return
        self.matches += nhit
        ports = np.where(hit, 1 if len(self.outputs) > 1 else -1, 0)
        push_runs(self, batch, ports)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        batch = self.inputs[0].pull(max)
        if batch is None:
            return None
        hit = self.matched(batch)
        if not hit.any():
            return batch
        self.matches += int(hit.sum())
        self.checked_output_push(1, PacketBatch(batch.pool, batch.idx[hit]))
        return batch.take(~hit)

    # -- handlers ---------------------------------------------------------------------------
    def add_handlers(self) -> None:
        self.add_read_handler("matches", lambda: self.matches)
        self.add_read_handler("patterns", lambda: "".join(quote(p.decode("latin-1")) + "\n"
                                                          for p in self.patterns))

        def write_patterns(value: str, errh: ErrorHandler) -> None:
            self.set_patterns(split_args(value))

        self.add_write_handler("patterns", write_patterns)

        def reset(value: str, errh: ErrorHandler) -> None:
            self.matches = 0

        self.add_write_handler("reset_count", reset, BUTTON)


class StringMatcher(_Matcher):
    """StringMatcher(PATTERN_1, ..., PATTERN_N)

    Diverts packets that contain any of the given byte strings.

    Each packet's bytes (from its current data start, e.g. the Ethernet header
    if it is still there) are searched for every PATTERN at once; packets that
    contain at least one go to output 1, or are dropped when there is no output
    1, and the rest go to output 0.  A PATTERN is taken literally; quote it to
    keep spaces or commas, and use backslash escapes (``"\\r\\n"``,
    ``"\\<de ad be ef>"``) for arbitrary bytes.

    The patterns are compiled into one Hyperscan database, so the cost of a
    scan hardly depends on how many there are.

    Handlers:

    - ``matches`` (read): how many packets matched so far.
    - ``patterns`` (read/write): the patterns, one quoted string per line;
      writing a new comma-separated list replaces them at once (a bad list
      leaves the old one in place).
    - ``reset_count`` (write): set ``matches`` to 0.

    Example::

        FromDevice(eth0) -> sm :: StringMatcher("/etc/passwd", "cmd.exe")
            -> Queue -> ToDevice(eth1);
        sm[1] -> Print(alert) -> Discard;
    """

    literal = True


class RegexMatcher(_Matcher):
    """RegexMatcher(PATTERN_1, ..., PATTERN_N)

    Diverts packets whose bytes match any of the given regular expressions.

    Like StringMatcher, but each PATTERN is a regular expression in Hyperscan's
    (PCRE-like) syntax: classes, repetition, alternation, anchors and inline
    modifiers such as ``(?i)``; back-references and lookaround are not
    supported.  ``.`` also matches newline bytes.  Matching packets go to
    output 1 (or are dropped when there is no output 1), others to output 0.
    The search covers the packet from its current data start.

    Handlers: ``matches``, ``patterns`` (read/write, as for StringMatcher; a
    pattern that does not compile is reported and the old set kept) and
    ``reset_count``.

    Example::

        c :: Classifier(12/0800, -);
        c[0] -> Strip(14) -> CheckIPHeader
            -> rm :: RegexMatcher("GET /[^ ]*\\.php", "(?i)union\\s+select")
            -> Discard;
        rm[1] -> Print(suspicious) -> Discard;
    """

    literal = False
