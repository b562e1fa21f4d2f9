"""Element classes and compound element bodies.

A :class:`Compound` holds the elements and connections declared in one
scope: the body of an ``elementclass`` / ``{ ... }`` definition, or the whole
router (a compound with an empty name at depth 0).  Bodies of compounds start
with the ``input`` and ``output`` pseudo-elements at indexes 0 and 1.
"""

from __future__ import annotations

from collections.abc import Callable

from clickos.core.errors import ErrorHandler

from .lexer import landmark_string
from .variables import VariableEnvironment, assign_arguments

PORT_NAMES = ("input", "output")

# Element class kinds.
TUNNEL = "tunnel"          # placeholder for input/output pseudo-elements, groups, expanded compounds
ERROR = "error"            # a class that failed to resolve (an error was reported)
PRIMITIVE = "primitive"
COMPOUND = "compound"


class ElementType:
    """An element class visible under ``name``.  Synonyms (``elementclass A B;``)
    are separate objects sharing ``kind``/``compound``/``class_name`` with the
    original, so an element declared ``:: A`` is still a ``B``."""

    __slots__ = ("name", "kind", "compound", "class_name")

    def __init__(self, name: str, kind: str, compound: Compound | None = None,
                 class_name: str | None = None) -> None:
        self.name = name
        self.kind = kind
        self.compound = compound
        self.class_name = class_name if class_name is not None else name

    def __repr__(self) -> str:
        return f"ElementType({self.name!r}, {self.kind})"


TUNNEL_TYPE = ElementType("<tunnel>", TUNNEL)
ERROR_TYPE = ElementType("Error", ERROR)


class Hookup:
    """One connection inside a compound body (element indexes are body-local)."""

    __slots__ = ("from_idx", "from_port", "to_idx", "to_port", "landmark")

    def __init__(self, from_idx: int, from_port: int, to_idx: int, to_port: int, landmark: str) -> None:
        self.from_idx = from_idx
        self.from_port = from_port
        self.to_idx = to_idx
        self.to_port = to_port
        self.landmark = landmark


def signature(name: str, formal_types: list[str] | None, nargs: int, ninputs: int, noutputs: int) -> str:
    """Human-readable overload signature, as used in "no match" errors."""
    parts = [name or "<anonymous>"]
    if formal_types:
        shown = ["<arg>" if t == "" else "..." if t == "__REST__" else t for t in formal_types]
        parts.append("(" + ", ".join(shown) + ")")
    parts.append("[")
    if formal_types is None and nargs > 0:
        parts.append(f"{nargs} argument{'' if nargs == 1 else 's'}, ")
    parts.append(f"{ninputs} input{'' if ninputs == 1 else 's'}, ")
    parts.append(f"{noutputs} output{'' if noutputs == 1 else 's'}")
    parts.append("]")
    return "".join(parts)


class Compound:
    """Elements, connections and variables of one scope."""

    def __init__(self, name: str, landmark: str, parent_scope: VariableEnvironment | None) -> None:
        self.name = name
        self.landmark = landmark
        self.overload: ElementType | None = None   # next definition to try (``||`` / ``...``)
        self.scope = VariableEnvironment(parent_scope)
        self.nformals = 0
        self.ninputs = 0
        self.noutputs = 0
        self._order_error = False
        self.element_map: dict[str, int] = {}
        self.types: list[ElementType] = []
        self.names: list[str] = []
        self.configs: list[str] = []
        self.filenames: list[str] = []
        self.linenos: list[int] = []
        self.nin: list[int] = []    # input ports used so far
        self.nout: list[int] = []   # output ports used so far
        self.anonymous_offset = 0
        self.conns: list[Hookup] = []

    @property
    def depth(self) -> int:
        return self.scope.depth

    def printable_name(self) -> str:
        return self.name or "<anonymous>"

    def element_landmark(self, idx: int) -> str:
        return landmark_string(self.filenames[idx], self.linenos[idx]) or "<unknown>"

    def element_name(self, idx: int) -> str:
        if 0 <= idx < len(self.names):
            return self.names[idx]
        return "##no-such-element##"

    def add_element(self, name: str, etype: ElementType, config: str, filename: str, lineno: int) -> int:
        idx = len(self.types)
        self.element_map[name] = idx
        self.names.append(name)
        self.configs.append(config)
        self.filenames.append(filename)
        self.linenos.append(lineno)
        self.types.append(etype)
        self.nin.append(0)
        self.nout.append(0)
        return idx

    def set_map(self, name: str, idx: int) -> None:
        if idx >= 0:
            self.element_map[name] = idx
        else:
            self.element_map.pop(name, None)

    def connect(self, from_idx: int, from_port: int, to_idx: int, to_port: int, landmark: str) -> None:
        from_port = max(from_port, 0)
        to_port = max(to_port, 0)
        self.conns.append(Hookup(from_idx, from_port, to_idx, to_port, landmark))
        if self.nin[to_idx] <= to_port:
            self.nin[to_idx] = to_port + 1
        if self.nout[from_idx] <= from_port:
            self.nout[from_idx] = from_port + 1

    # -- parameters -------------------------------------------------------------
    def define(self, name: str, value: str, is_formal: bool, lerror: Callable[[str], object]) -> None:
        """Declare a formal parameter (``value`` is its keyword, ``""`` if positional)
        or a ``define``d variable."""
        if not self.scope.define(name, value, False):
            lerror(f"parameter '${name}' multiply defined")
            return
        if not is_formal:
            return
        self.nformals = self.scope.size()
        values = self.scope.values
        if value and value in values[:-1]:
            lerror(f"repeated keyword parameter '{value}' in compound element")
        if (not self._order_error and self.nformals > 1
                and ((not value and values[self.nformals - 2]) or values[self.nformals - 2] == "__REST__")):
            lerror("compound element parameters out of order\n"
                   "(The correct order is '[positional], [keywords], [__REST__]'.)")
            self._order_error = True

    def formal_params(self) -> list[str]:
        return self.scope.values[:self.nformals]

    # -- finishing ----------------------------------------------------------------
    def check_pseudoelement(self, which: int, isoutput: bool, name: str, errh: ErrorHandler,
                            landmark: str) -> int:
        """Check how the ``input`` (isoutput False) or ``output`` pseudo-element
        ``which`` is used; returns its number of ports."""
        nports = self.nout[which] if not isoutput else self.nin[which]
        used: set[int] = set()
        for h in self.conns:
            if isoutput:
                if h.to_idx == which:
                    used.add(h.to_port)
            elif h.from_idx == which:
                used.add(h.from_port)
        misuse = self.nin[which] if not isoutput else self.nout[which]
        this, other = PORT_NAMES[isoutput], PORT_NAMES[not isoutput]
        if misuse:
            errh.error(f"'{name}' pseudoelement '{this}' may only be used as {other}", landmark)
        for port in range(nports):
            if port not in used:
                errh.error(f"'{name}' {this} {port} missing", landmark)
        return nports

    def finish(self, errh: ErrorHandler) -> None:
        """Called at the closing brace: count ports and name anonymous elements."""
        self.ninputs = self.check_pseudoelement(0, False, self.printable_name(), errh, self.landmark)
        self.noutputs = self.check_pseudoelement(1, True, self.printable_name(), errh, self.landmark)
        for i in range(len(self.names)):
            if self.names[i].startswith(";"):
                self.deanonymize(i)

    def deanonymize(self, idx: int) -> str:
        """Turn the provisional name ``;Class@N`` into ``Class@N``, bumping N past
        any name already taken."""
        name = self.names[idx][1:]
        if name in self.element_map:
            at = name.rfind("@")
            prefix = name[:at + 1]
            digits = 0
            j = at + 1
            while j < len(name) and name[j].isdigit() and name[j].isascii():
                j += 1
            if j > at + 1 and j - at - 1 <= 10:
                number = int(name[at + 1:j])
                digits = number if number < (1 << 31) else 0
            while True:
                digits += 1
                name = prefix + str(digits)
                if name not in self.element_map:
                    break
        self.element_map[name] = idx
        self.names[idx] = name
        return name

    # -- overloads ----------------------------------------------------------------
    def signature(self) -> str:
        return signature(self.name, self.scope.values, -1, self.ninputs, self.noutputs)

    def resolve(self, etype: ElementType, ninputs: int, noutputs: int, args: list[str],
                errh: ErrorHandler, landmark: str) -> tuple[ElementType | None, list[str]]:
        """Pick the overload to expand for an element with these ports and
        arguments.  Returns the chosen class (None if nothing fits) and the
        arguments assigned to its formals."""
        ct: Compound | None = self
        closest: ElementType | None = None
        count = 0
        seen: set[int] = set()
        while ct is not None and id(ct) not in seen:
            seen.add(id(ct))
            count += 1
            values = assign_arguments(args, ct.formal_params())
            if values is not None and ct.ninputs == ninputs and ct.noutputs == noutputs:
                return etype, values
            if values is not None:
                closest = etype
            nxt = ct.overload
            if nxt is not None and nxt.kind == COMPOUND and nxt.compound is not None:
                etype, ct = nxt, nxt.compound
            elif nxt is not None:
                return nxt, args
            else:
                break
        if count != 1 or closest is None:
            errh.error(f"no match for '{signature(self.name, None, len(args), ninputs, noutputs)}'", landmark)
            first = True
            cand: Compound | None = self
            listed: set[int] = set()
            while cand is not None and id(cand) not in listed:
                listed.add(id(cand))
                if first:
                    errh.message("candidates are:", cand.landmark)
                    first = False
                errh.message("  " + cand.signature(), cand.landmark)
                nxt = cand.overload
                cand = nxt.compound if nxt is not None and nxt.kind == COMPOUND else None
        if closest is not None and closest.compound is not None:
            values = assign_arguments(args, closest.compound.formal_params())
            return closest, values if values is not None else args
        return None, args
