"""The flattened router produced by :func:`clickos.lang.parse_config`."""

from __future__ import annotations

from dataclasses import dataclass, field

from .unparse import unparse_flatten, unparse_router


@dataclass
class FlatElement:
    name: str          # e.g. "Foo@2/Print@1"
    class_name: str    # primitive class name
    config: str        # configuration string after $variable expansion, as passed to the element
    landmark: str      # "FILE:LINE" where declared


@dataclass
class FlatConnection:
    from_index: int
    from_port: int
    to_index: int
    to_port: int
    landmark: str = ""


@dataclass
class FlatConfig:
    elements: list[FlatElement]
    connections: list[FlatConnection]
    requirements: list[tuple[str, str]]
    # The text that was parsed: Click's ``config`` handler returns it verbatim
    # unless the configuration says require(compact_config).
    source: str = ""
    # Global variables kept unexpanded (click-flatten without --expand-vars).
    defines: list[tuple[str, str]] = field(default_factory=list)
    # Every top-level variable (``define``s and command-line NAME=VALUE) with its
    # value; elements such as FromDevice look up their run-time bindings here.
    variables: dict[str, str] = field(default_factory=dict)

    def unparse(self) -> str:
        """Flattened text as printed by ``click -o-`` and the ``flatconfig`` handler."""
        return unparse_router(self)

    def unparse_flatten(self) -> str:
        """Flattened text in ``click-flatten``'s style (with line directives)."""
        return unparse_flatten(self)

    # The command-line driver looks for this name.
    unparse_tool = unparse_flatten

    def config_string(self) -> str:
        """What Click's global ``config`` read handler returns."""
        if any(rtype == "compact_config" for rtype, _ in self.requirements):
            return self.unparse()
        return self.source

    def element_index(self, name: str) -> int:
        """Index of the element called ``name``, or -1."""
        for i, e in enumerate(self.elements):
            if e.name == name:
                return i
        return -1
