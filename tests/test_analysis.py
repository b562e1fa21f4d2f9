"""Analysis elements: AdjustTimestamp, TimeFilter, AggregateCounter, AggregateIPFlows,
FromIPSummaryDump in pull and TIMING modes."""

from __future__ import annotations

from conftest import build
from conftest import run as _run_only

TIMES = "!data timestamp\n0.1\n0.2\n1.0\n1.2\n5.5\n"


def run(text: str, **kw):  # noqa: ANN201
    """Run a configuration to the end, then clean up (closing output files)."""
    res = _run_only(text, **kw)
    res.router.cleanup()
    return res


def _body(path) -> list[str]:
    return [x for x in path.read_text().splitlines() if not x.startswith("!")]


def test_adjust_timestamp(tmp_path) -> None:
    (tmp_path / "F").write_text(TIMES)
    o1, o2, o3 = tmp_path / "o1", tmp_path / "o2", tmp_path / "o3"
    r = run(f"""FromIPSummaryDump({tmp_path}/F, STOP true) -> t :: AdjustTimestamp(-1)
              -> ToIPSummaryDump({o1}, FIELDS timestamp) -> AdjustTimestamp(+1.5)
              -> ToIPSummaryDump({o2}, FIELDS timestamp) -> AdjustTimestamp(+0.1, ALL true)
              -> ToIPSummaryDump({o3}, FIELDS timestamp) -> Discard""")
    assert _body(o1) == ["-0.900000", "-0.800000", "0.000000", "0.200000", "4.500000"]
    assert _body(o2) == ["0.600000", "0.700000", "0.000000", "1.700000", "6.000000"]
    assert _body(o3) == ["0.700000", "0.800000", "0.100000", "1.800000", "6.100000"]
    assert r.read("t.time") == "-1.000000s"


def test_timefilter_end_call(tmp_path) -> None:
    (tmp_path / "F").write_text(TIMES)
    r = run(f"""FromIPSummaryDump({tmp_path}/F, STOP true)
        -> t :: TimeFilter(0, 1, END_CALL s.run $t) -> c :: Counter -> Discard;
        s :: Script(TYPE PASSIVE, init x 0, goto exit $(gt $x 1), set x $(add $x 1),
                    write t.extend_interval 1)""")
    assert r.read("c.count") == "4" and r.read("t.end") == "3.000000"


def test_timefilter_relative_and_output1(tmp_path) -> None:
    (tmp_path / "F").write_text(TIMES)
    r = run(f"""FromIPSummaryDump({tmp_path}/F, STOP true) -> t :: TimeFilter(START_AFTER 0.1, INTERVAL 1)
        -> c :: Counter -> Discard; t[1] -> c1 :: Counter -> Discard""")
    assert r.read("c.count") == "2" and r.read("c1.count") == "3"
    assert r.read("t.start") == "0.200000" and r.read("t.interval") == "1.000000"
    assert "mutually exclusive" in build("Idle -> TimeFilter(START 1, START_AFTER 2) -> Idle").errors


def test_aggregate_counter(tmp_path) -> None:
    (tmp_path / "F").write_text("!data aggregate\n1\n1\n0\n0\n0\n2\n3\n2\n")
    out = tmp_path / "out"
    r = run(f"""FromIPSummaryDump({tmp_path}/F, STOP true) -> a :: AggregateCounter -> Discard;
        DriverManager(pause, write a.write_text_file {out}, write a.reaggregate_counts,
                      write a.write_text_file {out}2)""")
    assert _body(out) == ["0 3", "1 2", "2 2", "3 1"]
    # the histogram also counts the empty inner nodes of Click's radix tree
    assert _body(tmp_path / "out2") == ["0 3", "1 1", "2 2", "3 1"]
    assert r.read("a.nagg") == "4" and r.read("a.count") == "7"


def test_aggregate_counter_freeze_and_outputs(tmp_path) -> None:
    (tmp_path / "F").write_text("!data aggregate ip_len\n1 100\n2 50\n3 10\n1 100\n")
    r = run(f"""FromIPSummaryDump({tmp_path}/F, STOP true) -> a :: AggregateCounter(BYTES true, AGGREGATE_FREEZE 2)
        -> c0 :: Counter -> Discard; a[1] -> c1 :: Counter -> Discard""")
    assert r.read("a.freeze") == "true" and r.read("a.count") == "250"
    assert r.read("c0.count") == "3" and r.read("c1.count") == "1"
    bad = build("Idle -> AggregateCounter(AGGREGATE_STOP 1, AGGREGATE_FREEZE 2) -> Idle")
    assert "mutually exclusive" in bad.errors


def test_aggregate_ip_flows(tmp_path) -> None:
    (tmp_path / "F").write_text(
        "!data src sport dst dport proto ip_id ip_fragoff ip_len\n"
        "18.26.4.44 30 10.0.0.4 40 U 1 0 100\n"
        "18.26.4.44 30 18.26.4.44 41 U 2 0 100\n"
        "10.0.0.4 40 18.26.4.44 30 U 3 0 100\n"
        "18.26.4.44 41 18.26.4.44 30 U 4 0 100\n"
        "18.26.4.44 41 18.26.4.44 30 U 5 24 80\n"
        "18.26.4.44 30 18.26.4.44 41 U 6 24 84\n"
        "18.26.4.44 41 18.26.4.44 30 U 5 0+ 24\n"
        "18.26.4.44 30 18.26.4.44 41 U 6 0+ 24\n"
        "1.1.1.1 - 2.2.2.2 - I 9 0 100\n")
    out = tmp_path / "out"
    r = run(f"""FromIPSummaryDump({tmp_path}/F, STOP true) -> SetTimestamp -> a :: AggregateIPFlows
        -> ToIPSummaryDump({out}, FIELDS aggregate link ip_len ip_id); a[1] -> c :: Counter -> Discard;
        DriverManager(pause, write a.clear)""")
    assert _body(out) == ["1 0 100 1", "2 0 100 2", "1 1 100 3", "2 1 100 4", "2 1 80 5", "2 0 84 6",
                          "2 1 24 5", "2 0 24 6"]
    assert r.read("c.count") == "1"


def test_fromipsummarydump_pull_and_timing(tmp_path) -> None:
    (tmp_path / "F").write_text("!data timestamp\n0\n0.05\n0.1\n")
    r = run(f"""f :: FromIPSummaryDump({tmp_path}/F, TIMING true, STOP true) -> q :: Queue
        -> u :: Unqueue -> c :: Counter -> Discard""", simtime=True)
    assert r.read("c.count") == "3" and r.read("f.active") == "true"
    r = run(f"""f :: FromIPSummaryDump({tmp_path}/F, STOP true, SAMPLE 0.5) -> c :: Counter -> Discard""")
    assert r.read("f.sampling_prob") == "0.5" and int(r.read("c.count")) <= 3


def test_ip_rate_monitor(tmp_path) -> None:
    lines = ["!data timestamp src dst"] + [f"0.{i:03d} 18.26.4.{i % 3} 10.0.0.1" for i in range(1, 300)]
    (tmp_path / "F").write_text("\n".join(lines) + "\n")
    r = run(f"""FromIPSummaryDump({tmp_path}/F, STOP true, TIMING true) -> m :: IPRateMonitor(PACKETS, 1, 20)
        -> c :: Counter -> Discard""", simtime=True)
    look = r.read("m.look").splitlines()
    assert look[1].startswith("18\t") and any(x.startswith("\t18.26\t") for x in look)
    assert r.read("c.count") == "299" and int(r.read("m.mem")) > 0 and r.read("m.thresh") == "20"
    bad = build("Idle -> IPRateMonitor(FLOWS, 1, 20) -> Idle")
    assert 'monitor type should be "PACKETS" or "BYTES"' in bad.errors
