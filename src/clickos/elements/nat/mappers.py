"""RoundRobinIPMapper: hands new flows to several rewriting patterns in turn."""

from __future__ import annotations

from clickos.core.element import Element
from clickos.core.errors import ConfigError, ErrorHandler
from clickos.elements.tcpudp.rewriterbase import (
    CONFIGURE_PHASE_MAPPER,
    I_DROP,
    I_PATTERN,
    RW_DROP,
    FlowID,
    IPMapper,
    IPRewriterBase,
    IPRewriterInput,
    parse_pattern_with_ports,
)


class RoundRobinIPMapper(Element, IPMapper):
    """RoundRobinIPMapper(PATTERN1, ..., PATTERNn)

    Maps new flows for a rewriter, trying its patterns in round-robin order.

    Each argument is a pattern with its outputs, ``SADDR SPORT DADDR DPORT
    FOUTPUT ROUTPUT`` (or ``NAME FOUTPUT ROUTPUT`` for a pattern named by
    IPRewriterPatterns).  A rewriter input whose INPUTSPEC names this element
    asks it for each new flow; the patterns are tried starting after the one
    used last, and the first that yields a mapping wins, together with its
    outputs.  Useful for load balancing.

    Example::

        servers :: RoundRobinIPMapper(- - 10.0.0.1 - 0 1, - - 10.0.0.2 - 0 1);
        IPRewriter(servers, drop)
    """

    port_count = "0/0"
    configure_phase = CONFIGURE_PHASE_MAPPER

    def __init__(self) -> None:
        super().__init__()
        self.specs: list[IPRewriterInput] = []
        self.last = 0

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        if not conf:
            raise ConfigError("no patterns given")
        if len(conf) == 1:
            errh.warning("only one pattern given")
        specs = []
        for text in conf:
            spec = IPRewriterInput(None, 0)
            spec.kind = I_PATTERN
            try:
                parse_pattern_with_ports(text, spec, self)
            except ConfigError as e:
                errh.error(str(e))
                continue
            specs.append(spec)
        self.specs = specs
        self.last = 0

    def notify_rewriter(self, user: IPRewriterBase, spec: IPRewriterInput, errh: ErrorHandler) -> None:
        for i, s in enumerate(self.specs):
            if s.foutput >= user.noutputs or s.routput >= spec.reply_element.noutputs:
                errh.error(f"output port out of range in {self.declaration()} pattern {i}")

    def rewrite_flowid(self, spec: IPRewriterInput, flow: FlowID, mapid: int) -> tuple[int, FlowID]:
        n = len(self.specs)
        for _ in range(n):
            s = self.specs[self.last]
            self.last = (self.last + 1) % n
            s.reply_element = spec.reply_element
            result = s.rewrite_flowid(flow, mapid)
            if result[0] != RW_DROP or s.kind == I_DROP:
                spec.foutput = s.foutput
                spec.routput = s.routput
                return result
        return RW_DROP, flow
