"""Notifier signals: allocation, combination, and Click's unparse format."""

from clickos.core.notifier import Notifier, NotifierSignal
from clickos.core.router import Router


def test_signals_are_allocated_32_per_word():
    r = Router()
    sigs = [r.new_notifier_signal("empty") for _ in range(33)]
    assert sigs[0].unparse() == "empty.0/1:1*"
    assert sigs[31].unparse() == "empty.0/80000000:80000000*"
    assert sigs[32].unparse() == "empty.1/1:1*"


def test_combination_and_activity():
    r = Router()
    a, b = r.new_notifier_signal("empty"), r.new_notifier_signal("empty")
    c = r.new_notifier_signal("full")
    s = NotifierSignal.idle()
    s += a
    s += b
    s += c
    assert s.unparse() == "empty.0/3:3*+full.0/1:1*"
    a.set_active(False)
    b.set_active(False)
    c.set_active(False)
    assert not s.active()
    assert s.unparse() == "empty.0/3:0+full.0/1:0"
    b.set_active(True)
    assert s.active()


def test_busy_dominates_and_idle_is_neutral():
    r = Router()
    a = r.new_notifier_signal("empty")
    s = NotifierSignal.idle()
    s += a
    s += NotifierSignal.busy()
    assert s.is_busy() and s.active()
    t = NotifierSignal.idle()
    t += NotifierSignal.idle()
    assert not t.active()


def test_notifier_wakes_listeners_on_activation():
    r = Router()
    n = Notifier()
    n.initialize("empty", r)

    class T:
        woke = 0

        def reschedule(self):
            T.woke += 1

    n.add_listener(T())
    n.set_active(False)
    n.set_active(True)
    n.set_active(True)
    assert T.woke == 1
