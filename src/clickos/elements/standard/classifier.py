"""Classifier: sends packets to outputs by matching bytes against patterns.

The patterns compile to a *decision program*, the shape Click uses: a list of
tests, each comparing one aligned 4-byte word of the packet (under a mask)
with a value, and naming the next test (or an output) for "yes" and for "no".
A test whose masked bytes run past the end of the packet takes its "no"
branch (its ``short`` branch, in general).  After building the straightforward
program, two passes of our own shrink it: patterns that can never match are
dropped, and every branch is threaded past tests whose outcome the facts
known on that branch already decide (so ``12/0806 20/0001, 12/0806 20/0002``
tests word 12 once).  Unreachable tests are then removed.

The program runs in a numba kernel over a whole batch, producing one output
port per packet; the batch is then split by port (or pushed in
order-preserving runs when something downstream could see the difference).  ``Program`` and
``parse_patterns`` are usable by other classifier elements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.core.handlers import CALM
from clickos.elements.standard.basic import compute_split_ok, push_ports
from clickos.packet.batch import PacketBatch

# Jump targets: > 0 is a test index, <= 0 is output -j.  These three are special.
J_NEVER = -2147483647   # drop the packet
J_FAILURE = J_NEVER + 1  # placeholders while building
J_SUCCESS = J_NEVER + 2
DROP_PORT = -J_NEVER

Word = tuple[int, int, int, int]


@dataclass
class Insn:
    """One test: ``(packet[offset:offset+4] & mask) == value``.

    ``offset`` includes the alignment offset; ``yes``/``no`` are jump targets;
    when a masked byte lies past the packet end the test goes to
    ``yes if short else no``.
    """

    offset: int
    mask: Word
    value: Word
    yes: int = J_SUCCESS
    no: int = J_FAILURE
    short: bool = False

    def required_length(self) -> int:
        """Bytes of packet (from the aligned start) this test needs: 0 if its mask is empty."""
        for b in (3, 2, 1, 0):
            if self.mask[b]:
                return self.offset + b + 1
        return 0

    def target(self, outcome: bool) -> int:
        return self.yes if outcome else self.no

    def key(self) -> tuple[int, Word, Word, bool]:
        return (self.offset, self.mask, self.value, self.short)


def _jump_text(j: int) -> str:
    if j <= J_SUCCESS:
        return "[" + "X-+"[j - J_NEVER] + "]"
    if j <= 0:
        return f"[{-j}]"
    return f"step {j}"


@dataclass
class Program:
    """A decision program (see the module docstring)."""

    align_offset: int = 0
    insns: list[Insn] = field(default_factory=list)
    output_everything: int = -1  # >= 0: every packet goes to this output; no tests
    safe_length: int = 0

    # -- running ---------------------------------------------------------------------
    def arrays(self) -> np.ndarray:
        """The program as one int64 array for the kernel, a row per test:
        offset, required length (the test is "short" below it), mask and value as
        big-endian 32-bit words, yes, no, short."""
        n = max(len(self.insns), 1)
        code = np.zeros((n, 7), np.int64)
        for i, ins in enumerate(self.insns):
            code[i] = (ins.offset, ins.required_length(), int.from_bytes(bytes(ins.mask), "big"),
                       int.from_bytes(bytes(ins.value), "big"), ins.yes, ins.no, int(ins.short))
        return code

    def match_bytes(self, data: bytes) -> int:
        """The output for one packet given as bytes (a slow reference path)."""
        if self.output_everything >= 0:
            return self.output_everything
        a = self.align_offset
        plen = len(data) + a
        pos = 0
        while True:
            ins = self.insns[pos]
            short = any(ins.mask[b] and ins.offset + b >= plen for b in range(4))
            if short:
                pos = ins.target(ins.short)
            else:
                ok = all((data[ins.offset + b - a] & ins.mask[b]) == ins.value[b]
                         for b in range(4) if ins.mask[b])
                pos = ins.target(ok)
            if pos <= 0:
                return -pos

    # -- text ------------------------------------------------------------------------
    def unparse(self) -> str:
        """The program listing that Classifier's ``program`` handler prints."""
        lines = []
        for i, ins in enumerate(self.insns):
            hexv = "".join(f"{b:02x}" for b in ins.value)
            hexm = "".join(f"{b:02x}" for b in ins.mask)
            text = (f"{' ' if i < 10 else ''}{i} {ins.offset - self.align_offset:3d}/{hexv}%{hexm}"
                    f"  yes->{_jump_text(ins.yes)}  no->{_jump_text(ins.no)}")
            if ins.short:
                text += "  short->yes"
            lines.append(text)
        if not self.insns:
            lines.append(f"all->[{self.output_everything}]")
        lines.append(f"safe length {self.safe_length}")
        lines.append(f"alignment offset {self.align_offset}")
        return "\n".join(lines) + "\n"

    def used_outputs(self, noutputs: int) -> list[bool]:
        used = [False] * noutputs
        if 0 <= self.output_everything < noutputs:
            used[self.output_everything] = True
        else:
            for ins in self.insns:
                for j in (ins.yes, ins.no):
                    if j <= 0 and -j < noutputs:
                        used[-j] = True
        return used

    def warn_unused_outputs(self, noutputs: int, errh: ErrorHandler) -> None:
        for i, u in enumerate(self.used_outputs(noutputs)):
            if not u:
                errh.warning(f"output {i} matches no packets")


# -- parsing ------------------------------------------------------------------------------

@dataclass
class Clause:
    """``[!]OFFSET/VALUE[%MASK]`` as words: (aligned offset, mask, value) each."""

    negated: bool
    words: list[tuple[int, Word, Word]]


def _nibble(c: str) -> tuple[int, int]:
    """(value, mask) of one hex digit or ``?``."""
    if c == "?":
        return 0, 0
    return int(c, 16), 0xF


def _is_hex(c: str) -> bool:
    return c in "0123456789abcdefABCDEF?"


def parse_pattern(text: str, slot: int, align_offset: int, errors: list[str]) -> list[Clause]:
    """Parse one Classifier pattern into clauses; problems are appended to ``errors``.

    ``-`` (alone) and the empty pattern match every packet (no clauses).
    """
    s = text
    n = len(s)
    i = 1 if s == "-" else 0
    clauses: list[Clause] = []
    while i < n:
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            break
        negated = False
        if s[i] == "!":
            negated = True
            i += 1
            while i < n and s[i].isspace():
                i += 1
        if i >= n or not s[i].isdigit():
            errors.append(f"pattern {slot}: expected a digit")
            break
        start = i
        while i < n and s[i].isdigit():
            i += 1
        offset = int(s[start:i])
        if i >= n or s[i] != "/":
            errors.append(f"pattern {slot}: expected '/'")
            break
        i += 1
        vpos = i
        while i < n and _is_hex(s[i]):
            i += 1
        vend = i
        mpos = mend = -1
        if i < n and s[i] == "%":
            i += 1
            mpos = i
            while i < n and _is_hex(s[i]):
                i += 1
            mend = i
        vlen = vend - vpos
        if vlen < 2:
            errors.append(f"pattern {slot}: value has less than 2 hex digits")
            vend, mend = vpos, mpos
            vlen = 0
        if vlen % 2:
            errors.append(f"pattern {slot}: value has odd number of hex digits")
            vend -= 1
            mend -= 1
            vlen -= 1
        if mpos >= 0 and mend - mpos != vlen:
            too_many = mend - mpos > vlen
            errors.append(f"pattern {slot}: mask has too {'many' if too_many else 'few'} hex digits")
            if too_many:
                mend = mpos + vlen
            else:
                vend = vpos + (mend - mpos)
        words: list[tuple[int, list[int], list[int]]] = []
        pos = offset + align_offset
        first = True
        for k in range(vpos, vend - 1, 2):
            hv, hm = _nibble(s[k])
            lv, lm = _nibble(s[k + 1])
            v, m = (hv << 4) | lv, (hm << 4) | lm
            if mpos >= 0:
                j = mpos + (k - vpos)
                mhv, mhm = _nibble(s[j])
                mlv, mlm = _nibble(s[j + 1])
                m &= ((mhv << 4) | mlv) & ((mhm << 4) | mlm)
            if first or pos % 4 == 0:
                words.append(((pos // 4) * 4, [0, 0, 0, 0], [0, 0, 0, 0]))
                first = False
            words[-1][1][pos % 4] = m
            words[-1][2][pos % 4] = v & m
            pos += 1
        clauses.append(Clause(negated, [(o, tuple(m), tuple(v)) for o, m, v in words]))  # type: ignore[misc]
    return clauses


def parse_patterns(conf: list[str], align_offset: int = 0) -> tuple[list[list[Clause]], list[str]]:
    """All patterns' clauses, and the error lines (Click's texts) in order."""
    errors: list[str] = []
    pats = [parse_pattern(text, slot, align_offset, errors) for slot, text in enumerate(conf)]
    return pats, errors


# -- compiling ----------------------------------------------------------------------------

def _merge_positive(words: list[tuple[int, Word, Word]]) -> list[tuple[int, Word, Word]] | None:
    """AND together positive word tests on the same offset; None if they contradict."""
    out: list[tuple[int, list[int], list[int]]] = []
    where: dict[int, int] = {}
    for off, m, v in words:
        k = where.get(off)
        if k is None:
            where[off] = len(out)
            out.append((off, list(m), list(v)))
            continue
        _, om, ov = out[k]
        for b in range(4):
            both = om[b] & m[b]
            if (ov[b] ^ v[b]) & both:
                return None
            ov[b] = (ov[b] & om[b]) | (v[b] & m[b])
            om[b] |= m[b]
    return [(o, tuple(m), tuple(v)) for o, m, v in out]  # type: ignore[misc]


def _pattern_tests(clauses: list[Clause], keep_first: bool = False
                   ) -> list[tuple[bool, list[tuple[int, Word, Word]]]] | None:
    """The pattern as (negated, word tests) groups, in clause order.

    Each run of consecutive positive clauses becomes one group whose tests on
    the same word are merged, sorted by offset (then mask, value); runs of
    single-test negations are sorted the same way.  ``keep_first`` leaves the
    pattern's first test in front, as Click's sort does for the program's first
    test.  Tests with an empty mask always pass and are left out.  Returns None
    when the pattern can never match (contradictory tests in one run, or a
    negated clause that every packet satisfies).
    """
    groups: list[tuple[bool, list[tuple[int, Word, Word]]]] = []
    run: list[tuple[int, Word, Word]] = []
    first_offset: int | None = None

    def flush() -> bool:
        if run:
            merged = _merge_positive(run)
            if merged is None:
                return False
            groups.append((False, merged))
            run.clear()
        return True

    for c in clauses:
        words = [w for w in c.words if any(w[1])]
        if first_offset is None and words:
            first_offset = words[0][0] if not groups and not run else -1
        if c.negated:
            if not flush() or not words:
                return None
            groups.append((True, words))
        else:
            run.extend(words)
    if not flush():
        return None
    fixed = keep_first and first_offset is not None and first_offset >= 0
    out: list[tuple[bool, list[tuple[int, Word, Word]]]] = []
    for gi, (negated, words) in enumerate(groups):
        if not negated:
            ordered = sorted(words, key=_test_order)
            if fixed and gi == 0:
                head = next(w for w in words if w[0] == first_offset)
                ordered = [head] + [w for w in ordered if w is not head]
            out.append((False, ordered))
            continue
        # a single-test negation moves back past earlier single-test negations
        k = len(out)
        if len(words) == 1:
            while (k > 0 and out[k - 1][0] and len(out[k - 1][1]) == 1
                   and not (fixed and k - 1 == 0)
                   and _test_order(out[k - 1][1][0]) > _test_order(words[0])):
                k -= 1
        out.insert(k, (True, words))
    return out


def _test_order(w: tuple[int, Word, Word]) -> tuple[int, bytes, bytes]:
    """Sort key for tests that may run in any order: offset, then mask, then value."""
    return (w[0], bytes(w[1]), bytes(w[2]))


Fact = tuple[int, Word, Word, bool]


def _decide(ins: Insn, facts: frozenset[Fact]) -> bool | None:
    """The outcome of ``ins`` if the known facts determine it, else None."""
    if not any(ins.mask):
        return True
    for off, m, v, truth in facts:
        if off != ins.offset:
            continue
        if truth:
            # The packet holds bytes v under mask m (and those bytes exist).
            if all((ins.mask[b] & ~m[b]) == 0 for b in range(4)) and all(
                    ins.value[b] == (v[b] & ins.mask[b]) for b in range(4)):
                return True
            if any((ins.value[b] ^ v[b]) & ins.mask[b] & m[b] for b in range(4)) and not (
                    ins.short and any(ins.mask[b] and not m[b] for b in range(4))):
                return False
        else:
            # A test asking for at least as much as a failed test fails too.
            if all((m[b] & ~ins.mask[b]) == 0 for b in range(4)) and all(
                    v[b] == (ins.value[b] & m[b]) for b in range(4)) and not ins.short:
                return False
    return None


def compile_patterns(patterns: list[list[Clause]], align_offset: int = 0) -> Program:
    """Build and optimize the decision program for Classifier patterns (first match wins)."""
    prog = Program(align_offset)
    # Test 0 is a placeholder that always passes; its branches become the entry point.
    insns: list[Insn] = [Insn(0, (0, 0, 0, 0), (0, 0, 0, 0))]
    entries: list[int | None] = []  # per pattern: first test or output; None if it never matches
    fail_of: list[tuple[Insn, bool, int]] = []  # branches meaning "pattern p failed"
    for p, clauses in enumerate(patterns):
        groups = _pattern_tests(clauses, keep_first=p == 0)
        if groups is None:
            entries.append(None)
            continue
        if not groups:
            entries.append(-p)
            continue
        entries.append(len(insns))
        for g, (negated, words) in enumerate(groups):
            group_start = len(insns)
            group_end = group_start + len(words)
            after = -p if g == len(groups) - 1 else group_end
            for w, (off, m, v) in enumerate(words):
                ins = Insn(off, m, v)
                last = group_start + w + 1 == group_end
                if negated:
                    # all words match -> the clause holds -> the pattern fails
                    ins.no = after
                    if last:
                        fail_of.append((ins, True, p))
                    else:
                        ins.yes = group_start + w + 1
                else:
                    ins.yes = after if last else group_start + w + 1
                    fail_of.append((ins, False, p))
                insns.append(ins)

    def next_entry(p: int) -> int:
        for e in entries[p + 1:]:
            if e is not None:
                return e
        return J_NEVER

    for ins, branch, p in fail_of:
        if branch:
            ins.yes = next_entry(p)
        else:
            ins.no = next_entry(p)
    insns[0].yes = insns[0].no = next_entry(-1)
    _thread(insns)
    start = insns[0].yes
    if start <= 0:
        prog.output_everything = DROP_PORT if start == J_NEVER else -start
        return prog
    order = sorted(_reachable(insns, start))
    newidx = {old: new for new, old in enumerate(order)}

    def remap(j: int) -> int:
        return newidx[j] if j > 0 else j

    prog.insns = [Insn(insns[o].offset, insns[o].mask, insns[o].value, remap(insns[o].yes),
                       remap(insns[o].no), insns[o].short) for o in order]
    prog.safe_length = max(i.required_length() for i in prog.insns) - align_offset
    return prog


def _reachable(insns: list[Insn], start: int) -> set[int]:
    seen: set[int] = set()
    stack = [start] if start > 0 else []
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        for j in (insns[i].yes, insns[i].no):
            if j > 0 and j not in seen:
                stack.append(j)
    return seen


def _thread(insns: list[Insn]) -> None:
    """Redirect branches past tests whose outcome is already known on that branch.

    Jumps only go forward, so processing tests in index order sees every
    predecessor's final branches before a test's own known facts are computed
    (the facts true on *every* path into it).
    """
    n = len(insns)
    known: list[frozenset[Fact] | None] = [None] * n
    known[0] = frozenset()
    for i in range(n):
        facts = known[i]
        if facts is None:
            continue  # unreachable
        ins = insns[i]
        for outcome in (True, False):
            f = set(facts)
            if i > 0:
                f.add((ins.offset, ins.mask, ins.value, outcome))
            t = ins.target(outcome)
            seen = 0
            while t > 0 and seen < n:
                tt = insns[t]
                seen += 1
                if tt.yes == tt.no:
                    t = tt.yes
                    continue
                d = _decide(tt, frozenset(f))
                if d is None:
                    break
                f.add((tt.offset, tt.mask, tt.value, d))
                t = tt.target(d)
            if outcome:
                ins.yes = t
            else:
                ins.no = t
            if t > 0:
                fr = frozenset(f)
                known[t] = fr if known[t] is None else (known[t] & fr)  # type: ignore[operator]


# -- the batch kernel -----------------------------------------------------------------------

_kernel = None


def _get_kernel():  # noqa: ANN202
    global _kernel
    if _kernel is None:
        import numba as nb

        @nb.njit(cache=True, nogil=True, boundscheck=False)
        def classify(data, off, length, idx, code, align, out):  # noqa: ANN001, ANN202
            """Write each packet's output into ``out``; return that output if all
            packets share it, else -1."""
            width = data.shape[1]
            common = -1
            for k in range(idx.shape[0]):
                s = np.uintp(idx[k])  # unsigned: no negative-index fix-ups
                base = off[s] - align
                plen = length[s] + align
                pos = 0
                while True:
                    o = code[pos, 0]
                    if code[pos, 1] > plen:
                        ok = code[pos, 6] != 0
                    else:
                        at = base + o
                        if at >= 0 and at + 4 <= width:
                            w = ((np.int64(data[s, at]) << 24) | (np.int64(data[s, at + 1]) << 16)
                                 | (np.int64(data[s, at + 2]) << 8) | np.int64(data[s, at + 3]))
                        else:  # near the slot's edge: only the bytes the mask needs
                            w = 0
                            m = code[pos, 2]
                            for b in range(4):
                                if (m >> (24 - 8 * b)) & 0xFF:
                                    w |= np.int64(data[s, at + b]) << (24 - 8 * b)
                        ok = (w & code[pos, 2]) == code[pos, 3]
                    pos = code[pos, 4] if ok else code[pos, 5]
                    if pos <= 0:
                        break
                port = -pos
                out[k] = port
                if k == 0:
                    common = port
                elif port != common:
                    common = -1
            return common

        _kernel = classify
    return _kernel


def run_program(prog: Program, batch: PacketBatch, arrays: np.ndarray | None = None) -> np.ndarray:
    """The output port of every packet of ``batch`` (DROP_PORT = drop)."""
    n = len(batch)
    if prog.output_everything >= 0:
        return np.full(n, prog.output_everything, np.int64)
    if arrays is None:
        arrays = prog.arrays()
    pool = batch.pool
    out = np.empty(n, np.int64)
    _get_kernel()(pool.data, pool.off, pool.length, batch.idx, arrays, prog.align_offset, out)
    return out


# -- the element ----------------------------------------------------------------------------

class Classifier(Element):
    """Classifier(PATTERN_1, ..., PATTERN_N)

    Sends each packet out of the output of the first pattern it matches.

    Classifier has one output per pattern.  A pattern is a space-separated
    list of clauses, all of which must hold.  A clause ``OFFSET/VALUE`` holds
    when the packet has the bytes VALUE starting at byte OFFSET; OFFSET is
    decimal and VALUE is hex, two digits per byte.  ``OFFSET/VALUE%MASK``
    compares only the bits set in MASK (same number of digits as VALUE).  A
    ``?`` digit in VALUE matches any nibble.  ``!`` before a clause negates it.
    The pattern ``-`` matches every packet.  Clauses that reach past the end
    of a packet do not hold (so their negations do).  Packets matching no
    pattern are dropped.  Put specific patterns before general ones; a warning
    says when an output can never receive a packet.

    Handlers: ``program`` (read) the decision program the patterns compiled
    to: each step tests one aligned 4-byte word under a mask, then jumps to
    another step or to an output (``[X]`` means drop).

    Example: ``Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -)`` sends
    ARP requests to output 0, ARP replies to 1, IP to 2 and the rest to 3.
    """

    port_count = "1/-"
    processing = "h"
    flags = "A"
    batch_transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.prog = Program()
        self._arrays: np.ndarray | None = None
        self._out = np.empty(0, np.int64)

    def align_offset(self) -> int:
        """Where the packet data sits relative to a 4-byte boundary (from AlignmentInfo)."""
        from clickos.elements.standard.info import alignment_query

        info = alignment_query(self, 0)
        if info is not None and info[0] >= 4:
            return (4 - info[1] % 4) % 4
        return 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        if len(conf) != self.noutputs:
            raise ConfigError(f"need {self.noutputs} arguments, one per output port")
        align = self.align_offset()
        patterns, errors = parse_patterns(conf, align)
        if errors:
            raise ConfigError("\n".join(errors))
        prog = compile_patterns(patterns, align)
        prog.warn_unused_outputs(self.noutputs, errh)
        self.prog = prog
        self._arrays = prog.arrays()

    def can_live_reconfigure(self) -> bool:
        return True

    def live_reconfigure(self, conf: list[str], errh: ErrorHandler) -> None:
        self.configure(conf, errh)

    def initialize(self, errh: ErrorHandler) -> None:
        self._split_ok = compute_split_ok(self)
        self._kernel = _get_kernel()

    def fast_step(self) -> Any:
        """Output 0's packets go on through a fused path; the others are punted."""
        from clickos.packet import fusegen

        if type(self).push is not Classifier.push:
            return None
        everything = self.prog.output_everything
        if everything == 0:
            return fusegen.Step([])
        if everything >= 0:
            return None
        return fusegen.classify(self._arrays, self.prog.align_offset)

    def add_handlers(self) -> None:
        self.add_read_handler("program", self.prog_text, CALM)

    def prog_text(self) -> str:
        return self.prog.unparse()

    def push(self, port: int, batch: PacketBatch) -> None:
        prog = self.prog
        everything = prog.output_everything
        if everything >= 0:
            self.checked_output_push(everything, batch)
            return
        idx = batch.idx
        n = idx.shape[0]
        out = self._out
        if out.shape[0] < n:
            out = self._out = np.empty(max(n, 256), np.int64)
        pool = batch.pool
        common = self._kernel(pool.data, pool.off, pool.length, idx, self._arrays, prog.align_offset, out)
        if common >= 0:
            outs = self.outputs
            if common < len(outs):
                outs[common].push(batch)
            else:
                batch.kill()
            return
        # mixed outputs: a private copy, since pushing downstream may re-enter this element
        push_ports(self, batch, out[:n].copy())
