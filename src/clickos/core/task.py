"""Tasks and timers: the two ways an element gets called without a packet.

A Task is run repeatedly by the driver while scheduled; its callback returns
whether it did work.  Scheduling among tasks is Click's stride scheduling: each
task has tickets, a stride inversely proportional to them, and a pass value; the
task with the lowest pass runs next.  A Timer calls its callback once at a
given steady-clock time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clickos.core.master import Master

STRIDE1 = 1 << 16
DEFAULT_TICKETS = 1 << 10
MAX_TICKETS = 1 << 15


class Task:
    """A schedulable unit of work, owned by an element (or by the driver)."""

    __slots__ = ("callback", "element", "master", "tickets", "stride", "pass_", "_scheduled",
                 "_initialized", "home_thread")

    def __init__(self, callback: Callable[[], Any], element: Any = None) -> None:
        self.callback = callback
        self.element = element
        self.master: Master | None = None
        self.tickets = DEFAULT_TICKETS
        self.stride = STRIDE1 // DEFAULT_TICKETS
        self.pass_ = 0
        self._scheduled = False
        self._initialized = False
        self.home_thread = 0

    def initialize(self, owner: Any, schedule: bool) -> None:
        """Attach to the owner's router (Click's ``ScheduleInfo`` may set tickets)."""
        router = owner.router if hasattr(owner, "router") else owner
        self.master = router.master
        if self.element is None and hasattr(owner, "router"):
            self.element = owner
        tickets = router.schedule_tickets(self.element) if self.element is not None else None
        if tickets is not None:
            self.set_tickets(tickets)
        self._initialized = True
        if schedule:
            self.reschedule()

    def set_tickets(self, n: int) -> None:
        n = max(1, min(MAX_TICKETS, int(n)))
        self.tickets = n
        self.stride = STRIDE1 // n

    @property
    def scheduled(self) -> bool:
        return self._scheduled

    def reschedule(self) -> None:
        if self._scheduled or self.master is None:
            return
        self._scheduled = True
        self.master.add_task(self)

    schedule = reschedule

    def fast_reschedule(self) -> None:
        self.reschedule()

    def unschedule(self) -> None:
        if self._scheduled:
            self._scheduled = False
            if self.master is not None:
                self.master.remove_task(self)

    strong_unschedule = unschedule

    def fire(self) -> bool:
        return bool(self.callback())


class Timer:
    """Calls ``callback(timer)`` once at ``expiry`` (steady nanoseconds)."""

    __slots__ = ("callback", "element", "master", "expiry", "_seq", "_initialized")

    def __init__(self, callback: Callable[..., Any], element: Any = None) -> None:
        self.callback = callback
        self.element = element
        self.master: Master | None = None
        self.expiry = 0
        self._seq = -1  # >= 0 while scheduled: the heap entry's sequence number
        self._initialized = False

    def initialize(self, owner: Any) -> None:
        router = owner.router if hasattr(owner, "router") else owner
        self.master = router.master
        if self.element is None and hasattr(owner, "router"):
            self.element = owner
        self._initialized = True

    @property
    def initialized(self) -> bool:
        return self._initialized

    @property
    def scheduled(self) -> bool:
        return self._seq >= 0

    def schedule_at(self, when_ns: int) -> None:
        assert self.master is not None, "timer not initialized"
        self.master.schedule_timer(self, int(when_ns))

    schedule_at_steady = schedule_at

    def schedule_after(self, delta_ns: int) -> None:
        assert self.master is not None, "timer not initialized"
        self.schedule_at(self.master.clock.now_steady() + int(delta_ns))

    def schedule_after_sec(self, sec: float) -> None:
        self.schedule_after(int(round(sec * 1e9)))

    def schedule_after_msec(self, ms: float) -> None:
        self.schedule_after(int(round(ms * 1e6)))

    def schedule_now(self) -> None:
        assert self.master is not None, "timer not initialized"
        self.schedule_at(self.master.clock.now_steady())

    def reschedule_after(self, delta_ns: int) -> None:
        """Reschedule relative to the previous expiry (drift-free periodic timers)."""
        self.schedule_at(self.expiry + int(delta_ns))

    def unschedule(self) -> None:
        if self._seq >= 0 and self.master is not None:
            self.master.unschedule_timer(self)

    clear = unschedule

    def fire(self) -> None:
        self.callback(self)
