"""numba kernels for the filtering and load-balancing elements.

- ``ipfilter_match`` runs an IPFilter/IPClassifier decision program over a batch.
- ``hash_switch`` picks HashSwitch outputs.
- ``random_sample`` draws RandomSample's per-packet coin flips.

Decision programs address packet bytes in a *virtual* offset space, as Click's
IPFilter does: offsets below 256 are relative to the MAC header annotation
(minus two, so an Ethernet header's fields are word aligned), offsets 256-511
to the network header, and offsets from 512 on to the transport header.  A
packet's virtual length is ``512 + transport length`` when it has bytes past
its IP header, and ``256 + network length`` otherwise, so a transport test on a
packet without a transport header always counts as short.

A test whose masked bytes run past the virtual length takes its "short" branch
(its yes branch if the test's short flag is set, else its no branch).  Bytes
outside the packet's slot read as zero, so no offset can fault.

Imported lazily from the elements' ``initialize``; compiled with ``cache=True``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_jit = nb.njit(cache=True, nogil=True, boundscheck=False)

OFFSET_NET = 256
OFFSET_TRANSP = 512


# columns of a decision program array (one row per step)
(P_BASE, P_REL, P_WIDTH, P_NEED, P_YES, P_NO, P_SHORT, P_MASK, P_VALUE, P_NVALUES,
 P_VALUES) = range(11)
NCOLS = 11


@_jit
def _read(data: np.ndarray, s: int, a: int, width: int, rowlen: int) -> int:
    """The big-endian ``width``-byte field at ``data[s, a:]``, where bytes outside
    the row read as 0 (the slow path for odd header annotations)."""
    v = 0
    for i in range(width):
        v <<= 8
        j = a + i
        if 0 <= j < rowlen:
            v |= np.int64(data[s, j])
    return v


@_jit
def _any_value(prog: np.ndarray, first: int, nv: int, w: int) -> bool:
    """Whether ``w`` is one of the ``nv`` values listed from row ``first`` (sorted,
    and searched by bisection, when there are seven or more)."""
    if nv < 7:
        for j in range(nv):
            if prog[first + j, 0] == w:
                return True
        return False
    lo = first
    hi = first + nv
    while lo < hi:
        mid = (lo + hi) >> 1
        v = prog[mid, 0]
        if v == w:
            return True
        if v < w:
            lo = mid + 1
        else:
            hi = mid
    return False


@_jit
def ipfilter_match(data: np.ndarray, off: np.ndarray, length: np.ndarray, mac: np.ndarray,
                   nh: np.ndarray, th: np.ndarray, idx: np.ndarray, prog: np.ndarray,
                   out: np.ndarray) -> int:
    """Classify every packet of ``idx``; ``out[k]`` gets its output port (-1 = drop).

    ``prog`` has one int64 row per step (see ``FilterProgram.array``): which header
    the test reads (0 MAC, 1 network, 2 transport), the byte offset from that
    header's start, how many bytes it reads (1, 2 or 4), the virtual length the
    test needs (0 for an empty mask), the yes and no targets (> 0: a step; <= 0:
    output ``-target``; -(2**31-1): drop), the short flag, mask and value (aligned
    to the bytes read), and the number of values.  A step with several values
    succeeds if the masked field equals any of them; they are listed (in column 0)
    in the rows from the one its last column names, sorted when there are seven or
    more.  Returns the common port when every packet went to the same one, else -2.
    """
    rowlen = data.shape[1]
    common = -3
    for k in range(idx.shape[0]):
        s = idx[k]
        start = np.int64(off[s])
        end = start + length[s]
        n = np.int64(nh[s])
        if n < 0:
            n = start
        t = np.int64(th[s])
        if t < 0:
            t = n + 20
            if n < end and n < rowlen:
                t = n + ((np.int64(data[s, n]) & 15) << 2)
        m = np.int64(mac[s])
        if m < 0:
            m = n - 14
        netlen = end - n
        if netlen > t - n:
            plen = end - t + OFFSET_TRANSP
        else:
            plen = netlen + OFFSET_NET
        pos = 0
        while True:
            if prog[pos, P_NEED] > plen:
                ok = prog[pos, P_SHORT] != 0
            else:
                b = prog[pos, P_BASE]
                if b == 2:
                    a = t + prog[pos, P_REL]
                elif b == 1:
                    a = n + prog[pos, P_REL]
                else:
                    a = m + prog[pos, P_REL]
                wd = prog[pos, P_WIDTH]
                if a < 0 or a + wd > rowlen:
                    w = _read(data, s, a, wd, rowlen)
                elif wd == 1:
                    w = np.int64(data[s, a])
                elif wd == 2:
                    w = (np.int64(data[s, a]) << 8) | np.int64(data[s, a + 1])
                else:
                    w = ((np.int64(data[s, a]) << 24) | (np.int64(data[s, a + 1]) << 16)
                         | (np.int64(data[s, a + 2]) << 8) | np.int64(data[s, a + 3]))
                w &= prog[pos, P_MASK]
                nv = prog[pos, P_NVALUES]
                if nv <= 1:
                    ok = w == prog[pos, P_VALUE]
                else:
                    ok = _any_value(prog, prog[pos, P_VALUES], nv, w)
            nxt = prog[pos, P_YES] if ok else prog[pos, P_NO]
            if nxt <= 0:
                port = -1 if nxt == -2147483647 else -nxt
                out[k] = port
                if common == -3:
                    common = port
                elif common != port:
                    common = -2
                break
            pos = nxt
    return common


@_jit
def hash_switch(data: np.ndarray, off: np.ndarray, length: np.ndarray, idx: np.ndarray,
                offset: int, nbytes: int, noutputs: int, out: np.ndarray) -> int:
    """HashSwitch's choice for each packet: the byte sum of ``[offset, offset+nbytes)``
    folded onto the outputs (short packets go to output 0).  Returns the common
    port, or -2 when packets went to different ports."""
    common = -3
    pow2 = noutputs == 2 or noutputs == 4 or noutputs == 8
    for k in range(idx.shape[0]):
        s = idx[k]
        port = 0
        base = np.int64(off[s]) + offset
        if length[s] >= offset + nbytes and base >= 0 and base + nbytes <= data.shape[1]:
            d = 0
            for i in range(nbytes):
                d += np.int64(data[s, base + i])
            if pow2:
                port = (d ^ (d >> 4)) & (noutputs - 1)
            else:
                port = d % noutputs
        out[k] = port
        if common == -3:
            common = port
        elif common != port:
            common = -2
    return common


def warm() -> None:
    """Compile (or load from cache) the kernels once."""
    data = np.zeros((2, 64), np.uint8)
    z = np.zeros(2, np.int32)
    idx = np.zeros(1, np.int32)
    out = np.zeros(1, np.int64)
    prog = np.zeros((1, NCOLS), np.int64)
    ipfilter_match(data, z, z, z - 1, z - 1, z - 1, idx, prog, out)
    hash_switch(data, z, z, idx, 0, 1, 2, out)


# -- specialized kernels -----------------------------------------------------------------------
#
# A hot IPFilter can swap the table interpreter above for a kernel generated for
# its own program: the same logic with every offset, mask, value and jump
# written in as a constant (a switch over steps instead of table loads).  The
# generated source goes to a cache directory under a name derived from the
# program, so numba's on-disk cache makes later runs load it in milliseconds.
# Anything that goes wrong (no writable directory, compile errors) leaves the
# interpreter in place.

MAX_SPECIALIZED_STEPS = 48
_specialized: dict[bytes, object] = {}


def _step_source(prog: np.ndarray, i: int, ind: str, checked: bool = True) -> list[str]:
    base, rel, width, need, yes, no, short, mask, value, nv, first = (int(x) for x in prog[i, :NCOLS])
    hdr = ("m", "n", "t")[base]
    if width == 1:
        fast = "np.int64(data[s, a])"
    elif width == 2:
        fast = "(np.int64(data[s, a]) << 8) | np.int64(data[s, a + 1])"
    else:
        fast = ("(np.int64(data[s, a]) << 24) | (np.int64(data[s, a + 1]) << 16)"
                " | (np.int64(data[s, a + 2]) << 8) | np.int64(data[s, a + 3])")
    if nv <= 1:
        test = f"(w & {mask}) == {value}"
    else:
        vals = [int(prog[first + j, 0]) for j in range(nv)]
        test = f"(w & {mask}) in ({', '.join(str(v) for v in vals)},)"
    read = [f"{ind}    a = {hdr} + {rel}"]
    if checked:
        read += [f"{ind}    if a < 0 or a + {width} > rowlen:",
                 f"{ind}        w = _read(data, s, a, {width}, rowlen)",
                 f"{ind}    else:",
                 f"{ind}        w = {fast}"]
    else:
        read += [f"{ind}    w = {fast}"]
    return [f"{ind}if plen < {need}:", f"{ind}    ok = {bool(short)}", f"{ind}else:"] + read + [
        f"{ind}    ok = {test}",
        f"{ind}nxt = {yes} if ok else {no}",
    ]


def header_source(ind: str) -> list[str]:
    """Source computing, for slot ``s``, the header positions a program's tests
    read (``m``, ``n``, ``t``: MAC, network, transport) and the packet's virtual
    length ``plen``, as ``ipfilter_match`` does; shared by the specialised
    kernels and the fused paths' IPFilter step."""
    return [f"{ind}{line}" for line in (
        "start = np.int64(off[s])",
        "end = start + length[s]",
        "n = np.int64(nh[s])",
        "if n < 0:",
        "    n = start",
        "t = np.int64(th[s])",
        "if t < 0:",
        "    t = n + 20",
        "    if n < end and n < rowlen:",
        "        t = n + ((np.int64(data[s, n]) & 15) << 2)",
        "m = np.int64(mac[s])",
        "if m < 0:",
        "    m = n - 14",
        "if end - n > t - n:",
        f"    plen = end - t + {OFFSET_TRANSP}",
        "else:",
        f"    plen = end - n + {OFFSET_NET}",
    )]


_MAX_TREE_LINES = 4000


def _tree_source(prog: np.ndarray, step: int, ind: str, budget: list[int],
                 checked: bool = True) -> list[str] | None:
    """Nested-conditional source deciding ``port`` from ``step`` on, or None if
    unfolding the program into a tree would be too large.  Without ``checked``
    the reads skip the bounds checks (for packets known to be in range)."""
    if budget[0] > _MAX_TREE_LINES or len(ind) > 160:
        return None
    body = _step_source(prog, step, ind, checked)[:-1]  # up to the choice of target
    branches: list[list[str]] = []
    for target in (int(prog[step, P_YES]), int(prog[step, P_NO])):
        if target <= 0:
            branches.append([f"{ind}    port = {-1 if target == -2147483647 else -target}"])
            continue
        sub = _tree_source(prog, target, ind + "    ", budget, checked)
        if sub is None:
            return None
        branches.append(sub)
    budget[0] += len(body) + 4
    return body + [f"{ind}if ok:"] + branches[0] + [f"{ind}else:"] + branches[1]


def specialize(prog: np.ndarray) -> object | None:
    """A kernel with ``ipfilter_match``'s arguments and results, compiled for the
    program table ``prog`` alone; None if it cannot be made."""
    from clickos.packet import codegen

    nsteps = int(np.count_nonzero(prog[:, P_NVALUES]))
    if nsteps == 0 or nsteps > MAX_SPECIALIZED_STEPS:
        return None
    key = prog.tobytes()
    if key in _specialized:
        return _specialized[key]
    kernel = None
    try:
        lines = [
            '"""Generated by clickos.packet.filterkernels.specialize; safe to delete."""',
            "import numba as nb",
            "import numpy as np",
            "from clickos.packet.filterkernels import _read",
            "",
            "",
            "@nb.njit(cache=True, nogil=True, boundscheck=False)",
            "def match(data, off, length, mac, nh, th, idx, prog, out):",
            "    rowlen = data.shape[1]",
            "    common = -3",
            "    for k in range(idx.shape[0]):",
            "        s = idx[k]",
            *header_source(" " * 8),
            "        pos = 0",
            "        while True:",
        ]
        tree = _tree_source(prog, 0, " " * 12, [0], True)
        fast = _tree_source(prog, 0, " " * 12, [0], False)
        if tree is not None and fast is not None:
            # the program as nested conditionals (its DAG unfolded into a tree), in
            # two copies: without bounds checks when every field read lies inside
            # the packet's slot, and with them otherwise
            reach = {}
            for i in range(nsteps):
                b = int(prog[i, P_BASE])
                end = int(prog[i, P_REL]) + int(prog[i, P_WIDTH])
                lo = min(int(prog[i, P_REL]), 0)
                old_lo, old_end = reach.get(b, (0, 0))
                reach[b] = (min(old_lo, lo), max(old_end, end))
            conds = [f"{('m', 'n', 't')[b]} + {lo} >= 0 and {('m', 'n', 't')[b]} + {end} <= rowlen"
                     for b, (lo, end) in sorted(reach.items())]
            lines[-2:] = [f"        if {' and '.join(conds)}:"] + fast + ["        else:"] + tree + [
                "        out[k] = port",
                "        if common == -3:",
                "            common = port",
                "        elif common != port:",
                "            common = -2",
                "    return common",
                "",
            ]
        else:
            for i in range(nsteps):
                lines.append(f"            {'if' if i == 0 else 'elif'} pos == {i}:")
                lines.extend(_step_source(prog, i, " " * 16))
            lines += [
                "            else:",
                "                nxt = -2147483647",
                "            if nxt <= 0:",
                "                port = -1 if nxt == -2147483647 else -nxt",
                "                out[k] = port",
                "                if common == -3:",
                "                    common = port",
                "                elif common != port:",
                "                    common = -2",
                "                break",
                "            pos = nxt",
                "    return common",
                "",
            ]
        source = "\n".join(lines)
        path, name = codegen.write_source("ipfilter", "ipf", source)
        kernel = codegen.import_file(path, name).match
        # compile (or load) now, on a one-packet dummy batch
        data = np.zeros((1, 64), np.uint8)
        z = np.zeros(1, np.int32)
        kernel(data, z, z, z - 1, z - 1, z - 1, z, prog, np.zeros(1, np.int64))
    except Exception:  # noqa: BLE001 - any failure just keeps the interpreter
        kernel = None
    _specialized[key] = kernel
    return kernel
