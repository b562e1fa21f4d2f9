"""clickos.lang against the expectations of Click's own language tests.

Each test names the Click test (under test/ in Click's tree) whose expected
output it encodes; those tests need the runtime, so here we check the parse
and the flattened text directly.
"""

from __future__ import annotations

import re

import pytest

from clickos.core.errors import SilentErrorHandler
from clickos.lang import FlatConfig, parse_config

PRIMITIVES = {
    "Idle", "Print", "Discard", "InfiniteSource", "Paint", "Message", "DriverManager", "PushNull",
    "PullNull", "RatedSource", "Queue", "Tee", "Null", "Counter", "Script",
}


def is_primitive(name: str) -> bool:
    return name in PRIMITIVES


def parse(text: str, filename: str = "config", tool: bool = False,
          **kw) -> tuple[FlatConfig | None, list[str]]:
    errh = SilentErrorHandler()
    cfg = parse_config(text, filename, errh=errh, is_primitive=None if tool else is_primitive, **kw)
    return cfg, errh.lines


def parse_ok(text: str, filename: str = "config", tool: bool = False, **kw) -> FlatConfig:
    cfg, lines = parse(text, filename, tool, **kw)
    assert lines == []
    assert cfg is not None
    return cfg


def fix(text: str) -> list[str]:
    """What the lexer tests compare: continuation lines joined, '#' lines
    dropped, lines sorted."""
    text = text.replace("\n    ", " ")
    return sorted(line for line in text.split("\n") if line and not line.startswith("#"))


def matches(lines: list[str], expected: str) -> bool:
    """Compare with an expectation that may contain {{regex}} parts."""
    want = expected.strip("\n").split("\n")
    if len(lines) != len(want):
        return False
    for got, pattern in zip(lines, want, strict=True):
        parts = re.split(r"\{\{(.*?)\}\}", pattern)
        regex = "".join(re.escape(p) if i % 2 == 0 else p for i, p in enumerate(parts))
        if not re.fullmatch(regex, got):
            return False
    return True


def both_unparsers(text: str, filename: str = "config") -> list[list[str]]:
    """Sorted output of ``click -qo-`` and of ``click-flatten`` for ``text``."""
    user = parse_ok(text, filename)
    tool = parse_ok(text, filename, tool=True)
    return [fix(user.unparse()), fix(tool.unparse_flatten())]


OVERLOAD_CONFIG = """
elementclass Foo {
   $a, $b | input -> Print(1) -> output
|| $a, __REST__ $b | input -> Print(2) -> output
|| $a, TWO $b, __REST__ $c | input -> Print(3) -> output
}
InfiniteSource(DATA "", LIMIT 1, STOP true)
  -> Foo(A)
  -> f::Foo(A, TWO B)
elementclass Foo {
   $a, $b | input -> Print(4) -> output
|| ...
}
f -> Foo(A, B) -> Foo(A, B, C) -> Discard
"""


def test_compact_01() -> None:
    cfg = parse_ok("\nrequire(compact_config)" + OVERLOAD_CONFIG)
    expected = """require(compact_config);

InfiniteSource@1 :: InfiniteSource(DATA "", LIMIT 1, STOP true);
Discard@6 :: Discard;
Foo@2/Print@1 :: Print(2);
f/Print@1 :: Print(1);
Foo@4/Print@1 :: Print(4);
Foo@5/Print@1 :: Print(2);

InfiniteSource@1 -> Foo@2/Print@1
    -> f/Print@1
    -> Foo@4/Print@1
    -> Foo@5/Print@1
    -> Discard@6;
"""
    assert cfg.unparse() == expected
    # with require(compact_config) the 'config' handler shows the flat text
    assert cfg.config_string() == expected
    assert cfg.requirements == [("compact_config", "")]


@pytest.mark.parametrize("tool", [False, True])
def test_overload_01(tool: bool) -> None:
    cfg = parse_ok(OVERLOAD_CONFIG, tool=tool)
    prints = [e.config for e in cfg.elements if e.class_name == "Print"]
    assert prints == ["2", "1", "4", "2"]
    # the chain runs through the prints in that order
    order = []
    i = cfg.element_index("InfiniteSource@1")
    while True:
        nxt = [c.to_index for c in cfg.connections if c.from_index == i]
        if not nxt:
            break
        i = nxt[0]
        order.append(cfg.elements[i].config)
    assert order == ["2", "1", "4", "2", ""]
    # without compact_config the 'config' handler returns the source text
    assert cfg.config_string() == OVERLOAD_CONFIG
    # click-flatten's output piped into click behaves the same
    again = parse_ok(cfg.unparse_flatten())
    assert [e.config for e in again.elements if e.class_name == "Print"] == ["2", "1", "4", "2"]


def test_variables_01() -> None:
    cfg = parse_ok("""
elementclass Foo {
   $a | input -> Print("$a") -> Print("${a[0]}") -> Print("${a[2]}") -> Print("${a[3]}") -> output
}
elementclass Bar {
   $a, $n | input -> Print("${a[$n]}") -> output
}
elementclass Baz {
   $a | input -> Bar(${a[1]} ${a[0]}, ${a[2]}) -> output
}
InfiniteSource(DATA "", LIMIT 1, STOP true)
  -> Foo(A B C)
  -> Bar(D E F, 2)
  -> Baz(G H 1)
  -> Baz(I J 0)
  -> Discard
""")
    prints = [(e.name, e.config) for e in cfg.elements if e.class_name == "Print"]
    assert prints == [
        ("Foo@2/Print@1", '"A B C"'),
        ("Foo@2/Print@2", '"A"'),
        ("Foo@2/Print@3", '"C"'),
        ("Foo@2/Print@4", '""'),
        ("Bar@3/Print@1", '"F"'),
        ("Baz@4/Bar@1/Print@1", '"G"'),
        ("Baz@5/Bar@1/Print@1", '"J"'),
    ]


def test_input_01() -> None:
    plain = parse_ok("""
RatedSource(DATA "I love myself\\n", RATE 10000, LIMIT 10, STOP true)
   -> Print
   -> Discard
""")
    for body in ("""
elementclass RS {
   RatedSource(DATA "I love myself\\n", RATE 10000, LIMIT 10, STOP true)
      -> output
}
elementclass P {
   input[0] -> Print -> [0]output
}
elementclass D {
   input[0] -> Discard
}
RS -> P -> D
""", """
elementclass RS {
   __REST__ $rest | RatedSource($rest)
      -> output
}
elementclass P {
   input[0] -> Print -> [0]output
}
elementclass D {
   input[0] -> Discard
}
RS(DATA "I love myself\\n", RATE 10000, LIMIT 10, STOP true) -> P -> D
"""):
        for tool in (False, True):
            cfg = parse_ok(body, tool=tool)
            assert [(e.class_name, e.config) for e in cfg.elements] == [
                (e.class_name, e.config) for e in plain.elements]
            assert [(c.from_index, c.to_index) for c in cfg.connections] == [(0, 1), (1, 2)]


def test_lexer_01_class_used_as_element_name() -> None:
    # click-flatten: a name used as a class stays a class
    _, lines = parse("elementclass Foo {\n   A -> B;\n}\nA :: Idle;\n", tool=True)
    assert lines == ["config:4: class 'A' used as element name"]
    _, lines = parse("\nelementclass Foo {\n   A -> B;\n}\nA :: Idle;\n", tool=True)
    assert lines == ["config:5: class 'A' used as element name"]
    _, lines = parse("\nelementclass Foo {\n   A :: A -> B;\n}\nA :: Idle;\n", tool=True)
    assert lines == ["config:3: class 'A' used as element name", "config:5: class 'A' used as element name"]
    cfg, lines = parse("\nelementclass Foo {\n   A :: AA -> B;\n}\nA :: Idle;\n", tool=True)
    assert lines == [] and cfg is not None


def test_lexer_02_lexical_scoping() -> None:
    a = """elementclass Foo {
$a |
   DriverManager($a);
}
elementclass Far {
$a, $b |
   Foo($b);
}
Far(wait_stop stop, stop);
"""
    b = """elementclass Foo {
$a |
   elementclass Bar {
   $b |
      DriverManager($a);
   }
   elementclass Baz {
   $a |
      Idle; Bar($a);
   }
   Baz(fuckola);
}
Foo(stop);
"""
    assert both_unparsers(a) == [["Far@1/Foo@1/DriverManager@1 :: DriverManager(stop);"]] * 2
    assert both_unparsers(b) == [["Foo@1/Baz@1/Bar@2/DriverManager@1 :: DriverManager(stop);",
                                  "Foo@1/Baz@1/Idle@1 :: Idle;"]] * 2


def test_lexer_04_commas() -> None:
    assert both_unparsers("""a, b, c :: Idle;
p, q :: PullNull;
a, a[1] -> b -> p, q;
p -> [0]c, [1]c; q -> [2]c;
""") == [["a -> b -> p -> c;", "a :: Idle;", "a [1] -> b;", "b -> q -> [2] c;", "b :: Idle;",
          "c :: Idle;", "p -> [1] c;", "p :: PullNull;", "q :: PullNull;"]] * 2
    assert both_unparsers("a, b, c :: Idle;\na => b, c, [0,1] a;\n") == [
        ["a :: Idle;", "a [1] -> c;", "a [2] -> a -> b;", "a [3] -> [1] a;", "b :: Idle;", "c :: Idle;"]] * 2
    assert both_unparsers("a, b :: Idle;\na -> { -> } -> b;\na [1] -> { [0] -> [0] } -> [1] b;\n") == [
        ["a -> b;", "a :: Idle;", "a [1] -> [1] b;", "b :: Idle;"]] * 2
    for tool in (False, True):
        _, lines = parse("a, b, c, d :: Idle;\na [0,1] => [0,1,2] b;\nc [] => [] d;\n", "C.click", tool)
        assert lines == ["C.click:2: connection mismatch: 2 outputs connected to 3 inputs",
                         "C.click:3: at most one expandable port allowed per connection"]
        _, lines = parse("a, b, c, d :: Idle;\na [0,1,2] -> [0,1,2] b;\n", "C2.click", tool)
        assert lines == ["C2.click:2: syntax error: many-to-many connections require '=>'"]


LEXER_05_EXPECT = ["a -> c;", "a :: Idle;", "a [1] -> b;", "a [2] -> d;",
                   "b :: Idle;", "c :: Idle;", "d :: Idle;"]


@pytest.mark.parametrize("text", [
    "a, b, c, d :: Idle;\na [0,1,2] => ( -> c ), ( -> b ), d;\n",
    "a, b, c, d :: Idle;\na [0,1,2] => c, b, d;\n",
    "a, d :: Idle;\na => (-> c :: Idle), (-> b :: Idle), d;\n",
])
def test_lexer_05_groups(text: str) -> None:
    assert both_unparsers(text, "A.click") == [LEXER_05_EXPECT] * 2


def test_lexer_05_groups_b() -> None:
    text = """analyzer, x1, x2 :: Idle;
x1 -> analyzer -> x2;
c :: Idle =>
         [1] analyzer [1],
         (-> c2 :: Idle => (->), Paint(1) ->)
-> post_classification :: Idle;
"""
    expected = """Paint@{{\\d+}} :: Paint(1);
analyzer :: Idle;
analyzer [1] -> post_classification;
c -> [1] analyzer;
c :: Idle;
c [1] -> c2 -> post_classification;
c2 :: Idle;
c2 [1] -> Paint@{{\\d+}} -> post_classification;
post_classification :: Idle;
x1 -> analyzer -> x2;
x1 :: Idle;
x2 :: Idle;
"""
    for lines in both_unparsers(text, "B.click"):
        assert matches(lines, expected), lines


@pytest.mark.parametrize("text", [
    "elementclass Foo {\n    a, b, c, d :: Idle;\n    a [0,1,2] => c, b, d;\n}\nfoo::Foo;\n",
    "elementclass Foo {\n    a, b, c, d :: Idle;\n    a [0,1,2] => ( -> c ), ( -> b ), d;\n}\nfoo::Foo;\n",
    "elementclass Foo {\n    a, d :: Idle;\n    a => (-> c :: Idle), (-> b :: Idle), d;\n}\nfoo::Foo;\n",
])
def test_lexer_06_groups_in_compounds(text: str) -> None:
    assert both_unparsers(text, "A.click") == [["foo/" + line.replace(" -> ", " -> foo/")
                                                for line in LEXER_05_EXPECT]] * 2


def test_lexer_06_groups_in_compounds_b() -> None:
    text = """analyzer, x1, x2 :: Idle;
x1 -> analyzer -> x2;
c :: Idle =>
         [1] analyzer [1],
         foo :: { -> c2 :: Idle => (->), Paint(1) -> }
-> post_classification :: Idle;
"""
    expected = """analyzer :: Idle;
analyzer [1] -> post_classification;
c -> [1] analyzer;
c :: Idle;
c [1] -> foo/c2 -> post_classification;
foo/Paint@{{\\d+}} :: Paint(1);
foo/c2 :: Idle;
foo/c2 [1] -> foo/Paint@{{\\d+}} -> post_classification;
post_classification :: Idle;
x1 -> analyzer -> x2;
x1 :: Idle;
x2 :: Idle;
"""
    for lines in both_unparsers(text, "B.click"):
        assert matches(lines, expected), lines


def test_lexer_07_backslash() -> None:
    assert both_unparsers('m :: Message("\\\\");\n', "A.click") == [['m :: Message("\\\\");']] * 2


def test_lexer_08_line_directives() -> None:
    cfg = parse_ok('m :: Message(\n# 100 "foobar.click"\n"test");\n'
                   'm2 :: Message("test2");\nDriverManager(stop);\n', "A.click")
    assert [(e.name, e.landmark) for e in cfg.elements] == [
        ("m", "A.click:1"), ("m2", "foobar.click:101"), ("DriverManager@3", "foobar.click:102")]
    # the directive is cut out of the configuration string, its line break kept
    assert cfg.elements[0].config == '\n\n"test"'


@pytest.mark.parametrize("tool", [False, True])
def test_lexer_09_top_level_arrow(tool: bool) -> None:
    cfg, lines = parse("->Null;\n", "A.click", tool)
    assert cfg is None
    assert lines == ["A.click:1: syntax error near '->'"]


def test_landmarks_01() -> None:
    # what `cpp A | click` feeds to click
    text = '# 1 "A"\n# 1 "<built-in>"\n# 1 "<command-line>"\n# 1 "A"\n\nx :: Idle;\nyy :: Idle;\n' \
           '# 1 "./B" 1\nx :: Idle;\n# 5 "A" 2\ny :: PushNull;\nx[1] -> y -> x;\ny -> [1]x;\n'
    cfg, lines = parse(text, "<stdin>")
    assert cfg is None
    assert lines == ["./B:1: redeclaration of element 'x'", "A:2: element 'x' previously declared here"]


def test_library_01(tmp_path, monkeypatch) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "main").write_text("require(library lib, library lib3)\na :: A;\n")
    (tmp_path / "lib").write_text("require(library dir/lib2)\nelementclass A { b :: B; }\n")
    (tmp_path / "dir" / "lib2").write_text("elementclass B { i :: Idle; }\n")
    (tmp_path / "lib3").write_text("require(library lib)\n")
    monkeypatch.chdir(tmp_path)
    text = (tmp_path / "main").read_text()
    for tool in (False, True):
        cfg = parse_ok(text, "main", tool=tool)
        assert [e.name for e in cfg.elements] == ["a/b/i"]
        assert fix(cfg.unparse()) == ["a/b/i :: Idle;"]
        assert cfg.requirements == []     # libraries are consumed
        assert cfg.elements[0].landmark == "./dir/lib2:1"
    # each library is read once: lib3's require(library lib) is a no-op
    cfg = parse_ok("require(library lib)\nrequire(library lib)\na :: A;\n", "main")
    assert len(cfg.elements) == 1


def test_library_dirs(tmp_path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mylib.click").write_text("elementclass Two { input -> Idle -> output }\n")
    cfg = parse_ok("require(library mylib.click)\nIdle -> Two -> Idle;\n", "config",
                   library_dirs=[str(tmp_path)])
    assert [e.name for e in cfg.elements] == ["Idle@1", "Idle@3", "Two@2/Idle@1"]


def test_idle_01_inline_ports() -> None:
    cfg = parse_ok("i, j :: Idle;\ni[0] -> [0]j;\ni[1] -> [1]j;\ni[2] -> [2]j;\ni[3] -> [3]j;\n", "CONFIG")
    assert [(c.from_index, c.from_port, c.to_index, c.to_port) for c in cfg.connections] == [
        (0, p, 1, p) for p in range(4)]


def test_anonymous_compound_names() -> None:
    cfg = parse_ok("a, b :: Idle; a -> { input -> x :: Idle -> output } -> b;\n"
                   "c :: { input -> Idle -> output }; b -> c -> a;")
    assert [e.name for e in cfg.elements] == ["a", "b", "@3/x", "c/Idle@1"]


def test_synonyms_keep_primitive_class() -> None:
    cfg = parse_ok("elementclass Sink Discard; s :: Sink; Idle -> s; Idle -> Sink;")
    assert [(e.name, e.class_name) for e in cfg.elements] == [
        ("s", "Discard"), ("Idle@2", "Idle"), ("Idle@3", "Idle"), ("Sink@4", "Discard")]


def test_keyword_and_rest_parameters() -> None:
    cfg = parse_ok("elementclass F { $a, COUNT $count, __REST__ $rest | Idle($a/$count/$rest) }\n"
                   "F(1, 2, COUNT 3, FOO 4);")
    assert cfg.elements[0].config == "1/3/2, FOO 4"


def test_defines_and_command_line() -> None:
    text = "define($a 2, $b x$a); Message($a $b ${c-dflt} ${a-zz} '$a' \"$b\")"
    cfg = parse_ok(text)
    assert cfg.elements[0].config == "2 x2 dflt 2 '$a' \"x2\""
    # command-line settings override top-level defines
    cfg = parse_ok(text, defines={"a": "9", "c": "C"})
    assert cfg.elements[0].config == "9 x9 C 9 '$a' \"x9\""
    # definitions take effect regardless of order
    assert parse_ok("Message($z); define($z 7)").elements[0].config == "7"
    # comments keep variables from expanding
    assert parse_ok("define($a 1) Message($a /* $a */ // $a\n)").elements[0].config == "1 /* $a */ // $a\n"


def test_click_flatten_keeps_globals() -> None:
    cfg = parse_ok("define($a 2); Message($a, ${a}); elementclass F { $x | Message($x $a) } F(1)",
                   tool=True, expand_globals=False)
    assert [e.config for e in cfg.elements] == ["$a, $a", "1 $a"]
    assert cfg.defines == [("a", "2")]
    text = cfg.unparse_flatten()
    assert text.startswith("define($a 2);\n\n")
    again = parse_ok(text)
    assert [e.config for e in again.elements] == ["2, 2", "1 2"]


def test_unparse_flatten_line_directives() -> None:
    cfg = parse_ok("a :: Idle;\n\nb :: Idle; a -> b;\n", "x.click")
    assert cfg.unparse_flatten() == ('# 1 "x.click"\na :: Idle;\n# 3 "x.click"\nb :: Idle;\n'
                                     '# 6 ""\na -> b;\n')
    assert cfg.unparse() == "a :: Idle;\nb :: Idle;\n\na -> b;\n"


def test_unparse_requirements_and_cycles() -> None:
    cfg = parse_ok('require(package "foo bar", compact_config, baz)\n'
                   'a, b :: Idle; a -> b -> a; b [1] -> [1] b;')
    assert cfg.requirements == [("package", "foo bar"), ("compact_config", ""), ("package", "baz")]
    assert cfg.unparse() == ('require(package "foo bar", compact_config, package "baz");\n\n'
                             "a :: Idle;\nb :: Idle;\n\n"
                             "b [1] -> [1] b;\nb -> a\n    -> b;\n")


def test_require_hook() -> None:
    seen = []

    def hook(rtype, value, errh):
        seen.append((rtype, value))
        if value == "missing":
            errh.error(f"requirement '{value}' not available")

    cfg, lines = parse("require(package ok, missing)\nIdle;", require_hook=hook)
    assert seen == [("package", "ok"), ("package", "missing")]
    assert cfg is None and lines == ["requirement 'missing' not available"]


def test_config_string_is_source() -> None:
    text = "// comment\nIdle -> Discard;\n"
    assert parse_ok(text).config_string() == text


def test_duplicate_connections_removed_and_sorted() -> None:
    cfg = parse_ok("a, b, c :: Idle; c -> b; a -> b; a -> b; a -> (->) -> b; b -> [1] a;")
    assert [(c.from_index, c.from_port, c.to_index, c.to_port) for c in cfg.connections] == [
        (1, 0, 0, 1), (0, 0, 1, 0), (2, 0, 1, 0)]


def test_double_quoted_variables_are_protected() -> None:
    cfg = parse_ok('elementclass F { $v | Message("<$v>", $v) } F("a\\"b$c")')
    assert cfg.elements[0].config == '"<\\"a\\\\\\"b\\$c\\">", "a\\"b$c"'


def test_performance_1000_elements() -> None:
    import time
    lines = ["elementclass Stage { $n | input -> Print($n) -> q :: Queue -> output }",
             "src :: InfiniteSource"]
    prev = "src"
    for i in range(1000):
        name = f"s{i}" if i % 10 else f"st{i}"
        decl = f"Stage({i})" if i % 10 == 0 else f'Print("e{i}", MAXLENGTH 10)'
        lines.append(f"{prev} -> {name} :: {decl} // step {i}")
        prev = name
    lines.append(f"{prev} -> Discard;")
    start = time.perf_counter()
    cfg = parse_ok("\n".join(lines))
    elapsed = time.perf_counter() - start
    assert len(cfg.elements) == 1000 + 100 + 2
    assert len(cfg.connections) == len(cfg.elements) - 1
    assert elapsed < 0.5


def test_extension_of_primitive_class() -> None:
    cfg = parse_ok("elementclass Queue {\n"
                   "  $cap, $rate | input -> Queue($cap) -> Print($rate) -> output || ... }\n"
                   "Idle -> Queue(10, 5) -> Queue(10) -> q :: Queue -> Idle;")
    assert [(e.name, e.class_name, e.config) for e in cfg.elements] == [
        ("Idle@1", "Idle", ""), ("Queue@3", "Queue", "10"), ("q", "Queue", ""), ("Idle@5", "Idle", ""),
        ("Queue@2/Queue@1", "Queue", "10"), ("Queue@2/Print@2", "Print", "5")]


def test_extension_after_several_overloads() -> None:
    # '...' continues with the earlier definition even after two alternatives
    cfg = parse_ok("elementclass Foo { $a | input -> Print(1) -> output }\n"
                   "elementclass Foo { $a, $b | input -> Print(2) -> output\n"
                   "|| $a, $b, $c | input -> Print(3) -> output || ... }\n"
                   "Idle -> Foo(x) -> Foo(x, y) -> Foo(x, y, z) -> Idle;")
    assert [e.config for e in cfg.elements if e.class_name == "Print"] == ["1", "2", "3"]
