"""Rate limiting arithmetic shared by the shaping elements: token buckets and gap rates.

Click's rate-limited elements (RatedUnqueue, RatedSplitter, their bandwidth
variants, Shaper, BandwidthShaper ...) count packets whose totals Click's own
tests check exactly, so the integer arithmetic here follows Click's bit for bit:

- Token buckets keep a 32-bit unsigned count of *scaled* tokens.  A bucket of
  capacity C uses the scale ``floor(0xFFFFFFFF / C)``, so "full" is always
  0xFFFFFFFF.  The bucket is refilled once per *tick*; a tick is one jiffy, and
  at user level a jiffy is one millisecond of wall-clock time (read as
  ``now_ns // 1e6``, truncated to 32 bits).
- A gap rate spreads N events evenly over each second, using 12 bits of
  fraction on the microsecond counter.

All values are plain Python ints kept in the ranges the C++ types allow.
"""

from __future__ import annotations

from collections.abc import Callable

U32 = 0xFFFFFFFF
MAX_TOKENS = U32
TICKS_NEVER = U32          # "never": the largest tick count
HZ = 1000                   # ticks (jiffies) per second at user level
NS_PER_TICK = 1_000_000_000 // HZ

# BandwidthRatedUnqueue/Splitter keep this many bytes in reserve in their buckets.
BANDWIDTH_THRESH = 131072


def jiffies(now_ns: int) -> int:
    """The 32-bit jiffy counter for a wall-clock reading in nanoseconds."""
    return (now_ns // NS_PER_TICK) & U32


def ticks_to_ns(ticks: int) -> int:
    """A tick count as a duration in nanoseconds."""
    return ticks * NS_PER_TICK


class TokenRate:
    """A refill rate (tokens per second) and a capacity, in scaled units.

    ``tokens_per_tick`` scaled tokens are added per tick; ``time_until_full``
    ticks refill an empty bucket.  An *idle* rate never refills; an
    *unlimited* rate fills a bucket completely on every refill.
    """

    __slots__ = ("tokens_per_tick", "token_scale", "time_until_full")

    def __init__(self, rate: int | None = None, capacity: int | None = None, *,
                 unlimited: bool = False) -> None:
        self.tokens_per_tick = 0
        self.token_scale = 1
        self.time_until_full = TICKS_NEVER
        if rate is not None:
            self.assign(rate, capacity if capacity is not None else 0)
        else:
            self.assign_special(unlimited)

    def copy(self) -> TokenRate:
        r = TokenRate()
        r.tokens_per_tick, r.token_scale, r.time_until_full = (
            self.tokens_per_tick, self.token_scale, self.time_until_full)
        return r

    def assign_special(self, unlimited: bool = False) -> None:
        """Make the rate unlimited (always full) or idle (never refills)."""
        self.token_scale = 1
        if unlimited:
            self.tokens_per_tick = MAX_TOKENS
            self.time_until_full = 0
        else:
            self.tokens_per_tick = 0
            self.time_until_full = TICKS_NEVER

    def assign(self, rate: int, capacity: int) -> None:
        """Set ``rate`` tokens per second and room for ``capacity`` tokens.

        A zero capacity makes the rate idle.  The capacity is raised, if
        needed, to at least one tick's worth of tokens.
        """
        rate &= U32
        capacity &= U32
        if capacity == 0:
            rate = 0
            capacity = MAX_TOKENS
        if rate != 0:
            min_capacity = (rate - 1) // HZ + 1
            if capacity < min_capacity:
                capacity = min_capacity
        self.token_scale = MAX_TOKENS // capacity
        per_tick = (rate * self.token_scale) // HZ
        assert per_tick <= U32
        if rate != 0:
            self.tokens_per_tick = per_tick if per_tick != 0 else 1
            self.time_until_full = (MAX_TOKENS - 1) // self.tokens_per_tick + 1
        else:
            self.tokens_per_tick = 0
            self.time_until_full = TICKS_NEVER

    @property
    def unlimited(self) -> bool:
        return self.time_until_full == 0

    @property
    def idle(self) -> bool:
        return self.tokens_per_tick == 0

    def rate(self) -> int:
        """The refill rate in tokens per second (rounded, saturating)."""
        v = (self.tokens_per_tick * HZ + self.tokens_per_tick // 2) // self.token_scale
        return MAX_TOKENS if v > U32 else v

    def capacity(self) -> int:
        return MAX_TOKENS // self.token_scale

    def scale(self, t: int) -> tuple[int, bool]:
        """``t`` tokens in scaled units, saturated at MAX_TOKENS; the flag says it fit."""
        v = (t & U32) * self.token_scale
        if v > U32:
            return MAX_TOKENS, False
        return v, True


class TokenCounter:
    """A bucket's contents: scaled tokens plus the tick of the last refill.

    The rate is passed to each call, so one rate can serve several counters.
    """

    __slots__ = ("tokens", "time_point")

    def __init__(self, full: bool = False) -> None:
        self.tokens = MAX_TOKENS if full else 0
        self.time_point = 0

    def size(self, rate: TokenRate) -> int:
        return self.tokens // rate.token_scale

    def contains(self, rate: TokenRate, t: int) -> bool:
        f, ok = rate.scale(t)
        return ok and f <= self.tokens

    def contains_fraction(self, f: int) -> bool:
        return f <= self.tokens

    def empty(self) -> bool:
        return self.tokens == 0

    def full(self) -> bool:
        return self.tokens == MAX_TOKENS

    def clear(self) -> None:
        self.tokens = 0

    def set_full(self) -> None:
        self.tokens = MAX_TOKENS

    def set(self, rate: TokenRate, t: int) -> None:
        self.tokens = rate.scale(t)[0]

    def adjust(self, old: TokenRate, new: TokenRate) -> None:
        """Rescale the contents after the rate's scale changed from ``old`` to ``new``."""
        if old.token_scale != new.token_scale:
            v = (self.tokens * new.token_scale) // old.token_scale
            self.tokens = MAX_TOKENS if v > U32 else v

    def refill(self, rate: TokenRate, now_ticks: int) -> None:
        """Add the tokens earned since the last refill (at tick ``now_ticks``)."""
        tp = self.time_point
        # Click's user-level jiffies are not assumed monotonic: a clock that went
        # backwards counts as no time passing.
        diff = (now_ticks - tp) & U32 if tp <= now_ticks else 0
        if diff >= rate.time_until_full:
            self.tokens = MAX_TOKENS
        elif diff > 0:
            new = self.tokens + diff * rate.tokens_per_tick
            self.tokens = MAX_TOKENS if new > U32 else new
        self.time_point = now_ticks & U32

    def set_time_point(self, ticks: int) -> None:
        self.time_point = ticks & U32

    def remove(self, rate: TokenRate, t: int) -> None:
        f = rate.scale(t)[0]
        self.tokens = self.tokens - f if f <= self.tokens else 0

    def remove_if(self, rate: TokenRate, t: int) -> bool:
        f, ok = rate.scale(t)
        if ok and f <= self.tokens:
            self.tokens -= f
            return True
        return False

    def time_until_contains(self, rate: TokenRate, t: int) -> int:
        """Ticks until the bucket holds ``t`` tokens (TICKS_NEVER if it never will)."""
        f, ok = rate.scale(t)
        if not ok:
            return TICKS_NEVER
        if f <= self.tokens or rate.time_until_full == 0:
            return 0
        if rate.tokens_per_tick == 0:
            return TICKS_NEVER
        return (f - self.tokens - 1) // rate.tokens_per_tick + 1


class TokenBucket:
    """A TokenRate paired with its own TokenCounter (Click's TokenBucket).

    Built with no arguments, the bucket is idle and *empty* with its last
    refill at tick 0; Click's rate elements build it that way and then
    ``assign`` a rate, so their first refill finds it (nearly always) full.
    ``now_ticks`` is a callable returning the current jiffy count; the
    elements pass one that reads the router clock.
    """

    __slots__ = ("rate_", "counter", "now_ticks")

    def __init__(self, rate: int | None = None, capacity: int | None = None,
                 now_ticks: Callable[[], int] | None = None, *, unlimited: bool = False) -> None:
        if rate is not None:
            self.rate_ = TokenRate(rate, capacity if capacity is not None else 0)
            self.counter = TokenCounter(rate != 0 and (capacity or 0) != 0)
        else:
            self.rate_ = TokenRate(unlimited=unlimited)
            self.counter = TokenCounter(unlimited)
        self.now_ticks = now_ticks

    # -- rate -------------------------------------------------------------------------
    def assign(self, rate: int, capacity: int) -> None:
        self.rate_.assign(rate, capacity)

    def assign_special(self, unlimited: bool = False) -> None:
        self.rate_.assign_special(unlimited)

    def assign_adjust(self, rate: int, capacity: int) -> None:
        """Change the rate, rescaling the current contents to the new scale."""
        old = self.rate_.copy()
        self.rate_.assign(rate, capacity)
        self.counter.adjust(old, self.rate_)

    @property
    def unlimited(self) -> bool:
        return self.rate_.unlimited

    @property
    def idle(self) -> bool:
        return self.rate_.idle

    def rate(self) -> int:
        return self.rate_.rate()

    def capacity(self) -> int:
        return self.rate_.capacity()

    # -- contents -------------------------------------------------------------------
    @property
    def tokens(self) -> int:
        """The scaled token count (Click's ``fraction()``)."""
        return self.counter.tokens

    def size(self) -> int:
        return self.counter.size(self.rate_)

    def empty(self) -> bool:
        return self.counter.empty()

    def full(self) -> bool:
        return self.counter.full()

    def contains(self, t: int) -> bool:
        return self.counter.contains(self.rate_, t)

    def clear(self) -> None:
        self.counter.clear()

    def set_full(self) -> None:
        self.counter.set_full()

    def set(self, t: int) -> None:
        self.counter.set(self.rate_, t)

    def refill(self, now_ticks: int | None = None) -> None:
        if now_ticks is None:
            assert self.now_ticks is not None, "TokenBucket has no clock"
            now_ticks = self.now_ticks()
        self.counter.refill(self.rate_, now_ticks)

    def set_time_point(self, ticks: int) -> None:
        self.counter.set_time_point(ticks)

    def remove(self, t: int) -> None:
        self.counter.remove(self.rate_, t)

    def remove_if(self, t: int) -> bool:
        return self.counter.remove_if(self.rate_, t)

    def time_until_contains(self, t: int) -> int:
        return self.counter.time_until_contains(self.rate_, t)


class GapRate:
    """Click's GapRate: lets events through at ``rate`` per second, evenly spaced.

    Call ``need_update(now_ns)`` to ask whether the next event is due, and
    ``update()`` (or ``update_with(n)``) after each event.  Within each wall-clock
    second the element may have had ``usec * rate / 1e6`` events so far; the
    comparison uses a fixed-point gap with 12 fraction bits, as Click does.
    """

    UGAP_SHIFT = 12
    MAX_RATE = 1_000_000 << UGAP_SHIFT

    __slots__ = ("_ugap", "_sec_count", "_tv_sec", "_rate")

    def __init__(self, rate: int = 0) -> None:
        self._rate = 0
        self._ugap = 0
        self._sec_count = 0
        self._tv_sec = -1
        self._initialize_rate(rate)

    def _initialize_rate(self, r: int) -> None:
        self._rate = r
        self._ugap = self.MAX_RATE + 1 if r == 0 else self.MAX_RATE // r

    @property
    def rate(self) -> int:
        return self._rate

    def set_rate(self, r: int, now_ns: Callable[[], int] | None = None) -> bool:
        """Change the rate; returns False if ``r`` was too large and got lowered.

        If the rate changes while running, the current second's count restarts
        from where the new rate would be now (``now_ns`` reads the clock).
        """
        ok = r <= self.MAX_RATE
        if not ok:
            r = self.MAX_RATE
        if self._rate != r:
            self._initialize_rate(r)
            if self._tv_sec >= 0 and r != 0 and now_ns is not None:
                usec = (now_ns() % 1_000_000_000) // 1000
                self._sec_count = (usec << self.UGAP_SHIFT) // self._ugap
        return ok

    def reset(self) -> None:
        self._tv_sec = -1

    def need_update(self, now_ns: int) -> bool:
        sec, sub = divmod(now_ns, 1_000_000_000)
        usec_scaled = (sub // 1000) << self.UGAP_SHIFT
        ugap = self._ugap
        need = (usec_scaled // ugap) & U32
        if self._tv_sec < 0:
            # Right after a reset the first event may go at once (unless rate 0).
            self._tv_sec = sec
            rem = (usec_scaled - need * ugap) & U32
            self._sec_count = need + (1 if rem > ugap // 2 else 0)
        elif sec > self._tv_sec:
            self._tv_sec = sec
            if self._sec_count > 0:
                self._sec_count -= self._rate
        # Click compares (int) need >= _sec_count
        sneed = need - (1 << 32) if need >= 1 << 31 else need
        return sneed >= self._sec_count

    def update(self) -> None:
        self._sec_count += 1

    def update_with(self, delta: int) -> None:
        self._sec_count += delta

    def expiry_ns(self) -> int:
        """When the user's count falls behind the true rate (0 if unknown)."""
        if self._tv_sec < 0 or self._rate == 0:
            return 0
        if self._sec_count < 0:
            return self._tv_sec * 1_000_000_000
        sec = self._tv_sec
        count = self._sec_count
        if count >= self._rate:
            sec += count // self._rate
            count %= self._rate
        usec = ((count * self._ugap) & U32) >> self.UGAP_SHIFT
        return sec * 1_000_000_000 + usec * 1000
