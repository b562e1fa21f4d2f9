"""The driver: runs tasks, timers, file-descriptor selects and signals.

This is Click's RouterThread driver loop for one thread, kept close to Click's
so that timing-sensitive behaviour (how many tasks run between timer checks,
when simulated time jumps) matches: each iteration processes newly scheduled
tasks, runs up to 128 task firings in stride order, handles signals, runs
expired timers every ``timer_stride`` iterations, and every other iteration
polls file descriptors, sleeping (or jumping simulated time) when idle.
"""

from __future__ import annotations

import bisect
import heapq
import os
import selectors
import signal as _signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from clickos.core.clock import Clock
from clickos.core.task import Task, Timer

if TYPE_CHECKING:
    from clickos.core.router import Router

TASKS_PER_ITER = 128
ITERS_PER_OS = 2
MAX_TIMER_STRIDE = 32
TIMER_ADJUSTMENT_NS = 500_000


class Master:
    """Runs one or more routers on one thread of control."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        # Click's master builds two timer sets (its thread's and the quiescent
        # thread's), each reading the steady clock; in simulated time each reading
        # is a tick, and packet timestamps in Click's tests count those ticks.
        self.clock.now_steady()
        self.clock.now_steady()
        self.routers: list[Router] = []
        # scheduled tasks sorted by pass; ``_passes`` mirrors it for bisect
        self._tasks: list[Task] = []
        self._passes: list[int] = []
        self._pending: list[Task] = []
        self._timers: list[tuple[int, int, Timer]] = []
        self._timer_seq = 0
        self.timer_stride = MAX_TIMER_STRIDE
        self._timer_count = 0
        self.stop_flag = False
        self.paused = False
        # Set around each task fire: how many consecutive fires the task is owed
        # (fire_budget) and how many it consumed (fires_used).
        self.fire_budget = 1
        self.fires_used = 1
        self._current: Task | None = None  # the task being fired, if any
        self._selector: selectors.BaseSelector | None = None
        self._select_cbs: dict[int, dict[int, Callable[[int, int], None]]] = {}
        self._wake_r = self._wake_w = -1
        self._signal_handlers: list[tuple[int, Any, Callable[[], bool]]] = []
        self._signals_pending: set[int] = set()
        self._sig_dispatching: set[int] = set()
        self._installed_signals: set[int] = set()

    # -- tasks -------------------------------------------------------------------------
    def add_task(self, task: Task) -> None:
        # As in single-threaded Click, a task scheduled while its router runs joins
        # the run list at once (behind the head, at head pass + stride), so it can
        # run in this very round; otherwise it waits on the pending list.
        router = getattr(task.element, "router", None)
        if router is not None and router.running and task is not self._current:
            if task in self._tasks:  # a lazily removed, now stale, entry
                i = self._tasks.index(task)
                del self._tasks[i]
                del self._passes[i]
            self._insert(task)
        else:
            self._pending.append(task)

    def remove_task(self, task: Task) -> None:
        # Lazy removal: run_tasks drops unscheduled tasks when it meets them; a task
        # still in the pending list is dropped by process_pending.
        pass

    def _insert(self, task: Task) -> None:
        head = self._passes[0] if self._passes else 0
        task.pass_ = head + task.stride
        i = bisect.bisect_right(self._passes, task.pass_)
        self._passes.insert(i, task.pass_)
        self._tasks.insert(i, task)

    @staticmethod
    def _held(task: Task) -> bool:
        """Whether ``task`` belongs to a router that is not running (yet): as in
        Click, such tasks wait on the pending list until Router.activate, so a
        hot-swap candidate does nothing before it has taken its predecessor's state."""
        router = getattr(task.element, "router", None)
        return router is not None and not router.running

    def process_pending(self) -> None:
        pending, self._pending = self._pending, []
        for t in pending:
            if t._scheduled and t not in self._tasks:
                if self._held(t):
                    self._pending.append(t)
                else:
                    self._insert(t)

    @property
    def active(self) -> bool:
        """Whether any task is scheduled (so the driver must not sleep)."""
        if any(t._scheduled and not self._held(t) for t in self._pending):
            return True
        return any(t._scheduled for t in self._tasks)

    def run_tasks(self, ntasks: int) -> None:
        tasks, passes = self._tasks, self._passes
        while ntasks >= 0 and tasks and not self.stop_flag:
            ntasks -= 1
            t = tasks[0]
            if not t._scheduled:
                del tasks[0]
                del passes[0]
                continue
            t._scheduled = False
            # A task that is alone in the list would be fired ntasks+1 times in a
            # row, with nothing else running in between; it may do that work in
            # one call and report how many fires it used (see fire_budget).
            self.fire_budget = ntasks + 1 if len(tasks) == 1 and not self._pending else 1
            self.fires_used = 1
            self._current = t
            work_done = t.callback()
            self._current = None
            if self.fires_used > 1:
                ntasks -= self.fires_used - 1
            if t._scheduled:
                newpass = t.pass_ + t.stride
                if not work_done:
                    if len(tasks) < 2:
                        t.pass_ = newpass
                        passes[0] = newpass
                        break
                    if passes[1] > newpass:
                        newpass = passes[1]
                t.pass_ = newpass
                if len(tasks) == 1 or newpass < passes[1]:
                    passes[0] = newpass
                else:
                    del tasks[0]
                    del passes[0]
                    i = bisect.bisect_right(passes, newpass)
                    passes.insert(i, newpass)
                    tasks.insert(i, t)
            elif tasks and tasks[0] is t:
                del tasks[0]
                del passes[0]

    # -- timers ------------------------------------------------------------------------
    def schedule_timer(self, timer: Timer, expiry: int) -> None:
        self._timer_seq += 1
        timer.expiry = expiry
        timer._seq = self._timer_seq
        heapq.heappush(self._timers, (expiry, self._timer_seq, timer))

    def unschedule_timer(self, timer: Timer) -> None:
        timer._seq = -1

    def _clean_timers(self) -> None:
        h = self._timers
        while h and h[0][2]._seq != h[0][1]:
            heapq.heappop(h)

    def timer_expiry(self) -> int | None:
        self._clean_timers()
        return self._timers[0][0] if self._timers else None

    def run_timers(self) -> None:
        if self.paused or self.stop_flag:
            return
        self._clean_timers()
        h = self._timers
        if not h:
            return
        check = self.clock.now_steady()
        if h[0][0] > check:
            return
        adj = 0 if self.clock.simulated else TIMER_ADJUSTMENT_NS
        if h[0][0] + adj <= check:
            self._timer_count = 0
            if self.timer_stride > 1:
                self.timer_stride = (self.timer_stride * 4) // 5
        else:
            self._timer_count += 1
            if self._timer_count >= 12:
                self._timer_count = 0
                self.timer_stride = min(self.timer_stride + 1, MAX_TIMER_STRIDE)
        while h and not self.stop_flag:
            expiry, seq, timer = h[0]
            if timer._seq != seq:
                heapq.heappop(h)
                continue
            if expiry > check:
                break
            heapq.heappop(h)
            timer._seq = -1
            timer.callback(timer)

    # -- file descriptors ------------------------------------------------------------
    def add_select(self, fd: int, mask: int, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(fd, events)`` when ``fd`` is readable/writable (selectors masks)."""
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
        cbs = self._select_cbs.setdefault(fd, {})
        for bit in (selectors.EVENT_READ, selectors.EVENT_WRITE):
            if mask & bit:
                cbs[bit] = callback
        events = 0
        for bit in cbs:
            events |= bit
        try:
            self._selector.modify(fd, events)
        except KeyError:
            self._selector.register(fd, events)

    def _ensure_wakeup(self) -> None:
        """Make signals interrupt the wait in run_os (Python's self-pipe wakeup fd)."""
        if self._wake_r >= 0 or threading.current_thread() is not threading.main_thread():
            return
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        try:
            _signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        except ValueError:
            os.close(r)
            os.close(w)
            return
        self._wake_r, self._wake_w = r, w
        self.add_select(r, selectors.EVENT_READ, self._drain_wakeup)

    def _drain_wakeup(self, fd: int, events: int) -> None:
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        """Release the wakeup pipe and selector (the master is not used again)."""
        if self._wake_r >= 0:
            try:
                if _signal.set_wakeup_fd(-1) != self._wake_w:
                    pass
            except ValueError:
                pass
            self.remove_select(self._wake_r, selectors.EVENT_READ)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def remove_select(self, fd: int, mask: int) -> None:
        cbs = self._select_cbs.get(fd)
        if not cbs or self._selector is None:
            return
        for bit in (selectors.EVENT_READ, selectors.EVENT_WRITE):
            if mask & bit:
                cbs.pop(bit, None)
        events = 0
        for bit in cbs:
            events |= bit
        if events:
            self._selector.modify(fd, events)
        else:
            self._selector.unregister(fd)
            del self._select_cbs[fd]

    def run_os(self) -> None:
        """Poll descriptors; sleep until the next timer when nothing is runnable."""
        timeout: float | None
        if self.active or self._signals_pending or self.stop_flag:
            timeout = 0.0
        else:
            expiry = self.timer_expiry()
            if expiry is None:
                timeout = None
            elif self.clock.simulated:
                self.clock.jump_steady(expiry)
                timeout = 0.0
            else:
                adj = TIMER_ADJUSTMENT_NS if self.timer_stride < 8 else 0
                delta = expiry - adj - self.clock.now_steady()
                timeout = self.clock.real_delay(delta) if delta > 0 else 0.0
        if timeout is None and not self.routers_running():
            self.stop_flag = True
            return
        self._ensure_wakeup()
        if self._selector is None or (not self._select_cbs and self._wake_r < 0):
            if timeout is None:
                _sleep(0.05)
            elif timeout > 0:
                _sleep(timeout)
            return
        try:
            ready = self._selector.select(timeout)
        except InterruptedError:
            return
        for key, events in ready:
            cbs = self._select_cbs.get(key.fd, {})
            done = set()
            for bit, cb in list(cbs.items()):
                if events & bit and cb not in done:
                    done.add(cb)
                    cb(key.fd, events)

    # -- signals -----------------------------------------------------------------------
    def _on_signal(self, signo: int, _frame: Any) -> None:
        self._signals_pending.add(signo)

    def add_signal_handler(self, signo: int, owner: Any, callback: Callable[[], bool]) -> None:
        """On ``signo``, call ``callback()`` from the driver loop; it returns whether it handled it."""
        for s, o, c in self._signal_handlers:
            if s == signo and o is owner and c == callback:
                return
        if not any(s == signo for s, _, _ in self._signal_handlers) and signo not in self._sig_dispatching:
            _signal.signal(signo, self._on_signal)
            self._installed_signals.add(signo)
        self._signal_handlers.append((signo, owner, callback))

    def remove_signal_handler(self, signo: int, owner: Any, callback: Callable[[], bool]) -> None:
        before = len(self._signal_handlers)
        self._signal_handlers = [h for h in self._signal_handlers
                                 if not (h[0] == signo and h[1] is owner and h[2] == callback)]
        if (len(self._signal_handlers) != before and not any(s == signo for s, _, _ in self._signal_handlers)
                and signo not in self._sig_dispatching):
            _signal.signal(signo, _signal.SIG_DFL)
            self._installed_signals.discard(signo)

    def run_signals(self) -> None:
        if not self._signals_pending:
            return
        happened = []
        keep = []
        for h in self._signal_handlers:
            if h[0] in self._signals_pending or h[0] in self._sig_dispatching:
                self._sig_dispatching.add(h[0])
                happened.append(h)
            else:
                keep.append(h)
        for h in happened:
            self._signals_pending.discard(h[0])
        self._signal_handlers = keep
        handled: set[int] = set()
        for signo, _owner, cb in happened:
            if cb():
                handled.add(signo)
        active = {s for s, _, _ in self._signal_handlers}
        for signo in sorted(self._sig_dispatching):
            suicide = False
            if signo not in active:
                _signal.signal(signo, _signal.SIG_DFL)
                self._installed_signals.discard(signo)
                if signo in self._signals_pending:
                    self._signals_pending.discard(signo)
                    suicide = True
            if suicide or signo not in handled:
                os.kill(os.getpid(), signo)
        self._sig_dispatching.clear()

    # -- routers and stopping --------------------------------------------------------
    def register(self, router: Router) -> None:
        self.routers.append(router)

    def unregister(self, router: Router) -> None:
        if router in self.routers:
            self.kill_router(router)
            self.routers.remove(router)

    def routers_running(self) -> bool:
        return any(r.running for r in self.routers)

    def request_stop(self) -> None:
        self.stop_flag = True

    def kill_router(self, router: Router) -> None:
        router.running = False
        for t in self._tasks + self._pending:
            if t.element is not None and getattr(t.element, "router", None) is router:
                t._scheduled = False
        for _, _, tm in self._timers:
            if tm.element is not None and getattr(tm.element, "router", None) is router:
                tm._seq = -1
        self._signal_handlers = [h for h in self._signal_handlers if getattr(h[1], "router", None) is not router]

    def verify_stop(self) -> bool:
        """Called when stop was requested: give driver scripts a chance, then say
        whether every router is finished."""
        self.stop_flag = False
        for r in list(self.routers):
            if r.runcount <= 0 and r.running:
                dm = r.attachments.get("Script")
                if dm is not None:
                    tries = 1000
                    while dm.driver_step() and r.runcount <= 0 and tries >= 0:
                        tries -= 1
                if r.runcount <= 0 and r.running:
                    self.kill_router(r)
        # a hot-swap replacement waiting for its swap task also keeps the driver going
        return not any(r.running or getattr(r, "pending_activation", False) for r in self.routers)

    def driver(self) -> None:
        """Run until every router has stopped."""
        it = 0
        while True:
            if self.stop_flag and self.verify_stop():
                break
            it += 1
            if self._pending:
                self.process_pending()
            self.run_tasks(TASKS_PER_ITER)
            if self._signals_pending:
                self.run_signals()
            if it % self.timer_stride == 0:
                self.run_timers()
            if it % ITERS_PER_OS == 0:
                self.run_os()

    def driver_once(self) -> None:
        """One driver iteration (used by instances that multiplex a control socket)."""
        if self._pending:
            self.process_pending()
        self.run_tasks(TASKS_PER_ITER)
        if self._signals_pending:
            self.run_signals()
        self.run_timers()


def _sleep(seconds: float) -> None:
    import time

    time.sleep(min(seconds, 3600.0))
