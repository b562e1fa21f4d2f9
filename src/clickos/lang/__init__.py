"""The Click configuration language: parsing and flattening.

:func:`parse_config` reads Click-language text, expands every compound
element and returns the flat router as a :class:`FlatConfig`, reporting
problems through an :class:`~clickos.core.errors.ErrorHandler` with the same
messages and ``FILE:LINE`` landmarks as Click's userlevel driver.
"""

from __future__ import annotations

from collections.abc import Callable

from clickos.core.errors import ErrorHandler

from .compound import ERROR
from .expand import Flattener
from .model import FlatConfig, FlatConnection, FlatElement
from .parser import Parser, RequireHook
from .unparse import unparse_flatten, unparse_router
from .variables import VariableEnvironment

__all__ = [
    "FlatConfig",
    "FlatConnection",
    "FlatElement",
    "RequireHook",
    "parse_config",
    "unparse_flatten",
    "unparse_router",
]


def parse_config(text: str, filename: str = "config", *, errh: ErrorHandler,
                 defines: dict[str, str] | None = None,
                 is_primitive: Callable[[str], bool] | None = None,
                 library_dirs: list[str] | None = None,
                 require_hook: RequireHook | None = None,
                 expand_globals: bool = True) -> FlatConfig | None:
    """Parse and flatten a Click configuration.

    ``filename`` appears in landmarks (Click uses ``config`` for ``-e``
    expressions and ``<stdin>`` for standard input).  ``defines`` are
    command-line ``NAME=VALUE`` settings; they override top-level ``define``s.
    ``is_primitive(name)`` says whether a primitive class exists; when it is
    None every name used as a class is accepted, as ``click-flatten`` does.
    ``require(library FILE)`` looks in the including file's directory, then in
    ``library_dirs``.  ``require_hook(type, value, errh)`` is called for each
    ``package``/``compact_config`` requirement as it is parsed (the userlevel
    driver uses this to report unavailable packages).  With ``expand_globals``
    False, top-level variables stay as ``$name`` references and are returned
    in :attr:`FlatConfig.defines` (``click-flatten`` without ``--expand-vars``).

    Returns None if any error was reported.
    """
    before = errh.nerrors
    parser = Parser(text, filename, errh, is_primitive=is_primitive, library_dirs=library_dirs,
                    require_hook=require_hook)
    parser.parse()

    top_scope = parser.root.scope
    for name, value in (defines or {}).items():
        top_scope.define(name, value, True)
    if expand_globals:
        env = top_scope
        kept: list[tuple[str, str]] = []
    else:
        # Each global expands to a reference to itself; the expansion depth
        # limit stops the resulting self-reference after a few rounds.
        env = VariableEnvironment(None)
        for name in top_scope.names:
            env.define(name, "$" + name, True)
        kept = list(zip(top_scope.names, top_scope.values, strict=True))

    flattener = Flattener(parser, env)
    flattener.expand_all()
    router_id, hookups = flattener.remove_tunnels()
    if errh.nerrors > before:
        return None

    top = parser.root
    elements = []
    for i, rid in enumerate(router_id):
        if rid < 0:
            continue
        etype = top.types[i]
        class_name = "Error" if etype.kind == ERROR else etype.class_name
        elements.append(FlatElement(top.names[i], class_name, top.configs[i], top.element_landmark(i)))
    connections = [FlatConnection(h.from_idx, h.from_port, h.to_idx, h.to_port, h.landmark) for h in hookups]
    variables = dict(zip(top_scope.names, top_scope.values, strict=True))
    return FlatConfig(elements, connections, list(parser.requirements), text, kept, variables)
