"""InfiniteSource, Counter, AverageCounter, Discard and Idle, through the whole stack."""

from conftest import build, run


def test_infinite_source_limit_and_count():
    r = run("s :: InfiniteSource(LIMIT 7, STOP true) -> c :: Counter -> Discard")
    assert r.read("c.count") == "7"
    assert r.read("s.count") == "7"
    assert r.router.pool.in_use == 0  # every packet was freed


def test_infinite_source_burst_and_bytes():
    r = run('InfiniteSource(DATA "abcd", LIMIT 10, BURST 4, STOP true) -> c :: Counter -> d :: Discard')
    assert r.read("c.count") == "10"
    assert r.read("c.byte_count") == "40"
    assert r.read("d.count") == "10"


def test_infinite_source_length_repeats_data():
    r = run('InfiniteSource(DATA "ab", LENGTH 5, LIMIT 1, STOP true) -> c :: Counter -> Discard')
    assert r.read("c.byte_count") == "5"


def test_infinite_source_bad_burst_is_a_config_error():
    r = build("InfiniteSource(BURST 0) -> Discard")
    assert r.router is None
    assert "burst size must be >= 1" in r.errors
    assert "Router could not be initialized!" in r.errors


def test_stop_and_end_call_are_exclusive():
    r = build("InfiniteSource(STOP true, END_CALL d.reset_counts) -> d :: Discard")
    assert r.router is None
    assert "END_CALL and STOP are mutually exclusive" in r.errors


def test_end_call_runs_handler():
    r = run("s :: InfiniteSource(LIMIT 3, END_CALL stop) -> c :: Counter -> Discard")
    assert r.read("c.count") == "3"


def test_counter_count_call_fires_once():
    r = run("InfiniteSource(LIMIT 5, STOP true) -> Counter(COUNT_CALL 3 d.reset_counts) -> d :: Discard")
    # the call runs after the third packet is counted, before it reaches d (as in Click)
    assert r.read("d.count") == "3"


def test_counter_reset_and_rates_are_numbers():
    r = run("InfiniteSource(LIMIT 100, BURST 10, STOP true) -> c :: Counter -> Discard")
    float(r.read("c.rate"))
    float(r.read("c.byte_rate"))
    float(r.read("c.bit_rate"))
    h = r.router.lookup_handler("c.reset", r.errh, want="write")
    assert h.call_write("", r.errh) == 0
    assert r.read("c.count") == "0"


def test_average_counter_rate_positive():
    r = run("InfiniteSource(LIMIT 1000, BURST 100, STOP true) -> ac :: AverageCounter -> Discard")
    assert r.read("ac.count") == "1000"
    assert float(r.read("ac.rate")) > 0


def test_burst1_coalescing_keeps_counts_exact():
    r = run("InfiniteSource(LIMIT 1000, STOP true) -> c :: Counter -> ac :: AverageCounter -> d :: Discard")
    assert r.read("c.count") == r.read("ac.count") == r.read("d.count") == "1000"


def test_pull_discard_drains_queue_and_sleeps():
    r = run("InfiniteSource(LIMIT 20, STOP true) -> q :: Queue(100) -> d :: Discard(BURST 4)")
    # nothing is lost: what Discard did not pull is still queued
    assert int(r.read("d.count")) + int(r.read("q.length")) == 20
    assert int(r.read("d.count")) > 0


def test_idle_inline_ports():
    r = build("i, j :: Idle; i[0] -> [0]j; i[1] -> [1]j; i[2] -> [2]j")
    assert r.router is not None, r.errors


def test_discard_active_in_push_context_is_error():
    r = build("InfiniteSource -> Discard(ACTIVE false)")
    assert r.router is None
    assert "ACTIVE is meaningless in push context" in r.errors
