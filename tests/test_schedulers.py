"""Pull schedulers, switches, shapers and NotifierDebug.

Expected values were checked against Click's own binary on the same configurations.
"""

import numpy as np
from conftest import build, run

from clickos.packet.batch import PacketBatch


def firsts(r, slots: np.ndarray) -> list[int]:
    pool = r.router.pool
    return [int(pool.data[s, pool.off[s]]) for s in slots.tolist()]


def fill(r, name: str, values: list[int]) -> None:
    pool = r.router.pool
    idx = np.array([pool.new_packet(bytes([v])) for v in values], np.int32)
    r.router.find(name).push(0, PacketBatch(pool, idx))


def test_round_robin_order_and_batch_pull():
    r = build("qa :: Queue -> [0] rr :: RoundRobinSched; qb :: Queue -> [1] rr; qc :: Queue -> [2] rr;"
              "rr -> Discard(ACTIVE false); Idle -> qa; Idle -> qb; Idle -> qc")
    fill(r, "qa", [1, 1, 1, 1])
    fill(r, "qb", [2, 2])
    fill(r, "qc", [3])
    rr = r.router.find("rr")
    assert firsts(r, rr.pull(0, 1).idx) == [1]
    assert firsts(r, rr.pull(0, 5).idx) == [2, 3, 1, 2, 1]
    assert firsts(r, rr.pull(0, 5).idx) == [1]
    assert rr.pull(0, 5) is None


def test_prio_sched_serves_lower_inputs_first():
    r = build("qa :: Queue -> [1] p :: PrioSched; qb :: Queue -> [0] p; p -> Discard(ACTIVE false);"
              "Idle -> qa; Idle -> qb")
    fill(r, "qa", [10, 10, 10])
    fill(r, "qb", [20, 20])
    p = r.router.find("p")
    assert firsts(r, p.pull(0, 4).idx) == [20, 20, 10, 10]
    assert firsts(r, p.pull(0, 4).idx) == [10]


def test_stride_sched_shares_by_tickets():
    r = build("qa :: Queue -> [0] s :: StrideSched(3, 1); qb :: Queue -> [1] s; s -> Discard(ACTIVE false);"
              "Idle -> qa; Idle -> qb")
    fill(r, "qa", [1] * 40)
    fill(r, "qb", [2] * 40)
    got = firsts(r, r.router.find("s").pull(0, 40).idx)
    assert got.count(1) == 30 and got.count(2) == 10
    assert r.read("s.config") == "3, 1"


def test_stride_sched_ticket_handlers_and_errors():
    r = build("Idle -> [0] s :: StrideSched(1, x); Idle -> [1] s; s -> Discard")
    assert r.router is None
    assert "argument 1 should be number of tickets (integer)" in r.errors
    r = build("Idle -> [0] s :: StrideSched(1); Idle -> [1] s; s -> Discard")
    assert "need 2 arguments, one per input port" in r.errors
    r = build("qa :: Queue -> [0] s :: StrideSched(1, 1); qb :: Queue -> [1] s; s -> Discard(ACTIVE false);"
              "Idle -> qa; Idle -> qb")
    h = r.router.lookup_handler("s.tickets1", r.errh, want="write")
    assert h.call_write("0", r.errh) == 0
    assert r.read("s.tickets1") == "0"
    fill(r, "qa", [1] * 3)
    fill(r, "qb", [2] * 3)
    assert firsts(r, r.router.find("s").pull(0, 6).idx) == [1, 1, 1]


def test_pull_switch_notifier_and_switch_handler():
    r = run("a :: InfiniteSource(\\<0a>, LIMIT 3) -> qa :: Queue -> [0] ps :: PullSwitch(1);"
            "b :: InfiniteSource(\\<0b>, LIMIT 2) -> qb :: Queue -> [1] ps;"
            "ps -> n :: NotifierDebug -> u :: Unqueue -> c :: Counter -> Discard;"
            "DriverManager(wait 0.01s, print c.count, write ps.switch 0, wait 0.01s, stop)", simtime=True)
    assert r.read("c.count") == "5"
    assert r.read("ps.switch") == "0"
    assert r.read("n.signal") == "empty.0/10:0"


def test_simple_pull_switch_out_of_range_input():
    r = build("Idle -> s :: SimplePullSwitch(5) -> Discard")
    assert r.read("s.switch") == "-1"


def test_notifier_debug_signals():
    # standard/QuickNoteQueue-01
    r = run("i :: InfiniteSource(LIMIT 1, ACTIVE false) -> d1 :: NotifierDebug -> q :: QuickNoteQueue"
            " -> d2 :: NotifierDebug -> s :: PullSwitch -> c :: Counter(COUNT_CALL 1 s.switch 1) -> Discard;"
            "Idle -> [1] s; DriverManager(wait 0.01s, write i.active true, wait 0.01s, stop)", simtime=True)
    assert r.read("d1.signal") == "full.0/1:1*"
    assert r.read("d2.signal").startswith("empty.0/") and r.read("d2.signal").endswith(":0")
    assert r.read("c.count") == "1"


def test_derived_signal_lists_words_in_creation_order():
    # standard/notifier-05: 42 queues need two signal words; whichever queue was
    # declared last lands in empty.1, and empty.0 is still printed first
    decls = "".join(f"q{i:02d} :: NotifierQueue(5);" for i in reversed(range(42)))
    links = "".join(f"x [{i - 1}] -> q{i:02d} -> [{i}] s;" for i in range(1, 42))
    r = build(decls + "i :: InfiniteSource(ACTIVE false) -> q00 -> s :: RoundRobinSched -> n :: NotifierDebug"
              " -> Discard; x :: Idle;" + links)
    for i in range(42):
        r.router.find(f"q{i:02d}").empty_note.set_active(False)
    r.router.find("q00").empty_note.set_active(True)
    sig = r.read("n.signal")
    assert sig.startswith("empty.0/ffffffff:")
    assert sig.endswith("+empty.1/3ff:200*")


def test_time_sorted_sched_merges_by_timestamp():
    r = build("qa :: Queue -> [0] t :: TimeSortedSched; qb :: Queue -> [1] t; t -> Discard(ACTIVE false);"
              "Idle -> qa; Idle -> qb")
    pool = r.router.pool
    for name, stamps in (("qa", [1, 4, 5]), ("qb", [2, 3, 6])):
        idx = np.array([pool.new_packet(bytes([s])) for s in stamps], np.int32)
        pool.ts[idx] = np.array(stamps) * 10**9
        r.router.find(name).push(0, PacketBatch(pool, idx))
    t = r.router.find("t")
    assert firsts(r, t.pull(0, 10).idx) == [1, 2, 3, 4, 5, 6]
    assert r.read("t.well_ordered") == "true"


def test_time_sorted_sched_notices_disorder():
    r = build("qa :: Queue -> [0] t :: TimeSortedSched; t -> Discard(ACTIVE false); Idle -> qa")
    pool = r.router.pool
    idx = np.array([pool.new_packet(bytes([s])) for s in (2, 1)], np.int32)
    pool.ts[idx] = np.array([2, 1]) * 10**9
    r.router.find("qa").push(0, PacketBatch(pool, idx))
    t = r.router.find("t")
    assert firsts(r, t.pull(0, 2).idx) == [2, 1]
    assert r.read("t.well_ordered") == "false"


def test_time_sorted_sched_stop():
    r = run("a :: InfiniteSource(\\<0a>, LIMIT 3) -> [0] t :: TimeSortedSched(STOP true, BUFFER 2);"
            "b :: InfiniteSource(\\<0b>, LIMIT 4) -> [1] t; t -> u :: Unqueue -> c :: Counter -> Discard;",
            simtime=True)
    assert r.read("c.count") == "7"


def test_shaper_rates():
    # the first two blocks of standard/Shaper-01
    r = run("""
is :: InfiniteSource(LIMIT 100) -> s :: Shaper(1000)
  => ( [0] -> shaped :: Counter -> [0]; [1] -> [1] )
  => RoundRobinSched -> total :: Counter -> TimedSink(1ms);
Script(wait 150ms, write shaped.reset, write total.reset, write s.rate 500, write s.reset,
       write is.reset, wait 150ms, stop);
""", simtime=True)
    assert r.read("shaped.count") == "51"
    assert r.read("total.count") == "100"
    assert r.read("s.rate") == "500"
    assert r.read("s.config") == "500"


def test_rated_splitter():
    r = run("InfiniteSource -> Queue(10) -> RatedUnqueue(10) -> rs :: RatedSplitter(RATE 2)"
            " -> c1 :: Counter -> Discard; rs [1] -> c2 :: Counter -> Discard; DriverManager(wait 2, stop)",
            simtime=True)
    assert r.read("c1.count") == "4"
    assert r.read("c2.count") == "16"
    assert r.read("rs.rate") == "2"


def test_delay_shaper_wakes_puller():
    r = run("a :: RatedSource(\\<0a>, RATE 10, LIMIT 5) -> SetTimestamp -> q :: Queue"
            " -> ds :: DelayShaper(0.15s) -> u :: Unqueue -> c :: Counter -> Discard;"
            "DriverManager(wait 1s, stop)", simtime=True)
    assert r.read("c.count") == "5"
    assert r.read("ds.delay") == "150ms"
