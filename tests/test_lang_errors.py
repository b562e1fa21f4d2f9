"""Error messages of clickos.lang, worded and located as Click reports them."""

from __future__ import annotations

import pytest

from clickos.core.errors import SilentErrorHandler
from clickos.lang import parse_config

PRIMITIVES = {"Idle", "Print", "Discard", "InfiniteSource", "Message", "Queue", "Tee", "Null"}


def errors(text: str, filename: str = "config", **kw) -> list[str]:
    errh = SilentErrorHandler()
    cfg = parse_config(text, filename, errh=errh, is_primitive=PRIMITIVES.__contains__, **kw)
    assert (cfg is None) == (errh.nerrors > 0)
    return errh.lines


CASES = [
    # syntax
    ("->Null;", ["A.click:1: syntax error near '->'"]),
    ("Idle -> Discard; }", ["A.click:1: syntax error near '}'"]),
    ("a :: Idle; a -> ,Idle;", ["A.click:1: syntax error near ','"]),
    ("a :: Idle; a -> Idle; elementclass",
     ["A.click:1: expected element type name", "A.click:1: syntax error near ''"]),
    ("provide(x);", ["A.click:1: syntax error near 'provide'", "A.click:1: undeclared element 'x'"]),
    ("$x :: Idle;", ["A.click:1: syntax error near 'x'", "A.click:1: syntax error near '::'"]),
    ("Idle;\n\n  #\n", ["A.click:3: syntax error near '#'"]),
    ("Idle;\n#pragma once\nIdle;", ["A.click:2: unknown preprocessor directive"]),
    ("x :: Idle(1)(2);", ["A.click:1: syntax error near '('", "A.click:1: undeclared element '2'",
                          "A.click:1: syntax error near ')'"]),
    ('Message("\x01");\n\x01', ["A.click:2: syntax error near '^A'"]),
    # declarations
    ("a :: Idle;\na :: Idle;", ["A.click:2: redeclaration of element 'a'",
                                "A.click:1: element 'a' previously declared here"]),
    ("a :: Foo;", ["A.click:1: unknown element class 'Foo'"]),
    ("a :: Foo; b :: Foo;", ["A.click:1: unknown element class 'Foo'"]),
    ("x -> y;", ["A.click:1: undeclared element 'x'", "A.click:1: undeclared element 'y'"]),
    ("Idle :: Idle;", ["A.click:1: class 'Idle' used as element name"]),
    ("a :: Idle; a(1) -> Idle;", ["A.click:1: configuration string ignored on element reference"]),
    ("a :: ;", ["A.click:1: missing element type in declaration", "A.click:1: unknown element class 'a'"]),
    ("1/2 :: Idle;", ["A.click:1: element name '1/2' has all-digit component"]),
    ("elementclass ; ", ["A.click:1: expected element type name", "A.click:1: syntax error near ';'"]),
    ("elementclass X Y;", ["A.click:1: unknown element class 'Y'"]),
    # ports and connections
    ("a :: Idle; a [x] -> Idle;", ["A.click:1: syntax error: port number should be integer"]),
    ("a :: Idle; a [99999999999] -> Idle;", ["A.click:1: syntax error: port number should be integer"]),
    ("a :: Idle; a [0 1] -> Idle;", ["A.click:1: syntax error: expected ','"]),
    # (not in Click, which would try to allocate the ports)
    ("a :: Idle; a [70000] -> Idle;", ["A.click:1: syntax error: port number too large"]),
    ("a :: Idle; a [ -> Idle;", ["A.click:1: syntax error: expected port number"]),
    ("a :: Idle; Idle -> [1] ;", ["A.click:1: stranded port ignored", "A.click:1: syntax error near ';'"]),
    ("[1] a :: Idle;", ["A.click:1: input ports ignored at start of chain"]),
    ("a :: Idle [2];", ["A.click:1: output ports ignored at end of chain"]),
    ("a, b, c, d :: Idle;\na [0,1] => [0,1,2] b;\nc [] => [] d;",
     ["A.click:2: connection mismatch: 2 outputs connected to 3 inputs",
      "A.click:3: at most one expandable port allowed per connection"]),
    ("a, b :: Idle; a [0,1,2] -> [0,1,2] b;",
     ["A.click:1: syntax error: many-to-many connections require '=>'"]),
    ("a, b, c :: Idle; a [0, 1, 2, ] => b, c;",
     ["A.click:1: connection mismatch: 3 or more outputs connected to 2 inputs"]),
    ("a, b :: Idle; a [0,1] => [0-2, ] b;",
     ["A.click:1: connection mismatch: 2 outputs connected to 3 or more inputs"]),
    ("a, b, c :: Idle; a [0, ] => b, c, [0-3] a;", []),
    # configuration strings
    ('a :: Message("abc', ["A.click:1: expected ')'"]),
    ("a :: Message(/* abc \n\n", ["A.click:3: expected ')'"]),
    ("Idle -> Message(a) -> Idle -> Message(\n\"unterminated) -> Idle;\nIdle;", ["A.click:3: expected ')'"]),
    # compound elements
    ("elementclass Foo { $a | input -> Print($a) -> output }\nIdle -> Foo(1, 2, 3) -> Idle;",
     ["A.click:2: no match for 'Foo[3 arguments, 1 input, 1 output]'",
      "A.click:1: candidates are:",
      "A.click:1:   Foo(<arg>)[1 input, 1 output]"]),
    ("elementclass Foo {\n$a | input -> Print($a) -> output\n|| COUNT $a, __REST__ $b | input -> output\n}\n"
     "Idle -> Foo -> Idle;\n",
     # (Click reports this at the end of the file)
     ["A.click:6: no match for 'Foo[1 input, 1 output]'",
      "A.click:2: candidates are:",
      "A.click:2:   Foo(<arg>)[1 input, 1 output]",
      "A.click:3:   Foo(COUNT, ...)[1 input, 1 output]"]),
    ("Idle -> {$a | input -> output} -> Idle;",
     ["A.click:1: no match for '<anonymous>[1 input, 1 output]'",
      "A.click:1: candidates are:",
      "A.click:1:   <anonymous>(<arg>)[1 input, 1 output]"]),
    ("elementclass F { $a, X $x | Idle($a $x) } F(X 2);",
     ["A.click:1: no match for 'F[1 argument, 0 inputs, 0 outputs]'",
      "A.click:1: candidates are:",
      "A.click:1:   F(<arg>, X)[0 inputs, 0 outputs]"]),
    ("elementclass Foo { ... }", ["A.click:1: cannot extend unknown element class 'Foo'",
                                  "A.click:1: '...' should occur last, after one or more compounds"]),
    ("elementclass F { $a, $a | }", ["A.click:1: parameter '$a' multiply defined"]),
    ("elementclass F { $a | define($a 1) }", ["A.click:1: parameter '$a' multiply defined"]),
    ("elementclass F { X $a, X $b | }", ["A.click:1: repeated keyword parameter 'X' in compound element"]),
    ("elementclass F { X $a, $b | }",
     ["A.click:1: compound element parameters out of order",
      "A.click:1: (The correct order is '[positional], [keywords], [__REST__]'.)"]),
    ("elementclass F { $a $b | }", ["A.click:1: expected ',' or '|'", "A.click:1: syntax error near 'b'",
                                    "A.click:1: syntax error near '|'"]),
    ("elementclass F { $a, 3 | }", ["A.click:1: expected variable", "A.click:1: undeclared element '3'",
                                    "A.click:1: syntax error near '|'"]),
    ("elementclass F { input -> input; output -> output }",
     ["A.click:1: 'F' pseudoelement 'input' may only be used as output",
      "A.click:1: 'F' pseudoelement 'output' may only be used as input"]),
    ("elementclass F {\n  input[1] -> output }", ["A.click:2: 'F' input 0 missing"]),
    ("elementclass F { input -> Idle ", ["A.click:1: expected '}'"]),
    ("elementclass F { input -> output }\nf :: F; Idle -> [1] f -> Idle; f [1] -> Idle;",
     ["A.click:2: 'f' has no input 1", "A.click:2: 'f' input 0 unused", "A.click:2: 'f' has no output 1"]),
    ("elementclass F { input -> Idle -> output }\nf :: F; Idle -> f; ", ["A.click:2: 'f' output 0 unused"]),
    ("elementclass F { x :: Idle } ; f :: F;\nf/x :: Idle;",
     ["A.click:1: redeclaration of element 'f/x'", "A.click:2: 'f/x' previously declared here"]),
    ("elementclass F { x :: Idle }\nelementclass f/x Idle;\nf :: F;",
     ["A.click:3: 'f/x' is an element class"]),
    ("elementclass F {\n  input -> x :: Idle -> output;\n  Idle -> Idle -> output }\nIdle -> F -> Idle;",
     []),
    ("elementclass F { input -> Idle -> output; x :: Idle; x -> -> output }",
     ["A.click:1: syntax error near '->'"]),
    ("elementclass F { input -> Idle -> [0], Idle -> output }",
     ["A.click:1: implicit ports used in the middle of a chain",
      "A.click:1: 'F' pseudoelement 'output' may only be used as input"]),
    ("elementclass F { input -> x :: Idle; -> Idle -> output }",
     ["A.click:1: warning: suggest 'input ->' or '[0] ->' to start connection"]),
    ("{" * 52 + "}" * 52, ["A.click:1: maximum compound element nesting depth exceeded"] * 3
     + ["A.click:1: syntax error near '}'"] * 3),
    # groups
    ("a :: Idle; a -> (Idle -> output ",
     ["A.click:1: expected ')'", "A.click:1: output ports ignored at end of chain",
      "A.click:1: '@2' output 0 unused", "A.click:1: '@2' has no input 0"]),
    ("a :: Idle; a -> (-> b :: Idle }", ["A.click:1: syntax error near '}'"] * 2),
    ("a :: Idle; a => ([0]->[0]; [2]->Idle) -> Idle;",
     ["A.click:1: '<anonymous group>' input 1 missing", "A.click:1: '@2' has no input 1"]),
    ("a, b :: Idle; a -> (input -> output -> input) -> b;",
     ["A.click:1: '<anonymous group>' pseudoelement 'input' may only be used as output",
      "A.click:1: '<anonymous group>' pseudoelement 'output' may only be used as input",
      "A.click:1: '@3/output' used as output", "A.click:1: '@3/input' used as input"]),
    ("(" * 51 + ")" * 51, ["A.click:1: maximum element group nesting depth exceeded",
                           "A.click:1: configuration string ignored on element reference",
                           "A.click:1: syntax error near ')'"]),
    # require and define
    ("define(x 1);", ["A.click:1: bad 'define' declaration: not a variable"]),
    ("define($a 1, $a 2);", ["A.click:1: parameter '$a' multiply defined"]),
    ("define($a 1", ["A.click:1: expected ')'"]),
    ("define;", ["A.click:1: expected '('"]),
    ("require(package a b);", ["A.click:1: syntax error at requirement"]),
    ("require(library nonexist.click);", ["A.click:1: library 'nonexist.click' not found in CLICKPATH/conf"]),
    ("require(library /nonexistent/x.click)", ["A.click:1: /nonexistent/x.click: No such file or directory"]),
    ("elementclass F { require(library x); }", ["A.click:1: 'require library' must be used at file scope"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_error_messages(text: str, expected: list[str]) -> None:
    assert errors(text, "A.click") == expected


def test_warning_is_not_an_error() -> None:
    errh = SilentErrorHandler()
    cfg = parse_config("elementclass F { input -> x :: Idle; -> Idle -> output }\nIdle -> F -> Idle;",
                       errh=errh, is_primitive=PRIMITIVES.__contains__)
    assert cfg is not None
    assert errh.nerrors == 0 and errh.nwarnings == 1


def test_errors_in_library_use_library_landmark(tmp_path) -> None:
    (tmp_path / "lib.click").write_text("\nx :: Nonesuch;\n")
    main = tmp_path / "main.click"
    assert errors("require(library lib.click);\nIdle;", str(main)) == [
        f"{tmp_path}/lib.click:2: unknown element class 'Nonesuch'"]


def test_unknown_class_scoped_to_compound() -> None:
    # an unknown class is reported once per scope
    assert errors("elementclass F { a :: Foo; b :: Foo } a :: Foo; b :: Foo; F;") == [
        "config:1: unknown element class 'Foo'", "config:1: unknown element class 'Foo'"]


def test_empty_and_comment_only_configs() -> None:
    for text in ("", "// nothing\n", "/* unterminated comment", "\n\n;;\n"):
        errh = SilentErrorHandler()
        cfg = parse_config(text, errh=errh, is_primitive=PRIMITIVES.__contains__)
        assert cfg is not None and cfg.elements == [] and errh.lines == []
