"""Parser for the Click language (the statement grammar of click(5)).

The parser builds :class:`~clickos.lang.compound.Compound` bodies: the
router's own top-level body plus one per compound element definition.  It
does not expand compounds; :mod:`clickos.lang.expand` does that afterwards.

The order in which the parser looks at tokens, creates elements and reports
errors follows Click's userlevel driver closely, because element numbering,
anonymous names and error messages all depend on it.  Compound and group
nesting is handled by recursion, bounded by :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from clickos.core.confparse import (
    is_var_char,
    parse_int,
    parse_or_none,
    parse_string,
    parse_word,
    printable,
    shift_word,
    split_args,
    split_words,
)
from clickos.core.errors import ErrorHandler

from .compound import (
    COMPOUND,
    ERROR,
    PRIMITIVE,
    TUNNEL,
    TUNNEL_TYPE,
    Compound,
    ElementType,
)
from .connections import PortGroup, match_ports
from .expand import TunnelTable
from .lexer import (
    ARROW,
    ARROW2,
    BAR2,
    COLON2,
    DEFINE,
    DOTS,
    ELEMENTCLASS,
    EOF,
    EOF_LEXEME,
    IDENT,
    PROVIDE,
    REQUIRE,
    VARIABLE,
    Lexeme,
    Tokenizer,
    describe_kind,
    is_multichar_kind,
    landmark_string,
)

MAX_DEPTH = 50           # maximum nesting of compounds and groups (as in Click)
MAX_PORT = 0xFFFF        # larger port numbers are rejected (guards against huge allocations)

FILE, COMPOUND_BODY, GROUP = "file", "compound", "group"
_ARROWS = (ARROW, ARROW2)
# Tokens that end a connection and start the next statement.
_CONNECTION_END_PUSHBACK = frozenset((IDENT, "{", "}", "[", ")", BAR2,
                                      ELEMENTCLASS, REQUIRE, PROVIDE, DEFINE))

RequireHook = Callable[[str, str, ErrorHandler], None]


def _has_numeric_component(name: str) -> bool:
    """True if a '/'-separated component is all digits or empty (a trailing empty
    component is not checked, as in Click)."""
    parts = name.split("/")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return any(not p or (p.isdigit() and p.isascii()) for p in parts) if name else False


class ElementDecl:
    """An element named or declared in the current comma-separated list."""

    __slots__ = ("name", "type", "decl_type", "bare", "config", "filename", "lineno", "group")

    def __init__(self, name: str, etype: ElementType | None, bare: bool, filename: str, lineno: int,
                 group: PortGroup) -> None:
        self.name = name
        self.type = etype              # set when the name itself is a class (anonymous element)
        self.decl_type: ElementType | None = None   # set by ":: Class"
        self.bare = bare               # a plain identifier with nothing after it
        self.config = ""
        self.filename = filename
        self.lineno = lineno
        self.group = group


class ParseState:
    """Per-body connection state (the file, a compound body or a group)."""

    __slots__ = ("kind", "parent", "depth", "last", "connector", "decls", "any_implicit", "any_ports",
                 "ends_output", "current", "group")

    def __init__(self, kind: str, parent: ParseState | None) -> None:
        self.kind = kind
        self.parent = parent
        self.depth = parent.depth + 1 if parent is not None else 0
        self.last: list[PortGroup] = []       # element list before the last arrow
        self.connector = ARROW
        self.decls: list[ElementDecl] = []
        self.any_implicit = False
        self.any_ports = False
        self.ends_output = True               # did the previous statement end at 'output'?
        self.current: list[PortGroup] = []    # element list being parsed
        self.group = PortGroup()              # element being parsed


class Parser:
    def __init__(self, text: str, filename: str, errh: ErrorHandler, *,
                 is_primitive: Callable[[str], bool] | None = None,
                 library_dirs: list[str] | None = None,
                 require_hook: RequireHook | None = None) -> None:
        self.file = Tokenizer(text, filename)
        self.source = text
        self.errh = errh
        self.is_primitive = is_primitive
        # Without a class list we behave like click-flatten: unknown names used
        # as classes simply become classes.
        self.tool_mode = is_primitive is None
        self.library_dirs = list(library_dirs or [])
        self.require_hook = require_hook
        self.unlexed: list[Lexeme] = []
        self.root = Compound("", "", None)
        self.c = self.root
        # Classes introduced by elementclass/compounds (scoped: saved and restored
        # around each compound body) and primitive classes (global).
        self.types: dict[str, ElementType] = {}
        self.base_types: dict[str, ElementType] = {}
        self._not_primitive: set[str] = set()
        if not self.tool_mode:
            self.base_types["Error"] = ElementType("Error", PRIMITIVE)
        self.tunnels = TunnelTable()
        self.requirements: list[tuple[str, str]] = []
        self.libraries: list[str] = []
        self.compact_config = False

    # -- tokens -----------------------------------------------------------------
    def lerror(self, message: str) -> None:
        self.errh.error(message, self.file.landmark())

    def syntax_error(self, t: Lexeme) -> None:
        self.lerror(f"syntax error near '{printable(t.text)}'")

    def lex(self) -> Lexeme:
        if self.unlexed:
            return self.unlexed.pop()
        return self.file.next_lexeme(self.lerror)

    def unlex(self, t: Lexeme) -> None:
        self.unlexed.append(t)

    def expect(self, kind: str, quiet: bool = False) -> bool:
        """Consume a token of ``kind`` if it is next; otherwise leave the input alone."""
        if self.unlexed:
            if self.unlexed[-1].kind == kind:
                self.unlexed.pop()
                return True
        else:
            saved = self.file.save()
            if self.file.next_lexeme(self.lerror).kind == kind:
                return True
            self.file.restore(saved)
        if not quiet:
            self.lerror(f"expected {describe_kind(kind)}")
        return False

    def lex_config(self) -> str:
        return self.file.lex_config(self.lerror)

    # -- classes ------------------------------------------------------------------
    def element_type(self, name: str, scoped: dict[str, ElementType] | None = None) -> ElementType | None:
        t = (self.types if scoped is None else scoped).get(name)
        if t is not None:
            return t
        if not name:
            return None
        t = self.base_types.get(name)
        if t is not None or self.tool_mode or name in self._not_primitive:
            return t
        assert self.is_primitive is not None
        if self.is_primitive(name):
            t = self.base_types[name] = ElementType(name, PRIMITIVE)
            return t
        self._not_primitive.add(name)
        return None

    def force_element_type(self, name: str, report: bool = True) -> ElementType:
        """The class called ``name``, inventing one if it does not exist."""
        t = self.element_type(name)
        if t is not None:
            return t
        if self.tool_mode:
            if name in self.c.element_map:
                self.lerror(f"'{name}' was previously used as an element name")
            t = self.base_types[name] = ElementType(name, PRIMITIVE)
            return t
        if report:
            self.lerror(f"unknown element class '{name}'")
        return self.add_type(name, ERROR)

    def add_type(self, name: str, kind: str, compound: Compound | None = None,
                 class_name: str | None = None) -> ElementType:
        t = ElementType(name, kind, compound, class_name)
        if name:
            self.types[name] = t
        return t

    # -- elements -----------------------------------------------------------------
    def get_element(self, name: str, etype: ElementType, config: str = "", filename: str = "",
                    lineno: int = 0) -> int:
        """Index of element ``name`` in the current body, declaring it if new."""
        c = self.c
        idx = c.element_map.get(name)
        if idx is not None:
            return idx
        if _has_numeric_component(name):
            self.lerror(f"element name '{name}' has all-digit component")
        if not filename and not lineno:
            filename, lineno = self.file.filename, self.file.lineno
        return c.add_element(name, etype, config, filename, lineno)

    def anon_name(self, class_name: str) -> str:
        # The leading ';' marks the name as provisional until the body is finished.
        return f";{class_name}@{len(self.c.types) - self.c.anonymous_offset + 1}"

    def add_tunnels(self, name: str) -> list[int]:
        """Declare ``name``, ``name/input`` and ``name/output`` as tunnel elements:
        connections into ``name`` continue out of ``name/input``, and connections
        into ``name/output`` continue out of ``name``."""
        names = (name, name + "/input", name + "/output")
        idxs = []
        ok = True
        c = self.c
        for n in names:
            idx = self.get_element(n, TUNNEL_TYPE)
            idxs.append(idx)
            if c.types[idx].kind != TUNNEL:
                self.redeclaration_error("element", n, self.file.landmark(), c.element_landmark(idx))
                ok = False
        if ok and c.depth == 0:
            ends = []
            for i, (idx, n) in enumerate(zip((idxs[0], idxs[1], idxs[2], idxs[0]),
                                             names + (name,), strict=True)):
                te = self.tunnels.find(idx, 0, bool(i % 2), True)
                ends.append(te)
                if te is not None and te.other is not None:
                    self.redeclaration_error("connection tunnel", n, self.file.landmark(),
                                             c.element_landmark(idx))
                    ok = False
            if ok:
                ends[0].pair_with(ends[1])
                ends[2].pair_with(ends[3])
        return idxs

    def redeclaration_error(self, what: str, name: str, landmark: str, old_landmark: str) -> None:
        self.errh.error(f"redeclaration of {what} '{name}'", landmark)
        self.errh.error(f"'{name}' previously declared here", old_landmark)

    # -- statements ---------------------------------------------------------------
    def parse(self) -> None:
        self.statements(ParseState(FILE, None))

    def statements(self, ps: ParseState) -> Lexeme:
        """Parse statements until the end of ``ps``'s body; returns the token that
        ended it (``}``/``||``/EOF for compounds, ``)`` or the offending token for groups)."""
        while True:
            t = self.lex()
            k = t.kind
            if k in (IDENT, "[", "{", "(", ARROW, ARROW2):
                self.unlex(t)
                self.connection(ps)
            elif k == ELEMENTCLASS:
                self.elementclass(ps)
            elif k == REQUIRE:
                self.require()
            elif k == DEFINE:
                self.define()
            elif k == ";":
                pass
            elif k == "}" or k == BAR2:
                if ps.kind == COMPOUND_BODY:
                    return t
                self.syntax_error(t)
                if ps.kind == GROUP:
                    self.unlex(t)
                    return t
            elif k == ")":
                if ps.kind == GROUP:
                    return t
                self.syntax_error(t)
            elif k == EOF:
                if ps.kind == GROUP:
                    self.lerror("expected ')'")
                elif ps.kind == COMPOUND_BODY:
                    self.lerror("expected '}'")
                return t
            else:
                self.syntax_error(t)

    # -- connections --------------------------------------------------------------
    def connection(self, ps: ParseState) -> None:
        """A declaration or a chain ``elements -> elements -> ...``."""
        while True:
            ps.decls = []
            ps.current = []
            ps.any_implicit = ps.any_ports = False
            complete = True
            while True:
                if not self.element_ref(ps):
                    complete = False
                    break
                t = self.lex()
                if t.kind == ",":
                    continue
                self.unlex(t)
                self.finish_element_list(ps, t)
                break
            if not complete or not self.connector(ps):
                break
        self.connection_done(ps)

    def element_ref(self, ps: ParseState) -> bool:
        """``[ports] name-or-class [:: Class] [(config)] [ports]``.  Returns False
        when no element was found and the connection is over."""
        g = ps.group = PortGroup()
        ps.current.append(g)
        self.port_list(ps, False)
        t = self.lex()
        k = t.kind
        implicit = False
        if k == IDENT:
            name = t.text
            self.element_decl(ps, name, self.element_type(name), True, False)
            return True
        if k == "{":
            etype = self.compound_class(ps, "")
            self.element_decl(ps, etype.name, etype, False, False)
            return True
        if k == "(":
            self.group(ps)
            return True
        nested = self.c.depth > 0 or ps.parent is not None
        first = not ps.last
        at_start = len(ps.current) == 1
        if nested and k in _ARROWS:
            implicit = first and (bool(g.ins) or at_start)
            if implicit and not g.ins and not ps.ends_output:
                self.errh.warning(f"suggest 'input {t.text}' or '[0] {t.text}' to start connection",
                                  self.file.landmark())
        elif nested and k == ",":
            implicit = bool(g.ins)
        elif nested and k != COLON2:
            implicit = not first and (bool(g.ins) or at_start)
        if implicit:
            # A missing element inside a compound or group means the input
            # pseudo-element at the start of a chain, output at the end.
            ps.any_implicit = True
            if first:
                g.ins, g.outs = g.outs, g.ins
            self.unlex(t)
            name = "input" if first else "output"
            self.element_decl(ps, name, self.element_type(name), False, True)
            return True
        if g.ins:
            self.lerror("stranded port ignored")
        ps.current.pop()
        if at_start:
            if nested and first:
                self.unlex(t)
            else:
                self.syntax_error(t)
            return False
        return True

    def element_decl(self, ps: ParseState, name: str, etype: ElementType | None, bare: bool,
                     implicit: bool) -> None:
        e = ElementDecl(name, etype, bare, self.file.filename, self.file.lineno, ps.group)
        ps.decls.append(e)
        t = self.lex()
        if t.kind == COLON2 and not implicit:
            e.bare = False
            t = self.lex()
            if t.kind == IDENT:
                e.decl_type = self.force_element_type(t.text)
                t = self.lex()
            elif t.kind == "{":
                e.decl_type = self.compound_class(ps, "")
                self.element_config(ps, e, False)
                return
            else:
                self.lerror("missing element type in declaration")
                e.decl_type = self.force_element_type(e.name)
        self.unlex(t)
        self.element_config(ps, e, implicit)

    def element_config(self, ps: ParseState, e: ElementDecl, implicit: bool) -> None:
        t = self.lex()
        if t.kind == "(" and not implicit:
            if e.name in self.c.element_map:
                self.lerror("configuration string ignored on element reference")
            e.config = self.lex_config()
            self.expect(")")
            e.bare = False
            t = self.lex()
        self.unlex(t)
        if t.kind == "[" and not implicit:
            ps.group.outs = []
            self.port_list(ps, True)
        if ps.group.ins or ps.group.outs:
            ps.any_ports = True

    def port_list(self, ps: ParseState, isoutput: bool) -> None:
        """``[0, 2-4, ]``: ports in order; an empty last entry (or ``[]``) appends -1."""
        if not self.expect("[", True):
            return
        ports = ps.group.outs if isoutput else ps.group.ins
        last = -1
        dash = False
        while True:
            t = self.lex()
            if t.kind == IDENT:
                port = parse_or_none(parse_int, t.text)
                if port is None or port < 0:
                    self.lerror("syntax error: port number should be integer")
                    port = 0
                elif port > MAX_PORT:
                    self.lerror("syntax error: port number too large")
                    port = 0
                if dash:
                    if port > last:
                        ports.extend(range(last + 1, port + 1))
                    last = max(last + 1, port + 1)
                else:
                    ports.append(port)
                    last = port
            elif t.kind == "]":
                if not ports:
                    ports.append(0)
                ports.append(-1)
                break
            else:
                self.lerror("syntax error: expected port number")
                self.unlex(t)
                break
            t = self.lex()
            if t.kind == "]":
                break
            if t.kind == "-" and not dash:
                dash = True
            elif t.kind == ",":
                dash = False
            else:
                self.lerror("syntax error: expected ','")
                self.unlex(t)

    def finish_element_list(self, ps: ParseState, lookahead: Lexeme) -> None:
        """Declare or look up every element of the list just parsed."""
        arrow = lookahead.kind in _ARROWS
        if ps.any_implicit and ps.last and arrow:
            self.lerror("implicit ports used in the middle of a chain")
        decls = ps.decls
        # "a, b, c :: Class(config)" declares all three, if a and b are bare names.
        if (len(decls) > 1 and not ps.last and not arrow and not ps.any_ports and not ps.any_implicit
                and all(d.bare for d in decls[:-1])):
            last = decls[-1]
            for d in decls[:-1]:
                d.decl_type = last.decl_type
                d.config = last.config
        c = self.c
        errh = self.errh
        for e in decls:
            existing = c.element_map.get(e.name, -1) if e.type is None else -1
            if e.type is not None or existing < 0:
                lm = landmark_string(e.filename, e.lineno)
                if e.decl_type is not None and (e.type is not None
                                                or (self.tool_mode and e.name == e.decl_type.name)):
                    errh.error(f"class '{e.name}' used as element name", lm)
                elif e.decl_type is None and e.type is None:
                    if self.tool_mode:
                        e.type = self.force_element_type(e.name)
                    else:
                        errh.error(f"undeclared element '{e.name}'", lm)
                        e.type = self.force_element_type(e.name, False)
                if e.type is not None:
                    e.name = self.anon_name(e.name)
                etype = e.type if e.type is not None else e.decl_type
                assert etype is not None
                e.group.idx = self.get_element(e.name, etype, e.config, e.filename, e.lineno)
            else:
                if e.decl_type is not None:
                    lm = landmark_string(e.filename, e.lineno)
                    errh.error(f"redeclaration of element '{e.name}'", lm)
                    if c.types[existing].kind != TUNNEL:
                        errh.error(f"element '{e.name}' previously declared here",
                                   c.element_landmark(existing))
                e.group.idx = existing
        ps.decls = []

    def connector(self, ps: ParseState) -> bool:
        """After an element list: connect it to the previous one, then read the
        arrow (True) or find the end of the statement (False)."""
        if not ps.last:
            self.check_useless(ps.current, False)
        else:
            self.connect_all(ps.last, ps.current, ps.connector)
        ps.last = ps.current
        ps.current = []
        while True:
            t = self.lex()
            k = t.kind
            if k == "," or k == COLON2:
                self.syntax_error(t)
                continue
            if k in _ARROWS:
                ps.connector = k
                return True
            if k in _CONNECTION_END_PUSHBACK:
                self.unlex(t)
                return False
            if k == ";" or k == EOF:
                return False
            self.syntax_error(t)
            if is_multichar_kind(k):
                self.unlex(t)
            return False

    def connection_done(self, ps: ParseState) -> None:
        self.check_useless(ps.last, True)
        out_idx = self.c.element_map.get("output", -1)
        ps.ends_output = len(ps.last) == 1 and ps.last[0].idx == out_idx
        ps.last = []

    def check_useless(self, groups: list[PortGroup], isoutput: bool) -> None:
        for g in groups:
            if g.outs if isoutput else g.ins:
                self.lerror("output ports ignored at end of chain" if isoutput
                            else "input ports ignored at start of chain")
                break

    def connect_all(self, outputs: list[PortGroup], inputs: list[PortGroup], connector: str) -> None:
        landmark = self.file.landmark()
        for f, fp, t, tp in match_ports(outputs, inputs, connector == ARROW2, self.lerror):
            self.c.connect(f, fp, t, tp, landmark)

    # -- groups and compounds -------------------------------------------------------
    def group(self, ps: ParseState) -> None:
        """``( statements )``: an inline group whose ``input``/``output`` refer to
        the group's own ports.  The group becomes a tunnel element."""
        c = self.c
        name = self.anon_name("")
        idxs = self.add_tunnels(name)
        saved_in = c.element_map.get("input", -1)
        saved_out = c.element_map.get("output", -1)
        c.set_map("input", idxs[1])
        c.set_map("output", idxs[2])
        child = ParseState(GROUP, ps)
        if child.depth >= MAX_DEPTH:
            self.lerror("maximum element group nesting depth exceeded")
        else:
            self.statements(child)
        landmark = self.file.landmark()
        label = "<anonymous group>" if name.startswith(";") else name
        nin = c.check_pseudoelement(c.element_map.get("input", idxs[1]), False, label, self.errh, landmark)
        nout = c.check_pseudoelement(c.element_map.get("output", idxs[2]), True, label, self.errh, landmark)
        c.set_map("input", saved_in)
        c.set_map("output", saved_out)
        # An unported group side implicitly lists all of the group's ports.
        g = ps.group
        if not g.ins:
            g.ins = list(range(nin))
        if not g.outs:
            g.outs = list(range(nout))
        self.element_decl(ps, name, None, False, False)

    def compound_class(self, ps: ParseState, name: str) -> ElementType:
        """Parse ``{ body || body ... [|| ...] }`` after the opening brace and return
        the new class.  Class definitions made inside a body do not leak out."""
        saved_types = dict(self.types)
        saved_c = self.c
        first: Compound | None = None
        last: Compound | None = None
        extension: ElementType | None = None
        while True:
            t = self.lex()
            if t.kind == DOTS:
                # '...' continues with the definition visible before this one.
                # (Click looks the name up in its current class table, which
                # after two or more '||' alternatives already holds one of
                # them; that makes the overloads circular and resolving them
                # can loop forever, so we use the table as it was before.)
                extension = self.element_type(name, saved_types)
                if extension is None:
                    self.lerror(f"cannot extend unknown element class '{name}'")
                    extension = self.add_type(name, ERROR)
                t = self.lex()
                if first is None or t.kind != "}":
                    self.lerror("'...' should occur last, after one or more compounds")
                self.unlex(t)
                continue
            comp = Compound(name, self.file.landmark(), saved_c.scope)
            self.c = comp
            child = ParseState(COMPOUND_BODY, ps)
            self.get_element("input", TUNNEL_TYPE)
            self.get_element("output", TUNNEL_TYPE)
            comp.anonymous_offset = 2
            self.unlex(t)
            self.compound_arguments(comp)
            if child.depth >= MAX_DEPTH:
                self.lerror("maximum compound element nesting depth exceeded")
                end = EOF_LEXEME
            else:
                end = self.statements(child)
            self.types = dict(saved_types)
            self.c = saved_c
            comp.finish(self.errh)
            if last is not None:
                last.overload = self.add_type(name, COMPOUND, comp)
            else:
                first = comp
            last = comp
            if end.kind == BAR2:
                continue
            last.overload = extension
            return self.add_type(name, COMPOUND, first)

    def compound_arguments(self, comp: Compound) -> None:
        """Formal parameters: ``$a, KEYWORD $b, __REST__ $c |``."""
        while True:
            keyword = ""
            t1 = self.lex()
            if t1.kind == IDENT:
                t2 = self.lex()
                if t2.kind == VARIABLE:
                    keyword, varname = t1.text, t2.text
                else:
                    if comp.scope.size() > 0:
                        self.lerror("expected variable")
                    self.unlex(t2)
                    self.unlex(t1)
                    return
            elif t1.kind == VARIABLE:
                varname = t1.text
            elif t1.kind == "|":
                return
            else:
                if comp.nformals > 0:
                    self.lerror("expected variable")
                self.unlex(t1)
                return
            comp.define(varname, keyword, True, self.lerror)
            sep = self.lex()
            if sep.kind == "|":
                return
            if sep.kind != ",":
                self.lerror("expected ',' or '|'")
                self.unlex(sep)
                return

    def elementclass(self, ps: ParseState) -> None:
        tname = self.lex()
        if tname.kind == IDENT:
            name = tname.text
        else:
            self.unlex(tname)
            self.lerror("expected element type name")
            name = ""
        tnext = self.lex()
        if tnext.kind == "{":
            self.compound_class(ps, name)
        elif tnext.kind == IDENT:
            t = self.force_element_type(tnext.text)
            self.add_type(name, t.kind, t.compound, t.class_name)
        else:
            self.syntax_error(tnext)
            self.add_type(name, ERROR)

    # -- require and define -----------------------------------------------------------
    def require(self) -> None:
        if not self.expect("("):
            return
        text = self.lex_config()
        self.expect(")")
        self.expect(";", True)   # consumed now so a library is read at statement level
        for arg in split_args(text):
            words = split_words(arg)
            if not words:
                continue
            rtype = parse_or_none(parse_word, words[0]) or ""
            if rtype and rtype not in ("compact_config", "package", "library") and len(words) == 1:
                words.append(rtype)   # require(NAME) means require(package NAME)
                rtype = "package"
            value = ""
            if rtype == "compact_config" and len(words) == 1:
                self.compact_config = True
            elif rtype in ("package", "library") and len(words) == 2 and (
                    parse_or_none(parse_string, words[1]) is not None):
                value = parse_string(words[1])
                if rtype == "library":
                    self.require_library(value)
                    continue
            else:
                self.lerror("syntax error at requirement")
                continue
            if self.require_hook is not None:
                self.require_hook(rtype, value, self.errh)
            self.requirements.append((rtype, value))

    def find_library(self, name: str, directory: str) -> str | None:
        if name.startswith("/"):
            return name
        for base in [directory] + self.library_dirs:
            prefix = base if base.endswith("/") else base + "/"
            candidates = [prefix + name] if base == directory else [
                prefix + "conf/click/" + name, prefix + "conf/" + name, prefix + name]
            for path in candidates:
                if os.path.isfile(path):
                    return path
        return None

    def require_library(self, name: str) -> None:
        if self.c.depth:
            self.lerror("'require library' must be used at file scope")
            return
        current = self.file.filename
        slash = current.rfind("/")
        directory = current[:slash] if slash > 0 else "."
        path = self.find_library(name, directory)
        if path is None:
            self.lerror(f"library '{printable(name)}' not found in CLICKPATH/conf")
            return
        if path in self.libraries:
            return
        self.libraries.append(path)
        try:
            with open(path, "rb") as f:
                data = f.read().decode("latin-1")   # bytes as characters, like the driver
        except (OSError, ValueError) as err:   # ValueError: NUL in the name
            reason = getattr(err, "strerror", None) or "No such file or directory"
            self.errh.error(f"{path}: {reason}", self.file.landmark())
            return
        saved_file, saved_unlexed = self.file, self.unlexed
        self.file, self.unlexed = Tokenizer(data, path), []
        try:
            self.statements(ParseState(FILE, None))
        finally:
            self.file, self.unlexed = saved_file, saved_unlexed

    def define(self) -> None:
        if not self.expect("("):
            return
        text = self.lex_config()
        self.expect(")")
        for arg in split_args(text):
            if not arg:
                continue
            var, value = shift_word(arg)
            if len(var) < 2 or var[0] != "$" or not all(is_var_char(ch) for ch in var[1:]):
                self.lerror("bad 'define' declaration: not a variable")
            else:
                self.c.define(var[1:], value, False, self.lerror)
