"""Configuration variables: scopes, ``$var`` expansion and compound argument matching."""

from __future__ import annotations

from clickos.core.confparse import (
    INT_INVALID,
    expand_references,
    is_var_char,
    parse_int_prefix,
    parse_or_none,
    shift_word,
    skip_space,
    take_keyword,
)


class VariableEnvironment:
    """One scope of variables, linked to its lexically enclosing scope.

    ``depth`` counts enclosing scopes; compound expansion uses it to find the
    scope a compound was *defined* in, which gives lexical (not dynamic) scoping.
    """

    __slots__ = ("names", "values", "_index", "depth", "parent")

    def __init__(self, parent: VariableEnvironment | None = None) -> None:
        self.names: list[str] = []
        self.values: list[str] = []
        self._index: dict[str, int] = {}
        self.depth = parent.depth + 1 if parent is not None else 0
        self.parent = parent

    def size(self) -> int:
        return len(self.names)

    def define(self, name: str, value: str, override: bool) -> bool:
        """Add ``name``; returns False if it already existed (its value is replaced
        only when ``override``)."""
        i = self._index.get(name)
        if i is not None:
            if override:
                self.values[i] = value
            return False
        self._index[name] = len(self.names)
        self.names.append(name)
        self.values.append(value)
        return True

    def parent_of(self, depth: int) -> VariableEnvironment | None:
        v: VariableEnvironment | None = self
        while v is not None and v.depth >= depth:
            v = v.parent
        return v

    def lookup(self, name: str) -> str | None:
        v: VariableEnvironment | None = self
        while v is not None:
            i = v._index.get(name)
            if i is not None:
                return v.values[i]
            v = v.parent
        return None

    def expand(self, var: str, vartype: str, depth: int, memo: dict | None = None) -> str | None:
        """Value of the reference ``var`` (the text inside ``${...}`` when vartype is
        ``{``), or None when it is undefined.  Handles ``${name-default}`` and
        ``${name[N]}`` (the Nth space-separated word of the value)."""
        name = var
        minus = -1
        index = -1
        if vartype == "{":
            end = len(var)
            s = skip_space(var, 0, end)
            begin = s
            while s < end and is_var_char(var[s]):
                s += 1
            name_end = s
            s = skip_space(var, s, end)
            if s < end and var[s] == "[":
                nstart = skip_space(var, s + 1, end)
                s, value, status = parse_int_prefix(var, nstart, end)
                if s > nstart and s < end and var[s] == "]" and status != INT_INVALID:
                    index = value
                    s = skip_space(var, s + 1, end)
                else:
                    index = -1
            if s < end and var[s] == "-":
                minus = s
            name = var[begin:name_end]
        found = self.lookup(name)
        if found is not None:
            value = expand_variables(found, self, False, depth + 1, memo)
            if index < 0:
                return value
            word = ""
            while index >= 0 and (value or word):
                word, value = shift_word(value)
                index -= 1
            return word
        if minus >= 0:
            return expand_variables(var[minus + 1:], self, False, depth + 1, memo)
        return None


def expand_variables(config: str, env: VariableEnvironment, expand_quote: bool = False,
                     depth: int = 0, memo: dict | None = None) -> str:
    """Replace ``$name``, ``${name}``, ``${name-default}`` and ``${name[N]}`` in ``config``
    (Click's ``cp_expand`` with a ``VariableEnvironment``; the scanning is
    :func:`~clickos.core.confparse.expand_references`).

    References inside single quotes and comments stay as written; values
    substituted inside double quotes are backslash-protected.  Undefined
    references are left untouched.
    """
    if "$" not in config:
        return config
    # Expansion is a pure function of (environment, reference, depth), so one
    # memo per top-level call keeps self-referencing values from taking
    # exponential time.
    if memo is None:
        memo = {}

    def lookup(name: str, vartype: str, ref_depth: int) -> str | None:
        key = (name, vartype, ref_depth)
        if key not in memo:
            memo[key] = env.expand(name, vartype, ref_depth, memo)
        return memo[key]

    return expand_references(config, lookup, expand_quote, depth)


def assign_arguments(args: list[str], params: list[str]) -> list[str] | None:
    """Match compound-element arguments against formal parameters.

    ``params`` holds one entry per formal: ``""`` for a positional parameter,
    the keyword for a keyword parameter, ``"__REST__"`` (last) to collect the
    leftovers.  Returns the value of each formal, or None if ``args`` do not fit
    (Click's ``cp_assign_arguments``).
    """
    n = len(params)
    if n == 0 or params[-1] == "":
        return list(args) if len(args) == n else None
    has_rest = params[-1] == "__REST__"
    nvalues = n - 1 if has_rest else n
    npositional = 0
    while npositional < nvalues and params[npositional] == "":
        npositional += 1
    keyword_slots = {}
    for j in range(npositional, nvalues):
        keyword_slots.setdefault(params[j], j)
    values: list[str | None] = [None] * nvalues
    used = [False] * len(args)
    supplied_positional = 0
    any_keywords = False
    bad_keyword = False
    for i, arg in enumerate(args):
        if supplied_positional >= npositional:
            kw = parse_or_none(take_keyword, arg)
            slot = keyword_slots.get(kw[0]) if kw is not None else None
            if slot is not None:
                values[slot] = kw[1]
                used[i] = True
                any_keywords = True
                continue
            if any_keywords:
                if not has_rest:
                    bad_keyword = True
                continue
        if supplied_positional < npositional:
            used[i] = True
            values[supplied_positional] = arg
        supplied_positional += 1
    if bad_keyword or any(v is None for v in values):
        return None
    if supplied_positional > npositional and not has_rest:
        return None
    result = [v if v is not None else "" for v in values]
    if has_rest:
        result.append(", ".join(a for a, u in zip(args, used, strict=True) if not u))
    return result
