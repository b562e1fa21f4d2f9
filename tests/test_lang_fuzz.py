"""Round trips and robustness of clickos.lang.

* parse -> unparse -> parse gives the same flat router (both unparse styles);
* random and mutated texts never raise: problems come out as error messages.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickos.core.errors import SilentErrorHandler
from clickos.lang import FlatConfig, parse_config

PRIMITIVES = {"Idle", "Print", "Discard", "InfiniteSource", "Queue", "Tee", "Paint", "Message", "Counter"}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(text: str, tool: bool = False) -> tuple[FlatConfig | None, SilentErrorHandler]:
    errh = SilentErrorHandler()
    cfg = parse_config(text, errh=errh, is_primitive=None if tool else PRIMITIVES.__contains__)
    return cfg, errh


def shape(cfg: FlatConfig) -> tuple:
    return ([(e.name, e.class_name, e.config) for e in cfg.elements],
            [(c.from_index, c.from_port, c.to_index, c.to_port) for c in cfg.connections],
            cfg.requirements)


def assert_round_trip(text: str) -> None:
    cfg, errh = parse(text)
    if cfg is None:
        return
    for again_text in (cfg.unparse(), cfg.unparse_flatten()):
        again, errh2 = parse(again_text)
        assert errh2.lines == [], (again_text, errh2.lines)
        assert again is not None
        assert shape(again) == shape(cfg)
        # and unparsing is stable
        assert again.unparse() == cfg.unparse()


CORPUS = [
    "a, b, c, d :: Idle;\na [0,1,2] => ( -> c ), ( -> b ), d;\n",
    "analyzer, x1, x2 :: Idle;\nx1 -> analyzer -> x2;\nc :: Idle =>\n [1] analyzer [1],\n"
    "  foo :: { -> c2 :: Idle => (->), Paint(1) -> }\n-> post_classification :: Idle;\n",
    "elementclass Foo {\n   $a, $b | input -> Print(1) -> output\n"
    "|| $a, __REST__ $b | input -> Print(2) -> output\n"
    "}\nInfiniteSource(DATA \"\", LIMIT 1, STOP true)\n  -> Foo(A)\n  -> f::Foo(A, TWO B)\n"
    "elementclass Foo {\n   $a, $b | input -> Print(4) -> output\n|| ...\n}\nf -> Foo(A, B) -> Discard\n",
    "require(compact_config) define($n 5) elementclass Q { $c | input -> Queue($c) -> output }\n"
    "InfiniteSource -> Q($n) -> t :: Tee(2) => Discard, Print(\"x, 'y'\" /* c */) -> Discard;\n",
    "a, b :: Idle;\na -> { -> } -> b;\na [1] -> { [0] -> [0] } -> [1] b;\n",
    "a, b, c :: Idle;\na => b, c, [0,1] a;\n",
    "i, j :: Idle; i[0] -> [0]j; i[1] -> [1]j; j -> i; j [1] -> [1] i;",
    "m :: Message(\n# 100 \"foobar.click\"\n\"te)st\");\nm2 :: Message('\\\\' /* ) */);\n",
]


@pytest.mark.parametrize("text", CORPUS)
def test_round_trip_corpus(text: str) -> None:
    cfg, errh = parse(text)
    assert cfg is not None, errh.lines
    assert_round_trip(text)


# -- generated configurations ------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "x1", "q", "node_2", "@x", "Foo@7"])
CLASSES = st.sampled_from(sorted(PRIMITIVES))
CONFIGS = st.sampled_from(["", "1", "A B, C", '"quoted, (paren"', "'single $x'", "a /* c */ b", "(nested)",
                           "\\<41 42>", "x // comment\n", '"esc\\"aped"'])
PORTS = st.one_of(st.just(""), st.integers(0, 3).map(lambda p: f"[{p}]"))


@st.composite
def element_ref(draw, declared: list[str]) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0 and declared:
        return draw(st.sampled_from(declared))
    config = draw(CONFIGS)
    cls = draw(CLASSES)
    decl = f"{cls}({config})" if config else cls
    if choice == 1:
        name = draw(NAMES)
        if name not in declared:
            declared.append(name)
            return f"{name} :: {decl}"
    if choice == 3:
        return "(" + f"input -> {decl} -> output" + ")"
    return decl


@st.composite
def configurations(draw) -> str:
    declared: list[str] = []
    statements = []
    if draw(st.booleans()):
        statements.append("elementclass Box { $v | input -> Print($v) -> q :: Queue -> output "
                          "|| input -> output }")
        declared_box = True
    else:
        declared_box = False
    for _ in range(draw(st.integers(1, 6))):
        refs = [draw(element_ref(declared)) for _ in range(draw(st.integers(1, 4)))]
        if declared_box and draw(st.booleans()):
            refs.insert(1, f"Box({draw(st.integers(0, 9))})")
        parts = [refs[0]]
        for r in refs[1:]:
            parts.append(f"{draw(PORTS)} -> {draw(PORTS)} {r}")
        statements.append(" ".join(parts))
    return ";\n".join(statements) + ";\n"


@FUZZ
@given(configurations())
def test_round_trip_generated(text: str) -> None:
    assert_round_trip(text)


# -- robustness ----------------------------------------------------------------------

TOKENS = ["a", "b", "Idle", "Queue", "Foo", "input", "output", "$x", "${x-1}", "->", "=>", "::", "||", "...",
          "|", ",", ";", "(", ")", "[", "]", "{", "}", "0", "1", "-", "elementclass", "require", "define",
          "provide", "library", "package", "compact_config", '"', "'", "\\", "\\<", ">", "//", "/*", "*/",
          "\n", "\n#", "\n# 5 \"f\"\n", "#line", "@", "/", "__REST__", "KEY", "$", " "]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60), st.booleans())
def test_random_token_soup_never_raises(tokens: list[str], tool: bool) -> None:
    text = " ".join(tokens)
    cfg, errh = parse(text, tool)
    assert (cfg is None) == (errh.nerrors > 0)
    if cfg is not None:
        cfg.unparse()
        cfg.unparse_flatten()
        cfg.config_string()


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab(){}[]<>-=:|.,;$#/*\"'\\ \n\r\t0123@_I")), max_size=120))
def test_random_characters_never_raise(text: str) -> None:
    cfg, errh = parse(text)
    assert (cfg is None) == (errh.nerrors > 0)


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        pos = draw(st.integers(0, len(text) - 1))
        op = draw(st.integers(0, 2))
        if op == 0:
            text = text[:pos] + text[pos + draw(st.integers(1, 8)):]
        elif op == 1:
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        else:
            other = draw(st.integers(0, len(text) - 1))
            text = text[:pos] + text[other:other + 10] + text[pos:]
    return text


@FUZZ
@given(mutated(), st.booleans())
def test_mutated_configs_never_raise(text: str, tool: bool) -> None:
    cfg, errh = parse(text, tool)
    assert (cfg is None) == (errh.nerrors > 0)
    if cfg is not None and not tool:
        assert_round_trip(text)
