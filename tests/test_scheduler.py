"""The driver loop: stride scheduling, timers, simulated time, stopping."""

from clickos.core.clock import SIM_EPOCH, Clock
from clickos.core.master import Master
from clickos.core.task import Task, Timer


class _Owner:
    """Stands in for an element: tasks find the master through .router.master."""

    def __init__(self, master: Master) -> None:
        self.router = self
        self.master = master
        self.running = True

    def schedule_tickets(self, element):
        return None


def test_stride_scheduling_shares_by_tickets():
    m = Master()
    owner = _Owner(m)
    runs = {"a": 0, "b": 0}

    def mk(name):
        def cb():
            runs[name] += 1
            t = tasks[name]
            t.fast_reschedule()
            return True
        return cb

    tasks = {n: Task(mk(n)) for n in runs}
    tasks["a"].set_tickets(2048)
    tasks["b"].set_tickets(1024)
    for t in tasks.values():
        t.initialize(owner, True)
    m.process_pending()
    m.run_tasks(3000)
    ratio = runs["a"] / runs["b"]
    assert 1.9 < ratio < 2.1


def test_unscheduled_task_stops_running():
    m = Master()
    owner = _Owner(m)
    count = [0]

    def cb():
        count[0] += 1
        return True  # does not reschedule itself

    t = Task(cb)
    t.initialize(owner, True)
    m.process_pending()
    m.run_tasks(100)
    assert count[0] == 1
    assert not t.scheduled


def test_timers_fire_in_order_in_simulated_time():
    clock = Clock()
    clock.set_simulation()
    m = Master(clock)
    owner = _Owner(m)
    fired = []
    timers = [Timer(lambda t, i=i: fired.append((i, clock.recent_steady()))) for i in range(3)]
    for i, t in enumerate(timers):
        t.initialize(owner)
        t.schedule_at(SIM_EPOCH + (3 - i) * 1_000_000)
    timers[1].unschedule()
    m.routers.append(owner)  # keeps run_os from deciding nothing will ever happen
    while m.timer_expiry() is not None:
        m.run_os()
        m.run_timers()
    assert [i for i, _ in fired] == [2, 0]
    assert fired[0][1] >= SIM_EPOCH + 1_000_000


def test_simulated_clock_ticks_one_ns_per_reading():
    c = Clock()
    c.set_simulation()
    a = c.now()
    b = c.now()
    assert b - a == 1
    c.jump_steady(c.recent_steady() + 5_000)
    assert c.now_steady() >= a + 5_000


def test_timewarp_speed():
    c = Clock()
    a = c.now_steady()
    c.set_speed(1000.0)
    import time

    time.sleep(0.01)
    assert c.now_steady() - a > 5e9  # 10 ms at 1000x is 10 s
