"""Click's RateEWMA: an exponentially weighted moving average of events per jiffy.

Counter's ``rate`` handlers use it.  Time is divided into epochs of one jiffy
(1 ms, Click's userlevel CLICK_HZ = 1000); counts within an epoch are summed,
and each epoch change folds the sum into a fixed-point average with weight
1/2**stability (plus zero observations for epochs with no events).
"""

from __future__ import annotations

from collections.abc import Callable

from clickos.core.confparse import unparse_real2

HZ = 1000


class RateEWMA:
    def __init__(self, stability: int, scale: int, now_ns: Callable[[], int]) -> None:
        self.stability = stability
        self.scale = scale
        self._now_ns = now_ns
        self.avg = 0
        self.current = 0
        self.epoch = self._epoch()

    def _epoch(self) -> int:
        return self._now_ns() * HZ // 1_000_000_000

    def _fold(self, x: int) -> None:
        xs = x << self.scale
        comp = 1 << (self.stability - 1)
        if xs + comp < self.avg:
            self.avg -= (self.avg - xs - comp) >> self.stability
        else:
            self.avg += (xs + comp - self.avg) >> self.stability

    def update(self, delta: int) -> None:
        now = self._epoch()
        if now != self.epoch:
            self._fold(self.current)
            gap = now - self.epoch - 1
            # Folding zeros: after ~40 of them the average is 0 at any scale Click uses.
            for _ in range(min(gap, 64)):
                self._fold(0)
            if gap > 64:
                self.avg = 0
            self.current = 0
            self.epoch = now
        self.current += delta

    def reset(self) -> None:
        self.avg = 0
        self.current = 0
        self.epoch = self._epoch()

    def rate(self) -> int:
        return (self.avg * HZ) >> self.scale

    def unparse_rate(self) -> str:
        return unparse_real2(self.avg * HZ, self.scale)
