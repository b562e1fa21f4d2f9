"""Stopping the daemon leaves nothing behind: no process, namespace, cgroup,
socket or shared memory of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from clickos.vm.client import Client
from clickos.vm.testing import host_support, wait_for

SUPPORT = host_support()
pytestmark = pytest.mark.skipif(not (SUPPORT["root"] and SUPPORT["pidfd"]),
                                reason="instances need root (namespaces, cgroups) and pidfd_open")


def _descendants(root: int) -> set[int]:
    parent: dict[int, int] = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            parent[int(e)] = int(s[s.rfind(")") + 2:].split()[1])
    out: set[int] = set()
    frontier = {root}
    while frontier:
        nxt = {p for p, pp in parent.items() if pp in frontier} - out
        out |= nxt
        frontier = nxt
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _all_netns() -> set[str]:
    out = set()
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                out.add(os.readlink(f"/proc/{e}/ns/net"))
            except OSError:
                pass
    return out


def _files_owned_by(uids: set[int], dirs: tuple[str, ...] = ("/dev/shm", "/tmp")) -> list[str]:
    found = []
    for d in dirs:
        try:
            for e in os.scandir(d):
                try:
                    if e.stat(follow_symlinks=False).st_uid in uids:
                        found.append(e.path)
                except OSError:
                    pass
        except OSError:
            pass
    return found


def _start(tmp_path, *extra: str) -> tuple[subprocess.Popen, str]:
    sock = str(tmp_path / "clickos.sock")
    proc = subprocess.Popen([sys.executable, "-m", "clickos.cli", "daemon", "--run-dir", str(tmp_path),
                             "--fault-elements", "--prefork", "1", "--stop-grace", "0.5", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
        try:
            with Client(sock, timeout=5) as c:
                c.info()
            return True
        except OSError:
            return False

    wait_for(up, timeout=60, interval=0.05)
    return proc, sock


def test_daemon_stop_leaves_nothing_behind(tmp_path):
    proc, sock = _start(tmp_path)
    with Client(sock) as c:
        info = c.info()
        zygote = info["zygote"]["pid"]
        bases = list((info["cgroups"] or {}).get("base", {}).values())
        c.create("idle", "c :: Counter; Idle -> c -> Discard;")
        c.create("loop", "RatedSource(RATE 100) -> FaultCrash(AFTER 3) -> Discard;",
                 restart={"policy": "always", "backoff_initial": 0.02})
        limits = {"pids": 8} if "pids" in SUPPORT["controllers"] else None
        c.create("forks", "RatedSource(RATE 100) -> f :: FaultForkBomb(AFTER 2) -> Discard;", limits=limits)
        wait_for(lambda: c.show("loop")["restarts"] >= 2)
        if limits:
            wait_for(lambda: int(c.read("forks", "f.fork_failures")) >= 1)
        pids = _descendants(zygote) | {zygote}
        netns = set()
        for p in pids - {zygote}:
            try:  # a crashing instance may exit between the listing and this read
                netns.add(os.readlink(f"/proc/{p}/ns/net"))
            except OSError:
                pass
        uids = set()
        for p in pids:
            try:
                with open(f"/proc/{p}/status") as f:
                    uids.add(int(next(ln for ln in f if ln.startswith("Uid:")).split()[1]))
            except (OSError, StopIteration):
                pass
        uids.discard(0)
        sockets = [c.show(n)["control_socket"] for n in ("idle", "forks")]
        assert all(s and os.path.exists(s) for s in sockets)
    assert len(pids) >= 5 and netns
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    # Exiting processes take a moment to vanish from /proc on a loaded machine.
    deadline = time.monotonic() + 10
    while [p for p in pids if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if _alive(p)] == []                      # processes
    assert netns.isdisjoint(_all_netns())                             # namespaces
    assert [b for b in bases if os.path.exists(b)] == []              # cgroups
    assert not os.path.exists(sock)                                   # sockets
    assert [s for s in sockets if os.path.exists(s)] == []
    assert not os.path.exists(tmp_path / "sockets")
    assert _files_owned_by(uids) == []                                # shm, temp files


def test_detach_pid_file_and_stop(tmp_path):
    run = str(tmp_path)
    r = subprocess.run([sys.executable, "-m", "clickos.cli", "daemon", "--detach", "--run-dir", run,
                        "--prefork", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    pid_file = os.path.join(run, "clickos.pid")
    with open(pid_file) as f:
        pid = int(f.read())
    assert _alive(pid)
    with Client(os.path.join(run, "clickos.sock")) as c:
        c.create("d", "Idle -> Discard;")
        inst = c.show("d")["pid"]
    r = subprocess.run([sys.executable, "-m", "clickos.cli", "daemon", "status", "--run-dir", run],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "running" in r.stdout
    r = subprocess.run([sys.executable, "-m", "clickos.cli", "daemon", "stop", "--run-dir", run],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not _alive(pid) and not _alive(inst)
    assert not os.path.exists(pid_file)
    assert not os.path.exists(os.path.join(run, "clickos.sock"))


def test_daemon_survives_the_zygote_dying(tmp_path):
    from clickos.vm.testing import running_daemon

    idle = "c :: Counter; Idle -> c -> Discard;"
    with running_daemon(tmp_path, prefork=1) as (daemon, c):
        c.create("keep", idle, restart={"policy": "always", "backoff_initial": 0.05})
        c.create("lose", idle)
        zygote, pid = daemon.zygote_pid, c.show("keep")["pid"]
        os.kill(zygote, signal.SIGKILL)
        s = wait_for(lambda: (x := c.show("keep"))["state"] == "running" and x["pid"] != pid and x, timeout=60)
        assert daemon.zygote_pid != zygote
        assert "zygote died" in s["last_exit"]["reason"]
        assert c.read("keep", "c.count") == "0"
        lost = c.show("lose")
        assert lost["state"] == "crashed" and "zygote died" in lost["last_exit"]["reason"]
        assert not _alive(pid)
        assert any(e["event"] == "zygote died" for e in c.info()["events"])
