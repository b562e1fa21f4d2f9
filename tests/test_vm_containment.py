"""Misbehaving instances are stopped by their own limits or die alone; the
daemon says what happened; the other instances keep running."""

from __future__ import annotations

import os

import pytest

from clickos.vm.testing import host_support, running_daemon, wait_for

SUPPORT = host_support()
pytestmark = pytest.mark.skipif(not (SUPPORT["root"] and SUPPORT["pidfd"]),
                                reason="instances need root (namespaces, cgroups) and pidfd_open")
CTRL = SUPPORT["controllers"]

IDLE = "c :: Counter; Idle -> c -> Discard;"


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    with running_daemon(tmp_path_factory.mktemp("vmc"), fault_elements=True, stop_grace=0.5,
                        request_timeout=1.0) as (daemon, client):
        client.create("bystander", "RatedSource(RATE 1000) -> c :: Counter -> Discard;")
        yield daemon, client


def _bystander_ok(c, pid: int | None = None) -> int:
    s = c.show("bystander")
    assert s["state"] == "running" and s["responsive"] is True
    if pid is not None:
        assert s["pid"] == pid
    before = int(c.read("bystander", "c.count"))
    wait_for(lambda: int(c.read("bystander", "c.count")) > before)
    return s["pid"]


def test_crash_under_traffic_dies_alone(vm):
    _, c = vm
    pid = _bystander_ok(c)
    c.create("crash", "RatedSource(RATE 200) -> FaultCrash(AFTER 10) -> c :: Counter -> Discard;")
    s = wait_for(lambda: (x := c.show("crash"))["state"] == "crashed" and x)
    assert s["last_exit"]["signal"] == "SIGSEGV"
    assert s["last_exit"]["failure"] is True
    assert "SIGSEGV" in s["last_exit"]["reason"]
    assert [e["event"] for e in s["events"]][-1] == "exited"
    _bystander_ok(c, pid)
    c.destroy("crash")


def test_restart_on_failure_backs_off_then_gives_up(vm):
    _, c = vm
    c.create("flaky", "RatedSource(RATE 100) -> FaultCrash(AFTER 3, SIGNAL ABRT) -> Discard;",
             restart={"policy": "on-failure", "backoff_initial": 0.05, "max_restarts": 3})
    s = wait_for(lambda: (x := c.show("flaky"))["state"] == "failed" and x, timeout=15)
    assert s["restarts"] == 3
    delays = [e["delay_s"] for e in s["events"] if e["event"] == "restart scheduled"]
    assert delays == [0.05, 0.1, 0.2]
    assert any(e["event"] == "not restarting" for e in s["events"])
    assert s["last_exit"]["signal"] == "SIGABRT"
    _bystander_ok(c)
    c.destroy("flaky")


def test_restart_policies_on_clean_exit(vm):
    _, c = vm
    stop_cfg = "InfiniteSource(LIMIT 1, STOP true) -> Discard;"
    c.create("once", stop_cfg, restart="on-failure", wait="none")
    s = wait_for(lambda: (x := c.show("once"))["state"] == "exited" and x)
    assert s["last_exit"]["code"] == 0 and s["last_exit"]["failure"] is False
    assert s["restarts"] == 0
    c.create("again", stop_cfg, restart={"policy": "always", "backoff_initial": 0.02, "max_restarts": 2},
             wait="none")
    s = wait_for(lambda: (x := c.show("again"))["restarts"] == 2 and x["state"] in ("exited", "failed") and x)
    assert "router stopped" in s["last_exit"]["reason"]
    c.destroy("once")
    c.destroy("again")


@pytest.mark.skipif("memory" not in CTRL, reason="no memory cgroup on this host")
def test_memory_bomb_stopped_by_its_memory_limit(vm):
    _, c = vm
    pid = _bystander_ok(c)
    c.create("bomb", "RatedSource(RATE 50) -> FaultMemoryHog(BYTES 4194304) -> Discard;",
             limits={"memory": "48M"})
    s = wait_for(lambda: (x := c.show("bomb"))["state"] == "crashed" and x, timeout=20)
    assert s["last_exit"]["signal"] == "SIGKILL"
    assert "memory limit (48 MiB)" in s["last_exit"]["reason"], s["last_exit"]
    cg = s["last_exit"]["cgroup"]
    assert cg.get("oom_kills", 0) >= 1 or cg.get("memory_limit_hits", 0) >= 1
    assert cg["memory_peak_bytes"] <= 48 << 20
    _bystander_ok(c, pid)
    c.destroy("bomb")


@pytest.mark.skipif("pids" not in CTRL, reason="no pids cgroup on this host")
def test_fork_bomb_stopped_by_its_pids_limit(vm):
    daemon, c = vm
    pid = _bystander_ok(c)
    c.create("forky", "RatedSource(RATE 100) -> f :: FaultForkBomb(AFTER 3) -> Discard;", limits={"pids": 12})
    wait_for(lambda: int(c.read("forky", "f.fork_failures")) >= 3, timeout=10)
    forks = int(c.read("forky", "f.forks"))
    assert 0 < forks < 12
    s = c.show("forky")
    assert s["state"] == "running"                     # fork failed; the instance itself carries on
    assert s["cgroup"]["pids_limit_hits"] >= 3
    assert s["cgroup"]["pids"] == forks + 1
    rec = daemon.records["forky"]
    cg = rec.cgroup
    assert cg is not None and len(daemon.cgroups.procs(cg)) == forks + 1
    c.destroy("forky")
    # the instance and every child it forked are gone, and so is its cgroup
    for d in cg.dirs.values():
        assert not os.path.exists(d)
    _bystander_ok(c, pid)


@pytest.mark.skipif("cpu" not in CTRL, reason="no cpu cgroup on this host")
def test_busy_loop_throttled_then_killed(vm):
    _, c = vm
    pid = _bystander_ok(c)
    c.create("busy", "RatedSource(RATE 50) -> FaultSpin(AFTER 10) -> Discard;", limits={"cpu": 10})
    wait_for(lambda: (c.show("busy")["cgroup"] or {}).get("cpu_nr_throttled", 0) >= 2, timeout=10)
    _bystander_ok(c, pid)                                # still answers promptly
    s = c.stop("busy")                                   # SIGTERM cannot interrupt the loop: SIGKILL
    assert s["state"] == "stopped"
    last = c.show("busy")["last_exit"]
    assert last["signal"] == "SIGKILL" and "did not stop" in last["reason"]
    c.destroy("busy")


def test_cpu_time_limit(vm):
    _, c = vm
    c.create("cpuhog", "RatedSource(RATE 50) -> FaultSpin(AFTER 10) -> Discard;", limits={"cpu_seconds": 1})
    s = wait_for(lambda: (x := c.show("cpuhog"))["state"] == "crashed" and x, timeout=15)
    assert s["last_exit"]["signal"] == "SIGXCPU"
    assert "CPU time limit" in s["last_exit"]["reason"]
    _bystander_ok(c)
    c.destroy("cpuhog")
