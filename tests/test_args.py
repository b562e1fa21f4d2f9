"""Tests for clickos.core.args: Click's Args matching rules and messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickos.core import confparse as cp
from clickos.core.args import Args, ArgsError
from clickos.core.errors import ConfigError, ContextErrorHandler, ErrorHandler


def errors_of(conf, reads) -> list[str]:
    """Run ``reads(args)`` then complete(); return the error lines."""
    a = Args(conf)
    reads(a)
    with pytest.raises(ArgsError) as info:
        a.complete()
    return info.value.errors


def queue_like(a: Args) -> tuple:
    return a.read_p("CAPACITY", cp.parse_unsigned, 1000), a.read("LIMIT", cp.parse_int, -1)


class TestBasics:
    def test_element_example(self) -> None:
        a = Args([], None)
        assert queue_like(a) == (1000, -1)
        a.complete()

    def test_string_conf(self) -> None:
        a = Args("5, LIMIT 3")
        assert queue_like(a) == (5, 3)
        a.complete()

    def test_positional_by_keyword(self) -> None:
        a = Args(["CAPACITY 7"])
        assert queue_like(a) == (7, -1)
        a.complete()

    def test_keywords_any_order(self) -> None:
        a = Args(["LIMIT 3", "CAPACITY 7"])
        assert queue_like(a) == (7, 3)
        a.complete()

    def test_keyword_value_keeps_inner_space(self) -> None:
        a = Args(["LABEL   a  b  "])
        assert a.read("LABEL") == "a  b  "
        a.complete()

    def test_later_keyword_wins(self) -> None:
        a = Args(["A 1", "A 2"])
        assert a.read("A", cp.parse_int) == 2
        a.complete()

    def test_keyword_case_sensitive(self) -> None:
        assert errors_of(["limit 3"], queue_like) == ["limit: unknown argument"]

    def test_keyword_chars(self) -> None:
        a = Args(["A.b:c?d!_1 x", "_U y"])
        assert a.read("A.b:c?d!_1") == "x"
        assert a.read("_U") == "y"
        a.complete()

    def test_lone_word_is_positional(self) -> None:
        a = Args(["WORD"])
        assert a.read_p("X") == "WORD"
        a.complete()

    def test_mandatory_positionals(self) -> None:
        a = Args([]).push_back("1").push_back("2")
        assert a.read_mp("A", cp.parse_int) == 1 and a.read_status
        assert a.read_mp("B", cp.parse_int) == 2 and a.read_status
        a.complete()

    def test_default_parser_is_raw_text(self) -> None:
        a = Args(['"quoted"'])
        assert a.read_p("X") == '"quoted"'

    def test_read_flags(self) -> None:
        a = Args(["3"])
        assert a.read_flags("N", Args.MANDATORY | Args.POSITIONAL, cp.parse_int) == 3
        a.complete()


class TestPositionalRules:
    def test_positional_after_keyword_is_too_many(self) -> None:
        assert errors_of(["LIMIT 3", "5"], queue_like) == ["too many arguments"]

    def test_extra_positional(self) -> None:
        assert errors_of(["1", "2"], queue_like) == ["too many arguments"]

    def test_keyword_looking_value_optional(self) -> None:
        # An optional positional read will not take an argument that looks like a keyword.
        assert errors_of(["hello world"], lambda a: a.read_p("LABEL")) == ["hello: unknown argument"]

    def test_keyword_looking_value_mandatory(self) -> None:
        a = Args(["hello world"])
        assert a.read_mp("LABEL") == "hello world"
        a.complete()

    def test_mandatory_positional_prefers_its_keyword(self) -> None:
        a = Args(["B 2", "A 1"])
        assert a.read_mp("A", cp.parse_int) == 1
        assert a.read_mp("B", cp.parse_int) == 2
        a.complete()

    def test_keyword_after_positional_wins(self) -> None:
        a = Args(["2", "A 1"])
        assert a.read_p("A", cp.parse_int) == 1
        a.complete()      # the positional "2" was consumed as well

    def test_positional_then_keyword_for_other(self) -> None:
        a = Args(["5", "LIMIT 3"])
        assert queue_like(a) == (5, 3)
        a.complete()

    def test_mandatory_after_optional(self) -> None:
        a = Args(["1"])
        assert a.read_p("A", cp.parse_int, 9) == 1
        assert a.read_mp("B", cp.parse_int) is None
        with pytest.raises(ArgsError) as info:
            a.complete()
        assert info.value.errors == ["B: required argument missing"]

    def test_empty_argument_counts_as_absent(self) -> None:
        a = Args(["", "7"])
        assert a.read_p("A", cp.parse_int, 5) == 5
        assert a.read_status
        assert a.read_p("B", cp.parse_int, 5) == 7
        a.complete()

    def test_empty_mandatory_is_silently_absent_like_click(self) -> None:
        a = Args([""])
        assert a.read_mp("A", cp.parse_int, 4) == 4
        a.complete()


class TestErrors:
    def test_missing_mandatory(self) -> None:
        assert errors_of([], lambda a: a.read_mp("A", cp.parse_int)) == ["A: required argument missing"]
        assert errors_of([], lambda a: a.read_m("KEY", cp.parse_int)) == ["KEY: required argument missing"]

    def test_mandatory_keyword_is_not_positional(self) -> None:
        assert errors_of(["5"], lambda a: a.read_m("KEY", cp.parse_int)) == [
            "KEY: required argument missing", "too many arguments"]

    def test_parse_errors_are_prefixed(self) -> None:
        assert errors_of(["-1"], queue_like) == ["CAPACITY: invalid number"]
        assert errors_of(["LIMIT 99999999999"], queue_like) == ["LIMIT: out of range, bound 2147483647"]
        assert errors_of(["X maybe"], lambda a: a.read("X", cp.parse_bool)) == ["X: parse error"]

    def test_error_order_matches_click(self) -> None:
        got = errors_of(["CAPACITY -1", "FOO 2", "BAR", "LIMIT x", "BAZ 1"], queue_like)
        assert got == ["CAPACITY: invalid number", "LIMIT: invalid number", "FOO: unknown argument",
                       "BAZ: unknown argument", "too many arguments"]

    def test_message_joined(self) -> None:
        a = Args(["X 1", "Y 2"])
        with pytest.raises(ConfigError) as info:
            a.complete()
        assert str(info.value) == "X: unknown argument\nY: unknown argument"

    def test_bad_value_returns_default(self) -> None:
        a = Args(["LIMIT x"])
        assert a.read("LIMIT", cp.parse_int, -1) == -1
        assert not a.read_status and not a.status

    def test_keyword_starting_with_digit(self) -> None:
        got = errors_of(["X 1"], lambda a: a.read("1X", cp.parse_int))
        assert got == ["1X: keywords must start with a letter or underscore", "X: unknown argument"]

    def test_value_error_from_custom_parser(self) -> None:
        assert errors_of(["N x"], lambda a: a.read("N", int)) == ["N: parse error"]

    def test_multiline_parser_message(self) -> None:
        def parser(text: str) -> str:
            raise ConfigError("first\nsecond")
        assert errors_of(["A 1"], lambda a: a.read("A", parser)) == ["A: first", "A: second"]

    def test_execute_and_consume_raise(self) -> None:
        a = Args(["A x"])
        a.read("A", cp.parse_int)
        with pytest.raises(ArgsError):
            a.execute()
        with pytest.raises(ArgsError):
            a.consume()

    def test_element_error_has_no_prefix(self) -> None:
        a = Args(["A 1"])
        a.read("A", cp.parse_int)
        a.error("A must be even")
        with pytest.raises(ArgsError) as info:
            a.complete()
        assert info.value.errors == ["A must be even"]


class TestReadStatusAndDefaults:
    def test_read_status(self) -> None:
        a = Args(["A 1"])
        a.read_or_set("A", cp.parse_int, 9)
        assert a.read_status
        assert a.read_or_set("B", cp.parse_int, 3) == 3
        assert not a.read_status
        a.consume()

    def test_read_or_set_p(self) -> None:
        a = Args(["4"])
        assert a.read_or_set_p("A", cp.parse_int, 1) == 4

    def test_with_aliases(self) -> None:
        a = Args(["1", "B 2", "C 3"])
        assert a.read_mp_with("A", cp.parse_int) == 1
        assert a.read_with("B", cp.parse_int) == 2
        assert a.read_m_with("C", cp.parse_int) == 3
        assert a.read_p_with("D", cp.parse_int, 0) == 0
        a.complete()

    def test_click_size_example(self) -> None:
        a = Args(["SIZE 123456789"])
        assert a.read("SIZE", cp.parse_size) == 123456789 and a.read_status
        a.complete()


class TestReadAll:
    def test_click_example(self) -> None:
        a = Args(None).push_back_args("A 1, B 2, A 3, A 4   , A 5")
        assert a.read_all("A") == ["1", "3", "4", "5"]
        assert a.read_status
        assert a.read("B", cp.parse_int) == 2 and a.read_status
        a.complete()

    def test_none_found(self) -> None:
        a = Args(None).push_back_args("B 3")
        assert a.read_all_with("A") == []
        assert not a.read_status
        assert a.read("B", cp.parse_int) == 3
        a.complete()

    def test_bad_values_skipped_and_reported(self) -> None:
        a = Args(["A 1", "A x", "A 3"])
        assert a.read_all("A", cp.parse_int) == [1, 3]
        assert not a.read_status
        with pytest.raises(ArgsError) as info:
            a.complete()
        assert info.value.errors == ["A: invalid number"]

    def test_mandatory(self) -> None:
        assert errors_of([], lambda a: a.read_all("A", mandatory=True)) == ["A: required argument missing"]
        a = Args(["A 1"])
        assert a.read_all("A", mandatory=True) == ["1"]
        a.complete()

    def test_positional(self) -> None:
        a = Args(["x", "A y", "A z"])
        assert a.read_all("A", positional=True) == ["x", "y", "z"]
        a.complete()

    def test_consume_keeps_the_rest(self) -> None:
        conf = ["A 1", "B 2", "A 3", "C 4"]
        a = Args(None).bind(conf)
        assert a.read_all("A", cp.parse_int) == [1, 3]
        assert a.consume() == ["B 2", "C 4"]
        assert conf == ["B 2", "C 4"]

    def test_copy_is_default(self) -> None:
        conf = ["A 1", "B 2"]
        a = Args(conf)
        a.read("A")
        assert a.consume() == ["B 2"]
        assert conf == ["A 1", "B 2"]
        assert a.conf == ["B 2"]


class TestListManipulation:
    def test_push_back_words_and_extend(self) -> None:
        a = Args(None).push_back_words("1 2").extend(["C 3"])
        assert a.read_mp("A", cp.parse_int) == 1
        assert a.read_mp("B", cp.parse_int) == 2
        assert a.read("C", cp.parse_int) == 3
        a.complete()

    def test_reset_and_strip(self) -> None:
        a = Args(["1", "2"])
        assert a.read_p("A", cp.parse_int) == 1
        a.reset()
        assert a.read_p("B", cp.parse_int) == 1
        a.strip()
        assert a.conf == ["2"]
        a.clear()
        assert a.empty()
        a.complete()


class TestDeprecatedAndReporting:
    def test_deprecated_warning(self) -> None:
        a = Args(["NBYTES 5"])
        assert a.read("NBYTES", cp.parse_int, deprecated=True) == 5
        a.complete()
        assert a.warnings == ["NBYTES: warning: argument deprecated"]

    def test_errh_receives_messages(self) -> None:
        errh = ErrorHandler(echo=False)
        a = Args(["NBYTES 5", "X y"], None, errh)
        a.read("NBYTES", cp.parse_int, deprecated=True)
        with pytest.raises(ArgsError) as info:
            a.complete()
        assert info.value.reported
        assert errh.lines == ["NBYTES: warning: argument deprecated", "X: unknown argument"]
        assert errh.nerrors == 1 and errh.nwarnings == 1

    def test_context_errh(self) -> None:
        top = ErrorHandler(echo=False)
        errh = ContextErrorHandler(top, "While configuring 'q :: Queue':", "config:1")
        a = Args(["-1"], None, errh)
        queue_like(a)
        with pytest.raises(ArgsError):
            a.complete()
        assert len(top.lines) == 2
        assert top.lines[0].endswith("While configuring 'q :: Queue':")
        assert top.lines[1].endswith("  CAPACITY: invalid number")
        assert top.nerrors == 1

    def test_not_reported_without_errh(self) -> None:
        a = Args(["x"])
        with pytest.raises(ArgsError) as info:
            a.complete()
        assert not info.value.reported
        assert info.value.errors == ["too many arguments"]

    def test_plain_warning(self) -> None:
        errh = ErrorHandler(echo=False)
        a = Args([], None, errh)
        a.warning("careful")
        assert errh.lines == ["warning: careful"]
        assert a.warnings == ["warning: careful"]


class TestResolver:
    def test_context_resolve_name(self) -> None:
        class Element:
            def resolve_name(self, kind: str, name: str):
                return b"\x0a\x00\x00\x01" if (kind, name) == ("ip", "gw") else None

        a = Args(["ADDR gw"], Element())
        assert a.read("ADDR", cp.parse_ip_address) == b"\x0a\x00\x00\x01"
        a.complete()
        assert cp.current_resolver() is None

    def test_explicit_resolver(self) -> None:
        a = Args(["00:01:02:03:04:05", "mac"],
                 resolver=lambda kind, name: b"\xaa" * 6 if kind == "ether" else None)
        assert a.read_mp("A", cp.parse_ether_address) == bytes(range(6))
        assert a.read_mp("B", cp.parse_ether_address) == b"\xaa" * 6
        a.complete()

    def test_unknown_name(self) -> None:
        assert errors_of(["ADDR nowhere"], lambda a: a.read("ADDR", cp.parse_ip_address)) == [
            "ADDR: parse error"]


_ARG = st.one_of(st.text(max_size=12), st.sampled_from(["A 1", "B 2", "LIMIT x", "1", "", "FOO bar"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_ARG, max_size=6))
def test_args_never_crash(conf: list[str]) -> None:
    a = Args(conf)
    a.read_mp("A", cp.parse_int)
    a.read_p("B", cp.parse_bool)
    a.read_all("C", cp.parse_ip_address)
    a.read("LIMIT", cp.parse_unsigned, 3, deprecated=True)
    try:
        a.complete()
    except ArgsError as err:
        assert err.errors and all(isinstance(line, str) for line in err.errors)
