"""Router time: real, warped (``timewarp`` handler) or simulated (``--simtime``).

Times are integers in nanoseconds.  ``now()`` is wall-clock time (for packet
timestamps and Script's ``$(now)``); ``now_steady()`` never goes backwards and
drives timers.

Simulated time follows Click's rules, since Click's tests count packets that
depend on them: it starts at 1,000,000,000 s, each reading of the clock moves it
forward by one nanosecond, and when nothing is runnable the driver jumps it to
the next timer's expiry instead of sleeping.
"""

from __future__ import annotations

import time

NSEC = 1_000_000_000
SIM_EPOCH = 1_000_000_000 * NSEC


class Clock:
    """One clock per router master.  Modes: "none", "linear" (speed-up), "simulation"."""

    def __init__(self) -> None:
        self.mode = "none"
        self.speed = 1.0
        # For linear warp: warped = base_warped + (raw - base_raw) * speed.
        self._base_raw = [0, 0]
        self._base_warped = [0, 0]
        self._sim = [0, 0]  # simulation: [wall, steady]

    # -- raw clocks ----------------------------------------------------------------
    @staticmethod
    def _raw(steady: bool) -> int:
        return time.monotonic_ns() if steady else time.time_ns()

    # -- modes -----------------------------------------------------------------------
    def set_simulation(self, start_ns: int = SIM_EPOCH) -> None:
        self.mode = "simulation"
        self._sim = [start_ns, start_ns]

    @property
    def simulated(self) -> bool:
        return self.mode == "simulation"

    def set_speed(self, speed: float) -> None:
        """Click's ``timewarp`` write: run time ``speed`` times faster than real."""
        if self.mode == "simulation":
            return
        cur = [self._read(False), self._read(True)]
        self.speed = float(speed)
        self.mode = "none" if self.speed == 1.0 and cur == [self._raw(False), self._raw(True)] else "linear"
        for s in (0, 1):
            self._base_raw[s] = self._raw(bool(s))
            self._base_warped[s] = cur[s]

    def _read(self, steady: bool) -> int:
        if self.mode == "none":
            return self._raw(steady)
        if self.mode == "simulation":
            return self._sim[steady]
        s = int(steady)
        return self._base_warped[s] + int((self._raw(steady) - self._base_raw[s]) * self.speed)

    # -- readings --------------------------------------------------------------------
    def now(self) -> int:
        if self.mode == "simulation":
            self._sim[0] += 1
            self._sim[1] += 1
            return self._sim[0] - 1
        return self._read(False)

    def now_steady(self) -> int:
        if self.mode == "simulation":
            self._sim[0] += 1
            self._sim[1] += 1
            return self._sim[1] - 1
        return self._read(True)

    # Click's userlevel "recent" time is simply the current time, and in simulation it
    # ticks like any other reading; counts of Click's tests depend on those ticks.
    recent = now
    recent_steady = now_steady

    def peek(self, steady: bool = False) -> int:
        """The time, without the tick a reading costs in simulation (for diagnostics)."""
        return self._read(steady)

    def jump_steady(self, expiry: int) -> None:
        """Simulation only: advance to ``expiry`` if it is in the future."""
        if self.mode == "simulation" and self._sim[1] < expiry:
            self._sim[0] += expiry - self._sim[1]
            self._sim[1] = expiry

    def real_delay(self, delta_ns: int) -> float:
        """How long to really sleep (seconds) for ``delta_ns`` of warped time."""
        if self.mode == "linear" and self.speed > 0:
            return delta_ns / NSEC / self.speed
        return delta_ns / NSEC


def ns_to_str(ns: int) -> str:
    """Click's Timestamp unparse: seconds with 9 decimals ("1.500000000")."""
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    return f"{sign}{ns // NSEC}.{ns % NSEC:09d}"
