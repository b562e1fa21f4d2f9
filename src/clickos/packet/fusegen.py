"""Source generation for fused push paths (see :mod:`clickos.core.fastpath`).

A fused path's kernel takes each packet of a batch through several elements'
common-case work in one compiled loop.  It is generated for the path's
configuration: each element contributes a *step*, a snippet of numba-Python
built by one of the functions below, with its parameters written in as
constants; the snippets run one after the other inside a per-packet block.

Snippet contract (what the generator provides and expects):

- available: ``s`` (the slot, int64), ``data`` and its flat views ``flat``,
  ``f16``, ``f32``, ``f64``, ``ncol`` (= ``rowlen``, the slot size), the pool's
  ``off``, ``length``, ``mac``, ``nh``, ``th``, ``anno``, ``ptype``;
- locals are named ``v_*`` (renamed per step) -- except IPFilter's step, which
  uses the names of ``filterkernels.header_source`` and ``_tree_source``;
- arrays a step needs are named ``A0``, ``A1``, ... (renamed per step; they
  become kernel arguments);
- a line ``PUNT`` hands the packet, untouched by this step, to the element's
  own push.  It may not sit inside a loop of the snippet.

Each step does what the named element kernel does for a packet it passes, and
punts every packet that kernel would send elsewhere or drop (those then take
the element's ordinary code).  They are written out rather than shared with
the kernels because numba charges a shared per-packet helper an atomic
reference-count update per array argument, which costs more than the work.
``tests/test_fastpath.py`` checks each step against its element.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Step:
    """One element's part of a fused kernel."""

    lines: list[str]
    arrays: tuple[np.ndarray, ...] = field(default_factory=tuple)


def strip(n: int) -> Step:
    """Strip(n) (``modify`` kernel ``pull``): short packets are punted (Strip reports them)."""
    return Step([
        f"if length[s] < {n}:",
        "    PUNT",
        f"off[s] += {n}",
        f"length[s] -= {n}",
    ])


def unstrip(n: int) -> Step:
    """Unstrip(n) (``modify`` kernel ``push``): too little headroom is punted."""
    return Step([
        f"if off[s] < {n}:",
        "    PUNT",
        f"off[s] -= {n}",
        f"length[s] += {n}",
    ])


def check_ip(offset: int, checksum: bool) -> Step:
    """CheckIPHeader without source address lists (``netkernels.check_ip_header``):
    bad headers are punted (the element counts, reports and diverts them)."""
    lines = [
        f"v_plen = np.int64(length[s]) - {offset}",
        f"v_ip = np.int64(off[s]) + {offset}",
        "v_a = s * ncol + v_ip",
        "if v_plen < 20:",
        "    PUNT",
        "v_b0 = np.int64(flat[v_a])",
        "v_hlen = (v_b0 & 0xF) << 2",
        "v_iplen = (np.int64(flat[v_a + 2]) << 8) | np.int64(flat[v_a + 3])",
        "if (v_b0 >> 4) != 4 or v_hlen < 20 or v_iplen > v_plen or v_iplen < v_hlen:",
        "    PUNT",
    ]
    if checksum:
        lines += [
            "if (v_a & 1) == 0:",
            "    v_w = v_a >> 1",
            "    v_t = (np.int64(f16[v_w]) + np.int64(f16[v_w + 1]) + np.int64(f16[v_w + 2])",
            "           + np.int64(f16[v_w + 3]) + np.int64(f16[v_w + 4]) + np.int64(f16[v_w + 5])",
            "           + np.int64(f16[v_w + 6]) + np.int64(f16[v_w + 7]) + np.int64(f16[v_w + 8])",
            "           + np.int64(f16[v_w + 9]))",
            "    for v_k in range(10, v_hlen >> 1):",
            "        v_t += np.int64(f16[v_w + v_k])",
            "else:",
            "    v_t = np.int64(0)",
            "    for v_k in range(0, v_hlen, 2):",
            "        v_t += (np.int64(flat[v_a + v_k]) << 8) | np.int64(flat[v_a + v_k + 1])",
            "v_t = (v_t & 0xFFFF) + (v_t >> 16)",
            "v_t = (v_t & 0xFFFF) + (v_t >> 16)",
            "if v_t != 0xFFFF:",
            "    PUNT",
        ]
    lines += [
        "nh[s] = v_ip",
        "th[s] = v_ip + v_hlen",
        "if v_plen > v_iplen:",
        "    length[s] -= v_plen - v_iplen",
        "anno[s, 0] = flat[v_a + 16]",
        "anno[s, 1] = flat[v_a + 17]",
        "anno[s, 2] = flat[v_a + 18]",
        "anno[s, 3] = flat[v_a + 19]",
    ]
    return Step(lines)


def dec_ttl(multicast: bool) -> Step:
    """DecIPTTL (``netkernels.dec_ip_ttl``): expired packets are punted."""
    cond = "True" if multicast else "(flat[v_a + 16] & 0xF0) != 0xE0"
    return Step([
        "v_ip = np.int64(nh[s])",
        "if v_ip >= 0 and v_ip + 20 <= ncol:",
        "    v_a = s * ncol + v_ip",
        f"    if {cond}:",
        "        if flat[v_a + 8] <= 1:",
        "            PUNT",
        "        flat[v_a + 8] -= 1",
        "        v_c = ((~((np.int64(flat[v_a + 10]) << 8) | np.int64(flat[v_a + 11]))) & 0xFFFF) + 0xFEFF",
        "        v_c = (~(v_c + (v_c >> 16))) & 0xFFFF",
        "        flat[v_a + 10] = v_c >> 8",
        "        flat[v_a + 11] = v_c & 0xFF",
    ])


def ether_mirror() -> Step:
    """EtherMirror (``netkernels.ether_mirror``)."""
    return Step([
        "v_o = np.int64(off[s])",
        "if v_o + 12 <= ncol:",
        "    v_a = s * ncol + v_o",
        "    if (v_a & 1) == 0:",
        "        v_w = v_a >> 1",
        "        v_t0, v_t1, v_t2 = f16[v_w], f16[v_w + 1], f16[v_w + 2]",
        "        f16[v_w] = f16[v_w + 3]",
        "        f16[v_w + 1] = f16[v_w + 4]",
        "        f16[v_w + 2] = f16[v_w + 5]",
        "        f16[v_w + 3] = v_t0",
        "        f16[v_w + 4] = v_t1",
        "        f16[v_w + 5] = v_t2",
        "    else:",
        "        for v_k in range(6):",
        "            v_b = flat[v_a + v_k]",
        "            flat[v_a + v_k] = flat[v_a + 6 + v_k]",
        "            flat[v_a + 6 + v_k] = v_b",
    ])


def ether_rewrite(hdr: bytes) -> Step:
    """EtherRewrite (``netkernels.ether_rewrite``): ``hdr`` is the 12 bytes dst + src."""
    h8 = int.from_bytes(hdr[:8], "little")
    h4 = int.from_bytes(hdr[8:12], "little")
    lines = [
        "v_o = np.int64(mac[s]) if mac[s] >= 0 else np.int64(off[s])",
        "if v_o >= 0 and v_o + 12 <= ncol:",
        "    v_a = s * ncol + v_o",
        "    if (v_a & 7) == 0:",
        f"        f64[v_a >> 3] = np.uint64({h8})",
        f"        f32[(v_a >> 2) + 2] = np.uint32({h4})",
        "    else:",
    ]
    lines += [f"        flat[v_a + {k}] = {b}" for k, b in enumerate(hdr[:12])]
    return Step(lines)


def paint(anno_offset: int, color: int) -> Step:
    """Paint."""
    return Step([f"anno[s, {anno_offset}] = {color}"])


def punt_painted(anno_offset: int, color: int) -> Step:
    """PaintTee: packets painted ``color`` are punted (PaintTee copies them)."""
    return Step([f"if anno[s, {anno_offset}] == {color}:", "    PUNT"])


def punt_ptypes(a: int, b: int) -> Step:
    """DropBroadcasts (``netkernels.ptype_verdicts``): packet types ``a`` and ``b`` are punted."""
    return Step([f"if ptype[s] == {a} or ptype[s] == {b}:", "    PUNT"])


def punt_ip_options() -> Step:
    """IPGWOptions (``netkernels.ip_options_todo``): packets with IP options are punted."""
    return Step([
        "v_ip = np.int64(nh[s])",
        "if v_ip >= 0 and v_ip < ncol:",
        "    v_hl = (np.int64(flat[s * ncol + v_ip]) & 0xF) << 2",
        "    if v_hl > 20 and v_ip + v_hl <= ncol:",
        "        PUNT",
    ])


def punt_anno_set(anno_offset: int) -> Step:
    """FixIPSrc: packets whose annotation byte is set are punted (FixIPSrc fixes them)."""
    return Step([f"if anno[s, {anno_offset}] != 0:", "    PUNT"])


def punt_too_big(mtu: int) -> Step:
    """IPFragmenter (``netkernels.count_too_big``): packets to fragment are punted."""
    return Step([
        "v_ip = np.int64(nh[s])",
        "if v_ip >= 0:",
        "    v_netlen = np.int64(off[s]) + length[s] - v_ip",
        f"    if v_netlen > {mtu} and v_netlen >= 20:",
        "        PUNT",
    ])


def classify(code: np.ndarray, align: int) -> Step:
    """A Classifier whose output 0 continues the path (its kernel in
    ``elements/standard/classifier.py``): other outputs and drops are punted."""
    return Step([
        f"v_base = np.int64(off[s]) - {align}",
        f"v_plen = np.int64(length[s]) + {align}",
        "v_pos = 0",
        "while True:",
        "    if A0[v_pos, 1] > v_plen:",
        "        v_ok = A0[v_pos, 6] != 0",
        "    else:",
        "        v_at = v_base + A0[v_pos, 0]",
        "        if v_at >= 0 and v_at + 4 <= ncol:",
        "            v_q = s * ncol + v_at",
        "            v_w = ((np.int64(flat[v_q]) << 24) | (np.int64(flat[v_q + 1]) << 16)",
        "                   | (np.int64(flat[v_q + 2]) << 8) | np.int64(flat[v_q + 3]))",
        "        else:",
        "            v_w = 0",
        "            v_m = A0[v_pos, 2]",
        "            for v_b in range(4):",
        "                if (v_m >> (24 - 8 * v_b)) & 0xFF:",
        "                    v_w |= np.int64(data[s, v_at + v_b]) << (24 - 8 * v_b)",
        "        v_ok = (v_w & A0[v_pos, 2]) == A0[v_pos, 3]",
        "    v_pos = A0[v_pos, 4] if v_ok else A0[v_pos, 5]",
        "    if v_pos <= 0:",
        "        break",
        "if v_pos != 0:",
        "    PUNT",
    ], (np.ascontiguousarray(code, np.int64),))


def ipfilter(prog: np.ndarray) -> Step | None:
    """An IPFilter/IPClassifier whose output 0 continues the path, as its
    specialised kernel decides (``filterkernels.specialize``); None when the
    program is too large to unfold."""
    from clickos.packet.filterkernels import _tree_source, header_source

    tree = _tree_source(prog, 0, "", [0], True)
    if tree is None:
        return None
    return Step(header_source("") + tree + [
        "if port != 0:",
        "    PUNT",
    ])


def kernel_source(steps: list[Step]) -> tuple[str, int]:
    """The module text of the fused kernel ``fused(data, off, length, mac, nh,
    th, anno, ptype, idx, verdict, *arrays)`` and its number of array arguments."""
    body: list[str] = []
    arrays: list[str] = []
    ind = " " * 12
    for j, step in enumerate(steps):
        names = {f"A{k}": f"a{j}_{k}" for k in range(len(step.arrays))}
        arrays += list(names.values())
        body.append(f"{ind}# step {j}")
        for line in step.lines:
            text = line.replace("v_", f"v{j}_")
            for a, b in names.items():
                text = text.replace(a + "[", b + "[")
            if text.strip() == "PUNT":
                pad = text[: len(text) - len(text.lstrip())]
                body += [f"{ind}{pad}j = {j}", f"{ind}{pad}break"]
            else:
                body.append(ind + text)
    used = "\n".join(body)
    views = ["    flat = data.reshape(-1)"]
    for name, dtype in (("f16", "uint16"), ("f32", "uint32"), ("f64", "uint64")):
        if f"{name}[" in used:
            views.append(f"    {name} = flat.view(np.{dtype})")
    nsteps = len(steps)
    lines = [
        '"""Generated by clickos.packet.fusegen for one fused push path; safe to delete."""',
        "import numba as nb",
        "import numpy as np",
        "",
        "from clickos.packet.filterkernels import _read  # noqa: F401",
        "",
        "",
        "@nb.njit(cache=True, nogil=True, boundscheck=False)",
        f"def fused(data, off, length, mac, nh, th, anno, ptype, idx, verdict{''.join(', ' + a for a in arrays)}):",
        "    ncol = data.shape[1]",
        "    rowlen = ncol",
        *views,
        "    npunt = 0",
        "    for i in range(idx.shape[0]):",
        "        s = np.int64(idx[i])",
        f"        j = {nsteps}",
        "        while True:",
        *body,
        "            break",
        "        verdict[i] = j",
        f"        if j < {nsteps}:",
        "            npunt += 1",
        "    return npunt",
        "",
    ]
    return "\n".join(lines), len(arrays)
