"""Tests for clickos.core.confparse: Click's cp_* string helpers and Arg parsers.

Many expected values come from the checks in Click's ConfParseTest element."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickos.core import confparse as cp
from clickos.core.errors import ConfigError


def err(fn, *args, **kw) -> str:
    """The ConfigError message ``fn`` raises."""
    with pytest.raises(ConfigError) as info:
        fn(*args, **kw)
    return info.value.message


# ---------------------------------------------------------------------------------------
# String level
# ---------------------------------------------------------------------------------------

class TestUncomment:
    def test_click_examples(self) -> None:
        assert cp.uncomment("  a  b  ") == "a  b"
        assert cp.uncomment("  a /* whatever */   // whatever\n    b  ") == "a b"
        assert cp.uncomment('  " /*???  */ "  ') == '" /*???  */ "'

    def test_comments_only(self) -> None:
        assert cp.uncomment("  /* x */ // y\n  ") == ""
        assert cp.uncomment("") == ""

    def test_unterminated(self) -> None:
        assert cp.uncomment("a /* never closed") == "a"
        assert cp.uncomment("a //") == "a"
        assert cp.uncomment("'open quote /* x") == "'open quote /* x"

    def test_line_comment_crlf(self) -> None:
        assert cp.uncomment("a // c\r\nb") == "a b"
        assert cp.uncomment("a // c\rb") == "a b"

    def test_slash_not_comment(self) -> None:
        assert cp.uncomment("10/8") == "10/8"
        assert cp.uncomment("a / b") == "a / b"


class TestSplitArgs:
    def test_click_examples(self) -> None:
        assert cp.split_args("a, b, c") == ["a", "b", "c"]
        assert cp.split_args("  a /*?*/ b,  c, ") == ["a b", "c"]
        assert cp.split_args('"x, y" // ?') == ['"x, y"']

    def test_empty_and_blank(self) -> None:
        assert cp.split_args("") == []
        assert cp.split_args("   ") == []
        assert cp.split_args(" /* c */ ") == []

    def test_empty_pieces(self) -> None:
        assert cp.split_args(",") == [""]
        assert cp.split_args(", a") == ["", "a"]
        assert cp.split_args("a,,b") == ["a", "", "b"]
        assert cp.split_args("a,") == ["a"]

    def test_quotes_and_data_protect_commas(self) -> None:
        assert cp.split_args("'a, b', c") == ["'a, b'", "c"]
        assert cp.split_args('"a\\", b", c') == ['"a\\", b"', "c"]
        assert cp.split_args("\\<2c, 2c>, x") == ["\\<2c, 2c>", "x"]
        assert cp.split_args("a /* , */ b, c // ,\n d") == ["a b", "c d"]

    def test_backslash_comma_outside_quotes_splits(self) -> None:
        assert cp.split_args("a\\,b") == ["a\\", "b"]

    def test_parentheses_are_not_special(self) -> None:
        # Click's cp_argvec only knows quotes and comments.
        assert cp.split_args("f(a, b)") == ["f(a", "b)"]

    def test_join(self) -> None:
        assert cp.join_args(["a", "b c"]) == "a, b c"
        assert cp.join_args([]) == ""


class TestWords:
    def test_click_examples(self) -> None:
        assert cp.split_words("a  b, c") == ["a", "b,", "c"]
        assert cp.split_words("  'a /*?*/ b'c") == ["'a /*?*/ b'c"]

    def test_comments_end_words(self) -> None:
        assert cp.split_words("a/*x*/b // y\n c") == ["a", "b", "c"]
        assert cp.split_words('"a b" \\<61 62> c') == ['"a b"', "\\<61 62>", "c"]
        assert cp.split_words("") == []

    def test_shift_word(self) -> None:
        assert cp.shift_word("  foo  bar baz") == ("foo", "bar baz")
        assert cp.shift_word("foo /* c */ bar") == ("foo", "bar")
        assert cp.shift_word("   ") == ("", "")
        assert cp.shift_word("'a b' c") == ("'a b'", "c")

    def test_join_words(self) -> None:
        assert cp.join_words(["a", "b"]) == "a b"


class TestQuoting:
    def test_click_example(self) -> None:
        assert cp.unquote("\"\\n\" abc /* 123 */ '/* def */'") == "\n abc /* def */"

    def test_escapes(self) -> None:
        assert cp.unquote('"\\a\\b\\f\\n\\r\\t\\v"') == "\a\b\f\n\r\t\v"
        assert cp.unquote('"\\101\\1012"') == "AA2"
        assert cp.unquote('"\\777"') == "\xff"
        assert cp.unquote('"\\x41\\x4142"') == "AB"      # only the last two digits count
        assert cp.unquote('"\\x"') == "\x00"
        assert cp.unquote('"\\q\\\\\\"\\$\\,"') == 'q\\"$,'
        assert cp.unquote('"a\\\nb"') == "ab"
        assert cp.unquote('"a\\\r\nb"') == "ab"

    def test_trailing_backslash(self) -> None:
        assert cp.unquote('"a\\') == "a\\"
        assert cp.unquote("a\\") == "a\\"

    def test_hex_data(self) -> None:
        assert cp.unquote('"\\<48656c6C 6f 2 /* And finally */ 1>"') == "Hello!"
        assert cp.unquote("\\<41 42>") == "AB"
        assert cp.unquote("x\\<4>y") == "xy"              # odd nibble dropped
        assert cp.unquote("\\<41 zz 42") == "AB"           # junk ignored, runs to end
        assert cp.unquote_bytes("\\<00 ff 80>") == b"\x00\xff\x80"

    def test_single_quotes_literal(self) -> None:
        assert cp.unquote("'a\\nb\"c'") == 'a\\nb"c'
        assert cp.unquote("\"it's\"") == "it's"

    def test_backslash_outside_quotes_literal(self) -> None:
        assert cp.unquote("a\\nb") == "a\\nb"

    def test_no_quotes_returns_uncommented(self) -> None:
        assert cp.unquote("  plain  text ") == "plain  text"

    def test_unterminated_quote(self) -> None:
        assert cp.unquote('"abc') == "abc"

    def test_quote(self) -> None:
        assert cp.quote("") == '""'
        assert cp.quote("abc") == '"abc"'
        assert cp.quote('a"b\\c$d') == '"a\\"b\\\\c\\$d"'
        assert cp.quote("\t\r\n\x01\x7f\xff") == '"\\t\\r\\n\\001\\177\\377"'
        assert cp.quote("a\nb", allow_newlines=True) == '"a\nb"'
        assert cp.quote(b"\x00A") == '"\\000A"'

    @given(st.text(alphabet=st.characters(max_codepoint=255)))
    def test_quote_roundtrip(self, s: str) -> None:
        assert cp.unquote(cp.quote(s)) == s

    def test_unquote_bytes_wide_chars(self) -> None:
        assert cp.unquote_bytes('"\u20ac"') == "\u20ac".encode()


class TestPredicates:
    def test_is_word(self) -> None:
        assert cp.is_word("abc!~")
        for bad in ("", "a b", "a,b", "a'b", 'a"b', "a\\b", "\x7f", "\xe9"):
            assert not cp.is_word(bad)

    def test_is_identifier(self) -> None:
        for good in ("a", "a/b", "x_1@2", "a/b/c"):
            assert cp.is_identifier(good)
        for bad in ("", "/a", "a/", "a//b", "a-b", "a b", "\xe9"):
            assert not cp.is_identifier(bad)

    def test_is_space(self) -> None:
        assert cp.is_space("") and cp.is_space(" \t\n\v\f\r")
        assert not cp.is_space(" x") and not cp.is_space("\xa0")

    def test_skip_comment_space(self) -> None:
        assert cp.skip_comment_space("  /* a */ // b\nx") == 15


# ---------------------------------------------------------------------------------------
# Strings, words, keywords, misc
# ---------------------------------------------------------------------------------------

class TestStrings:
    def test_parse_string(self) -> None:
        assert cp.parse_string("abc") == "abc"
        assert cp.parse_string('"a b"') == "a b"
        assert cp.parse_string('""') == ""
        assert cp.parse_string("a'b c'd") == "ab cd"
        assert cp.parse_string("\\<41 42>") == "AB"
        assert err(cp.parse_string, "a b") == "parse error"
        assert err(cp.parse_string, "") == "parse error"
        assert err(cp.parse_string, " a") == "parse error"

    def test_take_string(self) -> None:
        assert cp.take_string('"a b" rest  x') == ("a b", " rest  x")
        assert err(cp.take_string, " a") == "parse error"

    def test_parse_data(self) -> None:
        assert cp.parse_data('"\\<00 01>\\377"') == b"\x00\x01\xff"

    def test_word(self) -> None:
        assert cp.parse_word("abc") == "abc"
        assert cp.parse_word('"abc"') == "abc"
        assert err(cp.parse_word, '"a b"') == "parse error"
        assert err(cp.parse_word, '""') == "parse error"
        assert cp.take_word("ab cd") == ("ab", " cd")
        assert err(cp.take_word, "'a,b' c") == "parse error"

    def test_keyword(self) -> None:
        assert cp.parse_keyword("A_b.c:d?e!0") == "A_b.c:d?e!0"
        for bad in ("", "a b", "a-b", '"a"'):
            assert err(cp.parse_keyword, bad) == "parse error"
        assert cp.take_keyword("KEY   value x") == ("KEY", "value x")
        assert err(cp.take_keyword, "K-EY value") == "parse error"

    def test_any_and_element(self) -> None:
        assert cp.parse_any(" raw, text ") == " raw, text "
        assert cp.parse_element("q/x") == "q/x"
        assert cp.parse_element('"q"') == "q"
        assert cp.parse_element("a b") == "a b"
        assert err(cp.parse_element, "") == "parse error"

    def test_filename(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HOME", "/home/u")
        assert cp.parse_filename("~") == "/home/u"
        assert cp.parse_filename('"~//f.txt~"') == "/home/u/f.txt~"
        assert cp.parse_filename("~//f.txt~") == "/home/u"     # unquoted // starts a comment
        assert cp.parse_filename("'a//b///c'") == "a/b/c"
        assert cp.parse_filename("~root/x") == "/root/x"
        assert cp.parse_filename("~no_such_user_xyz/x") == "~no_such_user_xyz/x"
        assert err(cp.parse_filename, '""') == "parse error"


class TestBool:
    @pytest.mark.parametrize("text", ["1", "t", "y", "true", "yes"])
    def test_true(self, text: str) -> None:
        assert cp.parse_bool(text) is True

    @pytest.mark.parametrize("text", ["0", "f", "n", "false", "no"])
    def test_false(self, text: str) -> None:
        assert cp.parse_bool(text) is False

    @pytest.mark.parametrize("text", ["", "on", "off", "TRUE", "Yes", " true", "2", "tru"])
    def test_bad(self, text: str) -> None:
        assert err(cp.parse_bool, text) == "parse error"

    def test_unparse(self) -> None:
        assert cp.unparse_bool(True) == "true" and cp.unparse_bool(False) == "false"


# ---------------------------------------------------------------------------------------
# Integers
# ---------------------------------------------------------------------------------------

class TestIntegers:
    @pytest.mark.parametrize("fn,text,value", [
        (cp.parse_int, "0", 0),
        (cp.parse_int, "-0", 0),
        (cp.parse_int, "-5", -5),
        (cp.parse_int, "+5", 5),
        (cp.parse_unsigned, "0", 0),
        (cp.parse_unsigned, "4294967294", 4294967294),
        (cp.parse_unsigned, "0xFFFFFFFE", 4294967294),
        (cp.parse_unsigned, "0Xff", 255),
        (cp.parse_int, "2147483647", 2147483647),
        (cp.parse_int, "-2147483648", -2147483648),
        (cp.parse_int, "010", 8),
        (cp.parse_int, "0", 0),
        (cp.parse_int, "0b101", 5),
        (cp.parse_int, "1_000_000", 1000000),
        (cp.parse_int, "0x1_f", 31),
        (cp.parse_int8, "97", 97),
        (cp.parse_int8, "-128", -128),
        (cp.parse_uint8, "255", 255),
        (cp.parse_int16, "-32768", -32768),
        (cp.parse_uint16, "65535", 65535),
        (cp.parse_int64, "9223372036854775807", 9223372036854775807),
        (cp.parse_int64, "-9223372036854775808", -9223372036854775808),
        (cp.parse_int64, "-5", -5),
        (cp.parse_uint64, "18446744073709551615", 18446744073709551615),
        (cp.parse_size, "123456789", 123456789),
    ])
    def test_good(self, fn, text: str, value: int) -> None:
        assert fn(text) == value

    @pytest.mark.parametrize("fn,text,message", [
        (cp.parse_unsigned, "aoeu", "invalid number"),
        (cp.parse_unsigned, "-0", "invalid number"),
        (cp.parse_unsigned, "-1", "invalid number"),
        (cp.parse_unsigned, "4294967296", "out of range, bound 4294967295"),
        (cp.parse_unsigned, "42949672961939", "out of range, bound 4294967295"),
        (cp.parse_unsigned, "0xFFFFFFFFF", "out of range, bound 4294967295"),
        (cp.parse_int, "4294967296", "out of range, bound 2147483647"),
        (cp.parse_int, "2147483648", "out of range, bound 2147483647"),
        (cp.parse_int, "-2147483649", "out of range, bound -2147483648"),
        (cp.parse_int, "-4294967296", "out of range, bound -2147483648"),
        (cp.parse_int8, "128", "out of range, bound 127"),
        (cp.parse_uint8, "256", "out of range, bound 255"),
        (cp.parse_uint64, "18446744073709551616", "out of range, bound 18446744073709551615"),
        (cp.parse_int, "", "invalid number"),
        (cp.parse_int, " 1", "invalid number"),
        (cp.parse_int, "1 ", "invalid number"),
        (cp.parse_int, "08", "invalid number"),
        (cp.parse_int, "0x", "invalid number"),
        (cp.parse_int, "0x!", "invalid number"),
        (cp.parse_int, "1__0", "invalid number"),
        (cp.parse_int, "1_", "invalid number"),
        (cp.parse_int, "_1", "invalid number"),
        (cp.parse_int, "--1", "invalid number"),
        (cp.parse_int, "1.5", "invalid number"),
        (cp.parse_int, "\uff11", "invalid number"),     # fullwidth digit: not ASCII
    ])
    def test_bad(self, fn, text: str, message: str) -> None:
        assert err(fn, text) == message

    def test_huge_number_is_fast_and_out_of_range(self) -> None:
        assert err(cp.parse_int, "9" * 100000) == "out of range, bound 2147483647"

    def test_bases(self) -> None:
        assert cp.parse_integer("ff", base=16) == 255
        assert cp.parse_integer("0xff", base=16) == 255
        assert cp.parse_integer("z", base=36) == 35
        assert cp.parse_integer("101", base=2) == 5
        assert cp.parse_integer("010", base=10) == 10
        assert err(cp.parse_integer, "0x10", base=10) == "invalid number"
        assert err(cp.parse_integer, "2", base=2) == "invalid number"
        assert err(cp.parse_integer, "1", base=1) == "invalid number"
        assert cp.int_arg(16, False, 16)("FFFF") == 65535

    def test_saturating(self) -> None:
        assert cp.parse_saturating_int("4294967296", 32, False) == 4294967295
        assert cp.parse_saturating_int("0xFFFFFFFFF", 32, False) == 0xFFFFFFFF
        assert cp.parse_saturating_int("-2147483649") == -2147483648
        assert cp.parse_saturating_int("128", 8) == 127
        assert err(cp.parse_saturating_int, "x") == "invalid number"

    @pytest.mark.parametrize("lo,hi,text,kw,expect", [
        (0, 10, "10", {}, 10),
        (0, 9, "10", {}, "out of range, bound 9"),
        (-1, 9, "-10", {}, "out of range, bound -1"),
        (-1000, -90, "0xFFFFFF00", {"signed": False}, "out of range, bound -90"),
        (0, 100, "-1", {}, "out of range, bound 0"),
        (0, 0xFFFFFFFF, "-1", {}, "out of range, bound 0"),
        (-1, 9, "aoeu", {}, "invalid number"),
        (0, 7, "8", {}, "out of range, bound 7"),
        (0, 0xFFFF, "70000", {}, "out of range, bound 65535"),
    ])
    def test_bounded(self, lo: int, hi: int, text: str, kw: dict, expect) -> None:
        if isinstance(expect, int):
            assert cp.parse_bounded_int(text, lo, hi, **kw) == expect
            assert cp.bounded_int(lo, hi, **kw)(text) == expect
        else:
            assert err(cp.parse_bounded_int, text, lo, hi, **kw) == expect


# ---------------------------------------------------------------------------------------
# Fixed point, real10, double
# ---------------------------------------------------------------------------------------

class TestFixedPoint:
    @pytest.mark.parametrize("text,bits,shown", [
        ("0.418", 8, "0.418"), ("0.417", 8, "0.418"), ("0.416", 8, "0.414"),
        ("0.42", 8, "0.42"), ("0.3", 16, "0.3"), ("0.49", 16, "0.49"), ("0.499", 16, "0.499"),
        ("0.4999", 16, "0.4999"), ("0.49999", 16, "0.49998"), ("0.499999", 16, "0.5"),
        ("0.49998", 16, "0.49998"), ("0.999999", 16, "1"),
    ])
    def test_click_roundtrips(self, text: str, bits: int, shown: str) -> None:
        assert cp.unparse_real2(cp.parse_unsigned_fixed_point(text, bits), bits) == shown

    def test_values(self) -> None:
        assert cp.parse_fixed_point("0.5", 1) == 1
        assert cp.parse_fixed_point("-0.5", 1) == -1
        assert cp.parse_unsigned_fixed_point("1.5", 16) == 0x18000
        assert cp.parse_unsigned_fixed_point("1e1", 16) == 10 << 16
        assert cp.parse_unsigned_fixed_point(".25", 2) == 1
        assert cp.parse_unsigned_fixed_point("+1_0.5", 4) == 168
        assert cp.parse_unsigned_fixed_point("0.5", 32) == 0x80000000
        assert cp.fixed_point(16)("2") == 0x20000
        assert cp.fixed_point(16, signed=True)("-2") == -0x20000

    def test_errors(self) -> None:
        assert err(cp.parse_unsigned_fixed_point, "65536", 16) == "out of range, bound 65535.99998"
        assert err(cp.parse_unsigned_fixed_point, "1", 32).startswith("out of range, bound 0.99999")
        assert err(cp.parse_fixed_point, "40000", 16) == "out of range, bound 32767.99998"
        assert err(cp.parse_unsigned_fixed_point, "-1", 16) == "parse error"
        for bad in ("", ".", "1..2", "1e", "e1", "1_.5", "1 ", "abc", "0x1"):
            assert err(cp.parse_unsigned_fixed_point, bad, 16) == "parse error"

    def test_unparse_real2(self) -> None:
        assert cp.unparse_real2(0x18000, 16) == "1.5"
        assert cp.unparse_real2(-0x18000, 16) == "-1.5"
        assert cp.unparse_real2(3 << 16, 16) == "3"


class TestReal10:
    def test_values(self) -> None:
        assert cp.parse_unsigned_real10("10.5", 3) == 10500
        assert cp.parse_unsigned_real10("1.2345", 3) == 1235     # half-up on next digit
        assert cp.parse_unsigned_real10("1.2344", 3) == 1234
        assert cp.parse_unsigned_real10("1.5e2", 0) == 150
        assert cp.parse_unsigned_real10("5e-4", 3) == 1
        assert cp.parse_unsigned_real10("0.9999", 3) == 1000
        assert cp.real10(2)("3.14159") == 314
        assert cp.parse_real10_parts("10.5", 4) == (10, 5000)

    def test_signed_ignores_minus_like_click(self) -> None:
        assert cp.parse_real10("-5", 3) == 5000
        assert cp.real10(3, signed=True)("2") == 2000

    def test_errors(self) -> None:
        assert err(cp.parse_unsigned_real10, "4294968", 3) == "out of range"
        assert err(cp.parse_real10, "2147484", 3) == "out of range"
        assert err(cp.parse_real10_parts, "4294967296", 1) == "out of range"
        assert err(cp.parse_unsigned_real10, "-1", 3) == "parse error"
        assert err(cp.parse_unsigned_real10, "x", 3) == "parse error"
        assert err(cp.parse_real10_parts, "1.2.3", 1) == "parse error"

    def test_unparse_real10(self) -> None:
        assert cp.unparse_real10(10500, 3) == "10.5"
        assert cp.unparse_real10(10000, 3) == "10"
        assert cp.unparse_real10(-1, 3) == "-0.001"


class TestDouble:
    @pytest.mark.parametrize("text,value", [
        ("0", 0.0), ("1.5", 1.5), ("-2", -2.0), ("+.5", 0.5), ("5.", 5.0), ("1e3", 1000.0),
        ("1E-3", 0.001), ("0x1.8p1", 3.0), ("0x10", 16.0), ("inf", math.inf),
        ("-Infinity", -math.inf), ("0e999999999999", 0.0), ("0x1p-1074", 5e-324),
    ])
    def test_good(self, text: str, value: float) -> None:
        assert cp.parse_double(text) == value

    def test_nan(self) -> None:
        assert math.isnan(cp.parse_double("nan"))
        assert math.isnan(cp.parse_double("NaN(123)"))

    @pytest.mark.parametrize("text,message", [
        ("", "parse error"), (" 1", "parse error"), ("1 ", "parse error"), ("1e", "parse error"),
        ("1_0", "parse error"), ("abc", "parse error"), (".", "parse error"),
        ("1e400", "out of range, bound inf"), ("-1e400", "out of range, bound -inf"),
        ("1e-400", "underflow, rounded to 0"), ("-1e-400", "underflow, rounded to -0"),
        ("1e-310", "out of range, bound 1e-310"), ("0x1p99999", "out of range, bound inf"),
    ])
    def test_bad(self, text: str, message: str) -> None:
        assert err(cp.parse_double, text) == message

    def test_long_inputs_are_fast(self) -> None:
        assert err(cp.parse_double, "1" * 100000 + "x") == "parse error"


# ---------------------------------------------------------------------------------------
# Times and bandwidths
# ---------------------------------------------------------------------------------------

class TestSeconds:
    @pytest.mark.parametrize("text,digits,value", [
        ("3600", 0, 3600), ("3600s", 0, 3600), ("3.6e6 msec", 0, 3600), ("60m", 0, 3600),
        ("1 hr", 0, 3600), ("1.99 hr", 0, 7164), ("1.99 s", 0, 2), ("1.99 s", 1, 20),
        ("1.99 s", 2, 199), ("1ms", 0, 0), ("1ms", 3, 1), ("1.9ms", 3, 2), ("1ms", 6, 1000),
        ("1.9ms", 6, 1900), ("1min", 0, 60), ("1h", 0, 3600), ("1d", 0, 86400),
        ("2 day", 0, 172800), ("2us", 6, 2), ("5ns", 9, 5), ("1 sec", 3, 1000),
        ("0.5", 3, 500), ("1nsec", 9, 1),
    ])
    def test_values(self, text: str, digits: int, value: int) -> None:
        assert cp.parse_seconds_as(text, digits) == value
        assert cp.seconds_as(digits)(text) == value

    def test_shortcuts(self) -> None:
        assert cp.parse_seconds("1") == 1
        assert cp.parse_milliseconds("0.5s") == 500
        assert cp.parse_milliseconds("10ms") == 10
        assert cp.parse_microseconds("2us") == 2
        assert cp.parse_microseconds("1ms") == 1000

    def test_click_rounding_quirk_kept(self) -> None:
        # Click's fraction scanner misplaces digits when a negative exponent pushes a
        # multi-digit mantissa past the decimal point; 60ms rounds to 1 second in Click.
        assert cp.parse_seconds("60ms") == 1

    @pytest.mark.parametrize("text,message", [
        ("", "parse error"), ("s", "parse error"), ("ms", "parse error"), ("-1", "parse error"),
        ("1 parsec", "parse error"), ("1 x s", "parse error"), ("abc", "parse error"),
        ("4294967296", "out of range"), ("50000 day", "out of range"),
    ])
    def test_bad(self, text: str, message: str) -> None:
        assert err(cp.parse_seconds, text) == message

    def test_double(self) -> None:
        for text in ("3600", "3600s", "3.6e6 msec", "60m", "1 hr"):
            assert cp.parse_seconds_double(text) == 3600
        assert cp.parse_seconds_double("1.5", 3) == 1500
        assert err(cp.parse_seconds_double, "ms") == "parse error"
        assert err(cp.parse_seconds_double, "1e999 s") == "parse error"

    def test_unparse(self) -> None:
        assert cp.unparse_milliseconds(5) == "5ms"
        assert cp.unparse_milliseconds(1500) == "1.5s"
        assert cp.unparse_milliseconds(0) == "0s"
        assert cp.unparse_microseconds(5) == "5us"
        assert cp.unparse_microseconds(1500) == "0.0015s"


class TestTimestamp:
    def test_values(self) -> None:
        assert cp.parse_timestamp("1189383079.180265331") == 1189383079180265331
        assert cp.parse_timestamp("10ms") == 10_000_000
        assert cp.parse_timestamp("1 day") == 86400 * 10**9
        assert cp.parse_timestamp("1.5 min") == 90 * 10**9
        assert cp.parse_timestamp("0") == 0
        assert cp.parse_timestamp_signed("-2") == -2 * 10**9

    def test_negative_applies_to_seconds_only_like_click(self) -> None:
        assert cp.parse_timestamp_signed("-1.5") == -500_000_000

    def test_saturates_into_int32_seconds_like_click(self) -> None:
        assert cp.parse_timestamp("99999999999") == -1 * 10**9 + 999_999_999

    def test_bad(self) -> None:
        assert err(cp.parse_timestamp, "-1") == "parse error"
        assert err(cp.parse_timestamp_signed, "-") == "parse error"
        assert err(cp.parse_timestamp_signed, "-+1") == "parse error"
        assert err(cp.parse_timestamp, "") == "parse error"
        assert err(cp.parse_timestamp, "1x") == "parse error"

    def test_unparse(self) -> None:
        assert cp.unparse_timestamp(-1_001_000_000) == "-1.001000"
        assert cp.unparse_timestamp(1_500_000_000) == "1.500000"
        assert cp.unparse_timestamp(1) == "0.000000001"
        assert cp.unparse_interval(10_000_000) == "10ms"
        assert cp.unparse_interval(2_000) == "2us"
        assert cp.unparse_interval(5) == "5ns"
        assert cp.unparse_interval(1_500_000_000) == "1.500000s"


class TestBandwidth:
    @pytest.mark.parametrize("text,value,unitless", [
        ("8", 8, True), ("8 baud", 1, False), ("8Kbps", 1000, False), ("8KBps", 8000, False),
        ("2000Bps", 2000, False), ("10kbps", 1250, False), ("1Mbps", 125000, False),
        ("1 GBps", 10**9, False), ("100", 100, True), ("0", 0, False), ("1.5kB/s", 1500, False),
        ("8b/s", 1, False),
    ])
    def test_values(self, text: str, value: int, unitless: bool) -> None:
        assert cp.parse_bandwidth_status(text) == (value, unitless)
        assert cp.parse_bandwidth(text) == value

    @pytest.mark.parametrize("text,message", [
        ("", "parse error"), ("bps", "parse error"), ("1 xbps", "parse error"),
        ("-1", "parse error"), ("10 mbps", "parse error"), ("5GBps", "out of range"),
        ("4294967296", "out of range"),
    ])
    def test_bad(self, text: str, message: str) -> None:
        assert err(cp.parse_bandwidth, text) == message

    def test_unparse(self) -> None:
        assert cp.unparse_bandwidth(1250) == "10kbps"
        assert cp.unparse_bandwidth(125000) == "1Mbps"
        assert cp.unparse_bandwidth(125000000) == "1Gbps"
        assert cp.unparse_bandwidth(0x20000000) == "536.870912MBps"


# ---------------------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------------------

def _table_resolver(table: dict):
    def resolve(kind: str, name: str):
        return table.get((kind, name))
    return resolve


ADDRS = _table_resolver({
    ("ip", "host"): b"\x12\x1a\x04\x09",
    ("ip", "num"): 0x0A000001,
    ("ip_prefix", "lan"): (b"\x0a\x00\x00\x05", b"\xff\xff\xff\x00"),
    ("ip_gw", "eth9"): b"\xc0\xa8\x00\xfe",
    ("ip6", "v6"): bytes(15) + b"\x01",
    ("ip6_prefix", "net6"): (b"\xfe\x80" + bytes(14), 64),
    ("ether", "mac"): b"\x00\x11\x22\x33\x44\x55",
    ("annotation", "MYANNO"): cp.make_anno(30, 2),
    ("ip_proto", "myproto"): 99,
    ("port:6", "myport"): 4242,
})


class TestIPv4:
    @pytest.mark.parametrize("text,value", [
        ("18.26.4.9", b"\x12\x1a\x04\x09"), ("0.0.0.0", bytes(4)),
        ("255.255.255.255", b"\xff" * 4), ("01.002.0003.4", b"\x01\x02\x03\x04"),
    ])
    def test_good(self, text: str, value: bytes) -> None:
        assert cp.parse_ip_address(text) == value

    @pytest.mark.parametrize("text", [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "1..2.3", "a.b.c.d",
        "1.2.3.-4", "host", "1.2.3.4/32",
    ])
    def test_bad(self, text: str) -> None:
        assert err(cp.parse_ip_address, text) == "parse error"

    def test_names(self) -> None:
        assert cp.parse_ip_address("host", ADDRS) == b"\x12\x1a\x04\x09"
        assert cp.parse_ip_address("num", ADDRS) == b"\x0a\x00\x00\x01"
        assert cp.parse_ip_address("host:ip", ADDRS) == b"\x12\x1a\x04\x09"
        assert cp.parse_ip_address("host:IP4", ADDRS) == b"\x12\x1a\x04\x09"
        assert cp.parse_ip_address("lan:bcast", ADDRS) == b"\x0a\x00\x00\xff"
        assert cp.parse_ip_address("lan:gw", ADDRS) == b"\x0a\x00\x00\x01"
        assert cp.parse_ip_address("eth9:gw", ADDRS) == b"\xc0\xa8\x00\xfe"
        assert err(cp.parse_ip_address, "host:xx", ADDRS) == "parse error"
        assert err(cp.parse_ip_address, "nobody", ADDRS) == "parse error"

    def test_installed_resolver(self) -> None:
        with cp.using_resolver(ADDRS):
            assert cp.current_resolver() is ADDRS
            assert cp.parse_ip_address("host") == b"\x12\x1a\x04\x09"
        assert cp.current_resolver() is None

    def test_list(self) -> None:
        assert cp.parse_ip_address_list("1.2.3.4  5.6.7.8") == [b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"]
        assert cp.parse_ip_address_list("") == []
        assert err(cp.parse_ip_address_list, "1.2.3.4 x") == "parse error"

    def test_unparse(self) -> None:
        assert cp.unparse_ip(b"\x12\x1a\x04\x09") == "18.26.4.9"
        assert cp.unparse_ip(0x0A000001) == "10.0.0.1"
        assert cp.unparse_ip_prefix(b"\x12\x1a\x04\x00", b"\xff\xff\xff\x00") == "18.26.4.0/24"
        assert cp.unparse_ip_prefix(b"\x01\x02\x03\x04", b"\xff\x00\xff\x00") == "1.2.3.4/255.0.255.0"


class TestIPPrefix:
    @pytest.mark.parametrize("text,addr,mask", [
        ("18.26.4/24", "18.26.4.0", 24), ("18.26.4.9/24", "18.26.4.9", 24), ("10/8", "10.0.0.0", 8),
        ("0/0", "0.0.0.0", 0), ("1.2.3.4/32", "1.2.3.4", 32), ("1.2.3.4/024", "1.2.3.4", 24),
        ("18.26.4.0/255.255.255.0", "18.26.4.0", 24), ("1.2.3.4/+8", "1.2.3.4", 8),
    ])
    def test_good(self, text: str, addr: str, mask: int) -> None:
        a, m = cp.parse_ip_prefix(text)
        assert cp.unparse_ip(a) == addr
        assert cp.ip_mask_to_prefix_len(m) == mask

    def test_noncontiguous_mask(self) -> None:
        assert cp.parse_ip_prefix("1.2.3.4/255.0.255.0") == (b"\x01\x02\x03\x04", b"\xff\x00\xff\x00")

    @pytest.mark.parametrize("text", [
        "18.26.4/28", "18.26/24", "1.2.3.4/33", "1.2.3.4", "1.2.3.4/", "/8", "1.2.3.4/0x8",
        "1.2.3.4/-1", "", "1.2.3.4./24", "a/8",
    ])
    def test_bad(self, text: str) -> None:
        assert err(cp.parse_ip_prefix, text) == "parse error"

    def test_bare(self) -> None:
        assert cp.parse_ip_prefix("1.2.3.4", allow_bare=True) == (b"\x01\x02\x03\x04", b"\xff" * 4)
        assert cp.parse_ip_address_or_prefix("1.2.3.4/8") == (b"\x01\x02\x03\x04", b"\xff\x00\x00\x00")

    def test_names(self) -> None:
        assert cp.parse_ip_prefix("lan", resolver=ADDRS) == (b"\x0a\x00\x00\x05", b"\xff\xff\xff\x00")
        assert cp.parse_ip_prefix("lan:net", resolver=ADDRS)[0] == b"\x0a\x00\x00\x05"
        assert cp.parse_ip_prefix("host/16", resolver=ADDRS) == (b"\x12\x1a\x04\x09", b"\xff\xff\x00\x00")
        assert cp.parse_ip_address_or_prefix("host", ADDRS) == (b"\x12\x1a\x04\x09", b"\xff" * 4)
        assert err(cp.parse_ip_prefix, "lan:bogus", resolver=ADDRS) == "parse error"

    def test_masks(self) -> None:
        assert cp.ip_prefix_mask(0) == bytes(4)
        assert cp.ip_prefix_mask(20) == b"\xff\xff\xf0\x00"
        assert cp.ip_mask_to_prefix_len(b"\xff\x00\xff\x00") == -1


class TestIPv6:
    @pytest.mark.parametrize("text,expect", [
        ("1080:0:0:0:8:800:200C:417a", "1080::8:800:200c:417a"),
        ("1080::8:800:200C:417a", "1080::8:800:200c:417a"),
        ("::13.1.68.3", "::13.1.68.3"),
        ("::ffff:129.144.52.38", "::ffff:129.144.52.38"),
        ("ffff:ffff:ffff:ffff:ffff:ffff::", "ffff:ffff:ffff:ffff:ffff:ffff::"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:8000:0", "ffff:ffff:ffff:ffff:ffff:ffff:8000:0"),
        ("::", "::"), ("8000::", "8000::"), ("::1", "::0.0.0.1"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"), ("::1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"), ("1::2:0:0:3", "1::2:0:0:3"),
        ("1:0:0:2::3", "1:0:0:2::3"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
    ])
    def test_good(self, text: str, expect: str) -> None:
        assert cp.unparse_ip6(cp.parse_ip6_address(text)) == expect

    def test_bytes(self) -> None:
        a = cp.parse_ip6_address("1080::8:800:200C:417a")
        assert a == bytes.fromhex("10800000000000000008 0800200c417a".replace(" ", ""))

    @pytest.mark.parametrize("text", [
        "ffff:ffff:ffff:ffff:ffff:ffff:8000:", ":::", "8000::1:1:1:1:1:1:1", "1:2:3:4:5:6:7::8",
        "", "1", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", "1::2::3", ":1::", "1:::2",
        "g::", "1.2.3.4::", "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "1:2:3:4:5:6::1.2.3.4",
    ])
    def test_bad(self, text: str) -> None:
        assert err(cp.parse_ip6_address, text) == "parse error"

    def test_names(self) -> None:
        v4 = _table_resolver({("ip", "ip4_addr"): b"\x01\x02\x03\x04", ("ip6", "v6"): bytes(16)})
        assert cp.parse_ip6_address("0::ip4_addr", v4) == bytes(12) + b"\x01\x02\x03\x04"
        assert cp.parse_ip6_address("0::ffff:ip4_addr", v4) == bytes(10) + b"\xff\xff\x01\x02\x03\x04"
        assert cp.parse_ip6_address("v6", ADDRS) == bytes(15) + b"\x01"
        assert cp.parse_ip6_address("v6:ip6", ADDRS) == bytes(15) + b"\x01"
        assert err(cp.parse_ip6_address, "v6:x", ADDRS) == "parse error"

    def test_prefix(self) -> None:
        assert cp.parse_ip6_prefix("::1/32") == (bytes(15) + b"\x01", 32)
        assert cp.parse_ip6_prefix("fe80::/ffff:ffff::") == (b"\xfe\x80" + bytes(14), 32)
        assert cp.parse_ip6_prefix("::/0") == (bytes(16), 0)
        assert cp.parse_ip6_prefix("::1", allow_bare=True) == (bytes(15) + b"\x01", 128)
        assert cp.parse_ip6_address_or_prefix("::/128") == (bytes(16), 128)
        assert cp.parse_ip6_prefix("net6", resolver=ADDRS) == (b"\xfe\x80" + bytes(14), 64)
        for bad in ("::/::1", "::/129", "::1", "::/", "x/8", "::/-1"):
            assert err(cp.parse_ip6_prefix, bad) == "parse error"

    def test_masks(self) -> None:
        assert cp.ip6_prefix_mask(17) == b"\xff\xff\x80" + bytes(13)
        assert cp.ip6_mask_to_prefix_len(cp.parse_ip6_address("ffff:ffff:ffff:ffff:ffff:ffff::")) == 96
        assert cp.ip6_mask_to_prefix_len(cp.parse_ip6_address("::8000")) == -1
        assert cp.ip6_mask_to_prefix_len(b"\xff" * 16) == 128


class TestEther:
    @pytest.mark.parametrize("text,value", [
        ("00-15-58-2D-FB-8F", b"\x00\x15\x58\x2d\xfb\x8f"),
        ("00:15:58:2d:fb:8f", b"\x00\x15\x58\x2d\xfb\x8f"),
        ("0:1:2:3:4:5", b"\x00\x01\x02\x03\x04\x05"),
        ("a-b-c-d-e-f", b"\x0a\x0b\x0c\x0d\x0e\x0f"),
    ])
    def test_good(self, text: str, value: bytes) -> None:
        assert cp.parse_ether_address(text) == value

    @pytest.mark.parametrize("text", [
        "", "001122334455", "00:11-22:33:44:55", "00:11:22:33:44", "00:11:22:33:44:55:66",
        "000:11:22:33:44:55", "00::11:22:33:44", "00:11:22:33:44:", "0g:11:22:33:44:55",
        "00.11.22.33.44.55", "mac",
    ])
    def test_bad(self, text: str) -> None:
        assert err(cp.parse_ether_address, text) == "parse error"

    def test_names(self) -> None:
        for text in ("mac", "mac:eth", "mac:ETHER", "mac:ethernet"):
            assert cp.parse_ether_address(text, ADDRS) == b"\x00\x11\x22\x33\x44\x55"
        assert err(cp.parse_ether_address, "mac:ip", ADDRS) == "parse error"

    def test_unparse(self) -> None:
        assert cp.unparse_ether(b"\x00\x15\x58\x2d\xfb\x8f") == "00-15-58-2D-FB-8F"
        assert cp.unparse_ether(b"\x00\x15\x58\x2d\xfb\x8f", ":") == "00:15:58:2D:FB:8F"


# ---------------------------------------------------------------------------------------
# Annotations, protocols, ports
# ---------------------------------------------------------------------------------------

class TestAnno:
    def test_names(self) -> None:
        assert cp.parse_anno("PAINT") == cp.make_anno(16, 1)
        assert cp.anno_offset(cp.parse_anno("DST_IP")) == 0
        assert cp.anno_size(cp.parse_anno("DST_IP")) == 4
        assert cp.parse_anno("PAINT", 1) == 16
        assert cp.parse_anno("FIRST_TIMESTAMP", 8) == 32
        assert cp.parse_anno("VLAN_TCI", 2) == 20
        assert cp.anno_arg(4)("DST_IP") == 0

    def test_offsets(self) -> None:
        assert cp.parse_anno("47", 1) == 47
        assert cp.parse_anno("0x10") == 16
        assert cp.parse_anno("44", 4) == 44

    def test_user_names(self) -> None:
        assert cp.parse_anno("MYANNO", 2, ADDRS) == 30

    @pytest.mark.parametrize("text,size", [
        ("DST_IP", 1), ("PAINT", 4), ("48", 1), ("45", 4), ("48", 0), ("-1", 1), ("paint", 1),
        ("", 0), ("BOGUS", 0),
    ])
    def test_bad(self, text: str, size: int) -> None:
        assert err(cp.parse_anno, text, size) == "parse error"


class TestNames:
    def test_protocols(self) -> None:
        assert cp.parse_ip_protocol("tcp") == 6
        assert cp.parse_ip_protocol("udp") == 17
        assert cp.parse_ip_protocol("icmp") == 1
        assert cp.parse_ip_protocol("tcpudp") == 256
        assert cp.parse_ip_protocol("99") == 99
        assert cp.parse_ip_protocol("myproto", ADDRS) == 99
        assert err(cp.parse_ip_protocol, "no-such-proto-x") == "invalid number"
        assert err(cp.parse_ip_protocol, "4294967296") == "out of range, bound 2147483647"

    def test_icmp(self) -> None:
        assert cp.parse_icmp_type("echo") == 8
        assert cp.parse_icmp_type("echo-reply") == 0
        assert cp.parse_icmp_type("3") == 3
        assert cp.parse_icmp_code("port", 3) == 3
        assert cp.parse_icmp_code("host", 5) == 1
        assert cp.parse_icmp_code("7", 0) == 7
        assert err(cp.parse_icmp_code, "port", 5) == "invalid number"
        assert err(cp.parse_icmp_type, "x") == "invalid number"

    def test_ports(self) -> None:
        assert cp.parse_tcp_port("80") == 80
        assert cp.parse_tcp_port("www") == 80
        assert cp.parse_udp_port("dns") == 53
        assert cp.parse_tcp_port("ssh") == 22
        assert cp.parse_tcp_port("0x50") == 80
        assert cp.parse_tcp_port("myport", ADDRS) == 4242
        assert cp.ip_port(17)("53") == 53
        assert cp.parse_ip_port("100", 132) == 100
        assert err(cp.parse_udp_port, "65536") == "overflow, range 0-65535"
        assert err(cp.parse_udp_port, "-1") == "parse error"
        assert err(cp.parse_tcp_port, "no-such-service-x") == "parse error"
        assert err(cp.parse_tcp_port, "4294967296") == "parse error"


# ---------------------------------------------------------------------------------------
# Robustness
# ---------------------------------------------------------------------------------------

_CHARS = st.sampled_from(list("0123456789abcdefxXbBeEpP+-._ :/,\"'\\<>*\n\tmsunhdaykKMGB") +
                         ["\x00", "\xe9", "\u0100", "\ud800", "\uff11"])
_FUZZ = st.one_of(st.text(_CHARS, max_size=30), st.text(max_size=20))

_STRING_FUNCS = [cp.split_args, cp.split_words, cp.shift_word, cp.unquote, cp.uncomment, cp.quote,
                 cp.unquote_bytes, cp.is_word, cp.is_identifier, cp.is_space, cp.skip_comment_space]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_FUZZ)
def test_parsers_raise_only_config_error(text: str) -> None:
    for parser in cp.PARSERS.values():
        try:
            parser(text)
        except ConfigError:
            pass
    for extra in (lambda t: cp.parse_ip_address(t, ADDRS), lambda t: cp.parse_ip6_prefix(t, True, ADDRS),
                  lambda t: cp.parse_anno(t, 2), lambda t: cp.parse_unsigned_fixed_point(t, 32),
                  lambda t: cp.parse_seconds_as(t, 9), lambda t: cp.parse_integer(t, 8, False, 36),
                  cp.take_string, cp.take_keyword, cp.take_word):
        try:
            extra(text)
        except ConfigError:
            pass


@settings(max_examples=300, deadline=None)
@given(_FUZZ)
def test_string_helpers_never_raise(text: str) -> None:
    for fn in _STRING_FUNCS:
        fn(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcXYZ019_ .-", min_size=1, max_size=8)
                .map(str.strip).filter(bool), max_size=6))
def test_split_args_inverts_join(words: list[str]) -> None:
    assert cp.split_args(cp.join_args(words)) == words


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**31), 2**31 - 1))
def test_int_roundtrip(n: int) -> None:
    assert cp.parse_int(str(n)) == n
    assert cp.parse_int64(hex(n).replace("0x", "0x") if n >= 0 else str(n)) == n


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 24))
def test_unparse_real2_roundtrip(value: int, bits: int) -> None:
    # Above ~24 fraction bits Click's 32-bit digit loop wraps and the text no longer
    # round-trips exactly; we reproduce that arithmetic, so only test where Click is exact.
    assert cp.parse_unsigned_fixed_point(cp.unparse_real2(value, bits), bits) == value


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=4, max_size=4))
def test_ip_roundtrip(b: bytes) -> None:
    assert cp.parse_ip_address(cp.unparse_ip(b)) == b


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=16))
def test_ip6_roundtrip(b: bytes) -> None:
    assert cp.parse_ip6_address(cp.unparse_ip6(b)) == b


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=6, max_size=6))
def test_ether_roundtrip(b: bytes) -> None:
    assert cp.parse_ether_address(cp.unparse_ether(b)) == b
    assert cp.parse_ether_address(cp.unparse_ether(b, ":")) == b
