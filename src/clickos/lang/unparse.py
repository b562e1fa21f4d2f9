"""Writing a flat router back out as Click-language text.

Two flavours exist because Click has two: the userlevel driver's
``flatconfig`` handler (also ``click -o``) and the ``click-flatten`` tool,
which additionally emits ``# LINE "FILE"`` directives and global ``define``s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clickos.core.confparse import quote

if TYPE_CHECKING:
    from .model import FlatConfig


def unparse_requirements(requirements: list[tuple[str, str]]) -> str:
    if not requirements:
        return ""
    items = [rtype + (" " + quote(value) if value else "") for rtype, value in requirements]
    return "require(" + ", ".join(items) + ");\n\n"


def unparse_declaration(name: str, class_name: str, config: str) -> str:
    return f"{name} :: {class_name}" + (f"({config})" if config else "") + ";\n"


def unparse_connections(cfg: FlatConfig) -> str:
    """Connections as chains ``a -> b -> c;``: a connection into port 0 continues
    with a connection out of that element's output 0, preferring one that also
    goes into a port 0.  Cycles are broken at their first unprinted connection."""
    conns = cfg.connections
    names = [e.name for e in cfg.elements]
    nc = len(conns)
    by_source: dict[tuple[int, int], list[int]] = {}
    for d, c in enumerate(conns):
        by_source.setdefault((c.from_index, c.from_port), []).append(d)
    following = [-1] * nc
    starts = [True] * nc
    for ci, c in enumerate(conns):
        if c.to_port != 0:
            continue
        chosen = -1
        for d in by_source.get((c.to_index, 0), ()):
            if d != ci:
                chosen = d
                if conns[d].to_port == 0:
                    break
        if chosen >= 0:
            following[ci] = chosen
            starts[chosen] = False

    used = [False] * nc
    out: list[str] = []
    while True:
        for ci in range(nc):
            if used[ci] or not starts[ci]:
                continue
            first = conns[ci]
            parts = [names[first.from_index]]
            if first.from_port:
                parts.append(f" [{first.from_port}]")
            d = ci
            while d >= 0 and not used[d]:
                parts.append(" -> " if d == ci else "\n    -> ")
                c = conns[d]
                if c.to_port:
                    parts.append(f"[{c.to_port}] ")
                parts.append(names[c.to_index])
                used[d] = True
                d = following[d]
            parts.append(";\n")
            out.append("".join(parts))
        remaining = next((ci for ci in range(nc) if not used[ci]), -1)
        if remaining < 0:
            break
        starts[remaining] = True
    return "".join(out)


def unparse_router(cfg: FlatConfig) -> str:
    """Text of the userlevel ``flatconfig`` handler and of ``click -o FILE``."""
    parts = [unparse_requirements(cfg.requirements)]
    parts.extend(unparse_declaration(e.name, e.class_name, e.config) for e in cfg.elements)
    if cfg.elements:
        parts.append("\n")
    parts.append(unparse_connections(cfg))
    return "".join(parts)


def _line_directive(landmark: str) -> str:
    colon = landmark.rfind(":")
    if colon >= 0:
        return f'# {landmark[colon + 1:]} "{landmark[:colon]}"\n'
    return f'# 0 "{landmark}"\n'


def unparse_flatten(cfg: FlatConfig) -> str:
    """Text in the style of the ``click-flatten`` tool: line directives keep
    error messages pointing at the original source, and global variables that
    were not expanded are written as a ``define``."""
    parts = [unparse_requirements(cfg.requirements)]
    if cfg.defines:
        parts.append("define(" + ", ".join(f"${n} {v}" for n, v in cfg.defines) + ");\n\n")
    for e in cfg.elements:
        parts.append(_line_directive(e.landmark))
        parts.append(unparse_declaration(e.name, e.class_name, e.config))
    if cfg.connections:
        lineno = 1 + sum(p.count("\n") for p in parts)
        # the directive's own line is `lineno`; the next line is lineno + 1
        parts.append(f'# {lineno + 1} ""\n')
        parts.append(unparse_connections(cfg))
    return "".join(parts)
