"""Flattening: expand compound elements and remove tunnels.

Compound elements and groups become *tunnel* elements.  A tunnel pairs an
input-side end with an output-side end (for a compound ``c``: connections into
``c`` continue out of ``c/input``; connections into ``c/output`` continue out
of ``c``).  After expansion every connection touching a tunnel is replaced by
the connections between the real elements on either side, then tunnels are
dropped and the remaining elements are numbered as the router numbers them.

Both passes are written iteratively so that long chains of nested compounds
cannot exhaust Python's recursion limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from clickos.core.confparse import split_args

from .compound import COMPOUND, ERROR_TYPE, PORT_NAMES, TUNNEL, TUNNEL_TYPE, Compound, Hookup
from .variables import VariableEnvironment, expand_variables

if TYPE_CHECKING:
    from .parser import Parser

Port = tuple[int, int]   # (element index, port)

_NOT_EXPANDED, _EXPANDING, _EXPANDED = 0, 1, 2


class TunnelEnd:
    __slots__ = ("idx", "port", "isoutput", "other", "correspond", "state")

    def __init__(self, idx: int, port: int, isoutput: bool) -> None:
        self.idx = idx
        self.port = port
        self.isoutput = isoutput
        self.other: TunnelEnd | None = None
        self.correspond: list[Port] = []   # real (or further tunnel) ports this end stands for
        self.state = _NOT_EXPANDED

    def pair_with(self, other: TunnelEnd) -> None:
        self.other = other
        other.other = self


class TunnelTable:
    """Tunnel ends by element index.  Ends exist for port 0 when a tunnel is
    declared; ends for other ports are created on demand, mirroring port 0."""

    def __init__(self) -> None:
        self.by_idx: dict[int, list[TunnelEnd]] = {}

    def __bool__(self) -> bool:
        return bool(self.by_idx)

    def find(self, idx: int, port: int, isoutput: bool, insert: bool) -> TunnelEnd | None:
        ends = self.by_idx.get(idx)
        if ends is None:
            if not insert:
                return None
            ends = self.by_idx[idx] = []
        template = None
        for te in reversed(ends):   # newest first
            if te.isoutput == isoutput:
                if te.port == port:
                    return te
                if te.port == 0:
                    template = te
        if template is not None and not insert and template.other is not None:
            te = TunnelEnd(idx, port, isoutput)
            ends.append(te)
            partner = self.find(template.other.idx, port, not isoutput, True)
            if partner is not None:
                te.pair_with(partner)
            return te
        if insert:
            te = TunnelEnd(idx, port, isoutput)
            ends.append(te)
            return te
        return None


class Flattener:
    """Expands the parser's top-level body in place and collects the result."""

    def __init__(self, parser: Parser, env: VariableEnvironment) -> None:
        self.parser = parser
        self.top: Compound = parser.root
        self.errh = parser.errh
        self.tunnels = parser.tunnels
        self.env = env

    # -- compound expansion -------------------------------------------------------
    def expand_all(self) -> None:
        stack: list[Iterator[tuple[int, VariableEnvironment]]] = [
            iter([(i, self.env) for i in range(len(self.top.types))])]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            children = self.expand_element(*item)
            if children:
                stack.append(iter(children))

    def expand_element(self, which: int, env: VariableEnvironment) -> list[tuple[int, VariableEnvironment]]:
        """Finish element ``which``: final name, expanded configuration, and for a
        compound, its contents.  Returns the new elements still to be finished."""
        top = self.top
        etype = top.types[which]
        if top.names[which].startswith(";"):
            top.deanonymize(which)
        if etype.kind == TUNNEL:
            return []
        top.configs[which] = expand_variables(top.configs[which], env)
        if etype.kind != COMPOUND or etype.compound is None:
            return []
        args = split_args(top.configs[which])
        found, args = etype.compound.resolve(etype, top.nin[which], top.nout[which], args, self.errh,
                                             self.parser.file.landmark())
        if found is None:
            top.types[which] = ERROR_TYPE
            return []
        if found.kind != COMPOUND or found.compound is None:
            top.types[which] = found
            return []
        comp = found.compound
        new_env = VariableEnvironment(env.parent_of(comp.depth))
        for i in range(comp.nformals):
            new_env.define(comp.scope.names[i], args[i] if i < len(args) else "", True)
        for i in range(comp.nformals, comp.scope.size()):
            new_env.define(comp.scope.names[i], expand_variables(comp.scope.values[i], new_env), True)
        return self.expand_into(comp, which, new_env)

    def expand_into(self, comp: Compound, which: int,
                    env: VariableEnvironment) -> list[tuple[int, VariableEnvironment]]:
        """Replace element ``which`` by a copy of ``comp``'s body named ``NAME/...``."""
        top = self.top
        parser = self.parser
        ename = top.names[which]
        top.types[which] = TUNNEL_TYPE
        tunnel = parser.add_tunnels(ename)
        emap = [tunnel[1], tunnel[2]]    # body index -> router index (-1: dropped)
        prefix = ename + "/"
        n = len(comp.types)
        i = 2
        while i < n:
            cname = prefix + comp.names[i]
            existing = top.element_map.get(cname, -1)
            if existing >= 0:
                parser.redeclaration_error("element", cname, top.element_landmark(which),
                                           top.element_landmark(existing))
                emap.append(-1)
                i += 1
                continue
            if parser.element_type(cname) is not None:
                self.errh.error(f"'{cname}' is an element class", top.element_landmark(which))
            if comp.types[i].kind == TUNNEL:
                # a group inside the body: its three tunnel elements come together
                emap.extend(parser.add_tunnels(cname))
                i += 3
                continue
            config = expand_variables(comp.configs[i], env)
            emap.append(parser.get_element(cname, comp.types[i], config, comp.filenames[i], comp.linenos[i]))
            i += 1
        nmap = len(emap)
        for h in comp.conns:
            f = emap[h.from_idx] if h.from_idx < nmap else -1
            t = emap[h.to_idx] if h.to_idx < nmap else -1
            if f >= 0 and t >= 0:
                top.connect(f, h.from_port, t, h.to_port, h.landmark)
        return [(emap[k], env) for k in range(2, nmap) if emap[k] >= 0]

    # -- tunnel removal -------------------------------------------------------------
    def is_tunnel(self, idx: int) -> bool:
        return self.top.types[idx].kind == TUNNEL

    def _start(self, te: TunnelEnd) -> list:
        te.state = _EXPANDING
        pending = te.correspond
        te.correspond = []
        if not pending and te.other is not None:
            self._report_unused(te)
        return [te, pending, 0]

    def _report_unused(self, te: TunnelEnd) -> None:
        other = te.other
        assert other is not None
        top = self.top
        inh = (other.idx, other.port) if te.isoutput else (te.idx, te.port)
        outh = (te.idx, te.port) if te.isoutput else (other.idx, other.port)
        in_name = top.element_name(inh[0])
        out_name = top.element_name(outh[0])
        if in_name + "/input" == out_name:
            what = "input {} unused" if te.isoutput else "has no input {}"
            self.errh.error(f"'{in_name}' " + what.format(inh[1]), top.element_landmark(inh[0]))
        elif in_name == out_name + "/output":
            what = "has no output {}" if te.isoutput else "output {} unused"
            self.errh.error(f"'{out_name}' " + what.format(outh[1]), top.element_landmark(outh[0]))
        else:
            self.errh.error(f"tunnel '{in_name} -> {out_name}' {PORT_NAMES[te.isoutput]} {te.idx} unused",
                            top.element_landmark(other.idx))

    def expand_end(self, root: TunnelEnd, into: list[Port]) -> None:
        """Append to ``into`` the real ports that tunnel end ``root`` leads to."""
        if root.state == _EXPANDING:
            return   # a cycle of tunnels
        if root.state == _EXPANDED:
            into.extend(root.correspond)
            return
        stack = [self._start(root)]
        while stack:
            frame = stack[-1]
            te, pending, pos = frame
            if pos < len(pending):
                frame[2] = pos + 1
                port = pending[pos]
                if not self.is_tunnel(port[0]):
                    te.correspond.append(port)
                    continue
                nxt = self.tunnels.find(port[0], port[1], te.isoutput, False)
                if nxt is not None:
                    if nxt.other is None or nxt.state == _EXPANDING:
                        continue
                    if nxt.state == _EXPANDED:
                        te.correspond.extend(nxt.correspond)
                    else:
                        stack.append(self._start(nxt))
                elif self.tunnels.find(port[0], port[1], not te.isoutput, False) is not None:
                    self._report_misuse(port[0], te.isoutput)
                continue
            te.state = _EXPANDED
            stack.pop()
            target = stack[-1][0].correspond if stack else into
            target.extend(te.correspond)

    def _report_misuse(self, idx: int, isoutput: bool) -> None:
        self.errh.error(f"'{self.top.element_name(idx)}' used as {PORT_NAMES[isoutput]}",
                        self.top.element_landmark(idx))

    def expand_port(self, port: Port, isoutput: bool, into: list[Port]) -> None:
        if not self.is_tunnel(port[0]):
            into.append(port)
            return
        te = self.tunnels.find(port[0], port[1], isoutput, False)
        if te is not None:
            if te.other is not None:
                self.expand_end(te, into)
        elif self.tunnels.find(port[0], port[1], not isoutput, False) is not None:
            self._report_misuse(port[0], isoutput)

    def remove_tunnels(self) -> tuple[list[int], list[Hookup]]:
        """Number the real elements and compute the final connections.  Returns
        the router index of each body element (-1 for tunnels) and the sorted,
        de-duplicated connections in router numbering."""
        top = self.top
        router_id: list[int] = []
        count = 0
        for t in top.types:
            if t.kind == TUNNEL:
                router_id.append(-1)
            else:
                router_id.append(count)
                count += 1

        # Seed each tunnel end with the ports connected to its partner.
        if self.tunnels:
            for h in top.conns:
                if router_id[h.to_idx] < 0:
                    te = self.tunnels.find(h.to_idx, h.to_port, False, False)
                    if te is not None and te.other is not None:
                        te.other.correspond.append((h.from_idx, h.from_port))
                if router_id[h.from_idx] < 0:
                    te = self.tunnels.find(h.from_idx, h.from_port, True, False)
                    if te is not None and te.other is not None:
                        te.other.correspond.append((h.to_idx, h.to_port))

        for i in range(len(top.conns)):
            h = top.conns[i]
            if router_id[h.from_idx] < 0 or router_id[h.to_idx] < 0:
                sources: list[Port] = []
                self.expand_port((h.from_idx, h.from_port), True, sources)
                sinks: list[Port] = []
                self.expand_port((h.to_idx, h.to_port), False, sinks)
                for f in sources:
                    if router_id[f[0]] >= 0:
                        for t in sinks:
                            if router_id[t[0]] >= 0:
                                top.connect(f[0], f[1], t[0], t[1], h.landmark)

        # The router keeps connections sorted by (to, from) and drops duplicates.
        keyed = []
        for h in top.conns:
            f, t = router_id[h.from_idx], router_id[h.to_idx]
            if f >= 0 and t >= 0:
                keyed.append(((t, h.to_port, f, h.from_port), h.landmark))
        keyed.sort(key=lambda kv: kv[0])
        result: list[Hookup] = []
        previous = None
        for key, landmark in keyed:
            if key != previous:
                result.append(Hookup(key[2], key[3], key[0], key[1], landmark))
                previous = key
        return router_id, result
