"""StringMatcher and RegexMatcher (Hyperscan)."""

from __future__ import annotations

import pytest
from conftest import build, run

pytest.importorskip("hyperscan")

def _write(res, name: str, value: str) -> int:
    h = res.router.lookup_handler(name, res.errh, want="write")
    return h.call_write(value, res.errh)


SOURCES = """
a :: InfiniteSource(DATA "GET /index.html HTTP/1.0\\r\\n", LIMIT 3, STOP true);
b :: InfiniteSource(DATA "GET /etc/passwd HTTP/1.0\\r\\n", LIMIT 2, STOP true);
c :: InfiniteSource(DATA "\\<00 01 02 ff> binary", LIMIT 4, STOP true);
"""


def test_string_matcher_routes_and_counts() -> None:
    r = run(SOURCES + """
        a -> m :: StringMatcher("/etc/passwd", \\<01 02 ff>) -> ok :: Counter -> Discard;
        b -> m; c -> m;
        m[1] -> bad :: Counter -> Discard;
        DriverManager(pause, pause, pause)""")
    assert r.read("ok.count") == "3" and r.read("bad.count") == "6" and r.read("m.matches") == "6"
    assert r.read("m.patterns") == '"/etc/passwd"\n"\\001\\002\\377"'


def test_string_matcher_drops_without_output1() -> None:
    r = run(SOURCES + """
        a -> m :: StringMatcher(passwd) -> ok :: Counter -> Discard; b -> m; c -> m;
        DriverManager(pause, pause, pause)""")
    assert r.read("ok.count") == "7" and r.read("m.matches") == "2"


def test_patterns_replaced_at_run_time() -> None:
    r = build(SOURCES + """
        a -> m :: StringMatcher(passwd) -> ok :: Counter -> Discard; b -> m; c -> m;
        DriverManager(pause, pause, pause)""")
    assert r.router is not None
    m = r.router.find("m")
    assert m is not None
    assert _write(r, "m.patterns", "index.html, \"binary\"") >= 0
    assert m.patterns == [b"index.html", b"binary"]
    r.router.activate(r.errh)
    r.router.master.driver()
    assert r.read("ok.count") == "2" and r.read("m.matches") == "7"
    assert _write(r, "m.reset_count", "") >= 0 and r.read("m.matches") == "0"


def test_regex_matcher() -> None:
    r = run(SOURCES + """
        a -> m :: RegexMatcher("(?i)get /[a-z]+\\\\.html", "\\\\xff bin") -> ok :: Counter -> Discard;
        b -> m; c -> m; m[1] -> bad :: Counter -> Discard;
        DriverManager(pause, pause, pause)""")
    assert r.read("bad.count") == "7" and r.read("ok.count") == "2"


def test_bad_patterns() -> None:
    r = build("Idle -> RegexMatcher(\"a(\") -> Idle")
    assert r.router is None and "bad pattern" in r.errors
    r = build("Idle -> m :: RegexMatcher(abc) -> Idle")
    assert r.router is not None
    assert _write(r, "m.patterns", "\"(unclosed\"") < 0
    assert r.router.find("m").patterns == [b"abc"]  # type: ignore[union-attr]


def test_empty_pattern_list_passes_everything() -> None:
    r = run(SOURCES + "a -> StringMatcher() -> ok :: Counter -> Discard; b -> Discard; c -> Discard;"
            "DriverManager(pause, pause, pause)")
    assert r.read("ok.count") == "3"
