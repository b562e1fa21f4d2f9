"""Random and mutated configurations never raise: they either build or report errors.

The contract (issue: "bad input gets a clear error, never a crash"): whatever
text reaches the parser and the router, the only outcome besides success is
messages on the ErrorHandler and a None router.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickos.core.errors import ErrorHandler
from clickos.core.master import Master
from clickos.core.router import Router

SEEDS = [
    "InfiniteSource(LIMIT 3, STOP true) -> c :: Counter -> Discard;",
    "i, j :: Idle; i[0] -> [0]j; i[1] -> [1]j;",
    "elementclass Foo { $a | input -> Print($a) -> output } InfiniteSource(LIMIT 1) -> Foo(x) -> Discard;",
    "q :: Queue(10); InfiniteSource -> q -> Unqueue -> Discard; Idle -> [1]q;",
    "a :: Tee(2); Idle -> a; a[0] -> Discard; a[1] -> Discard;",
    "define($x 5) InfiniteSource(LIMIT $x) -> Classifier(12/0800, -) => Discard, Discard;",
    "s :: Script(wait 1ms, stop); Idle -> Discard;",
    "x :: Idle => ( -> c :: Idle), (-> d :: Idle);",
    "require(compact_config) elementclass A { input -> output || input -> Null -> output } Idle -> A -> Discard;",
]

TOKENS = ["->", "=>", "::", "[", "]", "(", ")", "{", "}", ",", ";", "$a", "${b-1}", "elementclass", "define",
          "require", "input", "output", "Idle", "Queue", "Discard", "Foo", "||", "...", '"', "'", "/*", "*/",
          "//", "\n", "# 3 \"f\"\n", "0", "-1", "99999999999999999999", "\\<zz>", " ", "@", "/", "Tee(0)"]


def _try(text: str) -> None:
    errh = ErrorHandler(echo=False)
    r = Router.from_text(text, "fuzz", errh, master=Master())
    if r is None:
        assert errh.nerrors > 0, f"rejected without an error message: {text!r}"
    else:
        r.cleanup()


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        tok = draw(st.sampled_from(TOKENS))
        if op == "insert":
            text = text[:pos] + tok + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)):]
        else:
            text = text[:pos] + tok + text[pos + len(tok):]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_configs_never_raise(text: str) -> None:
    _try(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join))
def test_token_soup_never_raises(text: str) -> None:
    _try(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(text: str) -> None:
    _try(text)
