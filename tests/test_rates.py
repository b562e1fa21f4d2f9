"""Token buckets and gap rates (clickos.core.rates): Click's integer arithmetic."""

from conftest import run

from clickos.core.rates import (
    MAX_TOKENS,
    TICKS_NEVER,
    GapRate,
    TokenBucket,
    TokenCounter,
    TokenRate,
    jiffies,
)


def test_token_rate_scaling():
    r = TokenRate(2, 40)
    assert (r.token_scale, r.tokens_per_tick, r.time_until_full) == (107374182, 214748, 20001)
    assert r.rate() == 2 and r.capacity() == 40
    assert not r.idle and not r.unlimited


def test_token_rate_capacity_raised_to_one_tick():
    r = TokenRate(100000, 1)  # 100 tokens arrive per tick, so capacity becomes 100
    assert r.capacity() == 100
    assert r.time_until_full == 2


def test_zero_capacity_means_idle():
    r = TokenRate(50, 0)
    assert r.idle and r.tokens_per_tick == 0 and r.time_until_full == TICKS_NEVER


def test_special_rates():
    assert TokenRate(unlimited=True).unlimited
    assert TokenRate().idle
    b = TokenBucket(unlimited=True)
    assert b.full()


def test_default_bucket_is_empty_and_fills_on_first_refill():
    b = TokenBucket()
    b.assign(10, 5)
    assert b.empty() and b.size() == 0
    b.refill(1_000_000)  # far from tick 0: completely full
    assert b.full() and b.contains(5) and not b.contains(6)


def test_refill_remove_and_wait():
    b = TokenBucket()
    b.assign(1000, 10)  # one token per tick, ten at most
    b.set_time_point(100)
    b.refill(100)
    assert b.size() == 0
    b.refill(103)
    assert b.size() == 3
    assert b.remove_if(2) and not b.remove_if(2)
    assert b.time_until_contains(4) == 3
    b.remove(50)  # removing more than present empties the bucket
    assert b.empty()
    b.refill(99)  # time going backwards adds nothing
    assert b.empty()


def test_contains_rejects_more_than_capacity():
    b = TokenBucket(2, 3)
    assert b.full()
    assert b.contains(3) and not b.contains(10**10)
    assert b.time_until_contains(10**10) == TICKS_NEVER


def test_counter_adjust_keeps_token_count():
    old, new = TokenRate(10, 10), TokenRate(10, 20)
    c = TokenCounter()
    c.set(old, 5)
    c.adjust(old, new)  # rescaled: still 5 tokens, now in a bucket of 20
    assert c.size(new) == 5
    c.set_full()
    c.adjust(new, old)  # saturates rather than overflowing
    assert c.tokens == MAX_TOKENS


def test_jiffies_are_milliseconds_mod_2_32():
    assert jiffies(1_500_000) == 1
    assert jiffies(10**18) == (10**12) & 0xFFFFFFFF


def test_gap_rate_spreads_events():
    g = GapRate(1000)
    sent = 0
    base = 5 * 10**9
    for us in range(0, 1_000_000, 100):  # poll every 100 us for one second
        if g.need_update(base + us * 1000):
            g.update()
            sent += 1
    assert 999 <= sent <= 1001


def test_gap_rate_zero_and_limits():
    g = GapRate(0)
    assert g.need_update(10**9)  # right after a reset, in the first half second
    g.update()
    assert not g.need_update(10**9 + 1000)
    assert not g.set_rate(GapRate.MAX_RATE + 1)
    assert g.rate == GapRate.MAX_RATE


def test_rated_unqueue_counts_match_click():
    # standard/RatedUnqueue-01, shortened to 2 simulated seconds
    r = run("""
InfiniteSource -> Queue(10) -> RatedUnqueue(RATE 2) -> c1 :: Counter -> Discard;
InfiniteSource -> Queue(10) -> RatedUnqueue(RATE 2, BURST_SIZE 50) -> c2 :: Counter -> Discard;
DriverManager(wait 2, stop);
""", simtime=True)
    assert r.read("c1.count") == "4"
    assert r.read("c2.count") == "53"  # the 50-token burst, then the rate


def test_bandwidth_rated_elements():
    r = run("""
InfiniteSource(LENGTH 100) -> Queue(10) -> u :: BandwidthRatedUnqueue(RATE 2000Bps)
  -> s :: BandwidthRatedSplitter(RATE 200Bps) -> c1 :: Counter -> Discard;
DriverManager(wait 1, stop);
""", simtime=True)
    assert r.read("c1.count") == "2"
    assert r.read("u.rate") == "16.008kbps"  # Click's rate() rounding, reproduced
    assert r.read("s.rate") == "1.6kbps"
