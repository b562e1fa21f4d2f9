"""Matching the ports of two element lists joined by ``->`` or ``=>``.

``a, b -> c`` connects each of a and b to c; ``a [0, 1] => b, c`` pairs ports
one by one; a port list ending in an empty entry (``[2, ]``, ``[]``) is
*expandable* and grows to match the other side, and with ``=>`` a lone
element with no port list expands the same way.
"""

from __future__ import annotations

from collections.abc import Callable


class PortGroup:
    """One element reference inside a connection, with its port lists.

    A port list may end with -1, which marks it as expandable (``[n, ]``/``[]``)."""

    __slots__ = ("idx", "ins", "outs")

    def __init__(self) -> None:
        self.idx = -1
        self.ins: list[int] = []
        self.outs: list[int] = []


def _analyze(groups: list[PortGroup], isoutput: bool) -> tuple[int, int]:
    """Minimum number of ports a side provides, and how many of its groups are
    expandable."""
    minimum = expandable = 0
    for g in groups:
        ports = g.outs if isoutput else g.ins
        n = len(ports)
        if n <= 1:
            minimum += 1
        elif ports[-1] == -1:
            minimum += n - 1
            expandable += 1
        else:
            minimum += n
    return minimum, expandable


def match_ports(outputs: list[PortGroup], inputs: list[PortGroup], many_to_many: bool,
                lerror: Callable[[str], object]) -> list[tuple[int, int, int, int]]:
    """The connections ``(from, from_port, to, to_port)`` between the element lists
    on the left (``outputs``) and right (``inputs``) of an arrow, in Click's order.
    Mismatches are reported through ``lerror`` and connected as far as possible."""
    # Index 0 describes the input side, index 1 the output side.
    minp = [0, 0]
    expandable = [0, 0]
    minp[1], expandable[1] = _analyze(outputs, True)
    minp[0], expandable[0] = _analyze(inputs, False)
    if expandable[0] + expandable[1] > 1:
        lerror("at most one expandable port allowed per connection")
        expandable[1 if minp[0] < minp[1] else 0] = 0
    if many_to_many:
        for k, side in ((0, inputs), (1, outputs)):
            if not side:
                continue
            first_ports = side[0].outs if k else side[0].ins
            if minp[k] == 1 and minp[1 - k] > 1 and not first_ports:
                expandable[k] = 1
    step = [minp[k] > 1 or bool(expandable[k]) for k in (0, 1)]
    extra = [minp[1 - k] - minp[k] if expandable[k] else 0 for k in (0, 1)]
    if step[0] and step[1]:
        if not many_to_many:
            lerror("syntax error: many-to-many connections require '=>'")
        if not expandable[0] and not expandable[1] and minp[0] != minp[1]:
            lerror(f"connection mismatch: {minp[1]} outputs connected to {minp[0]} inputs")
        elif not expandable[0] and minp[0] < minp[1]:
            lerror(f"connection mismatch: {minp[1]} or more outputs connected to {minp[0]} inputs")
        elif not expandable[1] and minp[1] < minp[0]:
            lerror(f"connection mismatch: {minp[1]} outputs connected to {minp[0]} or more inputs")
    elif not step[0] and not step[1]:
        step[0] = True   # one-to-one: walk the inputs

    result = []
    sides = (inputs, outputs)
    pos = [0, 0]        # current element on each side
    ppos = [0, 0]       # position within that element's port list
    port = [-1, -1]
    while pos[0] < len(inputs) and pos[1] < len(outputs):
        for k in (0, 1):
            if port[k] < 0:
                g = sides[k][pos[k]]
                plist = g.outs if k else g.ins
                port[k] = plist[0] if plist else 0
        result.append((outputs[pos[1]].idx, port[1], inputs[pos[0]].idx, port[0]))
        for k in (0, 1):
            if not step[k]:
                continue
            g = sides[k][pos[k]]
            plist = g.outs if k else g.ins
            np = len(plist)
            ppos[k] += 1
            if ppos[k] < np and plist[ppos[k]] >= 0:
                port[k] = plist[ppos[k]]                          # next listed port
            elif np and plist[-1] == -1 and extra[k] > 0:
                port[k] = plist[np - 2] + ppos[k] - (np - 2)      # expandable list grows
                extra[k] -= 1
            elif np == 0 and minp[k] == 1 and extra[k] > 0:
                port[k] = ppos[k]                                 # lone element under '=>'
                extra[k] -= 1
            else:
                port[k] = -1                                      # next element in the list
                ppos[k] = 0
                pos[k] += 1
    return result
