"""The configuration-string helpers the language front end uses (clickos.core.confparse)
and variable expansion (clickos.lang.variables)."""

from __future__ import annotations

from functools import partial

import pytest

from clickos.core import confparse as cp
from clickos.core.confparse import (
    INT_OK,
    INT_RANGE,
    parse_int_prefix,
    parse_or_none,
    printable,
    quote,
    shift_word,
    split_args,
    split_words,
    uncomment,
    unquote,
)
from clickos.lang.lexer import Tokenizer
from clickos.lang.variables import VariableEnvironment, assign_arguments, expand_variables

# The parser calls these the way Click's lexer calls XArg::parse(str, result):
# silently, failure being None.
parse_int = partial(parse_or_none, cp.parse_int)
parse_string = partial(parse_or_none, cp.parse_string)
parse_word = partial(parse_or_none, cp.parse_word)
parse_keyword = partial(parse_or_none, cp.take_keyword)


@pytest.mark.parametrize(("text", "args"), [
    ("", []),
    ("a, b, c", ["a", "b", "c"]),
    ("  a /*?*/ b,  c, ", ["a b", "c"]),
    ('"x, y" // ?', ['"x, y"']),
    ("a,,", ["a", ""]),
    (",", [""]),
    ("a // c\n, b", ["a", "b"]),
    ("'a,b', \\<2c>, c", ["'a,b'", "\\<2c>", "c"]),
    ("a /* unterminated", ["a"]),
    ("a //", ["a"]),
])
def test_split_args(text: str, args: list[str]) -> None:
    assert split_args(text) == args


def test_uncomment_and_words() -> None:
    assert uncomment("  a   b  ") == "a   b"
    assert uncomment("  a /* Comment */       b  ") == "a b"
    assert uncomment('  " /*???  */ "  ') == '" /*???  */ "'
    assert split_words("a  b, c") == ["a", "b,", "c"]
    assert split_words("  'a /*?*/ b'c") == ["'a /*?*/ b'c"]
    assert shift_word("  one /* x */ two three") == ("one", "two three")
    assert shift_word("") == ("", "")


@pytest.mark.parametrize(("text", "value"), [
    ('"\\n" abc /* 123 */ \'/* def */\'', "\n abc /* def */"),
    ('a"b"c', "abc"),
    ('"\\<48 45 4c 4C 4f>"', "HELLO"),
    ("\\<48 /* x */ 49>", "HI"),
    ('"\\101\\x42\\$\\,"', "AB$,"),
    ('"tab\\tend\\\nmore"', "tab\tendmore"),
    ("'\\n'", "\\n"),
    ('"unterminated', "unterminated"),
])
def test_unquote(text: str, value: str) -> None:
    assert unquote(text) == value


@pytest.mark.parametrize("value", ["", "plain", 'with "quotes"', "back\\slash", "$var", "tab\tnl\ncr\r",
                                   "\x01\x7f", "héllo"])
def test_quote_round_trip(value: str) -> None:
    quoted = quote(value)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert unquote(quoted) == value


def test_quote_format() -> None:
    assert quote("") == '""'
    assert quote('a"$\\\n') == '"a\\"\\$\\\\\\n"'
    assert quote("\x01") == '"\\001"'
    assert quote("\xe9\u20ac") == '"\\351\u20ac"'


def test_parse_string_word_keyword() -> None:
    assert parse_string('"foo bar"') == "foo bar"
    assert parse_string("foo bar") is None
    assert parse_string("") is None
    assert parse_word("foo") == "foo"
    assert parse_word('"a,b"') is None
    assert parse_keyword("COUNT 3") == ("COUNT", "3")
    assert parse_keyword("A.B:C?!_1") == ("A.B:C?!_1", "")
    assert parse_keyword("A=1") is None
    assert parse_keyword("") is None


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("17", 17), ("0x1f", 31), ("0X1F", 31), ("017", 15), ("0b101", 5), ("1_000", 1000),
    ("+5", 5), ("-5", -5), ("2147483647", 2147483647), ("2147483648", None), ("08", None), ("1_", None),
    ("x", None), ("", None), ("0x", None), ("1a", None),
])
def test_parse_int(text: str, value: int | None) -> None:
    assert parse_int(text) == value


def test_parse_int_prefix() -> None:
    assert parse_int_prefix("12]", 0, 3) == (2, 12, INT_OK)
    assert parse_int_prefix("0x!", 0, 3) == (1, 0, INT_OK)
    assert parse_int_prefix("99999999999", 0, 11) == (11, 2147483647, INT_RANGE)
    assert parse_int_prefix("-99999999999", 0, 12) == (12, -2147483648, INT_RANGE)


def test_printable() -> None:
    assert printable("abc") == "abc"
    assert printable("\x01\x7f") == "^A\\177"
    assert printable("\xe9") == "\\351"      # a Latin-1 byte
    assert printable("\u20ac") == "\\342\\202\\254"


def env_with(**values: str) -> VariableEnvironment:
    env = VariableEnvironment(None)
    for k, v in values.items():
        env.define(k, v, False)
    return env


@pytest.mark.parametrize(("config", "expected"), [
    ("$a", "1"),
    ("${a}x", "1x"),
    ("$ax", "$ax"),
    ("${zz-def}", "def"),
    ("${a-def}", "1"),
    ("${zz-$a$a}", "11"),
    ("${w[0]} ${w[2]} [${w[3]}]", "A C []"),
    ("${w[-1]}", "A B C"),
    ("${w[$n]}", "B"),
    ("'$a' \"$a\"", "'$a' \"1\""),
    ('"$q"', '"\\"\\$"'),
    ("$q", '"$'),
    ("/* $a */ $a // $a", "/* $a */ 1 // $a"),
    ("$? $# $$ $( $", "$? $# $$ $( $"),
    ("${unterminated", "${unterminated"),
    ("${zz}", "${zz}"),
    ("${$n}", "${1}"),
    ("$self", "$self"),
    # Click returns the input unchanged if nothing precedes an empty expansion
    ("$e tail", "$e tail"),
    ("x$e tail", "x tail"),
])
def test_expand_variables(config: str, expected: str) -> None:
    env = env_with(a="1", w="A B C", n="1", q='"$', e="", self="$self")
    assert expand_variables(config, env) == expected


def test_expand_scopes() -> None:
    outer = env_with(a="outer", b="B")
    inner = VariableEnvironment(outer)
    inner.define("a", "inner", False)
    assert expand_variables("$a $b", inner) == "inner B"
    assert inner.parent_of(1) is outer
    assert expand_variables("$a", env_with(a="x"), expand_quote=True) == '"x"'


@pytest.mark.parametrize(("args", "params", "values"), [
    ([], [], []),
    (["1"], [], None),
    (["1", "2"], ["", ""], ["1", "2"]),
    (["1"], ["", ""], None),
    (["A"], ["", "__REST__"], ["A", ""]),
    (["A", "B", "C"], ["", "__REST__"], ["A", "B, C"]),
    (["A", "TWO B"], ["", "TWO", "__REST__"], ["A", "B", ""]),
    (["A", "B"], ["", "TWO", "__REST__"], None),
    (["1", "2", "COUNT 3", "FOO 4"], ["", "COUNT", "__REST__"], ["1", "3", "2, FOO 4"]),
    (["COUNT 3", "1"], ["COUNT"], None),
    (["COUNT 3", "BAD 1"], ["COUNT"], None),
    (["COUNT 3", "COUNT 4"], ["COUNT"], ["4"]),
    (["X"], ["X"], [""]),
])
def test_assign_arguments(args: list[str], params: list[str], values: list[str] | None) -> None:
    assert assign_arguments(args, params) == values


def test_tokenizer_lex_config_and_lines() -> None:
    t = Tokenizer('X(a(b) "c)" // d)\n /* ) */ (x)) rest', "f")
    t.pos = 2
    errors: list[str] = []
    assert t.lex_config(errors.append) == 'a(b) "c)" // d)\n /* ) */ (x)'
    assert t.lineno == 2 and t.text[t.pos] == ")"
    assert errors == []
    t = Tokenizer('x\r\ny\rz\n# 7 "g"\nw', "f")
    kinds = [t.next_lexeme(errors.append).text for _ in range(4)]
    assert kinds == ["x", "y", "z", "w"]
    assert t.landmark() == "g:7"
