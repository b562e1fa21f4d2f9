"""Per-instance isolation (namespaces, cgroups, credentials, rlimits) and the
small pieces underneath (limits parsing, restart policies, the channel)."""

from __future__ import annotations

import os
import socket

import pytest

from clickos.vm import channel
from clickos.vm.daemon import RestartPolicy
from clickos.vm.sandbox import KsmControl, Limits, parse_size
from clickos.vm.testing import host_support, running_daemon

SUPPORT = host_support()
needs_root = pytest.mark.skipif(not (SUPPORT["root"] and SUPPORT["pidfd"]),
                                reason="instances need root (namespaces, cgroups) and pidfd_open")
IDLE = "c :: Counter; Idle -> c -> Discard;"


def test_parse_size():
    assert parse_size("64M") == 64 << 20
    assert parse_size("1.5G") == 3 << 29
    assert parse_size("512k") == 512 << 10
    assert parse_size("2MiB") == 2 << 20
    assert parse_size(4096) == 4096
    with pytest.raises(ValueError):
        parse_size("much")


def test_limits_from_json():
    lim = Limits.from_json({"memory": "64M", "cpu": 50, "pids": 32, "nofile": 64, "cpu_seconds": 10})
    assert (lim.memory_bytes, lim.cpu_percent, lim.pids, lim.nofile, lim.cpu_seconds) == (64 << 20, 50.0, 32, 64, 10)
    assert Limits.from_json(None).memory_bytes is None
    for bad in ({"memory": "1k"}, {"cpu": 0}, {"pids": 0}, {"pids": "many"}, {"nofile": True}, {"disk": 1}):
        with pytest.raises(ValueError):
            Limits.from_json(bad)


def test_restart_policy_from_json():
    assert RestartPolicy.from_json(None).policy == "no"
    assert RestartPolicy.from_json("always").policy == "always"
    rp = RestartPolicy.from_json({"policy": "on-failure", "max_restarts": 3, "backoff_initial": 0.5})
    assert (rp.policy, rp.max_restarts, rp.backoff_initial) == ("on-failure", 3, 0.5)
    for bad in ("sometimes", {"policy": "always", "extra": 1}, {"backoff_initial": 0}, 7):
        with pytest.raises(ValueError):
            RestartPolicy.from_json(bad)


def test_channel_messages_and_descriptors():
    a, b = channel.pair()
    r, w = os.pipe()
    try:
        channel.send(a, {"op": "x", "n": 1}, [w])
        big = "x" * (1 << 20)
        channel.send(a, {"op": "big", "data": big})
        msg, fds = channel.recv(b)
        assert msg == {"op": "x", "n": 1} and len(fds) == 1
        os.write(fds[0], b"!")
        assert os.read(r, 1) == b"!"
        os.close(fds[0])
        msg, fds = channel.recv(b)
        assert msg["data"] == big and fds == []
        with pytest.raises(BlockingIOError):
            channel.recv(b, nonblock=True)
        a.close()
        assert channel.recv(b) == (None, [])
    finally:
        for fd in (r, w):
            os.close(fd)
        b.close()


def test_ksm_control_reads_without_changing_anything():
    k = KsmControl()
    if not k.available:
        pytest.skip("no KSM on this kernel")
    st = k.stats()
    assert {"pages_shared", "pages_sharing", "run"} <= set(st)
    k.restore()                                   # nothing saved: nothing written
    assert k.stats()["run"] == st["run"]


def _status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


@needs_root
def test_instances_are_isolated(tmp_path):
    with running_daemon(tmp_path, prefork=1) as (daemon, c):
        a = c.create("iso-a", IDLE, limits={"memory": "64M", "pids": 20, "cpu": 50, "nofile": 100})
        b = c.create("iso-b", IDLE)
        me = os.getpid()
        for ns in ("net", "uts", "ipc", "mnt"):
            mine = os.readlink(f"/proc/{me}/ns/{ns}")
            na, nb = os.readlink(f"/proc/{a['pid']}/ns/{ns}"), os.readlink(f"/proc/{b['pid']}/ns/{ns}")
            assert na != mine and nb != mine and na != nb, ns
        assert set(c.show("iso-a")["isolation"]) >= {"net", "uts", "ipc", "mnt"}
        # only a loopback interface in the instance's network namespace
        with open(f"/proc/{a['pid']}/net/dev") as f:
            ifaces = {line.split(":")[0].strip() for line in f.readlines()[2:]}
        assert ifaces == {"lo"}
        # own unprivileged user ids; no new privileges
        sa, sb = _status(a["pid"]), _status(b["pid"])
        ua, ub = int(sa["Uid"].split()[0]), int(sb["Uid"].split()[0])
        assert ua != 0 and ub != 0 and ua != ub
        assert sa["NoNewPrivs"] == "1"
        assert sa["CapEff"] == "0000000000000000"
        # rlimits
        with open(f"/proc/{a['pid']}/limits") as f:
            limits = f.read()
        assert any(line.startswith("Max open files") and line.split()[3] == "100" for line in limits.splitlines())
        # cgroups with the limits written
        cg = daemon.records["iso-a"].cgroup
        if "memory" in SUPPORT["controllers"]:
            assert a["pid"] in daemon.cgroups.procs(cg)
            mem = cg.dirs["memory"]
            fname = "memory.limit_in_bytes" if daemon.cgroups.version == 1 else "memory.max"
            with open(os.path.join(mem, fname)) as f:
                assert int(f.read()) == 64 << 20
        if "pids" in SUPPORT["controllers"]:
            with open(os.path.join(cg.dirs["pids"], "pids.max")) as f:
                assert f.read().strip() == "20"
        with open(f"/proc/{a['pid']}/cgroup") as f:
            assert f"clickos-{os.getpid()}" in f.read()


@needs_root
def test_instance_cannot_reach_the_host_network(tmp_path):
    # The instance's namespace has no route anywhere: a ControlSocket on TCP
    # would listen on the instance's own loopback, invisible from here.
    with running_daemon(tmp_path, prefork=0) as (_daemon, c):
        r = c.create("tcp", "ControlSocket(TCP, 0); Idle -> Discard;")
        port = int(c.read("tcp", "ControlSocket@1.port"))
        with socket.socket() as s:
            s.settimeout(0.5)
            with pytest.raises(OSError):
                s.connect(("127.0.0.1", port))
        assert r["state"] == "running"
