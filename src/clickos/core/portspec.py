"""Port-count, processing and flow codes: Click's small per-element spec languages.

- port count ``"1/1-2"``: inputs/outputs as N, N-M, N- (at least N), - (any),
  and ``=`` (as many outputs as inputs; ``=+`` one more, ...).
- processing ``"a/ah"``: per port h (push), l (pull), a (agnostic); the last
  letter of a side repeats for the remaining ports; no ``/`` means both sides.
- flow code ``"x/y"``: which inputs a packet can travel to which outputs; letters
  match, ``#`` means the same port number, ``[...]`` sets, ``[^...]`` negation.
"""

from __future__ import annotations

import re

PUSH, PULL, AGNOSTIC = 1, 2, 0
INF = 1 << 30


def _pair(s: str, i: int) -> tuple[int, int, int] | None:
    n = len(s)
    if i == n or s[i] == "-":
        lo = 0
    elif s[i].isdigit():
        m = re.match(r"\d+", s[i:])
        assert m
        lo = int(m.group())
        i += len(m.group())
    else:
        return None
    if i < n and s[i] == "-":
        i += 1
        m = re.match(r"\d+", s[i:])
        if m:
            hi = int(m.group())
            i += len(m.group())
        else:
            hi = INF
    else:
        hi = lo
    return lo, hi, i


def resolve_nports(spec: str, ninputs: int, noutputs: int) -> tuple[int, int] | None:
    """Clamp the connected port counts into the spec's ranges (None = bad spec)."""
    r = _pair(spec, 0)
    if r is None:
        return None
    inlo, inhi, i = r
    if i == len(spec):
        rest = spec
    elif spec[i] == "/":
        rest = spec[i + 1:]
    else:
        return None
    equal = 0
    if rest.startswith("="):
        tail = rest[1:]
        if tail == "" or set(tail) == {"+"}:
            equal = 1 + len(tail)
    if not equal:
        r2 = _pair(rest, 0)
        if r2 is None or r2[2] != len(rest):
            return None
        outlo, outhi = r2[0], r2[1]
    ninputs = max(inlo, min(inhi, ninputs))
    if equal:
        noutputs = ninputs + equal - 1
    else:
        noutputs = max(outlo, min(outhi, noutputs))
    return ninputs, noutputs


def processing_vector(code: str, nin: int, nout: int) -> tuple[list[int], list[int]] | None:
    """Per-port processing for each side (None if the code is malformed)."""
    letters = {"h": PUSH, "l": PULL, "a": AGNOSTIC}
    slash = code.find("/")
    in_code = code if slash < 0 else code[:slash]
    out_code = code if slash < 0 else code[slash + 1:]

    def expand(c: str, n: int) -> list[int] | None:
        out: list[int] = []
        val = AGNOSTIC
        for k in range(n):
            if k < len(c):
                v = letters.get(c[k].lower())
                if v is None:
                    return None
                val = v
            out.append(val)
        return out

    a, b = expand(in_code, nin), expand(out_code, nout)
    if a is None or b is None:
        return None
    return a, b


def _flow_codes(side: str, nports: int) -> list[set[int]]:
    """The code set of each port on one side of a flow code."""
    items: list[str] = []
    i = 0
    while i < len(side):
        if side[i] == "[":
            j = side.find("]", i)
            j = len(side) if j < 0 else j + 1
            items.append(side[i:j])
            i = j
        else:
            items.append(side[i])
            i += 1
    out = []
    for p in range(nports):
        item = items[min(p, len(items) - 1)] if items else "x"
        s: set[int] = set()
        if item.startswith("["):
            body = item[1:-1] if item.endswith("]") else item[1:]
            neg = body.startswith("^")
            if neg:
                body = body[1:]
            for ch in body:
                s.add(p + 1000 if ch == "#" else ord(ch))
            if neg:
                universe = set(range(ord("A"), ord("z") + 1)) | {p + 1000}
                s = universe - s
        else:
            s.add(p + 1000 if item == "#" else ord(item))
        out.append(s)
    return out


def port_flow(code: str | None, isoutput: bool, port: int, nin: int, nout: int) -> list[bool]:
    """Which ports on the other side a packet at (isoutput, port) can travel to/from."""
    nother = nin if isoutput else nout
    if port < 0 or port >= (nout if isoutput else nin):
        return [False] * nother
    if not code or code == "x/x":
        return [True] * nother
    slash = code.find("/")
    fin = code if slash < 0 else code[:slash]
    fout = code if slash < 0 else code[slash + 1:]
    if isoutput:
        fin, fout = fout, fin
        mine = _flow_codes(fin, nout)[port]
        other = _flow_codes(fout, nin)
    else:
        mine = _flow_codes(fin, nin)[port]
        other = _flow_codes(fout, nout)
    return [bool(mine & o) for o in other]
