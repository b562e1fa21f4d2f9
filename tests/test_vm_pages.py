"""Keeping instances' memory shared with the zygote (clickos.vm.pages): the
snapshot keeps every byte, hands back only pages equal to it, and an instance
forked from the zygote's native fork server boots and answers as before."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from clickos.vm.testing import host_support, running_daemon

SUPPORT = host_support()
linux_only = pytest.mark.skipif(not (sys.platform.startswith("linux") and os.path.exists("/proc/self/pagemap")
                                     and hasattr(os, "memfd_create")), reason="needs Linux (pagemap, memfd)")


def _run(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@linux_only
def test_snapshot_keeps_every_byte_and_hands_back_only_equal_pages():
    out = _run("""
        import hashlib, json, os
        from clickos.vm import pages
        data = [bytes([i % 251]) * 3000 for i in range(2000)]       # before: in the snapshot
        table = list(range(100_000))
        digest = hashlib.sha256(b"".join(data)).hexdigest()
        snap = pages.take()
        assert snap is not None
        # write pages and put them back as they were: handed back
        saved = table[:50_000]
        table[:50_000] = [-1] * 50_000
        table[:50_000] = saved
        n1 = snap.reshare()
        # change pages for good: kept
        table[::512] = [7] * len(table[::512])
        n2 = snap.reshare()
        assert hashlib.sha256(b"".join(data)).hexdigest() == digest
        assert table[:512] == [7] + list(range(1, 512)) and table[-1] == 99_999
        assert json.loads(json.dumps({"a": [1, 2, 3]})) == {"a": [1, 2, 3]}
        # and the process forks and goes on as usual
        pid = os.fork()
        if pid == 0:
            ok = hashlib.sha256(b"".join(data)).hexdigest() == digest and snap.reshare() >= 0
            os._exit(0 if ok else 1)
        assert os.waitpid(pid, 0)[1] == 0
        print(n1, n2)
    """)
    n1, n2 = (int(x) for x in out.split())
    assert n1 > 50
    assert n2 >= 0


def test_fill_pools_fills_partly_used_pools():
    out = _run("""
        from clickos.vm import pages
        print(pages.fill_pools(), pages.fill_pools(), pages.fill_malloc())
    """)
    first, second, _chunks = (int(x) for x in out.split())
    assert first > 0
    assert second < first  # the second finds (almost) nothing left to fill


def test_compact_code_moves_code_and_keeps_behaviour():
    out = _run("""
        import types
        from clickos.vm import pages
        def outer(n):
            f = lambda k: k * 2
            return sum(f(i) for i in range(n))
        class C:
            def m(self, x):
                return [y + 1 for y in range(x)]
        old = outer.__code__, C.m.__code__
        hot = [outer.__code__, C.m.__code__]
        assert pages.compact_code(hot) == 2
        assert outer.__code__ is not old[0] and C.m.__code__ is not old[1]
        assert outer(10) == 90 and C().m(3) == [1, 2, 3]
        print("ok")
    """)
    assert out.strip() == "ok"


@pytest.mark.skipif(not (SUPPORT["root"] and SUPPORT["pidfd"]),
                    reason="instances need root (namespaces, cgroups) and pidfd_open")
def test_instances_fork_from_the_snapshot_and_hand_pages_back(tmp_path):
    with running_daemon(tmp_path, prefork=2, prefork_warm=1) as (daemon, client):
        info = client.info()
        assert info["zygote"]["snapshot"] is True
        client.create("a", "InfiniteSource(LIMIT 1, STOP false) -> c :: Counter -> Discard;", wait="first-packet")
        client.create("b", "c :: Counter; Idle -> c -> Discard;")
        assert client.read("a", "c.count") == "1"
        assert client.read("b", "c.count") == "0"
        pid = client.show("b")["pid"]
        assert "clickos-snapshot" in open(f"/proc/{pid}/maps").read()
        # nothing of the zygote's is left open in an instance (but its own /proc files)
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert sum("eventpoll" in f for f in fds) == 1, fds
        assert not any("memfd" in f or "smaps" in f for f in fds), fds
        client.destroy("a")
        client.destroy("b")
    with running_daemon(tmp_path / "plain", snapshot=False) as (daemon, client):
        assert client.info()["zygote"]["snapshot"] is False
        client.create("c", "c :: Counter; Idle -> c -> Discard;")
        assert client.read("c", "c.count") == "0"
